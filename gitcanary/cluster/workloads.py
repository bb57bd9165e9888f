"""Is a Deployment ready, by Flagger's rule (`pkg/canary/deployment_ready.go`)?

Ready: the controller observed the latest generation, every desired replica is updated, no old
replica is left, and at least `threshold`% of the updated replicas are ready. The progress
deadline is reported, not judged: the pure core compares it with the Canary's.
"""

from __future__ import annotations

from datetime import datetime

from kubernetes.client import V1Deployment

from gitcanary.core.observations import WorkloadState


def _condition(deployment: V1Deployment, kind: str) -> object | None:
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == kind:
            return condition
    return None


def deployment_state(deployment: V1Deployment, threshold: int) -> WorkloadState:
    name = (deployment.metadata.name if deployment.metadata else None) or "?"
    status = deployment.status
    generation = deployment.metadata.generation if deployment.metadata else None
    observed = status.observed_generation if status else None
    if status is None or observed is None or (generation or 0) > observed:
        return WorkloadState(name, False, "observed deployment generation less than desired generation")
    progressing = _condition(deployment, "Progressing")
    if progressing is not None and getattr(progressing, "reason", None) == "ProgressDeadlineExceeded":
        return WorkloadState(name, False, "exceeded its progress deadline", deadline_exceeded=True)
    unavailable_since: datetime | None = None
    available = _condition(deployment, "Available")
    if (
        available is not None
        and getattr(available, "status", None) == "False"
        and getattr(available, "reason", None) == "MinimumReplicasUnavailable"
    ):
        unavailable_since = getattr(available, "last_update_time", None) or getattr(
            available, "last_transition_time", None
        )
    desired = deployment.spec.replicas if deployment.spec and deployment.spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    ready = status.ready_replicas or 0
    needed = int(updated * threshold / 100)
    if updated < desired:
        reason = f"{updated} out of {desired} new replicas have been updated"
    elif total > updated:
        reason = f"{total - updated} old replicas are pending termination"
    elif ready < needed:
        reason = f"{ready} of {updated} updated replicas are ready (readyThreshold {threshold}%)"
    else:
        return WorkloadState(name, True, f"{ready}/{desired} ready")
    return WorkloadState(name, False, reason, unavailable_since=unavailable_since)
