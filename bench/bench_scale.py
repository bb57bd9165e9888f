"""Measure analysis ticks with N canaries in analysis, each beside its floor measured in the same run.

For each N (default 50, 200 and 1,000): N apps (bench_tick.py's generator, pre-initialized), every
one bumped, started and past its first weight, so that each tick under test analyses all N against a
real Prometheus holding Istio series for every app, and commits one step for each. Printed:
  - the analysis tick (median of --repeats) beside its floor: a bare `git fetch` of a plain clone,
    the same queries sent 16 at a time over one kept-alive httpx client, one commit of the files
    the tick changed, and a push of it;
  - the tick split by part (render, queries, YAML, commits, push, fetch, the rest), from timers put
    around gitcanary's functions for the run (wall time on the tick's thread; no cProfile);
  - commits and bytes (the remote's objects, loose and packed) per rollout, when the rollouts of N
    are carried to Succeeded (N <= --rollout-max);
  - at the largest N: a tick with nothing due beside a bare fetch; push -> first step of a bumped
    app while the tick waits for the N analyses, beside its floor (fetch + one commit + push);
  - a replica failover time, from bench/bench_failover.py's `measure_failover()` when that exists.

Run: python bench/bench_scale.py [--canaries 50,200,1000] [--repeats 3] [--quick] [--json]"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import json
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import bench_tick as gen  # noqa: E402 - the repository generator lives there; reused, not copied

INTERVAL = timedelta(seconds=31)  # the generated canaries analyse every 30s
FLOOR_CONCURRENCY = 16


# -- timers around gitcanary's functions ---------------------------------------------------------


class Timers:
    """Exclusive wall time per part on the thread that runs the tick: a part's nested parts (YAML
    parsed inside a render) count for the inner one only. Other threads are not counted."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.thread: int | None = None
        self._stack: list[list[float]] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return  # renamed upstream: that part shows under "the rest"
        timers = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != timers.thread:
                return original(*args, **kwargs)
            frame = [time.perf_counter(), 0.0]
            timers._stack.append(frame)
            try:
                return original(*args, **kwargs)
            finally:
                timers._stack.pop()
                spent = time.perf_counter() - frame[0]
                timers.totals[part] = timers.totals.get(part, 0.0) + spent - frame[1]
                if timers._stack:
                    timers._stack[-1][1] += spent

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()

    @contextlib.contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        self.totals = {}
        self.thread = threading.get_ident()
        found: dict[str, float] = {}
        try:
            yield found
        finally:
            found.update(self.totals)
            self.thread = None


PARTS = ("render", "queries", "yaml", "commits", "push", "fetch")


def instrument(queries: list[tuple[str, float]]) -> Timers:
    """Timers on the functions a tick's parts run through; every PromQL sent is recorded."""
    from gitcanary.analysis import prometheus
    from gitcanary.git import workspace
    from gitcanary.manifests import yamlio
    from gitcanary.service import analyses, reconciler

    timers = Timers()
    timers.wrap(reconciler, "render_target", "render")
    for name in ("load", "load_all", "dump", "dump_all"):
        timers.wrap(yamlio, name, "yaml")
    timers.wrap(workspace.Workspace, "commit", "commits")
    timers.wrap(workspace.Workspace, "push", "push")
    timers.wrap(workspace.Workspace, "sync", "fetch")
    # The tick's thread waits for the analyses in these (inline ones run in `_analyze`).
    timers.wrap(reconciler.Reconciler, "_analyze", "queries")
    timers.wrap(analyses.Analyses, "wait_or", "queries")
    timers.wrap(analyses.Analyses, "take", "queries")
    original = prometheus.PrometheusClient.query
    lock = threading.Lock()

    def recording(self: Any, promql: str, at: datetime) -> float:
        with lock:
            queries.append((promql, at.timestamp()))
        return original(self, promql, at)

    prometheus.PrometheusClient.query = recording  # type: ignore[method-assign]
    timers._undo.append(lambda: setattr(prometheus.PrometheusClient, "query", original))
    return timers


# -- the floor ----------------------------------------------------------------------------------


