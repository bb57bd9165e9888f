"""Helpers for the metrics provider tests: a canary with one templated metric, run through the real
`run_analysis`, with secrets from a mapping that stands for the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitcanary.analysis import run_analysis
from gitcanary.analysis.providers import Limits, ProviderEnv
from gitcanary.core.observations import CheckResult
from gitcanary.hooks.alerts import Secrets, env_name
from gitcanary.spec.models import Canary, MetricTemplate

NS = "prod"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def canary(*metrics: dict[str, Any], name: str = "backend") -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 2, "metrics": list(metrics)},
            },
        }
    )


def template(name: str, query: str, **provider: Any) -> MetricTemplate:
    return MetricTemplate.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": {"type": "prometheus", **provider}, "query": query},
        }
    )


def secrets(values: Mapping[str, str], secret: str = "metrics", directory: Path | None = None) -> Secrets:
    """A secret source as the service builds it, its environment holding `values` for `secret`."""
    environ = {env_name(NS, secret, key): value for key, value in values.items()}
    return Secrets(directory or Path("/nonexistent"), environ)


def check(
    subject: MetricTemplate,
    *,
    env: ProviderEnv | None = None,
    now: datetime = NOW,
    interval: str = "1m",
    bounds: Mapping[str, float] | None = None,
    limits: Limits | None = None,
    operator_chose_address: bool = True,
) -> CheckResult:
    """The one check of a canary whose only metric uses `subject` (bounds default to max 1e9)."""
    metric = {
        "name": "m",
        "templateRef": {"name": subject.name},
        "interval": interval,
        "thresholdRange": dict(bounds or {"max": 1e9}),
    }
    env = env or ProviderEnv()
    if limits is not None:
        env = replace(env, limits=limits)
    if operator_chose_address:
        # These tests' servers stand in for the operator's backend: allowed as --credential-endpoint.
        env = replace(env, endpoints=env.endpoints.plus(subject.spec.provider.address))
    (result,) = run_analysis(
        canary(metric),
        {f"{NS}/{subject.name}": subject},
        default_address="http://127.0.0.1:1",
        now=now,
        env=env,
    )
    return result
