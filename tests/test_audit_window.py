"""`audit --since` reads a window of history from git, and gives what the full-history audit gives.

The repository is written with real `git fast-import`: 2,000 old gitcanary commits (400 promoted
rollouts), then rollouts around a 30-day window: one that started before it and ended inside it
(left out, as the full audit leaves it out), one started before it and still open with no step in it
(kept whole, found through its status file), one open with a step in it, one superseded from
before the window by one inside it, and one wholly inside it. The oracle reads the full `git log`
itself and groups the trailers without gitcanary's parser.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import git
from typer.testing import CliRunner

from gitcanary.audit import gitlog, window
from gitcanary.audit.parse import RawCommit
from gitcanary.commands.cli import app

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)
OLD_ROLLOUTS = 400  # x 5 commits
_ACTIONS = ("start", "advance", "advance", "promote", "succeed")
_PHASES = ("Progressing", "Progressing", "Progressing", "Promoting", "Succeeded")


def _z(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Stream:
    """A `git fast-import` stream of gitcanary step commits on one branch."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.mark = 0

    def commit(
        self,
        canary: str,
        action: str,
        rollout: str,
        phase: str,
        weight: int,
        when: datetime,
        files: dict[str, str] | None = None,
    ) -> None:
        message = (
            f"gitcanary: {canary} {action}\n\nGitcanary-Canary: {canary}\nGitcanary-Action: {action}\n"
            f"Gitcanary-Rollout: {rollout}\nGitcanary-Phase: {phase}\nGitcanary-Weight: {weight}\n"
            f"Gitcanary-Time: {_z(when)}\n"
        ).encode()
        self.mark += 1
        stamp = f"{int(when.timestamp())} +0000"
        head = f"commit refs/heads/main\nmark :{self.mark}\n"
        head += f"author Bot <bot@example.com> {stamp}\ncommitter Bot <bot@example.com> {stamp}\n"
        head += f"data {len(message)}\n"
        body = [head.encode(), message]
        if self.mark > 1:
            body.append(f"from :{self.mark - 1}\n".encode())
        for path, text in (files or {}).items():
            data = text.encode()
            body.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        body.append(b"\n")
        self.parts.append(b"".join(body))

    def rollout(self, canary: str, started: datetime, steps: list[tuple[str, str, int, datetime]]) -> str:
        rollout_id = f"v1..v2/{_z(started)}"
        for action, phase, weight, when in steps:
            self.commit(canary, action, rollout_id, phase, weight, when)
        return rollout_id


def _status(canary: str, phase: str, rollout_id: str) -> str:
    return f"canary: {canary}\nstatus:\n  phase: {phase}\n  rolloutId: {rollout_id}\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("window") / "repo"
    git("init", "-q", "-b", "main", str(path), cwd=path.parent)
    s = Stream()
    first = NOW - timedelta(days=500)
    for n in range(OLD_ROLLOUTS):
        started = first + timedelta(hours=12 * n)
        steps = [
            (a, p, 20 * i, started + timedelta(minutes=i))
            for i, (a, p) in enumerate(zip(_ACTIONS, _PHASES, strict=True))
        ]
        s.rollout(f"old/app-{n % 20}", started, steps)
    day = timedelta(days=1)
    # Started before the window, ended inside it: the full audit leaves it out.
    s.rollout(
        "prod/straddle",
        NOW - 40 * day,
        [
            ("start", "Progressing", 10, NOW - 40 * day),
            ("advance", "Progressing", 20, NOW - 35 * day),
            ("succeed", "Succeeded", 0, NOW - 10 * day),
        ],
    )
    # Superseded from before the window by a rollout inside it.
    s.rollout(
        "prod/superseded",
        NOW - 60 * day,
        [("start", "Progressing", 10, NOW - 60 * day), ("advance", "Progressing", 20, NOW - 59 * day)],
    )
    quiet = s.rollout(
        "prod/quiet",
        NOW - 45 * day,
        [("start", "Progressing", 10, NOW - 45 * day), ("advance", "Progressing", 20, NOW - 40 * day)],
    )
    s.rollout(
        "prod/active",
        NOW - 50 * day,
        [("start", "Progressing", 10, NOW - 50 * day), ("advance", "Progressing", 20, NOW - 5 * day)],
    )
    s.rollout(
        "prod/recent",
        NOW - 5 * day,
        [("start", "Progressing", 10, NOW - 5 * day), ("succeed", "Succeeded", 0, NOW - 4 * day)],
    )
    newer = f"v2..v3/{_z(NOW - 3 * day)}"
    # The last commit writes the status files the tip holds: prod/quiet is open without a step in the window.
    s.commit(
        "prod/superseded",
        "start",
        newer,
        "Progressing",
        10,
        NOW - 3 * day,
        files={
            "apps/quiet/gitcanary-status.yaml": _status("prod/quiet", "Progressing", quiet),
            "apps/superseded/gitcanary-status.yaml": _status("prod/superseded", "Progressing", newer),
        },
    )
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(s.parts), cwd=path, check=True)
    git("checkout", "-q", "main", cwd=path)
    return path


