"""`gitcanary demo --provider gateway-api|linkerd|nginx`: the whole demo against each example, and
the SIMULATED cluster's reading of each provider's routing object and builtin queries."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_demo import MODEL, _log

from gitcanary.analysis import builtin_metric, render_query
from gitcanary.demo import run_demo
from gitcanary.demo.providers import destinations
from gitcanary.demo.simulator import Query, recognize
from gitcanary.manifests import yamlio
from gitcanary.routers import router_for
from gitcanary.spec.models import Canary

ROOT = Path(__file__).resolve().parent.parent


def _sent(provider: str, name: str) -> str:
    metric = builtin_metric(provider, name)
    assert metric is not None
    return " ".join(render_query(metric.query, MODEL).split())


@pytest.mark.parametrize(
    ("provider", "success", "latency"),
    [
        (
            "linkerd",
            Query("success-rate", "=~", "backend", "prod", 4.0),
            Query("latency-p99", "=~", "backend", "prod", 4.0),
        ),
        # ingress-nginx counts every request through the Ingress, primary and canary alike.
        (
            "nginx",
            Query("success-rate", "=~", ".*", "prod", 4.0),
            Query("latency-p99", "=~", ".*", "prod", 4.0),
        ),
        # Contour: Envoy's counters of the canary service's upstream cluster.
        (
            "contour",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "traefik",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "gloo",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "kuma",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "apisix",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "skipper",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        (
            "appmesh:v1beta2",
            Query("success-rate", "=", "backend", "prod", 4.0),
            Query("latency-p99", "=", "backend", "prod", 4.0),
        ),
        # Gateway API's builtins are Istio's (Flagger's default observer).
        (
            "gatewayapi:v1",
            Query("success-rate", "=~", "backend", "prod", 4.0),
            Query("latency-p99", "=~", "backend", "prod", 4.0),
        ),
    ],
)
def test_simulator_recognizes_each_providers_builtins(provider: str, success: Query, latency: Query) -> None:
    assert recognize(_sent(provider, "request-success-rate")) == success
    assert recognize(_sent(provider, "request-duration")) == latency


@pytest.mark.parametrize(
    "example",
    ["gateway-api", "linkerd", "nginx", "contour", "traefik", "gloo", "kuma", "apisix", "skipper", "appmesh"],
)
def test_simulator_reads_the_weights_each_router_writes(example: str) -> None:
    doc = yamlio.load((ROOT / "examples" / example / "apps/backend/canary.yaml").read_text())
    canary = Canary.model_validate(doc)
    user_objects = {"apisix": "apisixroute.yaml", "skipper": "ingress.yaml"}
    user_object = (
        f"{example}/apps/backend/{user_objects[example]}"
        if example in user_objects
        else ("nginx/apps/backend/ingress.yaml")
    )
    ingress = yamlio.load((ROOT / "examples" / user_object).read_text())
    ingress["metadata"]["namespace"] = "prod"
    objects = router_for(canary, "canary.yaml").render(canary, 70, 30, ingress=ingress)
    # NGINX: the person's Ingress sends the rest to the apex Service (which selects the primary).
    primary = "backend" if example == "nginx" else "backend-primary"
    assert destinations(objects, "backend") == [(primary, 70), ("backend-canary", 30)]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "provider",
    ["gateway-api", "linkerd", "nginx", "contour", "traefik", "gloo", "kuma", "apisix", "skipper", "appmesh"],
)
def test_demo_runs_against_each_example(provider: str, tmp_path: Path) -> None:
    out = io.StringIO()
    directory = tmp_path / "repo"
    code = run_demo(directory, interval=0.3, console=Console(file=out, width=200), provider=provider)
    assert code == 0, out.getvalue()
    subjects = [subject for subject, _ in _log(directory)]
    assert subjects[0] == f"demo: seed config repo from examples/{provider}"
    assert any(s.startswith("gitcanary: promote prod/backend 6.1.0 -> 6.1.1") for s in subjects)
    assert any(s.startswith("gitcanary: roll back prod/backend 6.1.2 -> 6.1.1") for s in subjects)
    assert "request-success-rate" in out.getvalue() and "SIMULATED" in out.getvalue()
    kinds = {
        "gateway-api": "HTTPRoute",
        "linkerd": "TrafficSplit",
        "nginx": "Ingress",
        "contour": "HTTPProxy",
        "traefik": "TraefikService",
        "gloo": "RouteTable",
        "kuma": "TrafficRoute",
        "apisix": "ApisixRoute",
        "skipper": "Ingress",
        "appmesh": "VirtualRouter",
    }
    routing = (directory / "apps/backend-gitcanary/routing.yaml").read_text()
    assert f"kind: {kinds[provider]}" in routing


def test_demo_refuses_an_unknown_provider(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "demo", "--provider", "nomesh", "--dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "choose one of istio, gateway-api, linkerd, nginx" in proc.stdout + proc.stderr
