"""Surviving mutants that no test can tell from the original, each with the reason (scripts/mutate.py).

Keyed by (module, cosmic-ray operator, the mutated line's source text stripped), so an entry stays
valid while the code around it moves, and lapses (the mutant is counted again) when the line changes.
"""

from __future__ import annotations

EQUIVALENT: dict[tuple[str, str, str], str] = {}

_LADDER = "gitcanary/core/ladder.py"
_CAP_LOOP = "while weights[-1] < cap and len(weights) <= 101:"
_WHY_CAP = (
    "the ladder's weights rise strictly from 0 and are capped at maxWeight <= 100, so the loop ends at "
    "the cap (next_weight returns the cap again: break) before it can hold 101 entries"
)
EQUIVALENT.update(
    {
        (_LADDER, "core/NumberReplacer", _CAP_LOOP): _WHY_CAP,
        (_LADDER, "core/ReplaceComparisonOperator_Lt_LtE", _CAP_LOOP): _WHY_CAP,
        (_LADDER, "core/ReplaceAndWithOr", _CAP_LOOP): _WHY_CAP,
        (_LADDER, "core/ReplaceComparisonOperator_Gt_NotEq", "if step > 0:"): (
            "a negative stepWeightPromotion gives range(1, w // step + 1) with a negative end: no weight "
            "is added either way"
        ),
        (_LADDER, "core/NumberReplacer", "step = canary.spec.analysis.step_weight_promotion or 0"): (
            "`or -1` (the surviving one; `or 1` is killed): a step of -1 adds no weight, as 0 does"
        ),
    }
)

_STEP_DOWN = (
    "weights |= {w - k * step for w in list(weights) for k in range(1, w // step + 1) if w - k * step > 0}"
)
_WHY_FILTER = (
    "in the filter `w - k * step > 0` (the element's mutants are killed by tests/test_core_mutants.py): "
    "k <= w // step keeps w - k * step >= 0, so the mutated filter admits at most 0, which the "
    "ladder already holds"
)
EQUIVALENT.update(
    {
        (_LADDER, "core/ReplaceBinaryOperator_Mul_Add", _STEP_DOWN): _WHY_FILTER,
        (_LADDER, "core/ReplaceBinaryOperator_Mul_BitOr", _STEP_DOWN): _WHY_FILTER,
        (_LADDER, "core/ReplaceComparisonOperator_Gt_NotEq", _STEP_DOWN): _WHY_FILTER,
    }
)
