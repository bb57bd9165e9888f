"""What `gitcanary status` adds from the forge: the open PR a canary's next step waits on."""

from __future__ import annotations

from collections.abc import Sequence

from gitcanary.commands.operations import CanaryView
from gitcanary.forge import gate, naming
from gitcanary.forge.base import Forge


def annotate(views: Sequence[CanaryView], forge: Forge) -> None:
    """Set `waiting` of each canary with an open gitcanary PR (one list request for all of them)."""
    open_prs = forge.list_open(naming.BRANCH_ROOT)
    for view in views:
        prefix = naming.canary_prefix(view.key)
        mine = [pr for pr in open_prs if pr.head.startswith(prefix)]
        steps = [pr for pr in mine if not naming.is_gate_branch(pr.head)]
        gates = [pr for pr in mine if naming.is_gate_branch(pr.head)]
        if steps:
            full = forge.get(steps[0].number)
            if full.mergeable_state == "blocked":
                view.waiting = f"waiting for review of PR #{full.number} ({full.url})"
            else:
                view.waiting = f"PR #{full.number} open, gitcanary merges it when mergeable ({full.url})"
        elif gates and gate.WAITING_FOR_APPROVAL in gates[0].body:
            view.waiting = f"waiting for approval of promotion PR #{gates[0].number} ({gates[0].url})"
        elif gates:
            view.waiting = f"{view.waiting}; promotion gate PR #{gates[0].number} ({gates[0].url})"
