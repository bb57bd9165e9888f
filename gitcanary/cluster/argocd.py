"""Argo CD: has the `Application` that owns a directory synced a commit, and is it healthy?

An Application owns the directories under its `spec.source.path` (or any of `spec.sources[].path`)
in this repository (`repoURL`, when gitcanary knows its own URL); the deepest path wins, as for
Flux. A step counts as applied when every owner reports the commit (or a descendant of it) as
`status.sync.revision` (`status.sync.revisions[]` for several sources), `status.sync.status:
Synced` and `status.health.status: Healthy`. Read only: gitcanary never syncs an Application.
"""

from __future__ import annotations

from typing import Any

from gitcanary.cluster.paths import most_specific, normalize
from gitcanary.cluster.revisions import Ancestry, same_repository

GROUP = "argoproj.io"
VERSION = "v1alpha1"
PLURAL = "applications"

Obj = dict[str, Any]


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"Application {meta.get('namespace', '')}/{meta.get('name', '')}"


def _sources(obj: Obj) -> list[Obj]:
    spec = obj.get("spec") or {}
    return [s for s in [spec.get("source"), *(spec.get("sources") or [])] if isinstance(s, dict)]


def _revisions(obj: Obj) -> list[str]:
    sync = (obj.get("status") or {}).get("sync") or {}
    found = [str(sync.get("revision") or ""), *(str(r) for r in sync.get("revisions") or [])]
    return [r for r in found if r]


def applied(
    applications: list[Obj], directories: list[str], commit: str, ancestry: Ancestry, repo_url: str | None
) -> tuple[bool | None, str]:
    """(applied, why). None: no Application of this repository owns these directories (not Argo CD's)."""
    candidates = [
        (str(source.get("path") or ""), obj)
        for obj in applications
        for source in _sources(obj)
        if repo_url is None or same_repository(str(source.get("repoURL") or ""), repo_url)
    ]
    owners: dict[str, Obj] = {}
    for directory in directories:
        found = most_specific(candidates, directory)
        if not found:
            return None, f"no Argo CD Application owns {normalize(directory) or '/'}"
        for obj in found:
            owners[_name(obj)] = obj
    short = commit[:8]
    for name, obj in sorted(owners.items()):
        status = obj.get("status") or {}
        revisions = _revisions(obj)
        if not revisions:
            return False, f"{name} has synced nothing yet"
        answers = [ancestry.contains(revision, commit) for revision in revisions]
        if not any(answers):
            if all(answer is None for answer in answers):
                return False, f"{name} synced {revisions[0][:8]}, a commit this repository does not have"
            return False, f"{name} synced {revisions[0][:8]}, not yet {short}"
        sync = str((status.get("sync") or {}).get("status") or "Unknown")
        if sync != "Synced":
            return False, f"{name} is {sync}, not Synced"
        health = str((status.get("health") or {}).get("status") or "Unknown")
        if health != "Healthy":
            return False, f"{name} synced {short} but is {health}, not Healthy"
    names = ", ".join(sorted(owners))
    return True, f"{names} synced {short}"
