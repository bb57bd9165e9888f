"""Metric analysis against a real Prometheus holding Istio-shaped traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gitcanary.analysis import (
    NoDataError,
    PrometheusClient,
    QueryModel,
    builtin_metric,
    format_number,
    judge,
    render_query,
    run_analysis,
)
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary, CanaryMetric, MetricTemplate
from tests.prometheus_server import (  # noqa: F401 (pytest fixtures)
    QUERY_AT,
    Exporter,
    PrometheusServer,
    Traffic,
    exporter,
    free_port,
    prometheus,
    running_prometheus,
)

NS = "prod"
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}

ERROR_RATE_QUERY = """
100 * sum(rate(istio_requests_total{reporter="destination",
    destination_workload_namespace="{{ namespace }}", destination_workload="{{target}}",
    response_code=~"{{ variables.codes }}"}[{{ interval }}]))
  / sum(rate(istio_requests_total{reporter="destination",
    destination_workload_namespace="{{ namespace }}", destination_workload="{{target}}"}[{{ interval }}]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = [
        Traffic("good", NS, error_ratio=0.001, p99_ms=200),
        Traffic("bad", NS, error_ratio=0.10, p99_ms=200),
        Traffic("slow", NS, p99_ms=1500),
        Traffic("idle", NS, rps=0),
        # The primary is failing, its canary is fine: builtins must query the canary (target) only.
        Traffic("backend", NS, p99_ms=120),
        Traffic("backend-primary", NS, error_ratio=0.5, p99_ms=4000),
    ]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prometheus")) as running:
        yield running


def canary(target: str, *metrics: dict[str, Any], **spec: Any) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": target, "namespace": NS},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 5, "metrics": list(metrics)},
                **spec,
            },
        }
    )


def template(name: str, query: str, *, namespace: str = NS, **provider: Any) -> MetricTemplate:
    return MetricTemplate.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus", **provider}, "query": query},
        }
    )


def analyse(server: PrometheusServer, subject: Canary, templates: dict[str, MetricTemplate] | None = None):
    return run_analysis(subject, templates or {}, default_address=server.url, now=QUERY_AT)


def lines(results) -> list[str]:
    return [result.line for result in results]


# --- builtins against real Prometheus ---------------------------------------------------------


def test_passing_canary_passes_every_check(server: PrometheusServer) -> None:
    results = analyse(server, canary("good", SUCCESS, DURATION))
    assert lines(results) == ["request-success-rate 99.9 >= 99 ok", "request-duration 200ms <= 500ms ok"]
    assert [r.ok for r in results] == [True, True]
    assert results[0].value == pytest.approx(99.9)
    assert (results[0].min, results[0].max) == (99, None)


def test_failing_canary_fails_success_rate_with_value(server: PrometheusServer) -> None:
    rate, duration = analyse(server, canary("bad", SUCCESS, DURATION))
    assert (rate.ok, rate.value, rate.line) == (
        False,
        pytest.approx(90),
        "request-success-rate 90 < 99 failed",
    )
    assert duration.ok


def test_slow_canary_fails_duration(server: PrometheusServer) -> None:
    rate, duration = analyse(server, canary("slow", SUCCESS, DURATION))
    assert rate.ok
    assert (duration.ok, duration.line) == (False, "request-duration 1500ms > 500ms failed")


def test_builtins_query_the_canary_workload_not_the_primary(server: PrometheusServer) -> None:
    results = analyse(server, canary("backend", SUCCESS, DURATION))
    assert lines(results) == ["request-success-rate 100 >= 99 ok", "request-duration 120ms <= 500ms ok"]


def test_no_data_is_a_failed_check_never_a_pass(server: PrometheusServer) -> None:
    for target, reason in (("ghost", "no values found"), ("idle", "no values found (NaN)")):
        results = analyse(server, canary(target, SUCCESS, DURATION))
        assert [(r.ok, r.value) for r in results] == [(False, None), (False, None)]
        assert results[0].line == f"request-success-rate no data ({reason}): failed"


def test_deprecated_threshold_is_min_for_success_rate_and_max_for_duration(server: PrometheusServer) -> None:
    results = analyse(
        server,
        canary(
            "bad",
            {"name": "request-success-rate", "threshold": 95},
            {"name": "request-duration", "threshold": 150},
        ),
    )
    assert lines(results) == ["request-success-rate 90 < 95 failed", "request-duration 200ms > 150ms failed"]
    assert (results[0].min, results[1].max) == (95, 150)


