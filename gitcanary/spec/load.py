"""Load Canary and MetricTemplate documents, with errors that name the file and field.

Checks run in order: Flagger's own CRD schema (types, enums), fields the CRD does not know
(typos), gitcanary's pydantic models, then what gitcanary cannot do yet. Fields the CRD
allows but gitcanary does not act on yet are reported as warnings, never silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from pydantic import ValidationError

from gitcanary.errors import SpecError
from gitcanary.spec.models import AlertProvider, Canary, MetricTemplate
from gitcanary.spec.names import check_canary, check_label, check_subdomain

FLAGGER_GROUP = "flagger.app"

# Valid in Flagger, not acted on by gitcanary yet: reported as warnings on load.
UNSUPPORTED_FIELDS: dict[str, str] = {
    "spec.revertOnDeletion": "deleting the canary leaves the generated objects in Git",
    "spec.upstreamRef": "the generated Gloo Upstreams do not copy another Upstream's settings yet",
    "spec.autoscalerRef.primaryScalerQueries": "KEDA scaler queries are not copied yet",
    "spec.autoscalerRef.primaryScalerReplicas": "primary scaler replicas are not applied yet",
    "spec.service.delegation": "VirtualService delegation is not rendered yet",
    "spec.service.headless": "headless services are not rendered yet",
    "spec.service.trafficDistribution": "trafficDistribution is not rendered yet",
    "spec.service.unmanagedMetadata": "unmanaged metadata is not honoured yet",
    "spec.service.backendTimeout": "backendTimeout is not rendered yet",
    "spec.service.meshName": "meshName is not used by the Istio router",
}

GATEWAY_API = ("gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1")

# Fields only some providers act on: under any other provider they are ignored, with a warning.
# Flagger's routers for those other providers ignore them too (pkg/router/*.go read them nowhere else).
PROVIDER_FIELDS: dict[str, tuple[str, ...]] = {
    "spec.routeRef": ("apisix",),
    "spec.service.backends": ("appmesh:v1beta2",),
    "spec.service.mirror": GATEWAY_API,
    "spec.analysis.sessionAffinity": ("istio", *GATEWAY_API),
}


@dataclass(frozen=True)
class LoadedCanary:
    canary: Canary
    source: str
    warnings: tuple[str, ...] = field(default=())


@cache
def _schemas() -> dict[str, Any]:
    text = resources.files("gitcanary").joinpath("schemas/flagger.json").read_text()
    return json.loads(text)


def _schema_for(doc: dict[str, Any], source: str) -> dict[str, Any]:
    api_version = str(doc.get("apiVersion", ""))
    key = f"{api_version}/{doc.get('kind')}"
    schema = _schemas().get(key)
    if schema is None:
        raise SpecError(
            source,
            "apiVersion",
            f"{api_version!r} is not a Flagger version gitcanary reads (expected {FLAGGER_GROUP}/v1beta1)",
        )
    return schema


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(field, message) in a user's words, for the schema errors whose default text is a dict dump."""
    path = _path(error.absolute_path)
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in instance]
        if missing:
            return (f"{path}.{missing[0]}" if path else missing[0]), "required field is missing"
    if error.validator in ("oneOf", "anyOf") and all(
        set(sub) == {"required"} for sub in error.validator_value if isinstance(sub, dict)
    ):
        options = [set(sub["required"]) for sub in error.validator_value]
        common = set.intersection(*options) if options else set()
        for name in sorted(common):
            if name not in instance:
                return (f"{path}.{name}" if path else name), "required field is missing"
        choices = sorted({name for option in options for name in option - common})
        present = [name for name in choices if name in instance]
        if len(present) > 1:
            return path, f"sets {' and '.join(present)}; Flagger's CRD allows only one of them"
        return path, f"needs one of {', '.join(choices)}"
    return path or "(document)", error.message


def schema_problems(doc: dict[str, Any], source: str) -> list[SpecError]:
    """Every way `doc` breaks Flagger's CRD: unknown fields first, then schema errors, in field order."""
    from gitcanary.spec.validation import unknown_fields

    try:
        schema = _schema_for(doc, source)
    except SpecError as exc:
        return [exc]
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    # A typo usually explains the schema error it causes (stepWieght -> "needs stepWeight"): name it first.
    found = [
        SpecError(source, path, "unknown field (not in Flagger's CRD); check its spelling")
        for path in unknown_fields(doc, schema)
    ]
    found += [SpecError(source, *_explain(error)) for error in errors]
    return found


def _check_schema(doc: dict[str, Any], source: str) -> None:
    problems = schema_problems(doc, source)
    if problems:
        raise problems[0]


