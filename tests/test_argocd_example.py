"""examples/argocd: its Application is Argo CD's (valid against the CRD), it owns the canary's
directories as gitcanary's cluster observer reads them, and `gitcanary validate` passes on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from conftest import git
from git import Repo
from oracle import schema_problems
from test_validate import validate

from gitcanary.cluster import argocd
from gitcanary.cluster.revisions import Ancestry

EXAMPLE = Path(__file__).parent.parent / "examples/argocd"


def test_the_example_application_owns_the_canary_and_validates(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "seed", cwd=root)
    head = git("rev-parse", "HEAD", cwd=root).strip()
    application = yaml.safe_load((root / "argocd/apps.yaml").read_text())
    assert schema_problems(application) == []
    synced = {
        **application,
        "status": {"sync": {"status": "Synced", "revision": head}, "health": {"status": "Healthy"}},
    }
    dirs = ["apps/backend", "apps/backend-gitcanary"]
    url = application["spec"]["source"]["repoURL"]
    assert argocd.applied([synced], dirs, head, Ancestry(Repo(root)), url) == (
        True,
        f"Application argocd/apps synced {head[:8]}",
    )
    errors, _ = validate(root)
    assert errors == []
