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
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import DiskRefsContainer, Ref
from dulwich.repo import Repo as ObjectRepo
from git import Actor, GitCommandError, Repo

from gitcanary.errors import GitError, PushRejected
from gitcanary.git.editable_tree import EditableTree
from gitcanary.git.packs import roll_up, write_pack

log = logging.getLogger(__name__)
REMOTE = "origin"
GIT_TIMEOUT_SECONDS = 120
UNWRITTEN_LIMIT = 8 << 20  # bytes of in-process commits' objects held before they are written


def _cleanup(message: str) -> str:
    """The message as `git commit -m` stores it (its `whitespace` cleanup): lines without trailing
    blanks, no leading or trailing empty lines, runs of empty lines made one, a final newline."""
    lines: list[str] = []
    for line in message.splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def _stderr(exc: GitCommandError) -> str:
    """git's own message, without gitpython's `stderr: '...'` wrapping."""
    text = str(exc.stderr or "").strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip().strip("'").strip()
    return text or str(exc)


class _LiveTrees:
    """The trees of the newest in-process commit that commits of this tick have read or written, by
    directory ("" is the root), kept as mutable dulwich Trees: the next commit edits the few entries
    on its paths instead of parsing and rebuilding every tree on them (the tree that lists every
    app has thousands of entries). Valid for that one commit only; dropped at each `compact`."""

    def __init__(self, commit: ObjectID, root: EditableTree) -> None:
        self.commit = commit
        self.dirs: dict[str, EditableTree] = {"": root}

    def get(self, directory: str, load: Callable[[ObjectID], EditableTree]) -> EditableTree:
        """The tree of `directory` (an empty new one where there is none, or a file stands)."""
        found = self.dirs.get(directory)
        if found is not None:
            return found
        parent_dir, _, name = directory.rpartition("/")
        parent = self.get(parent_dir, load)
        entry = parent[name.encode()] if name.encode() in parent else None  # noqa: SIM401 - no Tree.get
        tree = load(entry[1]) if entry is not None and stat.S_ISDIR(entry[0]) else EditableTree()
        self.dirs[directory] = tree
        return tree

    def forget_under(self, path: str) -> None:
        """`path` is no longer a directory: the trees kept for it and under it are stale."""
        for directory in [d for d in self.dirs if d == path or d.startswith(path + "/")]:
            del self.dirs[directory]


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
        self._objects: ObjectRepo | None = None
        # Commits written in-process move HEAD but leave git's index at the old tree until `flush`.
        self._index_stale = False
        # (the branch ref on disk, the newest commit written in-process on top of it): the ref moves
        # once, before git next runs here (`repo`), not at every commit (each ref write is an fsync).
        self._pending: tuple[ObjectID, ObjectID] | None = None
        self._live: _LiveTrees | None = None  # the newest in-process commit's trees, editable
        # The objects of in-process commits not on disk yet, (type, serialized) by id: written as one
        # pack with the ref move (or when they pass UNWRITTEN_LIMIT bytes), not one loose file each.
        self._unwritten: dict[ObjectID, tuple[int, bytes]] = {}
        self._unwritten_size = 0
        self._fresh_packs: set[str] = set()  # packs written here without deltas, not rolled up yet
        self._autocrlf: bytes | None = None  # core.autocrlf as last read
        self._lock_handle: IO[str] | None = None  # the work directory's lock, once taken

    @property
    def repo(self) -> Repo:
        """The clone for git commands; the branch ref holds every in-process commit first."""
        if self._repo is None:
            self._repo = self._open_or_clone()
        if self._pending is not None or self._unwritten:
            self._move_ref()
        return self._repo

    def _move_ref(self) -> None:
        """Move the branch from where it was to the newest in-process commit, compare-and-swap."""
        self._write_objects()
        pending, self._pending = self._pending, None
        if pending is None:
            return
        ref = Ref(b"refs/heads/" + self.branch.encode())
        if not self._object_repo().refs.set_if_equals(ref, pending[0], pending[1]):
            raise GitError(f"{self.root}: {self.branch} moved while committing")

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
            # Blob-less (partial): commits and trees of all history, file contents only of what is
            # checked out; git fetches an old file on demand (a status `git show`, an audit). So a
            # cold start and the clone's disk do not grow with the age of the repository. A server
            # without filter support (or a local path) gives a full clone, as before.
            repo = Repo.clone_from(self.url, self.root, branch=self.branch, no_tags=True, filter="blob:none")
            return self._configure(repo)
        except GitCommandError as exc:
            raise GitError(f"cannot clone {self.url} (branch {self.branch}): {_stderr(exc)}") from exc

    def _lock(self) -> None:
        """One gitcanary per work directory; the OS drops the lock if the process dies.

        Taken once and held for the process's life: a clone that failed (the remote down at start)
        is retried by the next tick under the lock this process already holds, never refused by it.
        """
        if self._lock_handle is not None:
            return
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
        return self._read_ref(f"refs/remotes/{self.remote_ref}") or self.repo.git.rev_parse(self.remote_ref)

    def _read_ref(self, name: str) -> str | None:
        """The commit a ref names, read in-process (no `git rev-parse`); None when dulwich cannot
        say. A new reader each time: the refs a `git fetch` or `gc` just rewrote or packed."""
        try:
            return DiskRefsContainer(self.root / ".git")[Ref(name.encode())].decode()
        except (KeyError, OSError, ValueError):
            return None

    def sync(self, known_clean: bool = False) -> str:
        """Fetch and make the work tree exactly the remote branch; returns its head.

        Cheap when nothing moved: no reset when HEAD already is the remote head. `known_clean` skips
        the work-tree scan (a `git status` over every file) when the caller left the tree clean.
        """
        remote_head = self.fetch()
        self.flush()
        if self.head() != remote_head or (not known_clean and self.repo.is_dirty(untracked_files=True)):
            self.reset(remote_head)
        return remote_head

    def reset(self, rev: str) -> None:
        self._index_stale = False  # the hard reset below rewrites the index
        git = self.repo.git
        # -f: after in-process commits the index lags HEAD, so their files look untracked to git
        # and a plain checkout refuses to remove them; everything here is thrown away anyway.
        git.checkout("-f", "-B", self.branch, rev)
        git.reset("--hard", rev)
        git.clean("-fdq")

    def head(self) -> str:
        if self._pending is not None:
            return self._pending[1].decode()
        if self._repo is not None and (found := self._read_ref("HEAD")) is not None:
            return found
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
        """Commit the given paths (added, changed or deleted) with gitcanary's identity; the new HEAD.

        Written in-process (dulwich): the changed files' blobs, the trees on their paths and the
        commit go to the object store and the branch ref moves, with no git subprocess. git's index
        is brought to HEAD once, by `flush`, before anything that reads it. A signed commit, or a
        repository whose attributes or autocrlf could make `git add` store other bytes than the
        file's, goes through `git commit` as before.
        """
        if self.signing_key or self._needs_git_add(paths):
            return self._commit_with_git(message, paths)
        return self._commit_in_process(message, paths)

    def flush(self) -> None:
        """Bring git's index to HEAD after in-process commits (the work tree already holds HEAD)."""
        if self._index_stale:
            self._index_stale = False
            self.repo.git.reset("-q")

    def _write_objects(self) -> None:
        """The in-process commits' objects to disk as one pack, then `roll_up` of the newest packs:
        git rewrites them as one in which the trees that list every app (they differ by an entry
        from commit to commit) are stored as deltas of one another."""
        if not self._unwritten:
            return
        objects, self._unwritten, self._unwritten_size = self._unwritten, {}, 0
        self._fresh_packs.add(write_pack(self.root / ".git", objects))
        self.roll_up()

    def roll_up(self) -> None:
        """Roll the newest packs (and those written here without deltas) into one, with deltas."""
        try:
            removed = roll_up(self.root / ".git", frozenset(self._fresh_packs))
        except (OSError, subprocess.SubprocessError) as exc:  # only disk use depends on it
            log.warning("rolling up the packs of %s failed: %s", self.root, exc)
            return
        if removed:
            self._fresh_packs.difference_update(removed)
            self._drop_object_repo()  # it keeps its list of packs (and their files open)

    def _keep_unwritten(self, sha: ObjectID, type_num: int, raw: bytes) -> None:
        if sha not in self._unwritten:
            self._unwritten[sha] = (type_num, raw)
            self._unwritten_size += len(raw)
        if self._unwritten_size > UNWRITTEN_LIMIT:
            self._write_objects()

    def _drop_object_repo(self) -> None:
        """The next in-process commit opens the object store again (packs, config)."""
        if self._objects is not None:
            self._objects.close()
        self._objects, self._autocrlf = None, None

    def _object_repo(self) -> ObjectRepo:
        if self._objects is None:
            if self._repo is None:
                self.repo  # noqa: B018 - clone first when needed
            # Not `self.repo` otherwise: that would move the branch ref in the middle of a tick.
            self._objects = ObjectRepo(str(self.root))
        return self._objects

    def _needs_git_add(self, paths: list[str]) -> bool:
        """Attributes (filters, eol) or core.autocrlf could change what `git add` stores: let git do it."""
        # Not `self.repo`: that would move the branch ref (an fsync) before every commit.
        attributes = {self.root / ".git" / "info" / "attributes", self.root / ".gitattributes"}
        for path in paths:
            parent = Path(path).parent
            while parent != Path("."):
                attributes.add(self.root / parent / ".gitattributes")
                parent = parent.parent
        if any(file.exists() for file in attributes):
            return True
        if self._autocrlf is None:  # read once per object repo (`compact` makes a new one each tick)
            try:
                self._autocrlf = self._object_repo().get_config_stack().get((b"core",), b"autocrlf")
            except KeyError:
                self._autocrlf = b""
        return self._autocrlf.lower() not in (b"false", b"")

    def _commit_in_process(self, message: str, paths: list[str]) -> str:
        objects = self._object_repo()
        ref = Ref(b"refs/heads/" + self.branch.encode())
        if objects.refs.read_ref(Ref(b"HEAD")) != b"ref: " + ref:
            raise GitError(f"{self.root}: HEAD is not on {self.branch}; not committing")
        on_disk = self._pending[0] if self._pending is not None else objects.refs[ref]
        parent = self._pending[1] if self._pending is not None else on_disk

        def raw(sha: ObjectID) -> bytes:
            if sha in self._unwritten:
                return self._unwritten[sha][1]
            # Not `objects`: writing the objects halfway through a commit may roll up the packs.
            return self._object_repo().object_store[sha].as_raw_string()

        def load(sha: ObjectID) -> EditableTree:
            return EditableTree.parse(raw(sha), sha)  # a copy to edit

        live = self._live
        if live is None or live.commit != parent:
            parent_commit = Commit.from_raw_string(Commit.type_num, raw(parent), parent)
            assert isinstance(parent_commit, Commit)
            live = _LiveTrees(parent, load(parent_commit.tree))
        self._live = None  # until this commit is whole: an error halfway leaves no half-edited trees
        parent_tree = live.dirs[""].id
        touched: set[str] = {""}
        for path in sorted(set(self._files(paths))):
            file = self.root / path
            directory, _, name = path.rpartition("/")
            tree = live.get(directory, load)
            old = tree[name.encode()] if name.encode() in tree else None  # noqa: SIM401 - no Tree.get
            if old is not None and stat.S_ISDIR(old[0]):
                live.forget_under(path)  # a directory no more (deleted, or a file in its place)
            if file.is_symlink():
                blob, mode = Blob.from_string(os.readlink(file).encode()), stat.S_IFLNK
            elif file.is_file():
                executable = file.stat().st_mode & 0o111
                blob, mode = Blob.from_string(file.read_bytes()), 0o100755 if executable else 0o100644
            else:
                blob = None  # deleted
            if blob is None:
                if old is not None:
                    del tree[name.encode()]
            else:
                self._keep_unwritten(blob.id, Blob.type_num, blob.as_raw_string())
                tree[name.encode()] = (mode, blob.id)
            while directory and directory not in touched:
                touched.add(directory)
                directory = directory.rpartition("/")[0]
        # Deepest first, so each directory's entry in its parent names its new tree.
        for directory in sorted(touched - {""}, key=lambda d: d.count("/"), reverse=True):
            tree = live.get(directory, load)
            parent_dir, _, name = directory.rpartition("/")
            above = live.get(parent_dir, load)
            if len(tree):
                above[name.encode()] = (stat.S_IFDIR, tree.id)
            elif name.encode() in above:
                del above[name.encode()]  # git keeps no empty directory
        tree_id = live.dirs[""].id
        if tree_id == parent_tree:
            self._live = live
            return parent.decode()
        for directory in touched:
            tree = live.get(directory, load)
            if len(tree) or not directory:
                # Its bytes, not the tree: the live tree is edited by the next commit.
                self._keep_unwritten(tree.id, Tree.type_num, tree.as_raw_string())
        who = f"{self.identity.name} <{self.identity.email}>".encode()
        now = int(time.time())
        offset = time.localtime(now).tm_gmtoff
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [parent]
        commit.author = commit.committer = who
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = offset
        commit.message = _cleanup(message).encode()
        self._keep_unwritten(commit.id, Commit.type_num, commit.as_raw_string())
        live.commit = commit.id
        self._live = live
        self._pending = (on_disk, commit.id)  # the ref moves when git next runs here (`repo`)
        self._index_stale = True
        return commit.id.decode()

    def _files(self, paths: list[str]) -> list[str]:
        """`paths` with each directory replaced by the files under it (as `git add --all -- dir` would)."""
        out = []
        for path in paths:
            full = self.root / path
            if full.is_dir() and not full.is_symlink():
                for dirpath, dirnames, filenames in os.walk(full):
                    dirnames[:] = [d for d in dirnames if d != ".git"]
                    out += [str(Path(dirpath, name).relative_to(self.root)) for name in filenames]
            else:
                out.append(path)
        return out

    def _commit_with_git(self, message: str, paths: list[str]) -> str:
        self.flush()
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
        self.flush()
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

    def compact(self) -> None:
        """Pack the loose objects git commands left, roll up the newest packs, and let `git gc --auto`
        do git's own maintenance.

        Each step commit writes a new tree for every directory on its paths; the parent of the
        generated dirs lists every app, so stored whole a commit would grow with the number of apps.
        Rolled up (`packs.roll_up`), those trees are stored as small deltas of one another, across
        ticks once their packs are rolled together.
        """
        repo = self.repo  # the branch ref first (writing and rolling up the tick's objects)
        self._drop_object_repo()  # its pack list and config are reread next commit
        self._live = None  # the next tick's first commit reads its trees again (bounded memory)
        try:
            repo.git.repack("-d", "-q")  # loose objects: `git commit` (signed), a rebase, a fetch
        except GitCommandError as exc:  # only disk use depends on it: never fail a tick
            log.warning("packing objects in %s failed: %s", self.root, _stderr(exc))
        self.roll_up()
        try:
            repo.git.execute(["git", "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"])
        except GitCommandError as exc:
            log.warning("git gc --auto in %s failed: %s", self.root, _stderr(exc))

    def rebase(self, onto: str, since: str | None = None) -> bool:
        """Replay local commits on `onto`; False (and nothing changed) on a conflict.

        With `since`, only the commits after it (`since..HEAD`, the ones this attempt made) are
        replayed: a commit a person removed from the branch by a force-push is never pushed again.
        """
        args = ["--onto", onto, since] if since else [onto]
        self.flush()
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
