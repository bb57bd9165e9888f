"""`gitcanary demo --metrics graphite`: the example's error-rate MetricTemplate becomes a Graphite
template (render API, answered by the SIMULATED cluster), and the demo still promotes one release
and rolls back the next."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from gitcanary.demo import run_demo
from gitcanary.manifests import yamlio


@pytest.mark.timeout(180)
def test_demo_on_graphite_promotes_then_rolls_back(tmp_path: Path) -> None:
    out = io.StringIO()
    directory = tmp_path / "g"
    code = run_demo(directory, interval=0.5, console=Console(file=out, width=200), metrics="graphite")
    assert code == 0, out.getvalue()
    template = yamlio.load((directory / "apps/metric-templates/error-rate.yaml").read_text())
    assert template["spec"]["provider"]["type"] == "graphite"
    assert template["spec"]["query"].startswith("target=demo.{{ namespace }}.{{ target }}.errors_percent")
    log = subprocess.run(
        ["git", "-C", str(directory), "log", "--format=%s%n%b"], capture_output=True, text=True, check=True
    ).stdout
    # The Graphite-backed check is in the step commits with its value, and in the rollback's reason.
    assert "error-rate 0.1 <= 1 ok" in log, log
    assert "roll back prod/backend 6.1.2 -> 6.1.1" in log


def test_graphite_needs_the_istio_example(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(tmp_path / "x", console=Console(file=out), provider="linkerd", metrics="graphite") == 2
    assert "--metrics 'graphite'" in out.getvalue()
