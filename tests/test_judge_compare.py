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
from gitcanary.analysis.judges.settings import JudgeSettings
from gitcanary.analysis.judges.stats import (
    EffectFloor,
    Step,
    beyond_rail,
    compare,
    compare_counts,
    e_value,
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
        *pair("slow", {"p99_ms": 300}, {"p99_ms": 200}),
        *pair("bad", {"error_ratio": 0.05, "p99_ms": 200}, {"error_ratio": 0.0, "p99_ms": 200}),
        *pair("incident", {"error_ratio": 0.2, "p99_ms": 200}, {"error_ratio": 0.2, "p99_ms": 200}),
        *pair("idle", {"rps": 0}, {"p99_ms": 200}),
        # Worse, every sample, but by 2.5%: below the x1.1 floor of a duration.
        *pair("tiny", {"p99_ms": 205}, {"p99_ms": 200}),
        # Beyond the 500ms guard rail while the primary is within it, by less than the floor.
        *pair("railed", {"p99_ms": 520}, {"p99_ms": 490}),
    ]
    # One sample every 5s, so that each 10s step of the judge holds two.
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prometheus"), step=5) as running:
        yield running


def canary(target: str, *metrics: dict[str, Any], **annotations: str) -> Canary:
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
                "analysis": {"interval": "30s", "threshold": 2, "stepWeight": 10, "metrics": list(metrics)},
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
    assert success.p_value is not None and success.p_value > 0.5
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
        assert "not enough data: 0 canary" in check.line


def test_significant_but_below_the_floor_passes_and_the_floor_is_per_metric(
    server: PrometheusServer,
) -> None:
    assert judged(server, canary("tiny", DURATION))["request-duration"].verdict is Verdict.PASS
    strict = canary("tiny", DURATION, **{"gitcanary.io/judge-effect": "request-duration=x1.02"})
    assert judged(server, strict)["request-duration"].verdict is Verdict.FAIL


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
    # 30s since the start at a 10s step: 3 windows a side, fewer than the 6 needed.
    same = judged(server, canary("same", SUCCESS, DURATION), status=status)
    assert same["request-success-rate"].verdict is Verdict.WAIT
    assert "3 canary / 3 primary samples with requests, 3 on both sides" in same["request-success-rate"].line
    assert (
        same["request-duration"].verdict is Verdict.WAIT
        and "3 canary / 3 primary" in same["request-duration"].line
    )
    # Counted errors are evidence at any time: 5% against 0% fails before 6 samples.
    success = judged(server, canary("bad", SUCCESS), status=status)["request-success-rate"]
    assert success.verdict is Verdict.FAIL and "canary worse: e >= 50" in success.line


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


# --- counts: the anytime-valid test on bad requests, pure ----------------------------------------


def steps(requests: float, bad: float, n: int) -> list[Step]:
    return [Step(requests, bad)] * n


@pytest.mark.parametrize(
    ("canary_steps", "primary_steps", "at_least", "below"),
    [
        # Weight 90%: the primary's trickle had no error, the canary its usual 0.2%. The counts
        # weigh the primary's 20 requests a step as 20, not as a sample of equal say: far from the
        # 50 that fails at 98%.
        (steps(180, 0.36, 30), steps(20, 0.0, 30), 0.0, 5.0),
        # Weight 10%, 5.2% errors against 0.2%: strong evidence within one 30s interval.
        (steps(20, 1.04, 3), steps(180, 0.36, 3), 50.0, math.inf),
        # The same rate on both sides, whatever the shares: no evidence.
        (steps(20, 0.04, 30), steps(180, 0.36, 30), 0.0, 1.0),
        # The canary better than the primary: less than none.
        (steps(100, 0.0, 30), steps(100, 2.0, 30), 0.0, 0.01),
        # A side without requests says nothing.
        (steps(0, 0.0, 5), steps(100, 5.0, 5), 1.0, 1.0 + 1e-9),
    ],
)
def test_e_value_weighs_each_steps_request_shares(
    canary_steps: list[Step], primary_steps: list[Step], at_least: float, below: float
) -> None:
    assert at_least <= e_value(canary_steps, primary_steps) < below


