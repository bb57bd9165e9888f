"""Which image automation selects a canary's image, and how a failed tag is kept out of its reach.

Two automations push image bumps to GitOps repositories:

- Flux: an `ImagePolicy` (image.toolkit.fluxcd.io) picks the newest tag of an `ImageRepository`,
  and an ImageUpdateAutomation writes it wherever a `# {"$imagepolicy": "NS:NAME[:tag|:name]"}`
  marker names that policy.
- Argo CD Image Updater: an `Application` (argoproj.io) lists the images to update in its
  `argocd-image-updater.argoproj.io/image-list` annotation, `[alias=]image[:constraint]`.

`quarantine` writes the most precise exclusion the policy can express, in the repository, so the
automation never selects a failed tag again:

- semver policy: `!= TAG` joined to every `||` alternative of `spec.policy.semver.range`
  (Masterminds/semver, Flux's library, reads `,` as AND and supports `!=`);
- alphabetical/numerical policies and `filterTags` patterns: Go's regexp (RE2) has no lookahead,
  so no pattern can exclude one tag while keeping the user's own; the ImageRepository's
  `spec.exclusionList` (regexes of tags never stored, default `^.*\\.sig$`) gets `^TAG$`;
- Image Updater: `argocd-image-updater.argoproj.io/<alias>.ignore-tags` (a comma-separated list).

Where none applies (the object is not in the repository, the tag is no semver version, the
image has no alias) `quarantine` returns None and the rollout core's quarantine hold keeps the
automation from starting a rollout loop instead. `lift` undoes exactly what `quarantine` wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import yamlio
from gitcanary.manifests.files import YAML_SUFFIXES

FLUX_IMAGE_GROUP = "image.toolkit.fluxcd.io/"
ARGO_GROUP = "argoproj.io/"
IMAGE_LIST = "argocd-image-updater.argoproj.io/image-list"
IGNORE_TAGS = "argocd-image-updater.argoproj.io/{alias}.ignore-tags"
SIG_DEFAULT = r"^.*\.sig$"  # ImageRepository's exclusionList default, kept when the list is first set
EXCLUSION_LIST_MAX = 25  # the CRD's maxItems
MAX_FILE_BYTES = 1_000_000
# Flux's setters marker: `# {"$imagepolicy": "flux-system:backend:tag"}`.
MARKER = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"(?P<ref>[^"]+)"\s*\}')
# Masterminds/semver's loose version (an optional v, up to three numbers, pre-release, metadata).
SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(\.(0|[1-9]\d*))?(\.(0|[1-9]\d*))?"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
# A tag as OCI distribution allows it; anything else is never written into a policy.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

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

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def where_quarantine_goes(self) -> str | None:
        """Where `quarantine` writes an exclusion, or None when it cannot (the reason is `why_not`)."""
        if self.path is None:
            return None
        if self.kind == "Application":
            return IGNORE_TAGS.format(alias=self.alias) if self.alias else None
        if self.policy == "semver":
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


@dataclass(frozen=True)
class Exclusion:
    """What `quarantine` or `lift` changed, for the commit message."""

    path: str
    line: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "line", one_line(self.line))


def one_line(text: str) -> str:
    """Repository content made safe for a commit message line: no line breaks or control characters
    (a value spanning lines could forge a `Gitcanary-*` trailer), and bounded."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)[:300]


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
    # A kustomization images: entry: its name (or newName) sits on the lines of the same item.
    indent = len(found.group("indent")) + len(found.group("dash") or "")
    names: dict[str, str] = {}
    for previous in range(number, max(number - 8, -1), -1):
        other = _KEY_VALUE.match(lines[previous])
        if other is None:
            continue
        column = len(other.group("indent")) + len(other.group("dash") or "")
        if column != indent:
            break
        if other.group("key") in ("name", "newName"):
            names.setdefault(other.group("key"), other.group("value").strip("'\""))
        if other.group("dash"):
            break  # the first line of the item
    return names.get("name", "")


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


# -- writing and lifting exclusions -------------------------------------------------------------


def _edit(root: Path, path: str, index: int, change: Any) -> bool:
    """Apply `change(doc)` to one document of `path`, round-trip; True when the file changed."""
    file = root / path
    text = file.read_text()
    docs = yamlio.load_all(text)
    if not change(docs[index]):
        return False
    new = yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
    if new == text:
        return False
    file.write_text(new)
    return True


def _not_equal(tag: str) -> str:
    return f"!= {tag}"


def semver_range_with(range_: str, tag: str) -> str:
    """`range_` that also refuses `tag`: `, != TAG` on every `||` alternative that lacks it."""
    parts = [part.strip() for part in range_.split("||")]
    out = []
    for part in parts:
        if re.search(rf"!=\s*{re.escape(tag)}(?=\s*(,|$))", part):
            out.append(part)
        else:
            out.append(f"{part}, {_not_equal(tag)}" if part else _not_equal(tag))
    return " || ".join(out)


