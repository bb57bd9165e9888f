"""Write a decision into the repository's files: the generated dir, the target's replicas, the hook-up.

Every edit is a round-trip merge into what the file already holds, so a step commit changes only
the lines that differ (a weight, a phase) and comments people added survive.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.errors import RenderError, SpecError
from gitcanary.manifests import (
    apex,
    appliers,
    config_tracking,
    config_writeback,
    detect,
    fleet,
    image_policies,
    image_quarantine,
    paths,
    render,
    yamlio,
)
from gitcanary.manifests.discovery import (
    GENERATED_DIR_ANNOTATION,
    STATUS_FILE,
    app_dir,
    flux_kustomization_paths,
    generated_dir,
)
from gitcanary.manifests.files import find_kustomization
from gitcanary.routers import Router
from gitcanary.routers.affinity import session_cookies
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.status import CanaryStatus, Phase

Obj = dict[str, Any]


@dataclass(frozen=True)
class Layout:
    """Where one canary's files live, repository-relative."""

    app_dir: str
    generated_dir: str
    target: str
    source: str = ""  # the Canary's file, for errors in its annotations
    helm_keys_annotation: str | None = None  # gitcanary.io/helm-image-keys (Fleet helm-values bundles)
    helm_replicas_key: str = fleet.DEFAULT_HELM_REPLICAS_KEY

    @classmethod
    def of(cls, loaded: LoadedCanary) -> Layout:
        annotations = loaded.canary.metadata.annotations
        return cls(
            app_dir(loaded),
            generated_dir(loaded),
            loaded.canary.spec.target_ref.name,
            loaded.source,
            annotations.get(fleet.HELM_IMAGE_KEYS_ANNOTATION),
            annotations.get(fleet.HELM_REPLICAS_KEY_ANNOTATION) or fleet.DEFAULT_HELM_REPLICAS_KEY,
        )

    @property
    def helm_image_keys(self) -> tuple[tuple[str, str], ...]:
        return fleet.parse_image_keys(self.helm_keys_annotation, self.source)

    @property
    def fleet_yaml(self) -> str:
        return self._in("fleet.yaml")

    def _in(self, name: str) -> str:
        return f"{self.generated_dir}/{name}" if self.generated_dir else name

    @property
    def kustomization(self) -> str:
        return self._in("kustomization.yaml")

    @property
    def primary(self) -> str:
        return self._in(f"{self.target}-primary.yaml")

    @property
    def services(self) -> str:
        return self._in("services.yaml")

    @property
    def routing(self) -> str:
        return self._in("routing.yaml")

    @property
    def status(self) -> str:
        return self._in(STATUS_FILE)


@dataclass(frozen=True)
class Rendered:
    """The user's target as the app dir builds it now."""

    target: Obj
    autoscaler: Obj | None
    spec_hash: str
    revision: str
    apex_service: Obj | None = None  # a Service the app itself defines under the apex name
    ingress: Obj | None = None  # the Ingress `spec.ingressRef` names (ingress providers)
    configs: config_tracking.Tracking = config_tracking.Tracking()  # its ConfigMaps and Secrets

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.configs.shared


def merge(existing: Any, desired: Any) -> Any:
    """`desired`, reusing `existing` round-trip nodes where equal so comments and order survive."""
    if isinstance(existing, dict) and isinstance(desired, dict):
        for key in [k for k in existing if k not in desired]:
            del existing[key]
        for key, value in desired.items():
            existing[key] = merge(existing[key], value) if key in existing else value
        return existing
    if isinstance(existing, list) and isinstance(desired, list) and len(existing) == len(desired):
        for index, value in enumerate(desired):
            existing[index] = merge(existing[index], value)
        return existing
    return existing if existing == desired else desired


# What this process last wrote to each generated file: (digest of the text, digest of the data it was
# dumped from). Digests, not texts, so memory stays small with thousands of apps.
_WRITTEN: dict[str, tuple[str, str]] = {}


# The app kustomizations whose `replicas:` this process last set: path -> (digest of the text,
# target, count). A step that keeps the count finds the same text and reads nothing.
_SCALED: dict[str, tuple[str, str, int]] = {}


