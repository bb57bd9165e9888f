"""Graphite, through graphite-web's render API (`GET /render?<query>&format=json`).

Follows Flagger's `pkg/metrics/providers/graphite.go`: the address is required, the query is a
render URL query string (`target=...&from=-{{ interval }}`), an optional `secretRef` gives basic auth
(`username` and `password`, both required), and the value is the last non-null datapoint of the last
target that has one; none at all is no data. gitcanary adds `now=<analysis instant>` when the query
sets no `now`, so relative `from`/`until` are taken from the analysis clock (the same instant in
production, where that clock is the wall clock).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from gitcanary.analysis.providers.base import (
    Credentials,
    NoDataError,
    ProviderEnv,
    Target,
    header_values,
    need_address,
    utc,
)
from gitcanary.analysis.providers.http import HttpPool, fetch, json_body, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider


class GraphiteProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        if not target.address:
            raise AnalysisError("graphite provider has no address")
        credentials = Credentials(target, env.secrets)
        self.bound = env.binding(target, "the secretRef's credentials") if credentials.present else None
        self.auth = (
            (credentials.need("username"), credentials.need("password")) if credentials.present else None
        )
        self.headers = header_values(target.spec.headers)
        self.url = f"{target.address.rstrip('/')}/render"
        self.what = f"graphite at {redact_url(target.address)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        points = self._points(query, at)
        if not points:
            raise NoDataError("graphite returned no datapoint")
        return points[-1][1]

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        """The last target's non-null datapoints between `start` and `end` (Graphite's resolution)."""
        extra = [("from", str(int(utc(start).timestamp()))), ("until", str(int(utc(end).timestamp())))]
        points = self._points(query, end, extra, last_target_only=True)
        if not points:
            raise NoDataError("graphite returned no datapoint")
        return points

    def _points(
        self,
        query: str,
        at: datetime,
        extra: list[tuple[str, str]] | None = None,
        last_target_only: bool = False,
    ) -> list[tuple[float, float]]:
        params = [(k, v) for k, v in parse_qsl(" ".join(query.split()), keep_blank_values=True)]
        names = {k for k, _ in params}
        if extra:
            params = [(k, v) for k, v in params if k not in ("from", "until")] + extra
        if "now" not in names:
            params.append(("now", str(int(utc(at).timestamp()))))
        params = [(k, v) for k, v in params if k != "format"] + [("format", "json")]
        response = fetch(
            self.http,
            "GET",
            self.url,
            params=params,
            headers=self.headers,
            auth=self.auth,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        if not isinstance(body, list):
            raise AnalysisError(f"{self.what} answered something that is not a render result")
        found: list[tuple[float, float]] = []
        for series in body:
            datapoints = series.get("datapoints") if isinstance(series, dict) else None
            if not isinstance(datapoints, list):
                raise AnalysisError(f"{self.what} answered a target without datapoints")
            mine = []
            for point in datapoints:
                value = number(point, 0, "graphite datapoint")
                if value is not None:
                    mine.append((float(point[1] or 0), value))
            if mine:
                found = mine if last_target_only else found + mine
        return found

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> GraphiteProvider:
    return GraphiteProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    found = need_address(spec)
    if "target=" not in query:
        found.append("spec.query: a graphite query is a render query string with at least one target=")
    return found
