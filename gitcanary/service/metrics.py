"""gitcanary's own Prometheus metrics, on a registry of their own (served at `/metrics`).

Names follow Flagger's (`pkg/metrics/recorder.go`: `flagger_canary_weight`, `_status`, `_total`,
`_metric_analysis`, `_successes_total`, `_failures_total`, `flagger_info`) under a `gitcanary_`
prefix, so Flagger dashboards port by a rename. Flagger's `flagger_canary_duration_seconds` times
one analysis run; gitcanary's closest is `gitcanary_tick_duration_seconds`, and the rollout's own
length (bump to promotion or rollback) is `gitcanary_canary_rollout_duration_seconds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gitcanary import __version__
from gitcanary.core.observations import CheckResult
from gitcanary.spec.status import CanaryStatus, Phase

COMPONENTS = ("git", "prometheus", "forge", "spec")
_RUNNING = frozenset(
    {Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)


def status_code(phase: Phase) -> int:
    """Flagger's `canary_status`: 0 running, 1 successful (or idle), 2 failed."""
    if phase in (Phase.FAILED, Phase.QUARANTINED):
        return 2
    return 0 if phase in _RUNNING else 1


def rollout_started(rollout_id: str) -> datetime | None:
    """The start time a rollout id ends with (`6.1.0..6.1.1/2026-11-21T23:10:00Z`)."""
    _, _, stamp = rollout_id.rpartition("/")
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


