"""From `git log` records to rollout steps. Pure: no Git, no I/O.

A commit holds one step (a direct push or a rebased copy), or several (a squash-merged pull
request concatenates the messages: git's `merge --squash` indents them under "Squashed commit of
the following:", GitHub lists them as `* ` bullets). Each step is a paragraph of text followed by
its block of `Gitcanary-*` trailers, so the message is cut after every trailer block.
A step whose trailers are malformed becomes a `Problem` and is skipped; the others still count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gitcanary.git.checks import Check, parse_check_line, parse_check_trailer

PREFIX = "Gitcanary-"
_TRAILER = re.compile(r"^(Gitcanary-[A-Za-z-]+):\s*(.*)$")
_OTHER_TRAILER = re.compile(r"^([A-Z][A-Za-z-]*-[a-z][A-Za-z-]*|[A-Z][a-z]+):\s+\S")
# How each forge's merge names the request it merged, as (pattern, sign): the subject of a GitHub
# or Gitea squash ends "(#12)" and gitcanary's GitLab squash "(!12)"; GitHub's merge commits start
# "Merge pull request #12 from", Gitea's "Merge pull request 'TITLE' (#12) from"; GitLab's
# merge commit ("Merge branch 'x' into 'main'") says "See merge request group/project!12" below.
_SUBJECT_REQUESTS = (
    (re.compile(r"\(#(\d+)\)\s*$"), "#"),
    (re.compile(r"\(!(\d+)\)\s*$"), "!"),
    (re.compile(r"^Merge pull request #(\d+)"), "#"),
    (re.compile(r"^Merge pull request '.*' \(#(\d+)\) from "), "#"),
)
_GITLAB_REFERENCE = re.compile(r"^See merge request \S*!(\d+)\s*$", re.MULTILINE)
# The line gitcanary writes into the merge (or squash) commit of a step PR it merged itself: that
# PR is plumbing, not a person's approval, so history does not list it among the approvals.
STEP_MERGE_NOTE = "Merged by gitcanary: one step of a rollout, no review asked."
# `Rejected-by` is the promotion gate closed by a person (its rollback commit names them);
# `Objected-by` a writer whose change request still stood on the gate when it closed.
_APPROVAL_TRAILERS = ("approved-by", "reviewed-by", "acked-by", "rejected-by", "objected-by")
# Steps that set up a canary (or re-render it) rather than move a rollout.
SETUP_ACTIONS = frozenset({"initialize", "initialized", "update", "restore-status"})
MANUAL_PREFIX = "manual-"  # gitcanary.commands.manual writes `manual-promote`, `manual-pause`...
_ACTION = re.compile(r"[a-z][a-z-]*")


@dataclass(frozen=True)
class RawCommit:
    """One `git log` record, as `gitlog.read_log` returns it."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_date: datetime
    committer_name: str
    committer_email: str
    message: str
    signature: str = ""  # git's %G?: G good, B bad, U unknown validity, N none, E cannot check...
    signing_key: str = ""  # %GK
    signing_fingerprint: str = ""  # %GF
    signer: str = ""  # %GS
    # Set when a pull request's merge commit brought this commit in (see `gitlog.merged_in`).
    merge_request: str = ""  # "#12"
    merged_by: str = ""  # the merge commit's author: who merged it (on GitHub, who clicked merge)
    # The merge commit's own approval trailers (`Approved-by: alice`, as gitcanary's promotion
    # gate writes them), as "alice (approved-by)".
    merge_approvals: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0].strip()

    @property
    def pull_request(self) -> str:
        if STEP_MERGE_NOTE in self.message:
            return ""  # a step PR gitcanary squash-merged itself
        return merged_request(self.message) or self.merge_request


@dataclass(frozen=True)
class Step:
    """One transition of one canary, as one commit (or one part of a squashed commit) recorded it."""

    canary: str
    action: str
    rollout: str
    phase: str
    weight: int
    failed_checks: int
    iterations: int
    revision: str
    time: datetime
    checks: tuple[Check, ...]
    commit: str
    subject: str
    author: str
    bumped_by: str = ""
    actor: str = ""
    approvals: tuple[str, ...] = ()
    pull_request: str = ""
    merged_by: str = ""
    reason: str = ""  # the first line of the commit's body: why (e.g. "aborted by Pat <pat@...>")

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two records the same step, whatever commit carries them (rebases, squashes)."""
        return (
            self.canary,
            self.rollout,
            self.action,
            self.phase,
            self.weight,
            self.failed_checks,
            self.iterations,
            self.time,
        )

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def to_json(self) -> dict[str, object]:
        return {
            "time": iso(self.time),
            "action": self.action,
            "phase": self.phase,
            "weight": self.weight,
            "failedChecks": self.failed_checks,
            "iterations": self.iterations,
            "revision": self.revision,
            "checks": [check.to_json() for check in self.checks],
            "commit": self.commit,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class Problem:
    """A commit (or part of one) that looks like gitcanary's but cannot be read; it is skipped."""

    commit: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.commit[:12]} {self.subject!r}: {self.message}"


