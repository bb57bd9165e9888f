"""Table tests for the core's quarantine rule: a failed revision an image automation brings back is held.

The rule is one clause of `decide` at rest (Failed, Succeeded, Initialized, Quarantined): the
target's revision is one a rollback failed (`status.quarantined`) and the last change to the
target was an automation's (`Observation.automated`). Anything else rolls out as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gitcanary.core.manual_rules import refusal
from gitcanary.core.observations import CheckResult, Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.models import Canary
from gitcanary.spec.request import ManualAction, ManualRequest
from gitcanary.spec.status import CanaryStatus, Phase

T0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
OLD, BAD, NEWER = "sha256:old", "sha256:bad", "sha256:newer"
ROLLOUT = "6.1.0..6.1.1/2026-11-21T22:55:00Z"
CANARY = Canary.model_validate(
    {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 1, "maxWeight": 30, "stepWeight": 10},
        },
    }
)


def status(
    phase: Phase, applied: str, quarantined: tuple[str, ...] = ("6.1.1",), **more: object
) -> CanaryStatus:
    return CanaryStatus(
        phase=phase,
        last_applied_spec=applied,
        last_promoted_spec=OLD,
        primary_revision="6.1.0",
        canary_revision="6.1.1",
        rollout_id=ROLLOUT,
        last_transition_time=T0,
        quarantined=quarantined,
        **more,  # type: ignore[arg-type]
    )


def obs(spec: str, revision: str, automated: bool) -> Observation:
    return Observation(T0 + timedelta(minutes=5), spec, revision, automated=automated)


# (case, status, observation, action, phase after, quarantined after)
CASES = [
    (
        "the bot brings the failed tag back: hold",
        status(Phase.FAILED, OLD),
        obs(BAD, "6.1.1", True),
        Action.QUARANTINE,
        Phase.QUARANTINED,
        ("6.1.1",),
    ),
    (
        "a person bumps the failed tag again: a rollout, quarantine lifted",
        status(Phase.FAILED, OLD),
        obs(BAD, "6.1.1", False),
        Action.START,
        Phase.PROGRESSING,
        (),
    ),
    (
        "the bot pushes a newer tag: a rollout",
        status(Phase.FAILED, OLD),
        obs(NEWER, "6.1.2", True),
        Action.START,
        Phase.PROGRESSING,
        ("6.1.1",),
    ),
    (
        "held: the bot's next runs change nothing",
        status(Phase.QUARANTINED, BAD),
        obs(BAD, "6.1.1", True),
        Action.NONE,
        None,
        None,
    ),
    (
        "held, then a newer tag: a rollout",
        status(Phase.QUARANTINED, BAD),
        obs(NEWER, "6.1.2", True),
        Action.START,
        Phase.PROGRESSING,
        ("6.1.1",),
    ),
    (
        "after a later success the bot re-pushes the old failure: hold",
        status(Phase.SUCCEEDED, OLD),
        obs(BAD, "6.1.1", True),
        Action.QUARANTINE,
        Phase.QUARANTINED,
        ("6.1.1",),
    ),
    (
        "nothing quarantined: the bot's bump rolls out",
        status(Phase.FAILED, OLD, quarantined=()),
        obs(BAD, "6.1.1", True),
        Action.START,
        Phase.PROGRESSING,
        (),
    ),
]


@pytest.mark.parametrize(
    ("case", "before", "seen", "action", "phase", "quarantined"), CASES, ids=[c[0] for c in CASES]
)
def test_quarantine_rule(
    case: str,
    before: CanaryStatus,
    seen: Observation,
    action: Action,
    phase: Phase | None,
    quarantined: tuple[str, ...] | None,
) -> None:
    decision = decide(CANARY, before, seen)
    assert decision.action is action, decision.reason
    if phase is None:
        assert decision.status is None
        return
    assert decision.status is not None
    assert decision.status.phase is phase
    assert decision.status.quarantined == quarantined
    if action is Action.QUARANTINE:
        # Held at 0 replicas on the primary, the failed tag left where the bot wrote it (no write-back).
        assert decision.status.canary_weight == 0 and not decision.revert_target
        assert decision.status.last_applied_spec == BAD and decision.status.canary_revision == "6.1.1"
        assert "gitcanary retry prod/backend" in decision.status.message


def test_a_rollback_quarantines_the_revision_it_rolls_back() -> None:
    running = status(Phase.PROGRESSING, BAD, quarantined=("5.0.0",), canary_weight=10)
    bad = CheckResult("request-success-rate", 90.0, 99.0, None, False, "request-success-rate 90 < 99 failed")
    seen = Observation(T0 + timedelta(minutes=2), BAD, "6.1.1", checks=(bad,))
    decision = decide(CANARY, running, seen)
    assert decision.action is Action.ROLLBACK and decision.revert_target
    assert decision.status is not None and decision.status.quarantined == ("5.0.0", "6.1.1")


def test_retry_of_a_quarantined_revision_starts_it_and_lifts_the_quarantine() -> None:
    request = ManualRequest(
        action=ManualAction.RETRY, actor="Pat <pat@example.com>", rollout_id=ROLLOUT, requested_at=T0
    )
    held = status(Phase.QUARANTINED, BAD, request=request)
    decision = decide(CANARY, held, obs(BAD, "6.1.1", True))
    assert decision.action is Action.START and decision.request == "retry"
    assert decision.status is not None and decision.status.quarantined == ()
    assert refusal(ManualAction.RETRY, Phase.QUARANTINED, False) is None
    assert refusal(ManualAction.PROMOTE, Phase.QUARANTINED, False) is not None


def test_the_hold_alerts_as_a_warning_naming_the_revision() -> None:
    from gitcanary.hooks.announce import Transition, alert_of

    decision = decide(CANARY, status(Phase.FAILED, OLD), obs(BAD, "6.1.1", True))
    assert alert_of(Transition(CANARY, None, decision, "abc")) == (
        "warn",
        "6.1.1 failed before; an image automation brought it back: held.",
    )
