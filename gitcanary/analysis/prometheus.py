"""A small Prometheus HTTP API client: an instant query gives one number, a range query one
series of (timestamp, value) points; anything else is an `AnalysisError`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from gitcanary.errors import AnalysisError

_WHITESPACE = re.compile(r"\s+")


class NoDataError(AnalysisError):
    """The query ran but returned no sample (or NaN): the workload probably got no traffic."""


class QueryClient(Protocol):
    """What the analysis needs from a metrics backend."""

    def query(self, promql: str, at: datetime) -> float: ...

    def close(self) -> None: ...


class PrometheusClient:
    """Instant queries against Prometheus' `/api/v1/query`.

    Timeouts are always on. Transport errors (refused, reset, timed out) are retried a few times
    with a short backoff; HTTP and PromQL errors are not, since asking again gives the same answer.
    """

    def __init__(
        self, address: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise AnalysisError(f"prometheus address {address!r} is not an http(s) URL")
        self.address = address.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers=dict(headers or {}))

    def close(self) -> None:
        self._http.close()

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
            raise AnalysisError(f"prometheus at {self.address} unreachable: {_describe(exc)}") from exc
        return _value(response, self.address)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        """The points of `promql` from `start` to `end` every `step` seconds (`/api/v1/query_range`).

        Points are (unix seconds, value), oldest first, NaN and infinite values dropped. When the
        result holds several series the last one is used, as `query` does. No point at all raises
        `NoDataError`.
        """
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
            response = self._get(url, params)
        except httpx.TransportError as exc:
            raise AnalysisError(f"prometheus at {self.address} unreachable: {_describe(exc)}") from exc
        return _points(response, self.address)

    @retry(
        retry=retry_if_exception_type(httpx.TransportError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
    )
    def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        return self._http.get(url, params=params)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _data(response: httpx.Response, address: str) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("status") == "error":
        kind = body.get("errorType") or "error"
        text = _WHITESPACE.sub(" ", str(body.get("error", ""))).strip()
        raise AnalysisError(f"prometheus {kind}: {text}")
    if response.status_code >= 400:
        snippet = _WHITESPACE.sub(" ", response.text).strip()[:200]
        raise AnalysisError(f"prometheus at {address} answered HTTP {response.status_code}: {snippet}")
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
        samples = [series.get("value") for series in result or []]
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
