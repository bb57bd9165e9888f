# Follows Flagger's pkg/router/traefik.go (TraefikRouter.Reconcile / SetRoutes).
"""Traefik: a weighted `TraefikService` named after the apex service.

As Flagger's `pkg/router/traefik.go`: `spec.weighted.services` lists the primary service and, while
the canary has a weight, the canary service, each on `service.port` in the canary's namespace. Your
IngressRoute sends to the TraefikService `<svc>` (kind `TraefikService`). Labels and annotations come
from `service.apex`. Traefik has no request matching or mirroring Flagger drives, so A/B testing and
`analysis.mirror` are refused.

One difference, on purpose: a primary weight of 0 is written `weight: 0`. Flagger's `omitempty`
leaves it out, and Traefik reads an unset weight as 1, so the primary would keep 1% of the traffic
in the last step of a blue/green switch.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import apex_metadata
from gitcanary.spec.models import Canary

API_VERSION = "traefik.io/v1alpha1"
KIND = "TraefikService"


class TraefikRouter:
    provider = "traefik"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        name, port = canary.service_name, canary.spec.service.port
        services = [
            {"name": f"{name}-primary", "namespace": canary.namespace, "port": port, "weight": primary_weight}
        ]
        if canary_weight > 0:
            services.append(
                {
                    "name": f"{name}-canary",
                    "namespace": canary.namespace,
                    "port": port,
                    "weight": canary_weight,
                }
            )
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": apex_metadata(canary),
                "spec": {"weighted": {"services": services}},
            }
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != KIND or obj.get("metadata", {}).get("name") != name:
                continue
            services = ((obj.get("spec") or {}).get("weighted") or {}).get("services") or []
            found = {s.get("name"): int(s.get("weight", 1)) for s in services}
            return found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)
        return None
