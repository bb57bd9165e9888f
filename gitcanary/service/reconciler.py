"""The loop that ties the edges to the pure core: fetch, observe, decide, commit, push.

Stateless across restarts: everything needed to resume is in Git (status files and trailers).
In memory it keeps only caches (the catalog, renders, statuses) keyed by the last seen commit,
so an idle tick costs a fetch and a comparison, and a new commit re-reads only what it changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gitcanary.analysis.run import ANALYSIS_DEADLINE
from gitcanary.audit.bumper import bumped_by, last_author_email
from gitcanary.core import gates, ladder
from gitcanary.core.observations import CheckResult, ClusterObservation, HookResult, Observation
from gitcanary.core.rollout import Action, Decision, decide
from gitcanary.errors import GitcanaryError, GitError, PushRejected, SpecError
from gitcanary.git import messages
from gitcanary.git.workspace import Identity, Workspace
from gitcanary.hooks.alerts import Secrets
from gitcanary.hooks.announce import Hooks, Transition
from gitcanary.manifests import discovery, files, image_policies, yamlio
from gitcanary.manifests.discovery import Catalog, app_dir
from gitcanary.manifests.generate import (
    FileWriter,
    Layout,
    Rendered,
    changed_configs,
    changed_images,
    holds_last_write,
    read_status,
    write_documents,
)
from gitcanary.manifests.render_cache import RenderCache, build_inputs, digest
from gitcanary.manifests.target import render_target
from gitcanary.redaction import register, register_url
from gitcanary.routers import router_for
from gitcanary.routers.providers import apply_default_provider
from gitcanary.service.analyses import Analyses, Measured, deadline_checks, deadline_hook
from gitcanary.service.settings import Settings
from gitcanary.spec.load import LoadedCanary, load_canary
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus, Phase, utcnow

if TYPE_CHECKING:
    from gitcanary.analysis.providers import HttpPool, ProviderEnv
    from gitcanary.cluster import ClusterObserver
    from gitcanary.forge.publish import Publisher

log = logging.getLogger("gitcanary")

Analyzer = Callable[..., tuple[CheckResult, ...]]
# At rest nothing waits for the cluster (a new revision starts at once), so it is not asked.
IDLE_PHASES = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.QUARANTINED)


# No analysis is cut shorter than this, however short the intervals: Flagger's own Prometheus
# timeout, and room for a loaded backend to answer an ordinary query.
MIN_ANALYSIS_DEADLINE = 5.0


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before the next try after `failures` failed ticks in a row: 1, 2, 4... up to `interval`."""
    return float(min(interval, 2.0 ** min(failures - 1, 16)))


class _AnalysisDue(Exception):
    """The fast lane met a canary whose step needs an analysis: the tick's pass steps it."""


@dataclass
class CanaryReport:
    """One canary as the last tick saw it (what `gitcanary status` prints)."""

    key: str
    source: str
    status: CanaryStatus | None = None
    waiting: str = ""
    error: str = ""
    warnings: tuple[str, ...] = ()


@dataclass
class TickResult:
    head: str
    commits: list[str] = field(default_factory=list)
    reports: dict[str, CanaryReport] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # source file -> message


def cluster_observer(settings: Settings, workspace: Workspace) -> ClusterObserver | None:
    """The observer `settings.cluster` asks for, or None: the settle delay stands in."""
    from gitcanary.cluster import ClusterObserver, api_client
    from gitcanary.cluster.revisions import Ancestry

    api = api_client(settings.cluster, settings.kubeconfig)
    if api is None:
        return None
    return ClusterObserver(api, settings.branch, Ancestry(workspace.repo), settings.repo)


