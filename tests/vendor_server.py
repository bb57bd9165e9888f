"""A local stand-in for a metrics vendor's HTTP API that checks every request and every response.

Used where no server of the vendor can run here (Datadog, New Relic, Dynatrace). A test gives the
stand-in an `answer(request) -> Reply` function; the stand-in
- checks the request against the operation in the vendor's published OpenAPI description
  (`tests/data/<vendor>/...`, source and commit named inside): path, required query parameters and
  their types, and the API-key headers its security schemes name; a request that breaks it gets a
  400 and is recorded in `errors`;
- checks each JSON response body against that operation's response schema for the status, and
  records any mismatch in `errors` (so a test's canned answer cannot drift from the real API).
Tests assert `errors == []` at the end.

It also serves the misbehaviours a real network has: `Reply(drip=...)` sends the body one byte at
a time with a pause, `Reply(raw=...)` sends bytes as they are.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_schema_validator import OAS30Validator

DATA = Path(__file__).parent / "data"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless raw is given
    raw: bytes | None = None
    drip: float = 0.0  # seconds between bytes
    content_type: str = "application/json"
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    headers: dict[str, str] = field(default_factory=dict)  # more headers (Content-Encoding: gzip)


@dataclass
class Spec:
    """One OpenAPI operation: `path` in the description, `method`, the description itself."""

    document: dict[str, Any]
    path: str
    method: str = "get"

    @classmethod
    def load(cls, relative: str, path: str, method: str = "get") -> Spec:
        return cls(json.loads((DATA / relative).read_text()), path, method)

    @property
    def operation(self) -> dict[str, Any]:
        operation: dict[str, Any] = self.document["paths"][self.path][self.method]
        return operation

    def resolve(self, node: Any) -> Any:
        """`node`, or what its local `$ref` points at (one level: schemas may be recursive)."""
        while isinstance(node, dict) and "$ref" in node:
            _, *parts = node["$ref"].split("/")
            target: Any = self.document
            for part in parts:
                target = target[part]
            node = target
        return node

    def validator(self, schema: dict[str, Any]) -> OAS30Validator:
        """A validator for `schema`, closed (see `closed`), whose `#/components/...` references
        resolve in the description (closed too)."""
        components = closed(self.document.get("components", {}))
        return OAS30Validator({**closed(schema), "components": components})

    def request_problems(self, request: Request, prefix: str = "") -> list[str]:
        problems = []
        pattern = re.escape(prefix) + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(self.path))
        if not re.fullmatch(pattern, request.path) or request.method.lower() != self.method:
            return [f"{request.method} {request.path} is not {self.method.upper()} {prefix}{self.path}"]
        body_schema = (
            self.resolve(self.operation.get("requestBody", {})).get("content", {}).get("application/json", {})
        ).get("schema")
        if body_schema is not None:
            try:
                sent = json.loads(request.body or b"null")
            except ValueError:
                return ["request body is not JSON"]
            problems += [
                f"request body at {'/'.join(map(str, e.path))}: {e.message}"
                for e in self.validator(self.resolve(body_schema)).iter_errors(sent)
            ]
        parameters = [self.resolve(p) for p in self.operation.get("parameters", [])]
        described = {p["name"] for p in parameters if p.get("in") == "query"}
        # A query parameter the operation does not describe: the vendor ignores it (or refuses it),
        # so the client meant something that does not happen.
        problems += [f"query parameter {n} is not described" for n in request.params if n not in described]
        for parameter in parameters:
            if parameter.get("in") != "query":
                continue
            name = parameter["name"]
            if name not in request.params:
                if parameter.get("required"):
                    problems.append(f"missing required query parameter {name}")
                continue
            value: Any = request.params[name]
            schema = parameter.get("schema", {})
            if schema.get("type") == "integer":
                try:
                    value = int(value)
                except ValueError:
                    problems.append(f"query parameter {name}={value!r} is not an integer")
                    continue
            for error in self.validator(schema).iter_errors(value):
                problems.append(f"query parameter {name}: {error.message}")
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        for requirement in self.operation.get("security", []):
            names = [
                schemes[n]["name"] for n in requirement if n in schemes and schemes[n].get("in") == "header"
            ]
            if names and all(n.lower() in request.headers for n in names):
                break
            oauth = [n for n in requirement if schemes.get(n, {}).get("type") == "oauth2"]
            if oauth and request.headers.get("authorization", "").startswith("Bearer "):
                break
        else:
            if self.operation.get("security"):
                problems.append("no security requirement satisfied (API key headers missing)")
        return problems

    def response_problems(self, status: int, body: Any) -> list[str]:
        responses = self.operation.get("responses", {})
        described = responses.get(str(status)) or responses.get("default")
        if described is None:
            return [f"status {status} is not described for {self.method.upper()} {self.path}"]
        content = self.resolve(described).get("content", {})
        schema = next((v.get("schema") for k, v in content.items() if k.startswith("application/json")), None)
        if schema is None:
            return []
        return [
            f"response {status} at {'/'.join(map(str, e.path))}: {e.message}"
            for e in self.validator(self.resolve(schema)).iter_errors(body)
        ]


def closed(schema: Any) -> Any:
    """`schema` with every object that lists its properties and says nothing of others closed
    (`additionalProperties: false`), through `properties`, `items`, `oneOf`/`anyOf` and the
    components; `allOf` parts stay open, each listing only some of the properties. The vendors'
    descriptions mostly leave objects open, so their clients tolerate new fields; a stand-in's own
    request checks and canned answers must not use a key the description lacks (a misspelt key
    would otherwise validate), and a description that closes an object stays closed."""
    if isinstance(schema, list):
        return [closed(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "allOf":
            out[key] = value
        elif key in ("properties", "schemas"):
            out[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "oneOf", "anyOf"):
            out[key] = closed(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out and "allOf" not in out:
        out["additionalProperties"] = False
    return out


@dataclass
class VendorServer:
    answer: Callable[[Request], Reply]
    spec: Spec | None = None
    prefix: str = ""  # the address's path, stripped before matching the description's path template
    # Paths outside the described operation (an OAuth token endpoint), each checking its own requests.
    extra: dict[str, Callable[[Request], Reply]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        request = Request(
            handler.command,
            split.path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            {k.lower(): v for k, v in handler.headers.items()},
            handler.rfile.read(length) if length else b"",
        )
        self.requests.append(request)
        if request.path in self.extra:
            self._send(handler, self.extra[request.path](request))
            return
        if self.spec is not None:
            problems = self.spec.request_problems(request, self.prefix)
            if problems:
                self.errors.extend(problems)
                self._send(handler, Reply(400, {"errors": problems}))
                return
        reply = self.answer(request)
        if self.spec is not None and reply.raw is None and reply.body is not None:
            self.errors.extend(self.spec.response_problems(reply.status, reply.body))
        self._send(handler, reply)

    def _send(self, handler: http.server.BaseHTTPRequestHandler, reply: Reply) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if not reply.drip and reply.declare_length:
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if reply.drip:
                for byte in data:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(reply.drip)
            else:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should on a dripping or oversized answer


def serve(server: VendorServer) -> Iterator[VendorServer]:
    """Run `server` on a loopback port for the duration of a fixture."""
    owner = server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            owner.handle(self)

        def do_POST(self) -> None:
            owner.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