def test_unknown_provider_has_no_builtins(server: PrometheusServer) -> None:
    (result,) = analyse(server, canary("good", SUCCESS, provider="nomesh"))
    assert result.line == (
        "request-success-rate no builtin request-success-rate for provider nomesh, "
        "and no templateRef or query: failed"
    )


# --- templates and inline queries -------------------------------------------------------------


def test_metric_template_renders_variables_and_interval(server: PrometheusServer) -> None:
    templates = {
        "istio-system/error-rate": template("error-rate", ERROR_RATE_QUERY, namespace="istio-system")
    }
    metric = {
        "name": "error-rate",
        "templateRef": {"name": "error-rate", "namespace": "istio-system"},
        "templateVariables": {"codes": "5.."},
        "interval": "2m",
        "thresholdRange": {"max": 5},
    }
    assert lines(analyse(server, canary("bad", metric), templates)) == ["error-rate 10 > 5 failed"]
    assert lines(analyse(server, canary("good", metric), templates)) == ["error-rate 0.1 <= 5 ok"]


def test_template_threshold_is_a_maximum_and_namespace_defaults_to_the_canarys(
    server: PrometheusServer,
) -> None:
    templates = {f"{NS}/error-rate": template("error-rate", ERROR_RATE_QUERY)}
    metric = {"name": "errors", "templateRef": {"name": "error-rate"}, "templateVariables": {"codes": "5.*"}}
    assert lines(analyse(server, canary("bad", {**metric, "threshold": 20}), templates)) == [
        "errors 10 <= 20 ok"
    ]
    assert lines(analyse(server, canary("bad", {**metric, "threshold": 1}), templates)) == [
        "errors 10 > 1 failed"
    ]


def test_template_with_in_cluster_address_falls_back_to_default(server: PrometheusServer) -> None:
    address = "http://prometheus.istio-system.invalid:9090"
    templates = {f"{NS}/error-rate": template("error-rate", ERROR_RATE_QUERY, address=address)}
    metric = {
        "name": "error-rate",
        "templateRef": {"name": "error-rate"},
        "templateVariables": {"codes": "5.."},
        "thresholdRange": {"min": 0, "max": 50},
    }
    (result,) = analyse(server, canary("bad", metric), templates)
    assert result.ok
    note = f"prometheus.istio-system.invalid does not resolve here; queried {server.url}"
    assert result.line == f"error-rate 10 in [0, 50] ok ({note})"


def test_template_problems_are_failed_checks(server: PrometheusServer) -> None:
    templates = {
        f"{NS}/dd": template("dd", "avg:requests{*}", type="appdynamics"),
        f"{NS}/typo": template("typo", "sum(up{job='{{ job }}'})"),
    }
    results = analyse(
        server,
        canary(
            "good",
            {"name": "missing", "templateRef": {"name": "nope"}, "thresholdRange": {"max": 1}},
            {"name": "datadog", "templateRef": {"name": "dd"}, "thresholdRange": {"max": 1}},
            {"name": "typo", "templateRef": {"name": "typo"}, "thresholdRange": {"max": 1}},
        ),
        templates,
    )
    assert [r.ok for r in results] == [False, False, False]
    assert results[0].line == f"missing metric template {NS}/nope not found: failed"
    assert results[1].line == "datadog unknown provider type 'appdynamics': failed"
    assert results[2].line.startswith("typo query failed (unknown template variable {{ job }}; known: name,")


def test_bad_promql_fails_with_prometheus_error_text(server: PrometheusServer) -> None:
    (result,) = analyse(
        server, canary("good", {"name": "broken", "query": "sum(rate(up[1m])", "threshold": 1})
    )
    assert not result.ok and result.value is None
    assert result.line.startswith("broken query failed (prometheus bad_data: ")
    assert "unclosed left parenthesis" in result.line


def test_unreachable_prometheus_fails_every_check() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    subject = canary("good", SUCCESS, {"name": "inline", "query": "vector(1)", "threshold": 2})
    results = run_analysis(subject, {}, default_address=address, now=QUERY_AT)
    assert [(r.ok, r.value) for r in results] == [(False, None), (False, None)]
    assert all(f"query failed (prometheus at {address} unreachable: " in r.line for r in results)


