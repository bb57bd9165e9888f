"""The rollout state machine: spec + status + observations -> decision. No I/O.

It follows Flagger's scheduler (`pkg/controller/scheduler.go`) phase by phase, with one
deliberate difference: the failed check that brings `failedChecks` to `threshold` is itself the
rollback commit (Flagger notices on the next interval; nothing useful happens in between).

The edges gather observations, call `decide`, and turn the returned status into commits.
When the core needs metric checks it answers `Action.MEASURE`; the edge runs the analysis and
calls `decide` again with `Observation.checks` set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from gitcanary.core import gates, holds
from gitcanary.core.manual_rules import refusal
from gitcanary.core.observations import (
    CheckResult,
    ClusterObservation,
    Gate,
    HookResult,
    Observation,
    Verdict,
    WorkloadState,
)
from gitcanary.spec.models import Canary
from gitcanary.spec.request import ManualAction
from gitcanary.spec.status import CanaryStatus, Phase


class Action(StrEnum):
    NONE = "none"  # nothing to commit now
    MEASURE = "measure"  # run the analysis, then decide again with the checks
    INITIALIZE = "initialize"  # commit the primary and its services
    INITIALIZED = "initialized"  # switch routing to the primary, scale the target to zero
    START = "start"  # new revision: scale the canary up, weight 0
    RESTART = "restart"  # newer revision during a rollout: analysis starts again
    CANCEL = "cancel"  # the target went back to the primary's spec: nothing to roll out
    ADVANCE = "advance"  # next weight or iteration
    HALT = "halt"  # a failed check, below threshold: stay at this weight
    PROMOTE = "promote"  # copy the canary spec to the primary
    FINALIZE = "finalize"  # route all traffic back to the primary
    SUCCEED = "succeed"  # scale the canary to zero; rollout done
    ROLLBACK = "rollback"  # all traffic to the primary, canary to zero, old revision written back
    WAIT = "wait"  # a confirm gate is closed: phase Waiting (rollout) or WaitingPromotion, reason in status
    QUARANTINE = "quarantine"  # an automation brought a failed revision back: hold it, roll nothing out
    HOLD = "hold"  # compare judge: an incident on both workloads, or too few samples; no advance, no failure


KUBERNETES_PROVIDER = "kubernetes"


class Strategy(StrEnum):
    CANARY = "canary"
    AB_TESTING = "ab-testing"
    BLUE_GREEN = "blue-green"


@dataclass(frozen=True)
class Decision:
    """What to do for one canary now.

    `status` is the status to commit (None: no commit). The generated objects follow from it:
    routing weights are `status.canary_weight`, the canary runs when `status.phase` asks for it.
    `copy_to_primary` re-renders the primary from the target; `revert_target` writes the
    primary's images back into the user's manifests.
    """

    action: Action
    reason: str
    status: CanaryStatus | None = None
    details: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # lines of the checks that failed (HALT, ROLLBACK)
    copy_to_primary: bool = False
    revert_target: bool = False
    hooks: tuple[str, ...] = ()  # with MEASURE: webhook types to call before deciding again
    actor: str = ""  # the person whose manual request this decision honours (Gitcanary-Actor)
    request: str = ""  # that request's action: promote, abort or retry
    # The checks this decision was made on, set by the edge that ran them; they become
    # `Gitcanary-Check` trailers so audits read values without parsing the human lines.
    checks: tuple[CheckResult, ...] = ()
    # A wait that `decide` repeats for any instant before this one while nothing else it reads
    # changes (the same canary, status and observation but for `now`): the edge need not ask again.
    quiet_until: datetime | None = None


def strategy_of(canary: Canary) -> Strategy:
    """Flagger's rule: match + iterations is A/B, iterations alone blue/green, else canary."""
    analysis = canary.spec.analysis
    if analysis.iterations > 0 and analysis.match:
        return Strategy.AB_TESTING
    if analysis.iterations > 0:
        return Strategy.BLUE_GREEN
    return Strategy.CANARY


def threshold_of(canary: Canary) -> int:
    return canary.spec.analysis.threshold if canary.spec.analysis.threshold > 0 else 1


