"""Shared fixtures: real Git repositories (a bare remote, a person's clone) seeded from examples/."""

from __future__ import annotations

import compileall
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitcanary import redaction
from gitcanary.git.trailers import parse_trailers
from gitcanary.manifests import yamlio

# The real-Prometheus fixtures (`prometheus`, `exporter`) for every test module.
pytest_plugins = ["prometheus_server"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def git(*args: str, cwd: Path) -> str:
    env_args = [
        "-c",
        "user.name=Pat Person",
        "-c",
        "user.email=pat@example.com",
        "-c",
        "init.defaultBranch=main",
    ]
    proc = subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout


@dataclass
class ConfigRepo:
    """A bare remote plus a person's clone that commits and pushes as a human would."""

    remote: Path
    human: Path

    def edit(self, path: str, change: Callable[[object], None]) -> None:
        file = self.human / path
        text = file.read_text()
        doc = yamlio.load(text)
        change(doc)
        file.write_text(yamlio.dump(doc, like=text))

    def commit_and_push(self, message: str) -> str:
        git("add", "-A", cwd=self.human)
        git("commit", "-q", "-m", message, cwd=self.human)
        git("pull", "-q", "--rebase", cwd=self.human)
        git("push", "-q", "origin", "HEAD:main", cwd=self.human)
        return git("rev-parse", "HEAD", cwd=self.human).strip()

    def bump(self, app: str, tag: str) -> str:
        git("pull", "-q", "--rebase", cwd=self.human)
        self.edit(f"{app}/kustomization.yaml", lambda doc: doc["images"][0].__setitem__("newTag", tag))
        return self.commit_and_push(f"bump {app} to {tag}")

    def pull(self) -> None:
        git("pull", "-q", "--rebase", cwd=self.human)

    def remote_log(self, rev: str = "main") -> list[tuple[str, str, dict[str, str]]]:
        """(sha, subject, Gitcanary trailers) of the remote branch, oldest first."""
        # Topological: a PR's commits come before the merge that brought them, whatever their dates.
        out = git("log", "--reverse", "--topo-order", "--format=%H%x00%B%x01", rev, cwd=self.remote)
        entries = []
        for record in out.split("\x01"):
            record = record.strip("\n")
            if not record:
                continue
            sha, _, body = record.partition("\x00")
            entries.append((sha, body.splitlines()[0] if body else "", parse_trailers(body)))
        return entries

    def gitcanary_commits(self) -> list[tuple[str, str, dict[str, str]]]:
        return [entry for entry in self.remote_log() if entry[2].get("Canary")]


def make_config_repo(base: Path, example: str = "istio") -> ConfigRepo:
    seed = base / "seed"
    shutil.copytree(EXAMPLES / example, seed)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", f"seed from examples/{example}", cwd=seed)
    remote = base / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(remote), cwd=base)
    shutil.rmtree(seed)
    human = base / "human"
    git("clone", "-q", str(remote), str(human), cwd=base)
    return ConfigRepo(remote, human)


def pytest_sessionstart(session: pytest.Session) -> None:
    """gitcanary's bytecode written once, before the tests start `python -m gitcanary` hundreds of
    times: where PYTHONDONTWRITEBYTECODE is set, each start would compile every module it imports
    again (0.3 s of CPU a start). Python only reads the files; a changed source is compiled anew."""
    compileall.compile_dir(str(ROOT / "gitcanary"), quiet=1)


@pytest.fixture
def config_repo(tmp_path: Path) -> ConfigRepo:
    return make_config_repo(tmp_path)


@pytest.fixture(autouse=True)
def _fresh_redaction() -> object:
    """Secrets registered by one test (a CLI run in-process, a provider) are masked in its own
    output only: a worker runs many test files, and a registered word must not leak into the next."""
    saved = redaction._secrets
    yield
    redaction._secrets = saved


# Every test must reach an assertion (tests/assertion_count.py fails one that reaches none).
pytest_plugins.append("assertion_count")
