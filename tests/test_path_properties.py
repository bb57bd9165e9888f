"""SECURITY.md's path rule, over generated paths: "Every path derived from repository content ...
must resolve inside the clone and outside `.git`, never through a symlink that leaves the clone.
gitcanary never writes through a symlink, even one inside the clone."

Each generated path is written with `gitcanary/manifests/paths.py` into a fresh clone holding
symlinks of every kind (to a directory outside, to a file outside, into `.git`, to a directory
inside). The oracle is the file system itself, read with os.path: nothing outside the clone or in
`.git` changes, a write that happens lands on a path with no symlink on the way, and a plain path
(no `..`, no `.git`, no symlink) is always written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.manifests import paths

PARTS = ["apps", "new", "x.yaml", "..", ".", "", ".git", "out", "git", "loop", "filelink.yaml", "config"]
PLAIN = {"apps", "new", "x.yaml", "config"}
path_strings = st.tuples(
    st.sampled_from(["", "", "", "/", "./", "\x00", "\\"]),
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=6),
).map(lambda t: t[0] + "/".join(t[1]))


def clone(base: Path) -> tuple[Path, Path]:
    """A clone with symlinks of every kind, and the directory outside it."""
    root, outside = base / "clone", base / "outside"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "apps").mkdir()
    outside.mkdir()
    (outside / "target.yaml").write_text("outside\n")
    os.symlink(outside, root / "apps" / "out")
    os.symlink(outside / "target.yaml", root / "apps" / "filelink.yaml")
    os.symlink("../.git", root / "apps" / "git")
    os.symlink("../apps", root / "apps" / "loop")
    return root, outside


def tree(directory: Path) -> dict[str, str]:
    """Every regular file under `directory` (not following links) with its text."""
    found = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                found[str(path.relative_to(directory))] = path.read_text()
    return found


@settings(derandomize=True, max_examples=300, deadline=None)
@given(path_strings)
def test_no_repository_path_writes_outside_into_git_or_through_a_symlink(rel: str) -> None:
    with tempfile.TemporaryDirectory() as base:
        root, outside = clone(Path(base))
        before_outside, before_git = tree(outside), tree(root / ".git")
        try:
            paths.write(root, rel, "written\n", source="canary.yaml", field="f")
            written = True
        except paths.UnsafePath:
            written = False
        except OSError:  # the path names a directory: the OS refuses, nothing is written
            written = False
        assert tree(outside) == before_outside
        assert tree(root / ".git") == before_git
        lexical = os.path.normpath(rel) if rel else "."
        parts = [] if lexical == "." else lexical.split("/")
        if written:
            # Where it went: no symlink on the way, inside the clone, outside .git.
            current = str(root)
            for part in parts:
                current = os.path.join(current, part)
                assert not os.path.islink(current), (rel, current)
            real = os.path.realpath(current)
            assert real.startswith(str(root.resolve()) + os.sep), (rel, real)
            assert not real.startswith(str((root / ".git").resolve())), (rel, real)
            assert Path(real).read_text() == "written\n"
        plain = rel and rel[0] not in "/\\\x00" and all(p in PLAIN for p in rel.split("/"))
        if plain and not (root / lexical).is_dir():
            assert written, rel
