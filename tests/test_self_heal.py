"""A gitcanary started while its remote is down heals itself once the remote is back.

Real pieces: the config repository served by `git daemon` over git's own transport, stopped and
started by the test; the reconciler in-process, and the real `gitcanary run` CLI process with its
HTTP port for `/healthz`. The numbers the issue asks: after a failed first clone, the first commit
lands within two poll intervals of the remote's return; `/healthz` fails once no tick has
completed for `--liveness-intervals` intervals, and passes again after the first completed tick.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_server import free_port

from gitcanary.errors import GitError
from gitcanary.service.health import Liveness, Readiness
from gitcanary.service.reconciler import Reconciler, TickResult, retry_delay
from gitcanary.service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


class GitDaemon:
    """`git daemon` serving the directory of the config repository's bare remote on loopback."""

    def __init__(self, remote: Path) -> None:
        self.base = remote.parent
        self.port = free_port()
        self.url = f"git://127.0.0.1:{self.port}/{remote.name}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                f"--base-path={self.base}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["git", "ls-remote", self.url], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("git daemon did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
            self.process = None


@pytest.fixture
def daemon(config_repo: ConfigRepo) -> Iterator[GitDaemon]:
    served = GitDaemon(config_repo.remote)  # not started: the remote is down
    try:
        yield served
    finally:
        served.stop()


def test_a_failed_first_clone_is_retried_not_refused_by_its_own_lock(
    config_repo: ConfigRepo, daemon: GitDaemon, tmp_path: Path
) -> None:
    rec = Reconciler(Settings(repo=daemon.url, workdir=tmp_path / "work", settle=0), sleep=lambda _: None)
    for _ in range(3):  # each try is a real clone again, not "another gitcanary is using" the workdir
        with pytest.raises(GitError, match="cannot clone"):
            rec.tick()
    daemon.start()
    assert len(rec.tick().commits) == 1  # initialize, pushed over git://
    assert [t["Action"] for _, _, t in config_repo.gitcanary_commits()] == ["initialize"]


def healthz(url: str) -> tuple[int, str]:
    try:
        answer = httpx.get(f"{url}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return answer.status_code, answer.text


@pytest.mark.timeout(120)
def test_run_started_with_the_remote_down_commits_within_two_intervals_of_its_return(
    config_repo: ConfigRepo, daemon: GitDaemon, tmp_path: Path
) -> None:
    interval, liveness = 2.0, 3
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITCANARY_LOG_FORMAT": "text"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitcanary",
                "run",
                "--repo",
                daemon.url,
                "--workdir",
                str(tmp_path / "work"),
                "--interval",
                str(interval),
                "--settle",
                "0",
                "--cluster",
                "off",
                "--leader-election",
                "off",
                "--liveness-intervals",
                str(liveness),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while healthz(url)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healthz(url)[0] == 200, log.read_text()  # alive at first
        # No tick completes for `liveness` intervals: the liveness probe fails, Kubernetes restarts.
        deadline = time.monotonic() + interval * (liveness + 4)
        while healthz(url)[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, body = healthz(url)
        assert status == 503 and "no tick completed" in body and "cannot clone" in body, (status, body)

        daemon.start()
        back = time.monotonic()
        landed = None
        while time.monotonic() < back + 30:
            if config_repo.gitcanary_commits():
                landed = time.monotonic() - back
                break
            time.sleep(0.05)
        text = log.read_text()
        assert landed is not None, text
        assert landed <= 2 * interval, (landed, text)
        assert "another gitcanary is using" not in text
        assert text.count("cannot clone") >= 2  # tried again and again while the remote was down
        deadline = time.monotonic() + 10
        while healthz(url)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healthz(url)[0] == 200  # a tick completed: alive again
    finally:
        process.terminate()
        process.wait(timeout=20)


@settings(max_examples=50, derandomize=True, deadline=None)
@given(
    interval=st.floats(min_value=0.5, max_value=600),
    intervals=st.floats(min_value=0.5, max_value=100),
    successes=st.lists(st.floats(min_value=0, max_value=10_000), max_size=5),
    probe=st.floats(min_value=0, max_value=100_000),
)
def test_liveness_fails_exactly_when_no_tick_completed_within_its_window(
    interval: float, intervals: float, successes: list[float], probe: float
) -> None:
    """The oracle: the newest success at or before the probe (else the start) is older than the
    window, computed here from the numbers, not from the class."""
    now = [0.0]
    ready = Readiness(interval, clock=lambda: now[0])
    alive = Liveness(ready, intervals)
    for at in sorted(successes):
        if at <= probe:
            now[0] = at
            ready.succeeded()
    now[0] = probe
    last = max([at for at in successes if at <= probe], default=0.0)
    window = max(interval, 1.0) * intervals
    assert alive.check()[0] == (probe - last <= window)
    assert Liveness(ready, 0).check()[0]  # 0: the probe never fails


@settings(max_examples=50, derandomize=True, deadline=None)
@given(failures=st.integers(min_value=1, max_value=10_000), interval=st.floats(min_value=0.1, max_value=3600))
def test_a_failed_tick_is_retried_with_backoff_never_later_than_the_next_poll(
    failures: int, interval: float
) -> None:
    delay = retry_delay(failures, interval)
    assert 0 < delay <= interval
    assert delay <= retry_delay(failures + 1, interval)  # backs off, never speeds up in a failing run
    assert delay == (min(interval, 2.0 ** (failures - 1)) if failures <= 17 else interval)


@pytest.mark.timeout(60)
def test_a_tick_that_took_a_whole_interval_is_followed_at_once_not_an_interval_later(tmp_path: Path) -> None:
    """APScheduler drops a run that falls due while the job still runs; without the job's own loop
    the next tick would come one more interval later, and every canary with it."""
    interval = 2.0
    starts: list[float] = []
    ends: list[float] = []
    parked = threading.Event()

    class Timed(Reconciler):
        def tick(self) -> TickResult:
            starts.append(time.monotonic())
            if len(starts) >= 3:
                parked.wait()  # enough seen: park the scheduler's worker until the test ends
            time.sleep(interval * 1.2 if len(starts) == 1 else 0.01)  # the first overruns
            ends.append(time.monotonic())
            return TickResult(head="")

    rec = Timed(Settings(repo=str(tmp_path / "none"), workdir=tmp_path / "work", poll_interval=interval))
    loop = threading.Thread(target=rec.run_forever, daemon=True)
    loop.start()
    deadline = time.monotonic() + 20
    while len(starts) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.stop()
    parked.set()
    loop.join(timeout=10)
    assert not loop.is_alive()
    assert len(starts) >= 3
    assert starts[1] - ends[0] < 0.5, starts[1] - ends[0]  # at once after the overrun
    assert starts[2] - starts[0] >= 2 * interval * 0.95  # then on the interval's schedule again
