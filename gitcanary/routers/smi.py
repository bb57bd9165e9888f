"""Linkerd and other SMI meshes: a `TrafficSplit` named after the apex service.

As Flagger's `pkg/router/smi_v1alpha2.go` / `smi_v1alpha3.go`: `spec.service` is the apex, the
primary and canary services are the two backends carrying the weights.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY
from gitcanary.spec.models import Canary


class SMIRouter:
    def __init__(self, provider: str, api_version: str) -> None:
        self.provider = provider
        self.api_version = api_version

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
        return [
            {
                "apiVersion": self.api_version,
                "kind": "TrafficSplit",
                "metadata": {"name": name, "namespace": canary.namespace, "labels": dict(MANAGED_BY)},
                "spec": {
                    "service": name,
                    "backends": [
                        {"service": f"{name}-primary", "weight": primary_weight},
                        {"service": f"{name}-canary", "weight": canary_weight},
                    ],
                },
            }
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != "TrafficSplit" or obj.get("metadata", {}).get("name") != name:
                continue
            found = {b.get("service"): int(b.get("weight", 0)) for b in obj["spec"].get("backends") or []}
            return found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)
        return None
