# Follows Flagger's pkg/router/contour.go (ContourRouter.Reconcile / SetRoutes).
"""Contour: an `HTTPProxy` named after the apex service, its first route weighting primary and canary.

As Flagger's `pkg/router/contour.go`: one route on the prefix of `service.match[0].uri.prefix` (or
`/`) carrying `service.timeout` (with a 5m idle timeout) and `service.retries`, whose two services,
primary and canary, each set Linkerd's `l5d-dst-override` header. For A/B testing the first route
has one condition per `analysis.match` header and carries the weights; a second route keeps
everyone else on the primary. Contour mirrors nothing Flagger asks for, so `analysis.mirror` is
refused. A weight of 0 is left out, as Flagger's `omitempty` leaves it out: Contour reads an unset
weight as 0 when another service of the route has one.
"""

from __future__ import annotations

from typing import Any

from gitcanary.errors import RenderError
from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import apex_metadata
from gitcanary.spec.models import Canary

API_VERSION = "projectcontour.io/v1"
KIND = "HTTPProxy"


def prefix(canary: Canary) -> str:
    """Flagger's makePrefix: the first service match's URI prefix, or `/`."""
    match = canary.spec.service.match
    uri = (match[0].get("uri") or {}) if match else {}
    return str(uri.get("prefix") or "/")


def _header_conditions(canary: Canary) -> list[dict[str, Any]]:
    """Flagger's makeConditions: one condition per A/B header; prefix and suffix become `contains`."""
    out = []
    for condition in canary.spec.analysis.match:
        for name, value in (condition.get("headers") or {}).items():
            header: dict[str, Any] = {"name": name}
            if value.get("prefix"):
                header["contains"] = str(value["prefix"])
            elif value.get("suffix"):
                header["contains"] = str(value["suffix"])
            elif value.get("exact"):
                header["exact"] = str(value["exact"])
            else:
                raise RenderError(
                    f"Canary {canary.key}: spec.analysis.match: header {name}: provider contour matches "
                    "headers by exact, prefix or suffix only"
                )
            out.append({"prefix": prefix(canary), "header": header})
    return out


def _retry_policy(canary: Canary) -> dict[str, Any] | None:
    retries = canary.spec.service.retries
    if not retries:
        return None
    policy: dict[str, Any] = {"count": int(retries.get("attempts") or 0)}
    if retries.get("perTryTimeout"):
        policy["perTryTimeout"] = str(retries["perTryTimeout"])
    if retries.get("retryOn"):
        policy["retryOn"] = str(retries["retryOn"]).split(",")
    return policy


def _route(
    canary: Canary, conditions: list[dict[str, Any]], primary: int, canary_weight: int
) -> dict[str, Any]:
    name, svc = canary.service_name, canary.spec.service
    route: dict[str, Any] = {"conditions": conditions}
    if svc.timeout:
        route["timeoutPolicy"] = {"response": svc.timeout, "idle": "5m"}
    retry = _retry_policy(canary)
    if retry is not None:
        route["retryPolicy"] = retry
    services = []
    for backend, weight in ((f"{name}-primary", primary), (f"{name}-canary", canary_weight)):
        service: dict[str, Any] = {"name": backend, "port": svc.port}
        if weight:
            service["weight"] = weight
        # Linkerd (when meshed) routes by this header, not by the Host Contour forwards.
        host = f"{backend}.{canary.namespace}.svc.cluster.local:{svc.port}"
        service["requestHeadersPolicy"] = {"set": [{"name": "l5d-dst-override", "value": host}]}
        services.append(service)
    route["services"] = services
    return route


class ContourRouter:
    provider = "contour"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        plain = [{"prefix": prefix(canary)}]
        if canary.spec.analysis.match:
            routes = [
                _route(canary, _header_conditions(canary), primary_weight, canary_weight),
                _route(canary, plain, 100, 0),
            ]
        else:
            routes = [_route(canary, plain, primary_weight, canary_weight)]
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": apex_metadata(canary),
                "spec": {"routes": routes},
            }
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != KIND or obj.get("metadata", {}).get("name") != name:
                continue
            found = {
                s.get("name"): int(s.get("weight", 0))
                for s in ((obj.get("spec") or {}).get("routes") or [{}])[0].get("services") or []
            }
            return found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)
        return None
