"""Test stand-ins for image automation: a registry that lists tags, and bots that push bumps as Flux's
image-automation-controller and Argo CD Image Updater do.

- `Registry`: a loopback HTTP server answering the OCI distribution API's tag listing
  (`GET /v2/<name>/tags/list` -> `{"name": ..., "tags": [...]}`); tests add tags as CI would push images.
- `flux_latest`: the tag a Flux ImagePolicy selects, decided by Flux's own libraries: a small Go
  program (tests/fluxpolicy) built against Masterminds/semver (Debian's golang-github-masterminds-semver-dev)
  and Go's regexp, applying the ImageRepository's exclusionList, filterTags and the policy.
- `FluxBot`: on each `run`, reads the ImagePolicy and ImageRepository from its clone of the repository
  (what Flux applied), lists the registry's tags, and rewrites every `{"$imagepolicy": "NS:NAME:tag"}`
  marker line to the selected tag, committing as fluxcdbot and pushing (pull --rebase on rejection).
- `ArgoBot`: the same for an Application's image-list (semver constraint, via the same Go program:
  Image Updater also uses Masterminds/semver) minus its `<alias>.ignore-tags`, writing the
  kustomization's `images[].newTag`, committing as argocd-image-updater <noreply@argoproj.io>.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from conftest import git

from gitcanary.manifests import yamlio

HERE = Path(__file__).resolve().parent
FLUX_AUTHOR = ("fluxcdbot", "fluxcdbot@users.noreply.github.com")
ARGO_AUTHOR = ("argocd-image-updater", "noreply@argoproj.io")
MARKER_LINE = re.compile(
    r'^(?P<head>\s*[\w.-]+:\s*)(?P<value>\S+)(?P<tail>\s*#\s*\{"\$imagepolicy":\s*"(?P<ref>[^"]+)"\}.*)$'
)


def build_fluxpolicy(out: Path) -> Path:
    """Compile tests/fluxpolicy against the Debian-packaged Masterminds/semver (GOPATH mode, offline)."""
    binary = out / "fluxpolicy"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": str(out / "gocache")}
    subprocess.run(
        ["go", "build", "-o", str(binary), "main.go"],
        cwd=HERE / "fluxpolicy",
        env=env,
        check=True,
        timeout=300,
    )
    return binary


def flux_latest(
    binary: Path, policy: dict[str, Any], repository: dict[str, Any] | None, tags: list[str]
) -> str:
    spec = policy.get("spec") or {}
    exclusions = (repository or {}).get("spec", {}).get("exclusionList", [r"^.*\.sig$"])
    request = {
        "policy": spec.get("policy") or {},
        "filterTags": spec.get("filterTags"),
        "exclusionList": list(exclusions),
        "tags": tags,
    }
    proc = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, check=True, timeout=60
    )
    answer = json.loads(proc.stdout)
    assert not answer.get("error"), answer
    return str(answer["latest"])


class Registry:
    """Tags per repository, served as the OCI distribution API lists them."""

    def __init__(self) -> None:
        self.tags: dict[str, list[str]] = {}
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                match = re.fullmatch(r"/v2/(?P<name>.+)/tags/list", self.path)
                if match is None or match.group("name") not in registry.tags:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps({"name": match.group("name"), "tags": registry.tags[match.group("name")]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def push(self, name: str, *tags: str) -> None:
        self.tags.setdefault(name, []).extend(tags)

    def list(self, image: str) -> list[str]:
        name = image.split("/", 1)[1] if "." in image.split("/", 1)[0] else image
        response = httpx.get(f"{self.url}/v2/{name}/tags/list", timeout=5)
        response.raise_for_status()
        return list(response.json()["tags"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _objects(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for file in sorted(root.rglob("*.yaml")):
        if ".git" in file.parts:
            continue
        for doc in yamlio.safe_load_all(file.read_text()):
            if isinstance(doc, dict):
                out.append((file, doc))
    return out


def _commit_and_push(clone: Path, author: tuple[str, str], message: str) -> bool:
    if not git("status", "--porcelain", cwd=clone).strip():
        return False
    ident = ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
    git(*ident, "commit", "-q", "-am", message, cwd=clone)
    for _ in range(5):
        try:
            git("push", "-q", "origin", "HEAD:main", cwd=clone)
            return True
        except AssertionError:
            git(*ident, "pull", "-q", "--rebase", cwd=clone)
    raise AssertionError("the bot could not push")


@dataclass
class FluxBot:
    """Flux's ImageUpdateAutomation with the Setters strategy, one run per `run()`."""

    remote: Path
    clone: Path
    registry: Registry
    binary: Path
    pushed: list[str] = field(default_factory=list)  # tags it committed, one per commit
    cluster_objects: list[dict[str, Any]] = field(default_factory=list)  # policies kept outside Git

    def __post_init__(self) -> None:
        git("clone", "-q", str(self.remote), str(self.clone), cwd=self.clone.parent)

    def run(self) -> str | None:
        git("pull", "-q", "--rebase", cwd=self.clone)
        objects = _objects(self.clone) + [(self.clone, d) for d in self.cluster_objects]
        policies = {
            (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
            for _, d in objects
            if d.get("kind") == "ImagePolicy"
        }
        repositories = {
            (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
            for _, d in objects
            if d.get("kind") == "ImageRepository"
        }
        chosen: str | None = None
        for file in sorted(self.clone.rglob("*.yaml")):
            if ".git" in file.parts:
                continue
            lines = file.read_text().splitlines(keepends=True)
            changed = False
            for number, line in enumerate(lines):
                match = MARKER_LINE.match(line.rstrip("\n"))
                if match is None:
                    continue
                namespace, name, *part = match.group("ref").split(":")
                policy = policies[(namespace, name)]
                ref = policy["spec"]["imageRepositoryRef"]
                repository = repositories[(ref.get("namespace", namespace), ref["name"])]
                image = repository["spec"]["image"]
                latest = flux_latest(self.binary, policy, repository, self.registry.list(image))
                if not latest:
                    continue
                value = latest if part == ["tag"] else f"{image}:{latest}"
                if match.group("value") != value:
                    lines[number] = f"{match.group('head')}{value}{match.group('tail')}\n"
                    changed, chosen = True, latest
            if changed:
                file.write_text("".join(lines))
        if chosen and _commit_and_push(self.clone, FLUX_AUTHOR, f"Update image to {chosen}"):
            self.pushed.append(chosen)
            return chosen
        return None


@dataclass
class ArgoBot:
    """Argo CD Image Updater with git write-back to the kustomization, one run per `run()`."""

    remote: Path
    clone: Path
    registry: Registry
    binary: Path
    kustomization: str
    pushed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        git("clone", "-q", str(self.remote), str(self.clone), cwd=self.clone.parent)

    def run(self) -> str | None:
        git("pull", "-q", "--rebase", cwd=self.clone)
        chosen = None
        for _, app in _objects(self.clone):
            if app.get("kind") != "Application":
                continue
            annotations = app["metadata"].get("annotations") or {}
            for entry in str(annotations.get("argocd-image-updater.argoproj.io/image-list", "")).split(","):
                alias, _, spec = entry.strip().rpartition("=")
                image, _, constraint = spec.partition(":")
                ignore = [
                    t.strip()
                    for t in str(
                        annotations.get(f"argocd-image-updater.argoproj.io/{alias}.ignore-tags", "")
                    ).split(",")
                    if t.strip()
                ]
                tags = [
                    t for t in self.registry.list(image) if not any(fnmatch.fnmatchcase(t, g) for g in ignore)
                ]
                policy = {"spec": {"policy": {"semver": {"range": constraint or "*"}}}}
                latest = flux_latest(self.binary, policy, {"spec": {"exclusionList": []}}, tags)
                file = self.clone / self.kustomization
                text = file.read_text()
                doc = yamlio.load(text)
                for item in doc["images"]:
                    if item["name"] == image and latest and item.get("newTag") != latest:
                        item["newTag"] = latest
                        chosen = latest
                file.write_text(yamlio.dump(doc, like=text))
        if chosen and _commit_and_push(self.clone, ARGO_AUTHOR, f"build: automatic update to {chosen}"):
            self.pushed.append(chosen)
            return chosen
        return None
