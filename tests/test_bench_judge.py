"""The judge replay benchmark, small: a few scenarios, one seed, both judges, through the real
reconciler and a real Prometheus fed by remote write. Deterministic: seeded traffic, simulated clock."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_judge", ROOT / "bench" / "bench_judge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_judge"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
def test_replay_small() -> None:
    bench = load_bench()
    result = bench.run_bench(1, ["same", "p99x2", "no-canary-data"], ["threshold", "compare"], print)
    outcomes = {(o["judge"], o["scenario"]): o["outcome"] for o in result["outcomes"]}
    assert outcomes == {
        ("threshold", "same"): "promoted",
        ("threshold", "p99x2"): "rolled back",
        ("threshold", "no-canary-data"): "rolled back",
        ("compare", "same"): "promoted",
        ("compare", "p99x2"): "rolled back",
        # Too few samples waits, and a wait past max-wait-intervals fails: never promoted.
        ("compare", "no-canary-data"): "rolled back",
    }
    for judge in ("threshold", "compare"):
        assert result["judges"][judge]["promotions_without_data"] == 0


def test_traffic_follows_the_weight_and_the_scenario() -> None:
    bench = load_bench()
    scenario = next(s for s in bench.SCENARIOS if s.name == "errors+5%")
    run = bench.Run(scenario, "compare", 3)
    for _ in range(200):
        run.slice(0.0)
    assert run.canary.ok + run.canary.errors == 0  # weight 0: nothing reaches the canary
    run.weight = 50
    for _ in range(400):
        run.slice(0.0)
    canary_total = run.canary.ok + run.canary.errors
    primary_total = run.primary.ok + run.primary.errors
    assert abs(canary_total / (primary_total - 200 * 20 * 5) - 1) < 0.1
    assert run.canary.errors / canary_total == pytest.approx(0.052, abs=0.01)
    # Histogram buckets are cumulative and end at the total.
    assert run.canary.buckets == sorted(run.canary.buckets)
    assert run.canary.buckets[-1] == pytest.approx(canary_total, abs=1)
