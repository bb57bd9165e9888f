"""Which image automation selects a canary's image, and where a failed tag's exclusion can go.

Two automations push image bumps to GitOps repositories:

- Flux: an `ImagePolicy` (image.toolkit.fluxcd.io) picks the newest tag of an `ImageRepository`,
  and an ImageUpdateAutomation writes it wherever a `# {"$imagepolicy": "NS:NAME[:tag|:name]"}`
  marker names that policy.
- Argo CD Image Updater: an `Application` (argoproj.io) lists the images to update in its
  `argocd-image-updater.argoproj.io/image-list` annotation, `[alias=]image[:constraint]`.

`find` returns the `Selector`s of one image; `image_quarantine` writes and lifts exclusions there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import yamlio
from gitcanary.manifests.detect import ImageRef
from gitcanary.manifests.files import YAML_SUFFIXES

FLUX_IMAGE_GROUP = "image.toolkit.fluxcd.io/"
ARGO_GROUP = "argoproj.io/"
IMAGE_LIST = "argocd-image-updater.argoproj.io/image-list"
IGNORE_TAGS = "argocd-image-updater.argoproj.io/{alias}.ignore-tags"
MAX_FILE_BYTES = 1_000_000
# Flux's setters marker: `# {"$imagepolicy": "flux-system:backend:tag"}`.
MARKER = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"(?P<ref>[^"]+)"\s*\}')
# Kubernetes object names (DNS-1123 subdomain): anything else in a marker or object is ignored.
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

# Flux ImageUpdateAutomation has no default author (spec.git.commit.author is required); `flux
# create image update` and Flux's guides use fluxcdbot. Image Updater's --git-commit-email
# defaults to noreply@argoproj.io (its user: argocd-image-updater).
DEFAULT_AUTOMATION_AUTHORS = ("fluxcdbot@users.noreply.github.com", "noreply@argoproj.io")


@dataclass(frozen=True)
class Doc:
    """One Kubernetes object found in the repository."""

    path: str
    index: int
    obj: dict[str, Any]

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")


@dataclass(frozen=True)
class Selector:
    """An automation that selects one image: a Flux ImagePolicy or an Image Updater Application."""

    kind: str  # "ImagePolicy" or "Application"
    namespace: str
    name: str
    policy: str  # semver, alphabetical, numerical, image-updater
    path: str | None = None  # where the object lives in the repository; None: outside it
    index: int = 0
    alias: str = ""  # Image Updater's alias of the image
    repository: Doc | None = None  # the ImagePolicy's ImageRepository, when in the repository
    marker: str = ""  # file that carries the Flux marker
    extracts: bool = False  # filterTags.extract: the policy orders extracted values, not tags

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def where_quarantine_goes(self) -> str | None:
        """Where `quarantine` writes an exclusion, or None when it cannot (the reason is `why_not`)."""
        if self.path is None:
            return None
        if self.kind == "Application":
            return IGNORE_TAGS.format(alias=self.alias) if self.alias else None
        if self.policy == "semver" and not self.extracts:
            return "spec.policy.semver.range"
        if self.repository is not None:
            return f"ImageRepository {self.repository.namespace}/{self.repository.name} spec.exclusionList"
        return None

    def why_not(self) -> str:
        if self.path is None:
            return f"{self.ref} is not in this repository"
        if self.kind == "Application":
            return "the image has no alias in image-list, so it has no ignore-tags annotation"
        return "its ImageRepository is not in this repository (for its spec.exclusionList)"


def documents(root: Path) -> list[Doc]:
    """Every Flux image and Argo CD object in the repository's YAML files (bounded parsing)."""
    found: list[Doc] = []
    resolved = root.resolve()
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if ".git" in rel.parts or not file.name.endswith(YAML_SUFFIXES) or file.is_symlink():
            continue
        if not file.resolve().is_relative_to(resolved):
            continue  # reached through a symlinked directory that leaves the clone
        if not file.is_file() or file.stat().st_size > MAX_FILE_BYTES:
            continue
        text = file.read_text(errors="replace")
        if FLUX_IMAGE_GROUP not in text and ARGO_GROUP not in text:
            continue
        try:
            docs = list(yamlio.safe_load_all(text))
        except Exception:  # a broken file is validate's to report, not ours
            continue
        for index, doc in enumerate(docs):
            if isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str):
                item = Doc(str(rel), index, doc)
                if K8S_NAME.match(item.name) and (not item.namespace or K8S_NAME.match(item.namespace)):
                    found.append(item)
    return found


