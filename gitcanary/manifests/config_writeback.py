"""A rollback writes the primary's config back into the user's source, as it writes images back.

The `-primary` copies in the generated directory hold the config as it was last promoted. For each
tracked object whose content differs now, the place that produces it is found and edited:

- a `configMapGenerator` / `secretGenerator` entry of the app's kustomization (kustomize names its
  output `<namePrefix><name><nameSuffix>-<hash>`): each differing key is written back where it is set,
  a `literals` entry, a file of `files`, or a line of an `envs` file; a key that is gone comes back as
  a literal, a key that was added is removed;
- a manifest under the app directory (ConfigMap, Secret, ExternalSecret, SealedSecret): its content
  (`data`, `binaryData`, `stringData`, `type`, `sops`, or `spec`) is set back, key by key, so
  comments on the keys that did not change survive.

Notes name files and keys, never values: a Secret's content never reaches a commit message or a log.
Generators in a base the app's kustomization includes are not edited (the note says so).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.manifests import config_tracking as ct
from gitcanary.manifests import fleet, paths, yamlio
from gitcanary.manifests.files import YAML_SUFFIXES, find_kustomization

Obj = dict[str, Any]

GENERATOR_SECTIONS = {ct.CONFIGMAP: "configMapGenerator", ct.SECRET: "secretGenerator"}


@dataclass(frozen=True)
class Generator:
    path: str  # the kustomization, repository-relative
    section: str  # configMapGenerator or secretGenerator
    index: int
    name: str  # the generator's own name, without prefix, suffix or hash


def _kustomization(root: Path, app_dir: str) -> tuple[str, Any] | None:
    path = find_kustomization(root, fleet.kustomize_dir_of(root, app_dir))
    if path is None:
        return None
    try:
        doc = yamlio.load(paths.read(root, path, field="(kustomization)"))
    except yamlio.YAMLError:
        return None
    return (path, doc) if isinstance(doc, dict) else None


def generator_of(root: Path, app_dir: str, kind: str, built_name: str) -> Generator | None:
    """The app kustomization's generator whose output is named `built_name`, if any."""
    found = _kustomization(root, app_dir)
    section = GENERATOR_SECTIONS.get(kind)
    if found is None or section is None:
        return None
    path, doc = found
    prefix, suffix = str(doc.get("namePrefix") or ""), str(doc.get("nameSuffix") or "")
    for index, entry in enumerate(doc.get(section) or []):
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        full = f"{prefix}{entry['name']}{suffix}"
        if built_name == full or re.fullmatch(re.escape(full) + r"-[a-z0-9]{10}", built_name):
            return Generator(path, section, index, str(entry["name"]))
    return None


