"""Table tests for the rollout core when a cluster observer reports (`Observation.cluster`).

The core waits, with a reason, until the last commit is applied and the workloads it needs are
ready; analysis intervals count from when the step went live; a canary past its progress
deadline during analysis is rolled back (Flagger's `isDeploymentReady` + scheduler). No I/O here:
what the observer saw is a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from test_rollout import ALL_OK, NEW, OLD, T0, idle, make_canary, rolling

from gitcanary.core.observations import CheckResult, ClusterObservation, Observation, WorkloadState
from gitcanary.core.rollout import Action, deadline_exceeded, decide, ready_threshold
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

READY = WorkloadState("backend", True, "2/2 ready")
PRIMARY_READY = WorkloadState("backend-primary", True, "2/2 ready")
NOT_UPDATED = WorkloadState("backend", False, "1 out of 2 new replicas have been updated")
PRIMARY_STARTING = WorkloadState("backend-primary", False, "0 of 2 updated replicas are ready")


def unavailable(since_seconds: float) -> WorkloadState:
    """The canary's pods have not been available since T0 + `since_seconds` (crash loop, bad image)."""
    return WorkloadState(
        "backend",
        False,
        "0 of 2 updated replicas are ready (readyThreshold 100%)",
        unavailable_since=T0 + timedelta(seconds=since_seconds),
    )


def seen(
    applied: bool = True,
    canary: WorkloadState | None = READY,
    primary: WorkloadState | None = PRIMARY_READY,
    live_at: float | None = 0,
    reason: str = "Kustomization flux-system/apps applied 0123abcd",
) -> ClusterObservation:
    live = applied and canary is not None and canary.ready and primary is not None and primary.ready
    since = T0 + timedelta(seconds=live_at) if live and live_at is not None else None
    return ClusterObservation(applied, reason, canary, primary, since)


def at(
    after: float,
    cluster: ClusterObservation | None,
    target: str = "new",
    checks: tuple[CheckResult, ...] | None = None,
    live: bool = False,
) -> Observation:
    """`live` is the settle guess; with a cluster observation the core must not consult it."""
    spec = {"new": NEW, "old": OLD}[target]
    return Observation(
        T0 + timedelta(seconds=after), spec, "6.1.1", live=live, checks=checks, cluster=cluster
    )


@dataclass(frozen=True)
class Want:
    action: Action
    reason: str = ""  # a fragment the reason must contain
    phase: Phase | None = None
    weight: int | None = None


