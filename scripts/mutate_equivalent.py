"""Surviving mutants that no test can tell from the original, each with the reason (scripts/mutate.py).

Keyed by (module, cosmic-ray operator, the mutated line's source text stripped), so an entry stays
valid while the code around it moves, and lapses (the mutant is counted again) when the line changes.
A fourth element, a fragment of the line, narrows an entry to the operator inside that fragment (a
line with the same operator twice, one place equivalent and the other not).
"""

from __future__ import annotations

EQUIVALENT: dict[tuple[str, ...], str] = {}

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
_FILTER = "w - k * step > 0"
_WHY_FILTER = (
    "in the filter `w - k * step > 0` (the element's mutants are killed): k <= w // step keeps "
    "w - k * step >= 0, so a filter that admits every such k adds at most 0, which the ladder already holds. "
    "Checked by enumerating every weight 0..100 and step 1..100"
)
_WHY_RANGE = (
    "a range end at least w // step + 1: the k beyond it give w - k * step < 0, filtered out. Checked by "
    "enumerating every weight 0..100 and step 1..100 (a step above 100 gives an empty range either way)"
)
EQUIVALENT.update(
    {
        (_LADDER, "core/ReplaceComparisonOperator_Gt_NotEq", _STEP_DOWN, _FILTER): _WHY_FILTER,
        **{(_LADDER, f"core/ReplaceBinaryOperator_Sub_{to}", _STEP_DOWN, _FILTER): _WHY_FILTER
           for to in ("Add", "Mul", "Div", "BitOr")},
        **{(_LADDER, f"core/ReplaceBinaryOperator_Mul_{to}", _STEP_DOWN, _FILTER): _WHY_FILTER
           for to in ("Sub", "Div", "BitAnd")},
        **{(_LADDER, f"core/ReplaceBinaryOperator_FloorDiv_{to}", _STEP_DOWN, "w // step"): _WHY_RANGE
           for to in ("Add", "Mul", "BitOr")},
        (_LADDER, "core/ReplaceBinaryOperator_FloorDiv_Sub", _STEP_DOWN, "w // step"): (
            "`range(1, w - step + 1)`: the k it adds beyond w // step give w - k * step < 0, and the k it drops "
            "(w = step only) give exactly 0: both filtered out. Checked by enumeration as above"
        ),
    }
)

# Found by the run of 2026-12-07 (tests/test_ladder_mutants.py, test_rollout_mutants.py): each below
# is equivalent for every value the models admit, or for every Canary spec/load.py accepts, as said.
_STEP_BREAK = "if step <= weights[-1]:"
_WHY_STEP_BREAK = (
    "`weights[-0]`/`weights[not 1]` is weights[0], i.e. 0: inside the loop the weight w is below the cap and "
    "next_weight returns more than w for stepWeights and min(w + s, cap) for stepWeight s, which is more than w "
    "when s > 0; when s <= 0 the first pass (w = 0) already breaks. So `step <= w` holds exactly when `step <= 0`"
)
EQUIVALENT.update(
    {
        (_LADDER, "core/NumberReplacer", _STEP_BREAK): _WHY_STEP_BREAK,
        (_LADDER, "core/ReplaceUnaryOperator_USub_Not", _STEP_BREAK): _WHY_STEP_BREAK,
        (_LADDER, "core/ReplaceComparisonOperator_LtE_Lt", _CAP_LOOP): _WHY_CAP,
        (_LADDER, "core/ReplaceComparisonOperator_LtE_NotEq", _CAP_LOOP): _WHY_CAP,
    }
)

