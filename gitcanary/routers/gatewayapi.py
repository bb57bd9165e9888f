"""Gateway API: an `HTTPRoute` named after the apex service, attached to `service.gatewayRefs`.

Shaped like Flagger's `pkg/router/gateway_api.go`: one rule whose `backendRefs` are the primary
and canary services with their weights; the Canary's Istio-style `service.match` becomes the rule's
`matches` (default: every path); A/B testing merges `analysis.match` into the first rule and adds a
second rule sending everyone else to the primary; blue/green mirroring adds a `RequestMirror` filter.
"""

from __future__ import annotations

import copy
from typing import Any

from gitcanary.errors import RenderError
from gitcanary.routers import affinity
from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY
from gitcanary.spec.models import Canary

DEFAULT_MATCH: dict[str, Any] = {"path": {"type": "PathPrefix", "value": "/"}}


# Istio HTTPMatchRequest fields an HTTPRouteMatch has a place for (`name` only labels the match).
_EXPRESSED = frozenset({"uri", "method", "headers", "queryParams", "name"})


def _string_match(kind: str, name: str, value: dict[str, Any], where: str) -> dict[str, Any]:
    if value.get("exact"):
        return {"name": name, "type": "Exact", "value": value["exact"]}
    if value.get("regex"):
        return {"name": name, "type": "RegularExpression", "value": value["regex"]}
    raise RenderError(f"{where}: Gateway API {kind} matches support exact and regex only, got {value}")


