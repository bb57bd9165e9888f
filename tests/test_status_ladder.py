"""The step ladder: which statuses the state machine can write for a canary (`gitcanary.core.ladder`).

Two sides, computed independently of `ladder.problem`: every status `decide` writes over whole
rollouts (passing, failing, manual promotion at each step) is accepted, and a table of statuses
written by hand, each impossible by Flagger's rules for its strategy, is refused with its field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from test_rollout import ALL_OK, ONE_BAD, T0, ab_testing, blue_green, make_canary, observe, rolling

from gitcanary.core import ladder
from gitcanary.core.observations import CheckResult
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.models import Canary
from gitcanary.spec.request import ManualAction, ManualRequest
from gitcanary.spec.status import CanaryStatus, Phase

CANARIES = {
    "stepWeight 10 to 30": make_canary({"stepWeight": 10, "maxWeight": 30}),
    "stepWeight 15 to 50 (last step capped)": make_canary({"stepWeight": 15, "maxWeight": 50}),
    "stepWeights 1, 10, 50": make_canary({"stepWeight": None, "maxWeight": None, "stepWeights": [1, 10, 50]}),
    "stepWeightPromotion 7": make_canary({"stepWeight": 20, "maxWeight": 60, "stepWeightPromotion": 7}),
    "mirror": make_canary({"stepWeight": 25, "maxWeight": 50, "mirror": True}),
    "blue/green": blue_green(iterations=2),
    "blue/green with stepWeightPromotion": blue_green(iterations=2, stepWeightPromotion=30),
    "blue/green mirrored": blue_green(iterations=2, mirror=True),
    "blue/green, kubernetes": make_canary(
        {"iterations": 2, "stepWeight": None, "maxWeight": None}, provider="kubernetes"
    ),
    "A/B": ab_testing(iterations=2),
}


def statuses(
    canary: Canary, checks: Iterator[tuple[CheckResult, ...]], promote_at: int = -1
) -> list[CanaryStatus]:
    """Every status `decide` writes rolling 6.1.1 out; with `promote_at`, a person's promotion
    request lands after that many analysis steps."""
    interval = timedelta(seconds=canary.spec.analysis.interval_seconds)
    now, target, status, seen, steps = T0, "old", None, [], 0
    for _ in range(40):
        if status is not None and status.phase is Phase.PROGRESSING and steps == promote_at:
            request = ManualRequest(
                action=ManualAction.PROMOTE,
                actor="Ana <ana@example.com>",
                rollout_id=status.rollout_id,
                requested_at=now,
            )
            status = status.model_copy(update={"request": request})
        obs = observe((now - T0).total_seconds(), target)
        decision = decide(canary, status, obs)
        if decision.action is Action.MEASURE:
            decision = decide(canary, status, replace(obs, checks=next(checks)))
        assert decision.status is not None, decision.reason
        status = decision.status
        seen.append(status)
        if status.phase is Phase.PROGRESSING:
            steps += 1
        if decision.revert_target:
            target = "old"
        elif status.phase is Phase.INITIALIZED:
            target = "new"
        if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
        now += interval
    return seen


@pytest.mark.parametrize("name", CANARIES)
def test_every_status_decide_writes_is_on_the_ladder(name: str) -> None:
    canary = CANARIES[name]
    runs = [
        statuses(canary, iter(lambda: ALL_OK, None)),
        statuses(canary, iter([ALL_OK] + [ONE_BAD] * 9)),
    ]
    runs += [statuses(canary, iter(lambda: ALL_OK, None), promote_at=n) for n in range(1, 6)]
    seen = [status for run in runs for status in run]
    assert {s.phase for s in seen} >= {Phase.PROGRESSING, Phase.PROMOTING, Phase.SUCCEEDED, Phase.FAILED}
    for status in seen:
        assert ladder.problem(canary, status) is None, (status.phase, status.canary_weight, status.iterations)


# (canary, status fields, the field at fault): each impossible for that canary by its spec alone.
IMPOSSIBLE: list[tuple[str, dict[str, Any], str]] = [
    ("stepWeight 10 to 30", {"phase": Phase.PROGRESSING, "canaryWeight": 37}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.PROGRESSING, "canaryWeight": 40}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.WAITING_PROMOTION, "canaryWeight": 100}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.PROMOTING, "canaryWeight": 100}, "status.canaryWeight"),
    (
        "stepWeight 10 to 30",
        {"phase": Phase.PROGRESSING, "canaryWeight": 10, "iterations": 3},
        "status.iterations",
    ),
    ("stepWeight 10 to 30", {"phase": Phase.SUCCEEDED, "canaryWeight": 10}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.FAILED, "canaryWeight": 30}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.INITIALIZED, "canaryWeight": 20}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.FINALISING, "canaryWeight": 30}, "status.canaryWeight"),
    ("stepWeight 10 to 30", {"phase": Phase.PROGRESSING, "mirrored": True}, "status.mirrored"),
    ("stepWeight 10 to 30", {"phase": Phase.SUCCEEDED, "mirrored": True}, "status.mirrored"),
    ("stepWeights 1, 10, 50", {"phase": Phase.PROGRESSING, "canaryWeight": 20}, "status.canaryWeight"),
    ("stepWeightPromotion 7", {"phase": Phase.PROMOTING, "canaryWeight": 50}, "status.canaryWeight"),
    ("blue/green", {"phase": Phase.PROGRESSING, "canaryWeight": 50, "iterations": 3}, "status.canaryWeight"),
    ("blue/green", {"phase": Phase.PROGRESSING, "canaryWeight": 100, "iterations": 1}, "status.canaryWeight"),
    ("blue/green", {"phase": Phase.PROGRESSING, "iterations": 9}, "status.iterations"),
    (
        "blue/green, kubernetes",
        {"phase": Phase.PROGRESSING, "canaryWeight": 100, "iterations": 3},
        "status.canaryWeight",
    ),
    ("A/B", {"phase": Phase.PROGRESSING, "canaryWeight": 100, "iterations": 0}, "status.canaryWeight"),
    ("A/B", {"phase": Phase.PROGRESSING, "canaryWeight": 0, "iterations": 2}, "status.canaryWeight"),
    ("A/B", {"phase": Phase.PROGRESSING, "canaryWeight": 100, "iterations": 3}, "status.iterations"),
    (
        "A/B",
        {"phase": Phase.PROGRESSING, "canaryWeight": 100, "iterations": 1, "mirrored": True},
        "status.mirrored",
    ),
]


@pytest.mark.parametrize(("name", "fields", "where"), IMPOSSIBLE)
def test_an_impossible_status_names_its_field(name: str, fields: dict[str, Any], where: str) -> None:
    found = ladder.problem(CANARIES[name], rolling(**fields))
    assert found is not None and found[0] == where, found