def _of(docs: list[Doc], group: str, kind: str) -> list[Doc]:
    return [d for d in docs if str(d.obj["apiVersion"]).startswith(group) and d.obj.get("kind") == kind]


def markers(root: Path, directory: str) -> list[tuple[str, str, str, str]]:
    """(file, policy namespace, policy name, image or "") of every `$imagepolicy` marker in
    `directory`'s YAML files. The image is the repository the marked line sets: its own value
    (`image: repo:tag # {...}`), or the `name:` (or `newName:`) of its kustomization `images:` entry."""
    base = root / directory if directory else root
    out: list[tuple[str, str, str, str]] = []
    if not base.is_dir():
        return out
    for file in sorted(base.iterdir()):
        if not file.name.endswith(YAML_SUFFIXES) or not file.is_file() or file.is_symlink():
            continue
        lines = file.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines):
            match = MARKER.search(line)
            if match is None:
                continue
            parts = match.group("ref").split(":")
            if len(parts) >= 2 and K8S_NAME.match(parts[0]) and K8S_NAME.match(parts[1]):
                out.append((str(file.relative_to(root)), parts[0], parts[1], _marked_image(lines, number)))
    return out


_KEY_VALUE = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[\w.-]+):\s*(?P<value>[^\s#]*)")


def _marked_image(lines: list[str], number: int) -> str:
    found = _KEY_VALUE.match(lines[number])
    if found is None:
        return ""
    value = found.group("value").strip("'\"")
    if found.group("key") == "image" or "/" in value:
        return value.split("@")[0].rsplit(":", 1)[0] if ":" in value.rsplit("/", 1)[-1] else value
    # A kustomization images: entry: its name (or newName, which wins: it is what renders) sits on
    # the lines of the same item, above or below the marked line.
    indent = len(found.group("indent")) + len(found.group("dash") or "")
    names: dict[str, str] = {}
    for step in (-1, 1):
        number_at = number
        while 0 <= number_at < len(lines) and abs(number_at - number) <= 8:
            other = _KEY_VALUE.match(lines[number_at])
            column = len(other.group("indent")) + len(other.group("dash") or "") if other else -1
            if (
                other is None
                or column != indent
                or (step == 1 and other.group("dash") and number_at != number)
            ):
                break
            if other.group("key") in ("name", "newName"):
                names.setdefault(other.group("key"), other.group("value").strip("'\""))
            if step == -1 and other.group("dash"):
                break  # the first line of the item
            number_at += step
    return names.get("newName") or names.get("name", "")


def _policy_kind(spec: dict[str, Any]) -> str:
    policy = spec.get("policy") or {}
    for kind in ("semver", "alphabetical", "numerical"):
        if kind in policy:
            return kind
    return "unknown"


def _image_list(annotation: str) -> list[tuple[str, str]]:
    """(alias, image path) of Image Updater's `[alias=]image[:constraint]` entries."""
    out = []
    for entry in annotation.split(","):
        entry = entry.strip()
        if not entry:
            continue
        alias, _, image = entry.rpartition("=")
        last = image.rsplit("/", 1)[-1]
        path = image.rsplit(":", 1)[0] if ":" in last else image
        out.append((alias.strip(), path.strip()))
    return out


def find(root: Path, app_dir: str, repository: str, docs: list[Doc] | None = None) -> list[Selector]:
    """The automations that select image `repository` (no tag) for the app in `app_dir`.

    `docs` is `documents(root)` when the caller asks for several images (it reads every YAML file).
    """
    docs = documents(root) if docs is None else docs
    selectors: list[Selector] = []
    policies = _of(docs, FLUX_IMAGE_GROUP, "ImagePolicy")
    repositories = _of(docs, FLUX_IMAGE_GROUP, "ImageRepository")
    seen: set[tuple[str, str]] = set()
    for path, namespace, name, image in markers(root, app_dir):
        if image and image != repository:
            continue  # the marker sets another image
        if (namespace, name) in seen:
            continue
        seen.add((namespace, name))
        doc = next((d for d in policies if (d.namespace, d.name) == (namespace, name)), None)
        if doc is None:
            selectors.append(Selector("ImagePolicy", namespace, name, "unknown", marker=path))
            continue
        spec = doc.obj.get("spec") or {}
        ref = spec.get("imageRepositoryRef") or {}
        repo_ns = ref.get("namespace") or namespace
        image_repo = next(
            (d for d in repositories if (d.namespace, d.name) == (repo_ns, ref.get("name"))), None
        )
        if image_repo is not None and (image_repo.obj.get("spec") or {}).get("image") not in (
            None,
            repository,
        ):
            continue  # the marker names a policy of another image
        selectors.append(
            Selector(
                "ImagePolicy",
                namespace,
                name,
                _policy_kind(spec),
                doc.path,
                doc.index,
                repository=image_repo,
                marker=path,
                extracts=bool((spec.get("filterTags") or {}).get("extract")),
            )
        )
    for doc in _of(docs, ARGO_GROUP, "Application"):
        annotations = (doc.obj.get("metadata") or {}).get("annotations") or {}
        for alias, image in _image_list(str(annotations.get(IMAGE_LIST) or "")):
            if image == repository:
                selectors.append(
                    Selector(
                        "Application", doc.namespace, doc.name, "image-updater", doc.path, doc.index, alias
                    )
                )
    return selectors


def automation_authors(root: Path) -> set[str]:
    """Commit author emails of the ImageUpdateAutomations in the repository."""
    emails = set()
    for doc in _of(documents(root), FLUX_IMAGE_GROUP, "ImageUpdateAutomation"):
        author = ((((doc.obj.get("spec") or {}).get("git") or {}).get("commit") or {}).get("author")) or {}
        if author.get("email"):
            emails.add(str(author["email"]))
    return emails


def automated(root: Path, app_dir: str, docs: list[Doc]) -> bool:
    """Could any automation select an image of this app: a marker in it, or any Image Updater Application?"""
    return bool(markers(root, app_dir)) or bool(_of(docs, ARGO_GROUP, "Application"))


def one_line(text: str) -> str:
    """Repository content made safe for a commit message line: no line breaks or control characters
    (a value spanning lines could forge a `Gitcanary-*` trailer), and bounded."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)[:300]


def report(root: Path, app_dir: str, images: list[str], docs: list[Doc] | None = None) -> list[str]:
    """Lines for init/validate: which automation selects each image, and whether quarantine is written."""
    lines = []
    for image in images:
        repository = ImageRef.parse(image).repository
        for selector in find(root, app_dir, repository, docs):
            where = selector.where_quarantine_goes()
            origin = f" ({selector.path})" if selector.path else ""
            if where is not None:
                lines.append(
                    f"{repository}: selected by {selector.ref}{origin}, {selector.policy} policy; "
                    f"a rolled-back tag is quarantined in {where}"
                )
            else:
                lines.append(
                    f"{repository}: selected by {selector.ref}{origin}; quarantine cannot be written "
                    f"({selector.why_not()}): gitcanary holds a failed tag the automation brings back"
                )
    return [one_line(line) for line in lines]
