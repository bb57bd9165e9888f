"""Table tests for the webhook gates in the pure rollout core (Flagger's `scheduler_hooks.go`).

The core asks for hook types with `Action.MEASURE` + `Decision.hooks`; the edge answers with
`Observation.hooks`. Each case: a canary with hooks, a committed status, the hook answers, and
the decision the core must return.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from test_rollout import ALL_OK, NEW, OLD, ONE_BAD, ROLLOUT, T0, lines, make_canary

from gitcanary.core import gates
from gitcanary.core.observations import HookResult, Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

URL = "http://flagger-loadtester.test"


def with_hooks(*kinds: str, **analysis: object) -> Canary:
    hooks = [{"name": f"{kind}-hook", "type": kind, "url": f"{URL}/gate/check"} for kind in kinds]
    return make_canary({"webhooks": hooks, **analysis})


def status(
    phase: Phase, weight: int = 0, *, failed: int = 0, at: int = -60, iterations: int = 0
) -> CanaryStatus:
    rolling = phase not in (Phase.SUCCEEDED, Phase.INITIALIZED)
    return CanaryStatus(
        phase=phase,
        canary_weight=weight,
        failed_checks=failed,
        iterations=iterations,
        last_applied_spec=NEW if rolling and phase is not Phase.WAITING else OLD,
        last_promoted_spec=OLD,
        primary_revision="6.1.0",
        canary_revision="6.1.1" if rolling else "6.1.0",
        rollout_id=ROLLOUT if rolling else "",
        last_transition_time=T0 + timedelta(seconds=at),
    )


def obs(**hooks: bool) -> Observation:
    """Hook answers by type (underscores for dashes): True passed/signalled, False failed/closed."""
    answers = {}
    for name, ok in hooks.items():
        kind = name.replace("_", "-")
        answers[kind] = HookResult(kind, ok, f"{kind}-hook", "" if ok else "HTTP 403: Forbidden")
    return Observation(T0, NEW, "6.1.1", hooks=answers)


def test_core_asks_for_hooks_it_needs() -> None:
    decision = decide(with_hooks(gates.CONFIRM_ROLLOUT), status(Phase.SUCCEEDED), obs())
    assert (decision.action, decision.hooks) == (Action.MEASURE, (gates.CONFIRM_ROLLOUT,))
    # Without hooks of a type nothing is asked: the core goes straight on.
    assert decide(make_canary(), status(Phase.SUCCEEDED), obs()).action is Action.START


def test_confirm_rollout_closed_waits_with_canary_at_zero() -> None:
    canary = with_hooks(gates.CONFIRM_ROLLOUT)
    decision = decide(canary, status(Phase.SUCCEEDED), obs(confirm_rollout=False))
    assert decision.action is Action.WAIT
    assert decision.status is not None
    assert decision.status.phase is Phase.WAITING and not decision.status.phase.canary_scaled_up
    assert decision.status.message == "Halt advancement waiting for approval confirm-rollout-hook"
    assert decision.status.canary_revision == "6.1.1"
    # Still closed: no new commit, the reason says why.
    waiting = decision.status
    again = decide(canary, waiting, obs(confirm_rollout=False))
    assert again.action is Action.NONE and "waiting for rollout approval" in again.reason
    # Opened: the rollout starts.
    started = decide(canary, waiting, obs(confirm_rollout=True))
    assert started.action is Action.START and started.status is not None
    assert started.status.phase is Phase.PROGRESSING and started.status.last_applied_spec == NEW


def test_waiting_rollout_reverted_is_abandoned() -> None:
    canary = with_hooks(gates.CONFIRM_ROLLOUT)
    waiting = decide(canary, status(Phase.SUCCEEDED), obs(confirm_rollout=False)).status
    assert waiting is not None
    reverted = Observation(T0, OLD, "6.1.0")
    decision = decide(canary, waiting, reverted)
    assert decision.action is Action.CANCEL and decision.status is not None
    assert decision.status.phase is Phase.INITIALIZED


@pytest.mark.parametrize(
    ("kind", "weight", "failed", "action"),
    [
        (gates.PRE_ROLLOUT, 0, 0, Action.HALT),  # before the first traffic
        (gates.PRE_ROLLOUT, 0, 1, Action.ROLLBACK),  # the failure that reaches threshold 2
        (gates.ROLLOUT, 10, 0, Action.HALT),  # during analysis, before the metrics
        (gates.ROLLOUT, 10, 1, Action.ROLLBACK),
    ],
)
def test_failing_pre_rollout_and_rollout_hooks_are_failed_checks(
    kind: str, weight: int, failed: int, action: Action
) -> None:
    canary = with_hooks(kind)
    current = status(Phase.PROGRESSING, weight, failed=failed)
    assert decide(canary, current, obs()).hooks == (kind,)
    decision = decide(canary, current, obs(**{kind.replace("-", "_"): False}))
    assert decision.action is action
    assert decision.failed == (f"{kind} webhook {kind}-hook failed: HTTP 403: Forbidden",)
    assert decision.status is not None and decision.status.failed_checks == failed + 1


def test_rollout_hooks_run_before_the_metrics() -> None:
    canary = with_hooks(gates.ROLLOUT)
    current = status(Phase.PROGRESSING, 10)
    passed = decide(canary, current, obs(rollout=True))
    assert passed.action is Action.MEASURE and passed.hooks == ()  # now the metric checks
    advanced = decide(canary, current, replace(obs(rollout=True), checks=ALL_OK))
    assert advanced.action is Action.ADVANCE
    assert advanced.status is not None and advanced.status.canary_weight == 20


def test_confirm_traffic_increase_holds_the_weight() -> None:
    canary = with_hooks(gates.CONFIRM_TRAFFIC_INCREASE)
    current = status(Phase.PROGRESSING, 10)
    closed = decide(canary, current, replace(obs(confirm_traffic_increase=False), checks=ALL_OK))
    assert closed.action is Action.NONE and "traffic increase approval" in closed.reason
    opened = decide(canary, current, replace(obs(confirm_traffic_increase=True), checks=ALL_OK))
    assert opened.action is Action.ADVANCE


def test_confirm_promotion_waits_in_waiting_promotion_and_analysis_goes_on() -> None:
    canary = with_hooks(gates.CONFIRM_PROMOTION)
    at_max = status(Phase.PROGRESSING, 30)
    wait = decide(canary, at_max, replace(obs(confirm_promotion=False), checks=ALL_OK))
    assert wait.action is Action.WAIT and wait.status is not None
    assert wait.status.phase is Phase.WAITING_PROMOTION and wait.status.phase.canary_scaled_up
    assert wait.status.canary_weight == 30
    assert "waiting for promotion approval" in wait.status.message
    waiting = wait.status.model_copy(update={"last_transition_time": T0 - timedelta(seconds=60)})
    still = decide(canary, waiting, replace(obs(confirm_promotion=False), checks=ALL_OK))
    assert still.action is Action.NONE
    # Metrics still count while waiting: a failed check halts (and keeps the phase).
    bad = decide(canary, waiting, replace(obs(), checks=ONE_BAD))
    assert bad.action is Action.HALT and bad.status is not None
    assert bad.status.phase is Phase.WAITING_PROMOTION and bad.failed == lines(ONE_BAD[:1])
    promoted = decide(canary, waiting, replace(obs(confirm_promotion=True), checks=ALL_OK))
    assert promoted.action is Action.PROMOTE and promoted.status is not None
    assert promoted.status.phase is Phase.PROMOTING


def test_confirm_promotion_gates_blue_green_switch() -> None:
    canary = with_hooks(gates.CONFIRM_PROMOTION, iterations=2, stepWeight=None, maxWeight=None)
    done = status(Phase.PROGRESSING, 0, iterations=2)
    wait = decide(canary, done, replace(obs(confirm_promotion=False), checks=ALL_OK))
    assert wait.action is Action.WAIT
    switch = decide(canary, done, replace(obs(confirm_promotion=True), checks=ALL_OK))
    assert (
        switch.action is Action.ADVANCE and switch.status is not None and switch.status.canary_weight == 100
    )


@pytest.mark.parametrize("phase", [Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING])
def test_rollback_hook_rolls_back(phase: Phase) -> None:
    canary = with_hooks(gates.ROLLBACK, gates.CONFIRM_ROLLOUT)
    current = status(phase, 20 if phase is not Phase.WAITING else 0, at=-60)
    asked = decide(canary, current, obs())
    assert asked.hooks == (gates.ROLLBACK,)
    # Asked once an interval, as Flagger does, except while Waiting, where every poll asks the gates.
    recent = current.model_copy(update={"last_transition_time": T0 - timedelta(seconds=1)})
    assert decide(canary, recent, obs()).hooks == ((gates.ROLLBACK,) if phase is Phase.WAITING else ())
    quiet = decide(canary, current, obs(rollback=False, confirm_rollout=False))
    assert quiet.action is not Action.ROLLBACK
    decision = decide(canary, current, obs(rollback=True))
    assert decision.action is Action.ROLLBACK and decision.revert_target
    assert decision.status is not None and decision.status.phase is Phase.FAILED
    assert "rollback webhook rollback-hook invoked" in decision.reason


def test_last_attempt_postpones_the_next_analysis() -> None:
    """A closed gate commits nothing; the edge's last attempt makes the next run an interval later."""
    canary = with_hooks(gates.CONFIRM_PROMOTION)
    at_max = status(Phase.WAITING_PROMOTION, 30, at=-600)
    soon = replace(obs(), last_attempt=T0 - timedelta(seconds=20))
    assert decide(canary, at_max, soon).reason == "waiting for the next analysis interval"
    later = replace(obs(), last_attempt=T0 - timedelta(seconds=61))
    assert decide(canary, at_max, later).action is Action.MEASURE
