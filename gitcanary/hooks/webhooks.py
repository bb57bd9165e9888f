"""Calling a canary's Flagger webhooks over HTTP: Flagger's payload, `timeout`, `retries`, `disableTLS`.

A webhook is a POST of ``{name, namespace, phase, checksum, metadata}`` as JSON; any 2xx answer
passes, anything else (a non-2xx status, a timeout, a refused connection) fails with the reason.
Like Flagger's go-retryablehttp client, `retries` re-sends on connection errors, timeouts, 429 and
5xx with exponential backoff; a 4xx other than 429 is an answer, not a fault, and is not retried.
So Flagger's load tester (`/`, `/gate/approve`, `/gate/halt`, `/gate/check`, `/rollback/check`)
works as a target unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from gitcanary.core import gates, urlmap
from gitcanary.core.observations import HookResult
from gitcanary.duration import parse_duration
from gitcanary.errors import GitcanaryError
from gitcanary.redaction import redact, register_url
from gitcanary.spec.models import Canary, CanaryWebhook
from gitcanary.spec.status import CanaryStatus, Phase

log = logging.getLogger("gitcanary.hooks")

DEFAULT_TIMEOUT = "10s"  # Flagger's default for a webhook without `timeout`
EVENT_TIMEOUT = "5s"

# Hooks that act (run a test, start load): called once per step, not again when the same step is
# decided again after a push was rejected. Gates and rollback hooks are questions, asked each time.
ONCE_PER_STEP = (gates.PRE_ROLLOUT, gates.ROLLOUT)


class WebhookError(GitcanaryError):
    """A webhook did not answer 2xx (after its retries); the message says what it answered."""


class _Transient(Exception):
    """A 429 or 5xx answer: worth another try when `retries` allows."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per setting: building one loads the CA bundle, far slower than a local call."""
    return httpx.create_ssl_context(verify=verify)


def checksum(status: CanaryStatus | None) -> str:
    """Flagger's payload checksum identifies the revision under analysis (its lastAppliedSpec)."""
    spec = status.last_applied_spec if status is not None else ""
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def payload(canary: Canary, phase: str, status: CanaryStatus | None, metadata: Mapping[str, Any]) -> dict:
    return {
        "name": canary.name,
        "namespace": canary.namespace,
        "phase": phase,
        "checksum": checksum(status),
        "metadata": {str(k): str(v) for k, v in metadata.items()},
    }


def _describe(response: httpx.Response) -> str:
    body = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {body[:200]}" if body else "")