def max_weight_of(canary: Canary) -> int:
    """Flagger's `maxWeight`: the last of `stepWeights`, else `maxWeight` when above 0, else 100.

    Capped at 100, the total weight (Flagger caps `stepWeights` only and stalls on a larger `maxWeight`).
    """
    analysis = canary.spec.analysis
    if analysis.step_weights:
        return min(analysis.step_weights[-1], 100)
    return min(analysis.max_weight, 100) if analysis.max_weight else 100


def next_weight(canary: Canary, current: int) -> int:
    """The weight after `current`: `current + stepWeight`, or the next of `stepWeights`, capped.

    As in Flagger's `nextStepWeight`, a `stepWeight` above 0 wins over `stepWeights`.
    """
    analysis = canary.spec.analysis
    cap = max_weight_of(canary)
    if analysis.step_weights and not analysis.step_weight:
        for weight in analysis.step_weights:
            if weight > current:
                return min(weight, 100)
        return cap
    step = analysis.step_weight or 0
    return min(current + step, cap, 100)


def decide(canary: Canary, status: CanaryStatus | None, obs: Observation) -> Decision:
    """The next transition for `canary`, given its committed `status` and what was observed."""
    # Flagger checks `suspend` before anything else, initialization included.
    if canary.spec.suspend:
        return Decision(Action.NONE, "suspended")
    if status is None:
        return _initialize(obs)
    if status.request is not None:
        manual = _honour_request(canary, status, obs)
        if manual is not None:
            return manual
    if status.phase is Phase.INITIALIZING:
        waiting = _wait_for_cluster(canary, status, obs, canary_needed=False)
        if waiting is not None:
            return waiting
        if not _live(obs):
            return Decision(Action.NONE, "waiting for the primary to become ready")
        # Ready is what the cluster reported; without cluster access it is the settle delay's guess,
        # and the commit says so rather than claim a readiness nobody saw.
        guessed = "primary assumed ready (settle delay passed, no cluster access)"
        ready = "primary ready" if obs.cluster is not None else guessed
        return Decision(
            Action.INITIALIZED,
            f"{ready}; routing all traffic to it",
            _step(status, obs, phase=Phase.INITIALIZED, canary_weight=0, message="Initialization done"),
        )

    new_revision = obs.target_spec not in (status.last_applied_spec, status.last_promoted_spec)
    if status.phase is Phase.WAITING:
        return _waiting(canary, status, obs, new_revision)
    if status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.QUARANTINED):
        if not new_revision:
            return Decision(Action.NONE, f"{status.phase.value}; no new revision")
        return (
            _quarantine(canary, status, obs)
            or _confirm_rollout(canary, status, obs)
            or _start(canary, status, obs, Action.START)
        )

    # A rollout is under way (Waiting .. Finalising).
    if status.phase in (Phase.PROMOTING, Phase.FINALISING):
        # The primary already runs (or is being given) the canary's spec: finish the promotion
        # even if a newer revision arrived; that one starts from Succeeded next.
        return _finish_promotion(canary, status, obs)
    if obs.target_spec == status.last_promoted_spec and obs.target_spec != status.last_applied_spec:
        return Decision(
            Action.CANCEL,
            "target is back at the primary's spec; rollout abandoned",
            _step(
                status,
                obs,
                phase=Phase.INITIALIZED,
                canary_weight=0,
                failed_checks=0,
                iterations=0,
                mirrored=False,
                canary_revision=status.primary_revision,
                last_applied_spec=status.last_promoted_spec,
                message="Rollout abandoned: target reverted to the primary spec",
            ),
        )
    if new_revision:
        return _start(canary, status, obs, Action.RESTART)
    if obs.promotion_gate is Gate.REJECTED:
        # Closing the promotion PR unmerged is a person saying no: roll back now, like a failed check.
        return _rollback(status, obs, "promotion PR closed unmerged", status.failed_checks)
    # Flagger checks primary and canary readiness before anything else of the analysis.
    waiting = _wait_for_cluster(canary, status, obs, canary_needed=True)
    if waiting is not None:
        return waiting
    if canary.spec.skip_analysis:
        return _promote(canary, status, obs, skip=True)
    if not _due(canary, status, obs):
        # Only the clock moves `_due` here; with a cluster observer, the cluster can change too.
        until = _analysis_at(canary, status, obs) if obs.cluster is None else None
        return Decision(Action.NONE, "waiting for the next analysis interval", quiet_until=until)
    if not _live(obs):
        return Decision(Action.NONE, "waiting for the last step to be applied")
    manual = _rollback_hook(canary, status, obs)
    if manual is not None:
        return manual

    threshold = threshold_of(canary)
    if status.failed_checks >= threshold:
        # Reached only when `threshold` was lowered mid-rollout; Flagger rolls back before measuring.
        return _rollback(
            status,
            obs,
            f"failed checks {status.failed_checks} >= threshold {threshold}",
            status.failed_checks,
        )
    strategy = strategy_of(canary)
    first_step = status.canary_weight == 0 and status.iterations == 0 and not status.mirrored
    # Flagger runs no metric analysis before the canary receives (or is mirrored) traffic or an
    # iteration ran; pre-rollout hooks run then instead, rollout hooks before every analysis. A
    # failure of either is a failed check.
    hook = _hook_check(canary, obs, gates.PRE_ROLLOUT if first_step else gates.ROLLOUT)
    if isinstance(hook, Decision):
        return hook
    if hook is not None:
        return _failed_check(canary, status, obs, [hook])
    if not first_step:
        if obs.checks is None:
            return Decision(Action.MEASURE, "analysis due")
        failed = [check for check in obs.checks if check.verdict is Verdict.FAIL]
        if failed:
            return _failed_check(canary, status, obs, failed)
        held = holds.pending(obs.checks)
        if held is not None:
            return _hold(canary, status, obs, *held)
    if strategy is Strategy.CANARY:
        return _advance_canary(canary, status, obs)
    return _advance_iterations(canary, status, obs, strategy)


