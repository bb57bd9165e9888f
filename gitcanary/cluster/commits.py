"""The last commit for a canary: the newest that touched what it builds from or its generated dir.

That is the commit the cluster must have applied before a step is measured: a step commit of
gitcanary, or a person's change to the app that came after it.
"""

from __future__ import annotations

from pathlib import Path

from git import Repo

from gitcanary.manifests import files
from gitcanary.manifests.generate import Layout
from gitcanary.spec.load import LoadedCanary


def canary_inputs(root: Path, loaded: LoadedCanary) -> set[str]:
    layout = Layout.of(loaded)
    return files.kustomize_inputs(root, layout.app_dir) | {
        loaded.source.split("#", 1)[0],
        layout.generated_dir,
    }


def last_commit(repo: Repo, head: str, inputs: set[str], loaded: LoadedCanary) -> str:
    """The newest commit up to `head` that changed `inputs`, other than the status file alone:
    a halt that only records a failed check changes nothing the applier applies."""
    paths = sorted(path or "." for path in inputs)
    status = f":(exclude){Layout.of(loaded).status}"
    return repo.git.log("-1", "--format=%H", head, "--", *paths, status).strip() or head


def directories(loaded: LoadedCanary) -> list[str]:
    """The directories an applier must build for this canary: its app and its generated objects."""
    layout = Layout.of(loaded)
    return [layout.app_dir, layout.generated_dir]