# The generated primary's replicas as last parsed: path -> (digest of its text, replicas).
_PRIMARY_REPLICAS: dict[str, tuple[str, int]] = {}


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def write_documents(root: Path, path: str, docs: list[Obj]) -> bool:
    """Write `docs` to `path`, merged into its current content; True if the file changed.

    When the file still holds exactly what this process last dumped, with no comment in it, the
    round trip is skipped: the same data means no write at all, other data a plain dump (what the
    merge would give). Anything else (a person's edit, a comment, a restart) is merged as read.
    """
    # Generated files are gitcanary's own: a symlink among them is an attack, never followed.
    file = paths.no_symlink(root, path, field="(generated file)")
    old_text = file.read_text() if file.exists() else None
    data = _digest(json.dumps(docs, default=str))
    known = _WRITTEN.get(str(file))
    if old_text is not None and known is not None and known[0] == _digest(old_text):
        if known[1] == data:
            return False
        new_text = _dump_numbers_apart(str(file), docs, old_text)
    else:
        new_text = _merged(path, docs, old_text)
    if "#" not in new_text:  # no comment a plain dump would lose
        _WRITTEN[str(file)] = (_digest(new_text), data)
    else:
        _WRITTEN.pop(str(file), None)
    if new_text == old_text:
        return False
    paths.write(root, path, new_text, field="(generated file)")
    return True


def holds_last_write(root: Path, path: str) -> bool:
    """Does `path` hold exactly the text this process last wrote to it (no one changed it since)?

    False for anything else, a symlink or an unreadable file included: the caller reads it again."""
    try:
        file = paths.no_symlink(root, path, field="(generated file)")
        known = _WRITTEN.get(str(file))
        return known is not None and file.is_file() and known[0] == _digest(file.read_text())
    except (paths.UnsafePath, OSError, UnicodeDecodeError):
        return False


def _merged(path: str, docs: list[Obj], old_text: str | None) -> str:
    if old_text is not None:
        try:
            current = yamlio.load_all(old_text, path)
        except yamlio.YAMLLimitError:
            raise
        except yamlio.YAMLError:
            current = []
        if len(current) == len(docs):
            docs = [merge(old, new) for old, new in zip(current, docs, strict=True)]
    return _dump(docs, old_text)


# Per generated file, its last dump with every integer value as a token: (key, text). A step that
# changes only numbers (a weight) fills the tokens in instead of dumping again. About one file's
# size per canary's routing file.
_NUMBERS_APART: dict[str, tuple[str, str]] = {}
_TOKEN = "gitcanary0int0{}0z"


def _dump_numbers_apart(path: str, docs: list[Obj], like: str) -> str:
    """`_dump(docs, like)`, byte for byte, from the file's last dump with its integers as tokens.

    An integer value and a token (letters and digits) are both written as one plain scalar on the
    line where the value goes, so putting each number's text where its token stood gives the dump
    of the numbers. The key is everything else: the documents with the integers out, and the
    indentation `like` sets.
    """
    numbers: list[int] = []

    def apart(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: apart(item) for key, item in value.items()}
        if isinstance(value, list):
            return [apart(item) for item in value]
        if type(value) is int:
            numbers.append(value)
            return _TOKEN.format(len(numbers) - 1)
        return value

    shaped = [apart(doc) for doc in docs]
    key = _digest(json.dumps([shaped, yamlio.indentation(like)], default=str))
    known = _NUMBERS_APART.get(path)
    if known is None or known[0] != key:
        template = _dump(shaped, like)
        if any(template.count(_TOKEN.format(i)) != 1 for i in range(len(numbers))) or (
            _TOKEN.format(len(numbers)) in template
        ):
            _NUMBERS_APART.pop(path, None)
            return _dump(docs, like)  # a token also stood elsewhere (in a string): no shortcut
        known = _NUMBERS_APART[path] = (key, template)
    text = known[1]
    for index, number in enumerate(numbers):
        text = text.replace(_TOKEN.format(index), str(number), 1)
    return text