def _since(status: CanaryStatus, obs: Observation) -> datetime:
    # An interval after the last transition, a due analysis that committed nothing (a closed gate),
    # or, with a cluster observer, the moment the step went live (not its push): the latest of them.
    since = max(status.last_transition_time, obs.last_attempt or status.last_transition_time)
    if obs.cluster is not None and obs.cluster.live_since is not None:
        since = max(since, obs.cluster.live_since)
    return since


def _due(canary: Canary, status: CanaryStatus, obs: Observation) -> bool:
    elapsed = (obs.now - _since(status, obs)).total_seconds()
    return elapsed >= canary.spec.analysis.interval_seconds


def _analysis_at(canary: Canary, status: CanaryStatus, obs: Observation) -> datetime:
    """The first instant `_due` can hold, a microsecond early (timedelta rounds to microseconds)."""
    interval = timedelta(seconds=canary.spec.analysis.interval_seconds) - timedelta(microseconds=1)
    return _since(status, obs) + interval


def _live(obs: Observation) -> bool:
    """The settle delay's guess, when there is no cluster observer (else `_wait_for_cluster` decides)."""
    return obs.live if obs.cluster is None else True


def ready_threshold(canary: Canary, role: str) -> int:
    """Flagger's `canaryReadyThreshold`/`primaryReadyThreshold`: percent of updated replicas ready."""
    analysis = canary.spec.analysis
    value = analysis.canary_ready_threshold if role == "canary" else analysis.primary_ready_threshold
    return 100 if value is None else int(value)


def deadline_exceeded(canary: Canary, workload: WorkloadState, now: datetime) -> bool:
    """Flagger's `isDeploymentReady`: Kubernetes' own ProgressDeadlineExceeded, or pods unavailable
    for longer than the Canary's `progressDeadlineSeconds`."""
    if workload.deadline_exceeded:
        return True
    if workload.unavailable_since is None:
        return False
    elapsed = (now - workload.unavailable_since).total_seconds()
    return elapsed > canary.spec.progress_deadline_seconds


