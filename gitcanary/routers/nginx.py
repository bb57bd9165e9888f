"""NGINX Ingress: a generated `<ingress>-canary` Ingress next to the user's own.

As Flagger's `pkg/router/ingress.go`: the user's Ingress (`spec.ingressRef`) is cloned, its backend
pointing at the apex service is pointed at `<svc>-canary`, and ingress-nginx's canary annotations
carry the weight (`canary-weight`) or, for A/B testing, the header/cookie that selects the canary.
The user's Ingress is left untouched: it keeps routing to the apex service (the primary).
"""

from __future__ import annotations

import copy
from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY, apex_ingress_paths, object_to_copy
from gitcanary.spec.models import Canary

PREFIX = "nginx.ingress.kubernetes.io"
CANARY = f"{PREFIX}/canary"
WEIGHT = f"{PREFIX}/canary-weight"
BY_HEADER = f"{PREFIX}/canary-by-header"
BY_HEADER_VALUE = f"{PREFIX}/canary-by-header-value"
BY_HEADER_PATTERN = f"{PREFIX}/canary-by-header-pattern"
BY_COOKIE = f"{PREFIX}/canary-by-cookie"


def canary_ingress_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    return f"{ref.name if ref else canary.service_name}-canary"


def _header_annotations(canary: Canary) -> dict[str, str]:
    """Flagger's rule: a `cookie` header match selects by cookie, any other header by header."""
    out: dict[str, str] = {}
    for condition in canary.spec.analysis.match:
        for name, value in (condition.get("headers") or {}).items():
            if name == "cookie":
                out[BY_COOKIE] = str(value.get("exact", ""))
                continue
            out[BY_HEADER] = name
            if value.get("exact"):
                out[BY_HEADER_VALUE] = str(value["exact"])
            if value.get("regex"):
                out[BY_HEADER_PATTERN] = str(value["regex"])
    return out


class NginxRouter:
    provider = "nginx"

    def render(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        ingress: dict[str, Any] | None = None,
        session: SessionCookies | None = None,
    ) -> list[dict[str, Any]]:
        ref, ingress = object_to_copy(
            canary, "ingressRef", canary.spec.ingress_ref, ingress, "the Ingress to clone"
        )
        apex = canary.service_name
        spec = copy.deepcopy(ingress.get("spec") or {})
        for _, path in apex_ingress_paths(canary, ref, spec):
            service = path["backend"]["service"]
            service["name"] = f"{apex}-canary"
        meta = ingress.get("metadata") or {}
        annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if CANARY not in k}
        annotations[CANARY] = "true"
        annotations[WEIGHT] = "0"
        if canary.spec.analysis.match:
            # A/B testing: during the analysis the header/cookie sends its requests to the canary.
            if canary_weight > 0:
                annotations.update(_header_annotations(canary))
        else:
            annotations[WEIGHT] = str(canary_weight)
        metadata = {
            "name": canary_ingress_name(canary),
            "namespace": canary.namespace,
            "labels": {**(meta.get("labels") or {}), **MANAGED_BY},
            "annotations": annotations,
        }
        api_version = ingress.get("apiVersion", "networking.k8s.io/v1")
        return [{"apiVersion": api_version, "kind": "Ingress", "metadata": metadata, "spec": spec}]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name = canary_ingress_name(canary)
        for obj in objects:
            if obj.get("kind") != "Ingress" or obj.get("metadata", {}).get("name") != name:
                continue
            annotations = obj["metadata"].get("annotations") or {}
            if canary.spec.analysis.match and (BY_HEADER in annotations or BY_COOKIE in annotations):
                return 0, 100
            weight = int(annotations.get(WEIGHT, "0"))
            return 100 - weight, weight
        return None