def _dump(docs: list[Obj], like: str | None) -> str:
    # Generated files are gitcanary's own dumps: there is no author's layout to lay an edit onto.
    if len(docs) == 1:
        return yamlio.dump(docs[0], like=like, keep_layout=False)
    return yamlio.dump_all(docs, like=like, keep_layout=False)


def read_status(root: Path, layout: Layout) -> CanaryStatus | None:
    file = paths.no_symlink(root, layout.status, field="(status file)")
    if not file.exists():
        return None
    try:
        doc = yamlio.load(file.read_text(), layout.status)
        return CanaryStatus.from_document(doc)
    except Exception as exc:  # a hand-edited status must halt this canary with a clear message
        raise SpecError(layout.status, "status", f"unreadable gitcanary status: {exc}") from exc


def read_objects(root: Path, path: str) -> list[Obj]:
    return _objects(_generated_text(root, path), path)


def _generated_text(root: Path, path: str) -> str:
    """A generated file's text ("" when it does not exist), never read through a symlink."""
    file = paths.no_symlink(root, path, field="(generated file)")
    return file.read_text() if file.exists() else ""


def _objects(text: str, path: str) -> list[Obj]:
    return [doc for doc in yamlio.safe_load_all(text, path) if isinstance(doc, dict)]


def read_primary(root: Path, layout: Layout) -> Obj | None:
    """The generated primary Deployment as Git holds it, None before initialization."""
    return _primary_in(read_objects(root, layout.primary), layout)


def _primary_in(docs: list[Obj], layout: Layout) -> Obj | None:
    return render.find_object(docs, "Deployment", f"{layout.target}-primary")


def changed_images(
    root: Path, layout: Layout, rendered: Rendered
) -> list[tuple[str, str, str, detect.ImageSource | None]]:
    """(container, primary image, target image, where the target's is set) for each image that differs."""
    primary = read_primary(root, layout)
    if primary is None:
        return []
    return [
        (container, old, new, detect.locate(root, layout.app_dir, container, new, layout.helm_image_keys))
        for container, old, new in detect.image_changes(
            render.container_images(primary), render.container_images(rendered.target)
        )
    ]


def read_config_copies(root: Path, layout: Layout) -> list[Obj]:
    """The `-primary` copies of the config the primary was promoted with."""
    return [obj for obj in read_objects(root, layout.primary) if config_tracking.is_copy(obj)]


def changed_configs(root: Path, layout: Layout, rendered: Rendered) -> list[str]:
    """One line per tracked object whose content differs from the primary's copy; keys, not values."""
    if read_primary(root, layout) is None:
        return []
    return config_writeback.changes(root, layout.app_dir, read_config_copies(root, layout), rendered.configs)


def primary_replicas(root: Path, layout: Layout, rendered: Rendered) -> int:
    """How many pods the canary runs during analysis: the primary's count, the HPA's minimum, or 1."""
    if rendered.autoscaler is not None:
        return int(rendered.autoscaler.get("spec", {}).get("minReplicas") or 1)
    text = _generated_text(root, layout.primary)
    # Asked at every step of every canary: the parse is kept by the file's content (one int each).
    where = str(root / layout.primary)
    key, known = _digest(text), _PRIMARY_REPLICAS.get(where)
    if known is not None and known[0] == key:
        return known[1]
    primary = _primary_in(_objects(text, layout.primary), layout)
    replicas = 1
    if primary and primary.get("spec", {}).get("replicas") is not None:
        replicas = int(primary["spec"]["replicas"])
    _PRIMARY_REPLICAS[where] = (key, replicas)
    return replicas


