"""`gitcanary demo`: the whole demo end to end, and its SIMULATED Prometheus' query recognizer and API."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_report_check import check_audit_report
from rich.console import Console

from gitcanary.analysis import NoDataError, PrometheusClient, builtin_metric, render_query
from gitcanary.analysis.templates import QueryModel
from gitcanary.demo import run_demo
from gitcanary.demo.runner import format_duration, prepare_paths
from gitcanary.demo.simulator import (
    ClusterState,
    Query,
    SimulatedCluster,
    VersionProfile,
    Workload,
    recognize,
    route,
)
from gitcanary.git.trailers import parse_trailers
from gitcanary.manifests import yamlio

ROOT = Path(__file__).resolve().parent.parent
MODEL = QueryModel(
    name="backend", namespace="prod", target="backend", service="backend", ingress="backend", interval="4s"
)


def _sent(template: str) -> str:
    """The query as gitcanary sends it: rendered, whitespace collapsed (PrometheusClient does the same)."""
    return " ".join(render_query(template, MODEL).split())


def _builtin(name: str) -> str:
    metric = builtin_metric("istio", name)
    assert metric is not None
    return _sent(metric.query)


def _error_rate_template() -> str:
    doc = yamlio.load((ROOT / "examples/istio/apps/metric-templates/error-rate.yaml").read_text())
    return _sent(doc["spec"]["query"])


def test_recognizes_the_builtin_istio_queries_and_the_example_template() -> None:
    assert recognize(_builtin("request-success-rate")) == Query("success-rate", "=~", "backend", "prod", 4.0)
    assert recognize(_builtin("request-duration")) == Query("latency-p99", "=~", "backend", "prod", 4.0)
    assert recognize(_error_rate_template()) == Query("error-rate", "=", "backend", "prod", 4.0)


def test_recognizer_answers_nothing_it_does_not_know() -> None:
    assert recognize('sum(rate(http_requests_total{app="backend"}[1m]))') is None
    assert recognize('sum(rate(istio_requests_total{destination_workload="backend"}[1m]))') is None
    assert recognize(_builtin("request-success-rate").replace("[4s]", "")) is None


def test_regex_matcher_is_anchored_like_prometheus() -> None:
    query = recognize(_builtin("request-success-rate"))
    assert query is not None
    assert query.selects("backend")
    assert not query.selects("backend-primary")


def _objects(canary_weight: int, canary_replicas: int) -> list[dict]:
    def deployment(name: str, tag: str, replicas: int | None) -> dict:
        spec: dict = {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "backend", "image": f"ghcr.io/stefanprodan/podinfo:{tag}"}]},
            }
        }
        if replicas is not None:
            spec["replicas"] = replicas
        return {"kind": "Deployment", "metadata": {"name": name, "namespace": "prod"}, "spec": spec}

    def service(name: str, app: str) -> dict:
        return {
            "kind": "Service",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"selector": {"app": app}},
        }

    return [
        deployment("backend", "6.1.2", canary_replicas),
        deployment("backend-primary", "6.1.1", None),
        {
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "backend-primary", "namespace": "prod"},
            "spec": {"scaleTargetRef": {"name": "backend-primary"}, "minReplicas": 3},
        },
        service("backend", "backend-primary"),
        service("backend-primary", "backend-primary"),
        service("backend-canary", "backend"),
        {
            "kind": "VirtualService",
            "metadata": {"name": "backend", "namespace": "prod"},
            "spec": {
                "hosts": ["backend"],
                "http": [
                    {
                        "route": [
                            {"destination": {"host": "backend-primary"}, "weight": 100 - canary_weight},
                            {"destination": {"host": "backend-canary"}, "weight": canary_weight},
                        ]
                    }
                ],
            },
        },
    ]


def test_route_splits_by_weights_and_counts_pods() -> None:
    workloads, weights, unserved = route(_objects(20, 2), "prod", "backend")
    assert workloads == [Workload("backend", "6.1.2", 2, 20.0), Workload("backend-primary", "6.1.1", 3, 80.0)]
    assert weights == [("backend-primary", 80), ("backend-canary", 20)]
    assert unserved == 0
    # Weight on a canary with no pods reaches nobody.
    workloads, _, unserved = route(_objects(20, 0), "prod", "backend")
    assert workloads[0] == Workload("backend", "6.1.2", 0, 0.0)
    assert unserved == 20


def test_simulated_prometheus_answers_gitcanary_over_http() -> None:
    now = 1_800_000_000.0
    cluster = SimulatedCluster(
        remote="unused",
        checkout=Path("unused"),
        clock=lambda: now,
        profiles={"6.1.2": VersionProfile(0.08, 131.0)},
    )
    workloads, weights, _ = route(_objects(20, 2), "prod", "backend")
    cluster.timeline.append(ClusterState("c1", now - 60, tuple(workloads), tuple(weights)))
    at = datetime.fromtimestamp(now, UTC)
    with cluster, PrometheusClient(cluster.serve()) as client:
        assert client.query(_builtin("request-success-rate"), at) == pytest.approx(92.0)
        assert client.query(_builtin("request-duration"), at) == pytest.approx(131.0)
        assert client.query(_error_rate_template(), at) == pytest.approx(8.0)
        with pytest.raises(NoDataError):  # not a query the simulator knows: no data, a failed check
            client.query('sum(rate(http_requests_total{app="backend"}[1m]))', at)
        with pytest.raises(NoDataError):  # before any traffic
            client.query(_builtin("request-success-rate"), datetime.fromtimestamp(now - 120, UTC))
    assert [kind for kind, *_ in cluster.queries] == [
        "success-rate",
        "latency-p99",
        "error-rate",
        "unknown",
        "success-rate",
    ]


def test_format_duration() -> None:
    assert format_duration(2.0) == "2s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(1.25) == "1250ms"


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    target = tmp_path / "x"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    out = io.StringIO()
    assert run_demo(target, interval=0.5, console=Console(file=out, width=200)) == 2
    assert "not empty" in out.getvalue()
    assert (target / "notes.txt").read_text() == "mine"
    # A sibling the demo did not create is never removed.
    (tmp_path / "y.remote.git").mkdir()
    (tmp_path / "y.remote.git" / "HEAD").write_text("someone's\n")
    with pytest.raises(Exception, match="was not made by the demo"):
        prepare_paths(tmp_path / "y")


def test_replaces_the_siblings_an_earlier_demo_left(tmp_path: Path) -> None:
    remote = tmp_path / "x.remote.git"
    remote.mkdir()
    (remote / "gitcanary-demo").write_text("created by `gitcanary demo`\n")
    paths = prepare_paths(tmp_path / "x")
    assert paths.remote == remote and paths.work == tmp_path / "x.gitcanary-work"
    assert not remote.exists()


def _log(directory: Path) -> list[tuple[str, dict[str, str]]]:
    out = subprocess.run(
        ["git", "-C", str(directory), "log", "--reverse", "--format=%B%x1e"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    messages = [m.strip() for m in out.split("\x1e") if m.strip()]
    return [(m.splitlines()[0], parse_trailers(m)) for m in messages]


@pytest.mark.timeout(180)
def test_demo_promotes_one_release_and_rolls_back_the_next(tmp_path: Path) -> None:
    out = io.StringIO()
    directory = tmp_path / "x"
    assert run_demo(directory, interval=0.3, console=Console(file=out, width=200)) == 0, out.getvalue()
    text = out.getvalue()

    log = _log(directory)
    subjects = [subject for subject, _ in log]
    phases = [trailers.get("Phase") for _, trailers in log]
    for word in ("advance", "halt", "promote", "roll back"):
        assert any(word in subject for subject in subjects), (word, subjects)
    for phase in ("Progressing", "Succeeded", "Failed"):
        assert phase in phases, phases
    # One rollout promoted 6.1.1; the next failed on 6.1.2 and was rolled back to 6.1.1.
    assert phases[-1] == "Failed"
    assert any(s.startswith("gitcanary: promote prod/backend 6.1.0 -> 6.1.1") for s in subjects)
    assert any(s.startswith("gitcanary: roll back prod/backend 6.1.2 -> 6.1.1") for s in subjects)
    kustomization = yamlio.load((directory / "apps/backend/kustomization.yaml").read_text())
    assert kustomization["images"][0]["newTag"] == "6.1.1"
    # Then a config-only release (PODINFO_RANDOM_ERROR=true, same image) failed and was rolled back,
    # and its rollback commit removed the literal the person added: the config the primary runs.
    rollbacks = [s for s in subjects if s.startswith("gitcanary: roll back prod/backend")]
    assert len(rollbacks) == 2, rollbacks
    assert kustomization["configMapGenerator"][0]["literals"] == ["PODINFO_UI_MESSAGE=hello from backend"]
    last = subprocess.run(
        ["git", "-C", str(directory), "show", "--format=%B", "--stat", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "written back in apps/backend/kustomization.yaml" in last and "PODINFO_RANDOM_ERROR" in last
    assert "4. a config-only release" in text
    # The user's clone is clean and up to date with its remote.
    status = subprocess.run(
        ["git", "-C", str(directory), "status", "--porcelain", "--branch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status.splitlines() == ["## main...origin/main"]

    # The simulator says what it is, and the output ends with the log and where the repo is.
    assert re.search(r"^SIMULATED +applied", text, re.M)
    assert "request-success-rate 92 < 99 failed" in text
    assert str(directory) in text.split("5. the rollouts in git log")[-1]
    # `gitcanary audit --format html` on this repo: one chart per rollout (tests/audit_report_check.py).
    check_audit_report(directory)
