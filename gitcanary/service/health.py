"""`/readyz`: ready while ticks succeed; not ready before the first one or after several failed.

`/healthz` (process up) lives in `cli._serve`; readiness is about the work: a gitcanary that cannot
fetch or push for `allowed_intervals` poll intervals is alive but not doing its job.
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
        self.clock = clock
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
