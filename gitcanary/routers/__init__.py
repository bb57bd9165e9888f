"""Traffic routers: one module per mesh, each rendering the object that mesh reads weights from.

Pure: `render` turns a canary and weights into manifests, `weights` reads them back. The shape is
Flagger's router interface (`SetRoutes(canary, primaryWeight, canaryWeight, mirrored)` /
`GetRoutes`), with the routing object written to Git instead of the API server.
"""

from __future__ import annotations

from typing import Any, Protocol

from gitcanary.errors import SpecError
from gitcanary.spec.models import Canary


class Router(Protocol):
    provider: str

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The routing objects with these weights; `mirrored` copies requests to the canary.

        `ingress` is the user's Ingress named by `spec.ingressRef` (ingress providers clone it).
        An empty list means the provider has no routing object (`kubernetes`).
        """
        ...

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        """(primary, canary) weights found in `objects`, None if the routing object is absent."""
        ...


def router_for(canary: Canary, source: str) -> Router:
    """The router of `spec.provider`, after checking the canary asks only for what it can render."""
    from gitcanary.routers.providers import resolve

    return resolve(canary, source)


__all__ = ["Router", "SpecError", "router_for"]
