"""Who asked for a rollout: the author of the last change to the canary's inputs (the bump)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from git import GitCommandError

if TYPE_CHECKING:
    from gitcanary.git.workspace import Workspace

_LOOK_BACK = 20  # gitcanary's own write-backs may sit on top of the person's bump


def bumped_by(workspace: Workspace, inputs: Iterable[str], bot_email: str) -> dict[str, object]:
    """`{"Bumped-By": "Name <email>"}` for a start commit, or nothing when no person changed the inputs."""
    paths = sorted(inputs)
    if not paths:
        return {}
    try:
        out = workspace.repo.git.log(f"-{_LOOK_BACK}", "--format=%an <%ae>", "HEAD", "--", *paths)
    except GitCommandError:
        return {}
    for line in out.splitlines():
        if line.strip() and not line.rstrip().endswith(f"<{bot_email}>"):
            return {"Bumped-By": line.strip()}
    return {}


def last_author_email(workspace: Workspace, inputs: Iterable[str], bot_email: str) -> str | None:
    """The author email of the last change to `inputs` that gitcanary did not make, or None."""
    paths = sorted(inputs)
    if not paths:
        return None
    try:
        out = workspace.repo.git.log(f"-{_LOOK_BACK}", "--format=%ae", "HEAD", "--", *paths)
    except GitCommandError:
        return None
    for line in out.splitlines():
        if line.strip() and line.strip() != bot_email:
            return line.strip()
    return None
