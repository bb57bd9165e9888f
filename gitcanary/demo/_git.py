"""Plain `git` for the demo's own repositories, independent of the user's git configuration.

The demo plays a person (and a cluster) next to gitcanary; their commits must not depend on
whether this machine has `user.name`, commit signing or hooks configured.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from gitcanary.errors import GitcanaryError

GIT_TIMEOUT_SECONDS = 60

# Settings that make a fresh machine and a heavily configured one behave alike.
# (Commits also pass --no-verify, so a global hooks directory does not run either.)
_CONFIG = (
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "init.defaultBranch=main",
)


class DemoError(GitcanaryError):
    """The demo could not set up or go on; the message says what and where."""


def git(
    *args: str,
    cwd: Path | None = None,
    identity: tuple[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run `git args` in `cwd`; its stdout, or `DemoError` with git's own message."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    if identity is not None:
        name, email = identity
        full_env.update(
            GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email
        )
    try:
        proc = subprocess.run(
            ["git", *_CONFIG, *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DemoError("git is not installed (the demo needs the `git` command)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"git {' '.join(args)} timed out after {GIT_TIMEOUT_SECONDS}s") from exc
    if proc.returncode != 0:
        where = f" in {cwd}" if cwd else ""
        raise DemoError(f"git {' '.join(args)} failed{where}: {proc.stderr.strip()}")
    return proc.stdout
