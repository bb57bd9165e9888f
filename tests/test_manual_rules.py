"""Table tests for manual requests in the pure core: which action fits which phase, and what
`decide` does with a pending promote, abort or retry (gitcanary.core.manual_rules, gitcanary.core.rollout)."""

from __future__ import annotations

from typing import Any

import pytest
from test_rollout import OLD, ROLLOUT, T0, idle, make_canary, observe, rolling

from gitcanary.core.manual_rules import refusal
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.request import ManualAction, ManualRequest
from gitcanary.spec.status import CanaryStatus, Phase

PAT = "Pat Person <pat@example.com>"


def asked(status: CanaryStatus, action: ManualAction, rollout: str = ROLLOUT) -> CanaryStatus:
    request = ManualRequest(action=action, actor=PAT, rollout_id=rollout, requested_at=T0)
    return status.model_copy(update={"request": request})


P, A, R = ManualAction.PROMOTE, ManualAction.ABORT, ManualAction.RETRY


@pytest.mark.parametrize(
    ("action", "phase", "suspended", "allowed"),
    [
        (P, Phase.PROGRESSING, False, True),
        (P, Phase.WAITING, False, False),  # waits for its confirm-rollout gate: nothing runs yet
        (A, Phase.WAITING, False, False),
        (R, Phase.WAITING, False, False),
        (P, Phase.WAITING_PROMOTION, False, True),
        (P, Phase.PROMOTING, False, False),
        (P, Phase.SUCCEEDED, False, False),
        (P, Phase.FAILED, False, False),
        (P, None, False, False),
        (P, Phase.PROGRESSING, True, False),  # paused: resume first
        (A, Phase.PROGRESSING, False, True),
        (A, Phase.FINALISING, False, False),
        (A, Phase.INITIALIZED, False, False),
        (R, Phase.FAILED, False, True),
        (R, Phase.PROGRESSING, False, True),
        (R, Phase.SUCCEEDED, False, False),
        (R, Phase.INITIALIZING, False, False),
        (ManualAction.PAUSE, Phase.PROGRESSING, False, True),
        (ManualAction.PAUSE, Phase.PROGRESSING, True, False),
        (ManualAction.PAUSE, None, False, True),
        (ManualAction.RESUME, Phase.PROGRESSING, True, True),
        (ManualAction.RESUME, Phase.PROGRESSING, False, False),
    ],
)
def test_which_action_fits_which_phase(
    action: ManualAction, phase: Phase | None, suspended: bool, allowed: bool
) -> None:
    assert (refusal(action, phase, suspended) is None) is allowed


# (status, observation keyword arguments, expected action, phase, weight, failed checks, revert, copy)
CASES: list[tuple[str, CanaryStatus, dict[str, Any], Action, Phase, int, int, bool, bool]] = [
    # promote skips the remaining steps at once: no interval to wait for, no measurement.
    (
        "promote",
        asked(rolling(Phase.PROGRESSING, canaryWeight=10), P),
        {"after": 1},
        Action.PROMOTE,
        Phase.PROMOTING,
        10,
        0,
        False,
        True,
    ),
    (
        "promote while halted",
        asked(rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1), P),
        {},
        Action.PROMOTE,
        Phase.PROMOTING,
        20,
        1,
        False,
        True,
    ),
    (
        "abort",
        asked(rolling(Phase.PROGRESSING, canaryWeight=20), A),
        {"after": 1},
        Action.ROLLBACK,
        Phase.FAILED,
        0,
        0,
        True,
        False,
    ),
    (
        "abort before the last step is live",
        asked(rolling(Phase.PROGRESSING, canaryWeight=20), A),
        {"live": False},
        Action.ROLLBACK,
        Phase.FAILED,
        0,
        0,
        True,
        False,
    ),
    # retry after a rollback whose write-back the person's commit undid: the failed revision again.
    (
        "retry failed, images restored",
        asked(rolling(Phase.FAILED, failedChecks=2, lastAppliedSpec=OLD), R),
        {},
        Action.START,
        Phase.PROGRESSING,
        0,
        0,
        False,
        False,
    ),
    # retry when the rollback could not write back: same spec, no new revision, analysed again.
    (
        "retry failed, target unchanged",
        asked(rolling(Phase.FAILED, failedChecks=2), R),
        {},
        Action.START,
        Phase.PROGRESSING,
        0,
        0,
        False,
        False,
    ),
    (
        "retry mid-rollout resets the analysis",
        asked(rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1), R),
        {"after": 1},
        Action.RESTART,
        Phase.PROGRESSING,
        0,
        0,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("status", "obs", "action", "phase", "weight", "failed", "revert", "copy"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_pending_request_is_honoured_on_the_next_decision(
    status: CanaryStatus,
    obs: dict[str, Any],
    action: Action,
    phase: Phase,
    weight: int,
    failed: int,
    revert: bool,
    copy: bool,
) -> None:
    decision = decide(make_canary(), status, observe(**obs))
    assert decision.action is action
    assert decision.status is not None
    assert (decision.status.phase, decision.status.canary_weight, decision.status.failed_checks) == (
        phase,
        weight,
        failed,
    )
    assert (decision.revert_target, decision.copy_to_primary) == (revert, copy)
    assert decision.actor == PAT and status.request is not None
    assert decision.request == status.request.action.value
    assert decision.status.request is None  # done: the commit clears it


def test_a_request_for_another_rollout_is_ignored_and_dropped_by_the_next_step() -> None:
    status = asked(rolling(Phase.PROGRESSING, canaryWeight=10), P, rollout="6.1.0..6.1.0/older")
    decision = decide(make_canary(), status, observe(checks=()))
    assert decision.action is Action.ADVANCE and decision.actor == ""
    assert decision.status is not None and decision.status.request is None


def test_a_request_that_no_longer_fits_the_phase_is_ignored() -> None:
    status = asked(rolling(Phase.PROMOTING, canaryWeight=30), A)
    decision = decide(make_canary(), status, observe())
    assert decision.action is Action.FINALIZE and decision.actor == ""


def test_a_new_bump_wins_over_a_pending_promote() -> None:
    status = asked(rolling(Phase.PROGRESSING, canaryWeight=10), P)
    decision = decide(make_canary(), status, observe(target="newer"))
    assert decision.action is Action.RESTART and decision.actor == ""


def test_a_paused_canary_keeps_its_request_until_resumed() -> None:
    status = asked(rolling(Phase.PROGRESSING, canaryWeight=10), P)
    assert decide(make_canary(suspend=True), status, observe()).action is Action.NONE
    assert decide(make_canary(), status, observe()).action is Action.PROMOTE


def test_the_request_is_written_to_the_status_file_and_absent_when_none() -> None:
    doc = asked(idle(Phase.SUCCEEDED), R).to_document("prod/backend")
    assert doc["status"]["request"] == {  # type: ignore[index]
        "action": "retry",
        "actor": PAT,
        "rolloutId": ROLLOUT,
        "requestedAt": "2026-11-21T23:00:00Z",
    }
    assert CanaryStatus.from_document(doc).request == asked(idle(Phase.SUCCEEDED), R).request
    assert "request" not in idle(Phase.SUCCEEDED).to_document("prod/backend")["status"]  # type: ignore[operator]
