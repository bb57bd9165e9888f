"""Generated Canaries for the routers' property tests (tests/test_routers_<name>.py).

`canaries(provider, ...)` draws Canary documents a provider must render: any weights pair, A/B with
header matches, blue/green, and the spec.service fields Flagger's routers read. `check_render` is the
invariant every router keeps for every one of them: each object valid against its CRD schema (the
oracle's copy in tests/data/crds and the one `gitcanary validate` ships), every field the oracle
knows equal to Flagger's, and the weights read back as written.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
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

from gitcanary.errors import SpecError
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


def canary_doc(provider: str, analysis: dict | None = None, service: dict | None = None, **spec: Any) -> dict:
    """The Canary `prod/backend` for `provider` the example tests share: a canary stepping 10 up to
    50 (blue/green or A/B when `analysis` sets `iterations`; a None value drops a key), port 80."""
    merged = {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50, **(analysis or {})}
    if "iterations" in (analysis or {}):
        merged = {k: v for k, v in merged.items() if k not in ("stepWeight", "maxWeight") or k in analysis}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 80, **(service or {})},
            "analysis": {k: v for k, v in merged.items() if v is not None},
            **spec,
        },
    }


def refused_field(doc: dict) -> str:
    """The field `router_for` names when it refuses the Canary `doc` (fails the test if it accepts it)."""
    with pytest.raises(SpecError) as caught:
        router_for(load_canary(doc, "canary.yaml").canary, "canary.yaml")
    return caught.value.field


def check_render(
    doc: dict, weights: tuple[int, int], ingress: dict | None = None, session: SessionCookies | None = None
) -> list[dict]:
    """Render `doc` with `weights` and assert the router invariant; return the objects.

    `ingress` is the user's object a router copies (an Ingress, an ApisixRoute): it must come out
    unchanged, and the routing checks read it beside what the router wrote, as the proxy does.
    """
    canary = load_canary(doc, "canary.yaml").canary
    router = router_for(canary, "canary.yaml")
    before = copy.deepcopy(ingress)
    objects = router.render(canary, *weights, ingress=ingress, session=session)
    assert ingress == before  # the user's own object is never changed
    for obj in objects:
        assert schema_problems(obj) == [], obj
        assert validate_object(obj) == [], obj
    namespace, service = canary.namespace, canary.service_name
    everything = [*objects, *([ingress] if ingress is not None else [])]
    user = ingress["metadata"]["name"] if ingress is not None and ingress["kind"] == "Ingress" else None
    ab = doc["spec"]["analysis"].get("match")
    assert service_field_problems(everything, doc, canary.provider, namespace) == []
    assert session_affinity_problems(objects, doc, canary.provider, namespace, weights) == []
    if canary.provider == "istio":
        (vs,) = [o for o in objects if o["kind"] == "VirtualService"]
        sticky = affinity_of(doc, canary.provider) is not None
        assert _route_problems(vs, service, namespace, weights, ab, sticky) == []
    else:
        assert (
            provider_routing_problems(
                everything, canary.provider, namespace, service, weights, ab, user, False
            )
            == []
        )
        assert routed_weights(everything, canary.provider, namespace, service, user)[0] == weights
    assert router.weights(canary, objects) == weights
    return objects
