"""Kuma's TrafficRoute: every generated Canary renders valid, Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/kuma.go and its
tests); the schema is Kuma's TrafficRoute CRD (tests/data/crds/kuma.json), which leaves `spec` to Kuma,
so the oracle checks every spec field.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES, WEIGHTS, canaries, canary_doc, check_render, refused_field


@settings(derandomize=True, max_examples=60, deadline=None)
@given(doc=canaries("kuma", ab=False), weights=WEIGHTS, mesh=st.none() | NAMES)
def test_every_canary_renders_a_valid_trafficroute(
    doc: dict, weights: tuple[int, int], mesh: str | None
) -> None:
    if mesh is not None:
        doc["metadata"]["annotations"] = {"kuma.io/mesh": mesh}
    (route,) = check_render(doc, weights)
    assert route["mesh"] == (mesh or "default")
    assert "namespace" not in route["metadata"]


@pytest.mark.parametrize(
    ("analysis", "field"),
    [
        ({"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "on"}}}]}, "spec.analysis.match"),
        ({"stepWeight": 10, "maxWeight": 50, "mirror": True}, "spec.analysis.mirror"),
    ],
)
def test_ab_testing_and_mirroring_are_refused(analysis: dict, field: str) -> None:
    assert refused_field(canary_doc("kuma", analysis)) == field
