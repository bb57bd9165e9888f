"""A small Prometheus HTTP API client: an instant query gives one number, a range query one
series of (timestamp, value) points (or every series, keyed by one label); anything else is an
`AnalysisError`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from gitcanary.analysis.providers.base import Limits, NoDataError
from gitcanary.analysis.providers.endpoints import Binding
from gitcanary.analysis.providers.http import HttpPool, error_text, fetch, parse_json, redact_url
from gitcanary.errors import AnalysisError
from gitcanary.redaction import register_url

_WHITESPACE = re.compile(r"\s+")

__all__ = ["NoDataError", "PrometheusClient", "QueryClient"]


class QueryClient(Protocol):
    """What the analysis needs from a metrics backend."""

    def query(self, promql: str, at: datetime) -> float: ...

    def close(self) -> None: ...


class PrometheusClient:
    """Instant queries against Prometheus' `/api/v1/query`.

    Each query has an overall deadline and a size cap (`limits`, see `providers.http`). Transport
    errors (refused, reset) are retried while time is left; HTTP and PromQL errors are not, since
    asking again gives the same answer. `auth` (basic or bearer), `headers` (e.g. a Mimir or Thanos
    tenant header) and `insecure` (`insecureSkipVerify`) come from the MetricTemplate's provider.
    `timeout` is kept for callers that set one: it becomes the deadline.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        insecure: bool = False,
        limits: Limits | None = None,
        pool: HttpPool | None = None,
        bound: Binding | None = None,
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise AnalysisError(f"prometheus address {redact_url(address)!r} is not an http(s) URL")
        self.address = address.rstrip("/")
        register_url(address)  # its userinfo goes as Basic auth: masked should a server echo it
        self.limits = limits or (Limits(deadline=timeout) if timeout else Limits())
        self._headers = dict(headers or {})
        self._auth = auth
        self._bound = bound  # the template's credentials go only where the operator allows
        self._own_pool = pool is None
        self._pool = pool or HttpPool()
        self._http = self._pool.client(insecure=insecure)

    def close(self) -> None:
        if self._own_pool:
            self._pool.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def query(self, promql: str, at: datetime) -> float:
        """The value of `promql` evaluated at `at` (naive datetimes are taken as UTC).

        Like Flagger, whitespace runs are collapsed before sending, and when the result holds several
        series the last one's value is used. No series, or NaN, raises `NoDataError`.
        """
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        params = {"query": _WHITESPACE.sub(" ", promql).strip(), "time": f"{at.timestamp():.3f}"}
        url = f"{self.address}/api/v1/query"
        try:
            response = self._get(url, params)
        except httpx.TransportError as exc:
            raise AnalysisError(
                f"prometheus at {redact_url(self.address)} unreachable: {_describe(exc)}"
            ) from exc
        return _value(response, redact_url(self.address))

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        """The points of `promql` from `start` to `end` every `step` seconds (`/api/v1/query_range`).

        Points are (unix seconds, value), oldest first, NaN and infinite values dropped. When the
        result holds several series the last one is used, as `query` does. No point at all raises
        `NoDataError`.
        """
        return _points(self._range(promql, start, end, step), redact_url(self.address))

    def query_range_by(
        self, promql: str, start: datetime, end: datetime, step: float, label: str
    ) -> dict[str, list[tuple[float, float]]]:
        """Every series of a range query, keyed by its value of `label` (e.g. `le` of a
        histogram's buckets); series without the label are left out. No point at all raises
        `NoDataError`."""
        response = self._range(promql, start, end, step)
        data = _data(response, redact_url(self.address))
        if data.get("resultType") != "matrix":
            raise AnalysisError(f"range query returned a {data.get('resultType')}, not a range vector")
        found: dict[str, list[tuple[float, float]]] = {}
        for series in data.get("result") or []:
            if not isinstance(series, dict) or not isinstance(series.get("metric"), dict):
                raise AnalysisError(f"unexpected series {series!r} in prometheus result")
            key = series["metric"].get(label)
            values = series.get("values")
            if key is None or not isinstance(values, list):
                continue
            points = [(float(sample[0]), _number(sample)) for sample in values]
            found[str(key)] = [(t, v) for t, v in points if math.isfinite(v)]
        if not any(found.values()):
            raise NoDataError("no values found")
        return found

    def _range(self, promql: str, start: datetime, end: datetime, step: float) -> httpx.Response:
        if step <= 0:
            raise AnalysisError(f"range query step {step} is not positive")
        params = {
            "query": _WHITESPACE.sub(" ", promql).strip(),
            "start": f"{_utc(start).timestamp():.3f}",
            "end": f"{_utc(end).timestamp():.3f}",
            "step": f"{step:g}",
        }
        url = f"{self.address}/api/v1/query_range"
        try:
            return self._get(url, params)
        except httpx.TransportError as exc:
            raise AnalysisError(
                f"prometheus at {redact_url(self.address)} unreachable: {_describe(exc)}"
            ) from exc

    def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        return fetch(
            self._http,
            "GET",
            url,
            params=params,
            headers=self._headers,
            auth=self._auth,
            limits=self.limits,
            what=f"prometheus at {redact_url(self.address)}",
            bound=self._bound,
        )


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _data(response: httpx.Response, address: str) -> dict[str, Any]:
    try:
        body: Any = parse_json(
            response.content, f"prometheus at {address}", not_json="something that is not a query result"
        )
    except AnalysisError:
        if response.status_code < 400:
            raise
        body = None  # an error page that is not JSON: its status and start say what happened
    if isinstance(body, dict) and body.get("status") == "error":
        kind = body.get("errorType") or "error"
        text = _WHITESPACE.sub(" ", str(body.get("error", ""))).strip()
        raise AnalysisError(f"prometheus {kind}: {text}")
    if response.status_code >= 400:
        raise AnalysisError(
            f"prometheus at {address} answered HTTP {response.status_code}: {error_text(response)}"
        )
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise AnalysisError(f"prometheus at {address} answered something that is not a query result")
    data: dict[str, Any] = body["data"]
    return data


