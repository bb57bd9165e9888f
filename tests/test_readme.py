"""The README's commands, run as written where they can run here, say what the README says they say
(issue 15: README claims match behaviour). `scripts/test.sh` itself is what CI runs, so it is only
checked to be the script `.ci/run` calls."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ConfigRepo, git

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One README command line; `gitcanary` is this tree's."""
    args = shlex.split(command)
    if args[0] == "gitcanary":
        args = [sys.executable, "-m", "gitcanary", *args[1:]]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The first command, as written but for the directory (and `pip install .`, done already)."""
    first = blocks()[0].strip()
    assert first == "pip install . && gitcanary demo --dir /tmp/gitcanary-demo"
    target = tmp_path_factory.mktemp("readme") / "gitcanary-demo"
    started = time.monotonic()
    result = sh(first.split(" && ")[1].replace("/tmp/gitcanary-demo", str(target)), ROOT)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    return target, took


def test_the_demo_promotes_one_release_and_rolls_one_back_in_about_a_minute(demo: tuple[Path, float]) -> None:
    repo, took = demo
    # "about a minute" on an idle machine; the bound for a new user is 2 minutes
    assert "in about a minute" in README and took < 120, took
    log = sh(f"git -C {repo} log --oneline", ROOT).stdout
    assert "gitcanary: promote prod/backend" in log and "gitcanary: roll back prod/backend" in log
    # "the rollback that writes the old tag back into your images: entry"
    kustomization = yaml.safe_load((repo / "apps/backend/kustomization.yaml").read_text())
    rollback = git("log", "-1", "--format=%s", "--grep=roll back", cwd=repo)
    old = re.search(r"-> (\S+?)(?::|$)", rollback)
    assert old and kustomization["images"][0]["newTag"] == old[1]


def test_what_you_get_in_git(demo: tuple[Path, float]) -> None:
    repo, _ = demo
    generated = {p.name for p in (repo / "apps/backend-gitcanary").iterdir()}
    assert {"backend-primary.yaml", "services.yaml", "routing.yaml", "gitcanary-status.yaml"} <= generated
    parent = yaml.safe_load((repo / "apps/kustomization.yaml").read_text())
    assert "backend" in parent["resources"] and "backend-gitcanary" in parent["resources"]
    # the halt commit carries the trailers the README shows, with the values it shows
    halt = git("log", "-1", "--format=%B", "--grep=^gitcanary: halt", cwd=repo)
    trailers = dict(re.findall(r"^(Gitcanary-[A-Za-z-]+): (.*)$", halt, re.M))
    shown = ("Canary", "Action", "Phase", "Weight", "Failed-Checks")
    for key in (f"Gitcanary-{name}" for name in shown):
        assert f"\n{key}: " in README and key in trailers
    assert trailers["Gitcanary-Action"] == "halt" and trailers["Gitcanary-Phase"] == "Progressing"
    assert re.search(r"^request-success-rate \S+ < 99 failed$", halt, re.M)
    # the invariant's command builds
    built = subprocess.run(["kubectl", "kustomize", "apps/"], cwd=repo, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built.stdout) if d}
    assert ("Deployment", "backend-primary") in kinds and ("VirtualService", "backend") in kinds


def test_the_commands_table(demo: tuple[Path, float]) -> None:
    repo, _ = demo
    got = sh(f"gitcanary get canaries --repo {repo}", ROOT)
    assert got.stdout.split()[:5] == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert "prod" in got.stdout and "Failed" in got.stdout  # the demo ends rolled back
    for output in ("wide", "json", "yaml"):
        assert sh(f"gitcanary get canaries --repo {repo} -o {output}", ROOT).returncode == 0
    assert json.loads(sh(f"gitcanary get canaries --repo {repo} -o json", ROOT).stdout)["kind"] == "List"
    status = sh(f"gitcanary status --repo {repo}", ROOT).stdout
    assert status.split()[:6] == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILED", "REVISION"]
    assert "waiting: " in status
    assert sh(f"gitcanary validate {repo}", ROOT).returncode == 0
    history = sh(f"gitcanary history prod/backend --repo {repo}", ROOT).stdout
    assert "promoted" in history and "rolled back" in history
    report = sh(f"gitcanary audit --repo {repo} -o html", ROOT).stdout
    assert "<svg" in report  # "HTML report with charts"
    # "what one tick would commit ... pushes nothing"
    head = git("rev-parse", "HEAD", cwd=repo)
    planned = sh(f"gitcanary plan --repo {repo}", ROOT)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "prod/backend" in planned.stdout and git("rev-parse", "HEAD", cwd=repo) == head


def test_using_it_on_your_repo(config_repo: ConfigRepo) -> None:
    using = next(block for block in blocks() if "gitcanary init apps/backend" in block)
    assert "gitcanary init apps/backend\ngit push" in using
    init = sh("gitcanary init apps/backend", config_repo.human)
    assert init.returncode == 0 and "prod/backend: committed" in init.stdout
    assert "ACTION NEEDED" not in init.stdout  # examples/istio hooks the generated dir up
    assert sh("git push -q", config_repo.human).returncode == 0
    subjects = [entry[1] for entry in config_repo.gitcanary_commits()]
    assert subjects and subjects[-1].startswith("gitcanary: initialize prod/backend")


def test_run_initializes_what_it_finds(tmp_path: Path) -> None:
    """ "`run` also initializes any canary it finds uninitialized, so step 1 is optional." """
    from conftest import make_config_repo

    repo = make_config_repo(tmp_path)
    result = sh(
        f"gitcanary run --repo {repo.remote} --once --cluster off --listen '' --workdir {tmp_path / 'work'}",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    subjects = [entry[1] for entry in repo.gitcanary_commits()]
    assert any(subject.startswith("gitcanary: initialize prod/backend") for subject in subjects)


def test_the_test_command_is_what_ci_runs() -> None:
    assert blocks()[1].strip() == "scripts/test.sh"
    assert os.access(ROOT / "scripts/test.sh", os.X_OK)
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()
