"""Which directories a Flux Kustomization in the repository builds, and whether that covers a canary.

A Flux Kustomization builds `spec.path`: through its kustomization.yaml when it has one (following
`resources` into sub-directories), else through the kustomization Flux generates (fluxcd/pkg
`kustomize/kustomize_generator.go`): every YAML file under the path, and each sub-directory that has
its own kustomization.yaml as one resource, without descending further. So `path: ./apps/backend`
never builds `apps/backend-gitcanary`, even when `apps/kustomization.yaml` lists it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import yamlio
from gitcanary.manifests.discovery import flux_kustomization_paths
from gitcanary.manifests.files import find_kustomization


@dataclass(frozen=True)
class FluxGap:
    """A Flux Kustomization that applies the app's directory but not the generated one."""

    source: str
    name: str
    path: str

    def note(self, app_dir: str, generated: str) -> str:
        return (
            f"ACTION NEEDED: Flux Kustomization {self.name} ({self.source}) applies ./{self.path or '.'}, "
            f"which builds {app_dir} but not {generated}: the primary and routing gitcanary commits "
            f"would never reach the cluster; point it at a directory whose build includes {generated} "
            f"or add a Flux Kustomization for ./{generated}"
        )


def built_dirs(root: Path, directory: str) -> set[str]:
    """Repository-relative directories whose manifests a build of `directory` includes."""
    found: set[str] = set()
    _visit(root, os.path.normpath(directory) if directory else "", found)
    return {"" if d == "." else d for d in found}


def _visit(root: Path, directory: str, found: set[str]) -> None:
    directory = "" if directory in (".", "") else directory
    if directory in found or directory.startswith("..") or not (root / directory).is_dir():
        return
    found.add(directory)
    kustomization = find_kustomization(root, directory)
    if kustomization is not None:
        for ref in _local_refs(root, kustomization):
            joined = os.path.normpath(os.path.join(directory, ref)) if directory else os.path.normpath(ref)
            if (root / joined).is_dir():
                _visit(root, joined, found)
        return
    # Flux's generated kustomization: walk the tree; a sub-directory with its own kustomization is one
    # resource (built by its own rules), one without is walked for its YAML files.
    for entry in sorted((root / directory).iterdir() if (root / directory).is_dir() else ()):
        if entry.is_dir() and not entry.is_symlink() and entry.name != ".git":
            _visit(root, f"{directory}/{entry.name}" if directory else entry.name, found)


def _local_refs(root: Path, kustomization: str) -> list[str]:
    try:
        doc: Any = next(iter(yamlio.safe_load_all((root / kustomization).read_text())), {}) or {}
    except (yamlio.YAMLError, OSError):
        return []
    if not isinstance(doc, dict):
        return []
    refs: list[str] = []
    for key in ("resources", "bases", "components"):
        refs += [r for r in doc.get(key) or [] if isinstance(r, str) and "://" not in r]
    return refs


def flux_gaps(root: Path, app_dir: str, generated: str) -> list[FluxGap]:
    """Flux Kustomizations in the repository that build `app_dir` but not `generated`.

    Before initialization `generated` does not exist yet: initialization lists it in its parent's
    kustomization (or Flux's walk finds it there), so a build of the parent covers it.
    """
    parent = os.path.dirname(generated)
    exists = (root / generated).is_dir()
    gaps = []
    for source, name, path in flux_kustomization_paths(root):
        dirs = built_dirs(root, path)
        covered = generated in dirs or (not exists and parent in dirs)
        if app_dir in dirs and not covered:
            gaps.append(FluxGap(source, name, path))
    return gaps


__all__ = ["FluxGap", "built_dirs", "flux_gaps"]