def _pydantic_error(exc: ValidationError, source: str) -> SpecError:
    first = exc.errors()[0]
    return SpecError(source, _path(first["loc"]), first["msg"])


def _present(doc: dict[str, Any], dotted: str) -> bool:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node not in (None, False, [], {})


def load_canary(doc: dict[str, Any], source: str) -> LoadedCanary:
    """A Canary from a parsed document; SpecError names `source` and the field at fault."""
    _check_schema(doc, source)
    try:
        canary = Canary.model_validate(doc)
    except ValidationError as exc:
        raise _pydantic_error(exc, source) from exc
    check_canary(canary, source)  # before any name reaches a path, a message or a command
    problems = rule_problems(canary, source)
    if problems:
        raise problems[0]
    warnings = tuple(
        f"{source}: {path}: {why} (ignored)"
        for path, why in UNSUPPORTED_FIELDS.items()
        if _present(doc, path)
    )
    warnings += tuple(
        f"{source}: {path}: provider {canary.provider} does not use it, "
        "nor does Flagger's router for it (ignored)"
        for path, providers in PROVIDER_FIELDS.items()
        if _present(doc, path) and canary.provider not in providers
    )
    if _present(doc, "spec.analysis.sessionAffinity") and canary.spec.analysis.match:
        warnings += (
            f"{source}: spec.analysis.sessionAffinity: not rendered with analysis.match (A/B testing "
            "routes by the match; Flagger's A/B routes replace the sticky ones too) (ignored)",
        )
    return LoadedCanary(canary, source, warnings)


def rule_problems(canary: Canary, source: str) -> list[SpecError]:
    """What gitcanary cannot run in a schema-valid Canary, every problem (load raises the first)."""
    found: list[SpecError] = []
    spec = canary.spec
    analysis = spec.analysis
    if spec.target_ref.kind != "Deployment":
        found.append(
            SpecError(
                source,
                "spec.targetRef.kind",
                f"{spec.target_ref.kind} targets are not supported yet (Deployment only)",
            )
        )
    if (
        not spec.skip_analysis
        and analysis.iterations <= 0
        and not analysis.step_weights
        and not (analysis.step_weight or 0) > 0
    ):
        found.append(
            SpecError(
                source,
                "spec.analysis.stepWeight",
                "a canary needs stepWeight > 0 or stepWeights (or iterations for blue/green)",
            )
        )
    if any(w <= 0 or w > 100 for w in analysis.step_weights) or analysis.step_weights != sorted(
        set(analysis.step_weights)
    ):
        found.append(SpecError(source, "spec.analysis.stepWeights", "must increase strictly, each in 1..100"))
    for index, metric in enumerate(analysis.metrics):
        builtin = metric.name in ("request-success-rate", "request-duration")
        if not builtin and metric.template_ref is None and not metric.query:
            found.append(
                SpecError(
                    source,
                    f"spec.analysis.metrics[{index}].templateRef",
                    f"metric {metric.name!r} is not builtin and has no templateRef or query",
                )
            )
    return found


def _check_names(obj: MetricTemplate | AlertProvider, source: str) -> None:
    check_subdomain(obj.metadata.name, source, "metadata.name")
    check_label(obj.namespace, source, "metadata.namespace")
    # A secretRef names a Secret of the operator's store: a Kubernetes name, never a path.
    ref = obj.spec.provider.secret_ref if isinstance(obj, MetricTemplate) else obj.spec.secret_ref
    field = "spec.provider.secretRef" if isinstance(obj, MetricTemplate) else "spec.secretRef"
    if ref is not None:
        check_subdomain(ref.name, source, f"{field}.name")
        if ref.namespace is not None:
            check_label(ref.namespace, source, f"{field}.namespace")


def load_metric_template(doc: dict[str, Any], source: str) -> MetricTemplate:
    _check_schema(doc, source)
    try:
        template = MetricTemplate.model_validate(doc)
    except ValidationError as exc:
        raise _pydantic_error(exc, source) from exc
    _check_names(template, source)
    return template


def load_alert_provider(doc: dict[str, Any], source: str) -> AlertProvider:
    """An AlertProvider, checked against Flagger's CRD; SpecError names `source` and the field."""
    _check_schema(doc, source)
    try:
        provider = AlertProvider.model_validate(doc)
    except ValidationError as exc:
        raise _pydantic_error(exc, source) from exc
    _check_names(provider, source)
    return provider


def is_flagger(doc: Any, kind: str) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("kind") == kind
        and str(doc.get("apiVersion", "")).startswith(f"{FLAGGER_GROUP}/")
    )
