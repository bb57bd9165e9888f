"""What the CLI's one-shot commands do: init and status (validate has its module). The CLI only prints."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from git import InvalidGitRepositoryError, NoSuchPathError, Repo

from gitcanary.core import ladder
from gitcanary.core.observations import ClusterObservation, Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.errors import GitcanaryError, GitError, SpecError
from gitcanary.git import messages
from gitcanary.manifests import discovery, render
from gitcanary.manifests.generate import FileWriter, Layout, read_status
from gitcanary.manifests.target import render_target
from gitcanary.routers import router_for
from gitcanary.routers.providers import apply_default_provider
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase, utcnow

if TYPE_CHECKING:
    from gitcanary.cluster import ClusterObserver


@dataclass
class InitResult:
    key: str
    commit: str | None
    changed: list[str]
    hook: str
    already: bool = False
    switched: bool = False


def _scan(root: Path, provider: str | None) -> discovery.Catalog:
    """The repository's canaries, with `provider` for those that set none (as `run --provider`)."""
    catalog = discovery.scan(root)
    apply_default_provider(catalog.canaries, provider)
    return catalog


def _canaries_under(catalog: discovery.Catalog, path: str) -> list[LoadedCanary]:
    path = path.strip("/").removeprefix("./")
    return [
        loaded
        for loaded in catalog.canaries.values()
        if path in ("", ".")
        or discovery.app_dir(loaded) == path
        or loaded.source.split("#")[0] == path
        or discovery.app_dir(loaded).startswith(path + "/")
    ]


def _relative(root: Path, app_path: str) -> str:
    """`app_path` relative to the repository root, whether given from the root or from the cwd."""
    if (root / app_path).exists():
        return str(Path(app_path)).strip("/")
    try:
        return str(Path(app_path).resolve().relative_to(root.resolve()))
    except ValueError:
        return app_path


def init(
    repo_path: Path,
    app_path: str,
    now: datetime | None = None,
    switch: bool = False,
    provider: str | None = None,
) -> list[InitResult]:
    """Commit the Initializing state (primary + services) for each canary under `app_path`.

    With `switch`, also commit the second step at once (routing to the primary, target at zero):
    for an app that serves no traffic yet, so there is no primary readiness to wait for.
    Works in a person's checkout: it commits only the files it writes and never pushes.
    """
    try:
        root = Path(Repo(repo_path, search_parent_directories=True).working_tree_dir or repo_path)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise GitError(
            f"{repo_path} is not a Git checkout: init commits in a local clone (or let `gitcanary run "
            "--repo URL` initialize the canaries it finds)"
        ) from exc
    rel = _relative(root, app_path)
    catalog = _scan(root, provider)
    for source, error in catalog.errors.items():
        if source.startswith(rel.rstrip("/")):
            raise error
    found = _canaries_under(catalog, rel)
    if not found:
        raise SpecError(rel, "", "no flagger.app Canary found here")
    repo = Repo(root)
    results = []
    for loaded in found:
        layout = Layout.of(loaded)
        if read_status(root, layout) is not None:
            results.append(InitResult(loaded.canary.key, None, [], "", already=True))
            continue
        rendered = render_target(root, loaded)
        observation = Observation(now or utcnow(), rendered.spec_hash, rendered.revision)
        status: CanaryStatus | None = None
        for _ in range(2 if switch else 1):
            decision = decide(loaded.canary, status, observation)
            assert decision.status is not None, decision
            writer = FileWriter(root, loaded, router_for(loaded.canary, loaded.source))
            changed = writer.apply(decision.status, rendered, decision.copy_to_primary)
            hook = writer.hook_note
            message = messages.compose(loaded.canary, status, decision, [hook] if hook else [])
            repo.git.add("--all", "--", *changed)
            repo.git.commit("-m", message, "--", *changed)
            if decision.action is Action.INITIALIZE:
                results.append(InitResult(loaded.canary.key, repo.head.commit.hexsha, list(changed), hook))
            else:
                results[-1].changed += [path for path in changed if path not in results[-1].changed]
                results[-1].switched = True
            status = decision.status
    return results