class FileWriter:
    """Turns one canary's decision into file changes under `root`; returns the paths it changed."""

    def __init__(self, root: Path, loaded: LoadedCanary, router: Router) -> None:
        self.root = root
        self.loaded = loaded
        self.canary = loaded.canary
        self.layout = Layout.of(loaded)
        self.router = router
        self.changed: list[str] = []
        self.hook_note = ""
        self.target_images: list[str] = []

    def _write(self, path: str, docs: list[Obj]) -> None:
        if write_documents(self.root, path, docs):
            self.changed.append(path)

    def apply(self, status: CanaryStatus, rendered: Rendered, copy_to_primary: bool) -> list[str]:
        """Write the generated objects for `status`; call `revert_target` first on a rollback."""
        routed = status.phase is not Phase.INITIALIZING
        where = self.loaded.source
        self.target_images = list(render.container_images(rendered.target).values())
        if status.phase is Phase.INITIALIZING:
            # First, so a refusal leaves nothing written. Hooking up is init's job only: a person
            # may reorganize the parents later.
            self.hook_note = self.hook_up()
            if rendered.apex_service is not None:
                self.take_over_apex(dry_run=True)
        if copy_to_primary:
            user_replicas = rendered.target.get("spec", {}).get("replicas")
            existing = read_primary(self.root, self.layout)
            if existing is not None and existing.get("spec", {}).get("replicas") is not None:
                user_replicas = existing["spec"]["replicas"]
            replicas = None if rendered.autoscaler is not None else int(user_replicas or 1)
            tracked = rendered.configs
            docs = [
                render.primary_deployment(rendered.target, self.canary, replicas, where, tracked.renames())
            ]
            if rendered.autoscaler is not None:
                docs.append(render.primary_autoscaler(rendered.autoscaler, self.canary))
            # The config the primary was promoted with: changed by promotion only, like its pod template.
            docs += [config_tracking.primary_copy(t, self.canary.namespace) for t in tracked.tracked]
            self._write(self.layout.primary, docs)
        self._write(self.layout.services, render.services(self.canary, rendered.target, where, routed))
        resources = [os.path.basename(self.layout.primary), os.path.basename(self.layout.services)]
        if routed and rendered.apex_service is not None:
            self.take_over_apex()
        if routed:
            weights = (100 - status.canary_weight, status.canary_weight)
            routing = self.router.render(
                self.canary,
                *weights,
                mirrored=status.mirrored,
                ingress=rendered.ingress,
                session=session_cookies(self.canary, status),
            )
            if routing:  # the `kubernetes` provider has no routing object
                self._write(self.layout.routing, routing)
                resources.append(os.path.basename(self.layout.routing))
            replicas = (
                primary_replicas(self.root, self.layout, rendered) if status.phase.canary_scaled_up else 0
            )
            self.scale_target(replicas)
        self._write(
            self.layout.kustomization,
            [
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": resources,
                }
            ],
        )
        app_bundle = fleet.bundle_for(self.root, self.layout.app_dir)
        if app_bundle is not None:
            desired = fleet.generated_bundle(app_bundle, self.canary.namespace)
            if fleet.write_generated_bundle(self.root, self.layout.fleet_yaml, desired):
                self.changed.append(self.layout.fleet_yaml)
        self._write(self.layout.status, [status.to_document(self.canary.key)])
        return self.changed

    def take_over_apex(self, dry_run: bool = False) -> None:
        """The app ships a Service under the apex name: remove it in the commit that adds ours."""
        changed, note = apex.take_over(
            self.root,
            self.layout.app_dir,
            self.canary.namespace,
            self.canary.service_name,
            self.loaded.source,
            dry_run,
        )
        if not note:
            return
        self.changed += [path for path in changed if path not in self.changed]
        self.hook_note = f"{self.hook_note}; {note}" if self.hook_note else note

    def scale_target(self, replicas: int) -> None:
        """Set the target's replicas through the app's kustomization `replicas:`, or its manifest.

        A Fleet Helm bundle's replicas are a chart value in its fleet.yaml `helm.values`.
        """
        bundle = fleet.bundle_of(self.root, self.layout.app_dir)
        if bundle is not None and bundle.chart_dir(self.root) is not None:
            changed = fleet.set_replicas(self.root, bundle, self.layout.helm_replicas_key, replicas)
            if changed:
                self.changed.append(changed)
            return
        kustomization = find_kustomization(self.root, fleet.kustomize_dir_of(self.root, self.layout.app_dir))
        if kustomization is not None:
            text = paths.read(self.root, kustomization)
            scaled = (_digest(text), self.layout.target, replicas)
            if _SCALED.get(str(self.root / kustomization)) == scaled:
                return  # it holds what this process last found or wrote for this count: no round trip
            doc = yamlio.load(text)
            entries = doc.get("replicas")
            if entries is None:
                doc["replicas"] = [{"name": self.layout.target, "count": replicas}]
            else:
                for entry in entries:
                    if entry.get("name") == self.layout.target:
                        if entry.get("count") != replicas:
                            entry["count"] = replicas
                        break
                else:
                    entries.append({"name": self.layout.target, "count": replicas})
            new_text = yamlio.dump(doc, like=text)
            if new_text != text:
                paths.write(self.root, kustomization, new_text)
                self.changed.append(kustomization)
            _SCALED[str(self.root / kustomization)] = (_digest(new_text), self.layout.target, replicas)
            return
        self._scale_manifest(replicas)

    def _scale_manifest(self, replicas: int) -> None:
        directory = paths.inside(self.root, self.layout.app_dir, source=self.loaded.source)
        for path in sorted(directory.iterdir()):
            if not path.name.endswith((".yaml", ".yml")) or path.is_symlink():
                continue
            text = path.read_text()
            docs = yamlio.load_all(text)
            for doc in docs:
                if (
                    isinstance(doc, dict)
                    and doc.get("kind") == "Deployment"
                    and (doc.get("metadata") or {}).get("name") == self.layout.target
                ):
                    if doc["spec"].get("replicas") == replicas:
                        return
                    doc["spec"]["replicas"] = replicas
                    rel = paths.relative(self.root, path)
                    paths.write(
                        self.root,
                        rel,
                        yamlio.dump_all(docs, like=text)
                        if len(docs) > 1
                        else yamlio.dump(docs[0], like=text),
                    )
                    self.changed.append(rel)
                    return
        raise RenderError(
            f"{self.loaded.source}: spec.targetRef: Deployment {self.layout.target} "
            f"not found in {self.layout.app_dir}"
        )

    def revert_target(self, rendered: Rendered) -> list[str]:
        """Write the primary's images and config back where the target's come from; lines of what was done.

        Config: each tracked ConfigMap or Secret whose content differs from its `-primary` copy is
        written back into its generator or manifest (manifests/config_writeback.py).
        """
        notes: list[str] = []
        for container, old, new, source in changed_images(self.root, self.layout, rendered):
            if source is None or not old:
                notes.append(f"{container}: {new} not found in {self.layout.app_dir}; left as is")
                continue
            if detect.write_back(self.root, source, container, new, old, self.layout.helm_image_keys):
                self.changed.append(source.path)
                notes.append(
                    f"image {container} written back: {new} -> {old} in {source.path} {source.field}"
                )
        changed, config_notes = config_writeback.write_back(
            self.root, self.layout.app_dir, read_config_copies(self.root, self.layout), rendered.configs
        )
        self.changed += [path for path in changed if path not in self.changed]
        return notes + config_notes

    def quarantine(self, rendered: Rendered) -> list[str]:
        """Keep image automations from picking the failed tags again; lines for the rollback commit.

        Call it before `revert_target`: it names the target's images as the rollback found them.
        """
        notes: list[str] = []
        for container, _old, new, _source in changed_images(self.root, self.layout, rendered):
            ref = detect.ImageRef.parse(new)
            if not ref.tag:
                continue
            for selector in image_policies.find(self.root, self.layout.app_dir, ref.repository):
                done = image_quarantine.quarantine(self.root, selector, ref.tag)
                if done is None:
                    notes.append(
                        image_policies.one_line(
                            f"{ref.tag} not quarantined in {selector.ref} ({selector.why_not()}): if it "
                            "brings the tag back, gitcanary holds it (phase Quarantined) instead of a rollout"
                        )
                    )
                    continue
                if done.path not in self.changed:
                    self.changed.append(done.path)
                notes.append(f"quarantined {container} {ref.tag}: {done.line}")
                notes.append(
                    f"lift it with `gitcanary retry {self.canary.key}` (removes the exclusion and "
                    "analyses the tag again) or by editing it out"
                )
        return notes

    def hook_up(self) -> str:
        """Make the applier build the generated dir: list it in the parent kustomization if there is one."""
        parent = os.path.dirname(self.layout.generated_dir)
        if fleet.bundle_for(self.root, self.layout.app_dir) is not None:
            # Fleet deploys the generated dir as a bundle of its own (its fleet.yaml), never through a
            # parent kustomization: that would make two bundles own the same objects.
            return fleet.hook_note(self.root, self.layout.generated_dir, self.layout.app_dir)
        kustomization = find_kustomization(self.root, parent)
        entry = os.path.relpath(self.layout.generated_dir, parent or ".")
        if kustomization is None:
            return self._flux_hook_note(parent)
        if parent == self.layout.app_dir:
            # The app's own kustomization would run its images: transformer over the primary.
            return (
                f"ACTION NEEDED: {self.layout.generated_dir} sits inside the app's own kustomization; "
                f"set the {GENERATED_DIR_ANNOTATION} annotation to a directory outside {parent or '.'} "
                "and have your applier build it"
            )
        text = paths.read(self.root, kustomization)
        doc = yamlio.load(text) or {}
        self._refuse_rewriting_parent(kustomization, doc)
        resources = doc.get("resources")
        if resources is None:
            doc["resources"] = [entry]
        elif entry in resources or f"./{entry}" in resources:
            return self._with_flux_gaps(f"{kustomization} already lists {entry}")
        else:
            resources.append(entry)
        paths.write(self.root, kustomization, yamlio.dump(doc, like=text))
        self.changed.append(kustomization)
        return self._with_flux_gaps(f"added {entry} to {kustomization} resources")

    def _with_flux_gaps(self, note: str) -> str:
        """A parent kustomization helps only if Flux builds it: name each Flux Kustomization that does not."""
        gaps = appliers.flux_gaps(self.root, self.layout.app_dir, self.layout.generated_dir)
        notes = [gap.note(self.layout.app_dir, self.layout.generated_dir) for gap in gaps]
        return "; ".join([note, *notes])

    def _refuse_rewriting_parent(self, kustomization: str, doc: Any) -> None:
        """A parent whose `images:` matches the target's would rewrite the primary: never hook into it."""
        entries = doc.get("images") if isinstance(doc, dict) else None
        if not entries:
            return
        names = {detect.ImageRef.parse(image).repository for image in self.target_images}
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("name") in names:
                raise SpecError(
                    kustomization,
                    f"images[{index}]",
                    f"this kustomization would rewrite {entry.get('name')} in the generated primary too; set "
                    f"the {GENERATED_DIR_ANNOTATION} annotation on {self.loaded.source} to a directory no "
                    "kustomization with this images: entry includes",
                )

    def _flux_hook_note(self, parent: str) -> str:
        """What the user must know when no kustomization.yaml lists the generated dir."""
        generated = self.layout.generated_dir
        fluxes = flux_kustomization_paths(self.root)
        covering = [(src, name, path) for src, name, path in fluxes if _under(generated, path)]
        if covering:
            src, name, path = covering[0]
            return (
                f"Flux Kustomization {name} ({src}) builds ./{path} with a generated kustomization, "
                f"which includes {generated} by itself"
            )
        narrow = [(src, name) for src, name, path in fluxes if path == self.layout.app_dir]
        if narrow:
            src, name = narrow[0]
            return (
                f"ACTION NEEDED: Flux Kustomization {name} ({src}) applies ./{self.layout.app_dir} only; "
                f"add one for ./{generated} (or point it at ./{parent or '.'})"
            )
        return (
            f"ACTION NEEDED: nothing in this repository lists {generated}: make sure your applier builds it "
            f"(a kustomization.yaml in {parent or '.'}, a Flux Kustomization, or a Fleet bundle)"
        )


def _under(path: str, directory: str) -> bool:
    return not directory or path == directory or path.startswith(directory + "/")


__all__ = ["FileWriter", "Layout", "Rendered", "changed_configs", "merge", "read_status"]
