"""The state gitcanary keeps per canary, committed in Git next to the generated objects.

It is what a restarted reconciler reads to resume: Flagger keeps the same fields in the
Canary's `.status`; gitcanary keeps them in `<generated dir>/gitcanary-status.yaml`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from gitcanary.redaction import redact
from gitcanary.spec.request import ManualRequest

STATUS_API_VERSION = "gitcanary.io/v1alpha1"
STATUS_KIND = "CanaryStatus"


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    # A revision that failed came back from an image automation: held, not rolled out again.
    QUARANTINED = "Quarantined"

    @property
    def in_rollout(self) -> bool:
        """A rollout is under way: the canary runs and may receive traffic."""
        return self in _ROLLOUT_PHASES

    @property
    def canary_scaled_up(self) -> bool:
        # Waiting is Flagger's confirm-rollout gate: the canary scales up only once it opens.
        if self is Phase.WAITING:
            return False
        return self in _ROLLOUT_PHASES or self in (Phase.PROMOTING, Phase.FINALISING)


_ROLLOUT_PHASES = frozenset({Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION})


def utcnow() -> datetime:
    return datetime.now(UTC)


class CanaryStatus(BaseModel):
    """Flagger's CanaryStatus fields that matter for resuming, plus the revisions for humans."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    phase: Phase
    # Bounded: a weight outside 0..100 would be committed into routing objects as is.
    canary_weight: int = Field(0, alias="canaryWeight", ge=0, le=100)
    failed_checks: int = Field(0, alias="failedChecks", ge=0, le=10_000)
    iterations: int = Field(0, ge=0, le=10_000)
    # sha256 of the target's rendered pod template: the revision under analysis...
    last_applied_spec: str = Field(alias="lastAppliedSpec")
    # ...and the one the primary runs.
    last_promoted_spec: str = Field(alias="lastPromotedSpec")
    primary_revision: str = Field("", alias="primaryRevision")
    canary_revision: str = Field("", alias="canaryRevision")
    rollout_id: str = Field("", alias="rolloutId")
    last_transition_time: datetime = Field(alias="lastTransitionTime")
    message: str = Field("", max_length=2000)
    # A person's promote/abort/retry waiting for the next tick (`gitcanary promote` etc.).
    request: ManualRequest | None = None
    # Traffic is mirrored to the canary (Flagger reads this back from the routing object).
    mirrored: bool = False
    # Revisions (tags) a rollback failed: an image automation bringing one back does not start a
    # rollout (phase Quarantined); a person's bump or `gitcanary retry` does.
    quarantined: tuple[str, ...] = ()
    # The compare judge's hold: since when the step neither advances nor fails (an incident on both
    # workloads, or too few samples), and why, as `incident: m1, m2` or `waiting: m1`.
    held_since: datetime | None = Field(None, alias="heldSince")
    hold_reason: str = Field("", alias="holdReason")

    def to_document(self, canary_key: str) -> dict[str, object]:
        """The YAML document written to the status file (stable key order, plain types)."""
        body = self.model_dump(mode="json", by_alias=True)
        body["message"] = redact(body["message"])  # it is committed and pushed: no credential in it
        if body.get("request") is None:
            body.pop("request", None)  # absent, not `null`: status files of idle canaries stay as they were
        if not self.mirrored:
            del body["mirrored"]  # only canaries that mirror carry the field
        if not self.quarantined:
            del body["quarantined"]  # status files of canaries that never failed stay as they were
        if self.held_since is None:
            body.pop("heldSince", None)  # only a held step carries them
            body.pop("holdReason", None)
        return {"apiVersion": STATUS_API_VERSION, "kind": STATUS_KIND, "canary": canary_key, "status": body}

    @classmethod
    def from_document(cls, doc: dict[str, object]) -> CanaryStatus:
        return cls.model_validate(doc["status"])

    def without_request(self) -> CanaryStatus:
        return self.model_copy(update={"request": None})

    @property
    def fresh(self) -> bool:
        """What `gitcanary init` writes (from a person's checkout): nothing measured, nothing routed."""
        return (
            self.phase in (Phase.INITIALIZING, Phase.INITIALIZED)
            and self.canary_weight == 0
            and self.failed_checks == 0
            and self.iterations == 0
            and self.request is None
        )
