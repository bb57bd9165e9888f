"""Keptn end to end: the reconciler, with cluster access (`--cluster on`, the emulated cluster),
reads a KeptnMetric's value for the canary's one check through its own Kubernetes client; a full
promotion, a rollback on a bad value, and a rollout without a value that never promotes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ConfigRepo, make_config_repo
from kube_emulator import (
    DEPLOYMENTS,
    KEPTN_METRICS,
    KUSTOMIZATIONS,
    Emulator,
    deployment,
    flux_kustomization,
    running_emulator,
)
from prometheus_server import unavailable_prometheus

from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

T0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kube() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator
        emulator.assert_read_only()


def keptn_metric(value: str | None) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "apiVersion": "metrics.keptn.sh/v1beta1",
        "kind": "KeptnMetric",
        "metadata": {"name": "backend-errors", "namespace": "prod"},
        "spec": {"provider": {"name": "prometheus"}, "query": "errors", "fetchIntervalSeconds": 10},
    }
    if value is not None:
        metric["status"] = {"value": value, "rawValue": "", "lastUpdated": "2026-11-21T23:00:00Z"}
    return metric


def configure(repo: ConfigRepo) -> None:
    template = (
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\n"
        "metadata:\n  name: error-rate\n  namespace: prod\n"
        "spec:\n  provider:\n    type: keptn\n  query: keptnmetric/prod/{{ target }}-errors\n"
    )
    (repo.human / "apps/metric-templates/error-rate.yaml").write_text(template)

    def analysis(doc: Any) -> None:
        spec = doc["spec"]["analysis"]
        spec.update({"threshold": 1, "stepWeight": 25, "maxWeight": 50})
        spec["metrics"] = [
            {
                "name": "error-rate",
                "templateRef": {"name": "error-rate"},
                "thresholdRange": {"max": 1},
                "interval": "1m",
            }
        ]

    repo.edit("apps/backend/canary.yaml", analysis)
    repo.commit_and_push("one metric from Keptn")


def run_until(
    rec: Reconciler, clock: Clock, kube: Emulator, repo: ConfigRepo, value: str | None, phase: str
) -> None:
    for _ in range(30):
        head = subprocess.run(
            ["git", "rev-parse", "main"], cwd=repo.remote, capture_output=True, text=True, check=True
        ).stdout.strip()
        kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", head))  # Flux applied the head
        kube.put(DEPLOYMENTS, deployment("backend-primary"))
        kube.put(DEPLOYMENTS, deployment("backend"))
        kube.put(KEPTN_METRICS, keptn_metric(value))
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        status = result.reports["prod/backend"].status
        clock.now += timedelta(seconds=31)
        if status is not None and status.phase.value == phase:
            return
    raise AssertionError(f"prod/backend did not reach {phase}: {result.reports['prod/backend']}")


def test_keptn_promote_then_roll_back_then_no_value_never_promotes(tmp_path: Path, kube: Emulator) -> None:
    repo = make_config_repo(tmp_path)
    configure(repo)
    settings = Settings(
        repo=str(repo.remote),
        workdir=tmp_path / "work",
        settle=0,
        cluster="on",
        kubeconfig=str(kube.kubeconfig(tmp_path)),
        prometheus=unavailable_prometheus(),  # no metric of the canary's is on Prometheus
    )
    clock = Clock()
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)

    run_until(rec, clock, kube, repo, "0.2", "Initialized")
    repo.bump("apps/backend", "6.1.1")
    run_until(rec, clock, kube, repo, "0.2", "Succeeded")
    repo.bump("apps/backend", "6.1.2")
    run_until(rec, clock, kube, repo, "7.5", "Failed")
    repo.bump("apps/backend", "6.1.3")
    run_until(rec, clock, kube, repo, None, "Failed")

    actions = [t["Action"] for _, _, t in repo.gitcanary_commits()]
    rollout = ["start", "advance", "rollback"]
    assert actions == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
        *rollout,
        *rollout,
    ]
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo.remote, capture_output=True, text=True, check=True
    ).stdout
    assert "6.1.2 -> 6.1.1: error-rate 7.5 > 1 failed" in log
    assert "6.1.3 -> 6.1.1: error-rate no data (KeptnMetric prod/backend-errors has no status.value)" in log
