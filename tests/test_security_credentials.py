"""Credentials are bound by the operator: proved over generated repositories.

A distinct canary value sits in every credential source (see `credential_world.plant`); generated
repositories point every address field at a capture server that stands for an address the
repository chose. The invariants, for every generated repository:

- no request that reaches the repository-chosen server carries any planted value, raw or encoded
  (base64, percent- or JSON-encoded, a Basic header of a planted user and password);
- no output (check lines, notification and webhook errors, and, through the CLI: commits,
  trailers, history, audit, plan, validate, status, logs, the dashboard) holds one, even though
  both servers echo every request back in their answers.

`test_every_reader_*` drives the readers in process (analysis, notifications, webhooks) and is
cheap enough for thousands of repositories (`scripts/credential_property.py` runs the long one);
`test_every_command_*` drives the real CLI on fewer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from capture_server import CaptureServer
from credential_world import (
    NS,
    Planted,
    Repository,
    alert_doc,
    plant,
    repositories,
    template_doc,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcanary.analysis import run_analysis
from gitcanary.analysis.providers import ProviderEnv
from gitcanary.hooks import webhooks
from gitcanary.hooks.alerts import Notice, Notifier, Secrets
from gitcanary.redaction import redact
from gitcanary.service.credentials import credential_endpoints
from gitcanary.service.settings import Settings
from gitcanary.spec.models import AlertProvider, Canary, MetricTemplate

EXAMPLES = int(os.environ.get("GITCANARY_CREDENTIAL_EXAMPLES", "12"))
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class World:
    """Two capture servers (the repository's choice, the operator's backend) and planted values."""

    def __init__(self, root: Path) -> None:
        self.planted_access = "pending"
        self.operator = CaptureServer().start()
        self.chosen = CaptureServer().start()
        self.planted: Planted = plant(root, self.operator.url)
        self.operator.access_token = self.planted.values["google-access-token"]

    def stop(self) -> None:
        self.operator.stop()
        self.chosen.stop()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="gitcanary-credentials-"))
    made = World(root)
    saved = dict(os.environ)
    os.environ.update(made.planted.environ)
    try:
        yield made
    finally:
        os.environ.clear()
        os.environ.update(saved)
        made.stop()


def canary(repository: Repository, templates: list[MetricTemplate], alerts: list[AlertProvider]) -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "service": {"port": 80},
        "analysis": {
            "interval": "1m",
            "threshold": 2,
            "metrics": [
                {"name": "builtin-rate", "query": "sum(up)", "thresholdRange": {"min": 1}},
                *(
                    {"name": f"m{i}", "templateRef": {"name": t.name}, "thresholdRange": {"max": 1}}
                    for i, t in enumerate(templates)
                ),
            ],
            "alerts": [{"name": a.name, "providerRef": {"name": a.name}} for a in alerts],
            "webhooks": [{"name": f"h{i}", **hook} for i, hook in enumerate(repository.hooks)],
        },
    }
    if repository.metrics_server:
        spec["metricsServer"] = repository.metrics_server
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {
                "name": "backend",
                "namespace": NS,
                "annotations": {"gitcanary.io/source-repo": repository.metrics_server or "acme/backend"},
            },
            "spec": spec,
        }
    )


def exercise(world: World, repository: Repository) -> list[str]:
    """Every reader of credentials, as `run` wires them, over `repository`; the outputs they give."""
    planted = world.planted
    settings_ = Settings(repo=".", prometheus=planted.prometheus, secrets_dir=planted.secrets_dir)
    # Built without the loader's name checks: the secret store's own checks must hold alone.
    templates = [
        MetricTemplate.model_validate(template_doc(i, t)) for i, t in enumerate(repository.templates)
    ]
    alerts = [AlertProvider.model_validate(alert_doc(i, a)) for i, a in enumerate(repository.alerts)]
    subject = canary(repository, templates, alerts)
    secrets = Secrets(planted.secrets_dir)
    env = ProviderEnv(secrets=secrets, endpoints=credential_endpoints(settings_))
    checks = run_analysis(
        subject, {t.key: t for t in templates}, default_address=planted.prometheus, now=NOW, env=env
    )
    outputs = [check.line for check in checks]
    notice = Notice(subject, "error", "Canary analysis failed", "rollback", "Failed", 10, "1.0", "1.1",
                    failed=tuple(outputs))  # fmt: skip
    outputs += Notifier(secrets, timeout=2, sleep=lambda _: None).send(notice, {a.key: a for a in alerts})
    for hook in subject.spec.analysis.webhooks:
        try:
            webhooks.call(subject, hook, "Progressing", None, default_timeout="2s", sleep=lambda _: None)
        except webhooks.WebhookError as exc:
            outputs.append(redact(str(exc)))
    return outputs


def check_world(world: World, repository: Repository) -> None:
    world.chosen.clear()
    outputs = exercise(world, repository)
    planted = world.planted
    for text in world.chosen.texts():
        assert not planted.leaks(text), f"a repository-chosen address received {planted.leaks(text)}:\n{text}"
    for line in outputs:
        assert not planted.leaks(line), f"an output holds {planted.leaks(line)}:\n{line}"


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_reader_sends_no_credential_to_a_repository_address(world: World, data: st.DataObject) -> None:
    check_world(world, data.draw(repositories(world.chosen.url)))


def test_the_operator_backend_gets_the_credentials_and_their_echo_is_masked(world: World) -> None:
    """The other side of the binding: a secret whose `address` key names the operator's backend
    sends its credentials there (so the capture server is no sink that passes by refusing all),
    and that backend's echo of them reaches no output."""
    repository = Repository(
        templates=[
            {"kind": kind, "address": world.chosen.url, "secret": "routed", "headers": None}
            for kind in ("prometheus", "datadog", "newrelic", "graphite", "dynatrace", "splunk")
        ]
        + [{"kind": "prometheus", "address": None, "secret": "metrics", "headers": None}]
        # The operator's backend is --prometheus's origin: cloud identities may go there too.
        + [
            {"kind": kind, "address": world.operator.url, "secret": None, "headers": None}
            for kind in ("cloudwatch", "stackdriver")
        ],
        alerts=[{"kind": "slack", "address": None, "secret": "metrics", "headers": None}],
        hooks=[{"type": "rollout", "url": world.chosen.url}],
        metrics_server=None,
    )
    world.operator.clear()
    check_world(world, repository)
    received = "\n".join(world.operator.texts())
    values = world.planted.values
    for sent in ("routed-token", "routed-datadog_api_key", "routed-newrelic_query_key", "aws-key-id",
                 "google-access-token"):  # fmt: skip
        assert values[sent] in received, f"{sent} never reached the operator's backend"
    assert "POST /token" in received  # the service account's signed grant, from the ADC file
    assert "X-Amz-Security-Token: " + values["aws-session"] in received
    assert "Authorization: Basic " in received  # --prometheus's userinfo, and the store's user/password


@pytest.mark.parametrize(
    "name", ["../outside", "../../outside/loot", "/etc/passwd", "linked", "a/../../x", "", ".."]
)
def test_a_secret_name_that_is_not_a_kubernetes_name_reads_nothing(world: World, name: str) -> None:
    from gitcanary.hooks.alerts import SecretNameError

    secrets = Secrets(world.planted.secrets_dir)
    if name == "linked":  # a valid name whose directory is a symlink out of the store
        assert secrets.get(NS, name, "token") is None
        return
    with pytest.raises(SecretNameError):
        secrets.get(NS, name, "token")
