"""The `gitcanary run` processes of one replica test (test_replicas.py, test_replica_relay.py):
each one's log file, waiting for a condition, stopped together at the end, and the logs' tails
for a failure message."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class RunProcesses:
    def __init__(self) -> None:
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.logs: dict[int, Path] = {}

    def tail(self) -> str:
        return "\n".join(f"--- {pid}\n{log.read_text()[-3000:]}" for pid, log in self.logs.items())

    def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
        """Poll `predicate` until it holds; after `timeout`, fail with the processes' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} within {timeout}s; logs:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM to every process still running, then 20 s each to exit before a SIGKILL."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
