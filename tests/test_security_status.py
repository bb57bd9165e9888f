"""Status values are checked against the canary's step ladder, not only against 0..100.

An author email is easy to forge where no signing is configured: a status commit that claims to be
gitcanary's but holds a weight or phase its state machine never writes halts that canary with file,
field and reason, and `validate` reports it. A ladder changed mid-rollout (a new `stepWeight`) is
not a forgery: the rollout goes on from gitcanary's last step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import git
from security_cli import Setup, cli, initialized, status_of

from gitcanary.manifests import yamlio

STATUS = "apps/backend-gitcanary/gitcanary-status.yaml"
BOT = ["-c", "user.name=gitcanary", "-c", "user.email=gitcanary@users.noreply.local"]


def _forge_as_gitcanary(setup: Setup, **fields: object) -> str:
    """A person with push rights writes the status under gitcanary's name and email."""
    setup.repo.pull()
    human = setup.repo.human
    doc = yamlio.load((human / STATUS).read_text())
    doc["status"].update(fields)
    (human / STATUS).write_text(yamlio.dump(doc))
    git(*BOT, "commit", "-qam", "gitcanary: advance prod/backend", cwd=human)
    git("push", "-q", "origin", "HEAD:main", cwd=human)
    return git("rev-parse", "HEAD", cwd=human).strip()


def _bump_and_start(setup: Setup) -> None:
    setup.repo.bump("apps/backend", "6.1.1")
    ran = setup.run_once()
    assert ran.returncode == 0 and status_of(setup)["phase"] == "Progressing", ran.output


def test_a_weight_off_the_ladder_under_gitcanarys_name_halts_that_canary(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    _bump_and_start(setup)
    routing = git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote)
    forged = _forge_as_gitcanary(setup, canaryWeight=37)  # the example steps 10, 20, .., 50
    ran = setup.run_once()
    want = f"{STATUS}: status.canaryWeight: 37% is not a step of this canary"
    assert want in ran.output and "[0, 10, 20, 30, 40, 50]" in ran.output, ran.output
    assert git("rev-parse", "main", cwd=setup.repo.remote).strip() == forged  # nothing committed on it
    assert git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote) == routing
    checked = cli("validate", ".", cwd=setup.repo.human)
    assert checked.returncode != 0 and want in checked.output, checked.output
    shown = cli("status", "--repo", str(setup.repo.remote), cwd=tmp_path)
    assert "status.canaryWeight: 37% is not a step" in shown.output, shown.output


def test_an_impossible_phase_under_gitcanarys_name_is_refused(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    routing = git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote)
    # Succeeded with traffic on the canary: a phase the state machine writes only at weight 0.
    _forge_as_gitcanary(setup, phase="Succeeded", canaryWeight=50)
    ran = setup.run_once()
    assert f"{STATUS}: status.canaryWeight: phase Succeeded routes no traffic to the canary" in ran.output
    assert git("show", "main:apps/backend-gitcanary/routing.yaml", cwd=setup.repo.remote) == routing


def test_a_ladder_changed_mid_rollout_is_not_taken_for_a_forgery(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    _bump_and_start(setup)
    ran = setup.run_once()  # the first step needs no analysis: 10%
    assert status_of(setup)["canaryWeight"] == 10, ran.output
    setup.edit_yaml(
        "apps/backend/canary.yaml", lambda doc: doc["spec"]["analysis"].__setitem__("stepWeight", 25)
    )
    setup.push("steps of 25")
    ran = setup.run_once()
    assert "is not a step" not in ran.output, ran.output
    # The next decision is taken from 10%: its analysis (nothing answers, so it fails) rolls back.
    assert status_of(setup)["phase"] == "Failed", ran.output


def test_validate_accepts_what_init_writes(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    setup.repo.pull()
    ran = cli("validate", ".", cwd=setup.repo.human)
    assert ran.returncode == 0, ran.output
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=setup.repo.human, capture_output=True).stdout
        == b""
    )