def test_client_raises_analysis_errors(server: PrometheusServer) -> None:
    with PrometheusClient(server.url, timeout=5) as client:
        assert client.query("vector(1)", QUERY_AT) == 1
        assert client.query("scalar(vector(2.5))", QUERY_AT) == 2.5
        with pytest.raises(NoDataError, match="no values found"):
            client.query('up{job="nothing"}', QUERY_AT)
        with pytest.raises(NoDataError, match="NaN"):
            client.query("vector(0) / vector(0)", QUERY_AT)
        with pytest.raises(AnalysisError, match=r"\+Inf"):
            client.query("vector(1) / vector(0)", QUERY_AT)
        with pytest.raises(AnalysisError, match="must return an instant vector or scalar"):
            client.query("istio_requests_total[1m]", QUERY_AT)
    with PrometheusClient(server.url + "/nowhere") as client, pytest.raises(AnalysisError, match="HTTP 404"):
        client.query("vector(1)", QUERY_AT)


def test_client_range_query_returns_points_oldest_first(server: PrometheusServer) -> None:
    start = QUERY_AT - timedelta(minutes=5)
    with PrometheusClient(server.url, timeout=5) as client:
        points = client.query_range("vector(3)", start, QUERY_AT, 30)
        assert [t for t, _ in points] == [start.timestamp() + 30 * i for i in range(11)]
        assert {v for _, v in points} == {3.0}
        # Traffic("good") runs 10 req/s over the whole backfilled span.
        rates = client.query_range(
            'sum(rate(istio_requests_total{destination_workload="good"}[1m]))', start, QUERY_AT, 60
        )
        assert len(rates) == 6 and all(abs(v - 10) < 1e-6 for _, v in rates)
        with pytest.raises(NoDataError, match="no values found"):
            client.query_range('up{job="nothing"}', start, QUERY_AT, 30)
        with pytest.raises(NoDataError, match="NaN"):
            client.query_range("vector(0) / vector(0)", start, QUERY_AT, 30)
        with pytest.raises(AnalysisError, match="not positive"):
            client.query_range("vector(1)", start, QUERY_AT, 0)
        with pytest.raises(AnalysisError, match="bad_data"):
            client.query_range("sum(", start, QUERY_AT, 30)


# --- scrape mode: live counters, queried at wall-clock time -----------------------------------


def test_scraped_live_traffic(prometheus, exporter: Exporter) -> None:  # noqa: F811 (fixtures)
    # Prometheus applies scrape targets about 5s after start, so this test takes ~9s.
    running = prometheus(exporter=exporter)
    exporter.add("live", NS, requests=0, latency_ms=40)
    running.wait_for('istio_requests_total{destination_workload="live"}')
    for _ in range(3):
        exporter.add("live", NS, requests=100, errors=1, latency_ms=40)
        time.sleep(1.1)
    results = run_analysis(
        canary("live", {**SUCCESS, "thresholdRange": {"min": 98}}, DURATION),
        {},
        default_address=running.url,
        now=datetime.now(UTC),
    )
    assert [r.ok for r in results] == [True, True], lines(results)
    assert results[0].value == pytest.approx(99, abs=0.5)
    assert results[1].line == "request-duration 49ms <= 500ms ok"  # 0.99 of the (25, 50] bucket


# --- pure units -------------------------------------------------------------------------------