def _base(root: Path, app_dir: str, obj: Obj) -> str:
    """A name that stays the same across releases: the generator's name, else the object's."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    generator = generator_of(root, app_dir, str(obj.get("kind")), name)
    return f"{obj.get('kind')}/{generator.name if generator else name}"


def _primary_originals(root: Path, app_dir: str, copies: list[Obj]) -> dict[str, Obj]:
    """The objects the `-primary` copies were made from, by a name stable across releases."""
    previous: dict[str, Obj] = {}
    for copied in copies:
        if ct.is_copy(copied):
            original = ct.original_of(copied, _referenced(copied))
            previous[_base(root, app_dir, original)] = original
    return previous


def changes(root: Path, app_dir: str, copies: list[Obj], tracking: ct.Tracking) -> list[str]:
    """One line per tracked object whose content differs from its `-primary` copy: keys, not values.

    Copies and objects are paired by a name stable across releases (a generator's own name), so a
    generator's new hashed name reads as a change of its keys, not as a new object.
    """
    previous = _primary_originals(root, app_dir, copies)
    lines = []
    for tracked in tracking.tracked:
        old = previous.get(_base(root, app_dir, tracked.source))
        if old is None:
            lines.append(f"config {tracked.producer}: new (referenced as {tracked.kind} {tracked.name})")
        elif ct.checksum(ct.content(old)) != tracked.checksum:
            keys = ct.changed_keys(old, tracked.source)
            lines.append(f"config {tracked.producer}: keys changed: {', '.join(keys)}")
    return lines


@dataclass(frozen=True)
class ConfigDiff:
    """What one tracked object changes against the primary's copy, for a reviewer.

    `values` (key, old, new) are set for ConfigMaps only, and None for a value that is not text: a
    Secret's values (whatever produces it) never leave this module, only its key names do.
    """

    kind: str  # what the pod references: ConfigMap or Secret
    producer: str  # `ConfigMap backend-config`, `ExternalSecret db` (a generator's own name, unhashed)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    values: tuple[tuple[str, str | None, str | None], ...] = ()
    new: bool = False  # the primary has no copy of it yet

    @property
    def secret(self) -> bool:
        return self.kind != ct.CONFIGMAP or not self.producer.startswith(ct.CONFIGMAP + " ")


def diffs(root: Path, app_dir: str, copies: list[Obj], tracking: ct.Tracking) -> list[ConfigDiff]:
    """Per tracked object whose content differs from its `-primary` copy: keys added, removed and
    changed, and for a ConfigMap the old and new text of each (paired as `changes` pairs them)."""
    previous = _primary_originals(root, app_dir, copies)
    out = []
    for tracked in tracking.tracked:
        base = _base(root, app_dir, tracked.source)
        old = previous.get(base)
        if old is not None and ct.checksum(ct.content(old)) == tracked.checksum:
            continue
        before, after = ct._flat(old) if old is not None else {}, ct._flat(tracked.source)
        shared = before.keys() & after.keys()
        diff = ConfigDiff(
            tracked.kind,
            base.replace("/", " ", 1),
            tuple(sorted(after.keys() - before.keys())),
            tuple(sorted(before.keys() - after.keys())),
            tuple(sorted(k for k in shared if before[k] != after[k])),
            new=old is None,
        )
        if not diff.secret:
            old_text = _values(old) if old is not None else {}
            new_text = _values(tracked.source)
            keys = (*diff.removed, *diff.changed, *diff.added)
            diff = ConfigDiff(
                *(diff.kind, diff.producer, diff.added, diff.removed, diff.changed),
                values=tuple(
                    (
                        key,
                        None if old_text is None else old_text.get(key, ""),
                        None if new_text is None else new_text.get(key, ""),
                    )
                    for key in keys
                ),
                new=diff.new,
            )
        out.append(diff)
    return out


def write_back(
    root: Path, app_dir: str, copies: list[Obj], tracking: ct.Tracking
) -> tuple[list[str], list[str]]:
    """Make the app build each copy's content again; (changed files, notes naming file and keys)."""
    changed: list[str] = []
    notes: list[str] = []
    current = {_base(root, app_dir, t.source): t for t in tracking.tracked}
    for copied in copies:
        if not ct.is_copy(copied):
            continue
        referenced = _referenced(copied)
        old = ct.original_of(copied, referenced)
        now = current.get(_base(root, app_dir, old))
        if now is None or ct.checksum(ct.content(old)) == now.checksum:
            continue
        keys = ct.changed_keys(now.source, old)
        what = f"{now.producer} (keys: {', '.join(keys)})"
        generator = generator_of(root, app_dir, str(now.source.get("kind")), ct._meta(now.source)["name"])
        if generator is not None:
            files = _write_generator(root, generator, old, now.source)
        else:
            files = _write_manifest(root, app_dir, now.source, old)
        if files:
            changed += [f for f in files if f not in changed]
            notes.append(f"config {what} written back in {', '.join(files)}")
        else:
            notes.append(f"config {what} not found in {app_dir or '.'}; left as is")
    return changed, notes


def _referenced(copied: Obj) -> str:
    """The Secret or ConfigMap name the target references for this copy."""
    name = str((copied.get("metadata") or {}).get("name", ""))[: -len(ct.PRIMARY_SUFFIX)]
    if copied.get("kind") == "ExternalSecret":
        target = str(ct.external_target(copied) or "")
        return target[: -len(ct.PRIMARY_SUFFIX)] if target.endswith(ct.PRIMARY_SUFFIX) else name
    if copied.get("kind") == "SealedSecret":
        target = str(ct.sealed_target(copied) or "")
        return target[: -len(ct.PRIMARY_SUFFIX)] if target.endswith(ct.PRIMARY_SUFFIX) else name
    return name


def _values(obj: Obj) -> dict[str, str] | None:
    """Key -> plain text of a ConfigMap or Secret; None when a value is binary (not text)."""
    out: dict[str, str] = {str(k): str(v) for k, v in (obj.get("stringData") or {}).items()}
    if obj.get("kind") == ct.SECRET:
        for key, value in (obj.get("data") or {}).items():
            try:
                out[str(key)] = base64.b64decode(str(value)).decode()
            except (ValueError, UnicodeDecodeError):
                return None
    else:
        out.update({str(k): str(v) for k, v in (obj.get("data") or {}).items()})
        if obj.get("binaryData"):
            return None
    return out


def _inside(root: Path, base: Path, relative: str) -> Path | None:
    """`relative` under `base`, only if it resolves inside the clone and outside .git."""
    candidate = (base / relative).resolve()
    try:
        rel = candidate.relative_to(root.resolve())
    except ValueError:
        return None
    return None if ".git" in rel.parts else candidate


def _write_generator(root: Path, generator: Generator, old_obj: Obj, new_obj: Obj) -> list[str]:
    old, new = _values(old_obj), _values(new_obj)
    if old is None or new is None:
        return []
    text = paths.read(root, generator.path, field=generator.section)
    doc = yamlio.load(text)
    entry = doc[generator.section][generator.index]
    base = (root / generator.path).parent
    changed: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) == new.get(key):
            continue
        wanted = old.get(key)
        if _set_literal(entry, key, wanted):
            continue
        written = _set_file(root, base, entry, key, wanted) or _set_env_line(root, base, entry, key, wanted)
        if written:
            changed += [written] if written not in changed else []
        elif wanted is not None:
            entry.setdefault("literals", []).append(f"{key}={wanted}")
    new_text = yamlio.dump(doc, like=text)
    if new_text != text:
        paths.write(root, generator.path, new_text, field=generator.section)
        changed.insert(0, generator.path)
    return changed


