"""Every router reads back the weights it rendered, for every weight: what a step wrote is what the
next tick finds (and a person's edit of a weight is read as written, not as 100 minus the other).
The expected weights are the ones passed to `render`.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_routers import GATEWAY, canary

from gitcanary.routers import router_for
from gitcanary.routers.affinity import SessionCookies

# Routers that keep both weights in their objects, and whether a Canary needs more to use them.
BOTH = {"istio": {}, "gatewayapi:v1": {"service": GATEWAY}, "linkerd": {}, "smi:v1alpha3": {}}
WEIGHT = st.integers(min_value=0, max_value=100)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(provider=st.sampled_from(sorted(BOTH)), primary=WEIGHT, canary_weight=WEIGHT)
def test_weights_read_back_as_rendered(provider: str, primary: int, canary_weight: int) -> None:
    c = canary(provider, **BOTH[provider])
    router = router_for(c, "canary.yaml")
    objects = router.render(c, primary, canary_weight)
    assert router.weights(c, objects) == (primary, canary_weight)


def test_every_routing_object_says_gitcanary_manages_it() -> None:
    """The label `kubectl get -l app.kubernetes.io/managed-by=gitcanary` finds them by."""
    for provider, spec in BOTH.items():
        c = canary(provider, **spec)
        objects = router_for(c, "canary.yaml").render(c, 90, 10)
        assert objects, provider
        for obj in objects:
            labels = obj["metadata"].get("labels") or {}
            assert labels.get("app.kubernetes.io/managed-by") == "gitcanary", (provider, obj["kind"])


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    provider=st.sampled_from(["istio", "gatewayapi:v1"]),
    canary_weight=WEIGHT,
    primary_cookie=st.booleans(),
    after_run=st.booleans(),
)
def test_weights_read_back_past_the_sticky_routes(
    provider: str, canary_weight: int, primary_cookie: bool, after_run: bool
) -> None:
    """With session affinity the sticky routes (0/100, 100/0) come first: the weights are the last route's."""
    affinity = {"cookieName": "c", **({"primaryCookieName": "p"} if primary_cookie else {})}
    c = canary(
        provider, {"sessionAffinity": affinity}, **({"service": GATEWAY} if provider != "istio" else {})
    )
    if canary_weight:
        session = SessionCookies(canary="c=abcdefghij", primary="p=klmnopqrst" if primary_cookie else "")
    else:
        session = SessionCookies(previous="c=abcdefghij" if after_run else "")
    router = router_for(c, "canary.yaml")
    objects = router.render(c, 100 - canary_weight, canary_weight, session=session)
    assert router.weights(c, objects) == (100 - canary_weight, canary_weight)
