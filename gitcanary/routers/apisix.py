# Follows Flagger's pkg/router/apisix.go (ApisixRouter.Reconcile / SetRoutes).
"""APISIX: a generated `<route>-<svc>-canary` ApisixRoute next to the user's own (`spec.routeRef`).

As Flagger's `pkg/router/apisix.go`: of the user's ApisixRoute, the HTTP route whose one backend is
the apex service is copied, with priority 10000 (so it wins over the user's route), its backend
pointed at `<svc>-primary` and a second backend `<svc>-canary` (same port, resolveGranularity and
subset) added; the two carry the weights. The copy keeps the user's labels and annotations. The
user's ApisixRoute is left untouched. APISIX matches no requests and mirrors nothing for Flagger, so
A/B testing and `analysis.mirror` are refused.
"""

from __future__ import annotations

import copy
from typing import Any

from gitcanary.errors import RenderError
from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY, object_to_copy
from gitcanary.spec.models import Canary

MAX_PRIORITY = 10000


def canary_route_name(canary: Canary) -> str:
    ref = canary.spec.route_ref
    return f"{ref.name if ref else canary.service_name}-{canary.service_name}-canary"


class ApisixRouter:
    provider = "apisix"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        ref, ingress = object_to_copy(
            canary, "routeRef", canary.spec.route_ref, ingress, "the ApisixRoute to copy"
        )
        apex = canary.service_name
        routes = (ingress.get("spec") or {}).get("http") or []
        target = next(
            (r for r in routes if any(b.get("serviceName") == apex for b in r.get("backends") or [])), None
        )
        if target is None:
            raise RenderError(
                f"Canary {canary.key}: spec.routeRef: ApisixRoute {ref.name} has no backend {apex}"
            )
        route = copy.deepcopy(target)
        if len(route.get("backends") or []) != 1:
            raise RenderError(
                f"Canary {canary.key}: spec.routeRef: ApisixRoute {ref.name}, http route "
                f"{route.get('name')}: only one backend is supported (as in Flagger)"
            )
        route["priority"] = MAX_PRIORITY
        primary = route["backends"][0]
        primary["serviceName"] = f"{apex}-primary"
        primary["weight"] = primary_weight
        second: dict[str, Any] = {"serviceName": f"{apex}-canary", "servicePort": primary.get("servicePort")}
        for key in ("resolveGranularity", "subset"):
            if primary.get(key):
                second[key] = primary[key]
        second["weight"] = canary_weight
        route["backends"].append(second)
        meta = ingress.get("metadata") or {}
        metadata: dict[str, Any] = {
            "name": canary_route_name(canary),
            "namespace": canary.namespace,
            "labels": {**(meta.get("labels") or {}), **MANAGED_BY},
        }
        if meta.get("annotations"):
            metadata["annotations"] = dict(meta["annotations"])
        spec = {**copy.deepcopy(ingress.get("spec") or {}), "http": [route]}
        return [
            {
                "apiVersion": ingress.get("apiVersion", "apisix.apache.org/v2"),
                "kind": "ApisixRoute",
                "metadata": metadata,
                "spec": spec,
            }
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name, apex = canary_route_name(canary), canary.service_name
        for obj in objects:
            if obj.get("kind") != "ApisixRoute" or obj.get("metadata", {}).get("name") != name:
                continue
            found: dict[str, int] = {}
            for route in (obj.get("spec") or {}).get("http") or []:
                for backend in route.get("backends") or []:
                    found[backend.get("serviceName")] = int(backend.get("weight", 0))
            return found.get(f"{apex}-primary", 0), found.get(f"{apex}-canary", 0)
        return None
