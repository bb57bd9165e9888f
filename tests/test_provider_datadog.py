"""Datadog against a local stand-in that validates every request and response against Datadog's
OpenAPI description (tests/data/datadog/openapi-v1-query.json, source and commit inside)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gitcanary.analysis.providers import Limits, ProviderEnv, problems
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import NOW, check, secrets, template
from tests.vendor_server import Reply, Spec, VendorServer, serve

KEYS = {"datadog_api_key": "dd-api-123", "datadog_application_key": "dd-app-456"}
QUERY = "sum:trace.http.request.errors{service:{{ target }}}.as_count()"


def series(*points: tuple[int, float | None]) -> dict[str, object]:
    return {
        "status": "ok",
        "res_type": "time_series",
        "series": [{"metric": "trace.http.request.errors", "pointlist": [list(p) for p in points]}],
    }


@pytest.fixture
def datadog() -> Iterator[VendorServer]:
    yield from serve(
        VendorServer(
            lambda r: Reply(200, series()), Spec.load("datadog/openapi-v1-query.json", "/api/v1/query")
        )
    )


def dd(server: VendorServer, **provider: object) -> MetricTemplate:
    return template(
        "errors", QUERY, type="datadog", address=server.url, secretRef={"name": "metrics"}, **provider
    )


ENV = ProviderEnv(secrets=secrets(KEYS))


def test_first_point_of_first_series_over_ten_intervals(datadog: VendorServer) -> None:
    datadog.answer = lambda r: Reply(200, series((1000, 3.0), (2000, 9.0)))
    result = check(dd(datadog), env=ENV, bounds={"max": 5})
    assert result.ok and result.value == 3.0
    (sent,) = datadog.requests
    assert sent.params["query"] == "sum:trace.http.request.errors{service:backend}.as_count()"
    assert int(sent.params["to"]) == int(NOW.timestamp())
    assert int(sent.params["to"]) - int(sent.params["from"]) == 600  # 10 x the 1m interval
    assert sent.headers["dd-api-key"] == "dd-api-123" and sent.headers["dd-application-key"] == "dd-app-456"
    assert datadog.errors == []


@pytest.mark.parametrize(
    "body",
    [
        {"status": "ok", "series": []},
        series(),
        series((1000, None), (2000, 4.0)),
    ],
    ids=["no-series", "no-points", "null-first-point"],
)
def test_no_data_never_passes(datadog: VendorServer, body: dict[str, object]) -> None:
    datadog.answer = lambda r: Reply(200, body)
    result = check(dd(datadog), env=ENV)
    assert not result.ok and result.value is None and " no data (" in result.line
    assert datadog.errors == []


def test_forbidden_keys_fail_with_datadog_reason(datadog: VendorServer) -> None:
    datadog.answer = lambda r: Reply(403, {"errors": ["Forbidden"]})
    result = check(dd(datadog), env=ENV)
    assert not result.ok and "answered HTTP 403: " in result.line and "Forbidden" in result.line
    assert "dd-api-123" not in result.line
    assert datadog.errors == []


def test_missing_secret_names_where_it_looked_never_a_value(datadog: VendorServer) -> None:
    env = ProviderEnv(secrets=secrets({"datadog_api_key": "dd-api-123"}))
    result = check(dd(datadog), env=env)
    assert not result.ok and "has no datadog_application_key" in result.line
    assert "GITCANARY_SECRET_PROD_METRICS_DATADOG_APPLICATION_KEY" in result.line
    assert "dd-api-123" not in result.line and datadog.requests == []


def test_error_status_in_a_200_is_a_failed_check(datadog: VendorServer) -> None:
    datadog.answer = lambda r: Reply(200, {"status": "error", "error": "Error parsing query: bad"})
    result = check(dd(datadog), env=ENV)
    assert not result.ok and "datadog query error: Error parsing query: bad" in result.line


def test_dripping_answer_is_cut_at_the_deadline(datadog: VendorServer) -> None:
    import time

    datadog.answer = lambda r: Reply(200, series((1, 1.0)), drip=2.0)
    started = time.monotonic()
    result = check(dd(datadog), env=ENV, limits=Limits(deadline=3))
    assert time.monotonic() - started < 6
    assert not result.ok and "did not answer within 3s" in result.line


def test_problems_name_the_secret_keys() -> None:
    assert problems(template("t", "q", type="datadog")) == [
        "spec.provider.secretRef: datadog needs a secret with datadog_api_key, datadog_application_key"
    ]
    assert problems(template("t", "q", type="datadog", secretRef={"name": "dd"})) == []


def test_series_for_the_comparative_judge(datadog: VendorServer) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from gitcanary.analysis.providers import Endpoints, HttpPool, Target, build

    datadog.answer = lambda r: Reply(200, series((1_000_000, 1.0), (1_010_000, None), (1_020_000, 3.0)))
    subject = dd(datadog)
    env = replace(ENV, endpoints=Endpoints.of([datadog.url]))  # the operator's --credential-endpoint
    provider = build(Target(subject.spec.provider, "prod", datadog.url), env, HttpPool())
    points = provider.query_range("avg:x{*}", NOW - timedelta(minutes=5), NOW, 10)  # type: ignore[attr-defined]
    assert points == [(1000.0, 1.0), (1020.0, 3.0)]
    assert int(datadog.requests[0].params["to"]) - int(datadog.requests[0].params["from"]) == 300
    assert datadog.errors == []
