"""The migration guide's checkable steps (docs/migrate-from-flagger.md), on the kmock emulator seeded with
what a running Flagger leaves: its controller, the Canary object, and the -primary objects it owns.

The emulator does not garbage-collect; the steps people take with kubectl are applied to it the way the API
server applies them (`--cascade=orphan` deletes the Canary and strips the ownerReferences of its dependents),
and `gitcanary migrate` is run before and after each step through the real kubernetes client.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, git
from kube_emulator import Emulator, deployment, running_emulator
from test_cli import gitcanary

from gitcanary.manifests import yamlio

CANARIES = "flagger.app/v1beta1/canaries"
SERVICES = "v1/services"
HPAS = "autoscaling/v2/horizontalpodautoscalers"
VIRTUALSERVICES = "networking.istio.io/v1beta1/virtualservices"
DESTINATIONRULES = "networking.istio.io/v1beta1/destinationrules"
DEPLOYMENTS = "apps/v1/deployments"
EXTRA = {
    CANARIES: "Canary",
    SERVICES: "Service",
    HPAS: "HorizontalPodAutoscaler",
    VIRTUALSERVICES: "VirtualService",
    DESTINATIONRULES: "DestinationRule",
}


@pytest.fixture
def cluster() -> Iterator[Emulator]:
    with running_emulator(EXTRA) as emulator:
        yield emulator


def owned(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as Flagger creates it: controlled by the Canary prod/backend."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": "backend",
            "uid": "2f9c0c1e-1111-4a4a-9a9a-000000000001",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return obj


def service(name: str, selector: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"selector": {"app": selector}, "ports": [{"name": "http", "port": 80, "targetPort": 9898}]},
    }


def flaggers_objects() -> list[tuple[str, dict[str, Any]]]:
    """What Flagger made for the istio example's Canary prod/backend (names as Flagger gives them)."""
    primary = deployment("backend-primary")
    primary["spec"]["selector"] = {"matchLabels": {"app": "backend-primary"}}
    primary["spec"]["template"]["metadata"]["labels"] = {"app": "backend-primary"}
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "backend-primary", "namespace": "prod"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend-primary"},
            "minReplicas": 2,
            "maxReplicas": 4,
        },
    }
    route = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "hosts": ["backend"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "backend-primary"}, "weight": 100},
                        {"destination": {"host": "backend-canary"}, "weight": 0},
                    ]
                }
            ],
        },
    }
    rules = [
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"host": name},
        }
        for name in ("backend-primary", "backend-canary")
    ]
    return [
        (DEPLOYMENTS, owned(primary)),
        (HPAS, owned(hpa)),
        (SERVICES, owned(service("backend", "backend-primary"))),
        (SERVICES, owned(service("backend-primary", "backend-primary"))),
        (SERVICES, owned(service("backend-canary", "backend"))),
        (VIRTUALSERVICES, owned(route)),
        *[(DESTINATIONRULES, owned(rule)) for rule in rules],
    ]


def migrate(repo: Path, kubeconfig: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = gitcanary(
        "migrate", str(repo), "--kubeconfig", str(kubeconfig), "-o", "json", cwd=repo, check=False
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def blocking(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["blocking"]]


def test_the_guides_steps_on_a_cluster_flagger_runs(cluster: Emulator, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "istio", repo)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "a Flux + Flagger repository", cwd=repo)
    kubeconfig = cluster.kubeconfig(tmp_path)

    flagger = deployment("flagger", namespace="flagger-system", replicas=1)
    cluster.put(DEPLOYMENTS, flagger)
    canary = yamlio.safe_load_all((repo / "apps/backend/canary.yaml").read_text()).__next__()
    canary["metadata"]["uid"] = "2f9c0c1e-1111-4a4a-9a9a-000000000001"
    cluster.put(CANARIES, canary)
    for resource, obj in flaggers_objects():
        cluster.put(resource, obj)

    # Before: every hazard of the guide is named, and the command fails.
    code, findings = migrate(repo, kubeconfig)
    problems = blocking(findings)
    assert code == 1
    assert any("Flagger is running: flagger-system/flagger" in p for p in problems)
    assert any("kubectl delete canary backend -n prod --cascade=orphan" in p for p in problems)
    owned_names = {p.split(" is owned")[0] for p in problems if " is owned by Canary backend" in p}
    assert owned_names == {
        "Deployment prod/backend-primary",
        "HorizontalPodAutoscaler prod/backend-primary",
        "Service prod/backend",
        "Service prod/backend-primary",
        "Service prod/backend-canary",
        "VirtualService prod/backend",
        "DestinationRule prod/backend-primary",
        "DestinationRule prod/backend-canary",
    }

    # Step 1: stop Flagger (kubectl -n flagger-system scale deploy/flagger --replicas=0).
    cluster.put(DEPLOYMENTS, deployment("flagger", namespace="flagger-system", replicas=0))
    assert not any("Flagger is running" in p for p in blocking(migrate(repo, kubeconfig)[1]))

    # Step 2: kubectl delete canary backend -n prod --cascade=orphan: the Canary goes, its dependents
    # stay without their ownerReferences (what the API server's orphan finalizer does).
    cluster.delete(CANARIES, "prod", "backend")
    for resource, obj in flaggers_objects():
        del obj["metadata"]["ownerReferences"]
        cluster.put(resource, obj)
    code, findings = migrate(repo, kubeconfig)
    assert code == 0 and blocking(findings) == []
    # Every object Flagger made is one gitcanary generates under the same name: adopted in place.
    adopted = {f["message"].split(":")[0] for f in findings if "adopted in place" in f["message"]}
    assert adopted == owned_names
    # Flux applying the Canary manifest again makes a new Canary object that owns nothing: not blocking.
    canary["metadata"]["uid"] = "2f9c0c1e-1111-4a4a-9a9a-000000000002"
    cluster.put(CANARIES, canary)
    code, findings = migrate(repo, kubeconfig)
    assert code == 0 and any("owns none of the generated objects" in f["message"] for f in findings)

    # A primary whose selector differs cannot be adopted (spec.selector is immutable).
    primary = next(obj for resource, obj in flaggers_objects() if obj["kind"] == "Deployment")
    del primary["metadata"]["ownerReferences"]
    primary["spec"]["selector"] = {"matchLabels": {"app": "backend-primary", "release": "old"}}
    primary["spec"]["template"]["metadata"]["labels"] = primary["spec"]["selector"]["matchLabels"]
    cluster.put(DEPLOYMENTS, primary)
    code, findings = migrate(repo, kubeconfig)
    assert code == 1
    assert any("Deployment prod/backend-primary: live spec.selector" in p for p in blocking(findings))

    cluster.assert_read_only()  # the check only reads
    assert git("status", "--porcelain", cwd=repo) == ""  # and writes nothing in the checkout
