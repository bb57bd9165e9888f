"""Bounded HTTP for metrics providers: pooled httpx clients, an overall deadline, a size cap.

httpx's own timeouts are per operation, so a server that sends one byte every 2 s never trips a
10 s read timeout and holds a query for minutes; and `response.json()` reads whatever arrives, so a
52 MB answer costs hundreds of MB. Here every request streams its body, counting bytes (after
decompression, so a gzip bomb is bounded too) and checking the clock after each chunk; each wait is
given only the time left, so a query ends within its deadline plus one network read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from gitcanary.analysis.providers.base import Limits
from gitcanary.errors import AnalysisError

_RETRIES = 3
_BACKOFF = 0.2


class HttpPool:
    """httpx clients kept open across queries, one per TLS choice (verify or `insecureSkipVerify`).

    Authentication and headers go on each request, so templates with different credentials share
    connections safely. Thread-safe: the reconciler may analyze canaries from several threads.
    """

    def __init__(self) -> None:
        self._clients: dict[bool, httpx.Client] = {}
        self._lock = threading.Lock()

    def client(self, *, insecure: bool = False) -> httpx.Client:
        with self._lock:
            if insecure not in self._clients:
                self._clients[insecure] = httpx.Client(verify=not insecure, follow_redirects=False)
            return self._clients[insecure]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def redact_url(url: str) -> str:
    """`url` without its userinfo (a password in an address must never reach a message)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def fetch(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    limits: Limits,
    what: str,
    params: Mapping[str, str] | list[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One request, read whole within `limits`; a fully read `httpx.Response` of any status.

    Transport failures are retried while time is left (asking again can help); HTTP errors are the
    caller's to judge. Every failure is an `AnalysisError` that names `what` and never a credential.
    """
    end = time.monotonic() + limits.deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            return _once(client, method, url, end, limits, what, params, headers, auth, json, content)
        except httpx.TimeoutException as exc:
            raise AnalysisError(f"{what} did not answer within {limits.deadline:g}s") from exc
        except httpx.TransportError as exc:
            left = end - time.monotonic()
            pause = _BACKOFF * 2 ** (attempt - 1)
            if attempt >= _RETRIES or left <= pause:
                reason = str(exc) or type(exc).__name__
                raise AnalysisError(f"{what} unreachable: {reason}") from exc
            time.sleep(pause)


def _once(
    client: httpx.Client,
    method: str,
    url: str,
    end: float,
    limits: Limits,
    what: str,
    params: Mapping[str, str] | list[tuple[str, str]] | None,
    headers: Mapping[str, str] | None,
    auth: httpx.Auth | tuple[str, str] | None,
    json: Any,
    content: bytes | None,
) -> httpx.Response:
    left = end - time.monotonic()
    if left <= 0:
        raise httpx.ReadTimeout("deadline reached")
    query = httpx.QueryParams()
    for key, value in params.items() if isinstance(params, Mapping) else params or []:
        query = query.add(key, value)
    request = client.build_request(
        method, url, params=query, headers=headers, json=json, content=content, timeout=httpx.Timeout(left)
    )
    response = client.send(request, stream=True, auth=auth)
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise AnalysisError(
                f"{what} answer is {int(declared)} bytes, over the {limits.max_bytes}-byte cap"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limits.max_bytes:
                raise AnalysisError(f"{what} answer exceeds the {limits.max_bytes}-byte cap")
            chunks.append(chunk)
            if time.monotonic() > end:
                raise httpx.ReadTimeout("deadline reached while reading")
    finally:
        response.close()
    kept = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
    }
    return httpx.Response(response.status_code, headers=kept, content=b"".join(chunks), request=request)


def error_text(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error answer on one line, for a check's reason."""
    return " ".join(response.text.split())[:limit]


def json_body(response: httpx.Response, what: str) -> Any:
    """The JSON of a 2xx answer; `AnalysisError` with the status and the answer's start otherwise."""
    if response.status_code >= 400:
        raise AnalysisError(f"{what} answered HTTP {response.status_code}: {error_text(response)}")
    try:
        return response.json()
    except ValueError as exc:
        raise AnalysisError(
            f"{what} answered something that is not JSON: {error_text(response, 80)}"
        ) from exc
