"""What the edges observed, handed to the pure rollout core."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class CheckResult:
    """One metric check of one analysis run.

    `value` is None when the query returned no data or failed; such a check never passes.
    `line` is the human line that goes into the commit message, e.g.
    ``request-success-rate 99.87 >= 99 ok`` or ``request-duration no data: failed``.
    """

    name: str
    value: float | None
    min: float | None
    max: float | None
    ok: bool
    line: str


class Gate(StrEnum):
    """The rollout's promotion-gate PR as the forge reports it (a merged one shows in Git instead)."""

    OPEN = "open"
    REJECTED = "rejected"  # closed without merging: roll back


@dataclass(frozen=True)
class Observation:
    """Everything the rollout core needs besides spec and status.

    `target_spec` is the hash of the target's pod template as Git describes it now, and
    `target_revision` a human label for it (usually the image tag).
    `live` says the last commit for this canary is applied and its workloads are ready (the
    cluster observer answers that, or the settle delay stands in for it).
    `checks` is None until the edge has run the analysis the core asked for.
    `promotion_gate` is None when the canary has no gate (or its PR is not open yet).
    """

    now: datetime
    target_spec: str
    target_revision: str
    live: bool = True
    checks: tuple[CheckResult, ...] | None = None
    promotion_gate: Gate | None = None
