"""The primary of a DaemonSet target, for every generated DaemonSet: what Flagger's DaemonSet controller
(pkg/canary/daemonset_controller.go) creates, written by gitcanary's renderer.

The expectation is built from the generator's parts (names, labels, containers, node selector), never
from the rendered object: `<target>-primary`, the selector label (the first of app, name,
app.kubernetes.io/name on the target's selector) set to `<target>-primary` on the object, the selector
and the pod template, every other field as the target has it, no replicas (a DaemonSet runs a pod per
node), and the canary's scale-to-zero node selector (`flagger.app/scale-to-zero`) left out.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES

from gitcanary.errors import RenderError
from gitcanary.manifests import render
from gitcanary.spec.models import Canary

LABEL_KEYS = st.sampled_from(["app", "name", "app.kubernetes.io/name"])
IMAGES = st.from_regex(r"ghcr\.io/[a-z]{1,6}/[a-z]{1,6}:[0-9]\.[0-9]", fullmatch=True)


@st.composite
def daemon_sets(draw: st.DrawFn) -> dict:
    name = draw(NAMES)
    label = draw(LABEL_KEYS)
    extra = draw(st.dictionaries(NAMES.map(lambda n: f"x-{n}"), NAMES, max_size=2))
    pod_labels = {**extra, label: name}
    containers = [
        {"name": f"c{i}", "image": draw(IMAGES), "args": draw(st.lists(NAMES, max_size=2))}
        for i in range(draw(st.integers(1, 3)))
    ]
    node_selector = draw(st.dictionaries(NAMES.map(lambda n: f"node/{n}"), NAMES, max_size=2))
    scaled_down = draw(st.booleans())
    pod_spec: dict = {"containers": containers}
    if node_selector or scaled_down:
        pod_spec["nodeSelector"] = {**node_selector, **(render.SCALE_TO_ZERO if scaled_down else {})}
    spec: dict = {
        "selector": {
            "matchLabels": {label: name, **draw(st.dictionaries(st.just("tier"), NAMES, max_size=1))}
        },
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if draw(st.booleans()):
        spec["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": draw(st.integers(1, 5))},
        }
    if draw(st.booleans()):
        spec["minReadySeconds"] = draw(st.integers(0, 60))
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "prod", "labels": {**extra, label: name}},
        "spec": spec,
        # the generator's parts, for the expectation (removed before rendering)
        "_parts": {
            "label": label,
            "extra": extra,
            "containers": containers,
            "node_selector": node_selector,
            "strategy": spec.get("updateStrategy"),
            "min_ready": spec.get("minReadySeconds"),
        },
    }


def canary_for(name: str) -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "iterations": 3},
            },
        }
    )


@settings(derandomize=True, max_examples=40, deadline=None)
@given(target=daemon_sets(), replicas=st.none() | st.integers(1, 9))
def test_the_primary_of_every_daemon_set_is_flaggers(target: dict, replicas: int | None) -> None:
    parts = target.pop("_parts")
    name, label = target["metadata"]["name"], parts["label"]
    primary_name = f"{name}-primary"
    primary = render.primary_deployment(target, canary_for(name), replicas, "canary.yaml")
    assert primary["kind"] == "DaemonSet" and primary["apiVersion"] == "apps/v1"
    assert primary["metadata"]["name"] == primary_name
    assert primary["metadata"]["namespace"] == "prod"
    assert primary["metadata"]["labels"] == {
        **parts["extra"],
        label: primary_name,
        "app.kubernetes.io/managed-by": "gitcanary",
    }
    spec = primary["spec"]
    assert "replicas" not in spec  # one pod per node: whatever replicas the caller has in mind
    assert spec["selector"] == {"matchLabels": {label: primary_name}}
    assert spec["template"]["metadata"]["labels"] == {**parts["extra"], label: primary_name}
    assert spec["template"]["spec"]["containers"] == parts["containers"]
    assert spec["template"]["spec"].get("nodeSelector") == (parts["node_selector"] or None)
    assert spec.get("updateStrategy") == parts["strategy"]
    assert spec.get("minReadySeconds") == parts["min_ready"]
    # the primary selects its own pods, never the canary's (labelled with the target's name)
    selector = spec["selector"]["matchLabels"]
    assert all(spec["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert not all(target["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())


def test_a_daemon_set_updated_on_delete_is_refused_as_flagger_does() -> None:
    target = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "prod"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "OnDelete"},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": []}},
        },
    }
    with pytest.raises(RenderError, match="updateStrategy.type OnDelete is not supported"):
        render.primary_deployment(target, canary_for("agent"), None, "canary.yaml")
