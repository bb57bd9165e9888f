"""Tests written for mutants of gitcanary/core that survived scripts/mutate.py (docs/mutation.md).

Each pins a rule of Flagger's the existing tests did not reach: the promotion ladder's steps down,
blue/green's all-or-nothing switch on a mesh, the ready thresholds per role, the progress deadline's
boundary, the next analysis instant, and observations as values. Expectations are computed here,
by simulating the rule step by step, never from gitcanary's output.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import T0, make_canary, observe, rolling

from gitcanary.core import ladder
from gitcanary.core.observations import WorkloadState
from gitcanary.core.rollout import Action, deadline_exceeded, decide, ready_threshold
from gitcanary.spec.models import Canary
from gitcanary.spec.status import Phase


def _stepping_down(start: int, step: int) -> set[int]:
    """Flagger's promotion with stepWeightPromotion: the canary's weight falls by `step` while above 0."""
    seen = {start}
    weight = start
    while step > 0 and weight - step > 0:
        weight -= step
        seen.add(weight)
    return seen


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    step=st.integers(min_value=1, max_value=50),
    cap=st.integers(min_value=1, max_value=100),
    promotion=st.integers(min_value=0, max_value=60),
)
def test_promotion_steps_down_from_every_analysis_weight(step: int, cap: int, promotion: int) -> None:
    canary = make_canary({"stepWeight": step, "maxWeight": cap, "stepWeightPromotion": promotion or None})
    # The ladder, simulated: 0, then +step capped at maxWeight.
    weights = [0]
    while weights[-1] < cap:
        weights.append(min(weights[-1] + step, cap))
    assert ladder.ladder(canary) == tuple(weights)
    expected = set().union(*(_stepping_down(w, promotion) for w in weights))
    assert ladder.promotion_weights(canary) == expected


def _blue_green_on(provider: str) -> Canary:
    return make_canary({"iterations": 3, "stepWeight": None, "maxWeight": None}, provider=provider)


@pytest.mark.parametrize("provider", ["istio", "linkerd", "nginx", "smi:v1alpha3", "gatewayapi:v1"])
def test_blue_green_on_a_router_switches_all_or_nothing(provider: str) -> None:
    assert ladder.analysis_weights(_blue_green_on(provider)) == (0, 100)


def test_blue_green_without_a_router_never_switches_weights() -> None:
    assert ladder.analysis_weights(_blue_green_on("kubernetes")) == (0,)


def test_ready_thresholds_are_per_role() -> None:
    canary = make_canary({"canaryReadyThreshold": 60, "primaryReadyThreshold": 80})
    assert (ready_threshold(canary, "canary"), ready_threshold(canary, "primary")) == (60, 80)
    assert (ready_threshold(make_canary(), "canary"), ready_threshold(make_canary(), "primary")) == (100, 100)


def test_the_progress_deadline_is_exceeded_only_after_it_passes() -> None:
    canary = make_canary(progressDeadlineSeconds=120)
    since = WorkloadState("backend", ready=False, unavailable_since=T0)
    assert not deadline_exceeded(canary, since, T0 + timedelta(seconds=120))
    assert deadline_exceeded(canary, since, T0 + timedelta(seconds=120, microseconds=1))
    assert not deadline_exceeded(canary, WorkloadState("backend", ready=False), T0 + timedelta(days=1))
    reported = WorkloadState("backend", ready=False, deadline_exceeded=True)
    assert deadline_exceeded(canary, reported, T0)


def test_a_waiting_canary_is_quiet_until_the_instant_before_its_next_analysis() -> None:
    canary = make_canary()  # interval 1m
    status = rolling(Phase.PROGRESSING, canaryWeight=10)
    decision = decide(canary, status, observe(after=30))
    assert decision.action is Action.NONE
    assert decision.quiet_until == T0 + timedelta(seconds=60) - timedelta(microseconds=1)
    assert decide(canary, status, observe(after=59.999999)).action is Action.NONE
    assert decide(canary, status, observe(after=60)).action is not Action.NONE


def test_observations_are_values() -> None:
    """The core's inputs cannot change under it (frozen dataclasses)."""
    state = WorkloadState("backend", ready=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.ready = False  # type: ignore[misc]
    obs = observe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.live = False  # type: ignore[misc]


def test_promotion_steps_the_primary_up_by_step_weight_promotion_and_says_so() -> None:
    """Flagger's message while promoting with stepWeightPromotion: `Advance primary weight N`."""
    canary = make_canary({"stepWeightPromotion": 20})
    status = rolling(Phase.PROMOTING, canaryWeight=50)
    seen = []
    for _ in range(5):
        decision = decide(canary, status, observe(after=60))
        assert decision.action is Action.FINALIZE and decision.status is not None
        status = decision.status.model_copy(update={"last_transition_time": T0})
        seen.append((status.phase, status.canary_weight, status.message, decision.reason))
        if status.phase is Phase.FINALISING:
            break
    assert seen == [
        (Phase.PROMOTING, 30, "Advance primary weight 70", "promotion: primary at 70%"),
        (Phase.PROMOTING, 10, "Advance primary weight 90", "promotion: primary at 90%"),
        (Phase.FINALISING, 0, "Routing all traffic to primary", seen[-1][3]),
    ]


def test_a_rollback_names_the_failed_checks() -> None:
    from test_rollout import ONE_BAD

    canary = make_canary()  # threshold 2
    status = rolling(Phase.PROGRESSING, canaryWeight=20, failedChecks=1)
    decision = decide(canary, status, observe(after=60, checks=ONE_BAD))
    assert decision.action is Action.ROLLBACK and decision.status is not None
    # The second failed check of threshold 2, then the failing check's own line (ONE_BAD's).
    assert decision.status.message == (
        "Canary failed! failed checks reached threshold 2/2: request-success-rate 97.1 < 99 failed"
    )


@pytest.mark.parametrize(
    ("annotation", "intervals"), [(None, 10), ("3", 3), ("0", 1), ("-4", 1), ("many", 10)]
)
def test_a_wait_for_samples_lasts_the_annotated_intervals_at_least_one(
    annotation: str | None, intervals: int
) -> None:
    """`gitcanary.io/max-wait-intervals`, default 10, never below one interval (1m here)."""
    from gitcanary.core import holds
    from gitcanary.core.observations import Verdict

    canary = make_canary()
    if annotation is not None:
        canary.metadata.annotations[holds.MAX_WAIT_ANNOTATION] = annotation
    assert holds.bound_seconds(canary, Verdict.WAIT) == intervals * 60
