"""Judges: how an analysis turns metric queries into verdicts, one per Canary.

`threshold` is Flagger's: each metric's value against its `thresholdRange` (`analysis.run`).
`compare` measures the canary and the primary and judges one against the other (`compare.py`,
statistics in `stats.py`). A Canary picks one with the annotation `gitcanary.io/judge`; the
repository default comes from `run --judge` (`GITCANARY_JUDGE`). Like the routers, every judge has
one entry point with the same shape: `(canary, templates, *, default_address, now) -> checks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from gitcanary.analysis.judges.compare import LookState, run_comparison
from gitcanary.analysis.judges.settings import JUDGE_ANNOTATION, JUDGES, judge_of
from gitcanary.analysis.providers import HttpPool, ProviderEnv
from gitcanary.analysis.run import ClientFactory, _failed, run_analysis
from gitcanary.core.observations import CheckResult
from gitcanary.core.rollout import Strategy, max_weight_of, next_weight, strategy_of
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus

__all__ = ["JUDGES", "JUDGE_ANNOTATION", "analyze", "judge_of", "looks_of", "rollout_start"]

_STARTED = re.compile(r"/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


def analyze(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    *,
    default_address: str,
    now: datetime,
    judge: str = "threshold",
    status: CanaryStatus | None = None,
    client_factory: ClientFactory | None = None,
    env: ProviderEnv | None = None,
    pool: HttpPool | None = None,
) -> tuple[CheckResult, ...]:
    """The checks of one analysis by the canary's judge (`judge` is the repository default)."""
    try:
        chosen = judge_of(canary, judge)
    except AnalysisError as exc:
        return tuple(_failed(metric, str(exc)) for metric in canary.spec.analysis.metrics)
    if chosen == "threshold":
        return run_analysis(
            canary,
            templates,
            default_address=default_address,
            now=now,
            client_factory=client_factory,
            env=env,
            pool=pool,
        )
    return run_comparison(
        canary,
        templates,
        default_address=default_address,
        now=now,
        since=rollout_start(status),
        looks=looks_of(canary),
        state=look_state(canary, status),
        client_factory=client_factory,
        env=env,
        pool=pool,
    )


def rollout_start(status: CanaryStatus | None) -> datetime | None:
    """When the rollout under analysis started: the timestamp closing its `rolloutId`."""
    match = _STARTED.search(status.rollout_id) if status is not None else None
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def look_state(canary: Canary, status: CanaryStatus | None) -> LookState:
    """This look as the status shows it: the primary gets traffic below full weight, and a pass
    at the last weight (or iteration) promotes. (Where pooled evidence restarts after a failed
    look is replayed from the data, `looks.replayed_reset`.)"""
    if status is None:
        return LookState()
    if strategy_of(canary) is not Strategy.CANARY:
        final = status.iterations + 1 >= canary.spec.analysis.iterations
        return LookState(True, final)
    return LookState(status.canary_weight < 100, status.canary_weight >= max_weight_of(canary))


def looks_of(canary: Canary) -> int:
    """How many analyses a rollout of `canary` makes at most: one per weight step (or iteration)
    and one at the last weight before promotion."""
    if strategy_of(canary) is not Strategy.CANARY:
        return canary.spec.analysis.iterations + 1
    looks, weight, cap = 1, 0, max_weight_of(canary)
    while weight < cap:
        following = next_weight(canary, weight)
        if following <= weight:
            break
        weight, looks = following, looks + 1
    return looks + (1 if canary.spec.analysis.mirror else 0)
