"""Rollouts from steps, and the audit across canaries. Pure: no Git, no I/O.

A rollout is every step that carries the same `Gitcanary-Rollout` id for one canary (the id is
`from..to/started`, set by the start commit). A restart on a newer revision starts a new id, so
the rollout it interrupted ends `superseded`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from gitcanary.audit.parse import MANUAL_PREFIX, SETUP_ACTIONS, Problem, Step, is_request, iso, parse_time
from gitcanary.git.checks import Check


class Outcome(StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"  # the target went back to the primary's spec before analysis ended
    IN_PROGRESS = "in progress"


_NOT_APPROVALS = ("(rejected-by)", "(objected-by)")  # trailers `audit/parse` reads beside approvals


@dataclass
class Rollout:
    canary: str
    id: str
    steps: list[Step]
    outcome: Outcome = Outcome.IN_PROGRESS
    superseded_by: str = ""
    ended: datetime | None = None
    # People's manual requests during the rollout (promote, abort, retry, pause, resume).
    requests: list[Step] = field(default_factory=list)

    @property
    def from_revision(self) -> str:
        return _revisions(self)[0]

    @property
    def to_revision(self) -> str:
        return _revisions(self)[1]

    @property
    def started(self) -> datetime:
        return self.steps[0].time

    @property
    def duration(self) -> timedelta | None:
        return self.ended - self.started if self.ended else None

    @property
    def max_weight(self) -> int:
        return max(step.weight for step in self.steps)

    @property
    def failed_checks(self) -> list[tuple[Step, Check]]:
        """Every failing check, with the step (halt or rollback) that recorded it."""
        return [
            (step, check)
            for step in self.steps
            if step.action in ("halt", "rollback")
            for check in step.failed
        ]

    @property
    def reason(self) -> str:
        """Why it was rolled back, as the rollback step says: its failing metrics, else the reason its
        commit gives (an abort, a closed gate PR, a rollback webhook, a progress deadline); for other
        outcomes the failing metrics of the last halt."""
        rollback = next((step for step in reversed(self.steps) if step.action == "rollback"), None)
        if rollback is not None:
            if rollback.failed:
                return "; ".join(check.text for check in rollback.failed)
            if rollback.reason:
                return rollback.reason
            return f"{rollback.failed_checks} failed checks" if rollback.failed_checks else ""
        for step in reversed(self.steps):
            if step.action == "halt" and step.failed:
                return "; ".join(check.text for check in step.failed)
        return ""

    @property
    def approvals(self) -> list[str]:
        """Who approved the rollout's promotion: a manual promote (asked, and honoured), approval
        trailers (Approved-by, Reviewed-by, Acked-by), and who merged its PR when a person did (a
        merge carrying `Approved-by` is gitcanary's own, made on those approvals). Objections and
        rejections are not approvals: see `objections` and `rejections`."""
        found: list[str] = []
        for request in self.requests:
            if request.action == f"{MANUAL_PREFIX}promote":
                found.append(f"promote requested by {request.actor or request.author}")
        for step in self.steps:
            approved = [a for a in step.approvals if not a.endswith(_NOT_APPROVALS)]
            own_merge = any(a.endswith("(approved-by)") for a in approved)
            candidates = [
                f"{step.action} by {step.actor}" if step.actor and step.action == "promote" else "",
                *approved,
                f"PR {step.pull_request} merged by {step.merged_by}"
                if step.merged_by and not own_merge
                else "",
            ]
            found += [c for c in candidates if c and c not in found]
        return list(dict.fromkeys(found))

    @property
    def objections(self) -> list[str]:
        """Writers whose change request still stood on the gate when it was closed (`Objected-by`)."""
        return list(dict.fromkeys(a for s in self.steps for a in s.approvals if a.endswith("(objected-by)")))

    @property
    def rejections(self) -> list[str]:
        """Who closed the gate unmerged (`Rejected-by` on the rollback commit)."""
        return list(dict.fromkeys(a for s in self.steps for a in s.approvals if a.endswith("(rejected-by)")))

    @property
    def involved(self) -> list[str]:
        """Everyone and everything that acted on the rollout: the bump's author, every request and
        its honouring step, approvals, PRs."""
        found: list[str] = []
        for request in self.requests:
            found.append(
                f"{request.action.removeprefix(MANUAL_PREFIX)} requested by {request.actor or request.author}"
            )
        for step in self.steps:
            found += [
                f"bumped by {step.bumped_by}" if step.bumped_by else "",
                f"{step.action} by {step.actor}" if step.actor else "",
                *step.approvals,
                f"PR {step.pull_request}" if step.pull_request else "",
                f"PR {step.pull_request} merged by {step.merged_by}" if step.merged_by else "",
            ]
        return list(dict.fromkeys(c for c in found if c))

    @property
    def commits(self) -> list[str]:
        shas: list[str] = []
        for step in self.steps:
            if step.commit not in shas:
                shas.append(step.commit)
        return shas

    @property
    def commit_range(self) -> str:
        shas = self.commits
        return shas[0][:12] if len(shas) == 1 else f"{shas[0][:12]}..{shas[-1][:12]}"

    def to_json(self, with_steps: bool = True) -> dict[str, object]:
        body: dict[str, object] = {
            "canary": self.canary,
            "id": self.id,
            "from": self.from_revision,
            "to": self.to_revision,
            "started": iso(self.started),
            "ended": iso(self.ended) if self.ended else None,
            "durationSeconds": self.duration.total_seconds() if self.duration is not None else None,
            "outcome": self.outcome.value,
            "supersededBy": self.superseded_by or None,
            "maxWeight": self.max_weight,
            "failedChecks": [
                {"time": iso(step.time), "action": step.action, **check.to_json()}
                for step, check in self.failed_checks
            ],
            "reason": self.reason or None,
            "approvals": self.approvals,
            "objections": self.objections,
            "rejections": self.rejections,
            "involved": self.involved,
            "commits": self.commits,
            "commitRange": self.commit_range,
        }
        body["requests"] = [
            {"time": iso(r.time), "action": r.action, "actor": r.actor or r.author, "commit": r.commit}
            for r in self.requests
        ]
        if with_steps:
            body["steps"] = [step.to_json() for step in self.steps]
        return body

    def fingerprint(self) -> dict[str, object]:
        """The rollout without the commits that carried it (nor the PR that merged them): what
        rebases and squash merges must leave unchanged."""
        body = self.to_json(with_steps=False)
        for key in ("commits", "commitRange"):
            body.pop(key)
        body["approvals"] = [a for a in self.approvals if not a.startswith("PR ")]
        body["involved"] = [a for a in self.involved if not a.startswith("PR ")]
        body["steps"] = [{**step.to_json(), "commit": None, "subject": None} for step in self.steps]
        # Manual requests carry no Time trailer: their author date changes with a squash.
        body["requests"] = [{"action": r.action, "actor": r.actor or r.author} for r in self.requests]
        return body


def _revisions(rollout: Rollout) -> tuple[str, str]:
    # The id is `from..to/started` (see rollout._start); the start step's Revision says the same.
    head = rollout.id.rsplit("/", 1)[0]
    if ".." in head:
        old, new = head.split("..", 1)
        return old, new
    first = rollout.steps[0].revision
    old, _, new = first.partition("..")
    return old, new or old


_ENDS = {"succeed": Outcome.PROMOTED, "rollback": Outcome.ROLLED_BACK, "cancel": Outcome.CANCELLED}


def rollouts(steps: Iterable[Step]) -> list[Rollout]:
    """Group steps by canary and rollout id; oldest rollout first."""
    grouped: dict[tuple[str, str], list[Step]] = {}
    requests: dict[tuple[str, str], list[Step]] = {}
    for step in steps:
        if step.action in SETUP_ACTIONS:
            continue
        into = requests if is_request(step.action) else grouped
        into.setdefault((step.canary, step.rollout), []).append(step)
    found = []
    for (canary, rollout_id), group in grouped.items():
        # Steps in time order; ties keep log order (a squash was already put oldest first).
        group = sorted(group, key=lambda step: step.time)
        # A request made while no rollout ran (a pause when idle) attaches to none.
        asked = sorted(requests.get((canary, rollout_id), []), key=lambda step: step.time)
        found.append(Rollout(canary, rollout_id, group, requests=asked))
    found.sort(key=lambda r: (r.started, r.canary))
    _credit_retries(found)
    latest: dict[str, Rollout] = {}
    for rollout in found:
        for step in rollout.steps:
            outcome = _ENDS.get(step.action)
            if step.action == "promote" and step.phase == "Succeeded":
                outcome = Outcome.PROMOTED  # skipAnalysis promotes in one commit
            if outcome is not None:
                rollout.outcome, rollout.ended = outcome, step.time
        previous = latest.get(rollout.canary)
        if previous is not None and previous.outcome is Outcome.IN_PROGRESS:
            previous.outcome = Outcome.SUPERSEDED
            previous.superseded_by = rollout.id
            previous.ended = rollout.started
        latest[rollout.canary] = rollout
    return found


def _credit_retries(found: list[Rollout]) -> None:
    """A retry is made while the failed rollout is current (its trailers name it) but acts on the
    rollout it starts: move it there, to the canary's first rollout started at or after it."""
    for rollout in found:
        for request in [r for r in rollout.requests if r.action == f"{MANUAL_PREFIX}retry"]:
            later = [
                other
                for other in found
                if other.canary == rollout.canary and other is not rollout and other.started >= request.time
            ]
            if later:
                rollout.requests.remove(request)
                later[0].requests.append(request)
                later[0].requests.sort(key=lambda step: step.time)


def parse_since(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `45m`, `2w`, or an ISO date/time: the start of the window."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip()
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: expected e.g. 30d, 12h, 2w or an ISO date") from None


@dataclass
class CanarySummary:
    canary: str
    rollouts: int = 0
    promoted: int = 0
    rolled_back: int = 0
    superseded: int = 0
    cancelled: int = 0
    in_progress: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "canary": self.canary,
            "rollouts": self.rollouts,
            "promoted": self.promoted,
            "rolledBack": self.rolled_back,
            "superseded": self.superseded,
            "cancelled": self.cancelled,
            "inProgress": self.in_progress,
        }


@dataclass
class Audit:
    """Rollouts across canaries in a window: how many, how many succeeded, how fast, and why not."""

    rollouts: list[Rollout]
    problems: list[Problem] = field(default_factory=list)
    since: datetime | None = None

    @property
    def promoted(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.outcome is Outcome.PROMOTED]

    @property
    def rolled_back(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.outcome is Outcome.ROLLED_BACK]

    @property
    def open(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.outcome is Outcome.IN_PROGRESS]

    @property
    def success_rate(self) -> float | None:
        """Promoted over concluded (promoted + rolled back); superseded and cancelled ones decided nothing."""
        concluded = len(self.promoted) + len(self.rolled_back)
        return len(self.promoted) / concluded if concluded else None

    @property
    def median_time_to_promote(self) -> timedelta | None:
        durations = [r.duration.total_seconds() for r in self.promoted if r.duration is not None]
        return timedelta(seconds=statistics.median(durations)) if durations else None

    @property
    def per_canary(self) -> list[CanarySummary]:
        summaries: dict[str, CanarySummary] = {}
        attribute = {
            Outcome.PROMOTED: "promoted",
            Outcome.ROLLED_BACK: "rolled_back",
            Outcome.SUPERSEDED: "superseded",
            Outcome.CANCELLED: "cancelled",
            Outcome.IN_PROGRESS: "in_progress",
        }
        for rollout in self.rollouts:
            summary = summaries.setdefault(rollout.canary, CanarySummary(rollout.canary))
            summary.rollouts += 1
            name = attribute[rollout.outcome]
            setattr(summary, name, getattr(summary, name) + 1)
        return [summaries[key] for key in sorted(summaries)]

    def to_json(self) -> dict[str, object]:
        median = self.median_time_to_promote
        return {
            "since": iso(self.since) if self.since else None,
            "rollouts": len(self.rollouts),
            "promoted": len(self.promoted),
            "rolledBack": len(self.rolled_back),
            "open": len(self.open),
            "successRate": self.success_rate,
            "medianTimeToPromoteSeconds": median.total_seconds() if median is not None else None,
            "canaries": [summary.to_json() for summary in self.per_canary],
            "rollbacks": [
                {
                    "canary": r.canary,
                    "id": r.id,
                    "to": r.to_revision,
                    "reason": r.reason,
                    "ended": iso(r.ended),
                }
                for r in self.rolled_back
                if r.ended
            ],
            "openRollouts": [r.to_json(with_steps=False) for r in self.open],
            "problems": [
                {"commit": p.commit, "subject": p.subject, "message": p.message} for p in self.problems
            ],
            # Steps are left out (`history NS/NAME -o json` has them): 500 rollouts stay a small document.
            "details": [r.to_json(with_steps=False) for r in self.rollouts],
        }


def audit(found: list[Rollout], problems: list[Problem], since: datetime | None) -> Audit:
    """Rollouts that started in the window, and those still open whenever they started."""
    chosen = [r for r in found if since is None or r.started >= since or r.outcome is Outcome.IN_PROGRESS]
    return Audit(chosen, problems, since)
