"""Flagger's `externalmetrics` through the real kubernetes client against a stand-in of the
external metrics API (`external.metrics.k8s.io/v1beta1`, served in a real cluster by KEDA, the
Prometheus adapter or Datadog's cluster agent). The stand-in checks the request as the API defines
it (GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>, labelSelector, bearer
token) and answers an ExternalMetricValueList shaped as k8s.io/metrics' v1beta1 types."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from gitcanary.analysis.providers import ProviderEnv, problems
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import check, secrets, template
from tests.vendor_server import Reply, Request, Spec, VendorServer, serve

SPEC_PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"
PATH = re.compile(r"/apis/external\.metrics\.k8s\.io/v1beta1/namespaces/([a-z0-9-]+)/([A-Za-z0-9_.-]+)")


def value_list(*values: str) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": "errors",
                "metricLabels": {"app": "backend"},
                "timestamp": "2026-11-27T12:00:00Z",
                "value": v,
            }
            for v in values
        ],
    }


def documented(answer: dict[str, Any], status: int = 200) -> Any:
    def handle(request: Request) -> Reply:
        if request.method != "GET" or not PATH.fullmatch(request.path):
            return Reply(404, {"kind": "Status", "status": "Failure", "code": 404})
        if request.headers.get("authorization") != "Bearer cluster-token":
            return Reply(401, {"kind": "Status", "status": "Failure", "code": 401, "message": "Unauthorized"})
        return Reply(status, answer)

    return handle


@pytest.fixture
def api() -> Iterator[VendorServer]:
    # Every request and answer also checked against the API's types (tests/data/external-metrics).
    spec = Spec.load("external-metrics/openapi-v1beta1.json", SPEC_PATH)
    server = VendorServer(documented(value_list("1500m")), spec)
    yield from serve(server)
    assert server.errors == []


ENV = ProviderEnv(secrets=secrets({"token": "cluster-token"}))


def em(server: VendorServer, query: str = "prod/errors?labelSelector=app%3D{{ target }}") -> MetricTemplate:
    return template("e", query, type="externalmetrics", address=server.url, secretRef={"name": "metrics"})


def test_first_item_quantity(api: VendorServer) -> None:
    result = check(em(api), env=ENV, bounds={"max": 2})
    assert result.ok and result.value == 1.5, result.line
    (sent,) = api.requests
    assert sent.path == "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/errors"
    assert sent.params == {"labelSelector": "app=backend"}


def test_no_item_is_no_data(api: VendorServer) -> None:
    api.answer = documented(value_list())
    result = check(em(api), env=ENV)
    assert not result.ok and "no data (no external metric prod/errors matches)" in result.line


def test_missing_token_is_a_401_check(api: VendorServer) -> None:
    result = check(em(api), env=ProviderEnv(secrets=secrets({})))
    assert not result.ok and "answered HTTP 401" in result.line


def test_namespace_defaults_and_query_shape_is_checked(api: VendorServer) -> None:
    result = check(em(api, "errors"), env=ENV)
    assert result.value == 1.5 and api.requests[0].path.endswith("/namespaces/default/errors")
    assert problems(template("e", "a/b/c", type="externalmetrics")) == [
        "spec.query: externalmetrics query must be <namespace>/<metricName>?labelSelector=..."
    ]


def test_without_cluster_or_address_the_check_says_so() -> None:
    result = check(template("e", "prod/errors", type="externalmetrics"))
    assert (
        not result.ok
        and "externalmetrics needs cluster access (--cluster) or provider.address" in result.line
    )


def test_an_answer_over_the_size_cap_is_a_failed_check(api: VendorServer) -> None:
    """The external metrics API's answer is read in bounded steps: past the provider's byte cap it
    is a failed check naming the cap; under it, the same list is read."""
    from dataclasses import replace

    from gitcanary.analysis.providers.base import Limits

    api.answer = documented(value_list(*(["1500m"] * 3000)))
    small = replace(ENV, limits=Limits(max_bytes=20_000))
    result = check(em(api), env=small)
    assert not result.ok and "-byte cap" in result.line and "20000" in result.line, result.line
    roomy = replace(ENV, limits=Limits(max_bytes=10_000_000))
    assert check(em(api), env=roomy).value == 1.5
