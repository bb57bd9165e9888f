"""The pure core over generated rollouts: "No data, or a query error, is a failed check, never a
pass" (docs/strategies.md, docs/concepts.md, docs/metrics-backends.md).

Canaries with generated step weights, maximum weight and threshold are rolled out by the
`simulate` loop of tests/test_rollout.py, each analysis answered from a generated sequence of
passing, failing and no-data check sets. The oracle is the sequence itself: a measured step whose
checks hold a failure or no data never advances, promotes or succeeds, and counts one more failed
check; a rollout that promoted had a passing analysis at its last measured step.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import ALL_OK, NO_DATA, ONE_BAD, make_canary, simulate

from gitcanary.core.observations import CheckResult
from gitcanary.core.rollout import Action

GOING_ON = {Action.ADVANCE, Action.PROMOTE, Action.SUCCEED, Action.FINALIZE}


@st.composite
def analyses(draw: st.DrawFn) -> dict[str, object]:
    threshold = draw(st.integers(1, 5))
    if draw(st.booleans()):
        step = draw(st.integers(5, 50))
        top = draw(st.integers(step, min(100, 8 * step)))
        return {"threshold": threshold, "stepWeight": step, "maxWeight": top}
    weights = sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=6)))
    return {"threshold": threshold, "stepWeight": None, "maxWeight": None, "stepWeights": weights}


@settings(derandomize=True, max_examples=150, deadline=None)
@given(analyses(), st.lists(st.sampled_from(["ok", "bad", "no data"]), min_size=1, max_size=12))
def test_a_failed_or_empty_analysis_never_moves_the_rollout_on(
    analysis: dict[str, object], answers: list[str]
) -> None:
    sets = {"ok": ALL_OK, "bad": ONE_BAD, "no data": NO_DATA}
    consumed: list[str] = []

    def checks() -> Iterator[tuple[CheckResult, ...]]:
        while True:
            for answer in answers:
                consumed.append(answer)
                yield sets[answer]

    trace, _, _ = simulate(make_canary(analysis), checks(), ticks=80)
    measured = iter(consumed)
    failed = 0
    last_measured = None
    for tick in trace:
        if not tick.measured:
            continue
        last_measured = next(measured)
        if last_measured == "ok":
            failed = tick.failed_checks  # a pass keeps (or, as Flagger may, resets) the count
            continue
        assert tick.action not in GOING_ON, (analysis, answers, trace)
        assert tick.failed_checks == failed + 1, (analysis, answers, trace)
        failed = tick.failed_checks
        assert (tick.action is Action.ROLLBACK) == (failed >= analysis["threshold"]), (analysis, trace)
    if any(tick.action is Action.PROMOTE for tick in trace):
        assert last_measured == "ok", (analysis, answers, trace)
