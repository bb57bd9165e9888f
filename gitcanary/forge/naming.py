"""Branch names and PR titles, derived from Git alone so a restarted gitcanary finds its own PRs."""

from __future__ import annotations

import re

from gitcanary.errors import SpecError
from gitcanary.spec.models import Canary

BRANCH_ROOT = "gitcanary/"
WRITE_MODE_ANNOTATION = "gitcanary.io/write-mode"
GATE_ANNOTATION = "gitcanary.io/promotion-gate"
REVIEWERS_ANNOTATION = "gitcanary.io/reviewers"  # "alice, @acme/sre": who reviews the gate PR
# "acme/backend" or "backend=acme/backend, sidecar=acme/proxy": where the gate finds release notes
SOURCE_REPO_ANNOTATION = "gitcanary.io/source-repo"
# A repository path on a forge: owner/name, or GitLab's group/subgroup/project.
REPO_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)+")
WRITE_MODES = ("direct", "pull-request")
MERGE_METHODS = ("merge", "squash", "rebase")


def _slug(text: str) -> str:
    """A piece of a git ref name: no `..`, `~^:?*[\\`, spaces or leading dots (git check-ref-format)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).replace("..", "_")
    return text.strip(".-") or "x"


def canary_prefix(key: str) -> str:
    """`prod/backend` -> `gitcanary/prod/backend/`: every branch gitcanary opens for this canary."""
    return BRANCH_ROOT + "/".join(_slug(part) for part in key.split("/")) + "/"


def step_branch(key: str, trailers: dict[str, str]) -> str:
    """The branch of one step, e.g. `gitcanary/prod/backend/advance-w50-i0-f0-6.1.0_6.1.1`.

    Built from what the step *is* (action, weight, iteration, failed checks, revisions), never
    from the time it was decided: the same step decided again after a restart has the same name,
    so its open PR is found instead of duplicated.
    """
    action = trailers.get("Action", "step")
    parts = [
        action,
        f"w{trailers.get('Weight', '0')}",
        f"i{trailers.get('Iterations', '0')}",
        f"f{trailers.get('Failed-Checks', '0')}",
        trailers.get("Revision", ""),
    ]
    return canary_prefix(key) + _slug("-".join(p for p in parts if p))


def gate_branch(key: str, rollout_id: str) -> str:
    """The promotion gate's branch for one rollout (rollout ids are unique per start)."""
    return canary_prefix(key) + "promotion-" + _slug(rollout_id)


def is_gate_branch(branch: str) -> bool:
    return branch.rsplit("/", 1)[-1].startswith("promotion-")


def gate_title(key: str, primary_revision: str, canary_revision: str, changed: str = "") -> str:
    """`Rollout prod/backend 6.1.0 -> 6.1.1`; a release of the same revision (a config-only
    change) is named by what changed: `Rollout prod/backend 6.1.1: ConfigMap backend-config`."""
    if primary_revision == canary_revision:
        return f"Rollout {key} {canary_revision}: {changed or 'pod template change'}"
    return f"Rollout {key} {primary_revision} -> {canary_revision}"


def write_mode(canary: Canary, source: str, default: str) -> str:
    """The canary's annotation wins over the repository's setting; an unknown value is an error."""
    mode = canary.metadata.annotations.get(WRITE_MODE_ANNOTATION, default).strip()
    if mode not in WRITE_MODES:
        raise SpecError(
            source.split("#", 1)[0],
            f"metadata.annotations[{WRITE_MODE_ANNOTATION}]",
            f"{mode!r}: expected one of {', '.join(WRITE_MODES)}",
        )
    return mode


def gated(canary: Canary, default: bool) -> bool:
    value = canary.metadata.annotations.get(GATE_ANNOTATION)
    if value is None:
        return default
    return value.strip().lower() in ("true", "yes", "on", "1")


def reviewers(canary: Canary) -> list[str]:
    """The canary's own gate reviewers (`gitcanary.io/reviewers`, comma- or space-separated logins,
    @org/team or team:SLUG names), checked against GitHub's login alphabet; empty when not set."""
    raw = canary.metadata.annotations.get(REVIEWERS_ANNOTATION, "")
    names = [name for name in re.split(r"[,\s]+", raw) if name]
    return [name for name in names if valid_reviewer(name)]


def valid_reviewer(name: str) -> bool:
    """A login, `@org/team` or `team:SLUG` in GitHub's alphabet (reviewers come from files)."""
    return bool(re.fullmatch(r"(@?[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9._-]+)?|team:[A-Za-z0-9._-]+)", name))


def source_repos(canary: Canary) -> dict[str, str]:
    """The canary's `gitcanary.io/source-repo`: container -> repository ("" for every container).

    Entries that are not a repository path are left out (the value is repository content).
    """
    raw = canary.metadata.annotations.get(SOURCE_REPO_ANNOTATION, "")
    found: dict[str, str] = {}
    for entry in (e.strip() for e in re.split(r"[,\s]+", raw)):
        container, _, repo = entry.rpartition("=")
        if valid_repo(repo):
            found[container] = repo
    return found


def valid_repo(repo: str) -> bool:
    return bool(REPO_PATH.fullmatch(repo)) and ".." not in repo


def may_read(repo: str, allowed: tuple[str, ...]) -> bool:
    """`repo` is one of `allowed` or under one of them (an owner, a GitLab group), ignoring case
    as the forges do; never for a path that is not a repository's."""
    if not valid_repo(repo):
        return False
    wanted = repo.lower().split("/")
    return any(
        entry and wanted[: len(parts)] == parts and len(parts) <= len(wanted)
        for entry in allowed
        for parts in [entry.lower().strip("/").split("/")]
    )
