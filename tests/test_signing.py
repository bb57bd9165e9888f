"""Signed commits: gitcanary signs with an SSH key, and git itself verifies the signature."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ConfigRepo, git

from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings


def test_commits_are_signed_with_an_ssh_key(config_repo: ConfigRepo, tmp_path: Path) -> None:
    key = tmp_path / "bot_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gitcanary", "-f", str(key)], check=True
    )
    settings = Settings(
        repo=str(config_repo.remote),
        workdir=tmp_path / "work",
        settle=0,
        author_email="bot@example.com",
        signing_key=str(key),
        signing_format="ssh",
    )
    result = Reconciler(settings).tick()
    assert len(result.commits) == 1

    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"bot@example.com {Path(str(key) + '.pub').read_text()}")
    out = git(
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed}",
        "log",
        "-1",
        "--format=%G? %GS %s",
        "main",
        cwd=config_repo.remote,
    )
    assert out.startswith("G bot@example.com gitcanary: initialize prod/backend")
