"""Objects gitcanary generates from the user's target: the primary and the services.

Pure functions over plain dicts; the repository edge decides where they are written.
Names and labels follow what Flagger generates in the cluster, so dashboards, alerts and
MetricTemplates written for Flagger keep working.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gitcanary.errors import RenderError
from gitcanary.manifests import config_tracking
from gitcanary.routers.base import MANAGED_BY
from gitcanary.spec.models import Canary

# Flagger's default `-selector-labels`: the first of these found on the target is rewritten.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")

# Flagger's daemonSetScaleDownNodeSelector: a DaemonSet has no replicas, so Flagger "scales" the
# canary DaemonSet to zero with a node selector no node has; the primary never carries it.
SCALE_TO_ZERO = {"flagger.app/scale-to-zero": "true"}

Obj = dict[str, Any]


def find_object(objects: list[Obj], kind: str, name: str, namespace: str | None = None) -> Obj | None:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != kind or meta.get("name") != name:
            continue
        if namespace is None or meta.get("namespace") in (None, namespace):
            return obj
    return None


def find_target(objects: list[Obj], canary: Canary, where: str) -> Obj:
    ref = canary.spec.target_ref
    target = find_object(objects, ref.kind, ref.name, canary.namespace)
    if target is None:
        raise RenderError(
            f"{where}: spec.targetRef: {ref.kind} {canary.namespace}/{ref.name} is not in what the "
            "app directory builds"
        )
    return target


def pod_template_hash(deployment: Obj) -> str:
    """Flagger's revision identity: a hash of the pod template (not of replicas or metadata)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def container_images(deployment: Obj) -> dict[str, str]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    images: dict[str, str] = {}
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            images[container.get("name", "")] = container.get("image", "")
    return images


def image_tag(image: str) -> str:
    """`6.1.1` from `ghcr.io/org/app:6.1.1`, `sha256:abcd1234` from a digest reference."""
    if "@" in image:
        return image.split("@", 1)[1][:19]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def revision_of(deployment: Obj) -> str:
    """A human label for a pod template: the tag of its first (main) container."""
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        return pod_template_hash(deployment)[:8]
    return image_tag(containers[0].get("image", ""))


def selector_label(deployment: Obj, where: str) -> str:
    match_labels = (((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    for key in SELECTOR_LABELS:
        if key in match_labels:
            return key
    name = (deployment.get("metadata") or {}).get("name")
    raise RenderError(
        f"{where}: {deployment.get('kind') or 'Deployment'} {name}: spec.selector.matchLabels needs one of "
        f"{', '.join(SELECTOR_LABELS)} (the label gitcanary rewrites for the primary, as Flagger does)"
    )


def check_daemon_set(target: Obj, where: str) -> None:
    """Flagger's createPrimaryDaemonSet refuses a strategy other than RollingUpdate: with OnDelete the
    primary's pods would keep the old template after a promotion."""
    strategy = (((target.get("spec") or {}).get("updateStrategy")) or {}).get("type") or "RollingUpdate"
    if strategy != "RollingUpdate":
        name = (target.get("metadata") or {}).get("name")
        raise RenderError(
            f"{where}: DaemonSet {name}: spec.updateStrategy.type {strategy} is not supported "
            "(RollingUpdate only, as Flagger)"
        )


def primary_name(canary: Canary) -> str:
    return f"{canary.spec.target_ref.name}-primary"


def primary_deployment(
    target: Obj,
    canary: Canary,
    replicas: int | None,
    where: str,
    config_names: Mapping[tuple[str, str], str] | None = None,
) -> Obj:
    """A copy of the rendered target (a Deployment or a DaemonSet) named `<target>-primary`, selecting
    its own pods.

    With an autoscaler `replicas` is None and left out, so the applier does not fight the HPA; a
    DaemonSet has no replicas (one pod per node) and takes none. `config_names` maps (kind, name) of
    each tracked ConfigMap and Secret to its `-primary` copy.
    """
    daemon_set = target.get("kind") == "DaemonSet"
    if daemon_set:
        check_daemon_set(target, where)
        replicas = None
    label = selector_label(target, where)
    name = primary_name(canary)
    primary = copy.deepcopy(target)
    meta = primary.setdefault("metadata", {})
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    meta["name"] = name
    meta["namespace"] = canary.namespace
    meta["labels"] = {**(meta.get("labels") or {}), label: name, **MANAGED_BY}
    spec = primary.setdefault("spec", {})
    spec.pop("replicas", None)
    if replicas is not None:
        spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {label: name}}
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), label: name}
    if daemon_set:
        # Flagger's Promote: the canary's scale-to-zero node selector never reaches the primary.
        pod_spec = spec["template"].get("spec") or {}
        selector = {k: v for k, v in (pod_spec.get("nodeSelector") or {}).items() if k not in SCALE_TO_ZERO}
        if selector:
            pod_spec["nodeSelector"] = selector
        else:
            pod_spec.pop("nodeSelector", None)
    primary.pop("status", None)
    if config_names:
        config_tracking.point_at_copies(primary, config_names)
    return primary


def primary_autoscaler(hpa: Obj, canary: Canary) -> Obj:
    primary = copy.deepcopy(hpa)
    name = f"{canary.spec.autoscaler_ref.name if canary.spec.autoscaler_ref else hpa['metadata']['name']}"
    meta = primary.setdefault("metadata", {})
    meta["name"] = f"{name}-primary"
    meta["namespace"] = canary.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **MANAGED_BY}
    primary["spec"]["scaleTargetRef"] = {**hpa["spec"]["scaleTargetRef"], "name": primary_name(canary)}
    primary.pop("status", None)
    return primary


def services(canary: Canary, target: Obj, where: str, include_apex: bool) -> list[Obj]:
    """`<svc>-primary` and `<svc>-canary`, and the apex `<svc>` once routing is switched."""
    label = selector_label(target, where)
    svc = canary.spec.service
    name = canary.service_name
    port: Obj = {
        "name": svc.port_name,
        "port": svc.port,
        "protocol": "TCP",
        "targetPort": svc.target_port if svc.target_port is not None else svc.port,
    }
    if svc.app_protocol:
        port["appProtocol"] = svc.app_protocol

    def service(service_name: str, selects: str, extra: dict[str, Any] | None) -> Obj:
        meta: Obj = {
            "name": service_name,
            "namespace": canary.namespace,
            "labels": {**((extra or {}).get("labels") or {}), label: service_name, **MANAGED_BY},
        }
        if (extra or {}).get("annotations"):
            meta["annotations"] = dict(extra["annotations"])  # type: ignore[index]
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"type": "ClusterIP", "selector": {label: selects}, "ports": [dict(port)]},
        }

    target_name = canary.spec.target_ref.name
    out = []
    if include_apex:
        out.append(service(name, primary_name(canary), svc.apex))
    out.append(service(f"{name}-primary", primary_name(canary), svc.primary))
    out.append(service(f"{name}-canary", target_name, svc.canary))
    return out