@dataclass
class CanaryView:
    key: str
    source: str
    phase: str = ""
    weight: int = 0
    failed_checks: int = 0
    primary_revision: str = ""
    canary_revision: str = ""
    target_revision: str = ""
    last_transition: str = ""
    waiting: str = ""
    message: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    # How "applied and ready" was known: "cluster" (observer), "guessing" (settle delay), "" (at rest).
    liveness: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def status(
    root: Path,
    now: datetime | None = None,
    settle: float = 0.0,
    observer: ClusterObserver | None = None,
    provider: str | None = None,
) -> list[CanaryView]:
    """Every canary in the checkout at `root`, like `kubectl get canaries`, with why it waits.

    With `observer`, waiting for the cluster is what the cluster reports; without, the settle
    delay stands in and the view says it is guessing.
    """
    now = now or utcnow()
    catalog = _scan(root, provider)
    views = [
        CanaryView(key=source, source=source, phase="Error", error=str(err))
        for source, err in sorted(catalog.errors.items())
    ]
    for key in sorted(catalog.canaries):
        loaded = catalog.canaries[key]
        view = CanaryView(key=key, source=loaded.source, warnings=list(loaded.warnings))
        try:
            st: CanaryStatus | None = read_status(root, Layout.of(loaded))
            rendered = render_target(root, loaded)
            if st is None:
                # The primary `run` writes first, built the same way: a target it cannot copy
                # halts `run` there, and this row says why instead of promising an initialization.
                render.primary_deployment(rendered.target, loaded.canary, None, loaded.source)
        except Exception as exc:  # noqa: BLE001 - one canary's failure is its row, never the whole table
            view.phase = "Error"
            view.error = (
                str(exc) if isinstance(exc, GitcanaryError) else f"unexpected {type(exc).__name__}: {exc}"
            )
            views.append(view)
            continue
        view.target_revision = rendered.revision
        impossible = ladder.problem(loaded.canary, st) if st is not None else None
        if impossible is not None:
            # A warning here, as `status` cannot see which spec wrote it; `run` halts on it unless
            # the Canary's ladder changed since gitcanary wrote this status.
            view.warnings.append(str(SpecError(Layout.of(loaded).status, *impossible)))
        view.warnings += rendered.warnings
        if st is None:
            view.phase, view.waiting = "Uninitialized", "gitcanary run (or gitcanary init) will initialize it"
        else:
            view.phase, view.weight, view.failed_checks = st.phase.value, st.canary_weight, st.failed_checks
            view.primary_revision, view.canary_revision = st.primary_revision, st.canary_revision
            view.last_transition = st.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            view.message = st.message
            live = (now - st.last_transition_time).total_seconds() >= settle
            observation = Observation(now, rendered.spec_hash, rendered.revision, live)
            at_rest = st.phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.QUARANTINED)
            if observer is not None and not at_rest:
                observation = replace(observation, cluster=_observe(root, loaded, observer, now))
                view.liveness = "cluster"
            elif not at_rest:
                view.liveness = "guessing"
            decision = decide(loaded.canary, st, observation)
            view.waiting = decision.reason if decision.action is not Action.MEASURE else "analysis due"
            if decision.hooks and st.phase in (Phase.WAITING, Phase.WAITING_PROMOTION):
                view.waiting = st.message  # names the closed gate; status calls no webhooks
            elif view.liveness == "guessing":  # a gate is no guess; the JSON's liveness still says it
                view.waiting += (
                    f" (guessing: no cluster access, a commit counts as applied {settle:g}s after it)"
                )
        views.append(view)
    return views


def _observe(
    root: Path, loaded: LoadedCanary, observer: ClusterObserver, now: datetime
) -> ClusterObservation:
    from gitcanary.cluster import commits

    repo = Repo(root)
    head = repo.head.commit.hexsha
    last = commits.last_commit(repo, head, commits.canary_inputs(root, loaded), loaded)
    return observer.observe(loaded.canary, commits.directories(loaded), last, now)


def judge_problems(canary: Canary) -> list[str]:
    """What is wrong with the canary's `gitcanary.io/judge*` annotations (the analysis would fail on it)."""
    from gitcanary.analysis.judges import judge_of
    from gitcanary.analysis.judges.settings import JUDGE_ANNOTATION, JudgeSettings

    try:
        if judge_of(canary, "threshold") == "compare" or any(
            key.startswith(JUDGE_ANNOTATION + "-") for key in canary.metadata.annotations
        ):
            JudgeSettings.of(canary)
    except GitcanaryError as exc:
        return [str(exc)]
    return []


def image_automation(root: Path, provider: str | None = None, under: str = "") -> list[str]:
    """Per canary (under `under`): which ImagePolicy or Image Updater Application selects its images,
    and whether a rollback can quarantine a failed tag there (else the Quarantined hold stands in)."""
    from gitcanary.manifests import image_policies, render

    root = Path(root)
    catalog = _scan(root, provider)
    docs = image_policies.documents(root)
    lines: list[str] = []
    for loaded in _canaries_under(catalog, _relative(root, under)) if under else catalog.canaries.values():
        app_dir = Layout.of(loaded).app_dir
        if not image_policies.automated(root, app_dir, docs):
            continue  # nothing could select its images: no build needed to say so
        try:
            rendered = render_target(root, loaded)
        except GitcanaryError:
            continue  # validate reports the build error itself
        images = list(render.container_images(rendered.target).values())
        found = image_policies.report(root, app_dir, images, docs)
        lines += [f"{loaded.canary.key}: {line}" for line in found]
    return lines
