"""Webhook calls against a real local HTTP server: Flagger's payload, timeouts, retries, non-2xx answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hook_server import HookServer, hook_server

from gitcanary.core import gates
from gitcanary.hooks.webhooks import WebhookError, WebhookRunner, call, checksum
from gitcanary.spec.models import Canary, CanaryWebhook
from gitcanary.spec.status import CanaryStatus, Phase

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[HookServer]:
    with hook_server() as running:
        yield running


def canary(*hooks: dict) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "webhooks": list(hooks)},
            },
        }
    )


def status(phase: Phase = Phase.PROGRESSING, weight: int = 10) -> CanaryStatus:
    return CanaryStatus(
        phase=phase,
        canary_weight=weight,
        last_applied_spec="sha256:new",
        last_promoted_spec="sha256:old",
        primary_revision="6.1.0",
        canary_revision="6.1.1",
        last_transition_time=NOW,
    )


def hook(url: str, **extra: object) -> CanaryWebhook:
    return CanaryWebhook.model_validate({"name": "load-test", "url": url, **extra})


def test_payload_is_flaggers(server: HookServer) -> None:
    c = canary()
    call(
        c,
        hook(f"{server.url}/", metadata={"cmd": "hey -z 1m http://podinfo-canary.test:9898/"}),
        "Progressing",
        status(),
    )
    [request] = server.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": checksum(status()),
        "metadata": {"cmd": "hey -z 1m http://podinfo-canary.test:9898/"},
    }
    # The checksum identifies the revision under analysis: it moves with lastAppliedSpec only.
    assert checksum(status(weight=30)) == checksum(status())
    assert checksum(status().model_copy(update={"last_applied_spec": "sha256:newer"})) != checksum(status())


def test_timeout_fails_with_the_reason(server: HookServer) -> None:
    server.script("/slow", [200], delay=3.0)  # it would pass, were the client to wait that long
    with pytest.raises(WebhookError, match=r"no answer within 1s \(after 1 attempts\)"):
        call(canary(), hook(f"{server.url}/slow", timeout="1s"), "Progressing", status())


def test_retries_on_5xx_then_passes(server: HookServer) -> None:
    server.script("/flaky", [500, 503, 200])
    waits: list[float] = []
    call(canary(), hook(f"{server.url}/flaky", retries=2), "Progressing", status(), sleep=waits.append)
    assert len(server.posted("/flaky")) == 3
    assert len(waits) == 2 and all(w >= 1 for w in waits)  # backoff between attempts, injected here


def test_retries_run_out(server: HookServer) -> None:
    server.script("/down", [503])
    with pytest.raises(WebhookError, match=r"HTTP 503: status 503 \(after 3 attempts\)"):
        call(canary(), hook(f"{server.url}/down", retries=2), "Progressing", status(), sleep=lambda _: None)
    assert len(server.posted("/down")) == 3


def test_a_4xx_is_an_answer_not_retried(server: HookServer) -> None:
    with pytest.raises(WebhookError, match="HTTP 403: Forbidden"):
        call(
            canary(),
            hook(f"{server.url}/gate/halt", retries=3),
            "Progressing",
            status(),
            sleep=lambda _: None,
        )
    assert len(server.posted("/gate/halt")) == 1


def test_refused_connection_fails() -> None:
    with hook_server() as gone:
        url = gone.url  # stopped on leaving: nothing listens there any more
    with pytest.raises(WebhookError, match="ConnectError"):
        call(canary(), hook(f"{url}/", retries=1), "Progressing", status(), sleep=lambda _: None)


def test_runner_stops_at_the_first_failure_and_names_it(server: HookServer) -> None:
    c = canary(
        {"name": "smoke", "type": "pre-rollout", "url": f"{server.url}/ok"},
        {"name": "conformance", "type": "pre-rollout", "url": f"{server.url}/gate/halt", "muteAlert": True},
        {"name": "never", "type": "pre-rollout", "url": f"{server.url}/never"},
    )
    result = WebhookRunner().run("test/podinfo", c, status(weight=0), [gates.PRE_ROLLOUT])[gates.PRE_ROLLOUT]
    assert (result.ok, result.name, result.mute_alert) == (False, "conformance", True)
    assert result.line == "pre-rollout webhook conformance failed: HTTP 403: Forbidden"
    assert server.posted("/never") == []


def test_pre_rollout_is_called_once_per_step(server: HookServer) -> None:
    """A step decided again (its push was rejected) reuses the answer; the next step calls again."""
    c = canary({"name": "smoke", "type": "pre-rollout", "url": f"{server.url}/smoke"})
    runner = WebhookRunner()
    first = status(weight=0)
    for _ in range(3):
        assert runner.run("test/podinfo", c, first, [gates.PRE_ROLLOUT])[gates.PRE_ROLLOUT].ok
    assert len(server.posted("/smoke")) == 1
    runner.run("test/podinfo", c, first.model_copy(update={"failed_checks": 1}), [gates.PRE_ROLLOUT])
    assert len(server.posted("/smoke")) == 2


def test_gates_are_asked_every_time(server: HookServer) -> None:
    c = canary({"name": "approval", "type": "confirm-promotion", "url": f"{server.url}/gate/check"})
    runner = WebhookRunner()
    closed = runner.run("test/podinfo", c, status(), [gates.CONFIRM_PROMOTION])[gates.CONFIRM_PROMOTION]
    assert not closed.ok
    httpx.post(f"{server.url}/gate/open", json={"name": "podinfo", "namespace": "test"})
    opened = runner.run("test/podinfo", c, status(), [gates.CONFIRM_PROMOTION])[gates.CONFIRM_PROMOTION]
    assert opened.ok
    assert len(server.posted("/gate/check")) == 2


def test_rollback_hook_signals_with_2xx(server: HookServer) -> None:
    c = canary({"name": "manual", "type": "rollback", "url": f"{server.url}/rollback/check"})
    runner = WebhookRunner()
    waiting = status(Phase.WAITING_PROMOTION)
    assert not runner.run("test/podinfo", c, waiting, [gates.ROLLBACK])[gates.ROLLBACK].ok
    httpx.post(f"{server.url}/rollback/open", json={"name": "podinfo", "namespace": "test"})
    signal = runner.run("test/podinfo", c, waiting, [gates.ROLLBACK])[gates.ROLLBACK]
    assert (signal.ok, signal.name) == (True, "manual")
    # Rollback hooks are told the phase the canary is in.
    assert server.posted("/rollback/check")[-1]["phase"] == "WaitingPromotion"


def test_event_hooks_merge_metadata(server: HookServer) -> None:
    c = canary({"name": "audit", "type": "event", "url": f"{server.url}/events", "metadata": {"team": "web"}})
    failures = WebhookRunner().notify(
        c, status(), gates.EVENT, {"eventMessage": "Advance canary weight 10", "eventType": "Normal"}
    )
    assert failures == []
    [body] = server.posted("/events")
    assert body["metadata"] == {
        "eventMessage": "Advance canary weight 10",
        "eventType": "Normal",
        "team": "web",
    }
    assert body["phase"] == "Progressing"


def test_a_malformed_url_is_a_failed_call_not_a_crash() -> None:
    with pytest.raises(WebhookError, match="not a valid URL"):
        call(canary(), hook("http://exa mple.invalid:port/"), "Progressing", status())
