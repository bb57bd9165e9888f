"""Check manifests against their schemas before gitcanary commits them or acts on them.

Custom resources gitcanary knows (Flagger Canary/MetricTemplate, Istio VirtualService/DestinationRule,
Gateway API HTTPRoute, SMI TrafficSplit, Contour HTTPProxy, Traefik TraefikService,
Gloo RouteTable and Upstream, Kuma TrafficRoute, APISIX ApisixRoute,
App Mesh VirtualNode, VirtualRouter and VirtualService)
are checked with jsonschema against the CRD schemas shipped in ``gitcanary/schemas/``; built-in
Kubernetes kinds against kubernetes-validate's schemas. Both are strict: a field the schema does not
declare is an error, as it is when Flux server-side applies the object.

Every message names the object and the field: ``VirtualService prod/backend: spec.http[0].route[1].weight:
'ten' is not of type 'integer'``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
from jsonschema.exceptions import ValidationError, best_match

__all__ = ["crd_schema", "schema_known", "unknown_fields", "validate_manifests", "validate_object"]

_SCHEMA_FILES = (
    "flagger.json",
    "istio.json",
    "gateway-api.json",
    "smi.json",
    "contour.json",
    "traefik.json",
    "gloo.json",
    "kuma.json",
    "apisix.json",
    "appmesh.json",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
# Root fields every Kubernetes object has, whether or not a CRD schema declares them.
_OBJECT_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


def validate_manifests(docs: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """Problems of every object in ``docs``, in order; empty YAML documents (None) are skipped."""
    problems: list[str] = []
    for doc in docs:
        if doc is not None:
            problems.extend(validate_object(doc))
    return problems


def validate_object(obj: Mapping[str, Any]) -> list[str]:
    """Problems with one manifest; an empty list when it is valid.

    An apiVersion/kind with no schema here gives exactly one message, ending in "no schema for ...";
    use :func:`schema_known` to tell that case apart beforehand.
    """
    if not isinstance(obj, Mapping):
        return [f"not a Kubernetes object: a {type(obj).__name__}"]
    name = _describe(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{name}: apiVersion and kind must be strings"]
    schema = crd_schema(api_version, kind)
    if schema is not None:
        errors = _sorted(_crd_validator(api_version, kind).iter_errors(obj))
        found = [f"{name}: {_message(err)}" for err in errors]
        found += [f"{name}: {path}: field not declared in schema" for path in unknown_fields(obj, schema)]
        return found
    if _is_builtin_group(api_version):
        try:
            kubernetes_validate.validate(dict(obj), _k8s_version(), strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pass
        except kubernetes_validate.ValidationError as err:
            return [f"{name}: {_message(err)}"]
        else:
            return []
    return [f"{name}: no schema for apiVersion {api_version}, kind {kind}"]


def schema_known(api_version: str, kind: str) -> bool:
    """Whether :func:`validate_object` has a schema for this apiVersion/kind."""
    if crd_schema(api_version, kind) is not None:
        return True
    return _is_builtin_group(api_version) and _builtin_known(api_version, kind)


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The shipped openAPIV3Schema of a custom resource kind, or None (do not mutate it)."""
    return _crd_schemas().get(f"{api_version}/{kind}")


def unknown_fields(obj: Any, schema: Mapping[str, Any]) -> list[str]:
    """Dotted paths of fields in ``obj`` that the OpenAPI ``schema`` does not declare.

    Follows Kubernetes' pruning rules: a field is known when listed in ``properties``, or allowed by
    ``additionalProperties`` (then checked against it), or kept by ``x-kubernetes-preserve-unknown-fields``;
    ``apiVersion``, ``kind`` and ``metadata`` are implicit at the root and in embedded resources.
    """
    found: list[str] = []
    _walk_unknown(obj, schema, "", found, root=True)
    return found


