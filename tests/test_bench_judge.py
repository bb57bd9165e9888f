"""The judge replay benchmark, small: a few scenarios, one seed, both judges, through the real
reconciler and a real Prometheus fed by remote write. Deterministic: seeded traffic, simulated clock."""

from __future__ import annotations

import importlib.util
import subprocess
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
def test_replay_small(tmp_path: Path) -> None:
    bench = load_bench()
    kept = tmp_path / "kept.git"
    result = bench.run_bench(1, ["same", "p99x2", "no-canary-data"], ["threshold", "compare"], print, kept)
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

    def log(run: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={kept}", "log", "--reverse", "--format=%B", "--", f"apps/{run}-gitcanary"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    # The compare judge's commits: one hold while samples are too few; past max-wait-intervals the
    # wait is a failed check (halt), the next wait holds again, and the second one rolls back.
    silent = log("no-canary-data-s01-c")
    steps = [line.split(" ")[1] for line in silent.splitlines() if line.startswith("gitcanary: ")]
    assert steps[-4:] == ["hold", "halt", "hold", "roll"]
    assert "waited 300s, longer than 300s" in silent
    assert "Gitcanary-Check: request-success-rate value=none min=99 primary=" in silent
    assert " waiting\n" in silent
    slow = log("p99x2-s01-c")
    checks = [line for line in slow.splitlines() if line.startswith("Gitcanary-Check: request-duration")]
    failed = [line for line in checks if line.endswith(" failed")]
    assert len(failed) == 2  # threshold 2
    assert all(" primary=" in line and " p=" in line and " effect=x" in line for line in failed)
    # The threshold judge's commits are Flagger's: values against bounds, no primary.
    assert " primary=" not in log("p99x2-s01-t")


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

