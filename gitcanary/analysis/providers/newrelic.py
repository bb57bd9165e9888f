"""New Relic, through the Insights query API (`GET /v1/accounts/<id>/query?nrql=...`).

Follows Flagger's `pkg/metrics/providers/newrelic.go`: `secretRef` keys `newrelic_account_id` and
`newrelic_query_key` (sent as `X-Query-Key`), address defaulting to
`https://insights-api.newrelic.com`, the window of one interval appended to the NRQL, and the value
is `results[0].result`; anything but exactly one result, or a null one, is no data. Where Flagger
appends `SINCE <n> seconds ago`, gitcanary appends `SINCE <ms> UNTIL <ms>` (NRQL accepts epoch
milliseconds): the same window, ending at the analysis instant rather than at the server's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

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

DEFAULT_ADDRESS = "https://insights-api.newrelic.com"
KEYS = ("newrelic_account_id", "newrelic_query_key")


class NewRelicProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        credentials = Credentials(target, env.secrets)
        self.bound = env.binding(target, "the query key")
        account = credentials.need(KEYS[0])
        if not account.isdigit():
            raise AnalysisError("newrelic_account_id is not a number")
        self.headers = {**header_values(target.spec.headers), "X-Query-Key": credentials.need(KEYS[1])}
        address = (target.address or DEFAULT_ADDRESS).rstrip("/")
        self.url = f"{address}/v1/accounts/{quote(account)}/query"
        self.what = f"newrelic at {redact_url(address)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        end = utc(at)
        start = end - window
        since, until = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        nrql = f"{' '.join(query.split())} SINCE {since} UNTIL {until}"
        response = fetch(
            self.http,
            "GET",
            self.url,
            params={"nrql": nrql},
            headers=self.headers,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise AnalysisError(f"{self.what} answered something that is not a query result")
        if len(results) != 1:
            raise NoDataError(f"newrelic returned {len(results)} results, expected one")
        value = number(results[0], "result", "newrelic result")
        if value is None:
            raise NoDataError("newrelic result is null")
        return value

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> NewRelicProvider:
    return NewRelicProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    return need_secret(spec, KEYS)
