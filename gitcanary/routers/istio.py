"""Istio: a VirtualService holding the weights, and a DestinationRule per subset service.

Shaped like Flagger's `pkg/router/istio.go`: one HTTP route carrying the canary's match,
rewrite, timeout, retries, headers and CORS policy, with the primary and canary as weighted
destinations; DestinationRules carry `service.trafficPolicy`.
"""

from __future__ import annotations

from typing import Any

from gitcanary.render import MANAGED_BY
from gitcanary.spec.models import Canary

API_VERSION = "networking.istio.io/v1beta1"


class IstioRouter:
    provider = "istio"

    def render(self, canary: Canary, primary_weight: int, canary_weight: int) -> list[dict[str, Any]]:
        name = canary.service_name
        svc = canary.spec.service
        route: dict[str, Any] = {}
        if svc.match:
            route["match"] = [dict(m) for m in svc.match]
        if svc.rewrite:
            route["rewrite"] = dict(svc.rewrite)
        if svc.timeout:
            route["timeout"] = svc.timeout
        if svc.retries:
            route["retries"] = dict(svc.retries)
        if svc.headers:
            route["headers"] = dict(svc.headers)
        if svc.cors_policy:
            route["corsPolicy"] = dict(svc.cors_policy)
        route["route"] = [
            {"destination": {"host": f"{name}-primary"}, "weight": primary_weight},
            {"destination": {"host": f"{name}-canary"}, "weight": canary_weight},
        ]
        hosts = [name, *[h for h in svc.hosts if h != name]]
        vs_spec: dict[str, Any] = {"hosts": hosts}
        if svc.gateways:
            vs_spec["gateways"] = list(svc.gateways)
        vs_spec["http"] = [route]
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
            for http in obj.get("spec", {}).get("http") or []:
                for dest in http.get("route") or []:
                    host = dest.get("destination", {}).get("host")
                    if host == f"{name}-primary":
                        primary = int(dest.get("weight", 0))
                    elif host == f"{name}-canary":
                        canary_weight = int(dest.get("weight", 0))
            return primary, canary_weight
        return None
