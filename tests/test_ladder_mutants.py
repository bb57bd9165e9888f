"""Table tests of the core's pure rules for mutants of gitcanary/core that survived scripts/mutate.py.

`ladder.problem` decides whether a status read back from the repository can have been written by
`decide` (a forged or corrupt one is refused); `strategy_of`, `threshold_of` and `next_weight` are
Flagger's rules. Each row's expectation is worked out by hand from Flagger's documented behaviour
(docs.flagger.app, "Deployment strategies"), never taken from gitcanary's output.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_rollout import ab_testing, blue_green, make_canary, rolling

from gitcanary.core import ladder
from gitcanary.core.rollout import Strategy, next_weight, strategy_of, threshold_of
from gitcanary.spec.models import Canary
from gitcanary.spec.status import Phase

MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


@pytest.mark.parametrize(
    ("analysis", "strategy"),
    [
        ({}, Strategy.CANARY),
        ({"match": MATCH}, Strategy.CANARY),  # a match without iterations is ignored by Flagger
        ({"iterations": 1, "stepWeight": None, "maxWeight": None}, Strategy.BLUE_GREEN),
        ({"iterations": 1, "match": MATCH, "stepWeight": None, "maxWeight": None}, Strategy.AB_TESTING),
        ({"iterations": 7, "match": MATCH, "stepWeight": None, "maxWeight": None}, Strategy.AB_TESTING),
        # Flagger's `Iterations > 0`: a negative count is no iterations at all.
        ({"iterations": -2}, Strategy.CANARY),
        ({"iterations": -2, "match": MATCH}, Strategy.CANARY),
    ],
)
def test_the_strategy_follows_iterations_and_match(analysis: dict[str, Any], strategy: Strategy) -> None:
    assert strategy_of(make_canary(analysis)) is strategy


@pytest.mark.parametrize(("threshold", "expected"), [(0, 1), (-3, 1), (1, 1), (2, 2), (9, 9)])
def test_the_failed_check_threshold_is_at_least_one(threshold: int, expected: int) -> None:
    assert threshold_of(make_canary({"threshold": threshold})) == expected


@pytest.mark.parametrize(
    ("analysis", "current", "expected"),
    [
        ({"stepWeight": 10, "maxWeight": 100}, 90, 100),
        ({"stepWeight": 10, "maxWeight": 100}, 85, 95),
        ({"stepWeight": 10, "maxWeight": 30}, 25, 30),
        ({"stepWeight": 30, "maxWeight": None}, 80, 100),
        # No stepWeight and no stepWeights: nothing to advance by, the weight stays.
        ({"stepWeight": None}, 0, 0),
        ({"stepWeight": None}, 20, 20),
        ({"stepWeight": None, "stepWeights": [5, 25, 60]}, 5, 25),
        ({"stepWeight": None, "stepWeights": [5, 25, 60]}, 60, 60),
    ],
)
def test_next_weight_table(analysis: dict[str, Any], current: int, expected: int) -> None:
    assert next_weight(make_canary(analysis), current) == expected


def test_a_ladder_without_any_step_is_the_start_alone() -> None:
    assert ladder.ladder(make_canary({"stepWeight": None})) == (0,)


ISTIO: dict[str, Any] = {"provider": "istio"}


def _bg(total: int) -> Canary:
    return make_canary({"iterations": total, "stepWeight": None, "maxWeight": None}, **ISTIO)


# (canary, phase, status fields, the field `problem` names or None). Blue/green with an odd
# number of iterations: `total + 1` differs from `total | 1` there.
PROBLEMS: list[tuple[str, Canary, Phase, dict[str, Any], str | None]] = [
    ("bg switch after 3 iterations", _bg(3), Phase.PROGRESSING, {"canaryWeight": 100, "iterations": 4}, None),
    ("bg switch after 5 iterations", _bg(5), Phase.PROGRESSING, {"canaryWeight": 100, "iterations": 6}, None),
    ("bg at iteration 3 of 3", _bg(3), Phase.PROGRESSING, {"canaryWeight": 0, "iterations": 3}, None),
    (
        "bg switch too early",
        _bg(3),
        Phase.PROGRESSING,
        {"canaryWeight": 100, "iterations": 3},
        "status.canaryWeight",
    ),
    (
        "bg beyond its switch",
        _bg(3),
        Phase.PROGRESSING,
        {"canaryWeight": 0, "iterations": 5},
        "status.iterations",
    ),
    ("bg far beyond", _bg(3), Phase.PROGRESSING, {"canaryWeight": 100, "iterations": 5}, "status.iterations"),
    ("ab at iteration 3 of 3", ab_testing(), Phase.PROGRESSING, {"canaryWeight": 100, "iterations": 3}, None),
    (
        "ab beyond",
        ab_testing(),
        Phase.PROGRESSING,
        {"canaryWeight": 100, "iterations": 4},
        "status.iterations",
    ),
    ("ab before its first", ab_testing(), Phase.PROGRESSING, {"canaryWeight": 0, "iterations": 0}, None),
    (
        "ab matched at 0",
        ab_testing(),
        Phase.PROGRESSING,
        {"canaryWeight": 0, "iterations": 1},
        "status.canaryWeight",
    ),
    (
        "canary counts no iterations",
        make_canary(),
        Phase.PROGRESSING,
        {"canaryWeight": 10, "iterations": 1},
        "status.iterations",
    ),
    ("canary step", make_canary(), Phase.PROGRESSING, {"canaryWeight": 20}, None),
    ("canary off the ladder", make_canary(), Phase.PROGRESSING, {"canaryWeight": 25}, "status.canaryWeight"),
    ("at rest with weight", make_canary(), Phase.SUCCEEDED, {"canaryWeight": 10}, "status.canaryWeight"),
    ("at rest", make_canary(), Phase.SUCCEEDED, {}, None),
]


@pytest.mark.parametrize(
    ("canary", "phase", "fields", "field"), [row[1:] for row in PROBLEMS], ids=[row[0] for row in PROBLEMS]
)
def test_problem_table(canary: Canary, phase: Phase, fields: dict[str, Any], field: str | None) -> None:
    found = ladder.problem(canary, rolling(phase, **fields))
    assert (found[0] if found else None) == field


# What `problem` tells the person who reads the refusal: the strategy, its shape and its ladder.
DESCRIPTIONS: list[tuple[Canary, int, str]] = [
    (make_canary(), 25, "the ladder of stepWeight 10, maxWeight 30: [0, 10, 20, 30]"),
    (
        make_canary({"stepWeight": None, "stepWeights": [5, 25, 50]}),
        10,
        "the ladder of stepWeights [5, 25, 50], maxWeight 50: [0, 5, 25, 50]",
    ),
    # stepWeight wins over stepWeights (Flagger's nextStepWeight): the shape says so.
    (
        make_canary({"stepWeight": 20, "stepWeights": [5, 25, 50], "maxWeight": None}),
        10,
        "the ladder of stepWeight 20, maxWeight 50: [0, 20, 40, 50]",
    ),
    (make_canary({"stepWeight": None}), 10, "the ladder of stepWeight 0, maxWeight 30: [0]"),
    (ab_testing(), 50, "ab-testing routes 0 or 100"),
    (blue_green(), 50, "blue-green routes 0 or 100"),
]


@pytest.mark.parametrize(("canary", "weight", "shape"), DESCRIPTIONS)
def test_a_weight_off_the_ladder_is_refused_with_the_ladder_spelt_out(
    canary: Canary, weight: int, shape: str
) -> None:
    found = ladder.problem(canary, rolling(Phase.PROGRESSING, canaryWeight=weight))
    assert found == ("status.canaryWeight", f"{weight}% is not a step of this canary ({shape})")


@pytest.mark.parametrize(
    ("promotion", "said"), [(None, "stepWeightPromotion 0"), (20, "stepWeightPromotion 20")]
)
def test_a_promoting_weight_off_the_ladder_names_the_promotion_step(promotion: int | None, said: str) -> None:
    canary = make_canary({"stepWeightPromotion": promotion})
    # Ladder 0, 10, 20, 30; with a promotion step of 20: 30 -> 10. 25 is on neither.
    found = ladder.problem(canary, rolling(Phase.PROMOTING, canaryWeight=25))
    assert found is not None and found[0] == "status.canaryWeight"
    assert found[1].endswith(f"steps down by {said}; 25% is neither")
    assert "the ladder of stepWeight 10, maxWeight 30: [0, 10, 20, 30]" in found[1]


@pytest.mark.parametrize(
    ("step", "start", "below"), [(1, 30, set(range(1, 30))), (29, 30, {1}), (30, 30, set())]
)
def test_promotion_steps_down_to_one_percent_but_never_to_zero(
    step: int, start: int, below: set[int]
) -> None:
    """stepWeightPromotion 1 steps down every percent; a step equal to the weight goes straight to 0."""
    canary = make_canary({"stepWeight": start, "maxWeight": start, "stepWeightPromotion": step})
    assert ladder.promotion_weights(canary) == frozenset({0, start} | below)


@pytest.mark.parametrize(
    ("analysis", "weights"),
    [
        # Flagger's nextStepWeight takes the first of stepWeights above the current weight, and
        # maxWeight is the last of them: an unordered list stops at the first step past the last.
        ({"stepWeight": None, "maxWeight": None, "stepWeights": [50, 90, 30]}, (0, 50)),
        ({"stepWeight": None, "maxWeight": None, "stepWeights": [20, 10, 60]}, (0, 20, 60)),
        # A negative stepWeight never moves the weight: the ladder is the start alone.
        ({"stepWeight": -5}, (0,)),
    ],
)
def test_the_ladder_of_any_step_list(analysis: dict[str, Any], weights: tuple[int, ...]) -> None:
    assert ladder.ladder(make_canary(analysis)) == weights