def route_matches(matches: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Istio HTTPMatchRequests (the Canary's vocabulary) as Gateway API HTTPRouteMatches."""
    out = []
    for request in matches:
        # What an HTTPRouteMatch cannot hold (authority, withoutHeaders, scheme, port, source...) is
        # refused: dropping it would widen the match, down to every path when nothing else is left.
        unexpressed = sorted(
            key
            for key, value in request.items()
            if key not in _EXPRESSED and not (key == "ignoreUriCase" and not value)
        )
        if unexpressed:
            raise RenderError(
                f"{where}: Gateway API route matches cannot express {', '.join(unexpressed)}; "
                "without them the rule would match more requests than asked"
            )
        match: dict[str, Any] = {}
        uri = request.get("uri")
        if uri:
            for key, kind in (("regex", "RegularExpression"), ("exact", "Exact"), ("prefix", "PathPrefix")):
                if uri.get(key):
                    match["path"] = {"type": kind, "value": uri[key]}
                    break
            else:
                raise RenderError(f"{where}: Gateway API does not support the uri match {uri}")
        method = request.get("method")
        if method:
            if not method.get("exact"):
                raise RenderError(f"{where}: Gateway API supports exact method matches only, got {method}")
            match["method"] = method["exact"]
        headers = [_string_match("header", k, v, where) for k, v in (request.get("headers") or {}).items()]
        if headers:
            match["headers"] = headers
        params = [_string_match("query", k, v, where) for k, v in (request.get("queryParams") or {}).items()]
        if params:
            match["queryParams"] = params
        if match:
            out.append(match)
    return out


def merge_matches(analysis: list[dict[str, Any]], service: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flagger's `mergeMatchConditions`: each service match, once per A/B condition's headers/params."""
    if not analysis:
        return service
    if not service:
        return analysis
    merged = []
    for condition in analysis:
        for default in service:
            item = dict(default)
            for key in ("headers", "queryParams"):
                if condition.get(key):
                    item[key] = condition[key]
            merged.append(item)
    return merged


def _filters(canary: Canary) -> list[dict[str, Any]]:
    svc = canary.spec.service
    filters: list[dict[str, Any]] = []
    for direction, kind in (("request", "RequestHeaderModifier"), ("response", "ResponseHeaderModifier")):
        spec = (svc.headers or {}).get(direction)
        if not spec:
            continue
        modifier: dict[str, Any] = {}
        for op in ("add", "set"):
            if spec.get(op):
                modifier[op] = [{"name": k, "value": v} for k, v in sorted(spec[op].items())]
        if spec.get("remove"):
            modifier["remove"] = list(spec["remove"])
        filters.append({"type": kind, kind[0].lower() + kind[1:]: modifier})
    if svc.rewrite:
        rewrite: dict[str, Any] = {}
        if svc.rewrite.get("authority"):
            rewrite["hostname"] = svc.rewrite["authority"]
        if svc.rewrite.get("uri"):
            kind = svc.rewrite.get("type") or "ReplacePrefixMatch"
            key = "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch"
            rewrite["path"] = {"type": kind, key: svc.rewrite["uri"]}
        filters.append({"type": "URLRewrite", "urlRewrite": rewrite})
    for mirror in svc.mirror:
        # service.mirror: Flagger's makeFilters adds one RequestMirror filter per entry, after the rewrite.
        filters.append({"type": "RequestMirror", "requestMirror": dict(mirror)})
    return filters


def _set_cookie(value: str) -> dict[str, Any]:
    header = {"name": affinity.SET_COOKIE_HEADER, "value": value}
    return {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [header]}}


def _cookie_match(cookie: str) -> dict[str, Any]:
    regex = affinity.cookie_regex(cookie)
    return {"headers": [{"name": affinity.COOKIE_HEADER, "type": "RegularExpression", "value": regex}]}


class GatewayAPIRouter:
    def __init__(self, provider: str, api_version: str) -> None:
        self.provider = provider
        self.api_version = api_version

    def _backend(self, canary: Canary, name: str, weight: int) -> dict[str, Any]:
        port = canary.spec.service.port
        return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}

    def _rule(
        self,
        canary: Canary,
        matches: list[dict[str, Any]],
        backends: list[dict[str, Any]],
        extra_filters: tuple[dict[str, Any], ...] = (),
    ) -> dict[str, Any]:
        rule: dict[str, Any] = {"matches": matches}
        filters = [*_filters(canary), *extra_filters]
        if filters:
            rule["filters"] = filters
        rule["backendRefs"] = backends
        if canary.spec.service.timeout:
            rule["timeouts"] = {"request": canary.spec.service.timeout}
        return rule

    def _sticky_rules(
        self, canary: Canary, weighted: dict[str, Any], session: SessionCookies
    ) -> list[dict[str, Any]]:
        """Flagger's getSessionAffinityRouteRules for Gateway API (see routers/affinity.py)."""
        settings = canary.spec.analysis.session_affinity
        assert settings is not None
        name = canary.service_name
        service_matches = route_matches(canary.spec.service.match, f"Canary {canary.key}: spec.service.match")
        if session.canary:
            sticky_canary = copy.deepcopy(weighted)
            sticky_canary["matches"] = merge_matches([_cookie_match(session.canary)], service_matches)
            sticky_canary["backendRefs"] = [
                self._backend(canary, f"{name}-primary", 0),
                self._backend(canary, f"{name}-canary", 100),
            ]
            rules = [sticky_canary]
            if session.primary:
                sticky_primary = copy.deepcopy(weighted)
                sticky_primary["matches"] = merge_matches([_cookie_match(session.primary)], service_matches)
                sticky_primary["backendRefs"] = [
                    self._backend(canary, f"{name}-primary", 100),
                    self._backend(canary, f"{name}-canary", 0),
                ]
                rules.append(sticky_primary)
            for ref in weighted["backendRefs"]:
                if ref["name"] == f"{name}-canary":
                    cookie = affinity.build_cookie(settings, session.canary, settings.max_age)
                elif ref["name"] == f"{name}-primary" and session.primary:
                    interval = int(canary.spec.analysis.interval_seconds)
                    cookie = affinity.build_cookie(settings, session.primary, interval)
                else:
                    continue
                ref["filters"] = [_set_cookie(cookie)]
            return [*rules, weighted]
        sticky = copy.deepcopy(weighted)
        if session.previous:
            sticky["matches"] = merge_matches([_cookie_match(session.previous)], service_matches)
            sticky["filters"] = [*sticky.get("filters", []), _set_cookie(affinity.expired(session.previous))]
        return [sticky, weighted]

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
        where = f"Canary {canary.key}: spec.service.match"
        matches = route_matches(svc.match, where) or [dict(DEFAULT_MATCH)]
        mirror: tuple[dict[str, Any], ...] = ()
        if mirrored and canary.spec.analysis.iterations > 0:
            # Flagger mirrors on Gateway API in blue/green mode only.
            ref = {"group": "", "kind": "Service", "name": f"{name}-canary", "port": svc.port}
            mirror = ({"type": "RequestMirror", "requestMirror": {"backendRef": ref}},)
        weighted = self._rule(
            canary,
            matches,
            [
                self._backend(canary, f"{name}-primary", primary_weight),
                self._backend(canary, f"{name}-canary", canary_weight),
            ],
            mirror,
        )
        rules = [weighted]
        if canary.spec.analysis.session_affinity is not None and not canary.spec.analysis.match:
            # With A/B testing the affinity is not rendered (load warns): Flagger would overwrite the
            # sticky rule's cookie match with the A/B conditions.
            rules = self._sticky_rules(canary, weighted, session or SessionCookies())
        if canary.spec.analysis.match:
            analysis = route_matches(canary.spec.analysis.match, f"Canary {canary.key}: spec.analysis.match")
            weighted["matches"] = merge_matches(analysis, matches)
            rules.append(self._rule(canary, matches, [self._backend(canary, f"{name}-primary", 100)]))
        spec: dict[str, Any] = {"parentRefs": [dict(ref) for ref in svc.gateway_refs]}
        if svc.hosts:
            spec["hostnames"] = list(svc.hosts)
        spec["rules"] = rules
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": canary.namespace,
            "labels": {**((svc.apex or {}).get("labels") or {}), **MANAGED_BY},
        }
        if (svc.apex or {}).get("annotations"):
            metadata["annotations"] = dict(svc.apex["annotations"])  # type: ignore[index]
        return [{"apiVersion": self.api_version, "kind": "HTTPRoute", "metadata": metadata, "spec": spec}]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary.service_name
        for obj in objects:
            if obj.get("kind") != "HTTPRoute" or obj.get("metadata", {}).get("name") != name:
                continue
            primary = canary_weight = 0
            for rule in obj.get("spec", {}).get("rules") or []:
                refs = rule.get("backendRefs") or []
                if len(refs) != 2:  # A/B: the everyone-else rule has the primary alone
                    continue
                for ref in refs:
                    if ref.get("name") == f"{name}-primary":
                        primary = int(ref.get("weight", 1))
                    elif ref.get("name") == f"{name}-canary":
                        canary_weight = int(ref.get("weight", 1))
            return primary, canary_weight
        return None
