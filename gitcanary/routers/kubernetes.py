"""The `kubernetes` provider: no traffic router, blue/green only (Flagger's NopRouter).

The apex Service selects the primary; promotion copies the canary's spec into the primary, which
is the switch. Nothing is written for routing.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.spec.models import Canary


class KubernetesRouter:
    provider = "kubernetes"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        return []

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        return None
