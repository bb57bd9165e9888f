"""Traffic routers: one module per mesh, each rendering the object that mesh reads weights from.

Pure: `render` turns a canary and weights into manifests, `weights` reads them back.
"""

from __future__ import annotations

from typing import Any, Protocol

from gitcanary.errors import SpecError
from gitcanary.spec.models import Canary


class Router(Protocol):
    provider: str

    def render(self, canary: Canary, primary_weight: int, canary_weight: int) -> list[dict[str, Any]]:
        """The routing objects with these weights."""
        ...

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        """(primary, canary) weights found in `objects`, None if the routing object is absent."""
        ...


def router_for(canary: Canary, source: str) -> Router:
    from gitcanary.routers.istio import IstioRouter

    routers: dict[str, Router] = {"istio": IstioRouter()}
    router = routers.get(canary.provider)
    if router is None:
        raise SpecError(
            source,
            "spec.provider",
            f"{canary.provider!r} is not supported yet (supported: {', '.join(sorted(routers))})",
        )
    return router
