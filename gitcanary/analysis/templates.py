"""Rendering of Flagger's MetricTemplate query variables.

Flagger runs queries through Go's text/template with a few functions; real templates only ever use
`{{ name }}`, `{{ namespace }}`, `{{ target }}`, `{{ service }}`, `{{ ingress }}`, `{{ route }}`,
`{{ interval }}` and `{{ variables.x }}`, so gitcanary substitutes exactly those and rejects
anything else by name rather than guessing at Go template semantics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_VARIABLE = re.compile(r"variables\.([A-Za-z0-9_-]+)")
_FIELDS = ("name", "namespace", "target", "service", "ingress", "route", "interval")


@dataclass(frozen=True)
class QueryModel:
    """The values a query template may refer to (Flagger's MetricTemplateModel)."""

    name: str
    namespace: str
    target: str
    service: str
    ingress: str
    interval: str
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    route: str = ""  # the APISIX routeRef name (Flagger's `{{ route }}`), else the target

    @classmethod
    def for_canary(
        cls, canary: Canary, interval: str, variables: Mapping[str, str] | None = None
    ) -> QueryModel:
        """The model Flagger builds for `canary`: `target` is the canary workload (targetRef name)."""
        target = canary.spec.target_ref.name
        return cls(
            name=canary.name,
            namespace=canary.namespace,
            target=target,
            service=canary.service_name,
            ingress=canary.spec.ingress_ref.name if canary.spec.ingress_ref else target,
            interval=interval,
            route=canary.spec.route_ref.name if canary.spec.route_ref else target,
            variables=MappingProxyType(dict(variables or {})),
        )


def render_query(template: str, model: QueryModel) -> str:
    """`template` with every `{{ ... }}` replaced; an unknown or unset one raises `AnalysisError`."""

    def substitute(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression in _FIELDS:
            return str(getattr(model, expression))
        variable = _VARIABLE.fullmatch(expression)
        if variable:
            key = variable.group(1)
            if key not in model.variables:
                known = ", ".join(sorted(model.variables)) or "none"
                raise AnalysisError(
                    f"query uses {{{{ variables.{key} }}}} but templateVariables has no {key!r} "
                    f"(set: {known})"
                )
            return model.variables[key]
        raise AnalysisError(
            f"unknown template variable {{{{ {expression} }}}}; known: "
            + ", ".join(_FIELDS)
            + ", variables.<key>"
        )

    return _PLACEHOLDER.sub(substitute, template)