MODEL = QueryModel("podinfo", "test", "podinfo", "podinfo-svc", "podinfo-ing", "5m", {"x": "42", "a-b": "c"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ namespace }}/{{target}}/{{  service  }}", "test/podinfo/podinfo-svc"),
        ("{{name}} {{ ingress }} [{{ interval }}]", "podinfo podinfo-ing [5m]"),
        ("{{ variables.x }} {{variables.a-b}}", "42 c"),
        ('rate(x{le="+Inf"}[1m])', 'rate(x{le="+Inf"}[1m])'),
    ],
)
def test_render_query(text: str, expected: str) -> None:
    assert render_query(text, MODEL) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ job }}", r"unknown template variable \{\{ job \}\}"),
        ("{{ .Values.x }}", r"unknown template variable \{\{ \.Values\.x \}\}"),
        ("{{ variables.y }}", r"\{\{ variables\.y \}\} but templateVariables has no 'y' \(set: a-b, x\)"),
    ],
)
def test_render_query_rejects_unknown_variables(text: str, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        render_query(text, MODEL)


def test_query_model_for_canary_targets_the_canary_workload() -> None:
    subject = canary("backend", SUCCESS, service={"port": 80, "name": "api"}, ingressRef={"name": "web"})
    model = QueryModel.for_canary(subject, "1m", {"k": "v"})
    assert (model.name, model.namespace, model.target, model.service, model.ingress) == (
        "backend",
        NS,
        "backend",
        "api",
        "web",
    )
    assert dict(model.variables) == {"k": "v"}


def test_builtin_istio_queries_are_flaggers() -> None:
    rate = builtin_metric("istio", "request-success-rate")
    duration = builtin_metric("istio", "request-duration")
    assert rate is not None and duration is not None
    assert (rate.bound, rate.unit, duration.bound, duration.unit) == ("min", "", "max", "ms")
    flat = " ".join(rate.query.split())
    assert 'destination_workload=~"{{ target }}", response_code!~"5.*" }[{{ interval }}]' in flat
    assert " ".join(duration.query.split()).startswith("histogram_quantile( 0.99, sum( rate( istio_request_")


def metric(**fields: Any) -> CanaryMetric:
    return CanaryMetric.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "value", "bound", "unit", "ok", "line"),
    [
        ({"thresholdRange": {"min": 99}}, 99.0, "max", "", True, "m 99 >= 99 ok"),
        ({"thresholdRange": {"min": 99}}, 98.999, "max", "", False, "m 98.999 < 99 failed"),
        ({"thresholdRange": {"max": 500}}, 500.0, "max", "ms", True, "m 500ms <= 500ms ok"),
        ({"thresholdRange": {"max": 500}}, 612.0, "max", "ms", False, "m 612ms > 500ms failed"),
        ({"thresholdRange": {"min": 1, "max": 2}}, 1.5, "max", "", True, "m 1.5 in [1, 2] ok"),
        ({"thresholdRange": {"min": 1, "max": 2}}, 0.25, "max", "", False, "m 0.25 < 1 failed"),
        ({"thresholdRange": {}}, 7.0, "max", "", True, "m 7 ok"),
        ({"threshold": 99}, 99.87, "min", "", True, "m 99.87 >= 99 ok"),
        ({"threshold": 5}, 5.5, "max", "", False, "m 5.5 > 5 failed"),
        # No threshold at all is Flagger's zero value: a maximum of 0 for everything but success rate.
        ({}, 0.1, "max", "", False, "m 0.1 > 0 failed"),
    ],
)
def test_judge_lines(fields: dict, value: float, bound: str, unit: str, ok: bool, line: str) -> None:
    result = judge(metric(**fields), value, bound=bound, unit=unit)
    assert (result.ok, result.line, result.value) == (ok, line, value)


def test_format_number() -> None:
    assert [format_number(n) for n in (99.871, 99.9, 612.0, 0.004, -0.001, 1e6)] == [
        "99.87",
        "99.9",
        "612",
        "0",
        "0",
        "1000000",
    ]


def test_query_at_is_inside_the_backfilled_data() -> None:
    assert datetime.now(UTC) - QUERY_AT > timedelta(days=1)


def test_canary_metrics_server_is_used_for_builtins_and_falls_back_when_unresolvable(
    server: PrometheusServer,
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    direct = canary("good", SUCCESS, metricsServer=server.url)
    assert run_analysis(direct, {}, default_address=unreachable, now=QUERY_AT)[0].ok
    in_cluster = canary("good", SUCCESS, metricsServer="http://prometheus.monitoring.invalid:9090")
    (result,) = analyse(server, in_cluster)
    note = f"prometheus.monitoring.invalid does not resolve here; queried {server.url}"
    assert result.line == f"request-success-rate 99.9 >= 99 ok ({note})"


def test_rewrite_url_sends_in_cluster_addresses_where_the_rule_says(
    server: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitcanary.core import urlmap

    monkeypatch.setattr(urlmap, "_current", urlmap.UrlMap())
    address = "http://prometheus.istio-system.invalid:9090"
    templates = {f"{NS}/error-rate": template("error-rate", ERROR_RATE_QUERY, address=address)}
    metric = {
        "name": "error-rate",
        "templateRef": {"name": "error-rate"},
        "templateVariables": {"codes": "5.."},
        "thresholdRange": {"min": 0, "max": 50},
    }
    inline = {"name": "inline", "query": "vector(1)", "threshold": 2}
    subject = canary("bad", metric, inline, metricsServer="http://prometheus.monitoring.invalid:9090")
    dead = f"http://127.0.0.1:{free_port()}"  # the fallback answers nothing: only the rule can pass
    urlmap.configure([f"{address}={server.url}", f"http://prometheus.monitoring.invalid:9090={server.url}/"])
    results = run_analysis(subject, templates, default_address=dead, now=QUERY_AT)
    assert lines(results) == ["error-rate 10 in [0, 50] ok", "inline 1 <= 2 ok"]
    urlmap.configure([])
    results = run_analysis(subject, templates, default_address=dead, now=QUERY_AT)
    assert [r.ok for r in results] == [False, False]
