"""deploy/monitoring: the dashboard's queries use only metrics gitcanary exports, and are valid PromQL;
the ServiceMonitor selects Service gitcanary's port http. Built with real kustomize, checked with
real promtool."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT
from oracle import kustomize_build

from gitcanary.manifests import yamlio
from gitcanary.service.metrics import Metrics

MONITORING = ROOT / "deploy" / "monitoring"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def dashboard_queries(dashboard: dict) -> list[str]:
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


@pytest.fixture(scope="module")
def built() -> list[dict]:
    return kustomize_build(MONITORING)


def test_the_dashboard_configmap_holds_the_raw_json_and_its_queries_use_exported_metrics(
    built: list[dict],
) -> None:
    [configmap] = [obj for obj in built if obj["kind"] == "ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "gitcanary"
    raw = (MONITORING / "gitcanary-dashboard.json").read_text()
    assert configmap["data"]["gitcanary-dashboard.json"] == raw
    dashboard = json.loads(raw)
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 12
    used = {name for query in queries for name in re.findall(r"\bgitcanary_[a-z_]+\b", query)}
    exported = exported_names()
    assert used - exported == set(), (
        f"the dashboard queries metrics gitcanary does not export: {used - exported}"
    )
    # Every family is on the dashboard except the build info.
    families = {f.name for f in Metrics().registry.collect()} - {"gitcanary_info"}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    dashboard = json.loads((MONITORING / "gitcanary-dashboard.json").read_text())
    rules = []
    for index, query in enumerate(dashboard_queries(dashboard)):
        # Grafana's variables, as Grafana expands "All".
        expr = query.replace("$namespace", ".*").replace("$canary", ".*")
        # Grafana's label_values(selector, label) runs the selector as a series query.
        expr = re.sub(r"^label_values\((.*), \w+\)$", r"\1", expr)
        rules.append({"record": f"gitcanary:dashboard_query_{index}", "expr": expr})
    path = tmp_path / "rules.yaml"
    path.write_text(yamlio.dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_servicemonitor_scrapes_service_gitcanary_port_http(built: list[dict]) -> None:
    [monitor] = [obj for obj in built if obj["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "gitcanary"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gitcanary"]}
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
