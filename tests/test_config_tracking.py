"""Config tracking as Flagger's pkg/canary/config_tracker.go does it, written to Git.

Table tests of what a pod template references and what gets a `-primary` copy (SOPS, ExternalSecret,
SealedSecret, disabled, registry Secrets), then a real repository seeded from examples/istio with a
plain ConfigMap and a plain Secret as manifests: `gitcanary init`, a person's edit, a rollback's
write-back, checked with real kustomize and the oracle.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, git
from oracle import assert_invariant, kustomize_build, reference_problems

from gitcanary.commands import operations
from gitcanary.commands.validate import validate
from gitcanary.manifests import config_tracking as ct
from gitcanary.manifests.generate import FileWriter, Layout, changed_configs
from gitcanary.manifests.target import render_target
from gitcanary.routers import router_for

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend"},
    "spec": {
        "template": {
            "spec": {
                "volumes": [
                    {"name": "a", "configMap": {"name": "cm-volume"}},
                    {"name": "b", "secret": {"secretName": "secret-volume"}},
                    {
                        "name": "c",
                        "projected": {
                            "sources": [
                                {"configMap": {"name": "cm-projected"}},
                                {"secret": {"name": "secret-projected"}},
                            ]
                        },
                    },
                ],
                "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
                "containers": [
                    {
                        "name": "app",
                        "env": [
                            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "x"}}},
                            {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "secret-env", "key": "y"}}},
                            {"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "envFrom": [{"secretRef": {"name": "secret-envfrom"}}],
                    }
                ],
            }
        }
    },
}


def config_map(name: str, **annotations: str) -> dict:
    meta: dict = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": name}}


def secret(name: str, type_: str = "Opaque", **extra: object) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_, **extra}


def test_every_reference_flagger_tracks_is_found_init_containers_included() -> None:
    assert sorted(ct.references(DEPLOYMENT)) == [
        ("ConfigMap", "cm-env"),
        ("ConfigMap", "cm-init"),
        ("ConfigMap", "cm-projected"),
        ("ConfigMap", "cm-volume"),
        ("Secret", "secret-env"),
        ("Secret", "secret-envfrom"),
        ("Secret", "secret-projected"),
        ("Secret", "secret-volume"),
    ]


def test_the_primary_points_at_the_copies_and_only_at_tracked_ones() -> None:
    import copy

    primary = copy.deepcopy(DEPLOYMENT)
    ct.point_at_copies(primary, {("ConfigMap", "cm-env"): "cm-env-primary", ("Secret", "secret-volume"): "x"})
    refs = ct.references(primary)
    assert ("ConfigMap", "cm-env-primary") in refs and ("Secret", "x") in refs
    assert ("ConfigMap", "cm-volume") in refs  # untracked: left as it is


def test_disabled_annotation_registry_secrets_and_missing_objects_are_not_tracked() -> None:
    objects = [
        config_map("cm-volume", **{ct.TRACKING_ANNOTATION: "disabled"}),
        config_map("cm-env"),
        secret("secret-env", "kubernetes.io/dockerconfigjson", data={".dockerconfigjson": "e30="}),
        secret("secret-volume", "kubernetes.io/tls", data={"tls.crt": "YQ==", "tls.key": "Yg=="}),
    ]
    tracking = ct.track(objects, DEPLOYMENT, "prod")
    assert sorted(t.key for t in tracking.tracked) == ["ConfigMap/cm-env", "Secret/secret-volume"]
    assert tracking.shared == ()


SOPS_KINDS = pytest.mark.parametrize(
    ("make", "name"), [(secret, "secret-env"), (lambda name, **extra: config_map(name) | extra, "cm-env")]
)


@SOPS_KINDS
def test_sops_object_is_copied_as_it_is_but_for_its_name_when_its_mac_covers_encrypted_values_only(
    make: Any, name: str
) -> None:
    sops = make(
        name,
        data={"y": "ENC[AES256_GCM,data:abc=,type:str]"},
        sops={"mac": "ENC[...]", "mac_only_encrypted": True},
    )
    (tracked,) = ct.track([sops], DEPLOYMENT, "prod").tracked
    copied = ct.primary_copy(tracked, "prod")
    assert copied["metadata"] == {"name": f"{name}-primary", "namespace": "prod"}
    assert {k: v for k, v in copied.items() if k != "metadata"} == {
        k: v for k, v in sops.items() if k != "metadata"
    }


@SOPS_KINDS
def test_sops_object_whose_mac_covers_its_name_stays_shared_with_a_warning(make: Any, name: str) -> None:
    """SOPS's default MAC covers unencrypted values, metadata.name too: a renamed copy won't decrypt.
    A ConfigMap can be SOPS-encrypted as a Secret can."""
    sops = make(name, data={"y": "ENC[AES256_GCM,data:abc=,type:str]"}, sops={"mac": "ENC[...]"})
    tracking = ct.track([sops], DEPLOYMENT, "prod", "apps/backend/canary.yaml: ")
    assert tracking.tracked == ()
    (warning,) = tracking.shared
    assert warning.startswith(f"apps/backend/canary.yaml: {sops['kind']} {name} is SOPS-encrypted with a MAC")


def test_external_secret_copy_writes_the_primary_secret() -> None:
    external = {
        "apiVersion": "external-secrets.io/v1beta1",
        "kind": "ExternalSecret",
        "metadata": {"name": "db"},
        "spec": {"target": {"name": "secret-envfrom"}, "data": [{"secretKey": "p"}]},
    }
    (tracked,) = ct.track([external], DEPLOYMENT, "prod").tracked
    assert tracked.key == "Secret/secret-envfrom"
    copied = ct.primary_copy(tracked, "prod")
    assert copied["metadata"]["name"] == "db-primary"
    assert copied["spec"]["target"]["name"] == "secret-envfrom-primary"
    assert external["spec"]["target"]["name"] == "secret-envfrom"  # the user's object is untouched
    # What the copy makes is what the primary references, and the oracle counts it as present.
    primary = {**DEPLOYMENT, "metadata": {"name": "p", "namespace": "prod"}}
    import copy as copying

    primary = copying.deepcopy(primary)
    ct.point_at_copies(primary, {("Secret", "secret-envfrom"): "secret-envfrom-primary"})
    assert not [p for p in reference_problems([primary, copied]) if "secret-envfrom" in p]


def test_strict_sealed_secret_stays_shared_with_a_warning_naming_it() -> None:
    sealed = {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "secret-projected"},
        "spec": {"encryptedData": {"k": "AgB..."}},
    }
    tracking = ct.track([sealed], DEPLOYMENT, "prod", "apps/backend/canary.yaml: ")
    assert tracking.tracked == ()
    (warning,) = tracking.shared
    assert warning.startswith("apps/backend/canary.yaml: SealedSecret secret-projected has strict scope")
    wide = {
        **sealed,
        "metadata": {"name": "secret-projected", "annotations": {ct.SEALED_NAMESPACE_WIDE: "true"}},
    }
    (tracked,) = ct.track([wide], DEPLOYMENT, "prod").tracked
    assert (
        ct.primary_copy(tracked, "prod")["spec"]["template"]["metadata"]["name"] == "secret-projected-primary"
    )


def test_revision_covers_config_content_and_is_the_template_hash_without_config() -> None:
    assert ct.revision_hash("abc", ct.Tracking()) == "abc"
    one = ct.track([config_map("cm-env")], DEPLOYMENT, "prod")
    changed = config_map("cm-env")
    changed["data"]["k"] = "other"
    two = ct.track([changed], DEPLOYMENT, "prod")
    assert ct.revision_hash("abc", one) != ct.revision_hash("abc", two) != "abc"


# -- a real repository: plain manifests, init, a person's edit, a rollback's write-back -----------

SETTINGS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: backend-settings
data:
  # the level podinfo logs at
  LEVEL: info
  COLOR: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: backend-db
stringData:
  PASSWORD: first-password-value
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "istio", root)
    app = root / "apps/backend"
    (app / "settings.yaml").write_text(SETTINGS)
    kustomization = (app / "kustomization.yaml").read_text()
    (app / "kustomization.yaml").write_text(
        kustomization.replace("  - canary.yaml\n", "  - canary.yaml\n  - settings.yaml\n")
    )
    deployment = (app / "deployment.yaml").read_text()
    deployment = deployment.replace(
        "          envFrom:\n",
        "          env:\n"
        "            - name: DB_PASSWORD\n"
        "              valueFrom:\n"
        "                secretKeyRef:\n"
        "                  name: backend-db\n"
        "                  key: PASSWORD\n"
        "          envFrom:\n"
        "            - configMapRef:\n"
        "                name: backend-settings\n",
    )
    (app / "deployment.yaml").write_text(deployment)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "seed", cwd=root)
    return root


def build(root: Path) -> list[dict]:
    return kustomize_build(root / "apps")


def env_source(objects: list[dict], deployment: str, kind: str, prefix: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment]
    names = [n for k, n in ct.references(found) if k == kind and n.startswith(prefix)]
    assert len(names) == 1, names
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == names[0]]
    return obj


def test_plain_config_is_copied_then_a_rollback_writes_the_old_content_back(repo: Path) -> None:
    operations.init(repo, "apps/backend", switch=True)
    objects = build(repo)
    assert reference_problems(objects) == []
    # The primary reads copies; the canary reads the person's objects.
    assert env_source(objects, "backend-primary", "ConfigMap", "backend-settings")["metadata"]["name"] == (
        "backend-settings-primary"
    )
    assert (
        env_source(objects, "backend-primary", "Secret", "backend-db")["metadata"]["name"]
        == "backend-db-primary"
    )
    (loaded,) = [c for c in operations._scan(repo, None).canaries.values()]
    before = render_target(repo, loaded)

    # A person changes config only: the revision changes, the primary's copies do not.
    settings = (repo / "apps/backend/settings.yaml").read_text()
    changed_text = settings.replace("LEVEL: info", "LEVEL: debug").replace(
        "first-password-value", "second-value"
    )
    (repo / "apps/backend/settings.yaml").write_text(changed_text)
    after = render_target(repo, loaded)
    assert after.spec_hash != before.spec_hash
    objects = build(repo)
    assert env_source(objects, "backend-primary", "ConfigMap", "backend-settings")["data"]["LEVEL"] == "info"
    assert env_source(objects, "backend", "ConfigMap", "backend-settings")["data"]["LEVEL"] == "debug"
    layout = Layout.of(loaded)
    lines = changed_configs(repo, layout, after)
    assert sorted(lines) == [
        "config ConfigMap backend-settings: keys changed: LEVEL",
        "config Secret backend-db: keys changed: PASSWORD",
    ]

    # A rollback writes the copies' content back, naming keys and files, never a Secret's value.
    writer = FileWriter(repo, loaded, router_for(loaded.canary, loaded.source))
    notes = writer.revert_target(after)
    assert "apps/backend/settings.yaml" in writer.changed
    assert not any("first-password-value" in n or "second-value" in n for n in notes)
    assert any(
        "Secret backend-db (keys: PASSWORD) written back in apps/backend/settings.yaml" in n for n in notes
    )
    restored = (repo / "apps/backend/settings.yaml").read_text()
    assert restored == SETTINGS  # the person's comment and layout survive, only values change back
    assert render_target(repo, loaded).spec_hash == before.spec_hash


def test_validate_and_status_warn_about_a_strict_sealed_secret_by_file_and_name(repo: Path) -> None:
    sealed = (
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: backend-db\n"
        "spec:\n  encryptedData:\n    PASSWORD: AgBy3i4OJSWK\n"
    )
    (repo / "apps/backend/settings.yaml").write_text(SETTINGS.split("---")[0] + "---\n" + sealed)
    errors, warnings = validate(repo)
    expected = (
        "apps/backend/canary.yaml: SealedSecret backend-db has strict scope: its name is sealed into it"
    )
    assert any(w.startswith(expected) for w in warnings), warnings
    (view,) = operations.status(repo)
    assert any(w.startswith(expected) for w in view.warnings)


def test_config_tracking_disabled_on_the_object_leaves_it_shared(repo: Path) -> None:
    text = (
        (repo / "apps/backend/settings.yaml")
        .read_text()
        .replace(
            "  name: backend-settings\n",
            f"  name: backend-settings\n  annotations:\n    {ct.TRACKING_ANNOTATION}: disabled\n",
        )
    )
    (repo / "apps/backend/settings.yaml").write_text(text)
    operations.init(repo, "apps/backend", switch=True)
    objects = build(repo)
    assert env_source(objects, "backend-primary", "ConfigMap", "backend-settings")["metadata"]["name"] == (
        "backend-settings"
    )
    assert (
        env_source(objects, "backend-primary", "Secret", "backend-db")["metadata"]["name"]
        == "backend-db-primary"
    )
    assert reference_problems(objects) == []


def test_secret_values_never_reach_a_commit_message(repo: Path) -> None:
    operations.init(repo, "apps/backend", switch=True)
    log = subprocess.run(["git", "log", "-p", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    messages = subprocess.run(["git", "log", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert "first-password-value" in log  # the copy is in the diff, as the person's Secret is
    assert "first-password-value" not in messages
    encoded = base64.b64encode(b"first-password-value").decode()
    assert encoded not in messages


PRODUCERS = """\
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: backend-api
spec:
  refreshInterval: 1h
  secretStoreRef:
    kind: ClusterSecretStore
    name: vault
  target:
    name: backend-api-key
  data:
    - secretKey: API_KEY
      remoteRef:
        key: backend/api
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: backend-tls
  annotations:
    sealedsecrets.bitnami.com/namespace-wide: "true"
