"""`gitcanary demo`: one canary release that promotes and one that rolls back, on local Git repositories.

Three repositories and two actors, all on this machine:

- `<DIR>.remote.git`: a bare repository, the "Git server" the applier and gitcanary use;
- `<DIR>`: a person's clone. The demo plays that person ("Demo User"): it pulls, bumps the image
  tag in `apps/backend/kustomization.yaml`, commits and pushes, as anyone would;
- `<DIR>.gitcanary-work`: gitcanary's own clone, where the real reconciler commits each step.

The cluster and its Prometheus are SIMULATED (`gitcanary.demo.simulator`): after every tick the
simulator "applies" the remote head by building it with real kustomize, routes simulated requests
by the committed weights, and answers gitcanary's metric queries from that traffic.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from git import GitCommandError
from rich.console import Console
from rich.markup import escape

import gitcanary
from gitcanary.demo._git import DemoError, git
from gitcanary.demo.simulator import (
    LABEL,
    RANDOM_ERROR,
    ClusterState,
    SimulatedCluster,
    Totals,
    VersionProfile,
)
from gitcanary.errors import GitcanaryError
from gitcanary.git.trailers import parse_trailers
from gitcanary.manifests import yamlio
from gitcanary.service.reconciler import CanaryReport, Reconciler, TickResult
from gitcanary.service.settings import Settings
from gitcanary.spec.status import Phase

EXAMPLE = "istio"
# `gitcanary demo --provider X` runs against examples/<X>.
PROVIDERS = (
    "istio",
    "gateway-api",
    "linkerd",
    "nginx",
    "contour",
    "traefik",
    "gloo",
    "kuma",
    "apisix",
    "skipper",
    "appmesh",
)
# `gitcanary demo --metrics M`: which backend the example's error-rate MetricTemplate queries.
METRICS = ("prometheus", "graphite")
GRAPHITE_QUERY = "target=demo.{{ namespace }}.{{ target }}.errors_percent&from=-{{ interval }}"
CANARY = "prod/backend"
APP_DIR = "apps/backend"
KUSTOMIZATION = f"{APP_DIR}/kustomization.yaml"
CANARY_FILE = f"{APP_DIR}/canary.yaml"
TEMPLATE_FILE = "apps/metric-templates/error-rate.yaml"
IMAGE = "ghcr.io/stefanprodan/podinfo"
FIRST, GOOD, BAD = "6.1.0", "6.1.1", "6.1.2"
PERSON = ("Demo User", "demo.user@example.com")
FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/"
MARKER = "gitcanary-demo"  # marks the sibling directories the demo created, so a re-run may replace them

# How the SIMULATED pods of each image tag behave.
PROFILES = {
    "6.1.0": VersionProfile(error_ratio=0.001, p99_ms=118.0),
    GOOD: VersionProfile(error_ratio=0.001, p99_ms=122.0),
    BAD: VersionProfile(error_ratio=0.08, p99_ms=131.0),
    # The config-only release: the same image with podinfo's random errors switched on.
    f"{GOOD}+random-error": VersionProfile(error_ratio=0.1, p99_ms=124.0),
}
THRESHOLD = 2
STEP_WEIGHT = 20
MAX_WEIGHT = 60
MIN_INTERVAL = 0.2
BAR_WIDTH = 20


@dataclass(frozen=True)
class DemoPaths:
    directory: Path  # the person's clone, left for the user to inspect
    remote: Path  # the bare "server" repository
    work: Path  # gitcanary's own clone


def format_duration(seconds: float) -> str:
    """A Go/PromQL duration for `seconds`: whole seconds as `2s`, else milliseconds (`500ms`)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def example_dir(example: str = EXAMPLE) -> Traversable:
    """`examples/<example>`: shipped in the wheel as `gitcanary/examples`, or beside the package."""
    packaged = resources.files("gitcanary") / "examples" / example
    if packaged.is_dir():
        return packaged
    checkout = Path(gitcanary.__file__).resolve().parent.parent / "examples" / example
    if checkout.is_dir():
        return checkout
    raise DemoError(
        f"the example config repo (examples/{example}) is not installed with gitcanary; "
        "reinstall gitcanary, or run the demo from a checkout of its repository"
    )


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_dir():
            _copy_tree(item, target / item.name)
        elif item.is_file():
            (target / item.name).write_bytes(item.read_bytes())


