"""Measure gitcanary's reconciler on a generated config repository with many apps.

Figures (printed as a table, or as JSON with --json; nothing is asserted):
  - cold start: the first tick of a fresh Reconciler (fresh work dir) on an initialized repo,
  - idle tick (nothing changed on the remote) next to a bare `git fetch` + `git rev-parse`
    in a plain clone of the same remote,
  - bump detection: the tick that notices one pushed `newTag` change and commits its START,
  - initialization: the ticks that take new canaries from nothing to Initialized (2 commits each);
    by default K apps added to the N (the N are pre-initialized, see below), or all N (--full-init).
Optionally (--daemon) the idle tick and the bare fetch again over `git daemon` on loopback.

Run: python bench/bench_tick.py [--apps 1000] [--repeats 5] [--json] [--daemon] [--profile [N]]"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import math
import os
import platform
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BRANCH = "main"
IMAGE = "ghcr.io/stefanprodan/podinfo"
OLD_TAG = "6.1.0"
NEW_TAG = "6.1.1"

# -- the config repository ---------------------------------------------------------------------

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {ns}
resources:
  - deployment.yaml
{hpa_resource}  - canary.yaml
images:
  - name: {image}
    newTag: {tag} # bump this to start a canary release
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  minReadySeconds: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 60
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: {name}
          image: {image}:6.0.0
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
          command:
            - ./podinfo
            - --port=9898
            - --level=info
          readinessProbe:
            httpGet:
              path: /readyz
              port: 9898
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
"""

HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 80
"""

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: {name}
  namespace: {ns}
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
{autoscaler}  service:
    port: 80
    targetPort: 9898
    gateways:
      - istio-system/public-gateway
      - mesh
    hosts:
      - {name}.example.com
  analysis:
    interval: 30s
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 30s
"""

AUTOSCALER = """\
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: {name}
"""


def app_name(index: int) -> str:
    return f"app-{index:04d}"


def namespace(index: int) -> str:
    return f"ns-{index:04d}"


def write_app(root: Path, index: int, hpa: bool) -> None:
    """apps/app-NNNN/{kustomization,deployment,[hpa,]canary}.yaml, as a person writes them."""
    name, ns = app_name(index), namespace(index)
    directory = root / "apps" / name
    directory.mkdir(parents=True)
    hpa_resource = "  - hpa.yaml\n" if hpa else ""
    (directory / "kustomization.yaml").write_text(
        KUSTOMIZATION.format(ns=ns, image=IMAGE, tag=OLD_TAG, hpa_resource=hpa_resource)
    )
    (directory / "deployment.yaml").write_text(DEPLOYMENT.format(name=name, image=IMAGE))
    if hpa:
        (directory / "hpa.yaml").write_text(HPA.format(name=name))
    autoscaler = AUTOSCALER.format(name=name) if hpa else ""
    (directory / "canary.yaml").write_text(CANARY.format(name=name, ns=ns, autoscaler=autoscaler))


def parent_kustomization(entries: list[str]) -> str:
    listing = "".join(f"  - {entry}\n" for entry in entries)
    return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + listing


def generate_repo(root: Path, apps: int, hpa: bool, template: Template | None = None) -> None:
    """N apps and a parent apps/kustomization.yaml listing them; pre-initialized from `template` if given."""
    entries = [app_name(i) for i in range(1, apps + 1)]
    for index in range(1, apps + 1):
        if template is None:
            write_app(root, index, hpa)
        else:
            template.write(root, index)
    if template is not None:
        entries += [f"{app_name(i)}-gitcanary" for i in range(1, apps + 1)]
    (root / "apps").mkdir(exist_ok=True)
    (root / "apps" / "kustomization.yaml").write_text(parent_kustomization(entries))


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


HUMAN = ["-c", "user.name=Human", "-c", "user.email=human@example.com"]


def make_remote(tmp: Path, name: str, write: Callable[[Path], None], message: str) -> Path:
    """A bare repository `tmp/<name>.git` whose one commit holds what `write` wrote."""
    seed = tmp / f"{name}-seed"
    seed.mkdir()
    write(seed)
    git("init", "-q", "-b", BRANCH, cwd=seed)
    git("add", "-A", cwd=seed)
    git(*HUMAN, "commit", "-q", "-m", message, cwd=seed)
    remote = tmp / f"{name}.git"
    git("clone", "-q", "--bare", str(seed), str(remote))
    shutil.rmtree(seed)
    return remote


