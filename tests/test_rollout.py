"""Table tests for the pure rollout core (`gitcanary.core.rollout.decide`).

Each case is one tick of a rollout: a Canary (from a small dict), the committed status, what the
edges observed, and the decision the core must return. References are to Flagger's
`pkg/controller/scheduler.go` unless said otherwise. The one deliberate difference from Flagger:
the failed check that brings failedChecks to threshold is itself the rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gitcanary.core.observations import CheckResult, Observation
from gitcanary.core.rollout import (
    Action,
    Decision,
    Strategy,
    decide,
    max_weight_of,
    next_weight,
    strategy_of,
    threshold_of,
)
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

T0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)

# Target specs (pod template hashes) and their human labels (image tags).
OLD, NEW, NEWER = "sha256:old", "sha256:new", "sha256:newer"
TARGETS = {"old": (OLD, "6.1.0"), "new": (NEW, "6.1.1"), "newer": (NEWER, "6.1.2")}
ROLLOUT = "6.1.0..6.1.1/2026-11-21T22:55:00Z"

SUCCESS_OK = CheckResult(
    "request-success-rate", 99.87, 99.0, None, True, "request-success-rate 99.87 >= 99 ok"
)
DURATION_OK = CheckResult("request-duration", 212.0, None, 500.0, True, "request-duration 212ms <= 500ms ok")
SUCCESS_BAD = CheckResult(
    "request-success-rate", 97.1, 99.0, None, False, "request-success-rate 97.1 < 99 failed"
)
DURATION_NO_DATA = CheckResult(
    "request-duration", None, None, 500.0, False, "request-duration no data: failed"
)
ALL_OK = (SUCCESS_OK, DURATION_OK)
ONE_BAD = (SUCCESS_BAD, DURATION_OK)
NO_DATA = (SUCCESS_OK, DURATION_NO_DATA)


def lines(checks: tuple[CheckResult, ...]) -> tuple[str, ...]:
    return tuple(check.line for check in checks)


def make_canary(analysis: dict[str, Any] | None = None, **spec: Any) -> Canary:
    """podinfo-like canary `prod/backend`: 1m interval, threshold 2, stepWeight 10 up to 30.

    `analysis` overrides those keys (None removes one); `spec` adds spec keys (skipAnalysis, ...).
    """
    merged = {"interval": "1m", "threshold": 2, "maxWeight": 30, "stepWeight": 10, **(analysis or {})}
    doc = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898},
            "analysis": {key: value for key, value in merged.items() if value is not None},
            **spec,
        },
    }
    return Canary.model_validate(doc)


def blue_green(**analysis: Any) -> Canary:
    return make_canary({"iterations": 3, "stepWeight": None, "maxWeight": None, **analysis})


def ab_testing(**analysis: Any) -> Canary:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    return make_canary({"iterations": 3, "match": match, "stepWeight": None, "maxWeight": None, **analysis})


def rolling(phase: Phase, **fields: Any) -> CanaryStatus:
    """A status during the rollout of 6.1.1 (NEW) over the primary's 6.1.0 (OLD), last change at T0."""
    doc = {
        "phase": phase,
        "canaryWeight": 0,
        "failedChecks": 0,
        "iterations": 0,
        "lastAppliedSpec": NEW,
        "lastPromotedSpec": OLD,
        "primaryRevision": "6.1.0",
        "canaryRevision": "6.1.1",
        "rolloutId": ROLLOUT,
        "lastTransitionTime": T0,
        **fields,
    }
    return CanaryStatus.model_validate(doc)


def idle(phase: Phase, at: str = "old", **fields: Any) -> CanaryStatus:
    """A status at rest: the primary and the last analysed spec are both `at`."""
    spec, revision = TARGETS[at]
    return rolling(
        phase,
        lastAppliedSpec=spec,
        lastPromotedSpec=spec,
        primaryRevision=revision,
        canaryRevision=revision,
        **fields,
    )


def observe(
    after: float = 60, target: str = "new", live: bool = True, checks: tuple[CheckResult, ...] | None = None
) -> Observation:
    """What the edges saw `after` seconds past T0."""
    spec, revision = TARGETS[target]
    return Observation(
        now=T0 + timedelta(seconds=after),
        target_spec=spec,
        target_revision=revision,
        live=live,
        checks=checks,
    )


