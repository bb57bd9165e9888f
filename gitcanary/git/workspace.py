"""The Git edge: gitcanary's own clone of the config repository.

gitcanary never works in a person's checkout: it keeps a clone in its work directory,
resets it to the remote at every tick (its own unpushed commits are the only thing that can
be dropped there), commits, and pushes with fetch + rebase + retry. It never force-pushes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from git import Actor, GitCommandError, Repo

from gitcanary.errors import GitError, PushRejected

log = logging.getLogger(__name__)
REMOTE = "origin"
GIT_TIMEOUT_SECONDS = 120


def _stderr(exc: GitCommandError) -> str:
    """git's own message, without gitpython's `stderr: '...'` wrapping."""
    text = str(exc.stderr or "").strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip().strip("'").strip()
    return text or str(exc)


@dataclass(frozen=True)
class Identity:
    name: str = "gitcanary"
    email: str = "gitcanary@users.noreply.local"

    def actor(self) -> Actor:
        return Actor(self.name, self.email)


class Workspace:
    """A clone of `url` at `workdir`, tracking `branch`."""

    def __init__(
        self,
        url: str,
        branch: str,
        workdir: Path,
        identity: Identity | None = None,
        signing_key: str | None = None,
        signing_format: str = "openpgp",
    ) -> None:
        self.url = url
        self.branch = branch
        self.root = Path(workdir)
        self.identity = identity or Identity()
        self.signing_key = signing_key
        self.signing_format = signing_format
        self._repo: Repo | None = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            self._repo = self._open_or_clone()
        return self._repo

    def _open_or_clone(self) -> Repo:
        self._lock()
        if (self.root / ".git").exists():
            self._recover()
            repo = Repo(self.root)
            if repo.remotes and repo.remotes[REMOTE].url != self.url:
                repo.remotes[REMOTE].set_url(self.url)
            return self._configure(repo)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._configure(Repo.clone_from(self.url, self.root, branch=self.branch, no_tags=True))
        except GitCommandError as exc:
            raise GitError(f"cannot clone {self.url} (branch {self.branch}): {_stderr(exc)}") from exc

    def _lock(self) -> None:
        """One gitcanary per work directory; the OS drops the lock if the process dies."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.root.with_name(self.root.name + ".lock"), "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise GitError(
                f"another gitcanary is using {self.root}; give each instance its own --workdir"
            ) from exc
        self._lock_handle = handle

    def _recover(self) -> None:
        """Undo what a process killed mid-operation left behind; the next sync resets the tree anyway."""
        git_dir = self.root / ".git"
        for stale in ("index.lock", "HEAD.lock", "shallow.lock", "packed-refs.lock"):
            (git_dir / stale).unlink(missing_ok=True)
        for lock in (git_dir / "refs").rglob("*.lock"):
            lock.unlink(missing_ok=True)
        for leftover in ("rebase-merge", "rebase-apply"):
            if (git_dir / leftover).exists():
                log.warning("removing an interrupted rebase in %s", self.root)
                shutil.rmtree(git_dir / leftover)

    @property
    def remote_ref(self) -> str:
        return f"{REMOTE}/{self.branch}"

    def fetch(self) -> str:
        """Fetch the tracked branch; the remote's head commit."""
        try:
            self.repo.git.fetch(
                REMOTE,
                f"+refs/heads/{self.branch}:refs/remotes/{REMOTE}/{self.branch}",
                "--no-tags",
                kill_after_timeout=GIT_TIMEOUT_SECONDS,
            )
        except GitCommandError as exc:
            raise GitError(f"git fetch {self.url} failed: {_stderr(exc)}") from exc
        return self.repo.git.rev_parse(self.remote_ref)

    def sync(self, known_clean: bool = False) -> str:
        """Fetch and make the work tree exactly the remote branch; returns its head.

        Cheap when nothing moved: no reset when HEAD already is the remote head. `known_clean` skips
        the work-tree scan (a `git status` over every file) when the caller left the tree clean.
        """
        remote_head = self.fetch()
        if self.head() != remote_head or (not known_clean and self.repo.is_dirty(untracked_files=True)):
            self.reset(remote_head)
        return remote_head

    def reset(self, rev: str) -> None:
        git = self.repo.git
        git.checkout("-B", self.branch, rev)
        git.reset("--hard", rev)
        git.clean("-fdq")

    def head(self) -> str:
        try:
            return self.repo.git.rev_parse("HEAD")
        except GitCommandError:
            return ""

    def changed_paths(self, old: str, new: str) -> set[str]:
        """Paths that differ between two commits (both sides of a rename)."""
        out = self.repo.git.diff("--name-only", "--no-renames", old, new)
        return {line for line in out.splitlines() if line}

    def is_ancestor(self, old: str, new: str) -> bool:
        try:
            self.repo.git.merge_base("--is-ancestor", old, new)
            return True
        except GitCommandError:
            return False

    def _configure(self, repo: Repo) -> Repo:
        """Settings of gitcanary's own clone (never of a person's checkout)."""
        if self.signing_key:
            with repo.config_writer() as config:
                config.set_value("gpg", "format", self.signing_format)
        return repo

    def commit(self, message: str, paths: list[str]) -> str:
        """Commit the given paths (added, changed or deleted) with gitcanary's identity."""
        git = self.repo.git
        git.add("--all", "--", *paths)
        if not git.diff("--cached", "--name-only"):
            return self.head()
        args = ["-m", message, "--no-verify"]
        # Explicit either way: a person's global commit.gpgsign must not decide for the bot.
        args.append(f"--gpg-sign={self.signing_key}" if self.signing_key else "--no-gpg-sign")
        env = {
            "GIT_AUTHOR_NAME": self.identity.name,
            "GIT_AUTHOR_EMAIL": self.identity.email,
            "GIT_COMMITTER_NAME": self.identity.name,
            "GIT_COMMITTER_EMAIL": self.identity.email,
        }
        try:
            with git.custom_environment(**env):
                git.commit(*args)
        except GitCommandError as exc:
            raise GitError(f"git commit in {self.root} failed: {_stderr(exc)}") from exc
        return self.head()

    def push(self) -> None:
        """Push HEAD to the branch; PushRejected when the remote moved (never forced)."""
        try:
            self.repo.git.push(
                REMOTE,
                f"HEAD:refs/heads/{self.branch}",
                "--porcelain",
                kill_after_timeout=GIT_TIMEOUT_SECONDS,
            )
        except GitCommandError as exc:
            text = f"{exc.stdout}\n{exc.stderr}"
            if "refusing to update checked out branch" in text:
                raise GitError(
                    f"{self.url} is a repository with {self.branch} checked out, which git will not push to: "
                    "point --repo at a bare repository (git clone --bare), or set "
                    "receive.denyCurrentBranch=updateInstead in it"
                ) from exc
            # "cannot lock ref ... but expected": the branch moved while this push was in flight.
            if (
                "[rejected]" in text
                or "non-fast-forward" in text
                or "fetch first" in text
                or "cannot lock ref" in text
            ):
                raise PushRejected(f"{self.branch} moved on {self.url}") from exc
            raise GitError(f"git push to {self.url} failed: {_stderr(exc)}") from exc

    def rebase(self, onto: str, since: str | None = None) -> bool:
        """Replay local commits on `onto`; False (and nothing changed) on a conflict.

        With `since`, only the commits after it (`since..HEAD`, the ones this attempt made) are
        replayed: a commit a person removed from the branch by a force-push is never pushed again.
        """
        args = ["--onto", onto, since] if since else [onto]
        try:
            self.repo.git.rebase(*args, env={**os.environ, "GIT_EDITOR": "true"})
            return True
        except GitCommandError:
            self.repo.git.rebase("--abort")
            return False

    def local_commits(self) -> list[str]:
        out = self.repo.git.rev_list(f"{self.remote_ref}..HEAD")
        return out.split()

    def last_change(self, path: str, author_email: str | None = None) -> tuple[str, str, str] | None:
        """(commit, "Name <email>", git's signature letter %G?) of the last commit that changed `path`,
        or of the last one by `author_email`; None when there is none."""
        args = ["-1", "--format=%H%x00%an <%ae>%x00%G?"]
        if author_email is not None:
            args += ["--fixed-strings", f"--author=<{author_email}>"]
        try:
            out = self.repo.git.log(*args, "HEAD", "--", path).strip()
        except GitCommandError:
            return None
        if not out:
            return None
        sha, who, signature = (out.split("\x00") + ["", ""])[:3]
        if signature == "N":
            # git says N also for an SSH signature it cannot check (no allowed-signers file here):
            # tell "unsigned" from "signed, not checkable" by the commit's own header.
            header = self.repo.git.cat_file("commit", sha).split("\n\n", 1)[0]
            signature = "E" if "\ngpgsig " in header else "N"
        return sha, who, signature

    def read(self, path: str, rev: str = "HEAD") -> str | None:
        try:
            return self.repo.git.show(f"{rev}:{path}")
        except GitCommandError:
            return None
