"""Flagger's webhook types, and what their answers mean to the rollout core. Pure: no I/O.

The edge (`gitcanary/hooks/webhooks.py`) calls the webhooks the core asks for and hands their
outcomes back as `Observation.hooks`; these helpers read a canary's hooks and those outcomes.
"""

from __future__ import annotations

from gitcanary.core.observations import CheckResult, HookResult, Observation
from gitcanary.spec.models import Canary, CanaryWebhook

CONFIRM_ROLLOUT = "confirm-rollout"  # before the canary scales up: closed -> phase Waiting
PRE_ROLLOUT = "pre-rollout"  # before the first traffic: a failure is a failed check
ROLLOUT = "rollout"  # every analysis run, before the metrics: a failure is a failed check
CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"  # before each weight increase: closed -> wait
CONFIRM_PROMOTION = "confirm-promotion"  # before promoting: closed -> phase WaitingPromotion
POST_ROLLOUT = "post-rollout"  # after Succeeded or Failed is pushed; a failure is only logged
ROLLBACK = "rollback"  # while Progressing/Waiting/WaitingPromotion: a 2xx answer rolls back
EVENT = "event"  # every transition gitcanary pushes

HOOK_TYPES = (
    CONFIRM_ROLLOUT,
    PRE_ROLLOUT,
    ROLLOUT,
    CONFIRM_TRAFFIC_INCREASE,
    CONFIRM_PROMOTION,
    POST_ROLLOUT,
    ROLLBACK,
    EVENT,
)


def hook_type(webhook: CanaryWebhook) -> str:
    """A webhook without a type is a `rollout` hook, as in Flagger."""
    return webhook.type or ROLLOUT


def hooks_of(canary: Canary, kind: str) -> list[CanaryWebhook]:
    return [hook for hook in canary.spec.analysis.webhooks if hook_type(hook) == kind]


def missing(canary: Canary, obs: Observation, kind: str) -> tuple[str, ...]:
    """(kind,) when the canary has hooks of that kind whose outcome is not observed yet, else ()."""
    if kind in obs.hooks or not hooks_of(canary, kind):
        return ()
    return (kind,)


def closed(obs: Observation, kind: str) -> HookResult | None:
    """The failed outcome of `kind` (a closed gate, a failed check), or None when it passed or is absent."""
    result = obs.hooks.get(kind)
    return result if result is not None and not result.ok else None


def signalled(obs: Observation, kind: str) -> HookResult | None:
    """The outcome of `kind` when a hook answered 2xx (for `rollback` that means: roll back)."""
    result = obs.hooks.get(kind)
    return result if result is not None and result.ok else None


def as_check(result: HookResult) -> CheckResult:
    """A failed pre-rollout or rollout hook, as the failed check it counts as."""
    return CheckResult(f"webhook {result.name}", None, None, None, False, result.line)
