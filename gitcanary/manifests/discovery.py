"""Find Canary, MetricTemplate and AlertProvider manifests in a checkout, and the files canaries depend on.

A full scan runs once per process; after that only changed files are re-read (see `detect`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from gitcanary.errors import SpecError
from gitcanary.manifests import fleet, paths, yamlio
from gitcanary.manifests.files import (
    GENERATED_SUFFIX,
    find_kustomization,
    yaml_files,
)
from gitcanary.spec.load import (
    LoadedCanary,
    is_flagger,
    load_alert_provider,
    load_canary,
    load_metric_template,
)
from gitcanary.spec.models import AlertProvider, MetricTemplate

GENERATED_DIR_ANNOTATION = "gitcanary.io/generated-dir"
STATUS_FILE = "gitcanary-status.yaml"


@dataclass
class Catalog:
    """What the repository declares: canaries (or why one could not be read) and metric templates."""

    canaries: dict[str, LoadedCanary] = field(default_factory=dict)  # key: "ns/name"
    errors: dict[str, SpecError] = field(default_factory=dict)  # key: source file
    templates: dict[str, MetricTemplate] = field(default_factory=dict)  # key: "ns/name"
    template_sources: dict[str, str] = field(default_factory=dict)  # key -> source file
    files: dict[str, list[str]] = field(default_factory=dict)  # source file -> keys declared in it
    providers: dict[str, AlertProvider] = field(default_factory=dict)  # key: "ns/name"
    provider_sources: dict[str, str] = field(default_factory=dict)  # key -> source file

    def forget_file(self, source: str) -> None:
        for key in self.files.pop(source, []):
            self.canaries.pop(key, None)
            if self.template_sources.get(key) == source:
                self.templates.pop(key, None)
                self.template_sources.pop(key, None)
            if self.provider_sources.get(key) == source:
                self.providers.pop(key, None)
                self.provider_sources.pop(key, None)
        self.errors.pop(source, None)


def scan_file(catalog: Catalog, root: Path, source: str) -> None:
    """(Re-)read one file into the catalog; a broken file records an error and changes nothing else."""
    catalog.forget_file(source)
    try:
        path = paths.inside(root, source, source=source, field="(file)")
        if not path.is_file():
            return
        text = path.read_text(errors="replace")
    except paths.UnsafePath as exc:
        catalog.errors[source] = exc
        catalog.files[source] = []
        return
    if "flagger.app" not in text:  # cheap filter: most files of a config repo are not Flagger's
        return
    try:
        docs = yamlio.safe_load_all(text, source)
        parsed = list(docs)
    except yamlio.YAMLLimitError as exc:
        catalog.errors[source] = SpecError(source, "(document)", str(exc))
        return
    except yamlio.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(document)"
        catalog.errors[source] = SpecError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return
    except (RecursionError, ValueError) as exc:  # what a hostile file may still provoke: its error, no crash
        catalog.errors[source] = SpecError(source, "(document)", f"cannot be read: {type(exc).__name__}")
        return
    keys: list[str] = []
    for index, doc in enumerate(parsed):
        label = source if len(parsed) == 1 else f"{source}#{index}"
        try:
            if is_flagger(doc, "Canary"):
                _default_namespace(root, source, doc)
                loaded = load_canary(doc, label)
                _check_generated_dir(loaded)
                loaded = _with_fleet_warnings(root, source, loaded)
                key = loaded.canary.key
                if key in catalog.canaries and catalog.canaries[key].source != label:
                    raise SpecError(
                        label,
                        "metadata.name",
                        f"canary {key} is also defined in {catalog.canaries[key].source}",
                    )
                catalog.canaries[key] = loaded
                keys.append(key)
            elif is_flagger(doc, "MetricTemplate"):
                template = load_metric_template(doc, label)
                catalog.templates[template.key] = template
                catalog.template_sources[template.key] = source
                keys.append(template.key)
            elif is_flagger(doc, "AlertProvider"):
                _default_namespace(root, source, doc)
                provider = load_alert_provider(doc, label)
                catalog.providers[provider.key] = provider
                catalog.provider_sources[provider.key] = source
                keys.append(provider.key)
        except SpecError as exc:
            catalog.errors[source] = exc
        except Exception as exc:  # noqa: BLE001 - one unreadable document is that file's error, never the tick's
            catalog.errors[source] = SpecError(
                label, "(document)", f"cannot be read: {type(exc).__name__}: {exc}"
            )
    catalog.files[source] = keys


def _default_namespace(root: Path, source: str, doc: dict[str, Any]) -> None:
    """A Canary without a namespace gets its kustomization's `namespace:`, as kustomize would give it."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or meta.get("namespace"):
        return
    parent = str(PurePosixPath(source).parent)
    kustomization = find_kustomization(root, "" if parent == "." else parent)
    if kustomization is None:
        _fleet_namespace(root, "" if parent == "." else parent, meta)
        return
    try:
        kdoc = next(iter(yamlio.safe_load_all(paths.read(root, kustomization))), None)
    except yamlio.YAMLError:
        return
    if isinstance(kdoc, dict) and isinstance(kdoc.get("namespace"), str):
        meta["namespace"] = kdoc["namespace"]
    else:
        _fleet_namespace(root, "" if parent == "." else parent, meta)


