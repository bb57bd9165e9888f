"""Commits written in-process (dulwich) are what `git commit` would have written: the message as git's
own `stripspace` cleans it, gitcanary's identity, a tree equal to the work tree, a consistent index
after `flush`, and a repository `git fsck` finds sound. Real git, a real bare remote."""

from __future__ import annotations

import itertools
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git

from gitcanary.git import workspace as workspace_module
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
    cloned = loose(root)  # a local clone links the remote's loose objects
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
    # The tick's objects went to disk as one pack, with the ref move: none loose.
    assert loose(root) == cloned
    ws.compact()  # and are repacked with deltas
    assert loose(root) == len(git("prune", "--dry-run", cwd=root).splitlines())
    git("fsck", "--strict", cwd=root)


@pytest.mark.parametrize("limit", [8 << 20, 1])
def test_a_ticks_commits_land_as_one_pack_with_one_ref_move(
    tmp_path: Path, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many in-process commits in a row (some touching the same trees), their objects held in memory
    and written at once (or at every commit, with a limit of 1 byte): git finds every commit, each
    tree equal to the work tree at that step, and a sound repository."""
    monkeypatch.setattr(workspace_module, "UNWRITTEN_LIMIT", limit)
    ws = workspace(tmp_path)
    head = ws.sync()
    root = ws.root
    cloned = loose(root)
    expected: list[str] = []
    for step in range(6):
        app = f"apps/app-{step % 3}-gitcanary"
        (root / app).mkdir(exist_ok=True)
        (root / app / "routing.yaml").write_text(f"weight: {step * 10}\n")
        ws.commit(f"step {step}\n\nGitcanary-Canary: prod/app-{step % 3}\n", [f"{app}/routing.yaml"])
        expected.append(f"{app}/routing.yaml weight: {step * 10}")
    assert git("rev-parse", "HEAD", cwd=root).strip() == head  # not moved yet
    ws.push()  # moves the ref (writing the objects first), then pushes
    assert git("rev-parse", "HEAD", cwd=root).strip() == ws.head()
    shas = git("rev-list", "--reverse", f"{head}..HEAD", cwd=root).split()
    assert len(shas) == 6
    for sha, line in zip(shas, expected, strict=True):
        path, text = line.split(" ", 1)
        assert git("show", f"{sha}:{path}", cwd=root).strip() == text
    ws.flush()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=root) == ""
    git("fsck", "--strict", cwd=root)
    assert loose(root) == cloned
    # However many batches were written (one, or one per object with a limit of 1 byte), the packs
    # were rolled up as git's geometric repack leaves them: each holds at least twice the objects
    # of the next smaller one, so there are at most log2(objects) + 1 of them.
    pack_dir = root / ".git" / "objects" / "pack"
    counts = sorted(
        len(
            subprocess.run(
                ["git", "show-index"], stdin=idx.open("rb"), capture_output=True, check=True
            ).stdout.splitlines()
        )
        for idx in pack_dir.glob("*.idx")
    )
    assert all(bigger >= 2 * smaller for smaller, bigger in itertools.pairwise(counts)), counts
    assert len(counts) <= 1 + math.log2(sum(counts))
    # and the trees that list the apps are stored as deltas of one another.
    rows = [
        line.split()
        for idx in pack_dir.glob("*.idx")
        for line in git("verify-pack", "-v", str(idx), cwd=root).splitlines()
    ]
    # A delta: sha, type, size, packed size, offset, depth, base.
    assert any(len(row) == 7 and row[1] == "tree" for row in rows)
    assert git("rev-parse", "main", cwd=tmp_path / "remote.git").strip() == shas[-1]


def test_trees_edited_in_memory_follow_dirs_that_come_go_and_turn_into_files(tmp_path: Path) -> None:
    """Commit after commit on the trees kept from the last one: a new dir, the dir deleted, a file
    where it stood, a dir where the file stood. The oracle is git's own view: after each commit
    the work tree and HEAD do not differ (`git status` is empty) and `git fsck` finds all sound."""
    ws = workspace(tmp_path)
    ws.sync()
    root = ws.root

    def commit(paths: list[str]) -> None:
        ws.commit("step\n", paths)
        ws.flush()
        assert git("status", "--porcelain", "--untracked-files=all", cwd=root) == ""

    (root / "apps" / "x" / "deep").mkdir(parents=True)
    (root / "apps" / "x" / "a.yaml").write_text("a: 1\n")
    (root / "apps" / "x" / "deep" / "b.yaml").write_text("b: 1\n")
    commit(["apps/x"])
    shutil.rmtree(root / "apps" / "x")
    commit(["apps/x"])
    assert "apps/x" not in git("ls-tree", "-r", "--name-only", "HEAD", cwd=root)
    (root / "apps" / "x").write_text("now a file\n")
    commit(["apps/x"])
    (root / "apps" / "x").unlink()
    (root / "apps" / "x").mkdir()
    (root / "apps" / "x" / "c.yaml").write_text("c: 1\n")
    commit(["apps/x/c.yaml", "apps/x"])
    (root / "apps" / "web" / "kustomization.yaml").write_text("resources: [x]\n")
    commit(["apps/web/kustomization.yaml"])
    git("fsck", "--strict", cwd=root)
    ws.push()
    assert git("rev-parse", "main", cwd=tmp_path / "remote.git").strip() == ws.head()