@dataclass
class _Segment:
    text: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # trailer key without prefix -> value (last wins)
    checks: list[str] = field(default_factory=list)  # `Check` repeats, one per metric
    twice: list[str] = field(default_factory=list)  # singular trailers given more than once
    others: list[tuple[str, str]] = field(default_factory=list)  # Reviewed-by and the like

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def all(self, key: str) -> list[str]:
        if key == "Check":
            return self.checks
        return [self.values[key]] if key in self.values else []


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def segments(message: str) -> list[_Segment]:
    """Cut a message after each block of `Gitcanary-*` trailers; text before a block belongs to it."""
    found: list[_Segment] = []
    current = _Segment()
    in_trailers = False
    for raw in message.splitlines():
        line = raw.strip()
        if line[:2] in ("* ", "- "):  # GitHub's squash lists each message as a bullet
            line = line[2:].lstrip()
        if not line:
            continue
        # A cheap prefix test first: histories are long and most lines are not trailers.
        match = _TRAILER.match(line) if line.startswith(PREFIX) else None
        if match:
            key, value = match[1][len(PREFIX) :], match[2].strip()
            if key == "Canary" and "Canary" in current.values:
                found.append(current)  # two trailer blocks with no text between them
                current = _Segment()
            if key == "Check":
                current.checks.append(value)
            elif key in current.values:
                current.twice.append(key)  # never a silent last-wins: the step is malformed
            else:
                current.values[key] = value
            in_trailers = True
            continue
        if in_trailers:
            if _OTHER_TRAILER.match(line):
                name, _, value = line.partition(":")
                current.others.append((name.strip(), value.strip()))
                continue
            found.append(current)
            current = _Segment()
            in_trailers = False
        current.text.append(line)
    if current.values or current.checks:
        found.append(current)
    return found


def merged_request(message: str) -> str:
    """The pull (merge) request a forge's merge or squash commit names: "#12" (GitHub, Gitea),
    "!12" (GitLab), or "" for any other commit."""
    subject = message.split("\n", 1)[0].strip()
    for pattern, sign in _SUBJECT_REQUESTS:
        match = pattern.search(subject)
        if match:
            return f"{sign}{match[1]}"
    if subject.startswith("Merge branch "):
        found = _GITLAB_REFERENCE.search(message)
        if found:
            return f"!{found[1]}"
    return ""


def _approval(name: str, value: str) -> str:
    return f"{value} ({name.lower()})"


def closing_approvals(message: str) -> tuple[str, ...]:
    """Approval trailers in a paragraph of their own at the end of a message, outside any step's
    trailer block: they speak for the whole commit (every step of a squash, or every commit a
    merge commit brought in), as gitcanary's promotion gate writes `Approved-by: LOGIN` there."""
    text = message.rstrip()
    cut = text.rfind("\n\n")
    last = text[cut + 2 :] if cut >= 0 else ""
    if "-by:" not in last.lower():  # cheap: most messages end in their Gitcanary trailers
        return ()
    lines = [line.strip() for line in last.splitlines() if line.strip()]
    if any(line.startswith(PREFIX) or not _OTHER_TRAILER.match(line) for line in lines):
        return ()
    found = []
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() in _APPROVAL_TRAILERS and value.strip():
            found.append(_approval(name.strip(), value.strip()))
    return tuple(found)


def _int(segment: _Segment, key: str, default: int | None = None) -> int:
    raw = segment.get(key)
    if raw is None:
        if default is not None:
            return default
        raise ValueError(f"Gitcanary-{key} is missing")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"Gitcanary-{key}: not a whole number: {raw!r}") from None


def _required(segment: _Segment, key: str) -> str:
    raw = segment.get(key)
    if not raw:
        raise ValueError(f"Gitcanary-{key} is missing")
    return raw


