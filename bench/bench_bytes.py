"""Bytes a step commit adds to gitcanary's clone, against the number of apps, beside git's best.

For each number of apps: a bare remote of that many app dirs (each with a generated dir), a
blob-less clone through gitcanary's `Workspace`, then ticks of `--per-tick` step commits that each
change one generated file, pushed and compacted after each tick as the reconciler does. Printed,
after each `--report` commits: the clone's object store growth per commit (loose and packed, what
is on disk), its packs, and the floor measured in the same run: the same clone copied and fully
repacked by git (`git repack -a -d -f --window=250 --depth=50`, what `git gc --aggressive` does), per
commit. The copy's promisor packs are repacked too, so the floor also loses what the seed costs;
both sides subtract the size they had before the first commit.

Run: python bench/bench_bytes.py [--apps 100,1000,2000] [--per-tick 10] [--report 100,400]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitcanary.git.workspace import Identity, Workspace  # noqa: E402


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def disk(objects: Path) -> int:
    return sum(f.stat().st_size for f in objects.rglob("*") if f.is_file())


def clone_of(base: Path, apps: int) -> Workspace:
    seed = base / "seed"
    for i in range(apps):
        (seed / "apps" / f"app-{i:04d}").mkdir(parents=True)
        (seed / "apps" / f"app-{i:04d}" / "kustomization.yaml").write_text(f"resources: []\n# {i}\n")
        (seed / "apps" / f"app-{i:04d}-gitcanary").mkdir()
        (seed / "apps" / f"app-{i:04d}-gitcanary" / "routing.yaml").write_text("weight: 0\n")
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-q", "-m", "seed", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(base / "remote.git"), cwd=base)
    git("config", "uploadpack.allowFilter", "true", cwd=base / "remote.git")
    ws = Workspace(f"file://{base / 'remote.git'}", "main", base / "work", Identity())
    ws.sync()
    return ws


def floor_bytes(clone: Path, scratch: Path) -> int:
    """The clone's objects after git's own most thorough repack, in a copy."""
    copy = scratch / "floor"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(clone / ".git", copy)
    git(f"--git-dir={copy}", "repack", "-a", "-d", "-f", "-q", "--window=250", "--depth=50", cwd=scratch)
    return disk(copy / "objects")


def measure(apps: int, per_tick: int, reports: list[int]) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="gitcanary-bytes-") as tmp:
        base = Path(tmp)
        ws = clone_of(base, apps)
        objects = ws.root / ".git" / "objects"
        start, start_floor = disk(objects), floor_bytes(ws.root, base)
        commits, spent = 0, 0.0
        for target in reports:
            while commits < target:
                began = time.perf_counter()
                for _ in range(per_tick):
                    path = f"apps/app-{commits % apps:04d}-gitcanary/routing.yaml"
                    (ws.root / path).write_text(f"weight: {commits % 10 * 10}\n")
                    ws.commit(f"step {commits}\n\nGitcanary-Weight: {commits % 10 * 10}\n", [path])
                    commits += 1
                ws.push()
                ws.compact()
                spent += time.perf_counter() - began
            packs = [p for p in (objects / "pack").glob("*.pack") if not p.with_suffix(".promisor").exists()]
            rows.append(
                {
                    "apps": apps,
                    "commits": commits,
                    "bytes_per_commit": (disk(objects) - start) / commits,
                    "floor_per_commit": (floor_bytes(ws.root, base) - start_floor) / commits,
                    "packs": len(packs),
                    "seconds_per_tick": spent / (commits / per_tick),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="100,1000,2000", help="numbers of apps, comma-separated")
    parser.add_argument("--per-tick", type=int, default=10, help="step commits per tick (default 10)")
    parser.add_argument("--report", default="100,400", help="report after these many commits")
    args = parser.parse_args()
    reports = sorted(int(n) for n in args.report.split(","))
    print("| apps | commits | bytes / commit | floor (`git repack -a -d -f`) | ratio | packs | s / tick |")
    print("|---|---|---|---|---|---|---|")
    for apps in (int(n) for n in args.apps.split(",")):
        for row in measure(apps, args.per_tick, reports):
            ratio = row["bytes_per_commit"] / row["floor_per_commit"]
            print(
                f"| {row['apps']:,} | {row['commits']:,} | {row['bytes_per_commit']:,.0f} | "
                f"{row['floor_per_commit']:,.0f} | {ratio:.1f}x | {row['packs']} | "
                f"{row['seconds_per_tick']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