def _with_fleet_warnings(root: Path, source: str, loaded: LoadedCanary) -> LoadedCanary:
    """Fleet settings gitcanary does not act on are warned about with the canary's own warnings."""
    parent = str(PurePosixPath(source).parent)
    found = fleet.warnings(root, "" if parent == "." else parent)
    return replace(loaded, warnings=loaded.warnings + found) if found else loaded


def _fleet_namespace(root: Path, directory: str, meta: dict[str, Any]) -> None:
    """In a Fleet bundle, a Canary without a namespace lands in the fleet.yaml's namespace."""
    try:
        bundle = fleet.bundle_for(root, directory)
    except SpecError:
        return  # reported when the bundle is built
    if bundle is not None:
        meta["namespace"] = bundle.namespace or bundle.default_namespace


def scan(root: Path) -> Catalog:
    catalog = Catalog()
    for source in yaml_files(root):
        scan_file(catalog, root, source)
    return catalog


def app_dir(loaded: LoadedCanary) -> str:
    source = loaded.source.split("#", 1)[0]
    parent = str(PurePosixPath(source).parent)
    return "" if parent == "." else parent


_DIR_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _check_generated_dir(loaded: LoadedCanary) -> None:
    """The generated dir is where gitcanary writes: a plain relative directory of the clone."""
    field = f"metadata.annotations[{GENERATED_DIR_ANNOTATION}]"
    override = loaded.canary.metadata.annotations.get(GENERATED_DIR_ANNOTATION)
    if override is None:
        return
    clean = paths.normalize(override.strip("/"), source=loaded.source, field=field)
    parts = clean.split("/") if clean else []
    if not parts or len(clean) > 253 or not all(_DIR_PART.fullmatch(part) for part in parts):
        raise paths.UnsafePath(
            loaded.source,
            field,
            f"{override[:80]!r} is not a directory gitcanary writes to: give a relative path of plain names "
            "(letters, digits, '.', '_', '-'), at most 253 characters, inside the repository",
        )
    if clean != override.strip("/"):
        raise paths.UnsafePath(loaded.source, field, f"{override[:80]!r}: write it as {clean!r}")


def generated_dir(loaded: LoadedCanary) -> str:
    """Sibling of the app dir, so the app's `images:` transformer never reaches the primary."""
    override = loaded.canary.metadata.annotations.get(GENERATED_DIR_ANNOTATION)
    if override:
        return override.strip("/")
    app = app_dir(loaded)
    parent = str(PurePosixPath(app).parent) if app else ""
    name = f"{loaded.canary.name}{GENERATED_SUFFIX}"
    return name if parent in ("", ".") else f"{parent}/{name}"


def flux_kustomization_paths(root: Path) -> list[tuple[str, str, str]]:
    """(file, name, path) of every Flux Kustomization declared in the repository."""
    found = []
    for source in yaml_files(root):
        try:
            text = paths.read(root, source, errors="replace")
        except paths.UnsafePath:
            continue  # reported by scan_file for the file itself
        if "kustomize.toolkit.fluxcd.io" not in text:
            continue
        try:
            docs = list(yamlio.safe_load_all(text))
        except yamlio.YAMLError:
            continue
        for doc in docs:
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "Kustomization"
                and str(doc.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/")
            ):
                path = os.path.normpath(str((doc.get("spec") or {}).get("path") or "."))
                found.append(
                    (source, str((doc.get("metadata") or {}).get("name", "?")), "" if path == "." else path)
                )
    return found
