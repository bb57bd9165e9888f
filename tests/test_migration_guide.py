"""The migration guide and the docs' navigation, checked against what the code does.

The worked gitops-istio example is run as written (its `sh` blocks, with `REPO` pointing at a copy of
stefanprodan/gitops-istio, tests/data/fixtures/gitops-istio, unedited), and the commits it shows are
compared with the ones the run made (`git log`, the oracle). `run` initializes every canary unless
`spec.suspend: true` holds it back: checked over every subset of the example's canaries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import git

from gitcanary.analysis.providers import MODULES

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs/migrate-from-flagger.md"
FIXTURE = ROOT / "tests/data/fixtures/gitops-istio"
PLACEHOLDER = "git@github.com:YOU/gitops-istio.git"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def _fork(tmp: Path) -> Path:
    """A bare repository holding gitops-istio as its author left it: the user's fork."""
    src = tmp / "src"
    shutil.copytree(FIXTURE, src)
    git("init", "-q", "-b", "main", cwd=src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "gitops-istio", cwd=src)
    fork = tmp / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(fork)], check=True)
    return fork


def _gitcanary_on_path(tmp: Path) -> dict[str, str]:
    """`gitcanary` as the guide types it: this worktree's code."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "gitcanary"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitcanary "$@"\n')
    launcher.chmod(0o755)
    return {
        **ENV,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "YOU", "GIT_AUTHOR_EMAIL": "you@example.com",
        "GIT_COMMITTER_NAME": "YOU", "GIT_COMMITTER_EMAIL": "you@example.com",
    }


@pytest.mark.timeout(300)
def test_the_worked_gitops_istio_example_runs_as_written(tmp_path: Path) -> None:
    section = _section(GUIDE.read_text(), "## Worked example: gitops-istio")
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    texts = re.findall(r"```text\n(.*?)```", section, re.S)
    assert len(blocks) == 3 and len(texts) == 2, "rehearsal, release, and the real run (not run here)"
    fork = _fork(tmp_path)
    script = "set -euo pipefail\n" + (blocks[0] + blocks[1]).replace(PLACEHOLDER, str(fork))
    assert PLACEHOLDER in blocks[0]
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=_gitcanary_on_path(tmp_path),
        capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # What the guide says was committed, against the fork's log (oldest first, the seed left out).
    log = git("log", "--reverse", "--format=%s", "main", cwd=fork).splitlines()[1:]
    shown = [line.split("  <-")[0].rstrip() for t in texts for line in t.splitlines() if line.strip()]
    assert log == shown[:4] + ["backend 6.1.1"] + shown[4:]
    authors = git("log", "--reverse", "--format=%an", "main", cwd=fork).splitlines()[1:]
    assert authors == ["gitcanary"] * 4 + ["YOU", "gitcanary", "YOU"] + ["gitcanary"] * 3
    # The validate and plan comments in the guide: warnings only, and Flux's generated kustomization.
    assert "flagger-loadtester.prod" in result.stderr and "flagger-prometheus.istio-system" in result.stderr
    assert "includes apps/backend-gitcanary by itself" in result.stdout
    assert "6.1.0 -> 6.1.1" in result.stdout and "promoted" in result.stdout.lower()


@pytest.mark.parametrize("suspended", [(), ("backend",), ("frontend",), ("backend", "frontend")])
def test_run_initializes_every_canary_but_the_suspended_ones(
    tmp_path: Path, suspended: tuple[str, ...]
) -> None:
    """Every subset of gitops-istio's canaries suspended: `run` initializes exactly the others, one
    commit each, and writes nothing for a suspended one."""
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    for name in suspended:
        path = src / "apps" / name / "canary.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["suspend"] = True
        path.write_text(yaml.safe_dump(doc))
    git("init", "-q", "-b", "main", cwd=src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "seed", cwd=src)
    fork = tmp_path / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(fork)], check=True)
    run = subprocess.run(
        [sys.executable, "-m", "gitcanary", "run", "--repo", str(fork), "--once", "--cluster", "off",
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=ENV, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    expected = sorted({"backend", "frontend"} - set(suspended))
    subjects = git("log", "--format=%s", "main", cwd=fork).splitlines()
    initialized = sorted(m[1] for s in subjects if (m := re.match(r"gitcanary: initialize prod/(\w+):", s)))
    assert initialized == expected
    tree = git("ls-tree", "-d", "--name-only", "main:apps", cwd=fork).split()
    assert sorted(d.removesuffix("-gitcanary") for d in tree if d.endswith("-gitcanary")) == expected
    # Resumed, a held-back canary is initialized by the next tick.
    people = {**ENV, "GIT_AUTHOR_NAME": "YOU", "GIT_AUTHOR_EMAIL": "you@example.com",
              "GIT_COMMITTER_NAME": "YOU", "GIT_COMMITTER_EMAIL": "you@example.com"}
    for name in suspended:
        resume = [sys.executable, "-m", "gitcanary", "resume", f"prod/{name}", "--repo", str(fork)]
        done = subprocess.run(resume, capture_output=True, text=True, env=people, timeout=60)
        assert done.returncode == 0, done.stderr
    if suspended:
        again = subprocess.run(run.args, capture_output=True, text=True, env=ENV, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        subjects = git("log", "--format=%s", "main", cwd=fork).splitlines()
        now = sorted(m[1] for s in subjects if (m := re.match(r"gitcanary: initialize prod/(\w+):", s)))
        assert now == ["backend", "frontend"]


def test_the_navigation_is_grouped_and_the_migration_guide_leads_migrate() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    groups = [next(iter(entry)) for entry in config["nav"]]
    assert groups == ["Start", "Migrate", "Operate", "Reference"]
    migrate = config["nav"][1]["Migrate"]
    assert migrate[0] == {"Migrating from Flagger": "migrate-from-flagger.md"}

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        return []

    listed = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk and len(listed) == len(set(listed))


def test_validate_and_plan_names_exactly_the_providers_gitcanary_queries() -> None:
    text = (ROOT / "docs/validate-and-plan.md").read_text()
    sentence = text[text.index("a provider type gitcanary does not query (it queries"):]
    sentence = sentence[: sentence.index("as Flagger names them")]
    named = re.findall(r"`([a-z]+)`", sentence)
    assert sorted(named) == sorted(MODULES)
