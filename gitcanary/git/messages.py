"""Commit messages for each transition: what happened, the evidence, and the trailers to resume by."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from gitcanary.core.rollout import Action, Decision, Strategy, strategy_of
from gitcanary.git.checks import check_trailer
from gitcanary.git.trailers import format_message
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase


def subject(canary: Canary, old: CanaryStatus | None, decision: Decision) -> str:
    new = decision.status
    assert new is not None
    key = canary.key
    revs = f"{new.primary_revision} -> {new.canary_revision}"
    weight = new.canary_weight
    match decision.action:
        case Action.INITIALIZE:
            return f"gitcanary: initialize {key}: primary at {new.primary_revision}"
        case Action.INITIALIZED:
            return f"gitcanary: route {key} to its primary ({new.primary_revision}), scale target to 0"
        case Action.START:
            return f"gitcanary: start {key} rollout {revs}"
        case Action.RESTART:
            was = old.canary_revision if old else "?"
            return f"gitcanary: restart {key} analysis on {new.canary_revision} (was {was})"
        case Action.CANCEL:
            return f"gitcanary: abandon {key} rollout: target is back at {new.primary_revision}"
        case Action.ADVANCE:
            strategy = strategy_of(canary)
            total = canary.spec.analysis.iterations
            if strategy is Strategy.AB_TESTING:
                return f"gitcanary: advance {key} A/B iteration {new.iterations}/{total} ({revs})"
            if strategy is Strategy.BLUE_GREEN and new.canary_weight == 100:
                return f"gitcanary: switch {key} traffic to canary ({revs})"
            if strategy is Strategy.BLUE_GREEN:
                return f"gitcanary: advance {key} to iteration {new.iterations}/{total} ({revs})"
            return f"gitcanary: advance {key} to {weight}% ({revs})"
        case Action.HALT:
            first = decision.failed[0] if decision.failed else f"{new.failed_checks} failed checks"
            return f"gitcanary: halt {key} at {weight}% ({revs}): {first}"
        case Action.PROMOTE:
            return f"gitcanary: promote {key} {revs}: copy canary spec to primary"
        case Action.FINALIZE:
            if weight:
                return f"gitcanary: shift {key} traffic to primary {100 - weight}% ({revs})"
            return f"gitcanary: route {key} traffic to primary ({new.canary_revision})"
        case Action.SUCCEED:
            return f"gitcanary: finish {key} promotion to {new.primary_revision}, scale canary to 0"
        case Action.WAIT:
            if new.phase is Phase.WAITING_PROMOTION:
                return f"gitcanary: hold {key} at {weight}% ({revs}): waiting for promotion approval"
            return f"gitcanary: hold {key} rollout {revs}: waiting for approval"
        case Action.QUARANTINE:
            return f"gitcanary: quarantine {key} {new.canary_revision}: failed before, not rolled out again"
        case Action.HOLD:
            return f"gitcanary: hold {key} at {weight}% ({revs}): {new.hold_reason}"
        case Action.ROLLBACK:
            first = f": {decision.failed[0]}" if decision.failed else ""
            return f"gitcanary: roll back {key} {new.canary_revision} -> {new.primary_revision}{first}"
    return f"gitcanary: {decision.action.value} {key}"


def _trailers(canary: Canary, status: CanaryStatus, action: str) -> dict[str, object]:
    return {
        "Canary": canary.key,
        "Action": action,
        "Rollout": status.rollout_id or f"{status.primary_revision}/init",
        "Phase": status.phase.value,
        "Weight": status.canary_weight,
        "Failed-Checks": status.failed_checks,
        "Iterations": status.iterations,
        "Revision": f"{status.primary_revision}..{status.canary_revision}",
        # When the transition was decided: survives squash merges and rebases, unlike commit dates.
        "Time": status.last_transition_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def update(canary: Canary, status: CanaryStatus, changed: list[str]) -> str:
    """A commit that re-renders generated objects after the Canary manifest changed; no transition."""
    subject = f"gitcanary: update {canary.key} generated objects from its changed Canary"
    body = [f"{status.phase.value} at {status.canary_weight}%; rewritten: {', '.join(changed)}"]
    return format_message(subject, body, _trailers(canary, status, "update"))


def restore(canary: Canary, status: CanaryStatus, foreign: str, author: str) -> str:
    """A commit that writes gitcanary's own last status back over a change it did not make."""
    subject = f"gitcanary: restore {canary.key} status written by {author.split(' <')[0]}"
    body = [
        f"{foreign} by {author} changed the status file; gitcanary's status is its memory, changed only "
        "by gitcanary: use gitcanary promote|abort|retry|pause|resume to act on a rollout.",
        f"kept: {status.phase.value} at {status.canary_weight}%",
    ]
    return format_message(
        subject, body, {**_trailers(canary, status, "restore-status"), "Overrides": foreign}
    )


def compose(
    canary: Canary,
    old: CanaryStatus | None,
    decision: Decision,
    notes: list[str],
    extra: Mapping[str, object] | None = None,
) -> str:
    new = decision.status
    assert new is not None
    body = [decision.reason, *decision.details, *notes]
    trailers = _trailers(canary, new, decision.action.value)
    line = subject(canary, old, decision)
    if decision.actor:
        # A manual request honoured: who asked, in the subject for people and a trailer for programs.
        line += f" ({decision.request} requested by {decision.actor.split(' <')[0]})"
        trailers["Request"] = decision.request
        trailers["Actor"] = decision.actor
    trailers.update(extra or {})
    # One `Gitcanary-Check` trailer per check (a repeated key, as git allows), in the same block.
    return format_message(
        line, body, trailers, [("Check", check_trailer(check)) for check in decision.checks]
    )
