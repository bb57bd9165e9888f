"""Skipper's `<ingress>-canary` Ingress: every generated Canary and user Ingress renders valid,
Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/skipper.go and
its tests); the schema is Kubernetes' Ingress (kubernetes-validate).
"""

from __future__ import annotations

import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import provider_routing_problems, routed_weights, schema_problems, service_field_problems
from router_properties import NAMES, WEIGHTS, canaries

from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary
from gitcanary.spec.validation import validate_object

REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
PREDICATES = st.lists(
    st.sampled_from(
        ["Host(/^a\\.example\\.org$/)", 'Method("GET")', 'Path("/hello")', "False()", "Weight(100)"]
    ),
    max_size=3,
)


@st.composite
def user_ingresses(draw: st.DrawFn, apex: str, namespace: str) -> dict:
    paths = [
        {
            "path": f"/{draw(NAMES)}",
            "pathType": "Prefix",
            "backend": {"service": {"name": svc, "port": {"number": draw(st.integers(1, 65535))}}},
        }
        for svc in draw(
            st.lists(st.sampled_from([apex, "other"]), min_size=1, max_size=3).filter(lambda s: apex in s)
        )
    ]
    annotations = {"kubernetes.io/ingress.class": "skipper"}
    predicates = draw(PREDICATES)
    if predicates:
        annotations["zalando.org/skipper-predicate"] = " && ".join(predicates)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": namespace, "annotations": annotations},
        "spec": {"rules": [{"host": "app.example.com", "http": {"paths": paths}}]},
    }


@settings(derandomize=True, max_examples=60, deadline=None)
@given(data=st.data(), weights=WEIGHTS)
def test_every_canary_renders_a_valid_weighted_canary_ingress(
    data: st.DataObject, weights: tuple[int, int]
) -> None:
    doc = data.draw(canaries("skipper", ab=False, extra_spec={"ingressRef": REF}))
    canary = load_canary(doc, "canary.yaml").canary
    user = data.draw(user_ingresses(canary.service_name, canary.namespace))
    router = router_for(canary, "canary.yaml")
    before = copy.deepcopy(user)
    objects = router.render(canary, *weights, ingress=user)
    assert user == before  # the user's own object is never changed
    (generated,) = objects
    for obj in objects:
        assert schema_problems(obj) == [], obj
        assert validate_object(obj) == [], obj
    everything = [*objects, user]
    namespace, service = canary.namespace, canary.service_name
    assert service_field_problems(everything, doc, "skipper", namespace) == []
    # With no canary weight the copy is off (False()): the user's Ingress sends all to the apex.
    assert (
        provider_routing_problems(everything, "skipper", namespace, service, weights, None, "web", False)
        == []
    )
    assert routed_weights(everything, "skipper", namespace, service)[0] == weights
    assert router.weights(canary, objects) == weights
    assert json.loads(generated["metadata"]["annotations"]["zalando.org/backend-weights"]) == {
        f"{service}-primary": weights[0],
        f"{service}-canary": weights[1],
    }
