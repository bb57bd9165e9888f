"""Where an image comes from in the user's files, so a bump can be named and a rollback undone.

A rendered container image comes either from a kustomization `images:` entry (newName,
newTag, digest) or from a plain manifest's `image:` field. `locate` finds which, and
`write_back` changes exactly that entry to another image (the rollback's "old tag back").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import fleet, paths, yamlio
from gitcanary.manifests.files import YAML_SUFFIXES, find_kustomization


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        digest = None
        if "@" in image:
            image, digest = image.split("@", 1)
        tag = None
        last = image.rsplit("/", 1)[-1]
        if ":" in last:
            image, tag = image.rsplit(":", 1)
        return cls(image, tag, digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class ImageSource:
    """The place in the user's files that sets one container's image."""

    path: str  # repository-relative file
    field: str  # e.g. images[0].newTag or spec.template.spec.containers[0].image
    kind: str  # "kustomization", "manifest" or "helm-values" (a Fleet bundle's chart values)
    index: int  # entry index (kustomization), document index (manifest) or image-keys pair (helm-values)


def _docs(root: Path, path: str) -> list[Any]:
    return yamlio.load_all(paths.read(root, path))


def _kustomize_entry_output(entry: dict[str, Any], original: ImageRef) -> ImageRef:
    return ImageRef(
        entry.get("newName") or original.repository,
        None if entry.get("digest") else (entry.get("newTag") or original.tag),
        entry.get("digest") or (original.digest if not entry.get("newTag") else None),
    )


def locate(
    root: Path,
    app_dir: str,
    container: str,
    image: str,
    helm_keys: tuple[tuple[str, str], ...] = fleet.DEFAULT_HELM_IMAGE_KEYS,
) -> ImageSource | None:
    """Find what sets `container`'s rendered `image` in the app dir: chart values, kustomization, manifest."""
    from_values = fleet.locate_image(root, app_dir, image, helm_keys)
    if from_values is not None:
        return ImageSource(from_values.path, from_values.field, "helm-values", from_values.pair)
    rendered = ImageRef.parse(image)
    kustomization = find_kustomization(root, fleet.kustomize_dir_of(root, app_dir))
    if kustomization is not None:
        doc = yamlio.load(paths.read(root, kustomization)) or {}
        for index, entry in enumerate(doc.get("images") or []):
            output_repo = entry.get("newName") or entry.get("name")
            if output_repo == rendered.repository or entry.get("name") == rendered.repository:
                what = "digest" if entry.get("digest") else ("newTag" if entry.get("newTag") else "newName")
                return ImageSource(kustomization, f"images[{index}].{what}", "kustomization", index)
    directory = paths.inside(root, app_dir)
    for path in sorted(
        p for p in directory.iterdir() if p.name.endswith(YAML_SUFFIXES) and not p.is_symlink()
    ):
        rel = str(path.relative_to(root))
        try:
            docs = _docs(root, rel)
        except yamlio.YAMLError:
            continue
        for doc_index, doc in enumerate(docs):
            for key, containers in _container_lists(doc):
                for c_index, item in enumerate(containers):
                    if item.get("name") == container and item.get("image") == image:
                        return ImageSource(rel, f"{key}[{c_index}].image", "manifest", doc_index)
    return None


def _container_lists(doc: Any) -> list[tuple[str, list[Any]]]:
    if not isinstance(doc, dict) or doc.get("kind") == "Kustomization":
        return []
    pod = (((doc.get("spec") or {}).get("template") or {}).get("spec")) or {}
    out = []
    for key in ("initContainers", "containers"):
        if isinstance(pod.get(key), list):
            out.append((f"spec.template.spec.{key}", pod[key]))
    return out


def write_back(
    root: Path,
    source: ImageSource,
    container: str,
    current: str,
    wanted: str,
    helm_keys: tuple[tuple[str, str], ...] = fleet.DEFAULT_HELM_IMAGE_KEYS,
) -> bool:
    """Make `source` produce `wanted` instead of `current`; True when the file changed.

    Only the keys that must change are touched (round-trip YAML), so the diff is the old tag.
    """
    if source.kind == "helm-values":
        found = fleet.HelmImage(source.path, source.field, source.index)
        return fleet.write_image(root, found, current, wanted, helm_keys)
    path = paths.no_symlink(root, source.path, field=source.field)
    text = path.read_text()
    want = ImageRef.parse(wanted)
    if source.kind == "kustomization":
        doc = yamlio.load(text)
        entry = doc["images"][source.index]
        if (entry.get("newName") or entry.get("name")) != want.repository:
            entry["newName"] = want.repository
        if want.digest:
            entry["digest"] = want.digest
            entry.pop("newTag", None)
        else:
            entry.pop("digest", None)
            if want.tag:
                entry["newTag"] = want.tag
            else:
                entry.pop("newTag", None)
        new_text = yamlio.dump(doc, like=text)
    else:
        docs = yamlio.load_all(text)
        doc = docs[source.index]
        changed = False
        for _, containers in _container_lists(doc):
            for item in containers:
                if item.get("name") == container and item.get("image") == current:
                    item["image"] = wanted
                    changed = True
        if not changed:
            return False
        new_text = yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
    if new_text == text:
        return False
    paths.write(root, source.path, new_text, field=source.field)
    return True


def image_changes(primary: dict[str, str], target: dict[str, str]) -> list[tuple[str, str, str]]:
    """(container, primary image, target image) for every container whose image differs."""
    return [
        (name, primary.get(name, ""), image) for name, image in target.items() if primary.get(name) != image
    ]
