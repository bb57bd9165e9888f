"""Gloo Edge's RouteTable and Upstreams: every generated Canary renders valid, Flagger-shaped,
with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/gloo.go and its
tests); the schemas are Gloo's RouteTable and Upstream CRDs (tests/data/crds/gloo.json).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from router_properties import WEIGHTS, canaries, check_render

from gitcanary.errors import SpecError
from gitcanary.routers import router_for
from gitcanary.spec.load import load_canary


@settings(derandomize=True, max_examples=60, deadline=None)
@given(doc=canaries("gloo", header_kinds=("exact", "regex")), weights=WEIGHTS)
def test_every_canary_renders_a_valid_routetable_and_upstreams(doc: dict, weights: tuple[int, int]) -> None:
    objects = check_render(doc, weights)
    assert [o["kind"] for o in objects] == ["RouteTable", "Upstream", "Upstream"]


def test_mirroring_is_refused() -> None:
    doc = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "provider": "gloo",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50, "mirror": True},
        },
    }
    with pytest.raises(SpecError) as caught:
        router_for(load_canary(doc, "canary.yaml").canary, "canary.yaml")
    assert caught.value.field == "spec.analysis.mirror"
