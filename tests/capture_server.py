"""A local HTTP server that records every request and echoes what it received back in its answer.

It stands for any address: a repository-chosen one (where no credential may ever arrive) or the
operator's own backend (where credentials may go, but an echo of them must reach no output).
Every answer is a 403 whose body quotes the request's headers, path and body, so whatever
gitcanary sent comes back in the error text it will write into a failed check, a log line or a
notification error. `/token` answers like an OAuth2 token endpoint (Google's application default
credentials refresh there) with `access_token`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PLAIN = {"host", "accept", "connection", "user-agent", "content-length", "content-type", "accept-encoding"}


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """Everything the request carried, as one text to search."""
        heads = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{heads}\n\n{self.body.decode('utf-8', 'replace')}"


class CaptureServer:
    def __init__(self, access_token: str = "") -> None:
        self.requests: list[Captured] = []
        self.access_token = access_token
        self.redirect_to = ""  # set: every answer is a 307 to this origin (same path)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                captured = Captured(self.command, self.path, dict(self.headers), body)
                with server._lock:
                    server.requests.append(captured)
                if server.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.startswith("/token") and server.access_token:
                    answer: Any = {
                        "access_token": server.access_token,
                        "expires_in": 3600,
                        "token_type": "Bearer",
                    }
                    self._send(200, json.dumps(answer).encode(), "application/json")
                    return
                # Credential headers first: error texts are cut at a few hundred characters, and
                # the echo must land inside the cut to test its redaction.
                # Values alone too: `Authorization: Basic x` is masked by its shape, a bare `x` is not.
                first = [v.split()[-1] for k, v in captured.headers.items() if k.lower() not in _PLAIN and v]
                echo = "denied; you sent " + " ".join(first) + " " + captured.text()
                self._send(403, echo.encode(), "text/plain")

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 - stdlib names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> CaptureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def texts(self) -> list[str]:
        with self._lock:
            return [r.text() for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