# -- pre-initialization ------------------------------------------------------------------------
#
# Initializing N canaries through the reconciler costs 2 commits and 2 renders per canary, and
# every first commit re-parses the parent kustomization (O(N) each, O(N^2) in all): about
# 13 minutes at 1,000 apps on 2 cores. Instead gitcanary initializes a 2-app repository, and
# app-0001's files (the app's and the generated dir's) are copied to every app with its name,
# namespace and pod-template hash put in. The copy is checked twice: it must reproduce app-0002
# of the 2-app repository byte for byte, and the cold start on the N-app repository must find
# every canary Initialized and commit nothing.


@dataclass
class Template:
    files: dict[str, str]  # repository path -> text, for app-0001 (app dir and generated dir)
    target: dict[str, Any]  # app-0001's Deployment as kustomize builds it
    spec_hash: str

    def predict(self, index: int) -> dict[str, str]:
        from gitcanary.manifests.render import pod_template_hash

        name, ns = app_name(index), namespace(index)

        def put(text: str) -> str:
            return text.replace("app-0001", name).replace("ns-0001", ns)

        spec_hash = pod_template_hash(json.loads(put(json.dumps(self.target))))
        old, new = f"Spec: {scalar(self.spec_hash)}\n", f"Spec: {scalar(spec_hash)}\n"
        return {put(path): put(text.replace(old, new)) for path, text in self.files.items()}

    def write(self, root: Path, index: int) -> None:
        for path, text in self.predict(index).items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)


def scalar(value: str) -> str:
    """`value` as gitcanary's YAML writer emits it: quoted when it would read back as a number."""
    from gitcanary.manifests import yamlio

    return yamlio.dump({"k": value}).removeprefix("k: ").rstrip("\n")


def make_template(tmp: Path, hpa: bool, clock: Callable[[], datetime]) -> Template:
    """Let gitcanary initialize a 2-app repository and keep app-0001's files as the template."""
    from gitcanary.manifests import discovery
    from gitcanary.manifests.target import render_target

    def write(root: Path) -> None:
        generate_repo(root, 2, hpa)

    remote = make_remote(tmp, "template", write, "2 apps")
    workdir = tmp / "work-template"
    reconciler = make_reconciler(remote.as_uri(), workdir, clock)
    for _ in range(2):
        reconciler.tick()
    if reconciler.tick().commits:
        raise RuntimeError("template: gitcanary still commits after initializing 2 canaries")
    root = reconciler.root

    def files_of(index: int) -> dict[str, str]:
        found = {}
        for directory in (f"apps/{app_name(index)}", f"apps/{app_name(index)}-gitcanary"):
            for path in sorted((root / directory).iterdir()):
                found[f"{directory}/{path.name}"] = path.read_text()
        return found

    loaded = discovery.scan(root).canaries[f"{namespace(1)}/{app_name(1)}"]
    rendered = render_target(root, loaded)
    template = Template(files_of(1), rendered.target, rendered.spec_hash)
    status = files_of(1)[f"apps/{app_name(1)}-gitcanary/gitcanary-status.yaml"]
    if f"lastAppliedSpec: {scalar(rendered.spec_hash)}\n" not in status or "phase: Initialized" not in status:
        raise RuntimeError("template: app-0001's status is not Initialized at its rendered spec hash")
    if template.predict(2) != files_of(2):
        raise RuntimeError("template: copying app-0001 does not reproduce app-0002; run with --full-init")
    parent = (root / "apps" / "kustomization.yaml").read_text()
    expected = parent_kustomization([app_name(1), app_name(2), *(f"{app_name(i)}-gitcanary" for i in (1, 2))])
    if parent != expected:
        raise RuntimeError("template: the parent kustomization is not as predicted; run with --full-init")
    shutil.rmtree(workdir)
    return template


