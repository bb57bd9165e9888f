"""Two properties of the pure core over generated rollouts (scripts/mutate.py's core package).

1. `decide` is total: for every valid Canary, status it wrote itself and observation, it returns a
   Decision. An exception would stop the reconciler for that canary at every poll, so a raise is a
   failed assertion here (pytest.fail), not an error of the test.
2. `decide` and `ladder.problem` agree: every status `decide` writes is one `problem` accepts
   (ladder.problem refuses statuses `decide` cannot have written: a forged or corrupt status file).
   The two are written independently (one steps, the other enumerates), so each checks the other.

The rollouts are simulated from generated canaries (every strategy, provider, ladder shape and
promotion step) and generated check outcomes per interval (pass, fail, wait for samples, incident).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import T0, make_canary

from gitcanary.core import gates, holds, ladder
from gitcanary.core.observations import (
    CheckResult,
    ClusterObservation,
    HookResult,
    Observation,
    Verdict,
    WorkloadState,
)
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

R = TypeVar("R")
MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


def total(what: str, call: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """`call(*args, **kwargs)`, or a failed assertion naming what raised: the core never raises on
    valid input."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the property under test is "raises nothing"
        pytest.fail(f"{what} raised {type(error).__name__}: {error}")


GATES = [
    gates.CONFIRM_ROLLOUT,
    gates.PRE_ROLLOUT,
    gates.ROLLOUT,
    gates.CONFIRM_TRAFFIC_INCREASE,
    gates.CONFIRM_PROMOTION,
    gates.ROLLBACK,
]


def _hooks(kinds: tuple[str, ...], outcome: str) -> dict[str, HookResult]:
    answers = {}
    for kind in kinds:
        # A rollback hook's 2xx is the signal to roll back; every other hook's is a pass.
        # A gate is closed on "closed" ticks and when a new revision arrives (opened at the next tick).
        ok = outcome == "signal" if kind == gates.ROLLBACK else outcome not in ("closed", "new")
        answers[kind] = total("HookResult", HookResult, kind, ok, f"{kind}-hook", "" if ok else "HTTP 403")
    return answers


@st.composite
def canaries(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.sampled_from(["step", "steps", "blue-green", "ab"]))
    analysis: dict[str, Any] = {
        "threshold": draw(st.integers(0, 2)),
        "stepWeightPromotion": draw(st.sampled_from([None, 0, 1, 7, 20, 60])),
        "mirror": draw(st.booleans()),
    }
    if shape == "step":
        analysis |= {
            "stepWeight": draw(st.integers(1, 60)),
            "maxWeight": draw(st.sampled_from([None, 5, 30, 100])),
        }
    elif shape == "steps":
        steps = sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=5)))
        analysis |= {"stepWeight": None, "maxWeight": None, "stepWeights": steps}
    else:
        analysis |= {"stepWeight": None, "maxWeight": None, "iterations": draw(st.integers(1, 4))}
        if shape == "ab":
            analysis["match"] = MATCH
    provider = draw(st.sampled_from(["istio", "kubernetes", "nginx"]))
    annotations = draw(
        st.sampled_from(
            [
                {},
                {holds.MAX_WAIT_ANNOTATION: "2"},
                {holds.MAX_WAIT_ANNOTATION: "x"},
                {holds.HOLD_DEADLINE_ANNOTATION: "3m"},
                {holds.HOLD_DEADLINE_ANNOTATION: "soon"},
            ]
        )
    )
    kinds = draw(st.sets(st.sampled_from(GATES), max_size=3))
    if kinds:
        analysis["webhooks"] = [
            {"name": f"{kind}-hook", "type": kind, "url": "http://loadtester.test/gate"}
            for kind in sorted(kinds)
        ]
    return {
        "analysis": analysis,
        "provider": provider,
        "annotations": annotations,
        "skipAnalysis": draw(st.booleans()) and draw(st.booleans()),
    }


def _canary(spec: dict[str, Any]) -> Canary:
    canary = make_canary(spec["analysis"], provider=spec["provider"], skipAnalysis=spec["skipAnalysis"])
    canary.metadata.annotations.update(spec["annotations"])
    return canary


PHASES_SEEN: set[Phase] = set()
# "closed": every gate answers no; "signal": a rollback hook answers 2xx; "bot": an image automation
# brings a quarantined (failed) revision back.
OUTCOMES = [
    "pass",
    "pass",
    "pass",
    "pass",
    "fail",
    "fail",
    "wait",
    "hold",
    "new",
    "back",
    "cluster-stuck",
    "idle",
    "closed",
    "signal",
    "bot",
    "soon",
]


