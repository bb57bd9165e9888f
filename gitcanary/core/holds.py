"""The compare judge's holds: how long a step may neither advance nor fail. Pure.

An incident (the primary as bad as the canary) holds the step up to `gitcanary.io/hold-deadline`,
by default the Canary's `progressDeadlineSeconds`, then the rollout rolls back as usual. Too few
samples make the step wait up to `gitcanary.io/max-wait-intervals` analysis intervals (default
10), then the wait counts as a failed check: missing data never advances a canary.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.duration import parse_duration
from gitcanary.spec.models import Canary

HOLD_DEADLINE_ANNOTATION = "gitcanary.io/hold-deadline"
MAX_WAIT_ANNOTATION = "gitcanary.io/max-wait-intervals"
DEFAULT_MAX_WAIT_INTERVALS = 10


def pending(checks: Sequence[CheckResult]) -> tuple[Verdict, tuple[CheckResult, ...]] | None:
    """The checks that hold the step and which kind of hold it is (HOLD wins over WAIT), or None."""
    held = tuple(check for check in checks if check.verdict is Verdict.HOLD)
    if held:
        return Verdict.HOLD, held
    waiting = tuple(check for check in checks if check.verdict is Verdict.WAIT)
    return (Verdict.WAIT, waiting) if waiting else None


def reason(kind: Verdict, checks: Sequence[CheckResult]) -> str:
    """What the status and the hold commit say, stable while the same metrics hold the step."""
    names = ", ".join(check.name for check in checks)
    return f"incident: {names}" if kind is Verdict.HOLD else f"waiting: {names}"


def bound_seconds(canary: Canary, kind: Verdict) -> float:
    """How long a hold of `kind` may last. A malformed annotation falls back to the default, so an
    edit to a Canary cannot hold a step forever."""
    notes = canary.metadata.annotations
    if kind is Verdict.HOLD:
        try:
            return parse_duration(notes[HOLD_DEADLINE_ANNOTATION])
        except (KeyError, ValueError):
            return float(canary.spec.progress_deadline_seconds)
    try:
        intervals = int(notes.get(MAX_WAIT_ANNOTATION, DEFAULT_MAX_WAIT_INTERVALS))
    except ValueError:
        intervals = DEFAULT_MAX_WAIT_INTERVALS
    return max(intervals, 1) * canary.spec.analysis.interval_seconds
