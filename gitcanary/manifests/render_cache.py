"""Renders kept by the content of what they were built from, so an unchanged app is never rebuilt.

A step commit changes only gitcanary's generated files (weights, phase): the app builds exactly
as before. The key is a digest of every file the build reads (the app dir's files, its bases,
components, patches and generators' files, found by `files.kustomize_inputs` and `fleet.inputs`;
a directory counts with every file under it), of the Canary's own spec and of the app dir's path.
Generated dirs are left out: they are gitcanary's output, not the target's input. Any other
change to an input file gives a new digest and a new build.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Generic, TypeVar

from gitcanary.manifests import files, fleet, paths

Value = TypeVar("Value")

# A canary's current build and the one before it: the build a rollout started from comes back
# when it ends (the target's `replicas:` goes 0 -> 1 -> 0), and that costs no kustomize run.
KEEP_PER_CANARY = 2


def build_inputs(root: Path, directory: str) -> set[str]:
    """Repository paths (files and directories) that building `directory` reads."""
    return files.kustomize_inputs(root, directory) | fleet.inputs(root, directory)


def digest(root: Path, inputs: Iterable[str], excluded: Iterable[str], salt: str = "") -> str:
    """A digest of the content of every file in or under `inputs`, outside the `excluded` dirs.

    `salt` stands for what is not a file (the Canary's spec). A missing path counts as missing, a
    symlink by where it points, so a change of either gives a new digest.
    """
    skip = {path for path in excluded if path}
    hasher = hashlib.sha256(salt.encode())
    seen: set[str] = set()
    for path in sorted(inputs):
        if _excluded(path, skip):
            continue
        for rel in _files_under(root, path, skip):
            if rel in seen:
                continue
            seen.add(rel)
            hasher.update(b"\0" + rel.encode() + b"\0" + _content(root, rel))
    return hasher.hexdigest()


def _excluded(path: str, skip: set[str]) -> bool:
    return any(path == item or path.startswith(item + "/") for item in skip)


def _files_under(root: Path, path: str, skip: set[str]) -> list[str]:
    """`path` itself if a file, every file under it if a directory (not .git, not generated dirs)."""
    try:
        full = paths.inside(root, path) if path else root
    except paths.UnsafePath:
        return [path]  # kustomize refuses it as well; its text below says so
    if not full.is_dir() or full.is_symlink():
        return [path]
    found = []
    for dirpath, dirnames, filenames in os.walk(full):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != paths.GIT_DIR
            and not d.endswith(files.GENERATED_SUFFIX)
            and not _excluded(f"{rel_dir}/{d}" if rel_dir else d, skip)
        )
        found += [f"{rel_dir}/{name}" if rel_dir else name for name in sorted(filenames)]
    return found


def _content(root: Path, rel: str) -> bytes:
    file = root / rel
    try:
        if file.is_symlink():
            return b"link:" + os.readlink(file).encode()
        return b"file:" + file.read_bytes()
    except FileNotFoundError:
        return b"missing"
    except OSError as exc:  # unreadable: a digest of its own, never a match with an earlier build
        return f"error:{exc}".encode()


class RenderCache(Generic[Value]):
    """Per canary, the last `KEEP_PER_CANARY` builds by input digest."""

    def __init__(self, keep: int = KEEP_PER_CANARY) -> None:
        self.keep = keep
        self._entries: dict[str, list[tuple[str, Value]]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str, digest_: str) -> Value | None:
        for found, value in self._entries.get(key, []):
            if found == digest_:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key: str, digest_: str, value: Value) -> None:
        kept = [(d, v) for d, v in self._entries.get(key, []) if d != digest_]
        self._entries[key] = [(digest_, value), *kept][: self.keep]

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def retain(self, keys: Iterable[str]) -> None:
        """Forget canaries that are gone from the repository."""
        keep = set(keys)
        for key in [k for k in self._entries if k not in keep]:
            del self._entries[key]
