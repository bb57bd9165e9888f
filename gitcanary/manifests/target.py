"""Build the user's app directory the way the applier does and pick out the canary's target."""

from __future__ import annotations

from pathlib import Path

from gitcanary.errors import RenderError
from gitcanary.manifests import config_tracking, fleet, kustomize, paths, render, yamlio
from gitcanary.manifests.discovery import app_dir
from gitcanary.manifests.files import YAML_SUFFIXES, find_kustomization
from gitcanary.manifests.generate import Rendered
from gitcanary.spec.load import LoadedCanary


def build_app(root: Path, directory: str) -> list[dict]:
    """kustomize when the dir has a kustomization; otherwise every manifest in it, as Flux would.

    A directory with a fleet.yaml is built the way Fleet deploys that bundle.
    """
    bundle = fleet.bundle_for(root, directory)
    if bundle is not None:
        return fleet.build(root, bundle)
    if find_kustomization(root, directory) is not None:
        return kustomize.build(paths.inside(root, directory), display=directory or ".")
    objects: list[dict] = []
    base = paths.inside(root, directory)
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.name.endswith(YAML_SUFFIXES) and ".git" not in path.parts:
            rel = paths.relative(root, path)  # a manifest symlinked out of the clone is refused
            try:
                objects += [
                    d for d in yamlio.safe_load_all(paths.read(root, rel), rel) if isinstance(d, dict)
                ]
            except yamlio.YAMLError as exc:
                raise RenderError(f"{rel}: not valid YAML: {exc}") from exc
    return objects


def render_target(root: Path, loaded: LoadedCanary) -> Rendered:
    canary = loaded.canary
    objects = build_app(root, app_dir(loaded))
    target = render.find_target(objects, canary, loaded.source)
    autoscaler = None
    if canary.spec.autoscaler_ref is not None:
        ref = canary.spec.autoscaler_ref
        autoscaler = render.find_object(objects, ref.kind, ref.name, canary.namespace)
        if autoscaler is None:
            raise RenderError(
                f"{loaded.source}: spec.autoscalerRef: {ref.kind} {ref.name} is not in what "
                f"{app_dir(loaded) or '.'} builds"
            )
    ingress = None
    # The user's object a router copies: the Ingress (nginx, skipper) or the ApisixRoute (apisix; any
    # other provider ignores spec.routeRef, with a warning).
    route_ref = canary.spec.route_ref if canary.provider == "apisix" else None
    for field, copied in (("spec.ingressRef", canary.spec.ingress_ref), ("spec.routeRef", route_ref)):
        if copied is None or ingress is not None:
            continue
        ingress = render.find_object(objects, copied.kind, copied.name, canary.namespace)
        if ingress is None:
            raise RenderError(
                f"{loaded.source}: {field}: {copied.kind} {copied.name} is not in what "
                f"{app_dir(loaded) or '.'} builds"
            )
    apex = render.find_object(objects, "Service", canary.service_name, canary.namespace)
    if config_tracking.disabled(target):
        tracking = config_tracking.Tracking()
    else:
        tracking = config_tracking.track(objects, target, canary.namespace, f"{loaded.source}: ")
    return Rendered(
        target,
        autoscaler,
        config_tracking.revision_hash(render.pod_template_hash(target), tracking),
        render.revision_of(target),
        apex_service=apex,
        ingress=ingress,
        configs=tracking,
    )
