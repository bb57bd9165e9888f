"""Manual requests a person commits for the reconciler to honour: promote, abort, retry.

A request lives in the canary's status file next to the state it acts on, so the person's commit
and the reconciler's next step meet in one file: Git orders them, and a race is a plain conflict
that one side re-decides. Which action fits which phase is `gitcanary.core.manual_rules.refusal`.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

# git's `Name <email>`, one line: the name and email become a commit author and a trailer value.
IDENT = re.compile(r"(?P<name>[^<>\x00-\x1f\x7f]{1,100}?)\s*<(?P<email>[^<>\s@]{1,64}@[^<>\s@]{1,190})>")


def check_ident(text: str) -> str:
    """`text` if it is `Name <email>` on one line with no control characters; ValueError otherwise."""
    stripped = text.strip()
    match = IDENT.fullmatch(stripped)
    if not match or not match.group("name").strip() or not stripped.isprintable():
        raise ValueError(
            f"{text[:120]!r}: expected 'Name <email>' on one line, e.g. 'Pat Person <pat@example.com>'"
        )
    return stripped


class ManualAction(StrEnum):
    PROMOTE = "promote"  # skip the remaining analysis, promote the canary under analysis
    ABORT = "abort"  # roll back now
    RETRY = "retry"  # analyse the current revision again, without a new bump
    PAUSE = "pause"  # Flagger's spec.suspend: true
    RESUME = "resume"  # spec.suspend back to false

    @property
    def requested(self) -> bool:
        """Honoured by the reconciler from the status file (pause/resume edit the Canary instead)."""
        return self in (ManualAction.PROMOTE, ManualAction.ABORT, ManualAction.RETRY)


class ManualRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    action: ManualAction
    actor: str  # "Name <email>", as in the request commit's author and Gitcanary-Actor trailer
    rollout_id: str = Field(alias="rolloutId")  # the rollout it was made for; another rollout drops it
    requested_at: datetime = Field(alias="requestedAt")

    @field_validator("actor")
    @classmethod
    def _one_line_ident(cls, value: str) -> str:
        return check_ident(value)