@dataclass
class Floor:
    """A plain clone of a copy of the remote, where a person-sized tick is done by hand."""

    clone: Path
    remote: Path  # the copy it pushes to
    source: Path  # gitcanary's remote, where the tick's result is read from

    @classmethod
    def make(cls, tmp: Path, source: Path, name: str) -> Floor:
        remote = tmp / f"{name}.git"
        gen.git("clone", "-q", "--bare", str(source), str(remote))
        clone = tmp / name
        gen.git("clone", "-q", "--no-tags", str(remote), str(clone))
        return cls(clone, remote, source)

    def prepare(self, before: str, after: str) -> None:
        """Untimed: the clone and its remote at `before`, the work tree holding `after`'s files."""
        gen.git(
            "fetch", "-q", "--no-tags", str(self.source), "+refs/heads/main:refs/heads/tick", cwd=self.clone
        )
        gen.git("reset", "-q", "--hard", before, cwd=self.clone)
        gen.git("push", "-q", "-f", "origin", f"{before}:refs/heads/{gen.BRANCH}", cwd=self.clone)
        gen.git("fetch", "-q", "origin", cwd=self.clone)
        gen.git("checkout", "-q", after, "--", ".", cwd=self.clone)
        gen.git("reset", "-q", cwd=self.clone)

    def fetch(self) -> float:
        start = time.perf_counter()
        gen.git(
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{gen.BRANCH}:refs/remotes/origin/{gen.BRANCH}",
            cwd=self.clone,
        )
        gen.git("rev-parse", f"origin/{gen.BRANCH}", cwd=self.clone)
        return time.perf_counter() - start

    def commit_and_push(self) -> tuple[float, float]:
        start = time.perf_counter()
        gen.git("add", "-A", cwd=self.clone)
        gen.git(*gen.HUMAN, "commit", "-q", "-m", "the same files, one commit", cwd=self.clone)
        middle = time.perf_counter()
        gen.git("push", "-q", "origin", f"HEAD:{gen.BRANCH}", cwd=self.clone)
        return middle - start, time.perf_counter() - middle


def send_queries(url: str, queries: list[tuple[str, float]]) -> float:
    """The same PromQL, FLOOR_CONCURRENCY at a time over one kept-alive client."""
    import httpx

    with httpx.Client(timeout=30) as client:

        def one(query: tuple[str, float]) -> None:
            answer = client.get(f"{url}/api/v1/query", params={"query": query[0], "time": f"{query[1]:.3f}"})
            answer.raise_for_status()

        start = time.perf_counter()
        with ThreadPoolExecutor(FLOOR_CONCURRENCY) as pool:
            list(pool.map(one, queries))
        return time.perf_counter() - start


# -- one N ----------------------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Result:
    canaries: int
    ticks: list[float] = field(default_factory=list)
    floors: list[dict[str, float]] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    commits_per_tick: list[int] = field(default_factory=list)
    queries_per_tick: list[int] = field(default_factory=list)
    rollout: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def traffic_for(apps: int, end: datetime) -> list[Any]:
    from prometheus_server import Traffic

    # Twelve minutes of data: enough for every tick's 1m windows, small enough to backfill 1,000 apps.
    start = end - timedelta(minutes=12)
    return [
        Traffic(
            gen.app_name(i), gen.namespace(i), rps=20, error_ratio=0.001, p99_ms=120, start=start, end=end
        )
        for i in range(1, apps + 2)
    ]


def make_reconciler(url: str, work: Path, prometheus: str, clock: Clock) -> Any:
    from gitcanary.service.reconciler import Reconciler
    from gitcanary.service.settings import Settings

    settings = Settings(repo=url, branch=gen.BRANCH, workdir=work, prometheus=prometheus, settle=0)
    return Reconciler(settings, clock=clock, sleep=lambda _: None)


def checked(result: Any) -> Any:
    errors = {**result.errors, **{k: r.error for k, r in result.reports.items() if r.error}}
    if errors:
        raise RuntimeError(f"gitcanary reported errors: {dict(list(errors.items())[:5])}")
    return result


def repo_bytes(remote: Path) -> int:
    """The remote's objects on disk, loose and packed, in bytes."""
    found = dict(
        line.split(": ", 1)
        for line in gen.git("count-objects", "-v", cwd=remote).splitlines()
        if ": " in line
    )
    return (int(found.get("size", 0)) + int(found.get("size-pack", 0))) * 1024


