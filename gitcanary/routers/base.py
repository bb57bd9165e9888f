"""The one interface every router implements (Flagger's `pkg/router/router.go`, written to Git)."""

from __future__ import annotations

from typing import Any, Protocol

from gitcanary.errors import RenderError
from gitcanary.routers.affinity import SessionCookies
from gitcanary.spec.models import Canary, TargetRef

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


def object_to_copy(
    canary: Canary, field: str, ref: TargetRef | None, obj: dict[str, Any] | None, needs: str
) -> tuple[TargetRef, dict[str, Any]]:
    """The user's object a router copies (`spec.ingressRef`, `spec.routeRef`) and its reference.

    `needs` says what for ("the Ingress to clone"). A RenderError names the field when the Canary has
    no reference, or the app directory does not build the object it names.
    """
    if ref is None or obj is None:
        raise RenderError(
            f"Canary {canary.key}: spec.{field}: provider {canary.provider} needs {needs}"
            + ("" if ref is None else f" ({ref.name} is not in what the app directory builds)")
        )
    return ref, obj


def apex_ingress_paths(
    canary: Canary, ref: TargetRef, spec: dict[str, Any]
) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """(the rule's paths, the path) for each Ingress path whose backend is the apex service.

    Listed before any router edits `spec`, so a router may append to a rule's paths while it walks
    them; a RenderError when no path sends to the apex (there would be nothing to route).
    """
    apex = canary.service_name
    found = [
        (paths, path)
        for rule in spec.get("rules") or []
        for paths in [(rule.get("http") or {}).get("paths") or []]
        for path in paths
        if ((path.get("backend") or {}).get("service") or {}).get("name") == apex
    ]
    if not found:
        raise RenderError(
            f"Canary {canary.key}: spec.ingressRef: Ingress {ref.name} has no backend for service {apex}"
        )
    return found


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
