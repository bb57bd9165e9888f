"""GitHub's push and pull_request webhooks: verify the signature, then wake the reconciler.

A delivery only says "look now": the tick that follows reads everything from Git and the forge,
so a forged or replayed delivery could at worst cause an early tick. It still gets a 401 and
changes nothing unless its `X-Hub-Signature-256` is the HMAC-SHA256 of the body under the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from gitcanary.service.http import StartResponse, plain

log = logging.getLogger("gitcanary.forge")
PATH = "/webhooks/github"
WAKING_EVENTS = frozenset({"push", "pull_request", "pull_request_review", "check_suite", "status"})
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body), header.strip())


class WebhookReceiver:
    """The WSGI app `gitcanary run` mounts on PATH."""

    def __init__(self, secret: str, wake: Callable[[], None], branch: str | None = None) -> None:
        self.secret = secret.encode()
        self.wake = wake
        self.branch = branch
        self.deliveries = 0  # accepted deliveries that woke the reconciler

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return plain("405 Method Not Allowed", "POST only\n")(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return plain("413 Payload Too Large", "bad length\n")(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        if not verify(self.secret, body, environ.get("HTTP_X_HUB_SIGNATURE_256")):
            log.warning(
                "webhook delivery %s refused: bad or missing signature",
                environ.get("HTTP_X_GITHUB_DELIVERY", "?"),
            )
            return plain("401 Unauthorized", "bad or missing X-Hub-Signature-256\n")(environ, start_response)
        event = environ.get("HTTP_X_GITHUB_EVENT", "")
        if event == "ping":
            return plain("200 OK", "pong\n")(environ, start_response)
        if event not in WAKING_EVENTS:
            return plain("202 Accepted", f"ignored event {event or '(none)'}\n")(environ, start_response)
        if event == "push" and self.branch and not self._is_tracked_push(body):
            return plain("202 Accepted", "push to another branch\n")(environ, start_response)
        self.deliveries += 1
        self.wake()
        return plain("202 Accepted", "tick scheduled\n")(environ, start_response)

    def _is_tracked_push(self, body: bytes) -> bool:
        try:
            ref = json.loads(body or b"{}").get("ref", "")
        except (ValueError, AttributeError):
            return True  # signed but unreadable: a tick is cheap, missing one is not
        return ref in ("", f"refs/heads/{self.branch}")
