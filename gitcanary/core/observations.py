"""What the edges observed, handed to the pure rollout core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    """What one check says about the step: go on, fail it, or neither yet.

    The threshold judge answers only PASS or FAIL. The compare judge also answers WAIT (too few
    samples to tell: the step neither advances nor fails) and HOLD (the primary is as bad as the
    canary, an incident: the step neither advances nor blames the canary).
    """

    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"
    HOLD = "hold"


@dataclass(frozen=True)
class CheckResult:
    """One metric check of one analysis run.

    `value` is None when the query returned no data or failed; such a check never passes.
    `line` is the human line that goes into the commit message, e.g.
    ``request-success-rate 99.87 >= 99 ok`` or ``request-duration no data: failed``.
    The compare judge also sets `primary` (the primary's value), `p_value` (one-sided
    Mann-Whitney U), `effect` (canary against primary, e.g. ``+0.4pp`` or ``x1.31``) and
    `outcome` (WAIT and HOLD need it; without it the verdict follows `ok`).
    """

    name: str
    value: float | None
    min: float | None
    max: float | None
    ok: bool
    line: str
    primary: float | None = None
    p_value: float | None = None
    effect: str = ""
    outcome: Verdict | None = None

    @property
    def verdict(self) -> Verdict:
        if self.outcome is not None:
            return self.outcome
        return Verdict.PASS if self.ok else Verdict.FAIL


class Gate(StrEnum):
    """The rollout's promotion-gate PR as the forge reports it (a merged one shows in Git instead)."""

    OPEN = "open"
    REJECTED = "rejected"  # closed without merging: roll back


@dataclass(frozen=True)
class HookResult:
    """What the webhooks of one Flagger type answered (`rollout`, `confirm-promotion`, ...).

    The hooks of a type are called in spec order and the first failure stops the rest, as in
    Flagger. `ok` is every hook answered 2xx; `name` and `error` say which one did not, and why.
    `mute_alert` is that hook's `muteAlert`: its failure is not sent to the alert providers.
    For `rollback` hooks a 2xx is the signal: `ok` means one answered 2xx (`name` says which).
    """

    type: str
    ok: bool
    name: str = ""
    error: str = ""
    mute_alert: bool = False

    @property
    def line(self) -> str:
        if self.ok:
            return f"{self.type} webhooks ok"
        return f"{self.type} webhook {self.name} failed: {self.error}"


@dataclass(frozen=True)
class Observation:
    """Everything the rollout core needs besides spec and status.

    `target_spec` is the hash of the target's pod template as Git describes it now, and
    `target_revision` a human label for it (usually the image tag).
    `live` says the last commit for this canary is applied and its workloads are ready (the
    cluster observer answers that, or the settle delay stands in for it).
    `checks` is None until the edge has run the analysis the core asked for; `hooks` likewise
    holds only the webhook types the core asked for.
    `cluster` is what the cluster observer saw; when it is set the core waits on it and does
    not consult `live` (None: no cluster access, `live` comes from the settle delay).
    `promotion_gate` is None when the canary has no gate (or its PR is not open yet).
    """

    now: datetime
    target_spec: str
    target_revision: str
    live: bool = True
    checks: tuple[CheckResult, ...] | None = None
    # Webhook outcomes by type, for the types the core asked for (Decision.hooks).
    hooks: Mapping[str, HookResult] = field(default_factory=dict)
    # When the edge last ran a due analysis that committed nothing (a closed gate): the next one is
    # due an interval after that, not at every poll. Kept in memory only; a restart asks again.
    last_attempt: datetime | None = None
    promotion_gate: Gate | None = None
    cluster: ClusterObservation | None = None
    # The last change to the target was pushed by an image automation (Flux's
    # image-automation-controller, Argo CD Image Updater), not by a person.
    automated: bool = False


@dataclass(frozen=True)
class WorkloadState:
    """One Deployment (the canary target or its primary) as the cluster reports it.

    `ready` applies Flagger's rule: the controller observed the latest generation, every replica
    is updated, and enough updated replicas are ready (`canaryReadyThreshold`/`primaryReadyThreshold`).
    `unavailable_since` is when `Available` turned False with `MinimumReplicasUnavailable`: the
    core compares it with the Canary's `progressDeadlineSeconds`, as Flagger does.
    """

    name: str
    ready: bool
    reason: str = ""  # why it is not ready, for humans
    deadline_exceeded: bool = False  # Kubernetes itself reports ProgressDeadlineExceeded
    unavailable_since: datetime | None = None


@dataclass(frozen=True)
class ClusterObservation:
    """Whether the last commit for a canary is applied, and how its workloads are doing.

    `applied` is False also when the observer could not tell (API unreachable, no applier object
    found): the rollout waits, it never advances on missing information. `reason` says which.
    `live_since` is when the observer first saw the commit applied with its workloads ready;
    analysis intervals count from then, not from the push.
    """

    applied: bool
    reason: str = ""
    canary: WorkloadState | None = None
    primary: WorkloadState | None = None
    live_since: datetime | None = None