def _wait_for_cluster(
    canary: Canary, status: CanaryStatus, obs: Observation, canary_needed: bool
) -> Decision | None:
    """Wait until the last commit is applied and the workloads it runs are ready; None: go on.

    A canary past its progress deadline during analysis is rolled back (Flagger's "progress
    deadline exceeded"); a primary past it only waits, as in Flagger: there is nothing to roll back to.
    """
    cluster: ClusterObservation | None = obs.cluster
    if cluster is None:
        return None
    if not cluster.applied:
        return Decision(Action.NONE, f"waiting for the cluster to apply the last commit: {cluster.reason}")
    needed = [("primary", cluster.primary)]
    if canary_needed:
        needed.insert(0, ("canary", cluster.canary))
    for role, workload in needed:
        if workload is None:
            return Decision(Action.NONE, f"waiting for the cluster: {role} deployment not observed")
        if workload.ready:
            continue
        if role == "canary" and status.phase.in_rollout and deadline_exceeded(canary, workload, obs.now):
            why = (
                f"progress deadline exceeded: deployment {workload.name} not ready after "
                f"{canary.spec.progress_deadline_seconds}s ({workload.reason})"
            )
            return _rollback(status, obs, why, status.failed_checks, failed=(why,))
        return Decision(Action.NONE, f"waiting for {role} deployment {workload.name}: {workload.reason}")
    return None


def _step(status: CanaryStatus, obs: Observation, **changes: object) -> CanaryStatus:
    """The status after a transition at `obs.now`."""
    data = status.model_dump()
    data.update(changes)
    data["last_transition_time"] = obs.now
    if "held_since" not in changes:
        # A hold lasts until any other transition; only HOLD sets it.
        data.update(held_since=None, hold_reason="")
    # Every transition answers a pending manual request: it was honoured, or no longer applies.
    data["request"] = None
    # The message lists failed checks; a canary with many of them would exceed the status field's
    # bound and halt on its own rollback: cut it there (the commit message keeps every line).
    if len(data.get("message") or "") > _MESSAGE_LIMIT:
        data["message"] = data["message"][: _MESSAGE_LIMIT - 3] + "..."
    return CanaryStatus.model_validate(data)


# CanaryStatus.message's max_length, read from the model so the two cannot drift apart.
_MESSAGE_LIMIT: int = next(
    m.max_length for m in CanaryStatus.model_fields["message"].metadata if hasattr(m, "max_length")
)


def _initialize(obs: Observation) -> Decision:
    status = CanaryStatus(
        phase=Phase.INITIALIZING,
        last_applied_spec=obs.target_spec,
        last_promoted_spec=obs.target_spec,
        primary_revision=obs.target_revision,
        canary_revision=obs.target_revision,
        last_transition_time=obs.now,
        message="Primary created; waiting for it to become ready",
    )
    return Decision(Action.INITIALIZE, "creating the primary from the target", status, copy_to_primary=True)


def _start(canary: Canary, status: CanaryStatus, obs: Observation, action: Action) -> Decision:
    started = obs.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    rollout_id = f"{status.primary_revision}..{obs.target_revision}/{started}"
    # Rolling a revision out again (a person's bump, a retry) lifts its quarantine.
    status = status.model_copy(
        update={"quarantined": tuple(r for r in status.quarantined if r != obs.target_revision)}
    )
    if canary.spec.skip_analysis:
        fresh = _step(
            status,
            obs,
            last_applied_spec=obs.target_spec,
            canary_revision=obs.target_revision,
            rollout_id=rollout_id,
            failed_checks=0,
            iterations=0,
        )
        return _promote(canary, fresh, obs, skip=True)
    verb = "new revision detected" if action is Action.START else "revision changed during analysis"
    new = _step(
        status,
        obs,
        phase=Phase.PROGRESSING,
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        mirrored=False,
        last_applied_spec=obs.target_spec,
        canary_revision=obs.target_revision,
        rollout_id=rollout_id,
        message=f"{verb}; starting canary analysis",
    )
    return Decision(action, f"{verb}: {status.primary_revision} -> {obs.target_revision}", new)


def _check_lines(checks: tuple[CheckResult, ...] | None) -> tuple[str, ...]:
    return tuple(check.line for check in checks or ())


