"""What the SIMULATED cluster needs to know per provider: where the weights are, what the queries ask.

Istio's VirtualService and queries are in `simulator.py`; this module adds the Gateway API
HTTPRoute, the SMI TrafficSplit (Linkerd), the NGINX canary Ingress and the other routers' objects
(Contour's HTTPProxy, ...), and their builtin queries (Gateway API's builtins are Istio's, as in
Flagger). Like the rest of the simulator it recognizes the shape of a query; it does not evaluate PromQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from gitcanary.duration import parse_duration

Obj = dict[str, Any]

NGINX_CANARY = "nginx.ingress.kubernetes.io/canary"
SKIPPER_WEIGHTS = "zalando.org/backend-weights"
SKIPPER_PREDICATE = "zalando.org/skipper-predicate"


def destinations(objects: Iterable[Obj], service: str) -> list[tuple[str, int]] | None:
    """(Service, weight) the requests to `service` go to, from a non-Istio routing object; None if none."""
    objects = list(objects)
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name")
        spec = obj.get("spec") or {}
        if obj.get("kind") == "HTTPRoute" and name == service:
            for rule in spec.get("rules") or []:
                refs = rule.get("backendRefs") or []
                if len(refs) == 2:  # the weighted rule (A/B adds an everyone-else rule)
                    return [(str(ref.get("name")), int(ref.get("weight", 1))) for ref in refs]
        if obj.get("kind") == "TrafficSplit" and name == service:
            return [(str(b.get("service")), int(b.get("weight", 0))) for b in spec.get("backends") or []]
        if obj.get("kind") == "TraefikService" and name == service:
            # Traefik: an unset weight is 1.
            services = (spec.get("weighted") or {}).get("services") or []
            return [(str(s.get("name")), int(s.get("weight", 1))) for s in services]
        if obj.get("kind") == "RouteTable" and name == service:
            # Gloo: weighted Upstreams, each naming its Kubernetes Service; an unset weight is 0.
            upstreams = {
                (o.get("metadata") or {}).get("name"): ((o.get("spec") or {}).get("kube") or {}).get(
                    "serviceName"
                )
                for o in objects
                if o.get("kind") == "Upstream"
            }
            route = (spec.get("routes") or [{}])[0]
            weighted = ((route.get("routeAction") or {}).get("multi") or {}).get("destinations") or []
            return [
                (
                    str(upstreams.get(((d.get("destination") or {}).get("upstream") or {}).get("name"))),
                    int(d.get("weight", 0)),
                )
                for d in weighted
            ]
        if obj.get("kind") == "TrafficRoute" and name == service:
            # Kuma: each split names the Kubernetes service as `<name>_<namespace>_svc_<port>`.
            split = (spec.get("conf") or {}).get("split") or []
            return [
                (
                    str((s.get("destination") or {}).get("kuma.io/service", "")).split("_", 1)[0],
                    int(s.get("weight", 0)),
                )
                for s in split
            ]
        if obj.get("kind") == "VirtualRouter" and name == service:
            # App Mesh: the first route's targets are the VirtualNodes `<svc>-primary`, `<svc>-canary`,
            # named after (and discovering by DNS) the Services of the same names.
            route = (spec.get("routes") or [{}])[0]
            targets = ((route.get("httpRoute") or {}).get("action") or {}).get("weightedTargets") or []
            pairs = [
                (str((t.get("virtualNodeRef") or {}).get("name")), int(t.get("weight", 0))) for t in targets
            ]
            return sorted(pairs, key=lambda pair: pair[0].endswith("-canary"))  # the primary first
        if obj.get("kind") == "HTTPProxy" and name == service:
            # Contour: the first route; an unset weight is 0 once another service has one.
            services = ((spec.get("routes") or [{}])[0]).get("services") or []
            return [(str(s.get("name")), int(s.get("weight", 0))) for s in services]
    for obj in objects:
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        if obj.get("kind") == "Ingress" and SKIPPER_WEIGHTS in notes:
            # Skipper: while the canary Ingress's predicate holds False() it is off, and the person's
            # Ingress sends everything to the apex Service.
            if "False()" in [p.strip() for p in str(notes.get(SKIPPER_PREDICATE, "")).split("&&")]:
                return [(service, 100)]
            weights = [(str(k), int(v)) for k, v in json.loads(notes[SKIPPER_WEIGHTS]).items()]
            return sorted(weights, key=lambda pair: pair[0].endswith("-canary"))  # the primary first
    for obj in objects:
        name = str((obj.get("metadata") or {}).get("name"))
        if obj.get("kind") == "ApisixRoute" and name.endswith(f"-{service}-canary"):
            # APISIX: the generated route (priority 10000) wins over the person's route to the apex.
            backends = [b for r in (obj.get("spec") or {}).get("http") or [] for b in r.get("backends") or []]
            return [(str(b.get("serviceName")), int(b.get("weight", 0))) for b in backends]
    for obj in objects:
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        if obj.get("kind") == "Ingress" and notes.get(NGINX_CANARY) == "true":
            # The person's Ingress sends to the apex Service; the canary Ingress takes its weight.
            weight = int(notes.get(f"{NGINX_CANARY}-weight", "0"))
            return [(service, 100 - weight), (f"{service}-canary", weight)]
    return None


_RANGE = re.compile(r"\[\s*([0-9][0-9a-z.µ]*)\s*\]")
_DEPLOYMENT = re.compile(r'deployment\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')
_NAMESPACE = re.compile(r'(?<![a-z_])namespace\s*=\s*"((?:[^"\\]|\\.)*)"')


def recognize_provider(text: str) -> tuple[str, str, str, str | None, float] | None:
    """(kind, op, workload, namespace, window seconds) of a Linkerd or NGINX builtin query, or None.

    - Linkerd `response_total` with `classification!="failure"`: success rate; `response_latency_ms_bucket`
      under `histogram_quantile`: p99 latency. Both select the `deployment` label's workloads.
    - ingress-nginx `nginx_ingress_controller_requests` with `status!~"5.*"`: success rate; the upstream
      latency sum/count: latency. Both count every request through the Ingress (primary and canary).
    - Envoy's `envoy_cluster_upstream_rq` (success rate, `envoy_response_code!~"5.*"`) and
      `envoy_cluster_upstream_rq_time_bucket` (p99 latency) of the canary's upstream cluster
      (Contour, Gloo, Kuma).
    - Traefik's `traefik_service_request_duration_seconds_bucket` of the canary service: success rate
      with `code!~"5.."`, p99 latency under `histogram_quantile`.
    - APISIX's `apisix_http_status` (success rate, `code!~"5.."`) and `apisix_http_latency_bucket`
      (p99 latency) of the generated canary route.
    - Skipper's `skipper_response_duration_seconds_bucket` (success rate, `code!~"5.."`) and
      `skipper_serve_route_duration_seconds_sum` (mean latency, read as the simulator's latency) of the
      canary Ingress's routes.
    - App Mesh's Envoy counters (`envoy_cluster_upstream_rq`) of the canary's pods.
    """
    window = _RANGE.search(text)
    if window is None:
        return None
    try:
        seconds = parse_duration(window.group(1))
    except ValueError:
        return None
    namespace = _NAMESPACE.search(text)
    ns = namespace.group(1) if namespace else None
    if "response_total" in text or "response_latency_ms_bucket" in text:
        deployment = _DEPLOYMENT.search(text)
        if deployment is None:
            return None
        if "response_latency_ms_bucket" in text and "histogram_quantile" in text:
            kind = "latency-p99"
        elif re.search(r'classification\s*!=\s*"failure"', text):
            kind = "success-rate"
        else:
            return None
        return kind, deployment.group(1), deployment.group(2), ns, seconds
    skipper = _SKIPPER.search(text)
    if skipper is not None:
        if "skipper_serve_route_duration_seconds_sum" in text:
            return "latency-p99", "=", skipper.group(2), skipper.group(1), seconds
        if "skipper_response_duration_seconds_bucket" in text and re.search(r'code\s*!~\s*"5\.\."', text):
            return "success-rate", "=", skipper.group(2), skipper.group(1), seconds
    apisix = _APISIX.search(text)
    if apisix is not None and ("apisix_http_status" in text or "apisix_http_latency_bucket" in text):
        if "histogram_quantile" in text and "apisix_http_latency_bucket" in text:
            return "latency-p99", "=", apisix.group(2), apisix.group(1), seconds
        if re.search(r'code\s*!~\s*"5\.\."', text):
            return "success-rate", "=", apisix.group(2), apisix.group(1), seconds
    traefik = _TRAEFIK.search(text)
    if traefik is not None and "traefik_service_request_duration_seconds_bucket" in text:
        if "histogram_quantile" in text:
            return "latency-p99", "=", traefik.group(2), traefik.group(1), seconds
        if re.search(r'code\s*!~\s*"5\.\."', text):
            return "success-rate", "=", traefik.group(2), traefik.group(1), seconds
    pods = _APPMESH.search(text)
    if pods is not None and "envoy_cluster_upstream_rq" in text:
        namespace = _APPMESH_NAMESPACE.search(text)
        ns_name = namespace.group(1) if namespace else None
        if "envoy_cluster_upstream_rq_time_bucket" in text and "histogram_quantile" in text:
            return "latency-p99", "=", pods.group(1), ns_name, seconds
        if re.search(r'envoy_response_code\s*!~\s*"5\.\*"', text):
            return "success-rate", "=", pods.group(1), ns_name, seconds
    envoy = _envoy_query(text, seconds)
    if envoy is not None:
        return envoy
    if "nginx_ingress_controller_ingress_upstream_latency_seconds_sum" in text:
        return "latency-p99", "=~", ".*", ns, seconds
    if "nginx_ingress_controller_requests" in text and re.search(r'status\s*!~\s*"5\.\*"', text):
        return "success-rate", "=~", ".*", ns, seconds
    return None


# Traefik's builtins name the canary service `<namespace>-<target>-canary-<port>@kubernetescrd`.
_TRAEFIK = re.compile(r'service\s*=~\s*"([a-z0-9]+(?:-[a-z0-9]+)*?)-([a-z0-9-]+)-canary-\[')

# Skipper's builtins name the routes of the canary Ingress:
# `kube(ew)?_<ns>__<ingress>_canary__...__<svc>_canary`.
_SKIPPER = re.compile(
    r'route\s*=~\s*"kube\(ew\)\?_([a-z0-9-]+)__[a-z0-9-]+_canary__\.\*__([a-z0-9-]+)_canary'
)

# APISIX's builtins name the generated route `<namespace>_<routeRef>-<target>-canary_<http route>`
# (the demo's routeRef has no hyphen).
_APISIX = re.compile(r'route\s*=~\s*"([a-z0-9-]+)_[a-z0-9]*-([a-z0-9-]+)-canary_')

# App Mesh's builtins select the canary's pods `<target>-<hash>-<id>` in a namespace.
_APPMESH = re.compile(r'kubernetes_pod_name\s*=~\s*"([a-z0-9-]+)-\[0-9a-zA-Z\]\+')
_APPMESH_NAMESPACE = re.compile(r'kubernetes_namespace\s*=\s*"([a-z0-9-]+)"')

# Envoy-based routers' builtins name the canary's upstream cluster, not a workload: (label, pattern
# capturing namespace and service). The demo's examples name the apex service after the Deployment,
# so the service's canary cluster is the `<service>` Deployment's traffic.
_ENVOY_CLUSTERS = (
    re.compile(r'envoy_cluster_name\s*=~\s*"([a-z0-9-]+)_([a-z0-9-]+)-canary_'),  # contour
    re.compile(r'envoy_cluster_name\s*=~\s*"([a-z0-9]+)-([a-z0-9-]+)-canaryupstream-'),  # gloo
    re.compile(r'service\s*=~\s*"(?P<svc>[a-z0-9-]+)-canary_(?P<ns>[a-z0-9-]+)_svc_'),  # kuma
)


def _envoy_query(text: str, seconds: float) -> tuple[str, str, str, str | None, float] | None:
    if "envoy_cluster_upstream_rq" not in text:
        return None
    for pattern in _ENVOY_CLUSTERS:
        found = pattern.search(text)
        if found is None:
            continue
        named = found.groupdict()
        namespace, service = (named["ns"], named["svc"]) if named else (found.group(1), found.group(2))
        if "envoy_cluster_upstream_rq_time_bucket" in text and "histogram_quantile" in text:
            return "latency-p99", "=", service, namespace, seconds
        if re.search(r'envoy_response_code\s*!~\s*"5\.\*"', text):
            return "success-rate", "=", service, namespace, seconds
    return None
