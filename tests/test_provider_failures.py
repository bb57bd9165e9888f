"""Every HTTP metrics provider turns a 401, a 5xx, a server that drips bytes, and an oversized answer
into a failed check with a clear reason, within the deadline and the size cap (one shared bounded
client, `analysis.providers.http`, proven here for each provider's own request)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gitcanary.analysis.providers import Limits, ProviderEnv
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import check, secrets, template
from tests.vendor_server import Reply, VendorServer, serve

SECRETS = {
    "datadog_api_key": "a",
    "datadog_application_key": "b",
    "newrelic_account_id": "1",
    "newrelic_query_key": "k",
    "dynatrace_token": "t",
    "sf_token_key": "s",
    "username": "u",
    "password": "p",
}
QUERIES = {
    "prometheus": "sum(up)",
    "datadog": "avg:x{*}",
    "newrelic": "SELECT count(*) FROM T",
    "dynatrace": "builtin:x",
    "graphite": "target=a.b",
    "influxdb": "SELECT last(v) FROM m",
    "splunk": "data('x').publish()",
}
ENV = ProviderEnv(secrets=secrets(SECRETS), limits=Limits(deadline=3, max_bytes=1024 * 1024))


@pytest.fixture
def server() -> Iterator[VendorServer]:
    yield from serve(VendorServer(lambda r: Reply(200, {})))


def subject(kind: str, server: VendorServer) -> MetricTemplate:
    provider: dict[str, Any] = {"type": kind, "address": server.url, "secretRef": {"name": "metrics"}}
    return template("t", QUERIES[kind], **provider)


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_401_is_a_failed_check_naming_the_backend(server: VendorServer, kind: str) -> None:
    server.answer = lambda r: Reply(401, raw=b'{"error": "bad credentials"}')
    result = check(subject(kind, server), env=ENV)
    assert not result.ok and result.value is None
    assert f"{kind} at http://127.0.0.1" in result.line and "answered HTTP 401" in result.line, result.line


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_5xx_is_a_failed_check(server: VendorServer, kind: str) -> None:
    server.answer = lambda r: Reply(502, raw=b"<html>Bad Gateway</html>", content_type="text/html")
    result = check(subject(kind, server), env=ENV)
    assert not result.ok and "answered HTTP 502: <html>Bad Gateway" in result.line, result.line


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_dripping_server_is_cut_at_the_deadline(server: VendorServer, kind: str) -> None:
    server.answer = lambda r: Reply(200, raw=b'{"results": [], "series": []}' * 4, drip=1.0)
    started = time.monotonic()
    result = check(subject(kind, server), env=ENV)
    assert time.monotonic() - started < 5
    assert not result.ok and "did not answer within 3s" in result.line, result.line


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_oversized_answer_is_refused(server: VendorServer, kind: str) -> None:
    server.answer = lambda r: Reply(200, raw=b"[" + b"1," * 1_000_000 + b"1]", declare_length=False)
    result = check(subject(kind, server), env=ENV)
    assert not result.ok and "exceeds the 1048576-byte cap" in result.line, result.line


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_a_server_echoing_the_credentials_never_puts_them_in_the_line(
    server: VendorServer, kind: str
) -> None:
    def echo(request: Any) -> Reply:
        # What a careless server might say: the credential headers it got, basic auth decoded.
        said = []
        for name, value in request.headers.items():
            if name in ("accept", "accept-encoding", "connection", "host", "user-agent", "content-length"):
                continue
            if value.startswith("Basic "):
                value = base64.b64decode(value[6:]).decode()
            said.append(f"{name}={value}")
        return Reply(403, raw=" ".join(said).encode())

    server.answer = echo
    loud = {key: f"secret-{key}-0123456789" for key in SECRETS}
    loud["newrelic_account_id"] = "987654321"
    result = check(subject(kind, server), env=ProviderEnv(secrets=secrets(loud), limits=ENV.limits))
    assert not result.ok and "answered HTTP 403" in result.line
    assert not [value for value in loud.values() if value in result.line], result.line
