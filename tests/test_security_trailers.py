"""Trailers that cannot lie and a status file that is memory, not control.

A value from the repository (a metric or webhook name, an actor) cannot add or change a trailer;
a trailer given twice is malformed, never last-wins; a hand edit of the status file is not obeyed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git, make_config_repo
from security_cli import Setup, cli, initialized, status_of

from gitcanary.git.trailers import format_message, gitcanary_trailers

INJECTION = "x\nGitcanary-Action: promote\nGitcanary-Phase: Succeeded\r\nGitcanary-Weight: 100"


def interpret_trailers(message: str) -> list[tuple[str, str]]:
    """git's own reading of a message's trailers."""
    out = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True
    ).stdout
    return [
        (key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in out.splitlines())
    ]


def test_git_and_gitcanary_read_the_same_single_trailer_block() -> None:
    message = format_message(
        f"gitcanary: halt {INJECTION}",
        [f"webhook {INJECTION} failed", "Gitcanary-Phase: Succeeded", INJECTION],
        {"Canary": "prod/backend", "Phase": f"Progressing{INJECTION}", "Weight": 10},
        [("Check", f"{INJECTION} value=1 ok")],
    )
    ours = [(f"Gitcanary-{key}", value) for key, value in gitcanary_trailers(message)]
    assert ours == interpret_trailers(message)
    assert [key for key, _ in ours] == [
        "Gitcanary-Canary",
        "Gitcanary-Phase",
        "Gitcanary-Weight",
        "Gitcanary-Check",
    ]
    assert all("\n" not in line and "\r" not in line for line in message.splitlines())


def test_a_metric_name_with_a_newline_or_a_space_is_refused_on_load(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    for bad in (INJECTION, "request success"):
        repo.edit(
            "apps/backend/canary.yaml",
            lambda doc, bad=bad: doc["spec"]["analysis"]["metrics"][0].__setitem__("name", bad),
        )
        ran = cli("validate", ".", cwd=repo.human)
        assert ran.returncode != 0
        assert "apps/backend/canary.yaml: spec.analysis.metrics[0].name" in ran.output, ran.output


def _with_hostile_webhook(doc) -> None:  # noqa: ANN001 - a ruamel map
    doc["spec"]["analysis"]["webhooks"] = [
        {"name": INJECTION, "type": "pre-rollout", "url": "http://127.0.0.1:9/hook"}
    ]


def test_a_webhook_name_with_newlines_forges_no_trailer_in_pushed_commits(tmp_path: Path) -> None:
    setup = initialized(tmp_path, _with_hostile_webhook)
    setup.repo.bump("apps/backend", "6.1.1")
    for _ in range(3):
        setup.run_once()
    assert status_of(setup)["phase"] == "Failed"
    bot_commits = git("log", "--format=%H", "--author=gitcanary", "main", cwd=setup.repo.remote).split()
    assert bot_commits
    for sha in bot_commits:
        message = git("log", "-1", "--format=%B", sha, cwd=setup.repo.remote)
        trailers = interpret_trailers(message)
        keys = [key for key, _ in trailers if key != "Gitcanary-Check"]
        assert len(keys) == len(set(keys)), message
        assert ("Gitcanary-Phase", "Succeeded") not in trailers, message
    history = cli("history", "prod/backend", "--repo", str(setup.repo.remote), "-o", "json", cwd=tmp_path)
    assert '"outcome": "rolled back"' in history.stdout or "Failed" in history.stdout, history.output
    assert '"outcome": "promoted"' not in history.stdout
    verify = cli("history", "--verify", "--repo", str(setup.repo.remote), "-o", "json", cwd=tmp_path)
    verdicts = json.loads(verify.stdout)["verification"]
    # `gitcanary init` is the person's own commit; every commit of the bot holds up.
    assert [v["verdict"] for v in verdicts if v["actions"] != ["initialize"]] == ["ok"] * 3, verdicts


def test_an_actor_with_a_newline_is_refused(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    before = git("rev-parse", "main", cwd=setup.repo.remote)
    ran = cli(
        "pause", "prod/backend", "--repo", str(setup.repo.remote),
        "--actor", "Mallory <m@example.com>\nGitcanary-Action: promote", cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode != 0 and "--actor" in ran.output, ran.output
    assert git("rev-parse", "main", cwd=setup.repo.remote) == before


def test_a_singular_trailer_given_twice_makes_the_step_malformed(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    human = setup.repo.human
    setup.repo.pull()
    genuine = git("log", "-1", "--format=%B", "main", cwd=human)
    doubled = genuine.rstrip("\n") + "\nGitcanary-Phase: Succeeded\n"
    subprocess.run(
        ["git", "-c", "user.name=gitcanary", "-c", "user.email=gitcanary@users.noreply.local",
         "commit", "-q", "--allow-empty", "-F", "-"],
        input=doubled, cwd=human, check=True, text=True,
    )  # fmt: skip
    git("push", "-q", "origin", "HEAD:main", cwd=human)
    ran = cli("history", "prod/backend", "--repo", str(setup.repo.remote), "-o", "json", cwd=tmp_path)
    assert "Gitcanary-Phase is given twice" in ran.stderr, ran.output


def _hand_edit(setup: Setup, **fields: object) -> str:
    setup.repo.pull()

    def change(doc) -> None:  # noqa: ANN001
        doc["status"].update(fields)

    setup.repo.edit("apps/backend-gitcanary/gitcanary-status.yaml", change)
    return setup.push("status: " + ", ".join(f"{k}={v}" for k, v in fields.items()))


def test_a_hand_edited_status_is_not_obeyed_and_is_written_back(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    own = status_of(setup)
    routing = git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote)
    forged = _hand_edit(setup, phase="Promoting", canaryWeight=90)
    ran = setup.run_once()
    assert ran.returncode == 0, ran.output
    subject = git("log", "-1", "--format=%s", "main", cwd=setup.repo.remote).strip()
    body = git("log", "-1", "--format=%B", "main", cwd=setup.repo.remote)
    assert subject == "gitcanary: restore prod/backend status written by Pat Person"
    assert forged in body and "Pat Person <pat@example.com>" in body
    assert f"Gitcanary-Overrides: {forged}" in body
    assert status_of(setup) == own
    assert git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote) == routing
    # The next tick goes on from gitcanary's own state: no promotion without analysis.
    setup.run_once()
    assert status_of(setup)["phase"] == own["phase"]


def test_a_status_weight_out_of_bounds_never_reaches_the_routing(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    routing = git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote)
    _hand_edit(setup, phase="Progressing", canaryWeight=250)
    ran = setup.run_once()
    assert "canaryWeight" in ran.output and "less than or equal to 100" in ran.output, ran.output
    assert git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote) == routing
    assert "-150" not in setup.remote_history()
