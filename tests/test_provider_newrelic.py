"""New Relic against a local stand-in of the Insights query API. New Relic publishes no OpenAPI
description of it, so the stand-in checks each request against the documented form (path
`/v1/accounts/<id>/query`, `nrql` parameter, `X-Query-Key` header) and each answer against the
JSON shape of New Relic's documentation (https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gitcanary.analysis.providers import ProviderEnv, problems
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import NOW, check, secrets, template
from tests.vendor_server import Reply, Request, VendorServer, serve

ENV = ProviderEnv(secrets=secrets({"newrelic_account_id": "1234567", "newrelic_query_key": "NRIQ-secret"}))
QUERY = (
    "SELECT filter(sum(nginx_ingress_controller_requests), WHERE status >= '500') / "
    "sum(nginx_ingress_controller_requests) * 100 FROM Metric WHERE metricName = "
    "'nginx_ingress_controller_requests' AND ingress = '{{ ingress }}'"
)
# The documented answer: {"results": [{<function>: number|null}], "metadata": {...}}
ANSWER = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": {"type": ["number", "null", "array", "object"]},
            },
        },
        "metadata": {"type": "object"},
    },
}


def documented(answer: Any) -> Any:
    def handle(request: Request) -> Reply:
        problems = []
        if not re.fullmatch(r"/v1/accounts/\d+/query", request.path):
            problems.append(f"path {request.path}")
        if "nrql" not in request.params or request.headers.get("x-query-key") is None:
            problems.append("nrql parameter and X-Query-Key header are required")
        if problems:
            return Reply(400, {"error": "; ".join(problems)})
        return answer(request)

    return handle


@pytest.fixture
def newrelic() -> Iterator[VendorServer]:
    yield from serve(VendorServer(documented(lambda r: Reply(200, {"results": [{"result": 1.0}]}))))


def nr(server: VendorServer) -> MetricTemplate:
    return template("errors", QUERY, type="newrelic", address=server.url, secretRef={"name": "metrics"})


def reply(body: dict[str, Any], status: int = 200) -> Any:
    assert not list(Draft202012Validator(ANSWER).iter_errors(body)) or status != 200
    return documented(lambda r: Reply(status, body))


def test_single_result_over_one_interval(newrelic: VendorServer) -> None:
    newrelic.answer = reply({"results": [{"result": 0.25}], "metadata": {}})
    result = check(nr(newrelic), env=ENV, bounds={"max": 1})
    assert result.ok and result.value == 0.25, result.line
    (sent,) = newrelic.requests
    assert sent.path == "/v1/accounts/1234567/query" and sent.headers["x-query-key"] == "NRIQ-secret"
    until = int(NOW.timestamp() * 1000)
    assert sent.params["nrql"].endswith(f"ingress = 'backend' SINCE {until - 60_000} UNTIL {until}")


@pytest.mark.parametrize(
    "body",
    [{"results": []}, {"results": [{"result": None}]}, {"results": [{"result": 1}, {"result": 2}]}],
    ids=["none", "null", "two"],
)
def test_no_data_never_passes(newrelic: VendorServer, body: dict[str, Any]) -> None:
    newrelic.answer = reply(body)
    result = check(nr(newrelic), env=ENV)
    assert not result.ok and " no data (" in result.line


def test_rejected_key_is_a_failed_check_without_the_key(newrelic: VendorServer) -> None:
    newrelic.answer = reply({"error": "Invalid query key"}, 403)
    result = check(nr(newrelic), env=ENV)
    assert not result.ok and "answered HTTP 403" in result.line and "NRIQ-secret" not in result.line


def test_problems() -> None:
    assert problems(template("t", "q", type="newrelic")) == [
        "spec.provider.secretRef: newrelic needs a secret with newrelic_account_id, newrelic_query_key"
    ]