def prepare_paths(directory: Path | None) -> DemoPaths:
    """Where the demo's repositories go; refuses to touch anything it did not create."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="gitcanary-demo-")) / "config-repo"
    directory = directory.expanduser().absolute()
    if directory.exists():
        if not directory.is_dir():
            raise DemoError(f"{directory} exists and is not a directory; choose a new directory with --dir")
        if any(directory.iterdir()):
            raise DemoError(
                f"{directory} is not empty: the demo creates a new Git repository there. "
                "Choose a new or empty directory with --dir (or leave --dir out for a temporary one)"
            )
    paths = DemoPaths(
        directory,
        directory.with_name(directory.name + ".remote.git"),
        directory.with_name(directory.name + ".gitcanary-work"),
    )
    for sibling in (paths.remote, paths.work):
        if not sibling.exists():
            continue
        if (sibling / MARKER).exists() or (sibling / ".git" / MARKER).exists():
            shutil.rmtree(sibling)  # left by an earlier demo with the same --dir
        elif not sibling.is_dir() or any(sibling.iterdir()):
            raise DemoError(
                f"{sibling} exists and was not made by the demo; the demo keeps its Git server "
                f"and gitcanary's clone beside {directory.name}. Choose another --dir"
            )
    return paths


def _bar(weight: int) -> str:
    filled = round(BAR_WIDTH * weight / 100)
    return f"[green]{'█' * filled}[/green][dim]{'░' * (BAR_WIDTH - filled)}[/dim]"


class Demo:
    def __init__(
        self,
        paths: DemoPaths,
        interval: float,
        console: Console,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | None = None,
        example: str = EXAMPLE,
        metrics: str = "prometheus",
    ) -> None:
        self.paths = paths
        self.example = example
        self.metrics = metrics
        self.interval = interval
        self.window = max(2 * interval, 1.0)  # metric range: long enough to hold samples, short enough
        self.console = console  # that a rollout's range never reaches back into the previous one
        self.sleep = sleep
        self.timeout = timeout if timeout is not None else max(300.0, 120 * interval)
        self.deadline = 0.0
        self.scratch = Path(tempfile.mkdtemp(prefix="gitcanary-demo-cluster-"))
        self.cluster = SimulatedCluster(
            remote=str(paths.remote), checkout=self.scratch / "applied", profiles=PROFILES
        )
        self.reconciler: Reconciler | None = None
        self.ticks = 0
        self.config_release = False  # whether the config-only release ran (examples with a generator)
        self.started = time.monotonic()

    def close(self) -> None:
        self.cluster.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.reconciler is not None:
            # The workspace's one-instance lock file sits beside its clone; the demo is over.
            self.reconciler = None
            lock = self.paths.work.with_name(self.paths.work.name + ".lock")
            lock.unlink(missing_ok=True)

    # -- output -----------------------------------------------------------------------------

    def say(self, who: str, text: str, style: str = "") -> None:
        tag = f"[{style}]{who:<10}[/{style}]" if style else f"{who:<10}"
        self.console.print(f"{tag} {text}", highlight=False, soft_wrap=True)

    def simulated(self, text: str) -> None:
        self.say(LABEL, text, "magenta")

    def person(self, text: str) -> None:
        self.say("you", text, "cyan")

    def heading(self, text: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{escape(text)}[/bold]", align="left")

    # -- the person's clone -------------------------------------------------------------------

    def _human(self, *args: str) -> str:
        return git(*args, cwd=self.paths.directory, identity=PERSON)

    def _commit_and_push(self, message: str, *files: str) -> str:
        self._human("add", "--", *files)
        self._human("commit", "-q", "--no-verify", "-m", message)
        self._human("push", "-q", "origin", "HEAD:main")
        return self._human("rev-parse", "--short", "HEAD").strip()

    def _edit_yaml(self, path: str, change: Callable[[object], None]) -> None:
        file = self.paths.directory / path
        text = file.read_text()
        doc = yamlio.load(text)
        change(doc)
        file.write_text(yamlio.dump(doc, like=text))

    def current_tag(self) -> str | None:
        doc = yamlio.load((self.paths.directory / KUSTOMIZATION).read_text())
        for entry in doc.get("images") or []:
            if entry.get("name") == IMAGE:
                return str(entry.get("newTag"))
        return None

    def config_generator(self) -> bool:
        """Whether the example's app has a configMapGenerator (examples/istio has one)."""
        doc = yamlio.load((self.paths.directory / KUSTOMIZATION).read_text()) or {}
        return bool(doc.get("configMapGenerator"))

    def config_literal(self, key: str) -> str | None:
        doc = yamlio.load((self.paths.directory / KUSTOMIZATION).read_text()) or {}
        for generator in doc.get("configMapGenerator") or []:
            for literal in generator.get("literals") or []:
                name, _, value = str(literal).partition("=")
                if name == key:
                    return value
        return None

    def set_config(self, key: str, value: str) -> None:
        """A config-only change: one literal of the app's configMapGenerator, the image untouched."""
        self._human("pull", "-q", "--ff-only", "origin", "main")

        def change(doc: object) -> None:
            assert isinstance(doc, dict)
            literals = doc["configMapGenerator"][0].setdefault("literals", [])
            literals[:] = [lit for lit in literals if str(lit).partition("=")[0] != key]
            literals.append(f"{key}={value}")

        self._edit_yaml(KUSTOMIZATION, change)
        sha = self._commit_and_push(f"backend: {key}={value}", KUSTOMIZATION)
        self.person(f"{sha} set {key}={value} in {KUSTOMIZATION} configMapGenerator (git commit; git push)")
        state = self.cluster.apply()
        if state is not None:
            self.show_state(state)

    def bump(self, tag: str) -> None:
        self._human("pull", "-q", "--ff-only", "origin", "main")
        old = self.current_tag()

        def change(doc: object) -> None:
            assert isinstance(doc, dict)
            for entry in doc.get("images") or []:
                if entry.get("name") == IMAGE:
                    entry["newTag"] = tag

        self._edit_yaml(KUSTOMIZATION, change)
        sha = self._commit_and_push(f"backend: bump podinfo to {tag}", KUSTOMIZATION)
        self.person(f"{sha} bump backend {old} -> {tag} in {KUSTOMIZATION} (git commit; git push)")
        state = self.cluster.apply()  # the applier is quicker than gitcanary: harmless, the target has 0 pods
        if state is not None:
            self.show_state(state)

    # -- setup -------------------------------------------------------------------------------

    def setup(self, prometheus: str) -> None:
        paths = self.paths
        git("init", "-q", "--bare", str(paths.remote))
        git("symbolic-ref", "HEAD", "refs/heads/main", cwd=paths.remote)
        (paths.remote / MARKER).write_text("created by `gitcanary demo`\n")
        paths.directory.mkdir(parents=True, exist_ok=True)
        self._human("init", "-q")
        self._human("symbolic-ref", "HEAD", "refs/heads/main")
        self._human("remote", "add", "origin", str(paths.remote))
        _copy_tree(example_dir(self.example), paths.directory)

        interval, window = format_duration(self.interval), format_duration(self.window)

        def speed_up(doc: object) -> None:
            assert isinstance(doc, dict)
            analysis = doc["spec"]["analysis"]
            analysis["interval"] = interval
            analysis["threshold"] = THRESHOLD
            analysis["maxWeight"] = MAX_WEIGHT
            analysis["stepWeight"] = STEP_WEIGHT
            for metric in analysis.get("metrics") or []:
                metric["interval"] = window

        def simulated_prometheus(doc: object) -> None:
            assert isinstance(doc, dict)
            doc["spec"]["provider"]["address"] = prometheus
            if self.metrics == "graphite":
                doc["spec"]["provider"]["type"] = "graphite"
                doc["spec"]["query"] = GRAPHITE_QUERY

        self._edit_yaml(CANARY_FILE, speed_up)
        has_template = (paths.directory / TEMPLATE_FILE).exists()  # only examples/istio has one
        if has_template:
            self._edit_yaml(TEMPLATE_FILE, simulated_prometheus)
        self._human("add", "-A")
        self._human(
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "\n".join(
                [
                    f"demo: seed config repo from examples/{self.example}",
                    "",
                    f"Copied from gitcanary's examples/{self.example}, changed so the demo runs in a minute:",
                    f"- {CANARY_FILE}: analysis every {interval}, stepWeight {STEP_WEIGHT} up to maxWeight "
                    f"{MAX_WEIGHT}, threshold {THRESHOLD}, metric ranges of {window}.",
                ]
                + (
                    [
                        f"- {TEMPLATE_FILE}: address {prometheus}, the demo's {LABEL} {self.metrics.title()} "
                        "(gitcanary.demo.simulator), not a real one."
                        + (" Its query is Graphite's render API." if self.metrics == "graphite" else "")
                    ]
                    if has_template
                    else []
                )
            ),
        )
        self._human("push", "-q", "-u", "origin", "main")
        self.person(
            f"{self._human('rev-parse', '--short', 'HEAD').strip()} seed {paths.directory} from "
            f"examples/{self.example} (analysis every {interval}, {STEP_WEIGHT}% steps up to {MAX_WEIGHT}%)"
        )

        git("clone", "-q", "--branch", "main", str(paths.remote), str(paths.work))
        (paths.work / ".git" / MARKER).write_text("created by `gitcanary demo`\n")
        # gitcanary signs only with --signing-key; a global `commit.gpgsign` must not make it try.
        git("config", "commit.gpgsign", "false", cwd=paths.work)
        self.cluster.paths = self._applier_paths()
        settings = Settings(
            repo=str(paths.remote),
            branch="main",
            workdir=paths.work,
            prometheus=prometheus,
            poll_interval=self.interval,
            settle=0.0,
            author_name="gitcanary",
            author_email="gitcanary@users.noreply.local",
            signing_key=None,
        )
        self.reconciler = Reconciler(settings)

    def _applier_paths(self) -> tuple[str, ...]:
        """The paths the example's Flux Kustomizations (`clusters/`) build: what the simulator applies."""
        found = []
        for file in sorted((self.paths.directory / "clusters").rglob("*.yaml")):
            for doc in yamlio.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(FLUX_KUSTOMIZATION):
                    path = str((doc.get("spec") or {}).get("path", "")).removeprefix("./").strip("/")
                    found.append(path or ".")
        return tuple(dict.fromkeys(found)) or ("apps",)

    # -- ticking -----------------------------------------------------------------------------

    def tick_until(self, phase: Phase, revision: str, key: str = CANARY) -> CanaryReport:
        """Tick (and let the SIMULATED cluster apply each new head) until the canary reaches `phase`."""
        assert self.reconciler is not None
        with self.console.status("", spinner="dots") as status:
            while True:
                result = self.reconciler.tick()
                self.ticks += 1
                report = self._check(result, key)
                if result.commits:
                    self.simulated(f"traffic over the last {format_duration(self.window)}: {self.observed()}")
                for sha in result.commits:
                    self.show_commit(sha)
                state = self.cluster.apply()
                if state is not None:
                    self.show_state(state)
                status.update(self.status_line(report))
                reached = report.status
                if reached is not None and reached.phase is phase and reached.canary_revision == revision:
                    return report
                if time.monotonic() > self.deadline:
                    now = (
                        f"{reached.phase.value} at {reached.canary_weight}%" if reached else "not initialized"
                    )
                    raise DemoError(
                        f"{key} did not reach {phase.value} within {self.timeout:.0f}s "
                        f"(it is {now}: {report.waiting or 'no reason given'})"
                    )
                self.sleep(self.interval / 2)

    def _check(self, result: TickResult, key: str = CANARY) -> CanaryReport:
        for source, message in result.errors.items():
            raise DemoError(f"gitcanary could not read {source}: {message}")
        report = result.reports.get(key)
        if report is None:
            raise DemoError(f"gitcanary found no canary {key} in the demo repository")
        if report.error:
            raise DemoError(f"gitcanary halted {key}: {report.error}")
        return report

    def show_commit(self, sha: str) -> None:
        assert self.reconciler is not None
        message = self.reconciler.workspace.repo.commit(sha).message
        assert isinstance(message, str)
        subject, _, rest = message.partition("\n")
        trailers = parse_trailers(message)
        phase = trailers.get("Phase", "?")
        weight = int(trailers.get("Weight", "0") or 0)
        failed = trailers.get("Failed-Checks", "0")
        color = {"Succeeded": "green", "Failed": "red"}.get(phase, "yellow" if failed != "0" else "blue")
        self.say("gitcanary", f"{sha[:7]} [bold]{escape(subject.removeprefix('gitcanary: '))}[/bold]", "blue")
        self.say(
            "", f"{_bar(weight)} {weight:>3}%  [{color}]{phase}[/{color}]  failed checks {failed}/{THRESHOLD}"
        )
        for line in rest.strip().splitlines():
            if not line.strip() or line.startswith("Gitcanary-"):
                continue
            style = "red" if line.endswith("failed") or "failed:" in line else "dim"
            self.say("", f"[{style}]{escape(line)}[/{style}]")

    def show_state(self, state: ClusterState) -> None:
        pods = " · ".join(
            f"{w.name} {w.version} {w.pods} pod{'' if w.pods == 1 else 's'}"
            + (f" {w.share:.0f}% of traffic" if w.share else "")
            for w in state.workloads
        )
        self.simulated(
            f"applied {state.commit[:7]} (kustomize build {' '.join(self.cluster.paths)}): "
            f"{pods or 'no workloads'}" + (f"; {state.unserved:.0f}% unserved" if state.unserved else "")
        )

    def observed(self) -> str:
        seen = self.cluster.observed(self.window)
        if not seen:
            return "no traffic"

        def show(version: str, totals: Totals) -> str:
            rate = totals.success_rate
            color = "green" if rate >= 99 else "red"
            rps = totals.requests / totals.seconds
            return f"{version} [{color}]{rate:.1f}%[/{color}] success ({rps:.0f} req/s)"

        return " · ".join(show(version, totals) for version, totals in seen.items())

    def status_line(self, report: CanaryReport) -> str:
        status = report.status
        head = (
            f"{status.phase.value} {_bar(status.canary_weight)} {status.canary_weight}%" if status else "new"
        )
        failed = f" failed {status.failed_checks}/{THRESHOLD}" if status else ""
        return (
            f"tick {self.ticks}: {head}{failed} · {escape(report.waiting or 'committed')} · "
            f"{LABEL} traffic: {self.observed()}"
        )

    # -- the story ---------------------------------------------------------------------------

    def run(self) -> int:
        url = self.cluster.serve()
        self.console.print(
            "[bold]gitcanary demo[/bold]: a canary release that is promoted and one that is rolled back, "
            "each step a Git commit.\n"
            f"The cluster and Prometheus are [magenta]{LABEL}[/magenta]: nothing is deployed, and lines "
            f"from the simulator say {LABEL}. {LABEL} Prometheus API: {url}",
            highlight=False,
        )
        self.setup(url)
        self.deadline = time.monotonic() + self.timeout

        self.heading(f"1. gitcanary sets up {CANARY}: primary, Services, routing")
        self.tick_until(Phase.INITIALIZED, FIRST)

        self.heading(f"2. a good release: you bump backend to {GOOD}")
        self.bump(GOOD)
        self.tick_until(Phase.SUCCEEDED, GOOD)

        self.heading(f"3. a bad release: you bump backend to {BAD}")
        self.simulated(f"pods running {BAD} answer 8% of requests with 5xx")
        self.bump(BAD)
        self.tick_until(Phase.FAILED, BAD)

        self._human("pull", "-q", "--ff-only", "origin", "main")
        tag = self.current_tag()
        if tag != GOOD:
            raise DemoError(
                f"after the rollback {KUSTOMIZATION} says newTag {tag}, expected {GOOD} written back"
            )
        self.person(
            f"git pull: {KUSTOMIZATION} says newTag {tag} again (gitcanary wrote it back on rollback)"
        )

        if self.config_generator():
            self.heading(f"4. a config-only release: you set {RANDOM_ERROR}=true, the image stays {GOOD}")
            self.simulated(f"pods with {RANDOM_ERROR}=true answer 10% of requests with 5xx")
            self.set_config(RANDOM_ERROR, "true")
            self.tick_until(Phase.FAILED, GOOD)
            self._human("pull", "-q", "--ff-only", "origin", "main")
            value = self.config_literal(RANDOM_ERROR)
            if value is not None:
                raise DemoError(
                    f"after the rollback {KUSTOMIZATION} still sets {RANDOM_ERROR}={value}, expected the "
                    "config the primary runs written back"
                )
            self.person(
                f"git pull: {KUSTOMIZATION} no longer sets {RANDOM_ERROR} (gitcanary wrote the primary's "
                "config back in the rollback commit)"
            )
            self.config_release = True
        self.finish()
        return 0

    def finish(self) -> None:
        directory = self.paths.directory
        log_format = "%h %<(12)%(trailers:key=Gitcanary-Phase,valueonly,separator=%x2C) %<(10,trunc)%an %s"
        self.heading(f"{5 if self.config_release else 4}. the rollouts in git log")
        self.console.print(
            f"$ git -C {directory} log --reverse --format='{log_format}'",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        try:
            log = git("log", "--reverse", f"--format={log_format}", cwd=directory)
        except DemoError:  # a git too old for trailer placeholders
            log = git("log", "--reverse", "--format=%h %<(10,trunc)%an %s", cwd=directory)
        self.console.print(escape(log.rstrip()), highlight=False, soft_wrap=True)
        elapsed = time.monotonic() - self.started
        self.console.print()
        directory, remote, work = self.paths.directory, self.paths.remote, self.paths.work
        self.console.print(
            f"Done in {elapsed:.0f}s. You bumped backend to {GOOD}: gitcanary moved traffic to it in "
            f"{STEP_WEIGHT}% steps up to {MAX_WEIGHT}%, checking the metrics at each step, and promoted it. "
            f"Then {BAD} failed its checks: gitcanary halted, and at {THRESHOLD} failed checks rolled back, "
            f"routing all traffic to the primary and writing {GOOD} back into {KUSTOMIZATION}, so Git "
            "again says what runs. "
            + (
                f"Config is part of the release: setting {RANDOM_ERROR}=true, with no image change, was "
                "analysed the same way, failed, and its rollback removed the literal from "
                f"{KUSTOMIZATION}. "
                if self.config_release
                else ""
            )
            + "Every step is a commit.\n"
            f"The config repo is [bold]{directory}[/bold] (its Git server: {remote}; gitcanary's own "
            f"clone: {work}). Look around with `git -C {directory} log -p` or "
            f"`gitcanary status --repo {directory}`.\n"
            f"Traffic, pods and Prometheus were {LABEL} by gitcanary.demo.simulator. With a real cluster, "
            "point `gitcanary run` at the repo your Flux or Fleet applies, and at your Prometheus.",
            highlight=False,
        )


def run_demo(
    directory: Path | None,
    interval: float = 2.0,
    console: Console | None = None,
    provider: str = EXAMPLE,
    metrics: str = "prometheus",
) -> int:
    """Run the demo; 0 when both rollouts went as expected, non-zero with a message otherwise."""
    console = console or Console()
    if interval < MIN_INTERVAL:
        console.print(
            f"[red]error:[/red] the demo's interval must be at least {MIN_INTERVAL}s", highlight=False
        )
        return 2
    try:
        paths = prepare_paths(directory)
    except DemoError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    if provider not in PROVIDERS:
        console.print(
            f"[red]error:[/red] --provider {provider!r}: choose one of {', '.join(PROVIDERS)}",
            highlight=False,
        )
        return 2
    if metrics not in METRICS or (metrics != "prometheus" and provider != EXAMPLE):
        console.print(
            f"[red]error:[/red] --metrics {metrics!r}: choose one of {', '.join(METRICS)} "
            f"(graphite with --provider {EXAMPLE}, whose example has the error-rate MetricTemplate)",
            highlight=False,
        )
        return 2
    demo = Demo(paths, interval, console, example=provider, metrics=metrics)
    try:
        return demo.run()
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; the demo's repositories are left in {paths.directory.parent}")
        return 130
    except (GitcanaryError, GitCommandError) as exc:
        console.print(f"[red]demo failed:[/red] {escape(str(exc))}", highlight=False)
        console.print(
            f"The repositories are left for inspection: {paths.directory}, {paths.remote}, {paths.work}",
            highlight=False,
        )
        return 1
    finally:
        demo.close()
