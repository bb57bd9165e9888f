"""What every metrics provider shares: the `Provider` protocol, its inputs, credentials and limits.

It mirrors Flagger's `pkg/metrics/providers/provider.go` (`Interface.RunQuery(query) (float64, error)`),
with two differences: the instant and the window are arguments (the analysis clock is injectable and
each backend widens the window the way Flagger does), and every provider is bounded by `Limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gitcanary.analysis.providers.endpoints import Binding, Endpoints
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

# One query, whatever the backend, never holds a check longer than this or reads more than this.
DEFAULT_DEADLINE = 20.0
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class NoDataError(AnalysisError):
    """The query ran but returned no sample (or NaN): the workload probably got no traffic."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one query: `deadline` seconds overall (connect, retries and every byte read)
    and `max_bytes` of answer body."""

    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = DEFAULT_MAX_BYTES


class SecretSource(Protocol):
    """Where a `secretRef` resolves (the environment, then the secrets directory; never the repo)."""

    def get(self, namespace: str, secret: str, key: str) -> str | None: ...

    def where(self, namespace: str, secret: str, key: str) -> str: ...


class NoSecrets:
    """A `SecretSource` that holds nothing: every secretRef key is missing."""

    def get(self, namespace: str, secret: str, key: str) -> str | None:
        return None

    def where(self, namespace: str, secret: str, key: str) -> str:
        return f"secret {namespace}/{secret} key {key} (no secret source configured)"


@dataclass(frozen=True)
class ProviderEnv:
    """What the service hands every provider: secrets, bounds, a Kubernetes client for keptn, and
    the endpoints the operator configured (where a credential may go besides official ones)."""

    secrets: SecretSource = field(default_factory=NoSecrets)
    limits: Limits = field(default_factory=Limits)
    kube: Any = None  # kubernetes.client.ApiClient of the cluster observer, when there is one
    endpoints: Endpoints = field(default_factory=Endpoints)

    def binding(self, target: Target, credential: str = "credentials") -> Binding:
        return Binding(target.type, self.endpoints, credential)


@dataclass(frozen=True)
class Target:
    """One provider to build: the template's `spec.provider`, the namespace its secretRef is in,
    and the address to use (already resolved; None when the template gives none)."""

    spec: MetricTemplateProvider
    namespace: str
    address: str | None

    @property
    def type(self) -> str:
        return self.spec.type


class Provider(Protocol):
    """One metrics backend. `query` is the value of `query` over `window` ending at `at`;
    `NoDataError` when the backend answers with nothing, `AnalysisError` for anything else."""

    def query(self, query: str, at: datetime, window: timedelta) -> float: ...

    def close(self) -> None: ...


class SeriesProvider(Provider, Protocol):
    """A provider whose API gives a series: (unix seconds, value) points, oldest first."""

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]: ...


def utc(at: datetime) -> datetime:
    """`at` with a time zone; naive datetimes are taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


class Credentials:
    """The keys of a template's `secretRef`, read on demand from a `SecretSource`.

    A missing key is an `AnalysisError` naming the secret, the key and where gitcanary looked, never
    the value.
    """

    def __init__(self, target: Target, secrets: SecretSource) -> None:
        self.ref = target.spec.secret_ref
        self.namespace = (self.ref.namespace if self.ref and self.ref.namespace else None) or target.namespace
        self.secrets = secrets
        self.kind = target.type

    @property
    def present(self) -> bool:
        return self.ref is not None

    def get(self, key: str) -> str | None:
        if self.ref is None:
            return None
        return self.secrets.get(self.namespace, self.ref.name, key)

    def need(self, key: str) -> str:
        if self.ref is None:
            raise AnalysisError(f"{self.kind} needs provider.secretRef with key {key}")
        value = self.get(key)
        if value is None:
            where = self.secrets.where(self.namespace, self.ref.name, key)
            raise AnalysisError(f"{self.kind} secret {self.ref.name} has no {key} (looked in {where})")
        return value


def header_values(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Flagger's provider headers are Go `http.Header`: each value is a list of strings."""
    return {
        name: ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        for name, value in (headers or {}).items()
    }


def need_address(spec: MetricTemplateProvider) -> list[str]:
    """The `problems` line for a provider that has no default address."""
    if not spec.address:
        return [
            f"spec.provider.address: {spec.type} needs an address (Flagger refuses a template without one)"
        ]
    if not spec.address.startswith(("http://", "https://")):
        return [f"spec.provider.address: {spec.address!r} is not an http(s) URL"]
    return []


def need_secret(spec: MetricTemplateProvider, keys: tuple[str, ...]) -> list[str]:
    """The `problems` line for a provider whose credentials come only from a secretRef."""
    if spec.secret_ref is None:
        return [f"spec.provider.secretRef: {spec.type} needs a secret with {', '.join(keys)}"]
    return []
