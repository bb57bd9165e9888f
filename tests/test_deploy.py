"""deploy/ builds with real kustomize, every object validates, and gitcanary's RBAC is read-only.

The Dockerfile is checked by reading it (no docker here): multi-stage, wheels, git, non-root.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT
from oracle import schema_problems

from gitcanary.cluster import argocd, fleet, flux
from gitcanary.manifests import kustomize

DEPLOY = ROOT / "deploy"
READ_VERBS = {"get", "list", "watch"}
# Exactly what the cluster observer reads (gitcanary/cluster): nothing more may be granted.
OBSERVED = {
    (flux.GROUP, flux.PLURAL),
    (fleet.GROUP, fleet.GITREPOS),
    (fleet.GROUP, fleet.BUNDLES),
    ("apps", "deployments"),
    (argocd.GROUP, argocd.PLURAL),
    ("", "pods"),  # the dashboard's pods and images (service/dashboard_cluster.py)
}


@functools.cache
def built() -> list[dict[str, Any]]:
    return kustomize.build(DEPLOY, display="deploy")


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in built() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_every_object_validates() -> None:
    kinds = sorted(o["kind"] for o in built())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Namespace",
        "Service",
        "ServiceAccount",
    ]
    for obj in built():
        assert schema_problems(obj) == [], obj["kind"]
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "gitcanary", obj["kind"]


def test_rbac_is_read_only_and_only_what_is_observed() -> None:
    roles = [o for o in built() if o["kind"] in ("ClusterRole", "Role")]
    assert [r["metadata"]["name"] for r in roles] == ["gitcanary-reader"]
    granted = set()
    for rule in roles[0]["rules"]:
        assert set(rule["verbs"]) <= READ_VERBS, rule
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule
        granted |= {(group, resource) for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == OBSERVED
    binding = one("ClusterRoleBinding", "gitcanary-reader")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "gitcanary-reader",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gitcanary", "namespace": "gitcanary"}]


def test_service_and_deployment() -> None:
    service = one("Service", "gitcanary")
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "gitcanary"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    deployment = one("Deployment", "gitcanary")
    pod = deployment["spec"]["template"]["spec"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert pod["serviceAccountName"] == "gitcanary"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # Credentials are references to Secrets, never values: no Secret object ships in deploy/.
    assert not [o for o in built() if o["kind"] == "Secret"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    secrets |= {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets == {"gitcanary-git", "gitcanary-forge"}
    configmap = next(o for o in built() if o["kind"] == "ConfigMap")
    assert container["envFrom"] == [
        {"configMapRef": {"name": configmap["metadata"]["name"]}},
        # Notification addresses for AlertProvider secretRefs: a reference, never a value.
        {"secretRef": {"name": "gitcanary-alerts", "optional": True}},
    ]


def test_deployment_args_are_options_of_run() -> None:
    (container,) = one("Deployment", "gitcanary")["spec"]["template"]["spec"]["containers"]
    help_text = subprocess.run(
        [sys.executable, "-m", "gitcanary", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "400"},  # no "GITCANARY_PROMETHE…" cut by a narrow terminal
    ).stdout
    assert container["args"][0] == "run"
    for flag in [a for a in container["args"] if a.startswith("--")]:
        assert flag in help_text, flag
    configmap = next(o for o in built() if o["kind"] == "ConfigMap")
    for variable in configmap["data"]:
        assert variable in help_text, variable  # each one is the envvar of a run option


def test_dockerfile_builds_a_small_non_root_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    # Debian's own Python, the base scripts/build_image.py rebuilds from Debian's packages here.
    assert len(stages) == 2 and all(s == "debian:bookworm-slim" for s in stages)
    assert "pip wheel" in text and "sh /tmp/install.sh /tmp/wheels" in text
    recipe = (ROOT / "scripts/image/install.sh").read_text()
    assert re.search(r"apt-get install[^\n]*\bgit\b", recipe)
    (user,) = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    assert re.search(r'^ENTRYPOINT \["gitcanary"\]', text, re.MULTILINE)


def test_the_replicas_component_grants_leases_only(tmp_path: Path) -> None:
    """deploy/replicas/: more pods, leader election on, and a Role on leases in gitcanary's namespace
    with exactly the verbs the elector uses; the ClusterRole stays read-only."""
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [../deploy]\ncomponents: [../deploy/replicas]\n")
    objects = kustomize.build(overlay, display="overlay")
    for obj in objects:
        assert not schema_problems(obj), obj["kind"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert config["data"]["GITCANARY_LEADER_ELECTION"] == "on"
    assert built_config()["GITCANARY_LEADER_ELECTION"] == "off"  # the base: one replica, no Lease
    (role,) = [o for o in objects if o["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "gitcanary"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"],
        }
    ]
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == "gitcanary"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "gitcanary-leases",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gitcanary", "namespace": "gitcanary"}]
    (cluster_role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert all(set(rule["verbs"]) <= READ_VERBS for rule in cluster_role["rules"])


def built_config() -> dict[str, str]:
    return next(o for o in built() if o["kind"] == "ConfigMap")["data"]
