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
    HOSTILE,
    NS,
    STORE,
    Planted,
    Repository,
    alert_doc,
    git_credentials,
    plant,
    repositories,
    template_doc,
)
from hypothesis import HealthCheck, Phase, given, settings
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
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure is reported as found, unshrunk
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


def test_the_aws_identity_is_the_environment_s_as_it_is_now(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CloudWatch client made earlier in the process under another AWS environment (another
    canary's test, another library) does not choose the identity later ones sign with: the planted
    key id reaches the operator's backend after one."""

    def cloudwatch() -> None:
        only = Repository(
            templates=[
                {"kind": "cloudwatch", "address": world.operator.url, "secret": None, "headers": None}
            ],
            alerts=[],
            hooks=[],
            metrics_server=None,
        )
        check_world(world, only)

    with monkeypatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIAEARLIERCLIENTXX")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "earlier")
        patch.delenv("AWS_SESSION_TOKEN")
        cloudwatch()
    world.operator.clear()
    cloudwatch()
    received = "\n".join(world.operator.texts())
    assert world.planted.values["aws-key-id"] in received
    assert "AKIAEARLIERCLIENTXX" not in received


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


# -- the CLI: run, plan, validate, status, history, audit, the dashboard ------------------------

CLI_EXAMPLES = int(os.environ.get("GITCANARY_CREDENTIAL_CLI_EXAMPLES", "2"))


def write_repository(setup: Any, repository: Repository) -> None:
    """`repository`'s templates, alert providers, webhooks and addresses, pushed as a person would."""
    from conftest import git

    from gitcanary.manifests import yamlio

    human = setup.repo.human
    names = []
    for index, spec in enumerate(repository.templates):
        doc = template_doc(index, spec)
        names.append(doc["metadata"]["name"])
        (human / f"apps/metric-templates/{names[-1]}.yaml").write_text(yamlio.dump(doc))
    kustomization = human / "apps/metric-templates/kustomization.yaml"
    doc = yamlio.load(kustomization.read_text())
    doc["resources"] = ["error-rate.yaml", *(f"{name}.yaml" for name in names)]
    kustomization.write_text(yamlio.dump(doc))
    (human / "apps/alerts").mkdir(exist_ok=True)
    for index, spec in enumerate(repository.alerts):
        (human / f"apps/alerts/alert{index}.yaml").write_text(yamlio.dump(alert_doc(index, spec)))

    def edit(canary_doc: Any) -> None:
        analysis = canary_doc["spec"]["analysis"]
        analysis["metrics"] = [
            {"name": f"m{i}", "templateRef": {"name": name}, "thresholdRange": {"max": 1}, "interval": "1m"}
            for i, name in enumerate(names)
        ]
        analysis["alerts"] = [
            {"name": f"alert{i}", "providerRef": {"name": f"alert{i}"}} for i in range(len(repository.alerts))
        ]
        analysis["webhooks"] = [{"name": f"h{i}", **hook} for i, hook in enumerate(repository.hooks)]
        if repository.metrics_server:
            canary_doc["spec"]["metricsServer"] = repository.metrics_server
        annotations = canary_doc["metadata"].setdefault("annotations", {})
        annotations["gitcanary.io/source-repo"] = repository.metrics_server or "acme/backend"

    setup.repo.edit("apps/backend/canary.yaml", edit)
    git("add", "-A", cwd=human)
    git("commit", "-qm", "metrics, alerts and hooks at addresses of the repository's choosing", cwd=human)
    git("push", "-q", "origin", "HEAD:main", cwd=human)


def every_command(world: World, setup: Any, base: Path, dashboard: bool) -> dict[str, str]:
    """Each command's output (stdout, stderr), run with every planted credential in reach."""
    import time

    from security_cli import cli

    planted = world.planted
    home = base / "home"
    git_credentials(planted, home, world.chosen.url)
    env = {**planted.environ, "HOME": str(home)}
    remote = str(setup.repo.remote)
    common = ("--prometheus", planted.prometheus, "--secrets-dir", str(planted.secrets_dir))
    outputs: dict[str, str] = {}
    setup.repo.bump("apps/backend", "6.1.1")
    for step, log_format in enumerate(("json", "text", "json")):
        ran = setup.run_once(*common, "--log-format", log_format, env=env)
        outputs[f"run {step}"] = ran.output
        time.sleep(1.05)  # the fast canary's 1 s interval: each run takes a step
    plan = ("plan", "--repo", remote, "--cluster", "off", "--settle", "0", *common)
    outputs["plan"] = cli(*plan, cwd=base, env=env).output
    outputs["plan json"] = cli(*plan, "-o", "json", cwd=base, env=env).output
    outputs["validate"] = cli("validate", str(setup.repo.human), cwd=base, env=env).output
    for name, command in {
        "status": ("status", "--repo", remote, "-o", "json"),
        "history": ("history", "prod/backend", "--repo", remote, "-o", "json"),
        "history --verify": ("history", "--verify", "--repo", remote),
        "audit html": ("audit", "--repo", remote, "-o", "html"),
        "audit json": ("audit", "--repo", remote, "-o", "json"),
    }.items():
        outputs[name] = cli(*command, cwd=base, env=env).output
    outputs["pushed history"] = setup.remote_history()
    if dashboard:
        outputs.update(dashboard_pages(remote, base, env))
    return outputs


def dashboard_pages(remote: str, base: Path, env: dict[str, str]) -> dict[str, str]:
    import re
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", "dashboard", "--repo", remote, "--listen", "127.0.0.1:0"],
        cwd=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    pages: dict[str, str] = {}
    try:
        for line in proc.stdout:
            found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
            if found:
                for path in ("/", "/dashboard/state", "/dashboard/main"):
                    pages[f"dashboard {path}"] = httpx.get(found[1] + path, timeout=60).text
                break
    finally:
        proc.terminate()
        log, _ = proc.communicate(timeout=30)
    pages["dashboard log"] = log
    assert pages.get("dashboard /"), log
    return pages


@settings(
    max_examples=CLI_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure is reported as found, unshrunk
)
@given(data=st.data())
def test_every_command_sends_no_credential_to_a_repository_address(
    world: World, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    from security_cli import initialized

    drawn = data.draw(repositories(world.chosen.url))
    chosen = world.chosen.url
    # A template whose secretRef is no Kubernetes name is refused when loaded (its own tests above),
    # which would leave nothing to query: here every secretRef names a Secret, so every template is
    # queried. Sure to be there: a datadog template with keys aimed at the repository's address (its
    # keys must not go), a prometheus one without any (its query must go, bare), and one hook of
    # each type that is called without holding the analysis.
    repository = Repository(
        templates=[
            {"kind": "datadog", "address": chosen + "/dd", "secret": STORE, "headers": None},
            {"kind": "prometheus", "address": chosen + "/bare", "secret": None, "headers": None},
            *({**t, "secret": STORE if t["secret"] in HOSTILE else t["secret"]} for t in drawn.templates),
        ],
        alerts=[{**a, "secret": STORE if a["secret"] in HOSTILE else a["secret"]} for a in drawn.alerts],
        # Hooks that answer a question or act would hold the analysis (the server answers 403):
        # those that only hear of it are called, and the readers' test calls every type.
        hooks=[
            *({"type": kind, "url": f"{chosen}/hook-{kind}"} for kind in FIXED_HOOKS),
            *(h for h in drawn.hooks if h["type"] in FIXED_HOOKS),
        ],
        metrics_server=drawn.metrics_server,
    )
    base = tmp_path_factory.mktemp("cli")
    setup = initialized(base / "repo")
    write_repository(setup, repository)
    world.chosen.clear()
    outputs = every_command(world, setup, base, dashboard=not getattr(world, "dashboard_seen", False))
    world.dashboard_seen = True  # type: ignore[attr-defined]  # once per session: it is the slow one
    planted = world.planted
    for text in world.chosen.texts():
        assert not planted.leaks(text), f"a repository-chosen address received {planted.leaks(text)}:\n{text}"
    for name, text in outputs.items():
        assert not planted.leaks(text), f"{name} holds {planted.leaks(text)}:\n{text[-3000:]}"
    assert_analysed(world, repository, outputs)


FIXED_HOOKS = ("rollback", "event", "post-rollout")


def assert_analysed(world: World, repository: Repository, outputs: dict[str, str]) -> None:
    """The runs got as far as the property needs: the analysis asked every template (each metric
    has its check line in the pushed rollback), the credentialed request to the repository's
    address was refused by the binding and the bare one went, and every hook type was called."""
    history = outputs["pushed history"]
    assert "gitcanary: roll back prod/backend" in history, (
        f"no rollback was pushed:\n{outputs['run 2'][-3000:]}"
    )
    for index in range(len(repository.templates)):
        assert f"\nm{index} " in history, f"m{index} has no check line:\n{history[:4000]}"
    shown = world.chosen.url.removeprefix("http://")
    assert any(
        line.startswith("m0 ") and "datadog: not sending" in line and shown in line
        for line in history.splitlines()
    ), history[:4000]
    paths = [(request.method, request.path.split("?")[0]) for request in world.chosen.requests]
    assert ("GET", "/bare/api/v1/query") in paths, paths  # the query with no credential reached it
    assert not any(path.startswith("/dd") for _, path in paths), paths  # the one with keys did not
    for kind in FIXED_HOOKS:
        assert ("POST", f"/hook-{kind}") in paths, (kind, paths)
    posts = sum(1 for method, _ in paths if method == "POST")
    assert posts >= len(repository.hooks), (posts, repository.hooks)


_PATHISH = st.lists(
    st.sampled_from(["..", ".", "outside", "loot", "linked", "", "prod", "metrics", "/"]), max_size=5
)


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    namespace=st.one_of(st.just(NS), st.text(max_size=12), st.builds("/".join, _PATHISH)),
    name=st.one_of(st.text(max_size=20), st.builds("/".join, _PATHISH)),
    key=st.sampled_from(["token", "password", "username", "../token", "address"]),
)
def test_no_secret_name_reads_outside_the_store(world: World, namespace: str, name: str, key: str) -> None:
    """Whatever a repository writes as a secretRef, the store hands out nothing from outside
    `--secrets-dir` (a `../`, an absolute path, a symlink out) and refuses what is no Kubernetes name."""
    from gitcanary.hooks.alerts import SecretNameError
    from gitcanary.spec.names import _SUBDOMAIN

    outside = {v for k, v in world.planted.values.items() if k.startswith("outside")}
    secrets = Secrets(world.planted.secrets_dir, environ={})
    try:
        found = secrets.get(namespace, name, key)
    except SecretNameError:
        assert not (_SUBDOMAIN.fullmatch(name) and len(name) <= 253 and key != "../token" and namespace == NS)
        return
    assert _SUBDOMAIN.fullmatch(name), name
    assert found not in outside, (namespace, name, key)


@pytest.mark.parametrize("kind", ["MetricTemplate", "AlertProvider"])
@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a/../../x", "..", "Token", "x_y"])
def test_validate_reports_a_secret_ref_that_is_no_kubernetes_name(
    tmp_path: Path, kind: str, name: str
) -> None:
    import shutil

    from gitcanary.commands.validate import validate
    from gitcanary.manifests import yamlio

    root = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples/istio", root)
    path = root / "apps/metric-templates/error-rate.yaml"
    if kind == "MetricTemplate":
        doc = yamlio.load(path.read_text())
        doc["spec"]["provider"]["secretRef"] = {"name": name}
        field_ = "spec.provider.secretRef.name"
    else:
        path = root / "apps/metric-templates/alerts.yaml"
        doc = alert_doc(0, {"kind": "slack", "address": None, "secret": name})
        field_ = "spec.secretRef.name"
    path.write_text(yamlio.dump(doc))
    errors, _ = validate(root)
    assert any(field_ in line and "not a Kubernetes name" in line for line in errors), errors


@pytest.mark.parametrize("kind", ["prometheus", "graphite", "influxdb"])
@pytest.mark.parametrize("user", ["u", "ab", "gitcanary", "reader-01"])
def test_an_echoed_basic_header_of_a_secret_ref_is_masked(kind: str, user: str) -> None:
    """The issue's case: a metrics server answering with the `Authorization: Basic` value it got
    (bare, not after `Authorization:`) puts no base64 `user:password` into the check line."""
    import base64

    from tests.provider_checks import check, secrets, template

    password = "Pw-echo-0123456789"
    sink = CaptureServer().start()
    try:
        subject = template("t", "up", type=kind, address=sink.url, secretRef={"name": "metrics"})
        env = ProviderEnv(secrets=secrets({"username": user, "password": password}))
        result = check(subject, env=env)
    finally:
        sink.stop()
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert any(basic in text for text in sink.texts())  # it was sent, and echoed
    assert "answered HTTP 403" in result.line, result.line
    assert basic not in result.line and password not in result.line, result.line


@pytest.mark.parametrize(
    "kind", ["prometheus", "datadog", "newrelic", "graphite", "dynatrace", "splunk", "influxdb"]
)
def test_no_credential_follows_a_redirect_to_another_origin(world: World, kind: str) -> None:
    """The operator's backend answers 307 to an address of the repository's choosing: the
    credentials stay where they were allowed to go (no redirect is followed)."""
    world.chosen.clear()
    world.operator.redirect_to = world.chosen.url
    try:
        repository = Repository(
            templates=[{"kind": kind, "address": None, "secret": "routed", "headers": None}],
            alerts=[],
            hooks=[],
            metrics_server=None,
        )
        outputs = exercise(world, repository)
    finally:
        world.operator.redirect_to = ""
    assert world.chosen.requests == [], world.chosen.texts()
    assert any("307" in line for line in outputs), outputs
