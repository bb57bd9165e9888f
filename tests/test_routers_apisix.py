"""APISIX's generated ApisixRoute: every generated Canary and user route renders valid, Flagger-shaped,
with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/apisix.go and
its tests); the schema is APISIX's ApisixRoute CRD (tests/data/crds/apisix.json).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES, WEIGHTS, canaries, canary_doc, check_render

from gitcanary.analysis import builtin_metric, render_query
from gitcanary.analysis.templates import QueryModel
from gitcanary.errors import RenderError, SpecError
from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary

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
    (generated,) = check_render(doc, weights, ingress=user)
    assert generated["metadata"]["name"] == f"web-{canary.service_name}-canary"


def _canary(**spec: object) -> dict:
    return canary_doc("apisix", **spec)


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
