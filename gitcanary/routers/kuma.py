# Follows Flagger's pkg/router/kuma.go (KumaRouter.Reconcile / SetRoutes).
"""Kuma: a cluster-scoped `TrafficRoute` named after the apex service, splitting it by weight.

As Flagger's `pkg/router/kuma.go`: from every service (`kuma.io/service: "*"`) to the apex
`<svc>_<ns>_svc_<port>`, `conf.split` sends `weight` percent to `<svc>-primary_<ns>_svc_<port>` and
to `<svc>-canary_<ns>_svc_<port>`. The object has no namespace (TrafficRoute is cluster-scoped) and
belongs to the mesh the Canary's `kuma.io/mesh` annotation names (`default` without it). Labels and
annotations come from `service.apex`. A TrafficRoute matches no requests and mirrors nothing, so
A/B testing and `analysis.mirror` are refused.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import apex_metadata
from gitcanary.spec.models import Canary

API_VERSION = "kuma.io/v1alpha1"
KIND = "TrafficRoute"
MESH_ANNOTATION = "kuma.io/mesh"


def kuma_service(canary: Canary, name: str) -> str:
    """Kuma's name for a Kubernetes service port: `<name>_<namespace>_svc_<port>`."""
    return f"{name}_{canary.namespace}_svc_{canary.spec.service.port}"


class KumaRouter:
    provider = "kuma"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        name = canary.service_name
        metadata = apex_metadata(canary)
        del metadata["namespace"]  # cluster-scoped
        split = [
            {"weight": weight, "destination": {"kuma.io/service": kuma_service(canary, f"{name}-{role}")}}
            for role, weight in (("primary", primary_weight), ("canary", canary_weight))
        ]
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": metadata,
                "mesh": canary.metadata.annotations.get(MESH_ANNOTATION, "default"),
                "spec": {
                    "sources": [{"match": {"kuma.io/service": "*"}}],
                    "destinations": [{"match": {"kuma.io/service": kuma_service(canary, name)}}],
                    "conf": {"split": split},
                },
            }
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != KIND or obj.get("metadata", {}).get("name") != name:
                continue
            found = {
                (s.get("destination") or {}).get("kuma.io/service"): int(s.get("weight", 0))
                for s in ((obj.get("spec") or {}).get("conf") or {}).get("split") or []
            }
            return (
                found.get(kuma_service(canary, f"{name}-primary"), 0),
                found.get(kuma_service(canary, f"{name}-canary"), 0),
            )
        return None