@dataclass(frozen=True)
class Want:
    action: Action
    status: dict[str, Any] | None = None  # camelCase status fields the commit must carry; None: no commit
    copy_to_primary: bool = False
    revert_target: bool = False
    details: tuple[str, ...] = ()


def then(
    action: Action, copy: bool = False, revert: bool = False, details: tuple[str, ...] = (), **status: Any
) -> Want:
    return Want(action, status or None, copy, revert, details)


NOTHING = Want(Action.NONE)
MEASURE = Want(Action.MEASURE)

CASES = [
    # --- initialization (Flagger: canaryController.Initialize, then setPhaseInitialized) ---
    pytest.param(
        make_canary(),
        None,
        observe(0, "old"),
        then(
            Action.INITIALIZE,
            copy=True,
            phase=Phase.INITIALIZING,
            canaryWeight=0,
            lastAppliedSpec=OLD,
            lastPromotedSpec=OLD,
            primaryRevision="6.1.0",
            canaryRevision="6.1.0",
        ),
        id="no-status-initializes-primary",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        observe(30, "old", live=False),
        NOTHING,
        id="initializing-waits-for-primary",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        observe(30, "old"),
        then(
            Action.INITIALIZED,
            phase=Phase.INITIALIZED,
            canaryWeight=0,
            lastAppliedSpec=OLD,
            lastPromotedSpec=OLD,
        ),
        id="initializing-live-switches-routing",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        observe(30, "new"),
        then(Action.INITIALIZED, phase=Phase.INITIALIZED, lastAppliedSpec=OLD, lastPromotedSpec=OLD),
        id="bump-during-initialization-waits-for-initialized",
    ),
    # --- idle and start (shouldAdvance, checkCanaryStatus) ---
    pytest.param(
        make_canary(), idle(Phase.INITIALIZED), observe(600, "old"), NOTHING, id="initialized-no-new-revision"
    ),
    pytest.param(
        make_canary(),
        idle(Phase.SUCCEEDED, at="new"),
        observe(600, "new"),
        NOTHING,
        id="succeeded-no-new-revision",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZED),
        observe(5),
        then(
            Action.START,
            phase=Phase.PROGRESSING,
            canaryWeight=0,
            failedChecks=0,
            iterations=0,
            lastAppliedSpec=NEW,
            lastPromotedSpec=OLD,
            primaryRevision="6.1.0",
            canaryRevision="6.1.1",
            rolloutId="6.1.0..6.1.1/2026-11-21T23:00:05Z",
        ),
        id="new-revision-starts-at-weight-0",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.SUCCEEDED, failedChecks=1, iterations=4),
        observe(90),
        then(
            Action.START,
            phase=Phase.PROGRESSING,
            canaryWeight=0,
            failedChecks=0,
            iterations=0,
            lastAppliedSpec=NEW,
            rolloutId="6.1.0..6.1.1/2026-11-21T23:01:30Z",
        ),
        id="new-revision-after-success-resets-counters",
    ),
    # --- canary strategy: progressive traffic (runCanary, nextStepWeight, maxWeight) ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(59, checks=ALL_OK),
        NOTHING,
        id="not-due-yet",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING),
        observe(60),
        then(Action.ADVANCE, phase=Phase.PROGRESSING, canaryWeight=10, failedChecks=0),
        id="first-step-advances-without-measuring",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(60),
        MEASURE,
        id="measure-when-checks-missing",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(60, checks=ALL_OK),
        then(
            Action.ADVANCE,
            details=lines(ALL_OK),
            phase=Phase.PROGRESSING,
            canaryWeight=20,
            failedChecks=0,
            lastAppliedSpec=NEW,
            lastPromotedSpec=OLD,
            rolloutId=ROLLOUT,
        ),
        id="step-weight-advances",
    ),
    pytest.param(
        make_canary({"stepWeight": 20, "maxWeight": 50}),
        rolling(Phase.PROGRESSING, canaryWeight=40),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), canaryWeight=50),
        id="step-weight-capped-at-max-weight",
    ),
    pytest.param(
        make_canary({"maxWeight": 0}),
        rolling(Phase.PROGRESSING, canaryWeight=30),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), canaryWeight=40),
        id="max-weight-0-means-100",
    ),
    pytest.param(
        make_canary({"stepWeight": None, "stepWeights": [1, 10, 50]}),
        rolling(Phase.PROGRESSING),
        observe(60),
        then(Action.ADVANCE, canaryWeight=1),
        id="step-weights-first",
    ),
    pytest.param(
        make_canary({"stepWeight": None, "stepWeights": [1, 10, 50]}),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), canaryWeight=50),
        id="step-weights-next",
    ),
    pytest.param(
        make_canary({"stepWeight": None, "stepWeights": [1, 10, 50]}),
        rolling(Phase.PROGRESSING, canaryWeight=50),
        observe(60, checks=ALL_OK),
        then(Action.PROMOTE, copy=True, details=lines(ALL_OK), phase=Phase.PROMOTING, canaryWeight=50),
        id="step-weights-last-promotes",
    ),
    pytest.param(
        make_canary({"stepWeight": 5, "stepWeights": [10, 20]}),
        rolling(Phase.PROGRESSING),
        observe(60),
        then(Action.ADVANCE, canaryWeight=5),
        id="step-weight-wins-over-step-weights",
    ),
    pytest.param(
        make_canary({"stepWeight": None, "stepWeights": [50, 120]}),
        rolling(Phase.PROGRESSING, canaryWeight=100),
        observe(60, checks=ALL_OK),
        then(Action.PROMOTE, copy=True, details=lines(ALL_OK), phase=Phase.PROMOTING, canaryWeight=100),
        id="step-weights-beyond-100-promote-at-100",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=30),
        observe(60, checks=ALL_OK),
        then(
            Action.PROMOTE,
            copy=True,
            details=lines(ALL_OK),
            phase=Phase.PROMOTING,
            canaryWeight=30,
            lastAppliedSpec=NEW,
            lastPromotedSpec=OLD,
        ),
        id="checks-ok-at-max-weight-promotes",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(600, live=False),
        NOTHING,
        id="step-not-live-waits",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(600, live=False, checks=ALL_OK),
        NOTHING,
        id="step-not-live-ignores-checks",
    ),
    # --- promotion (runPromotionTrafficShift, then Finalising -> Succeeded) ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        observe(60),
        then(Action.FINALIZE, phase=Phase.FINALISING, canaryWeight=0, lastPromotedSpec=OLD),
        id="promoting-routes-all-to-primary",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        observe(60, live=False),
        NOTHING,
        id="promoting-waits-for-primary",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        observe(30),
        NOTHING,
        id="promoting-not-due-yet",
    ),
    pytest.param(
        make_canary({"stepWeightPromotion": 20}),
        rolling(Phase.PROMOTING, canaryWeight=30),
        observe(60),
        then(Action.FINALIZE, phase=Phase.PROMOTING, canaryWeight=10),
        id="step-weight-promotion-steps-back",
    ),
    pytest.param(
        make_canary({"stepWeightPromotion": 20}),
        rolling(Phase.PROMOTING, canaryWeight=10),
        observe(60),
        then(Action.FINALIZE, phase=Phase.FINALISING, canaryWeight=0),
        id="step-weight-promotion-last-step-finalises",
    ),
    pytest.param(
        make_canary({"stepWeightPromotion": 20}),
        rolling(Phase.PROMOTING, canaryWeight=40),
        observe(60),
        then(Action.FINALIZE, phase=Phase.PROMOTING, canaryWeight=20),
        id="step-weight-promotion-exact-multiple",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        observe(60, "newer"),
        then(Action.FINALIZE, phase=Phase.FINALISING, lastAppliedSpec=NEW, canaryRevision="6.1.1"),
        id="promoting-ignores-newer-revision",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.FINALISING),
        observe(60),
        then(
            Action.SUCCEED,
            phase=Phase.SUCCEEDED,
            canaryWeight=0,
            lastAppliedSpec=NEW,
            lastPromotedSpec=NEW,
            primaryRevision="6.1.1",
            canaryRevision="6.1.1",
        ),
        id="finalising-succeeds",
    ),
    # --- failed checks and threshold (runAnalysis, SetStatusFailedChecks, rollback) ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20),
        observe(60, checks=ONE_BAD),
        then(Action.HALT, details=lines(ONE_BAD), phase=Phase.PROGRESSING, canaryWeight=20, failedChecks=1),
        id="failed-check-below-threshold-halts",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20),
        observe(60, checks=NO_DATA),
        then(Action.HALT, details=lines(NO_DATA), canaryWeight=20, failedChecks=1),
        id="no-data-is-a-failed-check",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1),
        observe(60, checks=ONE_BAD),
        then(
            Action.ROLLBACK,
            revert=True,
            details=lines(ONE_BAD),
            phase=Phase.FAILED,
            canaryWeight=0,
            failedChecks=2,
            lastAppliedSpec=NEW,
            lastPromotedSpec=OLD,
            primaryRevision="6.1.0",
        ),
        id="threshold-reached-rolls-back",
    ),
    pytest.param(
        make_canary({"threshold": 0}),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(60, checks=ONE_BAD),
        then(
            Action.ROLLBACK,
            revert=True,
            details=lines(ONE_BAD),
            phase=Phase.FAILED,
            canaryWeight=0,
            failedChecks=1,
        ),
        id="threshold-0-is-1",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), canaryWeight=30, failedChecks=1),
        id="passing-check-keeps-failed-checks",
    ),
    pytest.param(
        make_canary({"threshold": 2}),
        rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=3),
        observe(60),
        then(Action.ROLLBACK, revert=True, phase=Phase.FAILED, canaryWeight=0, failedChecks=3),
        id="threshold-lowered-below-failed-checks-rolls-back",
    ),
    pytest.param(
        blue_green(threshold=1),
        rolling(Phase.PROGRESSING, canaryWeight=100, iterations=4),
        observe(60, checks=ONE_BAD),
        then(Action.ROLLBACK, revert=True, details=lines(ONE_BAD), phase=Phase.FAILED, canaryWeight=0),
        id="blue-green-fails-after-switch",
    ),
    # --- revision changes during a rollout (hasCanaryRevisionChanged) ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1),
        observe(10, "newer", False),
        then(
            Action.RESTART,
            phase=Phase.PROGRESSING,
            canaryWeight=0,
            failedChecks=0,
            iterations=0,
            lastAppliedSpec=NEWER,
            lastPromotedSpec=OLD,
            canaryRevision="6.1.2",
            primaryRevision="6.1.0",
            rolloutId="6.1.0..6.1.2/2026-11-21T23:00:10Z",
        ),
        id="new-revision-mid-rollout-restarts",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, canaryWeight=100, iterations=4),
        observe(60, "newer"),
        then(Action.RESTART, phase=Phase.PROGRESSING, canaryWeight=0, iterations=0, lastAppliedSpec=NEWER),
        id="blue-green-restart-resets-iterations",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1),
        observe(10, "old"),
        then(
            Action.CANCEL,
            phase=Phase.INITIALIZED,
            canaryWeight=0,
            failedChecks=0,
            iterations=0,
            lastAppliedSpec=OLD,
            lastPromotedSpec=OLD,
            canaryRevision="6.1.0",
        ),
        id="target-reverted-mid-rollout-cancels",
    ),
    # --- after a rollback ---
    pytest.param(
        make_canary(),
        rolling(Phase.FAILED, failedChecks=2),
        observe(600, "old"),
        NOTHING,
        id="failed-with-old-tag-written-back",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.FAILED, failedChecks=2),
        observe(600, "new"),
        NOTHING,
        id="failed-target-still-at-failed-spec",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.FAILED, failedChecks=2),
        observe(600, "newer"),
        then(
            Action.START,
            phase=Phase.PROGRESSING,
            canaryWeight=0,
            failedChecks=0,
            lastAppliedSpec=NEWER,
            lastPromotedSpec=OLD,
            rolloutId="6.1.0..6.1.2/2026-11-21T23:10:00Z",
        ),
        id="failed-then-new-bump-starts",
    ),
    # --- skipAnalysis and suspend (shouldSkipAnalysis, advanceCanary) ---
    pytest.param(
        make_canary(skipAnalysis=True),
        idle(Phase.SUCCEEDED),
        observe(5),
        then(
            Action.PROMOTE,
            copy=True,
            phase=Phase.SUCCEEDED,
            canaryWeight=0,
            lastAppliedSpec=NEW,
            lastPromotedSpec=NEW,
            primaryRevision="6.1.1",
            canaryRevision="6.1.1",
            rolloutId="6.1.0..6.1.1/2026-11-21T23:00:05Z",
        ),
        id="skip-analysis-promotes-in-one-commit",
    ),
    pytest.param(
        make_canary(skipAnalysis=True),
        rolling(Phase.PROGRESSING, canaryWeight=20),
        observe(5),
        then(
            Action.PROMOTE,
            copy=True,
            phase=Phase.SUCCEEDED,
            canaryWeight=0,
            lastPromotedSpec=NEW,
            primaryRevision="6.1.1",
        ),
        id="skip-analysis-set-mid-rollout-promotes",
    ),
    pytest.param(
        make_canary(suspend=True),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(600, checks=ONE_BAD),
        NOTHING,
        id="suspended-rollout-does-nothing",
    ),
    pytest.param(
        make_canary(suspend=True),
        idle(Phase.SUCCEEDED),
        observe(600, "newer"),
        NOTHING,
        id="suspended-ignores-new-revision",
    ),
    pytest.param(
        make_canary(suspend=True), None, observe(0, "old"), NOTHING, id="suspended-is-not-initialized"
    ),
    # --- blue/green (runBlueGreen) ---
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING),
        observe(60),
        then(Action.ADVANCE, canaryWeight=0, iterations=1),
        id="blue-green-first-iteration-without-measuring",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=1),
        observe(60),
        MEASURE,
        id="blue-green-measures-from-second-iteration",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=2),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), phase=Phase.PROGRESSING, canaryWeight=0, iterations=3),
        id="blue-green-iteration",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=3),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), phase=Phase.PROGRESSING, canaryWeight=100, iterations=4),
        id="blue-green-all-traffic-to-canary",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, canaryWeight=100, iterations=4),
        observe(60, checks=ALL_OK),
        then(Action.PROMOTE, copy=True, details=lines(ALL_OK), phase=Phase.PROMOTING, canaryWeight=100),
        id="blue-green-promotes",
    ),
    pytest.param(
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=2),
        observe(60, checks=ONE_BAD),
        then(Action.HALT, details=lines(ONE_BAD), canaryWeight=0, iterations=2, failedChecks=1),
        id="blue-green-halt-keeps-iteration",
    ),
    # --- A/B testing (runAB) ---
    pytest.param(
        ab_testing(),
        rolling(Phase.PROGRESSING),
        observe(60),
        then(Action.ADVANCE, canaryWeight=100, iterations=1),  # the matched requests go to the canary
        id="ab-first-iteration-without-measuring",
    ),
    pytest.param(
        ab_testing(),
        rolling(Phase.PROGRESSING, iterations=1),
        observe(60, checks=ALL_OK),
        then(Action.ADVANCE, details=lines(ALL_OK), canaryWeight=100, iterations=2),
        id="ab-iteration",
    ),
    pytest.param(
        ab_testing(),
        rolling(Phase.PROGRESSING, iterations=3),
        observe(60, checks=ALL_OK),
        then(
            Action.PROMOTE,
            copy=True,
            details=lines(ALL_OK),
            phase=Phase.PROMOTING,
            canaryWeight=0,
            iterations=3,
        ),
        id="ab-promotes-without-switching-traffic",
    ),
]


