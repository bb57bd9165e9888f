"""The HTTP port of `run` checks a webhook's credential before reading more than a small body,
serves a bounded number of requests at once, and times out slow reads.

Real pieces: the server `run` starts (gitcanary.service.http) on a loopback port, spoken to over raw
sockets the way a slow or hostile client would, and the webhook receiver's WSGI app given generated
deliveries with an input stream that counts every byte read. The oracle computes each forge's
signature itself (hmac over the body), never through the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.service import http as served
from gitcanary.service.http import HttpServer, Router, plain
from gitcanary.service.push_webhook import MAX_BODY, WebhookReceiver

SECRET = "s3cret-hook"


class Counting(io.RawIOBase):
    """A request body that counts what the app reads of it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) - self.read_bytes if size is None or size < 0 else size
        chunk = self.data[self.read_bytes : self.read_bytes + size]
        self.read_bytes += len(chunk)
        return chunk


def deliver(
    receiver: WebhookReceiver, headers: dict[str, str], body: bytes, length: int | None = None
) -> tuple[str, int]:
    stream = Counting(body)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body) if length is None else length),
        "wsgi.input": stream,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    status: list[str] = []
    receiver(environ, lambda s, h, e=None: status.append(s))
    return status[0], stream.read_bytes


def github(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def gitea(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


Forge = st.sampled_from(["none", "github", "gitea", "gitlab"])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    forge=Forge,
    right=st.booleans(),
    body=st.binary(max_size=4096),
    claimed=st.one_of(st.none(), st.integers(min_value=-5, max_value=50 * MAX_BODY)),
    event=st.sampled_from(["push", "ping", "issues"]),
)
def test_no_delivery_makes_the_receiver_read_more_than_a_small_body_or_wake_unauthenticated(
    forge: str, right: bool, body: bytes, claimed: int | None, event: str
) -> None:
    wakes: list[int] = []
    receiver = WebhookReceiver(SECRET, lambda: wakes.append(1))
    key = SECRET if right else SECRET + "x"
    headers = {
        "none": {},
        "github": {"X-Hub-Signature-256": github(key, body), "X-GitHub-Event": event},
        "gitea": {"X-Gitea-Signature": gitea(key, body), "X-Gitea-Event": event},
        "gitlab": {"X-Gitlab-Token": key, "X-Gitlab-Event": "Push Hook" if event == "push" else event},
    }[forge]
    status, read = deliver(receiver, headers, body, claimed)
    assert read <= MAX_BODY  # whatever the claimed length
    if forge == "none" or (forge == "gitlab" and not right):
        assert read == 0  # refused before a byte of the body
    honest = claimed is None or claimed == len(body)
    if wakes:
        # Woken only by a delivery that proves the secret over what was read.
        assert forge != "none" and right and status.startswith("202")
    if forge != "none" and right and honest and event == "push" and len(body) <= MAX_BODY:
        assert status.startswith("202") and wakes == [1]
    if not right or forge == "none":
        assert status.startswith(("401", "413")) and not wakes


def test_an_unsigned_25_mb_delivery_is_refused_before_its_body_is_sent(running: HttpServer) -> None:
    for extra in ("", "X-Gitlab-Token: wrong\r\n"):
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            head = f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: {25 << 20}\r\n"
            sock.sendall(f"{head}{extra}\r\n".encode())
            answer = sock.recv(4096)  # no body sent: an answer now means it was not waited for
        assert answer.startswith(b"HTTP/1.0 401") or answer.startswith(b"HTTP/1.1 401"), answer


def test_a_signed_delivery_over_the_cap_is_refused_unread(running: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(
            f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n"
            "X-Hub-Signature-256: sha256=00\r\n\r\n".encode()
        )
        assert b" 413 " in sock.recv(4096)


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpServer]:
    monkeypatch.setattr(served._QuietHandler, "timeout", 1.0)  # the read timeout, short for the test
    router = Router()
    router.mount("/healthz", plain("200 OK", "ok\n"))
    receiver = WebhookReceiver(SECRET, lambda: None, branch="main")
    router.mount("/webhooks/github", receiver)
    server = HttpServer(router, "127.0.0.1:0").start()
    try:
        yield server
    finally:
        server.stop()


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(4096)


def test_slow_clients_hold_at_most_the_workers_and_only_until_the_read_timeout(running: HttpServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", running.port), timeout=5) for _ in range(served.WORKERS)]
    try:
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request line, then nothing more
        deadline = time.monotonic() + 5
        while running._server._slots._value and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.02)  # until every worker holds a slow client
        started = time.monotonic()
        busy = get(running.port)
        assert b" 503 " in busy, busy  # answered at once, not queued behind the slow clients
        assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 5
        while b" 200 " not in get(running.port):  # the slow ones time out after 1 s: served again
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for sock in idle:  # each slow client's connection was closed by the server, unanswered
            sock.settimeout(2)
            assert sock.recv(4096) == b""
    finally:
        for sock in idle:
            sock.close()


def test_a_client_that_trickles_a_byte_per_read_is_cut_at_the_request_deadline(
    running: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: each byte arrives within the read timeout (1 s here), so only the whole-request
    deadline ends the connection; it holds its worker no longer than that."""
    monkeypatch.setattr(served, "REQUEST_DEADLINE", 2.0)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        cut_after = None
        for _ in range(40):  # 40 x 0.3 s = 12 s of trickling, far beyond the deadline
            try:
                sock.sendall(b"X")
            except OSError:
                cut_after = time.monotonic() - started
                break
            time.sleep(0.3)
            sock.setblocking(False)
            try:
                if sock.recv(4096) == b"":
                    cut_after = time.monotonic() - started
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
        assert cut_after is not None, "the trickling client was never cut"
        assert 1.5 < cut_after < 4.0, cut_after
    deadline = time.monotonic() + 3
    while running._server._slots._value != served.WORKERS:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the cut request still holds its worker"
        time.sleep(0.02)
