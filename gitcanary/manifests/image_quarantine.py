"""Writing (and lifting) a failed tag's exclusion where an image automation reads it.

`quarantine` writes the most precise exclusion the policy can express, in the repository, so the
automation never selects a failed tag again:

- Flux semver policy: `!= TAG` joined to every `||` alternative of `spec.policy.semver.range`
  (Masterminds/semver, Flux's library, reads `,` as AND and supports `!=`);
- Flux alphabetical/numerical policies and `filterTags` patterns: Go's regexp (RE2) has no lookahead,
  so no pattern can exclude one tag while keeping the user's own; the ImageRepository's
  `spec.exclusionList` (regexes of tags never stored, default `^.*\\.sig$`) gets `^TAG$`;
- Argo CD Image Updater: `argocd-image-updater.argoproj.io/<alias>.ignore-tags` (a comma-separated list).

Where none applies (the object is not in the repository, the tag is no semver version and there is
no ImageRepository, the image has no alias) `quarantine` returns None and the rollout core's
quarantine hold keeps the automation from starting a rollout loop instead. `lift` undoes exactly
what `quarantine` wrote. Edits are round-trip YAML: the diff is the line that changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import paths, yamlio
from gitcanary.manifests.image_policies import IGNORE_TAGS, Selector, one_line

SIG_DEFAULT = r"^.*\.sig$"  # ImageRepository's exclusionList default, kept when the list is first set
EXCLUSION_LIST_MAX = 25  # the CRD's maxItems
# Masterminds/semver's loose version (an optional v, up to three numbers, pre-release, metadata).
SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(\.(0|[1-9]\d*))?(\.(0|[1-9]\d*))?"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
# A tag as OCI distribution allows it; anything else is never written into a policy. Matched with
# `fullmatch`: `$` alone also matches before a trailing newline ("1.2.0\n" would pass).
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Exclusion:
    """What `quarantine` or `lift` changed, for the commit message."""

    path: str
    line: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "line", one_line(self.line))


def _edit(root: Path, path: str, index: int, change: Any) -> bool:
    """Apply `change(doc)` to one document of `path`, round-trip; True when the file changed."""
    # The policy file is repository content: read and written only inside the clone, never
    # through a symlink (documents() skipped symlinked files; a directory may still be one).
    text = paths.read(root, path, field="(image policy)")
    docs = yamlio.load_all(text)
    if not change(docs[index]):
        return False
    new = yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
    if new == text:
        return False
    paths.write(root, path, new, field="(image policy)")
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
    if not TAG.fullmatch(tag) or selector.where_quarantine_goes() is None or selector.path is None:
        return None
    if selector.kind == "Application":
        return _ignore_tag(root, selector, tag, add=True)
    if selector.policy == "semver" and not selector.extracts and SEMVER.fullmatch(tag):
        return _semver(root, selector, tag, add=True)
    # The range sees a filterTags extract, not the tag; a tag that is no version cannot be `!=`'d.
    return None if selector.repository is None else _exclusion_list(root, selector, tag, add=True)


def lift(root: Path, selector: Selector, tag: str) -> Exclusion | None:
    """Remove what `quarantine` wrote for `tag` (all three forms); None when there was none."""
    if selector.path is None or not TAG.fullmatch(tag):
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
