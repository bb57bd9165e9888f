"""The invariant every commit gitcanary makes must keep, checked without gitcanary's own code.

End-to-end tests build what the applier builds (``kustomize_build``) after each commit and call
``assert_invariant``: the primary runs the promoted images, the canary the new ones with the replicas
the phase calls for, the VirtualService holds the step's weights, each Service selects the right pods,
and every object is valid against its schema (CRDs from tests/data/crds, built-in kinds from
kubernetes-validate, strict). This module must not import gitcanary: it is the independent check.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

KUBECTL = Path(sys.executable).parent / "kubectl"
CRD_DIR = Path(__file__).resolve().parent / "data" / "crds"

__all__ = [
    "CRD_DIR",
    "KUBECTL",
    "assert_commit",
    "assert_invariant",
    "assert_story",
    "fleet_build",
    "kustomize_build",
    "provider_routing_problems",
    "find_canary",
    "nginx_field_problems",
    "reference_problems",
    "service_field_problems",
    "tree_at_commit",
    "rollout_rows",
    "routed_weights",
    "schema_problems",
]


def kustomize_build(path: Path) -> list[dict]:
    """The objects ``kubectl kustomize <path>`` renders; raises RuntimeError with kubectl's stderr."""
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"kubectl kustomize {path} failed (exit {proc.returncode}):\n{proc.stderr.strip()}"
        )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


FLEET_FILES = ("fleet.yaml", "fleet.yml")
FLEET_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def fleet_build(root: Path, paths: list[str]) -> list[dict]:
    """Every object Fleet deploys from a GitRepo with these ``spec.paths``, all bundles together.

    Each directory under a path holding a fleet.yaml is a bundle (a path without any is one bundle
    itself). A bundle deploys its local Helm chart rendered with ``helm.values`` (Helm's own engine,
    helm-python-sdk), else its kustomization's build, else its YAML files (not fleet.yaml, not
    ``overlays/``, not a nested bundle, not what .fleetignore names); then ``namespace`` /
    ``defaultNamespace`` apply.
    """
    objects: list[dict] = []
    for path in paths:
        base = root / path if path else root
        bundles = sorted(
            {f.parent for name in FLEET_FILES for f in base.rglob(name) if ".git" not in f.parts}
        ) or [base]
        for bundle in bundles:
            objects += _fleet_bundle(root, bundle)
    return objects


def _fleet_bundle(root: Path, bundle: Path) -> list[dict]:
    spec: dict = {}
    for name in FLEET_FILES:
        if (bundle / name).is_file():
            spec = yaml.safe_load((bundle / name).read_text()) or {}
    helm = spec.get("helm") or {}
    chart = bundle / helm["chart"] if helm.get("chart") else bundle
    if (chart / "Chart.yaml").is_file():
        import helm_python

        values = helm.get("values") or {}
        for name in helm.get("valuesFiles") or []:  # Fleet merges them over helm.values
            values = _merged(values, yaml.safe_load((bundle / name).read_text()) or {})
        with helm_python.Chart.load(str(chart)) as loaded:
            rendered = loaded.render(
                values,
                name=helm.get("releaseName") or bundle.name,
                namespace=spec.get("namespace") or spec.get("defaultNamespace") or "default",
            )
        objects = [d for text in rendered.values() for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    elif (bundle / ((spec.get("kustomize") or {}).get("dir") or ".") / "kustomization.yaml").is_file():
        objects = kustomize_build(bundle / ((spec.get("kustomize") or {}).get("dir") or "."))
    else:
        objects = []
        for file in sorted(bundle.rglob("*")):
            rel = file.relative_to(bundle)
            if (
                file.suffix not in (".yaml", ".yml")
                or file.name in FLEET_FILES
                or any(part.startswith(".") for part in rel.parts)
                or rel.parts[0] == "overlays"
                or any(
                    (bundle / Path(*rel.parts[:i]) / f).is_file()
                    for i in range(1, len(rel.parts))
                    for f in FLEET_FILES
                )
                or _fleet_ignored(bundle, rel)
            ):
                continue
            objects += [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict)]
    for obj in objects:
        if obj.get("kind") in FLEET_CLUSTER_SCOPED:
            continue
        meta = obj.setdefault("metadata", {})
        if spec.get("namespace"):
            meta["namespace"] = spec["namespace"]
        else:
            meta.setdefault("namespace", spec.get("defaultNamespace") or "default")
    return objects


