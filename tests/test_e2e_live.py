"""The long-running `gitcanary run` on the real clock, and a remote reached over git's own transport.

Prometheus scrapes a local exporter that a traffic thread feeds, so the analysis sees live data the
way it would in a cluster; the reconciler is the real CLI process on its APScheduler loop.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo, git
from oracle import assert_commit, assert_story, rollout_rows
from prometheus_server import Exporter, PrometheusServer, free_port

from gitcanary.errors import GitError
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings


class TrafficFeed:
    """Sends requests to `backend` in `prod` four times a second, at the error ratio the test sets."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.error_ratio = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.exporter.add(
                "backend", "prod", requests=20, errors=int(20 * self.error_ratio), latency_ms=80
            )
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def live(prometheus, exporter: Exporter) -> Iterator[tuple[PrometheusServer, TrafficFeed]]:  # noqa: ANN001
    feed = TrafficFeed(exporter)
    server = prometheus(exporter=exporter)
    server.wait_for('sum(rate(istio_requests_total{destination_workload="backend"}[10s]))', timeout=30)
    try:
        yield server, feed
    finally:
        feed.stop()


def fast_canary(repo: ConfigRepo) -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        analysis = doc["spec"]["analysis"]
        analysis["interval"] = "1s"
        analysis["stepWeight"] = 25
        analysis["maxWeight"] = 50
        analysis["metrics"] = [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"},
            {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "10s"},
        ]

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("canary analysis every 1s")


def wait_for_phase(repo: ConfigRepo, phase: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t.get("Phase") == phase for _, _, t in repo.gitcanary_commits()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {phase} commit within {timeout}s; reconciler log:\n{log.read_text()[-4000:]}")


@pytest.mark.timeout(240)
def test_gitcanary_run_on_live_metrics(config_repo: ConfigRepo, tmp_path: Path, live) -> None:  # noqa: ANN001
    server, feed = live
    fast_canary(config_repo)
    log = tmp_path / "run.log"
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
            "--prometheus",
            server.url,
            "--interval",
            "0.5",
            "--settle",
            "1",
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_phase(config_repo, "Initialized", log)
        served = re.search(r"serving /healthz on (http://\S+)", log.read_text())
        assert served, log.read_text()
        alive = httpx.get(served.group(1) + "/healthz", timeout=5)
        assert alive.status_code == 200 and alive.text.startswith("ok: last successful tick"), alive.text
        config_repo.bump("apps/backend", "6.1.1")
        wait_for_phase(config_repo, "Succeeded", log)
        feed.error_ratio = 0.5  # the next version is bad
        config_repo.bump("apps/backend", "6.1.2")
        wait_for_phase(config_repo, "Failed", log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    actions = [t["Action"] for _, _, t in config_repo.gitcanary_commits()]
    assert actions == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
        "start",
        "advance",
        "halt",
        "rollback",
    ], log.read_text()[-4000:]
    rollback = config_repo.gitcanary_commits()[-1][1]
    assert rollback.startswith("gitcanary: roll back prod/backend 6.1.2 -> 6.1.1: request-success-rate")
    # stepWeight 25 up to maxWeight 50; the example's threshold 2: one halt, then the rollback.
    assert_story(
        config_repo.remote,
        config_repo.gitcanary_commits(),
        rollout_rows(promoted=[25, 50], failed=[25], halts=1),
        tmp_path / "trees",
        image="ghcr.io/stefanprodan/podinfo",
        tags=("6.1.0", "6.1.1", "6.1.2"),
        replicas=2,
    )


@pytest.fixture
def git_daemon(config_repo: ConfigRepo) -> Iterator[tuple[str, callable]]:  # type: ignore[valid-type]
    """`git daemon` serving the remote on loopback; the second item restarts it after `stop`."""
    port = free_port()
    base = config_repo.remote.parent
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--enable=receive-pack",
                    f"--base-path={base}",
                    "--listen=127.0.0.1",
                    f"--port={port}",
                    str(base),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["git", "ls-remote", f"git://127.0.0.1:{port}/remote.git"], capture_output=True
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("git daemon did not start")

    def stop() -> None:
        for process in processes:
            process.terminate()
            process.wait(timeout=5)
        processes.clear()

    start()
    try:
        yield f"git://127.0.0.1:{port}/remote.git", (start, stop)
    finally:
        stop()


def test_remote_unreachable_then_back(config_repo: ConfigRepo, tmp_path: Path, git_daemon) -> None:  # noqa: ANN001
    url, (start, stop) = git_daemon
    rec = Reconciler(Settings(repo=url, workdir=tmp_path / "work", settle=0), sleep=lambda _: None)
    assert len(rec.tick().commits) == 1  # initialize, pushed over git://

    stop()
    with pytest.raises(GitError, match=f"git fetch {url} failed"):
        rec.tick()
    config_repo.bump("apps/backend", "6.1.1")  # a person pushes meanwhile (over the file transport)
    start()

    rec.tick()  # the switch to the primary; the person's bump is fetched with it
    rec.tick()  # and now the rollout starts
    actions = [(t["Action"], t["Revision"]) for _, _, t in config_repo.gitcanary_commits()]
    assert actions == [
        ("initialize", "6.1.0..6.1.0"),
        ("initialized", "6.1.0..6.1.0"),
        ("start", "6.1.0..6.1.1"),
    ]
    assert git("log", "--format=%s", "main", cwd=config_repo.remote).count("bump apps/backend to 6.1.1") == 1
    # The oracle after each commit: the person's bump is in the tree from the switch on (at 0 replicas).
    image = "ghcr.io/stefanprodan/podinfo"
    rows = [("6.1.0", None, None), ("6.1.1", 0, (100, 0)), ("6.1.1", 2, (100, 0))]
    for (sha, _, _), (canary, replicas, weights) in zip(config_repo.gitcanary_commits(), rows, strict=True):
        assert_commit(
            config_repo.remote,
            sha,
            tmp_path / "trees",
            namespace="prod",
            target="backend",
            service="backend",
            primary_images={"backend": f"{image}:6.1.0"},
            canary_images={"backend": f"{image}:{canary}"},
            canary_replicas=replicas,
            weights=weights,
        )
