# Follows Flagger's pkg/router/skipper.go (SkipperRouter.Reconcile / SetRoutes / insertPredicate).
"""Skipper: a generated `<ingress>-canary` Ingress with backend weights, next to the user's own.

As Flagger's `pkg/router/skipper.go`: the user's Ingress (`spec.ingressRef`) is copied; each path
to the apex service is pointed at `<svc>-primary` and a copy of it pointing at `<svc>-canary` is
appended to the rule. The annotation `zalando.org/backend-weights` carries the weights (JSON, keys
sorted as Go writes them) and `zalando.org/skipper-predicate` starts with `Weight(100)`, so the copy
wins over the user's Ingress; while the canary has no weight it starts with `False()` instead, which
turns the copy off and leaves the user's Ingress (to the apex, which selects the primary) serving.
The user's own predicates are kept after it. Skipper matches no requests and mirrors nothing for
Flagger, so A/B testing and `analysis.mirror` are refused.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gitcanary.routers.affinity import SessionCookies
from gitcanary.routers.base import MANAGED_BY, apex_ingress_paths, object_to_copy
from gitcanary.spec.models import Canary

PREDICATE = "zalando.org/skipper-predicate"
BACKEND_WEIGHTS = "zalando.org/backend-weights"
ROUTE_WEIGHT = "Weight(100)"
ROUTE_DISABLE = "False()"


def insert_predicate(raw: str, insert: str) -> str:
    """Flagger's insertPredicate: `insert` first, then the other predicates, without the canary ones."""
    kept = [p.strip() for p in raw.split("&&")]
    return " && ".join([insert, *[p for p in kept if p and p not in (ROUTE_WEIGHT, ROUTE_DISABLE)]])


def canary_ingress_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    return f"{ref.name if ref else canary.service_name}-canary"


class SkipperRouter:
    provider = "skipper"

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
            canary, "ingressRef", canary.spec.ingress_ref, ingress, "the Ingress to copy"
        )
        apex = canary.service_name
        spec = copy.deepcopy(ingress.get("spec") or {})
        for paths, path in apex_ingress_paths(canary, ref, spec):
            service = path["backend"]["service"]
            service["name"] = f"{apex}-primary"
            second = copy.deepcopy(path)
            second["backend"]["service"]["name"] = f"{apex}-canary"
            paths.append(second)
        meta = ingress.get("metadata") or {}
        annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()}
        weights = {f"{apex}-primary": primary_weight, f"{apex}-canary": canary_weight}
        annotations[BACKEND_WEIGHTS] = json.dumps(weights, sort_keys=True, separators=(",", ":"))
        predicate = insert_predicate(annotations.get(PREDICATE, ""), ROUTE_WEIGHT)
        annotations[PREDICATE] = (
            insert_predicate(predicate, ROUTE_DISABLE) if canary_weight == 0 else predicate
        )
        metadata = {
            "name": canary_ingress_name(canary),
            "namespace": canary.namespace,
            "labels": {**(meta.get("labels") or {}), **MANAGED_BY},
            "annotations": annotations,
        }
        api_version = ingress.get("apiVersion", "networking.k8s.io/v1")
        return [{"apiVersion": api_version, "kind": "Ingress", "metadata": metadata, "spec": spec}]

    def weights(self, canary: Canary, objects: list[dict[str, Any]]) -> tuple[int, int] | None:
        name, apex = canary_ingress_name(canary), canary.service_name
        for obj in objects:
            if obj.get("kind") != "Ingress" or obj.get("metadata", {}).get("name") != name:
                continue
            found = json.loads((obj["metadata"].get("annotations") or {}).get(BACKEND_WEIGHTS, "{}"))
            return int(found.get(f"{apex}-primary", 0)), int(found.get(f"{apex}-canary", 0))
        return None
