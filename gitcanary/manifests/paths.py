"""Every path gitcanary derives from repository content goes through here, confined to the clone.

Anyone who can push can put `../`, an absolute path or a symlink where gitcanary expects a file.
Flux's kustomize-controller and Argo CD's repo-server refuse such paths; so does gitcanary: a path
must resolve inside the clone and outside `.git`, never through a symlink that leaves the clone,
and gitcanary writes through no symlink at all (a symlinked `routing.yaml` must not make it
overwrite what the link points at). A refusal is an `UnsafePath` naming the file and field, which
halts the canary concerned and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from gitcanary.errors import SpecError

GIT_DIR = ".git"


class UnsafePath(SpecError):
    """A repository-derived path that escapes the clone, enters `.git` or crosses a symlink."""


def normalize(rel: str, *, source: str = "", field: str = "") -> str:
    """`rel` as a clean repository-relative path ("" for the root); UnsafePath if it cannot be one."""
    where = source or rel
    if "\x00" in rel or "\\" in rel:
        raise UnsafePath(where, field, f"{rel!r} is not a plain repository path")
    if PurePosixPath(rel).is_absolute():
        raise UnsafePath(where, field, f"{rel!r} is absolute; paths are relative to the repository root")
    clean = os.path.normpath(rel) if rel else "."
    if clean == ".." or clean.startswith("../"):
        raise UnsafePath(where, field, f"{rel!r} leaves the repository")
    clean = "" if clean == "." else clean
    if clean.split("/", 1)[0] == GIT_DIR:
        raise UnsafePath(where, field, f"{rel!r} is inside .git")
    return clean


def inside(root: Path, rel: str, *, source: str = "", field: str = "") -> Path:
    """`root / rel`, refusing a path that leaves the clone or reaches `.git`, also through symlinks."""
    clean = normalize(rel, source=source, field=field)
    path = root / clean if clean else root
    real_root = root.resolve()
    real = path.resolve()  # follows every symlink of the part that exists
    if not real.is_relative_to(real_root):
        raise UnsafePath(
            source or clean, field, f"{clean or '.'} is a symlink (or under one) that leaves the repository"
        )
    if real.is_relative_to(real_root / GIT_DIR):
        raise UnsafePath(source or clean, field, f"{clean or '.'} resolves into .git through a symlink")
    return path


def no_symlink(root: Path, rel: str, *, source: str = "", field: str = "") -> Path:
    """`root / rel` with no symlink on the way (for files gitcanary writes); UnsafePath otherwise."""
    path = inside(root, rel, source=source, field=field)
    clean = normalize(rel)
    current = root
    for part in PurePosixPath(clean).parts if clean else ():
        current = current / part
        if current.is_symlink():
            shown = str(current.relative_to(root))
            raise UnsafePath(
                source or shown, field, f"{shown} is a symlink; gitcanary never writes through a symlink"
            )
    return path


def symlinks_in(root: Path, directory: str) -> list[str]:
    """Repository paths of the symlinks in a directory gitcanary writes (its generated dir)."""
    try:
        base = no_symlink(root, directory)
    except UnsafePath as exc:
        return [exc.path]
    if not base.is_dir():
        return []
    return sorted(str(PurePosixPath(*p.relative_to(root).parts)) for p in base.rglob("*") if p.is_symlink())


def relative(root: Path, path: Path) -> str:
    """The repository path of `path` (found by walking under `root`), after the same checks."""
    rel = str(PurePosixPath(*path.relative_to(root).parts)) if path != root else ""
    inside(root, rel)
    return rel


def read(root: Path, rel: str, *, source: str = "", field: str = "", errors: str = "strict") -> str:
    return inside(root, rel, source=source, field=field).read_text(errors=errors)


def is_file(root: Path, rel: str) -> bool:
    """A regular file inside the clone (a symlink to outside counts as absent for lookups)."""
    try:
        return inside(root, rel).is_file()
    except UnsafePath:
        return False


def write(root: Path, rel: str, text: str, *, source: str = "", field: str = "") -> None:
    """Write `text` to `rel`, creating its directory; never through a symlink, never outside."""
    path = no_symlink(root, rel, source=source, field=field)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def unlink(root: Path, rel: str, *, source: str = "", field: str = "") -> None:
    no_symlink(root, rel, source=source, field=field).unlink()


__all__ = [
    "UnsafePath",
    "inside",
    "is_file",
    "no_symlink",
    "normalize",
    "read",
    "relative",
    "symlinks_in",
    "unlink",
    "write",
]
