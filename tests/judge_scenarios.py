"""A scenario generator for the compare judge at its pure level (`gitcanary.analysis.judges.looks`):
whole rollouts of per-step counts and histograms, replayed look by look as the reconciler would.

Traffic is numpy's (a seeded `Generator`): Poisson requests split by the weight, binomial errors,
multinomial latencies (lognormal) over each side's own bucket layout. What a scenario can hold:
request rates from 0.1 to 1,000 req/s, baselines, effects, bucket layouts (random subsets and
shifts of Istio's edges, different per side, changing mid-rollout), gaps, series that stop, counter
resets, bursts, incidents on either side, diurnal load, regressions starting at any look.

The rollout follows `gitcanary.core.rollout`: stepWeight 10 to 100, interval 30s, threshold 2; a
look with a failed check halts (and a second rolls back), a wait or hold keeps the weight
(bounded: 10 intervals for a wait, 600s for an incident), a pass advances, and a pass at 100%
promotes. The oracles of each look (`Look.current_canary`, `Look.rail_breach`) are computed here
from the generator's own counts, independently of the judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import lognorm

from gitcanary.analysis.judges.looks import (
    LookPlan,
    Rule,
    Slice,
    judge_latency,
    judge_ratio,
    latency_requests_needed,
    ratio_requests_needed,
)
from gitcanary.analysis.judges.stats import EffectFloor
from gitcanary.core.observations import Verdict

STEP = 10.0
INTERVAL = 30.0
STEPS_PER_LOOK = int(INTERVAL / STEP)
ISTIO_EDGES = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
SIGMA = 0.47
Z99 = 2.326
CONFIDENCE = 0.98
MAX_WAIT = 10  # intervals
HOLD_DEADLINE = 600.0  # seconds
HISTORY = 18  # primary steps before the rollout (judge-window 3m)


@dataclass(frozen=True)
class Scenario:
    rps: float = 20.0
    base_errors: float = 0.002
    base_p99: float = 300.0
    errors: float = 0.0  # extra 5xx share of the canary once the regression starts
    latency: float = 1.0  # factor on the canary's latencies once it starts
    regression_look: int = 0  # the look (1-based) from which the canary is bad; 0: from the start
    canary_layout: tuple[float, ...] = ISTIO_EDGES
    primary_layout: tuple[float, ...] = ISTIO_EDGES
    layout_change_step: int | None = None  # from this step the canary reports `changed_layout`
    changed_layout: tuple[float, ...] = ISTIO_EDGES
    canary_gaps: tuple[int, ...] = ()  # steps without a canary sample
    primary_gaps: tuple[int, ...] = ()
    canary_stops: int | None = None  # from this step on the canary reports nothing
    resets: tuple[int, ...] = ()  # steps in which a counter reset loses part of the count
    canary_bursts: tuple[int, ...] = ()  # steps with 30% errors on the canary alone
    both_bursts: tuple[int, ...] = ()  # steps with 10% errors on both
    incident: tuple[int, int] | None = None  # (first step, steps): 30% errors on both
    primary_incident: tuple[int, int] | None = None  # the same on the primary alone
    diurnal: bool = False

    @property
    def healthy(self) -> bool:
        return self.errors == 0 and self.latency == 1.0


@dataclass
class Look:
    number: int
    time: float
    weight: int
    verdicts: tuple[Verdict, ...]
    current_canary: bool  # oracle: the canary reported requests in this look's window
    rail_breach: tuple[bool, bool]  # oracle, per metric: canary beyond its rail now, primary within
    bad: bool  # the regression had started


@dataclass
class Rollout:
    scenario: Scenario
    looks: list[Look] = field(default_factory=list)
    outcome: str = "unfinished"
    onset_look: int | None = None  # the first look whose window holds the regression
    first_failure: int | None = None
    failed_looks: int = 0  # looks with a failed check on evidence
    wait_failures: int = 0  # waits past their bound (too few requests, no current data)

    @property
    def detection(self) -> int | None:
        """Intervals from the regression's onset to the first failed look (1: the onset look)."""
        if self.first_failure is None or self.onset_look is None:
            return None
        return self.first_failure - self.onset_look + 1


