"""The invariant oracle passes on a correct layout and says plainly what is wrong with a broken one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from oracle import assert_invariant, kustomize_build

NS = "prod"
PRIMARY_IMAGE = "ghcr.io/example/backend:6.1.0"
CANARY_IMAGE = "ghcr.io/example/backend:6.1.1"

USER_KUSTOMIZATION = {
    "apiVersion": "kustomize.config.k8s.io/v1beta1",
    "kind": "Kustomization",
    "namespace": NS,
    "resources": ["deployment.yaml", "hpa.yaml", "canary.yaml"],
    "images": [{"name": "ghcr.io/example/backend", "newTag": "6.1.1"}],
    "replicas": [{"name": "backend", "count": 1}],
}


def deployment(name: str, image: str, replicas: int | None = None) -> dict:
    spec: dict = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "backend", "image": image, "ports": [{"containerPort": 8080}]}]},
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def service(name: str, selects: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": selects}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def routing(primary: int, canary: int) -> list[dict]:
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "backend"},
        "spec": {
            "hosts": ["backend"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "backend-primary"}, "weight": primary},
                        {"destination": {"host": "backend-canary"}, "weight": canary},
                    ]
                }
            ],
        },
    }
    rules = [
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": name},
            "spec": {"host": name},
        }
        for name in ("backend-primary", "backend-canary")
    ]
    return [vs, *rules]


HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "backend"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "minReplicas": 2,
        "maxReplicas": 4,
    },
}

CANARY = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "backend"},
    "spec": {
        "provider": "istio",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "autoscalerRef": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "backend",
        },
        "service": {"port": 80, "targetPort": 8080},
        "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
    },
}


def write(path: Path, *docs: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def make_tree(root: Path, *, weights: tuple[int, int] | None = (90, 10)) -> Path:
    """apps/backend (the user's), apps/backend-gitcanary (generated), apps/kustomization.yaml (both)."""
    apps = root / "apps"
    write(apps / "backend" / "kustomization.yaml", USER_KUSTOMIZATION)
    write(apps / "backend" / "deployment.yaml", deployment("backend", "ghcr.io/example/backend:6.0.0", 2))
    write(apps / "backend" / "hpa.yaml", HPA)
    write(apps / "backend" / "canary.yaml", CANARY)
    generated = apps / "backend-gitcanary"
    files = ["backend-primary.yaml", "services.yaml"]
    write(generated / "backend-primary.yaml", deployment("backend-primary", PRIMARY_IMAGE))
    services = [service("backend-primary", "backend-primary"), service("backend-canary", "backend")]
    if weights is not None:
        services.insert(0, service("backend", "backend-primary"))
        write(generated / "routing.yaml", *routing(*weights))
        files.append("routing.yaml")
    write(generated / "services.yaml", *services)
    write(generated / "kustomization.yaml", {"namespace": NS, "resources": files})
    write(apps / "kustomization.yaml", {"resources": ["backend", "backend-gitcanary"]})
    return apps


def check(apps: Path, **overrides: object) -> None:
    expected: dict = {
        "namespace": NS,
        "target": "backend",
        "service": "backend",
        "primary_images": {"backend": PRIMARY_IMAGE},
        "canary_images": {"backend": CANARY_IMAGE},
        "canary_replicas": 1,
        "weights": (90, 10),
    }
    expected.update(overrides)
    assert_invariant(kustomize_build(apps), **expected)


def failure(apps: Path, **overrides: object) -> str:
    with pytest.raises(AssertionError) as caught:
        check(apps, **overrides)
    return str(caught.value)


def edit(path: Path, change) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    change(docs)
    write(path, *docs)


def test_passes_on_a_correct_tree(tmp_path: Path) -> None:
    check(make_tree(tmp_path))


def test_passes_before_routing_is_switched(tmp_path: Path) -> None:
    check(make_tree(tmp_path, weights=None), weights=None)


def test_virtual_service_before_the_switch_fails(tmp_path: Path) -> None:
    message = failure(make_tree(tmp_path), weights=None)
    assert "VirtualService prod/backend exists, but routing should not be switched yet" in message


def test_wrong_weight_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    edit(
        apps / "backend-gitcanary" / "routing.yaml",
        lambda docs: docs[0]["spec"]["http"][0]["route"][1].update(weight=20),
    )
    message = failure(apps)
    assert "VirtualService prod/backend: spec.http[0].route weights are" in message
    assert "'backend-canary': 20" in message and "'backend-canary': 10" in message


def test_primary_image_rewritten_by_the_images_transformer_fails(tmp_path: Path) -> None:
    # The mistake DESIGN warns about: the generated dir accumulated by the user's kustomization.
    apps = make_tree(tmp_path)
    edit(
        apps / "backend" / "kustomization.yaml",
        lambda docs: docs[0]["resources"].append("../backend-gitcanary"),
    )
    write(apps / "kustomization.yaml", {"resources": ["backend"]})
    message = failure(apps)
    assert f"Deployment prod/backend-primary: images are {{'backend': '{CANARY_IMAGE}'}}" in message
    assert "(1 problems):" in message  # one problem, listed


def test_wrong_canary_replicas_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    assert "Deployment prod/backend: spec.replicas is 1, expected 0" in failure(apps, canary_replicas=0)


def test_schema_invalid_objects_fail(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    generated = apps / "backend-gitcanary"
    edit(generated / "routing.yaml", lambda docs: docs[1]["spec"].pop("host"))
    edit(generated / "backend-primary.yaml", lambda docs: docs[0]["spec"].update(replicass=2))
    message = failure(apps)
    assert "DestinationRule prod/backend-primary: spec: 'host' is a required property" in message
    assert (
        "Deployment prod/backend-primary: spec: Additional properties are not allowed ('replicass'" in message
    )


def test_undeclared_canary_field_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    edit(apps / "backend" / "canary.yaml", lambda docs: docs[0]["spec"]["analysis"].update(stepWieght=5))
    assert "Canary prod/backend: spec.analysis.stepWieght: field not declared in schema" in failure(apps)


def test_unknown_kind_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    write(apps / "backend-gitcanary" / "widget.yaml", widget)
    edit(
        apps / "backend-gitcanary" / "kustomization.yaml",
        lambda docs: docs[0]["resources"].append("widget.yaml"),
    )
    assert "Widget prod/w: unknown kind example.com/v1 Widget" in failure(apps)


def test_primary_selecting_the_target_pods_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)

    def widen(docs: list[dict]) -> None:
        docs[0]["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}

    edit(apps / "backend-gitcanary" / "backend-primary.yaml", widen)
    assert "Deployment prod/backend-primary: spec.selector" in failure(apps)
    assert "also selects the pods of Deployment prod/backend" in failure(apps)


def test_service_selecting_the_wrong_pods_fails(tmp_path: Path) -> None:
    apps = make_tree(tmp_path)
    edit(
        apps / "backend-gitcanary" / "services.yaml",
        lambda docs: docs[0]["spec"].update(selector={"app": "backend"}),
    )
    message = failure(apps)
    assert "Service prod/backend: spec.selector {'app': 'backend'} does not select the pods of" in message


def test_missing_objects_are_named(tmp_path: Path) -> None:
    message = failure(make_tree(tmp_path), target="frontend", service="frontend")
    for missing in (
        "Deployment prod/frontend ",
        "Deployment prod/frontend-primary ",
        "Service prod/frontend-canary ",
    ):
        assert missing + "is missing" in message


def test_kustomize_build_reports_kubectl_stderr(tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", {"resources": ["nope.yaml"]})
    with pytest.raises(RuntimeError, match="nope.yaml"):
        kustomize_build(tmp_path)


def test_the_oracle_imports_nothing_of_gitcanary() -> None:
    """docs/oracle.md: `tests/oracle.py` "never imports gitcanary", nor does any test module it
    imports: the modules it reaches are read with ast, not run."""
    tests = Path(__file__).resolve().parent
    seen: set[str] = set()
    todo = ["oracle"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((tests / f"{name}.py").read_text())):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            for module in modules:
                top = module.split(".")[0]
                assert top != "gitcanary", f"tests/{name}.py imports {module}"
                if (tests / f"{top}.py").is_file():
                    todo.append(top)
    assert "oracle" in seen
