"""Splunk Observability (SignalFx) against a local stand-in of SignalFlow's HTTP execute endpoint.
Splunk publishes no OpenAPI description of SignalFlow; the stand-in checks each request against
the documented form (https://dev.splunk.com/observability/reference/api/signalflow/latest:
`POST /v2/signalflow/execute`, `start`/`stop` in epoch ms, `immediate`, `X-SF-Token`, the program
as the body) and answers in its documented server-sent-event form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gitcanary.analysis.providers import ProviderEnv, problems
from gitcanary.analysis.providers.splunk import stream_address
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import NOW, check, secrets, template
from tests.vendor_server import Reply, Request, VendorServer, serve

ENV = ProviderEnv(secrets=secrets({"sf_token_key": "sf-SECRET"}))
PROGRAM = "data('demo.trans.latency', filter=filter('demo_host', '{{ target }}')).mean().publish()"


def sse(*messages: tuple[str, dict[str, Any]]) -> bytes:
    """Server-sent events as SignalFlow writes them: pretty-printed JSON, one `data:` line per line."""
    out = []
    for event, data in messages:
        lines = json.dumps(data, indent=2).splitlines()
        out.append(f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n")
    return "".join(out).encode()


START = ("control-message", {"event": "STREAM_START", "timestampMs": 1})
END = ("control-message", {"event": "END_OF_CHANNEL", "timestampMs": 2})


def data(*points: tuple[str, float | None], at: int = 1000) -> tuple[str, dict[str, Any]]:
    return ("data", {"data": [{"tsId": ts, "value": v} for ts, v in points], "logicalTimestampMs": at})


def documented(body: bytes, status: int = 200) -> Any:
    def handle(request: Request) -> Reply:
        problems = []
        if request.method != "POST" or request.path != "/v2/signalflow/execute":
            problems.append(f"{request.method} {request.path}")
        if not (request.params.get("start", "").isdigit() and request.params.get("stop", "").isdigit()):
            problems.append("start and stop must be epoch milliseconds")
        if request.params.get("immediate") not in ("true", "false"):
            problems.append("immediate must be true or false")
        if not request.headers.get("x-sf-token") or not request.body:
            problems.append("X-SF-Token header and a program body are required")
        if problems:
            return Reply(400, {"message": "; ".join(problems)})
        return Reply(
            status, raw=body, content_type="text/event-stream" if status == 200 else "application/json"
        )

    return handle


@pytest.fixture
def splunk() -> Iterator[VendorServer]:
    yield from serve(VendorServer(documented(sse(START, END))))


def sf(server: VendorServer) -> MetricTemplate:
    return template("latency", PROGRAM, type="splunk", address=server.url, secretRef={"name": "metrics"})


def test_last_point_of_the_one_series(splunk: VendorServer) -> None:
    splunk.answer = documented(
        sse(START, data(("AAA", 120.0)), data(("AAA", None), at=2000), data(("AAA", 180.0), at=3000), END)
    )
    result = check(sf(splunk), env=ENV, bounds={"max": 200})
    assert result.ok and result.value == 180.0, result.line
    (sent,) = splunk.requests
    assert sent.headers["x-sf-token"] == "sf-SECRET" and sent.params["immediate"] == "true"
    assert int(sent.params["stop"]) == int(NOW.timestamp() * 1000)
    assert int(sent.params["stop"]) - int(sent.params["start"]) == 600_000
    assert sent.body.decode().startswith("data('demo.trans.latency', filter=filter('demo_host', 'backend'))")


def test_only_null_points_is_no_data(splunk: VendorServer) -> None:
    splunk.answer = documented(sse(START, data(("AAA", None)), END))
    result = check(sf(splunk), env=ENV)
    assert not result.ok and "no data (splunk returned no data point)" in result.line


def test_two_series_is_an_error(splunk: VendorServer) -> None:
    splunk.answer = documented(sse(START, data(("AAA", 1.0), ("BBB", 2.0)), END))
    result = check(sf(splunk), env=ENV)
    assert not result.ok and "more than one time series" in result.line


def test_bad_token_is_a_401_check(splunk: VendorServer) -> None:
    splunk.answer = documented(b'{"code": 401, "message": "Unauthorized"}', 401)
    result = check(sf(splunk), env=ENV)
    assert not result.ok and "answered HTTP 401" in result.line and "sf-SECRET" not in result.line


def test_stream_address_from_the_api_address() -> None:
    assert stream_address("https://api.us1.signalfx.com") == "https://stream.us1.signalfx.com"
    assert stream_address("wss://stream.eu0.signalfx.com/") == "https://stream.eu0.signalfx.com"
    assert problems(template("t", "q", type="splunk", address="wss://stream.eu0.signalfx.com")) == [
        "spec.provider.secretRef: splunk needs a secret with sf_token_key"
    ]
