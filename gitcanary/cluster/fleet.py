"""Fleet: is commit C applied by the GitRepo whose paths cover the canary's directories?

Field names from fleet.cattle.io/v1alpha1: `GitRepo.spec.branch`, `spec.paths`, `status.commit`;
`Bundle` labels `fleet.cattle.io/repo-name` and `fleet.cattle.io/commit`, `status.summary.ready`
and `status.summary.desiredReady`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitcanary.cluster.paths import most_specific, normalize
from gitcanary.cluster.revisions import Ancestry, same_repository

GROUP, VERSION, GITREPOS, BUNDLES = "fleet.cattle.io", "v1alpha1", "gitrepos", "bundles"
REPO_LABEL, COMMIT_LABEL = "fleet.cattle.io/repo-name", "fleet.cattle.io/commit"

Obj = dict[str, Any]


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def applied(
    gitrepos: list[Obj],
    bundles_of: Callable[[str, str], list[Obj]],
    directories: list[str],
    branch: str,
    commit: str,
    ancestry: Ancestry,
    repo_url: str | None = None,
) -> tuple[bool | None, str]:
    """(applied, why). None: no GitRepo of `branch` covers these directories (not Fleet's).

    GitRepos that name `repo_url` are the only candidates when there are any (one cluster may
    pull several repositories with the same layout).
    """
    candidates = []
    if repo_url is not None:
        ours = [
            o for o in gitrepos if same_repository(str((o.get("spec") or {}).get("repo") or ""), repo_url)
        ]
        gitrepos = ours or gitrepos
    for obj in gitrepos:
        spec = obj.get("spec") or {}
        if spec.get("revision") or (spec.get("branch") or "master") != branch:
            continue  # pinned to a revision, or another branch (Fleet's default is master)
        for path in spec.get("paths") or [""]:
            candidates.append((str(path), obj))
    repos: dict[tuple[str, str], Obj] = {}
    for directory in directories:
        found = most_specific(candidates, directory)
        if not found:
            return None, f"no Fleet GitRepo covers {normalize(directory) or '/'}"
        for obj in found:
            repos[_key(obj)] = obj
    short = commit[:8]
    for (namespace, name), obj in sorted(repos.items()):
        label = f"GitRepo {namespace}/{name}"
        seen = str((obj.get("status") or {}).get("commit") or "")
        if not seen:
            return False, f"{label} has no commit yet"
        contains = ancestry.contains(seen, commit)
        if contains is None:
            return False, f"{label} is at {seen[:8]}, a commit this repository does not have"
        if not contains:
            return False, f"{label} is at {seen[:8]}, not yet {short}"
        bundles = [b for b in bundles_of(namespace, name) if _labels(b).get(REPO_LABEL) == name]
        if not bundles:
            return False, f"{label} has no Bundles yet"
        for bundle in bundles:
            bundle_name = (bundle.get("metadata") or {}).get("name", "?")
            if _labels(bundle).get(COMMIT_LABEL) != seen:
                return False, f"Bundle {namespace}/{bundle_name} is not at {seen[:8]} yet"
            summary = (bundle.get("status") or {}).get("summary") or {}
            ready, desired = summary.get("ready"), summary.get("desiredReady")
            if desired is None or ready != desired:
                return False, f"Bundle {namespace}/{bundle_name} has {ready or 0}/{desired or '?'} ready"
    names = ", ".join(f"GitRepo {ns}/{n}" for ns, n in sorted(repos))
    return True, f"{names} applied {short}, its Bundles ready"


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}
