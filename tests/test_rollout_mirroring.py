"""Table tests for the strategies this module adds to the pure core: canary with mirroring, blue/green
with mirroring, and the `kubernetes` provider (no router). References are to Flagger's
`pkg/controller/scheduler.go` (`runCanary`, `runBlueGreen`) and its "skip check if no traffic is
routed or mirrored to canary" rule."""

from __future__ import annotations

from typing import Any

import pytest
from test_rollout import ALL_OK, ONE_BAD, Phase, blue_green, make_canary, observe, rolling

from gitcanary.core.rollout import Action, decide

MIRROR = {"mirror": True, "mirrorWeight": 50}

# (canary, status, observation) -> (action, canaryWeight, mirrored, iterations)
CASES: list[tuple[str, Any, Any, Any, tuple[Action, int, bool, int]]] = [
    (
        "canary+mirror: the first step mirrors, without analysis (no traffic reached the canary yet)",
        make_canary(MIRROR),
        rolling(Phase.PROGRESSING),
        observe(),
        (Action.ADVANCE, 0, True, 0),
    ),
    (
        "canary+mirror: after a mirrored interval the analysis runs, then the first weight step",
        make_canary(MIRROR),
        rolling(Phase.PROGRESSING, mirrored=True),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 10, False, 0),
    ),
    (
        "canary+mirror: later steps are plain weight steps",
        make_canary(MIRROR),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 20, False, 0),
    ),
    (
        "canary+mirror: a failed check while mirroring halts and keeps mirroring",
        make_canary(MIRROR),
        rolling(Phase.PROGRESSING, mirrored=True),
        observe(checks=ONE_BAD),
        (Action.HALT, 0, True, 0),
    ),
    (
        "canary+mirror: the rollback stops mirroring",
        make_canary({**MIRROR, "threshold": 1}),
        rolling(Phase.PROGRESSING, mirrored=True),
        observe(checks=ONE_BAD),
        (Action.ROLLBACK, 0, False, 0),
    ),
    (
        "blue/green+mirror: each iteration mirrors the traffic to the canary",
        blue_green(mirror=True),
        rolling(Phase.PROGRESSING),
        observe(),
        (Action.ADVANCE, 0, True, 1),
    ),
    (
        "blue/green+mirror: analysis runs on mirrored traffic",
        blue_green(mirror=True),
        rolling(Phase.PROGRESSING, iterations=1, mirrored=True),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 0, True, 2),
    ),
    (
        "blue/green+mirror: after the last iteration mirroring stops and all traffic goes to the canary",
        blue_green(mirror=True),
        rolling(Phase.PROGRESSING, iterations=3, mirrored=True),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 100, False, 4),
    ),
    (
        "blue/green without mirror never mirrors",
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=1),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 0, False, 2),
    ),
    (
        "kubernetes provider: no router, so the blue/green switch leaves the weight at 0",
        blue_green(),
        rolling(Phase.PROGRESSING, iterations=3),
        observe(checks=ALL_OK),
        (Action.ADVANCE, 0, False, 4),
    ),
    (
        "a new revision during a mirrored step starts again, unmirrored",
        make_canary(MIRROR),
        rolling(Phase.PROGRESSING, mirrored=True),
        observe(target="newer"),
        (Action.RESTART, 0, False, 0),
    ),
]


@pytest.mark.parametrize(("why", "canary", "status", "obs", "want"), CASES, ids=[c[0] for c in CASES])
def test_mirroring_and_no_router(why: str, canary: Any, status: Any, obs: Any, want: Any) -> None:
    if why.startswith("kubernetes"):
        canary = canary.model_copy(update={"spec": canary.spec.model_copy(update={"provider": "kubernetes"})})
    decision = decide(canary, status, obs)
    assert decision.status is not None, decision
    got = (
        decision.action,
        decision.status.canary_weight,
        decision.status.mirrored,
        decision.status.iterations,
    )
    assert got == want, why


def test_mirrored_is_written_only_when_set() -> None:
    """Status files of canaries that never mirror keep their shape."""
    assert "mirrored" not in rolling(Phase.PROGRESSING).to_document("prod/backend")["status"]  # type: ignore[operator]
    assert rolling(Phase.PROGRESSING, mirrored=True).to_document("prod/backend")["status"]["mirrored"] is True  # type: ignore[index]


def test_a_manual_promotion_during_a_mirrored_step_stops_mirroring() -> None:
    from test_manual_rules import P, asked

    status = asked(rolling(Phase.PROGRESSING, iterations=1, mirrored=True), P)
    decision = decide(blue_green(mirror=True), status, observe())
    assert decision.action is Action.PROMOTE
    assert decision.status is not None and decision.status.mirrored is False