def bump_all(human: Path, first: int, last: int) -> None:
    gen.git("pull", "-q", "--ff-only", cwd=human)
    for index in range(first, last + 1):
        gen.bump(human, index)
    gen.git("add", "-A", cwd=human)
    gen.git(*gen.HUMAN, "commit", "-q", "-m", f"bump apps {first}..{last}", cwd=human)
    gen.git("push", "-q", "origin", f"HEAD:{gen.BRANCH}", cwd=human)


def measure(
    n: int, args: argparse.Namespace, tmp: Path, template: Any, prometheus: Any, log: Callable[[str], None]
) -> Result:
    from gitcanary.spec.status import Phase

    result = Result(n)
    base = tmp / f"n{n}"
    base.mkdir()
    # One app more than N: it stays idle until it is bumped for push -> first step.
    apps = n + 1
    remote = gen.make_remote(
        base, "remote", lambda root: gen.generate_repo(root, apps, False, template), f"{apps} apps"
    )
    url = remote.as_uri()
    human = base / "human"
    gen.git("clone", "-q", "-b", gen.BRANCH, url, str(human))
    clock = Clock(args.start)
    rec = make_reconciler(url, base / "work", prometheus.url, clock)
    log(f"N={n}: cold start")
    checked(rec.tick())
    bytes_before = repo_bytes(remote)
    bump_all(human, 1, n)
    bumped = gen.git("rev-parse", "HEAD", cwd=human)
    log(f"N={n}: start {n} rollouts")
    checked(rec.tick())
    clock.now += INTERVAL
    checked(rec.tick())  # the first weight goes without an analysis
    floor = Floor.make(base, remote, "floor")
    # Once per process, not per tick: the judges' first import (scipy) takes seconds.
    importlib.import_module("gitcanary.analysis.judges")
    queries: list[tuple[str, float]] = []
    timers = instrument(queries)
    try:
        for repeat in range(args.repeats):
            clock.now += INTERVAL
            before = gen.git("rev-parse", gen.BRANCH, cwd=remote)
            queries.clear()
            log(f"N={n}: analysis tick {repeat + 1}/{args.repeats}")
            profiler = cProfile.Profile() if args.profile and repeat == args.repeats - 1 else None
            with timers.measuring() as parts:
                start = time.perf_counter()
                if profiler:
                    profiler.enable()
                tick = checked(rec.tick())
                if profiler:
                    profiler.disable()
                seconds = time.perf_counter() - start
            if profiler:
                profiler.dump_stats(f"{args.profile}.{n}")
                log(f"N={n}: cProfile of the last analysis tick in {args.profile}.{n} (times inflated)")
            if len(tick.commits) != n:
                raise RuntimeError(f"the analysis tick committed {len(tick.commits)} steps, not {n}")
            after = gen.git("rev-parse", gen.BRANCH, cwd=remote)
            result.ticks.append(seconds)
            result.parts.append({**parts, "rest": seconds - sum(parts.values())})
            result.commits_per_tick.append(len(tick.commits))
            result.queries_per_tick.append(len(queries))
            floor.prepare(before, after)
            fetched = floor.fetch()
            sent = send_queries(prometheus.url, list(queries))
            committed, pushed = floor.commit_and_push()
            result.floors.append(
                {
                    "fetch": fetched,
                    "queries": sent,
                    "commit": committed,
                    "push": pushed,
                    "total": fetched + sent + committed + pushed,
                }
            )
    finally:
        timers.restore()
    if n == max(args.canaries):
        result.extra.update(idle_and_webhook(n, rec, clock, human, floor, log, args.profile))
    if n <= args.rollout_max:
        log(f"N={n}: carry the rollouts to Succeeded")
        for _ in range(20):
            clock.now += INTERVAL
            checked(rec.tick())
            phases = {
                r.status.phase
                for k, r in rec.reports.items()
                if r.status and k != f"{gen.namespace(apps)}/{gen.app_name(apps)}"
            }
            if phases == {Phase.SUCCEEDED}:
                break
        else:
            raise RuntimeError(f"the rollouts did not all succeed: {phases}")
        extra_key = f"{gen.namespace(apps)}/{gen.app_name(apps)}"
        keys = gen.git(
            "log",
            "--format=%(trailers:key=Gitcanary-Canary,valueonly)",
            f"{bumped}..{gen.BRANCH}",
            cwd=remote,
        ).split()
        # Bytes: everything the remote gained since the bump (the bump itself and, at the largest N,
        # the extra app's start included), per rollout of the N.
        result.rollout = {
            "commits": sum(1 for key in keys if key != extra_key) / n,
            "bytes": (repo_bytes(remote) - bytes_before) / n,
        }
    return result


