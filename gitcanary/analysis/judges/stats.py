"""Canary against primary for one metric: a one-sided Mann-Whitney U test, an effect-size floor and
the metric's `thresholdRange` as a guard rail. Pure: samples in, verdict out.

Kayenta's judge (Netflix/Spinnaker) does the same per metric: a Mann-Whitney U test on the two
workloads' samples over the analysis window, and a minimum effect so that a significant but tiny
difference is not a regression.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from scipy.stats import mannwhitneyu

from gitcanary.core.observations import Verdict

_FLOOR = re.compile(r"^\s*(?P<kind>[+x])\s*(?P<size>\d+(?:\.\d+)?)\s*(?:pp)?\s*$")


@dataclass(frozen=True)
class EffectFloor:
    """The smallest difference that counts as a regression.

    `pp`: the canary is worse by at least `size` in the metric's own unit (percentage points for a
    percent metric), written ``+0.5``; `ratio`: worse by a factor of at least `size`, written ``x1.1``.
    """

    kind: Literal["pp", "ratio"]
    size: float

    @classmethod
    def parse(cls, text: str) -> EffectFloor:
        match = _FLOOR.match(text)
        if match is None:
            raise ValueError(
                f"effect floor {text!r}: expected +N (difference) or xN (ratio), e.g. +0.5 or x1.1"
            )
        size = float(match["size"])
        if match["kind"] == "x":
            if size < 1:
                raise ValueError(f"effect floor {text!r}: a ratio below 1 would call an improvement worse")
            return cls("ratio", size)
        return cls("pp", size)

    def __str__(self) -> str:
        return f"x{self.size:g}" if self.kind == "ratio" else f"+{self.size:g}"

    def effect(self, canary: float, primary: float, higher_is_worse: bool) -> float:
        """How much worse the canary is, in this floor's terms (difference, or ratio; NaN-free)."""
        if self.kind == "pp":
            return canary - primary if higher_is_worse else primary - canary
        worse, better = (canary, primary) if higher_is_worse else (primary, canary)
        if better <= 0:
            return math.inf if worse > 0 else 1.0
        return worse / better

    def reached(self, canary: float, primary: float, higher_is_worse: bool) -> bool:
        return self.effect(canary, primary, higher_is_worse) >= self.size

    def show(self, canary: float, primary: float, higher_is_worse: bool) -> str:
        """The effect as a commit shows it: ``+0.42pp`` (worse by) or ``x1.31`` (worse by a factor)."""
        value = self.effect(canary, primary, higher_is_worse)
        if self.kind == "pp":
            return f"{value:+.2f}pp"
        return "xinf" if math.isinf(value) else f"x{value:.2f}"


@dataclass(frozen=True)
class Comparison:
    """The verdict on one metric and what it rests on; `reason` is said in the commit line."""

    verdict: Verdict
    canary: float | None
    primary: float | None
    p_value: float | None
    effect: str
    reason: str
    samples: tuple[int, int] = (0, 0)


def one_sided_p(canary: Sequence[float], primary: Sequence[float], higher_is_worse: bool) -> float:
    """P-value of "the canary's samples are stochastically worse than the primary's" (Mann-Whitney U)."""
    alternative = "greater" if higher_is_worse else "less"
    result = mannwhitneyu(canary, primary, alternative=alternative, method="asymptotic")
    p = float(result.pvalue)
    # Every sample equal on both sides (all zero errors) leaves no evidence: p is 1, not NaN.
    return 1.0 if math.isnan(p) else p


def compare(
    canary: Sequence[float],
    primary: Sequence[float],
    *,
    higher_is_worse: bool,
    floor: EffectFloor,
    alpha: float,
    min_samples: int,
    low: float | None = None,
    high: float | None = None,
    now: tuple[float | None, float | None] = (None, None),
) -> Comparison:
    """Judge the canary's samples against the primary's.

    `now` holds both workloads' current values (the metric over its own interval, as Flagger reads
    it): the guard rail (`low`/`high`, the metric's thresholdRange) looks at them, so an incident
    that is over stops holding even while the window still holds it.

    WAIT: fewer than `min_samples` on either side. FAIL: the canary is worse with p < `alpha` and
    by at least the floor; or it is worse with p < `alpha` and beyond the guard rail while the
    primary is within (beyond the rail, the floor is waived). HOLD: both are beyond the guard rail
    (an incident, not the canary's fault). PASS otherwise: noise alone never fails a canary.
    """
    counts = (len(canary), len(primary))
    if min(counts) < min_samples:
        return Comparison(
            Verdict.WAIT,
            fmean(canary) if canary else None,
            fmean(primary) if primary else None,
            None,
            "",
            f"not enough data: {counts[0]} canary / {counts[1]} primary samples, {min_samples} needed",
            counts,
        )
    c, p = fmean(canary), fmean(primary)
    pvalue = one_sided_p(canary, primary, higher_is_worse)
    effect = floor.show(c, p, higher_is_worse)
    significant = pvalue < alpha

    def beyond(value: float | None) -> bool:
        if value is None:
            return False
        return (low is not None and value < low) or (high is not None and value > high)

    def result(verdict: Verdict, reason: str) -> Comparison:
        return Comparison(verdict, c, p, pvalue, effect, reason, counts)

    canary_now, primary_now = now
    if significant and floor.reached(c, p, higher_is_worse):
        return result(Verdict.FAIL, f"canary worse: p < {alpha:.2g} and effect >= {floor}")
    if beyond(canary_now) and beyond(primary_now):
        return result(
            Verdict.HOLD,
            f"incident: primary {primary_now:.4g} beyond the threshold too (canary {canary_now:.4g})",
        )
    if significant and beyond(canary_now):
        return result(
            Verdict.FAIL, f"canary worse: p < {alpha:.2g} and {canary_now:.4g} beyond the threshold"
        )
    return result(Verdict.PASS, "canary not worse")


def per_look_alpha(confidence: float, looks: int) -> float:
    """The significance level of one look so that the whole rollout's is `1 - confidence`.

    Bonferroni over the rollout's looks: if the canary is as good as the primary, the chance that
    any of `looks` analyses fails a metric is at most `looks * alpha_look = 1 - confidence`. A
    rollback needs at least one failed look, so this also bounds the whole-rollout false-rollback
    rate per metric (`threshold` > 1 only lowers it further).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} is not between 0 and 1")
    return (1 - confidence) / max(looks, 1)