def _walk_unknown(value: Any, schema: Mapping[str, Any], path: str, found: list[str], *, root: bool) -> None:
    if isinstance(value, Mapping):
        properties = _declared_properties(schema)
        if properties is None:
            return
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        implicit = root or schema.get("x-kubernetes-embedded-resource") is True
        for key, sub in value.items():
            child = _join(path, key)
            if implicit and key in _OBJECT_ROOT_FIELDS:
                continue  # the API server checks these itself (metadata as ObjectMeta), whatever the CRD says
            if key in properties:
                _walk_unknown(sub, properties[key], child, found, root=False)
            elif isinstance(additional, Mapping):
                _walk_unknown(sub, additional, child, found, root=False)
            elif not (additional is True or preserve):
                found.append(child)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                _walk_unknown(item, items, f"{path}[{index}]", found, root=False)


def _declared_properties(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """Properties an object schema declares, allOf/anyOf/oneOf branches included; None if not an object."""
    properties = dict(schema.get("properties") or {})
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword) or ():
            if isinstance(branch, Mapping):
                properties.update(branch.get("properties") or {})
    describes_object = (
        schema.get("type") == "object"
        or properties
        or "additionalProperties" in schema
        or schema.get("x-kubernetes-preserve-unknown-fields") is True
    )
    return properties if describes_object else None


@functools.cache
def _crd_schemas() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    folder = resources.files("gitcanary") / "schemas"
    for filename in _SCHEMA_FILES:
        table.update(json.loads((folder / filename).read_text(encoding="utf-8")))
    return table


@functools.cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = _as_json_schema(crd_schema(api_version, kind) or {})
    return jsonschema.Draft202012Validator(schema)


def _as_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI's ``nullable: true`` means null is allowed, and its boolean ``exclusiveMaximum``
    (Contour's ports) makes ``maximum`` exclusive; say both in JSON Schema terms."""
    converted = copy.deepcopy(schema)

    def visit(node: Any, parent_key: str | None) -> None:
        if isinstance(node, dict):
            for bound, limit in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
                exclusive = isinstance(node.get(bound), bool) and node.pop(bound)
                if parent_key != "properties" and exclusive and limit in node:
                    node[bound] = node.pop(limit)
            if parent_key != "properties" and node.get("nullable") is True:
                if isinstance(node.get("type"), str):
                    node["type"] = [node["type"], "null"]
                if isinstance(node.get("enum"), list) and None not in node["enum"]:
                    node["enum"].append(None)
            for key, child in node.items():
                visit(child, key)
        elif isinstance(node, list):
            for child in node:
                visit(child, None)

    visit(converted, None)
    return converted


@functools.cache
def _k8s_version() -> str:
    return kubernetes_validate.latest_version()


@functools.cache
def _builtin_known(api_version: str, kind: str) -> bool:
    try:
        kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, _k8s_version(), strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        return True
    return True


def _is_builtin_group(api_version: str) -> bool:
    """Built-in API groups are the core group, dotless groups (apps, batch, ...) and *.k8s.io.

    kubernetes-validate looks schemas up by the group's first label only, so without this a CRD
    group such as ``apps.example.com`` would be checked against the built-in ``apps`` schemas.
    """
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    kind = obj.get("kind") or "<no kind>"
    name = metadata.get("name") or "<no name>"
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _join(path: str, key: Any) -> str:
    key = str(key)
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _format_path(parts: Sequence[Any] | Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _sorted(errors: Iterator[ValidationError]) -> list[ValidationError]:
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])


def _message(err: ValidationError) -> str:
    text = err.message
    if err.validator in ("oneOf", "anyOf") and err.context:
        closest = best_match(err.context)
        text = f"matches none of the allowed forms ({_shorten(closest.message, closest.instance)})"
    else:
        text = _shorten(text, err.instance)
    path = _format_path(err.absolute_path)
    return f"{path}: {text}" if path else text


def _shorten(text: str, instance: Any) -> str:
    """jsonschema starts many messages with the whole offending value; name its type instead."""
    if isinstance(instance, dict | list):
        shown = repr(instance)
        if text.startswith(shown) and len(shown) > 40:
            return ("an object" if isinstance(instance, dict) else "an array") + text[len(shown) :]
    return text
