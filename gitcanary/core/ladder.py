"""Which statuses the state machine can produce for a canary: its step ladder and phase shapes.

The status file is gitcanary's memory, read back from a repository anyone with push rights can
edit. A weight the analysis never steps through (37% on a ladder of 10s, 250%), or a phase that
never carries traffic with a weight above 0, is not something `decide` wrote: it is corrupt or
forged, and must not be obeyed (it would be committed into routing objects as is).

Pure, like the rest of `core`: `problem(canary, status)` names the field and the reason, or None.
"""

from __future__ import annotations

from gitcanary.core.rollout import KUBERNETES_PROVIDER, Strategy, max_weight_of, next_weight, strategy_of
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

# Phases in which all traffic is on the primary: `decide` writes them with weight 0, always.
_AT_REST = frozenset(
    {
        Phase.INITIALIZING,
        Phase.INITIALIZED,
        Phase.WAITING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
        Phase.FAILED,
        Phase.QUARANTINED,
    }
)
# Phases of the analysis itself: the weight is a step of the ladder.
_ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})


def ladder(canary: Canary) -> tuple[int, ...]:
    """The weights the canary strategy steps through: 0, then `next_weight` until `maxWeight`."""
    weights = [0]
    cap = max_weight_of(canary)
    while weights[-1] < cap and len(weights) <= 101:
        step = next_weight(canary, weights[-1])
        if step <= weights[-1]:
            break  # no stepWeight: the core rolls back at the first step
        weights.append(step)
    return tuple(weights)


def analysis_weights(canary: Canary) -> tuple[int, ...]:
    """The weights Progressing and WaitingPromotion can carry for this canary's strategy."""
    strategy = strategy_of(canary)
    if strategy is Strategy.CANARY:
        return ladder(canary)
    if strategy is Strategy.BLUE_GREEN and canary.provider == KUBERNETES_PROVIDER:
        return (0,)  # no router: the switch to the canary is skipped
    return (0, 100)  # A/B (matched requests) and blue/green's switch: all or nothing


def promotion_weights(canary: Canary) -> frozenset[int]:
    """Promoting starts at any analysis weight (a manual promotion too) and, with
    `stepWeightPromotion`, steps down by it while above 0."""
    step = canary.spec.analysis.step_weight_promotion or 0
    weights = set(analysis_weights(canary))
    if step > 0:
        weights |= {w - k * step for w in list(weights) for k in range(1, w // step + 1) if w - k * step > 0}
    return frozenset(weights)


def _describe(canary: Canary) -> str:
    analysis = canary.spec.analysis
    strategy = strategy_of(canary)
    if strategy is not Strategy.CANARY:
        return f"{strategy.value} routes 0 or 100"
    if analysis.step_weights and not analysis.step_weight:
        shape = f"stepWeights {list(analysis.step_weights)}"
    else:
        shape = f"stepWeight {analysis.step_weight or 0}"
    return f"the ladder of {shape}, maxWeight {max_weight_of(canary)}: {list(ladder(canary))}"


def problem(canary: Canary, status: CanaryStatus) -> tuple[str, str] | None:
    """(field, reason) when `decide` cannot have written `status` for `canary`; None when it can."""
    phase, weight = status.phase, status.canary_weight
    strategy = strategy_of(canary)
    total = canary.spec.analysis.iterations
    if phase in _AT_REST and weight != 0:
        return "status.canaryWeight", f"phase {phase.value} routes no traffic to the canary, not {weight}%"
    if status.mirrored and phase not in _ANALYSING:
        return "status.mirrored", f"phase {phase.value} never mirrors traffic"
    if phase in _ANALYSING:
        if weight not in analysis_weights(canary):
            return "status.canaryWeight", f"{weight}% is not a step of this canary ({_describe(canary)})"
        if strategy is Strategy.CANARY and status.iterations != 0:
            return "status.iterations", f"a canary analysis counts no iterations, not {status.iterations}"
        if strategy is Strategy.AB_TESTING:
            if status.iterations > total:
                return "status.iterations", f"{status.iterations} is beyond the analysis's {total} iterations"
            if (weight == 100) != (status.iterations > 0):
                return "status.canaryWeight", (
                    f"A/B testing routes the matched requests to the canary from its first iteration: "
                    f"{weight}% at iteration {status.iterations}"
                )
        if strategy is Strategy.BLUE_GREEN:
            if status.iterations > total + 1:
                return "status.iterations", (
                    f"{status.iterations} is beyond the {total} iterations of the analysis and its switch"
                )
            if weight == 100 and status.iterations != total + 1:
                return "status.canaryWeight", (
                    f"blue/green switches all traffic to the canary only after its {total} iterations, "
                    f"not at iteration {status.iterations}"
                )
        if status.mirrored and (strategy is Strategy.AB_TESTING or not canary.spec.analysis.mirror):
            return "status.mirrored", "this canary's analysis does not mirror traffic"
    if phase is Phase.PROMOTING and weight not in promotion_weights(canary):
        return "status.canaryWeight", (
            f"promotion starts from a step of this canary ({_describe(canary)}) and steps down by "
            f"stepWeightPromotion {canary.spec.analysis.step_weight_promotion or 0}; {weight}% is neither"
        )
    return None
