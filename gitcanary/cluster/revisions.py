"""Is the revision an applier reports commit C or a descendant of it? Answered by Git, not by guessing."""

from __future__ import annotations

from pathlib import Path

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


def same_repository(a: str, b: str) -> bool:
    """Whether two clone URLs name one repository: scheme, user, port, `.git` and case of the
    host aside (`git@github.com:acme/config.git` is `https://github.com/acme/config`)."""
    return _repository_key(a) == _repository_key(b)


def _repository_key(url: str) -> str:
    text = url.strip().rstrip("/").removesuffix(".git")
    if "://" in text:
        text = text.split("://", 1)[1]
        host, _, path = text.partition("/")
    else:  # scp-like: user@host:path
        host, _, path = text.partition(":")
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return f"{host}/{path.strip('/')}"


class Ancestry:
    """Answers from the reconciler's own clone, which was fetched this tick."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    @property
    def root(self) -> Path | None:
        """The checkout, to follow kustomization references in (None for a bare repository)."""
        return Path(self.repo.working_tree_dir) if self.repo.working_tree_dir else None

    def known(self, sha: str) -> bool:
        try:
            self.repo.git.rev_parse("--verify", "--quiet", f"{sha}^{{commit}}")
        except GitCommandError:
            return False
        return True

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
