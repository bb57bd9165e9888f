"""The HTTP port of `gitcanary run`: a small WSGI router on the standard library's server.

Each concern mounts its own WSGI app on a path (`/metrics`, `/healthz`, `/readyz`, the forge's
push webhook). The server runs in a daemon thread beside the reconciler's scheduler, one thread
per request, so a slow scrape never holds up a webhook; at most `WORKERS` requests are served at
once (a connection beyond them gets a 503 at once, unread), and every read on a connection times
out after `READ_TIMEOUT` seconds, so a client that sends slowly holds one worker for that long.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gitcanary.redaction import redact

log = logging.getLogger("gitcanary.service.http")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def plain(status: str, body: str, content_type: str = "text/plain; charset=utf-8") -> WSGIApp:
    """A WSGI app that always answers `status` with `body`."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        data = body.encode()
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]

    return app


class Router:
    """Dispatches on the exact request path; 404 for anything not mounted."""

    def __init__(self) -> None:
        self.routes: dict[str, WSGIApp] = {}

    def mount(self, path: str, app: WSGIApp) -> None:
        self.routes[path] = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        app = self.routes.get(environ.get("PATH_INFO", "") or "/")
        if app is None:
            return plain("404 Not Found", "not found\n")(environ, start_response)
        return _redacted(app, environ, start_response)


def _redacted(app: WSGIApp, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Every answer (`/readyz`, `/metrics`, errors) passes `redact`: no credential leaves by HTTP."""
    held: list[Any] = []

    def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        held[:] = [status, headers, exc_info]
        return lambda _data: None  # the legacy write() callable; our apps return their body

    chunks = app(environ, hold)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers, exc_info = held
    text = body.decode("utf-8", errors="replace")
    clean = redact(text)
    if clean != text:
        body = clean.encode()
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)
    return [body]


WORKERS = 16
READ_TIMEOUT = 10.0
# A whole request, from accept to the last byte of the answer: a client that trickles a byte every
# few seconds passes each read's timeout, and this ends it (the socket is shut down under it).
REQUEST_DEADLINE = 30.0
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _cut(request: Any) -> None:
    """End a request that outlived `REQUEST_DEADLINE`: its handler's next read or write fails."""
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


class _BoundedServer(WSGIServer):
    """One daemon thread per request, at most `WORKERS` at once."""

    request_queue_size = 128  # the listen backlog: connections beyond the workers get their 503 fast

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(WORKERS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Every worker is busy (slow clients, a flood): answer from the accepting thread, at
            # once, without reading the request; a small write to a fresh socket does not block.
            with contextlib.suppress(OSError):
                request.sendall(BUSY)
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True).start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        cut = threading.Timer(REQUEST_DEADLINE, _cut, args=(request,))
        cut.daemon = True
        cut.start()
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - logged by the server, as socketserver does
            self.handle_error(request, client_address)
        finally:
            cut.cancel()
            self.shutdown_request(request)
            self._slots.release()


    def handle_error(self, request: Any, client_address: Any) -> None:
        # A read that timed out, a client that hung up: the connection is closed, nothing else.
        log.debug("request from %s failed", client_address, exc_info=True)


class _QuietHandler(WSGIRequestHandler):
    timeout = READ_TIMEOUT  # set on the socket before the request line is read

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port`, `:port` or `port` -> (host, port); an empty host listens on every interface."""
    host, _, port = listen.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. 0.0.0.0:8080") from None
    return host or "0.0.0.0", number


class HttpServer:
    """Serve `router` on `listen` in a background thread until `stop()`."""

    def __init__(self, router: Router, listen: str) -> None:
        host, port = parse_listen(listen)
        self.router = router
        self._server = make_server(
            host, port, router, server_class=_BoundedServer, handler_class=_QuietHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """The address the server is bound to ("0.0.0.0": every interface)."""
        return str(self._server.server_address[0])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gitcanary-http", daemon=True)
        self._thread.start()
        log.info("serving HTTP on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