def _merged(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _fleet_ignored(bundle: Path, rel: Path) -> bool:
    """A .fleetignore applies to its directory and below: globs on a base name, ``dir/*`` for a directory."""
    import fnmatch

    for depth in range(len(rel.parts)):
        ignore = bundle / Path(*rel.parts[:depth]) / ".fleetignore"
        if not ignore.is_file():
            continue
        patterns = [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")]
        below = rel.parts[depth:]
        for pattern in patterns:
            if pattern.endswith("/*") and any(fnmatch.fnmatchcase(d, pattern[:-2]) for d in below[:-1]):
                return True
            if not pattern.endswith("/*") and any(fnmatch.fnmatchcase(part, pattern) for part in below):
                return True
    return False


def assert_invariant(
    objects: list[dict],
    *,
    namespace: str,
    target: str,
    service: str,
    primary_images: dict[str, str],
    canary_images: dict[str, str],
    canary_replicas: int | None,
    weights: tuple[int, int] | None,
    crd_dir: Path = CRD_DIR,
    ab_match: list[dict] | None = None,
    provider: str = "istio",
    ingress: str | None = None,
    mirrored: bool | None = None,
) -> None:
    """Fail with one message listing every way ``objects`` break the invariant.

    ``weights`` is (primary, canary); None means routing is not switched yet, so the routing object
    (VirtualService, HTTPRoute, TrafficSplit or ``<ingress>-canary`` Ingress, by ``provider``) must
    not exist (and the apex Service is not checked). ``mirrored`` (when not None) says whether the
    routing object must copy requests to the canary. With ``provider="kubernetes"`` there is no
    routing object at all.
    """
    problems: list[str] = []
    index = _Index(objects, namespace, problems)

    canary = index.one("Deployment", target)
    primary = index.one("Deployment", f"{target}-primary")
    for deployment, expected in ((primary, primary_images), (canary, canary_images)):
        if deployment is not None:
            actual = _images(deployment)
            if actual != expected:
                problems.append(f"{_name(deployment)}: images are {actual}, expected {expected}")
    if canary is not None and canary_replicas is not None:
        replicas = _get(canary, "spec", "replicas")
        if replicas != canary_replicas:
            problems.append(f"{_name(canary)}: spec.replicas is {replicas}, expected {canary_replicas}")
    for one, other in ((primary, canary), (canary, primary)):
        if one is None:
            continue
        selector = _get(one, "spec", "selector") or {}
        labels = _pod_labels(one)
        if not _selector_selects(selector, labels):
            problems.append(
                f"{_name(one)}: spec.selector {selector} does not match its template labels {labels}"
            )
        if other is not None and _selector_selects(selector, _pod_labels(other)):
            problems.append(
                f"{_name(one)}: spec.selector {selector} also selects the pods of {_name(other)} "
                f"(labels {_pod_labels(other)})"
            )

    services = [(f"{service}-primary", primary), (f"{service}-canary", canary)]
    if weights is not None:
        services.append((service, primary))
    for name, backing in services:
        svc = index.one("Service", name)
        if svc is None or backing is None:
            continue
        selector = _get(svc, "spec", "selector") or {}
        if not selector or not _labels_match(selector, _pod_labels(backing)):
            problems.append(
                f"{_name(svc)}: spec.selector {selector} does not select the pods of {_name(backing)} "
                f"(labels {_pod_labels(backing)})"
            )
        for other in (primary, canary):
            if other is None or other is backing or not selector:
                continue
            if _labels_match(selector, _pod_labels(other)):
                problems.append(
                    f"{_name(svc)}: spec.selector {selector} also selects the pods of {_name(other)}"
                )

    if provider != "istio":
        args = (weights, ab_match, ingress, mirrored)
        problems.extend(provider_routing_problems(objects, provider, namespace, service, *args))
    virtual_services = index.all("VirtualService", service)
    if provider != "istio":
        pass  # checked above, in the provider's own object
    elif weights is None:
        if virtual_services:
            problems.append(f"{_name(virtual_services[0])} exists, but routing should not be switched yet")
    else:
        vs = index.one("VirtualService", service)
        if vs is not None:
            sticky = affinity_of(find_canary(objects, namespace, service), provider) is not None
            problems.extend(_route_problems(vs, service, namespace, weights, ab_match, sticky))
            if mirrored is not None:
                mirror = _get((_get(vs, "spec", "http") or [{}])[0], "mirror", "host")
                if mirrored and _short_host(mirror or "", namespace) != f"{service}-canary":
                    problems.append(f"{_name(vs)}: spec.http[0].mirror is {mirror}, expected the canary")
                if not mirrored and mirror:
                    problems.append(f"{_name(vs)}: spec.http[0] mirrors to {mirror}, expected no mirroring")

    problems.extend(reference_problems(objects))
    found = find_canary(objects, namespace, service)
    if found is not None:  # a build that holds the Canary: every field rendered from spec.service
        problems.extend(service_field_problems(objects, found, provider, namespace))
        if weights is not None:
            problems.extend(session_affinity_problems(objects, found, provider, namespace, weights))
        if provider == "nginx":
            problems.extend(nginx_field_problems(objects, found, namespace))
    for obj in objects:
        problems.extend(schema_problems(obj, crd_dir))

    # An assert, not a raise: a test whose only check is this invariant counts as asserting
    # (tests/assertion_count.py).
    lines = "\n".join(f"  - {p}" for p in problems)
    assert not problems, f"invariant broken in namespace {namespace} ({len(problems)} problems):\n{lines}"


def _pod_references(deployment: dict) -> list[tuple[str, str]]:
    """(kind, name) of each ConfigMap, Secret and ServiceAccount the pods need to start.

    References marked ``optional: true`` are left out: Kubernetes starts the pod without them.
    """
    pod = _get(deployment, "spec", "template", "spec") or {}
    found: list[tuple[str, str]] = []

    def add(kind: str, ref: Any, key: str = "name") -> None:
        if isinstance(ref, Mapping) and ref.get(key) and not ref.get("optional"):
            found.append((kind, ref[key]))

    for volume in pod.get("volumes") or []:
        add("ConfigMap", volume.get("configMap"))
        add("Secret", volume.get("secret"), "secretName")
        for source in _get(volume, "projected", "sources") or []:
            add("ConfigMap", source.get("configMap"))
            add("Secret", source.get("secret"))
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            for env in container.get("env") or []:
                add("ConfigMap", _get(env, "valueFrom", "configMapKeyRef"))
                add("Secret", _get(env, "valueFrom", "secretKeyRef"))
            for env_from in container.get("envFrom") or []:
                add("ConfigMap", env_from.get("configMapRef"))
                add("Secret", env_from.get("secretRef"))
    account = pod.get("serviceAccountName") or pod.get("serviceAccount")
    if account and account != "default":  # Kubernetes creates `default` in every namespace
        found.append(("ServiceAccount", account))
    return found


def reference_problems(objects: list[dict]) -> list[str]:
    """Every ConfigMap, Secret and ServiceAccount a Deployment references must be in the build.

    A Secret may come from an ExternalSecret (``spec.target.name``, else its name) or a SealedSecret
    (its template's name, else its name): their controllers create it in the cluster.
    """
    present: set[tuple[str, Any, Any]] = set()
    for obj in objects:
        namespace, name = _get(obj, "metadata", "namespace"), _get(obj, "metadata", "name")
        kind = obj.get("kind")
        present.add((kind, namespace, name))
        if kind == "ExternalSecret":
            present.add(("Secret", namespace, _get(obj, "spec", "target", "name") or name))
        if kind == "SealedSecret":
            present.add(("Secret", namespace, _get(obj, "spec", "template", "metadata", "name") or name))
    problems = []
    for deployment in objects:
        if deployment.get("kind") != "Deployment":
            continue
        namespace = _get(deployment, "metadata", "namespace")
        for kind, name in _pod_references(deployment):
            if (kind, namespace, name) not in present:
                problems.append(f"{_name(deployment)} references {kind} {name}, which the build lacks")
    return problems


def schema_problems(obj: Mapping[str, Any], crd_dir: Path = CRD_DIR) -> list[str]:
    """Schema problems of one object; an object whose kind has no schema anywhere is a problem too."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{_name(obj)}: no apiVersion/kind"]
    schema = _crd_schemas(str(Path(crd_dir).resolve())).get((api_version, kind))
    if schema is not None:
        validator = _validator(str(Path(crd_dir).resolve()), api_version, kind)
        found = [f"{_name(obj)}: {_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]
        found += [
            f"{_name(obj)}: {p}: field not declared in schema" for p in _undeclared(obj, schema, "", True)
        ]
        return found
    group = api_version.rpartition("/")[0]
    if "." not in group or group.endswith(".k8s.io"):
        found = _builtin_problems(json.dumps(obj, sort_keys=True))
        if found is not None:
            return list(found)
    return [f"{_name(obj)}: unknown kind {api_version} {kind}: no CRD in {crd_dir} and not a built-in kind"]


@functools.lru_cache(maxsize=4096)
def _builtin_problems(canonical: str) -> tuple[str, ...] | None:
    """kubernetes-validate's verdict on one object (None: no schema), remembered by content: most
    objects are the same from one commit to the next, and each validation re-reads the schemas."""
    obj = json.loads(canonical)
    try:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as err:
        return (f"{_name(obj)}: {_path(err.path)}: {err.message}",)
    return ()


class _Index:
    def __init__(self, objects: list[dict], namespace: str, problems: list[str]) -> None:
        self.objects = objects
        self.namespace = namespace
        self.problems = problems

    def all(self, kind: str, name: str) -> list[dict]:
        return [
            o
            for o in self.objects
            if o.get("kind") == kind
            and _get(o, "metadata", "name") == name
            and _get(o, "metadata", "namespace") == self.namespace
        ]

    def one(self, kind: str, name: str) -> dict | None:
        found = self.all(kind, name)
        if len(found) == 1:
            return found[0]
        if found:
            self.problems.append(f"{kind} {self.namespace}/{name} appears {len(found)} times")
        else:
            elsewhere = [
                _name(o)
                for o in self.objects
                if o.get("kind") == kind and _get(o, "metadata", "name") == name
            ]
            hint = f" (found {', '.join(elsewhere)})" if elsewhere else ""
            self.problems.append(f"{kind} {self.namespace}/{name} is missing{hint}")
        return None


def _route_problems(
    vs: dict,
    service: str,
    namespace: str,
    weights: tuple[int, int],
    ab_match: list[dict] | None = None,
    sticky: bool = False,
) -> list[str]:
    """The weighted route; with A/B (`ab_match`), it matches those conditions and a second route
    sends everyone else to the primary alone. With session affinity (`sticky`) the weighted route is
    the last one, after the sticky routes session_affinity_problems checks."""
    http = _get(vs, "spec", "http") or []
    if sticky:
        http = http[-1:]
    expected_routes = 2 if ab_match else 1
    if len(http) != expected_routes:
        return [f"{_name(vs)}: spec.http has {len(http)} routes, expected {expected_routes}"]
    problems = []
    if ab_match:
        matched = http[0].get("match") or []
        for condition in ab_match:
            if not any(all(m.get(k) == v for k, v in condition.items()) for m in matched):
                problems.append(f"{_name(vs)}: spec.http[0].match lacks the A/B condition {condition}")
        rest = http[1].get("route") or []
        hosts = [
            (_short_host(_get(d, "destination", "host") or "", namespace), d.get("weight", 100)) for d in rest
        ]
        if hosts != [(f"{service}-primary", 100)]:
            problems.append(
                f"{_name(vs)}: spec.http[1] routes {hosts}, expected everyone else to the primary"
            )
    route = http[0].get("route") or []
    expected = {f"{service}-primary": weights[0], f"{service}-canary": weights[1]}
    actual: dict[str, Any] = {}
    for destination in route:
        host = _short_host(_get(destination, "destination", "host") or "", namespace)
        # Istio: an unset weight is 0 (a lone destination gets everything, but we always expect two).
        actual[host] = destination.get("weight", 0)
    if len(route) != 2 or actual != expected:
        problems.append(f"{_name(vs)}: spec.http[0].route weights are {actual}, expected {expected}")
    return problems


def _short_host(host: str, namespace: str) -> str:
    for suffix in (f".{namespace}.svc.cluster.local", f".{namespace}.svc", f".{namespace}"):
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host


def _images(deployment: dict) -> dict[str, str]:
    containers = _get(deployment, "spec", "template", "spec", "containers") or []
    return {c.get("name"): c.get("image") for c in containers}


def _pod_labels(deployment: dict) -> dict[str, str]:
    return _get(deployment, "spec", "template", "metadata", "labels") or {}


def _labels_match(wanted: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _selector_selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions)."""
    if not _labels_match(selector.get("matchLabels") or {}, labels):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _name(obj: Mapping[str, Any]) -> str:
    namespace = _get(obj, "metadata", "namespace")
    name = _get(obj, "metadata", "name")
    return f"{obj.get('kind')} {namespace}/{name}" if namespace else f"{obj.get('kind')} {name}"


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


@functools.cache
def _crd_schemas(crd_dir: str) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every version of every CRD in crd_dir.

    Versions a CRD file marks unserved count too: smi-sdk-go's split.yaml serves v1alpha4 only, while
    the meshes Flagger drives (Linkerd's SMI extension) serve the older TrafficSplit versions.
    """
    table: dict[tuple[str, str], dict] = {}
    for file in sorted(Path(crd_dir).glob("*.json")):
        for crd in json.loads(file.read_text()):
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                table[key] = version["schema"]["openAPIV3Schema"]
    return table


@functools.cache
def _validator(crd_dir: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = copy.deepcopy(_crd_schemas(crd_dir)[(api_version, kind)])
    _allow_nullable(schema)
    return jsonschema.Draft202012Validator(schema)


def _allow_nullable(node: Any) -> None:
    """OpenAPI ``nullable: true`` -> JSON Schema type [..., "null"]; OpenAPI 3.0's boolean
    ``exclusiveMaximum``/``exclusiveMinimum`` (Contour's ports) -> JSON Schema's numeric bound."""
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for bound, limit in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
            exclusive = isinstance(node.get(bound), bool) and node.pop(bound)
            if exclusive and isinstance(node.get(limit), int | float):
                node[bound] = node.pop(limit)
        for key, child in node.items():
            if key == "properties":
                for prop in child.values():
                    _allow_nullable(prop)
            else:
                _allow_nullable(child)
    elif isinstance(node, list):
        for child in node:
            _allow_nullable(child)


def _undeclared(value: Any, schema: Mapping[str, Any], path: str, root: bool) -> list[str]:
    """Fields Kubernetes would refuse on apply ("field not declared in schema")."""
    found: list[str] = []
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            found += _undeclared(item, schema["items"], f"{path}[{i}]", False)
    if not isinstance(value, Mapping):
        return found
    props = dict(schema.get("properties") or {})
    for branch in [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        props.update(branch.get("properties") or {})
    extra = schema.get("additionalProperties")
    keep = extra is True or schema.get("x-kubernetes-preserve-unknown-fields") is True
    if not (props or extra is not None or keep or schema.get("type") == "object"):
        return found
    embedded = root or schema.get("x-kubernetes-embedded-resource") is True
    for key, sub in value.items():
        child = f"{path}.{key}" if path else str(key)
        if embedded and key in ("apiVersion", "kind", "metadata"):
            continue
        if key in props:
            found += _undeclared(sub, props[key], child, False)
        elif isinstance(extra, Mapping):
            found += _undeclared(sub, extra, child, False)
        elif not keep:
            found.append(child)
    return found


# -- providers other than Istio: each reads the weights from the object that mesh reads -----------

NGINX = "nginx.ingress.kubernetes.io"


def routed_weights(
    objects: list[dict], provider: str, namespace: str, service: str, ingress: str | None = None
) -> tuple[tuple[int, int] | None, bool, list[dict]]:
    """(primary, canary) weights as the mesh would apply them, whether requests are mirrored, and the
    routing objects found; weights None when there is no routing object."""
    ours = [o for o in objects if _get(o, "metadata", "namespace") == namespace]
    if provider.startswith("gatewayapi"):
        found = [o for o in ours if o.get("kind") == "HTTPRoute" and _get(o, "metadata", "name") == service]
        if not found:
            return None, False, []
        weights: dict[str, int] = {}
        mirrored = False
        for rule in _get(found[0], "spec", "rules") or []:
            refs = rule.get("backendRefs") or []
            if len(refs) == 2:
                # Gateway API: an unset weight is 1.
                weights = {ref.get("name"): ref.get("weight", 1) for ref in refs}
            for flt in rule.get("filters") or []:
                if flt.get("type") == "RequestMirror":
                    mirrored = _get(flt, "requestMirror", "backendRef", "name") == f"{service}-canary"
        total = sum(weights.values()) or 1
        pair = (
            round(100 * weights.get(f"{service}-primary", 0) / total),
            round(100 * weights.get(f"{service}-canary", 0) / total),
        )
        return pair, mirrored, found
    if provider == "linkerd" or provider.startswith("smi:"):
        found = [
            o for o in ours if o.get("kind") == "TrafficSplit" and _get(o, "metadata", "name") == service
        ]
        if not found:
            return None, False, []
        backends = {b.get("service"): b.get("weight", 0) for b in _get(found[0], "spec", "backends") or []}
        return (backends.get(f"{service}-primary", 0), backends.get(f"{service}-canary", 0)), False, found
    if provider in ROUTER_WEIGHTS:
        # Kuma's TrafficRoute is cluster-scoped: no namespace.
        return ROUTER_WEIGHTS[provider](
            [o for o in objects if _get(o, "metadata", "namespace") in (None, namespace)], service
        )
    if provider == "nginx":
        name = f"{ingress}-canary"
        found = [o for o in ours if o.get("kind") == "Ingress" and _get(o, "metadata", "name") == name]
        if not found:
            return None, False, []
        notes = _get(found[0], "metadata", "annotations") or {}
        if notes.get(f"{NGINX}/canary") != "true":
            return (100, 0), False, found
        # ingress-nginx: a matching header or cookie wins over the weight.
        if f"{NGINX}/canary-by-header" in notes or f"{NGINX}/canary-by-cookie" in notes:
            return (0, 100), False, found
        weight = int(notes.get(f"{NGINX}/canary-weight", "0"))
        return (100 - weight, weight), False, found
    return None, False, []


def provider_routing_problems(
    objects: list[dict],
    provider: str,
    namespace: str,
    service: str,
    weights: tuple[int, int] | None,
    ab_match: list[dict] | None,
    ingress: str | None,
    mirrored: bool | None,
) -> list[str]:
    problems: list[str] = []
    if provider == "kubernetes":
        kinds = {"VirtualService", "HTTPRoute", "TrafficSplit"}
        extra = [_name(o) for o in objects if o.get("kind") in kinds]
        if extra:
            problems.append(f"provider kubernetes has no router, yet {', '.join(extra)} exist")
        return problems
    actual, actual_mirrored, found = routed_weights(objects, provider, namespace, service, ingress)
    if weights is None:
        if found:
            problems.append(f"{_name(found[0])} exists, but routing should not be switched yet")
        return problems
    if not found:
        return [f"no {provider} routing object for {namespace}/{service}"]
    obj = found[0]
    if ab_match and provider == "nginx":
        # A/B on NGINX: the header/cookie sends everything that matches to the canary.
        if weights[1] > 0 and actual != (0, 100):
            problems.append(f"{_name(obj)}: A/B step without canary-by-header/cookie annotations")
        if weights[1] == 0 and actual != (100, 0):
            problems.append(f"{_name(obj)}: routes {actual}, expected everything to the primary")
    elif actual != weights:
        problems.append(f"{_name(obj)}: weights are {actual}, expected {weights}")
    if mirrored is not None and actual_mirrored != mirrored:
        problems.append(f"{_name(obj)}: mirrored is {actual_mirrored}, expected {mirrored}")
    if provider.startswith("gatewayapi"):
        rules = _get(obj, "spec", "rules") or []
        if not _get(obj, "spec", "parentRefs"):
            problems.append(f"{_name(obj)}: spec.parentRefs is empty (service.gatewayRefs)")
        if ab_match:
            if len(rules) != 2 or [r.get("name") for r in rules[1].get("backendRefs") or []] != [
                f"{service}-primary"
            ]:
                problems.append(f"{_name(obj)}: A/B needs a second rule sending everyone else to the primary")
            headers = [h for m in rules[0].get("matches") or [] for h in m.get("headers") or []]
            for condition in ab_match:
                for header, value in (condition.get("headers") or {}).items():
                    wanted = value.get("exact") or value.get("regex")
                    if not any(h.get("name") == header and h.get("value") == wanted for h in headers):
                        problems.append(f"{_name(obj)}: rules[0].matches lacks the A/B header {header}")
    apex = _get(obj, "spec", "service")
    if (provider == "linkerd" or provider.startswith("smi:")) and apex != service:
        problems.append(f"{_name(obj)}: spec.service is {apex}, expected {service}")
    if provider == "nginx":
        backends = [
            _get(p, "backend", "service", "name")
            for r in _get(obj, "spec", "rules") or []
            for p in _get(r, "http", "paths") or []
        ]
        if not backends or any(b != f"{service}-canary" for b in backends):
            problems.append(f"{_name(obj)}: backends are {backends}, expected {service}-canary")
        main = [o for o in objects if o.get("kind") == "Ingress" and _get(o, "metadata", "name") == ingress]
        if not main:
            problems.append(f"Ingress {namespace}/{ingress} (the user's) is missing")
    return problems


# -- every field rendered from the Canary's spec.service, expected from the Canary itself ---------
#
# The rules below restate Flagger's routers (pkg/router/istio.go, gateway_api.go, ingress.go) as
# the expected outputs of Flagger's own router tests pin them (tests/data/flagger_router_cases.yaml,
# checked against this function by tests/test_router_fields.py). They read the Canary from the build,
# never gitcanary's code, so a field gitcanary forgets to render, or renders wrongly, is a problem.


def find_canary(objects: list[dict], namespace: str, service: str) -> dict | None:
    """The Canary in ``objects`` whose apex service is ``service`` (its service.name or target)."""
    for obj in objects:
        if obj.get("kind") != "Canary" or _get(obj, "metadata", "namespace") not in (None, namespace):
            continue
        name = _get(obj, "spec", "service", "name") or _get(obj, "spec", "targetRef", "name")
        if name == service:
            return obj
    return None


def _absent_or(value: Any) -> Any:
    """An empty list or map is not rendered at all."""
    return value if value not in (None, [], {}) else None


def _istio_merged_match(analysis: list[dict], service: list[dict]) -> list[dict]:
    """Flagger's A/B merge (TestIstioRouter_Match): each service match once per A/B condition,
    taking the condition's headers, query parameters and source labels."""
    if not service:
        return [dict(c) for c in analysis]
    out = []
    for condition in analysis:
        for default in service:
            item = dict(default)
            for key in ("headers", "queryParams", "sourceLabels"):
                if condition.get(key):
                    item[key] = condition[key]
            out.append(item)
    return out


def service_field_problems(
    objects: list[dict], canary: Mapping[str, Any], provider: str, namespace: str
) -> list[str]:
    """Every field gitcanary renders from ``canary``'s spec.service, against what Flagger renders."""
    svc = _get(canary, "spec", "service") or {}
    name = svc.get("name") or _get(canary, "spec", "targetRef", "name")
    problems: list[str] = []
    ours = [o for o in objects if _get(o, "metadata", "namespace") == namespace]

    def one(kind: str, obj_name: str) -> dict | None:
        found = [o for o in ours if o.get("kind") == kind and _get(o, "metadata", "name") == obj_name]
        return found[0] if len(found) == 1 else None

    def expect(obj: dict, path: str, actual: Any, expected: Any) -> None:
        if _absent_or(actual) != _absent_or(expected):
            problems.append(f"{_name(obj)}: {path} is {actual!r}, expected {expected!r} (from spec.service)")

    port = svc.get("port")
    for suffix in ("", "-primary", "-canary"):
        service = one("Service", f"{name}{suffix}")
        if service is None:
            continue
        ports = _get(service, "spec", "ports") or [{}]
        expect(service, "spec.ports[0].name", ports[0].get("name"), svc.get("portName") or "http")
        expect(service, "spec.ports[0].port", ports[0].get("port"), port)
        target_port = svc.get("targetPort") if svc.get("targetPort") is not None else port
        expect(service, "spec.ports[0].targetPort", ports[0].get("targetPort"), target_port)
        expect(service, "spec.ports[0].appProtocol", ports[0].get("appProtocol"), svc.get("appProtocol"))
        # service.apex / primary / canary: Flagger's custom metadata for each generated Service.
        custom = svc.get({"": "apex", "-primary": "primary", "-canary": "canary"}[suffix]) or {}
        labels = _get(service, "metadata", "labels") or {}
        for key, value in (custom.get("labels") or {}).items():
            if key not in ("app", "name", "app.kubernetes.io/name"):  # the selector label is Flagger's own
                expect(service, f"metadata.labels.{key}", labels.get(key), value)
        notes = _get(service, "metadata", "annotations") or {}
        expect(service, "metadata.annotations", notes, custom.get("annotations") or {})

    analysis_match = _get(canary, "spec", "analysis", "match") or []
    if provider == "istio":
        vs = one("VirtualService", name)
        if vs is not None:
            hosts = _get(vs, "spec", "hosts") or []
            expect(vs, "spec.hosts", sorted(set(hosts)), sorted({name, *(svc.get("hosts") or [])}))
            gateways = svc.get("gateways") or []
            expect(vs, "spec.gateways", _get(vs, "spec", "gateways"), gateways)
            http = _get(vs, "spec", "http") or []
            sticky = affinity_of(canary, provider) is not None
            for index, route in enumerate(http):
                where = f"spec.http[{index}]"
                # A sticky route matches a cookie (session_affinity_problems checks which) and, once
                # the canary is back to weight 0, adds the Set-Cookie that expires it.
                first = (route.get("match") or [{}])[0]
                cookie = _get(first, "headers", "Cookie", "regex") if sticky else None
                headers = copy.deepcopy(route.get("headers"))
                if cookie is not None and _get(headers, "response", "add", "Set-Cookie") is not None:
                    del headers["response"]["add"]["Set-Cookie"]
                    headers = _pruned(headers)
                for field, actual, source in (
                    ("timeout", route.get("timeout"), "timeout"),
                    ("retries", route.get("retries"), "retries"),
                    ("headers", headers, "headers"),
                    ("corsPolicy", route.get("corsPolicy"), "corsPolicy"),
                    ("rewrite", route.get("rewrite"), "rewrite"),
                ):
                    expect(vs, f"{where}.{field}", actual, svc.get(source))
                if analysis_match and index == 0:
                    wanted = _istio_merged_match(analysis_match, svc.get("match") or [])
                elif cookie is not None and index < len(http) - 1:
                    wanted = _istio_merged_match(
                        [{"headers": {"Cookie": {"regex": cookie}}}], svc.get("match") or []
                    )
                else:
                    wanted = svc.get("match") or []
                expect(vs, f"{where}.match", route.get("match"), wanted)
                # Flagger's makeDestination: the port is set when an ingress gateway is in front.
                by_port = svc.get("portDiscovery") and gateways and gateways[0] != "mesh"
                for d_index, destination in enumerate(route.get("route") or []):
                    number = _get(destination, "destination", "port", "number")
                    expect(
                        vs,
                        f"{where}.route[{d_index}].destination.port.number",
                        number,
                        port if by_port else None,
                    )
        for suffix in ("-primary", "-canary"):
            rule = one("DestinationRule", f"{name}{suffix}")
            if rule is None:
                continue
            expect(
                rule, "spec.host", _short_host(_get(rule, "spec", "host") or "", namespace), f"{name}{suffix}"
            )
            expect(rule, "spec.trafficPolicy", _get(rule, "spec", "trafficPolicy"), svc.get("trafficPolicy"))
    elif provider.startswith("gatewayapi"):
        route = one("HTTPRoute", name)
        if route is not None:
            expect(route, "spec.parentRefs", _get(route, "spec", "parentRefs"), svc.get("gatewayRefs") or [])
            expect(route, "spec.hostnames", _get(route, "spec", "hostnames"), svc.get("hosts") or [])
            rules = _get(route, "spec", "rules") or []
            wanted_matches = _gateway_matches(svc.get("match") or []) or [
                {"path": {"type": "PathPrefix", "value": "/"}}
            ]
            sticky = affinity_of(canary, provider) is not None
            for index, rule in enumerate(rules):
                where = f"spec.rules[{index}]"
                timeout = {"request": svc["timeout"]} if svc.get("timeout") else None
                expect(route, f"{where}.timeouts", rule.get("timeouts"), timeout)
                cookies = [
                    h.get("value")
                    for m in rule.get("matches") or []
                    for h in m.get("headers") or []
                    if h.get("name") == "Cookie"
                ]
                if sticky and cookies and index < len(rules) - 1:
                    cookie_match = {
                        "headers": [{"name": "Cookie", "type": "RegularExpression", "value": cookies[0]}]
                    }
                    # Flagger's mergeMatchConditions with the service's own matches (none: the cookie alone).
                    service_matches = _gateway_matches(svc.get("match") or [])
                    merged = [{**default, "headers": cookie_match["headers"]} for default in service_matches]
                    expect(route, f"{where}.matches", rule.get("matches"), merged or [cookie_match])
                elif analysis_match and index == 0:
                    # Flagger's mergeMatchConditions: each service match once per A/B condition,
                    # taking the condition's headers and query parameters.
                    merged = [
                        {**default, **{k: v for k, v in condition.items() if k in ("headers", "queryParams")}}
                        for condition in _gateway_matches(analysis_match)
                        for default in wanted_matches
                    ]
                    expect(route, f"{where}.matches", rule.get("matches"), merged)
                else:
                    expect(route, f"{where}.matches", rule.get("matches"), wanted_matches)
                # The blue/green mirror (to the canary) is checked below; service.mirror filters and
                # a sticky rule's cookie expiry are part of the rule's own filters.
                filters = [
                    f
                    for f in rule.get("filters") or []
                    if not (
                        f.get("type") == "RequestMirror"
                        and _get(f, "requestMirror", "backendRef", "name") == f"{name}-canary"
                    )
                    and not (sticky and cookies and _only_set_cookie(f))
                ]
                expect(route, f"{where}.filters", filters, _gateway_filters(svc))
                refs = rule.get("backendRefs") or []
                names = sorted(ref.get("name") for ref in refs)
                wanted_names = sorted(
                    [f"{name}-primary", f"{name}-canary"] if len(refs) == 2 else [f"{name}-primary"]
                )
                expect(route, f"{where}.backendRefs[*].name", names, wanted_names)
                mirrors = [
                    _get(f, "requestMirror", "backendRef")
                    for f in rule.get("filters") or []
                    if f.get("type") == "RequestMirror" and f not in filters
                ]
                for ref_where, ref in [
                    *((f"{where}.backendRefs[{i}]", ref) for i, ref in enumerate(refs)),
                    *((f"{where}.filters[RequestMirror].backendRef", ref) for ref in mirrors),
                ]:
                    ref = ref or {}
                    expect(route, f"{ref_where}.port", ref.get("port"), port)
                    # Gateway API defaults: group "" (core) and kind Service.
                    expect(route, f"{ref_where}.group", ref.get("group") or "", "")
                    expect(route, f"{ref_where}.kind", ref.get("kind") or "Service", "Service")
                for ref in mirrors:
                    expect(
                        route,
                        f"{where}.filters[RequestMirror].backendRef.name",
                        (ref or {}).get("name"),
                        f"{name}-canary",
                    )
    if provider in ROUTER_FIELDS:
        scoped = [o for o in objects if _get(o, "metadata", "namespace") in (None, namespace)]
        problems.extend(ROUTER_FIELDS[provider](scoped, canary, name, namespace))
    return problems


def _gateway_matches(matches: list[dict]) -> list[dict]:
    """Istio HTTPMatchRequests as Gateway API HTTPRouteMatches (Flagger's gateway_api.go)."""
    kinds = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}
    out = []
    for request in matches:
        match: dict[str, Any] = {}
        for key in ("regex", "exact", "prefix"):
            if _get(request, "uri", key):
                match["path"] = {"type": kinds[key], "value": request["uri"][key]}
                break
        if _get(request, "method", "exact"):
            match["method"] = request["method"]["exact"]
        for field, out_key in (("headers", "headers"), ("queryParams", "queryParams")):
            items = []
            for key, value in (request.get(field) or {}).items():
                kind = "Exact" if value.get("exact") else "RegularExpression"
                items.append({"name": key, "type": kind, "value": value.get("exact") or value.get("regex")})
            if items:
                match[out_key] = items
        if match:
            out.append(match)
    return out


def _gateway_filters(svc: Mapping[str, Any]) -> list[dict]:
    """spec.service.headers and rewrite as Gateway API filters (Flagger's makeFilters and rewrite)."""
    out: list[dict] = []
    for direction, kind, key in (
        ("request", "RequestHeaderModifier", "requestHeaderModifier"),
        ("response", "ResponseHeaderModifier", "responseHeaderModifier"),
    ):
        ops = _get(svc, "headers", direction)
        if not ops:
            continue
        modifier: dict[str, Any] = {}
        for op in ("add", "set"):
            if ops.get(op):
                modifier[op] = [{"name": k, "value": v} for k, v in sorted(ops[op].items())]
        if ops.get("remove"):
            modifier["remove"] = list(ops["remove"])
        out.append({"type": kind, key: modifier})
    rewrite = svc.get("rewrite")
    if rewrite:
        url: dict[str, Any] = {}
        if rewrite.get("authority"):
            url["hostname"] = rewrite["authority"]
        if rewrite.get("uri"):
            kind = rewrite.get("type") or "ReplacePrefixMatch"
            field = "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch"
            url["path"] = {"type": kind, field: rewrite["uri"]}
        out.append({"type": "URLRewrite", "urlRewrite": url})
    # service.mirror: one RequestMirror filter each, after the rewrite (Flagger's makeFilters).
    for mirror in svc.get("mirror") or []:
        out.append(
            {"type": "RequestMirror", "requestMirror": {"backendRef": dict(mirror.get("backendRef") or {})}}
        )
    return out


def _only_set_cookie(flt: Mapping[str, Any]) -> bool:
    """A ResponseHeaderModifier that only adds Set-Cookie: a session-affinity cookie's."""
    modifier = flt.get("responseHeaderModifier") or {}
    added = modifier.get("add") or []
    return (
        flt.get("type") == "ResponseHeaderModifier"
        and set(modifier) == {"add"}
        and bool(added)
        and all(h.get("name") == "Set-Cookie" for h in added)
    )


def _pruned(value: Any) -> Any:
    """`value` without the empty maps a deletion left behind."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ({}, None)} or None
    return value


def nginx_field_problems(objects: list[dict], canary: Mapping[str, Any], namespace: str) -> list[str]:
    """The generated ``<ingress>-canary`` is the user's Ingress with the apex backend swapped for the
    canary service, the user's annotations kept (Flagger's ingress.go), and, for A/B, the header or
    cookie annotations of TestIngressRouter_ABTest."""
    ref = _get(canary, "spec", "ingressRef", "name")
    svc = _get(canary, "spec", "service") or {}
    apex = svc.get("name") or _get(canary, "spec", "targetRef", "name")
    ours = [
        o for o in objects if o.get("kind") == "Ingress" and _get(o, "metadata", "namespace") == namespace
    ]
    user = [o for o in ours if _get(o, "metadata", "name") == ref]
    generated = [o for o in ours if _get(o, "metadata", "name") == f"{ref}-canary"]
    if len(user) != 1 or len(generated) != 1:
        return []
    expected_spec = copy.deepcopy(user[0].get("spec") or {})
    for rule in expected_spec.get("rules") or []:
        for path in _get(rule, "http", "paths") or []:
            if _get(path, "backend", "service", "name") == apex:
                path["backend"]["service"]["name"] = f"{apex}-canary"
    problems = []
    if generated[0].get("spec") != expected_spec:
        problems.append(
            f"{_name(generated[0])}: spec is {generated[0].get('spec')}, expected the user's Ingress spec "
            f"with {apex} swapped for {apex}-canary: {expected_spec}"
        )
    notes = _get(generated[0], "metadata", "annotations") or {}
    for key, value in (_get(user[0], "metadata", "annotations") or {}).items():
        if not key.startswith(f"{NGINX}/canary") and notes.get(key) != str(value):
            problems.append(
                f"{_name(generated[0])}: annotation {key} is {notes.get(key)!r}, expected {value!r}"
            )
    weight = notes.get(f"{NGINX}/canary-weight")
    by_match = f"{NGINX}/canary-by-header" in notes or f"{NGINX}/canary-by-cookie" in notes
    if by_match:
        for condition in _get(canary, "spec", "analysis", "match") or []:
            for header, value in (condition.get("headers") or {}).items():
                if header == "cookie":
                    wanted = {f"{NGINX}/canary-by-cookie": value.get("exact")}
                elif value.get("exact"):
                    wanted = {
                        f"{NGINX}/canary-by-header": header,
                        f"{NGINX}/canary-by-header-value": value["exact"],
                    }
                else:
                    wanted = {
                        f"{NGINX}/canary-by-header": header,
                        f"{NGINX}/canary-by-header-pattern": value.get("regex"),
                    }
                for key, expected in wanted.items():
                    if notes.get(key) != expected:
                        actual = notes.get(key)
                        where = _name(generated[0])
                        problems.append(f"{where}: annotation {key} is {actual!r}, not {expected!r}")
    if weight is None:
        problems.append(f"{_name(generated[0])}: no {NGINX}/canary-weight annotation")
    return problems


# -- the rows a rollout's commits must follow, from the test's own Canary spec ------------------


def rollout_rows(
    promoted: list[int] | None = None,
    failed: list[int] | None = None,
    halts: int = 0,
    initialize: bool = True,
) -> list[tuple[str, str, int]]:
    """(action, phase, canary weight) of each commit, as Flagger's state machine walks them.

    ``promoted``: the weights of a rollout that advances through them and is promoted (promotion
    keeps the last weight, finalizing routes everything back to the primary). ``failed``: the
    weights of a rollout that advances through them, then halts ``halts`` times at the last one and
    rolls back. Tests derive the weights from their Canary's stepWeight/stepWeights/maxWeight or
    iterations, never from gitcanary's trailers.
    """
    rows: list[tuple[str, str, int]] = []
    if initialize:
        rows += [("initialize", "Initializing", 0), ("initialized", "Initialized", 0)]
    if promoted is not None:
        rows += [("start", "Progressing", 0)] + [("advance", "Progressing", w) for w in promoted]
        rows += [("promote", "Promoting", promoted[-1]), ("finalize", "Finalising", 0)]
        rows += [("succeed", "Succeeded", 0)]
    if failed is not None:
        rows += [("start", "Progressing", 0)] + [("advance", "Progressing", w) for w in failed]
        rows += [("halt", "Progressing", failed[-1] if failed else 0)] * halts + [("rollback", "Failed", 0)]
    return rows


def tree_at_commit(remote: Path, sha: str, into: Path) -> Path:
    """The files of commit ``sha`` of the repository at ``remote``, extracted under ``into``."""
    import io
    import tarfile

    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", sha], cwd=remote, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as handle:
        handle.extractall(into, filter="data")
    return into


def assert_commit(remote: Path, sha: str, into: Path, build: str = "apps", **invariant: Any) -> None:
    """Build commit ``sha`` as Flux would (``kubectl kustomize <build>``) and hold it to the invariant."""
    objects = kustomize_build(tree_at_commit(remote, sha, into / sha[:12]) / build)
    assert_invariant(objects, **invariant)


def assert_story(
    remote: Path,
    commits: list[tuple[str, str, dict[str, str]]],
    rows: list[tuple[str, str, int]],
    into: Path,
    *,
    image: str,
    tags: tuple[str, ...],
    replicas: int,
    container: str = "backend",
    namespace: str = "prod",
    target: str = "backend",
    build: str = "apps",
    **invariant: Any,
) -> None:
    """The oracle after each commit of a story where a person bumps ``tags[1]``, then ``tags[2]``...

    ``rows`` (from the test, e.g. ``rollout_rows``) give each commit's action, phase and weight; the
    trailers' actions must match them. The primary runs ``tags[0]`` until a promotion; each start
    runs the next tag on the canary; a rollback writes the primary's tag back.
    """
    assert [t.get("Action") for _, _, t in commits] == [row[0] for row in rows], (
        [t.get("Action") for _, _, t in commits],
        rows,
    )
    primary, canary, bumps = tags[0], tags[0], iter(tags[1:])
    scaled = ("Progressing", "WaitingPromotion", "Promoting", "Finalising")
    for (sha, _, _), (action, phase, weight) in zip(commits, rows, strict=True):
        if action in ("start", "wait") and phase in ("Progressing", "Waiting") and weight == 0:
            canary = next(bumps, canary) if canary == primary else canary
        if action == "promote":
            primary = canary
        if action == "rollback":
            canary = primary
        assert_commit(
            remote,
            sha,
            into,
            build,
            namespace=namespace,
            target=target,
            service=target,
            primary_images={container: f"{image}:{primary}"},
            canary_images={container: f"{image}:{canary}"},
            canary_replicas=None if phase == "Initializing" else (replicas if phase in scaled else 0),
            weights=None if phase == "Initializing" else (100 - weight, weight),
            **invariant,
        )


# -- the routers beyond Istio, Gateway API, SMI and NGINX ------------------------------------------
#
# Each restates, from the Canary document alone, what Flagger's router (pkg/router/<name>.go) writes,
# as its router tests pin it (tests/data/flagger_router_cases.yaml); `ROUTER_WEIGHTS` reads the
# weights back as that proxy would apply them, `ROUTER_FIELDS` checks every other rendered field.

Weights = tuple[tuple[int, int] | None, bool, list[dict]]


def _named(objects: list[dict], kind: str, name: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind and _get(o, "metadata", "name") == name]


def _contour_weights(objects: list[dict], service: str) -> Weights:
    """Contour: the first route's services; when none has a weight they share equally, otherwise an
    unset weight is 0 (Contour's HTTPProxy documentation)."""
    found = _named(objects, "HTTPProxy", service)
    if not found:
        return None, False, []
    services = ((_get(found[0], "spec", "routes") or [{}])[0]).get("services") or []
    weighted = [s for s in services if not s.get("mirror")]
    if not any(s.get("weight") for s in weighted):
        share = {s.get("name"): 100 // max(len(weighted), 1) for s in weighted}
    else:
        share = {s.get("name"): s.get("weight", 0) for s in weighted}
    mirrored = any(s.get("mirror") and s.get("name") == f"{service}-canary" for s in services)
    pair = (share.get(f"{service}-primary", 0), share.get(f"{service}-canary", 0))
    return pair, mirrored, found


def _contour_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """contour.go: Reconcile/SetRoutes' HTTPProxySpec, from the Canary's spec.service and match."""
    found = _named(objects, "HTTPProxy", name)
    if len(found) != 1:
        return []
    proxy = found[0]
    svc = _get(canary, "spec", "service") or {}
    prefix = _get((svc.get("match") or [{}])[0], "uri", "prefix") or "/"
    base: dict[str, Any] = {}
    if svc.get("timeout"):
        base["timeoutPolicy"] = {"response": svc["timeout"], "idle": "5m"}
    retries = svc.get("retries")
    if retries:
        policy: dict[str, Any] = {"count": retries.get("attempts", 0)}
        if retries.get("perTryTimeout"):
            policy["perTryTimeout"] = retries["perTryTimeout"]
        if retries.get("retryOn"):
            policy["retryOn"] = retries["retryOn"].split(",")
        base["retryPolicy"] = policy
    conditions = [[{"prefix": prefix}]]
    ab = _get(canary, "spec", "analysis", "match") or []
    if ab:
        headers = []
        for condition in ab:
            for header, value in (condition.get("headers") or {}).items():
                if value.get("prefix") or value.get("suffix"):
                    match = {"name": header, "contains": value.get("prefix") or value.get("suffix")}
                else:
                    match = {"name": header, "exact": value.get("exact")}
                headers.append({"prefix": prefix, "header": match})
        conditions = [headers, [{"prefix": prefix}]]
    problems = []
    routes = _get(proxy, "spec", "routes") or []
    if len(routes) != len(conditions):
        problems.append(f"{_name(proxy)}: {len(routes)} routes, expected {len(conditions)}")
    for index, (route, wanted) in enumerate(zip(routes, conditions, strict=False)):
        where = f"{_name(proxy)}: spec.routes[{index}]"
        if route.get("conditions") != wanted:
            problems.append(f"{where}.conditions is {route.get('conditions')}, expected {wanted}")
        for key in ("timeoutPolicy", "retryPolicy"):
            if route.get(key) != base.get(key):
                problems.append(f"{where}.{key} is {route.get(key)}, expected {base.get(key)}")
        extra = set(route) - {"conditions", "services", "timeoutPolicy", "retryPolicy"}
        if extra:
            problems.append(f"{where}: fields Flagger does not render: {sorted(extra)}")
        services = route.get("services") or []
        names = [s.get("name") for s in services]
        if names != [f"{name}-primary", f"{name}-canary"]:
            problems.append(f"{where}.services are {names}, expected {name}-primary, {name}-canary")
        for s_index, service in enumerate(services):
            host = f"{service.get('name')}.{namespace}.svc.cluster.local:{svc.get('port')}"
            wanted_service = {
                "name": service.get("name"),
                "port": svc.get("port"),
                "requestHeadersPolicy": {"set": [{"name": "l5d-dst-override", "value": host}]},
            }
            got = {k: v for k, v in service.items() if k != "weight"}
            if got != wanted_service:
                problems.append(f"{where}.services[{s_index}] is {got}, expected {wanted_service} (+ weight)")
        if index == 1 and _contour_weights([{**proxy, "spec": {"routes": [route]}}], name)[0] != (100, 0):
            problems.append(f"{where}: the everyone-else route does not send everything to the primary")
    problems.extend(_apex_metadata_problems(proxy, svc))
    return problems


def _apex_metadata_problems(obj: dict, svc: Mapping[str, Any]) -> list[str]:
    """Flagger's routers label and annotate their apex object with service.apex's metadata."""
    apex = svc.get("apex") or {}
    labels = _get(obj, "metadata", "labels") or {}
    notes = _get(obj, "metadata", "annotations") or {}
    problems = [
        f"{_name(obj)}: metadata.labels.{k} is {labels.get(k)!r}, expected {v!r} (service.apex)"
        for k, v in (apex.get("labels") or {}).items()
        if labels.get(k) != v
    ]
    if (notes or None) != (apex.get("annotations") or None):
        problems.append(f"{_name(obj)}: metadata.annotations is {notes}, expected {apex.get('annotations')}")
    return problems


def _traefik_weights(objects: list[dict], service: str) -> Weights:
    """Traefik's weighted round robin: an unset weight is 1 (Traefik's WeightedRoundRobin docs)."""
    found = _named(objects, "TraefikService", service)
    if not found:
        return None, False, []
    services = _get(found[0], "spec", "weighted", "services") or []
    share = {s.get("name"): s.get("weight", 1) for s in services}
    total = sum(share.values()) or 1
    pair = (
        round(100 * share.get(f"{service}-primary", 0) / total),
        round(100 * share.get(f"{service}-canary", 0) / total),
    )
    return pair, False, found


def _traefik_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """traefik.go: the primary, then the canary while it has a weight, on service.port in the
    canary's namespace; nothing else in the spec."""
    found = _named(objects, "TraefikService", name)
    if len(found) != 1:
        return []
    obj = found[0]
    svc = _get(canary, "spec", "service") or {}
    problems = []
    if set(obj.get("spec") or {}) != {"weighted"} or set(_get(obj, "spec", "weighted") or {}) != {"services"}:
        problems.append(f"{_name(obj)}: spec is {obj.get('spec')}, expected only weighted.services")
    services = _get(obj, "spec", "weighted", "services") or []
    names = [s.get("name") for s in services]
    if names not in ([f"{name}-primary"], [f"{name}-primary", f"{name}-canary"]):
        problems.append(f"{_name(obj)}: services are {names}, expected {name}-primary (then {name}-canary)")
    if len(services) == 2 and not services[1].get("weight"):
        problems.append(f"{_name(obj)}: the canary is listed without a weight (Flagger drops it at 0)")
    for index, service in enumerate(services):
        wanted = {"name": service.get("name"), "namespace": namespace, "port": svc.get("port")}
        got = {k: v for k, v in service.items() if k != "weight"}
        if got != wanted:
            problems.append(
                f"{_name(obj)}: spec.weighted.services[{index}] is {got}, expected {wanted} (+ weight)"
            )
    problems.extend(_apex_metadata_problems(obj, svc))
    return problems


def _gloo_upstream(service: str, namespace: str, port: Any, role: str) -> str:
    return f"{namespace}-{service}-{role}upstream-{port}"


def _gloo_weights(objects: list[dict], service: str) -> Weights:
    """Gloo: the first route's weighted destinations; an unset weight is 0 (a proto3 uint32)."""
    found = _named(objects, "RouteTable", service)
    if not found:
        return None, False, []
    route = (_get(found[0], "spec", "routes") or [{}])[0]
    share: dict[str, int] = {}
    for dest in _get(route, "routeAction", "multi", "destinations") or []:
        upstream = _get(dest, "destination", "upstream", "name") or ""
        role = (
            "primary"
            if "-primaryupstream-" in upstream
            else "canary"
            if "-canaryupstream-" in upstream
            else upstream
        )
        share[role] = dest.get("weight", 0)
    return (share.get("primary", 0), share.get("canary", 0)), False, found


def _gloo_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """gloo.go: one route inheriting the parent's path, matchers from analysis.match, destinations
    the two Upstreams Flagger names `<ns>-<svc>-<role>upstream-<port>`, each on its Service."""
    found = _named(objects, "RouteTable", name)
    if len(found) != 1:
        return []
    table = found[0]
    svc = _get(canary, "spec", "service") or {}
    port = svc.get("port")
    problems = []
    routes = _get(table, "spec", "routes") or []
    if len(routes) != 1:
        return [f"{_name(table)}: {len(routes)} routes, expected 1"]
    route = routes[0]
    if route.get("inheritablePathMatchers") is not True:
        problems.append(f"{_name(table)}: spec.routes[0].inheritablePathMatchers is not true")
    headers = []
    for condition in _get(canary, "spec", "analysis", "match") or []:
        for header, value in (condition.get("headers") or {}).items():
            if value.get("regex"):
                headers.append({"name": header, "value": value["regex"], "regex": True})
            else:
                headers.append({"name": header, **({"value": value["exact"]} if value.get("exact") else {})})
    wanted_matchers = [{"headers": headers}] if headers else None
    if route.get("matchers") != wanted_matchers:
        problems.append(
            f"{_name(table)}: spec.routes[0].matchers is {route.get('matchers')}, expected {wanted_matchers}"
        )
    extra = set(route) - {"inheritablePathMatchers", "matchers", "routeAction"}
    if extra:
        problems.append(f"{_name(table)}: spec.routes[0] has fields Flagger does not render: {sorted(extra)}")
    destinations = _get(route, "routeAction", "multi", "destinations") or []
    refs = [_get(d, "destination") for d in destinations]
    wanted_refs = [
        {"upstream": {"name": _gloo_upstream(name, namespace, port, role), "namespace": namespace}}
        for role in ("primary", "canary")
    ]
    if refs != wanted_refs:
        problems.append(f"{_name(table)}: destinations are {refs}, expected {wanted_refs}")
    for role in ("primary", "canary"):
        upstreams = _named(objects, "Upstream", _gloo_upstream(name, namespace, port, role))
        if len(upstreams) != 1:
            problems.append(f"Upstream {namespace}/{_gloo_upstream(name, namespace, port, role)} is missing")
            continue
        wanted = {
            "kube": {"serviceName": f"{name}-{role}", "serviceNamespace": namespace, "servicePort": port}
        }
        if upstreams[0].get("spec") != wanted:
            problems.append(f"{_name(upstreams[0])}: spec is {upstreams[0].get('spec')}, expected {wanted}")
    problems.extend(_apex_metadata_problems(table, svc))
    return problems


def _kuma_weights(objects: list[dict], service: str) -> Weights:
    """Kuma: conf.split's weights, by the `kuma.io/service` each destination names."""
    found = _named(objects, "TrafficRoute", service)
    if not found:
        return None, False, []
    share: dict[str, int] = {}
    for split in _get(found[0], "spec", "conf", "split") or []:
        kuma_name = _get(split, "destination", "kuma.io/service") or ""
        share[kuma_name.split("_", 1)[0]] = split.get("weight", 0)
    return (share.get(f"{service}-primary", 0), share.get(f"{service}-canary", 0)), False, found


def _kuma_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """kuma.go: from every service to the apex `<svc>_<ns>_svc_<port>`, split between the primary's
    and the canary's; cluster-scoped, in the mesh of the Canary's `kuma.io/mesh` annotation."""
    found = _named(objects, "TrafficRoute", name)
    if len(found) != 1:
        return []
    route = found[0]
    svc = _get(canary, "spec", "service") or {}
    port = svc.get("port")
    problems = []
    if _get(route, "metadata", "namespace") is not None:
        problems.append(f"{_name(route)}: a TrafficRoute is cluster-scoped, yet it has a namespace")
    mesh = (_get(canary, "metadata", "annotations") or {}).get("kuma.io/mesh", "default")
    if route.get("mesh") != mesh:
        problems.append(f"{_name(route)}: mesh is {route.get('mesh')!r}, expected {mesh!r}")
    spec = route.get("spec") or {}
    wanted = {
        "sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": f"{name}_{namespace}_svc_{port}"}}],
    }
    for key, value in wanted.items():
        if spec.get(key) != value:
            problems.append(f"{_name(route)}: spec.{key} is {spec.get(key)}, expected {value}")
    splits = _get(route, "spec", "conf", "split") or []
    destinations = [s.get("destination") for s in splits]
    wanted_destinations = [
        {"kuma.io/service": f"{name}-{role}_{namespace}_svc_{port}"} for role in ("primary", "canary")
    ]
    if destinations != wanted_destinations:
        problems.append(
            f"{_name(route)}: split destinations are {destinations}, expected {wanted_destinations}"
        )
    if any("weight" not in s for s in splits):
        problems.append(f"{_name(route)}: a split without weight (Flagger always writes it)")
    if set(spec) - {"sources", "destinations", "conf"} or set(spec.get("conf") or {}) - {"split"}:
        problems.append(f"{_name(route)}: spec has fields Flagger does not render: {spec}")
    problems.extend(_apex_metadata_problems(route, svc))
    return problems


def _apisix_weights(objects: list[dict], service: str) -> Weights:
    """APISIX: the generated `<route>-<svc>-canary` ApisixRoute's backend weights (it has priority
    over the user's route, which keeps sending to the apex service)."""
    found = [
        o
        for o in objects
        if o.get("kind") == "ApisixRoute" and str(_get(o, "metadata", "name")).endswith(f"-{service}-canary")
    ]
    if not found:
        return None, False, []
    share: dict[str, int] = {}
    for route in _get(found[0], "spec", "http") or []:
        for backend in route.get("backends") or []:
            share[backend.get("serviceName")] = backend.get("weight", 0)
    return (share.get(f"{service}-primary", 0), share.get(f"{service}-canary", 0)), False, found


def _apisix_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """apisix.go: the user's http route whose backend is the apex, copied with priority 10000, its
    backend the primary and a second backend the canary; the user's labels and annotations kept."""
    ref = _get(canary, "spec", "routeRef", "name")
    user = _named(objects, "ApisixRoute", ref)
    generated = _named(objects, "ApisixRoute", f"{ref}-{name}-canary")
    if len(user) != 1 or len(generated) != 1:
        return [] if not generated else [f"ApisixRoute {namespace}/{ref} (the user's) is missing"]
    obj = generated[0]
    expected = copy.deepcopy(user[0].get("spec") or {})
    target = [
        r
        for r in expected.get("http") or []
        if any(b.get("serviceName") == name for b in r.get("backends") or [])
    ]
    problems = []
    if not target:
        return [f"ApisixRoute {namespace}/{ref} has no backend {name}"]
    route = target[0]
    route["priority"] = 10000
    primary = route["backends"][0]
    primary["serviceName"] = f"{name}-primary"
    second = {"serviceName": f"{name}-canary", "servicePort": primary.get("servicePort")}
    second.update({k: primary[k] for k in ("resolveGranularity", "subset") if primary.get(k)})
    route["backends"].append(second)
    expected["http"] = [route]
    actual = copy.deepcopy(obj.get("spec") or {})
    for r in actual.get("http") or []:
        for backend in r.get("backends") or []:
            backend.pop("weight", None)
        for backend in route["backends"]:
            backend.pop("weight", None)
    if actual != expected:
        problems.append(
            f"{_name(obj)}: spec is {actual}, expected the user's route copied: {expected} (+ weights)"
        )
    backends = [b for r in _get(obj, "spec", "http") or [] for b in r.get("backends") or []]
    if any("weight" not in b for b in backends):
        problems.append(f"{_name(obj)}: a backend without weight (Flagger sets both)")
    meta_user = user[0].get("metadata") or {}
    labels = _get(obj, "metadata", "labels") or {}
    for key, value in (meta_user.get("labels") or {}).items():
        if labels.get(key) != value:
            problems.append(f"{_name(obj)}: label {key} is {labels.get(key)!r}, expected {value!r}")
    notes = _get(obj, "metadata", "annotations") or {}
    if notes != (meta_user.get("annotations") or {}):
        problems.append(
            f"{_name(obj)}: annotations are {notes}, expected the user's {meta_user.get('annotations')}"
        )
    return problems


SKIPPER_WEIGHTS = "zalando.org/backend-weights"
SKIPPER_PREDICATE = "zalando.org/skipper-predicate"


def _skipper_insert(raw: str, insert: str) -> str:
    """skipper_test.go Test_insertPredicate: `insert` first, the other predicates after it in order,
    Weight(100) and False() dropped."""
    rest = [p.strip() for p in raw.split("&&") if p.strip() and p.strip() not in ("Weight(100)", "False()")]
    return " && ".join([insert, *rest])


def _skipper_weights(objects: list[dict], service: str) -> Weights:
    """Skipper: the canary Ingress's backend weights; a `False()` predicate turns it off, leaving the
    user's Ingress (to the apex, the primary) serving everything."""
    found = [
        o
        for o in objects
        if o.get("kind") == "Ingress"
        and f'"{service}-canary"' in ((_get(o, "metadata", "annotations") or {}).get(SKIPPER_WEIGHTS) or "")
    ]
    if not found:
        return None, False, []
    notes = _get(found[0], "metadata", "annotations") or {}
    if "False()" in [p.strip() for p in notes.get(SKIPPER_PREDICATE, "").split("&&")]:
        return (100, 0), False, found
    weights = json.loads(notes[SKIPPER_WEIGHTS])
    total = sum(weights.values()) or 1
    pair = (
        round(100 * weights.get(f"{service}-primary", 0) / total),
        round(100 * weights.get(f"{service}-canary", 0) / total),
    )
    return pair, False, found


def _skipper_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """skipper.go: the user's Ingress with each apex path pointed at the primary and a copy to the
    canary appended; its annotations kept, with the weights and the canary predicate."""
    ref = _get(canary, "spec", "ingressRef", "name")
    user = _named([o for o in objects if o.get("kind") == "Ingress"], "Ingress", ref)
    generated = _named(objects, "Ingress", f"{ref}-canary")
    if len(generated) != 1:
        return []
    if len(user) != 1:
        return [f"Ingress {namespace}/{ref} (the user's) is missing"]
    obj = generated[0]
    expected = copy.deepcopy(user[0].get("spec") or {})
    for rule in expected.get("rules") or []:
        paths = _get(rule, "http", "paths") or []
        for path in list(paths):
            if _get(path, "backend", "service", "name") == name:
                path["backend"]["service"]["name"] = f"{name}-primary"
                second = copy.deepcopy(path)
                second["backend"]["service"]["name"] = f"{name}-canary"
                paths.append(second)
    problems = []
    if obj.get("spec") != expected:
        problems.append(f"{_name(obj)}: spec is {obj.get('spec')}, expected {expected}")
    notes = _get(obj, "metadata", "annotations") or {}
    user_notes = {k: str(v) for k, v in (_get(user[0], "metadata", "annotations") or {}).items()}
    for key, value in user_notes.items():
        if key not in (SKIPPER_WEIGHTS, SKIPPER_PREDICATE) and notes.get(key) != value:
            problems.append(f"{_name(obj)}: annotation {key} is {notes.get(key)!r}, expected {value!r}")
    try:
        weights = json.loads(notes.get(SKIPPER_WEIGHTS, ""))
    except ValueError:
        return [*problems, f"{_name(obj)}: {SKIPPER_WEIGHTS} is not JSON: {notes.get(SKIPPER_WEIGHTS)!r}"]
    if sorted(weights) != [f"{name}-canary", f"{name}-primary"]:
        problems.append(f"{_name(obj)}: {SKIPPER_WEIGHTS} names {sorted(weights)}")
    predicate = _skipper_insert(user_notes.get(SKIPPER_PREDICATE, ""), "Weight(100)")
    if weights.get(f"{name}-canary") == 0:
        predicate = _skipper_insert(predicate, "False()")
    if notes.get(SKIPPER_PREDICATE) != predicate:
        problems.append(
            f"{_name(obj)}: {SKIPPER_PREDICATE} is {notes.get(SKIPPER_PREDICATE)!r}, expected {predicate!r}"
        )
    return problems


def _appmesh_weights(objects: list[dict], service: str) -> Weights:
    """App Mesh: the first route of the VirtualRouter `<svc>` (the A/B route `<svc>-a` when there is one)."""
    found = _named(objects, "VirtualRouter", service)
    if not found:
        return None, False, []
    route = (_get(found[0], "spec", "routes") or [{}])[0]
    share = {
        _get(t, "virtualNodeRef", "name"): t.get("weight", 0)
        for t in _get(route, "httpRoute", "action", "weightedTargets") or []
    }
    return (share.get(f"{service}-primary", 0), share.get(f"{service}-canary", 0)), False, found


def _go_ms(value: Any) -> int | None:
    """Go's time.ParseDuration for the simple durations Canaries hold, in milliseconds."""
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
    text = str(value or "")
    for unit in ("ms", "s", "m", "h"):
        number = text.removesuffix(unit)
        if number != text and number.replace(".", "", 1).isdigit():
            return int(float(number) * units[unit])
    return None


def _appmesh_problems(objects: list[dict], canary: Mapping[str, Any], name: str, namespace: str) -> list[str]:
    """appmesh_v1beta2.go: two VirtualNodes, the apex and the canary VirtualRouter and VirtualService."""
    svc = _get(canary, "spec", "service") or {}
    target = _get(canary, "spec", "targetRef", "name")
    port = (
        svc.get("targetPort")
        if isinstance(svc.get("targetPort"), int) and svc.get("targetPort") > 0
        else svc.get("port")
    )
    protocol = "grpc" if "grpc" in (svc.get("portName") or "http") else "http"
    timeout_ms = _go_ms(svc.get("timeout"))
    timeout = {"perRequest": {"unit": "ms", "value": timeout_ms}} if timeout_ms is not None else None
    retries = svc.get("retries")
    retry = None
    if retries is not None:
        per_try = _go_ms(retries.get("perTryTimeout"))
        retry = {
            "httpRetryEvents": retries["retryOn"].split(",") if retries.get("retryOn") else ["gateway-error"],
            "maxRetries": retries.get("attempts") or 1,
            "perRetryTimeout": {"unit": "ms", "value": per_try if per_try is not None else 250},
        }
    prefix = _get((svc.get("match") or [{}])[0], "uri", "prefix") or "/"
    notes = _get(canary, "metadata", "annotations") or {}
    problems: list[str] = []

    def check(kind: str, obj_name: str, path: str, wanted: Any) -> None:
        found = _named(objects, kind, obj_name)
        if len(found) != 1:
            problems.append(f"{kind} {namespace}/{obj_name}: {len(found)} rendered, expected 1")
            return
        actual = _get(found[0], *path.split(".")) if path else found[0].get("spec")
        if actual != wanted:
            problems.append(f"{_name(found[0])}: {path or 'spec'} is {actual}, expected {wanted}")

    for role, pods in (("primary", f"{target}-primary"), ("canary", target)):
        listener: dict[str, Any] = {"portMapping": {"port": port, "protocol": protocol}}
        if timeout is not None:
            listener["timeout"] = {"http": timeout}
        spec: dict[str, Any] = {
            "listeners": [listener],
            "serviceDiscovery": {"dns": {"hostname": f"{name}-{role}.{namespace}.svc.cluster.local."}},
            "podSelector": {"matchLabels": {"app": pods}},
        }
        if notes.get("appmesh.flagger.app/accesslog") == "enabled":
            spec["logging"] = {"accessLog": {"file": {"path": "/dev/stdout"}}}
        if svc.get("backends"):
            spec["backends"] = [
                {
                    "virtualService": {"virtualServiceARN": b}
                    if b.startswith("arn:aws")
                    else {"virtualServiceRef": {"name": b}}
                }
                for b in svc["backends"]
            ]
        check("VirtualNode", f"{name}-{role}", "", spec)

    def route(route_name: str, targets: list[str], headers: list | None = None) -> dict:
        match: dict[str, Any] = {"prefix": prefix, **({"headers": headers} if headers else {})}
        http: dict[str, Any] = {"match": match}
        if timeout is not None:
            http["timeout"] = timeout
        if retry is not None:
            http["retryPolicy"] = retry
        return {"name": route_name, "httpRoute": http, "targets": targets}

    ab = _get(canary, "spec", "analysis", "match") or []
    if ab:
        headers = [
            {"name": h, "match": {k: v[k] for k in ("exact", "prefix", "regex", "suffix") if v.get(k)}}
            for condition in ab
            for h, v in (condition.get("headers") or {}).items()
        ]
        apex_routes = [
            {**route(f"{name}-a", [f"{name}-canary", f"{name}-primary"], headers), "priority": 10},
            {**route(f"{name}-b", [f"{name}-primary"]), "priority": 20},
        ]
    else:
        apex_routes = [route(name, [f"{name}-canary", f"{name}-primary"])]
    gateway = {}
    if svc.get("hosts"):
        gateway = {
            "gateway.appmesh.k8s.aws/expose": "true",
            "gateway.appmesh.k8s.aws/domain": "".join(f"{h}," for h in svc["hosts"]),
        }
        if svc.get("timeout"):
            gateway["gateway.appmesh.k8s.aws/timeout"] = svc["timeout"]
        if retries and (retries.get("attempts") or 0) > 0:
            gateway["gateway.appmesh.k8s.aws/retries"] = str(retries["attempts"])
    canary_routes = [route(f"{name}-canary", [f"{name}-canary", f"{name}-primary"])]
    for router_name, routes, wanted_notes in (
        (name, apex_routes, gateway),
        (f"{name}-canary", canary_routes, {}),
    ):
        check(
            "VirtualService",
            router_name,
            "spec",
            {"provider": {"virtualRouter": {"virtualRouterRef": {"name": router_name}}}},
        )
        found = _named(objects, "VirtualService", router_name)
        got_notes = (_get(found[0], "metadata", "annotations") or {}) if found else None
        if found and got_notes != wanted_notes:
            problems.append(f"{_name(found[0])}: annotations are {got_notes}, expected {wanted_notes}")
        routers = _named(objects, "VirtualRouter", router_name)
        if len(routers) != 1:
            problems.append(f"VirtualRouter {namespace}/{router_name} is missing")
            continue
        listeners = _get(routers[0], "spec", "listeners")
        if listeners != [{"portMapping": {"port": port, "protocol": protocol}}]:
            problems.append(f"{_name(routers[0])}: listeners are {listeners}")
        actual_routes = _get(routers[0], "spec", "routes") or []
        stripped = []
        for r in actual_routes:
            r = copy.deepcopy(r)
            targets = [
                _get(t, "virtualNodeRef", "name")
                for t in _get(r, "httpRoute", "action", "weightedTargets") or []
            ]
            (r.get("httpRoute") or {}).pop("action", None)
            stripped.append({**r, "targets": targets})
        if stripped != routes:
            problems.append(f"{_name(routers[0])}: routes are {stripped}, expected {routes} (+ weights)")
    canary_router = _named(objects, "VirtualRouter", f"{name}-canary")
    if canary_router and _appmesh_weights(canary_router, f"{name}-canary")[0] is not None:
        weights = {
            _get(t, "virtualNodeRef", "name"): t.get("weight")
            for t in _get(
                (_get(canary_router[0], "spec", "routes") or [{}])[0],
                "httpRoute",
                "action",
                "weightedTargets",
            )
            or []
        }
        if weights != {f"{name}-canary": 100, f"{name}-primary": 0}:
            problems.append(f"{_name(canary_router[0])}: weights are {weights}, expected all to the canary")
    if ab:
        apex_router = _named(objects, "VirtualRouter", name)
        rest = (_get(apex_router[0], "spec", "routes") or [{}, {}])[1:2] if apex_router else []
        weights = [
            t.get("weight") for r in rest for t in _get(r, "httpRoute", "action", "weightedTargets") or []
        ]
        if weights != [100]:
            problems.append(
                f"VirtualRouter {namespace}/{name}: route {name}-b weights are {weights}, expected [100]"
            )
    return problems


ROUTER_WEIGHTS: dict[str, Callable[[list[dict], str], Weights]] = {
    "contour": _contour_weights,
    "traefik": _traefik_weights,
    "gloo": _gloo_weights,
    "kuma": _kuma_weights,
    "apisix": _apisix_weights,
    "skipper": _skipper_weights,
    "appmesh:v1beta2": _appmesh_weights,
}
ROUTER_FIELDS: dict[str, Callable[[list[dict], Mapping[str, Any], str, str], list[str]]] = {
    "contour": _contour_problems,
    "traefik": _traefik_problems,
    "gloo": _gloo_problems,
    "kuma": _kuma_problems,
    "apisix": _apisix_problems,
    "skipper": _skipper_problems,
    "appmesh:v1beta2": _appmesh_problems,
}


# -- session affinity (analysis.sessionAffinity), Flagger's getSessionAffinityRouteRules ----------
#
# Restated from pkg/router/istio.go and gateway_api.go: while the canary takes weight, the routes are
# [sticky canary (cookie -> canary 100), sticky primary (primaryCookieName only), weighted], the
# weighted route's canary destination setting the canary cookie (Max-Age = maxAge, default a day)
# and its primary destination the primary cookie (Max-Age = the analysis interval); at weight 0,
# [a route matching the last run's cookie that expires it (or the weighted route again), weighted].
# The cookie's value is read from the rendered match (ten ASCII letters, as Flagger's randSeq) and
# everything else is expected from the Canary.

_COOKIE_VALUE = re.compile(r"[A-Za-z]{10}")


def affinity_of(canary: Mapping[str, Any] | None, provider: str) -> Mapping[str, Any] | None:
    """The Canary's sessionAffinity where Flagger renders it (Istio, Gateway API, not with A/B)."""
    if canary is None or not (provider == "istio" or provider.startswith("gatewayapi")):
        return None
    analysis = _get(canary, "spec", "analysis") or {}
    if analysis.get("match"):
        return None
    return analysis.get("sessionAffinity")


def _set_cookie(settings: Mapping[str, Any], cookie: str, max_age: Any) -> str:
    out = f"{cookie}; Max-Age={max_age}"
    if settings.get("domain"):
        out += f"; Domain={settings['domain']}"
    if settings.get("httpOnly"):
        out += "; HttpOnly"
    if settings.get("partitioned"):
        out += "; Partitioned"
    if settings.get("path"):
        out += f"; Path={settings['path']}"
    if settings.get("sameSite"):
        out += f"; SameSite={settings['sameSite']}"
    if settings.get("secure"):
        out += "; Secure"
    return out


def _interval_seconds(text: str) -> int:
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return int(total)


def _cookie_in(regex: Any, name: str) -> str | None:
    """`name=value` when `regex` is Flagger's cookie match for a cookie called `name`, else None."""
    found = re.fullmatch(rf"\.\*{re.escape(name)}\.\*([A-Za-z]+)\.\*", str(regex or ""))
    if found is None or not _COOKIE_VALUE.fullmatch(found.group(1)):
        return None
    return f"{name}={found.group(1)}"


def session_affinity_problems(
    objects: list[dict], canary: Mapping[str, Any], provider: str, namespace: str, weights: tuple[int, int]
) -> list[str]:
    """The sticky routes and Set-Cookie headers of a canary with session affinity, at `weights`."""
    settings = affinity_of(canary, provider)
    if settings is None:
        return []
    name = _get(canary, "spec", "service", "name") or _get(canary, "spec", "targetRef", "name")
    cookie_name = settings.get("cookieName")
    primary_name = settings.get("primaryCookieName") or ""
    max_age = int(settings.get("maxAge") or 86400)
    interval = _interval_seconds(str(_get(canary, "spec", "analysis", "interval") or "1m"))
    istio = provider == "istio"
    kind = "VirtualService" if istio else "HTTPRoute"
    found = [
        o
        for o in objects
        if o.get("kind") == kind
        and _get(o, "metadata", "name") == name
        and _get(o, "metadata", "namespace") == namespace
    ]
    if len(found) != 1:
        return [f"{kind} {namespace}/{name}: {len(found)} found, expected one"]
    obj = found[0]
    routes = _get(obj, "spec", "http" if istio else "rules") or []
    where_list = "spec.http" if istio else "spec.rules"
    problems: list[str] = []

    def cookie_regex(route: Mapping[str, Any]) -> list[Any]:
        if istio:
            found = [_get(m, "headers", "Cookie", "regex") for m in route.get("match") or []]
            return [regex for regex in found if regex is not None]
        return [
            h.get("value")
            for m in route.get("matches") or []
            for h in m.get("headers") or []
            if h.get("name") == "Cookie" and h.get("type") == "RegularExpression"
        ]

    def split(route: Mapping[str, Any]) -> dict[str, Any]:
        if istio:
            return {
                _short_host(_get(d, "destination", "host") or "", namespace): d.get("weight", 0)
                for d in route.get("route") or []
            }
        return {ref.get("name"): ref.get("weight", 1) for ref in route.get("backendRefs") or []}

    def set_cookies(route: Mapping[str, Any], host: str) -> list[Any]:
        if istio:
            return [
                _get(d, "headers", "response", "add", "Set-Cookie")
                for d in route.get("route") or []
                if _short_host(_get(d, "destination", "host") or "", namespace) == host
                and _get(d, "headers", "response", "add", "Set-Cookie") is not None
            ]
        return [
            h.get("value")
            for ref in route.get("backendRefs") or []
            if ref.get("name") == host
            for f in ref.get("filters") or []
            if f.get("type") == "ResponseHeaderModifier"
            for h in _get(f, "responseHeaderModifier", "add") or []
            if h.get("name") == "Set-Cookie"
        ]

    def route_cookie(route: Mapping[str, Any]) -> list[Any]:
        """Set-Cookie values the route itself (not a destination) adds to responses."""
        if istio:
            value = _get(route, "headers", "response", "add", "Set-Cookie")
            return [] if value is None else [value]
        return [
            h.get("value")
            for f in route.get("filters") or []
            if f.get("type") == "ResponseHeaderModifier"
            for h in _get(f, "responseHeaderModifier", "add") or []
            if h.get("name") == "Set-Cookie"
        ]

    primary, canary_host = f"{name}-primary", f"{name}-canary"
    expected_len = (3 if primary_name else 2) if weights[1] > 0 else 2
    if len(routes) != expected_len:
        return [
            f"{_name(obj)}: {where_list} has {len(routes)} routes, expected {expected_len} (session affinity)"
        ]
    weighted = routes[-1]
    if split(weighted) != {primary: weights[0], canary_host: weights[1]}:
        problems.append(f"{_name(obj)}: the last route splits {split(weighted)}, expected {weights}")
    if cookie_regex(weighted) or route_cookie(weighted):
        problems.append(f"{_name(obj)}: the weighted route matches or sets a cookie")
    if weights[1] > 0:
        cookies = [_cookie_in(r, cookie_name) for r in cookie_regex(routes[0])]
        if not cookies or None in cookies or len(set(cookies)) != 1:
            return [
                *problems,
                f"{_name(obj)}: {where_list}[0] does not match the {cookie_name} cookie: {cookies}",
            ]
        cookie = cookies[0]
        assert cookie is not None
        if split(routes[0]) != {primary: 0, canary_host: 100}:
            problems.append(
                f"{_name(obj)}: {where_list}[0] splits {split(routes[0])}, expected all to the canary"
            )
        wanted = _set_cookie(settings, cookie, max_age)
        if set_cookies(weighted, canary_host) != [wanted]:
            problems.append(
                f"{_name(obj)}: the canary sets {set_cookies(weighted, canary_host)}, expected [{wanted!r}]"
            )
        primary_sets = set_cookies(weighted, primary)
        if primary_name:
            pcookies = [_cookie_in(r, primary_name) for r in cookie_regex(routes[1])]
            if not pcookies or None in pcookies or len(set(pcookies)) != 1:
                problems.append(f"{_name(obj)}: {where_list}[1] does not match the {primary_name} cookie")
            else:
                pwanted = _set_cookie(settings, str(pcookies[0]), interval)
                if primary_sets != [pwanted]:
                    problems.append(f"{_name(obj)}: the primary sets {primary_sets}, expected [{pwanted!r}]")
                if pcookies[0] == cookie:
                    problems.append(f"{_name(obj)}: the primary and canary cookies are the same")
            if split(routes[1]) != {primary: 100, canary_host: 0}:
                problems.append(
                    f"{_name(obj)}: {where_list}[1] splits {split(routes[1])}, expected all to the primary"
                )
        elif primary_sets:
            problems.append(f"{_name(obj)}: the primary sets {primary_sets} without primaryCookieName")
        for index, route in enumerate(routes[:-1]):
            if route_cookie(route) or any(set_cookies(route, h) for h in (primary, canary_host)):
                problems.append(f"{_name(obj)}: the sticky {where_list}[{index}] sets a cookie")
        return problems
    sticky = routes[0]
    if any(set_cookies(route, h) for route in routes for h in (primary, canary_host)):
        problems.append(f"{_name(obj)}: a destination sets a cookie at canary weight 0")
    if split(sticky) != split(weighted):
        problems.append(f"{_name(obj)}: {where_list}[0] splits {split(sticky)}, expected {split(weighted)}")
    regexes = cookie_regex(sticky)
    if not regexes:
        # No run handed out a cookie yet: Flagger repeats the weighted route.
        if sticky != weighted:
            problems.append(
                f"{_name(obj)}: {where_list}[0] differs from the weighted route, with no cookie to expire"
            )
        return problems
    cookies = [_cookie_in(r, cookie_name) for r in regexes]
    if None in cookies or len(set(cookies)) != 1:
        return [
            *problems,
            f"{_name(obj)}: {where_list}[0] does not match the {cookie_name} cookie: {cookies}",
        ]
    if route_cookie(sticky) != [f"{cookies[0]}; Max-Age=-1"]:
        problems.append(
            f"{_name(obj)}: {where_list}[0] sets {route_cookie(sticky)}, expected the cookie expired"
        )
    return problems
