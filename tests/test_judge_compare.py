"""The compare judge against a real Prometheus: both workloads measured by range queries, the canary
judged against the primary (Mann-Whitney U, effect floor, guard rail), waits and holds."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gitcanary.analysis.judges import analyze, looks_of, rollout_start
from gitcanary.analysis.judges.compare import histogram_of
from gitcanary.analysis.judges.settings import JudgeSettings
from gitcanary.analysis.judges.stats import (
    EffectFloor,
    Step,
    beyond_rail,
    compare,
    conditional_p,
    per_look_alpha,
    primary_baseline,
    rail_e_value,
)
from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus, Phase
from tests.prometheus_server import QUERY_AT, PrometheusServer, Traffic, running_prometheus

NS = "prod"
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}


def pair(name: str, canary: dict[str, Any], primary: dict[str, Any]) -> list[Traffic]:
    return [Traffic(name, NS, **canary), Traffic(f"{name}-primary", NS, **primary)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = [
        *pair("same", {"error_ratio": 0.002, "p99_ms": 200}, {"error_ratio": 0.002, "p99_ms": 200}),
        # Latencies are judged on counts of slow requests: 1000 req/s gives them enough to count.
        *pair("slow", {"p99_ms": 300, "rps": 1000}, {"p99_ms": 200, "rps": 1000}),
        *pair("bad", {"error_ratio": 0.05, "p99_ms": 200}, {"error_ratio": 0.0, "p99_ms": 200}),
        *pair("incident", {"error_ratio": 0.2, "p99_ms": 200}, {"error_ratio": 0.2, "p99_ms": 200}),
        *pair("idle", {"rps": 0}, {"p99_ms": 200}),
        # Worse, every sample, but by 2.5%: below the x1.1 floor of a duration.
        *pair("tiny", {"p99_ms": 205, "rps": 1000}, {"p99_ms": 200, "rps": 1000}),
        # Beyond the 500ms guard rail while the primary is within it, by less than the floor.
        # (This layout puts 1.04% of the canary's requests above 500ms and 0.96% of the primary's:
        # 10000 req/s make that small difference evidence.)
        *pair("railed", {"p99_ms": 520, "rps": 10000}, {"p99_ms": 490, "rps": 10000}),
        # The canary's series stop 40s before the look: inside the metrics' 1m interval and the
        # judge's window, outside the look's own 30s.
        *pair("stopped", {"error_ratio": 0.002, "end": QUERY_AT - timedelta(seconds=40)}, {}),
    ]
    # One sample every 5s, so that each 10s step of the judge holds two.
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prometheus"), step=5) as running:
        yield running


def canary(target: str, *metrics: dict[str, Any], max_weight: int = 100, **annotations: str) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {
                "name": target,
                "namespace": NS,
                "annotations": {"gitcanary.io/judge": "compare", **annotations},
            },
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "service": {"port": 80},
                "analysis": {
                    "interval": "30s",
                    "threshold": 2,
                    "stepWeight": 10,
                    "maxWeight": max_weight,
                    "metrics": list(metrics),
                },
            },
        }
    )


def judged(
    server: PrometheusServer,
    subject: Canary,
    templates: dict[str, MetricTemplate] | None = None,
    status: CanaryStatus | None = None,
    judge: str = "threshold",
) -> dict[str, CheckResult]:
    checks = analyze(
        subject, templates or {}, default_address=server.url, now=QUERY_AT, judge=judge, status=status
    )
    return {check.name: check for check in checks}


def test_same_as_primary_passes_with_both_values(server: PrometheusServer) -> None:
    checks = judged(server, canary("same", SUCCESS, DURATION))
    success, duration = checks["request-success-rate"], checks["request-duration"]
    assert success.verdict is Verdict.PASS and duration.verdict is Verdict.PASS
    assert success.value == pytest.approx(99.8) and success.primary == pytest.approx(99.8)
    assert duration.value == pytest.approx(200) and duration.primary == pytest.approx(200)
    assert success.p_value is not None and success.p_value > 0.3
    assert duration.p_value is not None and duration.p_value > 0.3
    assert duration.line.startswith("request-duration canary 200ms primary 200ms p=")


def test_slower_canary_fails_duration_only(server: PrometheusServer) -> None:
    checks = judged(server, canary("slow", SUCCESS, DURATION))
    duration = checks["request-duration"]
    assert duration.verdict is Verdict.FAIL and not duration.ok
    assert duration.effect == "x1.50" and duration.p_value is not None and duration.p_value < 1e-4
    assert "canary 300ms primary 200ms" in duration.line and "failed" in duration.line
    assert checks["request-success-rate"].verdict is Verdict.PASS


def test_more_errors_fail_success_rate(server: PrometheusServer) -> None:
    success = judged(server, canary("bad", SUCCESS))["request-success-rate"]
    assert success.verdict is Verdict.FAIL
    assert success.value == pytest.approx(95) and success.primary == pytest.approx(100)
    assert success.effect == "+5.00pp"


def test_incident_on_both_holds(server: PrometheusServer) -> None:
    success = judged(server, canary("incident", SUCCESS))["request-success-rate"]
    assert success.verdict is Verdict.HOLD and "incident" in success.line
    assert success.value == pytest.approx(80) and success.primary == pytest.approx(80)


def test_no_canary_data_waits(server: PrometheusServer) -> None:
    checks = judged(server, canary("idle", SUCCESS, DURATION))
    for check in checks.values():
        assert check.verdict is Verdict.WAIT and not check.ok
        assert "no current data: the canary served no requests in this look's window (30s)" in check.line


def test_series_that_stopped_is_no_current_data_for_both_judges(server: PrometheusServer) -> None:
    """Issue 27: the canary's series stopped 40s ago. The compare judge waits (no current data), the
    threshold judge fails the check (Prometheus still answers from the stopped series over 1m)."""
    subject = canary("stopped", SUCCESS, DURATION)
    for check in judged(server, subject, judge="compare").values():
        assert check.verdict is Verdict.WAIT and not check.ok
        assert "no current data: the canary served no requests in this look's window (30s)" in check.line
    value = server.query(
        'sum(rate(istio_requests_total{destination_workload="stopped"}[1m]))', QUERY_AT
    )
    assert value, "Prometheus answers from the stopped series: the value is stale, not missing"
    flagger = canary("stopped", SUCCESS, DURATION, **{"gitcanary.io/judge": "threshold"})
    success = judged(server, flagger)["request-success-rate"]
    assert not success.ok and success.value is None
    assert "no current data: the newest sample of istio_requests_total{" in success.line
    assert "is 40s old, older than this look's window (30s)" in success.line


def test_significant_but_below_the_floor_passes_and_the_floor_is_per_metric(
    server: PrometheusServer,
) -> None:
    assert judged(server, canary("tiny", DURATION))["request-duration"].verdict is Verdict.PASS
    # 300ms against 200ms is significant; with a floor of x2 for this metric it passes.
    lenient = canary("slow", DURATION, **{"gitcanary.io/judge-effect": "request-duration=x2"})
    assert judged(server, canary("slow", DURATION))["request-duration"].verdict is Verdict.FAIL
    lenient_check = judged(server, lenient)["request-duration"]
    assert lenient_check.verdict is Verdict.PASS and lenient_check.p_value is not None
    assert lenient_check.p_value < 1e-4


def test_threshold_range_is_a_guard_rail(server: PrometheusServer) -> None:
    duration = judged(server, canary("railed", DURATION))["request-duration"]
    assert duration.verdict is Verdict.FAIL and "beyond the threshold" in duration.line


def test_window_starts_with_the_rollout(server: PrometheusServer) -> None:
    status = CanaryStatus.model_validate(
        {
            "phase": Phase.PROGRESSING,
            "lastAppliedSpec": "a",
            "lastPromotedSpec": "b",
            "rolloutId": f"1..2/{(QUERY_AT - timedelta(seconds=30)).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "lastTransitionTime": QUERY_AT,
        }
    )
    assert rollout_start(status) == QUERY_AT - timedelta(seconds=30)
    # 30s since the start, 10 req/s on each side: every look's own window holds requests of both
    # sides, so the look passes; no fixed count of steps is asked for.
    same = judged(server, canary("same", SUCCESS, DURATION), status=status)
    assert same["request-success-rate"].verdict is Verdict.PASS
    assert same["request-duration"].verdict is Verdict.PASS
    # Counted errors are evidence at any time: 5% against 0% fails at the first look.
    success = judged(server, canary("bad", SUCCESS), status=status)["request-success-rate"]
    assert success.verdict is Verdict.FAIL and "canary worse: p <=" in success.line
    # At the last weight a pass promotes, and needs the requests of the power calculation (+2
    # points over the primary's 0.2% at 90%: 196), or the metric's override: 300 canary requests
    # are enough for the first, not for 1000.
    final = status.model_copy(update={"canary_weight": 90})
    sized = judged(server, canary("same", SUCCESS, max_weight=90), status=final)["request-success-rate"]
    assert sized.verdict is Verdict.PASS
    more = {"gitcanary.io/judge-requests": "request-success-rate=1000"}
    waiting = judged(server, canary("same", SUCCESS, max_weight=90, **more), status=final)
    assert waiting["request-success-rate"].verdict is Verdict.WAIT
    assert "not enough requests to promote: 300 of 1000" in waiting["request-success-rate"].line
    # Not the last weight: the same look advances.
    assert judged(server, canary("same", SUCCESS, **more), status=final)["request-success-rate"].ok


def test_template_is_rendered_for_both_workloads(server: PrometheusServer) -> None:
    query = (
        'sum(rate(istio_requests_total{destination_workload="{{ target }}",response_code="500"}'
        '[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload="{{ target }}"}'
        "[{{ interval }}])) * 100"
    )
    template = MetricTemplate.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "errors", "namespace": NS},
            "spec": {"provider": {"type": "prometheus"}, "query": query},
        }
    )
    metric = {"name": "error-rate", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
    check = judged(server, canary("bad", metric), {f"{NS}/errors": template})["error-rate"]
    assert check.value == pytest.approx(5) and check.primary == pytest.approx(0)
    # An error ratio: its floor is in points (+0.5), not a ratio.
    assert check.verdict is Verdict.FAIL and check.effect == "+5.00pp"
    # Another name bounded above is a cost: a ratio floor, and the primary's zero makes it infinite.
    metric = {"name": "cost", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
    check = judged(server, canary("bad", metric), {f"{NS}/errors": template})["cost"]
    assert check.verdict is Verdict.FAIL and check.effect == "xinf"


def test_a_template_bounded_below_is_worse_lower(server: PrometheusServer) -> None:
    query = (
        'sum(rate(istio_requests_total{destination_workload="{{ target }}",response_code="200"}'
        '[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload="{{ target }}"}'
        "[{{ interval }}])) * 100"
    )
    template = MetricTemplate.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "ok-rate", "namespace": NS},
            "spec": {"provider": {"type": "prometheus"}, "query": query},
        }
    )
    metric = {"name": "ok-rate", "templateRef": {"name": "ok-rate"}, "thresholdRange": {"min": 90}}
    bad = judged(server, canary("bad", metric), {f"{NS}/ok-rate": template})["ok-rate"]
    assert bad.verdict is Verdict.FAIL and bad.effect == "+5.00pp"  # 95 against 100: worse by 5 points
    same = judged(server, canary("same", metric), {f"{NS}/ok-rate": template})["ok-rate"]
    assert same.verdict is Verdict.PASS


def test_repository_default_and_annotation_choose_the_judge(server: PrometheusServer) -> None:
    plain = canary("slow", DURATION)
    plain.metadata.annotations.pop("gitcanary.io/judge")
    # Threshold (Flagger's): 300ms is within 500ms, whatever the primary does.
    threshold = judged(server, plain)["request-duration"]
    assert threshold.ok and threshold.primary is None
    assert threshold.line == "request-duration 300ms <= 500ms ok"
    assert judged(server, plain, judge="compare")["request-duration"].verdict is Verdict.FAIL
    overridden = canary("slow", DURATION, **{"gitcanary.io/judge": "threshold"})
    assert judged(server, overridden, judge="compare")["request-duration"].ok


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"gitcanary.io/judge": "kayenta"}, "'kayenta' is not one of threshold, compare"),
        ({"gitcanary.io/judge-confidence": "2"}, "judge-confidence"),
        ({"gitcanary.io/judge-step": "soon"}, "judge-step"),
        ({"gitcanary.io/judge-effect": "request-duration=big"}, "effect floor 'big'"),
        ({"gitcanary.io/judge-min-samples": "1"}, "judge-min-samples"),
    ],
)
def test_bad_annotations_fail_every_check_with_the_reason(
    server: PrometheusServer, annotations: dict[str, str], message: str
) -> None:
    checks = judged(server, canary("same", SUCCESS, DURATION, **annotations))
    for check in checks.values():
        assert check.verdict is Verdict.FAIL and message in check.line


# --- statistics, pure ---------------------------------------------------------------------------


def test_mann_whitney_and_floor() -> None:
    floor = EffectFloor.parse("x1.1")
    primary = [100.0, 102, 98, 101, 99, 100, 103, 97]
    slower = [value * 1.3 for value in primary]
    worse = compare(slower, primary, higher_is_worse=True, floor=floor, alpha=0.002, min_samples=6)
    assert worse.verdict is Verdict.FAIL and worse.p_value is not None and worse.p_value < 0.002
    better = compare(primary, slower, higher_is_worse=True, floor=floor, alpha=0.002, min_samples=6)
    assert better.verdict is Verdict.PASS and better.p_value is not None and better.p_value > 0.9
    ties = compare([0.0] * 8, [0.0] * 8, higher_is_worse=True, floor=floor, alpha=0.02, min_samples=6)
    assert ties.verdict is Verdict.PASS and ties.p_value == 1.0
    few = compare(slower[:5], primary, higher_is_worse=True, floor=floor, alpha=0.02, min_samples=6)
    assert few.verdict is Verdict.WAIT


@pytest.mark.parametrize(
    ("text", "kind", "size"), [("+0.5", "pp", 0.5), ("x1.1", "ratio", 1.1), (" +2pp ", "pp", 2.0)]
)
def test_effect_floor_parse(text: str, kind: str, size: float) -> None:
    floor = EffectFloor.parse(text)
    assert (floor.kind, floor.size) == (kind, size)


@pytest.mark.parametrize("text", ["0.5", "x0.9", "-1", "x", ""])
def test_effect_floor_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="effect floor"):
        EffectFloor.parse(text)


def test_per_look_alpha_splits_the_confidence_over_the_rollout() -> None:
    assert per_look_alpha(0.98, 10) == pytest.approx(0.002)
    subject = canary("same", SUCCESS)  # stepWeight 10 to 100: ten weights, then the look at 100
    assert looks_of(subject) == 11
    with pytest.raises(ValueError):
        per_look_alpha(1.0, 3)


def test_settings_defaults() -> None:
    settings = JudgeSettings.of(canary("same"))
    assert (settings.confidence, settings.range, settings.window_seconds, settings.min_samples) == (
        0.98, "15s", 180.0, 6,
    )  # fmt: skip
    with pytest.raises(AnalysisError, match="judge-step: 5s is below 10s"):
        JudgeSettings.of(canary("same", **{"gitcanary.io/judge-step": "5s"}))
    with pytest.raises(AnalysisError, match="judge-window"):
        JudgeSettings.of(canary("same", **{"gitcanary.io/judge-window": "5s"}))


def test_guard_rail_reads_current_values_and_needs_evidence() -> None:
    floor = EffectFloor.parse("+0.5")
    primary = [99.8, 100, 99.7, 100, 99.9, 100, 99.8, 100]
    noisy = [100, 100, 95, 100, 100, 100, 100, 100]  # one error in few requests: not evidence

    def judge(canary: list[float], now: tuple[float | None, float | None]) -> Verdict:
        return compare(
            canary, primary, higher_is_worse=False, floor=floor, alpha=0.002, min_samples=6, low=99, now=now
        ).verdict

    assert judge(noisy, (97.0, 99.9)) is Verdict.PASS  # beyond the rail now, but no evidence
    worse = [value - 0.3 for value in primary]  # every sample worse, by less than the floor
    assert judge(worse, (98.9, 99.9)) is Verdict.FAIL  # beyond the rail: the floor is waived
    assert judge(worse, (99.2, 99.9)) is Verdict.PASS  # within the rail: below the floor passes
    assert judge(primary, (90.0, 91.0)) is Verdict.HOLD  # both beyond now: an incident
    assert judge(primary, (99.9, 99.8)) is Verdict.PASS  # the incident is over


def test_validate_names_bad_judge_annotations(tmp_path: Path) -> None:
    from gitcanary.commands.validate import validate
    from gitcanary.manifests import yamlio

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "istio", repo)
    canary_file = repo / "apps" / "backend" / "canary.yaml"
    doc = yamlio.load(canary_file.read_text())
    doc["metadata"]["annotations"] = {"gitcanary.io/judge": "compare", "gitcanary.io/judge-window": "1s"}
    canary_file.write_text(yamlio.dump(doc))
    errors, _ = validate(repo)
    assert errors == ["apps/backend/canary.yaml: annotation gitcanary.io/judge-window: 1s is below 10s"]
    doc["metadata"]["annotations"] = {"gitcanary.io/judge": "compare"}
    canary_file.write_text(yamlio.dump(doc))
    assert validate(repo)[0] == []


# --- counts: the group-sequential test on bad requests, pure -------------------------------------


def steps(requests: float, bad: float, n: int) -> list[Step]:
    return [Step(requests, bad)] * n


def mid_p_oracle(canary_bad: list[int], primary_bad: list[int], shares: list[float]) -> float:
    """The mid-p by brute force: every split of each step's bad requests between the workloads,
    with its binomial probability (scipy), summed where the canary's total is above the observed
    (half where equal)."""
    import itertools

    from scipy.stats import binom

    totals = [c + p for c, p in zip(canary_bad, primary_bad, strict=True)]
    observed = sum(canary_bad)
    above = equal = 0.0
    for split in itertools.product(*(range(n + 1) for n in totals)):
        probability = math.prod(
            float(binom.pmf(k, n, q)) for k, n, q in zip(split, totals, shares, strict=True)
        )
        if sum(split) > observed:
            above += probability
        elif sum(split) == observed:
            equal += probability
    return above + equal / 2


@pytest.mark.parametrize(
    ("canary_steps", "primary_steps", "shares"),
    [
        # Weight 10%: 2 and 1 canary errors against 1 and 0 on the primary.
        ([Step(20, 2), Step(20, 1)], [Step(180, 1), Step(180, 0)], [0.1, 0.1]),
        # The weights differ per step (10%, 30%, 50%): each step has its own share.
        ([Step(10, 1), Step(30, 2), Step(50, 3)], [Step(90, 2), Step(70, 1), Step(50, 2)], [0.1, 0.3, 0.5]),
        # The canary better: a large p.
        ([Step(50, 0), Step(50, 1)], [Step(50, 3), Step(50, 4)], [0.5, 0.5]),
    ],
)
def test_conditional_p_is_the_mid_p_of_the_steps_binomials(
    canary_steps: list[Step], primary_steps: list[Step], shares: list[float]
) -> None:
    expected = mid_p_oracle(
        [round(c.bad) for c in canary_steps], [round(p.bad) for p in primary_steps], shares
    )
    assert conditional_p(canary_steps, primary_steps) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("canary_steps", "primary_steps", "expected"),
    [
        # No bad requests anywhere, or a side without requests: no evidence.
        (steps(100, 0, 5), steps(100, 0, 5), 1.0),
        (steps(0, 0, 5), steps(100, 5, 5), 1.0),
    ],
)
def test_conditional_p_without_evidence_is_one(
    canary_steps: list[Step], primary_steps: list[Step], expected: float
) -> None:
    assert conditional_p(canary_steps, primary_steps) == expected


def test_conditional_p_rounds_only_the_totals() -> None:
    """Prometheus spreads one error over two 10s steps as 0.67 and 0.67 (a counter's first increase
    is not extrapolated back past zero). That is one error of the canary, not two: the p-value is
    the mid-p of one bad request out of one, at the canary's share of requests."""
    canary_steps, primary_steps = [Step(5.33, 0.67), Step(5.33, 0.67)], steps(54, 0.0, 2)
    share = 5.33 / 59.33
    assert conditional_p(canary_steps, primary_steps) == pytest.approx(share / 2, rel=1e-9)


