"""The metric backends' stand-ins check answers and requests against the vendors' descriptions,
closed: a key the description does not list (a misspelt one) is an error wherever it sits, a
required key missing is an error, and so is a query parameter the operation does not describe.

Each canned answer the provider tests use is taken whole, then every key in it, at every depth, is
renamed in turn: the stand-in must reject each renaming, except a key of a map (an object the
description opens to any name: labels, dimensions). The oracle is the answer's own structure, not
the stand-in's verdict.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_provider_datadog import series as datadog_answer
from tests.test_provider_dynatrace import answer as dynatrace_answer
from tests.test_provider_dynatrace import series as dynatrace_series
from tests.test_provider_externalmetrics import SPEC_PATH as EXTERNAL_PATH
from tests.test_provider_externalmetrics import value_list
from tests.test_provider_stackdriver import answer as google_answer
from tests.vendor_server import Request, Spec

# vendor -> (its operation's description, a documented answer, maps whose keys are free names,
#  the path of a required key, a valid request)
VENDORS: dict[str, tuple[Spec, Any, set[str], list[Any], Request]] = {
    "datadog": (
        Spec.load("datadog/openapi-v1-query.json", "/api/v1/query"),
        datadog_answer((1_700_000_000_000, 0.5)),
        set(),
        [],
        Request(
            "GET",
            "/api/v1/query",
            {"from": "1", "to": "2", "query": "avg:x{*}"},
            {"dd-api-key": "k", "dd-application-key": "a"},
            b"",
        ),
    ),
    "dynatrace": (
        Spec.load("dynatrace/openapi-metrics-query.json", "/metrics/query"),
        dynatrace_answer(dynatrace_series(0.4, 5.0)),
        {"dimensionMap"},
        ["totalCount"],
        Request("GET", "/metrics/query", {"metricSelector": "x"}, {"authorization": "Api-Token t"}, b""),
    ),
    "google": (
        Spec.load(
            "google-monitoring/openapi-timeseries-query.json",
            "/v3/projects/{projectsId}/timeSeries:query",
            "post",
        ),
        google_answer({"doubleValue": 212.5}),
        set(),
        [],
        Request(
            "POST",
            "/v3/projects/p/timeSeries:query",
            {},
            {"authorization": "Bearer t"},
            b'{"query": "fetch x"}',
        ),
    ),
    "external-metrics": (
        Spec.load("external-metrics/openapi-v1beta1.json", EXTERNAL_PATH),
        value_list("1500m", "2"),
        {"metricLabels"},
        ["items", 0, "metricName"],
        Request(
            "GET",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/errors",
            {"labelSelector": "app=backend"},
            {"authorization": "Bearer cluster-token"},
            b"",
        ),
    ),
}


def key_paths(data: Any, free: set[str], at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every key of every object in `data`, outside the maps named in `free`."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not (at and at[-1] in free):
                yield (*at, key)
            yield from key_paths(value, free, (*at, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from key_paths(value, free, (*at, i))


def renamed(data: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(data)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[f"{path[-1]}_"] = node.pop(path[-1])
    return out


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_documented_answer_and_request_pass(vendor: str) -> None:
    spec, answer, _, _, request = VENDORS[vendor]
    assert spec.response_problems(200, answer) == []
    assert spec.request_problems(request) == []


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_every_misspelt_key_of_an_answer_is_caught(vendor: str) -> None:
    spec, answer, free, _, _ = VENDORS[vendor]
    paths = list(key_paths(answer, free))
    assert len(paths) >= 3
    for path in paths:
        problems = spec.response_problems(200, renamed(answer, path))
        assert problems, f"{vendor}: renaming {path} passed"


@pytest.mark.parametrize("vendor", sorted(v for v in VENDORS if VENDORS[v][3]))
def test_a_required_key_missing_is_caught(vendor: str) -> None:
    spec, answer, _, required, _ = VENDORS[vendor]
    broken = copy.deepcopy(answer)
    node = broken
    for step in required[:-1]:
        node = node[step]
    del node[required[-1]]
    assert any("is a required property" in p for p in spec.response_problems(200, broken))


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_query_parameter_the_operation_does_not_describe_is_caught(vendor: str) -> None:
    spec, _, _, _, request = VENDORS[vendor]
    params = {**request.params, "qeury": "x"}
    odd = Request(request.method, request.path, params, request.headers, request.body)
    assert "query parameter qeury is not described" in spec.request_problems(odd)
