"""Bounded HTTP for metrics providers: pooled httpx clients, an overall deadline, a size cap.

httpx's own timeouts are per operation, so a server that sends one byte every 2 s never trips a
10 s read timeout and holds a query for minutes; and `response.json()` reads whatever arrives, so a
52 MB answer costs hundreds of MB. Here every request streams its body, counting bytes (after
decompression, so a gzip bomb is bounded too) and checking the clock after each chunk; each wait is
given only the time left, so a query ends within its deadline plus one network read.

Compressed answers are inflated here, in bounded steps (`zlib`'s `max_length`), never by httpx: one
64 KB gzip chunk can inflate to 64 MB, so counting after httpx's decoder overshoots the cap by that
much. JSON is parsed only when it is UTF-8 and nested at most `MAX_JSON_DEPTH` deep, whatever the
declared charset; anything else is a failed check with its reason (`AnalysisError`), never an
exception that would halt the canary. A request that carries a credential is sent only where
`endpoints.check` allows (`bound`), and no redirect is ever followed.
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from gitcanary.analysis.providers.base import Limits
from gitcanary.analysis.providers.endpoints import Binding, origin
from gitcanary.errors import AnalysisError
from gitcanary.redaction import register_basic

_RETRIES = 3
_BACKOFF = 0.2
MAX_JSON_DEPTH = 64  # real answers nest under 10 deep (Prometheus 5, Datadog 4, Stackdriver 8)
_ENCODINGS = "gzip, deflate"  # what gitcanary can inflate in bounded steps; never br or zstd


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
                # trust_env=False: no netrc or proxy credentials from the environment ride along to
                # an address a template names; follow_redirects=False: no credential follows a
                # redirect to another origin.
                self._clients[insecure] = httpx.Client(
                    verify=not insecure, follow_redirects=False, trust_env=False
                )
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
    bound: Binding | None = None,
) -> httpx.Response:
    """One request, read whole within `limits`; a fully read `httpx.Response` of any status.

    Transport failures are retried while time is left (asking again can help); HTTP errors are the
    caller's to judge. Every failure is an `AnalysisError` that names `what` and never a credential.
    `bound`: the request carries a credential, and goes only where that binding allows (checked on
    the final URL, before anything is sent).
    """
    if bound is not None:
        bound.check(url)
    if isinstance(auth, tuple):
        register_basic(*auth)  # the header's value, should a server echo it in its answer
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
    merged = {"Accept-Encoding": _ENCODINGS, **(headers or {})}
    request = client.build_request(
        method, url, params=query, headers=merged, json=json, content=content, timeout=httpx.Timeout(left)
    )
    response = client.send(request, stream=True, auth=auth)
    if response.is_redirect:
        response.close()
        # Never followed: a credential must not go where the answer points (another origin).
        where = origin(response.headers.get("location", "")) or "elsewhere"
        status = response.status_code
        raise AnalysisError(f"{what} answered HTTP {status}, a redirect to {where}: not followed")
    try:
        _refuse_declared(response.headers.get("content-length", ""), limits, what)
        inflate = _inflater(response.headers.get("content-encoding", ""), what)
        body = _join_capped(inflate(response.iter_raw(), limits.max_bytes + 1), limits, what, end)
    finally:
        response.close()
    kept = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
    }
    answer = httpx.Response(response.status_code, headers=kept, content=body, request=request)
    answer.encoding = "utf-8"  # whatever charset is declared: `.text` never raises (LookupError)
    return answer


def _refuse_declared(declared: str, limits: Limits, what: str) -> None:
    """Refuse an answer whose Content-Length is over the cap before reading any of it."""
    declared = declared.strip()
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise AnalysisError(f"{what} answer is {int(declared)} bytes, over the {limits.max_bytes}-byte cap")


def _join_capped(chunks: Iterable[bytes], limits: Limits, what: str, end: float | None = None) -> bytes:
    """`chunks` joined, refused once past `limits.max_bytes` (and past `end`, a monotonic deadline)."""
    kept: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limits.max_bytes:
            raise AnalysisError(f"{what} answer exceeds the {limits.max_bytes}-byte cap")
        kept.append(chunk)
        if end is not None and time.monotonic() > end:
            raise httpx.ReadTimeout("deadline reached while reading")
    return b"".join(kept)


def _inflater(encoding: str, what: str) -> Any:
    """A function (raw chunks, most bytes) -> inflated chunks, for a Content-Encoding header."""
    names = [name.strip().lower() for name in encoding.split(",") if name.strip()]
    names = [name for name in names if name != "identity"]
    if not names:
        return lambda raw, most: raw
    if len(names) > 1 or names[0] not in ("gzip", "x-gzip", "deflate"):
        raise AnalysisError(f"{what} answered with content-encoding {encoding[:40]!r}, not gzip or deflate")

    def inflate(raw: Iterator[bytes], most: int) -> Iterator[bytes]:
        # wbits 47: a gzip or zlib header, detected; max_length bounds every step's output.
        decoder = zlib.decompressobj(47)
        received = False
        try:
            for chunk in raw:
                received = received or bool(chunk)
                data = chunk
                while data:
                    out = decoder.decompress(data, most)
                    if out:
                        yield out
                    data = decoder.unconsumed_tail
            rest = decoder.flush()
        except zlib.error as exc:
            raise AnalysisError(f"{what} answered a body that does not inflate: {exc}") from exc
        if rest:
            yield rest
        if received and not decoder.eof:
            raise AnalysisError(f"{what} answered a body that does not inflate: it ends before its stream")

    return inflate


def error_text(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error answer on one line, for a check's reason."""
    return " ".join(response.content[: limit * 4].decode("utf-8", "replace").split())[:limit]


