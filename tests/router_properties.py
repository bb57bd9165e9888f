"""Generated Canaries for the routers' property tests (tests/test_routers_<name>.py).

`canaries(provider, ...)` draws Canary documents a provider must render: any weights pair, A/B with
header matches, blue/green, and the spec.service fields Flagger's routers read. `check_render` is the
invariant every router keeps for every one of them: each object valid against its CRD schema (the
oracle's copy in tests/data/crds and the one `gitcanary validate` ships), every field the oracle
knows equal to Flagger's, and the weights read back as written.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from oracle import (
    _route_problems,
    affinity_of,
    provider_routing_problems,
    routed_weights,
    schema_problems,
    service_field_problems,
    session_affinity_problems,
)

from gitcanary.routers import router_for
from gitcanary.routers.affinity import SessionCookies
from gitcanary.spec.load import load_canary
from gitcanary.spec.validation import validate_object

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
HEADER_VALUES = st.from_regex(r"[a-zA-Z0-9_.-]{1,12}", fullmatch=True)


@st.composite
def header_matches(draw: st.DrawFn, kinds: tuple[str, ...] = ("exact", "prefix", "suffix")) -> list[dict]:
    conditions = []
    for _ in range(draw(st.integers(1, 2))):
        names = draw(st.lists(NAMES.map(lambda n: f"x-{n}"), min_size=1, max_size=2, unique=True))
        conditions.append(
            {"headers": {n: {draw(st.sampled_from(kinds)): draw(HEADER_VALUES)} for n in names}}
        )
    return conditions


@st.composite
def canaries(
    draw: st.DrawFn,
    provider: str,
    header_kinds: tuple[str, ...] = ("exact", "prefix", "suffix"),
    ab: bool = True,
    extra_spec: dict[str, Any] | None = None,
    retry_events: tuple[str, ...] = ("5xx", "gateway-error", "connect-failure"),
) -> dict:
    """A Canary document for `provider`, with the strategy and spec.service fields drawn."""
    name = draw(NAMES)
    service: dict[str, Any] = {"port": draw(st.integers(1, 65535))}
    if draw(st.booleans()):
        service["name"] = f"{name}-svc"
    if draw(st.booleans()):
        service["timeout"] = draw(st.sampled_from(["15s", "1m", "500ms"]))
    if draw(st.booleans()):
        retries: dict[str, Any] = {"attempts": draw(st.integers(0, 10))}
        if draw(st.booleans()):
            retries["perTryTimeout"] = draw(st.sampled_from(["5s", "30s"]))
        if draw(st.booleans()):
            retries["retryOn"] = ",".join(
                draw(
                    st.lists(
                        st.sampled_from(retry_events),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                )
            )
        service["retries"] = retries
    if draw(st.booleans()):
        service["match"] = [{"uri": {"prefix": "/" + draw(NAMES)}}]
    if draw(st.booleans()):
        service["apex"] = {"labels": {"team": draw(NAMES)}, "annotations": {"note": draw(NAMES)}}
    strategy = draw(st.sampled_from(["canary", "ab", "bluegreen"] if ab else ["canary", "bluegreen"]))
    analysis: dict[str, Any] = {"interval": "1m", "threshold": 2}
    if strategy == "canary":
        analysis |= {"stepWeight": 10, "maxWeight": 50}
    else:
        analysis["iterations"] = 3
    if strategy == "ab":
        analysis["match"] = draw(header_matches(header_kinds))
    spec = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": service,
        "analysis": analysis,
        **(extra_spec or {}),
    }
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": draw(st.sampled_from(["prod", "team-a"]))},
        "spec": spec,
    }


WEIGHTS = st.integers(0, 100).map(lambda w: (100 - w, w))


def check_render(
    doc: dict, weights: tuple[int, int], ingress: dict | None = None, session: SessionCookies | None = None
) -> list[dict]:
    """Render `doc` with `weights` and assert the router invariant; return the objects."""
    canary = load_canary(doc, "canary.yaml").canary
    router = router_for(canary, "canary.yaml")
    objects = router.render(canary, *weights, ingress=ingress, session=session)
    for obj in objects:
        assert schema_problems(obj) == [], obj
        assert validate_object(obj) == [], obj
    namespace, service = canary.namespace, canary.service_name
    ab = doc["spec"]["analysis"].get("match")
    assert service_field_problems(objects, doc, canary.provider, namespace) == []
    assert session_affinity_problems(objects, doc, canary.provider, namespace, weights) == []
    if canary.provider == "istio":
        (vs,) = [o for o in objects if o["kind"] == "VirtualService"]
        sticky = affinity_of(doc, canary.provider) is not None
        assert _route_problems(vs, service, namespace, weights, ab, sticky) == []
    else:
        assert (
            provider_routing_problems(objects, canary.provider, namespace, service, weights, ab, None, False)
            == []
        )
        assert routed_weights(objects, canary.provider, namespace, service)[0] == weights
    assert router.weights(canary, objects) == weights
    return objects
