"""InfluxDB: Flux through `/api/v2/query` (InfluxDB 2.x, and 1.8+), or InfluxQL through `/query` (1.x).

Follows Flagger's `pkg/metrics/providers/influxdb.go` for Flux: the address is required, a
`secretRef` gives `token` (sent as `Authorization: Token <token>`) and `org`, and the value is the
first record's `_value`; a null one is no data. Flagger returns 0 for a result with no record;
gitcanary calls that no data, since an empty answer must never pass a bound.

A query with no `|>` is InfluxQL (Debian ships InfluxDB 1.6, which has no Flux): sent to `/query`
with `epoch=s`, basic auth from `username`/`password` when the secretRef has them, the database
named in the query (`FROM "db"."rp"."measurement"`) or by the secret's `db` key; the value is the
first series' first row's first non-time column. A statement error is a failed check with its text.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from gitcanary.analysis.providers.base import (
    Credentials,
    NoDataError,
    ProviderEnv,
    Target,
    header_values,
    need_address,
)
from gitcanary.analysis.providers.http import HttpPool, error_text, fetch, json_body, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider


def is_flux(query: str) -> bool:
    return "|>" in query


class InfluxdbProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        if not target.address:
            raise AnalysisError("influxdb provider has no address")
        self.credentials = Credentials(target, env.secrets)
        self.bound = env.binding(target, "the secretRef's credentials") if self.credentials.present else None
        self.address = target.address.rstrip("/")
        self.headers = header_values(target.spec.headers)
        self.what = f"influxdb at {redact_url(self.address)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        return self._flux(query) if is_flux(query) else self._influxql(query)

    def _flux(self, query: str) -> float:
        headers = {**self.headers, "Accept": "application/csv", "Content-Type": "application/vnd.flux"}
        params = {}
        if self.credentials.present:
            headers["Authorization"] = f"Token {self.credentials.need('token')}"
            params["org"] = self.credentials.need("org")
        response = fetch(
            self.http,
            "POST",
            f"{self.address}/api/v2/query",
            params=params,
            headers=headers,
            content=query.encode(),
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        if response.status_code >= 400:
            raise AnalysisError(f"{self.what} answered HTTP {response.status_code}: {error_text(response)}")
        return _first_flux_value(response.text)

    def _influxql(self, query: str) -> float:
        params = {"q": " ".join(query.split()), "epoch": "s"}
        auth = None
        if self.credentials.present:
            database = self.credentials.get("db")
            if database:
                params["db"] = database
            username = self.credentials.get("username")
            if username:
                auth = (username, self.credentials.need("password"))
        response = fetch(
            self.http,
            "GET",
            f"{self.address}/query",
            params=params,
            headers=self.headers,
            auth=auth,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise AnalysisError(f"influxdb error: {error}" if error else f"{self.what} answered no results")
        first = results[0]
        if first.get("error"):
            raise AnalysisError(f"influxdb error: {' '.join(str(first['error']).split())[:200]}")
        series = first.get("series")
        if not series:
            raise NoDataError("influxdb returned no series")
        values = series[0].get("values") if isinstance(series[0], dict) else None
        if not isinstance(values, list) or not values:
            raise NoDataError("influxdb series has no rows")
        row = values[0]
        if not isinstance(row, list) or len(row) < 2:
            raise AnalysisError(f"unexpected influxdb row {row!r:.80}")
        value = number(row, 1, "influxdb value")
        if value is None:
            raise NoDataError("influxdb value is null")
        return value

    def close(self) -> None:
        pass


def _first_flux_value(text: str) -> float:
    """`_value` of the first record of an annotated CSV answer (annotation rows start with `#`)."""
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row or (row[0].startswith("#")):
            if not row:
                header = None  # a blank line separates tables; the next one has its own header
            continue
        if header is None:
            header = row
            if "_value" not in header:
                if "error" in header:
                    continue
                raise AnalysisError("influxdb flux answer has no _value column")
            continue
        if "error" in header and "_value" not in header:
            raise AnalysisError(f"influxdb flux error: {row[header.index('error')][:200]}")
        cell = row[header.index("_value")] if len(row) > header.index("_value") else ""
        if cell == "":
            raise NoDataError("influxdb record has a null _value")
        value = number([cell], 0, "influxdb _value")
        if value is None:
            raise NoDataError("influxdb record has a null _value")
        return value
    raise NoDataError("influxdb returned no record")


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> InfluxdbProvider:
    return InfluxdbProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    found = need_address(spec)
    if is_flux(query) and spec.secret_ref is None:
        found.append("spec.provider.secretRef: a Flux query needs a secret with token and org")
    return found
