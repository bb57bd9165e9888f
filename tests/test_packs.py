"""The clone's packs: which ones `roll_up` rewrites (checked against `git repack --geometric=2`
itself), that a rewrite loses no object and stores the trees as deltas, and that the bytes a step
commit adds do not grow with the number of apps. Real git throughout."""

from __future__ import annotations

import importlib.util
import math
import random
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from conftest import git

from gitcanary.git.packs import PackFile, roll_up, rollable_packs, to_roll, write_pack

ROOT = Path(__file__).resolve().parent.parent


def feed(repo: Path, args: list[str], data: bytes) -> str:
    """A git command with `data` on its standard input; its output."""
    return subprocess.run(
        ["git", *args], input=data, cwd=repo, capture_output=True, check=True
    ).stdout.decode()


def blob_ids(repo: Path, count: int, tag: str) -> list[str]:
    """`count` new blobs, written loose."""
    folder = repo.parent / f"files-{tag}"
    folder.mkdir()
    for i in range(count):
        (folder / str(i)).write_text(f"{tag} blob {i}\n")
    paths = "\n".join(str(folder / str(i)) for i in range(count))
    return feed(repo, ["hash-object", "-w", "--stdin-paths"], paths.encode()).split()


def repo_with_packs(tmp_path: Path, counts: list[int]) -> Path:
    """A plain repository whose objects are in one pack per count (and none loose)."""
    repo = tmp_path / "repo"
    git("init", "-q", str(repo), cwd=tmp_path)
    for n, count in enumerate(counts):
        ids = blob_ids(repo, count, f"p{n}")
        feed(
            repo,
            ["pack-objects", "-q", str(repo / ".git" / "objects" / "pack" / "pack")],
            "\n".join(ids).encode(),
        )
    git("prune-packed", cwd=repo)
    return repo


def pack_names(repo: Path) -> set[str]:
    return {p.name for p in (repo / ".git" / "objects" / "pack").glob("*.pack")}


CASES = [
    [1, 1],
    [5, 10, 20, 40],  # a progression: nothing to do
    [5, 9, 20, 40],  # 9 < 2 x 5: the two smallest
    [1, 2, 3, 50],
    [10, 11, 12, 13, 100],  # rolled into 46, which 100 still exceeds twice
    [10, 11, 12, 13, 80],  # 46 x 2 >= 80: the big one joins
    [3, 30, 31],
    [7],
]


@pytest.mark.parametrize(
    "counts", CASES + [random.Random(seed).choices(range(1, 60), k=5) for seed in range(4)]
)
def test_the_packs_chosen_are_those_git_repack_geometric_rolls_up(tmp_path: Path, counts: list[int]) -> None:
    """Oracle: git itself. In a copy of the repository `git repack --geometric=2 -d` runs; the packs
    it leaves untouched must be exactly those `to_roll` does not choose."""
    repo = repo_with_packs(tmp_path, counts)
    packs = rollable_packs(repo / ".git" / "objects" / "pack")
    assert sorted(p.objects for p in packs) == sorted(counts)
    chosen = {p.path.name for p in to_roll(packs)}
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    git("repack", "--geometric=2", "-d", "-q", cwd=copy)
    kept_by_git = pack_names(copy) & pack_names(repo)
    assert kept_by_git == pack_names(repo) - chosen


def test_roll_up_keeps_every_object_and_stores_the_trees_as_deltas(tmp_path: Path) -> None:
    """A pack written whole (as `write_pack` writes a tick's commits) rolled up: every object still
    readable, `git fsck` finds all sound, and the near-identical big trees are deltas."""
    repo = tmp_path / "repo"
    git("init", "-q", str(repo), cwd=tmp_path)
    git_dir = repo / ".git"
    blob = feed(repo, ["hash-object", "-w", "--stdin"], b"x\n").strip()
    objects: dict[bytes, tuple[int, bytes]] = {}
    trees = []
    for version in range(20):
        entries = [f"100644 app-{i:04d}\0".encode() + bytes.fromhex(blob) for i in range(300)]
        changed = feed(repo, ["hash-object", "-w", "--stdin"], f"v{version}\n".encode()).strip()
        entries[version] = f"100644 app-{version:04d}\0".encode() + bytes.fromhex(changed)
        raw = b"".join(entries)
        sha = feed(repo, ["hash-object", "-t", "tree", "--stdin"], raw).strip()
        objects[sha.encode()] = (2, raw)
        trees.append(sha)
    git("repack", "-d", "-q", cwd=repo)  # the blobs, in a pack of their own
    fresh = write_pack(git_dir, objects)
    assert (git_dir / "objects" / "pack" / fresh).exists()
    removed = roll_up(git_dir, frozenset({fresh}))
    assert fresh in removed and not (git_dir / "objects" / "pack" / fresh).exists()
    for sha in trees:
        assert git("cat-file", "-t", sha, cwd=repo).strip() == "tree"
    git("fsck", "--strict", cwd=repo)
    rows = [
        line.split()
        for idx in (git_dir / "objects" / "pack").glob("*.idx")
        for line in git("verify-pack", "-v", str(idx), cwd=repo).splitlines()
    ]
    deltas = [row for row in rows if len(row) == 7 and row[1] == "tree"]
    assert len(deltas) >= len(trees) - 1  # all but the base


