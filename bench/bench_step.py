"""Measure what a tick of analysis steps costs in rendering, writing and committing.

N pre-initialized apps (as `bench_tick.py` generates them), K of them bumped in one push. The
reconciler starts the K rollouts, then each timed tick moves its clock by the analysis interval,
so every one of the K canaries is due, passes its checks (a stub analyzer: no Prometheus) and
commits one weight step. Per tick it prints: the wall time, `kubectl kustomize` builds, YAML
parses and dumps of ruamel (`yamlio.load*`/`dump*`, counted by wrapping those functions in this
process), git subprocesses started (every `subprocess.Popen` of git,
GitPython's included), commits, and the bytes the reconciler's clone grew by per step commit.

Run: python bench/bench_step.py [--apps 200] [--canaries 50] [--ticks 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tick as bt  # noqa: E402 - the generator and counters of the tick benchmark

COUNTS: Counter[str] = Counter()


def count_calls(module: Any, name: str, label: str) -> None:
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        COUNTS[label] += 1
        return original(*args, **kwargs)

    setattr(module, name, counted)


def instrument() -> None:
    """Count ruamel round trips and git subprocesses in this process (the bench's own wrappers)."""
    from gitcanary.manifests import yamlio

    for name in ("load", "load_all"):
        count_calls(yamlio, name, "yaml_parse")
    for name in ("dump", "dump_all"):
        count_calls(yamlio, name, "yaml_dump")
    real_popen = subprocess.Popen.__init__

    def popen(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
        first = args[0] if isinstance(args, list | tuple) and args else args
        if isinstance(first, str) and Path(first).name == "git":
            COUNTS["git_popen"] += 1
        real_popen(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = popen  # type: ignore[method-assign]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (git, kubectl): steadier than wall time
    on a machine that others share."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def objects_bytes(clone: Path) -> int:
    """Bytes under .git/objects (loose objects and packs) of a clone."""
    return sum(p.stat().st_size for p in (clone / ".git" / "objects").rglob("*") if p.is_file())


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gitcanary-bench-step-"))
    try:
        return _run(args, tmp, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    apps, canaries = args.apps, min(args.canaries, args.apps)
    counter = bt.BuildCounter(tmp, True)
    now = [datetime.now(UTC).replace(microsecond=0)]

    def clock() -> datetime:
        return now[0]

    log("template: gitcanary initializes a 2-app repository")
    template = bt.make_template(tmp, False, clock)
    log(f"generating {apps} pre-initialized apps")
    remote = bt.make_remote(
        tmp, "remote", lambda root: bt.generate_repo(root, apps, False, template), f"{apps} apps"
    )
    human = tmp / "human"
    bt.git("clone", "-q", remote.as_uri(), str(human))
    reconciler = bt.make_reconciler(remote.as_uri(), tmp / "work", clock)
    log("cold start")
    reconciler.tick()

    def bump_all(root: Path) -> None:
        for index in range(1, canaries + 1):
            bt.bump(root, index)

    bt.push_change(human, f"bump {canaries} apps", bump_all)
    instrument()
    rows = []
    for number in range(args.ticks + 1):
        if number:
            now[0] += timedelta(seconds=30)  # the Canary's analysis interval: every canary is due
        COUNTS.clear()
        builds, size = counter.count() or 0, objects_bytes(reconciler.root)
        cpu = cpu_seconds()
        start = time.perf_counter()
        result = reconciler.tick()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
        errors = {k: r.error for k, r in result.reports.items() if r.error}
        if errors:
            raise RuntimeError(f"gitcanary reported errors: {dict(list(errors.items())[:3])}")
        commits = len(result.commits)
        grown = objects_bytes(reconciler.root) - size
        rows.append(
            {
                "tick": "start" if number == 0 else f"step {number}",
                "seconds": seconds,
                "cpu_seconds": cpu,
                "commits": commits,
                "builds": (counter.count() or 0) - builds,
                "yaml_parse": COUNTS["yaml_parse"],
                "yaml_dump": COUNTS["yaml_dump"],
                "git_subprocesses": COUNTS["git_popen"],
                "objects_bytes": grown,
                "bytes_per_commit": grown / commits if commits else None,
            }
        )
        log(f"{rows[-1]['tick']}: {seconds:.2f}s, {commits} commits, {rows[-1]['builds']} builds")
    steps = rows[1:]
    return {
        "apps": apps,
        "canaries": canaries,
        "ticks": rows,
        "step_median_seconds": statistics.median(r["seconds"] for r in steps),
        "step_median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in steps),
        "step_per_canary_ms": 1000 * statistics.median(r["seconds"] for r in steps) / canaries,
    }


def table(figures: dict[str, Any]) -> str:
    head = (
        "| tick | seconds | CPU seconds | commits | kustomize builds | YAML parses | YAML dumps "
        "| git subprocesses | bytes per commit |"
    )
    lines = [
        f"{figures['apps']} apps, {figures['canaries']} canaries in analysis",
        "",
        head,
        "|---" * 9 + "|",
    ]
    for r in figures["ticks"]:
        per = f"{r['bytes_per_commit']:.0f}" if r["bytes_per_commit"] is not None else "-"
        lines.append(
            f"| {r['tick']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['commits']} | {r['builds']} "
            f"| {r['yaml_parse']} | {r['yaml_dump']} | {r['git_subprocesses']} | {per} |"
        )
    lines.append("")
    lines.append(
        f"step tick median {figures['step_median_seconds']:.2f}s "
        f"({figures['step_median_cpu_seconds']:.2f}s CPU), "
        f"{figures['step_per_canary_ms']:.1f} ms per canary"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=200, help="apps in the repository (default 200)")
    parser.add_argument(
        "--canaries", type=int, default=50, help="of them bumped and in analysis (default 50)"
    )
    parser.add_argument(
        "--ticks", type=int, default=3, help="timed step ticks after the start tick (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args, lambda message: print(message, file=sys.stderr))
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