@pytest.mark.parametrize(("canary", "status", "obs", "want"), CASES)
def test_decide(canary: Canary, status: CanaryStatus | None, obs: Observation, want: Want) -> None:
    decision = decide(canary, status, obs)

    assert decision.action is want.action, decision.reason
    assert decision.copy_to_primary is want.copy_to_primary
    assert decision.revert_target is want.revert_target
    assert decision.details == want.details
    if want.status is None:
        assert decision.status is None
        return
    assert decision.status is not None
    assert decision.status.last_transition_time == obs.now
    got = decision.status.model_dump(by_alias=True)
    assert {key: got[key] for key in want.status} == want.status


def test_decide_is_pure() -> None:
    status = rolling(Phase.PROGRESSING, canaryWeight=10)
    obs = observe(60, checks=ALL_OK)
    first = decide(make_canary(), status, obs)
    assert decide(make_canary(), status, obs) == first
    assert status == rolling(Phase.PROGRESSING, canaryWeight=10)


@pytest.mark.parametrize(
    ("canary", "strategy"),
    [
        pytest.param(make_canary(), Strategy.CANARY, id="canary"),
        pytest.param(blue_green(), Strategy.BLUE_GREEN, id="blue-green"),
        pytest.param(ab_testing(), Strategy.AB_TESTING, id="ab-testing"),
        pytest.param(
            make_canary({"match": [{"headers": {"x": {"exact": "y"}}}]}),
            Strategy.CANARY,
            id="match-without-iterations-is-canary",
        ),
    ],
)
def test_strategy_of(canary: Canary, strategy: Strategy) -> None:
    assert strategy_of(canary) is strategy


