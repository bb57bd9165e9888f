"""A tick's due analyses, sent together, each with its own deadline, taken as each is ready.

An analysis reads only (canary, its metric templates, the tick's instant, its status), so its answer
does not depend on when it is sent. The reconciler predicts which canaries will ask for one, sends
those at once (at most `workers` at a time, over its pooled, kept-alive HTTP clients) and, in the
pass that decides and commits, takes each answer when `observe` asks for it. An answer is handed out
only for the exact inputs it was computed from; a wrong prediction costs one read-only analysis
nobody reads, or one sent then: never a different decision.

Each analysis has a deadline, counted from when it starts: `budget` seconds. The pass decides first
the canaries whose answer is `ready` (done, or past its deadline), so a slow canary waits for its
own analysis alone. Past the deadline, the checks not answered are failed checks with the reason
(`deadline_checks`); the work still running is abandoned (each query is bounded by its own provider
deadline, and `ANALYSIS_DEADLINE` tells the queries not started yet not to start).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from gitcanary.analysis.run import ANALYSIS_DEADLINE, _failed
from gitcanary.core.observations import CheckResult
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus

Analyze = Callable[
    [Canary, Mapping[str, MetricTemplate], datetime, CanaryStatus | None], tuple[CheckResult, ...]
]
# What to measure beside the checks once they are in (the step's trailers); best effort, within
# the same deadline.
After = Callable[[Canary, Mapping[str, MetricTemplate], datetime, tuple[CheckResult, ...]], None]


@dataclass(frozen=True)
class _Inputs:
    """Everything an analysis reads; an answer is reused only when all of it is equal."""

    canary: Canary
    templates: tuple[tuple[str, MetricTemplate | None], ...]
    now: datetime
    status: CanaryStatus | None


def _inputs(
    canary: Canary, templates: Mapping[str, MetricTemplate], now: datetime, status: CanaryStatus | None
) -> _Inputs:
    used = sorted(
        {
            f"{metric.template_ref.namespace or canary.namespace}/{metric.template_ref.name}"
            for metric in canary.spec.analysis.metrics
            if metric.template_ref is not None
        }
    )
    return _Inputs(canary, tuple((key, templates.get(key)) for key in used), now, status)


def deadline_checks(canary: Canary, budget: float) -> tuple[CheckResult, ...]:
    """The checks of an analysis that did not answer within its deadline: each one failed, with why."""
    return tuple(
        _failed(metric, f"no answer within the analysis deadline ({budget:g}s)")
        for metric in canary.spec.analysis.metrics
    )


@dataclass
class _Sent:
    inputs: _Inputs
    budget: float
    checks: Future[tuple[CheckResult, ...]] = field(default_factory=Future)  # the checks alone
    done: Future[None] = field(default_factory=Future)  # the checks and what is measured beside
    started: float | None = None  # monotonic; the deadline runs from here

    def deadline(self) -> float | None:
        return None if self.started is None else self.started + self.budget


class Analyses:
    """The analyses of one tick: `send` them ahead, `take` each answer in the pass.

    `stir` is set whenever an analysis finishes, and by whoever else wants the waiting pass to look
    up (a push webhook), so `wait_or` wakes for either without polling; a deadline wakes it too.
    """

    def __init__(
        self,
        analyze: Analyze,
        workers: int,
        stir: threading.Event,
        after: After | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._analyze = analyze
        self._after = after
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="analysis")
        self._sent: dict[str, _Sent] = {}
        self._stir = stir

    def send(
        self,
        key: str,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
        budget: float,
    ) -> None:
        sent = _Sent(_inputs(canary, templates, now, status), budget)
        self._sent[key] = sent
        self._executor.submit(self._run, sent, canary, templates, now, status)

    def _run(
        self,
        sent: _Sent,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> None:
        if sent.done.cancelled():
            return
        sent.started = self._clock()
        self._stir.set()  # its deadline is known now: a waiting pass recomputes when to wake
        token = ANALYSIS_DEADLINE.set(sent.deadline())
        try:
            try:
                checks = self._analyze(canary, templates, now, status)
            except BaseException as exc:  # noqa: BLE001 - raised again in the pass, for this canary alone
                sent.checks.set_exception(exc)
                return
            sent.checks.set_result(checks)
            if self._after is not None:
                with contextlib.suppress(Exception):  # beside measurements are best effort
                    self._after(canary, templates, now, checks)
        finally:
            ANALYSIS_DEADLINE.reset(token)
            with contextlib.suppress(InvalidStateError):  # the pass gave up on it (cancelled)
                sent.done.set_result(None)
            self._stir.set()

    def _overdue(self, sent: _Sent) -> bool:
        deadline = sent.deadline()
        return deadline is not None and self._clock() >= deadline

    def ready(self, key: str) -> bool:
        """Can the pass decide this canary without waiting? Yes when no analysis was sent for it,
        or when its analysis is done or past its deadline."""
        sent = self._sent.get(key)
        return sent is None or sent.done.done() or self._overdue(sent)

    def take(
        self,
        key: str,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> tuple[CheckResult, ...] | None:
        """The answer sent for these exact inputs, or None: none was sent for them.

        Waits for it until its deadline; past it, the checks if they are in (without what is
        measured beside them), else every check failed with the deadline as its reason. An
        exception the analysis raised is raised here, in the pass that decides for this canary alone.
        """
        sent = self._sent.get(key)
        if sent is None or sent.inputs != _inputs(canary, templates, now, status):
            return None
        del self._sent[key]
        while not sent.done.done():
            deadline = sent.deadline()
            if deadline is None:  # queued behind other analyses: its deadline has not started
                self._stir.clear()
                if sent.started is None and not sent.done.done():
                    self._stir.wait(1.0)
                continue
            left = deadline - self._clock()
            if left <= 0:
                break
            try:
                sent.done.result(timeout=left)
            except TimeoutError:
                break
        if sent.checks.done():
            return sent.checks.result()
        sent.done.cancel()  # a queued one never starts
        return deadline_checks(canary, sent.budget)

    def pending(self) -> int:
        return sum(1 for key in self._sent if not self.ready(key))

    def wait_or(self, interrupted: Callable[[], bool], keys: Collection[str] | None = None) -> bool:
        """Wait until one of `keys` (default: every analysis sent) is ready, or none of them is
        pending, or `interrupted()` holds; True if it did."""
        while True:
            self._stir.clear()
            if interrupted():
                return True
            watched = [key for key in (self._sent if keys is None else keys) if key in self._sent]
            waiting = [key for key in watched if not self.ready(key)]
            if len(waiting) < len(watched) or not waiting:
                return False
            deadlines = [d for d in (self._sent[key].deadline() for key in waiting) if d is not None]
            timeout = max(0.0, min(deadlines) - self._clock()) if deadlines else None
            self._stir.wait(timeout)

    def close(self) -> None:
        """Drop what nobody took; an analysis still running finishes on its own (each query is
        bounded by its provider's deadline, and none starts past the analysis deadline) without
        holding up the tick."""
        for sent in self._sent.values():
            sent.done.cancel()
        self._sent.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
