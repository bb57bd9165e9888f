"""A tick's due analyses, sent together, each with its own deadline, taken as each is ready.

A canary's analysis is everything `decide` asks the edges before it can decide: the webhook types
it names (`Decision.hooks`: confirm-rollout, pre-rollout, rollback, rollout, the confirm gates) and
then its metric checks, asked in the order the core asks them, each answer read by the core before
the next question. It reads only (canary, its metric templates, the tick's instant, its status, when
the last due analysis ran), so its answers do not depend on when it is sent. The reconciler predicts
which canaries will ask for one, sends those at once (at most `workers` at a time, over its pooled,
kept-alive HTTP clients) and, in the pass that decides and commits, takes each answer when `observe`
asks for it. An answer is handed out only for the exact inputs it was computed from; a wrong
prediction costs one analysis nobody reads, or one sent then: never a different decision.

Each analysis has a deadline, counted from when it starts: `budget` seconds. The pass decides first
the canaries whose answer is `ready` (done, or past its deadline), so a slow canary waits for its
own analysis alone, webhooks included. Past the deadline, what was not answered fails with the
reason: the webhook type being asked is a failed webhook (as a Flagger webhook timeout; a rollback
hook that did not answer signals nothing), the checks not answered are failed checks
(`deadline_checks`); the work still running is abandoned (each query and webhook call is bounded by
its own deadline and by the analysis deadline, and `ANALYSIS_DEADLINE` tells the calls not started
yet not to start).
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
from gitcanary.core import gates
from gitcanary.core.observations import CheckResult, HookResult, Observation
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.status import CanaryStatus


@dataclass
class Measured:
    """What one canary's analysis answered so far: webhook outcomes by type, then its checks.

    Filled by the analysis' own worker alone, in the order the core asks; `asking` names the
    webhook being called now (type, name), for the reason when the deadline cuts it.
    """

    hooks: dict[str, HookResult] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] | None = None
    asking: tuple[str, str] | None = None
    overdue: bool = False  # taken past its deadline: what is missing fails by the deadline
    budget: float = 0.0


# Ask the edges what `decide` needs, from `obs` on, filling `Measured` as each answer comes.
Measure = Callable[
    [Canary, Mapping[str, MetricTemplate], datetime, CanaryStatus | None, Observation, Measured], None
]


@dataclass(frozen=True)
class _Inputs:
    """Everything an analysis reads; an answer is reused only when all of it is equal."""

    canary: Canary
    templates: tuple[tuple[str, MetricTemplate | None], ...]
    now: datetime
    status: CanaryStatus | None
    last_attempt: datetime | None  # which once-per-step hooks are due again (the rollout hook)


def _inputs(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    now: datetime,
    status: CanaryStatus | None,
    last_attempt: datetime | None,
) -> _Inputs:
    used = sorted(
        {
            f"{metric.template_ref.namespace or canary.namespace}/{metric.template_ref.name}"
            for metric in canary.spec.analysis.metrics
            if metric.template_ref is not None
        }
    )
    return _Inputs(canary, tuple((key, templates.get(key)) for key in used), now, status, last_attempt)


def deadline_reason(budget: float) -> str:
    return f"no answer within the analysis deadline ({budget:g}s)"


def deadline_checks(canary: Canary, budget: float) -> tuple[CheckResult, ...]:
    """The checks of an analysis that did not answer within its deadline: each one failed, with why."""
    return tuple(_failed(metric, deadline_reason(budget)) for metric in canary.spec.analysis.metrics)


def deadline_hook(canary: Canary, kind: str, measured: Measured) -> HookResult:
    """A webhook type not answered within the analysis deadline: failed with why, as a Flagger
    webhook timeout (a rollback hook that did not answer signals no rollback)."""
    if kind == gates.ROLLBACK:
        return HookResult(kind, False)
    hooks = gates.hooks_of(canary, kind)
    name = measured.asking[1] if measured.asking and measured.asking[0] == kind else ""
    hook = next((h for h in hooks if h.name == name), hooks[0] if hooks else None)
    return HookResult(
        kind,
        False,
        hook.name if hook is not None else name,
        deadline_reason(measured.budget),
        hook.mute_alert if hook is not None else False,
    )


@dataclass
class _Sent:
    inputs: _Inputs
    budget: float
    measured: Measured
    done: Future[None] = field(default_factory=Future)  # the answers and what is measured beside
    error: BaseException | None = None
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
        measure: Measure,
        workers: int,
        stir: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
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
        obs: Observation,
        budget: float,
    ) -> None:
        """Ask what `decide` needs from `obs` on, in a worker, within `budget` seconds."""
        measured = Measured(budget=budget)
        sent = _Sent(_inputs(canary, templates, now, status, obs.last_attempt), budget, measured)
        self._sent[key] = sent
        self._executor.submit(self._run, sent, canary, templates, now, status, obs)

    def _run(
        self,
        sent: _Sent,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        now: datetime,
        status: CanaryStatus | None,
        obs: Observation,
    ) -> None:
        if sent.done.cancelled():
            return
        sent.started = self._clock()
        self._stir.set()  # its deadline is known now: a waiting pass recomputes when to wake
        token = ANALYSIS_DEADLINE.set(sent.deadline())
        try:
            self._measure(canary, templates, now, status, obs, sent.measured)
        except BaseException as exc:  # noqa: BLE001 - raised again in the pass, for this canary alone
            sent.error = exc
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
        last_attempt: datetime | None,
    ) -> Measured | None:
        """The answers sent for these exact inputs, or None: none was sent for them.

        Waits for them until the deadline; past it, what is in (its checks without what is measured
        beside them, if they are in), marked `overdue`: the caller fails what is missing with the
        deadline as its reason. An exception the analysis raised is raised here, in the pass that
        decides for this canary alone.
        """
        sent = self._sent.get(key)
        if sent is None or sent.inputs != _inputs(canary, templates, now, status, last_attempt):
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
        finished = sent.done.done()
        if finished and sent.error is not None:
            raise sent.error
        if not finished:
            sent.done.cancel()  # a queued one never starts
        # A copy: the worker, abandoned, may still write to its own.
        found = sent.measured
        return Measured(dict(found.hooks), found.checks, found.asking, not finished, sent.budget)

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
        """Drop what nobody took; an analysis still running finishes on its own (each query and
        webhook call is bounded by its own deadline, and none starts past the analysis deadline)
        without holding up the tick."""
        for sent in self._sent.values():
            sent.done.cancel()
        self._sent.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
