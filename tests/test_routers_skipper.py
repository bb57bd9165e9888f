"""Skipper's `<ingress>-canary` Ingress: every generated Canary and user Ingress renders valid,
Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/skipper.go and
its tests); the schema is Kubernetes' Ingress (kubernetes-validate).
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES, WEIGHTS, canaries, check_render

from gitcanary.spec.load import load_canary

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
    # With no canary weight the copy is off (False()): the user's Ingress sends all to the apex.
    (generated,) = check_render(doc, weights, ingress=user)
    service = canary.service_name
    assert json.loads(generated["metadata"]["annotations"]["zalando.org/backend-weights"]) == {
        f"{service}-primary": weights[0],
        f"{service}-canary": weights[1],
    }