_ROLLOUT = "gitcanary/core/rollout.py"
_NON_NEGATIVE = (
    "CanaryStatus admits canaryWeight 0..100 and iterations >= 0 (spec/status.py, pydantic ge=0): "
    "`<= 0` is `== 0` there"
)
_ROLE = (
    "the role is \"canary\" or \"primary\" (the only two callers' values) and \"primary\" <= \"canary\" is "
    "False: `<=` is `==` on them"
)
EQUIVALENT.update(
    {
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Eq_LtE",
            "first_step = status.canary_weight == 0 and status.iterations == 0 and not status.mirrored",
        ): _NON_NEGATIVE,
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Eq_LtE",
            "value = analysis.canary_ready_threshold if role == \"canary\" else analysis.primary_ready_threshold",
        ): _ROLE,
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Eq_LtE",
            "if role == \"canary\" and status.phase.in_rollout and deadline_exceeded(canary, workload, obs.now):",
        ): _ROLE,
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Eq_LtE",
            "if status.canary_weight < cap and canary.spec.analysis.mirror and status.canary_weight == 0:",
        ): _NON_NEGATIVE,
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Lt_LtE",
            "if status.canary_weight < cap and canary.spec.analysis.mirror and status.canary_weight == 0:",
        ): (
            "with the weight at 0 (the last conjunct), `0 <= cap` differs from `0 < cap` only when the cap is 0: "
            "stepWeights ending in 0, which spec/load.py refuses (each in 1..100); maxWeight 0 means 100"
        ),
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Lt_NotEq",
            "if status.canary_weight < cap and canary.spec.analysis.mirror and status.canary_weight == 0:",
        ): (
            "with the weight at 0 (the last conjunct), `0 != cap` differs from `0 < cap` only for a negative cap: "
            "stepWeights ending below 0, which spec/load.py refuses"
        ),
        (_ROLLOUT, "core/ReplaceComparisonOperator_GtE_Eq", "if count >= threshold:"): (
            "every path to _failed_check passes decide's `status.failed_checks >= threshold` rollback first, "
            "so count = failed_checks + 1 <= threshold: `>=` is `==` there"
        ),
        (_ROLLOUT, "core/NumberReplacer", "needed.insert(0, (\"canary\", cluster.canary))"): (
            "`insert(-1, ...)` (the surviving one; `insert(1, ...)` is killed): on the one-element list "
            "it inserts before the last element, i.e. first, as insert(0, ...)"
        ),
        (_ROLLOUT, "core/NumberReplacer", "return min(current + step, cap, 100)"): (
            "`100` -> `101` (the surviving one; `99` is killed): max_weight_of caps the cap at 100, so the "
            "minimum never reaches the third term"
        ),
    }
)

EQUIVALENT.update(
    {
        (_LADDER, "core/ReplaceComparisonOperator_Eq_GtE", "if weight == 100 and status.iterations != total + 1:"): (
            "CanaryStatus admits canaryWeight 0..100 (pydantic le=100): `>= 100` is `== 100` there"
        ),
        (_LADDER, "core/ReplaceComparisonOperator_Eq_GtE", "if (weight == 100) != (status.iterations > 0):"): (
            "CanaryStatus admits canaryWeight 0..100 (pydantic le=100): `>= 100` is `== 100` there"
        ),
        (_LADDER, "core/ReplaceComparisonOperator_Gt_NotEq", "if (weight == 100) != (status.iterations > 0):"): (
            "CanaryStatus admits iterations >= 0 (pydantic ge=0): `!= 0` is `> 0` there"
        ),
        (_LADDER, "core/ReplaceComparisonOperator_NotEq_Gt", "if phase in _AT_REST and weight != 0:"): (
            "CanaryStatus admits canaryWeight >= 0 (pydantic ge=0): `> 0` is `!= 0` there"
        ),
        (
            _LADDER,
            "core/ReplaceComparisonOperator_NotEq_Gt",
            "if strategy is Strategy.CANARY and status.iterations != 0:",
        ): "CanaryStatus admits iterations >= 0 (pydantic ge=0): `> 0` is `!= 0` there",
        (_LADDER, "core/ReplaceComparisonOperator_NotEq_Lt", "if weight == 100 and status.iterations != total + 1:"): (
            "an iteration count above total + 1 returned one check earlier (`status.iterations > total + 1`): "
            "`<` is `!=` on what is left"
        ),
    }
)