spec:
  encryptedData:
    tls.key: AgBy3i4OJSWK
  template:
    metadata:
      name: backend-tls
"""


def test_external_and_sealed_secrets_get_copies_the_primary_uses_and_the_oracle_holds(repo: Path) -> None:
    """Both in the build, with their CRDs' schemas: the copies produce the -primary Secrets."""
    app = repo / "apps/backend"
    (app / "producers.yaml").write_text(PRODUCERS)
    text = (app / "kustomization.yaml").read_text()
    (app / "kustomization.yaml").write_text(
        text.replace("  - settings.yaml\n", "  - settings.yaml\n  - producers.yaml\n")
    )
    deployment = (
        (app / "deployment.yaml")
        .read_text()
        .replace(
            "          envFrom:\n",
            "          envFrom:\n            - secretRef:\n                name: backend-api-key\n",
            1,
        )
    )
    deployment = deployment.replace(
        "      containers:\n",
        "      volumes:\n        - name: tls\n          secret:\n            secretName: backend-tls\n"
        "      containers:\n",
    )
    (app / "deployment.yaml").write_text(deployment)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "producers", cwd=repo)
    operations.init(repo, "apps/backend", switch=True)
    objects = build(repo)
    image = {"backend": "ghcr.io/stefanprodan/podinfo:6.1.0"}
    assert_invariant(  # schemas included: ExternalSecret and SealedSecret against their CRDs
        objects,
        namespace="prod",
        target="backend",
        service="backend",
        primary_images=image,
        canary_images=image,
        canary_replicas=0,
        weights=(100, 0),
    )
    (primary,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "backend-primary"
    ]
    refs = ct.references(primary)
    assert ("Secret", "backend-api-key-primary") in refs and ("Secret", "backend-tls-primary") in refs
    (external,) = [
        o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "backend-api-primary"
    ]
    assert external["spec"]["target"]["name"] == "backend-api-key-primary"
    (sealed,) = [
        o for o in objects if o["kind"] == "SealedSecret" and o["metadata"]["name"] == "backend-tls-primary"
    ]
    assert sealed["spec"]["template"]["metadata"]["name"] == "backend-tls-primary"
    assert sealed["spec"]["encryptedData"] == {"tls.key": "AgBy3i4OJSWK"}
    # `gitcanary validate` takes the copies as valid as the person's own objects.
    errors, _warnings = validate(repo)
    assert errors == []
