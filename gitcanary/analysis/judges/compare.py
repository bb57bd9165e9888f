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
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol, runtime_checkable

from gitcanary.analysis import run as threshold_run
from gitcanary.analysis.builtin import request_rate_query
from gitcanary.analysis.judges.settings import JudgeSettings
from gitcanary.analysis.judges.stats import (
    Comparison,
    EffectFloor,
    Step,
    compare,
    compare_counts,
    conditional_p,
    edges_p,
    middle_boundary,
    per_look_alpha,
    primary_baseline,
    slow_boundaries,
    spent_alpha,
)
from gitcanary.analysis.prometheus import NoDataError, PrometheusClient
from gitcanary.analysis.providers import HttpPool, ProviderEnv
from gitcanary.analysis.run import ClientFactory, QueryClient, format_number
from gitcanary.analysis.templates import QueryModel, render_query
from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.duration import format_duration, parse_duration
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


def run_comparison(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    *,
    default_address: str,
    now: datetime,
    since: datetime | None = None,
    looks: int = 1,
    client_factory: ClientFactory | None = None,
    env: ProviderEnv | None = None,
    pool: HttpPool | None = None,
) -> tuple[CheckResult, ...]:
    """Judge every metric of `canary`, canary against primary, at `now`.

    `since` is when the rollout started (samples before it belong to another revision); `looks`
    is how many analyses the rollout makes at most, which splits the confidence between them.
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
    try:
        return tuple(
            _judge_metric(run, canary, metric, settings, (began, start), now, (alpha, looks, interval))
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
    levels: tuple[float, int, float],
) -> CheckResult:
    """Judge one metric. `span` is (when the rollout began, where the window starts); `levels` is
    (the Bonferroni level of one look, the rollout's planned looks, the analysis interval).

    A percent ratio (a success or error rate: its default floor is in points) with the provider's
    request rate at hand is judged on counts since the rollout began (`compare_counts` at this
    look's share of `1 - confidence`, `spent_alpha`). So is a latency read from a histogram
    (`histogram_quantile(q, ... by (le))`): its bad requests are those slower than three bucket
    edges of the primary's histogram (`_slow_counts`). Any other metric, or a ratio without request counts,
    is judged by Mann-Whitney over the window at the Bonferroni level, against the primary's
    baseline of `primary_baseline` when request counts are at hand.
    """
    alpha, looks, every = levels
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
    try:
        canary_query = render_query(plan.query, model)
        primary_target = f"{model.target}-primary"
        primary_query = render_query(plan.query, replace(model, target=primary_target))
        # The first sample ends one step after the rollout began: it holds only this rollout's
        # requests. Every series is read from there, on the same grid of timestamps.
        step = settings.step_seconds
        first = began + timedelta(seconds=step)
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
        # The guard rail reads each workload as Flagger would: the metric over its own interval.
        current = replace(model, interval=metric.interval or threshold_run.DEFAULT_METRIC_INTERVAL)
        window = timedelta(seconds=parse_duration(current.interval))
        values_now = (
            _value(run, plan, render_query(plan.query, current), now, window),
            _value(run, plan, render_query(plan.query, replace(current, target=primary_target)), now, window),
        )
    except AnalysisError as exc:
        return threshold_run._failed(metric, f"query failed ({exc})", plan.note)
    low = metric.threshold_range.min if metric.threshold_range else None
    high = metric.threshold_range.max if metric.threshold_range else None
    if metric.threshold_range is None and metric.threshold is not None:
        low, high = (metric.threshold, None) if plan.bound == "min" else (None, metric.threshold)
    window_start = (start + timedelta(seconds=settings.step_seconds)).timestamp()
    ratio = _default_floor(metric.name, higher_is_worse).kind == "pp"
    # Both ways of counting (a ratio's errors, a histogram's slow requests) share these rules and
    # this look's share of `1 - confidence`; each adds its own evidence.
    on_counts = partial(
        compare_counts,
        higher_is_worse=higher_is_worse,
        floor=floor,
        min_samples=settings.min_samples,
        low=low,
        high=high,
        now=values_now,
    )

    def spent(canary_steps: list[Step]) -> float:
        return spent_alpha(settings.confidence, _look(canary_steps, settings.step_seconds, every), looks)

    if ratio and volumes is not None:
        canary_steps, primary_steps = _steps(points, volumes, higher_is_worse)
        # The canary's requests over the metric's own interval, for the rail's test.
        interval = parse_duration(metric.interval or threshold_run.DEFAULT_METRIC_INTERVAL)
        since_interval = (now - timedelta(seconds=interval)).timestamp()
        times = sorted(set(volumes[0]) | set(volumes[1]))
        latest = [
            (c, p) for t, c, p in zip(times, canary_steps, primary_steps, strict=True) if t > since_interval
        ]
        recent = (
            Step(sum(c.requests for c, _ in latest), sum(c.bad for c, _ in latest)),
            Step(sum(p.requests for _, p in latest), sum(p.bad for _, p in latest)),
        )
        outcome = on_counts(
            canary_steps,
            primary_steps,
            alpha=spent(canary_steps),
            recent=recent,
            rail_alpha=alpha,
            whole_alpha=1 - settings.confidence,
        )
        return _result(metric, outcome, low, high, plan.unit, plan.note)
    histogram = histogram_of(plan.query)
    if histogram is not None and isinstance(client, BucketClient):
        try:
            counted = _slow_counts(
                client,
                run,
                plan,
                (model, replace(model, target=primary_target)),
                histogram,
                settings,
                (began, now),
            )
        except AnalysisError as exc:
            return threshold_run._failed(metric, f"query failed ({exc})", plan.note)
        if counted is not None:
            outcome = on_counts(
                counted.canary,
                counted.primary,
                alpha=spent(counted.canary),
                values=counted.values,
                p_value=counted.p_value,
            )
            return _result(metric, outcome, low, high, plan.unit, plan.note)
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
    return _result(metric, outcome, low, high, plan.unit, plan.note)


def _look(canary_steps: list[Step], step: float, interval: float) -> int:
    """Which look of the rollout this is: intervals since the canary's first step with requests
    (rounded up). One analysis per interval makes this a count of the analyses that could judge
    the canary, whatever the waits and holds in between."""
    first = next((i for i, c in enumerate(canary_steps) if c.requests > 0), len(canary_steps))
    return max(1, math.ceil((len(canary_steps) - first) * step / interval - 1e-9))


class SlowCounts(NamedTuple):
    """A latency's evidence on counts: per step, requests slower than the middle edge (canary,
    primary), each side's quantile since the rollout began, and `edges_p` of the three edges."""

    canary: list[Step]
    primary: list[Step]
    values: tuple[float | None, float | None]
    p_value: float


def _slow_counts(
    client: BucketClient,
    run: threshold_run._Run,
    plan: threshold_run._Plan,
    models: tuple[QueryModel, QueryModel],
    histogram: tuple[float, str],
    settings: JudgeSettings,
    span: tuple[datetime, datetime],
) -> SlowCounts | None:
    """A histogram's quantile as counts: per step, the requests slower than each of three
    edges of the primary's histogram (`middle_boundary`, and the edges of the bucket holding the
    quantile, `slow_boundaries`), on both workloads, since the rollout began; the evidence is
    `edges_p` of the edges' `conditional_p`.

    A step's boundaries come from the primary's buckets before that step, back to `judge-window`
    before the rollout began (the primary then served every request): they are fixed before the
    step's requests are counted, so the count test stays a test of the step's requests. The
    values shown and held against the effect floor are each workload's quantile over the rollout
    so far (the metric's own query, `{{ interval }}` since the rollout began). None when the
    buckets are not there (the caller falls back to Mann-Whitney).
    """
    quantile, inner = histogram
    began, now = span
    step = settings.step_seconds
    first = began + timedelta(seconds=step)
    before = began - timedelta(seconds=settings.window_seconds)
    per_step = f"({inner}) * {step:g}"
    buckets = [
        _buckets(client, render_query(per_step, models[0]), first, now, step),
        _buckets(client, render_query(per_step, models[1]), before + timedelta(seconds=step), now, step),
    ]
    if not buckets[0] or not buckets[1]:
        return None
    times = sorted(t for t in set(buckets[0]) | set(buckets[1]) if t >= first.timestamp())
    seen: dict[float, float] = {}
    for t in sorted(buckets[1]):
        if t < first.timestamp():
            for le, count in buckets[1][t].items():
                seen[le] = seen.get(le, 0.0) + count
    # Per edge (middle, quantile's lower, quantile's upper): the canary's steps, the primary's.
    edges: tuple[tuple[list[Step], list[Step]], ...] = tuple(([], []) for _ in range(3))
    for t in times:
        quantile_edges = slow_boundaries(seen, quantile)
        middle = middle_boundary(seen)
        bounds = None if quantile_edges is None or middle is None else (middle, *quantile_edges)
        for edge, (canary_steps, primary_steps) in enumerate(edges):
            for side, steps in zip(buckets, (canary_steps, primary_steps), strict=True):
                counts = side.get(t, {})
                total = max(counts.get(math.inf, 0.0), 0.0)
                if bounds is None:
                    # No boundary yet (no primary requests before this step): not compared.
                    steps.append(Step(0.0, 0.0))
                    continue
                below = counts.get(bounds[edge], total)
                steps.append(Step(total, min(max(total - below, 0.0), total)))
        for le, count in buckets[1].get(t, {}).items():
            seen[le] = seen.get(le, 0.0) + count
    # Each side's quantile over the rollout so far, by the metric's own query.
    since = format_duration(max(math.ceil((now - began).total_seconds()), 1) + settings.scrape_seconds)
    window = now - began
    values = tuple(
        _value(run, plan, render_query(plan.query, replace(model, interval=since)), now, window)
        for model in models
    )
    canary_steps, primary_steps = edges[0]
    return SlowCounts(
        canary_steps, primary_steps, (values[0], values[1]), edges_p([conditional_p(*e) for e in edges])
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


def _steps(
    points: tuple[list[tuple[float, float]], list[tuple[float, float]]],
    volumes: tuple[dict[float, float], dict[float, float]],
    higher_is_worse: bool,
) -> tuple[list[Step], list[Step]]:
    """Both workloads' requests and bad requests per step, on the same steps, oldest first.

    A step's bad requests are its requests times its bad share: the value in percent (an error
    rate), or 100 minus it (a success rate). A step with requests but no value (Prometheus drops
    NaN) counts its requests with no bad ones; a value without requests counts nothing.
    """
    times = sorted(set(volumes[0]) | set(volumes[1]))

    def side(values: list[tuple[float, float]], requests: dict[float, float]) -> list[Step]:
        by_time = dict(values)
        steps = []
        for t in times:
            n = max(requests.get(t, 0.0), 0.0)
            value = by_time.get(t)
            share = 0.0 if value is None else (value if higher_is_worse else 100 - value) / 100
            steps.append(Step(n, n * min(max(share, 0.0), 1.0)))
        return steps

    return side(points[0], volumes[0]), side(points[1], volumes[1])


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