# -- git daemon --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[str | None]:
    """Serve `base` over git:// on loopback (push enabled); yields the base URL, or None if it won't start."""
    port = free_port()
    try:
        proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
                f"--port={port}",
                f"--base-path={base}",
                str(base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        yield None
        return
    try:
        deadline = time.monotonic() + 10
        url: str | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                url = f"git://127.0.0.1:{port}"
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- measuring ---------------------------------------------------------------------------------


class BuildCounter:
    """Counts `kubectl kustomize` runs through GITCANARY_KUBECTL (a wrapper script; no code is patched)."""

    def __init__(self, tmp: Path, enabled: bool) -> None:
        self.file = tmp / "kustomize-builds"
        self.enabled = enabled
        if not enabled:
            return
        from gitcanary.manifests.kustomize import kubectl_path

        real = kubectl_path()
        kubectl_path.cache_clear()
        wrapper = tmp / "kubectl-counting"
        wrapper.write_text(f'#!/bin/sh\nprintf x >> "{self.file}"\nexec "{real}" "$@"\n')
        wrapper.chmod(0o755)
        os.environ["GITCANARY_KUBECTL"] = str(wrapper)
        self.file.write_text("")

    def count(self) -> int | None:
        return self.file.stat().st_size if self.enabled else None


@dataclass
class Sample:
    seconds: float
    commits: int
    builds: int | None


@dataclass
class Bench:
    counter: BuildCounter
    figures: dict[str, Any] = field(default_factory=dict)

    def tick(self, reconciler: Any) -> Sample:
        before = self.counter.count()
        start = time.perf_counter()
        result = reconciler.tick()
        seconds = time.perf_counter() - start
        after = self.counter.count()
        if result.errors or any(r.error for r in result.reports.values()):
            errors = {**result.errors, **{k: r.error for k, r in result.reports.items() if r.error}}
            raise RuntimeError(f"gitcanary reported errors: {dict(list(errors.items())[:5])}")
        builds = None if before is None or after is None else after - before
        return Sample(seconds, len(result.commits), builds)


def passing_analyzer(canary: Any, templates: Any, *, default_address: str, now: datetime) -> tuple:
    from gitcanary.core.observations import CheckResult

    return tuple(
        CheckResult(m.name, 1.0, None, None, True, f"{m.name} 1 ok") for m in canary.spec.analysis.metrics
    )


def make_reconciler(url: str, workdir: Path, clock: Callable[[], datetime]) -> Any:
    from gitcanary.service.reconciler import Reconciler
    from gitcanary.service.settings import Settings

    settings = Settings(repo=url, branch=BRANCH, workdir=workdir, settle=0)
    return Reconciler(settings, clock=clock, analyzer=passing_analyzer)


HERE = Path(__file__).resolve().parent
MEMORY_CHILD = """
import resource, sys, time
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import bench_tick
frozen = datetime.now(UTC).replace(microsecond=0)
rec = bench_tick.make_reconciler(sys.argv[2], Path(sys.argv[3]), lambda: frozen)
for _ in range(int(sys.argv[4])):
    rec.tick()
print(len(rec.reports), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def reconciler_memory(url: str, workdir: Path, ticks: int) -> dict[str, Any]:
    """Peak RSS of a reconciler alone, in a process of its own: a cold start (clone, scan, every
    build) and `ticks - 1` idle ticks. kustomize and git run in child processes, not counted."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(HERE), url, str(workdir), str(ticks)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {"canaries": int(out[0]), "ticks": ticks, "max_rss_mib": int(out[1]) / 1024}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return {
        "median": statistics.median(ordered),
        "p90": p90,
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


def idle_ticks(bench: Bench, reconciler: Any, repeats: int) -> dict[str, Any]:
    samples = [bench.tick(reconciler) for _ in range(repeats)]
    if any(s.commits for s in samples):
        raise RuntimeError("an idle tick committed something")
    return {**summary([s.seconds for s in samples]), "builds": sum(s.builds or 0 for s in samples)}


def bare_fetch(clone: Path, repeats: int) -> dict[str, Any]:
    """`git fetch` of the tracked branch + `git rev-parse`, as two subprocesses, like a bare poller."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        git(
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{BRANCH}:refs/remotes/origin/{BRANCH}",
            cwd=clone,
        )
        git("rev-parse", f"origin/{BRANCH}", cwd=clone)
        times.append(time.perf_counter() - start)
    return summary(times)


def profile_tick(reconciler: Any, top: int) -> tuple[Any, str]:
    """One tick under cProfile: its result and the top entries by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    result = reconciler.tick()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return result, out.getvalue()


def initialize(bench: Bench, reconciler: Any, keys: set[str], max_ticks: int = 6) -> dict[str, Any]:
    """Tick until every canary of `keys` is Initialized (2 commits each: primary, then routing).

    Each tick is timed. No warm-up tick follows: the next one re-renders every canary initialized,
    because the init commits changed its inputs (generated dir, kustomization `replicas:`).
    """
    from gitcanary.spec.status import Phase

    ticks: list[Sample] = []
    for _ in range(max_ticks):
        ticks.append(bench.tick(reconciler))
        reports = reconciler.reports
        if all(
            k in reports and reports[k].status and reports[k].status.phase is Phase.INITIALIZED for k in keys
        ):
            break
    else:
        raise RuntimeError(f"canaries not all Initialized after {max_ticks} ticks")
    seconds = sum(t.seconds for t in ticks)
    commits = sum(t.commits for t in ticks)
    return {
        "canaries": len(keys),
        "ticks": [{"seconds": t.seconds, "commits": t.commits, "builds": t.builds} for t in ticks],
        "seconds": seconds,
        "commits": commits,
        "per_canary": seconds / len(keys),
        "per_commit": seconds / commits if commits else None,
    }


def keys_of(first: int, last: int) -> set[str]:
    return {f"{namespace(i)}/{app_name(i)}" for i in range(first, last + 1)}


def push_change(human: Path, message: str, change: Callable[[Path], None]) -> None:
    """A person changes their own clone and pushes it."""
    git("pull", "-q", "--ff-only", cwd=human)
    change(human)
    git("add", "-A", cwd=human)
    git(*HUMAN, "commit", "-q", "-m", message, cwd=human)
    git("push", "-q", "origin", f"HEAD:{BRANCH}", cwd=human)


def bump(root: Path, index: int) -> None:
    path = root / "apps" / app_name(index) / "kustomization.yaml"
    path.write_text(path.read_text().replace(f"newTag: {OLD_TAG}", f"newTag: {NEW_TAG}"))


def add_apps(root: Path, first: int, last: int, hpa: bool) -> None:
    for index in range(first, last + 1):
        write_app(root, index, hpa)
    parent = root / "apps" / "kustomization.yaml"
    parent.write_text(parent.read_text() + "".join(f"  - {app_name(i)}\n" for i in range(first, last + 1)))


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "python": platform.python_version(),
        "git": git("--version").removeprefix("git version "),
        "platform": platform.platform(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gitcanary-bench-"))
    try:
        return _run(args, tmp, log)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    apps, repeats, hpa = args.apps, args.repeats, args.hpa
    bench = Bench(BuildCounter(tmp, not args.no_count_builds))
    frozen = datetime.now(UTC).replace(microsecond=0)

    def clock() -> datetime:  # analysis never comes due: a started rollout stays put, commits nothing
        return frozen

    figures = bench.figures
    figures["machine"] = machine()
    figures["setup"] = {
        "apps": apps,
        "repeats": repeats,
        "hpa": hpa,
        "transport": "file://",
        "settle": 0,
        "builds_counted": not args.no_count_builds,
        "pre_initialized": not args.full_init,
    }

    start = time.perf_counter()
    if args.full_init:
        log(f"generating {apps} apps in {tmp}")
        remote = make_remote(tmp, "remote", lambda root: generate_repo(root, apps, hpa), f"{apps} apps")
    else:
        log("template: gitcanary initializes a 2-app repository")
        template = make_template(tmp, hpa, clock)
        log(f"generating {apps} pre-initialized apps in {tmp}")
        remote = make_remote(
            tmp, "remote", lambda root: generate_repo(root, apps, hpa, template), f"{apps} apps, initialized"
        )
    url = remote.as_uri()
    figures["setup"]["generate_seconds"] = time.perf_counter() - start

    if args.full_init:
        log(f"initializing all {apps} canaries (timed ticks)")
        initializer = make_reconciler(url, tmp / "work-init", clock)
        figures["initialization"] = {"apps": apps, **initialize(bench, initializer, keys_of(1, apps))}
        del initializer

    if args.memory:
        log("reconciler memory: cold start and idle ticks in a process of its own")
        figures["memory"] = reconciler_memory(url, tmp / "work-memory", 1 + repeats)
        if args.memory_only:
            return figures
    log("cold start: a fresh Reconciler (fresh work dir, so it clones) on the initialized repo")
    fresh = make_reconciler(url, tmp / "work-fresh", clock)
    sample = bench.tick(fresh)
    figures["cold_start"] = {
        "seconds": sample.seconds,
        "builds": sample.builds,
        "commits": sample.commits,
        "renders_cached": len(fresh.renders),
    }
    phases = {r.status.phase.value if r.status else None for r in fresh.reports.values()}
    if sample.commits or len(fresh.reports) != apps or phases != {"Initialized"}:
        raise RuntimeError(
            f"cold start on the initialized repo committed {sample.commits} times and saw "
            f"{len(fresh.reports)} canaries in phases {sorted(map(str, phases))}: the pre-initialization "
            "is wrong; run with --full-init"
        )
    if args.restart:
        log("cold start, reusing a work dir (a restarted process)")
        # A copy of the warm clone: the live Reconciler holds its work dir's lock for life.
        shutil.copytree(tmp / "work-fresh", tmp / "work-restart", symlinks=True)
        restarted = make_reconciler(url, tmp / "work-restart", clock)
        sample = bench.tick(restarted)
        figures["restart"] = {"seconds": sample.seconds, "builds": sample.builds, "commits": sample.commits}
        del restarted

    log("idle ticks vs bare git fetch + rev-parse")
    plain = tmp / "plain"
    git("clone", "-q", "--no-tags", "-b", BRANCH, url, str(plain))
    figures["idle_tick"] = idle_ticks(bench, fresh, repeats)
    figures["bare_fetch_rev_parse"] = bare_fetch(plain, repeats)
    if args.profile:
        figures["idle_tick_profile"] = profile_tick(fresh, args.profile)[1]

    log("bump detection")
    human = tmp / "human"
    git("clone", "-q", "-b", BRANCH, url, str(human))
    index = (apps + 1) // 2
    push_change(human, f"bump {app_name(index)} to {NEW_TAG}", lambda root: bump(root, index))
    renders_before = len(fresh.renders)
    sample = bench.tick(fresh)
    renders_after = len(fresh.renders)
    after = bench.tick(fresh)
    report = fresh.reports[f"{namespace(index)}/{app_name(index)}"]
    figures["bump"] = {
        "app": app_name(index),
        "seconds": sample.seconds,
        "builds": sample.builds,
        "commits": sample.commits,
        "renders_cached_before": renders_before,
        "renders_cached_after": renders_after,
        "phase_after": report.status.phase.value if report.status else None,
        "next_tick": {"seconds": after.seconds, "builds": after.builds, "commits": after.commits},
    }

    if args.daemon:
        log("git daemon on loopback")
        with git_daemon(tmp) as base:
            if base is None:
                figures["daemon"] = {"error": "git daemon did not start"}
            else:
                daemon_url = f"{base}/{remote.name}"
                # The same warm Reconciler, its clone's origin pointed at git:// (what its
                # Workspace does itself when started with another URL), so no second cold start.
                git("remote", "set-url", "origin", daemon_url, cwd=tmp / "work-fresh")
                git("remote", "set-url", "origin", daemon_url, cwd=plain)
                fresh.tick()
                figures["daemon"] = {
                    "url": daemon_url,
                    "idle_tick": idle_ticks(bench, fresh, repeats),
                    "bare_fetch_rev_parse": bare_fetch(plain, repeats),
                }
                git("remote", "set-url", "origin", url, cwd=tmp / "work-fresh")

    if not args.full_init and args.init_sample:
        first, last = apps + 1, apps + args.init_sample
        log(f"initialization: a person adds {args.init_sample} apps to the {apps}; timed ticks")
        push_change(human, f"add {args.init_sample} apps", lambda root: add_apps(root, first, last, hpa))
        figures["initialization"] = {"apps": apps, **initialize(bench, fresh, keys_of(first, last))}
        if args.profile:
            log("profiling the first tick of another sample")
            fresh.tick()  # re-renders the sample just initialized, so the profile shows only new ones
            first, last = last + 1, last + args.init_sample
            push_change(human, f"add {args.init_sample} apps", lambda root: add_apps(root, first, last, hpa))
            figures["init_tick_profile"] = profile_tick(fresh, args.profile)[1]
    return figures


# -- output ------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(f: dict[str, Any]) -> str:
    m, s = f["machine"], f["setup"]
    rows: list[tuple[str, str, str]] = []

    def add(label: str, value: str, note: str = "") -> None:
        rows.append((label, value, note))

    def builds(n: int | None) -> str:
        return "" if n is None else f"{n} kustomize builds"

    if "memory" in f:
        mem = f["memory"]
        add(
            "reconciler peak RSS",
            f"{mem['max_rss_mib']:,.0f} MiB",
            f"{mem['canaries']} canaries, cold start + {mem['ticks'] - 1} idle ticks, own process",
        )
    if "cold_start" not in f:
        return "\n".join(f"{label}: {value}  {note}" for label, value, note in rows)
    add(
        "cold start (fresh work dir)",
        ms(f["cold_start"]["seconds"]),
        f"clone + scan + {builds(f['cold_start']['builds'])}",
    )
    if "restart" in f:
        add("cold start (existing work dir)", ms(f["restart"]["seconds"]), builds(f["restart"]["builds"]))
    idle, bare = f["idle_tick"], f["bare_fetch_rev_parse"]
    add("idle tick, median / p90", f"{ms(idle['median'])} / {ms(idle['p90'])}", builds(idle["builds"]))
    add(
        "bare fetch + rev-parse, median / p90",
        f"{ms(bare['median'])} / {ms(bare['p90'])}",
        f"idle tick = {idle['median'] / bare['median']:.1f}x",
    )
    b = f["bump"]
    add(
        "bump detection tick",
        ms(b["seconds"]),
        f"{b['commits']} commit ({b['phase_after']}), {builds(b['builds'])}",
    )
    add("  tick after it", ms(b["next_tick"]["seconds"]), builds(b["next_tick"]["builds"]))
    d = f.get("daemon")
    if d and "error" not in d:
        add(
            "git daemon: idle tick, median / p90",
            f"{ms(d['idle_tick']['median'])} / {ms(d['idle_tick']['p90'])}",
        )
        add(
            "git daemon: bare fetch + rev-parse",
            f"{ms(d['bare_fetch_rev_parse']['median'])} / {ms(d['bare_fetch_rev_parse']['p90'])}",
            f"idle tick = {d['idle_tick']['median'] / d['bare_fetch_rev_parse']['median']:.1f}x",
        )
    elif d:
        add("git daemon", "-", d["error"])
    init = f.get("initialization")
    if init:
        if s["pre_initialized"]:
            label = f"init of {init['canaries']} canaries added to the {init['apps']}"
        else:
            label = f"init of all {init['canaries']} canaries"
        ticks = sum(1 for t in init["ticks"] if t["commits"])
        add(label, ms(init["seconds"]), f"{init['commits']} commits in {ticks} ticks")
        add("  per canary", ms(init["per_canary"]), f"per commit {ms(init['per_commit'])}")
        for number, tick in enumerate(init["ticks"], 1):
            add(
                f"  tick {number}",
                ms(tick["seconds"]),
                f"{tick['commits']} commits, {builds(tick['builds'])}",
            )

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [
        f"gitcanary bench: {s['apps']} apps ({'with' if s['hpa'] else 'no'} HPA), {s['repeats']} repeats, "
        f"remote over {s['transport']}, settle={s['settle']}",
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, git {m['git']}, {m['date']}",
        "",
    ]
    lines += [f"{label:<{width}}  {value:>{vwidth}}  {note}".rstrip() for label, value, note in rows]
    if s["pre_initialized"]:
        lines.insert(
            2, "(pre-initialized: gitcanary's files for a 2-app repo copied to every app; see README)"
        )
    if f.get("idle_tick_profile"):
        lines += ["", "cProfile of one idle tick (cumulative):", f["idle_tick_profile"]]
    if f.get("init_tick_profile"):
        lines += [
            "",
            "cProfile of the first tick initializing new canaries (cumulative):",
            f["init_tick_profile"],
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000, help="number of apps (canaries) to generate")
    parser.add_argument("--repeats", type=int, default=5, help="idle ticks and bare fetches to time")
    parser.add_argument("--json", action="store_true", help="write the figures as JSON to stdout")
    parser.add_argument("--daemon", action="store_true", help="also measure over git daemon on loopback")
    parser.add_argument(
        "--hpa", action="store_true", help="give every app an HPA (autoscalerRef), as the example"
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="N",
        help="cProfile one idle tick and one initializing tick; show the top N entries (default 25)",
    )
    parser.add_argument(
        "--no-count-builds",
        action="store_true",
        help="do not count kustomize builds through a GITCANARY_KUBECTL wrapper",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="also time a cold start that reuses the work dir (one more full render pass)",
    )
    parser.add_argument(
        "--full-init",
        action="store_true",
        help="initialize all N canaries through the reconciler (timed; ~13 min at 1,000 apps)",
    )
    parser.add_argument(
        "--init-sample",
        type=int,
        default=25,
        metavar="K",
        help="without --full-init: time the initialization of K apps added to the N (default 25; 0: skip)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also measure the reconciler's peak RSS (cold start + idle ticks, in a process of its own)",
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="with --memory: measure that only, then stop"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.apps < 1 or args.repeats < 1 or args.init_sample < 0:
        parser.error("--apps and --repeats must be at least 1, --init-sample at least 0")

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    figures = run(args, log)
    figures["setup"]["total_seconds"] = time.perf_counter() - started
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
    else:
        print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
