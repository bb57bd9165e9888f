"""The attacker's side of the security suite: a person with push rights to the config repository.

Every test drives the real CLI (`python -m gitcanary ...`) in a subprocess against a real bare
remote, so what is checked is what a user sees: exit codes, stdout, stderr, the pushed history.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import ConfigRepo, git, make_config_repo
from prometheus_server import unavailable_prometheus

from gitcanary.manifests import yamlio


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Setup:
    repo: ConfigRepo
    work: Path
    base: Path

    def run_once(self, *extra: str, env: dict[str, str] | None = None) -> Ran:
        return cli(
            "run",
            "--once",
            "--repo",
            str(self.repo.remote),
            "--workdir",
            str(self.work),
            "--settle",
            "0",
            "--cluster",
            "off",
            "--prometheus",
            # Down: every query fails at once, which fails its check (a port nothing listens on
            # fails them too, after 0.6 s of retries each; the secret tests pass one of those).
            unavailable_prometheus(),
            *extra,
            cwd=self.base,
            env=env,
        )

    def edit_yaml(self, path: str, change: Callable[[dict], None]) -> None:
        self.repo.pull()
        self.repo.edit(path, change)  # type: ignore[arg-type]

    def push(self, message: str) -> str:
        return self.repo.commit_and_push(message)

    def remote_history(self) -> str:
        """Every commit message and every blob ever pushed to the remote, as one text to grep."""
        return git("log", "--all", "-p", "--format=%H%n%an <%ae>%n%B", cwd=self.repo.remote)


def fast_canary(doc: dict) -> None:
    """Analysis every second, one failure rolls back: a rollout moves at each `run --once`."""
    analysis = doc["spec"]["analysis"]
    analysis["interval"] = "1s"
    analysis["threshold"] = 1
    for metric in analysis["metrics"]:
        metric["interval"] = "1m"


# The plain initialized setup (no `change`), made once per test process and copied for each test:
# `gitcanary init` and the first run are the same every time, and take seconds.
_TEMPLATE: Path | None = None


def initialized(base: Path, change: Callable[[dict], None] | None = None) -> Setup:
    """The istio example with its canary initialized by `gitcanary init` and routed by one run."""
    global _TEMPLATE
    if change is not None:
        return _initialize(base, change)
    if _TEMPLATE is None:
        template = Path(tempfile.mkdtemp(prefix="gitcanary-security-template-"))
        atexit.register(shutil.rmtree, template, True)
        _initialize(template)
        _TEMPLATE = template
    return _copy(_TEMPLATE, base)


def _copy(template: Path, base: Path) -> Setup:
    """A copy of `template`'s remote, person's clone and gitcanary's clone, each pointed at the copy."""
    base.mkdir(parents=True, exist_ok=True)
    for name in ("remote.git", "human", "work"):
        shutil.copytree(template / name, base / name, symlinks=True)
    for clone in ("human", "work"):
        git("remote", "set-url", "origin", str(base / "remote.git"), cwd=base / clone)
    return Setup(ConfigRepo(base / "remote.git", base / "human"), base / "work", base)


def _initialize(base: Path, change: Callable[[dict], None] | None = None) -> Setup:
    repo = make_config_repo(base)
    setup = Setup(repo, base / "work", base)

    def edit(doc: dict) -> None:
        fast_canary(doc)
        if change is not None:
            change(doc)

    repo.edit("apps/backend/canary.yaml", edit)  # type: ignore[arg-type]
    git("commit", "-qam", "fast analysis", cwd=repo.human)
    ran = cli("init", "apps/backend", cwd=repo.human)
    assert ran.returncode == 0, ran.output
    git("push", "-q", "origin", "HEAD:main", cwd=repo.human)
    ran = setup.run_once()
    assert ran.returncode == 0 and "route prod/backend to its primary" in ran.output, ran.output
    repo.pull()
    return setup


def status_of(setup: Setup, rev: str = "main") -> dict:
    text = git("show", f"{rev}:apps/backend-gitcanary/gitcanary-status.yaml", cwd=setup.repo.remote)
    return yamlio.load(text)["status"]
