"""Istio: a VirtualService holding the weights, and a DestinationRule per subset service.

Shaped like Flagger's `pkg/router/istio.go`: one HTTP route carrying the canary's match,
rewrite, timeout, retries, headers and CORS policy, with the primary and canary as weighted
destinations; DestinationRules carry `service.trafficPolicy`.
"""

from __future__ import annotations

from typing import Any

from gitcanary.routers.base import MANAGED_BY
from gitcanary.spec.models import Canary

API_VERSION = "networking.istio.io/v1beta1"


def merge_match_conditions(
    analysis: list[dict[str, Any]], service: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Flagger's rule: every service match condition, once per A/B condition, with its headers,
    query parameters and source labels."""
    if not service:
        return [dict(condition) for condition in analysis]
    merged = []
    for condition in analysis:
        for default in service:
            item = dict(default)
            for key in ("headers", "queryParams", "sourceLabels"):
                if condition.get(key):
                    item[key] = condition[key]
            merged.append(item)
    return merged


def _http_route(canary: Canary, match: list[dict[str, Any]], route: list[dict[str, Any]]) -> dict[str, Any]:
    svc = canary.spec.service
    http: dict[str, Any] = {}
    if match:
        http["match"] = [dict(m) for m in match]
    if svc.rewrite:
        http["rewrite"] = dict(svc.rewrite)
    if svc.timeout:
        http["timeout"] = svc.timeout
    if svc.retries:
        http["retries"] = dict(svc.retries)
    if svc.headers:
        http["headers"] = dict(svc.headers)
    if svc.cors_policy:
        http["corsPolicy"] = dict(svc.cors_policy)
    http["route"] = route
    return http


def _destination(canary: Canary, host: str) -> dict[str, Any]:
    """Flagger's makeDestination: with port discovery behind an ingress gateway (the first gateway
    is not `mesh`), the destination names the service port, which the gateway needs to pick it."""
    svc = canary.spec.service
    if svc.port_discovery and svc.gateways and svc.gateways[0] != "mesh":
        return {"host": host, "port": {"number": svc.port}}
    return {"host": host}


class IstioRouter:
    provider = "istio"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        name = canary.service_name
        svc = canary.spec.service
        weighted = [
            {"destination": _destination(canary, f"{name}-primary"), "weight": primary_weight},
            {"destination": _destination(canary, f"{name}-canary"), "weight": canary_weight},
        ]
        if canary.spec.analysis.match:
            # A/B testing: the matched requests carry the weights; everyone else stays on the primary.
            http = [
                _http_route(canary, merge_match_conditions(canary.spec.analysis.match, svc.match), weighted),
                _http_route(canary, svc.match, [{"destination": weighted[0]["destination"], "weight": 100}]),
            ]
        else:
            http = [_http_route(canary, svc.match, weighted)]
        if mirrored:
            # Flagger's mirroring: the primary answers; a copy of each request (or `mirrorWeight`
            # percent of them) goes to the canary and its response is dropped.
            http[0]["mirror"] = {"host": f"{name}-canary"}
            if canary.spec.analysis.mirror_weight:
                http[0]["mirrorPercentage"] = {"value": float(canary.spec.analysis.mirror_weight)}
        hosts = [name, *[h for h in svc.hosts if h != name]]
        vs_spec: dict[str, Any] = {"hosts": hosts}
        if svc.gateways:
            vs_spec["gateways"] = list(svc.gateways)
        vs_spec["http"] = http
        virtual_service = {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": canary.namespace, "labels": dict(MANAGED_BY)},
            "spec": vs_spec,
        }
        rules = []
        for suffix in ("primary", "canary"):
            rule_spec: dict[str, Any] = {"host": f"{name}-{suffix}"}
            if svc.traffic_policy:
                rule_spec["trafficPolicy"] = dict(svc.traffic_policy)
            rules.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "DestinationRule",
                    "metadata": {
                        "name": f"{name}-{suffix}",
                        "namespace": canary.namespace,
                        "labels": dict(MANAGED_BY),
                    },
                    "spec": rule_spec,
                }
            )
        return [virtual_service, *rules]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != "VirtualService" or obj.get("metadata", {}).get("name") != name:
                continue
            primary = canary_weight = 0
            # The first route carries the weights (with A/B, the second is everyone else).
            for http in (obj.get("spec", {}).get("http") or [])[:1]:
                for dest in http.get("route") or []:
                    host = dest.get("destination", {}).get("host")
                    if host == f"{name}-primary":
                        primary = int(dest.get("weight", 0))
                    elif host == f"{name}-canary":
                        canary_weight = int(dest.get("weight", 0))
            return primary, canary_weight
        return None