@pytest.mark.parametrize(
    ("analysis", "threshold", "max_weight", "weights"),
    [
        pytest.param({}, 2, 30, [10, 20, 30], id="step-weight"),
        pytest.param({"threshold": 0, "maxWeight": None}, 1, 100, [10, 20, 30], id="defaults"),
        pytest.param({"maxWeight": 0, "stepWeight": 40}, 2, 100, [40, 80, 100], id="max-weight-0"),
        pytest.param({"maxWeight": 150, "stepWeight": 60}, 2, 100, [60, 100, 100], id="max-weight-over-100"),
        pytest.param({"stepWeight": 20, "maxWeight": 50}, 2, 50, [20, 40, 50], id="capped"),
        pytest.param({"stepWeight": None, "stepWeights": [1, 10, 50]}, 2, 50, [1, 10, 50], id="step-weights"),
        pytest.param(
            {"stepWeight": None, "stepWeights": [5, 120]}, 2, 100, [5, 100, 100], id="step-weights-over-100"
        ),
    ],
)
def test_weights(analysis: dict[str, Any], threshold: int, max_weight: int, weights: list[int]) -> None:
    canary = make_canary(analysis)
    assert threshold_of(canary) == threshold
    assert max_weight_of(canary) == max_weight
    walked, weight = [], 0
    for _ in weights:
        weight = next_weight(canary, weight)
        walked.append(weight)
    assert walked == weights


