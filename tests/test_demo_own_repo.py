"""`gitcanary demo --repo PATH`: the SIMULATED cluster against a Flagger repository of one's own.

The repository is Flagger's own podinfo (kustomize) with its istio-canary example as the Canary,
unedited but for one MetricTemplate the simulator does not know (a 404 percentage): a real
`gitcanary` process must promote a healthy release and roll back a bad one, print each step it
commits, answer the template against its thresholdRange, and leave the user's repository as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, git

from gitcanary.manifests import yamlio

FLAGGER = Path(__file__).parent / "data" / "fixtures" / "flagger"
TEMPLATE = """\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: not-found-percentage
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: |
    100 - sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",
      destination_workload="{{ target }}", response_code!="404"}[{{ interval }}]))
    / sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",
      destination_workload="{{ target }}"}[{{ interval }}])) * 100
"""


def flagger_repo(base: Path) -> Path:
    repo = base / "mine"
    shutil.copytree(FLAGGER / "kustomize" / "podinfo", repo / "podinfo")
    canary = repo / "podinfo" / "canary.yaml"
    shutil.copy(FLAGGER / "artifacts" / "examples" / "istio-canary.yaml", canary)
    (repo / "podinfo" / "not-found.yaml").write_text(TEMPLATE)
    text = canary.read_text()
    doc = yamlio.load(text)
    doc["spec"]["analysis"]["metrics"].append(
        {"name": "not-found-percentage", "templateRef": {"name": "not-found-percentage"},
         "thresholdRange": {"max": 5}, "interval": "1m"}
    )  # fmt: skip
    canary.write_text(yamlio.dump(doc, like=text))
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "mine", cwd=repo)
    return repo


def test_demo_runs_my_own_flagger_repository(tmp_path: Path) -> None:
    mine = flagger_repo(tmp_path)
    before = (git("rev-parse", "HEAD", cwd=mine), git("status", "--porcelain", cwd=mine))
    out = tmp_path / "demo" / "copy"
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "demo", "--repo", str(mine), "--speed", "0.5", "--dir", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    shown = proc.stdout
    # Each step it commits is printed; the template is answered against its bounds both ways.
    assert "finish test/podinfo promotion to 6.0.0-demo-good" in shown
    assert "roll back test/podinfo 6.0.0-demo-bad -> 6.0.0-demo-good" in shown
    assert "not-found-percentage 2.5 <= 5 ok" in shown and "not-found-percentage 10 > 5 failed" in shown
    assert (
        "webhooks removed, nothing here serves them: conformance-test (pre-rollout), load-test (rollout)"
        in (shown)
    )
    # The copy's server holds the whole story; the user's repository is untouched.
    subjects = git("log", "--format=%s", "main", cwd=out.with_name("copy.remote.git")).splitlines()
    assert (
        subjects[0]
        == "gitcanary: roll back test/podinfo 6.0.0-demo-bad -> 6.0.0-demo-good: "
        + (subjects[0].split(": ", 2)[2])
    )
    assert any(s.startswith("gitcanary: finish test/podinfo promotion") for s in subjects)
    assert (git("rev-parse", "HEAD", cwd=mine), git("status", "--porcelain", cwd=mine)) == before
    image = "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert image in (mine / "podinfo" / "deployment.yaml").read_text()


def test_demo_says_which_canary_when_there_are_several(tmp_path: Path) -> None:
    mine = flagger_repo(tmp_path)
    other = mine / "podinfo" / "canary-b.yaml"
    other.write_text(
        (mine / "podinfo" / "canary.yaml").read_text().replace("namespace: test", "namespace: b", 1)
    )
    git("add", "-A", cwd=mine)
    git("-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "two", cwd=mine)
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "demo", "--repo", str(mine), "--dir", str(tmp_path / "d" / "c")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "2 canaries (b/podinfo, test/podinfo): choose one with --canary NAMESPACE/NAME" in proc.stdout