def _checks(outcome: str) -> tuple[CheckResult, ...]:
    ok = CheckResult("errors", 0.1, None, 1.0, True, "errors 0.1 <= 1 ok")
    if outcome == "fail":
        return (ok, CheckResult("latency", 900.0, None, 500.0, False, "latency 900 > 500 failed"))
    if outcome in ("wait", "hold"):
        kind = Verdict.WAIT if outcome == "wait" else Verdict.HOLD
        return (ok, CheckResult("latency", None, None, 500.0, False, f"latency {kind.value}", outcome=kind))
    return (ok,)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(spec=canaries(), outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=4, max_size=20))
def test_decide_is_total_and_writes_only_statuses_ladder_accepts(
    spec: dict[str, Any], outcomes: list[str]
) -> None:
    canary = _canary(spec)
    status: CanaryStatus | None = None
    revisions = {"v0": ("sha256:v0", "v0")}
    target = revisions["v0"]
    now = T0
    decisions = 0
    phases: set[Phase] = set()
    # Initialize at v0, then a new revision: every example is a rollout.
    for outcome in ["pass", "pass", "new", *outcomes]:
        # "soon": 10 s after the last tick, before the next analysis is due (a quiet wait).
        now += timedelta(seconds=10 if outcome == "soon" else 61)
        automated = False
        if outcome == "new":
            n = len(revisions)
            target = (f"sha256:v{n}", f"v{n}")
            revisions[target[1]] = target
        elif outcome == "back" and status is not None:
            target = (status.last_promoted_spec, status.primary_revision)
        elif outcome == "bot" and status is not None and status.quarantined:
            target, automated = revisions[status.quarantined[-1]], True
        fields: dict[str, Any] = {
            "now": now,
            "target_spec": target[0],
            "target_revision": target[1],
            "automated": automated,
        }
        if outcome == "cluster-stuck":
            stuck = total("WorkloadState", WorkloadState, "backend", False, "0/1 ready", False, T0)
            ready = total("WorkloadState", WorkloadState, "backend-primary", True)
            fields["cluster"] = total("ClusterObservation", ClusterObservation, True, "", stuck, ready, T0)
        decision = total("decide", decide, canary, status, total("Observation", Observation, **fields))
        decisions += 1
        for _ in range(3):  # the edge calls the hooks and runs the checks asked for, then asks again
            if decision.action is not Action.MEASURE:
                break
            if decision.hooks:
                fields["hooks"] = {**fields.get("hooks", {}), **_hooks(decision.hooks, outcome)}
            else:
                fields["checks"] = _checks(outcome)
            decision = total("decide", decide, canary, status, total("Observation", Observation, **fields))
        if decision.revert_target and status is not None:
            # The edge writes the primary's images back into the target (a rollback).
            target = (decision.status.last_promoted_spec, decision.status.primary_revision)
        if decision.status is not None:
            status = decision.status
            found = total("ladder.problem", ladder.problem, canary, status)
            assert found is None, f"{decision.action} wrote a status ladder.problem refuses: {found}"
            phases.add(status.phase)
    assert decisions == len(outcomes) + 3
    PHASES_SEEN.update(phases)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    note=st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 50).map(str)),
    kind=st.sampled_from([Verdict.WAIT, Verdict.HOLD]),
)
def test_a_hold_bound_is_read_from_any_annotation_text(note: str | None, kind: Verdict) -> None:
    """A malformed annotation falls back to the default (holds.py): never an error, never below 0."""
    canary = make_canary(progressDeadlineSeconds=600)
    if note is not None:
        name = holds.MAX_WAIT_ANNOTATION if kind is Verdict.WAIT else holds.HOLD_DEADLINE_ANNOTATION
        canary.metadata.annotations[name] = note
    bound = total("holds.bound_seconds", holds.bound_seconds, canary, kind)
    assert bound >= 0
    if kind is Verdict.WAIT:
        assert bound >= 60  # at least one interval


def test_the_simulated_rollouts_reach_every_phase_decide_writes() -> None:
    """The generator is not vacuous: the rollouts above go through every phase but Quarantined
    (an automation bringing a failed revision back; tests/test_rollout.py and the rows above cover it)."""
    test_decide_is_total_and_writes_only_statuses_ladder_accepts()
    assert set(Phase) - {Phase.QUARANTINED} <= PHASES_SEEN, set(Phase) - PHASES_SEEN
