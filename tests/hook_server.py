"""A real local HTTP server for webhook and notification tests: it records every request it gets.

It answers like Flagger's load tester (`pkg/loadtester/server.go`) on its gate endpoints, so tests
exercise what a Flagger user points their hooks at:
- `/gate/approve` 200, `/gate/halt` 403;
- `/gate/check` 200 once `/gate/open` was posted for that canary (`name.namespace`), else 403;
  `/gate/open` and `/gate/close` answer 202;
- `/rollback/check` 200 once `/rollback/open` was posted for that canary, else 403.
Any other path answers 200, unless the test scripted answers for it with `script(path, ...)`:
a list of statuses (the last one repeats) and an optional delay before answering.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON


class HookServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.gates: dict[str, bool] = {}
        self.rollbacks: dict[str, bool] = {}
        self._scripts: dict[str, tuple[list[int], float]] = {}
        self._callbacks: dict[str, Callable[[Any], None]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                status, delay = server._answer(self.path, body)
                callback = server._callbacks.get(self.path)
                if callback is not None:
                    callback(body)  # e.g. a person pushing while gitcanary waits for this answer
                with server._lock:
                    server.requests.append(Request(self.path, dict(self.headers), body))
                if delay:
                    time.sleep(delay)
                text = {200: "Approved", 202: "Accepted", 403: "Forbidden"}.get(status, f"status {status}")
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def script(self, path: str, statuses: list[int], delay: float = 0.0) -> None:
        self._scripts[path] = (list(statuses), delay)

    def on(self, path: str, callback: Callable[[Any], None]) -> None:
        """Run `callback(body)` for each request to `path`, before answering it."""
        self._callbacks[path] = callback

    def posted(self, path: str) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests if r.path == path]

    def _answer(self, path: str, body: Any) -> tuple[int, float]:
        key = f"{body.get('name')}.{body.get('namespace')}" if isinstance(body, dict) else ""
        with self._lock:
            if path in self._scripts:
                statuses, delay = self._scripts[path]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                return status, delay
            match path:
                case "/gate/approve":
                    return 200, 0
                case "/gate/halt":
                    return 403, 0
                case "/gate/check":
                    return (200 if self.gates.get(key) else 403), 0
                case "/gate/open" | "/gate/close":
                    self.gates[key] = path == "/gate/open"
                    return 202, 0
                case "/rollback/check":
                    return (200 if self.rollbacks.get(key) else 403), 0
                case "/rollback/open" | "/rollback/close":
                    self.rollbacks[key] = path == "/rollback/open"
                    return 202, 0
            return 200, 0

    def start(self) -> HookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def hook_server() -> Iterator[HookServer]:
    server = HookServer().start()
    try:
        yield server
    finally:
        server.stop()
