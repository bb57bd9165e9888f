"""`audit --since` read from git in a window, not from the whole history.

Two bounded `git log --since` walks: the window itself, then back to the start of every rollout
the window keeps (those with a step in it, and those still open at the tip), so a rollout that
started before the window comes back complete and the result is the full-history audit filtered
to the window. The cost follows the window and the longest open rollout, not the repository's age.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from git import GitCommandError, Repo

from gitcanary.audit.gitlog import read_log
from gitcanary.audit.parse import RawCommit, Step, parse_commits, parse_time
from gitcanary.manifests import yamlio
from gitcanary.manifests.discovery import STATUS_FILE

# `git log --since` compares committer dates, steps carry their `Gitcanary-Time`: a commit written
# (or its clock) a little behind its trailer still lands in the read, and is filtered exactly later.
SLACK = timedelta(days=1)
# A status in these phases has no rollout open (the audit has its terminal step).
_CLOSED = frozenset({"Succeeded", "Failed"})


def rollout_start(rollout_id: str) -> datetime | None:
    """The start time a rollout id (`from..to/2026-01-02T03:04:05Z`) ends with; None if it has none."""
    try:
        return parse_time(rollout_id.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def open_rollout_ids(repo: Repo, rev: str) -> list[str]:
    """The rollout ids the status files at `rev` name in a phase that is not closed."""
    try:
        names = repo.git.ls_tree("-r", "--name-only", rev, "--").splitlines()
    except GitCommandError:
        return []
    found = []
    for name in names:
        if name.rsplit("/", 1)[-1] != STATUS_FILE:
            continue
        try:
            doc = yamlio.load(repo.git.show(f"{rev}:{name}"), name)
        except (GitCommandError, yamlio.YAMLError, ValueError):
            continue  # untrusted content: an unreadable status names no rollout
        status = doc.get("status") if isinstance(doc, dict) else None
        if isinstance(status, dict) and status.get("phase") not in _CLOSED and status.get("rolloutId"):
            found.append(str(status["rolloutId"]))
    return found


def read_back_to(since: datetime, steps: list[Step], open_ids: list[str]) -> datetime | None:
    """How far back to read so every rollout the window keeps is whole: the earliest start of a
    rollout with a step in the window or open at the tip; None when one's start cannot be told."""
    earliest = since
    for rollout_id in {step.rollout for step in steps} | set(open_ids):
        started = rollout_start(rollout_id)
        if started is None:
            return None
        earliest = min(earliest, started)
    return earliest


def read_window(repo: Repo, rev: str, since: datetime) -> list[RawCommit]:
    """The gitcanary commits the audit of `since` needs, oldest first (see the module's docstring)."""
    inside = read_log(repo, rev, since=since - SLACK)
    steps, _ = parse_commits(inside)
    back = read_back_to(since, steps, open_rollout_ids(repo, rev))
    if back is None:
        return read_log(repo, rev)
    if back >= since:
        return inside
    return read_log(repo, rev, since=back - SLACK)
