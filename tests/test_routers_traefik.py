"""Traefik's weighted TraefikService: every generated Canary renders valid, Flagger-shaped, with its weights.

The expectations are the oracle's (tests/oracle.py, restated from Flagger's pkg/router/traefik.go and
its tests); the schema is Traefik's TraefikService CRD (tests/data/crds/traefik.json).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from router_properties import WEIGHTS, canaries, canary_doc, check_render, refused_field


@settings(derandomize=True, max_examples=60, deadline=None)
@given(doc=canaries("traefik", ab=False), weights=WEIGHTS)
def test_every_canary_renders_a_valid_traefikservice_with_its_weights(
    doc: dict, weights: tuple[int, int]
) -> None:
    (service,) = check_render(doc, weights)
    listed = service["spec"]["weighted"]["services"]
    # Flagger lists the canary only while it has traffic; the primary is always there.
    assert len(listed) == (2 if weights[1] else 1)


@pytest.mark.parametrize(
    ("analysis", "field"),
    [
        ({"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "on"}}}]}, "spec.analysis.match"),
        ({"stepWeight": 10, "maxWeight": 50, "mirror": True}, "spec.analysis.mirror"),
    ],
)
def test_ab_testing_and_mirroring_are_refused(analysis: dict, field: str) -> None:
    assert refused_field(canary_doc("traefik", analysis)) == field