def post_json(
    url: str,
    body: Mapping[str, Any],
    *,
    timeout: float,
    retries: int = 0,
    verify: bool = True,
    proxy: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST `body` as JSON; the 2xx response, or WebhookError saying what went wrong."""

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, httpx.TransportError | _Transient)

    def once(client: httpx.Client) -> httpx.Response:
        response = client.post(url, json=body)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(response)
        return response

    retrying = Retrying(
        stop=stop_after_attempt(max(retries, 0) + 1),
        wait=wait_exponential(multiplier=1, min=1, max=30),
        retry=retry_if_exception(transient),
        sleep=sleep,
        reraise=True,
    )
    attempts = max(retries, 0) + 1
    try:
        with httpx.Client(timeout=timeout, verify=_ssl_context(verify), proxy=proxy) as client:
            response = retrying(once, client)
    except _Transient as exc:
        raise WebhookError(f"{_describe(exc.response)} (after {attempts} attempts)") from exc
    except httpx.TimeoutException as exc:
        raise WebhookError(f"no answer within {timeout:g}s (after {attempts} attempts)") from exc
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc} (after {attempts} attempts)") from exc
    except (httpx.InvalidURL, ValueError) as exc:  # a malformed url or proxy: no attempt was made
        raise WebhookError(f"not a valid URL: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise WebhookError(_describe(response))
    return response


def call(
    canary: Canary,
    hook: CanaryWebhook,
    phase: str,
    status: CanaryStatus | None,
    *,
    metadata: Mapping[str, Any] | None = None,
    default_timeout: str = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> None:
    """Call one webhook of `canary` with Flagger's payload; WebhookError when it does not pass.

    `deadline` (monotonic) is the analysis deadline the call belongs to, if any: it bounds the call.
    """
    # The URL's userinfo is a credential: masked wherever it may come back (an error, an echo).
    register_url(hook.url)
    body = payload(canary, phase, status, metadata if metadata is not None else hook.metadata)
    timeout = parse_duration(hook.timeout or default_timeout)
    # Called within a canary's analysis (service/analyses.py): its deadline bounds the call too, so a
    # hook that hangs costs its own canary's analysis, as a failed hook with the reason, no more.
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left <= 0:
        raise WebhookError("not called: the analysis deadline passed")
    # Where the URL is chosen: an in-cluster name goes where --rewrite-url says it is reached from here.
    url = urlmap.rewrite(hook.url)
    try:
        post_json(
            url,
            body,
            timeout=timeout if left is None else min(timeout, left),
            retries=hook.retries,
            verify=not hook.disable_tls,
            sleep=sleep,
        )
    except WebhookError as exc:
        if deadline is not None and time.monotonic() >= deadline:
            raise WebhookError("no answer within the analysis deadline") from exc
        raise


class WebhookRunner:
    """Runs the hooks of one type for a canary and sums their answers up as a `HookResult`."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep
        # canary key -> (step fingerprint, outcomes of ONCE_PER_STEP hooks for that step)
        self._done: dict[str, tuple[str, dict[str, HookResult]]] = {}
        self.calls = 0  # webhook calls made (for logs and tests)

    def run(
        self,
        key: str,
        canary: Canary,
        status: CanaryStatus | None,
        kinds: Iterable[str],
        last_attempt: datetime | None = None,
        asking: Callable[[str, str], None] | None = None,
        deadline: float | None = None,
    ) -> dict[str, HookResult]:
        """The outcome of each hook type in `kinds`; `asking(type, name)` hears of each call first;
        no call outlasts `deadline` (monotonic), the analysis' deadline."""
        results = {}
        for kind in kinds:
            step = _fingerprint(status, last_attempt if kind == gates.ROLLOUT else None)
            cached = self._done.get(key)
            if kind in ONCE_PER_STEP and cached is not None and cached[0] == step and kind in cached[1]:
                results[kind] = cached[1][kind]
                continue
            results[kind] = self._run(canary, status, kind, asking, deadline)
            if kind in ONCE_PER_STEP:
                if cached is None or cached[0] != step:
                    cached = (step, {})
                    self._done[key] = cached
                cached[1][kind] = results[kind]
        return results

    def _run(
        self,
        canary: Canary,
        status: CanaryStatus | None,
        kind: str,
        asking: Callable[[str, str], None] | None = None,
        deadline: float | None = None,
    ) -> HookResult:
        # Rollback hooks are asked in the phase the canary is in; the others as Progressing (Flagger).
        phase = status.phase.value if kind == gates.ROLLBACK and status else Phase.PROGRESSING.value
        for hook in gates.hooks_of(canary, kind):
            self.calls += 1
            if asking is not None:
                asking(kind, hook.name)
            try:
                call(canary, hook, phase, status, sleep=self.sleep, deadline=deadline)
            except WebhookError as exc:
                if kind == gates.ROLLBACK:
                    log.debug(
                        "%s: rollback hook %s not signalling a rollback: %s", canary.key, hook.name, exc
                    )
                    continue
                log.warning("%s: %s webhook %s failed: %s", canary.key, kind, hook.name, exc)
                return HookResult(kind, False, hook.name, str(exc), hook.mute_alert)
            if kind == gates.ROLLBACK:
                log.warning("%s: rollback hook %s signalled a rollback", canary.key, hook.name)
                return HookResult(kind, True, hook.name)
        # No rollback hook answered 2xx: nothing signalled (ok=False means "no rollback" for this kind).
        return HookResult(kind, kind != gates.ROLLBACK)

    def notify(
        self,
        canary: Canary,
        status: CanaryStatus,
        kind: str,
        metadata: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Fire-and-log hooks (post-rollout, event) after a push; the failures, for the log."""
        failures = []
        for hook in gates.hooks_of(canary, kind):
            # What gitcanary adds (an event's message with its check lines) is redacted like any of
            # its outputs; the hook's own metadata is the user's payload and goes as written.
            merged = {str(key): redact(str(value)) for key, value in (metadata or {}).items()}
            for name, value in hook.metadata.items():
                merged.setdefault(str(name), str(value))  # Flagger: event fields win over the hook's
            self.calls += 1
            try:
                call(
                    canary,
                    hook,
                    status.phase.value,
                    status,
                    metadata=merged if kind == gates.EVENT else None,
                    default_timeout=EVENT_TIMEOUT if kind == gates.EVENT else DEFAULT_TIMEOUT,
                    sleep=self.sleep,
                )
            except WebhookError as exc:
                failures.append(f"{kind} webhook {hook.name} failed: {exc}")
                log.warning("%s: %s webhook %s failed: %s", canary.key, kind, hook.name, exc)
        return failures


def _fingerprint(status: CanaryStatus | None, last_attempt: datetime | None) -> str:
    base = status.model_dump_json() if status is not None else ""
    return base + (last_attempt.isoformat() if last_attempt else "")
