"""The command line as a person uses it: init in a clone, push, run --once, status, validate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ConfigRepo, git, make_config_repo
from oracle import assert_invariant, kustomize_build

IMAGE = "ghcr.io/stefanprodan/podinfo"
FIXTURES = Path(__file__).parent / "data" / "fixtures" / "flagger"


def gitcanary(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", *args], cwd=cwd, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"gitcanary {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = gitcanary("--help", cwd=tmp_path).stdout
    for command in ("run", "init", "status", "validate", "demo"):
        assert command in out
    assert "--once" in gitcanary("run", "--help", cwd=tmp_path).stdout


def test_init_push_run_status(config_repo: ConfigRepo, tmp_path: Path) -> None:
    human = config_repo.human
    out = gitcanary("init", "apps/backend", cwd=human).stdout
    assert "prod/backend: committed" in out
    assert "wrote apps/backend-gitcanary/backend-primary.yaml" in out
    assert "added backend-gitcanary to apps/kustomization.yaml resources" in out
    assert git("status", "--porcelain", cwd=human) == ""  # everything it wrote is committed

    # Initializing: the primary runs beside the untouched target; no routing yet.
    assert_invariant(
        kustomize_build(human / "apps"),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_replicas=None,
        weights=None,
    )
    assert "ok:" in gitcanary("validate", ".", cwd=human).stdout
    views = json.loads(gitcanary("status", "--local", "-o", "json", cwd=human).stdout)
    assert [(v["key"], v["phase"]) for v in views] == [("prod/backend", "Initializing")]
    # Without --local, status reads what promote acts on: the origin remote, where init is not yet.
    views = json.loads(gitcanary("status", "-o", "json", cwd=human).stdout)
    assert [(v["key"], v["phase"]) for v in views] == [("prod/backend", "Uninitialized")]

    git("push", "-q", "origin", "main", cwd=human)
    run = [
        "run",
        "--once",
        "--repo",
        str(config_repo.remote),
        "--workdir",
        str(tmp_path / "work"),
        "--settle",
        "0",
    ]
    routed = gitcanary(*run, "--cluster", "off", cwd=tmp_path).stdout
    assert "route prod/backend to its primary" in routed
    # No cluster access: the commit says readiness was guessed from the settle delay, not seen.
    body = git("log", "-1", "--format=%B", "main", cwd=config_repo.remote)
    assert "primary assumed ready (settle delay passed, no cluster access)" in body
    assert "primary ready;" not in body
    assert gitcanary("init", "apps/backend", cwd=human).returncode == 0  # idempotent after a pull
    config_repo.bump("apps/backend", "6.1.1")
    assert "start prod/backend rollout 6.1.0 -> 6.1.1" in gitcanary(*run, cwd=tmp_path).stdout

    views = json.loads(
        gitcanary(
            "status", "--repo", str(config_repo.remote), "-o", "json", "--settle", "0", cwd=tmp_path
        ).stdout
    )
    assert views[0]["phase"] == "Progressing"
    assert (views[0]["primary_revision"], views[0]["canary_revision"]) == ("6.1.0", "6.1.1")
    table = gitcanary("status", "--repo", str(config_repo.remote), cwd=tmp_path).stdout
    assert "Progressing" in table and "6.1.0 -> 6.1.1" in table


def test_init_says_what_flux_needs(tmp_path: Path) -> None:
    """Flagger's podinfo layout: no parent kustomization, and a Flux Kustomization aimed at the app only."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "kustomize" / "podinfo", repo / "podinfo")
    shutil.copy(FIXTURES / "artifacts" / "examples" / "istio-canary.yaml", repo / "podinfo" / "canary.yaml")
    (repo / "clusters").mkdir()
    (repo / "clusters" / "podinfo.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: podinfo\n"
        "  namespace: flux-system\nspec:\n  interval: 1m\n  path: ./podinfo\n  prune: true\n"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "podinfo", cwd=repo)
    needed = "ACTION NEEDED: Flux Kustomization podinfo (clusters/podinfo.yaml) applies ./podinfo only"
    # --plan says what init would say, the ACTION NEEDED line included, and commits nothing.
    planned = gitcanary("init", "podinfo", "--plan", cwd=repo).stdout
    assert needed in planned and "nothing was written" in planned
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "1"
    out = gitcanary("init", "podinfo", cwd=repo).stdout
    assert needed in out
    # Flagger's example carries webhooks; gitcanary calls them, so validate only says that their
    # in-cluster URLs do not resolve from here (what `run` from here would fail), nothing else.
    proc = gitcanary("validate", ".", cwd=repo, check=False)
    hook_lines = [line for line in proc.stderr.splitlines() if "spec.analysis.webhooks" in line]
    assert hook_lines and all("does not resolve from this machine" in line for line in hook_lines)
    assert proc.returncode == 1
    assert "Flux Kustomization podinfo (clusters/podinfo.yaml) applies ./podinfo, which builds podinfo " in (
        proc.stderr
    )
    primary = kustomize_build(repo / "podinfo-gitcanary")
    deployment = next(o for o in primary if o["kind"] == "Deployment")
    assert deployment["metadata"] == {
        "name": "podinfo-primary",
        "namespace": "test",
        "labels": {"app": "podinfo-primary", "app.kubernetes.io/managed-by": "gitcanary"},
    }
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    assert {o["kind"] for o in primary} == {"Deployment", "HorizontalPodAutoscaler", "Service"}


