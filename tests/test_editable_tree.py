"""EditableTree keeps each entry's serialized bytes: its id must stay exactly a plain dulwich Tree's,
and git's, through edits, deletions, names that sort differently as a directory and as a file, and
a parse of its own bytes."""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

from dulwich.objects import Tree

from gitcanary.git.editable_tree import EditableTree

MODES = (0o040000, 0o100644, 0o100755, 0o120000)


def sha(text: str) -> bytes:
    return hashlib.sha1(text.encode()).hexdigest().encode()


def test_ids_follow_a_plain_tree_through_random_edits() -> None:
    rng = random.Random(7)
    plain, edited = Tree(), EditableTree()
    for step in range(3000):
        # "a1", "a1.x" and "a1-" sort around "a1/" (a directory), so a mode change reorders them.
        name = rng.choice(["a{}", "a{}.x", "a{}-"]).format(rng.randrange(300)).encode()
        if rng.random() < 0.2 and name in plain:
            del plain[name]
            del edited[name]
        else:
            value = (rng.choice(MODES), sha(str(step)))
            plain[name] = value
            edited[name] = value
        if rng.random() < 0.5:
            assert edited.id == plain.id, step
        if rng.random() < 0.01:
            edited = EditableTree.parse(edited.as_raw_string(), edited.id)
    assert edited.as_raw_string() == plain.as_raw_string()


def test_a_directory_that_becomes_a_file_moves_in_gits_order(tmp_path: Path) -> None:
    """Oracle: `git mktree`, which sorts the entries itself."""
    blob = subprocess.run(
        ["git", "hash-object", "--stdin"], input=b"x\n", capture_output=True, check=True
    ).stdout.strip()
    tree = EditableTree()
    for name, mode in [(b"a.b", 0o100644), (b"a", 0o040000), (b"a-b", 0o100644), (b"a0", 0o100644)]:
        tree[name] = (mode, blob)
    tree.id  # noqa: B018 - serialized once with "a" a directory
    tree[b"a"] = (0o100644, blob)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    listing = "".join(f"100644 blob {blob.decode()}\t{name}\n" for name in ("a-b", "a", "a0", "a.b"))
    made = subprocess.run(
        ["git", "mktree", "--missing"], input=listing.encode(), cwd=tmp_path, capture_output=True, check=True
    )
    assert tree.id == made.stdout.strip()