def _probabilities(edges: np.ndarray, p99: float) -> np.ndarray:
    median = p99 / math.exp(Z99 * SIGMA)
    cdf = lognorm.cdf(edges, s=SIGMA, scale=median)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _quantile(cumulative: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile, written as its Go source reads (an oracle apart from the
    judge's): the first bucket whose count reaches the rank, linear inside it."""
    total = cumulative.get(math.inf, 0.0)
    edges = sorted(le for le in cumulative if math.isfinite(le))
    if total <= 0 or not edges:
        return None
    rank = q * total
    previous_edge, previous_count = 0.0, 0.0
    for le in edges:
        count = cumulative[le]
        if count >= rank:
            if count == previous_count:
                return le
            return previous_edge + (le - previous_edge) * (rank - previous_count) / (count - previous_count)
        previous_edge, previous_count = le, count
    return edges[-1]


class Traffic:
    """Per-step slices of both workloads, drawn as the rollout's weights come."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.s = scenario
        self.rng = rng
        layouts = {scenario.canary_layout, scenario.primary_layout, scenario.changed_layout}
        self.edges = np.array(sorted({le for layout in layouts for le in layout}), dtype=float)
        self.canary: list[Slice] = []
        self.primary: list[Slice] = []
        self.probabilities: dict[float, np.ndarray] = {}

    def _bins(self, p99: float) -> np.ndarray:
        if p99 not in self.probabilities:
            self.probabilities[p99] = _probabilities(self.edges, p99)
        return self.probabilities[p99]

    def history(self) -> None:
        for step in range(-HISTORY, 0):
            self.draw(step, 0, bad=False)

    def draw(self, step: int, weight: int, bad: bool) -> None:
        s, rng = self.s, self.rng
        t = (step + 1) * STEP
        rate = s.rps * (0.6 + 0.4 * math.cos(2 * math.pi * max(t, 0.0) / 600)) if s.diurnal else s.rps
        total = int(rng.poisson(rate * STEP))
        to_canary = int(rng.binomial(total, weight / 100))
        error_c = error_p = s.base_errors
        if step in s.both_bursts:
            error_c = error_p = 0.10
        for incident, both in ((s.incident, True), (s.primary_incident, False)):
            if incident is not None and incident[0] <= step < incident[0] + incident[1]:
                error_p = 0.30
                error_c = 0.30 if both else error_c
        if step in s.canary_bursts:
            error_c = 0.30
        if bad:
            error_c = min(error_c + s.errors, 1.0)
        layout_c = s.canary_layout
        if s.layout_change_step is not None and step >= s.layout_change_step:
            layout_c = s.changed_layout
        for side, n, errors, factor, layout in (
            ("canary", to_canary, error_c, s.latency if bad else 1.0, layout_c),
            ("primary", total - to_canary, error_p, 1.0, s.primary_layout),
        ):
            if step in s.resets:
                n = int(rng.binomial(n, rng.uniform(0.2, 0.9)))  # the part counted before the reset
            bad_requests = float(rng.binomial(n, errors))
            placed = rng.multinomial(n, self._bins(s.base_p99 * factor))
            cumulative = np.cumsum(placed[: len(self.edges)])
            kept = {float(le): float(c) for le, c in zip(self.edges, cumulative, strict=True) if le in layout}
            kept[math.inf] = float(n)
            missing = (
                step in (s.canary_gaps if side == "canary" else s.primary_gaps)
                or (side == "canary" and s.canary_stops is not None and step >= s.canary_stops)
            )
            if missing:
                continue  # no sample: unknown, not zero
            (self.canary if side == "canary" else self.primary).append(Slice(t, float(n), bad_requests, kept))


def rail_breach(
    canary: list[Slice], primary: list[Slice], start: float, end: float, rails: tuple[float, float]
) -> tuple[bool, bool]:
    """Oracle: in (start, end], is the canary's success rate below `rails[0]` or its p99 (its own
    layout, summed over the steps that share it) above `rails[1]`, while the primary's is not (or
    the primary has no requests)?"""

    def values(slices: list[Slice]) -> tuple[float | None, float | None]:
        inside = [s for s in slices if start < s.time <= end and s.requests > 0]
        requests = sum(s.requests for s in inside)
        if requests <= 0:
            return None, None
        success = 100 - 100 * sum(s.bad for s in inside) / requests
        shared = set.intersection(*(set(s.buckets) for s in inside))
        summed = {le: sum(s.buckets[le] for s in inside) for le in shared}
        return success, _quantile(summed, 0.99)

    c, p = values(canary), values(primary)
    low_c = c[0] is not None and c[0] < rails[0]
    low_p = p[0] is not None and p[0] < rails[0]
    high_c = c[1] is not None and c[1] > rails[1]
    high_p = p[1] is not None and p[1] > rails[1]
    return (low_c and not low_p, high_c and not high_p)


def replay(scenario: Scenario, seed: int, max_looks: int = 40) -> Rollout:
    """One rollout of `scenario`, judged look by look on both metrics (success rate on counts,
    p99 from histograms)."""
    rng = np.random.default_rng(seed)
    traffic = Traffic(scenario, rng)
    traffic.history()
    rollout = Rollout(scenario)
    rails = (99.0, 1.6 * scenario.base_p99)
    success_rule = Rule(False, EffectFloor("pp", 0.5), low=rails[0])
    latency_rule = Rule(True, EffectFloor("ratio", 1.1), high=rails[1])
    alpha = 1 - CONFIDENCE
    weight, failed = 10, 0
    waiting_since: float | None = None
    holding_since: float | None = None
    step = 0
    for number in range(1, max_looks + 1):
        bad = not scenario.healthy and number >= max(scenario.regression_look, 1)
        if bad and rollout.onset_look is None:
            rollout.onset_look = number
        for _ in range(STEPS_PER_LOOK):
            traffic.draw(step, weight, bad)
            step += 1
        now = step * STEP
        plan = LookPlan(
            now=now,
            window=INTERVAL,
            since=0.0,
            reset=0.0,
            alpha=alpha,
            needed=0.0,
            primary_expected=weight < 100,
            final=weight >= 100,
        )
        primary_now = [s for s in traffic.primary if s.time > 0]
        verdicts = (
            judge_ratio(
                traffic.canary,
                primary_now,
                _with(plan, ratio_requests_needed(primary_now, success_rule.floor, alpha)),
                success_rule,
            ).verdict,
            judge_latency(
                traffic.canary,
                traffic.primary,
                _with(plan, latency_requests_needed(alpha)),
                latency_rule,
                0.99,
            ).verdict,
        )
        current = any(now - INTERVAL < s.time <= now and s.requests > 0 for s in traffic.canary)
        breach = rail_breach(traffic.canary, traffic.primary, now - INTERVAL, now, rails)
        rollout.looks.append(Look(number, now, weight, verdicts, current, breach, bad))
        if Verdict.FAIL in verdicts:
            rollout.failed_looks += 1
            failed += 1
            waiting_since = holding_since = None
            if rollout.first_failure is None and bad:
                rollout.first_failure = number
            if failed >= 2:
                rollout.outcome = "rolled back"
                return rollout
            continue
        if Verdict.HOLD in verdicts:
            waiting_since = None
            holding_since = now if holding_since is None else holding_since
            if now - holding_since >= HOLD_DEADLINE:
                rollout.outcome = "rolled back"
                return rollout
            continue
        if Verdict.WAIT in verdicts:
            holding_since = None
            waiting_since = now if waiting_since is None else waiting_since
            if now - waiting_since >= MAX_WAIT * INTERVAL:
                failed += 1  # a wait past its bound is a failed check
                rollout.wait_failures += 1
                waiting_since = None
                if failed >= 2:
                    rollout.outcome = "rolled back"
                    return rollout
            continue
        waiting_since = holding_since = None
        if weight >= 100:
            rollout.outcome = "promoted"
            return rollout
        weight = min(weight + 10, 100)
    return rollout


def _with(plan: LookPlan, needed: float) -> LookPlan:
    from dataclasses import replace

    return replace(plan, needed=needed)


def summary(rollouts: list[Rollout]) -> dict[str, float | int | None]:
    """Outcomes of a family of rollouts: how many, rolled back, promoted, median detection."""
    detections = [r.detection for r in rollouts if r.detection is not None]
    return {
        "runs": len(rollouts),
        "rolled_back": sum(r.outcome == "rolled back" for r in rollouts),
        "promoted": sum(r.outcome == "promoted" for r in rollouts),
        "median_detection": float(np.median(detections)) if detections else None,
    }