def test_validate_fails_on_a_broken_canary(config_repo: ConfigRepo) -> None:
    canary = config_repo.human / "apps/backend/canary.yaml"
    canary.write_text(canary.read_text().replace("threshold: 2", "threshold: two"))
    proc = gitcanary("validate", ".", cwd=config_repo.human, check=False)
    assert proc.returncode == 1
    assert "apps/backend/canary.yaml: spec.analysis.threshold: 'two' is not of type 'number'" in proc.stderr


def test_init_refuses_a_parent_that_would_rewrite_the_primary(config_repo: ConfigRepo) -> None:
    human = config_repo.human
    parent = human / "apps/kustomization.yaml"
    parent.write_text(
        parent.read_text() + "images:\n  - name: ghcr.io/stefanprodan/podinfo\n    newTag: 6.1.0\n"
    )
    git("commit", "-qam", "pin podinfo for every app", cwd=human)
    proc = gitcanary("init", "apps/backend", cwd=human, check=False)
    assert proc.returncode == 1
    assert (
        "apps/kustomization.yaml: images[0]: this kustomization would rewrite ghcr.io/stefanprodan/podinfo"
        in (proc.stderr)
    )
    assert git("status", "--porcelain", cwd=human) == ""  # nothing written, nothing lost


def test_validate_checks_generated_objects_against_their_schemas(config_repo: ConfigRepo) -> None:
    human = config_repo.human
    gitcanary("init", "apps/backend", cwd=human)
    services = human / "apps/backend-gitcanary/services.yaml"
    services.write_text(services.read_text().replace("port: 80", "port: eighty", 1))
    proc = gitcanary("validate", ".", cwd=human, check=False)
    assert proc.returncode == 1
    assert "apps/backend-gitcanary: Service prod/backend-primary" in proc.stderr


def test_init_switch_routes_to_the_primary_at_once(config_repo: ConfigRepo) -> None:
    human = config_repo.human
    out = gitcanary("init", "apps/backend", "--switch", cwd=human).stdout
    assert "wrote apps/backend-gitcanary/routing.yaml" in out
    log = git("log", "--format=%(trailers:key=Gitcanary-Phase,valueonly)", "-2", cwd=human).split()
    assert log == ["Initialized", "Initializing"]
    assert_invariant(
        kustomize_build(human / "apps"),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_replicas=0,
        weights=(100, 0),
    )


def test_the_repository_default_provider_reaches_init_validate_and_status(tmp_path: Path) -> None:
    """A canary without spec.provider follows `--provider` in every command, as it does in `run`."""
    repo = make_config_repo(tmp_path, "linkerd")

    def no_provider(doc) -> None:  # noqa: ANN001 - ruamel map
        del doc["spec"]["provider"]

    repo.edit("apps/backend/canary.yaml", no_provider)
    repo.commit_and_push("the repository default decides the provider")
    human = repo.human
    gitcanary("init", "apps/backend", "--switch", "--provider", "linkerd", cwd=human)
    routing = (human / "apps/backend-gitcanary/routing.yaml").read_text()
    assert "kind: TrafficSplit" in routing and "VirtualService" not in routing
    assert "ok:" in gitcanary("validate", ".", "--provider", "linkerd", cwd=human).stdout
    views = json.loads(
        gitcanary(
            "status", "--local", "--cluster", "off", "-o", "json", "--provider", "linkerd", cwd=human
        ).stdout
    )
    assert [(v["key"], v["phase"]) for v in views] == [("prod/backend", "Initialized")]