def _render_salt(loaded: LoadedCanary) -> str:
    """What a build depends on besides files: the fields of the Canary that `render_target` reads."""
    canary = loaded.canary
    refs = [
        ref.model_dump_json() if ref is not None else ""
        for ref in (
            canary.spec.target_ref,
            canary.spec.autoscaler_ref,
            canary.spec.ingress_ref,
            canary.spec.route_ref,
        )
    ]
    return "\0".join(
        [loaded.source, app_dir(loaded), canary.key, canary.namespace, canary.service_name, *refs]
    )


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        analyzer: Analyzer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observer: ClusterObserver | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings = settings
        # Whatever credentials the settings carry are masked in every output from now on.
        register_url(settings.repo)
        register_url(settings.prometheus)
        for secret in (settings.github_token, settings.webhook_secret):
            register(secret.get_secret_value() if secret is not None else None)
        self.publisher = publisher  # pull-request mode and the promotion gate (gitcanary.forge)
        self.clock = clock
        self.analyzer = analyzer
        self.sleep = sleep
        self.workspace = Workspace(
            settings.repo,
            settings.branch,
            settings.resolved_workdir(),
            Identity(settings.author_name, settings.author_email),
            settings.signing_key,
            settings.signing_format,
        )
        self.catalog: Catalog | None = None
        self.last_head: str | None = None
        self.renders: dict[str, Rendered] = {}
        self.render_errors: dict[str, GitcanaryError] = {}
        self.inputs: dict[str, set[str]] = {}
        # Builds by the content of their inputs: what `renders` drops when a path changed comes back
        # from here when the content the build reads did not (a step changes only generated files).
        self.render_cache: RenderCache[Rendered] = RenderCache()
        self._generated_dirs: set[str] | None = None  # every canary's generated dir, for the digests
        self.statuses: dict[str, CanaryStatus | None] = {}
        self._written_status: dict[str, CanaryStatus] = {}  # what this process last wrote, by canary
        self.reports: dict[str, CanaryReport] = {}
        self._clean = False  # the work tree is known to hold exactly HEAD (every change committed)
        self.respec: set[str] = set()  # canaries whose manifest changed: re-render their objects
        self._moved: set[str] = set()  # canaries this attempt committed for
        self._respec_before: set[str] = set()
        self._wake: Callable[[], None] | None = None  # set by run_forever
        self._stop: Callable[[], None] | None = None  # set by run_forever
        self.observer = observer if observer is not None else cluster_observer(settings, self.workspace)
        self._last_commits: dict[str, tuple[str, str]] = {}  # canary -> (HEAD, last commit for it)
        # Webhooks and notifications; transitions of this attempt wait for the push to be announced.
        self.hooks = Hooks(secrets_dir=settings.secrets_dir, commit_url=settings.commit_url, sleep=sleep)
        self._transitions: list[Transition] = []
        # Canaries whose status file someone else changed: (gitcanary's own status, commit, author).
        self._foreign: dict[str, tuple[CanaryStatus, str, str]] = {}
        self._pool: HttpPool | None = None
        # Per canary, what was measured beside this tick's checks, for its step commit's trailers.
        self._beside: dict[str, dict[str, str]] = {}
        # ... as `_analyze` measured it, by canary: (the tick's time, the trailers).
        self._measured_beside: dict[str, tuple[datetime | None, dict[str, str]]] = {}
        # A push webhook sets `_woken` (and `_stir`, which also wakes a pass waiting for analyses).
        self._woken = threading.Event()
        self._stir = threading.Event()
        self._analyses: Analyses | None = None  # this tick's analyses sent ahead
        self._fast_lane_on = False  # while set, a canary that needs an analysis is left for the pass
        self._base = ""  # the commit this attempt's own commits go on (moves when the fast lane pushes)
        self._fast_commits: list[str] = []  # what the fast lane landed during this tick
        self._pass_commits: list[str] = []  # what the pass committed and has not pushed yet
        # Canaries whose last decision was a wait `decide` repeats until an instant, as long as the
        # objects it was decided from are these same ones: key -> (head, canary, status, render, until).
        self._quiet: dict[str, tuple[str | None, Canary, CanaryStatus, Rendered, datetime]] = {}

    @property
    def root(self) -> Path:
        return self.workspace.root

    # -- observing ---------------------------------------------------------------------------

    def refresh(self, head: str) -> None:
        """Bring the caches to `head`: a full scan the first time, then only what changed."""
        if head != self.last_head:
            self._generated_dirs = None  # a Canary may have come, gone or moved its generated dir
        if self.catalog is None or self.last_head is None:
            self.catalog = discovery.scan(self.root)
            self.renders.clear()
            self.render_errors.clear()
            self.statuses.clear()
            self.inputs.clear()
            self._prerender()
        elif head != self.last_head:
            changed = self.workspace.changed_paths(self.last_head, head)
            for path in sorted(changed):
                if path.endswith(files.YAML_SUFFIXES):
                    discovery.scan_file(self.catalog, self.root, path)
            # A change inside the generated dirs only (gitcanary's own steps) leaves every build's
            # digest as it was (`_build` leaves them out): the builds stay, unread.
            outside = self._outside_generated(changed)
            for key in list(self.renders) + list(self.render_errors):
                inputs = self.inputs.get(key, set())
                if files.affects(inputs, outside):
                    self.renders.pop(key, None)
                    self.render_errors.pop(key, None)
                    loaded = self.catalog.canaries.get(key)
                    spec = loaded.canary.spec if loaded is not None else None
                    if loaded is not None and spec is not None and (spec.ingress_ref or spec.route_ref):
                        # The generated `<ingress>-canary` (or `<route>-<svc>-canary`) copies the user's
                        # Ingress (ApisixRoute): follow its edits in an update commit, as Flagger's
                        # router reconciles it.
                        generated = Layout.of(loaded).generated_dir
                        if files.affects(inputs - {generated}, outside):
                            self.respec.add(key)
            for key in list(self.statuses):
                loaded = self.catalog.canaries.get(key)
                status_file = Layout.of(loaded).status if loaded is not None else ""
                # gitcanary's own step changed it, and it still holds what gitcanary wrote: the cached
                # status is that file's (no re-read, no trust check: nobody else touched it).
                # Only when the cached status is the one written: in PR mode the written one went to
                # a branch, the cache was re-read from main, and a merge then brings the same bytes.
                if loaded is None or (
                    status_file in changed
                    and not (
                        holds_last_write(self.root, status_file)
                        and self.statuses.get(key) is self._written_status.get(key)
                    )
                ):
                    self.statuses.pop(key, None)
            self.respec |= {
                key
                for key, loaded in self.catalog.canaries.items()
                if loaded.source.split("#", 1)[0] in changed
            }
        if head != self.last_head:
            self.render_cache.retain(self.catalog.canaries)
        self.last_head = head
        apply_default_provider(self.catalog.canaries, self.settings.provider)

    def _prerender(self) -> None:
        """Build every app at once on a cold start: kustomize runs in subprocesses, so threads overlap.

        Failures are left for `_step`, which renders again and reports them for that canary alone.
        """
        assert self.catalog is not None
        items = list(self.catalog.canaries.items())
        if len(items) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
            futures = {pool.submit(self._build, key, loaded): key for key, loaded in items}
            for future, key in futures.items():
                error = future.exception()
                try:
                    if error is None:
                        self._remember_render(key, self.catalog.canaries[key], *future.result())
                    elif isinstance(error, GitcanaryError):
                        inputs = build_inputs(self.root, Layout.of(self.catalog.canaries[key]).app_dir)
                        self._remember_render(key, self.catalog.canaries[key], error, inputs)
                except Exception:  # noqa: BLE001, S112 - `_step` renders it again and halts that canary alone
                    continue

    def _build(self, key: str, loaded: LoadedCanary) -> tuple[Rendered, set[str]]:
        """The app's build from the content cache, or from kustomize when an input's content changed.

        Also returns the paths the build reads. Raises what `render_target` raises (never cached here).
        """
        layout = Layout.of(loaded)
        inputs = build_inputs(self.root, layout.app_dir)
        found = digest(self.root, inputs, self._generated(), _render_salt(loaded))
        rendered = self.render_cache.get(key, found)
        if rendered is None:
            rendered = render_target(self.root, loaded)
            self.render_cache.put(key, found, rendered)
        return rendered, inputs

    def _generated(self) -> set[str]:
        """Every canary's generated dir: gitcanary's output, never an input of a build's digest."""
        if self._generated_dirs is None:
            canaries = self.catalog.canaries.values() if self.catalog is not None else ()
            self._generated_dirs = {Layout.of(loaded).generated_dir for loaded in canaries}
        return self._generated_dirs

    def _outside_generated(self, changed: set[str]) -> set[str]:
        """The paths of `changed` outside every canary's generated dir: those a build's digest reads."""
        generated = {path for path in self._generated() if path}
        if not generated:
            return set(changed)
        outside = set()
        for path in changed:
            parts = path.split("/")
            if not any("/".join(parts[:end]) in generated for end in range(1, len(parts) + 1)):
                outside.add(path)
        return outside

    def _remember_render(
        self, key: str, loaded: LoadedCanary, rendered: Rendered | GitcanaryError, inputs: set[str]
    ) -> None:
        if isinstance(rendered, GitcanaryError):
            # A broken app is not rebuilt every tick: only when one of its inputs changes.
            self.render_errors[key] = rendered
        else:
            self.renders[key] = rendered
        layout = Layout.of(loaded)
        self.inputs[key] = inputs | {loaded.source.split("#", 1)[0], layout.generated_dir}

    def _rendered(self, key: str, loaded: LoadedCanary) -> Rendered:
        if key not in self.renders and key not in self.render_errors:
            try:
                rendered: Rendered | GitcanaryError
                rendered, inputs = self._build(key, loaded)
            except GitcanaryError as exc:
                rendered, inputs = exc, build_inputs(self.root, Layout.of(loaded).app_dir)
            self._remember_render(key, loaded, rendered, inputs)
        if key in self.render_errors:
            raise self.render_errors[key]
        return self.renders[key]

    def _status(self, key: str, loaded: LoadedCanary) -> CanaryStatus | None:
        if key not in self.statuses:
            self.statuses[key] = self._trusted(key, loaded, read_status(self.root, Layout.of(loaded)))
        return self.statuses[key]

    def _trusted(self, key: str, loaded: LoadedCanary, status: CanaryStatus | None) -> CanaryStatus | None:
        """The status gitcanary itself last wrote: the status file is its memory, not a control surface.

        A person acts through `gitcanary promote|abort|retry|pause|resume`, which add a request and
        nothing else. Any other change not by gitcanary's identity (a hand edit to `Promoting` or to
        weight 250) is not obeyed: gitcanary's own last status stands and is written back.
        """
        if status is None:
            return None
        layout = Layout.of(loaded)
        last = self.workspace.last_change(layout.status)
        if last is not None and self.publisher is not None and self.publisher.merged_own(last[0]):
            # The forge's commit of gitcanary's own PR (a squash or merge through the API), known
            # from this process's memory or, after a restart, from the forge itself.
            return self._possible(loaded, status, last[0])
        email = self.settings.author_email
        own = self.workspace.last_change(layout.status, email)
        if own is not None and self.settings.signing_key and own[2] in ("N", "B"):
            own = None  # signing is configured: an unsigned or badly signed commit is not gitcanary's
        if own is None:
            if status.fresh:  # `gitcanary init`, run by a person in their checkout
                return self._possible(loaded, status, None)
            raise SpecError(
                layout.status,
                "status",
                f"not written by gitcanary ({email}), nor what `gitcanary init` writes; gitcanary does not "
                "act on a status it did not write: restore or delete the file",
            )
        text = self.workspace.read(layout.status, own[0])
        try:
            mine = CanaryStatus.from_document(yamlio.load(text or "", layout.status))
        except Exception as exc:  # noqa: BLE001 - its own old write unreadable: halt with the reason
            raise SpecError(
                layout.status, "status", f"gitcanary's own last status is unreadable: {exc}"
            ) from exc
        if status.without_request() == mine.without_request():
            # Unchanged, or a request added by `gitcanary promote|abort|retry`. Written with
            # gitcanary's identity is not proof (an author email is easy to forge without signing):
            # a weight or phase the state machine never writes halts this canary.
            return self._possible(loaded, status, own[0])
        mine = self._possible(loaded, mine, own[0])
        foreign, who = (last[0], last[1]) if last is not None else ("?", "?")
        self._foreign[key] = (mine, foreign, who)
        log.warning(
            "%s: %s changed by %s in %s, not by gitcanary: not obeyed, writing back gitcanary's own status",
            key,
            layout.status,
            who,
            foreign[:12],
            extra={"canary": key},
        )
        return mine

    def _possible(self, loaded: LoadedCanary, status: CanaryStatus, written_at: str | None) -> CanaryStatus:
        """`status` when the state machine can have written it for this canary, else a halt.

        The ladder is the Canary's as it is now, or as it was in the commit that wrote the status
        (someone changed `stepWeight` during the rollout: the next step goes on from there).
        """
        found = ladder.problem(loaded.canary, status)
        if found is None:
            return status
        then = self._canary_at(loaded, written_at) if written_at else None
        if then is not None and ladder.problem(then, status) is None:
            return status
        layout = Layout.of(loaded)
        field_name, reason = found
        raise SpecError(
            layout.status,
            field_name,
            f"{reason}; gitcanary never writes this, so it does not act on it: the file was edited or is "
            "corrupt: revert the commit that changed it",
        )

    def _canary_at(self, loaded: LoadedCanary, rev: str) -> Canary | None:
        """The Canary as commit `rev` declared it, None when it cannot be read there."""
        path, _, index = loaded.source.partition("#")
        text = self.workspace.read(path, rev)
        if text is None:
            return None
        try:
            docs = yamlio.load_all(text, path)
            doc = docs[int(index)] if index else docs[0]
            return load_canary(doc, loaded.source).canary
        except Exception:  # noqa: BLE001 - an unreadable old spec explains nothing: the current one decides
            return None

    def _restore(self, key: str, loaded: LoadedCanary) -> str | None:
        """Commit gitcanary's own last status over a foreign edit, naming the edit and its author."""
        mine, foreign, who = self._foreign.pop(key)
        layout = Layout.of(loaded)
        if not write_documents(self.root, layout.status, [mine.to_document(key)]):
            return None
        message = messages.restore(loaded.canary, mine, foreign, who)
        sha = self.workspace.commit(message, [layout.status])
        log.info("%s: %s", key, message.splitlines()[0], extra={"canary": key, "commit": sha})
        return sha

    # -- deciding and doing ------------------------------------------------------------------

    def _analyze(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> tuple[CheckResult, ...]:
        if self.analyzer is not None:
            return self.analyzer(canary, templates, default_address=self.settings.prometheus, now=now)
        from gitcanary.analysis.judges import analyze

        checks = analyze(
            canary,
            templates,
            default_address=self.settings.prometheus,
            now=now,
            env=self._provider_env(),
            pool=self._metrics_pool(),
            judge=self.settings.judge,
            status=status,
        )
        return checks

    def _beside_after(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        checks: tuple[CheckResult, ...],
    ) -> None:
        """Measured once the checks are in, within the same deadline (one worker per canary: no race)."""
        self._measured_beside[canary.key] = (now, self._measure_beside(canary, templates, now, checks))

    def _measure_beside(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        checks: tuple[CheckResult, ...],
    ) -> dict[str, str]:
        """Request counts of both sides and the primary's values, for the step's trailers
        (analysis/beside.py); none with an injected analyzer, which measures nothing real."""
        if self.analyzer is not None:
            return {}
        from gitcanary.analysis import beside
        from gitcanary.analysis.run import run_analysis

        def analyze(copy: Canary) -> tuple[CheckResult, ...]:
            return run_analysis(
                copy,
                templates,
                default_address=self.settings.prometheus,
                now=now,
                env=self._provider_env(),
                pool=self._metrics_pool(),
            )

        return beside.beside_trailers(canary, checks, analyze)

    def _checks(
        self, key: str, canary: Canary, now: datetime, status: CanaryStatus | None, obs: Observation
    ) -> tuple[CheckResult, ...]:
        """The checks `decide` asked for and the analysis sent ahead did not answer: sent now."""
        assert self.catalog is not None
        if self._fast_lane_on:
            raise _AnalysisDue(key)
        if self._analyses is not None:
            # Not predicted (a status re-read): sent now, with its deadline.
            measured = self._send_now(key, canary, now, status, obs)
            if measured.checks is not None:
                return measured.checks
            return deadline_checks(canary, measured.budget)
        checks = self._analyze(canary, self.catalog.templates, now, status)
        self._beside_after(canary, self.catalog.templates, now, checks)
        return checks

    def _send_now(
        self, key: str, canary: Canary, now: datetime, status: CanaryStatus | None, obs: Observation
    ) -> Measured:
        """An analysis not sent ahead, from `obs` on: sent now, taken within its deadline."""
        assert self.catalog is not None and self._analyses is not None
        templates = self.catalog.templates
        self._analyses.send(key, canary, templates, now, status, obs, self._budget(canary))
        measured = self._analyses.take(key, canary, templates, now, status, obs.last_attempt)
        assert measured is not None
        return measured

    def _hooks(
        self,
        key: str,
        canary: Canary,
        status: CanaryStatus | None,
        obs: Observation,
        kinds: tuple[str, ...],
        measured: Measured | None,
    ) -> dict[str, HookResult]:
        """The webhook types `decide` asked for: as the analysis answered them (failed by its
        deadline when it did not), else asked now."""
        found = {kind: measured.hooks[kind] for kind in kinds if measured and kind in measured.hooks}
        missing = tuple(kind for kind in kinds if kind not in found)
        if missing and measured is not None and measured.overdue:
            found |= {kind: deadline_hook(canary, kind, measured) for kind in missing}
        elif missing and self._fast_lane_on:
            raise _AnalysisDue(key)
        elif missing and self._analyses is not None:
            now_measured = self._send_now(key, canary, obs.now, status, obs)
            found |= {
                kind: now_measured.hooks.get(kind) or deadline_hook(canary, kind, now_measured)
                for kind in missing
            }
        elif missing:
            found |= self.hooks.ask(key, canary, status, obs, missing)
        self.hooks.record(key, found)
        return found

    def _measure(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
        obs: Observation,
        into: Measured,
    ) -> None:
        """One canary's analysis, in its worker: the webhook types `decide` asks for, then its
        checks, each answer read by the (pure) core before the next question, as `observe` does."""
        key = canary.key

        def asking(kind: str, name: str) -> None:
            into.asking = (kind, name)

        decision = decide(canary, status, obs)
        for _ in range(len(gates.HOOK_TYPES) + 1):
            if decision.action is not Action.MEASURE:
                return
            if decision.hooks:
                deadline = ANALYSIS_DEADLINE.get()  # set by the worker (service/analyses.py)
                found = self.hooks.ask(key, canary, status, obs, decision.hooks, asking, deadline)
                into.hooks.update(found)
                obs = replace(obs, hooks={**obs.hooks, **found})
            else:
                checks = self._analyze(canary, templates, now, status)
                into.checks = checks
                with contextlib.suppress(Exception):  # beside measurements are best effort
                    self._beside_after(canary, templates, now, checks)
                return
            decision = decide(canary, status, obs)

    def _budget(self, canary: Canary) -> float:
        """Seconds this canary's analysis may take: `analysis_budget` of the poll interval or of its
        own analysis interval, whichever is shorter, and at least MIN_ANALYSIS_DEADLINE. So a tick
        ends within about one poll interval (of 10 s or more) whatever its canaries' metrics do,
        and the next one starts on time."""
        own = canary.spec.analysis.interval_seconds  # validated when the Canary was read
        share = self.settings.analysis_budget * min(self.settings.poll_interval, own)
        return max(MIN_ANALYSIS_DEADLINE, share)

    def _still_quiet(self, key: str, loaded: LoadedCanary, now: datetime) -> bool:
        """Would `decide` repeat this canary's last wait? Yes while the clock is before the instant it
        named and the objects it read are the same ones (a new commit, status, build or manifest
        replaces them). Never with a cluster observer or a forge, whose answers change on their own."""
        quiet = self._quiet.get(key)
        if quiet is None or self.observer is not None or self.publisher is not None:
            return False
        head, canary, status, rendered, until = quiet
        return (
            now < until
            and head == self.last_head
            and canary is loaded.canary
            and self.statuses.get(key) is status
            and self.renders.get(key) is rendered
            and key not in self.respec
            and key not in self._foreign
            and key in self.reports
        )

    def _due_analysis(self, key: str, now: datetime) -> tuple[CanaryStatus | None, Observation] | None:
        """Will `observe` ask this canary's analysis (its webhooks, its checks)? Its status and
        observation if so. No side effects beyond the caches `observe` fills anyway: no webhook is
        called, nothing is written."""
        assert self.catalog is not None
        loaded = self.catalog.canaries[key]
        if self._still_quiet(key, loaded, now):
            return None
        status = self._status(key, loaded)
        if key in self._foreign:
            return None
        rendered = self._rendered(key, loaded)
        obs = self._observation(key, loaded, status, rendered, now)
        if decide(loaded.canary, status, obs).action is not Action.MEASURE:
            return None
        return status, obs

    def _send_analyses(self, now: datetime) -> None:
        """Send every analysis this tick will ask for, `analysis_concurrency` at a time."""
        assert self.catalog is not None
        self._analyses = None
        if self.settings.analysis_concurrency <= 1:
            return  # one at a time: each inline, when `observe` asks
        due: list[tuple[str, Canary, CanaryStatus | None, Observation]] = []
        for key in sorted(self.catalog.canaries):
            try:
                found = self._due_analysis(key, now)
            except Exception:  # noqa: BLE001, S112 - the pass meets the same error and halts this canary alone
                continue
            if found is not None:
                due.append((key, self.catalog.canaries[key].canary, *found))
        if not due:
            return
        if self.analyzer is None:
            self._metrics_pool()  # built here, on the tick's thread: the workers share it
        templates = dict(self.catalog.templates)  # the fast lane may re-scan the catalog meanwhile
        self._analyses = Analyses(self._measure, self.settings.analysis_concurrency, self._stir)
        for key, canary, status, obs in due:
            self._analyses.send(key, canary, templates, now, status, obs, self._budget(canary))

    def _provider_env(self) -> ProviderEnv:
        """MetricTemplate secretRefs resolve where AlertProvider ones do; keptn and externalmetrics
        read through the observer's Kubernetes client."""
        from gitcanary.analysis.providers import ProviderEnv
        from gitcanary.service.credentials import credential_endpoints

        secrets = Secrets(self.settings.secrets_dir) if self.settings.secrets_dir else Secrets()
        kube = self.observer.api if self.observer is not None else None
        return ProviderEnv(secrets=secrets, kube=kube, endpoints=credential_endpoints(self.settings))

    def _metrics_pool(self) -> HttpPool:
        """One pool of metrics HTTP connections for the reconciler's life."""
        from gitcanary.analysis.providers import HttpPool

        if self._pool is None:
            self._pool = HttpPool()
        return self._pool

    def _observation(
        self, key: str, loaded: LoadedCanary, status: CanaryStatus | None, rendered: Rendered, now: datetime
    ) -> Observation:
        """What the edges see of one canary before any webhook or analysis is asked."""
        live = status is None or (now - status.last_transition_time).total_seconds() >= self.settings.settle
        obs = Observation(
            now,
            rendered.spec_hash,
            rendered.revision,
            live=live,
            last_attempt=self.hooks.last_attempt(key, status),
        )
        if (
            status is not None
            and rendered.revision in status.quarantined
            and rendered.spec_hash not in (status.last_applied_spec, status.last_promoted_spec)
        ):
            # Only a new revision asks who pushed it: a held one costs nothing per tick.
            obs = replace(obs, automated=self._pushed_by_automation(key))
        if self.publisher is not None:
            obs = replace(obs, promotion_gate=self.publisher.gate_state(key))
        if self.observer is not None and status is not None and status.phase not in IDLE_PHASES:
            obs = replace(obs, cluster=self._observe_cluster(key, loaded, now))
        return obs

    def observe(self, key: str, now: datetime) -> tuple[Decision, CanaryStatus | None, Rendered]:
        assert self.catalog is not None
        loaded = self.catalog.canaries[key]
        status = self._status(key, loaded)
        rendered = self._rendered(key, loaded)
        obs = self._observation(key, loaded, status, rendered, now)
        self.hooks.begin(key)
        decision = decide(loaded.canary, status, obs)
        measured = None
        if decision.action is Action.MEASURE and self._analyses is not None:
            # Its analysis (webhooks and checks), sent ahead and answered in its own worker.
            templates = self.catalog.templates
            measured = self._analyses.take(key, loaded.canary, templates, now, status, obs.last_attempt)
        # Each MEASURE answers what the core asked for: webhook types, or else the metric checks.
        for _ in range(len(gates.HOOK_TYPES) + 1):
            if decision.action is not Action.MEASURE:
                break
            if decision.hooks:
                found = self._hooks(key, loaded.canary, status, obs, decision.hooks, measured)
                obs = replace(obs, hooks={**obs.hooks, **found})
            else:
                if measured is not None and measured.checks is not None:
                    checks = measured.checks
                elif measured is not None and measured.overdue:
                    checks = deadline_checks(loaded.canary, measured.budget)
                else:
                    checks = self._checks(key, loaded.canary, now, status, obs)
                obs = replace(obs, checks=checks)
                at, trailers = self._measured_beside.pop(key, (None, {}))
                self._beside[key] = trailers if at == now else {}
            decision = decide(loaded.canary, status, obs)
        if obs.checks is not None:
            decision = replace(decision, checks=obs.checks)  # for the Gitcanary-Check trailers
        self.hooks.observed(key, status, obs, decision)
        return decision, status, rendered

    def _pushed_by_automation(self, key: str) -> bool:
        """Was the last change to this canary's inputs (gitcanary's own aside) an image automation's?"""
        authors = set(self.settings.automation_authors) | image_policies.automation_authors(self.root)
        email = last_author_email(self.workspace, self.inputs.get(key, set()), self.settings.author_email)
        return email is not None and email in authors

    def _observe_cluster(self, key: str, loaded: LoadedCanary, now: datetime) -> ClusterObservation:
        """Is the last commit for this canary (its app inputs or generated dir) live in the cluster?"""
        from gitcanary.cluster import commits

        assert self.observer is not None
        head = self.workspace.head()
        cached = self._last_commits.get(key)
        if cached is None or cached[0] != head:
            inputs = self.inputs.get(key) or commits.canary_inputs(self.root, loaded)
            cached = self._last_commits[key] = (
                head,
                commits.last_commit(self.workspace.repo, head, inputs, loaded),
            )
        seen = self.observer.observe(loaded.canary, commits.directories(loaded), cached[1], now)
        log.debug("%s: cluster: %s", key, seen)
        return seen

    def _step(self, key: str, now: datetime) -> str | None:
        """Decide for one canary and commit the transition; the new commit, or None."""
        assert self.catalog is not None
        loaded = self.catalog.canaries[key]
        if self._still_quiet(key, loaded, now):
            return None  # the same wait as last tick: its report stands
        self._quiet.pop(key, None)
        report = CanaryReport(key, loaded.source, warnings=loaded.warnings)
        before = self.reports.get(key)
        self.reports[key] = report
        report.status = self._status(key, loaded)
        if key in self._foreign:
            return self._restore(key, loaded)  # this tick's step for it; the next one decides from there
        router = router_for(loaded.canary, loaded.source)
        # A step whose PR is still open is not done: drive the PR, decide nothing but a rollback.
        hold = self.publisher.pending(loaded, self._status(key, loaded)) if self.publisher else None
        decision, status, rendered = self.observe(key, now)
        report.status = status
        report.warnings = (*report.warnings, *rendered.warnings)  # e.g. a SealedSecret left shared
        if hold and decision.action is not Action.ROLLBACK:
            report.waiting = hold
            return None
        respec = key in self.respec
        self.respec.discard(key)
        if decision.status is None:
            if decision.quiet_until is not None and status is not None and not respec:
                self._quiet[key] = (self.last_head, loaded.canary, status, rendered, decision.quiet_until)
            report.waiting = decision.reason
            if before is None or before.waiting != report.waiting:  # once per change, not every tick
                log.info("%s: %s", key, report.waiting, extra={"canary": key})
            if respec and status is not None:
                return self._update(loaded, FileWriter(self.root, loaded, router), status, rendered)
            return None
        writer = FileWriter(self.root, loaded, router)
        new_status = decision.status
        notes: list[str] = []
        if decision.revert_target:
            notes = writer.quarantine(rendered) + writer.revert_target(rendered)
            reverted, _ = self._build(key, loaded)  # the primary's images again: usually a cached build
            if reverted.spec_hash == new_status.last_promoted_spec:
                # Git says the primary's revision again; a later bump, even back to the failed
                # revision, is a new request to roll out.
                new_status = new_status.model_copy(update={"last_applied_spec": reverted.spec_hash})
            else:
                notes.append(
                    "the target still differs from the primary beyond images; it stays at 0 replicas"
                )
        changed = writer.apply(new_status, rendered, decision.copy_to_primary)
        extra: dict[str, object] = {}
        if decision.action in (Action.START, Action.RESTART):
            notes += self._bump_notes(loaded, rendered)
            extra = bumped_by(self.workspace, self.inputs.get(key, set()), self.settings.author_email)
        if writer.hook_note:
            notes.append(writer.hook_note)
        measured = self._beside.pop(key, {})
        if decision.checks:
            extra = {**extra, **measured}
        decision = replace(decision, status=new_status)
        message = messages.compose(loaded.canary, status, decision, notes, extra)
        sha = self.workspace.commit(message, changed)
        log.info("%s: %s", key, message.splitlines()[0], extra={"canary": key, "commit": sha})
        self._transitions.append(self.hooks.transition(key, loaded.canary, status, decision, sha, message))
        self.statuses[key] = self._written_status[key] = new_status
        report.status = new_status
        if self._outside_generated(set(changed)):
            self.renders.pop(key, None)  # e.g. the target's `replicas:`: build it again (or from the cache)
        return sha

    def _update(
        self, loaded: LoadedCanary, writer: FileWriter, status: CanaryStatus, rendered: Rendered
    ) -> str | None:
        """The canary's manifest changed with no transition due: bring its generated objects in line.

        Flagger reconciles its routing objects on every run; gitcanary does it in Git, once, when
        the Canary changes (a new host, gateway, retry policy, port).
        """
        changed = writer.apply(status, rendered, copy_to_primary=False)
        if not changed:
            return None
        message = messages.update(loaded.canary, status, changed)
        sha = self.workspace.commit(message, changed)
        log.info(
            "%s: %s",
            loaded.canary.key,
            message.splitlines()[0],
            extra={"canary": loaded.canary.key, "commit": sha},
        )
        return sha

    def _bump_notes(self, loaded: LoadedCanary, rendered: Rendered) -> list[str]:
        notes = []
        for container, old, new, source in changed_images(self.root, Layout.of(loaded), rendered):
            where = f" ({source.path} {source.field})" if source else ""
            notes.append(f"image {container}: {old} -> {new}{where}")
        notes += changed_configs(self.root, Layout.of(loaded), rendered)
        return notes or ["pod template changed (no image change)"]

    def _decide_all(self, now: datetime) -> list[str]:
        """Send the tick's analyses, then decide and commit for every canary as soon as it can be
        decided: first, in a stable order, those that wait for no analysis or whose analysis is in;
        then each other one when its analysis answers or its deadline passes. Before each wait,
        what was committed is pushed (`_land_so_far`), so no canary's commit waits for another's
        analysis. A push webhook meanwhile is served by `_fast_lane`."""
        assert self.catalog is not None
        commits = self._pass_commits = []
        self._moved = set()
        self._transitions = []
        self._respec_before = set(self.respec)
        if self.observer is not None:
            self.observer.refresh()  # one list of Kustomizations/GitRepos per tick, fresh each tick
        self._send_analyses(now)
        stepped: set[str] = set()
        left = sorted(self.catalog.canaries)
        landing = self.publisher is None  # pull-request mode publishes once, at the tick's end
        try:
            while left:
                if self._woken.is_set():
                    stepped |= self._fast_lane()
                waiting = []
                for key in left:
                    if self._woken.is_set():
                        stepped |= self._fast_lane()
                    if key in stepped or key not in self.catalog.canaries:
                        continue  # the fast lane stepped it at a later instant; the next tick goes on
                    if self._analyses is not None and not self._analyses.ready(key):
                        waiting.append(key)  # its own analysis is still running: decided when in
                        continue
                    sha = self._step_or_halt(key, now)
                    if sha is not None:
                        commits.append(sha)
                        self._moved.add(key)
                left = waiting
                if not left:
                    break
                assert self._analyses is not None
                if landing and commits:
                    # Land what is decided before waiting for the slow: a rollback due now does not
                    # wait for another canary's metrics. Replayed on a push that changed none of
                    # its inputs; else it stays for the tick's own push and its retries.
                    ours = self.workspace.head()
                    landing = self._land_so_far()
                    if landing and self.workspace.head() != ours:
                        # Replayed on someone's push: the fast lane reads it (the caches, and the
                        # canaries it changed) before anything else is decided.
                        self._woken.set()
                self._analyses.wait_or(self._woken.is_set, left)
        finally:
            if self._analyses is not None:
                self._analyses.close()
                self._analyses = None
        return commits

    def _step_or_halt(self, key: str, now: datetime) -> str | None:
        assert self.catalog is not None
        try:
            return self._step(key, now)
        except _AnalysisDue:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure, expected or not, halts this canary alone
            # This canary halts with its reason; the others go on (a rollback of another canary
            # is never held back by this one). Drop its half-written files.
            self.workspace.repo.git.reset("--hard", "HEAD")
            self.workspace.repo.git.clean("-fdq")
            self.statuses.pop(key, None)
            report = self.reports.setdefault(key, CanaryReport(key, self.catalog.canaries[key].source))
            report.error = (
                str(exc) if isinstance(exc, GitcanaryError) else f"unexpected {type(exc).__name__}: {exc}"
            )
            log.error(
                "%s: %s",
                key,
                report.error,
                extra={"canary": key},
                exc_info=not isinstance(exc, GitcanaryError),
            )
            return None

    def _fast_lane(self) -> set[str]:
        """A push webhook arrived while the tick waits for its analyses: step what the push changed.

        What this attempt committed so far is pushed first (`_land_so_far`). Then the branch is
        fetched, the canaries whose inputs, manifest or status changed are stepped at once, and
        their commits pushed. Those that need an analysis themselves are left to the pass. Returns
        the canaries it stepped; the pass skips them (their step is newer). Git stays single-writer:
        this runs on the tick's thread, between two canaries of the pass or while it waits for the
        analyses.
        """
        self._woken.clear()
        if self.publisher is not None or self.catalog is None:
            return set()  # pull-request mode publishes once per tick; the next tick steps the bump
        moved = set(self._moved)  # stepped by this attempt already: their inputs changed by us
        if self.workspace.head() != self._base and not self._land_so_far():
            return set()  # the push moved what they were decided from: the tick's retry sorts it out
        known = set(self.catalog.canaries)
        rendered = set(self.renders) | set(self.render_errors)
        statuses = set(self.statuses)
        head = self.workspace.sync(known_clean=True)
        if head == self.last_head:
            return set()
        self.refresh(head)
        self._base = head
        changed = {
            key
            for key in self.catalog.canaries
            if key not in known
            or key in self.respec
            or (key in rendered and key not in self.renders and key not in self.render_errors)
            or (key in statuses and key not in self.statuses)
        } - moved
        now = self.clock()
        commits, stepped = [], set()
        self._fast_lane_on = True
        try:
            for key in sorted(changed):
                try:
                    sha = self._step_or_halt(key, now)
                except _AnalysisDue:
                    continue
                stepped.add(key)
                if sha is not None:
                    commits.append(sha)
                    self._moved.add(key)
        finally:
            self._fast_lane_on = False
        if not commits:
            return stepped
        try:
            self.workspace.push()
        except PushRejected:
            # The branch moved again: drop these commits; the pass steps these canaries from the
            # branch as it now is, and its own push goes through the usual retries.
            self._forget()
            self._moved, self._transitions = set(), []
            self._base = self.workspace.sync()
            self.refresh(self._base)
            return set()
        log.info("fast lane: pushed %d commit(s) for %s", len(commits), ", ".join(sorted(stepped)))
        self.refresh(self.workspace.head())
        self._announce(self._landed(head))
        self._fast_commits += commits
        self._base = self.workspace.head()
        self._moved, self._transitions = set(), []
        self._respec_before = set(self.respec)
        return stepped

    def _land_so_far(self) -> bool:
        """Push the commits this attempt made before the webhook came, replayed on the push that
        woke it when that changed nothing they were decided from. False when they cannot land."""
        base = self._base
        try:
            self.workspace.push()
        except PushRejected:
            remote = self.workspace.fetch()
            incoming = self.workspace.changed_paths(base, remote)
            ours: set[str] = set()
            for sha in self.workspace.repo.git.rev_list(f"{base}..HEAD").split():
                ours |= self.workspace.changed_paths(f"{sha}~1", sha)
            watched = set(ours)
            for key in self._moved:
                watched |= self.inputs.get(key, set())
            if files.affects(watched, incoming) or ours & incoming:
                return False
            if not self.workspace.rebase(self.workspace.remote_ref, since=base):
                return False
            try:
                self.workspace.push()
            except PushRejected:
                return False
        landed = self._landed(base)  # the caches follow in `_fast_lane`'s refresh
        self._announce(landed)
        self._fast_commits += landed
        self._pass_commits.clear()  # landed, under the ids `landed` gives them
        self._base = self.workspace.head()
        self._moved, self._transitions = set(), []
        self._respec_before = set(self.respec)
        return True

    def tick(self) -> TickResult:
        """One reconciliation: fetch, decide for every canary, commit, push (with rebase and retry)."""
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.push_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            retry=retry_if_exception_type(PushRejected),
            sleep=self.sleep,
        )
        self._fast_commits = []
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt()
        except RetryError as exc:
            raise GitError(
                f"could not push to {self.settings.repo} after {self.settings.push_attempts} "
                "attempts: the branch keeps moving"
            ) from exc
        raise AssertionError("unreachable")

    def _attempt(self) -> TickResult:
        self._woken.clear()  # a push before this fetch is seen by it
        head = self._base = self.workspace.sync(known_clean=self._clean)
        self._clean = False  # until this attempt ends with everything committed or reset
        self.refresh(head)
        assert self.catalog is not None
        self.reports = {k: v for k, v in self.reports.items() if k in self.catalog.canaries}
        self._quiet = {k: v for k, v in self._quiet.items() if k in self.catalog.canaries}
        if self.publisher is not None:
            self.publisher.begin_tick(self.catalog.canaries, self.catalog.templates)
        commits = self._decide_all(self.clock())
        self.workspace.flush()  # the commits were written in-process: git's index catches up once
        head = self._base  # past what the fast lane pushed, if it ran
        result = TickResult(
            head,
            [*self._fast_commits, *commits],
            dict(self.reports),
            {src: str(err) for src, err in self.catalog.errors.items()},
        )
        if self.publisher is not None:
            for key, why in self.publisher.waiting.items():
                if key in self.reports:
                    self.reports[key].waiting = why
        if commits and self.publisher is not None:
            try:
                published = self.publisher.publish(head, commits)
            except GitcanaryError:
                self._forget()  # nothing of this attempt is known to have landed
                raise
            if published:
                return self._published(result)
        if not commits:
            self._clean = True
            return result
        try:
            self.workspace.push()
        except PushRejected:
            if self._rebase_if_unrelated(head):
                self.workspace.push()  # a second rejection goes round the retry loop
            else:
                raise
        self.workspace.compact()  # the commits landed: pack their objects (deltas, bounded growth)
        self.refresh(self.workspace.head())
        result.head = self.workspace.head()
        self._clean = True
        self._after_landing()
        self._announce(self._landed(head))
        return result

    def _after_landing(self) -> None:
        """Let the forge edge act on what just landed (a rollout that started opens its gate PR now)."""
        if self.publisher is None or self.catalog is None:
            return
        landed = {
            key: (self.catalog.canaries[key], self._status(key, self.catalog.canaries[key]))
            for key in self._moved
            if key in self.catalog.canaries
        }
        try:
            self.publisher.after_landing(landed)
        except GitcanaryError as exc:  # the next tick's pending() does the same; nothing is lost
            log.warning("after pushing: %s", exc)

    def _landed(self, base: str) -> list[str]:
        """gitcanary's commits from `base` to HEAD as they landed (a rebase gave them new ids)."""
        return self.workspace.repo.git.rev_list(
            "--reverse", "--grep=^Gitcanary-Canary:", f"{base}..HEAD"
        ).split()

    def _announce(self, landed: list[str]) -> None:
        """Webhooks and notifications for this attempt's transitions that are now on the branch."""
        if not self._transitions:
            return
        messages_landed = {str(self.workspace.repo.commit(sha).message).strip(): sha for sha in landed}
        providers = self.catalog.providers if self.catalog else {}
        pulls = self.publisher.pull_urls if self.publisher is not None else None
        self.hooks.announce(self._transitions, providers, messages_landed, pulls)

    def _published(self, result: TickResult) -> TickResult:
        """Some commits went to PRs, not the branch: re-read the branch; what did not land is not known."""
        assert self.publisher is not None
        remote = self.workspace.fetch()
        # Report what landed on the branch (directly, or in PRs merged now), not what went to open PRs.
        landed = self.workspace.repo.git.rev_list(
            "--reverse", "--grep=^Gitcanary-Canary:", f"{result.head}..{remote}"
        )
        result.commits = landed.split()
        self.workspace.reset(remote)
        for key in self._moved:
            self.statuses.pop(key, None)
            self.renders.pop(key, None)
            self.render_errors.pop(key, None)
        self.refresh(remote)
        assert self.catalog is not None
        for key in self._moved:
            if key in self.reports and key in self.catalog.canaries:
                self.reports[key].status = self._status(key, self.catalog.canaries[key])
        for key, why in self.publisher.waiting.items():
            if key in self.reports:
                self.reports[key].waiting = why
        result.head = remote
        self._clean = True
        self._after_landing()
        self._announce(result.commits)
        return result

    def _rebase_if_unrelated(self, base: str) -> bool:
        """Replay our commits on the remote when nobody touched what they were decided from.

        If someone changed a file our commits change, or an input of a canary we moved, the
        decisions may be stale: drop them (the retry re-reads and decides again).
        """
        ours = set()
        for sha in self.workspace.repo.git.rev_list(f"{base}..HEAD").split():  # this attempt's commits
            ours |= self.workspace.changed_paths(f"{sha}~1", sha)
        remote = self.workspace.fetch()
        incoming = self.workspace.changed_paths(base, remote)
        watched = set(ours)
        for key, inputs in self.inputs.items():
            if self.catalog and key in self.catalog.canaries:
                watched |= inputs
        if files.affects(watched, incoming) or ours & incoming:
            log.info("remote changed inputs of this tick's decisions; deciding again")
            self._forget()
            return False
        # Only what this attempt committed on top of `base`: if a person force-pushed commits away
        # (a leaked secret), they stay away.
        if not self.workspace.rebase(self.workspace.remote_ref, since=base):
            self._forget()
            return False
        return True

    def _forget(self) -> None:
        """Drop what our discarded commits put in the caches; the next attempt re-reads those from Git.

        `last_head` stays the commit this attempt started from, so the retry diffs from there:
        incremental, however large the repository.
        """
        for key in self._moved:
            self.statuses.pop(key, None)
            self.renders.pop(key, None)
            self.render_errors.pop(key, None)
        self.respec |= self._respec_before

    # -- long-running ------------------------------------------------------------------------

    def wake(self) -> None:
        """Tick as soon as possible (a push webhook arrived); polling goes on as before.

        Safe from any thread. A tick waiting for its analyses steps what the push changed at once
        (`_fast_lane`); any other tick already running is not interrupted, and one more follows it.
        """
        self._woken.set()
        self._stir.set()
        if self._wake is not None:
            self._wake()

    def stop(self) -> None:
        """End `run_forever` (from any thread); a tick under way finishes first."""
        if self._stop is not None:
            self._stop()

    def schedule_wakes(self, schedule: Callable[[], None] | None) -> None:
        """Let another scheduler than `run_forever`'s run the tick a `wake` asks for (replicas.py)."""
        self._wake = schedule

    def woken(self) -> bool:
        """A wake came that no tick has served yet: its scheduler should tick again at once."""
        return self._woken.is_set()

    def run_forever(self, on_tick: Callable[[TickResult], Any] | None = None) -> None:
        """Tick every `poll_interval` seconds on an APScheduler; one tick at a time, none queued up."""
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler()
        interval = self.settings.poll_interval
        failures = 0

        def job() -> None:
            nonlocal failures
            # A wake during a tick that the tick did not serve is served now, and so is a tick that
            # took a whole interval: the scheduler drops a run that falls due while this job is
            # still running, which would leave every canary a second interval behind.
            while True:
                started = time.monotonic()
                try:
                    result = self.tick()
                except GitcanaryError as exc:
                    # Retried with backoff (a clone or fetch the remote refused, DNS, credentials
                    # not mounted yet), never slower than polling: the first tries come sooner.
                    failures += 1
                    delay = retry_delay(failures, interval)
                    log.error("tick failed (next try in %gs): %s", delay, exc)
                    if delay < interval:
                        at = datetime.now().astimezone() + timedelta(seconds=delay)
                        scheduler.modify_job("tick", next_run_time=at)
                    return
                failures = 0
                if on_tick is not None:
                    on_tick(result)
                if not self._woken.is_set() and time.monotonic() - started < interval:
                    return

        scheduler.add_job(
            job,
            "interval",
            id="tick",
            seconds=interval,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now().astimezone(),
        )
        self._wake = lambda: scheduler.modify_job("tick", next_run_time=datetime.now().astimezone())
        self._stop = lambda: scheduler.shutdown(wait=False)
        try:
            scheduler.start()
        finally:
            self._wake = self._stop = None
            # Ctrl-C or SIGTERM lands in the main thread while a tick may be running on the
            # scheduler's worker: let it finish before the caller cleans up (the interpreter would
            # join that thread at exit anyway, but after the caller's `finally` had already run).
            if scheduler.running:
                scheduler.shutdown(wait=True)
