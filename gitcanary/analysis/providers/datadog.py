"""Datadog, through its v1 timeseries query API (`GET /api/v1/query`).

Follows Flagger's `pkg/metrics/providers/datadog.go`: `secretRef` keys `datadog_api_key` and
`datadog_application_key` (sent as `DD-API-KEY` / `DD-APPLICATION-KEY`), address defaulting to
`https://api.datadoghq.com`, the range `[at - 10 x interval, at]`, and the value is the first
(oldest) point of the first series, since the newest bucket is usually incomplete. No series, no
point, or a null value is no data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gitcanary.analysis.providers.base import (
    Credentials,
    NoDataError,
    ProviderEnv,
    Target,
    header_values,
    need_secret,
    utc,
)
from gitcanary.analysis.providers.http import HttpPool, fetch, json_body, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

DEFAULT_ADDRESS = "https://api.datadoghq.com"
KEYS = ("datadog_api_key", "datadog_application_key")
WINDOW_MULTIPLIER = 10


class DatadogProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        credentials = Credentials(target, env.secrets)
        self.bound = env.binding(target, "the API and application keys")
        self.headers = {
            **header_values(target.spec.headers),
            "DD-API-KEY": credentials.need(KEYS[0]),
            "DD-APPLICATION-KEY": credentials.need(KEYS[1]),
        }
        self.address = (target.address or DEFAULT_ADDRESS).rstrip("/")
        self.what = f"datadog at {redact_url(self.address)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        series = self._series(query, utc(at) - WINDOW_MULTIPLIER * window, utc(at))
        if not series:
            raise NoDataError("datadog returned no series")
        points = series[0].get("pointlist") if isinstance(series[0], dict) else None
        if not isinstance(points, list):
            raise AnalysisError("datadog series has no pointlist")
        if not points:
            raise NoDataError("datadog series has no points")
        value = number(points[0], 1, "datadog point")
        if value is None:
            raise NoDataError("datadog point has a null value")
        return value

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        """The first series' points (Datadog picks the rollup; `step` is left to it)."""
        series = self._series(query, utc(start), utc(end))
        if not series or not isinstance(series[0], dict):
            raise NoDataError("datadog returned no series")
        points = []
        for point in series[0].get("pointlist") or []:
            value = number(point, 1, "datadog point")
            if value is not None:
                points.append((float(point[0]) / 1000, value))
        if not points:
            raise NoDataError("datadog series has no points")
        return points

    def _series(self, query: str, start: datetime, end: datetime) -> list[Any]:
        params = {
            "query": query.strip(),
            "from": str(int(start.timestamp())),
            "to": str(int(end.timestamp())),
        }
        response = fetch(
            self.http,
            "GET",
            f"{self.address}/api/v1/query",
            params=params,
            headers=self.headers,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        if not isinstance(body, dict):
            raise AnalysisError(f"{self.what} answered something that is not a query result")
        if body.get("status") == "error" or body.get("error"):
            raise AnalysisError(f"datadog query error: {' '.join(str(body.get('error')).split())[:200]}")
        series = body.get("series")
        if series is None:
            return []
        if not isinstance(series, list):
            raise AnalysisError(f"{self.what} answered a series that is not a list")
        return series

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> DatadogProvider:
    return DatadogProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    return need_secret(spec, KEYS)
