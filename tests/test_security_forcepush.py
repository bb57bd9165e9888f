"""Respect force-pushes: after a rejected push, gitcanary replays only the commits it made in this
attempt. A commit a person removed from the branch with a force-push (a leaked secret) never comes back.

The race is real: while gitcanary's push is being received, the remote's pre-receive hook moves the
branch the way a person's `git push --force` landing at that moment would, so git rejects the push.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from conftest import git
from security_cli import initialized, status_of

SECRET = "AKIA-LEAKED-0123456789"


def test_a_commit_removed_by_force_push_is_never_pushed_again(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    repo = setup.repo
    human = repo.human
    bumped = repo.bump("apps/backend", "6.1.1")
    (human / "leaked.env").write_text(f"AWS_ACCESS_KEY_ID={SECRET}\n")
    leaked = repo.commit_and_push("add local settings")
    # What the person force-pushes: the branch without the leak, plus a fix of their own.
    git("checkout", "-q", "-b", "rewrite", bumped, cwd=human)
    (human / "README.md").write_text("rotated the leaked key\n")
    git("add", "README.md", cwd=human)
    git("commit", "-qm", "note the rotation", cwd=human)
    rewritten = git("rev-parse", "HEAD", cwd=human).strip()
    git("push", "-q", "origin", "rewrite", cwd=human)
    marker = tmp_path / "raced"
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"\n'
        "  # Out of the push's quarantine, as a concurrent push by a person would be.\n"
        "  env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \\\n"
        f"    git update-ref refs/heads/main {rewritten}\n"
        "fi\n"
        "exit 0  # git then finds main moved: 'cannot lock ref', the push is rejected\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)

    ran = setup.run_once()
    assert ran.returncode == 0, ran.output
    assert marker.exists()  # the race happened
    assert "start prod/backend rollout 6.1.0 -> 6.1.1" in ran.output, ran.output
    # gitcanary's step landed on the person's rewritten branch...
    head = git("rev-parse", "main", cwd=repo.remote).strip()
    assert git("rev-parse", "main~1", cwd=repo.remote).strip() == rewritten
    assert status_of(setup)["phase"] == "Progressing"
    # ...and the removed commit, with its secret, did not come back.
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", leaked, head], cwd=repo.remote)
    assert ancestor.returncode == 1
    assert git("log", "--format=%H", "main", "--", "leaked.env", cwd=repo.remote) == ""
    assert SECRET not in git("log", "-p", "main", cwd=repo.remote)