# --- whole rollouts: decide() in a loop, one tick per interval, checks fed when asked ---


@dataclass(frozen=True)
class Tick:
    action: Action
    phase: Phase
    weight: int
    failed_checks: int
    measured: bool


def simulate(
    canary: Canary, checks: Iterator[tuple[CheckResult, ...]], ticks: int = 20
) -> tuple[list[Tick], CanaryStatus, Callable[[], Decision]]:
    """Roll 6.1.1 out over 6.1.0 from scratch, acting on each decision as the edges would.

    The target runs 6.1.0 while initializing and is bumped to 6.1.1 once Initialized; a rollback
    writes 6.1.0 back. Stops at Succeeded or Failed; returns the ticks, the last status, and a
    function deciding one more interval later.
    """
    interval = timedelta(seconds=canary.spec.analysis.interval_seconds)
    now, target = T0, "old"
    status: CanaryStatus | None = None
    trace: list[Tick] = []
    for _ in range(ticks):
        obs = observe((now - T0).total_seconds(), target)
        decision = decide(canary, status, obs)
        measured = decision.action is Action.MEASURE
        if measured:
            decision = decide(canary, status, replace(obs, checks=next(checks)))
        assert decision.status is not None, f"tick at {now} did nothing: {decision.reason}"
        status = decision.status
        trace.append(
            Tick(decision.action, status.phase, status.canary_weight, status.failed_checks, measured)
        )
        if decision.revert_target:
            target = "old"
        elif status.phase is Phase.INITIALIZED:
            target = "new"
        if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
        now += interval
    final = status
    assert final is not None
    later = observe((now + interval - T0).total_seconds(), target)
    return trace, final, lambda: decide(canary, final, later)


