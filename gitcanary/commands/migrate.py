"""`gitcanary migrate`: is a cluster that runs Flagger ready for gitcanary to take over, and what is left?

Read-only (GET requests only), like the cluster observer. For every canary in the repository it works
out the objects gitcanary would generate (by initializing a throwaway copy of the checkout and building
the generated directory with kustomize) and compares them with what is live:
- Flagger's controller still running would fight gitcanary over the same objects: stop it first.
- A Canary object still in the cluster owns Flagger's objects through ownerReferences: deleting it
  (or Flagger's CRDs) garbage-collects them, including the ones gitcanary's commits now describe.
  `kubectl delete canary NAME --cascade=orphan` deletes it and strips those references.
- A live Deployment whose `spec.selector` differs from the generated one cannot be applied over
  (the field is immutable): Flux or Fleet would fail to adopt it.
- Live objects with the generated names are adopted in place when Flux or Fleet applies gitcanary's
  commit (same names, server-side apply): no object is deleted and recreated, so no traffic gap.
See docs/migrate-from-flagger.md for the steps around it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gitcanary.commands.operations import init
from gitcanary.errors import GitcanaryError
from gitcanary.manifests import discovery, kustomize
from gitcanary.manifests.generate import Layout
from gitcanary.routers.providers import apply_default_provider

CANARY_API = ("flagger.app", "v1beta1", "canaries")
# Plural resource names of the kinds gitcanary generates.
PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "HTTPRoute": "httproutes",
    "TrafficSplit": "trafficsplits",
    "Ingress": "ingresses",
}


_SINGULAR = {"Service": "service", "ConfigMap": "config_map", "Secret": "secret"}


@dataclass(frozen=True)
class Finding:
    canary: str  # "" for the cluster as a whole
    blocking: bool
    message: str

    def __str__(self) -> str:
        where = f"{self.canary}: " if self.canary else ""
        return f"{'BLOCKED' if self.blocking else 'ok'}: {where}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"canary": self.canary, "blocking": self.blocking, "message": self.message}


def generated_objects(root: Path, provider: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per canary key, the objects gitcanary would generate (initialized in a copy, switched)."""
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-migrate-"))
    try:
        copy = scratch / "repo"
        shutil.copytree(root, copy, symlinks=True)
        catalog = discovery.scan(copy)
        apply_default_provider(catalog.canaries, provider)
        found: dict[str, list[dict[str, Any]]] = {}
        for key, loaded in sorted(catalog.canaries.items()):
            layout = Layout.of(loaded)
            if not (copy / layout.kustomization).is_file():
                init(copy, discovery.app_dir(loaded) or ".", switch=True, provider=provider)
            found[key] = kustomize.build(copy / layout.generated_dir, display=layout.generated_dir)
        return found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _get(
    api: client.ApiClient, api_version: str, kind: str, namespace: str, name: str
) -> dict[str, Any] | None:
    plural = PLURALS.get(kind)
    if plural is None:
        return None
    try:
        if "/" in api_version:  # /apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME, built-in groups alike
            group, version = api_version.split("/", 1)
            found = client.CustomObjectsApi(api).get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        else:  # the core group: Services, ConfigMaps, Secrets
            read = getattr(client.CoreV1Api(api), f"read_namespaced_{_SINGULAR[kind]}")
            found = api.sanitize_for_serialization(read(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise GitcanaryError(f"GET {kind} {namespace}/{name}: {exc.status} {exc.reason}") from exc
    return found if isinstance(found, dict) else None


def _flagger_controllers(api: client.ApiClient) -> list[str]:
    """Running Flagger controllers: Deployments named flagger or labelled as Flagger, with replicas."""
    try:
        deployments = client.AppsV1Api(api).list_deployment_for_all_namespaces()
    except ApiException as exc:
        raise GitcanaryError(f"listing Deployments: {exc.status} {exc.reason}") from exc
    running = []
    for item in deployments.items:
        meta = item.metadata or client.V1ObjectMeta()
        labels = meta.labels or {}
        flagger = meta.name == "flagger" or "flagger" in (
            labels.get("app.kubernetes.io/name"),
            labels.get("app"),
        )
        replicas = item.spec.replicas if item.spec is not None else None
        if flagger and (replicas is None or replicas > 0):
            running.append(f"{meta.namespace}/{meta.name} ({replicas} replicas)")
    return running


def _owner(obj: dict[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Canary" and str(ref.get("apiVersion", "")).startswith("flagger.app/"):
            return str(ref.get("name"))
    return ""


def check(root: Path, api: client.ApiClient, provider: str | None = None) -> list[Finding]:
    """Every finding, blocking ones first for each canary; no finding blocks when the move is safe."""
    findings = [
        Finding("", True, f"Flagger is running: {name}; scale it to 0 before gitcanary takes over")
        for name in _flagger_controllers(api)
    ]
    for key, objects in generated_objects(root, provider).items():
        namespace, name = key.split("/", 1)
        group, version, plural = CANARY_API
        try:
            live_canary = client.CustomObjectsApi(api).get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        except ApiException as exc:
            live_canary = None if exc.status == 404 else {}
        for wanted in objects:
            kind, meta = wanted.get("kind", ""), wanted.get("metadata") or {}
            where = f"{kind} {meta.get('namespace') or namespace}/{meta.get('name')}"
            live = _get(
                api, wanted.get("apiVersion", ""), kind, meta.get("namespace") or namespace, meta["name"]
            )
            if live is None:
                findings.append(
                    Finding(key, False, f"{where}: not live yet; created when the commit is applied")
                )
                continue
            owner = _owner(live)
            if owner:
                findings.append(
                    Finding(
                        key,
                        True,
                        f"{where} is owned by Canary {owner}: deleting that Canary (or Flagger's CRDs) would "
                        "garbage-collect it; orphan it first (`kubectl delete canary ... --cascade=orphan`)",
                    )
                )
            if kind == "Deployment":
                have = (live.get("spec") or {}).get("selector")
                want = (wanted.get("spec") or {}).get("selector")
                if have != want:
                    findings.append(
                        Finding(
                            key,
                            True,
                            f"{where}: live spec.selector {have} differs from the generated {want}; the "
                            "field is immutable, so applying gitcanary's would fail",
                        )
                    )
                    continue
            if not owner:
                findings.append(
                    Finding(key, False, f"{where}: live, adopted in place when the commit is applied")
                )
        if live_canary:
            # Blocking while it owns what gitcanary generates; otherwise inert while Flagger is stopped.
            owns = any(f.canary == key and " is owned by Canary " in f.message for f in findings)
            findings.append(
                Finding(
                    key,
                    owns,
                    f"the Canary object {key} is in the cluster: delete it with `kubectl delete "
                    f"canary {name} -n {namespace} --cascade=orphan` (dependents stay, ownerReferences go)"
                    + (
                        "" if owns else "; it owns none of the generated objects, so deleting it removes none"
                    ),
                )
            )
    return findings


__all__ = ["Finding", "check", "generated_objects"]
