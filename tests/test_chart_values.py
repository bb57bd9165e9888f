"""charts/gitcanary's values.schema.json and the values issue 30 added, rendered with Helm's own engine
(helm-python-sdk runs Helm's schema check before rendering, as `helm install` does).

- `repo` is required: rendering without it fails and says so;
- a value of the wrong JSON type is rejected at its path, for every typed value (generated);
- for generated valid values: every object validates against the Kubernetes OpenAPI schemas
  (kubernetes-validate, strict, tests/oracle.py), a PodDisruptionBudget exists iff replicas > 1 and
  selects the pods, and the ServiceAccount annotations, extra env, envFrom, volumes and mounts land
  where they say, after the chart's own;
- the default image is the one .github/workflows/image.yml pushes, tagged with the appVersion.
"""

from __future__ import annotations

import re
from typing import Any

import helm_python
import pytest
import yaml
from conftest import ROOT
from helm_python.errors import HelmValuesError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import schema_problems
from test_chart import CHART, REPO, Obj, one, render

# Hypothesis: bounded and derandomized (the suite stays fast and reproducible).
BOUNDED = settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def render_exact(values: Obj) -> list[Obj]:
    """The objects for exactly these values (no `repo` added)."""
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="gitcanary", namespace="gitcanary")
    return [doc for file, text in sorted(rendered.items()) if file.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


# --- repo is required -------------------------------------------------------------------------


def test_rendering_without_repo_fails_and_names_it() -> None:
    with pytest.raises(HelmValuesError) as missing:
        render_exact({})
    assert "missing property 'repo'" in str(missing.value)
    with pytest.raises(HelmValuesError) as empty:
        render_exact({"repo": ""})
    assert "/repo" in str(empty.value)
    # a repo is all it takes
    config = one(render_exact({"repo": REPO}), "ConfigMap")["data"]
    assert config["GITCANARY_REPO"] == REPO


def test_the_chart_ships_no_default_repo() -> None:
    """No example URL a careless install would watch: values.yaml leaves `repo` out."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert "repo" not in defaults


# --- wrong types are rejected, at their path ----------------------------------------------------

# Each typed value's path and the JSON types it accepts, written here from the values' meaning (not
# read from the schema): an oracle independent of values.schema.json.
ACCEPTS: dict[tuple[str, ...], set[str]] = {
    ("repo",): {"string"},
    ("branch",): {"string"},
    ("provider",): {"string"},
    ("prometheus",): {"string"},
    ("writeMode",): {"string"},
    ("promotionGate",): {"boolean"},
    ("github", "repo"): {"string"},
    ("github", "apiUrl"): {"string"},
    ("commitUrl",): {"string"},
    ("logFormat",): {"string"},
    ("replicas",): {"integer"},
    ("podDisruptionBudget", "maxUnavailable"): {"integer", "string"},
    ("cluster",): {"string"},
    ("extraConfig",): {"object"},
    ("secrets", "git"): {"string"},
    ("secrets", "forge"): {"string"},
    ("secrets", "alerts"): {"string"},
    ("image", "repository"): {"string"},
    ("image", "tag"): {"string"},
    ("image", "pullPolicy"): {"string"},
    ("imagePullSecrets",): {"array"},
    ("port",): {"integer"},
    ("resources",): {"object"},
    ("podAnnotations",): {"object"},
    ("nodeSelector",): {"object"},
    ("tolerations",): {"array"},
    ("affinity",): {"object"},
    ("serviceAccount", "annotations"): {"object"},
    ("extraEnv",): {"array"},
    ("extraEnvFrom",): {"array"},
    ("extraVolumes",): {"array"},
    ("extraVolumeMounts",): {"array"},
    ("serviceMonitor", "enabled"): {"boolean"},
    ("serviceMonitor", "interval"): {"string"},
    ("serviceMonitor", "labels"): {"object"},
    ("grafanaDashboard", "enabled"): {"boolean"},
    ("grafanaDashboard", "labels"): {"object"},
}

# One strategy per JSON type (integers never booleans: JSON tells them apart, Python does not).
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(alphabet="abc-XYZ 09%", min_size=1, max_size=8),
    "integer": st.integers(min_value=-5, max_value=70000),
    "boolean": st.booleans(),
    "array": st.lists(st.integers(0, 3), max_size=2),
    "object": st.dictionaries(st.sampled_from(["k", "x"]), st.integers(0, 3), min_size=1, max_size=2),
    "number": st.sampled_from([0.5, 2.25, -1.5]),
}


def test_every_value_in_values_yaml_is_typed() -> None:
    """The table above covers every leaf of values.yaml (a new value must be typed and tested)."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(node: Obj, path: tuple[str, ...]) -> set[tuple[str, ...]]:
        if path in ACCEPTS or not isinstance(node, dict):
            return {path}
        return {leaf for key, value in node.items() for leaf in leaves(value, (*path, key))}

    assert leaves(defaults, ()) | {("repo",)} == set(ACCEPTS)


@st.composite
def wrong_types(draw: st.DrawFn) -> tuple[tuple[str, ...], Any]:
    path = draw(st.sampled_from(sorted(ACCEPTS)))
    wrong = sorted(set(BY_TYPE) - ACCEPTS[path] - ({"number"} if "integer" in ACCEPTS[path] else set()))
    return path, draw(st.sampled_from(wrong).flatmap(lambda kind: BY_TYPE[kind]))


def _nest(path: tuple[str, ...], value: Any) -> Obj:
    for key in reversed(path):
        value = {key: value}
    return dict(value)


@BOUNDED
@given(wrong_types())
def test_a_value_of_the_wrong_type_is_rejected_at_its_path(case: tuple[tuple[str, ...], Any]) -> None:
    path, value = case
    values = {"repo": REPO} | _nest(path, value) if path != ("repo",) else {"repo": value}
    with pytest.raises(HelmValuesError) as rejected:
        render_exact(values)
    assert "/" + "/".join(path) in str(rejected.value), str(rejected.value)


@pytest.mark.parametrize(
    "values, where",
    [
        ({"replicas": "2"}, "/replicas"),
        ({"port": 70000}, "/port"),
        ({"writeMode": "push"}, "/writeMode"),
        ({"cluster": True}, "/cluster"),
        ({"replics": 2}, "replics"),  # a misspelt value is not silently ignored
        ({"extraEnv": [{"value": "no name"}]}, "/extraEnv/0"),
        ({"extraVolumeMounts": [{"name": "ca"}]}, "/extraVolumeMounts/0"),
        ({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": 5}}}, "/serviceAccount"),
        ({"extraConfig": {"POLL_INTERVAL": "30"}}, "POLL_INTERVAL"),
        ({"podDisruptionBudget": {"maxUnavailable": 0}}, "/podDisruptionBudget/maxUnavailable"),
    ],
)
def test_examples_of_rejected_values(values: Obj, where: str) -> None:
    with pytest.raises(HelmValuesError) as rejected:
        render(values)
    assert where in str(rejected.value)


# --- valid values: valid objects, and each value where it says ------------------------------------

DNS_LABEL = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")
ENV_NAME = st.from_regex(r"\A[A-Z][A-Z0-9_]{0,12}\Z")
ANNOTATION_KEY = st.one_of(
    st.sampled_from(["eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"]),
    st.builds(lambda p, n: f"{p}.example.com/{n}", DNS_LABEL, DNS_LABEL),
)
PLAIN_TEXT = st.text(alphabet="abcXYZ019:/-_.@ ", max_size=20)
# The chart's own volume names and mount paths: extra ones must differ (Kubernetes requires it).
CHART_VOLUMES = {"work", "tmp", "git-credentials"}
CHART_MOUNTS = {"/var/lib/gitcanary", "/tmp", "/etc/gitcanary/git"}


@st.composite
def env_vars(draw: st.DrawFn) -> list[Obj]:
    names = draw(st.lists(ENV_NAME, max_size=3, unique=True))
    found = []
    for name in names:
        if draw(st.booleans()):
            found.append({"name": name, "value": draw(PLAIN_TEXT)})
        else:
            ref = {"name": draw(DNS_LABEL), "key": draw(DNS_LABEL), "optional": draw(st.booleans())}
            found.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return found


@st.composite
def env_from(draw: st.DrawFn) -> list[Obj]:
    kinds = draw(st.lists(st.sampled_from(["configMapRef", "secretRef"]), max_size=2))
    found: list[Obj] = []
    for kind in kinds:
        source: Obj = {kind: {"name": draw(DNS_LABEL)}}
        if draw(st.booleans()):
            source["prefix"] = draw(ENV_NAME) + "_"
        found.append(source)
    return found


@st.composite
def volumes_and_mounts(draw: st.DrawFn) -> tuple[list[Obj], list[Obj]]:
    names = draw(st.lists(DNS_LABEL.filter(lambda n: n not in CHART_VOLUMES), max_size=3, unique=True))
    volumes: list[Obj] = []
    mounts: list[Obj] = []
    for i, name in enumerate(names):
        source = draw(
            st.sampled_from(
                [
                    {"emptyDir": {}},
                    {"secret": {"secretName": name, "optional": True}},
                    {"configMap": {"name": name}},
                ]
            )
        )
        volumes.append({"name": name, **source})
        mounts.append({"name": name, "mountPath": f"/mnt/extra-{i}", "readOnly": draw(st.booleans())})
    return volumes, mounts


@st.composite
def valid_values(draw: st.DrawFn) -> Obj:
    volumes, mounts = draw(volumes_and_mounts())
    values: Obj = {
        "repo": draw(st.sampled_from([REPO, "https://github.com/acme/config.git"])),
        "replicas": draw(st.integers(min_value=0, max_value=5)),
        "podDisruptionBudget": {
            "maxUnavailable": draw(st.one_of(st.integers(1, 4), st.sampled_from(["25%", "50%", "100%"])))
        },
        "serviceAccount": {"annotations": draw(st.dictionaries(ANNOTATION_KEY, PLAIN_TEXT, max_size=3))},
        "extraEnv": draw(env_vars()),
        "extraEnvFrom": draw(env_from()),
        "extraVolumes": volumes,
        "extraVolumeMounts": mounts,
        "port": draw(st.integers(min_value=1024, max_value=65535)),
        "logFormat": draw(st.sampled_from(["json", "text"])),
        "writeMode": draw(st.sampled_from(["direct", "pull-request"])),
        "cluster": draw(st.sampled_from(["on", "auto", "off"])),
        "image": {"tag": draw(st.sampled_from(["", "0.1.0", "1.2.3-rc.1"]))},
        "podAnnotations": draw(st.dictionaries(ANNOTATION_KEY, PLAIN_TEXT, max_size=2)),
    }
    return values


def _selects(selector: Obj, labels: Obj) -> bool:
    return bool(selector) and selector.items() <= labels.items()


# Fewer examples: kubernetes-validate takes about 0.4 s per new object (three per example).
@settings(BOUNDED, max_examples=12)
@given(valid_values())
def test_generated_values_render_valid_objects_with_each_value_in_place(values: Obj) -> None:
    objects = render_exact(values)
    for obj in objects:
        assert schema_problems(obj) == [], (obj["kind"], schema_problems(obj))
    deployment = one(objects, "Deployment")
    pod = pod_spec(objects)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]

    # a PodDisruptionBudget iff more than one replica, selecting exactly gitcanary's pods; also at
    # the boundary (0, 1, 2 replicas) with these values, whatever replicas the example drew
    for replicas in sorted({values["replicas"], 0, 1, 2}):
        rendered = render_exact(values | {"replicas": replicas})
        budgets = [o for o in rendered if o["kind"] == "PodDisruptionBudget"]
        if replicas > 1:
            (budget,) = budgets
            assert budget["spec"]["maxUnavailable"] == values["podDisruptionBudget"]["maxUnavailable"]
            assert _selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
            assert budget["metadata"]["namespace"] == "gitcanary"
        else:
            assert budgets == [], replicas

    # the ServiceAccount the pod runs as carries exactly the annotations given
    account = one(objects, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"].get("annotations", {}) == values["serviceAccount"]["annotations"]

    # extra env and envFrom: after the chart's own, in order, unchanged
    extra_env, extra_from = values["extraEnv"], values["extraEnvFrom"]
    assert container["env"][len(container["env"]) - len(extra_env):] == extra_env
    assert container["env"][0]["name"] == "GITCANARY_WORKDIR"
    assert container["envFrom"][len(container["envFrom"]) - len(extra_from):] == extra_from
    assert container["envFrom"][0]["configMapRef"]["name"] == account["metadata"]["name"]

    # extra volumes in the pod, their mounts in the container, the chart's own kept
    volume_names = [v["name"] for v in pod["volumes"]]
    assert volume_names[:3] == ["work", "tmp", "git-credentials"]
    assert pod["volumes"][3:] == values["extraVolumes"]
    assert container["volumeMounts"][3:] == values["extraVolumeMounts"]
    assert {m["mountPath"] for m in container["volumeMounts"][:3]} == CHART_MOUNTS
    for mount in container["volumeMounts"]:
        assert mount["name"] in volume_names

    # the image: the chart's appVersion unless a tag is given
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container["image"] == f"ghcr.io/gitcanary/gitcanary:{values['image']['tag'] or app_version}"


def test_pdb_only_with_replicas_examples() -> None:
    for replicas, expected in [(0, 0), (1, 0), (2, 1), (3, 1)]:
        kinds = [o["kind"] for o in render({"replicas": replicas})]
        assert kinds.count("PodDisruptionBudget") == expected, replicas
    (budget,) = [o for o in render({"replicas": 2}) if o["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1  # the default: one pod at a time


def test_cloud_identity_annotations_example() -> None:
    role = "arn:aws:iam::111122223333:role/gitcanary"
    values = {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role}}}
    account = one(render(values), "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    assert "annotations" not in one(render(), "ServiceAccount")["metadata"]


# --- the default image is the one the workflow pushes ---------------------------------------------


def test_the_default_image_is_the_workflows_at_the_app_version() -> None:
    chart_meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    (version,) = re.findall(r'(?m)^version = "([^"]+)"$', project)
    assert chart_meta["appVersion"] == version  # the image is tagged with the package's version
    (container,) = pod_spec(render())["containers"]
    assert container["image"] == f"ghcr.io/gitcanary/gitcanary:{version}"
    # the workflow pushes ghcr.io/<owner>/gitcanary tagged with the appVersion (tests/test_image.py)
    workflow = (ROOT / ".github/workflows/image.yml").read_text()
    assert "ghcr.io/${OWNER,,}/gitcanary" in workflow and "charts/gitcanary/Chart.yaml" in workflow
