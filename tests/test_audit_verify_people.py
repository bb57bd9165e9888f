"""`history --verify` over a repository set up the way the docs say: a person's `gitcanary init` commit and
their manual request are labelled as theirs, not flagged; the reconciler's own commits are ok."""

from __future__ import annotations

from pathlib import Path

from conftest import ConfigRepo, git
from test_cli import gitcanary


def test_verify_labels_init_and_manual_commits(config_repo: ConfigRepo, tmp_path: Path) -> None:
    human = config_repo.human
    gitcanary("init", "apps/backend", cwd=human)
    git("push", "-q", "origin", "main", cwd=human)
    run = ["run", "--once", "--repo", str(config_repo.remote), "--workdir", str(tmp_path / "work"),
           "--settle", "0", "--cluster", "off", "--log-format", "text"]  # fmt: skip
    gitcanary(*run, cwd=tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    gitcanary(*run, cwd=tmp_path)
    config_repo.pull()
    gitcanary(
        "pause", "prod/backend", "--repo", str(human), "--actor", "Pat Person <pat@example.com>", cwd=human
    )
    proc = gitcanary(
        "history", "--verify", "--repo", str(config_repo.remote), "-o", "json", cwd=tmp_path, check=False
    )
    import json

    verdicts = json.loads(proc.stdout)["verification"]
    by_action = {tuple(v["actions"]): v["verdict"] for v in verdicts}
    person = git(
        "log", "-1", "--format=%an <%ae>", "--grep=^Gitcanary-Action: initialize$", cwd=human
    ).strip()
    assert by_action[("initialize",)] == f"init by {person}, unsigned"
    assert by_action[("manual-pause",)] == "manual by Pat Person <pat@example.com>, unsigned"
    assert by_action[("start",)] == "ok"
    assert proc.returncode == 0, proc.stderr
