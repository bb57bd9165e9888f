"""ConfigMaps and Secrets are part of the release, as in Flagger's `pkg/canary/config_tracker.go`.

Flagger copies every ConfigMap and Secret the target's pod template references to `<name>-primary`,
points the primary at the copies, and counts a change of their content as a new revision. gitcanary
does the same in Git: the copies sit beside the generated primary, so the primary keeps the content
it was promoted with until the next promotion, and a rollback can write that content back.

What the pod template references: volumes (`configMap`, `secret`, projected sources) and, in every
container and init container, `env[].valueFrom` key refs and `envFrom`. What produces a referenced
Secret in Git: a Secret (plain or SOPS-encrypted), an ExternalSecret (its `spec.target.name`), or a
SealedSecret (its template's name). A SealedSecret with strict scope binds its name into the
encryption, and SOPS's default MAC covers the unencrypted `metadata.name`: neither can be copied
under another name, so they stay shared, with a warning (a SOPS document encrypted with
`mac_only_encrypted` is copied as it is but for its name).

Skipped, as Flagger skips them: an object annotated `flagger.app/config-tracking: disabled`, a
Secret whose type is not Opaque, basic-auth, ssh-auth or tls (registry credentials), and a
reference to nothing the app builds (optional references; the invariant reports the others).
Pure functions over plain dicts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitcanary.routers.base import MANAGED_BY

Obj = dict[str, Any]

TRACKING_ANNOTATION = "flagger.app/config-tracking"
PRIMARY_SUFFIX = "-primary"
# Flagger's getRefFromSecret: other types (registry credentials, tokens) belong to service accounts.
TRACKED_SECRET_TYPES = (
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
)
SEALED_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"
SEALED_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
SEALED_SCOPE = "sealedsecrets.bitnami.com/scope"

CONFIGMAP = "ConfigMap"
SECRET = "Secret"


@dataclass(frozen=True)
class Tracked:
    """One referenced ConfigMap or Secret and the object in the build that produces it."""

    kind: str  # what the pod references: ConfigMap or Secret
    name: str  # the name the pod references (a generator's hashed name included)
    source: Obj  # ConfigMap, Secret, ExternalSecret or SealedSecret, as the app builds it
    checksum: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def producer(self) -> str:
        """How the source is named in messages: `ExternalSecret db` for a Secret it produces."""
        return f"{self.source.get('kind')} {_meta(self.source).get('name')}"


@dataclass(frozen=True)
class Tracking:
    """What config a target's pod template references, and what stays shared (with why)."""

    tracked: tuple[Tracked, ...] = ()
    shared: tuple[str, ...] = ()  # one warning per object that cannot get a -primary copy

    def renames(self) -> dict[tuple[str, str], str]:
        return {(t.kind, t.name): t.name + PRIMARY_SUFFIX for t in self.tracked}

    def checksums(self) -> dict[str, str]:
        return {t.key: t.checksum for t in self.tracked}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _dicts(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def pod_spec(workload: Obj) -> Obj:
    spec = ((workload.get("spec") or {}).get("template") or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _slots(spec: Obj) -> Iterator[tuple[str, Obj, str]]:
    """(kind, the dict holding the name, the name's key) for every config reference in a pod spec."""
    for volume in _dicts(spec.get("volumes")):
        if isinstance(volume.get("configMap"), dict):
            yield CONFIGMAP, volume["configMap"], "name"
        if isinstance(volume.get("secret"), dict):
            yield SECRET, volume["secret"], "secretName"
        projected = volume.get("projected")
        if isinstance(projected, dict):
            for source in _dicts(projected.get("sources")):
                if isinstance(source.get("configMap"), dict):
                    yield CONFIGMAP, source["configMap"], "name"
                if isinstance(source.get("secret"), dict):
                    yield SECRET, source["secret"], "name"
    for key in ("initContainers", "containers"):
        for container in _dicts(spec.get(key)):
            for env in _dicts(container.get("env")):
                value_from = env.get("valueFrom")
                if not isinstance(value_from, dict):
                    continue
                if isinstance(value_from.get("configMapKeyRef"), dict):
                    yield CONFIGMAP, value_from["configMapKeyRef"], "name"
                if isinstance(value_from.get("secretKeyRef"), dict):
                    yield SECRET, value_from["secretKeyRef"], "name"
            for env_from in _dicts(container.get("envFrom")):
                if isinstance(env_from.get("configMapRef"), dict):
                    yield CONFIGMAP, env_from["configMapRef"], "name"
                if isinstance(env_from.get("secretRef"), dict):
                    yield SECRET, env_from["secretRef"], "name"


def references(workload: Obj) -> list[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the pod template references, first seen first."""
    found: dict[tuple[str, str], None] = {}
    for kind, holder, key in _slots(pod_spec(workload)):
        name = holder.get(key)
        if isinstance(name, str) and name:
            found[(kind, name)] = None
    return list(found)


def checksum(data: Any) -> str:
    """Flagger's checksum: sha256 of the JSON of the content, first 8 bytes in hex."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def content(obj: Obj) -> Obj:
    """What the pod sees of an object: data for ConfigMaps and Secrets, the spec for producers."""
    kind = obj.get("kind")
    if kind == CONFIGMAP:
        keys: tuple[str, ...] = ("data", "binaryData")
    elif kind == SECRET:
        keys = ("type", "data", "stringData", "sops")
    else:
        keys = ("spec",)
    return {key: obj[key] for key in keys if obj.get(key) is not None}


def disabled(obj: Obj) -> bool:
    annotations = _meta(obj).get("annotations") or {}
    return str(annotations.get(TRACKING_ANNOTATION, "")).lower() == "disabled"


def is_sops(obj: Obj) -> bool:
    return isinstance(obj.get("sops"), dict)


def sops_name_free(obj: Obj) -> bool:
    """Whether a SOPS document may be renamed: its MAC covers encrypted values only.

    By default SOPS's MAC covers every value, the unencrypted `metadata.name` too, so a renamed
    copy fails to decrypt; `mac_only_encrypted: true` (sops --mac-only-encrypted) leaves it out.
    """
    return (obj.get("sops") or {}).get("mac_only_encrypted") is True


def external_target(obj: Obj) -> str | None:
    """The Secret an ExternalSecret writes: `spec.target.name`, else its own name."""
    target = ((obj.get("spec") or {}).get("target") or {}).get("name")
    return target if isinstance(target, str) and target else _meta(obj).get("name")


def sealed_target(obj: Obj) -> str | None:
    name = ((((obj.get("spec") or {}).get("template") or {}).get("metadata")) or {}).get("name")
    return name if isinstance(name, str) and name else _meta(obj).get("name")


def sealed_strict(obj: Obj) -> bool:
    """Strict scope (the default): the sealing key binds namespace and name, so a copy won't decrypt."""
    notes: Mapping[str, Any] = {
        **(_meta(obj).get("annotations") or {}),
        **((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}),
    }
    if str(notes.get(SEALED_NAMESPACE_WIDE, "")).lower() == "true":
        return False
    if str(notes.get(SEALED_CLUSTER_WIDE, "")).lower() == "true":
        return False
    return str(notes.get(SEALED_SCOPE, "strict")) == "strict"


def _in_namespace(obj: Obj, namespace: str) -> bool:
    return _meta(obj).get("namespace") in (None, namespace)


def _producer(objects: list[Obj], kind: str, name: str, namespace: str) -> Obj | None:
    for obj in objects:
        if not _in_namespace(obj, namespace):
            continue
        if obj.get("kind") == kind and _meta(obj).get("name") == name:
            return obj
    if kind != SECRET:
        return None
    for obj in objects:
        if not _in_namespace(obj, namespace):
            continue
        if obj.get("kind") == "ExternalSecret" and external_target(obj) == name:
            return obj
        if obj.get("kind") == "SealedSecret" and sealed_target(obj) == name:
            return obj
    return None


def track(objects: list[Obj], workload: Obj, namespace: str, where: str = "") -> Tracking:
    """What of `objects` the workload's pod template references, and what must stay shared."""
    tracked: list[Tracked] = []
    shared: list[str] = []
    for kind, name in references(workload):
        source = _producer(objects, kind, name, namespace)
        if source is None or disabled(source):
            continue
        if source.get("kind") == SECRET and (source.get("type") or "Opaque") not in TRACKED_SECRET_TYPES:
            continue
        if source.get("kind") == "SealedSecret" and sealed_strict(source):
            shared.append(
                f"{where}SealedSecret {_meta(source).get('name')} has strict scope: its name is sealed "
                f"into it, so gitcanary cannot copy it to {name}{PRIMARY_SUFFIX}; primary and canary "
                "share it and a change to it reaches both at once (reseal it namespace-wide to track it)"
            )
            continue
        if is_sops(source) and not sops_name_free(source):  # a ConfigMap can be SOPS-encrypted too
            shared.append(
                f"{where}{source.get('kind')} {name} is SOPS-encrypted with a MAC over its unencrypted "
                f"values too, metadata.name included, so a copy named {name}{PRIMARY_SUFFIX} would not "
                "decrypt; primary and canary share it and a change to it reaches both at once "
                "(encrypt it with sops --mac-only-encrypted to track it)"
            )
            continue
        tracked.append(Tracked(kind, name, source, checksum(content(source))))
    return Tracking(tuple(tracked), tuple(shared))


def revision_hash(template_hash: str, tracking: Tracking) -> str:
    """The target's revision: its pod template, and the content of its tracked config if any.

    Without tracked config it is the pod template's hash alone, as before config tracking.
    """
    if not tracking.tracked:
        return template_hash
    canonical = json.dumps([template_hash, tracking.checksums()], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def primary_copy(tracked: Tracked, namespace: str) -> Obj:
    """The `-primary` copy of one tracked object.

    A SOPS-encrypted object (a Secret or a ConfigMap) is copied as it is but for its name: its
    values stay encrypted and nothing else is added to it, so its encrypted document is the user's.
    """
    obj = copy.deepcopy(tracked.source)
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    meta["name"] = f"{meta.get('name')}{PRIMARY_SUFFIX}"
    meta["namespace"] = namespace
    if is_sops(obj):
        return obj
    meta["labels"] = {**(meta.get("labels") or {}), **MANAGED_BY}
    spec = obj.get("spec")
    if obj.get("kind") == "ExternalSecret" and isinstance(spec, dict):
        spec.setdefault("target", {})["name"] = tracked.name + PRIMARY_SUFFIX
    if obj.get("kind") == "SealedSecret" and isinstance(spec, dict):
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})["name"] = tracked.name + PRIMARY_SUFFIX
    return obj


def original_of(copied: Obj, referenced: str) -> Obj:
    """Undo `primary_copy`'s renames: the copy as the user's source would hold it."""
    obj = copy.deepcopy(copied)
    meta = obj.setdefault("metadata", {})
    name = str(meta.get("name", ""))
    if name.endswith(PRIMARY_SUFFIX):
        meta["name"] = name[: -len(PRIMARY_SUFFIX)]
    spec = obj.get("spec")
    if obj.get("kind") == "ExternalSecret" and isinstance(spec, dict):
        spec.setdefault("target", {})["name"] = referenced
    if obj.get("kind") == "SealedSecret" and isinstance(spec, dict):
        spec.setdefault("template", {}).setdefault("metadata", {})["name"] = referenced
    return obj


def point_at_copies(workload: Obj, renames: Mapping[tuple[str, str], str]) -> None:
    """Flagger's ApplyPrimaryConfigs: every reference to a tracked object names its copy (in place)."""
    for kind, holder, key in _slots(pod_spec(workload)):
        new = renames.get((kind, holder.get(key)))  # type: ignore[arg-type]
        if new is not None:
            holder[key] = new


def is_copy(obj: Obj) -> bool:
    """A config copy in the generated primary file (not the primary Deployment or its HPA)."""
    return obj.get("kind") in (CONFIGMAP, SECRET, "ExternalSecret", "SealedSecret") and str(
        _meta(obj).get("name", "")
    ).endswith(PRIMARY_SUFFIX)


def changed_keys(old: Obj, new: Obj) -> list[str]:
    """Names of the data keys (or top-level spec fields) that differ; never their values."""
    old_fields, new_fields = _flat(old), _flat(new)
    return sorted(k for k in old_fields.keys() | new_fields.keys() if old_fields.get(k) != new_fields.get(k))


def _flat(obj: Obj) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in content(obj).items():
        if field in ("data", "binaryData", "stringData", "spec") and isinstance(value, dict):
            for key, item in value.items():
                out[str(key)] = item
        else:
            out[field] = value
    return out