def ticks(*rows: tuple[Action, Phase, int, int, bool]) -> list[Tick]:
    return [Tick(*row) for row in rows]


A, P = Action, Phase


def test_rollout_passing_canary() -> None:
    trace, final, later = simulate(
        make_canary({"stepWeight": 10, "maxWeight": 30}), iter(lambda: ALL_OK, None)
    )
    assert trace == ticks(
        (A.INITIALIZE, P.INITIALIZING, 0, 0, False),
        (A.INITIALIZED, P.INITIALIZED, 0, 0, False),
        (A.START, P.PROGRESSING, 0, 0, False),
        (A.ADVANCE, P.PROGRESSING, 10, 0, False),
        (A.ADVANCE, P.PROGRESSING, 20, 0, True),
        (A.ADVANCE, P.PROGRESSING, 30, 0, True),
        (A.PROMOTE, P.PROMOTING, 30, 0, True),
        (A.FINALIZE, P.FINALISING, 0, 0, False),
        (A.SUCCEED, P.SUCCEEDED, 0, 0, False),
    )
    assert (final.last_promoted_spec, final.primary_revision) == (NEW, "6.1.1")
    assert final.rollout_id == "6.1.0..6.1.1/2026-11-21T23:02:00Z"
    assert later().action is Action.NONE