def _failed_check(
    canary: Canary, status: CanaryStatus, obs: Observation, failed: list[CheckResult]
) -> Decision:
    count = status.failed_checks + 1
    threshold = threshold_of(canary)
    lines = tuple(check.line for check in failed)
    names = ", ".join(lines)
    if count >= threshold:
        return _rollback(
            status,
            obs,
            f"failed checks reached threshold {count}/{threshold}",
            failed_checks=count,
            failed=lines,
        )
    new = _step(status, obs, failed_checks=count, message=f"Halt advancement: {names}")
    return Decision(
        Action.HALT,
        f"halt at {status.canary_weight}% ({count}/{threshold} failed checks)",
        new,
        details=_check_lines(obs.checks),
        failed=lines,
    )


def _hold(
    canary: Canary, status: CanaryStatus, obs: Observation, kind: Verdict, held: tuple[CheckResult, ...]
) -> Decision:
    """The compare judge could not blame or clear the canary: stay at this weight, bounded.

    One HOLD commit per change of reason (the metrics and the kind); the same hold at the next
    interval commits nothing. Past its bound an incident rolls back and a wait is a failed check.
    """
    why = holds.reason(kind, held)
    # The bound runs from when this kind of hold began: an incident after a wait gets its own.
    same_kind = status.hold_reason.split(":")[0] == why.split(":")[0]
    since = status.held_since if status.held_since is not None and same_kind else obs.now
    held_for = (obs.now - since).total_seconds()
    bound = holds.bound_seconds(canary, kind)
    lines = tuple(check.line for check in held)
    if held_for >= bound and kind is Verdict.HOLD:
        return _rollback(
            status, obs, f"incident hold longer than {bound:g}s ({why})", status.failed_checks, lines
        )
    if held_for >= bound:
        waited = f"waited {held_for:g}s, longer than {bound:g}s"
        stale = tuple(
            replace(check, outcome=Verdict.FAIL, line=f"{check.line}: {waited}") for check in held
        )
        # The commit's evidence lines and trailers say the wait failed, not only its subject (which
        # is bounded in length and may cut the reason off).
        by_name = {check.name: check for check in stale}
        obs = replace(obs, checks=tuple(by_name.get(check.name, check) for check in obs.checks or ()))
        return _failed_check(canary, status, obs, list(stale))
    if status.held_since is not None and status.hold_reason == why:
        return Decision(Action.NONE, f"holding at {status.canary_weight}% for {held_for:g}s: {why}")
    what = "primary as bad as canary" if kind is Verdict.HOLD else "too few samples to judge"
    new = _step(
        status, obs, held_since=since, hold_reason=why, message=f"Hold advancement ({what}): {why}"
    )
    return Decision(
        Action.HOLD,
        f"hold at {status.canary_weight}% ({what}; at most {bound:g}s)",
        new,
        details=_check_lines(obs.checks),
        failed=lines,
    )


def _rollback(
    status: CanaryStatus, obs: Observation, why: str, failed_checks: int, failed: tuple[str, ...] = ()
) -> Decision:
    new = _step(
        status,
        obs,
        phase=Phase.FAILED,
        canary_weight=0,
        mirrored=False,
        failed_checks=failed_checks,
        message=f"Canary failed! {why}" + (f": {', '.join(failed)}" if failed else ""),
        quarantined=_with(status.quarantined, status.canary_revision),
    )
    return Decision(
        Action.ROLLBACK, why, new, details=_check_lines(obs.checks), failed=failed, revert_target=True
    )


