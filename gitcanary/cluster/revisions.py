"""Is the revision an applier reports commit C or a descendant of it? Answered by Git, not by guessing."""

from __future__ import annotations

from git import GitCommandError, Repo


def flux_revision(revision: str) -> tuple[str, str]:
    """(branch, sha) of a Flux revision: `main@sha1:<sha>`, `refs/heads/main@sha1:<sha>`, or the
    pre-v1 `main/<sha>`; the branch is "" when the revision names none."""
    if "@sha1:" in revision:
        ref, _, sha = revision.rpartition("@sha1:")
        return ref.removeprefix("refs/heads/"), sha
    if revision.startswith("sha1:"):
        return "", revision.removeprefix("sha1:")
    ref, _, sha = revision.rpartition("/")
    return ref.removeprefix("refs/heads/"), sha


class Ancestry:
    """Answers from the reconciler's own clone, which was fetched this tick."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def contains(self, applied: str, commit: str) -> bool | None:
        """True if `applied` is `commit` or a descendant; None if `applied` is not in this repository."""
        if applied == commit:
            return True
        try:
            applied_full = self.repo.git.rev_parse("--verify", "--quiet", f"{applied}^{{commit}}")
        except GitCommandError:
            return None
        try:
            self.repo.git.merge_base("--is-ancestor", commit, applied_full)
        except GitCommandError:
            return False
        return True