def is_request(action: str) -> bool:
    """A person's manual action (`gitcanary promote|abort|retry|pause|resume`): a request the
    reconciler honours with its own transition commit, not a transition itself."""
    return action.startswith(MANUAL_PREFIX)


def _step(commit: RawCommit, segment: _Segment, closing: tuple[str, ...] = ()) -> Step | None:
    if segment.twice:
        raise ValueError(f"Gitcanary-{segment.twice[0]} is given twice; a forged or corrupted trailer block")
    canary = _required(segment, "Canary")
    if canary.count("/") != 1 or not all(canary.split("/")):
        raise ValueError(f"Gitcanary-Canary: expected NAMESPACE/NAME, got {canary!r}")
    action = _required(segment, "Action")
    if not _ACTION.fullmatch(action):
        # Unknown but well-formed names pass: a newer gitcanary may write actions this one
        # does not know (they then count as steps, not as an outcome).
        raise ValueError(f"Gitcanary-Action: not an action name: {action!r}")
    request = is_request(action)
    if request and segment.get("Rollout") is None:
        return None  # e.g. a pause before the canary was initialized: no rollout to attach it to
    rollout = _required(segment, "Rollout")
    raw_time = segment.get("Time")
    try:
        # Commits from before the `Time` trailer: the author date, which rebases keep.
        when = parse_time(raw_time) if raw_time else commit.author_date
    except ValueError:
        raise ValueError(f"Gitcanary-Time: not an ISO 8601 time: {raw_time!r}") from None
    checks = tuple(parse_check_trailer(text) for text in segment.checks)
    if raw_time is None:
        # Written before `Gitcanary-Check` (which came with `Gitcanary-Time`): read the body lines.
        checks = tuple(c for c in (parse_check_line(line) for line in segment.text[1:]) if c is not None)
    subject = next((line for line in segment.text if line.startswith("gitcanary:")), "")
    after = segment.text[segment.text.index(subject) + 1 :] if subject else []
    reason = after[0] if after and parse_check_line(after[0]) is None else ""
    own = [_approval(name, value) for name, value in segment.others if name.lower() in _APPROVAL_TRAILERS]
    # The step's own trailers, then the commit's closing paragraph, then the merge commit's.
    approvals = tuple(dict.fromkeys([*own, *closing, *commit.merge_approvals]))
    return Step(
        canary=canary,
        action=action,
        rollout=rollout,
        # A request names the phase it was made in, and no weight: it moves nothing by itself.
        phase=segment.get("Phase") or "" if request else _required(segment, "Phase"),
        weight=_int(segment, "Weight", 0) if request else _int(segment, "Weight"),
        failed_checks=_int(segment, "Failed-Checks", 0),
        iterations=_int(segment, "Iterations", 0),
        revision=segment.get("Revision") or "",
        time=when,
        checks=checks,
        commit=commit.sha,
        subject=subject or commit.subject,
        author=f"{commit.author_name} <{commit.author_email}>",
        bumped_by=segment.get("Bumped-By") or "",
        actor=segment.get("Actor") or "",
        approvals=approvals,
        pull_request=commit.pull_request,
        merged_by=commit.merged_by,
        reason=reason,
    )


def _oriented(commit: RawCommit, steps: list[Step]) -> list[Step]:
    """Steps of one commit, oldest first: git's squash message lists the newest commit first."""
    if len(steps) < 2:
        return steps
    times = [step.time for step in steps]
    if times[0] > times[-1]:
        return steps[::-1]
    if times[0] == times[-1] and "Squashed commit of the following" in commit.message:
        return steps[::-1]
    return steps


def parse_commits(commits: Iterable[RawCommit]) -> tuple[list[Step], list[Problem]]:
    """Every step in `commits` (oldest first), each once however many commits repeat it; and problems."""
    steps: list[Step] = []
    problems: list[Problem] = []
    seen: set[tuple[object, ...]] = set()
    for commit in commits:
        found: list[Step] = []
        closing = closing_approvals(commit.message)
        for segment in segments(commit.message):
            try:
                step = _step(commit, segment, closing)
            except ValueError as exc:
                problems.append(Problem(commit.sha, commit.subject, str(exc)))
                continue
            if step is not None:
                found.append(step)
        for step in _oriented(commit, found):
            if step.identity not in seen:
                seen.add(step.identity)
                steps.append(step)
    return steps, problems