def _advance_canary(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision:
    cap = max_weight_of(canary)
    if status.canary_weight < cap and canary.spec.analysis.mirror and status.canary_weight == 0:
        if not status.mirrored:
            # Flagger's canary with mirroring: one interval of mirrored requests (responses come
            # from the primary) before the first weight step.
            new = _step(status, obs, mirrored=True, message="Running mirror step")
            return Decision(
                Action.ADVANCE, "mirror traffic to the canary", new, details=_check_lines(obs.checks)
            )
        weight = next_weight(canary, 0)
        new = _step(
            status, obs, mirrored=False, canary_weight=weight, message=f"Advance canary weight {weight}"
        )
        return Decision(
            Action.ADVANCE, f"stop mirroring; advance to {weight}%", new, details=_check_lines(obs.checks)
        )
    if status.canary_weight < cap:
        gate = _confirm_traffic_increase(canary, obs)
        if gate is not None:
            return gate
        weight = next_weight(canary, status.canary_weight)
        if weight <= status.canary_weight:
            # stepWeight 0 would stall forever; the spec loader rejects it, this guards the core.
            return _rollback(
                status, obs, "analysis has no stepWeight or stepWeights to advance by", status.failed_checks
            )
        new = _step(status, obs, canary_weight=weight, message=f"Advance canary weight {weight}")
        return Decision(Action.ADVANCE, f"advance to {weight}%", new, details=_check_lines(obs.checks))
    return _confirm_promotion(canary, status, obs) or _promote(canary, status, obs, skip=False)


def _advance_iterations(
    canary: Canary, status: CanaryStatus, obs: Observation, strategy: Strategy
) -> Decision:
    total = canary.spec.analysis.iterations
    if status.iterations < total:
        done = status.iterations + 1
        # A/B sends the matched requests to the canary for every iteration (Flagger's runAB routes
        # 0/100 on the match route); blue/green keeps all traffic on the primary until the switch.
        weight = 100 if strategy is Strategy.AB_TESTING else status.canary_weight
        # Blue/green with mirroring: the primary answers, the canary gets a copy of every request.
        mirrored = strategy is Strategy.BLUE_GREEN and canary.spec.analysis.mirror
        new = _step(
            status,
            obs,
            iterations=done,
            canary_weight=weight,
            mirrored=mirrored,
            message=f"Advance iteration {done}/{total}",
        )
        return Decision(Action.ADVANCE, f"iteration {done}/{total}", new, details=_check_lines(obs.checks))
    gate = _confirm_promotion(canary, status, obs)
    if gate is not None:
        return gate
    if strategy is Strategy.BLUE_GREEN and status.iterations == total:
        # Blue/green switches all traffic to the canary for one more interval before promoting.
        # The `kubernetes` provider has no router: Flagger skips the switch, the apex Service
        # keeps selecting the primary until the promotion copies the canary's spec into it.
        weight = 0 if canary.provider == KUBERNETES_PROVIDER else 100
        new = _step(
            status,
            obs,
            iterations=total + 1,
            canary_weight=weight,
            mirrored=False,
            message="Routing all traffic to canary" if weight else "Analysis done (no router to switch)",
        )
        return Decision(
            Action.ADVANCE, "routing all traffic to the canary", new, details=_check_lines(obs.checks)
        )
    return _promote(canary, status, obs, skip=False)


def _promote(canary: Canary, status: CanaryStatus, obs: Observation, skip: bool) -> Decision:
    if skip:
        # Flagger's skipAnalysis promotes in one go: copy, route to the primary, scale down.
        new = _succeeded(status, obs, "Canary analysis skipped; promotion finished")
        return Decision(Action.PROMOTE, "analysis skipped; promoting", new, copy_to_primary=True)
    new = _step(
        status,
        obs,
        phase=Phase.PROMOTING,
        mirrored=False,  # a manual promotion may come during a mirrored step; promotion never mirrors
        message=f"Copying {canary.spec.target_ref.name} template spec to "
        f"{canary.spec.target_ref.name}-primary",
    )
    return Decision(
        Action.PROMOTE,
        "analysis passed; promoting the canary spec to the primary",
        new,
        details=_check_lines(obs.checks),
        copy_to_primary=True,
    )


def _succeeded(status: CanaryStatus, obs: Observation, message: str) -> CanaryStatus:
    """The primary now runs the canary's revision; all traffic is on it and the canary is at zero."""
    return _step(
        status,
        obs,
        phase=Phase.SUCCEEDED,
        canary_weight=0,
        mirrored=False,
        last_promoted_spec=status.last_applied_spec,
        primary_revision=status.canary_revision,
        message=message,
    )


def _finish_promotion(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision:
    waiting = _wait_for_cluster(canary, status, obs, canary_needed=False)
    if waiting is not None:
        return waiting
    if not _due(canary, status, obs) or not _live(obs):
        return Decision(Action.NONE, "waiting for the promoted primary to be applied")
    if status.phase is Phase.PROMOTING:
        step = canary.spec.analysis.step_weight_promotion
        if step and status.canary_weight - step > 0:
            weight = status.canary_weight - step
            new = _step(status, obs, canary_weight=weight, message=f"Advance primary weight {100 - weight}")
            return Decision(Action.FINALIZE, f"promotion: primary at {100 - weight}%", new)
        new = _step(
            status, obs, phase=Phase.FINALISING, canary_weight=0, message="Routing all traffic to primary"
        )
        return Decision(Action.FINALIZE, "routing all traffic to the primary", new)
    new = _succeeded(status, obs, "Promotion completed! Scaling down canary")
    return Decision(Action.SUCCEED, "promotion completed; canary scaled to zero", new)


def _honour_request(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision | None:
    """A person's promote, abort or retry, done at once; None when it no longer applies.

    A request made for another rollout, or for a phase the rollout has left, is not acted on: the
    next transition drops it (`_step` clears it) and normal analysis decides as if it were not there.
    A newer revision wins over the request too, like a new bump restarts Flagger's analysis.
    """
    request = status.request
    assert request is not None
    if request.rollout_id != status.rollout_id or refusal(request.action, status.phase, False):
        return None
    new_revision = obs.target_spec not in (status.last_applied_spec, status.last_promoted_spec)
    if new_revision and status.phase is not Phase.FAILED:
        return None
    actor, asked = request.actor, request.action.value
    who = f"requested by {request.actor}"
    match request.action:
        case ManualAction.PROMOTE:
            decision = _promote(canary, status, obs, skip=False)
            return replace(
                decision,
                reason=f"manual promotion {who}; remaining analysis skipped",
                actor=actor,
                request=asked,
            )
        case ManualAction.ABORT:
            decision = _rollback(status, obs, f"aborted by {request.actor}", status.failed_checks)
            return replace(decision, actor=actor, request=asked)
        case ManualAction.RETRY:
            action = Action.START if status.phase in (Phase.FAILED, Phase.QUARANTINED) else Action.RESTART
            decision = _start(canary, status, obs, action)
            if decision.status is not None and decision.action is not Action.PROMOTE:
                message = f"Retry {who}; starting canary analysis"
                decision = replace(decision, status=decision.status.model_copy(update={"message": message}))
            return replace(
                decision,
                reason=f"retry {who}: analysing {obs.target_revision} again",
                actor=actor,
                request=asked,
            )
    return None


# -- quarantine: no rollout loop with an image automation --------------------------------------


def _with(revisions: tuple[str, ...], revision: str) -> tuple[str, ...]:
    return revisions if not revision or revision in revisions else (*revisions, revision)


def _quarantine(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision | None:
    """A revision that failed, brought back by an image automation, is held instead of rolled out.

    The automation (Flux's ImageUpdateAutomation, Argo CD Image Updater) picks the newest tag
    again after the rollback wrote the old one back; rolling it out again would fail again, every
    automation interval. The target keeps the failed tag at 0 replicas (no write-back, so no
    ping-pong with the bot); a newer tag, a person's bump or `gitcanary retry` starts a rollout.
    """
    if not obs.automated or obs.target_revision not in status.quarantined:
        return None
    new = _step(
        status,
        obs,
        phase=Phase.QUARANTINED,
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        mirrored=False,
        last_applied_spec=obs.target_spec,
        canary_revision=obs.target_revision,
        message=(
            f"Quarantined: {obs.target_revision} failed its rollout and an image automation brought it "
            f"back; not rolled out again (gitcanary retry {canary.key} to analyse it again)"
        ),
    )
    return Decision(
        Action.QUARANTINE,
        f"{obs.target_revision} failed before and was pushed back by an image automation; "
        "held at 0 replicas, all traffic on the primary",
        new,
        details=(
            f"a newer tag starts a rollout as usual; `gitcanary retry {canary.key}` analyses "
            f"{obs.target_revision} again",
        ),
    )


# -- webhook gates (Flagger's confirm-*, pre-rollout, rollout and rollback hooks) ------------------


def _ask(kinds: tuple[str, ...]) -> Decision:
    return Decision(Action.MEASURE, f"{', '.join(kinds)} webhooks due", hooks=kinds)


def _closed(canary: Canary, obs: Observation, kind: str) -> Decision | HookResult | None:
    """`kind`'s webhooks: a decision asking for them while their answer is not observed, then the
    failed answer (a closed gate, a failed hook), or None when they passed or there are none."""
    ask = gates.missing(canary, obs, kind)
    if ask:
        return _ask(ask)
    return gates.closed(obs, kind)


def _hook_check(canary: Canary, obs: Observation, kind: str) -> Decision | CheckResult | None:
    """A pre-rollout/rollout hook: ask for it, or its failure as a failed check, or None (passed)."""
    found = _closed(canary, obs, kind)
    return gates.as_check(found) if isinstance(found, HookResult) else found


def _confirm_rollout(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision | None:
    """Flagger's confirm-rollout gate, before the canary scales up: closed means phase Waiting."""
    result = _closed(canary, obs, gates.CONFIRM_ROLLOUT)
    if not isinstance(result, HookResult):
        return result
    if status.phase is Phase.WAITING:
        return Decision(Action.NONE, f"waiting for rollout approval: {result.line}")
    new = _step(
        status,
        obs,
        phase=Phase.WAITING,
        canary_weight=0,
        canary_revision=obs.target_revision,
        message=f"Halt advancement waiting for approval {result.name}",
    )
    return Decision(Action.WAIT, f"waiting for rollout approval ({result.name})", new, details=(result.line,))


def _waiting(canary: Canary, status: CanaryStatus, obs: Observation, new_revision: bool) -> Decision:
    """Phase Waiting: a new revision waits for its confirm-rollout gate; nothing runs yet."""
    if not new_revision:
        return Decision(
            Action.CANCEL,
            "target is back at the primary's spec; rollout abandoned before it started",
            _step(
                status,
                obs,
                phase=Phase.INITIALIZED,
                canary_weight=0,
                canary_revision=status.primary_revision,
                message="Rollout abandoned while waiting for approval",
            ),
        )
    manual = _rollback_hook(canary, status, obs)
    if manual is not None:
        return manual
    return _confirm_rollout(canary, status, obs) or _start(canary, status, obs, Action.START)


def _rollback_hook(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision | None:
    """Flagger's rollback hooks: a 2xx answer while Progressing, Waiting or WaitingPromotion rolls back."""
    if status.phase not in (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION):
        return None
    ask = gates.missing(canary, obs, gates.ROLLBACK)
    if ask:
        return _ask(ask)
    result = gates.signalled(obs, gates.ROLLBACK)
    if result is None:
        return None
    return _rollback(status, obs, f"rollback webhook {result.name} invoked", status.failed_checks)


def _confirm_traffic_increase(canary: Canary, obs: Observation) -> Decision | None:
    """Flagger's confirm-traffic-increase gate: closed, the weight stays (phase stays Progressing)."""
    result = _closed(canary, obs, gates.CONFIRM_TRAFFIC_INCREASE)
    if not isinstance(result, HookResult):
        return result
    return Decision(Action.NONE, f"waiting for traffic increase approval: {result.line}")


def _confirm_promotion(canary: Canary, status: CanaryStatus, obs: Observation) -> Decision | None:
    """Flagger's confirm-promotion gate: closed means phase WaitingPromotion; analysis goes on meanwhile."""
    result = _closed(canary, obs, gates.CONFIRM_PROMOTION)
    if not isinstance(result, HookResult):
        return result
    if status.phase is Phase.WAITING_PROMOTION:
        return Decision(Action.NONE, f"waiting for promotion approval: {result.line}")
    new = _step(
        status,
        obs,
        phase=Phase.WAITING_PROMOTION,
        message=f"Halt advancement waiting for promotion approval {result.name}",
    )
    return Decision(
        Action.WAIT,
        f"waiting for promotion approval ({result.name})",
        new,
        details=(*_check_lines(obs.checks), result.line),
    )