_CONFIG = "gitcanary/manifests/config_tracking.py"
EQUIVALENT.update(
    {
        (_CONFIG, "core/ReplaceComparisonOperator_NotEq_Lt", "if kind != SECRET:"): (
            "the kind comes from `references`, which yields only \"ConfigMap\" and \"Secret\"; \"ConfigMap\" < "
            "\"Secret\" is True and \"Secret\" < \"Secret\" False, as `!=` gives"
        ),
    }
)

EQUIVALENT.update(
    {
        (_CONFIG, "core/ReplaceComparisonOperator_Eq_GtE", "elif kind == SECRET:"): (
            "content() is given the four producer kinds only (ConfigMap, handled before, Secret, ExternalSecret, "
            "SealedSecret): of them only \"Secret\" is >= \"Secret\""
        ),
    }
)

EQUIVALENT.update(
    {
        (
            _ROLLOUT,
            "core/ReplaceComparisonOperator_Eq_LtE",
            "if strategy is Strategy.BLUE_GREEN and status.iterations == total:",
        ): (
            "reached only after `if status.iterations < total:` returned, so iterations >= total there: "
            "`<=` is `==`"
        ),
    }
)

_URLMAP = "gitcanary/core/urlmap.py"
EQUIVALENT.update(
    {
        (_LADDER, "core/NumberReplacer", _STEP_DOWN): (
            "the surviving three: range start 0 (k = 0 adds w, already held), `+ 2` (the extra k give "
            "w - k * step < 0, filtered out) and `> -1` (admits 0, already held); `range(2, ...)`, `+ 0` and "
            "`> 1` change the set and are killed. Checked by enumeration as above"
        ),
        (_LADDER, "core/ReplaceComparisonOperator_Gt_GtE", _STEP_DOWN): _WHY_FILTER,
        (_ROLLOUT, "core/NumberReplacer",
         "return canary.spec.analysis.threshold if canary.spec.analysis.threshold > 0 else 1"): (
            "`> 1` (the surviving one; `> -1`, `else 0` and `else 2` are killed): a threshold of 1 gives 1 "
            "either way"
        ),
        (_URLMAP, "core/ReplaceComparisonOperator_Gt_GtE", "if best is None or len(rule.path) > len(best.path):"): (
            "two rules that both match a URL with paths of the same length have the same path (each is a "
            "prefix of the URL's path), so the same FROM: parse refused them unless their TO is the same too"
        ),
        (_CONFIG, "core/ReplaceComparisonOperator_Eq_LtE",
         "if source.get(\"kind\") == SECRET and (source.get(\"type\") or \"Opaque\") not in TRACKED_SECRET_TYPES:"): (
            "the other producer kinds sort before \"Secret\" but carry no top-level `type` (Opaque by default "
            "here): the type check passes them as `==` does"
        ),
        (_CONFIG, "core/ReplaceComparisonOperator_Eq_GtE",
         "if obj.get(\"kind\") == \"SealedSecret\" and isinstance(spec, dict):"): (
            "of the producer kinds only Secret sorts after \"SealedSecret\", and a Secret has no `spec` mapping"
        ),
    }
)

# cosmic-ray swaps the operator's token in the text, so precedence follows the new operator:
# `w - k * step > 0` becomes `w - k + step > 0` and `w - k | step > 0`, both true for every k the
# range gives (k <= w): the filter admits every w - k * step >= 0, i.e. at most 0 beyond the original.
EQUIVALENT.update(
    {
        (_LADDER, "core/ReplaceBinaryOperator_Mul_Add", _STEP_DOWN, _FILTER): _WHY_FILTER,
        (_LADDER, "core/ReplaceBinaryOperator_Mul_BitOr", _STEP_DOWN, _FILTER): _WHY_FILTER,
    }
)