def test_e_value_bounds_the_whole_rollouts_false_alarms() -> None:
    """Healthy rollouts (0.2% errors on both, 20 req/s, weights 10..100, 3 steps a look): the share
    of rollouts in which ANY look reaches 1/alpha stays under alpha, while looking at every step."""
    rng = np.random.default_rng(13)
    rollouts, alarms = 400, 0
    for _ in range(rollouts):
        canary_steps: list[Step] = []
        primary_steps: list[Step] = []
        for weight in range(10, 101, 10):
            for _ in range(3):
                c, p = rng.poisson(200 * weight / 100), rng.poisson(200 * (100 - weight) / 100)
                canary_steps.append(Step(c, rng.binomial(c, 0.002)))
                primary_steps.append(Step(p, rng.binomial(p, 0.002)))
                if e_value(canary_steps, primary_steps) >= 50:
                    break
            else:
                continue
            alarms += 1
            break
    assert alarms / rollouts <= 0.02


SHARE = {
    "higher_is_worse": False,
    "floor": EffectFloor.parse("+0.5"),
    "alpha": 0.02,
    "min_samples": 6,
    "low": 99,
}


@pytest.mark.parametrize(
    ("canary_steps", "primary_steps", "now", "verdict", "reason"),
    [
        # Evidence needs no minimum of samples: 3 steps of 5% errors fail.
        (steps(20, 1.0, 3), steps(180, 0.36, 3), (95.0, 99.8), Verdict.FAIL, "canary worse: e >= 50"),
        # No evidence yet and fewer than 6 steps with requests on both sides: wait.
        (steps(20, 0.04, 3), steps(180, 0.36, 3), (99.8, 99.8), Verdict.WAIT, "3 on both sides, 6 needed"),
        # The primary at weight 100 gets nothing: its steps do not count as shared.
        (steps(200, 0.4, 8), steps(0, 0.0, 8), (99.8, None), Verdict.WAIT, "0 on both sides"),
        (steps(20, 0.04, 8), steps(180, 0.36, 8), (99.8, 99.8), Verdict.PASS, "canary not worse"),
        # 0.6% against 0.2% errors: real, but below the +0.5pp floor, and within the rail.
        (steps(10000, 60, 30), steps(10000, 20, 30), (99.4, 99.8), Verdict.PASS, "canary not worse"),
        # The same, but the canary beyond the rail now and the primary within: the floor is waived.
        (steps(10000, 60, 30), steps(10000, 20, 30), (98.9, 99.8), Verdict.FAIL, "beyond the threshold"),
        # Both beyond the rail now, no evidence: an incident.
        (steps(20, 4.0, 8), steps(180, 36, 8), (80.0, 80.0), Verdict.HOLD, "incident"),
    ],
)
def test_compare_counts_rules(
    canary_steps: list[Step],
    primary_steps: list[Step],
    now: tuple[float | None, float | None],
    verdict: Verdict,
    reason: str,
) -> None:
    outcome = compare_counts(canary_steps, primary_steps, now=now, **SHARE)  # type: ignore[arg-type]
    assert outcome.verdict is verdict and reason in outcome.reason


def test_compare_counts_values_are_pooled_by_requests() -> None:
    # Two steps: 1 bad of 10, then 0 of 990. Pooled: 0.1% bad, a 99.9% success rate (the mean of
    # the per-step rates would say 95%).
    outcome = compare_counts([Step(10, 1), Step(990, 0)], [Step(500, 0.5), Step(500, 0.5)], **SHARE)  # type: ignore[arg-type]
    assert outcome.canary == pytest.approx(99.9) and outcome.primary == pytest.approx(99.9)


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


