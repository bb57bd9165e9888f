"""The reconciler on a real config repo waits for the (emulated) cluster before every step.

Flux's Kustomization is moved along by hand, the way kustomize-controller would after a fetch,
so each wait is visible: `gitcanary status` says why, the rollout advances only once the step
commit is applied and the workloads are ready, and a canary that never becomes available is
rolled back past its progress deadline by a commit that says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, ConfigRepo, git, make_config_repo
from kube_emulator import (
    DEPLOYMENTS,
    KUSTOMIZATIONS,
    Emulator,
    deployment,
    flux_kustomization,
    running_emulator,
)
from oracle import assert_invariant, kustomize_build
from test_e2e_rollout import IMAGE, tree_at
from typer.testing import CliRunner

from gitcanary.commands.cli import app
from gitcanary.commands.operations import status as status_of
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings

T0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def no_analysis(*_: Any, **__: Any) -> tuple[()]:
    raise AssertionError("no step may be measured in this test")


@pytest.fixture
def kube() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator
        emulator.assert_read_only()


def applied(kube: Emulator, sha: str) -> None:
    """kustomize-controller applied `sha` from main to ./apps."""
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", sha))


def gitcanary(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gitcanary", *args], cwd=cwd, capture_output=True, text=True, env=env
    )


def tick(rec: Reconciler) -> TickResult:
    result = rec.tick()
    assert not result.errors and not any(r.error for r in result.reports.values()), result
    return result


def subjects(repo: ConfigRepo) -> list[str]:
    return [subject for _, subject, _ in repo.gitcanary_commits()]


def test_rollout_waits_for_the_cluster(tmp_path: Path, kube: Emulator) -> None:
    repo = make_config_repo(tmp_path)
    seed = repo.remote_log()[-1][0]
    applied(kube, seed)
    kubeconfig = kube.kubeconfig(tmp_path)
    settings = Settings(
        repo=str(repo.remote),
        workdir=tmp_path / "work",
        settle=0,
        cluster="on",
        kubeconfig=str(kubeconfig),
    )
    clock = Clock()
    rec = Reconciler(settings, clock=clock, analyzer=no_analysis, sleep=lambda _: None)
    assert rec.observer is not None

    # Initialize: the primary is committed; the routing switch waits for Flux to apply it.
    (init,) = tick(rec).commits
    clock.advance(600)  # however long: the settle delay (0) does not count with a cluster
    report = tick(rec).reports["prod/backend"]
    assert report.waiting == (
        "waiting for the cluster to apply the last commit: "
        f"Kustomization flux-system/apps applied {seed[:8]}, not yet {init[:8]}"
    )

    # `gitcanary status` shows why, from the cluster; without it, it says it is guessing.
    shown = gitcanary("status", "--repo", str(repo.remote), "--kubeconfig", str(kubeconfig), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"applied {seed[:8]}, not yet {init[:8]}" in shown.stdout
    repo.pull()
    (guessed,) = status_of(repo.human, settle=10)
    assert guessed.liveness == "guessing" and "(guessing: no cluster access" in guessed.waiting

    applied(kube, init)
    assert "deployment prod/backend-primary not found" in tick(rec).reports["prod/backend"].waiting
    kube.put(DEPLOYMENTS, deployment("backend-primary"))
    kube.put(DEPLOYMENTS, deployment("backend"))
    (initialized,) = tick(rec).commits
    assert subjects(repo)[-1].startswith("gitcanary: route prod/backend to its primary")
    # Readiness the cluster reported is said plainly (without cluster access it is called a guess).
    body = git("log", "-1", "--format=%B", initialized, cwd=repo.remote)
    assert "primary ready; routing all traffic to it" in body and "assumed" not in body

    # A bump starts at once (nothing to wait for at rest); the first step waits for the start commit.
    repo.bump("apps/backend", "6.1.1")
    (start,) = tick(rec).commits
    applied(kube, initialized)
    clock.advance(3600)
    result = tick(rec)
    assert not result.commits
    assert f"not yet {start[:8]}" in result.reports["prod/backend"].waiting

    # Applied, but the canary's pods are still rolling out: wait for them.
    applied(kube, start)
    kube.put(DEPLOYMENTS, deployment("backend", replicas=2, updated=1, generation=2))
    assert "waiting for canary deployment backend: 1 out of 2 new replicas" in (
        tick(rec).reports["prod/backend"].waiting
    )

    # Ready now: the analysis interval (30s) counts from this moment, not from the start commit.
    kube.put(DEPLOYMENTS, deployment("backend", generation=2))
    assert tick(rec).reports["prod/backend"].waiting == "waiting for the next analysis interval"
    # A restart (elsewhere: a new clone) forgets when the step went live: the interval starts
    # again from the restart, conservatively; nothing is repeated or skipped.
    clock.advance(20)
    rec = Reconciler(
        settings.model_copy(update={"workdir": tmp_path / "restarted"}),
        clock=clock,
        analyzer=no_analysis,
        sleep=lambda _: None,
    )
    assert tick(rec).reports["prod/backend"].waiting == "waiting for the next analysis interval"
    clock.advance(20)  # 40s after it went live, 20s after the restart saw it live
    assert not tick(rec).commits
    clock.advance(11)
    (advance,) = tick(rec).commits
    assert subjects(repo)[-1] == "gitcanary: advance prod/backend to 10% (6.1.0 -> 6.1.1)"

    # The 10% step is applied, but the canary's pods never become available: past the Canary's
    # progressDeadlineSeconds (600 by default) it is rolled back, and the commit says why.
    applied(kube, advance)
    broken_since = (clock.now - timedelta(seconds=601)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.put(DEPLOYMENTS, deployment("backend", generation=3, ready=0, unavailable_since=broken_since))
    (rollback,) = tick(rec).commits
    subject = subjects(repo)[-1]
    assert subject.startswith("gitcanary: roll back prod/backend 6.1.1 -> 6.1.0: progress deadline exceeded")
    body = subprocess.run(
        ["git", "log", "-1", "--format=%B", rollback], cwd=repo.remote, capture_output=True, text=True
    ).stdout
    assert "deployment backend not ready after 600s" in body
    assert "Gitcanary-Phase: Failed" in body
    # What Flux would apply now: all traffic on the primary, the canary at zero, 6.1.0 written back.
    tree = tree_at(repo, rollback, tmp_path / "tree")
    assert_invariant(
        kustomize_build(tree / "apps"),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_images={"backend": f"{IMAGE}:6.1.0"},
        canary_replicas=0,
        weights=(100, 0),
    )


def test_unreachable_api_never_advances(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    with running_emulator() as gone:
        kubeconfig = gone.kubeconfig(tmp_path)  # its port refuses connections once it stopped
    settings = Settings(
        repo=str(repo.remote), workdir=tmp_path / "work", settle=0, cluster="on", kubeconfig=str(kubeconfig)
    )
    clock = Clock()
    rec = Reconciler(settings, clock=clock, analyzer=no_analysis, sleep=lambda _: None)
    assert len(tick(rec).commits) == 1  # initialize: nothing in the cluster to wait for yet
    for _ in range(3):
        clock.advance(3600)
        result = tick(rec)
        assert not result.commits
        assert result.reports["prod/backend"].waiting.startswith(
            "waiting for the cluster to apply the last commit: cluster API unreachable"
        )
    assert len(subjects(repo)) == 1


def test_a_status_only_commit_is_not_waited_for(tmp_path: Path) -> None:
    """A halt records a failed check in the status file only: nothing for Flux to apply, so the
    commit the cluster must have applied stays the last one that changed an object."""
    from git import Repo

    from gitcanary.cluster import commits
    from gitcanary.manifests.generate import Layout

    repo = make_config_repo(tmp_path)
    rec = Reconciler(Settings(repo=str(repo.remote), workdir=tmp_path / "work", settle=0))
    (init,) = tick(rec).commits
    repo.pull()
    loaded = rec.catalog.canaries["prod/backend"] if rec.catalog else None
    assert loaded is not None
    status_file = repo.human / Layout.of(loaded).status
    status_file.write_text(status_file.read_text().replace("failedChecks: 0", "failedChecks: 1"))
    halt = repo.commit_and_push("a halt: the status file alone")
    checkout = Repo(repo.human)
    inputs = commits.canary_inputs(repo.human, loaded)
    assert commits.last_commit(checkout, halt, inputs, loaded) == init
    repo.bump("apps/backend", "6.1.1")
    bump = checkout.head.commit.hexsha
    assert commits.last_commit(checkout, bump, inputs, loaded) == bump


def test_run_cli_reads_the_cluster_or_says_why_not(tmp_path: Path, kube: Emulator) -> None:
    repo = make_config_repo(tmp_path)
    common = ["run", "--once", "--repo", str(repo.remote), "--workdir", str(tmp_path / "work")]
    # In-process (typer's runner) where no log line is asserted: a Python start-up less each.
    missing = CliRunner().invoke(app, [*common, "--cluster", "on", "--kubeconfig", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and f"kubeconfig {tmp_path / 'nope'} cannot be loaded" in missing.stderr
    guessing = CliRunner().invoke(app, [*common, "--cluster", "off", "--listen", ""])
    assert guessing.exit_code == 0, guessing.stderr
    assert "no cluster access: a commit counts as applied 10s after it (a guess)" in guessing.stderr
    assert "initialize prod/backend" in guessing.stdout
    # With the cluster: Flux has not applied the initialization, so the next tick commits nothing.
    applied(kube, repo.remote_log()[0][0])
    config = str(kube.kubeconfig(tmp_path))
    # Another clone: the in-process runs above still hold their workdir's lock.
    elsewhere = [*common[:-1], str(tmp_path / "work2")]
    waiting = gitcanary(*elsewhere, "--settle", "0", "--kubeconfig", config, "-v", cwd=tmp_path)
    assert waiting.returncode == 0, waiting.stderr
    assert waiting.stdout == "" and "no cluster access" not in waiting.stderr
    assert "prod/backend: waiting for the cluster to apply the last commit" in waiting.stderr
