"""A follower relays a verified webhook delivery to the replica that leads its repository.

With replicas, the forge's webhook reaches whichever pod the Service picks. Only the leader of a
repository ticks it, so a follower that receives (and verifies) a push passes it on at once to the
address the leader records on its Lease (`leases.ENDPOINT_ANNOTATION`, `http://POD_IP:PORT`),
instead of leaving it to the leader's next poll.

What crosses the pod network, and why it is safe:
- the delivery's body as received, signed afresh GitHub-style (`X-Hub-Signature-256`, HMAC-SHA256
  of the body under the webhook secret every replica shares), with its event in GitHub's words. No
  credential is sent: not GitLab's token (which is the secret itself), not the forge's headers. A
  copy of the request proves only "this exact body came from someone who knows the secret", which
  the leader checks as it checks any delivery; a replay of it can at worst cause one early tick.
- it goes only to an address of the form `http://IP:PORT` (an IP literal, no name to resolve, no
  path, no user) and to `/webhooks/github` there. That address is read from the Lease, which only
  subjects allowed to update Leases in gitcanary's namespace can write: gitcanary's own service
  account (its Role's one write permission) and cluster administrators, who could take the
  leadership itself anyway.
- a relayed delivery carries RELAYED_HEADER and is never relayed again (no loops between two
  replicas that each believe the other leads).
- bounded: the body is the one the receiver already accepted (at most `push_webhook.MAX_BODY`),
  the request has a TIMEOUT, and a failure is logged: the leader's poll then finds the push.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

import httpx

from gitcanary.service import push_webhook

log = logging.getLogger("gitcanary.forge")
RELAYED_HEADER = "X-Gitcanary-Relayed-By"
TIMEOUT = 3.0  # seconds; a forge waits 10 s for the answer, and the follower answers after this


def own_endpoint(bound_host: str, port: int) -> str | None:
    """Where this replica receives webhooks, for the others: `$POD_IP` (the downward API's
    `status.podIP`), else the host `--listen` names when it is an address; None otherwise."""
    for host in (os.environ.get("POD_IP", ""), bound_host):
        endpoint = checked(f"http://{_bracketed(host)}:{port}") if host else None
        hostname = urlsplit(endpoint).hostname if endpoint is not None else None
        if endpoint is not None and not ipaddress.ip_address(hostname or "").is_unspecified:
            return endpoint  # "0.0.0.0" listens everywhere but names no one
    return None


def checked(endpoint: str) -> str | None:
    """`endpoint` normalized when it is `http://IP:PORT` and nothing more, else None."""
    try:
        parts = urlsplit(endpoint.strip())
        address = ipaddress.ip_address(parts.hostname or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or port is None or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return f"http://{_bracketed(str(address))}:{port}"


def relay(endpoint: str, secret: bytes, body: bytes, event: str, delivery: str, relayed_by: str) -> str:
    """POST the delivery to the leader at `endpoint`: "" when it took it, else why not."""
    target = checked(endpoint)
    if target is None:
        return f"the leader's recorded webhook address {endpoint!r} is not http://IP:PORT"
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": push_webhook.signature(secret, body),
        RELAYED_HEADER: relayed_by,
    }
    try:
        answer = httpx.post(
            target + push_webhook.PATH, content=body, headers=headers, timeout=TIMEOUT, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        return f"{target}: {type(exc).__name__}: {exc}"
    if not answer.is_success:  # the leader answers 202; 503 when it no longer leads
        return f"{target} answered {answer.status_code}: {answer.text.strip()[:200]}"
    return ""


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
