"""`gitcanary validate` knows the routing objects of every provider: Gateway API HTTPRoute and SMI
TrafficSplit from the schemas shipped in gitcanary/schemas/, Ingress from kubernetes-validate."""

from __future__ import annotations

from typing import Any

import pytest

from gitcanary.spec.validation import schema_known, validate_object


def route(weight: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"backendRefs": [{"name": "backend-primary", "port": 80, "weight": weight}]}],
        },
    }


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"),
        ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
        ("split.smi-spec.io/v1alpha3", "TrafficSplit"),
        ("networking.k8s.io/v1", "Ingress"),
    ],
)
def test_every_routing_kind_has_a_schema(api_version: str, kind: str) -> None:
    assert schema_known(api_version, kind)


def test_a_bad_weight_is_named_with_its_field() -> None:
    assert validate_object(route(90)) == []
    assert validate_object(route("ninety")) == [
        "HTTPRoute prod/backend: spec.rules[0].backendRefs[0].weight: 'ninety' is not of type 'integer'"
    ]


def test_an_undeclared_traffic_split_field_is_an_error() -> None:
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "service": "backend",
            "backends": [{"service": "backend-primary", "weight": 100}],
            "matches": [],
        },
    }
    assert validate_object(split) == ["TrafficSplit prod/backend: spec.matches: field not declared in schema"]