def test_rollout_failing_canary() -> None:
    checks = iter([ALL_OK, ONE_BAD, NO_DATA])
    trace, final, later = simulate(make_canary({"stepWeight": 10, "maxWeight": 30, "threshold": 2}), checks)
    assert trace == ticks(
        (A.INITIALIZE, P.INITIALIZING, 0, 0, False),
        (A.INITIALIZED, P.INITIALIZED, 0, 0, False),
        (A.START, P.PROGRESSING, 0, 0, False),
        (A.ADVANCE, P.PROGRESSING, 10, 0, False),
        (A.ADVANCE, P.PROGRESSING, 20, 0, True),
        (A.HALT, P.PROGRESSING, 20, 1, True),
        (A.ROLLBACK, P.FAILED, 0, 2, True),
    )
    assert (final.last_promoted_spec, final.primary_revision) == (OLD, "6.1.0")
    # The old tag is written back: the primary's own spec is not rolled out again.
    assert later().action is Action.NONE


def test_rollout_step_weights() -> None:
    canary = make_canary({"stepWeight": None, "maxWeight": None, "stepWeights": [1, 10, 50]})
    trace, final, _ = simulate(canary, iter(lambda: ALL_OK, None))
    assert [(tick.action, tick.weight, tick.measured) for tick in trace] == [
        (A.INITIALIZE, 0, False),
        (A.INITIALIZED, 0, False),
        (A.START, 0, False),
        (A.ADVANCE, 1, False),
        (A.ADVANCE, 10, True),
        (A.ADVANCE, 50, True),
        (A.PROMOTE, 50, True),
        (A.FINALIZE, 0, False),
        (A.SUCCEED, 0, False),
    ]
    assert final.phase is Phase.SUCCEEDED


def test_rollout_blue_green_with_step_weight_promotion() -> None:
    trace, final, _ = simulate(blue_green(iterations=2, stepWeightPromotion=50), iter(lambda: ALL_OK, None))
    assert [(tick.action, tick.phase, tick.weight, tick.measured) for tick in trace[2:]] == [
        (A.START, P.PROGRESSING, 0, False),
        (A.ADVANCE, P.PROGRESSING, 0, False),  # iteration 1
        (A.ADVANCE, P.PROGRESSING, 0, True),  # iteration 2
        (A.ADVANCE, P.PROGRESSING, 100, True),  # all traffic to the canary
        (A.PROMOTE, P.PROMOTING, 100, True),
        (A.FINALIZE, P.PROMOTING, 50, False),
        (A.FINALIZE, P.FINALISING, 0, False),
        (A.SUCCEED, P.SUCCEEDED, 0, False),
    ]
    assert final.last_promoted_spec == NEW
