"""Router unit tests: what each provider writes for given weights, read back, and valid against the
upstream CRD (tests/data/crds, via the independent oracle) or kubernetes-validate."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from oracle import routed_weights, schema_problems

from gitcanary.errors import RenderError, SpecError
from gitcanary.routers import router_for
from gitcanary.routers.providers import apply_default_provider
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.models import Canary
from gitcanary.spec.validation import validate_object

INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {
        "name": "web",
        "namespace": "prod",
        "labels": {"app": "backend"},
        "annotations": {"kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/canary": "x"},
    },
    "spec": {
        "rules": [
            {
                "host": "backend.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "backend", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    },
}


def canary(provider: str | None, analysis: dict[str, Any] | None = None, **spec: Any) -> Canary:
    service = {"port": 80, "targetPort": 9898, **spec.pop("service", {})}
    doc = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": service,
            "analysis": {"interval": "1m", "stepWeight": 10, "maxWeight": 50, **(analysis or {})},
            **spec,
        },
    }
    if provider is not None:
        doc["spec"]["provider"] = provider
    return Canary.model_validate(doc)


GATEWAY = {
    "gatewayRefs": [{"name": "public", "namespace": "gateway-system"}],
    "hosts": ["backend.example.com"],
}
AB = {
    "iterations": 2,
    "stepWeight": None,
    "maxWeight": None,
    "match": [{"headers": {"x-canary": {"exact": "on"}}}],
}


def valid(objects: list[dict[str, Any]]) -> None:
    """Both checkers agree: the oracle (tests/data CRDs) and what `gitcanary validate` ships."""
    for obj in objects:
        assert schema_problems(obj) == [], obj
        assert validate_object(obj) == [], obj


@pytest.mark.parametrize("provider", ["gatewayapi:v1", "gatewayapi:v1beta1"])
def test_gateway_api_route(provider: str) -> None:
    c = canary(provider, service={**GATEWAY, "timeout": "10s", "match": [{"uri": {"prefix": "/api"}}]})
    router = router_for(c, "canary.yaml")
    objects = router.render(c, 70, 30)
    valid(objects)
    (route,) = objects
    assert route["apiVersion"] == f"gateway.networking.k8s.io/{provider.split(':')[1]}"
    assert route["metadata"]["name"] == "backend"
    assert route["spec"]["parentRefs"] == GATEWAY["gatewayRefs"]
    assert route["spec"]["hostnames"] == ["backend.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert rule["timeouts"] == {"request": "10s"}
    assert [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]] == [
        ("backend-primary", 80, 70),
        ("backend-canary", 80, 30),
    ]
    assert router.weights(c, objects) == (70, 30)
    assert routed_weights(objects, provider, "prod", "backend")[0] == (70, 30)


def test_gateway_api_ab_testing_and_blue_green_mirroring() -> None:
    c = canary("gatewayapi:v1", AB, service=GATEWAY)
    objects = router_for(c, "canary.yaml").render(c, 0, 100)
    valid(objects)
    first, rest = objects[0]["spec"]["rules"]
    # Flagger merges the A/B headers into the service's (default) match.
    assert first["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"name": "x-canary", "type": "Exact", "value": "on"}],
        }
    ]
    assert [(b["name"], b["weight"]) for b in rest["backendRefs"]] == [("backend-primary", 100)]

    bg = canary(
        "gatewayapi:v1",
        {"iterations": 2, "stepWeight": None, "maxWeight": None, "mirror": True},
        service=GATEWAY,
    )
    mirrored = router_for(bg, "canary.yaml").render(bg, 100, 0, mirrored=True)
    valid(mirrored)
    (rule,) = mirrored[0]["spec"]["rules"]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "backend-canary", "port": 80}
            },
        }
    ]
    assert routed_weights(mirrored, "gatewayapi:v1", "prod", "backend")[1] is True


@pytest.mark.parametrize(
    ("provider", "version"),
    [("linkerd", "v1alpha2"), ("smi:v1alpha2", "v1alpha2"), ("smi:v1alpha3", "v1alpha3")],
)
def test_smi_traffic_split(provider: str, version: str) -> None:
    c = canary(provider)
    router = router_for(c, "canary.yaml")
    objects = router.render(c, 90, 10)
    valid(objects)
    assert objects[0]["apiVersion"] == f"split.smi-spec.io/{version}"
    assert objects[0]["spec"] == {
        "service": "backend",
        "backends": [
            {"service": "backend-primary", "weight": 90},
            {"service": "backend-canary", "weight": 10},
        ],
    }
    assert router.weights(c, objects) == (90, 10)


def test_nginx_canary_ingress() -> None:
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    c = canary("nginx", ingressRef=ref)
    router = router_for(c, "canary.yaml")
    objects = router.render(c, 80, 20, ingress=INGRESS)
    valid(objects)
    (ing,) = objects
    assert ing["metadata"]["name"] == "web-canary"
    assert ing["metadata"]["annotations"] == {
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    }
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "backend-canary"
    assert INGRESS["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "backend"  # type: ignore[index]
    assert router.weights(c, objects) == (80, 20)
    assert routed_weights(objects, "nginx", "prod", "backend", "web")[0] == (80, 20)


def test_nginx_ab_testing_by_header_and_cookie() -> None:
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    match = [{"headers": {"x-canary": {"regex": "^(on|yes)$"}}}, {"headers": {"cookie": {"exact": "canary"}}}]
    c = canary("nginx", {**AB, "match": match}, ingressRef=ref)
    router = router_for(c, "canary.yaml")
    during = router.render(c, 0, 100, ingress=INGRESS)[0]["metadata"]["annotations"]
    assert during["nginx.ingress.kubernetes.io/canary-by-header"] == "x-canary"
    assert during["nginx.ingress.kubernetes.io/canary-by-header-pattern"] == "^(on|yes)$"
    assert during["nginx.ingress.kubernetes.io/canary-by-cookie"] == "canary"
    assert during["nginx.ingress.kubernetes.io/canary-weight"] == "0"
    after = router.render(c, 100, 0, ingress=INGRESS)
    assert "nginx.ingress.kubernetes.io/canary-by-header" not in after[0]["metadata"]["annotations"]
    assert router.weights(c, after) == (100, 0)


def test_nginx_needs_a_backend_for_the_apex_service() -> None:
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    c = canary("nginx", ingressRef=ref, service={"name": "frontend"})
    with pytest.raises(RenderError, match="Ingress web has no backend for service frontend"):
        router_for(c, "canary.yaml").render(c, 100, 0, ingress=INGRESS)


def test_istio_mirroring() -> None:
    c = canary("istio", {"mirror": True, "mirrorWeight": 25})
    objects = router_for(c, "canary.yaml").render(c, 100, 0, mirrored=True)
    valid(objects)
    http = objects[0]["spec"]["http"][0]
    assert http["mirror"] == {"host": "backend-canary"}
    assert http["mirrorPercentage"] == {"value": 25.0}
    assert "mirror" not in router_for(c, "canary.yaml").render(c, 90, 10)[0]["spec"]["http"][0]


def test_kubernetes_has_no_routing_object() -> None:
    c = canary("kubernetes", {"iterations": 2, "stepWeight": None, "maxWeight": None})
    router = router_for(c, "canary.yaml")
    assert router.render(c, 0, 100) == []
    assert router.weights(c, []) is None


@pytest.mark.parametrize(
    ("c", "field", "words"),
    [
        (canary("nomesh"), "spec.provider", "'nomesh' is not supported"),
        (canary("linkerd", AB), "spec.analysis.match", "A/B testing is not supported by provider linkerd"),
        (canary("kubernetes"), "spec.analysis.iterations", "blue/green only"),
        (
            canary("nginx", {"mirror": True}, ingressRef={"name": "web"}),
            "spec.analysis.mirror",
            "canary mode",
        ),
        (canary("gatewayapi:v1", {"mirror": True}, service=GATEWAY), "spec.analysis.mirror", "canary mode"),
        (canary("gatewayapi:v1"), "spec.service.gatewayRefs", "needs the Gateways"),
        (canary("nginx"), "spec.ingressRef", "needs the Ingress"),
    ],
)
def test_a_provider_refuses_what_it_cannot_render(c: Canary, field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        router_for(c, "apps/backend/canary.yaml")
    assert caught.value.path == "apps/backend/canary.yaml"
    assert caught.value.field == field
    assert words in caught.value.message


def test_repo_default_provider_applies_to_canaries_without_one() -> None:
    canaries: MutableMapping[str, LoadedCanary] = {
        "prod/a": LoadedCanary(canary(None), "a.yaml"),
        "prod/b": LoadedCanary(canary("istio"), "b.yaml"),
    }
    apply_default_provider(canaries, "linkerd")
    assert canaries["prod/a"].canary.provider == "linkerd"
    assert canaries["prod/b"].canary.provider == "istio"
    apply_default_provider(canaries, None)
    assert canaries["prod/a"].canary.provider == "linkerd"


@pytest.mark.parametrize(
    ("match", "named"),
    [
        ({"authority": {"exact": "api.example.com"}}, "authority"),
        ({"withoutHeaders": {"x-canary": {"exact": "no"}}}, "withoutHeaders"),
        ({"uri": {"prefix": "/api"}, "authority": {"prefix": "api."}}, "authority"),
        ({"ignoreUriCase": True, "uri": {"exact": "/a"}}, "ignoreUriCase"),
    ],
)
def test_gateway_api_refuses_a_match_it_cannot_express(match: dict[str, Any], named: str) -> None:
    """Dropping `authority` or `withoutHeaders` would widen the rule (to every path when nothing else is
    left): refused, by name."""
    c = canary("gatewayapi:v1", service={**GATEWAY, "match": [match]})
    with pytest.raises(RenderError, match=f"cannot express {named}"):
        router_for(c, "canary.yaml").render(c, 100, 0)
    # what it can express still renders, ignoreUriCase false included
    c = canary(
        "gatewayapi:v1", service={**GATEWAY, "match": [{"uri": {"exact": "/a"}, "ignoreUriCase": False}]}
    )
    (route,) = router_for(c, "canary.yaml").render(c, 100, 0)
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "Exact", "value": "/a"}}]
