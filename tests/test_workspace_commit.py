"""Commits written in-process (dulwich) are what `git commit` would have written: the message as git's
own `stripspace` cleans it, gitcanary's identity, a tree equal to the work tree, a consistent index
after `flush`, and a repository `git fsck` finds sound. Real git, a real bare remote."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import git

from gitcanary.git.workspace import Identity, Workspace

MESSAGE = (
    "canary prod/web: advance to 20%  \n\n\n\nWeight 20.\t\n\n"
    "Gitcanary-Canary: prod/web\nGitcanary-Weight: 20\n\n"
)


def loose(root: Path) -> int:
    """Loose objects in a clone, as `git count-objects` counts them."""
    found = re.search(r"^count: (\d+)$", git("count-objects", "-v", cwd=root), re.M)
    assert found is not None
    return int(found.group(1))


def workspace(tmp_path: Path) -> Workspace:
    seed = tmp_path / "seed"
    (seed / "apps" / "web").mkdir(parents=True)
    (seed / "apps" / "web" / "kustomization.yaml").write_text("resources: []\n")
    (seed / "hook.sh").write_text("#!/bin/sh\n")
    (seed / "hook.sh").chmod(0o755)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(tmp_path / "remote.git"), cwd=tmp_path)
    return Workspace(
        str(tmp_path / "remote.git"), "main", tmp_path / "work", Identity("gitcanary", "bot@example.com")
    )


def test_an_in_process_commit_is_what_git_commit_writes(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    head = ws.sync()
    root = ws.root
    (root / "apps" / "web-gitcanary").mkdir()
    (root / "apps" / "web-gitcanary" / "routing.yaml").write_text("weight: 20\n")
    (root / "apps" / "web" / "kustomization.yaml").unlink()
    sha = ws.commit(MESSAGE, ["apps/web-gitcanary/routing.yaml", "apps/web/kustomization.yaml"])
    assert sha != head and ws.head() == sha
    # The branch ref moves once, when git next runs in the clone (`flush`, `push`, any `repo` use).
    assert git("rev-parse", "HEAD", cwd=root).strip() == head
    ws.flush()
    assert git("rev-parse", "HEAD", cwd=root).strip() == sha
    assert git("rev-parse", "HEAD~1", cwd=root).strip() == head  # one commit, on the branch
    expected = subprocess.run(
        ["git", "stripspace"], input=MESSAGE, capture_output=True, text=True, check=True
    )
    assert git("log", "-1", "--format=%B", cwd=root) == expected.stdout + "\n"
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", cwd=root).strip() == (
        "gitcanary <bot@example.com>|gitcanary <bot@example.com>"
    )
    assert git("show", "--name-status", "--format=", sha, cwd=root).split() == [
        "A",
        "apps/web-gitcanary/routing.yaml",
        "D",
        "apps/web/kustomization.yaml",
    ]
    assert git("ls-tree", "HEAD", "hook.sh", cwd=root).startswith("100755")  # untouched modes kept
    ws.flush()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=root) == ""
    git("fsck", "--strict", cwd=root)
    # Nothing changed: no commit
    assert ws.commit("nothing", ["apps/web-gitcanary/routing.yaml"]) == sha
    ws.push()
    assert git("rev-parse", "main", cwd=tmp_path / "remote.git").strip() == sha
    # After the push the tick's loose objects are packed (with deltas): none left loose.
    assert loose(root) > 0
    ws.compact()
    # What stays loose is unreachable (the emptied apps/web tree), for gc to prune.
    assert loose(root) == len(git("prune", "--dry-run", cwd=root).splitlines())
    git("fsck", "--strict", cwd=root)
