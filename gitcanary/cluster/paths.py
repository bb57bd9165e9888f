"""Which applier objects build a directory of the repository (Flux `spec.path`, Fleet `spec.paths`)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from gitcanary.manifests import files

T = TypeVar("T")


def normalize(path: str | None) -> str:
    """Repository-relative, no leading `./` or `/`; the root is ""."""
    cleaned = posixpath.normpath("/" + (path or "").strip()).lstrip("/")
    return "" if cleaned in (".", "") else cleaned


def covers(base: str, directory: str) -> bool:
    base, directory = normalize(base), normalize(directory)
    return base == "" or directory == base or directory.startswith(base + "/")


def builds(root: Path, base: str, directory: str) -> bool:
    """Does the kustomization at `base` reach `directory` through its resources (e.g. Flux's
    `./apps/production` whose kustomization.yaml lists `../base/podinfo`)?"""
    inputs = files.kustomize_inputs(root, normalize(base))
    return any(covers(item, directory) for item in inputs if item != normalize(base))


def most_specific(candidates: Iterable[tuple[str, T]], directory: str) -> list[T]:
    """The candidates whose path covers `directory` most closely (a deeper path wins over its parent)."""
    matching = [(normalize(path), item) for path, item in candidates if covers(path, directory)]
    if not matching:
        return []
    depth = max(len(path) for path, _ in matching)
    return [item for path, item in matching if len(path) == depth]
