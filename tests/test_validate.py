"""`gitcanary validate` reports every problem of every file at once, and every warning it prints is true."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import EXAMPLES, git
from test_cli import gitcanary

from gitcanary.commands import operations
from gitcanary.commands.validate import validate
from gitcanary.manifests import yamlio
from gitcanary.spec.load import PROVIDER_FIELDS, UNSUPPORTED_FIELDS


def seed(tmp_path: Path, example: str = "istio") -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES / example, root)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "seed", cwd=root)
    return root


BROKEN = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: prod
  annotations:
    gitcanary.io/generated-dir: ../outside
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, portt: 81}
  analysis:
    interval: 0s
    threshold: two
    stepWeight: 10
    metrics:
      - name: error-rate
        templateRef: {name: nowhere}
        thresholdRange: {min: 5, max: 1}
"""


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    root = seed(tmp_path)
    (root / "apps/web").mkdir()
    (root / "apps/web/canary.yaml").write_text(BROKEN)
    (root / "apps/web/twice.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: a\n  name: b\n"
        "spec:\n  provider: {type: prometheus}\n  query: up\n  query: down\n"
    )
    (root / "apps/metric-templates/datadog.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: dd\n  namespace: prod\n"
        "spec:\n  provider: {type: datadog, address: 'https://api.datadoghq.com'}\n  query: avg:x{*}\n"
    )
    (root / "apps/metric-templates/bare.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: bare\n  namespace: prod\n"
        "spec:\n  provider: {type: prometheus}\n  query: up\n"
    )
    (root / "apps/backend/empty.yaml").write_text("")
    canary = root / "apps/backend/canary.yaml"
    canary.write_text(
        canary.read_text().replace(
            "  name: backend\n  namespace: prod", "  name: " + "b" * 300 + "\n  namespace: prod", 1
        )
    )
    proc = gitcanary("validate", ".", cwd=root, check=False)
    assert proc.returncode == 1
    out = proc.stderr
    for expected in (
        # one file, every problem
        "apps/web/canary.yaml: spec.service.portt: unknown field",
        "apps/web/canary.yaml: spec.analysis.threshold: 'two' is not of type 'number'",
        "apps/web/canary.yaml: spec.analysis.interval: '0s' is not a positive duration",
        "apps/web/canary.yaml: spec.analysis.metrics[0].thresholdRange: min 5 > max 1",
        "apps/web/canary.yaml: metadata.annotations[\"gitcanary.io/generated-dir\"]: '../outside' leaves",
        # duplicate keys, each of them
        "apps/web/twice.yaml: line 5: duplicate key 'name'",
        "apps/web/twice.yaml: line 9: duplicate key 'query'",
        # metric providers and addresses
        "apps/metric-templates/datadog.yaml: spec.provider.secretRef: datadog needs a secret with",
        "apps/metric-templates/bare.yaml: spec.provider.address: required field is missing",
        # names
        "apps/backend/canary.yaml: metadata.name: 300 characters",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"


def test_templates_missing_and_empty_metrics(tmp_path: Path) -> None:
    root = seed(tmp_path)
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    doc["spec"]["analysis"]["metrics"][2]["templateRef"]["name"] = "gone"
    canary.write_text(yamlio.dump(doc))
    errors, _ = validate(root)
    assert any(
        "spec.analysis.metrics[2].templateRef: MetricTemplate prod/gone is not in the repository" in e
        for e in errors
    )
    doc["spec"]["analysis"]["metrics"] = []
    canary.write_text(yamlio.dump(doc))
    errors, warnings = validate(root)
    assert errors == []
    assert any("spec.analysis.metrics: is empty: no metric is checked" in w for w in warnings)


def test_symlinks_out_of_the_repository_and_in_the_generated_dir(tmp_path: Path) -> None:
    root = seed(tmp_path)
    secret = tmp_path / "secret.yaml"
    secret.write_text("flagger.app: x\n")
    operations.init(root, "apps/backend")
    os.symlink(secret, root / "apps/backend/leak.yaml")
    routing = root / "apps/backend-gitcanary/services.yaml"
    routing.unlink()
    os.symlink(root / ".git/config", routing)
    errors, _ = validate(root)
    assert any(
        e.startswith("apps/backend/leak.yaml: a symlink to") and "outside the repository" in e for e in errors
    )
    assert "apps/backend-gitcanary/services.yaml: a symlink in a generated directory" in "\n".join(errors)


def test_a_flux_path_of_the_app_alone_needs_action_even_with_a_parent_kustomization(tmp_path: Path) -> None:
    """`path: ./apps/backend` never builds apps/backend-gitcanary, though apps/kustomization.yaml lists it."""
    root = seed(tmp_path)
    flux = root / "clusters/demo/apps.yaml"
    flux.write_text(flux.read_text().replace("path: ./apps", "path: ./apps/backend"))
    git("commit", "-qam", "flux applies the app only", cwd=root)
    out = gitcanary("init", "apps/backend", cwd=root).stdout
    assert "added backend-gitcanary to apps/kustomization.yaml resources" in out
    assert "ACTION NEEDED: Flux Kustomization apps (clusters/demo/apps.yaml) applies ./apps/backend" in out
    errors, _ = validate(root)
    assert any(
        "Flux Kustomization apps (clusters/demo/apps.yaml) applies ./apps/backend" in e for e in errors
    )
    flux.write_text(flux.read_text().replace("path: ./apps/backend", "path: ./apps"))
    assert validate(root)[0] == []


# -- every warning is true ---------------------------------------------------------------------------

# A value for each field gitcanary warns it ignores: the generated objects must be byte for byte the
# ones it writes without the field (that is what "ignored" claims).
IGNORED_VALUES = {
    "spec.analysis.sessionAffinity": {"cookieName": "canary", "maxAge": 60},
    "spec.revertOnDeletion": True,
    "spec.routeRef": {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "r"},
    "spec.upstreamRef": {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "u"},
    "spec.autoscalerRef.primaryScalerQueries": {"q": "sum(up)"},
    "spec.autoscalerRef.primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 9},
    "spec.service.backends": ["other"],
    "spec.service.mirror": [{"backendRef": {"name": "shadow", "port": 80}}],
    "spec.service.delegation": True,
    "spec.service.headless": True,
    "spec.service.trafficDistribution": "PreferClose",
    "spec.service.unmanagedMetadata": {"labels": ["team"]},
    "spec.service.backendTimeout": "10s",
    "spec.service.meshName": "mesh",
}


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def generated(root: Path) -> dict[str, str]:
    base = root / "apps/backend-gitcanary"
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


def test_every_ignored_field_has_a_value_here() -> None:
    assert set(IGNORED_VALUES) == set(UNSUPPORTED_FIELDS) | set(PROVIDER_FIELDS)


def test_session_affinity_is_honoured_under_istio_and_warned_with_ab_testing(tmp_path: Path) -> None:
    """No "ignored" warning for a field Flagger's Istio router renders; with analysis.match it is not."""
    root = seed(tmp_path)
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    doc["spec"]["analysis"]["sessionAffinity"] = IGNORED_VALUES["spec.analysis.sessionAffinity"]
    canary.write_text(yamlio.dump(doc))
    git("commit", "-qam", "session affinity", cwd=root)
    errors, warnings = validate(root)
    assert errors == [] and not any("sessionAffinity" in w for w in warnings), warnings
    doc["spec"]["analysis"]["match"] = [{"headers": {"x-canary": {"exact": "on"}}}]
    doc["spec"]["analysis"].pop("stepWeight", None)
    doc["spec"]["analysis"].pop("maxWeight", None)
    doc["spec"]["analysis"]["iterations"] = 3
    canary.write_text(yamlio.dump(doc))
    git("commit", "-qam", "A/B", cwd=root)
    errors, warnings = validate(root)
    assert errors == [] and any("sessionAffinity" in w and "analysis.match" in w for w in warnings), (
        errors,
        warnings,
    )


# PROVIDER_FIELDS: ignored under the example's provider (istio) when istio does not use them;
# sessionAffinity is Istio's too, so it is rendered there (tests/test_routers_affinity.py) and not warned.
IGNORED_UNDER_ISTIO = sorted(
    set(UNSUPPORTED_FIELDS) | {p for p, providers in PROVIDER_FIELDS.items() if "istio" not in providers}
)


@pytest.mark.parametrize("path", IGNORED_UNDER_ISTIO)
def test_a_field_warned_as_ignored_changes_nothing_gitcanary_writes(tmp_path: Path, path: str) -> None:
    plain = seed(tmp_path / "plain")
    operations.init(plain, "apps/backend", now=NOW, switch=True)
    root = seed(tmp_path / "with")
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    node = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = IGNORED_VALUES[path]
    canary.write_text(yamlio.dump(doc))
    git("commit", "-qam", f"set {path}", cwd=root)
    errors, warnings = validate(root)
    assert errors == [] and any(f"{path}:" in w and "(ignored)" in w for w in warnings), (errors, warnings)
    operations.init(root, "apps/backend", now=NOW, switch=True)
    assert generated(root) == generated(plain)


def test_metrics_server_is_used_so_not_warned_about(tmp_path: Path) -> None:
    root = seed(tmp_path)
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    doc["spec"]["metricsServer"] = "http://127.0.0.1:9090"
    canary.write_text(yamlio.dump(doc))
    _, warnings = validate(root)
    assert not any("metricsServer" in w for w in warnings)
    # and used it is: the builtin queries go to that address, not to run's --prometheus
    from gitcanary.analysis import run_analysis
    from gitcanary.manifests import discovery

    doc["spec"]["metricsServer"] = "http://127.0.0.1:1"
    canary.write_text(yamlio.dump(doc))
    loaded = discovery.scan(root).canaries["prod/backend"]
    checks = run_analysis(loaded.canary, {}, default_address="http://127.0.0.1:2", now=datetime.now(UTC))
    assert "127.0.0.1:1 unreachable" in checks[0].line


def test_a_gateway_api_match_it_cannot_express_is_an_error(tmp_path: Path) -> None:
    root = seed(tmp_path, "gateway-api")
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    doc["spec"]["service"]["match"] = [{"authority": {"exact": "api.example.com"}}]
    canary.write_text(yamlio.dump(doc))
    errors, _ = validate(root)
    assert any("Gateway API route matches cannot express authority" in e for e in errors), errors


def test_what_initialization_would_halt_on_is_an_error_before_init(tmp_path: Path) -> None:
    """run initializes a new canary first; what it would refuse there, validate says before anyone runs."""
    root = seed(tmp_path)
    parent = root / "apps/kustomization.yaml"
    parent.write_text(
        parent.read_text() + "images:\n  - name: ghcr.io/stefanprodan/podinfo\n    newTag: 6.1.0\n"
    )
    git("commit", "-qam", "pin podinfo for every app", cwd=root)
    errors, _ = validate(root)
    assert any(
        e.startswith(
            "apps/backend/canary.yaml: initializing: apps/kustomization.yaml: images[0]: this kustomization"
        )
        for e in errors
    ), errors
    assert git("status", "--porcelain", cwd=root) == ""  # worked out in a copy


def test_the_empty_metrics_warning_is_true() -> None:
    """ "no metric is checked, so every step advances and the release is promoted": the core, given the
    empty analysis `run_analysis` returns for no metrics, walks the canary to Succeeded."""
    from datetime import UTC, datetime

    from test_rollout import make_canary, simulate

    from gitcanary.analysis import run_analysis
    from gitcanary.core.rollout import Action
    from gitcanary.spec.status import Phase

    canary = make_canary({"stepWeight": 10, "maxWeight": 30, "metrics": []})
    nothing = run_analysis(canary, {}, default_address="http://127.0.0.1:1", now=datetime.now(UTC))
    assert nothing == ()
    trace, final, _ = simulate(canary, iter(lambda: nothing, None))
    assert final.phase is Phase.SUCCEEDED
    assert [tick.weight for tick in trace if tick.action is Action.ADVANCE] == [10, 20, 30]


def test_a_secret_ref_is_sent_and_not_warned_about(tmp_path: Path) -> None:
    """ "credentials are not sent to the metrics server (ignored)": a query from a template with a secretRef
    reaches the server with no Authorization header, the secret being there to read (environment)."""
    import http.server
    import json
    import threading
    from datetime import UTC, datetime

    from gitcanary.analysis import run_analysis
    from gitcanary.analysis.providers import Endpoints, ProviderEnv
    from gitcanary.hooks.alerts import Secrets
    from gitcanary.manifests import discovery

    seen: list[dict[str, str]] = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            seen.append(dict(self.headers))
            body = json.dumps(
                {
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = seed(tmp_path)
        template = root / "apps/metric-templates/error-rate.yaml"
        doc = yamlio.load(template.read_text())
        doc["spec"]["provider"]["address"] = f"http://127.0.0.1:{server.server_port}"
        doc["spec"]["provider"]["secretRef"] = {"name": "prom-auth"}
        template.write_text(yamlio.dump(doc))
        _, warnings = validate(root)
        # secretRef is acted on (analysis/providers): validate must not call it ignored.
        assert not any("spec.provider.secretRef" in w for w in warnings)
        os.environ["GITCANARY_SECRET_PROD_PROM_AUTH_TOKEN"] = "s3cret"
        catalog = discovery.scan(root)
        canary = catalog.canaries["prod/backend"].canary
        run_analysis(
            canary,
            catalog.templates,
            default_address="http://127.0.0.1:1",
            now=datetime.now(UTC),
            # what `run --credential-endpoint URL` hands the providers
            env=ProviderEnv(
                secrets=Secrets(), endpoints=Endpoints.of([f"http://127.0.0.1:{server.server_port}"])
            ),
        )
        assert seen and all(headers.get("Authorization") == "Bearer s3cret" for headers in seen)
    finally:
        os.environ.pop("GITCANARY_SECRET_PROD_PROM_AUTH_TOKEN", None)
        server.shutdown()


ROUTING_VALUES: dict[str, object] = {
    "hosts": ["other.example.com"],
    "gateways": ["istio-system/other-gateway"],
    "match": [{"uri": {"prefix": "/x"}}],
    "rewrite": {"uri": "/"},
    "retries": {"attempts": 2},
    "headers": {"request": {"set": {"x-from": "gitcanary"}}},
    "corsPolicy": {"allowOrigins": [{"exact": "https://a.example.com"}]},
    "trafficPolicy": {"tls": {"mode": "DISABLE"}},
    "timeout": "5s",
    "gatewayRefs": [{"name": "other", "namespace": "istio-system"}],
}
# What each example's router writes (read from routers/istio.py and routers/gatewayapi.py).
RENDERED = {
    "istio": {
        "hosts",
        "gateways",
        "match",
        "rewrite",
        "retries",
        "headers",
        "corsPolicy",
        "trafficPolicy",
        "timeout",
    },
    "gateway-api": {"hosts", "match", "rewrite", "headers", "timeout", "gatewayRefs"},
    "linkerd": set(),
    "nginx": set(),
}


@pytest.mark.parametrize("example", sorted(RENDERED))
def test_routing_fields_a_provider_does_not_render_are_warned_and_change_nothing(
    tmp_path: Path, example: str
) -> None:
    ignored = sorted(set(ROUTING_VALUES) - RENDERED[example])

    def generated_dir(root: Path) -> dict[str, str]:
        base = root / "apps/backend-gitcanary"
        return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}

    plain = seed(tmp_path / "plain", example)
    operations.init(plain, "apps/backend", now=NOW, switch=True)
    root = seed(tmp_path / "with", example)
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    for name in ignored:
        doc["spec"]["service"][name] = ROUTING_VALUES[name]
    canary.write_text(yamlio.dump(doc))
    git("commit", "-qam", "routing fields", cwd=root)
    errors, warnings = validate(root)
    assert errors == []
    for name in ignored:
        assert any(f"spec.service.{name}: provider" in w and "(ignored)" in w for w in warnings), (
            name,
            warnings,
        )
    operations.init(root, "apps/backend", now=NOW, switch=True)
    assert generated_dir(root) == generated_dir(plain)


def test_a_field_gitcanary_ignores_is_warned_about_by_status_and_run_too(tmp_path: Path) -> None:
    """docs/concepts.md: fields gitcanary does not act on "are reported as warnings by `validate`,
    `run` and `status`. They are never silently ignored." (`validate`: the test above.)"""
    root = seed(tmp_path)
    canary = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary.read_text())
    doc["spec"]["revertOnDeletion"] = True
    canary.write_text(yamlio.dump(doc))
    git("commit", "-qam", "set spec.revertOnDeletion", cwd=root)
    warning = "apps/backend/canary.yaml: spec.revertOnDeletion: "
    status = gitcanary("status", "--repo", ".", cwd=root)
    assert warning in status.stdout + status.stderr and "(ignored)" in status.stdout + status.stderr
    git("clone", "-q", "--bare", str(root), str(tmp_path / "remote.git"), cwd=tmp_path)
    run = gitcanary(
        "run", "--once", "--repo", str(tmp_path / "remote.git"), "--workdir", str(tmp_path / "work"),
        "--settle", "0", "--cluster", "off", "--log-format", "text", cwd=tmp_path,
    )
    assert warning in run.stdout + run.stderr and "(ignored)" in run.stdout + run.stderr