def test_a_pack_a_crash_left_without_its_index_is_removed(tmp_path: Path) -> None:
    """`_rewrite` removes a pack's .idx before its .pack: killed between the two, it leaves a .pack
    git ignores. The next roll-up removes it; the repository stays sound."""
    repo = repo_with_packs(tmp_path, [3, 40])
    pack_dir = repo / ".git" / "objects" / "pack"
    kept = min(pack_dir.glob("*.pack"), key=lambda p: p.stat().st_size)
    orphan = pack_dir / ("pack-" + "0" * 40 + ".pack")
    orphan.write_bytes(kept.read_bytes())
    promised = pack_dir / ("pack-" + "1" * 40 + ".pack")
    promised.write_bytes(kept.read_bytes())
    promised.with_suffix(".promisor").write_text("")  # not gitcanary's to judge
    assert orphan.name in roll_up(repo / ".git")
    assert not orphan.exists() and promised.exists()
    git("fsck", "--strict", cwd=repo)


def bench_bytes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_bytes", ROOT / "bench" / "bench_bytes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step_commits(tmp_path: Path, apps: int, ticks: int, per_tick: int) -> tuple[Path, float]:
    """Step commits through gitcanary's Workspace on a repository of `apps` app dirs (each with a
    generated dir), `per_tick` per tick, pushed and compacted as the reconciler does; the clone and
    the bytes its object store grew by, per commit."""
    base = tmp_path / f"apps-{apps}"
    base.mkdir()
    bench = bench_bytes()
    ws = bench.clone_of(base, apps)  # the benchmark's repository: app dirs, generated dirs
    objects = ws.root / ".git" / "objects"
    before = bench.disk(objects)
    for tick in range(ticks):
        for k in range(per_tick):
            path = f"apps/app-{(tick * per_tick + k) % apps:04d}-gitcanary/routing.yaml"
            (ws.root / path).write_text(f"weight: {tick % 10 * 10}\n")
            ws.commit(f"step {tick}.{k}\n\nGitcanary-Weight: {tick}\n", [path])
        ws.push()
        ws.compact()
    git("fsck", cwd=ws.root)
    return ws.root, (bench.disk(objects) - before) / (ticks * per_tick)


def test_the_tree_listing_every_app_is_stored_whole_once_per_pack_not_once_per_tick(tmp_path: Path) -> None:
    """96 step commits in 24 ticks on 1,000 apps: the `apps/` tree (2,000 entries, 80 KB) is
    written 96 times. Before the roll-up, each tick's pack held one whole copy (24 in all, 27 KB
    compressed each: about 7 KB per commit); rolled up, a whole copy is left only as the base of
    each pack git keeps, and the packs form a geometric progression, so there are at most
    log2(objects) + 1 of them.
    The bytes per commit are then within a small factor of those at 100 apps."""
    clone, large = step_commits(tmp_path, apps=1000, ticks=24, per_tick=4)
    pack_dir = clone / ".git" / "objects" / "pack"
    own = [idx for idx in pack_dir.glob("*.idx") if not idx.with_suffix(".promisor").exists()]
    rows = [
        line.split() for idx in own for line in git("verify-pack", "-v", str(idx), cwd=clone).splitlines()
    ]
    objects = [row for row in rows if len(row) in (5, 7) and row[1] in ("blob", "tree", "commit")]
    whole_big_trees = [row for row in objects if row[1] == "tree" and len(row) == 5 and int(row[2]) > 50_000]
    assert len(objects) >= 96 * 2  # a new commit and `apps/` tree each at least (the seed's are promisor)
    assert len(own) <= 1 + math.log2(len(objects))
    assert len(whole_big_trees) <= len(own), (len(whole_big_trees), len(own))
    _, small = step_commits(tmp_path, apps=100, ticks=24, per_tick=4)
    assert large < 4 * small, (small, large)


def test_no_pack_is_chosen_from_an_empty_list() -> None:
    assert to_roll([]) == []
    assert to_roll([PackFile(Path("pack-a.pack"), 3)]) == []
