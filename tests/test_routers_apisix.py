"""APISIX's generated ApisixRoute: every generated Canary and user route renders valid, Flagger-shaped,
with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/apisix.go and
its tests); the schema is APISIX's ApisixRoute CRD (tests/data/crds/apisix.json).
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import provider_routing_problems, routed_weights, schema_problems, service_field_problems
from router_properties import NAMES, WEIGHTS, canaries

from gitcanary.analysis import builtin_metric, render_query
from gitcanary.analysis.templates import QueryModel
from gitcanary.errors import RenderError, SpecError
from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary
from gitcanary.spec.validation import validate_object

REF = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "web"}


@st.composite
def user_routes(draw: st.DrawFn, apex: str, namespace: str) -> dict:
    """The user's ApisixRoute: a few http routes, one of them sending to the apex service."""
    backend = {"serviceName": apex, "servicePort": draw(st.integers(1, 65535) | st.just("http"))}
    if draw(st.booleans()):
        backend["resolveGranularity"] = draw(st.sampled_from(["endpoint", "service"]))
    if draw(st.booleans()):
        backend["subset"] = draw(NAMES)
    routes = [
        {
            "name": f"other{i}",
            "match": {"paths": [f"/other{i}/*"]},
            "backends": [{"serviceName": "other", "servicePort": 80}],
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    ours = {
        "name": draw(NAMES),
        "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
        "backends": [backend],
    }
    routes.insert(draw(st.integers(0, len(routes))), ours)
    meta: dict = {"name": "web", "namespace": namespace}
    if draw(st.booleans()):
        meta["labels"] = {"team": draw(NAMES)}
    if draw(st.booleans()):
        meta["annotations"] = {"note": draw(NAMES)}
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": meta,
        "spec": {"http": routes},
    }


@settings(derandomize=True, max_examples=60, deadline=None)
@given(data=st.data(), weights=WEIGHTS)
def test_every_canary_renders_a_valid_canary_apisixroute(
    data: st.DataObject, weights: tuple[int, int]
) -> None:
    doc = data.draw(canaries("apisix", ab=False, extra_spec={"routeRef": REF}))
    canary = load_canary(doc, "canary.yaml").canary
    user = data.draw(user_routes(canary.service_name, canary.namespace))
    router = router_for(canary, "canary.yaml")
    before = copy.deepcopy(user)
    objects = router.render(canary, *weights, ingress=user)
    assert user == before  # the user's own object is never changed
    (generated,) = objects
    assert generated["metadata"]["name"] == f"web-{canary.service_name}-canary"
    for obj in objects:
        assert schema_problems(obj) == [], obj
        assert validate_object(obj) == [], obj
    everything = [*objects, user]
    namespace, service = canary.namespace, canary.service_name
    assert service_field_problems(everything, doc, "apisix", namespace) == []
    assert (
        provider_routing_problems(everything, "apisix", namespace, service, weights, None, None, False) == []
    )
    assert routed_weights(everything, "apisix", namespace, service)[0] == weights
    assert router.weights(canary, objects) == weights


def _canary(**spec: object) -> dict:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "provider": "apisix",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50},
            **spec,
        },
    }


def test_a_canary_without_route_ref_or_apex_backend_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        router_for(load_canary(_canary(), "canary.yaml").canary, "canary.yaml")
    assert caught.value.field == "spec.routeRef"
    canary = load_canary(_canary(routeRef=REF), "canary.yaml").canary
    user = {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "web"},
        "spec": {"http": [{"name": "a", "backends": [{"serviceName": "other", "servicePort": 80}]}]},
    }
    with pytest.raises(RenderError, match="has no backend backend"):
        router_for(canary, "canary.yaml").render(canary, 100, 0, ingress=user)


def test_builtin_queries_name_the_route_ref() -> None:
    """Flagger's `{{ route }}` is spec.routeRef's name (scheduler_metrics.go toMetricModel)."""
    canary = load_canary(_canary(routeRef=REF), "canary.yaml").canary
    metric = builtin_metric("apisix", "request-success-rate")
    assert metric is not None
    query = render_query(metric.query, QueryModel.for_canary(canary, "1m"))
    assert 'route=~"prod_web-backend-canary_.+"' in query
