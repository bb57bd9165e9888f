"""Finding where an image comes from, and writing an older one back with a minimal diff."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from gitcanary.manifests import detect, yamlio
from gitcanary.manifests.target import build_app

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  selector:
    matchLabels:
      app: backend
  template:
    metadata:
      labels:
        app: backend
    spec:
      containers:
      - name: backend
        image: ghcr.io/acme/backend:1.0.0   # pinned by the platform team
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]


def rendered_image(root: Path, app: str) -> str:
    objects = build_app(root, app)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.parametrize(
    ("entry", "bumped", "old_image"),
    [
        ("  newTag: 2.0.0 # release\n", "ghcr.io/acme/backend:2.0.0", "ghcr.io/acme/backend:1.5.0"),
        (
            "  newName: registry.example.com/acme/backend\n  newTag: 2.0.0\n",
            "registry.example.com/acme/backend:2.0.0",
            "registry.example.com/acme/backend:1.5.0",
        ),
        (
            "  digest: sha256:" + "b" * 64 + "\n",
            "ghcr.io/acme/backend@sha256:" + "b" * 64,
            "ghcr.io/acme/backend@sha256:" + "a" * 64,
        ),
    ],
    ids=["newTag", "newName", "digest"],
)
def test_kustomization_images_entry(tmp_path: Path, entry: str, bumped: str, old_image: str) -> None:
    app = tmp_path / "apps" / "backend"
    app.mkdir(parents=True)
    (app / "deployment.yaml").write_text(DEPLOYMENT)
    kustomization = "# app\nresources:\n- deployment.yaml\nimages:\n- name: ghcr.io/acme/backend\n" + entry
    (app / "kustomization.yaml").write_text(kustomization)
    assert rendered_image(tmp_path, "apps/backend") == bumped

    source = detect.locate(tmp_path, "apps/backend", "backend", bumped)
    assert source is not None
    assert source.path == "apps/backend/kustomization.yaml"
    assert source.field.startswith("images[0].")

    assert detect.write_back(tmp_path, source, "backend", bumped, old_image)
    after = (app / "kustomization.yaml").read_text()
    assert rendered_image(tmp_path, "apps/backend") == old_image
    assert "# app" in after  # comments survive
    assert len(changed_lines(kustomization, after)) == 2  # one line out, one line in


def test_plain_manifest_image(tmp_path: Path) -> None:
    app = tmp_path / "bundle"
    app.mkdir()
    bumped = DEPLOYMENT.replace("1.0.0", "2.0.0")
    (app / "deployment.yaml").write_text(bumped)
    source = detect.locate(tmp_path, "bundle", "backend", "ghcr.io/acme/backend:2.0.0")
    assert source == detect.ImageSource(
        "bundle/deployment.yaml", "spec.template.spec.containers[0].image", "manifest", 0
    )
    assert detect.write_back(
        tmp_path, source, "backend", "ghcr.io/acme/backend:2.0.0", "ghcr.io/acme/backend:1.0.0"
    )
    after = (app / "deployment.yaml").read_text()
    assert changed_lines(bumped, after) == [
        "-        image: ghcr.io/acme/backend:2.0.0   # pinned by the platform team",
        "+        image: ghcr.io/acme/backend:1.0.0   # pinned by the platform team",
    ]


def test_image_ref_round_trip() -> None:
    for text in (
        "nginx",
        "nginx:1.25",
        "ghcr.io/a/b:1",
        "localhost:5000/a/b:2",
        "a/b@sha256:" + "c" * 64,
        "a/b:1@sha256:" + "c" * 64,
    ):
        assert str(detect.ImageRef.parse(text)) == text
    assert detect.ImageRef.parse("localhost:5000/a/b").tag is None


def test_yaml_round_trip_keeps_style() -> None:
    text = "# header\nspec:\n  items:\n    - a: 1   # one\n      b: 'x'\n"
    doc = yamlio.load(text)
    doc["spec"]["items"][0]["a"] = 2
    assert changed_lines(text, yamlio.dump(doc, like=text)) == ["-    - a: 1   # one", "+    - a: 2   # one"]