_TRAILER = re.compile(r"^Gitcanary-([A-Za-z-]+):\s*(.*)$", re.MULTILINE)


def _oracle(path: Path) -> dict[str, tuple[str, int]]:
    """Rollout id -> (outcome word, number of commits), for the rollouts a 30-day audit keeps,
    from the whole `git log` read and grouped here."""
    out = subprocess.run(
        ["git", "log", "--format=%B%x00"], cwd=path, check=True, capture_output=True, text=True
    )
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for message in out.stdout.split("\x00"):
        fields = dict(_TRAILER.findall(message))
        if fields:
            groups.setdefault((fields["Canary"], fields["Rollout"]), []).append(fields)
    latest_start: dict[str, datetime] = {}
    for (canary, _), steps in groups.items():
        start = min(datetime.fromisoformat(f["Time"]) for f in steps)
        latest_start[canary] = max(latest_start.get(canary, start), start)
    kept = {}
    for (canary, rollout_id), steps in groups.items():
        start = min(datetime.fromisoformat(f["Time"]) for f in steps)
        ended = any(f["Action"] in ("succeed", "rollback", "cancel") for f in steps)
        superseded = not ended and start < latest_start[canary]
        outcome = "promoted" if ended else "superseded" if superseded else "in progress"
        if start >= SINCE or outcome == "in progress":
            kept[rollout_id] = (outcome, len(steps))
    return kept


def _audit_json(path: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["audit", "--repo", str(path), "--since", _z(SINCE), "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_windowed_audit_is_the_full_audit_filtered(repo: Path) -> None:
    expected = _oracle(repo)
    # The oracle itself: the straddling rollout is out, the quiet and active ones are in, whole.
    assert f"v1..v2/{_z(NOW - 40 * timedelta(days=1))}" not in expected
    assert expected[f"v1..v2/{_z(NOW - 45 * timedelta(days=1))}"] == ("in progress", 2)
    assert expected[f"v1..v2/{_z(NOW - 50 * timedelta(days=1))}"] == ("in progress", 2)
    data = _audit_json(repo)
    got = {r["id"]: (r["outcome"], len(r["commits"])) for r in data["details"]}
    assert got == expected


def test_windowed_audit_reads_far_fewer_commits(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []
    original = gitlog.read_log

    def counting(*args: object, **kwargs: object) -> list[RawCommit]:
        commits = original(*args, **kwargs)  # type: ignore[arg-type]
        read.append(len(commits))
        return commits

    # Instrumentation only: the real reader runs, this counts what git handed back.
    monkeypatch.setattr(gitlog, "read_log", counting)
    monkeypatch.setattr(window, "read_log", counting)
    _audit_json(repo)
    total = len(original(__import__("git").Repo(repo)))
    assert total > 5 * OLD_ROLLOUTS
    assert 0 < sum(read) < 50, read  # the window, then back to 51 days: a dozen commits, read twice at most


def test_verify_reads_every_commit_even_with_since(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/history-audit.md: "`--verify` still reads every commit, since a forged one may sit
    anywhere": with `--since`, `--verify` walks the whole history, not the window."""
    read: list[int] = []
    original = gitlog.read_log

    def counting(*args: object, **kwargs: object) -> list[RawCommit]:
        commits = original(*args, **kwargs)  # type: ignore[arg-type]
        read.append(len(commits))
        return commits

    # Instrumentation only: the real reader runs, this counts what git handed back.
    monkeypatch.setattr(gitlog, "read_log", counting)
    monkeypatch.setattr(window, "read_log", counting)
    CliRunner().invoke(app, ["audit", "--repo", str(repo), "--since", _z(SINCE), "--verify", "-o", "json"])
    total = len(original(__import__("git").Repo(repo)))
    assert total > 5 * OLD_ROLLOUTS
    assert read == [total]
