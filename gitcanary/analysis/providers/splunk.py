"""Splunk Observability Cloud (SignalFx), through SignalFlow.

Follows Flagger's `pkg/metrics/providers/splunk.go`: the address is required (the realm's API
root, `https://api.<realm>.signalfx.com`, whose `api.` becomes `stream.`), `secretRef` key
`sf_token_key` is sent as `X-SF-Token`, the program runs over `[at - 10 x interval, at]` with
`immediate=true`, data points with no value are dropped, none left is no data, more than one time
series (`tsId`) is an error, and the value is the last point's. Flagger speaks SignalFlow over a
WebSocket; gitcanary uses the same computation's HTTP form (`POST /v2/signalflow/execute`, answered
as server-sent events), so the whole answer is read within the deadline and the size cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from gitcanary.analysis.providers.http import HttpPool, error_text, fetch, parse_json, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

KEYS = ("sf_token_key",)
WINDOW_MULTIPLIER = 10


def stream_address(address: str) -> str:
    """The realm's stream endpoint for an API or stream address (`wss://` becomes `https://`)."""
    parts = urlsplit(address.rstrip("/"))
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    netloc = parts.netloc
    if parts.hostname and parts.hostname.startswith("api."):
        netloc = netloc.replace("api.", "stream.", 1)
    return urlunsplit((scheme, netloc, parts.path, "", ""))


def events(text: str) -> list[tuple[str, Any]]:
    """(event name, parsed data) of each server-sent event; data lines of one event are joined."""
    found: list[tuple[str, Any]] = []
    name, data = "message", list[str]()
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                found.append((name, parse_json("\n".join(data), "splunk event data")))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return found


class SplunkProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        if not target.address:
            raise AnalysisError("splunk provider has no address")
        token = Credentials(target, env.secrets).need(KEYS[0])
        self.bound = env.binding(target, "the access token")
        self.headers = {
            **header_values(target.spec.headers),
            "X-SF-Token": token,
            "Content-Type": "text/plain",
        }
        stream = stream_address(target.address)
        self.url = f"{stream}/v2/signalflow/execute"
        self.what = f"splunk at {redact_url(stream)}"
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        end = utc(at)
        start = end - WINDOW_MULTIPLIER * window
        params = {
            "start": str(int(start.timestamp() * 1000)),
            "stop": str(int(end.timestamp() * 1000)),
            "immediate": "true",
        }
        response = fetch(
            self.http,
            "POST",
            self.url,
            params=params,
            headers=self.headers,
            content=query.encode(),
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        if response.status_code >= 400:
            raise AnalysisError(f"{self.what} answered HTTP {response.status_code}: {error_text(response)}")
        points: list[tuple[str, float]] = []
        for name, data in events(response.text):
            if not isinstance(data, dict):
                raise AnalysisError(f"splunk sent a {name} event that is not an object")
            if name == "error" or (name == "control-message" and data.get("event") == "JOB_FAILED"):
                message = data.get("message") or data.get("error") or data
                raise AnalysisError(f"splunk signalflow error: {' '.join(str(message).split())[:200]}")
            if name != "data":
                continue
            for item in data.get("data") or []:
                value = number(item, "value", "splunk data point")
                if value is not None:
                    points.append((str(item.get("tsId")), value))
        if not points:
            raise NoDataError("splunk returned no data point")
        if len({series for series, _ in points}) > 1:
            raise AnalysisError("splunk returned more than one time series; the program must publish one")
        return points[-1][1]

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> SplunkProvider:
    return SplunkProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    found = need_secret(spec, KEYS)
    if spec.address and spec.address.startswith(("ws://", "wss://")):
        return found  # Flagger accepts the realm's stream address too
    return need_address(spec) + found