def _set_literal(entry: Any, key: str, wanted: str | None) -> bool:
    literals = entry.get("literals") or []
    for index, literal in enumerate(literals):
        if str(literal).split("=", 1)[0] == key:
            if wanted is None:
                del literals[index]
            else:
                literals[index] = f"{key}={wanted}"
            return True
    return False


def _set_file(root: Path, base: Path, entry: Any, key: str, wanted: str | None) -> str | None:
    files = entry.get("files") or []
    for index, item in enumerate(files):
        name, _, path = str(item).partition("=")
        if not path:
            name, path = Path(name).name, name
        if name != key:
            continue
        target = _inside(root, base, path)
        if target is None:
            return None
        if wanted is None:
            del files[index]
            return None
        rel = str(target.relative_to(root.resolve()))
        paths.write(root, rel, wanted, field="files")  # never through a symlink, even one inside
        return rel
    return None


def _set_env_line(root: Path, base: Path, entry: Any, key: str, wanted: str | None) -> str | None:
    envs = list(entry.get("envs") or []) + ([entry["env"]] if entry.get("env") else [])
    for env in envs:
        target = _inside(root, base, str(env))
        if target is None or not target.is_file():
            continue
        lines = target.read_text().splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.lstrip().startswith("#") or line.split("=", 1)[0].strip() != key:
                continue
            if wanted is None:
                del lines[index]
            else:
                ending = "\n" if line.endswith("\n") else ""
                lines[index] = f"{key}={wanted}{ending}"
            rel = str(target.relative_to(root.resolve()))
            paths.write(root, rel, "".join(lines), field="envs")
            return rel
    return None


def _write_manifest(root: Path, app_dir: str, now: Obj, old: Obj) -> list[str]:
    """Set the content fields of the manifest that defines `now` to those of `old`."""
    kind, name = now.get("kind"), (now.get("metadata") or {}).get("name")
    directory = root / app_dir if app_dir else root
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or not path.name.endswith(YAML_SUFFIXES) or ".git" in path.parts:
            continue
        if _inside(root, directory, str(path.relative_to(directory))) is None:
            continue
        text = path.read_text()
        try:
            docs = yamlio.load_all(text)
        except yamlio.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                continue
            if (doc.get("metadata") or {}).get("name") != name:
                continue
            _set_content(doc, old)
            new_text = yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
            if new_text == text:
                return []
            rel = str(path.relative_to(root))
            paths.write(root, rel, new_text, field="(config manifest)")
            return [rel]
    return []


def _set_content(doc: Any, old: Obj) -> None:
    """The user's document gets `old`'s content fields, key by key; its metadata stays its own."""
    wanted, present = ct.content(old), ct.content(dict(doc))
    for field in present.keys() | wanted.keys():
        if field not in wanted:
            doc.pop(field, None)
        elif isinstance(doc.get(field), dict) and isinstance(wanted[field], dict):
            _merge_keys(doc[field], wanted[field])
        else:
            doc[field] = wanted[field]


def _merge_keys(current: Any, wanted: dict[str, Any]) -> None:
    for key in [k for k in current if k not in wanted]:
        del current[key]
    for key, value in wanted.items():
        if isinstance(current.get(key), dict) and isinstance(value, dict):
            _merge_keys(current[key], value)
        elif current.get(key) != value:
            current[key] = value