@pytest.mark.parametrize(
    ("recent", "now", "verdict", "primary"),
    [
        # Weight 90%, the primary's trickle clean: the count test has little to compare with, but
        # the canary's own 3% of 1000 requests is far above the 1% rail.
        (Step(1000, 30), (97.0, 99.8), Verdict.FAIL, Step(100, 0.2)),
        # 1.2% of 1000: beyond the rail now, but not significantly above 1%.
        (Step(1000, 12), (98.8, 99.8), Verdict.PASS, Step(100, 0.2)),
        # The primary beyond too: an incident, whatever the canary's counts.
        (Step(1000, 30), (97.0, 97.0), Verdict.HOLD, Step(100, 0.2)),
        # Within the rail now: the rail test is not asked.
        (Step(1000, 30), (99.5, 99.8), Verdict.PASS, Step(100, 0.2)),
        # The primary has no value (weight 100): a spike on every workload is not the canary's.
        (Step(1000, 30), (97.0, None), Verdict.PASS, Step(100, 0.2)),
        # The primary's trickle within the rail by chance, but its recent rate shows the spike too.
        (Step(1000, 30), (97.0, 99.5), Verdict.PASS, Step(50, 2)),
    ],
)
def test_compare_counts_rail_needs_only_the_canarys_requests(
    recent: Step, now: tuple[float | None, float | None], verdict: Verdict, primary: Step
) -> None:
    canary_steps, primary_steps = steps(180, 0.36, 8), steps(20, 0.04, 8)
    outcome = compare_counts(
        canary_steps,
        primary_steps,
        now=now,
        recent=(recent, primary),
        rail_alpha=0.0018,
        **SHARE,  # type: ignore[arg-type]
    )
    assert outcome.verdict is verdict


def test_beyond_rail_is_a_one_sided_binomial_test() -> None:
    assert beyond_rail(Step(1000, 25), 0.01, 0.0018)  # P(X >= 25 | 1000, 1%) ~ 1e-5
    assert not beyond_rail(Step(1000, 15), 0.01, 0.0018)  # ~ 0.08
    assert not beyond_rail(Step(0, 0), 0.01, 0.0018)


def test_e_value_pools_every_step_since_the_rollout_began() -> None:
    """+2% errors at weight 10% (20 requests a step, 2.2% bad, against 180 at 0.2%): no 30s interval
    alone is evidence, the rollout's 12 steps together are, and the judge fails on them."""
    canary_steps, primary_steps = steps(20, 0.44, 12), steps(180, 0.36, 12)
    for start in range(0, 12, 3):
        assert e_value(canary_steps[start : start + 3], primary_steps[start : start + 3]) < 10
    assert e_value(canary_steps, primary_steps) >= 50
    outcome = compare_counts(canary_steps, primary_steps, now=(97.8, 99.8), **SHARE)  # type: ignore[arg-type]
    assert outcome.verdict is Verdict.FAIL and "e >= 50" in outcome.reason


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


def test_low_traffic_fails_on_the_rail_evidence_of_the_whole_rollout() -> None:
    """2 req/s at weight 80%: 10 canary requests a step, 1 bad in every other (5%), against the 1%
    rail; the primary's trickle of 2 a step at 1%. The last minute's 60 canary requests are no
    evidence (3 bad), the comparison with the trickle is none either; the rollout's 200 are."""
    canary_steps = [Step(10, 1 if i % 2 else 0) for i in range(20)]
    primary_steps = steps(2, 0.02, 20)
    recent = (Step(60, 3), Step(12, 0.12))
    assert not beyond_rail(recent[0], 0.01, 0.0018)
    assert e_value(canary_steps, primary_steps) < 50

    def judge(now: tuple[float, float], bad: list[Step] = canary_steps) -> Any:
        return compare_counts(bad, primary_steps, now=now, recent=recent, rail_alpha=0.0018, **SHARE)  # type: ignore[arg-type]

    outcome = judge((95.0, 99.0))
    assert outcome.verdict is Verdict.FAIL and "since the rollout began" in outcome.reason
    # Within the rail now, or no primary value (weight 100): no rail failure.
    assert judge((99.5, 99.0)).verdict is Verdict.PASS
    assert compare_counts(canary_steps, primary_steps, now=(95.0, None), **SHARE).verdict is Verdict.PASS  # type: ignore[arg-type]
    # The primary beyond the rail too: an incident.
    assert judge((95.0, 95.0)).verdict is Verdict.HOLD
    # 1.5% bad (3 of 200): beyond the rail now, but neither evidence nor the +0.5pp floor.
    mild = [Step(10, 1 if i % 7 == 6 else 0) for i in range(20)]
    assert judge((98.5, 99.0), mild).verdict is Verdict.PASS