# A string ends at its closing quote or at the end of the text: every match succeeds, so an
# unterminated string costs one pass, not one pass per quote.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep the arrays and objects of the JSON `text` nest (strings' contents do not count)."""
    skeleton = _BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(_STEP[char] for char in skeleton), default=0)


def parse_json(
    body: bytes | str,
    what: str,
    max_depth: int = MAX_JSON_DEPTH,
    not_json: str = "something that is not JSON",
) -> Any:
    """`body` as JSON: `AnalysisError` (never RecursionError or UnicodeError) unless it is UTF-8
    JSON nested at most `max_depth` deep."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise AnalysisError(f"{what} answered something that is not UTF-8 ({exc.reason})") from exc
    depth = json_depth(text)
    if depth > max_depth:
        raise AnalysisError(f"{what} answered JSON nested {depth} deep, over the limit of {max_depth}")
    try:
        return jsonlib.loads(text)
    except (ValueError, RecursionError) as exc:
        shown = " ".join(text[:80].split())
        raise AnalysisError(f"{what} answered {not_json}: {shown}") from exc


def json_body(response: httpx.Response, what: str) -> Any:
    """The JSON of a 2xx answer; `AnalysisError` with the status and the answer's start otherwise."""
    if response.status_code >= 400:
        raise AnalysisError(f"{what} answered HTTP {response.status_code}: {error_text(response)}")
    return parse_json(response.content, what)


def read_urllib3(response: Any, limits: Limits, what: str) -> bytes:
    """The body of a urllib3 response (the Kubernetes client's, called with
    `_preload_content=False`), read in steps and refused past `limits.max_bytes`.

    The body is read as sent (`decode_content=False`): an encoded answer would be inflated by urllib3
    without a bound, so one is refused; the Kubernetes client asks for none."""
    try:
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise AnalysisError(f"{what} answered with Content-Encoding {encoding[:40]!r}, unread")
        _refuse_declared(response.headers.get("Content-Length") or "", limits, what)
        return _join_capped(response.stream(64 * 1024, decode_content=False), limits, what)
    finally:
        response.release_conn()
