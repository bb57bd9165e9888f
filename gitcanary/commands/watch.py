"""`gitcanary status NAME --watch`: wait for a canary's rollout to end, as `kubectl rollout status`.

It prints a line each time the canary's phase, weight or revisions change, and exits 0 once the
revision in the repository is promoted (the canary is at rest, primary at the target revision),
1 when the rollout failed (rolled back, or a failed revision is held), and 1 when `--timeout` passes
first. A canary with nothing to roll out is done at once, as kubectl says of a finished Deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gitcanary.commands.operations import CanaryView

DONE, FAILED = 0, 1
_AT_REST = ("Initialized", "Succeeded")
_FAILED = ("Failed", "Quarantined")


def outcome(view: CanaryView) -> int | None:
    """DONE, FAILED, or None while the rollout (or its start) is still to come."""
    pending = bool(view.target_revision) and view.target_revision != view.primary_revision
    if view.phase in _AT_REST and not pending:
        return DONE
    if view.phase in _FAILED and not pending:
        return FAILED
    return None


def line(view: CanaryView) -> str:
    revisions = (
        f"{view.primary_revision} -> {view.canary_revision}"
        if view.canary_revision and view.canary_revision != view.primary_revision
        else view.primary_revision or view.target_revision
    )
    waiting = f": {view.error or view.waiting}" if view.error or view.waiting else ""
    where = f"{view.phase} at {view.weight}% ({revisions})"
    return f"Waiting for canary {view.key} rollout to finish: {where}{waiting}"


@dataclass
class Watch:
    read: Callable[[], CanaryView]  # the canary as the remote says it now (fetched again)
    say: Callable[[str], None]
    timeout: float = 0.0  # seconds; 0 waits for ever, as kubectl's --timeout 0
    interval: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def run(self) -> int:
        deadline = self.clock() + self.timeout if self.timeout > 0 else None
        shown = ""
        while True:
            view = self.read()
            result = outcome(view)
            if result == DONE:
                revision = view.primary_revision or view.target_revision
                self.say(f"canary {view.key} successfully rolled out {revision}")
                return DONE
            if result == FAILED:
                why = f": {view.message}" if view.message else ""
                self.say(f"error: canary {view.key} rollout failed ({view.phase}){why}")
                return FAILED
            now = line(view)
            if now != shown:
                self.say(now)
                shown = now
            if deadline is not None and self.clock() >= deadline:
                self.say(f"error: timed out waiting for canary {view.key} ({view.phase} at {view.weight}%)")
                return FAILED
            self.sleep(
                self.interval if deadline is None else max(0.0, min(self.interval, deadline - self.clock()))
            )


__all__ = ["DONE", "FAILED", "Watch", "line", "outcome"]
