"""`gitcanary demo --repo PATH`: the demo's SIMULATED cluster and traffic against your own repository.

Your repository's committed tree (its branch, never its work tree) is cloned into the demo's
directory; nothing is written back to it. One canary of it (`--canary`, or the only one) is taken
as it is (its provider, routing, steps, thresholds, MetricTemplates and their queries) with only
what a simulation needs changed, each change listed in the seed commit:

- the analysis runs every `--speed` seconds and each metric's range is two of them;
- every MetricTemplate's address is the SIMULATED Prometheus (of any provider type it becomes
  `prometheus`: the query text is kept and answered by the simulator);
- the canary's webhooks are removed: nothing here serves them (the demo says which they were).

Then the real reconciler initializes the canary, one healthy release (a new tag whose SIMULATED pods
answer well) is promoted, and one bad release (pods answering 8% 5xx) is rolled back, each step
a commit printed as it lands. The SIMULATED Prometheus answers the builtins from the traffic, and
each template query (recognized by rendering it as gitcanary does) with a value inside its
`thresholdRange` while the canary runs the healthy tag, outside it while it runs the bad one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from gitcanary.analysis.templates import QueryModel, render_query
from gitcanary.demo._git import DemoError, git
from gitcanary.demo.runner import (
    MARKER,
    PERSON,
    Demo,
    DemoPaths,
    format_duration,
)
from gitcanary.demo.simulator import HEALTHY, LABEL, VersionProfile
from gitcanary.manifests import detect, discovery, render, yamlio
from gitcanary.manifests.generate import Layout
from gitcanary.manifests.target import render_target
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec import canary_ref
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.models import Canary, CanaryMetric, MetricTemplate
from gitcanary.spec.status import Phase

ROUTED = ("istio", "gatewayapi", "linkerd", "smi", "nginx")  # what the simulator routes by weight
BAD_PROFILE = VersionProfile(error_ratio=0.08, p99_ms=131.0)


@dataclass(frozen=True)
class Threshold:
    low: float | None
    high: float | None

    def healthy(self) -> float:
        if self.low is not None and self.high is not None:
            return (self.low + self.high) / 2
        if self.low is not None:
            return self.low + (abs(self.low) * 0.005 or 1.0)
        assert self.high is not None
        return self.high / 2 if self.high > 0 else self.high - 1.0

    def failing(self) -> float:
        if self.high is not None:
            return self.high + (abs(self.high) or 1.0)
        assert self.low is not None
        return self.low / 2 if self.low > 0 else self.low - 1.0


def threshold_of(metric: CanaryMetric) -> Threshold:
    if metric.threshold_range is not None:
        return Threshold(metric.threshold_range.min, metric.threshold_range.max)
    return Threshold(None, metric.threshold if metric.threshold is not None else 0.0)


def template_queries(
    canary: Canary, templates: dict[str, MetricTemplate], window: str
) -> dict[str, tuple[str, Threshold]]:
    """Each template query as gitcanary will send it (rendered the same way) -> (metric, bounds)."""
    found: dict[str, tuple[str, Threshold]] = {}
    for metric in canary.spec.analysis.metrics:
        if metric.template_ref is None:
            continue
        key = f"{metric.template_ref.namespace or canary.namespace}/{metric.template_ref.name}"
        template = templates.get(key)
        if template is None:
            continue
        model = QueryModel.for_canary(canary, window, metric.template_variables)
        text = render_query(template.spec.query, model)
        found.setdefault(" ".join(text.split()), (metric.name, threshold_of(metric)))
    return found


def choose(root: Path, wanted: str | None) -> LoadedCanary:
    catalog = discovery.scan(root)
    if not catalog.canaries:
        problems = "; ".join(f"{src}: {err}" for src, err in sorted(catalog.errors.items()))
        raise DemoError(f"no Canary in the repository{': ' + problems if problems else ''}")
    if wanted is None:
        if len(catalog.canaries) > 1:
            raise DemoError(
                f"the repository has {len(catalog.canaries)} canaries "
                f"({', '.join(sorted(catalog.canaries))}): choose one with --canary NAMESPACE/NAME"
            )
        return next(iter(catalog.canaries.values()))
    try:
        return catalog.canaries[canary_ref.resolve(canary_ref.parse(wanted), catalog.canaries)]
    except canary_ref.CanaryRefError as exc:
        raise DemoError(str(exc)) from None


class OwnRepoDemo(Demo):
    """The demo's story told with the user's canary instead of the bundled example."""

    def __init__(
        self,
        paths: DemoPaths,
        source: Path,
        canary: str | None,
        interval: float,
        console: Console,
        branch: str = "main",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(paths, interval, console, sleep=sleep)
        self.source = source
        self.wanted = canary
        self.branch = branch
        self.key = ""
        self.target = ""  # the canary's target Deployment: the workload template queries are about
        self.container = ""
        self.image = ""
        self.first = ""
        self.good = ""
        self.bad = ""
        self.location: detect.ImageSource | None = None
        self.queries: dict[str, tuple[str, Threshold]] = {}

    # -- setup -------------------------------------------------------------------------------

    def setup(self, prometheus: str) -> None:
        paths = self.paths
        git("clone", "-q", "--bare", "--branch", self.branch, str(self.source), str(paths.remote))
        git("symbolic-ref", "HEAD", f"refs/heads/{self.branch}", cwd=paths.remote)
        (paths.remote / MARKER).write_text("created by `gitcanary demo --repo`\n")
        git("clone", "-q", "--branch", self.branch, str(paths.remote), str(paths.directory))
        root = paths.directory
        loaded = choose(root, self.wanted)
        canary = loaded.canary
        self.key = canary.key
        self.target = canary.spec.target_ref.name
        family = canary.provider.split(":", 1)[0]
        if family not in ROUTED:
            raise DemoError(
                f"{self.key}: provider {canary.provider}: the SIMULATED cluster routes traffic by weight for "
                f"{', '.join(ROUTED)} only"
            )
        target = render_target(root, loaded).target
        images = render.container_images(target)
        if not images:
            raise DemoError(f"{self.key}: its target has no container image to release")
        self.container, self.image = next(iter(images.items()))
        self.location = detect.locate(root, Layout.of(loaded).app_dir, self.container, self.image)
        if self.location is None:
            raise DemoError(
                f"{self.key}: cannot find where {self.image} is set under {Layout.of(loaded).app_dir}"
            )
        ref = detect.ImageRef.parse(self.image)
        self.first = ref.tag or "latest"
        self.good, self.bad = f"{self.first}-demo-good", f"{self.first}-demo-bad"
        self.cluster.profiles = {self.good: HEALTHY, self.bad: BAD_PROFILE}
        self.cluster.namespace = canary.namespace
        self.cluster.service = canary.spec.service.name or canary.spec.target_ref.name
        layout = Layout.of(loaded)
        self.cluster.paths = (layout.app_dir, layout.generated_dir)

        interval, window = format_duration(self.interval), format_duration(self.window)
        changes = self._simulate(root, loaded, interval, window, prometheus)
        templates = discovery.scan(root).templates
        self.queries = template_queries(discovery.scan(root).canaries[self.key].canary, templates, window)
        self.cluster.fallback = self._answer
        git("add", "-A", cwd=root)
        message = "\n".join(
            [f"demo: simulate {self.key} (gitcanary demo --repo)", "", "Changed so it runs here, SIMULATED:"]
            + [f"- {change}" for change in changes]
        )
        git("commit", "-q", "--no-verify", "-m", message, cwd=root, identity=PERSON)
        git("push", "-q", "origin", f"HEAD:{self.branch}", cwd=root)
        self.person(f"cloned {self.source} ({self.branch}) into {root}; simulating {self.key}")
        for change in changes:
            self.person(f"  {change}")
        git("clone", "-q", "--branch", self.branch, str(paths.remote), str(paths.work))
        (paths.work / ".git" / MARKER).write_text("created by `gitcanary demo --repo`\n")
        git("config", "commit.gpgsign", "false", cwd=paths.work)
        settings = Settings(
            repo=str(paths.remote), branch=self.branch, workdir=paths.work, prometheus=prometheus,
            poll_interval=self.interval, settle=0.0, signing_key=None,
        )  # fmt: skip
        self.reconciler = Reconciler(settings)

    def _simulate(
        self, root: Path, loaded: LoadedCanary, interval: str, window: str, prometheus: str
    ) -> list[str]:
        changes: list[str] = []
        path, _, index = loaded.source.partition("#")
        file = root / path
        text = file.read_text()
        docs = yamlio.load_all(text)
        analysis = docs[int(index or 0)]["spec"]["analysis"]
        analysis["interval"] = interval
        for metric in analysis.get("metrics") or []:
            metric["interval"] = window
        hooks = [f"{h.get('name')} ({h.get('type') or 'rollout'})" for h in analysis.get("webhooks") or []]
        analysis.pop("webhooks", None)
        file.write_text(
            yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
        )
        changes.append(f"{path}: analysis every {interval}, metric ranges of {window}")
        if hooks:
            changes.append(f"{path}: webhooks removed, nothing here serves them: {', '.join(hooks)}")
        catalog = discovery.scan(root)
        for key in sorted(catalog.templates):
            source = catalog.template_sources.get(key)
            if source is None:
                continue
            tpath, _, tindex = source.partition("#")
            ttext = (root / tpath).read_text()
            tdocs = yamlio.load_all(ttext)
            provider = tdocs[int(tindex or 0)]["spec"]["provider"]
            was = provider.get("type", "prometheus")
            provider["type"], provider["address"] = "prometheus", prometheus
            for field in ("secretRef", "region", "insecureSkipVerify"):
                provider.pop(field, None)
            (root / tpath).write_text(
                yamlio.dump_all(tdocs, like=ttext) if len(tdocs) > 1 else yamlio.dump(tdocs[0], like=ttext)
            )
            changes.append(f"{tpath}: MetricTemplate {key} ({was}) asks the {LABEL} Prometheus {prometheus}")
        return changes

    def _answer(self, promql: str, at: float) -> float | None:
        """A template query: inside its bounds while the canary runs a healthy tag, outside on the bad one."""
        found = self.queries.get(" ".join(promql.split()))
        state = self.cluster.current
        if found is None or state is None:
            return None
        _, bounds = found
        target = next((w for w in state.workloads if w.name == self.target), None)
        if target is None or target.pods == 0:
            return None
        return (
            bounds.failing() if self.cluster.profile(target.version).error_ratio > 0.05 else bounds.healthy()
        )

    # -- releases ----------------------------------------------------------------------------

    def release(self, tag: str) -> None:
        git("pull", "-q", "--ff-only", "origin", self.branch, cwd=self.paths.directory)
        assert self.location is not None
        ref = detect.ImageRef.parse(self.image)
        wanted = str(detect.ImageRef(ref.repository, tag, None))
        current = self._image_now()
        detect.write_back(self.paths.directory, self.location, self.container, current, wanted)
        git("add", "-A", cwd=self.paths.directory)
        git("commit", "-q", "--no-verify", "-m", f"release {tag}", cwd=self.paths.directory, identity=PERSON)
        git("push", "-q", "origin", f"HEAD:{self.branch}", cwd=self.paths.directory)
        self.person(
            f"release {self.key}: {current} -> {wanted} in {self.location.path} (git commit; git push)"
        )
        state = self.cluster.apply()
        if state is not None:
            self.show_state(state)

    def _image_now(self) -> str:
        loaded = discovery.scan(self.paths.directory).canaries[self.key]
        return render.container_images(render_target(self.paths.directory, loaded).target)[self.container]

    def run(self) -> int:
        url = self.cluster.serve()
        self.console.print(
            f"[bold]gitcanary demo --repo[/bold]: your canary, a healthy release and a bad one, each step a "
            f"commit in a copy of {self.source}.\nThe cluster and Prometheus are [magenta]{LABEL}[/magenta]: "
            f"nothing is deployed. {LABEL} Prometheus API: {url}",
            highlight=False,
        )
        self.setup(url)
        self.deadline = time.monotonic() + self.timeout
        self.heading(f"1. gitcanary sets up {self.key}: primary, Services, routing")
        self.tick_until(Phase.INITIALIZED, self.first, key=self.key)
        self.heading(f"2. a healthy release: {self.good}")
        self.release(self.good)
        self.tick_until(Phase.SUCCEEDED, self.good, key=self.key)
        self.heading(f"3. a bad release: {self.bad} ({LABEL} pods answer 8% 5xx)")
        self.release(self.bad)
        self.tick_until(Phase.FAILED, self.bad, key=self.key)
        self.finish_own()
        return 0

    def finish_own(self) -> None:
        directory = self.paths.directory
        git("fetch", "-q", "origin", cwd=directory)
        log = git(
            "log", "--reverse", "--format=%h %<(10,trunc)%an %s", f"origin/{self.branch}", cwd=directory
        )
        self.heading("4. what was committed")
        self.console.print(log.rstrip(), highlight=False, markup=False, soft_wrap=True)
        self.console.print(
            f"\nYour repository {self.source} was not changed; the copy is {directory} (its Git server: "
            f"{self.paths.remote}). Traffic, pods and metrics were {LABEL}.",
            highlight=False,
        )


def run_own_demo(
    source: Path,
    directory: Path | None,
    canary: str | None,
    branch: str = "main",
    interval: float = 2.0,
    console: Console | None = None,
) -> int:
    """`gitcanary demo --repo`: 0 when the healthy release was promoted and the bad one rolled back."""
    from git import GitCommandError
    from rich.markup import escape

    from gitcanary.demo.runner import prepare_paths
    from gitcanary.errors import GitcanaryError

    console = console or Console()
    try:
        paths = prepare_paths(directory)
    except DemoError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    demo = OwnRepoDemo(paths, source, canary, interval, console, branch=branch)
    try:
        return demo.run()
    except KeyboardInterrupt:
        return 130
    except (GitcanaryError, GitCommandError) as exc:
        console.print(f"[red]demo failed:[/red] {escape(str(exc))}", highlight=False)
        console.print(
            f"The copies are left for inspection: {paths.directory}, {paths.remote}", highlight=False
        )
        return 1
    finally:
        demo.close()
