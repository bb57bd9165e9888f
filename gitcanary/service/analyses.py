"""A tick's due analyses, sent together before the decide-and-commit pass.

An analysis reads only (canary, its metric templates, the tick's instant, its status), so its answer
does not depend on when it is sent. The reconciler predicts which canaries will ask for one, sends
those at once (at most `workers` at a time, over its pooled, kept-alive HTTP clients) and, in the
serial pass that decides and commits, takes each answer when `observe` asks for it. An answer is
handed out only for the exact inputs it was computed from; a wrong prediction costs one read-only
analysis nobody reads, or one sent inline as before: never a different decision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from gitcanary.core.observations import CheckResult
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus

Analyze = Callable[
    [Canary, Mapping[str, MetricTemplate], datetime, CanaryStatus | None], tuple[CheckResult, ...]
]


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


class Analyses:
    """The analyses of one tick: `send` them ahead, `take` each answer in the serial pass.

    `stir` is set whenever an analysis finishes, and by whoever else wants the waiting pass to look
    up (a push webhook), so `wait_or` wakes for either without polling.
    """

    def __init__(self, analyze: Analyze, workers: int, stir: threading.Event) -> None:
        self._analyze = analyze
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="analysis")
        self._sent: dict[str, tuple[_Inputs, Future[tuple[CheckResult, ...]]]] = {}
        self._stir = stir

    def send(
        self,
        key: str,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> None:
        inputs = _inputs(canary, templates, now, status)
        future = self._executor.submit(self._analyze, canary, templates, now, status)
        future.add_done_callback(lambda _: self._stir.set())
        self._sent[key] = (inputs, future)

    def take(
        self,
        key: str,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
    ) -> tuple[CheckResult, ...] | None:
        """The answer sent ahead for these exact inputs (waiting for it), or None: analyze inline.

        An exception the analysis raised is raised here, in the pass that decides for this canary
        alone, as an inline analysis would have raised it.
        """
        sent = self._sent.pop(key, None)
        if sent is None or sent[0] != _inputs(canary, templates, now, status):
            return None
        return sent[1].result()

    def pending(self) -> int:
        return sum(1 for _, future in self._sent.values() if not future.done())

    def wait_or(self, interrupted: Callable[[], bool]) -> bool:
        """Wait until every analysis sent has answered, or `interrupted()` holds; True if it did."""
        while True:
            self._stir.clear()
            if interrupted():
                return True
            if not self.pending():
                return False
            self._stir.wait()

    def close(self) -> None:
        """Drop what nobody took; an analysis still running finishes on its own (each is bounded by
        its queries' deadlines) without holding up the tick."""
        for _, future in self._sent.values():
            future.cancel()
        self._sent.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
