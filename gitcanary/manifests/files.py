"""Which files a directory holds for the applier: YAML files, kustomizations and what they read.

The lowest layer of `manifests/`: discovery and Fleet bundles both walk the tree through it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from gitcanary.manifests import paths, yamlio

YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
GENERATED_SUFFIX = "-gitcanary"


def yaml_files(root: Path) -> Iterable[str]:
    """Repository-relative paths of YAML files, skipping .git and gitcanary's generated dirs."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not d.endswith(GENERATED_SUFFIX))
        for name in sorted(filenames):
            if name.endswith(YAML_SUFFIXES):
                yield str(PurePosixPath(Path(dirpath, name).relative_to(root)))


def first_file(root: Path, directory: str, names: Iterable[str]) -> str | None:
    """The repo path of the first of `names` that is a file in `directory` ("" is the root)."""
    for name in names:
        candidate = f"{directory}/{name}" if directory else name
        if paths.is_file(root, candidate):
            return candidate
    return None


def find_kustomization(root: Path, directory: str) -> str | None:
    return first_file(root, directory, KUSTOMIZATION_NAMES)


def kustomize_inputs(root: Path, directory: str, seen: set[str] | None = None) -> set[str]:
    """Directories and files a kustomization reads (resources, bases, components, patches), recursively.

    A change under any of them may change what the app builds; nothing else can.
    """
    seen = seen if seen is not None else set()
    if directory in seen:
        return seen
    seen.add(directory)
    kustomization = find_kustomization(root, directory)
    if kustomization is None:
        return seen
    try:
        doc: Any = next(iter(yamlio.safe_load_all(paths.read(root, kustomization))), {}) or {}
    except yamlio.YAMLError:
        return seen
    refs: list[str] = []
    for key in ("resources", "bases", "components", "crds", "configurations", "transformers", "generators"):
        refs += [r for r in doc.get(key) or [] if isinstance(r, str)]
    for key in ("patchesStrategicMerge",):
        refs += [r for r in doc.get(key) or [] if isinstance(r, str) and "\n" not in r]
    for key in ("patches", "patchesJson6902"):
        refs += [p["path"] for p in doc.get(key) or [] if isinstance(p, dict) and p.get("path")]
    for ref in refs:
        if "://" in ref or ref.startswith("git@"):
            continue
        joined = os.path.normpath(os.path.join(directory, ref)) if directory else os.path.normpath(ref)
        if joined.startswith("..") or joined.split("/", 1)[0] == paths.GIT_DIR:
            continue
        try:
            is_dir = paths.inside(root, joined).is_dir()
        except paths.UnsafePath:
            continue  # kustomize's own load restrictor refuses it when the app is built
        if is_dir:
            kustomize_inputs(root, joined, seen)
        else:
            seen.add(joined)
    return seen


def affects(inputs: set[str], changed: set[str]) -> bool:
    for path in changed:
        for item in inputs:
            if path == item or not item or path.startswith(item + "/"):
                return True
    return False