def test_conditional_p_of_many_bad_requests_is_the_normal_approximation() -> None:
    # 2000 and 2400 bad requests at equal shares: z = 200 / sqrt(4400 / 4) = 6.03.
    from scipy.stats import norm

    p = conditional_p(steps(10000, 240, 10), steps(10000, 200, 10))
    assert p == pytest.approx(float(norm.sf(200 / math.sqrt(4400 / 4))), rel=1e-6)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'histogram_quantile(0.99, sum(rate(x_bucket{a="{{ target }}"}[{{ interval }}])) by (le))',
            (0.99, 'sum(rate(x_bucket{a="{{ target }}"}[{{ interval }}])) by (le)'),
        ),
        (
            "histogram_quantile(0.5,\n sum by (le) (rate(y_bucket[1m])))",
            (0.5, "sum by (le) (rate(y_bucket[1m]))"),
        ),
        ("histogram_quantile(0.95, sum(rate(y_bucket[1m])) by (le, path))", None),
        ("sum(rate(y_sum[1m])) / sum(rate(y_count[1m]))", None),  # an average: Mann-Whitney
    ],
)
def test_histogram_of_reads_quantile_queries(query: str, expected: tuple[float, str] | None) -> None:
    assert histogram_of(query) == expected


@pytest.mark.parametrize(
    ("primary", "canary_volumes", "expected"),
    [
        # The primary got more requests than the canary in the window (from t=100): its window.
        ([(50.0, 1.0, 180.0), (100.0, 2.0, 160.0), (110.0, 3.0, 140.0)], [20.0, 40.0], [2.0, 3.0]),
        # Weight 90%: the primary got 20 a step, the canary 180. Its baseline is its steps since the
        # rollout began with at least 90 requests (half the canary's median): the early ones.
        (
            [
                (10.0, 1.0, 180.0),
                (20.0, 2.0, 100.0),
                (30.0, 3.0, 80.0),
                (100.0, 9.0, 20.0),
                (110.0, 8.0, 20.0),
            ],
            [180.0, 180.0],
            [1.0, 2.0],
        ),
    ],
)
def test_primary_baseline_widens_when_the_primary_gets_less_traffic(
    primary: list[tuple[float, float, float]], canary_volumes: list[float], expected: list[float]
) -> None:
    assert primary_baseline(primary, 100.0, canary_volumes) == expected


