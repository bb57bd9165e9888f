"""Istio: a VirtualService holding the weights, and a DestinationRule per subset service.

Shaped like Flagger's `pkg/router/istio.go`: one HTTP route carrying the canary's match,
rewrite, timeout, retries, headers and CORS policy, with the primary and canary as weighted
destinations; DestinationRules carry `service.trafficPolicy`.
"""

from __future__ import annotations

import copy
from typing import Any

from gitcanary.routers import affinity
from gitcanary.routers.affinity import SessionCookies
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
    """One HTTP route with the service's settings, each its own copy (no object shared between routes,
    which a YAML writer would turn into anchors and aliases)."""
    svc = canary.spec.model_copy(deep=True).service
    http: dict[str, Any] = {}
    if match:
        http["match"] = copy.deepcopy(match)
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


def _cookie_match(cookie: str) -> dict[str, Any]:
    return {"headers": {affinity.COOKIE_HEADER: {"regex": affinity.cookie_regex(cookie)}}}


def _sticky_routes(canary: Canary, weighted: dict[str, Any], session: SessionCookies) -> list[dict[str, Any]]:
    """Flagger's getSessionAffinityRouteRules: sticky routes ahead of the weighted one.

    The weighted route's canary destination sets the canary cookie (and, with primaryCookieName, its
    primary destination the primary cookie); a route matching the canary cookie sends everything to
    the canary, one matching the primary cookie everything to the primary. At weight 0 the route
    matching the last run's cookie expires it; before any run it is the weighted route again.
    """
    settings = canary.spec.analysis.session_affinity
    assert settings is not None
    svc = canary.spec.service
    name = canary.service_name
    primary_host, canary_host = f"{name}-primary", f"{name}-canary"
    if session.canary:
        for dest in weighted["route"]:
            host = dest["destination"]["host"]
            if host == canary_host:
                value = affinity.build_cookie(settings, session.canary, settings.max_age)
            elif host == primary_host and session.primary:
                interval = int(canary.spec.analysis.interval_seconds)
                value = affinity.build_cookie(settings, session.primary, interval)
            else:
                continue
            dest["headers"] = {"response": {"add": {affinity.SET_COOKIE_HEADER: value}}}
        sticky_canary = _http_route(
            canary,
            merge_match_conditions([_cookie_match(session.canary)], svc.match),
            [
                {"destination": _destination(canary, primary_host), "weight": 0},
                {"destination": _destination(canary, canary_host), "weight": 100},
            ],
        )
        if not session.primary:
            return [sticky_canary, weighted]
        sticky_primary = _http_route(
            canary,
            merge_match_conditions([_cookie_match(session.primary)], svc.match),
            [
                {"destination": _destination(canary, primary_host), "weight": 100},
                {"destination": _destination(canary, canary_host), "weight": 0},
            ],
        )
        return [sticky_canary, sticky_primary, weighted]
    sticky = copy.deepcopy(weighted)
    if session.previous:
        sticky["match"] = merge_match_conditions([_cookie_match(session.previous)], svc.match)
        headers = sticky.setdefault("headers", {})
        response = headers.setdefault("response", {})
        response["add"] = {
            **(response.get("add") or {}),
            affinity.SET_COOKIE_HEADER: affinity.expired(session.previous),
        }
    # Flagger's order puts `match` first; keep the key order of the other routes.
    return [_reordered(sticky), weighted]


def _reordered(route: dict[str, Any]) -> dict[str, Any]:
    order = ("match", "rewrite", "timeout", "retries", "headers", "corsPolicy", "route")
    return {key: route[key] for key in order if key in route}


class IstioRouter:
    provider = "istio"

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
            if canary.spec.analysis.session_affinity is not None:
                # Flagger's A/B routes replace the sticky ones: affinity applies to weighted canaries.
                http = _sticky_routes(canary, http[0], session or SessionCookies())
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
            routes = obj.get("spec", {}).get("http") or []
            # The first route carries the weights (with A/B, the second is everyone else); with
            # session affinity the sticky routes come first and the weighted route is the last.
            sticky = canary.spec.analysis.session_affinity is not None and not canary.spec.analysis.match
            for http in routes[-1:] if sticky else routes[:1]:
                for dest in http.get("route") or []:
                    host = dest.get("destination", {}).get("host")
                    if host == f"{name}-primary":
                        primary = int(dest.get("weight", 0))
                    elif host == f"{name}-canary":
                        canary_weight = int(dest.get("weight", 0))
            return primary, canary_weight
        return None
