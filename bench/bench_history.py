"""Measure `gitcanary history` and `gitcanary audit` on a long history.

It builds (once; cached under ~/.cache/gitcanary/bench-history, or --cache DIR) a repository of
10,000 commits holding 500 rollouts of 50 canaries, then times reading it. The rollouts are made
the way the reconciler makes them: the pure core (`rollout.decide`) decides each step from
observations (passing or failing checks), and the real writer (`messages.compose`) writes the
message, trailers included. Each gitcanary commit changes that canary's status file; each rollout
starts with a person's bump; people's unrelated commits fill the history up to the total.
`git fast-import` writes the repository in one stream (seconds, not minutes).

Figures (printed, never asserted): the one `git log` pass, parsing, grouping into rollouts,
and the whole `history NS/NAME -o json`, `audit -o json` and `audit -o html` commands in-process.

Run: python bench/bench_history.py [--commits 10000] [--rollouts 500] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitcanary.core.observations import CheckResult, Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.git import messages
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus

CANARIES = 50
START = datetime(2026, 1, 1, tzinfo=UTC)
BOT = ("gitcanary", "gitcanary@users.noreply.local")
PEOPLE = [
    ("Pat Person", "pat@example.com"),
    ("Sam Sample", "sam@example.com"),
    ("Ann Admin", "ann@example.com"),
]


def canary(index: int) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": f"app-{index:02d}", "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app-{index:02d}"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 5},
            },
        }
    )


def checks(healthy: bool, rng: random.Random) -> tuple[CheckResult, ...]:
    """Checks as `analysis.run.judge` reports them (name, value, bounds, verdict, the human line)."""
    rate = round(rng.uniform(99.2, 99.99), 2) if healthy else round(rng.uniform(80, 98.5), 2)
    latency = round(rng.uniform(80, 300))
    rate_line = (
        f"request-success-rate {rate} >= 99 ok" if rate >= 99 else f"request-success-rate {rate} < 99 failed"
    )
    return (
        CheckResult("request-success-rate", rate, 99.0, None, rate >= 99, rate_line),
        CheckResult(
            "request-duration", latency, None, 500.0, True, f"request-duration {latency}ms <= 500ms ok"
        ),
    )


class History:
    """Commits in order, as (author, time, message, path, content)."""

    def __init__(self) -> None:
        self.commits: list[tuple[tuple[str, str], datetime, str, str, str]] = []

    def add(self, who: tuple[str, str], when: datetime, message: str, path: str, content: str) -> None:
        self.commits.append((who, when, message, path, content))


def rollout_commits(
    history: History, target: Canary, rollouts: int, rng: random.Random, clock: datetime
) -> None:
    """Drive the real core for one canary: initialize, then `rollouts` bumps that end promoted,
    rolled back, or superseded by the next bump; every decision written by the real writer."""
    name = target.metadata.name
    status_path = f"apps/{name}-gitcanary/gitcanary-status.yaml"
    status: CanaryStatus | None = None
    revision = 0

    def commit(decision_status: CanaryStatus, message: str, now: datetime) -> None:
        history.add(BOT, now, message, status_path, json.dumps(decision_status.to_document(target.key)))

    def step(obs: Observation, healthy: bool = True, extra: dict[str, object] | None = None) -> Action:
        """One tick as `Reconciler.observe` runs it: decide; on MEASURE, measure and decide again."""
        nonlocal status
        decision = decide(target, status, obs)
        if decision.action is Action.MEASURE:
            measured = checks(healthy, rng)
            decision = decide(target, status, replace(obs, checks=measured))
            decision = replace(decision, checks=measured)
        if decision.status is not None:
            commit(decision.status, messages.compose(target, status, decision, [], extra), obs.now)
            status = decision.status
        return decision.action

    def obs(now: datetime) -> Observation:
        return Observation(now, f"sha256:{name}:{revision}", f"1.{revision}.0")

    step(obs(clock))
    clock += timedelta(minutes=1)
    step(obs(clock))
    superseding = False
    for _ in range(rollouts):
        if not superseding:
            clock += timedelta(hours=rng.randint(1, 30))
        revision += 1
        who = rng.choice(PEOPLE)
        kustomization = f"apps/{name}/kustomization.yaml"
        history.add(who, clock, f"{name}: bump to 1.{revision}.0", kustomization, f"newTag: 1.{revision}.0\n")
        fate = rng.random()
        superseding = 0.75 <= fate < 0.85  # healthy, but a newer bump arrives after three steps
        healthy = fate < 0.85
        extra = {"Bumped-By": f"{who[0]} <{who[1]}>"}
        for ticks in range(60):
            clock += timedelta(minutes=1)
            action = step(obs(clock), healthy, extra if ticks == 0 else None)
            if superseding and ticks == 3:
                break  # a newer bump arrives mid-analysis: the next start is a restart
            if action in (Action.SUCCEED, Action.ROLLBACK):
                break


def build(directory: Path, total: int, rollouts: int) -> None:
    rng = random.Random(7)
    history = History()
    per_canary = rollouts // CANARIES
    for index in range(CANARIES):
        rollout_commits(history, canary(index), per_canary, rng, START + timedelta(minutes=index))
    history.commits.sort(key=lambda c: c[1])
    filler = total - len(history.commits) - 1
    if filler < 0:
        raise SystemExit(f"{len(history.commits)} rollout commits already exceed --commits {total}")
    span = (history.commits[-1][1] - START).total_seconds()
    for n in range(filler):
        when = START + timedelta(seconds=rng.uniform(0, span))
        history.add(rng.choice(PEOPLE), when, f"docs: note {n}", f"notes/{n % 97}.md", f"note {n}\n")
    history.commits.sort(key=lambda c: c[1])

    stream = io.BytesIO()

    def data(text: str) -> None:
        raw = text.encode()
        stream.write(b"data %d\n" % len(raw) + raw + b"\n")

    stream.write(b"commit refs/heads/main\nmark :1\n")
    stamp = int(START.timestamp()) - 60
    stream.write(f"author Pat Person <pat@example.com> {stamp} +0000\n".encode())
    stream.write(f"committer Pat Person <pat@example.com> {stamp} +0000\n".encode())
    data("seed\n")
    stream.write(b"M 100644 inline README.md\n")
    data("bench\n")
    for mark, (who, when, message, path, content) in enumerate(history.commits, start=2):
        stamp = int(when.timestamp())
        stream.write(f"commit refs/heads/main\nmark :{mark}\n".encode())
        person = f"{who[0]} <{who[1]}> {stamp} +0000"
        stream.write(f"author {person}\ncommitter {person}\n".encode())
        data(message)
        stream.write(f"from :{mark - 1}\nM 100644 inline {path}\n".encode())
        data(content)
    directory.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(directory)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=directory, input=stream.getvalue(), check=True)
    subprocess.run(["git", "gc", "-q"], cwd=directory, check=True)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (git): on a busy machine, wall time
    also counts other people's work."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(function: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time, of `repeats` runs, in milliseconds."""
    runs, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), _cpu()
        function()
        runs.append((time.perf_counter() - began) * 1000)
        cpu.append((_cpu() - began_cpu) * 1000)
    return statistics.median(runs), min(runs), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitcanary" / "bench-history")
    parser.add_argument("--rebuild", action="store_true", help="Build the repository again.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from typer.testing import CliRunner

    from gitcanary.audit.gitlog import open_repo, read_log
    from gitcanary.audit.model import rollouts
    from gitcanary.audit.parse import parse_commits
    from gitcanary.commands.cli import app

    repo_dir = args.cache / f"repo-{args.commits}-{args.rollouts}.git"
    if args.rebuild:
        shutil.rmtree(repo_dir, ignore_errors=True)
    if not repo_dir.exists():
        print(f"building {repo_dir} ...", file=sys.stderr)
        began = time.perf_counter()
        build(repo_dir, args.commits, args.rollouts)
        print(f"built in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    count = int(subprocess.run(["git", "rev-list", "--count", "main"], cwd=repo_dir, capture_output=True,
                               text=True, check=True).stdout)  # fmt: skip

    handle, rev = open_repo(str(repo_dir))
    commits = read_log(handle, rev)
    steps, problems = parse_commits(commits)
    found = rollouts(steps)
    runner = CliRunner()

    def command(*argv: str) -> Callable[[], object]:
        def run() -> object:
            with redirect_stdout(io.StringIO()):
                result = runner.invoke(app, list(argv))
            assert result.exit_code == 0, result.output
            return result

        return run

    figures = {
        "commits": count,
        "gitcanary commits": len(commits),
        "steps": len(steps),
        "rollouts": len(found),
        "problems": len(problems),
    }
    repo_arg = ("--repo", str(repo_dir))
    timings = {
        "git log (one pass, --grep)": timed(lambda: read_log(handle, rev), args.repeats),
        "parse steps": timed(lambda: parse_commits(commits), args.repeats),
        "group into rollouts": timed(lambda: rollouts(steps), args.repeats),
        "history prod/app-07 -o json": timed(
            command("history", "prod/app-07", *repo_arg, "-o", "json"), args.repeats
        ),
        "audit -o json": timed(command("audit", *repo_arg, "-o", "json"), args.repeats),
        "audit -o html": timed(command("audit", *repo_arg, "-o", "html"), args.repeats),
    }
    if args.json:
        ms = {k: {"median": m, "best": b, "cpu": c} for k, (m, b, c) in timings.items()}
        print(json.dumps({**figures, "ms": ms, "load": os.getloadavg()[0]}, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:32} {value:>8}")
    print(f"{'':32} {'median ms':>10} {'best ms':>10} {'cpu ms':>10}")
    for key, (median, best, cpu) in timings.items():
        print(f"{key:32} {median:>10.0f} {best:>10.0f} {cpu:>10.0f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
