"""Push and pull-request webhooks of GitHub, GitLab and Gitea/Forgejo: authenticate, then wake the reconciler.

A delivery only says "look now": the tick that follows reads everything from Git and the forge,
so a forged or replayed delivery could at worst cause an early tick. It still gets a 401 and
changes nothing unless it proves it knows the secret, the way its forge does:
- GitHub: `X-Hub-Signature-256` is `sha256=` and the HMAC-SHA256 of the body under the secret;
- Gitea and Forgejo: `X-Gitea-Signature` (or `X-Forgejo-Signature`) is that HMAC in hex alone;
- GitLab: `X-Gitlab-Token` is the secret itself (GitLab signs nothing; use HTTPS).
One receiver answers on every path in PATHS; the headers say which forge sent the delivery.
With replicas, a receiver whose replica does not lead passes the verified delivery on (`relay`).
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
PATHS = (PATH, "/webhooks/gitlab", "/webhooks/gitea")
WAKING_EVENTS = frozenset({"push", "pull_request", "pull_request_review", "check_suite", "status"})
# GitLab's X-Gitlab-Event and Gitea's X-Gitea-Event, in GitHub's words.
GITLAB_EVENTS = {"Push Hook": "push", "Merge Request Hook": "pull_request", "Pipeline Hook": "status"}
GITEA_EVENTS = {
    "push": "push",
    "pull_request": "pull_request",
    "pull_request_approved": "pull_request_review",
    "pull_request_rejected": "pull_request_review",
    "pull_request_sync": "pull_request",
    "status": "status",
}
# What an unauthenticated sender can make gitcanary read: a signature (GitHub, Gitea) is checked
# over the whole body, so a body is read only up to this; a larger delivery is refused unread (413)
# and the next poll sees the push. GitLab's token is checked before any byte of the body is read.
MAX_BODY = 1024 * 1024
# (event in GitHub's words, body, environ) -> None to wake here, else the (status, text) to answer.
Relay = Callable[[str, bytes, dict[str, Any]], tuple[str, str] | None]


def delivery_id(environ: dict[str, Any]) -> str:
    """The forge's id of this delivery (GitHub, Gitea, GitLab), "" when it sent none."""
    return str(
        environ.get("HTTP_X_GITHUB_DELIVERY")
        or environ.get("HTTP_X_GITEA_DELIVERY")
        or environ.get("HTTP_X_GITLAB_EVENT_UUID")
        or ""
    )


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body), header.strip())


def gitea_signature(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def authenticate(secret: bytes, body: bytes, environ: dict[str, Any]) -> str | None:
    """The delivery's event in GitHub's words ("" when it names none), or None when it does not
    prove knowledge of the secret by its forge's own header."""
    if not secret:
        return None
    gitea = environ.get("HTTP_X_GITEA_SIGNATURE") or environ.get("HTTP_X_FORGEJO_SIGNATURE")
    if gitea is not None:
        if not hmac.compare_digest(gitea_signature(secret, body), gitea.strip()):
            return None
        event = environ.get("HTTP_X_GITEA_EVENT") or environ.get("HTTP_X_FORGEJO_EVENT") or ""
        return GITEA_EVENTS.get(event, event)
    gitlab = environ.get("HTTP_X_GITLAB_TOKEN")
    if gitlab is not None:
        if not hmac.compare_digest(secret, gitlab.strip().encode()):
            return None
        event = environ.get("HTTP_X_GITLAB_EVENT", "")
        return GITLAB_EVENTS.get(event, event)
    if not verify(secret, body, environ.get("HTTP_X_HUB_SIGNATURE_256")):
        return None
    return str(environ.get("HTTP_X_GITHUB_EVENT", ""))


def present_credential(environ: dict[str, Any]) -> bool:
    """Does the delivery carry any forge's signature or token header? (Read before the body.)"""
    return any(
        environ.get(name)
        for name in (
            "HTTP_X_HUB_SIGNATURE_256",
            "HTTP_X_GITEA_SIGNATURE",
            "HTTP_X_FORGEJO_SIGNATURE",
            "HTTP_X_GITLAB_TOKEN",
        )
    )


def gitlab_token_ok(secret: bytes, environ: dict[str, Any]) -> bool:
    """False only for a GitLab delivery whose token is wrong: that needs no body to refuse."""
    signed = environ.get("HTTP_X_GITEA_SIGNATURE") or environ.get("HTTP_X_FORGEJO_SIGNATURE")
    token = environ.get("HTTP_X_GITLAB_TOKEN")
    if signed is not None or token is None:
        return True
    return hmac.compare_digest(secret, str(token).strip().encode())


class WebhookReceiver:
    """The WSGI app `gitcanary run` mounts on PATH."""

    def __init__(
        self, secret: str, wake: Callable[[], None], branch: str | None = None, relay: Relay | None = None
    ) -> None:
        self.secret = secret.encode()
        self.wake = wake
        self.branch = branch
        self.relay = relay
        self.deliveries = 0  # accepted deliveries that woke the reconciler

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return plain("405 Method Not Allowed", "POST only\n")(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        # Authentication before the body: a delivery with no credential of any forge, or with a
        # wrong GitLab token, is refused before a byte of its body is read.
        body = b""
        if not self.secret or not present_credential(environ) or not gitlab_token_ok(self.secret, environ):
            event = None
        elif length < 0 or length > MAX_BODY:
            return plain("413 Payload Too Large", f"bad length (at most {MAX_BODY} bytes)\n")(
                environ, start_response
            )
        else:
            body = environ["wsgi.input"].read(length) if length else body
            event = authenticate(self.secret, body, environ)
        if event is None:
            log.warning(
                "webhook delivery %s refused: bad or missing signature or token", delivery_id(environ) or "?"
            )
            return plain(
                "401 Unauthorized",
                "bad or missing X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token\n",
            )(environ, start_response)
        if event == "ping":
            return plain("200 OK", "pong\n")(environ, start_response)
        if event not in WAKING_EVENTS:
            return plain("202 Accepted", f"ignored event {event or '(none)'}\n")(environ, start_response)
        if event == "push" and self.branch and not self._is_tracked_push(body):
            return plain("202 Accepted", "push to another branch\n")(environ, start_response)
        relayed = self.relay(event, body, environ) if self.relay is not None else None
        if relayed is not None:
            return plain(relayed[0], relayed[1])(environ, start_response)
        self.deliveries += 1
        self.wake()
        return plain("202 Accepted", "tick scheduled\n")(environ, start_response)

    def _is_tracked_push(self, body: bytes) -> bool:
        try:
            ref = json.loads(body or b"{}").get("ref", "")
        except (ValueError, AttributeError):
            return True  # signed but unreadable: a tick is cheap, missing one is not
        return ref in ("", f"refs/heads/{self.branch}")
