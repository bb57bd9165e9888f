"""Which manual action fits which phase: one rule, asked by the CLI before it commits a request
and by the rollout core again when it honours one (the phase may have moved in between). No I/O.
"""

from __future__ import annotations

from gitcanary.spec.request import ManualAction
from gitcanary.spec.status import Phase

_ROLLOUT = frozenset({Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION})


def refusal(action: ManualAction, phase: Phase | None, suspended: bool) -> str | None:
    """Why `action` cannot be done now, or None when it can."""
    if action is ManualAction.PAUSE:
        return "it is already paused (spec.suspend: true)" if suspended else None
    if action is ManualAction.RESUME:
        return None if suspended else "it is not paused (spec.suspend is not true)"
    if suspended:
        return "it is paused (spec.suspend: true); resume it first"
    if phase is None:
        return "it is not initialized yet; there is no rollout to act on"
    if phase is Phase.WAITING:
        # Nothing runs yet: the new revision waits for its confirm-rollout webhook gate, and the
        # core decides from that gate (a request would sit unanswered).
        return (
            f"phase {phase.value}: nothing runs yet, the new revision waits for its confirm-rollout "
            "gate; open the gate to start the rollout, or revert the bump to abandon it"
        )
    if action is ManualAction.RETRY:
        if phase in (Phase.FAILED, Phase.QUARANTINED) or phase in _ROLLOUT:
            return None
        return (
            f"phase {phase.value}: retry re-runs the analysis of a failed, quarantined or running "
            "rollout only"
        )
    if phase in _ROLLOUT:
        return None
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        return f"phase {phase.value}: the primary already runs the new revision; promotion is finishing"
    return f"phase {phase.value}: no rollout is under analysis"
