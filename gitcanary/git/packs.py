"""Keeping gitcanary's clone to few packs, in which the trees that list every app are deltas.

Every step commit writes a new `apps/` tree (one entry per app and per generated dir). Stored
whole, a commit's bytes grew with the apps; delta-compressed by dulwich in Python, a tree cost
about 6 ms at 2,000 entries, half of what a commit cost. So:

1. `write_pack`: the tick's objects go to disk whole, as one pack that `git index-pack` indexes.
2. `roll_up`: `git pack-objects` rewrites that fresh pack with deltas (in C), then rolls the
   smallest packs into one the way `git repack --geometric=2 -d` chooses them (`to_roll`): until
   each pack holds at least twice the objects of the next smaller one. A tick's first tree becomes
   a delta of an earlier tick's once their packs are rolled together; every object is rewritten
   about log2(ticks) times in all, and there are at most log2(objects) + 1 packs.

`git repack --geometric` itself refuses to run in gitcanary's blob-less clone (git 2.39:
"cannot use internal rev list with --stdin-packs"), so the packs are chosen here, from those that
are neither the promisor remote's (`.promisor`: git fetches what they lack on demand, and `git gc`
keeps them apart) nor kept (`.keep`) nor cruft (`.mtimes`).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import ObjectID, hex_to_sha
from dulwich.pack import UnpackedObject, load_pack_index, write_pack_data

from gitcanary.errors import GitError

log = logging.getLogger(__name__)
FACTOR = 2  # git's default for --geometric
TIMEOUT_SECONDS = 600
# What git keeps beside a pack; the .idx goes first, so no reader finds an index without its pack.
PACK_FILES = (".idx", ".pack", ".rev", ".bitmap")
SET_ASIDE = (".promisor", ".keep", ".mtimes")


def write_pack(git_dir: Path, objects: dict[ObjectID, tuple[int, bytes]]) -> str:
    """Store `objects` ((type, serialized) by id) as one new pack; the pack's file name.

    dulwich writes the pack stream, whole objects at zlib level 0 (they are rewritten with deltas
    by `roll_up` next), into `git index-pack --stdin`, which writes the pack and its index: dulwich's
    own index step reads the pack back in Python, which cost as much as writing it.
    """
    records = (
        UnpackedObject(type_num, decomp_chunks=[raw], sha=hex_to_sha(sha), decomp_len=len(raw))
        for sha, (type_num, raw) in objects.items()
    )
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "index-pack", "--stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,  # a file: git's messages cannot fill a pipe while the pack is still written
        ) as indexer,
    ):
        assert indexer.stdin is not None and indexer.stdout is not None
        try:
            with indexer.stdin:
                write_pack_data(
                    indexer.stdin.write,
                    records,
                    object_format=DEFAULT_OBJECT_FORMAT,
                    num_records=len(objects),
                    compression_level=0,
                )
        except BrokenPipeError:
            pass  # git stopped reading: its message says why
        out = indexer.stdout.read()
        indexer.wait(timeout=TIMEOUT_SECONDS)
        err.seek(0)
        if indexer.returncode != 0:
            message = err.read().decode(errors="replace").strip()
            raise GitError(f"git index-pack in {git_dir} failed: {message}")
    # "pack\t<name>" (or the bare name in older gits)
    return f"pack-{out.decode().split()[-1]}.pack"


@dataclass(frozen=True)
class PackFile:
    path: Path  # the .pack
    objects: int


def rollable_packs(pack_dir: Path) -> list[PackFile]:
    """The packs `roll_up` may rewrite, smallest first: each with its index, none set aside."""
    found = []
    for idx in pack_dir.glob("pack-*.idx"):
        pack = idx.with_suffix(".pack")
        if not pack.exists() or any(idx.with_suffix(ext).exists() for ext in SET_ASIDE):
            continue
        try:
            index = load_pack_index(idx, DEFAULT_OBJECT_FORMAT)
        except (OSError, ValueError, AssertionError):
            continue  # half written or damaged: git's own maintenance decides about it
        try:
            found.append(PackFile(pack, len(index)))
        finally:
            index.close()
    return sorted(found, key=lambda pack: (pack.objects, pack.path.name))


def to_roll(packs: list[PackFile]) -> list[PackFile]:
    """The smallest packs to roll into one (git's geometric split); none when they form a progression."""
    split = 0
    for i in range(len(packs) - 1, 0, -1):
        if packs[i].objects < FACTOR * packs[i - 1].objects:
            split = i + 1  # pack i breaks the progression: it and everything smaller are rolled
            break
    # Rolling them into one may break the progression with the packs above: take those too.
    total = sum(pack.objects for pack in packs[:split])
    while split < len(packs) and total and FACTOR * total >= packs[split].objects:
        total += packs[split].objects
        split += 1
    return packs[:split]


def roll_up(git_dir: Path, fresh: frozenset[str] = frozenset()) -> list[str]:
    """Rewrite the packs written without deltas (`fresh`, by file name) as one pack with deltas, then
    roll the packs `to_roll` chooses into one; the names of the packs removed. Each rewrite is one
    `git pack-objects`, and every object is in the new pack before the old ones are removed."""
    pack_dir = git_dir / "objects" / "pack"
    removed = _remove_orphans(pack_dir)
    packs = rollable_packs(pack_dir)
    # git does not look for a delta between two objects that one pack stores whole (it takes them
    # for a pair an earlier pack-objects tried), so the fresh packs are first deltified on their own.
    new_packs = [pack for pack in packs if pack.path.name in fresh]
    if new_packs:
        removed += _rewrite(git_dir, new_packs, "--no-reuse-object")  # and compressed anew
        packs = rollable_packs(pack_dir)
    chosen = to_roll(packs)
    if len(chosen) > 1:
        removed += _rewrite(git_dir, chosen)
    return removed


def _remove_orphans(pack_dir: Path) -> list[str]:
    """Remove the packs a crash left without their index (`_rewrite` removes the .idx first): git
    ignores them, so they would only take space. Runs where no git command writes a pack."""
    orphans = [
        pack
        for pack in pack_dir.glob("pack-*.pack")
        if not pack.with_suffix(".idx").exists() and not any(pack.with_suffix(e).exists() for e in SET_ASIDE)
    ]
    for pack in orphans:
        for ext in PACK_FILES:
            pack.with_suffix(ext).unlink(missing_ok=True)
    return [pack.name for pack in orphans]


def _rewrite(git_dir: Path, packs: list[PackFile], *options: str) -> list[str]:
    """The objects of `packs` written as one new pack by `git pack-objects`; the packs removed."""
    pack_dir = git_dir / "objects" / "pack"
    ids: list[str] = []
    for pack in packs:
        index = load_pack_index(pack.path.with_suffix(".idx"), DEFAULT_OBJECT_FORMAT)
        try:
            ids += [sha.decode() for sha in index]
        finally:
            index.close()
    done = subprocess.run(
        [
            "git",
            f"--git-dir={git_dir}",
            "pack-objects",
            "-q",
            "--delta-base-offset",
            "--non-empty",
            *options,
            str(pack_dir / "pack"),
        ],
        input="\n".join(ids) + "\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        log.warning("rewriting %d packs as one in %s failed: %s", len(packs), git_dir, done.stderr.strip())
        return []
    new = f"pack-{done.stdout.strip()}.pack"
    removed = []
    for pack in packs:
        if pack.path.name == new:
            continue  # the same objects: git wrote the same name over it
        for ext in PACK_FILES:
            pack.path.with_suffix(ext).unlink(missing_ok=True)
        removed.append(pack.path.name)
    return removed
