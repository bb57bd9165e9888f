# Follows Flagger's pkg/router/appmesh_v1beta2.go (AppMeshv1beta2Router.Reconcile / SetRoutes).
"""AWS App Mesh (v1beta2): VirtualNodes, VirtualRouters and VirtualServices as Flagger's router makes them.

As Flagger's `pkg/router/appmesh_v1beta2.go`:
- VirtualNodes `<svc>-primary` and `<svc>-canary`, listening on `service.targetPort` (or `port`) with
  protocol `grpc` when `service.portName` says so (else `http`), found by DNS
  (`<svc>-primary.<ns>.svc.cluster.local.`), selecting the pods by `app: <target>-primary` / `app:
  <target>` (Flagger's default selector label), with `service.backends` as virtual-service backends
  (an `arn:aws` one by ARN) and `/dev/stdout` access logs when the Canary's
  `appmesh.flagger.app/accesslog` annotation is `enabled`;
- the VirtualRouter and VirtualService `<svc>`: one route on `service.match[0].uri.prefix` (or `/`)
  weighting `<svc>-canary` and `<svc>-primary`, with `service.timeout` and `service.retries`; for A/B
  testing the weighted route `<svc>-a` (priority 10) matches the `analysis.match` headers and route
  `<svc>-b` (priority 20) keeps everyone else on the primary; the VirtualService carries App Mesh
  gateway annotations when `service.hosts` is set;
- the VirtualRouter and VirtualService `<svc>-canary`, all traffic to the canary node.
App Mesh mirrors nothing Flagger asks for, so `analysis.mirror` is refused.
"""

from __future__ import annotations

from typing import Any

from gitcanary.duration import parse_duration
from gitcanary.errors import RenderError
from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY, apex_metadata
from gitcanary.spec.models import Canary

API_VERSION = "appmesh.k8s.aws/v1beta2"
ACCESS_LOG = "appmesh.flagger.app/accesslog"
HTTP_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")


def _ms(value: str | None) -> int | None:
    """Go's time.ParseDuration in milliseconds, None when it does not parse (Flagger then omits it)."""
    try:
        return int(parse_duration(value) * 1000) if value else None
    except ValueError:
        return None


def _protocol(canary: Canary) -> str:
    return "grpc" if "grpc" in canary.spec.service.port_name else "http"


def _container_port(canary: Canary) -> int:
    target = canary.spec.service.target_port
    return target if isinstance(target, int) and target > 0 else canary.spec.service.port


def _route_timeout(canary: Canary) -> dict[str, Any] | None:
    ms = _ms(canary.spec.service.timeout)
    return {"perRequest": {"unit": "ms", "value": ms}} if ms is not None else None


def _retry_policy(canary: Canary) -> dict[str, Any] | None:
    retries = canary.spec.service.retries
    if retries is None:
        return None
    per_try = _ms(retries.get("perTryTimeout"))
    events = str(retries["retryOn"]).split(",") if retries.get("retryOn") else ["gateway-error"]
    unknown = [event for event in events if event not in HTTP_RETRY_EVENTS]
    if unknown:
        # Flagger passes them on and App Mesh's API refuses the VirtualRouter: say so before that.
        raise RenderError(
            f"Canary {canary.key}: spec.service.retries.retryOn: App Mesh knows the retry events "
            f"{', '.join(HTTP_RETRY_EVENTS)}, not {', '.join(unknown)}"
        )
    return {
        "httpRetryEvents": events,
        "maxRetries": int(retries.get("attempts") or 0) or 1,
        "perRetryTimeout": {"unit": "ms", "value": per_try if per_try is not None else 250},
    }


def _headers(canary: Canary) -> list[dict[str, Any]]:
    out = []
    for condition in canary.spec.analysis.match:
        for name, value in (condition.get("headers") or {}).items():
            match = {k: str(value[k]) for k in ("exact", "prefix", "regex", "suffix") if value.get(k)}
            out.append({"name": name, "match": match})
    return out


