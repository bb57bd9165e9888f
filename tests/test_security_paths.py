"""Confinement: a path from the repository never leads gitcanary outside its clone, into .git, or
through a symlink; names are Kubernetes names before they reach a path. Attacks as a person with push
rights would make them, against the real CLI and a real bare remote."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import EXAMPLES, git, make_config_repo
from security_cli import Setup, cli, fast_canary, initialized

from gitcanary.manifests.discovery import GENERATED_DIR_ANNOTATION


def _annotate(value: str):  # noqa: ANN202 - a ruamel edit
    def change(doc) -> None:  # noqa: ANN001
        doc["metadata"].setdefault("annotations", {})[GENERATED_DIR_ANNOTATION] = value

    return change


def test_a_generated_dir_that_climbs_out_is_refused_by_validate_and_run(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    escape = "../../../escaped-by-annotation"
    repo.edit("apps/backend/canary.yaml", _annotate(escape))
    repo.commit_and_push("generated dir outside the repository")
    validated = cli("validate", ".", cwd=repo.human)
    assert validated.returncode != 0
    assert f'apps/backend/canary.yaml: metadata.annotations["{GENERATED_DIR_ANNOTATION}"]' in validated.output
    assert "leaves the repository" in validated.output

    setup = Setup(repo, tmp_path / "deep" / "er" / "work", tmp_path)
    ran = setup.run_once()
    assert "leaves the repository" in ran.output, ran.output
    # Nothing was written where the annotation points, relative to the clone or to the cwd.
    for start in (setup.work, tmp_path, repo.human):
        assert not (start / escape).resolve().exists()
    assert not list(tmp_path.rglob("escaped-by-annotation"))
    # A path into .git is refused the same way.
    repo.edit("apps/backend/canary.yaml", _annotate(".git/hooks"))
    assert "enters .git" in cli("validate", ".", cwd=repo.human).output


def test_a_canary_name_that_is_not_a_kubernetes_name_is_refused(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    for bad, why in (
        ("../../escaped-by-name", "not a Kubernetes name"),
        ("x" * 300, "at most 253"),
        ("backend\nGitcanary-Phase: Succeeded", "not a Kubernetes name"),
    ):
        repo.edit("apps/backend/canary.yaml", lambda doc, bad=bad: doc["metadata"].__setitem__("name", bad))
        ran = cli("validate", ".", cwd=repo.human)
        assert ran.returncode != 0 and "apps/backend/canary.yaml: metadata.name" in ran.output, ran.output
        assert why in ran.output
    repo.commit_and_push("a hostile name")
    setup = Setup(repo, tmp_path / "w" / "x" / "work", tmp_path)
    ran = setup.run_once()
    assert "metadata.name" in ran.output
    assert not list(tmp_path.rglob("escaped-by-name*"))
    authors = git("log", "--format=%an", "main", cwd=repo.remote).split("\n")
    assert authors[0] == "Pat Person"  # gitcanary pushed nothing


def _replace_with_symlink(setup: Setup, path: str, target: str) -> None:
    file = setup.repo.human / path
    file.unlink()
    os.symlink(target, file)
    setup.push(f"replace {path} by a symlink to {target}")


def test_a_symlinked_routing_file_never_makes_gitcanary_write_outside(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    _replace_with_symlink(setup, "apps/backend-gitcanary/routing.yaml", str(victim))
    setup.repo.bump("apps/backend", "6.1.1")
    ran = setup.run_once()
    assert victim.read_text() == "precious\n"
    assert "apps/backend-gitcanary/routing.yaml is a symlink" in ran.output, ran.output
    assert "leaves the repository" in ran.output


def test_a_generated_file_symlinked_inside_the_repository_is_not_written_through(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    target = "apps/backend/deployment.yaml"
    before = git("show", f"main:{target}", cwd=setup.repo.remote)
    _replace_with_symlink(setup, "apps/backend-gitcanary/routing.yaml", "../backend/deployment.yaml")
    validated = cli("validate", ".", cwd=setup.repo.human)
    assert validated.returncode != 0
    assert "apps/backend-gitcanary/routing.yaml: a symlink in a generated directory" in validated.output
    setup.repo.bump("apps/backend", "6.1.1")
    ran = setup.run_once()
    assert "gitcanary never writes through a symlink" in ran.output, ran.output
    assert git("show", f"main:{target}", cwd=setup.repo.remote) == before


def test_a_routing_file_linked_to_its_own_git_config_is_refused_and_later_ticks_work(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    config_before = (setup.work / ".git" / "config").read_text()
    _replace_with_symlink(setup, "apps/backend-gitcanary/routing.yaml", "../../.git/config")
    setup.repo.bump("apps/backend", "6.1.1")
    first = setup.run_once()
    assert "routing.yaml" in first.output and ("into .git" in first.output or "symlink" in first.output)
    assert (setup.work / ".git" / "config").read_text() == config_before
    # The clone is intact: once a person puts the file back, gitcanary goes on from there.
    link = setup.repo.human / "apps/backend-gitcanary/routing.yaml"
    link.unlink()
    git("checkout", "HEAD~2", "--", "apps/backend-gitcanary/routing.yaml", cwd=setup.repo.human)
    setup.push("restore routing.yaml")
    again = setup.run_once()
    assert again.returncode == 0, again.output
    assert "start prod/backend rollout 6.1.0 -> 6.1.1" in again.output, again.output


def test_a_fleet_manifest_symlinked_to_a_host_file_is_never_read_or_committed(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  token: HOST-SECRET-4711\n"
    )
    seed = tmp_path / "example"
    shutil.copytree(EXAMPLES / "fleet", seed)
    repo = make_config_repo(tmp_path, "fleet")
    os.symlink(secret, repo.human / "apps/backend/stolen.yaml")
    repo.edit("apps/backend/canary.yaml", fast_canary)  # type: ignore[arg-type]
    repo.commit_and_push("a bundle manifest that is a symlink to a host file")
    setup = Setup(repo, tmp_path / "work", tmp_path)
    ran = setup.run_once()
    assert "apps/backend/stolen.yaml" in ran.output and "leaves the repository" in ran.output, ran.output
    assert "HOST-SECRET-4711" not in setup.remote_history()
    assert "HOST-SECRET-4711" not in ran.output
    validated = cli("validate", ".", cwd=repo.human)
    assert validated.returncode != 0 and "apps/backend/stolen.yaml" in validated.output


def test_every_kind_of_escape_is_refused_by_the_one_path_module(tmp_path: Path) -> None:
    import pytest

    from gitcanary.manifests import paths

    root = tmp_path / "clone"
    (root / ".git").mkdir(parents=True)
    (root / "apps").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "apps" / "out")
    os.symlink("../.git", root / "apps" / "git")
    os.symlink("../apps", root / "apps" / "loop")
    for bad, why in (
        ("/etc/passwd", "absolute"),
        ("../x", "leaves the repository"),
        ("apps/../../x", "leaves the repository"),
        (".git/config", "inside .git"),
        ("apps/../.git/hooks/x", "inside .git"),
        ("apps/out/file.yaml", "leaves the repository"),
        ("apps/git/config", "into .git"),
        ("apps\x00/x", "not a plain repository path"),
    ):
        with pytest.raises(paths.UnsafePath, match=why):
            paths.write(root, bad, "x", source="canary.yaml", field="f")
    with pytest.raises(paths.UnsafePath, match="never writes through a symlink"):
        paths.write(root, "apps/loop/new.yaml", "x")
    paths.write(root, "apps/new/ok.yaml", "fine\n")
    assert paths.read(root, "apps/loop/new/ok.yaml") == "fine\n"  # reading through an inner link is fine
    assert list((tmp_path / "outside").iterdir()) == []
