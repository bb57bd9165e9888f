"""Metrics providers: one module per MetricTemplate `provider.type`, behind one `Provider` protocol.

Mirrors Flagger's `pkg/metrics/providers/factory.go`: a type names a module here, the module turns a
template's `spec.provider` (address, secretRef, headers, insecureSkipVerify, region) into a
`Provider` whose `query(query, at, window)` gives one number or raises `NoDataError`. Each module
opens by citing the Flagger file whose semantics it follows, and exposes

    build(target, env, pool) -> Provider
    problems(spec, query) -> list[str]      # what `validate` reports as errors, without any I/O
    warnings(spec, query) -> list[str]      # optional: what it points out that still works

so a new backend is one module and one test file. Modules load on first use: a Prometheus-only
installation never imports boto3 or the Kubernetes client.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType

from gitcanary.analysis.providers.base import (
    Credentials,
    Limits,
    NoDataError,
    Provider,
    ProviderEnv,
    SecretSource,
    SeriesProvider,
    Target,
)
from gitcanary.analysis.providers.endpoints import CredentialNotBound, Endpoints
from gitcanary.analysis.providers.http import HttpPool
from gitcanary.spec.models import MetricTemplate

# Flagger's provider types (v1beta1 MetricTemplate) and the module that serves each. VictoriaMetrics,
# Thanos and Mimir speak Prometheus' HTTP API: they are `prometheus` with an address and headers.
MODULES = {
    "prometheus": "prometheus",
    "datadog": "datadog",
    "cloudwatch": "cloudwatch",
    "newrelic": "newrelic",
    "graphite": "graphite",
    "influxdb": "influxdb",
    "dynatrace": "dynatrace",
    "stackdriver": "stackdriver",
    "splunk": "splunk",
    "keptn": "keptn",
    "externalmetrics": "externalmetrics",
}


def module(kind: str) -> ModuleType | None:
    name = MODULES.get(kind)
    return importlib.import_module(f"{__name__}.{name}") if name else None


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> Provider:
    """The provider for `target`; `AnalysisError` when its type is unknown or its setup is wrong."""
    from gitcanary.errors import AnalysisError

    found = module(target.type)
    if found is None:
        raise AnalysisError(f"unknown provider type {target.type!r}; known: {', '.join(sorted(MODULES))}")
    target, env = operator_address(target, env)
    provider: Provider = found.build(target, env, pool)
    return provider


def operator_address(target: Target, env: ProviderEnv) -> tuple[Target, ProviderEnv]:
    """`target` and `env` once the operator's Secret has spoken: an `address` key in the Secret the
    template's secretRef names is the operator's choice of endpoint, so it replaces the template's
    `provider.address` and its credentials may go there."""
    ref = target.spec.secret_ref
    if ref is None or target.type in ("keptn",):
        return target, env
    secret_address = Credentials(target, env.secrets).get("address")
    if not secret_address:
        return target, env
    return replace(target, address=secret_address), replace(env, endpoints=env.endpoints.plus(secret_address))


def problems(template: MetricTemplate) -> list[str]:
    """What is wrong with `template`'s provider, as `validate` prints it (no I/O, no secrets read)."""
    spec = template.spec.provider
    found = module(spec.type)
    if found is None:
        return [f"spec.provider.type: unknown provider {spec.type!r}; known: {', '.join(sorted(MODULES))}"]
    found_problems: list[str] = found.problems(spec, template.spec.query)
    return found_problems


def warnings(template: MetricTemplate) -> list[str]:
    """What `validate` should point out about `template`'s provider that does not stop it working."""
    found = module(template.spec.provider.type)
    advise = getattr(found, "warnings", None)
    return list(advise(template.spec.provider, template.spec.query)) if advise else []


__all__ = [
    "MODULES",
    "CredentialNotBound",
    "Endpoints",
    "HttpPool",
    "Limits",
    "NoDataError",
    "Provider",
    "ProviderEnv",
    "SecretSource",
    "SeriesProvider",
    "Target",
    "build",
    "module",
    "problems",
    "warnings",
]