def semver_range_without(range_: str, tag: str) -> str:
    """Undo `semver_range_with`: drop `, != TAG` wherever it was added."""
    parts = [part.strip() for part in range_.split("||")]
    pattern = re.compile(rf"\s*,?\s*!=\s*{re.escape(tag)}(?=\s*(,|$))")
    return " || ".join(pattern.sub("", part).strip().strip(",").strip() for part in parts)


def exclusion_pattern(tag: str) -> str:
    """An RE2 regex that matches exactly `tag` (tags hold letters, digits, `_`, `.` and `-`)."""
    return "^" + tag.replace(".", r"\.") + "$"


def quarantine(root: Path, selector: Selector, tag: str) -> Exclusion | None:
    """Write an exclusion of `tag` where `selector`'s automation reads it; None when it cannot."""
    if not TAG.match(tag) or selector.where_quarantine_goes() is None or selector.path is None:
        return None
    if selector.kind == "Application":
        return _ignore_tag(root, selector, tag, add=True)
    if selector.policy == "semver":
        if not SEMVER.match(tag):
            return None if selector.repository is None else _exclusion_list(root, selector, tag, add=True)
        return _semver(root, selector, tag, add=True)
    return _exclusion_list(root, selector, tag, add=True)


def lift(root: Path, selector: Selector, tag: str) -> Exclusion | None:
    """Remove what `quarantine` wrote for `tag` (all three forms); None when there was none."""
    if selector.path is None or not TAG.match(tag):
        return None
    if selector.kind == "Application":
        return _ignore_tag(root, selector, tag, add=False)
    lifted = _semver(root, selector, tag, add=False) if selector.policy == "semver" else None
    if selector.repository is not None:
        lifted = _exclusion_list(root, selector, tag, add=False) or lifted
    return lifted


def _semver(root: Path, selector: Selector, tag: str, add: bool) -> Exclusion | None:
    assert selector.path is not None
    result: list[str] = []

    def change(doc: Any) -> bool:
        semver = doc["spec"]["policy"]["semver"]
        old = str(semver.get("range") or "")
        new = semver_range_with(old, tag) if add else semver_range_without(old, tag)
        if new == old:
            return False
        semver["range"] = new
        result.append(new)
        return True

    if not _edit(root, selector.path, selector.index, change):
        return None
    return Exclusion(selector.path, f"{selector.ref} spec.policy.semver.range: {result[0]!r}")


def _exclusion_list(root: Path, selector: Selector, tag: str, add: bool) -> Exclusion | None:
    repo = selector.repository
    assert repo is not None
    pattern = exclusion_pattern(tag)

    def change(doc: Any) -> bool:
        spec = doc["spec"]
        current = spec.get("exclusionList")
        if add:
            if current is None:
                spec["exclusionList"] = [SIG_DEFAULT, pattern]  # setting the list replaces the default
                return True
            if pattern in current or len(current) >= EXCLUSION_LIST_MAX:
                return False
            current.append(pattern)
            return True
        if current is None or pattern not in current:
            return False
        current.remove(pattern)
        return True

    if not _edit(root, repo.path, repo.index, change):
        return None
    verb = "excludes" if add else "no longer excludes"
    return Exclusion(
        repo.path, f"ImageRepository {repo.namespace}/{repo.name} spec.exclusionList {verb} {pattern}"
    )


def _ignore_tag(root: Path, selector: Selector, tag: str, add: bool) -> Exclusion | None:
    assert selector.path is not None
    key = IGNORE_TAGS.format(alias=selector.alias)

    def change(doc: Any) -> bool:
        annotations = doc["metadata"].setdefault("annotations", {})
        tags = [t.strip() for t in str(annotations.get(key) or "").split(",") if t.strip()]
        if add == (tag in tags):
            return False
        tags = [*tags, tag] if add else [t for t in tags if t != tag]
        if tags:
            annotations[key] = ", ".join(tags)
        else:
            del annotations[key]
        return True

    if not _edit(root, selector.path, selector.index, change):
        return None
    verb = "ignores" if add else "no longer ignores"
    return Exclusion(selector.path, f"{selector.ref} annotation {key} {verb} {tag}")


def automated(root: Path, app_dir: str, docs: list[Doc]) -> bool:
    """Could any automation select an image of this app: a marker in it, or any Image Updater Application?"""
    return bool(markers(root, app_dir)) or bool(_of(docs, ARGO_GROUP, "Application"))


def report(root: Path, app_dir: str, images: list[str], docs: list[Doc] | None = None) -> list[str]:
    """Lines for init/validate: which automation selects each image, and whether quarantine is written."""
    from gitcanary.manifests.detect import ImageRef

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
