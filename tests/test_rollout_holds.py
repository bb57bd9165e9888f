"""Table tests for the compare judge's rules in the pure core: incident hold and low-traffic wait.

A check answering HOLD (the primary as bad as the canary) or WAIT (too few samples) neither advances
the step nor counts as a failed check; one `hold` commit per change of reason, bounded: an incident
by `progressDeadlineSeconds` (or `gitcanary.io/hold-deadline`), then a rollback; a wait by
`gitcanary.io/max-wait-intervals` intervals, then a failed check. Missing data never promotes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase
from tests.test_rollout import T0, make_canary, observe, rolling

PASS = CheckResult(
    "request-duration", 210.0, None, 500.0, True,
    "request-duration canary 210ms primary 205ms p=0.4 x1.02 ok (canary not worse)",
    primary=205.0, p_value=0.4, effect="x1.02", outcome=Verdict.PASS,
)  # fmt: skip
WAIT = CheckResult(
    "request-success-rate", 100.0, 99.0, None, False,
    "request-success-rate canary 100 primary 99.9 waiting (not enough data: 2 canary / 9 primary)",
    primary=99.9, outcome=Verdict.WAIT,
)  # fmt: skip
HOLD = CheckResult(
    "request-success-rate", 80.0, 99.0, None, False,
    "request-success-rate canary 80 primary 79 p=0.6 +1pp holding (primary is beyond the threshold too)",
    primary=79.0, p_value=0.6, effect="+1pp", outcome=Verdict.HOLD,
)  # fmt: skip
FAIL = CheckResult(
    "request-duration", 400.0, None, 500.0, False,
    "request-duration canary 400ms primary 200ms p=0.0001 x2 failed (canary worse)",
    primary=200.0, p_value=0.0001, effect="x2", outcome=Verdict.FAIL,
)  # fmt: skip


def compare_canary(**annotations: str) -> Canary:
    canary = make_canary()  # interval 1m, threshold 2, stepWeight 10 up to 30, progressDeadline 600s
    notes = {"gitcanary.io/judge": "compare", **annotations}
    return canary.model_copy(update={"metadata": canary.metadata.model_copy(update={"annotations": notes})})


def held(since_seconds_before: float, why: str, **fields: Any) -> CanaryStatus:
    return rolling(
        Phase.PROGRESSING,
        canaryWeight=10,
        heldSince=T0 - timedelta(seconds=since_seconds_before),
        holdReason=why,
        **fields,
    )


AT_10 = rolling(Phase.PROGRESSING, canaryWeight=10)

CASES = [
    # (canary, status, checks, seconds after T0, action, status fields the commit must carry)
    pytest.param(
        compare_canary(), AT_10, (WAIT, PASS), 60, Action.HOLD,
        {"canaryWeight": 10, "failedChecks": 0, "heldSince": T0 + timedelta(seconds=60),
         "holdReason": "waiting: request-success-rate"},
        id="too-few-samples-holds-once-without-failing",
    ),
    pytest.param(
        compare_canary(), held(0, "waiting: request-success-rate"), (WAIT, PASS), 60, Action.NONE, None,
        id="the-same-wait-commits-nothing-again",
    ),
    pytest.param(
        compare_canary(), held(540, "waiting: request-success-rate"), (WAIT, PASS), 60, Action.HALT,
        {"failedChecks": 1, "canaryWeight": 10, "heldSince": None},
        id="waiting-ten-intervals-is-a-failed-check",
    ),
    pytest.param(
        compare_canary(), held(540, "waiting: request-success-rate", failedChecks=1), (WAIT,), 60,
        Action.ROLLBACK, {"phase": Phase.FAILED, "failedChecks": 2},
        id="waiting-too-long-again-reaches-threshold",
    ),
    pytest.param(
        compare_canary(**{"gitcanary.io/max-wait-intervals": "2"}), held(60, "waiting: request-success-rate"),
        (WAIT,), 60, Action.HALT, {"failedChecks": 1},
        id="max-wait-intervals-annotation",
    ),
    pytest.param(
        compare_canary(), AT_10, (HOLD, PASS), 60, Action.HOLD,
        {"canaryWeight": 10, "failedChecks": 0, "holdReason": "incident: request-success-rate"},
        id="incident-on-both-holds-without-blaming-the-canary",
    ),
    pytest.param(
        compare_canary(), held(500, "incident: request-success-rate"), (HOLD, PASS), 60, Action.NONE, None,
        id="incident-within-the-progress-deadline-keeps-holding",
    ),
    pytest.param(
        compare_canary(), held(540, "incident: request-success-rate"), (HOLD, PASS), 60, Action.ROLLBACK,
        {"phase": Phase.FAILED, "canaryWeight": 0, "failedChecks": 0},
        id="incident-past-progress-deadline-rolls-back",
    ),
    pytest.param(
        compare_canary(**{"gitcanary.io/hold-deadline": "2m"}), held(60, "incident: request-success-rate"),
        (HOLD,), 60, Action.ROLLBACK, {"phase": Phase.FAILED},
        id="hold-deadline-annotation",
    ),
    pytest.param(
        compare_canary(), held(120, "waiting: request-success-rate"), (HOLD, PASS), 60, Action.HOLD,
        {"heldSince": T0 + timedelta(seconds=60), "holdReason": "incident: request-success-rate"},
        id="an-incident-after-a-wait-commits-and-starts-its-own-bound",
    ),
    pytest.param(
        compare_canary(), held(120, "waiting: request-success-rate"), (WAIT, HOLD), 60, Action.HOLD,
        {"heldSince": T0 + timedelta(seconds=60), "holdReason": "incident: request-success-rate"},
        id="incident-wins-over-wait",
    ),
    pytest.param(
        compare_canary(), held(120, "waiting: request-success-rate"), (replace(WAIT, name="x"),), 60,
        Action.HOLD, {"heldSince": T0 - timedelta(seconds=120), "holdReason": "waiting: x"},
        id="another-metric-waiting-commits-again-and-keeps-the-start",
    ),
    pytest.param(
        compare_canary(), held(120, "incident: request-success-rate"), (PASS, PASS), 60, Action.ADVANCE,
        {"canaryWeight": 20, "heldSince": None, "holdReason": ""},
        id="hold-clears-and-the-step-advances",
    ),
    pytest.param(
        compare_canary(), AT_10, (HOLD, FAIL), 60, Action.HALT, {"failedChecks": 1},
        id="a-canary-worse-than-the-primary-fails-even-during-a-hold",
    ),
    pytest.param(
        compare_canary(), rolling(Phase.PROGRESSING, canaryWeight=30), (WAIT, PASS), 60, Action.HOLD,
        {"canaryWeight": 30, "phase": Phase.PROGRESSING},
        id="never-promotes-on-missing-data",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("canary", "status", "checks", "after", "action", "fields"), CASES)
def test_hold_rules(
    canary: Canary,
    status: CanaryStatus,
    checks: tuple[CheckResult, ...],
    after: float,
    action: Action,
    fields: dict[str, Any] | None,
) -> None:
    decision = decide(canary, status, observe(after, checks=checks))
    assert decision.action is action, decision.reason
    if fields is None:
        assert decision.status is None
        return
    assert decision.status is not None
    written = decision.status.model_dump(by_alias=True)
    for key, value in fields.items():
        assert written[key] == value, key


def test_hold_commit_names_the_checks_and_the_bound() -> None:
    decision = decide(compare_canary(), AT_10, observe(60, checks=(HOLD, PASS)))
    assert decision.failed == (HOLD.line,)
    assert "primary as bad as canary" in decision.reason and "600s" in decision.reason
    assert decision.status is not None and decision.status.message.startswith("Hold advancement")


def test_threshold_checks_keep_flaggers_verdicts() -> None:
    # Without an outcome a check's verdict is its `ok`: the threshold judge never holds.
    assert replace(PASS, outcome=None).verdict is Verdict.PASS
    assert replace(FAIL, outcome=None).verdict is Verdict.FAIL
    assert replace(WAIT, outcome=None).verdict is Verdict.FAIL


def test_status_file_of_an_unheld_step_has_no_hold_fields() -> None:
    document = AT_10.to_document("prod/backend")["status"]
    assert isinstance(document, dict) and "heldSince" not in document and "holdReason" not in document
    held_doc = held(0, "incident: x").to_document("prod/backend")["status"]
    assert isinstance(held_doc, dict) and held_doc["holdReason"] == "incident: x"
    assert CanaryStatus.model_validate(held_doc).held_since == T0
