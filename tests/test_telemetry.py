"""/metrics, /readyz and JSON logs of `gitcanary run`, scraped over real HTTP from a running server.

The in-process tests drive the monitored reconciler on injected clocks (tick time and readiness
age are deterministic); one test starts the real `gitcanary run` process and reads its JSON logs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo, git
from prometheus_client.parser import text_string_to_metric_families

from gitcanary.commands.cli import _serve
from gitcanary.commands.manual import perform
from gitcanary.errors import GitError
from gitcanary.service import logs
from gitcanary.service.http import HttpServer
from gitcanary.service.instrumented import MonitoredReconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.request import ManualAction

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PAT = "Pat Person <pat@example.com>"


class Clocks:
    """Wall clock for the rollout (datetime) and monotonic clock for readiness, both moved by hand."""

    def __init__(self) -> None:
        self.now = START
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def no_metrics(repo: ConfigRepo) -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["analysis"]["metrics"] = []
        doc["spec"]["analysis"]["interval"] = "30s"
        doc["spec"]["analysis"]["stepWeight"] = 25
        doc["spec"]["analysis"]["maxWeight"] = 50

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("canary without metrics")


@pytest.fixture
def served(
    config_repo: ConfigRepo, tmp_path: Path
) -> Iterator[tuple[MonitoredReconciler, Clocks, HttpServer]]:
    no_metrics(config_repo)
    clocks = Clocks()
    settings = Settings(repo=str(config_repo.remote), workdir=tmp_path / "work", settle=0, poll_interval=10)
    rec = MonitoredReconciler(settings, clock=clocks.wall, monotonic=clocks.monotonic, sleep=lambda _: None)
    server = _serve("127.0.0.1:0", rec)
    yield rec, clocks, server
    server.stop()


def tick(rec: MonitoredReconciler, clocks: Clocks, count: int = 1) -> None:
    for _ in range(count):
        rec.tick()
        clocks.now += timedelta(seconds=31)


def scrape(server: HttpServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus-client's own parser: (name, labels) -> value."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, metric: str, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def test_readyz_before_and_after_a_tick(served: tuple[MonitoredReconciler, Clocks, HttpServer]) -> None:
    rec, clocks, server = served
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    before = httpx.get(f"{server.url}/readyz", timeout=10)
    assert before.status_code == 503 and "no tick has succeeded yet" in before.text
    rec.tick()
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    clocks.mono += 29  # within 3 poll intervals of 10 s
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    clocks.mono += 2
    stale = httpx.get(f"{server.url}/readyz", timeout=10)
    assert stale.status_code == 503 and "last successful tick 31s ago (allowed 30s)" in stale.text


def test_metrics_after_a_rollout_a_rollback_a_race_and_a_git_failure(
    served: tuple[MonitoredReconciler, Clocks, HttpServer], config_repo: ConfigRepo, tmp_path: Path
) -> None:
    rec, clocks, server = served
    tick(rec, clocks, 2)  # Initializing, Initialized
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clocks, 2)  # start, 25%
    mid = scrape(server)
    assert value(mid, "gitcanary_canary_weight", workload="backend", namespace="prod") == 25
    assert value(mid, "gitcanary_canary_weight", workload="backend-primary", namespace="prod") == 75
    assert value(mid, "gitcanary_canary_status", name="backend", namespace="prod") == 0  # running
    assert value(mid, "gitcanary_canary_phase", name="backend", namespace="prod", phase="Progressing") == 1
    assert value(mid, "gitcanary_canary_phase", name="backend", namespace="prod", phase="Succeeded") == 0

    tick(rec, clocks, 4)  # 50%, promote, finalize, succeed
    done = scrape(server)
    assert value(done, "gitcanary_canary_phase", name="backend", namespace="prod", phase="Succeeded") == 1
    assert value(done, "gitcanary_canary_weight", workload="backend", namespace="prod") == 0
    assert value(done, "gitcanary_canary_status", name="backend", namespace="prod") == 1
    strategy = {"name": "backend", "namespace": "prod", "deployment_strategy": "canary"}
    assert value(done, "gitcanary_canary_successes_total", **strategy) == 1
    # start at T+93s, succeed at T+217s (31 s per tick): the rollout took 5 ticks of 31 s... as committed
    count = value(done, "gitcanary_canary_rollout_duration_seconds_count", name="backend", namespace="prod")
    total = value(done, "gitcanary_canary_rollout_duration_seconds_sum", name="backend", namespace="prod")
    assert (count, total) == (1, 5 * 31)
    assert value(done, "gitcanary_canary_total", namespace="prod") == 1
    assert value(done, "gitcanary_tick_duration_seconds_count") == 8
    assert value(done, "gitcanary_ticks_total", result="success") == 8
    assert value(done, "gitcanary_commits_total", action="advance") == 2
    assert value(done, "gitcanary_commits_total", action="succeed") == 1
    assert value(done, "gitcanary_push_retries_total") == 0

    # A rollback, and a person's commit racing the tick: the push is retried.
    config_repo.bump("apps/backend", "6.1.2")
    tick(rec, clocks, 1)  # start
    perform(ManualAction.ABORT, "prod/backend", str(config_repo.remote), actor=PAT)
    original = rec.clock

    def person_pushes_during_the_tick() -> datetime:
        rec.clock = original
        (config_repo.human / "NOTES.md").write_text("on call: pat\n")
        config_repo.commit_and_push("docs: on-call note")
        return original()

    rec.clock = person_pushes_during_the_tick
    tick(rec, clocks, 1)  # rollback, pushed on the second attempt
    failed = scrape(server)
    assert value(failed, "gitcanary_canary_failures_total", **strategy) == 1
    assert value(failed, "gitcanary_canary_status", name="backend", namespace="prod") == 2
    assert value(failed, "gitcanary_push_retries_total") == 1
    assert value(failed, "gitcanary_errors_total", component="git") == 0

    # The remote disappears: the tick fails, the git error is counted.
    config_repo.remote.rename(tmp_path / "gone.git")
    with pytest.raises(GitError):
        rec.tick()
    broken = scrape(server)
    assert value(broken, "gitcanary_errors_total", component="git") == 1
    assert value(broken, "gitcanary_ticks_total", result="error") == 1
    assert value(broken, "gitcanary_errors_total", component="prometheus") == 0
    assert value(broken, "gitcanary_info", version=__import__("gitcanary").__version__) == 1
    readyz = httpx.get(f"{server.url}/readyz", timeout=10)
    assert readyz.status_code == 200  # one failure is not yet three intervals
    clocks.mono += 31
    readyz = httpx.get(f"{server.url}/readyz", timeout=10)
    assert readyz.status_code == 503 and "last error: git fetch" in readyz.text


def test_json_log_lines_carry_fields_and_never_a_secret() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    log = logging.getLogger("gitcanary.test")
    log.info(
        "pushed %s",
        "gitcanary: advance prod/backend to 25%",
        extra={"canary": "prod/backend", "commit": "abc"},
    )
    log.error(
        "git fetch https://bot:s3cr3t@git.example.com/acme/config.git failed: Authorization: Bearer tok123"
    )
    logs.configure("text", stream=stream)
    log.warning("cloning https://x-access-token:ghp_abc@github.com/acme/c.git?token=zzz")
    lines = stream.getvalue().splitlines()
    first, second = (json.loads(line) for line in lines[:2])
    assert first["level"] == "info" and first["canary"] == "prod/backend" and first["commit"] == "abc"
    assert first["message"] == "pushed gitcanary: advance prod/backend to 25%"
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert (
        second["message"]
        == "git fetch https://***@git.example.com/acme/config.git failed: Authorization: Bearer ***"
    )
    assert lines[2].endswith("WARNING cloning https://***@github.com/acme/c.git?token=***")
    for secret in ("s3cr3t", "tok123", "ghp_abc", "zzz"):
        assert secret not in stream.getvalue()


def test_run_logs_json_lines_and_serves_metrics(config_repo: ConfigRepo, tmp_path: Path) -> None:
    no_metrics(config_repo)
    log_file = tmp_path / "run.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitcanary",
            "run",
            "--repo",
            str(config_repo.remote),
            "--workdir",
            str(tmp_path / "work"),
            "--interval",
            "0.2",
            "--settle",
            "0",
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file.open("wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        entries: list[dict] = []
        while time.monotonic() < deadline:
            entries = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
            if any(e.get("action") == "initialized" for e in entries):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(log_file.read_text()[-3000:])
        url = next(e["url"] for e in entries if e["message"].startswith("serving /healthz on"))
        pushed = [e for e in entries if e["message"].startswith("pushed ")]
        assert pushed[0]["canary"] == "prod/backend" and len(pushed[0]["commit"]) == 40
        head = git("log", "--format=%H", "main", cwd=config_repo.remote).split()
        assert {e["commit"] for e in pushed} <= set(head)
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        samples = scrape_url(f"{url}/metrics")
        assert (
            samples[
                (
                    "gitcanary_canary_phase",
                    (("name", "backend"), ("namespace", "prod"), ("phase", "Initialized")),
                )
            ]
            == 1
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def scrape_url(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_an_unreachable_prometheus_is_counted_and_its_values_are_nan(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    clocks = Clocks()
    with socket.socket() as probe:  # a free port, closed again: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        repo=str(config_repo.remote),
        workdir=tmp_path / "work",
        settle=0,
        prometheus=f"http://127.0.0.1:{port}",
    )
    rec = MonitoredReconciler(settings, clock=clocks.wall, monotonic=clocks.monotonic, sleep=lambda _: None)
    tick(rec, clocks, 2)
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clocks, 3)  # start, first step (no analysis before traffic), then a measured halt
    families = {f.name: f for f in rec.metrics.registry.collect()}
    errors = {
        s.labels["component"]: s.value
        for s in families["gitcanary_errors"].samples
        if s.name.endswith("_total")
    }
    assert errors["prometheus"] >= 2 and errors["git"] == 0
    values = {s.labels["metric"]: s.value for s in families["gitcanary_canary_metric_analysis"].samples}
    assert "request-success-rate" in values and all(v != v for v in values.values())  # NaN: no value
    failed = {s.labels["name"]: s.value for s in families["gitcanary_canary_failed_checks"].samples}
    assert failed == {"backend": 1}


def test_a_skip_analysis_promotion_counts_once_from_its_commit_trailers() -> None:
    from gitcanary.service.metrics import Metrics
    from gitcanary.spec.status import CanaryStatus, Phase

    metrics = Metrics()
    status = CanaryStatus(
        phase=Phase.SUCCEEDED,
        last_applied_spec="b",
        last_promoted_spec="b",
        rollout_id="6.1.0..6.1.1/2026-11-01T12:00:00Z",
        last_transition_time=START,  # promoted in the same commit that started it
    )
    trailers = {"Canary": "prod/backend", "Action": "promote", "Phase": "Succeeded"}
    metrics.record_commit(trailers, status, "canary")
    metrics.record_commit({**trailers, "Action": "update"}, status, "canary")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in metrics.registry.collect()
        for s in f.samples
    }
    labels = (("deployment_strategy", "canary"), ("name", "backend"), ("namespace", "prod"))
    assert samples[("gitcanary_canary_successes_total", labels)] == 1
    duration = (("name", "backend"), ("namespace", "prod"))
    assert samples[("gitcanary_canary_rollout_duration_seconds_count", duration)] == 1
    assert samples[("gitcanary_canary_rollout_duration_seconds_sum", duration)] == 0
    assert samples[("gitcanary_commits_total", (("action", "update"),))] == 1
