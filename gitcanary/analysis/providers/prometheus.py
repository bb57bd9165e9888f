"""Prometheus and what speaks its HTTP API (VictoriaMetrics, Thanos, Mimir, Cortex).

Follows Flagger's `pkg/metrics/providers/prometheus.go`: whitespace runs collapsed, an instant query at
the analysis time, the last series' value, no series or NaN is no data. A `secretRef` gives basic
auth (`username` and `password`, both required, as in Flagger) or, as gitcanary adds, a bearer
`token`; `headers` go on every request (a tenant header: `X-Scope-OrgID` for Mimir, `THANOS-TENANT`
for Thanos); `insecureSkipVerify` turns TLS verification off for this template only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from gitcanary.analysis.prometheus import PrometheusClient
from gitcanary.analysis.providers.base import Credentials, ProviderEnv, Target, header_values, need_address
from gitcanary.analysis.providers.http import HttpPool
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider


class PrometheusProvider:
    """A `SeriesProvider` over a `PrometheusClient`."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        # The window is inside the PromQL (`[{{ interval }}]`): Prometheus needs only the instant.
        return self.client.query(query, at)

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        # PrometheusClient.query_range (issue 13's branch) serves the comparative judge; looked up
        # by name so this module type-checks on either side of that merge.
        method = getattr(self.client, "query_range")  # noqa: B009
        points: list[tuple[float, float]] = method(query, start, end, step)
        return points

    def query_range_by(
        self, query: str, start: datetime, end: datetime, step: float, label: str
    ) -> dict[str, list[tuple[float, float]]]:
        return self.client.query_range_by(query, start, end, step, label)

    def close(self) -> None:
        self.client.close()


def auth(credentials: Credentials) -> tuple[dict[str, str], httpx.Auth | tuple[str, str] | None]:
    """(extra headers, auth) from a secretRef: a bearer `token`, else `username` and `password`."""
    if not credentials.present:
        return {}, None
    token = credentials.get("token")
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    return {}, (credentials.need("username"), credentials.need("password"))


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> PrometheusProvider:
    if not target.address:
        raise AnalysisError("prometheus provider has no address")
    credentials = Credentials(target, env.secrets)
    headers, basic = auth(credentials)
    client = PrometheusClient(
        target.address,
        headers={**header_values(target.spec.headers), **headers},
        auth=basic,
        insecure=target.spec.insecure_skip_verify,
        limits=env.limits,
        pool=pool,
        bound=env.binding(target, "the secretRef's credentials") if headers or basic else None,
    )
    return PrometheusProvider(client)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    # Without an address gitcanary queries its own --prometheus (see `warnings`).
    return need_address(spec) if spec.address else []


def warnings(spec: MetricTemplateProvider, query: str) -> list[str]:
    if not spec.address:
        return [
            "spec.provider.address: none given; gitcanary queries its --prometheus (Flagger refuses this)"
        ]
    return []
