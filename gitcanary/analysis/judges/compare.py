"""The `compare` judge: every metric measured on the canary and on the primary over the rollout so
far, and the canary judged against the primary (`stats.compare`).

Each metric's query (builtin, inline or MetricTemplate) is rendered twice, `{{ target }}` as the
canary workload and then as `<target>-primary`, with `{{ interval }}` set to the judge's step plus
one scrape interval, and run as a range query from the rollout's start (at most `judge-window`
back) to now at that step: one sample per step, each counting the requests of its own step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from gitcanary.analysis import run as threshold_run
from gitcanary.analysis.builtin import request_rate_query
from gitcanary.analysis.judges.looks import (
    LookPlan,
    Rule,
    Slice,
    judge_latency,
    judge_ratio,
    latency_requests_needed,
    ratio_requests_needed,
)
from gitcanary.analysis.judges.settings import JudgeSettings
from gitcanary.analysis.judges.stats import (
    Comparison,
    EffectFloor,
    _beyond,
    compare,
    per_look_alpha,
    primary_baseline,
)
from gitcanary.analysis.prometheus import NoDataError, PrometheusClient
from gitcanary.analysis.providers import HttpPool, ProviderEnv
from gitcanary.analysis.run import ClientFactory, QueryClient, format_number
from gitcanary.analysis.templates import QueryModel, render_query
from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.duration import format_duration
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary, CanaryMetric, MetricTemplate

# Defaults per builtin: a success rate is worse lower, by half a percentage point; a duration is
# worse higher, by ten percent.
_BUILTIN_FLOORS = {
    "request-success-rate": EffectFloor("pp", 0.5),
    "request-duration": EffectFloor("ratio", 1.1),
}


@runtime_checkable
class RangeClient(Protocol):
    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]: ...


@runtime_checkable
class BucketClient(Protocol):
    """A client whose range queries can return every bucket of a histogram (Prometheus)."""

    def query_range_by(
        self, promql: str, start: datetime, end: datetime, step: float, label: str
    ) -> dict[str, list[tuple[float, float]]]: ...


# `histogram_quantile(0.99, <buckets summed by le>)`: the builtin latency of every provider with a
# histogram (Istio, Linkerd, Contour, Kubernetes, Gateway API's Istio queries), and any template
# written the same way. Its inner expression counts requests per bucket.
_QUANTILE = re.compile(
    r"^\s*histogram_quantile\s*\(\s*(?P<q>0?\.\d+|1(?:\.0*)?)\s*,(?P<inner>.*)\)\s*$", re.DOTALL
)
_BY_LE = re.compile(r"\bby\s*\(\s*le\s*\)")


def histogram_of(query: str) -> tuple[float, str] | None:
    """(quantile, buckets query) of a `histogram_quantile` query summed `by (le)`, else None."""
    match = _QUANTILE.match(query)
    if match is None or not _BY_LE.search(match["inner"]):
        return None
    quantile = float(match["q"])
    return (quantile, match["inner"].strip()) if 0 < quantile < 1 else None


@dataclass(frozen=True)
class LookState:
    """What the rollout's status says about this look: whether the primary gets traffic (below full
    weight), and whether passing this look promotes. (Where pooled evidence restarts after a failed
    look is replayed from the data, `looks.replayed_reset`.)"""

    primary_expected: bool = True
    final: bool = False


def run_comparison(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    *,
    default_address: str,
    now: datetime,
    since: datetime | None = None,
    looks: int = 1,
    state: LookState | None = None,
    client_factory: ClientFactory | None = None,
    env: ProviderEnv | None = None,
    pool: HttpPool | None = None,
) -> tuple[CheckResult, ...]:
    """Judge every metric of `canary`, canary against primary, at `now`.

    `since` is when the rollout started (samples before it belong to another revision); `looks`
    is how many analyses the rollout makes at most, which splits the confidence of the metrics
    judged by Mann-Whitney between them (counts spend it by information, `looks.spent`).
    """
    try:
        settings = JudgeSettings.of(canary)
    except AnalysisError as exc:
        return tuple(threshold_run._failed(metric, str(exc)) for metric in canary.spec.analysis.metrics)
    start = now - timedelta(seconds=settings.window_seconds)
    if since is not None and since > start:
        start = since
    # The count test reads every step since the rollout began (its bound holds only then).
    began = since if since is not None and since < start else start
    alpha = per_look_alpha(settings.confidence, looks)
    interval = canary.spec.analysis.interval_seconds
    env = env or ProviderEnv()
    own_pool = pool is None
    pool = pool or HttpPool()

    def default_factory(address: str, headers: Mapping[str, str] | None) -> QueryClient:
        return PrometheusClient(address, headers=headers, limits=env.limits, pool=pool)

    run = threshold_run._Run(
        canary, templates, default_address, now, client_factory or default_factory, env, pool
    )
    look = state or LookState()
    try:
        return tuple(
            _judge_metric(run, canary, metric, settings, (began, start), now, (alpha, interval, looks), look)
            for metric in canary.spec.analysis.metrics
        )
    finally:
        run.close()
        if own_pool:
            pool.close()


def _judge_metric(
    run: threshold_run._Run,
    canary: Canary,
    metric: CanaryMetric,
    settings: JudgeSettings,
    span: tuple[datetime, datetime],
    now: datetime,
    levels: tuple[float, float, int],
    look: LookState,
) -> CheckResult:
    """Judge one metric. `span` is (when the rollout began, where the window starts); `levels` is
    (the Bonferroni level of one look, the analysis interval: each look's own window).

    A percent ratio (a success or error rate: its default floor is in points) with the provider's
    request rate at hand is judged on counts (`looks.judge_ratio`). So is a latency read from a
    histogram (`histogram_quantile(q, ... by (le))`, `looks.judge_latency`). Any other metric, or a
    ratio without request counts, is judged by Mann-Whitney over the window at the Bonferroni
    level, against the primary's baseline of `primary_baseline` when request counts are at hand.
    Every one of them passes only with current data: samples (and requests, where counted) of
    both workloads inside the look's own window.
    """
    alpha, every, looks = levels
    began, start = span
    try:
        plan = run._plan(metric)
    except threshold_run._Failed as exc:
        return threshold_run._failed(metric, str(exc))
    higher_is_worse = _higher_is_worse(metric, plan.bound)
    floor = settings.floors.get(metric.name) or _default_floor(metric.name, higher_is_worse)
    model = QueryModel.for_canary(canary, settings.range, metric.template_variables)
    client = run._client(plan)
    if not isinstance(client, RangeClient):
        return threshold_run._failed(metric, "the metrics client has no range queries", plan.note)
    primary_target = f"{model.target}-primary"
    step = settings.step_seconds
    first = began + timedelta(seconds=step)
    try:
        canary_query = render_query(plan.query, model)
        primary_query = render_query(plan.query, replace(model, target=primary_target))
        # The first sample ends one step after the rollout began: it holds only this rollout's
        # requests. Every series is read from there, on the same grid of timestamps.
        points = (
            _series(client, canary_query, first, now, step),
            _series(client, primary_query, first, now, step),
        )
        volumes: tuple[dict[float, float], dict[float, float]] | None = None
        rate_query = request_rate_query(canary.provider)
        if rate_query is not None:
            per_step = f"({rate_query}) * {step:g}"
            primary_model = replace(model, target=primary_target)
            volumes = (
                dict(_series(client, render_query(per_step, model), first, now, step)),
                dict(_series(client, render_query(per_step, primary_model), first, now, step)),
            )
            if not volumes[0] and not volumes[1]:
                volumes = None  # the provider's request series is not in this Prometheus
    except AnalysisError as exc:
        return threshold_run._failed(metric, f"query failed ({exc})", plan.note)
    low = metric.threshold_range.min if metric.threshold_range else None
    high = metric.threshold_range.max if metric.threshold_range else None
    if metric.threshold_range is None and metric.threshold is not None:
        low, high = (metric.threshold, None) if plan.bound == "min" else (None, metric.threshold)
    ratio = _default_floor(metric.name, higher_is_worse).kind == "pp"
    plan_look = LookPlan(
        now=now.timestamp(),
        window=every,
        since=began.timestamp(),
        reset=began.timestamp(),
        alpha=1 - settings.confidence,
        needed=0.0,
        primary_expected=look.primary_expected,
        final=look.final,
        planned=looks,
    )
    rule = Rule(higher_is_worse, floor, low, high)
    override = settings.requests.get(metric.name)
    if ratio and volumes is not None:
        canary_slices, primary_slices = _slices(points, volumes, higher_is_worse)
        needed = override or ratio_requests_needed(primary_slices, floor, plan_look.alpha)
        outcome = judge_ratio(
            canary_slices, primary_slices, replace(plan_look, needed=needed, required=bool(override)), rule
        )
        return _result(metric, outcome, low, high, plan.unit, plan.note)
    histogram = histogram_of(plan.query)
    if histogram is not None and isinstance(client, BucketClient):
        try:
            sides = _histograms(
                client, (model, replace(model, target=primary_target)), histogram[1], settings, (began, now)
            )
        except AnalysisError as exc:
            return threshold_run._failed(metric, f"query failed ({exc})", plan.note)
        if sides is not None:
            needed = override or latency_requests_needed(plan_look.alpha)
            outcome = judge_latency(
                *sides, replace(plan_look, needed=needed, required=bool(override)), rule, histogram[0]
            )
            return _result(metric, outcome, low, high, plan.unit, plan.note)
    # Mann-Whitney: the window's samples; the look's own window must hold samples of both sides
    # (and requests, where counted), and the rail reads each side over the look's window.
    window_start = (start + timedelta(seconds=step)).timestamp()
    look_start = now.timestamp() - every
    stale = _stale_samples(points, volumes, look_start, look.primary_expected, every)
    try:
        current = replace(model, interval=format_duration(every + settings.scrape_seconds))
        window = timedelta(seconds=every + settings.scrape_seconds)
        values_now = (
            _value(run, plan, render_query(plan.query, current), now, window),
            _value(run, plan, render_query(plan.query, replace(current, target=primary_target)), now, window),
        )
    except AnalysisError as exc:
        return threshold_run._failed(metric, f"query failed ({exc})", plan.note)
    canary_window = [(t, v) for t, v in points[0] if t >= window_start]
    if volumes is None:
        primary_samples = [v for t, v in points[1] if t >= window_start]
    else:
        primary_samples = primary_baseline(
            [(t, v, volumes[1].get(t, 0.0)) for t, v in points[1]],
            window_start,
            [volumes[0].get(t, 0.0) for t, _ in canary_window],
        )
    outcome = compare(
        [v for _, v in canary_window],
        primary_samples,
        higher_is_worse=higher_is_worse,
        floor=floor,
        alpha=alpha,
        min_samples=settings.min_samples,
        low=low,
        high=high,
        now=values_now,
    )
    if outcome.verdict is Verdict.PASS and stale is not None:
        outcome = dataclass_replace(outcome, verdict=Verdict.WAIT, reason=stale)
    elif outcome.verdict is Verdict.PASS and _beyond(values_now[0], low=low, high=high):
        # Beyond the rail on current data, the primary within: never a pass.
        outcome = dataclass_replace(
            outcome,
            verdict=Verdict.WAIT,
            reason=f"canary {values_now[0]:.4g} beyond the threshold in this look's window,"
            " without evidence yet",
        )
    return _result(metric, outcome, low, high, plan.unit, plan.note)


def _stale_samples(
    points: tuple[list[tuple[float, float]], list[tuple[float, float]]],
    volumes: tuple[dict[float, float], dict[float, float]] | None,
    look_start: float,
    primary_expected: bool,
    every: float,
) -> str | None:
    """Why a Mann-Whitney look has no current data, or None."""
    shown = format_duration(every)
    sides = [("canary", 0)] + ([("primary", 1)] if primary_expected else [])
    for name, index in sides:
        if not any(t > look_start for t, _ in points[index]):
            return f"no current data: no {name} sample in this look's window ({shown})"
        if volumes is not None and sum(v for t, v in volumes[index].items() if t > look_start) <= 0:
            return f"no current data: the {name} served no requests in this look's window ({shown})"
    return None


def _slices(
    points: tuple[list[tuple[float, float]], list[tuple[float, float]]],
    volumes: tuple[dict[float, float], dict[float, float]],
    higher_is_worse: bool,
) -> tuple[list[Slice], list[Slice]]:
    """Both workloads' requests and bad requests per step, on the same steps, oldest first.

    A step's bad requests are its requests times its bad share: the value in percent (an error
    rate), or 100 minus it (a success rate). A step with requests but no value counts its requests
    with no bad ones (an error ratio over series that have no 5xx yet has no value); a step
    without a request sample has no requests: it is no data, never a quiet step.
    """
    times = sorted(set(volumes[0]) | set(volumes[1]))

    def side(values: list[tuple[float, float]], requests: dict[float, float]) -> list[Slice]:
        by_time = dict(values)
        out = []
        for t in times:
            n = max(requests.get(t, 0.0), 0.0)
            value = by_time.get(t)
            share = 0.0 if value is None else (value if higher_is_worse else 100 - value) / 100
            out.append(Slice(t, n, n * min(max(share, 0.0), 1.0)))
        return out

    return side(points[0], volumes[0]), side(points[1], volumes[1])


def _histograms(
    client: BucketClient,
    models: tuple[QueryModel, QueryModel],
    inner: str,
    settings: JudgeSettings,
    span: tuple[datetime, datetime],
) -> tuple[list[Slice], list[Slice]] | None:
    """Both workloads' buckets per step (`by (le)`, times the step): the canary's since the
    rollout began, the primary's from `judge-window` before it (its edges' reference). Each step
    keeps the edges that side reported in it; None when neither has buckets."""
    began, now = span
    step = settings.step_seconds
    first = began + timedelta(seconds=step)
    before = began - timedelta(seconds=settings.window_seconds)
    per_step = f"({inner}) * {step:g}"
    buckets = (
        _buckets(client, render_query(per_step, models[0]), first, now, step),
        _buckets(client, render_query(per_step, models[1]), before + timedelta(seconds=step), now, step),
    )
    if not buckets[0] and not buckets[1]:
        return None
    return tuple(  # type: ignore[return-value]
        [Slice(t, max(b.get(math.inf, 0.0), 0.0), 0.0, b) for t, b in sorted(side.items())]
        for side in buckets
    )


def _buckets(
    client: BucketClient, query: str, start: datetime, end: datetime, step: float
) -> dict[float, dict[float, float]]:
    """Requests per step and bucket: {time: {le: requests at or below le}}."""
    if end <= start:
        return {}
    try:
        series = client.query_range_by(query, start, end, step, "le")
    except NoDataError:
        return {}
    found: dict[float, dict[float, float]] = {}
    for le, points in series.items():
        try:
            bound = float(le)
        except ValueError:
            continue
        for t, value in points:
            found.setdefault(t, {})[bound] = value
    return found


def _series(
    client: RangeClient, query: str, start: datetime, end: datetime, step: float
) -> list[tuple[float, float]]:
    if end <= start:
        return []
    try:
        return client.query_range(query, start, end, step)
    except NoDataError:
        return []  # no requests yet: too few samples, which the verdict says


def _value(
    run: threshold_run._Run, plan: threshold_run._Plan, query: str, now: datetime, window: timedelta
) -> float | None:
    try:
        return run._client(plan).query(query, now, window)
    except NoDataError:
        return None


def _higher_is_worse(metric: CanaryMetric, bound: str) -> bool:
    """A metric bounded only below (a success rate) is worse lower; one bounded only above, or a
    builtin whose deprecated `threshold` is a maximum, is worse higher."""
    limits = metric.threshold_range
    if limits is not None and (limits.min is None) != (limits.max is None):
        return limits.max is not None
    return bound == "max"


_RATIO_WORDS = ("error", "success", "availability", "5xx")


def _default_floor(name: str, higher_is_worse: bool) -> EffectFloor:
    if name in _BUILTIN_FLOORS:
        return _BUILTIN_FLOORS[name]
    # Error and success ratios are percentages: their floor is in points (a ratio floor on a
    # 0.05% baseline would call 0.06% a regression). A template bounded below reads like a success
    # rate too; anything else (latencies, costs) gets a ratio.
    if not higher_is_worse or any(word in name.lower() for word in _RATIO_WORDS):
        return EffectFloor("pp", 0.5)
    return EffectFloor("ratio", 1.1)


def _result(
    metric: CanaryMetric,
    outcome: Comparison,
    low: float | None,
    high: float | None,
    unit: str,
    note: str,
) -> CheckResult:
    """The check with both values, p-value and effect in its line, e.g.
    ``request-duration canary 312ms primary 240ms p=0.0004 x1.3: failed (canary worse ...)``."""

    def show(value: float | None) -> str:
        return "none" if value is None else f"{format_number(value)}{unit}"

    parts = [metric.name, f"canary {show(outcome.canary)}", f"primary {show(outcome.primary)}"]
    if outcome.p_value is not None:
        parts.append(f"p={_show_p(outcome.p_value)}")
    if outcome.effect:
        parts.append(outcome.effect)
    verdict = {
        Verdict.PASS: "ok",
        Verdict.FAIL: "failed",
        Verdict.WAIT: "waiting",
        Verdict.HOLD: "holding",
    }[outcome.verdict]
    line = f"{' '.join(parts)} {verdict} ({outcome.reason})"
    if note:
        line = f"{line} ({note})"
    return CheckResult(
        metric.name,
        outcome.canary,
        low,
        high,
        outcome.verdict is Verdict.PASS,
        line,
        primary=outcome.primary,
        p_value=outcome.p_value,
        effect=outcome.effect,
        outcome=outcome.verdict,
    )


def _show_p(p: float) -> str:
    if p <= 0 or math.isnan(p):
        return "0"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"
