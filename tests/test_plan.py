"""`gitcanary plan`, `run --dry-run` and `init --plan` show what would be committed and change nothing:
not the remote (refs, objects), not a person's checkout (refs, objects, work tree, index)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ConfigRepo, git
from test_cli import gitcanary


def fingerprint(repo: Path) -> dict[str, object]:
    """Everything a command could change in a repository: refs, every object, work tree and index."""
    objects = git("cat-file", "--batch-all-objects", "--batch-check", cwd=repo)
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo)
    state: dict[str, object] = {"refs": refs, "objects": objects}
    if (repo / ".git").is_dir():
        state["status"] = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=repo)
        state["head"] = git("rev-parse", "HEAD", cwd=repo)
        files = {}
        for path in sorted(repo.rglob("*")):
            if path.is_file() and ".git" not in path.relative_to(repo).parts:
                files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
        state["files"] = files
        state["index"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return state


def run_once(config_repo: ConfigRepo, tmp_path: Path) -> str:
    return gitcanary(
        "run",
        "--once",
        "--repo",
        str(config_repo.remote),
        "--workdir",
        str(tmp_path / "work"),
        "--settle",
        "0",
        "--cluster",
        "off",
        "--log-format",
        "text",
        cwd=tmp_path,
    ).stdout


def plan(config_repo: ConfigRepo, tmp_path: Path, repo: Path | None = None) -> dict:
    out = gitcanary(
        "plan",
        "--repo",
        str(repo or config_repo.remote),
        "--settle",
        "0",
        "--cluster",
        "off",
        "-o",
        "json",
        cwd=tmp_path,
    ).stdout
    return json.loads(out)


def test_plan_shows_what_run_commits_and_changes_nothing(config_repo: ConfigRepo, tmp_path: Path) -> None:
    remote, human = config_repo.remote, config_repo.human
    before = (fingerprint(remote), fingerprint(human))

    planned = plan(config_repo, tmp_path)
    [canary] = planned["canaries"]
    [commit] = canary["commits"]
    assert canary["canary"] == "prod/backend" and canary["phase"] == ""
    assert commit["subject"] == "gitcanary: initialize prod/backend: primary at 6.1.0"
    assert "+  - backend-gitcanary" in commit["diff"]  # the hook-up into apps/kustomization.yaml
    # a checkout as --repo: read, never written
    assert (
        plan(config_repo, tmp_path, repo=human)["canaries"][0]["commits"][0]["subject"] == commit["subject"]
    )
    assert (fingerprint(remote), fingerprint(human)) == before

    # What run then commits is what plan said, file for file.
    assert commit["subject"] in run_once(config_repo, tmp_path)
    landed = git("show", "--format=", "--name-only", "main", cwd=remote).split()
    assert landed == commit["files"]

    # Mid-rollout: a bump; plan names the start of the rollout and its diff (the canary scaled up).
    run_once(config_repo, tmp_path)  # route to the primary
    config_repo.bump("apps/backend", "6.1.1")
    before = fingerprint(remote)
    [canary] = plan(config_repo, tmp_path)["canaries"]
    assert canary["phase"] == "Initialized"
    [start] = canary["commits"]
    assert start["subject"] == "gitcanary: start prod/backend rollout 6.1.0 -> 6.1.1"
    assert start["phase"] == "Progressing"
    assert fingerprint(remote) == before
    assert start["subject"] in run_once(config_repo, tmp_path)


def test_plan_text_shows_the_transition_and_the_diff(config_repo: ConfigRepo, tmp_path: Path) -> None:
    out = gitcanary(
        "plan", "--repo", str(config_repo.remote), "--settle", "0", "--cluster", "off", cwd=tmp_path
    ).stdout
    assert "prod/backend (Uninitialized now)" in out
    assert "would commit: gitcanary: initialize prod/backend: primary at 6.1.0 -> Initializing 0%" in out
    assert "+++ b/apps/backend-gitcanary/backend-primary.yaml" in out
    assert "nothing was pushed" in out
    assert "\x1b[" not in out  # no colour when piped


def test_init_plan_writes_nothing(config_repo: ConfigRepo, tmp_path: Path) -> None:
    human = config_repo.human
    (human / "notes.txt").write_text("a person's uncommitted work\n")
    before = fingerprint(human)
    planned = json.loads(
        gitcanary("init", "apps/backend", "--plan", "--switch", "-o", "json", cwd=human).stdout
    )
    assert [c["subject"] for c in planned] == [
        "gitcanary: initialize prod/backend: primary at 6.1.0",
        "gitcanary: route prod/backend to its primary (6.1.0), scale target to 0",
    ]
    assert fingerprint(human) == before
    # and init itself writes exactly those commits
    gitcanary("init", "apps/backend", "--switch", cwd=human)
    subjects = git("log", "--format=%s", "-2", cwd=human).splitlines()[::-1]
    assert subjects == [c["subject"] for c in planned]


def test_run_dry_run_plans_every_tick_and_pushes_nothing(config_repo: ConfigRepo, tmp_path: Path) -> None:
    remote = config_repo.remote
    before = fingerprint(remote)
    # A temporary directory of its own: other tests running beside this one make plan clones too.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitcanary",
            "run",
            "--dry-run",
            "--repo",
            str(remote),
            "--interval",
            "0.5",
            "--settle",
            "0",
            "--cluster",
            "off",
            "--listen",
            "",
            "--log-format",
            "text",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    plan_line = "would commit: gitcanary: initialize prod/backend"
    lines: list[str] = []
    # Read until two ticks have planned (startup on a loaded machine can take seconds), then Ctrl-C.
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while sum(plan_line in line for line in lines) < 2 and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    out = "".join(lines)
    assert out.count(plan_line) >= 2, out  # every tick, the same plan
    assert fingerprint(remote) == before
    assert not list(scratch.glob("gitcanary-plan-*"))  # its clone is gone


def test_plan_names_the_webhooks_that_act_and_calls_none(config_repo: ConfigRepo, tmp_path: Path) -> None:
    def hooks(doc: object) -> None:
        assert isinstance(doc, dict)
        doc["spec"]["analysis"]["interval"] = "1s"  # the next step is due at once
        doc["spec"]["analysis"]["webhooks"] = [
            {"name": "smoke-tests", "type": "pre-rollout", "url": "http://127.0.0.1:1/smoke"}
        ]

    config_repo.edit("apps/backend/canary.yaml", hooks)
    config_repo.commit_and_push("a pre-rollout webhook")
    run_once(config_repo, tmp_path)  # initialize
    run_once(config_repo, tmp_path)  # route to the primary
    config_repo.bump("apps/backend", "6.1.1")
    run_once(config_repo, tmp_path)  # start
    time.sleep(1.5)
    before = fingerprint(config_repo.remote)
    [canary] = plan(config_repo, tmp_path)["canaries"]
    assert canary["commits"] == [] and canary["error"] == ""
    assert canary["would_call"].startswith("would call smoke-tests (pre-rollout)")
    assert fingerprint(config_repo.remote) == before