def _http_route(
    canary: Canary, name: str, targets: list[tuple[str, int]], headers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    svc = canary.spec.service
    uri = (svc.match[0].get("uri") or {}) if svc.match else {}
    match: dict[str, Any] = {"prefix": str(uri.get("prefix") or "/")}
    if headers:
        match["headers"] = headers
    http: dict[str, Any] = {
        "match": match,
        "action": {
            "weightedTargets": [
                {"virtualNodeRef": {"name": node}, "weight": weight} for node, weight in targets
            ]
        },
    }
    timeout = _route_timeout(canary)
    if timeout is not None:
        http["timeout"] = timeout
    retry = _retry_policy(canary)
    if retry is not None:
        http["retryPolicy"] = retry
    return {"name": name, "httpRoute": http}


def _meta(canary: Canary, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": canary.namespace, "labels": dict(MANAGED_BY)}


class AppMeshRouter:
    provider = "appmesh:v1beta2"

    def _virtual_node(self, canary: Canary, role: str, pods: str) -> dict[str, Any]:
        name = f"{canary.service_name}-{role}"
        listener: dict[str, Any] = {
            "portMapping": {"port": _container_port(canary), "protocol": _protocol(canary)}
        }
        timeout = _route_timeout(canary)
        if timeout is not None:
            listener["timeout"] = {"http": timeout}
        spec: dict[str, Any] = {
            "listeners": [listener],
            "serviceDiscovery": {"dns": {"hostname": f"{name}.{canary.namespace}.svc.cluster.local."}},
            "podSelector": {"matchLabels": {"app": pods}},
        }
        if canary.metadata.annotations.get(ACCESS_LOG) == "enabled":
            spec["logging"] = {"accessLog": {"file": {"path": "/dev/stdout"}}}
        backends = [
            {
                "virtualService": {"virtualServiceARN": b}
                if b.startswith("arn:aws")
                else {"virtualServiceRef": {"name": b}}
            }
            for b in canary.spec.service.backends
        ]
        if backends:
            spec["backends"] = backends
        meta = apex_metadata(canary)
        meta["name"] = name
        return {"apiVersion": API_VERSION, "kind": "VirtualNode", "metadata": meta, "spec": spec}

    def _router_and_service(
        self, canary: Canary, name: str, routes: list[dict[str, Any]], annotations: dict[str, str]
    ) -> list[dict[str, Any]]:
        router = {
            "apiVersion": API_VERSION,
            "kind": "VirtualRouter",
            "metadata": _meta(canary, name),
            "spec": {
                "listeners": [
                    {"portMapping": {"port": _container_port(canary), "protocol": _protocol(canary)}}
                ],
                "routes": routes,
            },
        }
        service_meta = _meta(canary, name)
        if annotations:
            service_meta["annotations"] = annotations
        service = {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": service_meta,
            "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}}},
        }
        return [router, service]

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        apex, target = canary.service_name, canary.spec.target_ref.name
        primary_node, canary_node = f"{apex}-primary", f"{apex}-canary"
        weighted = [(canary_node, canary_weight), (primary_node, primary_weight)]
        if canary.spec.analysis.match:
            routes = [
                {**_http_route(canary, f"{apex}-a", weighted, _headers(canary)), "priority": 10},
                {**_http_route(canary, f"{apex}-b", [(primary_node, 100)]), "priority": 20},
            ]
        else:
            routes = [_http_route(canary, apex, weighted)]
        svc = canary.spec.service
        gateway: dict[str, str] = {}
        if svc.hosts:
            gateway["gateway.appmesh.k8s.aws/expose"] = "true"
            gateway["gateway.appmesh.k8s.aws/domain"] = "".join(f"{host}," for host in svc.hosts)
            if svc.timeout:
                gateway["gateway.appmesh.k8s.aws/timeout"] = svc.timeout
            if svc.retries and int(svc.retries.get("attempts") or 0) > 0:
                gateway["gateway.appmesh.k8s.aws/retries"] = str(int(svc.retries["attempts"]))
        return [
            self._virtual_node(canary, "primary", f"{target}-primary"),
            self._virtual_node(canary, "canary", target),
            *self._router_and_service(canary, apex, routes, gateway),
            *self._router_and_service(
                canary,
                canary_node,
                [_http_route(canary, canary_node, [(canary_node, 100), (primary_node, 0)])],
                {},
            ),
        ]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        apex = canary.service_name
        for obj in objects:
            if obj.get("kind") != "VirtualRouter" or obj.get("metadata", {}).get("name") != apex:
                continue
            route = ((obj.get("spec") or {}).get("routes") or [{}])[0]
            found = {
                (t.get("virtualNodeRef") or {}).get("name"): int(t.get("weight", 0))
                for t in ((route.get("httpRoute") or {}).get("action") or {}).get("weightedTargets") or []
            }
            return found.get(f"{apex}-primary", 0), found.get(f"{apex}-canary", 0)
        return None
