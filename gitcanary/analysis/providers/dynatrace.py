"""Dynatrace, through the Metrics API v2 (`GET /api/v2/metrics/query`).

Follows Flagger's `pkg/metrics/providers/dynatrace.go`: the address (the environment's API root,
e.g. `https://<env>.live.dynatrace.com`) is required, `secretRef` key `dynatrace_token` is sent as
`Authorization: Api-Token <token>`, the query is a `metricSelector` with `resolution=Inf` over
`[at - 10 x interval, at]`, and the value is the first value of the last data entry of the first
result. No result, no data entry, no value or a null value is no data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gitcanary.analysis.providers.base import (
    Credentials,
    NoDataError,
    ProviderEnv,
    Target,
    header_values,
    need_address,
    need_secret,
    utc,
)
from gitcanary.analysis.providers.http import HttpPool, fetch, json_body, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

KEYS = ("dynatrace_token",)
WINDOW_MULTIPLIER = 10


class DynatraceProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        if not target.address:
            raise AnalysisError("dynatrace provider has no address")
        credentials = Credentials(target, env.secrets)
        self.bound = env.binding(target, "the API token")
        token = credentials.need(KEYS[0])
        self.headers = {**header_values(target.spec.headers), "Authorization": f"Api-Token {token}"}
        self.url = f"{target.address.rstrip('/')}/api/v2/metrics/query"
        self.what = f"dynatrace at {redact_url(target.address)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        end = utc(at)
        start = end - WINDOW_MULTIPLIER * window
        params = {
            "metricSelector": query.strip(),
            "resolution": "Inf",
            "from": str(int(start.timestamp() * 1000)),
            "to": str(int(end.timestamp() * 1000)),
        }
        response = fetch(
            self.http,
            "GET",
            self.url,
            params=params,
            headers=self.headers,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        results = body.get("result") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise AnalysisError(f"{self.what} answered something that is not a metric query result")
        if not results:
            raise NoDataError("dynatrace returned no result")
        data = results[0].get("data") if isinstance(results[0], dict) else None
        if not isinstance(data, list):
            raise AnalysisError("dynatrace result has no data list")
        if not data:
            raise NoDataError("dynatrace result has no data")
        values = data[-1].get("values") if isinstance(data[-1], dict) else None
        if not isinstance(values, list):
            raise AnalysisError("dynatrace data entry has no values list")
        if not values:
            raise NoDataError("dynatrace data entry has no values")
        value = number(values, 0, "dynatrace value")
        if value is None:
            raise NoDataError("dynatrace value is null")
        return value

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> DynatraceProvider:
    return DynatraceProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    return need_address(spec) + need_secret(spec, KEYS)
