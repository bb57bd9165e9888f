"""gitcanary.spec.validation: CRD kinds via the shipped schemas, built-in kinds via kubernetes-validate."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from gitcanary.spec.validation import (
    crd_schema,
    schema_known,
    unknown_fields,
    validate_manifests,
    validate_object,
)

DATA = Path(__file__).parent / "data"
FLAGGER = DATA / "fixtures" / "flagger"
EXAMPLE_CANARIES = sorted((FLAGGER / "artifacts" / "examples").glob("*.yaml"))


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def virtual_service(version: str = "v1beta1") -> dict:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "hosts": ["backend"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "backend-primary"}, "weight": 90},
                        {"destination": {"host": "backend-canary"}, "weight": 10},
                    ]
                }
            ],
        },
    }


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend", "namespace": "prod"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "backend"}},
        "template": {
            "metadata": {"labels": {"app": "backend"}},
            "spec": {"containers": [{"name": "backend", "image": "ghcr.io/example/backend:6.1.1"}]},
        },
    },
}


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_valid_virtual_service(version: str) -> None:
    assert validate_object(virtual_service(version)) == []


def test_invalid_virtual_service_names_object_and_fields() -> None:
    vs = virtual_service()
    http = vs["spec"]["http"][0]
    http["route"][1]["weight"] = "ten"
    del http["route"][0]["destination"]["host"]
    http["mirrorPercent"] = -1
    http["retires"] = {"attempts": 3}
    assert validate_object(vs) == [
        "VirtualService prod/backend: spec.http[0].mirrorPercent: -1 is less than the minimum of 0",
        "VirtualService prod/backend: spec.http[0].route[0].destination: 'host' is a required property",
        "VirtualService prod/backend: spec.http[0].route[1].weight: 'ten' is not of type 'integer'",
        "VirtualService prod/backend: spec.http[0].retires: field not declared in schema",
    ]


def test_nullable_fields_accept_null() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["mirrorPercent"] = None
    assert validate_object(vs) == []


def test_destination_rule() -> None:
    rule = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "backend-canary"},
        "spec": {"host": "backend-canary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
    }
    assert validate_object(rule) == []
    rule["spec"]["trafficPolicy"]["tls"]["mode"] = "SOMETIMES"
    (message,) = validate_object(rule)
    assert message.startswith(
        "DestinationRule backend-canary: spec.trafficPolicy.tls.mode: 'SOMETIMES' is not one of"
    )


def test_deployment_with_a_typo_field_is_rejected() -> None:
    deployment = copy.deepcopy(DEPLOYMENT)
    deployment["spec"]["replicass"] = deployment["spec"].pop("replicas")
    assert validate_object(DEPLOYMENT) == []
    assert validate_object(deployment) == [
        "Deployment prod/backend: spec: Additional properties are not allowed ('replicass' was unexpected)"
    ]


def test_deployment_with_a_wrong_type_names_the_field() -> None:
    deployment = copy.deepcopy(DEPLOYMENT)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = 5
    (message,) = validate_object(deployment)
    assert message.startswith(
        "Deployment prod/backend: spec.template.spec.containers[0].image: 5 is not of type"
    )


def test_valid_service_is_accepted() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend-primary", "namespace": "prod"},
        "spec": {
            "selector": {"app": "backend-primary"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    assert validate_object(svc) == []


def test_unknown_kind_gives_one_message() -> None:
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "prod"},
    }
    assert validate_object(widget) == ["Widget prod/w: no schema for apiVersion example.com/v1, kind Widget"]
    assert not schema_known("example.com/v1", "Widget")
    assert schema_known("v1", "Service") and schema_known("flagger.app/v1beta1", "Canary")


def test_crd_group_sharing_a_builtin_prefix_is_not_a_builtin() -> None:
    # kubernetes-validate keys schemas on the group's first label only; "apps.example.com" is not "apps".
    lookalike = {**DEPLOYMENT, "apiVersion": "apps.example.com/v1"}
    assert validate_object(lookalike) == [
        "Deployment prod/backend: no schema for apiVersion apps.example.com/v1, kind Deployment"
    ]
    assert not schema_known("apps.example.com/v1", "Deployment")


def test_missing_kind() -> None:
    assert validate_object({"apiVersion": "v1", "metadata": {"name": "x"}}) == [
        "<no kind> x: apiVersion and kind must be strings"
    ]


@pytest.mark.parametrize("path", EXAMPLE_CANARIES, ids=lambda p: p.name)
def test_flagger_example_canaries_validate_clean(path: Path) -> None:
    assert validate_manifests(load(path)) == []


def test_flagger_podinfo_validates_clean() -> None:
    docs = [d for f in sorted((FLAGGER / "kustomize" / "podinfo").glob("*.yaml")) for d in load(f)]
    workloads = [d for d in docs if "apiVersion" in d]  # kustomization.yaml has no apiVersion/kind
    assert len(workloads) == 2
    assert validate_manifests([*workloads, None]) == []


def test_validate_manifests_collects_every_object() -> None:
    bad_vs = virtual_service()
    bad_vs["spec"]["hosts"] = "backend"
    bad_deployment = copy.deepcopy(DEPLOYMENT)
    bad_deployment["spec"]["template"]["spec"]["containers"][0]["imag"] = "x"
    problems = validate_manifests([bad_vs, None, DEPLOYMENT, bad_deployment])
    assert problems == [
        "VirtualService prod/backend: spec.hosts: 'backend' is not of type 'array'",
        "Deployment prod/backend: spec.template.spec.containers[0]: "
        "Additional properties are not allowed ('imag' was unexpected)",
    ]


def test_canary_analysis_without_a_strategy_names_what_is_missing() -> None:
    canary = load(FLAGGER / "artifacts" / "examples" / "istio-canary.yaml")[0]
    canary["spec"]["analysis"]["stepWieght"] = canary["spec"]["analysis"].pop("stepWeight")
    assert validate_object(canary) == [
        "Canary test/podinfo: spec.analysis: "
        "matches none of the allowed forms ('iterations' is a required property)",
        "Canary test/podinfo: spec.analysis.stepWieght: field not declared in schema",
    ]


def test_unknown_fields_on_a_canary_with_typos() -> None:
    canary = load(FLAGGER / "artifacts" / "examples" / "istio-canary.yaml")[0]
    schema = crd_schema("flagger.app/v1beta1", "Canary")
    assert schema is not None
    assert unknown_fields(canary, schema) == []
    canary["spec"]["analysis"]["foo"] = 1
    canary["spec"]["analysis"]["metrics"][1]["tresholdRange"] = {"max": 500}
    canary["spec"]["servce"] = {}
    canary["metadata"]["labels"] = {"team": "a"}  # metadata is the API server's business, not the CRD's
    assert unknown_fields(canary, schema) == [
        "spec.analysis.metrics[1].tresholdRange",
        "spec.analysis.foo",
        "spec.servce",
    ]


def test_unknown_fields_follows_pruning_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "kept": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"inner": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    },
                    "pods": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": {"type": "object", "properties": {}},
                        },
                    },
                    "empty": {"type": "object"},
                    "quantity": {"x-kubernetes-int-or-string": True},
                },
            }
        },
    }
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {
            "labels": {"a.b/c": "d"},
            "free": {"anything": {"goes": 1}},
            "kept": {"extra": 1, "inner": {"a": "x", "b": "y"}},
            "pods": [{"p": {"x": 1}}],
            "empty": {"z": 1},
            "quantity": "1Gi",
            "weird.key": 1,
        },
        "status": {},
    }
    assert unknown_fields(obj, schema) == [
        "spec.kept.inner.b",
        "spec.pods[0].p.x",
        "spec.empty.z",
        'spec["weird.key"]',
        "status",
    ]


def test_shipped_schemas_equal_the_test_data() -> None:
    """gitcanary ships the same upstream schemas the oracle reads (every served Istio and Flagger version)."""
    for name, kinds in (
        ("istio", {"VirtualService", "DestinationRule"}),
        ("flagger", {"Canary", "MetricTemplate"}),
    ):
        for crd in json.loads((DATA / "crds" / f"{name}.json").read_text()):
            kind = crd["spec"]["names"]["kind"]
            assert kind in kinds
            for version in crd["spec"]["versions"]:
                api_version = f"{crd['spec']['group']}/{version['name']}"
                assert crd_schema(api_version, kind) == version["schema"]["openAPIV3Schema"], api_version
