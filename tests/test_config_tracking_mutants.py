"""Table tests of config tracking's pure functions (gitcanary/manifests/config_tracking.py), written
for the mutants scripts/mutate.py found surviving.

The rules are Flagger's `pkg/canary/config_tracker.go` (which references count, which Secret types
are tracked, the `flagger.app/config-tracking: disabled` opt-out) and the SOPS and Sealed Secrets
documentation (what a copy under another name can still decrypt). Each expectation is written out
here from those rules, never read back from gitcanary's output.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.manifests import config_tracking as ct
from gitcanary.routers.base import MANAGED_BY

Obj = dict[str, Any]


def deployment(spec: Obj) -> Obj:
    return {"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"spec": spec}}}


EVERY_SLOT = deployment(
    {
        "volumes": [
            {"name": "a", "configMap": {"name": "cm-volume"}},
            {"name": "b", "secret": {"secretName": "s-volume"}},
            {
                "name": "c",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "cm-projected"}},
                        {"secret": {"name": "s-projected"}},
                        "junk",
                    ]
                },
            },
            "not a volume",
        ],
        "initContainers": [
            {
                "name": "init",
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-init", "key": "k"}}}],
            }
        ],
        "containers": [
            {
                "name": "app",
                "env": [
                    {"name": "PLAIN", "value": "1"},
                    {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
                    {"name": "Z", "valueFrom": {"configMapKeyRef": {"name": "cm-volume", "key": "k"}}},
                    {"name": "E", "valueFrom": {"configMapKeyRef": {"name": ""}}},
                    {"name": "F", "valueFrom": "not a dict"},
                ],
                "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}, {"secretRef": {"name": "s-envfrom"}}],
            }
        ],
    }
)

EVERY_REFERENCE = [
    ("ConfigMap", "cm-volume"),
    ("Secret", "s-volume"),
    ("ConfigMap", "cm-projected"),
    ("Secret", "s-projected"),
    ("ConfigMap", "cm-init"),
    ("Secret", "s-env"),
    ("ConfigMap", "cm-envfrom"),
    ("Secret", "s-envfrom"),
]


def test_every_kind_of_reference_is_found_once_first_seen_first() -> None:
    assert total("references", ct.references, EVERY_SLOT) == EVERY_REFERENCE


@pytest.mark.parametrize(
    "workload", [{}, {"spec": None}, {"spec": {"template": {"spec": "x"}}}, deployment({})]
)
def test_a_workload_without_a_pod_spec_references_nothing(workload: Obj) -> None:
    assert ct.references(workload) == []


def test_the_primary_points_at_every_copy_in_every_slot() -> None:
    workload = copy.deepcopy(EVERY_SLOT)
    renames = {ref: f"{ref[1]}-primary" for ref in EVERY_REFERENCE if ref != ("Secret", "s-env")}
    ct.point_at_copies(workload, renames)
    expected = [
        (kind, f"{name}-primary" if (kind, name) != ("Secret", "s-env") else name)
        for kind, name in EVERY_REFERENCE
    ]
    assert ct.references(workload) == expected


def test_the_checksum_is_sha256_of_canonical_json_first_8_bytes() -> None:
    data = {"data": {"b": "2", "a": "1"}}
    canonical = '{"data":{"a":"1","b":"2"}}'
    assert ct.checksum(data) == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert len(ct.checksum(data)) == 16


@pytest.mark.parametrize(
    ("obj", "seen"),
    [
        (
            {"kind": "ConfigMap", "data": {"a": "1"}, "binaryData": {"b": "AA=="}, "metadata": {"name": "x"}},
            {"data": {"a": "1"}, "binaryData": {"b": "AA=="}},
        ),
        ({"kind": "ConfigMap", "data": None, "binaryData": {"b": "AA=="}}, {"binaryData": {"b": "AA=="}}),
        (
            {
                "kind": "Secret",
                "type": "Opaque",
                "data": {"a": "MQ=="},
                "stringData": {"c": "3"},
                "sops": {"v": 1},
                "immutable": True,
            },
            {"type": "Opaque", "data": {"a": "MQ=="}, "stringData": {"c": "3"}, "sops": {"v": 1}},
        ),
        (
            {"kind": "ExternalSecret", "spec": {"target": {"name": "db"}}, "status": {"x": 1}},
            {"spec": {"target": {"name": "db"}}},
        ),
    ],
)
def test_the_content_is_what_the_pod_sees(obj: Obj, seen: Obj) -> None:
    assert ct.content(obj) == seen


@pytest.mark.parametrize(
    ("annotations", "off"),
    [
        ({}, False),
        ({ct.TRACKING_ANNOTATION: "disabled"}, True),
        ({ct.TRACKING_ANNOTATION: "Disabled"}, True),
        ({ct.TRACKING_ANNOTATION: "enabled"}, False),
        (None, False),
    ],
)
def test_tracking_is_disabled_by_the_annotation_in_any_case(annotations: Obj | None, off: bool) -> None:
    assert ct.disabled({"kind": "ConfigMap", "metadata": {"name": "x", "annotations": annotations}}) is off


@pytest.mark.parametrize(
    ("sops", "free"),
    [
        (None, False),
        ({}, False),
        ({"mac_only_encrypted": False}, False),
        ({"mac_only_encrypted": "true"}, False),
        ({"mac_only_encrypted": True}, True),
    ],
)
def test_only_a_mac_over_encrypted_values_lets_a_sops_secret_be_renamed(sops: Any, free: bool) -> None:
    assert ct.sops_name_free({"kind": "Secret", "sops": sops}) is free
    assert ct.is_sops({"kind": "Secret", "sops": sops}) is isinstance(sops, dict)


@pytest.mark.parametrize(
    ("obj", "target"),
    [
        ({"metadata": {"name": "es"}, "spec": {"target": {"name": "db"}}}, "db"),
        ({"metadata": {"name": "es"}, "spec": {"target": {"name": ""}}}, "es"),
        ({"metadata": {"name": "es"}, "spec": {}}, "es"),
        ({"metadata": {"name": "es"}}, "es"),
    ],
)
def test_an_external_secret_writes_its_target_else_its_own_name(obj: Obj, target: str) -> None:
    assert ct.external_target(obj) == target


@pytest.mark.parametrize(
    ("obj", "target"),
    [
        ({"metadata": {"name": "ss"}, "spec": {"template": {"metadata": {"name": "db"}}}}, "db"),
        ({"metadata": {"name": "ss"}, "spec": {"template": {"metadata": {"name": ""}}}}, "ss"),
        ({"metadata": {"name": "ss"}, "spec": {"template": {}}}, "ss"),
        ({"metadata": {"name": "ss"}}, "ss"),
    ],
)
def test_a_sealed_secret_writes_its_template_name_else_its_own(obj: Obj, target: str) -> None:
    assert ct.sealed_target(obj) == target


def _sealed(outer: Obj | None = None, inner: Obj | None = None) -> Obj:
    return {
        "kind": "SealedSecret",
        "metadata": {"name": "db", "annotations": outer},
        "spec": {"template": {"metadata": {"name": "db", "annotations": inner}}},
    }


@pytest.mark.parametrize(
    ("obj", "strict"),
    [
        (_sealed(), True),
        (_sealed({ct.SEALED_NAMESPACE_WIDE: "true"}), False),
        (_sealed(None, {ct.SEALED_NAMESPACE_WIDE: "True"}), False),
        (_sealed({ct.SEALED_CLUSTER_WIDE: "TRUE"}), False),
        (_sealed({ct.SEALED_NAMESPACE_WIDE: "false"}), True),
        (_sealed({ct.SEALED_CLUSTER_WIDE: "yes"}), True),  # only "true" (any case) widens the scope
        (_sealed({ct.SEALED_NAMESPACE_WIDE: "yes"}), True),
        (_sealed({ct.SEALED_SCOPE: "namespace-wide"}), False),
        (_sealed(None, {ct.SEALED_SCOPE: "cluster-wide"}), False),
        (_sealed({ct.SEALED_SCOPE: "strict"}), True),
        # Both annotation sets are read; where they disagree the template's (merged last) decides.
        (_sealed({ct.SEALED_SCOPE: "strict"}, {ct.SEALED_SCOPE: "namespace-wide"}), False),
        (_sealed({ct.SEALED_SCOPE: "namespace-wide"}, {ct.SEALED_SCOPE: "strict"}), True),
    ],
)
def test_sealed_secret_scope(obj: Obj, strict: bool) -> None:
    assert ct.sealed_strict(obj) is strict


def _cm(name: str, namespace: str | None = None, **extra: Any) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"kind": "ConfigMap", "metadata": meta, "data": {"k": name}, **extra}


def _secret(name: str, type_: str | None = "Opaque", **extra: Any) -> Obj:
    obj: Obj = {"kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}, **extra}
    if type_ is not None:
        obj["type"] = type_
    return obj


def _uses(*refs: tuple[str, str]) -> Obj:
    env = [
        {
            "name": f"E{i}",
            "valueFrom": {
                ("configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef"): {"name": name, "key": "k"}
            },
        }
        for i, (kind, name) in enumerate(refs)
    ]
    return deployment({"containers": [{"name": "app", "env": env}]})


@pytest.mark.parametrize(
    ("objects", "ref", "tracked"),
    [
        ([_cm("cfg")], ("ConfigMap", "cfg"), True),
        ([_cm("cfg", "prod")], ("ConfigMap", "cfg"), True),
        ([_cm("cfg", "other")], ("ConfigMap", "cfg"), False),  # another namespace's object
        ([_cm("cfg", "other"), _cm("cfg", "prod")], ("ConfigMap", "cfg"), True),  # the namespace's own, after
        (
            [
                {
                    "kind": "ExternalSecret",
                    "metadata": {"name": "a", "namespace": "other"},
                    "spec": {"target": {"name": "s"}},
                },
                {"kind": "ExternalSecret", "metadata": {"name": "b"}, "spec": {"target": {"name": "s"}}},
            ],
            ("Secret", "s"),
            True,
        ),
        (
            [_cm("cfg", metadata={"name": "cfg", "annotations": {ct.TRACKING_ANNOTATION: "disabled"}})],
            ("ConfigMap", "cfg"),
            False,
        ),
        ([_secret("s")], ("Secret", "s"), True),
        ([_secret("s", None)], ("Secret", "s"), True),  # no type is Opaque
        ([_secret("s", "kubernetes.io/tls")], ("Secret", "s"), True),
        ([_secret("s", "kubernetes.io/basic-auth")], ("Secret", "s"), True),
        ([_secret("s", "kubernetes.io/ssh-auth")], ("Secret", "s"), True),
        ([_secret("s", "kubernetes.io/dockerconfigjson")], ("Secret", "s"), False),
        ([_secret("s", "kubernetes.io/service-account-token")], ("Secret", "s"), False),
        ([_cm("s")], ("Secret", "s"), False),  # a ConfigMap does not produce a Secret
        (
            [{"kind": "ExternalSecret", "metadata": {"name": "es"}, "spec": {"target": {"name": "s"}}}],
            ("Secret", "s"),
            True,
        ),
        (
            [
                {
                    "kind": "ExternalSecret",
                    "metadata": {"name": "es", "namespace": "other"},
                    "spec": {"target": {"name": "s"}},
                }
            ],
            ("Secret", "s"),
            False,
        ),
        ([{"kind": "ExternalSecret", "metadata": {"name": "s"}}], ("ConfigMap", "s"), False),
        ([_sealed({ct.SEALED_SCOPE: "namespace-wide"})], ("Secret", "db"), True),
        (
            [
                {
                    **_sealed({ct.SEALED_SCOPE: "namespace-wide"}),
                    "metadata": {
                        "name": "db",
                        "namespace": "other",
                        "annotations": {ct.SEALED_SCOPE: "namespace-wide"},
                    },
                }
            ],
            ("Secret", "db"),
            False,
        ),
    ],
)
def test_what_is_tracked(objects: list[Obj], ref: tuple[str, str], tracked: bool) -> None:
    tracking = ct.track(objects, _uses(ref), "prod")
    assert [(t.kind, t.name) for t in tracking.tracked] == ([ref] if tracked else [])
    assert tracking.shared == ()


def test_a_plain_secret_wins_over_an_external_secret_of_the_same_name() -> None:
    plain = _secret("s")
    external = {"kind": "ExternalSecret", "metadata": {"name": "es"}, "spec": {"target": {"name": "s"}}}
    for objects in ([plain, external], [external, plain]):
        (tracked,) = ct.track(objects, _uses(("Secret", "s")), "prod").tracked
        assert tracked.source is plain
        assert tracked.producer == "Secret s"
        assert tracked.key == "Secret/s"
        assert tracked.checksum == ct.checksum({"type": "Opaque", "data": {"k": "dg=="}})


def test_shared_objects_are_named_with_where_they_are() -> None:
    sops = _secret("s", sops={"mac": "x"})
    tracking = ct.track(
        [sops, _sealed()], _uses(("Secret", "s"), ("Secret", "db")), "prod", where="apps/a.yaml: "
    )
    assert tracking.tracked == ()
    assert len(tracking.shared) == 2
    assert tracking.shared[0].startswith("apps/a.yaml: Secret s is SOPS-encrypted")
    assert tracking.shared[1].startswith("apps/a.yaml: SealedSecret db has strict scope")
    free = _secret("s", sops={"mac_only_encrypted": True})
    assert [t.name for t in ct.track([free], _uses(("Secret", "s")), "prod").tracked] == ["s"]


def test_the_revision_is_the_template_hash_alone_without_config() -> None:
    assert ct.revision_hash("abc", ct.Tracking()) == "abc"
    tracking = ct.track([_cm("cfg")], _uses(("ConfigMap", "cfg")), "prod")
    expected = hashlib.sha256(json.dumps(["abc", tracking.checksums()], sort_keys=True).encode()).hexdigest()[
        :16
    ]
    assert ct.revision_hash("abc", tracking) == expected
    assert tracking.renames() == {("ConfigMap", "cfg"): "cfg-primary"}


def test_a_copy_is_renamed_relabelled_and_stripped_of_server_fields() -> None:
    source = _cm("cfg", "prod", status={"x": 1})
    source["metadata"].update(
        resourceVersion="1",
        uid="u",
        creationTimestamp="t",
        generation=2,
        managedFields=[],
        labels={"app": "a"},
    )
    (tracked,) = ct.track([source], _uses(("ConfigMap", "cfg")), "prod").tracked
    copied = ct.primary_copy(tracked, "prod")
    assert copied == {
        "kind": "ConfigMap",
        "data": {"k": "cfg"},
        "metadata": {"name": "cfg-primary", "namespace": "prod", "labels": {"app": "a", **MANAGED_BY}},
    }
    assert source["metadata"]["name"] == "cfg"  # the source is left alone
    assert ct.is_copy(copied) and not ct.is_copy(source)
    back = ct.original_of(copied, "cfg")
    assert back["metadata"]["name"] == "cfg"


def test_a_sops_copy_changes_its_name_only() -> None:
    source = _secret("s", sops={"mac_only_encrypted": True})
    source["metadata"]["namespace"] = "prod"
    (tracked,) = ct.track([source], _uses(("Secret", "s")), "prod").tracked
    copied = ct.primary_copy(tracked, "prod")
    assert copied == {**source, "metadata": {"name": "s-primary", "namespace": "prod"}}


@pytest.mark.parametrize(
    ("source", "ref", "path"),
    [
        (
            {"kind": "ExternalSecret", "metadata": {"name": "es"}, "spec": {"target": {"name": "db"}}},
            "db",
            ("spec", "target", "name"),
        ),
        (
            {"kind": "ExternalSecret", "metadata": {"name": "db"}, "spec": {}},
            "db",
            ("spec", "target", "name"),
        ),
        ({**_sealed({ct.SEALED_SCOPE: "namespace-wide"})}, "db", ("spec", "template", "metadata", "name")),
        (
            {
                "kind": "SealedSecret",
                "metadata": {"name": "db", "annotations": {ct.SEALED_SCOPE: "cluster-wide"}},
                "spec": {},
            },
            "db",
            ("spec", "template", "metadata", "name"),
        ),
    ],
)
def test_a_producers_copy_writes_the_primary_secret_and_undoes(
    source: Obj, ref: str, path: tuple[str, ...]
) -> None:
    (tracked,) = ct.track([source], _uses(("Secret", ref)), "prod").tracked
    copied = ct.primary_copy(tracked, "prod")
    node: Any = copied
    for key in path:
        node = node[key]
    assert node == f"{ref}-primary"
    assert ct.is_copy(copied)
    back = ct.original_of(copied, ref)
    node = back
    for key in path:
        node = node[key]
    assert node == ref
    assert back["metadata"]["name"] == source["metadata"]["name"]
    # Each producer's copy renames where that kind names its Secret, and nowhere else.
    other = ("spec", "target") if source["kind"] == "SealedSecret" else ("spec", "template")
    assert other[1] not in copied.get("spec", {}) or other[1] in source.get("spec", {})


@pytest.mark.parametrize(
    ("obj", "copy_"),
    [
        ({"kind": "ConfigMap", "metadata": {"name": "a-primary"}}, True),
        ({"kind": "Secret", "metadata": {"name": "a-primary"}}, True),
        ({"kind": "ExternalSecret", "metadata": {"name": "a-primary"}}, True),
        ({"kind": "SealedSecret", "metadata": {"name": "a-primary"}}, True),
        ({"kind": "Deployment", "metadata": {"name": "a-primary"}}, False),
        ({"kind": "ConfigMap", "metadata": {"name": "a"}}, False),
        ({"kind": "ConfigMap"}, False),
    ],
)
def test_what_is_a_config_copy(obj: Obj, copy_: bool) -> None:
    assert ct.is_copy(obj) is copy_


def test_original_of_leaves_a_name_without_the_suffix() -> None:
    assert (
        ct.original_of({"kind": "ConfigMap", "metadata": {"name": "plain"}}, "plain")["metadata"]["name"]
        == "plain"
    )


@pytest.mark.parametrize(
    ("old", "new", "keys"),
    [
        (_cm("a"), _cm("a"), []),
        (
            {"kind": "ConfigMap", "data": {"x": "1", "y": "2"}},
            {"kind": "ConfigMap", "data": {"x": "1", "y": "3"}},
            ["y"],
        ),
        ({"kind": "ConfigMap", "data": {"x": "1"}}, {"kind": "ConfigMap", "data": {"z": "1"}}, ["x", "z"]),
        (
            {"kind": "ConfigMap", "binaryData": {"b": "AA=="}},
            {"kind": "ConfigMap", "binaryData": {"b": "AQ=="}},
            ["b"],
        ),
        (
            {"kind": "Secret", "type": "Opaque", "stringData": {"p": "1"}},
            {"kind": "Secret", "type": "kubernetes.io/tls", "stringData": {"p": "2"}},
            ["p", "type"],
        ),
        (
            {"kind": "ExternalSecret", "spec": {"refreshInterval": "1h"}},
            {"kind": "ExternalSecret", "spec": {"refreshInterval": "2h"}},
            ["refreshInterval"],
        ),
    ],
)
def test_changed_keys_name_keys_never_values(old: Obj, new: Obj, keys: list[str]) -> None:
    assert ct.changed_keys(old, new) == keys


# -- over generated apps: config tracking never raises, and its copies round-trip ----------------------


def total(what: str, call: Any, *args: Any) -> Any:
    """`call(*args)`, or a failed assertion naming what raised: repository content (valid or not) never
    makes config tracking raise; the reconciler would stop at every poll."""
    try:
        return call(*args)
    except Exception as error:  # noqa: BLE001 - the property under test is "raises nothing"
        pytest.fail(f"{what} raised {type(error).__name__}: {error}")


NAMES_USED = st.sampled_from(["cfg", "db", "tls", "es-out", "ss-out"])


@st.composite
def producers(draw: st.DrawFn) -> Obj:
    name = draw(NAMES_USED)
    kind = draw(st.sampled_from(["ConfigMap", "Secret", "ExternalSecret", "SealedSecret"]))
    meta: Obj = {
        "name": name,
        "namespace": draw(st.sampled_from(["prod", "other"])) if draw(st.booleans()) else None,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    if draw(st.booleans()):
        meta["annotations"] = {
            draw(st.sampled_from([ct.TRACKING_ANNOTATION, ct.SEALED_SCOPE])): draw(
                st.sampled_from(["disabled", "namespace-wide", "strict", "cluster-wide"])
            )
        }
    obj: Obj = {"kind": kind, "metadata": meta}
    if kind == "ConfigMap":
        obj["data"] = {"k": draw(st.text(max_size=3))}
    elif kind == "Secret":
        obj["type"] = draw(st.sampled_from(["Opaque", "kubernetes.io/tls", "kubernetes.io/dockerconfigjson"]))
        obj["stringData"] = {"k": "v"}
        if draw(st.booleans()):
            obj["sops"] = {"mac_only_encrypted": draw(st.booleans())}
    elif kind == "ExternalSecret":
        obj["spec"] = {"target": {"name": draw(NAMES_USED)}}
    else:
        obj["spec"] = {"template": {"metadata": {"name": draw(NAMES_USED)}}}
    return obj


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    objects=st.lists(producers(), max_size=5),
    refs=st.lists(st.tuples(st.sampled_from(["ConfigMap", "Secret"]), NAMES_USED), max_size=4),
)
def test_tracking_never_raises_and_copies_round_trip(objects: list[Obj], refs: list[tuple[str, str]]) -> None:
    workload = _uses(*refs)
    tracking = total("track", ct.track, objects, workload, "prod")
    assert {(t.kind, t.name) for t in tracking.tracked} <= set(refs)
    renames = total("renames", tracking.renames)
    assert renames == {(t.kind, t.name): f"{t.name}-primary" for t in tracking.tracked}
    total("revision_hash", ct.revision_hash, "abc", tracking)
    for tracked in tracking.tracked:
        copied = total("primary_copy", ct.primary_copy, tracked, "prod")
        assert total("is_copy", ct.is_copy, copied)
        assert copied["metadata"]["name"] == f"{tracked.source['metadata']['name']}-primary"
        back = total("original_of", ct.original_of, copied, tracked.name)
        assert back["metadata"]["name"] == tracked.source["metadata"]["name"]
        assert total("changed_keys", ct.changed_keys, tracked.source, back) == []
    pointed = copy.deepcopy(workload)
    total("point_at_copies", ct.point_at_copies, pointed, renames)
    assert ct.references(pointed) == [
        (kind, renames.get((kind, name), name)) for kind, name in ct.references(workload)
    ]