def idle_and_webhook(
    n: int,
    rec: Any,
    clock: Clock,
    human: Path,
    floor: Floor,
    log: Callable[[str], None],
    profile: str | None = None,
) -> dict[str, Any]:
    """At the largest N: a tick with nothing due beside a bare fetch; push -> first step while the
    tick waits for its N analyses, beside fetch + one commit + push."""
    log(f"N={n}: ticks with nothing due vs bare fetch")
    idle = []
    for _ in range(5):
        start = time.perf_counter()
        if checked(rec.tick()).commits:
            raise RuntimeError("a tick with nothing due committed")
        idle.append(time.perf_counter() - start)
    bare = [floor.fetch() for _ in range(5)]
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        rec.tick()
        profiler.disable()
        profiler.dump_stats(f"{profile}.idle")
        log(f"N={n}: cProfile of a tick with nothing due in {profile}.idle")
    log(f"N={n}: push -> first step of a bumped app while the tick waits for {n} analyses")
    remote = floor.source
    extra = n + 1
    key = f"{gen.namespace(extra)}/{gen.app_name(extra)}"
    clock.now += INTERVAL
    ticked: list[Any] = []

    def job() -> None:  # what `gitcanary run` does: tick, and tick again for a wake it did not serve
        while True:
            ticked.append(rec.tick())
            if not rec._woken.is_set():
                return

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 600
    while getattr(rec, "_analyses", None) is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    in_analysis = getattr(rec, "_analyses", None) is not None
    start = time.perf_counter()
    bump_all(human, extra, extra)
    push_seconds = time.perf_counter() - start
    rec.wake()
    latency = None
    while time.monotonic() < deadline:
        found = gen.git(
            "log", "--format=%(trailers:key=Gitcanary-Canary,valueonly)", "-n", "30", gen.BRANCH, cwd=remote
        )
        if key in found.split():
            latency = time.perf_counter() - start
            break
        time.sleep(0.005)
    tick_running = thread.is_alive()
    thread.join()
    for tick in ticked:
        checked(tick)
    # Floor: the push, a bare fetch, one commit of the start's files and a push.
    start_sha = gen.git("log", "-1", "--format=%H", f"--grep=Gitcanary-Canary: {key}", gen.BRANCH, cwd=remote)
    floor.prepare(f"{start_sha}~1", start_sha)
    fetched = floor.fetch()
    committed, pushed = floor.commit_and_push()
    return {
        "idle_tick": statistics.median(idle),
        "bare_fetch": statistics.median(bare),
        "push_first_step": latency,
        "push_first_step_floor": push_seconds + fetched + committed + pushed,
        "push_during_analysis": in_analysis,
        "tick_still_running": tick_running,
        "fast_lane": bool(ticked) and start_sha in ticked[0].commits,
    }


def failover() -> tuple[str, Any]:
    try:
        module = importlib.import_module("bench_failover")
    except ImportError:
        return "n/a", None
    measure_failover = getattr(module, "measure_failover", None)
    if measure_failover is None:
        return "n/a", None
    try:
        found = measure_failover()
    except Exception as exc:  # noqa: BLE001 - another bench's failure is shown, not raised
        return f"n/a ({type(exc).__name__})", None
    if isinstance(found, dict) and "first_commit_s" in found:
        # Kill -> the Lease names another holder, and -> the new leader's first commit.
        text = (
            f"Lease {found['takeover_s']:.1f} s, commit {found['first_commit_s']:.1f} s "
            f"(lease {found['lease_duration_s']:g} s)"
        )
        return text, found
    return "n/a", found


