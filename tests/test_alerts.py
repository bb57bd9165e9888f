"""Notifications through Flagger AlertProviders, posted to a real local HTTP server acting as the sink."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import EXAMPLES
from hook_server import HookServer, hook_server

from gitcanary.commands.validate import validate as validate_repo
from gitcanary.core import gates
from gitcanary.core.observations import Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.errors import SpecError
from gitcanary.hooks.alerts import AlertError, Notice, Notifier, Secrets, endpoint, env_name, wanted
from gitcanary.hooks.announce import Hooks
from gitcanary.manifests import yamlio
from gitcanary.spec.load import load_alert_provider
from gitcanary.spec.models import AlertProvider, Canary
from gitcanary.spec.status import CanaryStatus, Phase

FAILED = ("request-success-rate 90.02 < 99 failed",)


@pytest.fixture
def sink() -> Iterator[HookServer]:
    with hook_server() as running:
        yield running


@pytest.mark.parametrize(
    ("alert", "severity", "sent"),
    [
        ("info", "info", True),
        ("info", "warn", True),
        ("info", "error", True),
        ("", "info", True),  # Flagger's default severity is info
        ("warn", "info", False),
        ("warn", "warn", True),
        ("warn", "error", True),
        ("error", "info", False),
        ("error", "warn", False),
        ("error", "error", True),
    ],
)
def test_severity_filter_is_flaggers(alert: str, severity: str, sent: bool) -> None:
    assert wanted(alert, severity) is sent


def provider(name: str, kind: str, **spec: object) -> AlertProvider:
    annotations = {}
    if kind == "generic":
        annotations["gitcanary.io/provider-type"] = "generic"
        kind = "slack"
    doc = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": "prod", "annotations": annotations},
        "spec": {"type": kind, **spec},
    }
    return load_alert_provider(doc, f"apps/alerts/{name}.yaml")


def canary(*alerts: tuple[str, str]) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "backend", "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 10,
                    "alerts": [
                        {"name": f"to-{ref}", "severity": severity, "providerRef": {"name": ref}}
                        for ref, severity in alerts
                    ],
                },
            },
        }
    )


def notice(c: Canary, severity: str = "warn") -> Notice:
    return Notice(
        canary=c,
        severity=severity,
        message="Halt advancement: request-success-rate 90.02 < 99 failed",
        action="halt",
        phase="Progressing",
        weight=10,
        primary_revision="6.1.1",
        canary_revision="6.1.2",
        failed=FAILED,
        commit="0123456789abcdef0123456789abcdef01234567",
        commit_url="https://github.com/acme/fleet/commit/0123456789abcdef0123456789abcdef01234567",
        pr_url="https://github.com/acme/fleet/pull/7",
    )


def test_each_provider_type_gets_its_format(sink: HookServer, tmp_path: Path) -> None:
    providers = {
        p.key: p
        for p in (
            provider(
                "slack", "slack", channel="#deploys", username="canary-bot", address=f"{sink.url}/slack"
            ),
            provider("teams", "msteams", address=f"{sink.url}/teams"),
            provider("discord", "discord", address=f"{sink.url}/discord"),
            provider("json", "generic", address=f"{sink.url}/json"),
        )
    }
    c = canary(("slack", "info"), ("teams", "warn"), ("discord", "warn"), ("json", "info"))
    notifier = Notifier(Secrets(tmp_path, {}), sleep=lambda _: None)
    assert notifier.send(notice(c), providers) == []

    [slack] = sink.posted("/slack")
    assert slack["channel"] == "#deploys" and slack["username"] == "canary-bot"
    attachment = slack["attachments"][0]
    assert attachment["color"] == "#daa038" and attachment["author_name"] == "backend.prod"
    assert "request-success-rate 90.02 < 99 failed" in attachment["text"]
    assert attachment["title_link"].endswith("/commit/0123456789abcdef0123456789abcdef01234567")
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Versions"] == "6.1.1 -> 6.1.2" and fields["Weight"] == "10%"
    assert fields["Pull request"] == "https://github.com/acme/fleet/pull/7"

    [teams] = sink.posted("/teams")
    assert teams["@type"] == "MessageCard" and teams["summary"].startswith("backend.prod: Halt advancement")
    facts = {f["name"]: f["value"] for f in teams["sections"][0]["facts"]}
    assert facts["Canary"] == "prod/backend" and facts["Failed checks"] == FAILED[0]
    assert [a["name"] for a in teams["potentialAction"]] == ["View commit", "View pull request"]

    [discord] = sink.posted("/discord")
    embed = discord["embeds"][0]
    assert embed["color"] == 0xDAA038 and embed["url"].endswith("0123456789abcdef0123456789abcdef01234567")
    assert "6.1.1 -> 6.1.2 at 10% (Progressing)" in embed["description"]

    [generic] = sink.posted("/json")
    assert generic == {
        "canary": "prod/backend",
        "name": "backend",
        "namespace": "prod",
        "severity": "warn",
        "message": "Halt advancement: request-success-rate 90.02 < 99 failed",
        "action": "halt",
        "phase": "Progressing",
        "weight": 10,
        "primaryRevision": "6.1.1",
        "canaryRevision": "6.1.2",
        "failedChecks": list(FAILED),
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "commitUrl": "https://github.com/acme/fleet/commit/0123456789abcdef0123456789abcdef01234567",
        "pullRequestUrl": "https://github.com/acme/fleet/pull/7",
        "channel": "",
        "username": "",
    }


def test_severity_filter_applies_per_alert(sink: HookServer, tmp_path: Path) -> None:
    providers = {p.key: p for p in (provider("oncall", "generic", address=f"{sink.url}/oncall"),)}
    c = canary(("oncall", "error"))
    notifier = Notifier(Secrets(tmp_path, {}), sleep=lambda _: None)
    notifier.send(notice(c, "warn"), providers)
    assert sink.posted("/oncall") == []
    notifier.send(notice(c, "error"), providers)
    assert [body["severity"] for body in sink.posted("/oncall")] == ["error"]


def test_secret_ref_reads_env_then_file(sink: HookServer, tmp_path: Path) -> None:
    ref = provider("slack", "slack", secretRef={"name": "slack-url"})
    (tmp_path / "prod" / "slack-url").mkdir(parents=True)
    (tmp_path / "prod" / "slack-url" / "address").write_text(f"{sink.url}/from-file\n")
    assert endpoint(ref, Secrets(tmp_path, {})) == (f"{sink.url}/from-file", None)
    assert env_name("prod", "slack-url", "address") == "GITCANARY_SECRET_PROD_SLACK_URL_ADDRESS"
    env = {"GITCANARY_SECRET_PROD_SLACK_URL_ADDRESS": f"{sink.url}/from-env"}
    assert endpoint(ref, Secrets(tmp_path, env)) == (f"{sink.url}/from-env", None)
    Notifier(Secrets(tmp_path, env), sleep=lambda _: None).send(
        notice(canary(("slack", "info"))), {ref.key: ref}
    )
    assert len(sink.posted("/from-env")) == 1 and sink.posted("/from-file") == []


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    ref = provider("slack", "slack", secretRef={"name": "slack-url"})
    with pytest.raises(AlertError) as caught:
        endpoint(ref, Secrets(tmp_path, {}))
    assert str(caught.value) == (
        "AlertProvider prod/slack: spec.secretRef slack-url: no address in "
        f"$GITCANARY_SECRET_PROD_SLACK_URL_ADDRESS or {tmp_path}/prod/slack-url/address"
    )
    # A rollout never stops for a notification: the error is returned (and logged), not raised.
    errors = Notifier(Secrets(tmp_path, {})).send(notice(canary(("slack", "info"))), {ref.key: ref})
    assert errors == [f"prod/backend: alert to-slack: {caught.value}"]


def test_a_refusing_sink_is_reported(sink: HookServer, tmp_path: Path) -> None:
    sink.script("/teams", [400])
    providers = {p.key: p for p in (provider("teams", "msteams", address=f"{sink.url}/teams"),)}
    errors = Notifier(Secrets(tmp_path, {}), sleep=lambda _: None).send(
        notice(canary(("teams", "info"))), providers
    )
    assert errors == ["prod/backend: alert to-teams: HTTP 400: status 400"]


def test_alert_provider_is_checked_against_flaggers_crd() -> None:
    with pytest.raises(SpecError, match=r"apps/alerts/x.yaml: spec.type: 'telegram' is not one of"):
        provider("x", "telegram", address="http://example.invalid/")
    with pytest.raises(SpecError, match=r"apps/alerts/y.yaml: spec: needs one of address, secretRef"):
        provider("y", "slack")


@pytest.mark.parametrize("muted", [False, True])
def test_mute_alert_silences_a_hooks_failure(sink: HookServer, tmp_path: Path, muted: bool) -> None:
    """A failing pre-rollout hook with muteAlert halts the canary without notifying anyone."""
    doc = canary(("json", "info")).model_dump(by_alias=True)
    doc["spec"]["analysis"]["webhooks"] = [
        {"name": "smoke", "type": "pre-rollout", "url": f"{sink.url}/gate/halt", "muteAlert": muted}
    ]
    c = Canary.model_validate(doc)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    current = CanaryStatus(
        phase=Phase.PROGRESSING,
        last_applied_spec="new",
        last_promoted_spec="old",
        primary_revision="6.1.0",
        canary_revision="6.1.1",
        last_transition_time=now,
    )
    hooks = Hooks(secrets_dir=tmp_path, sleep=lambda _: None, environ={})
    obs = Observation(now.replace(minute=5), "new", "6.1.1")
    asked = decide(c, current, obs)
    found = hooks.call("prod/backend", c, current, obs, asked.hooks)
    decision = decide(c, current, replace(obs, hooks=found))
    assert decision.action is Action.HALT and asked.hooks == (gates.PRE_ROLLOUT,)
    providers = {p.key: p for p in (provider("json", "generic", address=f"{sink.url}/json"),)}
    transition = hooks.transition("prod/backend", c, current, decision, "0" * 40)
    assert hooks.announce([transition], providers) == []
    assert len(sink.posted("/json")) == (0 if muted else 1)


def test_validate_names_a_missing_provider(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "istio", repo)
    canary_file = repo / "apps" / "backend" / "canary.yaml"
    doc = yamlio.load(canary_file.read_text())
    doc["spec"]["analysis"]["alerts"] = [{"name": "team", "providerRef": {"name": "slack"}}]
    canary_file.write_text(yamlio.dump(doc))
    errors, _ = validate_repo(repo)
    assert errors == [
        "apps/backend/canary.yaml: spec.analysis.alerts[0].providerRef: "
        "no AlertProvider prod/slack in the repository"
    ]
    (repo / "apps" / "alerts.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: slack\n  namespace: prod\n"
        "spec:\n  type: slack\n  secretRef:\n    name: slack-url\n"
    )
    assert validate_repo(repo)[0] == []
