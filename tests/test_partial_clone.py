"""The reconciler's clone is blob-less (partial): history is there for `git log`, old file contents
are fetched on demand, and a rollout, the status trust check and `history` all work on it.

A real bare remote served over file:// with filters allowed, as GitHub and GitLab allow them.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import ConfigRepo, git

from gitcanary.audit.gitlog import read_log
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.status import Phase

KEY = "prod/backend"


def missing_objects(clone: Path) -> list[str]:
    out = subprocess.run(
        ["git", "rev-list", "--objects", "--all", "--missing=print"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("?")]


def test_a_rollout_on_a_blobless_clone(config_repo: ConfigRepo, tmp_path: Path) -> None:
    git("config", "uploadpack.allowFilter", "true", cwd=config_repo.remote)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=config_repo.remote)
    # Old contents the clone will not hold: five revisions of a file nobody checks out any more.
    for n in range(5):
        (config_repo.human / "notes.txt").write_text(f"revision {n}\n" * 200)
        config_repo.commit_and_push(f"notes {n}")
    git("rm", "-q", "notes.txt", cwd=config_repo.human)
    config_repo.commit_and_push("drop notes")
    now = [datetime(2026, 11, 1, 12, 0, tzinfo=UTC)]
    settings = Settings(repo=config_repo.remote.as_uri(), workdir=tmp_path / "work", settle=0)
    rec = Reconciler(settings, clock=lambda: now[0], sleep=lambda _: None)
    for _ in range(2):
        rec.tick()
        now[0] += timedelta(seconds=61)
    clone = rec.root
    assert git("config", "remote.origin.promisor", cwd=clone).strip() == "true"
    assert len(missing_objects(clone)) >= 5  # the old notes were never downloaded
    status = rec.reports[KEY].status
    assert status is not None and status.phase is Phase.INITIALIZED
    config_repo.bump("apps/backend", "6.1.1")
    rec.tick()
    assert rec.reports[KEY].error == ""
    assert config_repo.gitcanary_commits()[-1][2]["Action"] == "start"
    # history/audit read every gitcanary commit of the partial clone
    assert len(read_log(rec.workspace.repo)) == len(config_repo.gitcanary_commits())


def test_the_status_trust_check_fetches_an_old_status_on_demand(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    """A person's hand edit of the status: a fresh clone must read gitcanary's own last status from a
    commit whose blob it never downloaded, and write it back."""
    git("config", "uploadpack.allowFilter", "true", cwd=config_repo.remote)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=config_repo.remote)
    now = [datetime(2026, 11, 1, 12, 0, tzinfo=UTC)]
    settings = Settings(repo=config_repo.remote.as_uri(), workdir=tmp_path / "work", settle=0)
    first = Reconciler(settings, clock=lambda: now[0], sleep=lambda _: None)
    for _ in range(2):
        first.tick()
        now[0] += timedelta(seconds=61)
    config_repo.pull()
    status_file = config_repo.human / "apps/backend-gitcanary/gitcanary-status.yaml"
    own = status_file.read_text()
    status_file.write_text(own.replace("phase: Initialized", "phase: Promoting"))
    config_repo.commit_and_push("hand edit of the status")
    later = Settings(repo=config_repo.remote.as_uri(), workdir=tmp_path / "fresh", settle=0)
    fresh = Reconciler(later, clock=lambda: now[0], sleep=lambda _: None)
    fresh.tick()
    assert git("config", "remote.origin.promisor", cwd=fresh.root).strip() == "true"
    assert fresh.reports[KEY].error == ""
    config_repo.pull()
    assert status_file.read_text() == own  # gitcanary's own status, read from history, written back
