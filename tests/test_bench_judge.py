"""The judge replay benchmark, small: a few scenarios, one seed, both judges, through the real
reconciler and a real Prometheus fed by remote write. Deterministic: seeded traffic, simulated clock."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
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
    result = bench.run_bench(
        1, ["same", "p99x2", "no-canary-data", "canary-stops"], ["threshold", "compare"], print, kept
    )
    outcomes = {(o["judge"], o["scenario"]): o["outcome"] for o in result["outcomes"]}
    assert outcomes == {
        ("threshold", "same"): "promoted",
        ("threshold", "p99x2"): "rolled back",
        ("threshold", "no-canary-data"): "rolled back",
        ("compare", "same"): "promoted",
        ("compare", "p99x2"): "rolled back",
        # Too few samples waits, and a wait past max-wait-intervals fails: never promoted.
        ("compare", "no-canary-data"): "rolled back",
        # Issue 27: the canary's series stop at 30% while it serves: no current data, never promoted.
        ("threshold", "canary-stops"): "rolled back",
        ("compare", "canary-stops"): "rolled back",
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
    stopped = log("canary-stops-s01-c")
    assert "no current data: the canary served no requests in this look's window (30s)" in stopped
    assert "Gitcanary-Requests: canary=none" not in [
        line for line in stopped.splitlines() if "promote" in line
    ]
    slow = log("p99x2-s01-c")
    checks = [line for line in slow.splitlines() if line.startswith("Gitcanary-Check: request-duration")]
    failed = [line for line in checks if line.endswith(" failed")]
    assert len(failed) == 2  # threshold 2
    assert all(" primary=" in line and " p=" in line and " effect=x" in line for line in failed)
    # The threshold judge's checks are Flagger's: values against bounds, no primary in the verdict
    # (the primary's values are measured beside them, in their own trailer, for reviewers).
    threshold = log("p99x2-s01-t").splitlines()
    assert [line for line in threshold if line.startswith("Gitcanary-Check:")]
    assert not [line for line in threshold if line.startswith("Gitcanary-Check:") and " primary=" in line]


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


def test_scenarios_not_in_the_issue_shape_the_traffic() -> None:
    from scipy.stats import lognorm

    bench = load_bench()
    by_name = {s.name: s for s in bench.SCENARIOS}
    diurnal = bench.Run(by_name["diurnal"], "compare", 1)
    assert diurnal.rps(0.0) == pytest.approx(20.0) and diurnal.rps(300.0) == pytest.approx(4.0)
    recovers = bench.Run(by_name["primary-recovers"], "compare", 1)
    assert recovers.error_ratios(10.0) == (0.002, 0.03)
    assert recovers.error_ratios(200.0) == (0.002, 0.002)
    # The tail scenario slows only the slowest 0.5%: below the 0.995 quantile (~337ms at a 300ms
    # p99) the buckets are the healthy ones, and 0.5% of requests land beyond 4x that.
    healthy, tail = bench.bucket_probabilities(300.0), bench.bucket_probabilities(300.0, 4.0)
    assert tail.sum() == pytest.approx(1.0)
    below = bench.BUCKETS.index(250)
    assert tail[: below + 1] == pytest.approx(healthy[: below + 1])
    median = 300.0 / np.exp(2.326 * bench.SIGMA)
    cut = lognorm.ppf(0.995, s=bench.SIGMA, scale=median)
    slow = bench.BUCKETS.index(1000) + 1  # the buckets above 1000ms; 4 * cut is above it
    assert 4 * cut > 1000 and tail[slow:].sum() == pytest.approx(0.005, abs=1e-9)
    assert healthy[slow:].sum() < 1e-4
    assert not by_name["tail-p99.9x4"].counted and by_name["5rps"].extra
