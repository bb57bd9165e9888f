"""The image's recipe, as the Dockerfile, the Docker-less build (scripts/build_image.py) and the
publishing workflow (.github/workflows/image.yml) share it. Building the image and running the demo
in it is a step of scripts/test.sh (IMAGE=0 skips it): it takes minutes, not a test's seconds."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT
from ruamel.yaml import YAML

WORKFLOW = ROOT / ".github" / "workflows" / "image.yml"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_image", ROOT / "scripts" / "build_image.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_image"] = module
    spec.loader.exec_module(module)
    return module


def test_the_recipe_installs_every_extra() -> None:
    """Every optional dependency group but the tests' is installed in the image."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    recipe = (ROOT / "scripts/image/install.sh").read_text()
    (installed,) = re.findall(r'"\$1\[([a-z,]+)\]"', recipe)
    assert set(installed.split(",")) == set(extras) - {"test"}
    # and the Docker-less build checks inside the image that each one imports
    source = (ROOT / "scripts/build_image.py").read_text()
    for module in ("boto3", "google.auth", "helm_python"):
        assert module in source


def test_the_build_follows_the_dockerfile() -> None:
    spec = builder().read_dockerfile(ROOT / "Dockerfile")
    assert spec.suite == "bookworm"  # FROM debian:bookworm-slim: mmdebstrap's bookworm minbase
    assert spec.user == "65532:65532"  # the chart's runAsUser / runAsGroup
    assert spec.entrypoint == ["gitcanary"]
    assert spec.cmd == ["run", "--listen", "0.0.0.0:8080"]
    assert spec.env["PATH"].split(":")[0] == "/opt/gitcanary/bin"
    assert spec.env["HOME"] == spec.workdir == "/var/lib/gitcanary"
    assert spec.ports == ["8080/tcp"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "scripts/image/install.sh" in dockerfile


@pytest.mark.parametrize(
    "edit, refused",
    [
        (("ENTRYPOINT", "RUN apt-get install -y curl\nENTRYPOINT"), "a RUN other than the recipe"),
        (("ENTRYPOINT", "ADD https://example.com/x /x\nENTRYPOINT"), "ADD is not followed"),
        (("ENTRYPOINT", "COPY deploy /deploy\nENTRYPOINT"), "a COPY this build does not make"),
        (("FROM debian:bookworm-slim\nCOPY", "FROM python:3.11-slim\nCOPY"), "debian:<suite>-slim only"),
    ],
)
def test_the_build_refuses_a_dockerfile_it_cannot_follow(
    tmp_path: Path, edit: tuple[str, str], refused: str
) -> None:
    """A Dockerfile step the Docker-less build would not reproduce fails it, instead of testing an
    image other than the one the workflow publishes."""
    text = (ROOT / "Dockerfile").read_text()
    old, new = edit
    assert old in text
    changed = tmp_path / "Dockerfile"
    changed.write_text(text.replace(old, new, 1) if old != "ENTRYPOINT" else _before_last(text, old, new))
    with pytest.raises(SystemExit) as failed:
        builder().read_dockerfile(changed)
    assert refused in str(failed.value)


def _before_last(text: str, old: str, new: str) -> str:
    head, _, tail = text.rpartition(old)
    return head + new + tail


def test_the_workflows_validate_against_the_github_workflow_schema(tmp_path: Path) -> None:
    """SchemaStore's GitHub workflow schema, as check-jsonschema ships it (a test dependency)."""
    tool = shutil.which("check-jsonschema")
    assert tool, "pip install check-jsonschema (a test dependency)"
    files = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert str(WORKFLOW) in files
    ok = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *files],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the check is real: a misspelt key fails it
    broken = WORKFLOW.read_text().replace("runs-on:", "runs_on:")
    bad = tmp_path / "image.yml"
    bad.write_text(broken)
    found = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(bad)],
                           capture_output=True, text=True)
    assert found.returncode != 0


def test_the_workflow_builds_both_platforms_scans_and_pushes_only_on_a_tag() -> None:
    workflow = YAML(typ="safe").load(WORKFLOW.read_text())
    assert workflow["on"]["push"] == {"tags": ["v*"]}
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action", "docker/build-push-action",
                   "aquasecurity/trivy-action", "docker/login-action"):
        assert action in uses, action
    scan = next(s for s in steps if s.get("uses", "").startswith("aquasecurity/trivy-action"))
    assert scan["with"]["severity"] == "CRITICAL" and scan["with"]["exit-code"] == "1"
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action")]
    (publish,) = [b for b in builds if "push" in b["with"]]
    assert set(publish["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert publish["with"]["push"] == "${{ github.ref_type == 'tag' }}"
    # the scan comes before the push, and the image scanned is the one built from the same Dockerfile
    assert steps.index(scan) < steps.index(publish)
    assert job["permissions"]["packages"] == "write"
    # the tag pushed is ghcr.io/<owner>/gitcanary:<the chart's appVersion>, and a tag v* must equal it
    meta = next(s for s in steps if s.get("id") == "meta")
    assert "charts/gitcanary/Chart.yaml" in meta["run"] and "ghcr.io/${OWNER,,}/gitcanary" in meta["run"]
    assert publish["with"]["tags"] == "${{ steps.meta.outputs.image }}:${{ steps.meta.outputs.version }}"
