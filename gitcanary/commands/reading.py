"""Where the read-only commands (`status`, `get`, `dashboard`) read the repository from.

`promote --repo .` acts on the checkout's `origin` remote; so `status --repo .` reads that remote's
branch too (a fresh clone, fetched again by `--watch`), not a local checkout that may be behind it.
`--local` reads the work tree as it is (uncommitted changes included); a checkout without `origin`
is read as it is, and the command says so.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitcanary.git.workspace import Workspace


def _nothing() -> None:
    return None


@dataclass
class Source:
    root: Path  # the tree to read
    refresh: Callable[[], None] = field(default=_nothing)  # fetch the remote again (--watch)
    url: str = ""  # what was cloned, "" for a work tree read as it is
    note: str = ""  # said once on stderr: why the remote is not what is read


def _origin(checkout: Path) -> str | None:
    proc = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=checkout, capture_output=True, text=True, check=False
    )
    url = proc.stdout.strip()
    if proc.returncode != 0 or not url:
        return None
    local = checkout / url
    return str(local.resolve()) if not Path(url).is_absolute() and local.exists() else url


def source(repo: str, branch: str, local: bool = False) -> Source:
    """What to read for `--repo REPO`: the remote (a URL, a bare repository, a checkout's origin)
    cloned into a scratch directory removed at exit, or with `local` a work tree as it is."""
    candidate = Path(repo)
    bare = (candidate / "HEAD").is_file() and (candidate / "objects").is_dir()
    url = repo
    if candidate.is_dir() and not bare:
        if local:
            return Source(candidate)
        origin = _origin(candidate)
        if origin is None:
            return Source(candidate, note=f"{repo} has no origin remote: reading its work tree as it is")
        url = origin
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-status-"))
    # The clone only serves this command: nothing of it (a copy of the repository) is left behind.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    workspace = Workspace(url, branch, scratch / "repo")
    workspace.sync()

    def refresh() -> None:
        workspace.sync()

    return Source(workspace.root, refresh, url)


__all__ = ["Source", "source"]
