"""Gloo Edge's RouteTable and Upstreams: every generated Canary renders valid, Flagger-shaped,
with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/gloo.go and its
tests); the schemas are Gloo's RouteTable and Upstream CRDs (tests/data/crds/gloo.json).
"""

from __future__ import annotations

from hypothesis import given, settings
from router_properties import WEIGHTS, canaries, canary_doc, check_render, refused_field


@settings(derandomize=True, max_examples=60, deadline=None)
@given(doc=canaries("gloo", header_kinds=("exact", "regex")), weights=WEIGHTS)
def test_every_canary_renders_a_valid_routetable_and_upstreams(doc: dict, weights: tuple[int, int]) -> None:
    objects = check_render(doc, weights)
    assert [o["kind"] for o in objects] == ["RouteTable", "Upstream", "Upstream"]


def test_mirroring_is_refused() -> None:
    assert refused_field(canary_doc("gloo", {"mirror": True})) == "spec.analysis.mirror"