def _points(response: httpx.Response, address: str) -> list[tuple[float, float]]:
    data = _data(response, address)
    kind, result = data.get("resultType"), data.get("result")
    if kind != "matrix":
        raise AnalysisError(f"range query returned a {kind}, not a range vector")
    if not result:
        raise NoDataError("no values found")
    values = result[-1].get("values") if isinstance(result[-1], dict) else None
    if not isinstance(values, list):
        raise AnalysisError(f"unexpected series {result[-1]!r} in prometheus result")
    points = []
    for sample in values:
        value = _number(sample)
        if math.isfinite(value):
            points.append((float(sample[0]), value))
    if not points:
        raise NoDataError("no values found (NaN)")
    return points


def _value(response: httpx.Response, address: str) -> float:
    data = _data(response, address)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        samples = [result]
    elif kind == "vector":
        if not isinstance(result, list | None):
            raise AnalysisError("prometheus answered a vector that is not a list")
        samples = [series.get("value") if isinstance(series, dict) else series for series in result or []]
    else:
        raise AnalysisError(
            f"query returned a {kind}; a metric query must return an instant vector or scalar"
        )
    if not samples:
        raise NoDataError("no values found")
    value = _number(samples[-1])
    if math.isnan(value):
        raise NoDataError("no values found (NaN)")
    if math.isinf(value):
        raise AnalysisError(f"query returned {'+Inf' if value > 0 else '-Inf'}")
    return value


def _number(sample: object) -> float:
    if not isinstance(sample, list) or len(sample) != 2:
        raise AnalysisError(f"unexpected sample {sample!r} in prometheus result")
    try:
        return float(sample[1])
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"sample value {sample[1]!r} is not a number") from exc
