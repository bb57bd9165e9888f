"""The one interface every router implements (Flagger's `pkg/router/router.go`, written to Git)."""

from __future__ import annotations

from typing import Any, Protocol

from gitcanary.routers.affinity import SessionCookies
from gitcanary.spec.models import Canary

# The label on every object gitcanary renders: routers and the primary's renderer set it alike.
MANAGED_BY = {"app.kubernetes.io/managed-by": "gitcanary"}


def apex_metadata(canary: Canary) -> dict[str, Any]:
    """The apex object's metadata: `service.apex` labels and annotations (Flagger's newMetadata)."""
    apex = canary.spec.service.apex or {}
    meta: dict[str, Any] = {
        "name": canary.service_name,
        "namespace": canary.namespace,
        "labels": {**(apex.get("labels") or {}), **MANAGED_BY},
    }
    if apex.get("annotations"):
        meta["annotations"] = dict(apex["annotations"])
    return meta


class Router(Protocol):
    provider: str

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        """The routing objects with these weights; `mirrored` copies requests to the canary.

        `ingress` is the user's Ingress named by `spec.ingressRef` (ingress providers clone it).
        `session` holds the session-affinity cookies of this step (`routers.affinity`); the routers
        Flagger renders `analysis.sessionAffinity` on (Istio, Gateway API) read it, the others ignore it.
        An empty list means the provider has no routing object (`kubernetes`).
        """
        ...

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        """(primary, canary) weights found in `objects`, None if the routing object is absent."""
        ...
