"""`decide`'s rules that survived mutants of gitcanary/core (scripts/mutate.py, docs/mutation.md).

Every call of `decide` goes through `total`: on valid input it returns, never raises (a raise is a
failed assertion). Each test pins one rule of Flagger's (or of gitcanary's own, documented in
docs/) that no earlier test reached: which spec hashes cancel a rollout, which revision a
quarantine lifts, the order the workloads are waited for, the boundaries of holds and failed-check
thresholds, the messages a status carries. The expectations are written out by hand here, never
read from gitcanary's output.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from test_core_total_mutants import total
from test_rollout import ALL_OK, T0, make_canary, observe, rolling

from gitcanary.core import gates, holds, manual_rules
from gitcanary.core.observations import (
    CheckResult,
    ClusterObservation,
    HookResult,
    Observation,
    Verdict,
    WorkloadState,
)
from gitcanary.core.rollout import Action, Decision, decide
from gitcanary.spec.request import ManualAction, ManualRequest
from gitcanary.spec.status import CanaryStatus, Phase

PAT = "Pat Person <pat@example.com>"


def at(after: float, spec: str, revision: str = "6.1.9", **fields: Any) -> Observation:
    return Observation(
        now=T0 + timedelta(seconds=after), target_spec=spec, target_revision=revision, **fields
    )


# -- which target spec cancels a rollout (string hashes: order must not matter) --------------------


@pytest.mark.parametrize(
    ("promoted", "applied", "target", "action"),
    [
        # Back at the primary's spec while another was under analysis: abandoned.
        ("sha256:a", "sha256:b", "sha256:a", Action.CANCEL),
        ("sha256:c", "sha256:b", "sha256:c", Action.CANCEL),
        # A third spec, whichever way it sorts against the other two: a new revision restarts.
        ("sha256:a", "sha256:b", "sha256:c", Action.RESTART),
        ("sha256:c", "sha256:b", "sha256:a", Action.RESTART),
        ("sha256:b", "sha256:c", "sha256:a", Action.RESTART),
    ],
)
def test_only_the_primarys_own_spec_cancels_a_rollout(
    promoted: str, applied: str, target: str, action: Action
) -> None:
    status = rolling(Phase.PROGRESSING, canaryWeight=10, lastPromotedSpec=promoted, lastAppliedSpec=applied)
    assert total("decide", decide, make_canary(), status, at(60, target)).action is action


def test_a_cancelled_mirrored_rollout_stops_mirroring() -> None:
    canary = make_canary({"mirror": True})
    status = rolling(
        Phase.PROGRESSING, mirrored=True, lastPromotedSpec="sha256:a", lastAppliedSpec="sha256:b"
    )
    decision = total("decide", decide, canary, status, at(60, "sha256:a"))
    assert decision.action is Action.CANCEL and decision.status is not None
    assert (decision.status.phase, decision.status.canary_weight, decision.status.mirrored) == (
        Phase.INITIALIZED,
        0,
        False,
    )


# -- quarantine ---------------------------------------------------------------------------------


def test_rolling_a_revision_out_again_lifts_its_quarantine_only() -> None:
    status = rolling(
        Phase.FAILED,
        quarantined=("6.0.9", "6.1.1", "6.1.5"),
        lastAppliedSpec="sha256:new",
        lastPromotedSpec="sha256:old",
    )
    decision = total("decide", decide, make_canary(), status, at(60, "sha256:other", "6.1.1"))
    assert decision.action is Action.START and decision.status is not None
    assert decision.status.quarantined == ("6.0.9", "6.1.5")


@pytest.mark.parametrize(
    ("automated", "quarantined", "action"),
    [
        (True, ("6.1.9",), Action.QUARANTINE),
        (True, ("6.0.1",), Action.START),
        (False, ("6.1.9",), Action.START),  # a person's bump rolls a failed revision out again
        (False, (), Action.START),
    ],
)
def test_only_an_automation_bringing_back_a_failed_revision_is_quarantined(
    automated: bool, quarantined: tuple[str, ...], action: Action
) -> None:
    status = rolling(Phase.FAILED, quarantined=quarantined, failedChecks=2)
    decision = total(
        "decide", decide, make_canary(), status, at(60, "sha256:back", "6.1.9", automated=automated)
    )
    assert decision.action is action and decision.status is not None
    # Either way all traffic is on the primary and the counters start afresh.
    written = decision.status
    assert (written.canary_weight, written.failed_checks, written.iterations, written.mirrored) == (
        0,
        0,
        0,
        False,
    )


def test_an_observation_is_of_a_persons_change_unless_told() -> None:
    """`automated` defaults to False: a quarantined revision pushed by a person starts a rollout."""
    status = rolling(Phase.FAILED, quarantined=("6.1.9",))
    assert (
        total("decide", decide, make_canary(), status, Observation(T0, "sha256:back", "6.1.9")).action
        is Action.START
    )


@pytest.mark.parametrize(
    ("quarantined", "canary_revision", "after"),
    [
        ((), "6.1.1", ("6.1.1",)),
        (("6.1.1",), "6.1.1", ("6.1.1",)),  # never twice
        (("6.0.1",), "6.1.1", ("6.0.1", "6.1.1")),
        (("6.0.1",), "", ("6.0.1",)),  # no revision label: nothing to quarantine
    ],
)
def test_a_rollback_quarantines_the_canary_revision_once(
    quarantined: tuple[str, ...], canary_revision: str, after: tuple[str, ...]
) -> None:
    status = rolling(
        Phase.PROGRESSING, canaryWeight=10, quarantined=quarantined, canaryRevision=canary_revision
    )
    decision = total(
        "decide", decide, make_canary({"threshold": 1}), status, observe(after=60, checks=(_fail("errors"),))
    )
    assert decision.action is Action.ROLLBACK and decision.status is not None
    assert decision.status.quarantined == after


# -- starting -----------------------------------------------------------------------------------


def test_a_start_and_a_restart_say_which_they_are() -> None:
    started = total("decide", decide, make_canary(), rolling(Phase.SUCCEEDED), at(60, "sha256:next"))
    assert started.action is Action.START and started.status is not None
    assert started.status.message == "new revision detected; starting canary analysis"
    restarted = total(
        "decide", decide, make_canary(), rolling(Phase.PROGRESSING, canaryWeight=10), at(60, "sha256:next")
    )
    assert restarted.action is Action.RESTART and restarted.status is not None
    assert restarted.status.message == "revision changed during analysis; starting canary analysis"


def test_skip_analysis_promotes_with_fresh_counters() -> None:
    status = rolling(Phase.FAILED, failedChecks=2, iterations=3)
    decision = total("decide", decide, make_canary(skipAnalysis=True), status, at(60, "sha256:next"))
    assert decision.action is Action.PROMOTE and decision.status is not None
    assert (decision.status.phase, decision.status.failed_checks, decision.status.iterations) == (
        Phase.SUCCEEDED,
        0,
        0,
    )


# -- waiting for the cluster --------------------------------------------------------------------


def _cluster(canary: WorkloadState, primary: WorkloadState) -> ClusterObservation:
    return ClusterObservation(True, "", canary, primary, T0)


READY_C = WorkloadState("backend", ready=True)
READY_P = WorkloadState("backend-primary", ready=True)
STUCK_P = WorkloadState(
    "backend-primary", ready=False, reason="0/2 ready", unavailable_since=T0 - timedelta(hours=1)
)
STUCK_C = WorkloadState("backend", ready=False, reason="1/2 ready")


def test_the_canary_is_waited_for_before_the_primary() -> None:
    decision = total(
        "decide",
        decide,
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        Observation(**{**_obs_fields(), "cluster": _cluster(STUCK_C, STUCK_P)}),
    )
    assert decision.action is Action.NONE
    assert decision.reason == "waiting for canary deployment backend: 1/2 ready"


def test_a_ready_canary_still_waits_for_its_primary() -> None:
    decision = total(
        "decide",
        decide,
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        Observation(**{**_obs_fields(), "cluster": _cluster(READY_C, STUCK_P)}),
    )
    # A primary past its deadline only waits (Flagger: nothing to roll back to).
    assert decision.action is Action.NONE
    assert decision.reason == "waiting for primary deployment backend-primary: 0/2 ready"


def _obs_fields() -> dict[str, Any]:
    return {
        "now": T0 + timedelta(seconds=120),
        "target_spec": "sha256:new",
        "target_revision": "6.1.1",
        "checks": ALL_OK,
    }


# -- advancing ----------------------------------------------------------------------------------


def test_a_weight_above_a_lowered_max_weight_promotes() -> None:
    """maxWeight lowered below the current weight mid-rollout: the analysis is done, promote."""
    decision = total(
        "decide",
        decide,
        make_canary({"maxWeight": 30}),
        rolling(Phase.PROGRESSING, canaryWeight=40),
        observe(after=60, checks=ALL_OK),
    )
    assert decision.action is Action.PROMOTE


def test_no_step_to_advance_by_rolls_back() -> None:
    decision = total(
        "decide", decide, make_canary({"stepWeight": None}), rolling(Phase.PROGRESSING), observe(after=60)
    )
    assert decision.action is Action.ROLLBACK
    assert decision.reason == "analysis has no stepWeight or stepWeights to advance by"


def test_failed_checks_at_the_threshold_roll_back_before_measuring() -> None:
    """A threshold lowered to the failed-check count mid-rollout: roll back at the next interval."""
    decision = total(
        "decide",
        decide,
        make_canary({"threshold": 2}),
        rolling(Phase.PROGRESSING, canaryWeight=10, failedChecks=2),
        observe(after=60, checks=ALL_OK),
    )
    assert decision.action is Action.ROLLBACK
    assert decision.reason == "failed checks 2 >= threshold 2"


@pytest.mark.parametrize(
    ("provider", "weight", "message"),
    [
        ("istio", 100, "Routing all traffic to canary"),
        ("kubernetes", 0, "Analysis done (no router to switch)"),
        ("nginx", 100, "Routing all traffic to canary"),
        ("linkerd", 100, "Routing all traffic to canary"),
    ],
)
def test_blue_green_switch_says_whether_traffic_moved(provider: str, weight: int, message: str) -> None:
    canary = make_canary({"iterations": 3, "stepWeight": None, "maxWeight": None}, provider=provider)
    decision = total(
        "decide", decide, canary, rolling(Phase.PROGRESSING, iterations=3), observe(after=60, checks=ALL_OK)
    )
    assert decision.action is Action.ADVANCE and decision.status is not None
    assert (decision.status.canary_weight, decision.status.iterations, decision.status.message) == (
        weight,
        4,
        message,
    )


@pytest.mark.parametrize(
    ("weight", "phase", "after"),
    [
        (21, Phase.PROMOTING, 1),  # 21 - 20 = 1 > 0: one more step down
        (20, Phase.FINALISING, 0),  # 20 - 20 = 0: straight to finalising
        (10, Phase.FINALISING, 0),
    ],
)
def test_promotion_steps_down_while_above_zero(weight: int, phase: Phase, after: int) -> None:
    canary = make_canary({"stepWeightPromotion": 20})
    decision = total(
        "decide", decide, canary, rolling(Phase.PROMOTING, canaryWeight=weight), observe(after=60)
    )
    assert decision.status is not None
    assert (decision.status.phase, decision.status.canary_weight) == (phase, after)


# -- holds --------------------------------------------------------------------------------------


def _fail(name: str) -> CheckResult:
    return CheckResult(name, 5.0, None, 1.0, False, f"{name} 5 > 1 failed")


def _held(name: str, kind: Verdict) -> CheckResult:
    return CheckResult(name, None, None, None, False, f"{name} {kind.value}", outcome=kind)


@pytest.mark.parametrize(
    ("held_for", "action"), [(599, Action.NONE), (600, Action.ROLLBACK), (3600, Action.ROLLBACK)]
)
def test_an_incident_hold_rolls_back_at_its_bound(held_for: int, action: Action) -> None:
    canary = make_canary(progressDeadlineSeconds=600)
    check = _held("errors", Verdict.HOLD)
    why = holds.reason(Verdict.HOLD, (check,))
    status = rolling(
        Phase.PROGRESSING, canaryWeight=10, heldSince=T0 - timedelta(seconds=held_for - 60), holdReason=why
    )
    assert total("decide", decide, canary, status, observe(after=60, checks=(check,))).action is action


@pytest.mark.parametrize(
    ("held_for", "action"), [(599, Action.NONE), (600, Action.HALT), (3600, Action.HALT)]
)
def test_a_wait_for_samples_becomes_a_failed_check_at_its_bound(held_for: int, action: Action) -> None:
    check = _held("latency", Verdict.WAIT)
    ok = CheckResult("errors", 0.0, None, 1.0, True, "errors 0 <= 1 ok")
    status = rolling(
        Phase.PROGRESSING,
        canaryWeight=10,
        heldSince=T0 - timedelta(seconds=held_for - 60),
        holdReason=holds.reason(Verdict.WAIT, (check,)),
    )
    decision = total("decide", decide, make_canary(), status, observe(after=60, checks=(ok, check)))
    assert decision.action is action
    if action is Action.HALT:
        # The evidence keeps every check, the waited one marked failed with how long it waited.
        assert decision.details == (
            "errors 0 <= 1 ok",
            f"latency wait: waited {held_for:g}s, longer than 600s",
        )


def test_a_hold_of_another_kind_starts_its_own_bound() -> None:
    """An incident after a long wait for samples is bounded from when the incident began."""
    check = _held("errors", Verdict.HOLD)
    status = rolling(
        Phase.PROGRESSING, canaryWeight=10, heldSince=T0 - timedelta(hours=5), holdReason="waiting: errors"
    )
    decision = total("decide", decide, make_canary(), status, observe(after=60, checks=(check,)))
    assert decision.action is Action.HOLD and decision.status is not None
    assert decision.status.held_since == T0 + timedelta(seconds=60)
    # And the same the other way round ("incident" sorts before "waiting").
    wait = _held("errors", Verdict.WAIT)
    status = rolling(
        Phase.PROGRESSING, canaryWeight=10, heldSince=T0 - timedelta(hours=5), holdReason="incident: errors"
    )
    decision = total("decide", decide, make_canary(), status, observe(after=60, checks=(wait,)))
    assert decision.action is Action.HOLD and decision.status is not None
    assert decision.status.held_since == T0 + timedelta(seconds=60)


# -- manual requests ----------------------------------------------------------------------------


def _asked(status: CanaryStatus, action: ManualAction, rollout: str) -> CanaryStatus:
    request = ManualRequest(action=action, actor=PAT, rollout_id=rollout, requested_at=T0)
    return status.model_copy(update={"request": request})


@pytest.mark.parametrize(
    "rollout", ["0.0.0..0.0.1/2020-01-01T00:00:00Z", "9.9.9..9.9.9/2099-01-01T00:00:00Z"]
)
def test_a_request_for_another_rollout_is_not_honoured(rollout: str) -> None:
    status = _asked(rolling(Phase.PROGRESSING, canaryWeight=10), ManualAction.ABORT, rollout)
    decision = total("decide", decide, make_canary(), status, observe(after=60, checks=ALL_OK))
    assert decision.action is Action.ADVANCE and decision.actor == ""


def test_a_retry_says_so_unless_the_analysis_is_skipped() -> None:
    failed = rolling(Phase.FAILED)
    status = _asked(failed, ManualAction.RETRY, failed.rollout_id)
    retried = total("decide", decide, make_canary(), status, observe(after=60))
    assert retried.action is Action.START and retried.status is not None
    assert retried.status.message == f"Retry requested by {PAT}; starting canary analysis"
    skipped = total("decide", decide, make_canary(skipAnalysis=True), status, observe(after=60))
    assert skipped.action is Action.PROMOTE and skipped.status is not None
    assert skipped.status.message == "Canary analysis skipped; promotion finished"


@pytest.mark.parametrize(
    ("phase", "refusal"),
    [
        (
            Phase.PROMOTING,
            "phase Promoting: the primary already runs the new revision; promotion is finishing",
        ),
        (
            Phase.FINALISING,
            "phase Finalising: the primary already runs the new revision; promotion is finishing",
        ),
        (Phase.SUCCEEDED, "phase Succeeded: no rollout is under analysis"),
    ],
)
def test_a_promotion_request_out_of_analysis_is_refused_with_why(phase: Phase, refusal: str) -> None:
    assert manual_rules.refusal(ManualAction.PROMOTE, phase, False) == refusal


# -- values -------------------------------------------------------------------------------------


def test_the_cores_results_are_values() -> None:
    """Decisions, checks, hook answers and cluster observations cannot change once made."""
    values: list[Any] = [
        Decision(Action.NONE, "x"),
        CheckResult("errors", 1.0, None, 2.0, True, "errors 1 <= 2 ok"),
        HookResult("rollout", True),
        ClusterObservation(True),
    ]
    for value in values:
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)


def test_a_hook_alerts_unless_muted() -> None:
    assert HookResult("rollout", False, "load", "HTTP 500").mute_alert is False


def test_a_failed_hook_is_a_failed_check() -> None:
    check = gates.as_check(HookResult("rollout", False, "load", "HTTP 500"))
    assert (check.name, check.ok, check.verdict, check.line) == (
        "webhook load",
        False,
        Verdict.FAIL,
        "rollout webhook load failed: HTTP 500",
    )


def test_a_step_that_would_lower_the_weight_rolls_back() -> None:
    """A negative stepWeight (the loader refuses it; the core guards itself) never moves traffic back."""
    decision = total(
        "decide",
        decide,
        make_canary({"stepWeight": -5}),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(after=60, checks=ALL_OK),
    )
    assert decision.action is Action.ROLLBACK
    assert decision.reason == "analysis has no stepWeight or stepWeights to advance by"


def test_waiting_for_approval_and_abandoning_it_keep_all_traffic_on_the_primary() -> None:
    hooks = [{"name": "approve", "type": gates.CONFIRM_ROLLOUT, "url": "http://loadtester.test/gate"}]
    canary = make_canary({"webhooks": hooks})
    closed = {gates.CONFIRM_ROLLOUT: HookResult(gates.CONFIRM_ROLLOUT, False, "approve", "HTTP 403")}
    waiting = total(
        "decide",
        decide,
        canary,
        rolling(Phase.SUCCEEDED, lastAppliedSpec="sha256:old"),
        at(60, "sha256:new", "6.1.1", hooks=closed),
    )
    assert waiting.action is Action.WAIT and waiting.status is not None
    assert (waiting.status.phase, waiting.status.canary_weight) == (Phase.WAITING, 0)
    reverted = total(
        "decide", decide, canary, waiting.status, at(120, waiting.status.last_promoted_spec, "6.1.0")
    )
    assert reverted.action is Action.CANCEL and reverted.status is not None
    assert (reverted.status.phase, reverted.status.canary_weight) == (Phase.INITIALIZED, 0)


def test_initialized_says_whether_the_cluster_saw_the_primary_ready() -> None:
    initializing = rolling(Phase.INITIALIZING, canaryWeight=0)
    guessed = total("decide", decide, make_canary(), initializing, observe(after=60, target="new"))
    assert guessed.action is Action.INITIALIZED
    assert (
        guessed.reason
        == "primary assumed ready (settle delay passed, no cluster access); routing all traffic to it"
    )
    seen = Observation(**{**_obs_fields(), "checks": None, "cluster": _cluster(READY_C, READY_P)})
    ready = total("decide", decide, make_canary(), initializing, seen)
    assert ready.action is Action.INITIALIZED
    assert ready.reason == "primary ready; routing all traffic to it"
