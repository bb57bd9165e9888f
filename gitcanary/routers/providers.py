"""Which router serves which `spec.provider` string, and what each one can express.

Provider strings are Flagger's (its CRD's enum): `istio`, `linkerd`, `smi:v1alpha2`, `smi:v1alpha3`,
`gatewayapi` / `gatewayapi:v1` / `gatewayapi:v1beta1`, `nginx`, `kubernetes`, `contour`,
`traefik`, `gloo`, `kuma`, `apisix`, `skipper`,
`appmesh:v1beta2`. A canary that asks a
provider for something it cannot render (A/B on a TrafficSplit, mirroring on an Ingress) gets an
error naming the field, and only that canary halts.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, replace

from gitcanary.errors import SpecError
from gitcanary.routers.apisix import ApisixRouter
from gitcanary.routers.appmesh import AppMeshRouter
from gitcanary.routers.base import Router
from gitcanary.routers.contour import ContourRouter
from gitcanary.routers.gatewayapi import GatewayAPIRouter
from gitcanary.routers.gloo import GlooRouter
from gitcanary.routers.istio import IstioRouter
from gitcanary.routers.kubernetes import KubernetesRouter
from gitcanary.routers.kuma import KumaRouter
from gitcanary.routers.nginx import NginxRouter
from gitcanary.routers.skipper import SkipperRouter
from gitcanary.routers.smi import SMIRouter
from gitcanary.routers.traefik import TraefikRouter
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.models import Canary


@dataclass(frozen=True)
class Capabilities:
    ab_testing: bool  # analysis.match
    weighted: bool  # stepWeight / stepWeights (canary strategy)
    mirror_canary: bool  # analysis.mirror with stepWeight
    mirror_blue_green: bool  # analysis.mirror with iterations


FULL = Capabilities(ab_testing=True, weighted=True, mirror_canary=True, mirror_blue_green=True)
GATEWAY = Capabilities(ab_testing=True, weighted=True, mirror_canary=False, mirror_blue_green=True)
SPLIT = Capabilities(ab_testing=False, weighted=True, mirror_canary=False, mirror_blue_green=False)
INGRESS = Capabilities(ab_testing=True, weighted=True, mirror_canary=False, mirror_blue_green=False)
NO_ROUTER = Capabilities(ab_testing=False, weighted=False, mirror_canary=False, mirror_blue_green=False)

SUPPORTED = (
    "istio",
    "gatewayapi",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "linkerd",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "nginx",
    "kubernetes",
    "contour",
    "traefik",
    "gloo",
    "kuma",
    "apisix",
    "skipper",
    "appmesh:v1beta2",
)


def _router(provider: str) -> tuple[Router, Capabilities] | None:
    if provider == "istio":
        return IstioRouter(), FULL
    if provider in ("gatewayapi", "gatewayapi:v1"):
        return GatewayAPIRouter(provider, "gateway.networking.k8s.io/v1"), GATEWAY
    if provider == "gatewayapi:v1beta1":
        return GatewayAPIRouter(provider, "gateway.networking.k8s.io/v1beta1"), GATEWAY
    if provider == "linkerd":
        # Linkerd's SMI extension serves split.smi-spec.io v1alpha1 and v1alpha2; v1alpha2 has
        # integer weights and is the oldest version whose schema gitcanary ships.
        return SMIRouter(provider, "split.smi-spec.io/v1alpha2"), SPLIT
    if provider in ("smi:v1alpha2", "smi:v1alpha3"):
        return SMIRouter(provider, f"split.smi-spec.io/{provider.removeprefix('smi:')}"), SPLIT
    if provider == "nginx":
        return NginxRouter(), INGRESS
    if provider == "kubernetes":
        return KubernetesRouter(), NO_ROUTER
    if provider == "contour":
        return ContourRouter(), INGRESS
    if provider == "traefik":
        return TraefikRouter(), SPLIT
    if provider == "gloo":
        return GlooRouter(), INGRESS
    if provider == "kuma":
        return KumaRouter(), SPLIT
    if provider == "apisix":
        return ApisixRouter(), SPLIT
    if provider == "skipper":
        return SkipperRouter(), SPLIT
    if provider == "appmesh:v1beta2":
        return AppMeshRouter(), INGRESS
    return None


def resolve(canary: Canary, source: str) -> Router:
    """The router of `spec.provider`, after checking the canary asks only for what it can render."""
    found = _router(canary.provider)
    if found is None:
        raise SpecError(
            source,
            "spec.provider",
            f"{canary.provider!r} is not supported (supported: {', '.join(SUPPORTED)})",
        )
    router, can = found
    analysis = canary.spec.analysis
    provider = canary.provider
    if isinstance(router, GatewayAPIRouter) and not canary.spec.service.gateway_refs:
        raise SpecError(
            source,
            "spec.service.gatewayRefs",
            f"provider {provider} needs the Gateways the HTTPRoute attaches to",
        )
    if isinstance(router, NginxRouter | SkipperRouter) and canary.spec.ingress_ref is None:
        raise SpecError(
            source, "spec.ingressRef", f"provider {provider} needs the Ingress to clone into <name>-canary"
        )
    if isinstance(router, ApisixRouter) and canary.spec.route_ref is None:
        raise SpecError(
            source, "spec.routeRef", "provider apisix needs the ApisixRoute to copy into <route>-<svc>-canary"
        )
    if canary.spec.skip_analysis:
        return router
    if analysis.iterations > 0 and analysis.match and not can.ab_testing:
        raise SpecError(source, "spec.analysis.match", f"A/B testing is not supported by provider {provider}")
    if analysis.iterations <= 0 and not can.weighted:
        raise SpecError(
            source,
            "spec.analysis.iterations",
            f"provider {provider} has no traffic router: it supports blue/green only "
            "(set analysis.iterations instead of stepWeight)",
        )
    if analysis.mirror:
        blue_green = analysis.iterations > 0 and not analysis.match
        canary_mode = analysis.iterations <= 0
        if (blue_green and not can.mirror_blue_green) or (canary_mode and not can.mirror_canary):
            mode = "blue/green" if blue_green else "canary" if canary_mode else "A/B"
            raise SpecError(
                source,
                "spec.analysis.mirror",
                f"traffic mirroring in {mode} mode is not supported by provider {provider}",
            )
    return router


def apply_default_provider(canaries: MutableMapping[str, LoadedCanary], default: str | None) -> None:
    """Give every canary without `spec.provider` the repository default (`run --provider`).

    Flagger has the same knob (its `-mesh-provider` flag); without it the default is istio.
    """
    if not default:
        return
    for key, loaded in canaries.items():
        spec = loaded.canary.spec
        if spec.provider is None:
            canary = loaded.canary.model_copy(update={"spec": spec.model_copy(update={"provider": default})})
            canaries[key] = replace(loaded, canary=canary)
