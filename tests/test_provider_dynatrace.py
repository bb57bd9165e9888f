"""Dynatrace against a local stand-in that validates every request and response against the
Environment API v2 description (tests/data/dynatrace/openapi-metrics-query.json, source inside)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gitcanary.analysis.providers import ProviderEnv, problems
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import NOW, check, secrets, template
from tests.vendor_server import Reply, Spec, VendorServer, serve

ENV = ProviderEnv(secrets=secrets({"dynatrace_token": "dt0c01.SECRET"}))
SELECTOR = 'builtin:service.errors.total.rate:filter(eq("dt.entity.service.name","{{ target }}")):avg'


def answer(*data: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalCount": 1,
        "resolution": "Inf",
        "warnings": [],
        "result": [
            {
                "metricId": "builtin:service.errors.total.rate:avg",
                "dataPointCountRatio": 0.0001,
                "dimensionCountRatio": 0.001,
                "data": list(data),
            }
        ],
    }


def series(*values: float | None) -> dict[str, Any]:
    return {
        "dimensions": [],
        "dimensionMap": {},
        "timestamps": [1_700_000_000_000 + i for i in range(len(values))],
        "values": list(values),
    }


@pytest.fixture
def dynatrace() -> Iterator[VendorServer]:
    spec = Spec.load("dynatrace/openapi-metrics-query.json", "/metrics/query")
    yield from serve(VendorServer(lambda r: Reply(200, answer()), spec, prefix="/api/v2"))


def dt(server: VendorServer) -> MetricTemplate:
    return template("errors", SELECTOR, type="dynatrace", address=server.url, secretRef={"name": "metrics"})


def test_first_value_of_last_data_entry(dynatrace: VendorServer) -> None:
    dynatrace.answer = lambda r: Reply(200, answer(series(9.0), series(0.4, 5.0)))
    result = check(dt(dynatrace), env=ENV, bounds={"max": 1})
    assert result.ok and result.value == 0.4, result.line
    (sent,) = dynatrace.requests
    assert sent.headers["authorization"] == "Api-Token dt0c01.SECRET"
    assert sent.params["resolution"] == "Inf"
    assert sent.params["metricSelector"].endswith('"backend")):avg')
    assert int(sent.params["to"]) == int(NOW.timestamp() * 1000)
    assert int(sent.params["to"]) - int(sent.params["from"]) == 600_000  # 10 x the 1m interval
    assert dynatrace.errors == []


@pytest.mark.parametrize(
    "body",
    [{"totalCount": 0, "resolution": "Inf", "warnings": [], "result": []}, answer(), answer(series())],
    ids=["no-result", "no-data", "no-values"],
)
def test_no_data_never_passes(dynatrace: VendorServer, body: dict[str, Any]) -> None:
    dynatrace.answer = lambda r: Reply(200, body)
    result = check(dt(dynatrace), env=ENV)
    assert not result.ok and " no data (" in result.line
    assert dynatrace.errors == []


def test_null_value_is_no_data_though_the_description_has_none(dynatrace: VendorServer) -> None:
    # The published description types values as numbers; gaps still come back null in practice.
    dynatrace.answer = lambda r: Reply(200, answer(series(None)))
    result = check(dt(dynatrace), env=ENV)
    assert not result.ok and "no data (dynatrace value is null)" in result.line
    assert dynatrace.errors and all(
        e.startswith("response 200 at result/0/data/0/values/0: None") for e in dynatrace.errors
    )


def test_bad_selector_is_a_400_check(dynatrace: VendorServer) -> None:
    error = {"error": {"code": 400, "message": "Cannot parse metric selector"}}
    dynatrace.answer = lambda r: Reply(400, error)
    result = check(dt(dynatrace), env=ENV)
    assert (
        not result.ok and "answered HTTP 400" in result.line and "Cannot parse metric selector" in result.line
    )
    assert "dt0c01.SECRET" not in result.line


def test_problems() -> None:
    assert problems(template("t", "q", type="dynatrace")) == [
        "spec.provider.address: dynatrace needs an address (Flagger refuses a template without one)",
        "spec.provider.secretRef: dynatrace needs a secret with dynatrace_token",
    ]
