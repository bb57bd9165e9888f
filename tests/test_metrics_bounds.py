"""Every metric query is bounded and never crashes: an overall deadline (a server dripping a byte
every 2 s), a size cap (a 52 MB answer), and a failed check with its reason for 401, 5xx, a refused
connection, and answers of unexpected shape. Served by a local server through the real client."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from gitcanary.analysis.providers import Limits, ProviderEnv
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import check, secrets, template
from tests.vendor_server import Reply, VendorServer, serve


@pytest.fixture
def server() -> Iterator[VendorServer]:
    yield from serve(VendorServer(lambda r: Reply(200, vector(1))))


def vector(value: float) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, str(value)]}]},
    }


def prom(server: VendorServer, **provider: Any) -> MetricTemplate:
    return template("t", "sum(up)", type="prometheus", address=server.url, **provider)


def test_a_server_dripping_a_byte_every_2s_is_cut_at_the_deadline(server: VendorServer) -> None:
    server.answer = lambda r: Reply(200, vector(1), drip=2.0)
    started = time.monotonic()
    result = check(prom(server), limits=Limits(deadline=5))
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed  # the deadline plus at most one pause between bytes
    assert not result.ok and result.value is None
    assert "did not answer within 5s" in result.line


def test_a_silent_server_is_cut_at_the_deadline(server: VendorServer) -> None:
    def hang(request: object) -> Reply:
        time.sleep(6)
        return Reply(200, vector(1))

    server.answer = hang
    started = time.monotonic()
    result = check(prom(server), limits=Limits(deadline=2))
    assert time.monotonic() - started < 4
    assert not result.ok and "did not answer within 2s" in result.line


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "undeclared"])
def test_a_52mb_answer_is_refused_within_the_cap(server: VendorServer, declared: bool) -> None:
    series = [{"metric": {"pod": f"p{i:07d}", "x": "y" * 400}, "value": [1, "1"]} for i in range(120_000)]
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": series}}).encode()
    assert len(body) > 52_000_000
    # Without Content-Length only counting the bytes as they arrive can stop it.
    server.answer = lambda r: Reply(200, raw=body, declare_length=declared)
    tracemalloc.start()
    try:
        result = check(prom(server), limits=Limits(max_bytes=4 * 1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not result.ok and result.value is None
    assert "4194304-byte cap" in result.line
    assert peak < 30 * 1024 * 1024, peak  # the 52 MB body is never held, let alone parsed


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(401, raw=b"Unauthorized\n", content_type="text/plain"), "answered HTTP 401: Unauthorized"),
        (
            Reply(503, raw=b"<html>overloaded</html>", content_type="text/html"),
            "answered HTTP 503: <html>overloaded",
        ),
        (Reply(200, raw=b"not json"), "answered something that is not a query result"),
        (Reply(200, ["a", "list"]), "answered something that is not a query result"),
        (
            Reply(200, {"status": "success", "data": {"resultType": "vector", "result": [{"value": "x"}]}}),
            "unexpected sample",
        ),
        (Reply(200, {"status": "success", "data": {"resultType": "vector", "result": [7]}}), "unexpected"),
        (
            Reply(
                200,
                {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "abc"]}]}},
            ),
            "is not a number",
        ),
        (
            Reply(200, {"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
            "returned a string",
        ),
        (
            Reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
            "no data (no values found)",
        ),
        (Reply(200, vector(float("nan"))), "no data (no values found (NaN))"),
        (Reply(200, vector(float("inf"))), "+Inf"),
    ],
    ids=[
        "401",
        "503",
        "not-json",
        "list",
        "sample-shape",
        "series-shape",
        "not-number",
        "string",
        "empty",
        "nan",
        "inf",
    ],
)
def test_every_bad_answer_is_a_failed_check_with_its_reason(
    server: VendorServer, reply: Reply, reason: str
) -> None:
    server.answer = lambda r: reply
    result = check(prom(server))
    assert not result.ok and result.value is None
    assert reason in result.line, result.line


def test_refused_connection_is_a_failed_check() -> None:
    subject = template("t", "sum(up)", type="prometheus", address="http://127.0.0.1:9")
    result = check(subject, limits=Limits(deadline=3))
    assert not result.ok and "unreachable" in result.line


def test_tenant_headers_and_bearer_token_reach_the_server(server: VendorServer) -> None:
    subject = prom(server, headers={"X-Scope-OrgID": ["team-a"]}, secretRef={"name": "metrics"})
    env = ProviderEnv(secrets=secrets({"token": "s3cr3t-token"}))
    result = check(subject, env=env)
    assert result.ok and result.value == 1
    (sent,) = server.requests
    assert sent.headers["x-scope-orgid"] == "team-a"
    assert sent.headers["authorization"] == "Bearer s3cr3t-token"


def test_a_password_in_the_address_never_reaches_the_line(server: VendorServer) -> None:
    server.answer = lambda r: Reply(500, raw=b"boom")
    address = server.url.replace("http://", "http://user:hunter2@")
    result = check(template("t", "sum(up)", type="prometheus", address=address))
    assert not result.ok and "hunter2" not in result.line and "***@127.0.0.1" in result.line
