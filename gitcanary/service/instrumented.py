"""The reconciler with its telemetry: metrics and readiness fed from each tick, no change to the loop.

A subclass rather than calls sprinkled through `reconciler.py`: the loop stays about Git, and
what is measured (tick time, push retries, errors by component, each canary's committed state)
is read at the seams the reconciler already has (`tick`, `_analyze`, the workspace's `push`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gitcanary.core.observations import CheckResult
from gitcanary.core.rollout import strategy_of
from gitcanary.errors import GitcanaryError, GitError, PushRejected
from gitcanary.forge.base import ForgeError
from gitcanary.git.trailers import parse_trailers
from gitcanary.service.health import Readiness
from gitcanary.service.metrics import Metrics
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus


class MonitoredReconciler(Reconciler):
    def __init__(self, *args: Any, monotonic: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = Metrics()
        self.readiness = Readiness(self.settings.poll_interval, clock=monotonic)
        self.monotonic = monotonic
        push = self.workspace.push

        def counted_push() -> None:
            # Every rejection is retried (rebased in the same attempt, or decided again in the next).
            try:
                push()
            except PushRejected:
                self.metrics.record_push_retry()
                raise

        self.workspace.push = counted_push  # type: ignore[method-assign]

    def tick(self) -> TickResult:
        started = self.monotonic()
        try:
            result = super().tick()
        except GitcanaryError as exc:
            self.metrics.record_tick(self.monotonic() - started, ok=False, at=time.time())
            if isinstance(exc, GitError | PushRejected):
                self.metrics.record_error("git")
            elif isinstance(exc, ForgeError):
                self.metrics.record_error("forge")
            self.readiness.failed(str(exc))
            raise
        self.metrics.record_tick(self.monotonic() - started, ok=True, at=time.time())
        self.readiness.succeeded()
        self._record(result)
        return result

    def _analyze(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> tuple[CheckResult, ...]:
        checks = super()._analyze(canary, templates, now, status)
        self.metrics.record_checks(canary.key, checks)
        return checks

    def _record(self, result: TickResult) -> None:
        statuses = {key: report.status for key, report in result.reports.items()}
        targets: dict[str, str] = {}
        strategies: dict[str, str] = {}
        if self.catalog is not None:
            for key, loaded in self.catalog.canaries.items():
                targets[key] = loaded.canary.spec.target_ref.name
                strategies[key] = strategy_of(loaded.canary).value
        self.metrics.record_canaries(statuses, targets)
        for _ in result.errors:
            self.metrics.record_error("spec")
        for report in result.reports.values():
            if report.error:
                self.metrics.record_error("spec")
        for sha in result.commits:
            message = self.workspace.repo.commit(sha).message
            text = message.decode() if isinstance(message, bytes) else message
            trailers = parse_trailers(text)
            key = trailers.get("Canary", "")
            seen = result.reports.get(key)
            status = seen.status if seen is not None else None
            self.metrics.record_commit(trailers, status, strategies.get(key, "canary"))
