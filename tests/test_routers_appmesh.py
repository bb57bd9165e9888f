"""App Mesh v1beta2: every generated Canary renders valid VirtualNodes, VirtualRouters and
VirtualServices, Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's
pkg/router/appmesh_v1beta2.go and its tests); the schemas are App Mesh's CRDs
(tests/data/crds/appmesh.json).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES, WEIGHTS, canaries, canary_doc, check_render, refused_field

from gitcanary.errors import RenderError
from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    doc=canaries(
        "appmesh:v1beta2",
        header_kinds=("exact", "prefix", "suffix", "regex"),
        retry_events=("server-error", "gateway-error", "client-error", "stream-error"),
    ),
    weights=WEIGHTS,
    backends=st.lists(
        NAMES.map(lambda n: f"{n}.default") | st.just("arn:aws:appmesh:eu-west-1:1:mesh/m/virtualService/x"),
        max_size=2,
    ),
    hosts=st.lists(NAMES.map(lambda n: f"{n}.example.com"), max_size=2),
    access_log=st.booleans(),
)
def test_every_canary_renders_valid_app_mesh_objects(
    doc: dict, weights: tuple[int, int], backends: list[str], hosts: list[str], access_log: bool
) -> None:
    doc["spec"]["service"] |= {"backends": backends, "hosts": hosts}
    if access_log:
        doc["metadata"]["annotations"] = {"appmesh.flagger.app/accesslog": "enabled"}
    objects = check_render(doc, weights)
    assert sorted(o["kind"] for o in objects) == [
        "VirtualNode",
        "VirtualNode",
        "VirtualRouter",
        "VirtualRouter",
        "VirtualService",
        "VirtualService",
    ]


def test_retry_events_app_mesh_does_not_know_are_refused() -> None:
    doc = canary_doc("appmesh:v1beta2", service={"retries": {"attempts": 2, "retryOn": "5xx"}})
    canary = load_canary(doc, "canary.yaml").canary
    with pytest.raises(RenderError, match="retryOn: App Mesh knows the retry events"):
        router_for(canary, "canary.yaml").render(canary, 100, 0)


def test_mirroring_is_refused() -> None:
    assert refused_field(canary_doc("appmesh:v1beta2", {"mirror": True})) == "spec.analysis.mirror"