# -- output ---------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(results: list[Result], failover_text: str, setup: dict[str, Any]) -> str:
    m = setup["machine"]
    lines = [
        f"gitcanary bench_scale: {setup['repeats']} repeats, medians; machine: {m['cpus']} CPUs "
        f"({m['cpu_model']}), Python {m['python']}, git {m['git']}",
        "",
        "| canaries in analysis | analysis tick | floor | ratio | render | queries | YAML | commits | push "
        "| fetch | rest | commits / rollout | bytes / rollout | failover |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        tick = statistics.median(r.ticks)
        floor = statistics.median(f["total"] for f in r.floors)
        parts = " | ".join(ms(statistics.median(x.get(p, 0.0) for x in r.parts)) for p in (*PARTS, "rest"))
        rollout = r.rollout
        per_rollout = f"{rollout['commits']:.1f} | {rollout['bytes'] / 1024:,.0f} KiB" if rollout else "- | -"
        lines.append(
            f"| {r.canaries:,} | {ms(tick)} | {ms(floor)} | {tick / floor:.1f}x | {parts} | {per_rollout} "
            f"| {failover_text} |"
        )
    lines.append("")
    for r in results:
        f = r.floors

        def median_of(part: str, f: list[dict[str, float]] = f) -> str:
            return ms(statistics.median(x[part] for x in f))

        lines.append(
            f"N={r.canaries:,}: floor parts: fetch {median_of('fetch')}, {r.queries_per_tick[0]} queries "
            f"16 at a time {median_of('queries')}, commit {median_of('commit')}, push {median_of('push')}; "
            f"the tick made {r.commits_per_tick[0]} commits"
        )
        e = r.extra
        if e:
            ratio = (e["push_first_step"] or 0) / e["push_first_step_floor"]
            lines.append(
                f"N={r.canaries:,}: tick with nothing due {ms(e['idle_tick'])} vs bare fetch "
                f"{ms(e['bare_fetch'])} ({e['idle_tick'] / e['bare_fetch']:.1f}x)"
            )
            lines.append(
                f"N={r.canaries:,}: push -> first step while the tick analyses {r.canaries:,} canaries: "
                f"{ms(e['push_first_step'])} vs floor {ms(e['push_first_step_floor'])} ({ratio:.1f}x); "
                f"stepped by the fast lane: {e['fast_lane']}, the tick still running when it landed: "
                f"{e['tick_still_running']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--canaries",
        default="50,200,1000",
        help="comma-separated N: canaries in analysis (default 50,200,1000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="analysis ticks timed per N (1-4; default 3)")
    parser.add_argument(
        "--rollout-max",
        type=int,
        default=200,
        help="carry rollouts to Succeeded (commits, bytes) for N up to this",
    )
    parser.add_argument("--quick", action="store_true", help="N=10, 1 repeat: under 2 minutes")
    parser.add_argument("--json", action="store_true", help="write the figures as JSON to stdout")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the last analysis tick of each N into FILE.N, and a tick with nothing due into "
        "FILE.idle (pstats format; slows those ticks)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.canaries, args.repeats = "10", 1
    args.canaries = sorted({int(n) for n in args.canaries.split(",") if n.strip()})
    if not args.canaries or min(args.canaries) < 1 or not 1 <= args.repeats <= 4:
        parser.error(
            "--canaries needs positive numbers; --repeats is 1 to 4 (a rollout has four analysed steps)"
        )

    from prometheus_server import DATA_END, running_prometheus

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    # Ticks run at instants inside the data: the start, then 31 s per tick (at most ~12 ticks).
    args.start = DATA_END - timedelta(minutes=9)
    tmp = Path(tempfile.mkdtemp(prefix="gitcanary-scale-"))
    results = []
    try:
        log(f"real Prometheus with series for {max(args.canaries) + 1} apps")
        with running_prometheus(
            traffic_for(max(args.canaries), DATA_END), workdir=tmp / "prometheus"
        ) as prometheus:
            log("template: gitcanary initializes a 2-app repository")
            template = gen.make_template(tmp, False, lambda: args.start)
            for n in args.canaries:
                results.append(measure(n, args, tmp, template, prometheus, log))
        log("replica failover (bench_failover.measure_failover)")
        failover_text, failover_raw = failover()
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    setup = {
        "repeats": args.repeats,
        "machine": gen.machine(),
        "total_seconds": time.perf_counter() - started,
    }
    if args.json:
        out = {"setup": setup, "failover": failover_raw, "results": [r.__dict__ for r in results]}
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
    else:
        print(table(results, failover_text, setup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
