"""Flagger's own example canaries beyond Istio (tests/data/fixtures/flagger/artifacts/examples/):
the Linkerd ones parse and roll out on Flagger's podinfo kustomization; Kuma's renders the
TrafficRoute Flagger's Kuma router writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hook_server import HookServer, hook_server
from oracle import assert_invariant, rollout_rows, schema_problems
from prometheus_server import PrometheusServer, healthy_then_failing
from provider_traffic import running_all_providers
from test_e2e_layouts import (
    BAD_FROM,
    FIXTURES,
    GOOD_FROM,
    PODINFO,
    PODINFO_TAGS,
    expected_tags,
    flagger_example,
    flux_build,
    podinfo_bump,
    promote_then_fail,
    seed,
)
from test_e2e_rollout import tree_at

from gitcanary.routers import router_for
from gitcanary.routers.providers import apply_default_provider
from gitcanary.spec.load import load_canary

EXAMPLES = FIXTURES / "artifacts" / "examples"


@pytest.fixture
def loadtester() -> Iterator[HookServer]:
    """Flagger's examples call its load tester in the cluster; a local server answers as it does."""
    with hook_server() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus_podinfo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = healthy_then_failing([("podinfo", "test")], GOOD_FROM, BAD_FROM)
    with running_all_providers(traffic, tmp_path_factory.mktemp("prom-podinfo")) as server:
        yield server


@pytest.mark.parametrize("name", ["linkerd-canary.yaml", "linkerd-canary-steps.yaml"])
def test_linkerd_examples_parse(name: str) -> None:
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    loaded = load_canary(doc, name)
    router = router_for(loaded.canary, name)
    (split,) = router.render(loaded.canary, 95, 5)
    assert split["kind"] == "TrafficSplit"
    assert split["spec"]["backends"][1] == {"service": "podinfo-canary", "weight": 5}
    # Its load-tester hooks are read (and called during the rollout below).
    assert [hook.name for hook in loaded.canary.spec.analysis.webhooks] == ["conformance-test", "load-test"]


def test_kuma_example_renders_a_trafficroute() -> None:
    """It sets no spec.provider: Flagger installed with -mesh-provider=kuma drives it. With the same
    repository default (`run --provider kuma`) gitcanary renders Kuma's TrafficRoute."""
    doc = yaml.safe_load((EXAMPLES / "kuma-canary.yaml").read_text())
    canaries = {"test/podinfo": load_canary(doc, "kuma-canary.yaml")}
    apply_default_provider(canaries, "kuma")
    canary = canaries["test/podinfo"].canary
    (route,) = router_for(canary, "kuma-canary.yaml").render(canary, 90, 10)
    port = canary.spec.service.port
    assert route["kind"] == "TrafficRoute"
    assert route["spec"]["conf"]["split"] == [
        {"weight": 90, "destination": {"kuma.io/service": f"podinfo-primary_test_svc_{port}"}},
        {"weight": 10, "destination": {"kuma.io/service": f"podinfo-canary_test_svc_{port}"}},
    ]
    assert schema_problems(route) == []


def test_linkerd_steps_example_rolls_out(
    tmp_path: Path, prometheus_podinfo: PrometheusServer, loadtester: HookServer
) -> None:
    """linkerd-canary-steps.yaml: stepWeights 5..55 on a TrafficSplit, promoted; then rolled back
    after threshold (10) failed checks on Linkerd's own metrics."""
    files = {f"podinfo/{p.name}": p.read_text() for p in (FIXTURES / "kustomize" / "podinfo").iterdir()}
    files["podinfo/canary.yaml"] = flagger_example("linkerd-canary-steps.yaml", loadtester)
    repo = seed(tmp_path, files)
    promote_then_fail(
        repo, tmp_path, prometheus_podinfo, "test/podinfo", 16, podinfo_bump(repo), PODINFO_TAGS
    )

    tags = expected_tags(repo, "6.0.0", "6.0.1", "6.0.2")
    actions, weights = [], []
    # stepWeights 5..55, promoted; then one step and threshold 10: nine halts, the rollback.
    steps = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    rows = rollout_rows(promoted=steps, failed=[5], halts=9)
    commits = repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == [row[0] for row in rows]
    for (sha, _subject, trailers), (_action, phase, weight) in zip(commits, rows, strict=True):
        actions.append(trailers["Action"])
        weights.append(int(trailers["Weight"]))
        primary, canary = tags[sha]
        running = phase in ("Progressing", "Promoting", "Finalising")
        assert_invariant(
            flux_build(tree_at(repo, sha, tmp_path / "trees" / sha)),
            namespace="test",
            target="podinfo",
            service="podinfo",
            primary_images={"podinfod": f"{PODINFO}:{primary}"},
            canary_images={"podinfod": f"{PODINFO}:{canary}"},
            canary_replicas=None if phase == "Initializing" else (2 if running else 0),
            weights=None if phase == "Initializing" else (100 - weight, weight),
            provider="linkerd",
        )
    assert actions == (
        ["initialize", "initialized", "start"]
        + ["advance"] * 11
        + ["promote", "finalize", "succeed", "start", "advance"]
        + ["halt"] * 9
        + ["rollback"]
    )
    assert weights[3:14] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    # Its hooks reached the load tester: the conformance test before each rollout's first step.
    assert [body["metadata"]["type"] for body in loadtester.posted("/")].count("bash") == 2
