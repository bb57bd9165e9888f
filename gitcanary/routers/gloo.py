# Follows Flagger's pkg/router/gloo.go (GlooRouter.Reconcile / SetRoutes / createFlaggerUpstream).
"""Gloo Edge: a `RouteTable` named after the apex service, weighting two generated `Upstream`s.

As Flagger's `pkg/router/gloo.go`: the Upstreams `<ns>-<svc>-primaryupstream-<port>` and
`<ns>-<svc>-canaryupstream-<port>` point at the `<svc>-primary` and `<svc>-canary` services on
`service.port`; the RouteTable's one route (`inheritablePathMatchers: true`, so your VirtualService's
delegating path applies) weights them. For A/B testing the route's matcher carries the
`analysis.match` headers (exact or regex). Gloo mirrors nothing Flagger asks for, so
`analysis.mirror` is refused. A weight of 0 is left out, as Flagger's `omitempty` leaves it out.

Two differences, both because the router writes files and reads no cluster: the Upstreams carry no
`kube.selector` (Flagger copies the Service's; without it Gloo takes every endpoint of that Service,
which are the same pods), and `spec.upstreamRef` (settings copied from another Upstream) is not read.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY, apex_metadata
from gitcanary.spec.models import Canary

ROUTE_TABLE = ("gateway.solo.io/v1", "RouteTable")
UPSTREAM = ("gloo.solo.io/v1", "Upstream")


def upstream_name(canary: Canary, role: str) -> str:
    """Flagger's `<namespace>-<apex>-<role>upstream-<port>` (role: primary or canary)."""
    return f"{canary.namespace}-{canary.service_name}-{role}upstream-{canary.spec.service.port}"


def _matchers(canary: Canary) -> list[dict[str, Any]]:
    """Flagger's getMatchers: one matcher with every A/B header, or none. (Flagger also copies a
    match's `method`, which its Canary CRD does not let `analysis.match` hold.)"""
    headers: list[dict[str, Any]] = []
    for condition in canary.spec.analysis.match:
        for name, value in (condition.get("headers") or {}).items():
            if value.get("regex"):
                headers.append({"name": name, "value": str(value["regex"]), "regex": True})
            else:
                header: dict[str, Any] = {"name": name}
                if value.get("exact"):
                    header["value"] = str(value["exact"])
                headers.append(header)
    return [{"headers": headers}] if headers else []


def _upstream(canary: Canary, role: str) -> dict[str, Any]:
    return {
        "apiVersion": UPSTREAM[0],
        "kind": UPSTREAM[1],
        "metadata": {
            "name": upstream_name(canary, role),
            "namespace": canary.namespace,
            "labels": dict(MANAGED_BY),
        },
        "spec": {
            "kube": {
                "serviceName": f"{canary.service_name}-{role}",
                "serviceNamespace": canary.namespace,
                "servicePort": canary.spec.service.port,
            }
        },
    }


class GlooRouter:
    provider = "gloo"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        destinations = []
        for role, weight in (("primary", primary_weight), ("canary", canary_weight)):
            destination: dict[str, Any] = {
                "destination": {
                    "upstream": {"name": upstream_name(canary, role), "namespace": canary.namespace}
                }
            }
            if weight:
                destination["weight"] = weight
            destinations.append(destination)
        route: dict[str, Any] = {"inheritablePathMatchers": True}
        matchers = _matchers(canary)
        if matchers:
            route["matchers"] = matchers
        route["routeAction"] = {"multi": {"destinations": destinations}}
        table = {
            "apiVersion": ROUTE_TABLE[0],
            "kind": ROUTE_TABLE[1],
            "metadata": apex_metadata(canary),
            "spec": {"routes": [route]},
        }
        return [table, _upstream(canary, "primary"), _upstream(canary, "canary")]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        for obj in objects:
            if (
                obj.get("kind") != ROUTE_TABLE[1]
                or obj.get("metadata", {}).get("name") != canary.service_name
            ):
                continue
            route = ((obj.get("spec") or {}).get("routes") or [{}])[0]
            found = {
                ((d.get("destination") or {}).get("upstream") or {}).get("name"): int(d.get("weight", 0))
                for d in ((route.get("routeAction") or {}).get("multi") or {}).get("destinations") or []
            }
            return found.get(upstream_name(canary, "primary"), 0), found.get(
                upstream_name(canary, "canary"), 0
            )
        return None
