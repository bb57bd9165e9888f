"""Flux: is commit C applied by the Kustomizations that build the canary's directories?

Field names from kustomize.toolkit.fluxcd.io/v1 `Kustomization`: `spec.path`,
`status.lastAppliedRevision` (`<branch>@sha1:<sha>`), `status.observedGeneration`,
`status.conditions[type=Ready]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitcanary.cluster.paths import builds, most_specific, normalize
from gitcanary.cluster.revisions import Ancestry, flux_revision

GROUP, VERSION, PLURAL = "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"

Obj = dict[str, Any]


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"Kustomization {meta.get('namespace', '')}/{meta.get('name', '?')}"


def _ready(obj: Obj) -> tuple[bool, str]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return True, ""
            return False, f"Ready={condition.get('status')} {condition.get('reason', '')}".strip()
    return False, "no Ready condition yet"


def _sha(obj: Obj) -> str:
    return flux_revision(str((obj.get("status") or {}).get("lastAppliedRevision") or ""))[1]


def applied(
    kustomizations: list[Obj],
    directories: list[str],
    branch: str,
    commit: str,
    ancestry: Ancestry,
    root: Path | None = None,
) -> tuple[bool | None, str]:
    """(applied, why). None: no Kustomization of `branch` builds these directories (not Flux's).

    A Kustomization builds a directory under its `spec.path` (the deepest such path wins), or,
    failing that, one its kustomization tree in the checkout at `root` refers to.
    """
    candidates = []
    for obj in kustomizations:
        status = obj.get("status") or {}
        ref, _ = flux_revision(str(status.get("lastAppliedRevision") or ""))
        if ref and ref != branch:
            continue  # built from another branch (another environment)
        candidates.append((str((obj.get("spec") or {}).get("path") or ""), obj))
    builders: dict[str, Obj] = {}
    for directory in directories:
        found = most_specific(candidates, directory)
        if not found and root is not None:
            found = [obj for path, obj in candidates if builds(root, path, directory)]
        if len(found) > 1:
            # Kustomizations of another repository may use the same path: when some applied a
            # commit this repository has, those are ours.
            ours = [obj for obj in found if ancestry.known(_sha(obj))]
            found = ours or found
        if not found:
            return None, f"no Flux Kustomization builds {normalize(directory) or '/'}"
        for obj in found:
            builders[_name(obj)] = obj
    short = commit[:8]
    for name, obj in sorted(builders.items()):
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        revision = str(status.get("lastAppliedRevision") or "")
        if not revision:
            return False, f"{name} has applied nothing yet"
        _, sha = flux_revision(revision)
        contains = ancestry.contains(sha, commit)
        if contains is None:
            return False, f"{name} applied {revision}, a commit this repository does not have"
        if not contains:
            return False, f"{name} applied {sha[:8]}, not yet {short}"
        if status.get("observedGeneration") != meta.get("generation"):
            return False, f"{name} has not observed its generation {meta.get('generation')} yet"
        ok, why = _ready(obj)
        if not ok:
            return False, f"{name} applied {sha[:8]} but is not ready: {why}"
    names = ", ".join(sorted(builders))
    return True, f"{names} applied {short}"
