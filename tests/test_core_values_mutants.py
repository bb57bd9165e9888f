"""The core's inputs and outputs are values: built from their fields, equal when their fields are,
immutable (frozen dataclasses). Every edge relies on it: decisions are compared in tests and logs,
observations are shared between the reconciler's threads.

This module imports no other test module, so it still runs (and fails) when a mutant of
gitcanary/core breaks the other test modules' own imports (scripts/mutate.py runs pytest with
--continue-on-collection-errors).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from gitcanary.core.observations import (
    CheckResult,
    ClusterObservation,
    HookResult,
    Observation,
    WorkloadState,
)
from gitcanary.core.rollout import Action, Decision
from gitcanary.core.urlmap import UrlMap, parse_rule

T0 = datetime(2026, 12, 7, tzinfo=UTC)

SAMPLES: list[tuple[type, tuple[Any, ...], dict[str, Any]]] = [
    (CheckResult, ("errors", 1.0, None, 2.0, True, "errors 1 <= 2 ok"), {}),
    (HookResult, ("rollout", False, "load", "HTTP 500"), {}),
    (Observation, (T0, "sha256:a", "6.1.1"), {"automated": True}),
    (WorkloadState, ("backend", False, "0/1 ready"), {}),
    (ClusterObservation, (True, ""), {"live_since": T0}),
    (Decision, (Action.NONE, "waiting"), {"details": ("a",)}),
    (UrlMap, ((),), {}),
]


@pytest.mark.parametrize(("kind", "args", "kwargs"), SAMPLES, ids=[s[0].__name__ for s in SAMPLES])
def test_core_types_are_values(kind: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        one, two = kind(*args, **kwargs), kind(*args, **kwargs)
    except TypeError as error:
        pytest.fail(f"{kind.__name__} cannot be built from its fields: {error}")
    assert one == two and one is not two
    assert dataclasses.is_dataclass(one)
    field = dataclasses.fields(one)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(one, field, getattr(two, field))


def test_a_rewrite_rule_is_a_value() -> None:
    try:
        rule = parse_rule("http://a/=http://b/")
    except TypeError as error:
        pytest.fail(f"Rule cannot be built from its fields: {error}")
    assert rule == parse_rule("http://a/=http://b/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.host = "c"  # type: ignore[misc]
