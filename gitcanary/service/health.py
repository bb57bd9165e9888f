"""`/readyz`: ready while ticks succeed; not ready before the first one or after several failed.
`/healthz`: alive while a tick succeeded within `--liveness-intervals` poll intervals.

Readiness is about the work: a gitcanary that cannot fetch or push for `allowed_intervals` poll
intervals is not doing its job. Liveness is the same question over a longer window, counted from
the process's start: a process that has not completed a tick for that long (a remote down since
start, a tick that hangs, a wedge nobody foresaw) answers 503, so Kubernetes restarts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from gitcanary.service.http import StartResponse, WSGIApp, plain


class Readiness:
    def __init__(
        self, poll_interval: float, allowed_intervals: float = 3, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = max(poll_interval, 1.0) * allowed_intervals
        self.poll_interval = max(poll_interval, 1.0)
        self.clock = clock
        self.started = clock()
        self.last_success: float | None = None
        self.last_error = ""

    def succeeded(self) -> None:
        self.last_success = self.clock()
        self.last_error = ""

    def failed(self, error: str) -> None:
        self.last_error = error

    def check(self) -> tuple[bool, str]:
        """(ready, why) for the probe's body."""
        if self.last_success is None:
            why = f"; last error: {self.last_error}" if self.last_error else ""
            return False, f"no tick has succeeded yet{why}"
        age = self.clock() - self.last_success
        if age > self.window:
            why = f"; last error: {self.last_error}" if self.last_error else ""
            return False, f"last successful tick {age:.0f}s ago (allowed {self.window:.0f}s){why}"
        return True, f"last successful tick {age:.1f}s ago"

    def app(self) -> WSGIApp:
        def readyz(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            ready, why = self.check()
            status = "200 OK" if ready else "503 Service Unavailable"
            return plain(status, f"{'ok' if ready else 'not ready'}: {why}\n")(environ, start_response)

        return readyz


class Liveness:
    """`/healthz`: 503 once no tick has succeeded for `intervals` poll intervals (since the start,
    or since the last success); 0 intervals: always 200 (the process answers, nothing more)."""

    def __init__(self, readiness: Readiness, intervals: float) -> None:
        self.readiness = readiness
        self.window = readiness.poll_interval * intervals
        self.intervals = intervals

    def check(self) -> tuple[bool, str]:
        if self.intervals <= 0:
            return True, "liveness by ticks is off"
        ready = self.readiness
        since = ready.last_success if ready.last_success is not None else ready.started
        age = ready.clock() - since
        what = "last successful tick" if ready.last_success is not None else "started"
        why = f"; last error: {ready.last_error}" if ready.last_error else ""
        if age > self.window:
            return False, f"{what} {age:.0f}s ago, no tick completed since (allowed {self.window:.0f}s){why}"
        return True, f"{what} {age:.1f}s ago"

    def app(self) -> WSGIApp:
        def healthz(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            alive, why = self.check()
            status = "200 OK" if alive else "503 Service Unavailable"
            return plain(status, f"{'ok' if alive else 'stuck'}: {why}\n")(environ, start_response)

        return healthz