def test_beyond_rail_is_a_one_sided_binomial_test() -> None:
    assert beyond_rail(Step(1000, 25), 0.01, 0.0018)  # P(X >= 25 | 1000, 1%) ~ 1e-5
    assert not beyond_rail(Step(1000, 15), 0.01, 0.0018)  # ~ 0.08
    assert not beyond_rail(Step(0, 0), 0.01, 0.0018)


def rail_oracle(bad: int, requests: int, null: float) -> float:
    """The rail's e-value of pooled counts, computed on the totals: binomial likelihoods of the
    total bad requests (scipy), alternatives 2, 4 and 8 times the null, equal weights. For a
    constant null the per-step product equals this (the binomial coefficients cancel)."""
    from scipy.stats import binom

    return float(
        np.mean([binom.pmf(bad, requests, r * null) / binom.pmf(bad, requests, null) for r in (2, 4, 8)])
    )


@pytest.mark.parametrize(
    ("canary_steps", "primary_steps", "null"),
    [
        # 2 req/s at weight 50%: 10 requests a step, 5% bad; a clean primary: the null is the rail.
        (
            [Step(10, 1), Step(10, 0), Step(10, 1), Step(10, 0), Step(10, 0), Step(10, 1)],
            steps(10, 0, 6),
            0.01,
        ),
        # A primary at 3% in every step: the null is its share, not the 1% rail.
        ([Step(10, 1)] * 8, [Step(100, 3)] * 8, 0.03),
        # No errors at all: evidence against.
        (steps(50, 0, 10), steps(50, 0, 10), 0.01),
    ],
)
def test_rail_e_value_is_the_likelihood_ratio_of_the_pooled_counts(
    canary_steps: list[Step], primary_steps: list[Step], null: float
) -> None:
    bad = round(sum(s.bad for s in canary_steps))
    requests = round(sum(s.requests for s in canary_steps))
    expected = rail_oracle(bad, requests, null)
    assert rail_e_value(canary_steps, primary_steps, 0.01) == pytest.approx(expected, rel=1e-9)


def test_rail_e_value_bounds_the_whole_rollouts_false_alarms() -> None:
    """A canary exactly at the 1% rail (the worst case the rail's null allows), 2 req/s, weights
    10..100: the share of rollouts in which the pooled rail evidence EVER reaches 50 stays under 2%,
    looking at every step."""
    rng = np.random.default_rng(7)
    rollouts, alarms = 300, 0
    for _ in range(rollouts):
        canary_steps: list[Step] = []
        primary_steps: list[Step] = []
        for weight in range(10, 101, 10):
            for _ in range(6):
                c, p = rng.poisson(20 * weight / 100), rng.poisson(20 * (100 - weight) / 100)
                canary_steps.append(Step(c, rng.binomial(c, 0.01)))
                primary_steps.append(Step(p, rng.binomial(p, 0.002)))
                if rail_e_value(canary_steps, primary_steps, 0.01) >= 50:
                    break
            else:
                continue
            alarms += 1
            break
    assert alarms / rollouts <= 0.02


