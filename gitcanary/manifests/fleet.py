"""Rancher Fleet bundles: what a bundle deploys, where its image is set, and what covers a directory.

Fleet turns every directory holding a `fleet.yaml` into a bundle. A bundle deploys one of:
- a Helm chart (`helm.chart` naming a chart directory in the repository, or a `Chart.yaml` at the
  bundle root), rendered with `helm.values` and, merged over them, `helm.valuesFiles`;
- a kustomization (`kustomize.dir`, or a `kustomization.yaml` at the bundle root): its build;
- otherwise every `.yaml`/`.yml` file under the bundle, except `fleet.yaml`, the `overlays/`
  directory and sub-directories that are bundles of their own.
`namespace` forces every namespaced object into one namespace; `defaultNamespace` fills it in
where a manifest has none.

gitcanary treats an app directory as a Fleet bundle when it holds a `fleet.yaml` itself. Its
generated directory then gets a `fleet.yaml` too, so Fleet deploys it as a bundle of its own
(never through the app's kustomization, whose `images:` would rewrite the primary).
"""

from __future__ import annotations

import copy
import fnmatch
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gitcanary.errors import RenderError, SpecError
from gitcanary.manifests import files, kustomize, paths, yamlio

FLEET_FILES = ("fleet.yaml", "fleet.yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
GITREPO_API = "fleet.cattle.io/"
HELM_IMAGE_KEYS_ANNOTATION = "gitcanary.io/helm-image-keys"
HELM_REPLICAS_KEY_ANNOTATION = "gitcanary.io/helm-replicas-key"
# The keys `helm create` and most charts use: image.repository + image.tag, replicaCount.
DEFAULT_HELM_IMAGE_KEYS: tuple[tuple[str, str], ...] = (("image.repository", "image.tag"),)
DEFAULT_HELM_REPLICAS_KEY = "replicaCount"
# Fleet leaves these without a namespace (a forced `namespace` fails the deployment instead).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)

Obj = dict[str, Any]
_HELM_LOCK = threading.Lock()


@dataclass(frozen=True)
class Bundle:
    """One directory Fleet deploys as a bundle, with its `fleet.yaml` read."""

    directory: str  # repository-relative, "" for the root
    fleet_file: str  # repository-relative path of its fleet.yaml
    spec: Obj

    def _in(self, name: str) -> str:
        return f"{self.directory}/{name}" if self.directory else name

    @property
    def namespace(self) -> str | None:
        value = self.spec.get("namespace")
        return value if isinstance(value, str) and value else None

    @property
    def default_namespace(self) -> str:
        value = self.spec.get("defaultNamespace")
        return value if isinstance(value, str) and value else "default"

    @property
    def helm(self) -> Obj:
        helm = self.spec.get("helm")
        return helm if isinstance(helm, dict) else {}

    def chart_dir(self, root: Path) -> str | None:
        """The chart directory this bundle renders, None when it is not a Helm bundle."""
        chart = self.helm.get("chart")
        if isinstance(chart, str) and chart:
            if self.helm.get("repo") or "://" in chart or chart.startswith("oci:"):
                raise SpecError(
                    self.fleet_file,
                    "helm.chart",
                    f"{chart} is fetched from a chart repository when Fleet deploys it; gitcanary renders "
                    "only charts kept in this Git repository (a directory with a Chart.yaml)",
                )
            path = paths.normalize(
                os.path.join(self.directory, chart), source=self.fleet_file, field="helm.chart"
            )
            if (
                not paths.inside(root, path, source=self.fleet_file, field="helm.chart")
                .joinpath("Chart.yaml")
                .is_file()
            ):
                raise SpecError(self.fleet_file, "helm.chart", f"{path}/Chart.yaml does not exist")
            return path
        if paths.is_file(root, self._in("Chart.yaml")):
            return self.directory
        return None

    def kustomize_dir(self) -> str:
        kustomize_opts = self.spec.get("kustomize")
        sub = kustomize_opts.get("dir") if isinstance(kustomize_opts, dict) else None
        if isinstance(sub, str) and sub:
            return paths.normalize(
                os.path.join(self.directory, sub), source=self.fleet_file, field="kustomize.dir"
            )
        return self.directory


def kustomize_dir_of(root: Path, directory: str) -> str:
    """Where the kustomization of an app dir is: a Fleet bundle's `kustomize.dir`, else the dir itself."""
    try:
        bundle = bundle_of(root, directory)
    except SpecError:
        return directory
    return bundle.kustomize_dir() if bundle is not None else directory


def fleet_file(root: Path, directory: str) -> str | None:
    return files.first_file(root, directory, FLEET_FILES)


def bundle_of(root: Path, directory: str) -> Bundle | None:
    """The bundle an app directory is, when it holds a fleet.yaml itself."""
    path = fleet_file(root, directory)
    if path is None:
        return None
    try:
        spec = yamlio.load(paths.read(root, path)) or {}
    except yamlio.YAMLError as exc:
        raise SpecError(path, "", f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(spec, dict):
        raise SpecError(path, "", "a fleet.yaml must be a mapping")
    return Bundle(directory, path, _plain(spec))


def bundle_for(root: Path, directory: str) -> Bundle | None:
    """The bundle that deploys an app dir: its own fleet.yaml, or the nearest one above it.

    Above it counts only for a bundle of plain manifests (Fleet walks it and deploys the app dir's
    files): the app dir then builds with that bundle's namespaces, and the generated dir needs a
    fleet.yaml of its own, or the parent bundle would deploy its kustomization.yaml as an object.
    Under a kustomize or Helm bundle above it, what deploys the app is that build: no Fleet handling.
    """
    own = bundle_of(root, directory)
    if own is not None or not directory:
        return own
    parent = str(PurePosixPath(directory).parent)
    while True:
        parent = "" if parent == "." else parent
        above = bundle_of(root, parent)
        if above is not None:
            raw = above.chart_dir(root) is None and not any(
                (root / above.kustomize_dir() / name).is_file() for name in KUSTOMIZATION_NAMES
            )
            return Bundle(directory, above.fleet_file, above.spec) if raw else None
        if not parent:
            return None
        parent = str(PurePosixPath(parent).parent)


def _plain(node: Any) -> Any:
    """Round-trip nodes as plain dicts and lists, so renders never share nodes with files."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


# -- what a bundle deploys -------------------------------------------------------------------


def build(root: Path, bundle: Bundle) -> list[Obj]:
    """The objects Fleet deploys for `bundle`, namespaces filled in as Fleet fills them."""
    chart = bundle.chart_dir(root)
    if chart is not None:
        objects = render_chart(root, bundle, chart)
    else:
        directory = bundle.kustomize_dir()
        if any((root / directory / name).is_file() for name in KUSTOMIZATION_NAMES):
            objects = kustomize.build(paths.inside(root, directory), display=directory or ".")
        else:
            objects = _plain_manifests(root, bundle.directory)
    return [_with_namespace(obj, bundle) for obj in objects]


def _plain_manifests(root: Path, directory: str) -> list[Obj]:
    objects: list[Obj] = []
    base = paths.inside(root, directory)
    ignored: dict[Path, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        patterns = ignored.get(here.parent, []) + _fleetignore(here)
        ignored[here] = patterns
        # overlays/ holds per-cluster customizations; a sub-directory with a fleet.yaml is its own bundle.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")  # Fleet skips hidden files and directories
            and not (here == base and d == "overlays")
            and not any((here / d / f).is_file() for f in FLEET_FILES)
            and not _matches(d, patterns, directory=True)
        )
        for name in sorted(filenames):
            if (
                name in FLEET_FILES
                or name.startswith(".")
                or not name.endswith((".yaml", ".yml"))
                or _matches(name, patterns, directory=False)
            ):
                continue
            file = here / name
            # A manifest symlinked to a host file must not have that file's content committed.
            rel = paths.relative(root, file)
            try:
                docs = list(yamlio.safe_load_all(paths.read(root, rel), rel))
            except yamlio.YAMLError as exc:
                raise RenderError(f"{file.relative_to(root)}: not valid YAML: {exc}") from exc
            objects += [d for d in docs if isinstance(d, dict)]
    return objects


def _fleetignore(directory: Path) -> list[str]:
    """Patterns of a directory's .fleetignore (they apply to it and below, like .gitignore)."""
    file = directory / ".fleetignore"
    if not file.is_file() or file.is_symlink():
        return []
    lines = (line.strip() for line in file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _matches(name: str, patterns: list[str], directory: bool) -> bool:
    """Fleet's .fleetignore: a glob on the base name; `dir/*` ignores a directory."""
    for pattern in patterns:
        if pattern.endswith("/*") and len(pattern) > 2:
            if directory and fnmatch.fnmatchcase(name, pattern[:-2]):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _with_namespace(obj: Obj, bundle: Bundle) -> Obj:
    if obj.get("kind") in CLUSTER_SCOPED:
        return obj
    meta = obj.setdefault("metadata", {})
    if bundle.namespace:
        meta["namespace"] = bundle.namespace
    elif not meta.get("namespace"):
        meta["namespace"] = bundle.default_namespace
    return obj


def helm_values(root: Path, bundle: Bundle) -> Obj:
    """The values Fleet passes to the chart: `helm.values`, with `helm.valuesFiles` merged over them."""
    values: Obj = {}
    for layer in _value_layers(root, bundle, include_chart=False):
        values = _deep_merge(values, layer.values)
    return values


def render_chart(root: Path, bundle: Bundle, chart: str) -> list[Obj]:
    """Render a chart kept in the repository with Helm's own Go engine (helm-python-sdk)."""
    try:
        import helm_python
    except ImportError as exc:
        raise RenderError(
            f"{bundle.fleet_file}: helm.chart: rendering the Helm chart {chart or '.'} needs Helm's engine: "
            "pip install 'gitcanary[helm]' (helm-python-sdk)"
        ) from exc
    release = str(bundle.helm.get("releaseName") or PurePosixPath(bundle.directory or "release").name)
    namespace = bundle.namespace or bundle.default_namespace
    try:
        # One render at a time: a cold start renders apps on threads, and the native library's
        # thread safety is not documented.
        with _HELM_LOCK, helm_python.Chart.load(str(root / chart)) as loaded:
            rendered = loaded.render(helm_values(root, bundle), name=release, namespace=namespace)
    except helm_python.HelmError as exc:
        raise RenderError(f"{bundle.fleet_file}: helm: rendering {chart or '.'} failed: {exc}") from exc
    objects: list[Obj] = []
    for name in sorted(rendered):
        if not name.endswith((".yaml", ".yml")):  # NOTES.txt, helpers
            continue
        try:
            objects += [d for d in yamlio.safe_load_all(rendered[name]) if isinstance(d, dict)]
        except yamlio.YAMLError as exc:
            raise RenderError(f"{chart}: {name} does not render to YAML: {exc}") from exc
    return objects


def inputs(root: Path, directory: str) -> set[str]:
    """Repository paths a Fleet app dir's build reads besides the dir itself: its fleet.yaml (maybe one
    above it), a chart or values files kept elsewhere, what a `kustomize.dir` refers to."""
    try:
        bundle = bundle_for(root, directory)
        if bundle is None:
            return set()
        found = {bundle.fleet_file} | {
            layer.path for layer in _value_layers(root, bundle, include_chart=True)
        }
        chart = bundle.chart_dir(root)
    except SpecError:
        return set()
    if chart is not None:
        found.add(chart)
    elif bundle.kustomize_dir() != directory:
        found |= files.kustomize_inputs(root, bundle.kustomize_dir())
    return found


# -- where a helm-values bundle sets its image -----------------------------------------------


@dataclass
class _Layer:
    path: str  # the file
    prefix: tuple[str, ...]  # where the values mapping sits in it
    values: Obj


def _value_layers(root: Path, bundle: Bundle, include_chart: bool) -> list[_Layer]:
    """Values in the order they merge (later wins): the chart's values.yaml, `helm.values`, then each of
    `helm.valuesFiles` (Fleet merges the files over `helm.values` when it builds the bundle)."""
    layers: list[_Layer] = []
    if include_chart:
        chart = bundle.chart_dir(root)
        if chart is not None:
            path = f"{chart}/values.yaml" if chart else "values.yaml"
            if paths.is_file(root, path):
                layers.append(_Layer(path, (), _read_mapping(root, path)))
    values = bundle.helm.get("values")
    if isinstance(values, dict):
        layers.append(_Layer(bundle.fleet_file, ("helm", "values"), values))
    for index, name in enumerate(bundle.helm.get("valuesFiles") or []):
        where = f"helm.valuesFiles[{index}]"
        path = paths.normalize(
            os.path.join(bundle.directory, str(name)), source=bundle.fleet_file, field=where
        )
        if not paths.inside(root, path, source=bundle.fleet_file, field=where).is_file():
            raise SpecError(bundle.fleet_file, f"helm.valuesFiles[{index}]", f"{path} does not exist")
        layers.append(_Layer(path, (), _read_mapping(root, path)))
    return layers


def _read_mapping(root: Path, path: str) -> Obj:
    try:
        doc = next(iter(yamlio.safe_load_all(paths.read(root, path))), None)
    except yamlio.YAMLError as exc:
        raise SpecError(path, "", f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return doc if isinstance(doc, dict) else {}


def _deep_merge(base: Obj, top: Obj) -> Obj:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _get(values: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def parse_image_keys(annotation: str | None, where: str) -> tuple[tuple[str, str], ...]:
    """`repoKey:tagKey[,repoKey:tagKey...]` from the Canary annotation, or the defaults."""
    if not annotation:
        return DEFAULT_HELM_IMAGE_KEYS
    pairs = []
    for item in annotation.split(","):
        repo, sep, tag = item.strip().partition(":")
        if not sep or not repo or not tag:
            raise SpecError(
                where,
                f"metadata.annotations.{HELM_IMAGE_KEYS_ANNOTATION}",
                f"{item.strip()!r} is not REPOSITORY_KEY:TAG_KEY (e.g. image.repository:image.tag)",
            )
        pairs.append((repo, tag))
    return tuple(pairs)


@dataclass(frozen=True)
class HelmImage:
    """Where a helm-values bundle sets one image: the file and dotted keys that win."""

    path: str  # the file whose value wins for the tag key
    field: str  # e.g. helm.values.image.tag
    pair: int  # index into the image keys


def locate_image(
    root: Path, directory: str, image: str, keys: tuple[tuple[str, str], ...] = DEFAULT_HELM_IMAGE_KEYS
) -> HelmImage | None:
    """Which values set the rendered `image` (`repository:tag`) in a Helm bundle, if any do."""
    bundle = bundle_of(root, directory)
    if bundle is None or bundle.chart_dir(root) is None:
        return None
    layers = _value_layers(root, bundle, include_chart=True)
    merged: Obj = {}
    for layer in layers:
        merged = _deep_merge(merged, layer.values)
    for index, (repo_key, tag_key) in enumerate(keys):
        repo, tag = _get(merged, repo_key), _get(merged, tag_key)
        if repo is None or tag is None or f"{repo}:{tag}" != image:
            continue
        winner = next(layer for layer in reversed(layers) if _get(layer.values, tag_key) is not None)
        return HelmImage(winner.path, ".".join((*winner.prefix, tag_key)), index)
    return None


def write_image(
    root: Path,
    found: HelmImage,
    current: str,
    wanted: str,
    keys: tuple[tuple[str, str], ...] = DEFAULT_HELM_IMAGE_KEYS,
) -> bool:
    """Set the tag (and the repository, when it differs) where `found` says; True if the file changed."""
    repo_key, tag_key = keys[found.pair]
    repository, _, tag = wanted.rpartition(":")
    if not repository or "/" in tag or "@" in wanted:
        raise RenderError(f"{found.path}: {found.field}: cannot write {wanted} back as repository:tag")
    prefix = tuple(found.field.split("."))[: -len(tag_key.split("."))]
    updates: dict[str, Any] = {tag_key: tag}
    if current.rpartition(":")[0] != repository:
        updates[repo_key] = repository
    return _set_values(root, found.path, prefix, updates)


def set_replicas(root: Path, bundle: Bundle, key: str, replicas: int) -> str | None:
    """Write `replicas` into the bundle's `helm.values` at `key`; the file changed, or None."""
    return (
        bundle.fleet_file
        if _set_values(root, bundle.fleet_file, ("helm", "values"), {key: replicas})
        else None
    )


def _set_values(root: Path, path: str, prefix: tuple[str, ...], updates: dict[str, Any]) -> bool:
    """Round-trip edit: only the changed scalars move, comments and order stay."""
    text = paths.read(root, path)
    doc = yamlio.load(text)
    for dotted, value in updates.items():
        node = doc
        for part in (*prefix, *dotted.split("."))[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        last = dotted.split(".")[-1]
        if node.get(last) != value:
            node[last] = value
    new_text = yamlio.dump(doc, like=text)
    if new_text == text:
        return False
    paths.write(root, path, new_text)
    return True


def warnings(root: Path, directory: str) -> tuple[str, ...]:
    """What in an app's bundle gitcanary does not act on: it renders the bundle's defaults only."""
    try:
        bundle = bundle_for(root, directory)
    except SpecError:
        return ()
    if bundle is None:
        return ()
    found = []
    for index, entry in enumerate(bundle.spec.get("targetCustomizations") or []):
        if not isinstance(entry, dict):
            continue
        changes = sorted(key for key in entry if key not in _TARGETING_KEYS)
        if changes:
            found.append(
                f"{bundle.fleet_file}: targetCustomizations[{index}] ({entry.get('name', '?')}) changes "
                f"{', '.join(changes)} on some clusters; gitcanary renders the bundle's defaults, so the "
                "primary there is a copy of the default target"
            )
    for dotted in _templated(bundle.helm.get("values"), "helm.values"):
        found.append(
            f"{bundle.fleet_file}: {dotted}: Fleet fills in this template per cluster; gitcanary renders "
            "it as written"
        )
    if bundle.helm.get("valuesFrom"):
        found.append(
            f"{bundle.fleet_file}: helm.valuesFrom: values from the cluster's ConfigMaps and Secrets are not "
            "read; gitcanary renders without them"
        )
    return tuple(found)


def _templated(node: Any, path: str) -> list[str]:
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in _templated(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [found for i, value in enumerate(node) for found in _templated(value, f"{path}[{i}]")]
    return [path] if isinstance(node, str) and "${" in node else []


# -- the generated bundle and what deploys it ------------------------------------------------

# targetCustomizations keys that choose clusters (kept for the generated bundle, so it goes where
# the app goes) rather than customize the app's own resources (dropped: they are not ours).
_TARGETING_KEYS = (
    "name",
    "clusterName",
    "clusterSelector",
    "clusterGroup",
    "clusterGroupSelector",
    "doNotDeploy",
)


def generated_bundle(app: Bundle, namespace: str) -> Obj:
    """fleet.yaml of the generated directory: the canary's namespace, the app bundle's cluster targeting."""
    doc: Obj = {"defaultNamespace": namespace}
    customizations = [
        {key: entry[key] for key in _TARGETING_KEYS if key in entry}
        for entry in app.spec.get("targetCustomizations") or []
        if isinstance(entry, dict)
    ]
    if any(entry.get("doNotDeploy") for entry in customizations):
        doc["targetCustomizations"] = [entry for entry in customizations if entry.get("doNotDeploy")]
    return doc


def write_generated_bundle(root: Path, path: str, desired: Obj) -> bool:
    """Set only the keys gitcanary owns, so targeting a person adds to the generated fleet.yaml stays."""
    file = paths.no_symlink(root, path, field="(generated file)")
    text = file.read_text() if file.exists() else None
    doc = yamlio.load(text, path) if text else None
    if not isinstance(doc, dict):
        doc = {}
    for key, value in desired.items():
        if doc.get(key) != value:
            doc[key] = value
    new_text = yamlio.dump(doc, like=text)
    if new_text == text:
        return False
    paths.write(root, path, new_text, field="(generated file)")
    return True


def gitrepo_paths(root: Path) -> list[tuple[str, str, list[str]]]:
    """(file, name, paths) of every Fleet GitRepo declared in the repository; no paths means the root."""
    found = []
    for source in files.yaml_files(root):
        try:
            text = paths.read(root, source, errors="replace")
        except paths.UnsafePath:
            continue  # reported by discovery for the file itself
        if GITREPO_API not in text:
            continue
        try:
            docs = list(yamlio.safe_load_all(text))
        except yamlio.YAMLError:
            continue
        for doc in docs:
            if not (
                isinstance(doc, dict)
                and doc.get("kind") == "GitRepo"
                and str(doc.get("apiVersion", "")).startswith(GITREPO_API)
            ):
                continue
            spec = doc.get("spec") or {}
            scanned = [str(p) for p in spec.get("paths") or []]
            scanned += [
                str(b["base"]) for b in spec.get("bundles") or [] if isinstance(b, dict) and b.get("base")
            ]
            normalized = [os.path.normpath(p.strip("/") or ".") for p in scanned] or ["."]
            found.append(
                (
                    source,
                    str((doc.get("metadata") or {}).get("name", "?")),
                    ["" if p == "." else p for p in normalized],
                )
            )
    return found


def hook_note(root: Path, generated: str, app: str) -> str:
    """What the user must know about Fleet deploying the generated bundle."""
    repos = gitrepo_paths(root)
    for source, name, repo_paths in repos:
        for path in repo_paths:
            if not path or generated == path or generated.startswith(path + "/"):
                return (
                    f"Fleet GitRepo {name} ({source}) scans ./{path}, so Fleet deploys {generated} "
                    "as a bundle by its own fleet.yaml"
                )
    for source, name, repo_paths in repos:
        if any(not p or app == p or app.startswith(p + "/") for p in repo_paths):
            return (
                f"ACTION NEEDED: Fleet GitRepo {name} ({source}) does not scan {generated}: add "
                f"`- {generated}` to its spec.paths"
            )
    return (
        f"ACTION NEEDED: no Fleet GitRepo in this repository: check that the spec.paths of the GitRepo that "
        f"deploys {app} also cover {generated} (add `- {generated}`), or Fleet will not deploy the primary"
    )
