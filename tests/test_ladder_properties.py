"""The step ladder over generated canaries: "A status that the state machine cannot have written
halts that canary" (SECURITY.md) must not halt one it did write. For canaries of every strategy
with generated weights, iterations and promotion steps, analyses answered from a generated
sequence, and a person's promotion at a generated step, every status `decide` writes is accepted
by `ladder.problem`. (The other side, statuses no rollout can write, is the table of
tests/test_status_ladder.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import ALL_OK, NO_DATA, ONE_BAD, ab_testing, blue_green, make_canary
from test_status_ladder import statuses

from gitcanary.core import ladder
from gitcanary.core.observations import CheckResult
from gitcanary.spec.models import Canary


@st.composite
def canaries(draw: st.DrawFn) -> Canary:
    extra: dict[str, Any] = {"threshold": draw(st.integers(1, 4))}
    if draw(st.booleans()):
        extra["stepWeightPromotion"] = draw(st.integers(1, 60))
    kind = draw(st.sampled_from(["steps", "weights", "blue/green", "A/B"]))
    if kind == "steps":
        step = draw(st.integers(5, 50))
        top = draw(st.integers(step, 100))
        mirror = {"mirror": True} if draw(st.booleans()) else {}
        return make_canary({"stepWeight": step, "maxWeight": top, **mirror, **extra})
    if kind == "weights":
        weights = sorted(draw(st.sets(st.integers(1, 99), min_size=1, max_size=5)))
        return make_canary({"stepWeight": None, "maxWeight": None, "stepWeights": weights, **extra})
    iterations = draw(st.integers(1, 5))
    if kind == "blue/green":
        mirror = {"mirror": True} if draw(st.booleans()) else {}
        return blue_green(iterations=iterations, **mirror, **extra)
    extra.pop("stepWeightPromotion", None)
    return ab_testing(iterations=iterations, **extra)


# Passing runs reach the top of the ladder; the others fail, roll back, or are promoted by hand.
ANSWERS = st.just(["ok"]) | st.lists(st.sampled_from(["ok", "bad", "no data"]), min_size=1, max_size=8)


@settings(derandomize=True, max_examples=120, deadline=None)
@given(canaries(), ANSWERS, st.integers(-1, 9))
def test_every_status_a_generated_rollout_writes_is_on_its_ladder(
    canary: Canary, answers: list[str], promote_at: int
) -> None:
    sets = {"ok": ALL_OK, "bad": ONE_BAD, "no data": NO_DATA}

    def checks() -> Iterator[tuple[CheckResult, ...]]:
        while True:
            yield from (sets[answer] for answer in answers)

    for status in statuses(canary, checks(), promote_at=promote_at):
        assert ladder.problem(canary, status) is None, (status.phase, status.canary_weight, status.iterations)
