"""One look of the compare judge on counts, pure: per-step data of both workloads in, a verdict out.

The rules every look follows (docs/judge.md, "No verdict without current evidence"):

- **Freshness.** A look passes only on requests the canary, and the primary while it gets traffic,
  served inside the look's own window (the analysis interval ending now). Without them the look is
  "no current data": it waits (`Verdict.WAIT`), which the rollout bounds by
  `gitcanary.io/max-wait-intervals` and then fails as Flagger fails a check without values. Pooled
  history adds power to the count test; it never stands in for the current window.
- **The rail on current data.** The canary's current value (this window's requests) beyond the
  metric's `thresholdRange` while the primary's is within never passes: it fails with evidence,
  and waits without it.
- **One burst, one failure.** Pooled evidence starts at `reset` (the end of the last failed look),
  and the rail reads this window only, so consecutive looks never count the same requests twice.
- **Enough requests.** Promotion (`final`) needs the canary's requests since the rollout began to
  reach `needed` (a power calculation, `requests_needed`).
- **Spending by information fraction.** Each look's level is what `spent` adds between the
  information at the previous look (the requests up to this window) and now.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gitcanary.analysis.judges.stats import (
    Comparison,
    EffectFloor,
    Step,
    _at_least,
    beyond_rail,
    conditional_p,
    rail_e_value,
)
from gitcanary.core.observations import Verdict
from gitcanary.duration import format_duration


@dataclass(frozen=True)
class Slice:
    """One step of one workload. `time` is the step's end (unix seconds). `requests` counts its
    requests (0 when the series had no sample: unknown is never counted as requests), `bad` its bad
    requests (errors; a histogram's are per edge, from `buckets`). `buckets` maps each `le` the
    workload reported in this step to its requests at or below it (`math.inf`: all of them); an
    edge it did not report is unknown, never zero."""

    time: float
    requests: float
    bad: float = 0.0
    buckets: Mapping[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LookPlan:
    """Where the look stands: `now`, its own `window` (the analysis interval), the rollout's start
    (`since`), where pooled evidence starts (`reset`, at or after `since`), whether the primary
    gets traffic (`primary_expected`: below full weight), whether passing promotes (`final`),
    the whole rollout's level (`alpha`, 1 - confidence) and the requests promotion needs."""

    now: float
    window: float
    since: float
    reset: float
    alpha: float
    needed: float
    primary_expected: bool = True
    final: bool = False
    planned: int = 11
    # `needed` is the operator's own count (`gitcanary.io/judge-requests`): promotion waits for it,
    # even when the canary is already shown not worse than the primary.
    required: bool = False


@dataclass(frozen=True)
class Rule:
    """How the metric is judged: direction, effect floor and thresholdRange (the rail)."""

    higher_is_worse: bool
    floor: EffectFloor
    low: float | None = None
    high: float | None = None


# -- spending by information fraction -------------------------------------------------------------

# The rollout's level is spent by the information fraction t (the canary's requests since the
# rollout began over the requests the power calculation asks for) along alpha * t / (1 + t): half
# of it by the planned information, the rest over the information beyond (waits, holds, a long
# last weight, high traffic), never all of it. The function is increasing and bounded by alpha,
# so the looks' levels sum to at most alpha however many looks there are and however long each
# interval is; a look's level depends on the requests it adds, not on its number, so a late look,
# which at a higher weight adds more requests, keeps about the level of an early one.


def spent(alpha: float, information: float) -> float:
    """The level spent once the information fraction is `information` (0 at 0, below `alpha`)."""
    t = max(information, 0.0)
    return alpha * t / (1 + t)


def look_level(alpha: float, before: float, now: float) -> float:
    """The level of a look at information fraction `now` whose previous look was at `before`."""
    return max(spent(alpha, now) - spent(alpha, before), 0.0)


def numbered_level(alpha: float, look: int, planned: int) -> float:
    """The level of look `look` (1-based) of a rollout planned for `planned` looks: 90% of `alpha`
    evenly over the planned looks, the last 10% halving at every look beyond them (waits and holds
    add looks). The levels of all looks there can be sum to `alpha`."""
    planned, look = max(planned, 1), max(look, 1)
    if look <= planned:
        return alpha * 0.9 / planned
    return alpha * 0.1 * 2.0 ** -(look - planned)


def look_number(now: float, since: float, window: float) -> int:
    """Which look this is: the analysis intervals since the rollout began, rounded (one analysis per
    interval; the first ends one interval after the start)."""
    return max(1, round((now - since) / window))


# -- the power calculation ------------------------------------------------------------------------

POWER = 0.9


def requests_needed(baseline: float, detect: float, alpha: float, power: float = POWER) -> float:
    """Canary requests for a one-sided test at level `alpha` to see a bad share of `baseline +
    detect` against `baseline` with probability `power` (normal approximation of the binomial,
    `scipy.stats.norm`; the primary's many requests make its share nearly known)."""
    from scipy.stats import norm

    p0 = min(max(baseline, 1e-4), 0.5)
    p1 = min(p0 + max(detect, 1e-4), 1 - 1e-6)
    z = float(norm.isf(alpha)) * math.sqrt(p0 * (1 - p0)) + float(norm.isf(1 - power)) * math.sqrt(
        p1 * (1 - p1)
    )
    return math.ceil((z / (p1 - p0)) ** 2)


def ratio_requests_needed(primary: Sequence[Slice], floor: EffectFloor, alpha: float) -> float:
    """The canary requests a ratio needs before promotion: sized to see four times its floor (+2
    points for the default +0.5) over the primary's bad share so far (0.1% at least)."""
    requests = _total(primary)
    baseline = sum(max(s.bad, 0.0) for s in primary) / requests if requests > 0 else 0.0
    return requests_needed(max(baseline, 0.001), 4 * floor.size / 100, alpha)


def shown_not_worse(
    canary: Sequence[Slice], primary: Sequence[Slice], floor: EffectFloor, alpha: float
) -> bool:
    """Whether the canary's bad share is shown below the primary's plus the effect the power
    calculation is sized for (`ratio_requests_needed`: four times the floor): its one-sided upper
    confidence bound at level `alpha` (Clopper-Pearson, `scipy.stats.binomtest`) is below it. Then
    more requests would not change the conclusion, and promotion need not wait for the requests
    of the power calculation, which a primary's few errors at low traffic can inflate."""
    requests = round(_total(canary))
    primary_share = _share(primary)
    if requests <= 0 or primary_share is None:
        return False
    from scipy.stats import binomtest

    bad = min(round(sum(max(s.bad, 0.0) for s in canary)), requests)
    upper = binomtest(bad, requests).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").high
    return float(upper) < max(primary_share, 0.001) + 4 * floor.size / 100


def latency_requests_needed(alpha: float) -> float:
    """The canary requests a latency needs before promotion: sized to see 15 more points of
    requests slower than the primary's median edge (half of them)."""
    return requests_needed(0.5, 0.15, alpha)


# -- one look -------------------------------------------------------------------------------------


def _total(slices: Sequence[Slice]) -> float:
    return sum(max(s.requests, 0.0) for s in slices)


def _share(slices: Sequence[Slice]) -> float | None:
    requests = _total(slices)
    return None if requests <= 0 else min(max(sum(max(s.bad, 0.0) for s in slices) / requests, 0.0), 1.0)


def _beyond(value: float | None, rule: Rule) -> bool:
    if value is None:
        return False
    return (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high)


def _within(slices: Sequence[Slice], start: float, end: float) -> list[Slice]:
    return [s for s in slices if start < s.time <= end]


def no_current_data(canary: Sequence[Slice], primary: Sequence[Slice], plan: LookPlan) -> str | None:
    """Why the look has no current data (the check line says it), or None when it has."""
    start = plan.now - plan.window
    shown = format_duration(plan.window)
    if _total(_within(canary, start, plan.now)) <= 0:
        return f"no current data: the canary served no requests in this look's window ({shown})"
    if plan.primary_expected and _total(_within(primary, start, plan.now)) <= 0:
        return f"no current data: the primary served no requests in this look's window ({shown})"
    return None


Values = tuple[float | None, float | None]


@dataclass(frozen=True)
class Evidence:
    """What a metric's count test reads, for any span of steps (start, end]: its p-value
    (`p_value`), both sides' values (`values`: what the floor and the commit use) and, for a
    ratio, the rail's pooled e-value (`rail_e`)."""

    p_value: Callable[[float, float], float]
    values: Callable[[float, float], Values]
    rail_e: Callable[[float, float], float] | None = None
    how: str = ""  # which test, when not the usual one
    # The canary shown not worse by the effect the power calculation is sized for, on the
    # requests since the rollout began (a ratio's one-sided upper confidence bound).
    not_worse: Callable[[float, float], bool] | None = None


def _information(canary: Sequence[Slice], plan: LookPlan, at: float) -> float:
    return _total([s for s in canary if plan.since < s.time <= at]) / plan.needed


def _level(canary: Sequence[Slice], plan: LookPlan, at: float) -> float:
    """Half of the rollout's level spent by information fraction (`look_level`), half by look
    number (`numbered_level`): the first keeps early looks sharp at any traffic, the second keeps
    late looks' power however much information came before them. Both halves sum to at most
    `alpha / 2` over every look there can be."""
    informed = look_level(
        plan.alpha, _information(canary, plan, at - plan.window), _information(canary, plan, at)
    )
    numbered = numbered_level(plan.alpha, look_number(at, plan.since, plan.window), plan.planned)
    return 0.5 * informed + 0.5 * numbered


def _failed_on(evidence: Evidence, rule: Rule, start: float, end: float, level: float, alpha: float) -> bool:
    """Would pooled evidence over (start, end] fail a look at `level`? The count test with the
    effect floor, or the rail's pooled e-value (a ratio's, with the canary's pooled value beyond
    the rail and the primary's within)."""
    c, p = evidence.values(start, end)
    reached = c is not None and p is not None and rule.floor.reached(c, p, rule.higher_is_worse)
    if reached and evidence.p_value(start, end) <= level:
        return True
    if evidence.rail_e is not None and _beyond(c, rule) and not _beyond(p, rule):
        return evidence.rail_e(start, end) >= 1 / alpha
    return False


def replayed_reset(canary: Sequence[Slice], evidence: Evidence, plan: LookPlan, rule: Rule) -> float:
    """Where this look's pooled evidence starts: after the last earlier look (every `window`
    back from now, since the rollout began) that pooled evidence failed, replayed from the data.
    So one burst fails one look: the next look's evidence holds only requests after it."""
    start = max(plan.reset, plan.since)
    looks = []
    at = plan.now - plan.window
    while at > start:
        looks.append(at)
        at -= plan.window
    for at in reversed(looks):
        if _failed_on(evidence, rule, start, at, _level(canary, plan, at), plan.alpha):
            start = at
    return start


def _judge(
    canary: Sequence[Slice],
    primary: Sequence[Slice],
    plan: LookPlan,
    rule: Rule,
    evidence: Evidence,
    values_now: Values,
    recent: tuple[Step, Step] | None,
) -> Comparison:
    reset = replayed_reset(canary, evidence, plan, rule)
    c, p = evidence.values(reset, plan.now)
    canary_now, primary_now = values_now
    level = _level(canary, plan, plan.now)
    pvalue = evidence.p_value(reset, plan.now)
    effect = rule.floor.show(c, p, rule.higher_is_worse) if c is not None and p is not None else ""
    counts = (sum(1 for s in canary if s.requests > 0), sum(1 for s in primary if s.requests > 0))
    how = f"; {evidence.how}" if evidence.how else ""

    def result(verdict: Verdict, reason: str) -> Comparison:
        return Comparison(verdict, c, p, pvalue, effect, f"{reason}{how}", counts)

    significant = pvalue <= level
    # The floor on the pooled values, or on this window's (a regression that starts late is
    # diluted in the pooled ones).
    reached = any(
        a is not None and b is not None and rule.floor.reached(a, b, rule.higher_is_worse)
        for a, b in ((c, p), (canary_now, primary_now if primary_now is not None else p))
    )
    if significant and reached:
        return result(Verdict.FAIL, f"canary worse: p <= {level:.2g} and effect >= {rule.floor}")
    share = _rail_share(rule)
    railed = share is not None and _beyond(c, rule) and not _beyond(p, rule)
    if railed and evidence.rail_e is not None and evidence.rail_e(reset, plan.now) >= 1 / plan.alpha:
        return result(
            Verdict.FAIL,
            f"canary {c:.4g} beyond the threshold: e >= {1 / plan.alpha:.3g} against"
            f" {100 * (share or 0):.3g}% (or the primary's share) since the rollout began or last failed",
        )
    stale = no_current_data(canary, primary, plan)
    if stale is not None:
        return result(Verdict.WAIT, stale)
    if _beyond(canary_now, rule) and _beyond(primary_now, rule):
        return result(
            Verdict.HOLD,
            f"incident: primary {primary_now:.4g} beyond the threshold too (canary {canary_now:.4g})",
        )
    if _beyond(canary_now, rule):
        # The primary is within, or has no traffic (full weight): the canary's own current value
        # decides, and beyond the rail nothing passes.
        if significant:
            return result(
                Verdict.FAIL, f"canary worse: p <= {level:.2g} and {canary_now:.4g} beyond the threshold"
            )
        if share is not None and recent is not None:
            null = _at_least(share, recent[1])
            if beyond_rail(recent[0], null, level):
                return result(
                    Verdict.FAIL,
                    f"canary {canary_now:.4g} beyond the threshold: {recent[0].bad:.0f} bad of"
                    f" {recent[0].requests:.0f} requests in this look's window, p < {level:.2g}"
                    f" above {100 * null:.3g}%",
                )
        return result(
            Verdict.WAIT,
            f"canary {canary_now:.4g} beyond the threshold in this look's window, without evidence yet",
        )
    since = _total([s for s in canary if s.time > plan.since])
    shown = not plan.required and evidence.not_worse is not None and evidence.not_worse(plan.since, plan.now)
    if plan.final and since < plan.needed and not shown:
        return result(
            Verdict.WAIT, f"not enough requests to promote: {since:.0f} of {plan.needed:.0f} canary requests"
        )
    whole, whole_p = evidence.values(plan.since, plan.now)
    worse = (
        whole is not None and whole_p is not None and rule.floor.reached(whole, whole_p, rule.higher_is_worse)
    )
    window_requests = _total(_within(canary, plan.now - plan.window, plan.now))
    few = window_requests < plan.needed
    if plan.final and few and _beyond(whole, rule) and (worse or not _beyond(whole_p, rule)):
        # Promotion also needs the canary's value since the rollout began within the rail, unless
        # the primary's is beyond it as much (an incident on both), when this look's window holds
        # fewer requests than the power calculation asks for: at low traffic no one window shows
        # a bad canary, the whole rollout does, and the primary's few requests may be beyond by
        # chance. A window with them is the rail's evidence on its own: the rollout's earlier
        # weights mix the two sides' requests differently over time (the canary's towards the
        # end), so a 5xx spike late in the rollout weighs more in the canary's value since it
        # began than in the primary's, and at full weight the primary sees none of it.
        return result(Verdict.WAIT, f"canary {whole:.4g} beyond the threshold since the rollout began")
    return result(Verdict.PASS, "canary not worse")


def _rail_share(rule: Rule) -> float | None:
    """The rail as a share of bad requests: `max` of an error rate, 100 - `min` of a success rate."""
    if rule.higher_is_worse and rule.high is not None:
        share = rule.high / 100
    elif not rule.higher_is_worse and rule.low is not None:
        share = (100 - rule.low) / 100
    else:
        return None
    return share if 0 < share < 1 else None


def judge_ratio(canary: Sequence[Slice], primary: Sequence[Slice], plan: LookPlan, rule: Rule) -> Comparison:
    """A success or error rate (percent) on counts: each slice's `bad` are its bad requests.

    Evidence: `conditional_p` of the canary's and the primary's bad requests, per step, pooled
    since the rollout began or after the last look that failed on them (`replayed_reset`).
    """
    by_time = {s.time: s for s in primary}
    steps = sorted((s for s in canary if s.time > plan.since), key=lambda s: s.time)
    times = [s.time for s in steps]
    pairs = [(Step(s.requests, s.bad), _step(by_time.get(s.time))) for s in steps]

    def span(start: float, end: float) -> tuple[list[Step], list[Step]]:
        chosen = [pair for t, pair in zip(times, pairs, strict=True) if start < t <= end]
        return [c for c, _ in chosen], [p for _, p in chosen]

    def value(share: float | None) -> float | None:
        if share is None:
            return None
        return 100 * share if rule.higher_is_worse else 100 - 100 * share

    def values(start: float, end: float) -> Values:
        return value(_share(_within(canary, start, end))), value(_share(_within(primary, start, end)))

    share = _rail_share(rule)
    base = [s for s in primary if s.time > plan.since]
    baseline = Step(_total(base), sum(max(s.bad, 0.0) for s in base))

    def p_value(start: float, end: float) -> float:
        steps_c, steps_p = span(start, end)
        return with_baseline(conditional_p(steps_c, steps_p), steps_c, steps_p, baseline)

    def not_worse(start: float, end: float) -> bool:
        mine, theirs = _within(canary, start, end), _within(primary, start, end)
        return shown_not_worse(mine, theirs, rule.floor, plan.alpha)

    evidence = Evidence(
        p_value,
        values,
        (lambda start, end: rail_e_value(*span(start, end), share)) if share is not None else None,
        not_worse=not_worse,
    )
    start = plan.now - plan.window
    now_c, now_p = _within(canary, start, plan.now), _within(primary, start, plan.now)
    values_now = (value(_share(now_c)), value(_share(now_p)))
    recent = (
        Step(_total(now_c), sum(s.bad for s in now_c)),
        Step(_total(now_p), sum(s.bad for s in now_p)),
    )
    return _judge(canary, primary, plan, rule, evidence, values_now, recent)


def with_baseline(
    stratified: float, canary: Sequence[Step], primary: Sequence[Step], baseline: Step
) -> float:
    """The count test's p-value, with the canary's steps that had no primary requests (full
    weight) tested too: their bad requests against the primary's share since the rollout began
    (`baseline`), Fisher's exact test, one-sided (`scipy.stats.fisher_exact`). Only when there are
    such steps, the level is split in two (Bonferroni); the stratified test alone sees nothing in
    them."""
    solo = [c for c, p in zip(canary, primary, strict=True) if c.requests > 0 and p.requests <= 0]
    requests = round(sum(c.requests for c in solo))
    if requests <= 0 or baseline.requests <= 0:
        return stratified
    from scipy.stats import fisher_exact

    bad = min(round(sum(max(c.bad, 0.0) for c in solo)), requests)
    base_bad = min(round(baseline.bad), round(baseline.requests))
    table = [[bad, requests - bad], [base_bad, round(baseline.requests) - base_bad]]
    solo_p = float(fisher_exact(table, alternative="greater").pvalue)
    return min(1.0, 2 * stratified, 2 * solo_p)


def _step(s: Slice | None) -> Step:
    return Step(0.0, 0.0) if s is None else Step(s.requests, s.bad)


def judge_latency(
    canary: Sequence[Slice],
    primary: Sequence[Slice],
    plan: LookPlan,
    rule: Rule,
    quantile: float,
) -> Comparison:
    """A latency quantile from histograms, on counts of slow requests at edges both workloads
    reported in the same step (`Slice.buckets`; `requests` is each step's `+Inf`).

    Three edges of the primary's earlier requests (the one nearest its median, and both edges of
    the bucket that holds the quantile) among those both sides have, each step on its own; an edge
    a side did not report in a step leaves that step out of that edge's count (unknown, never
    zero). The look's level is split between them (`EDGE_SHARES`). Without a common edge near the
    quantile (its primary's share of slower requests within a factor 4 of `1 - quantile`), the
    quantile's evidence is a test that needs none: Mann-Whitney U on each side's per-step
    quantiles, each from its own layout, beside the middle edge (half the level each). The values
    held against the floor are both sides' quantiles on their common edges (each side's own
    layout only when they have none). `primary` may hold steps from before the rollout began
    (the edges' reference).
    """
    from gitcanary.analysis.judges.stats import EDGE_SHARES

    seen: dict[float, tuple[float, float]] = {}
    by_time = {s.time: s for s in primary}
    for s in primary:
        if s.time <= plan.since:
            _remember(seen, s)
    tests: tuple[tuple[list[Step], list[Step]], ...] = tuple(([], []) for _ in range(3))
    crossed = False  # some step compared the canary's edge with a lower one of the primary
    times: list[float] = []
    for c in sorted(canary, key=lambda s: s.time):
        if c.time <= plan.since:
            continue
        p = by_time.get(c.time, Slice(c.time, 0.0))
        pairs = _edge_pairs(seen, set(c.buckets), set(p.buckets), quantile)
        crossed = crossed or any(pair is not None and pair[0] != pair[1] for pair in pairs)
        for pair, (steps_c, steps_p) in zip(pairs, tests, strict=True):
            if pair is None or math.inf not in c.buckets or math.inf not in p.buckets:
                steps_c.append(Step(0.0, 0.0))
                steps_p.append(Step(0.0, 0.0))
                continue
            for side, edge, steps in ((c, pair[0], steps_c), (p, pair[1], steps_p)):
                total = max(side.buckets[math.inf], 0.0)
                steps.append(Step(total, min(max(total - side.buckets[edge], 0.0), total)))
        times.append(c.time)
        _remember(seen, p)
    # The primary's requests slower than the middle edge, over the steps it served (its share is
    # the baseline of the canary's steps at full weight).
    middle_baseline = Step(
        sum(p.requests for p in tests[0][1] if p.requests > 0),
        sum(p.bad for p in tests[0][1] if p.requests > 0),
    )

    def p_value(start: float, end: float) -> float:
        chosen = [i for i, t in enumerate(times) if start < t <= end]
        edges = [
            conditional_p([steps_c[i] for i in chosen], [steps_p[i] for i in chosen])
            for steps_c, steps_p in tests
        ]
        middle_c, middle_p = [tests[0][0][i] for i in chosen], [tests[0][1][i] for i in chosen]
        edges[0] = with_baseline(edges[0], middle_c, middle_p, middle_baseline)
        return min(1.0, *(pv / share for pv, share in zip(edges, EDGE_SHARES, strict=True)))

    def values(start: float, end: float) -> Values:
        mine, theirs = _within(canary, start, end), _within(primary, start, end)
        shared = common_edges(mine, theirs)
        if shared:
            return (
                histogram_quantile(pooled_buckets(mine, shared), quantile),
                histogram_quantile(pooled_buckets(theirs, shared), quantile),
            )
        return histogram_quantile(_own(mine), quantile), histogram_quantile(_own(theirs), quantile)

    how = (
        "no common edge near the quantile: the canary's requests slower than its next edge up,"
        " against the primary's slower than its own (conservative)"
        if crossed
        else ""
    )
    evidence = Evidence(p_value, values, None, how)
    start = plan.now - plan.window
    now_c, now_p = _within(canary, start, plan.now), _within(primary, start, plan.now)
    values_now = (histogram_quantile(_own(now_c), quantile), histogram_quantile(_own(now_p), quantile))
    return _judge(canary, primary, plan, rule, evidence, values_now, None)


# -- latencies from histograms: helpers ---


def histogram_quantile(cumulative: Mapping[float, float], quantile: float) -> float | None:
    """Prometheus' `histogram_quantile` of one histogram ({le: requests at or below}, `math.inf`
    the total): linear within the bucket that holds the rank (`numpy.interp`), the largest finite
    edge when the rank is in the `+Inf` bucket. None without requests."""
    import numpy as np

    total = cumulative.get(math.inf, 0.0)
    edges = sorted(le for le in cumulative if math.isfinite(le))
    if total <= 0 or not edges:
        return None
    counts = np.maximum.accumulate(np.array([cumulative[le] for le in edges], dtype=float))
    rank = quantile * total
    if rank > counts[-1]:
        return edges[-1]
    lower = 0.0 if edges[0] > 0 else edges[0]
    xs = np.concatenate([[0.0], counts])
    ys = np.concatenate([[lower], np.array(edges, dtype=float)])
    # np.interp needs increasing xs: the first bucket whose count reaches the rank, as Prometheus.
    first = int(np.searchsorted(xs, rank, side="left"))
    first = min(max(first, 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[first - 1], xs[first], ys[first - 1], ys[first]
    if x1 <= x0:
        return float(y1)
    return float(y0 + (y1 - y0) * (rank - x0) / (x1 - x0))


def pooled_buckets(slices: Sequence[Slice], edges: Sequence[float]) -> dict[float, float]:
    """The slices' buckets summed on `edges` (and `math.inf`), over the slices that have them all."""
    wanted = [*edges, math.inf]
    total: dict[float, float] = dict.fromkeys(wanted, 0.0)
    for s in slices:
        if all(le in s.buckets for le in wanted):
            for le in wanted:
                total[le] += max(s.buckets[le], 0.0)
    return total


def common_edges(canary: Sequence[Slice], primary: Sequence[Slice]) -> list[float]:
    """The finite edges both workloads reported in their latest step with requests (a layout
    that changed during the rollout is compared on its newest form; `pooled_buckets` then sums
    the steps that have all of these edges)."""

    def latest(slices: Sequence[Slice]) -> set[float]:
        found = [s for s in slices if s.buckets and s.buckets.get(math.inf, 0.0) > 0]
        return set(max(found, key=lambda s: s.time).buckets) if found else set()

    return sorted(le for le in latest(canary) & latest(primary) if math.isfinite(le))


def _own(slices: Sequence[Slice]) -> dict[float, float]:
    """The slices' buckets summed on the edges they all share (each workload's own layout)."""
    found = [set(s.buckets) for s in slices if s.buckets]
    if not found:
        return {}
    shared = set.intersection(*found)
    if math.inf not in shared:
        return {}
    return pooled_buckets([s for s in slices if s.buckets], sorted(le for le in shared if math.isfinite(le)))


def _edge_pairs(
    seen: Mapping[float, tuple[float, float]], canary: set[float], primary: set[float], quantile: float
) -> tuple[tuple[float, float] | None, ...]:
    """The three edges the latency test counts at, as (the canary's edge, the primary's edge):
    the one nearest the primary's median, and both edges of the bucket that holds its quantile,
    from the primary's earlier requests (`seen[le]`: requests at or below le, requests, over the
    steps that reported le).

    Each is an edge both sides reported when one is near: for the quantile's edges, the primary's
    share of slower requests within a factor 4 of `1 - quantile`; for the middle, between a
    quarter and three quarters. Otherwise the primary's own edge, paired with the canary's next
    edge at or above it: the canary's requests slower than that are at most its requests slower
    than the primary's edge, so the test stays valid (conservative), whatever the two layouts.
    None where the canary has no such edge."""
    shares = {le: below / total for le, (below, total) in seen.items() if le in primary and total > 0}
    finite_c = sorted(le for le in canary if math.isfinite(le))
    if not shares or not finite_c:
        return (None, None, None)

    def paired(edge: float | None) -> tuple[float, float] | None:
        if edge is None:
            return None
        up = [le for le in finite_c if le >= edge]
        return (up[0], edge) if up else None

    def quantile_edges(bounds: list[float]) -> tuple[float | None, float | None]:
        if not bounds:
            return None, None
        below = [le for le in bounds if shares[le] <= quantile]
        lower = below[-1] if below else bounds[0]
        above = [le for le in bounds if le > lower]
        return lower, (above[0] if above else None)

    def near(le: float | None) -> bool:
        return le is not None and (1 - quantile) / 4 <= 1 - shares[le] <= 4 * (1 - quantile)

    common = sorted(le for le in shares if le in canary)
    own = sorted(shares)
    middle_common = min(common, key=lambda le: abs(shares[le] - 0.5)) if common else None
    if middle_common is not None and 0.25 <= shares[middle_common] <= 0.75:
        middle = paired(middle_common)
    else:
        middle = paired(min(own, key=lambda le: abs(shares[le] - 0.5)))
    lower, upper = quantile_edges(common)
    if not near(lower):
        lower, upper = quantile_edges(own)
    return middle, paired(lower), paired(upper)


def _remember(seen: dict[float, tuple[float, float]], s: Slice) -> None:
    total = s.buckets.get(math.inf)
    if total is None or total <= 0:
        return
    for le, below in s.buckets.items():
        if math.isfinite(le):
            old = seen.get(le, (0.0, 0.0))
            seen[le] = (old[0] + max(below, 0.0), old[1] + total)