CASES = [
    # --- Initializing: the routing switch waits for the primary to be applied and ready ---
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        at(
            30,
            seen(applied=False, reason="Kustomization flux-system/apps applied 89abcdef, not yet 0123abcd"),
        ),
        Want(Action.NONE, "waiting for the cluster to apply the last commit: Kustomization flux-system/apps"),
        id="initializing-waits-for-apply",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        at(30, seen(primary=PRIMARY_STARTING)),
        Want(
            Action.NONE, "waiting for primary deployment backend-primary: 0 of 2 updated replicas are ready"
        ),
        id="initializing-waits-for-primary-ready",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        at(30, seen(canary=NOT_UPDATED)),
        Want(Action.INITIALIZED, phase=Phase.INITIALIZED),
        id="initializing-needs-only-the-primary",
    ),
    pytest.param(
        make_canary(),
        idle(Phase.INITIALIZING),
        at(0, seen(), live=False),
        Want(Action.INITIALIZED, phase=Phase.INITIALIZED),
        id="initializing-cluster-wins-over-the-settle-guess",
    ),
    # --- a step under analysis ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(600, seen(applied=False, reason="GitRepo fleet-local/apps is at 89abcdef, not yet 0123abcd")),
        Want(Action.NONE, "GitRepo fleet-local/apps is at 89abcdef"),
        id="step-not-applied-waits-however-long",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(600, seen(canary=NOT_UPDATED)),
        Want(Action.NONE, "waiting for canary deployment backend: 1 out of 2 new replicas"),
        id="step-applied-canary-not-ready-waits",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(600, seen(canary=None)),
        Want(Action.NONE, "canary deployment not observed"),
        id="canary-unknown-waits",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(600, ClusterObservation(False, "cluster API unreachable: Connection refused")),
        Want(Action.NONE, "cluster API unreachable"),
        id="api-unreachable-waits-never-advances",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(90, seen(live_at=45)),
        Want(Action.NONE, "waiting for the next analysis interval"),
        id="interval-counts-from-went-live-not-push",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(105, seen(live_at=45)),
        Want(Action.MEASURE, "analysis due"),
        id="interval-after-went-live-measures",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(105, seen(live_at=45), checks=ALL_OK),
        Want(Action.ADVANCE, weight=20, phase=Phase.PROGRESSING),
        id="live-and-due-advances",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(60, seen(live_at=-300), checks=ALL_OK),
        Want(Action.ADVANCE, weight=20),
        id="live-before-the-transition-counts-from-the-transition",
    ),
    # --- progress deadline (Flagger: rollback "progress deadline exceeded") ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(700, seen(canary=unavailable(0))),
        Want(
            Action.ROLLBACK,
            "progress deadline exceeded: deployment backend not ready after 600s",
            Phase.FAILED,
            0,
        ),
        id="canary-unavailable-past-deadline-rolls-back",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(500, seen(canary=unavailable(0))),
        Want(Action.NONE, "waiting for canary deployment backend"),
        id="canary-unavailable-within-deadline-waits",
    ),
    pytest.param(
        make_canary(progressDeadlineSeconds=60),
        rolling(Phase.PROGRESSING, canaryWeight=0),
        at(61, seen(canary=unavailable(0))),
        Want(Action.ROLLBACK, "not ready after 60s", Phase.FAILED),
        id="canary-own-progress-deadline-seconds",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=20),
        at(5, seen(canary=WorkloadState("backend", False, "exceeded its progress deadline", True))),
        Want(Action.ROLLBACK, "progress deadline exceeded", Phase.FAILED),
        id="kubernetes-progress-deadline-exceeded-rolls-back",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10),
        at(700, seen(applied=False, canary=unavailable(0))),
        Want(Action.NONE, "waiting for the cluster to apply"),
        id="no-rollback-before-the-step-is-applied",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        at(
            700, seen(primary=WorkloadState("backend-primary", False, "exceeded its progress deadline", True))
        ),
        Want(Action.NONE, "waiting for primary deployment backend-primary"),
        id="primary-past-deadline-during-promotion-waits",
    ),
    # --- promotion and finalising wait for the primary ---
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        at(120, seen(primary=PRIMARY_STARTING)),
        Want(Action.NONE, "waiting for primary deployment backend-primary"),
        id="promoting-waits-for-primary",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.PROMOTING, canaryWeight=30),
        at(120, seen(canary=NOT_UPDATED, live_at=30)),
        Want(Action.FINALIZE, phase=Phase.FINALISING, weight=0),
        id="promoting-primary-ready-finalizes",
    ),
    pytest.param(
        make_canary(),
        rolling(Phase.FINALISING),
        at(120, seen(applied=False, reason="Kustomization flux-system/apps has applied nothing yet")),
        Want(Action.NONE, "has applied nothing yet"),
        id="finalising-waits-for-routing-applied",
    ),
    pytest.param(
        make_canary(skipAnalysis=True),
        rolling(Phase.PROGRESSING),
        at(120, seen(canary=NOT_UPDATED)),
        Want(Action.NONE, "waiting for canary deployment backend"),
        id="skip-analysis-still-waits-for-canary-ready",
    ),
    # --- at rest: a new revision starts without asking the cluster ---
    pytest.param(
        make_canary(),
        idle(Phase.SUCCEEDED),
        at(5, seen(applied=False)),
        Want(Action.START, phase=Phase.PROGRESSING, weight=0),
        id="new-revision-starts-regardless",
    ),
]


@pytest.mark.parametrize(("canary", "status", "obs", "want"), CASES)
def test_decide_with_cluster(canary: Canary, status: CanaryStatus, obs: Observation, want: Want) -> None:
    decision = decide(canary, status, obs)
    assert decision.action is want.action, decision
    assert want.reason in decision.reason, decision.reason
    if want.phase is not None:
        assert decision.status is not None and decision.status.phase is want.phase
    if want.weight is not None:
        assert decision.status is not None and decision.status.canary_weight == want.weight
    if want.action is Action.NONE:
        assert decision.status is None


def test_deadline_rollback_says_so_in_the_message_and_reverts() -> None:
    decision = decide(
        make_canary(), rolling(Phase.PROGRESSING, canaryWeight=10), at(700, seen(canary=unavailable(0)))
    )
    assert decision.revert_target
    assert decision.failed and decision.failed[0].startswith("progress deadline exceeded")
    assert decision.status is not None
    assert "progress deadline exceeded" in decision.status.message
    assert decision.status.failed_checks == 0  # no metric check failed


@pytest.mark.parametrize(
    ("analysis", "canary_threshold", "primary_threshold"),
    [({}, 100, 100), ({"canaryReadyThreshold": 50, "primaryReadyThreshold": 75}, 50, 75)],
)
def test_ready_thresholds(analysis: dict[str, int], canary_threshold: int, primary_threshold: int) -> None:
    canary = make_canary(analysis)
    assert ready_threshold(canary, "canary") == canary_threshold
    assert ready_threshold(canary, "primary") == primary_threshold


@pytest.mark.parametrize(
    ("since", "now", "exceeded"),
    [(None, 10_000, False), (0, 600, False), (0, 601, True)],
)
def test_deadline_is_flaggers_strictly_after(since: float | None, now: float, exceeded: bool) -> None:
    workload = WorkloadState(
        "backend", False, "", unavailable_since=None if since is None else T0 + timedelta(seconds=since)
    )
    assert deadline_exceeded(make_canary(), workload, T0 + timedelta(seconds=now)) is exceeded


def test_without_cluster_the_settle_guess_stands() -> None:
    status = idle(Phase.INITIALIZING)
    waiting = decide(make_canary(), status, at(30, None, target="old", live=False))
    assert waiting.action is Action.NONE and "primary" in waiting.reason
    assert decide(make_canary(), status, at(30, None, target="old", live=True)).action is Action.INITIALIZED