class Metrics:
    """Every metric gitcanary exports; the reconciler's edges call the `record_*` methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge("gitcanary_info", "gitcanary version", ["version"], registry=r).labels(__version__).set(1)
        self.canaries = Gauge(
            "gitcanary_canary_total", "Canaries found in the repository", ["namespace"], registry=r
        )
        self.status = Gauge(
            "gitcanary_canary_status",
            "Last known status: 0 running, 1 successful or idle, 2 failed (as Flagger's canary_status)",
            ["name", "namespace"],
            registry=r,
        )
        self.phase = Gauge(
            "gitcanary_canary_phase",
            "1 for the canary's current phase",
            ["name", "namespace", "phase"],
            registry=r,
        )
        self.weight = Gauge(
            "gitcanary_canary_weight",
            "Traffic weight per workload (<target>-primary and <target>), as committed",
            ["workload", "namespace"],
            registry=r,
        )
        self.failed_checks = Gauge(
            "gitcanary_canary_failed_checks",
            "Failed checks of the current rollout",
            ["name", "namespace"],
            registry=r,
        )
        self.analysis = Gauge(
            "gitcanary_canary_metric_analysis",
            "Last value of each analysis metric (NaN: no data or query error)",
            ["name", "namespace", "metric"],
            registry=r,
        )
        self.successes = Counter(
            "gitcanary_canary_successes",
            "Rollouts promoted",
            ["name", "namespace", "deployment_strategy"],
            registry=r,
        )
        self.failures = Counter(
            "gitcanary_canary_failures",
            "Rollouts rolled back",
            ["name", "namespace", "deployment_strategy"],
            registry=r,
        )
        self.rollout_duration = Histogram(
            "gitcanary_canary_rollout_duration_seconds",
            "From the start commit of a rollout to its promotion or rollback",
            ["name", "namespace"],
            buckets=(60, 300, 600, 1800, 3600, 7200, 21600, 86400),
            registry=r,
        )
        self.tick_duration = Histogram(
            "gitcanary_tick_duration_seconds",
            "One reconciliation: fetch, decide, commit, push",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.ticks = Counter("gitcanary_ticks", "Ticks by result", ["result"], registry=r)
        self.last_success = Gauge(
            "gitcanary_last_successful_tick_timestamp_seconds",
            "Unix time of the last successful tick",
            registry=r,
        )
        self.commits = Counter("gitcanary_commits", "Commits pushed, by action", ["action"], registry=r)
        self.push_retries = Counter(
            "gitcanary_push_retries",
            "Pushes retried because the branch moved (fetch, rebase or re-decide)",
            registry=r,
        )
        self.errors = Counter("gitcanary_errors", "Errors by component", ["component"], registry=r)
        for component in COMPONENTS:
            self.errors.labels(component)  # exported at 0 before the first error, so rate() works
        for result in ("success", "error"):
            self.ticks.labels(result)
        self._phases: dict[str, Phase] = {}
        self._workloads: dict[str, tuple[str, str]] = {}

    # -- per tick ----------------------------------------------------------------------------

    def record_tick(self, seconds: float, ok: bool, at: float) -> None:
        self.tick_duration.observe(seconds)
        self.ticks.labels("success" if ok else "error").inc()
        if ok:
            self.last_success.set(at)

    def record_error(self, component: str) -> None:
        self.errors.labels(component).inc()

    def record_push_retry(self) -> None:
        self.push_retries.inc()

    def record_commit(self, trailers: Mapping[str, str], status: CanaryStatus | None, strategy: str) -> None:
        """One pushed commit; a promotion finished or a rollback counts its rollout once, by its trailers.

        Counting commits rather than phase changes also catches a skipAnalysis rollout, which goes
        from Succeeded to Succeeded in one commit.
        """
        action = trailers.get("Action", "")
        self.commits.labels(action or "unknown").inc()
        key = trailers.get("Canary", "")
        if "/" not in key or status is None:
            return
        promoted = trailers.get("Phase") == Phase.SUCCEEDED.value and action in ("succeed", "promote")
        if not promoted and action != "rollback":
            return
        namespace, name = key.split("/", 1)
        counter = self.successes if promoted else self.failures
        counter.labels(name, namespace, strategy).inc()
        started = rollout_started(status.rollout_id)
        if started is not None:
            seconds = (status.last_transition_time - started).total_seconds()
            self.rollout_duration.labels(name, namespace).observe(max(seconds, 0.0))

    def record_checks(self, key: str, checks: Iterable[CheckResult]) -> None:
        namespace, name = key.split("/", 1)
        for check in checks:
            value = check.value if check.value is not None else float("nan")
            self.analysis.labels(name, namespace, check.name).set(value)
            if check.value is None and "query failed (" in check.line:
                # run.py's wording for an unreachable Prometheus or a PromQL error (not "no data").
                self.record_error("prometheus")

    def record_canaries(
        self, statuses: Mapping[str, CanaryStatus | None], targets: Mapping[str, str]
    ) -> None:
        """Gauges from each canary's committed status."""
        per_namespace: dict[str, int] = {}
        for key, status in statuses.items():
            namespace, name = key.split("/", 1)
            per_namespace[namespace] = per_namespace.get(namespace, 0) + 1
            if status is None:
                continue
            self.status.labels(name, namespace).set(status_code(status.phase))
            for phase in Phase:
                self.phase.labels(name, namespace, phase.value).set(1 if phase is status.phase else 0)
            self.failed_checks.labels(name, namespace).set(status.failed_checks)
            target = targets.get(key, name)
            self.weight.labels(f"{target}-primary", namespace).set(100 - status.canary_weight)
            self.weight.labels(target, namespace).set(status.canary_weight)
            self._workloads[key] = (target, namespace)
            self._phases[key] = status.phase
        for namespace, count in per_namespace.items():
            self.canaries.labels(namespace).set(count)
        for key in [k for k in self._phases if k not in statuses]:
            self._forget(key)

    def _forget(self, key: str) -> None:
        """A canary removed from the repository: its series go too."""
        namespace, name = key.split("/", 1)
        self._phases.pop(key, None)
        for gauge in (self.status, self.failed_checks):
            gauge.remove(name, namespace)
        for phase in Phase:
            self.phase.remove(name, namespace, phase.value)
        target, _ = self._workloads.pop(key, (name, namespace))
        for workload in (f"{target}-primary", target):
            self.weight.remove(workload, namespace)
