"""Contour's HTTPProxy: every generated Canary renders valid, Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/contour.go and
its tests); the schema is Contour's HTTPProxy CRD (tests/data/crds/contour.json).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from router_properties import WEIGHTS, canaries, canary_doc, check_render

from gitcanary.errors import RenderError, SpecError
from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary


@settings(derandomize=True, max_examples=60, deadline=None)
@given(doc=canaries("contour"), weights=WEIGHTS)
def test_every_canary_renders_a_valid_httpproxy_with_its_weights(doc: dict, weights: tuple[int, int]) -> None:
    (proxy,) = check_render(doc, weights)
    assert proxy["kind"] == "HTTPProxy"
    routes = proxy["spec"]["routes"]
    assert len(routes) == (2 if doc["spec"]["analysis"].get("match") else 1)


def _doc(**analysis: object) -> dict:
    return canary_doc("contour", analysis)


def test_a_weighted_httpproxy_reads_as_flagger_writes_it() -> None:
    (proxy,) = check_render(_doc(), (70, 30))
    services = proxy["spec"]["routes"][0]["services"]
    assert [(s["name"], s["port"], s.get("weight")) for s in services] == [
        ("backend-primary", 80, 70),
        ("backend-canary", 80, 30),
    ]
    assert proxy["spec"]["routes"][0]["conditions"] == [{"prefix": "/"}]


def test_regex_header_matches_and_mirroring_are_refused() -> None:
    ab = _doc(
        iterations=2, stepWeight=None, maxWeight=None, match=[{"headers": {"x-canary": {"regex": "on"}}}]
    )
    canary = load_canary(ab, "canary.yaml").canary
    with pytest.raises(RenderError, match="exact, prefix or suffix"):
        router_for(canary, "canary.yaml").render(canary, 0, 100)
    mirrored = load_canary(_doc(mirror=True), "canary.yaml").canary
    with pytest.raises(SpecError, match="mirroring in canary mode is not supported by provider contour"):
        router_for(mirrored, "canary.yaml")
