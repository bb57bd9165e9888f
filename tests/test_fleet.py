"""Rancher Fleet layouts: a bundle of plain manifests (examples/fleet) and a Helm bundle whose image is
set in fleet.yaml `helm.values`, rolled out and rolled back through the Reconciler on real Git; after
every gitcanary commit, the oracle builds what Fleet would deploy from the GitRepo's paths (every
bundle together, so two sources for one object show up) and holds it to the invariant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from conftest import ConfigRepo, git, make_config_repo
from oracle import CRD_DIR, assert_invariant, fleet_build, kustomize_build, rollout_rows, schema_problems
from prometheus_server import DATA_END, PrometheusServer, healthy_then_failing, running_prometheus
from test_e2e_layouts import expected_tags, promote_then_fail, run_until, seed, set_image
from test_e2e_rollout import Clock, tree_at

from gitcanary.commands import operations
from gitcanary.commands.validate import validate as validate_repo
from gitcanary.errors import SpecError
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

GOOD_FROM, BAD_FROM = DATA_END - timedelta(minutes=60), DATA_END - timedelta(minutes=30)
PODINFO = "ghcr.io/stefanprodan/podinfo"
WEB = "registry.example.com/shop/web"


@pytest.fixture(scope="module")
def prometheus_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = healthy_then_failing([("backend", "prod"), ("web", "shop")], GOOD_FROM, BAD_FROM)
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def check_fleet_commits(
    repo: ConfigRepo,
    tmp_path: Path,
    *,
    paths: list[str],
    namespace: str,
    target: str,
    images: dict[str, str],
    tags: dict[str, tuple[str, str]],
    replicas: int,
    expected: list[tuple[str, str, int]],
) -> list[str]:
    """Build every gitcanary commit as Fleet would deploy the GitRepo's paths; returns the actions."""
    actions = []
    commits = repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == [row[0] for row in expected]
    # Phase and weight come from the test's table (rollout_rows), never from gitcanary's trailers.
    for (sha, _subject, trailers), (_action, phase, weight) in zip(commits, expected, strict=True):
        actions.append(trailers["Action"])
        primary_tag, canary_tag = tags[sha]
        running = phase in ("Progressing", "Promoting", "Finalising")
        objects = fleet_build(tree_at(repo, sha, tmp_path / "trees" / sha), paths)
        assert_invariant(
            objects,
            namespace=namespace,
            target=target,
            service=target,
            primary_images={name: f"{image}:{primary_tag}" for name, image in images.items()},
            canary_images={name: f"{image}:{canary_tag}" for name, image in images.items()},
            canary_replicas=None if phase == "Initializing" else (replicas if running else 0),
            weights=None if phase == "Initializing" else (100 - weight, weight),
        )
    return actions


def test_fleet_example_promotes_and_rolls_back(tmp_path: Path, prometheus_fleet: PrometheusServer) -> None:
    """examples/fleet: plain manifests in a bundle; the bump and the write-back are the `image:` line."""
    repo = make_config_repo(tmp_path, "fleet")

    def bump(old: str, new: str) -> None:
        set_image(repo, "apps/backend/deployment.yaml", f"{PODINFO}:{old}", f"{PODINFO}:{new}")

    promote_then_fail(repo, tmp_path, prometheus_fleet, "prod/backend", 31, bump, ("6.1.0", "6.1.1", "6.1.2"))

    actions = check_fleet_commits(
        repo,
        tmp_path,
        paths=["apps"],  # fleet/gitrepo.yaml
        namespace="prod",
        target="backend",
        images={"backend": PODINFO},
        tags=expected_tags(repo, "6.1.0", "6.1.1", "6.1.2"),
        replicas=2,
        # stepWeight 25, maxWeight 50, threshold 2
        expected=rollout_rows(promoted=[25, 50], failed=[25], halts=1),
    )
    assert actions == (
        ["initialize", "initialized", "start", "advance", "advance", "promote", "finalize", "succeed"]
        + ["start", "advance", "halt", "rollback"]
    )
    repo.pull()
    deployment = (repo.human / "apps/backend/deployment.yaml").read_text()
    assert f"image: {PODINFO}:6.1.1 # bump this tag" in deployment  # written back, comment kept
    assert "replicas: 0" in deployment
    generated = repo.human / "apps/backend-gitcanary"
    assert yaml.safe_load((generated / "fleet.yaml").read_text()) == {"defaultNamespace": "prod"}
    first = repo.gitcanary_commits()[0][0]
    message = git("log", "-1", "--format=%B", first, cwd=repo.remote)
    assert "Fleet GitRepo demo (fleet/gitrepo.yaml) scans ./apps" in message


def test_fleet_example_gitrepo_is_valid() -> None:
    """The GitRepo shipped for reference validates against Fleet's CRD; its path covers both bundles."""
    doc = yaml.safe_load((Path(__file__).parent.parent / "examples/fleet/fleet/gitrepo.yaml").read_text())
    assert schema_problems(doc, CRD_DIR) == []
    assert doc["spec"]["paths"] == ["apps"]


CHART = {
    "apps/web/chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "apps/web/chart/values.yaml": f"image:\n  repository: {WEB}\n  tag: 0.1.0\nreplicaCount: 1\n",
    "apps/web/chart/templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports:
            - containerPort: 8080
""",
}

WEB_FLEET_YAML = """defaultNamespace: shop
helm:
  chart: ./chart
  releaseName: web
  values:
    image:
      tag: 1.0.0 # the release
    replicaCount: 2
"""

WEB_CANARY = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  service:
    port: 8080
  analysis:
    interval: 1m
    threshold: 1
    stepWeights: [10, 50]
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
"""

GITREPO = """apiVersion: fleet.cattle.io/v1alpha1
kind: GitRepo
metadata:
  name: shop
  namespace: fleet-local
spec:
  repo: https://git.example.com/shop.git
  paths:
    - {path}
"""


def test_fleet_helm_values_bundle_promotes_and_rolls_back(
    tmp_path: Path, prometheus_fleet: PrometheusServer
) -> None:
    """A chart kept in the repo, its image tag bumped in fleet.yaml helm.values; replicas are a value too."""
    files = {
        **CHART,
        "apps/web/fleet.yaml": WEB_FLEET_YAML,
        "apps/web/canary.yaml": WEB_CANARY,
        "fleet/gitrepo.yaml": GITREPO.format(path="apps"),
    }
    repo = seed(tmp_path, files)

    def bump(old: str, new: str) -> None:
        repo.pull()
        repo.edit("apps/web/fleet.yaml", lambda doc: doc["helm"]["values"]["image"].__setitem__("tag", new))  # type: ignore[index]
        repo.commit_and_push(f"bump {new}")

    promote_then_fail(repo, tmp_path, prometheus_fleet, "shop/web", 61, bump, ("1.0.0", "1.1.0", "1.2.0"))

    actions = check_fleet_commits(
        repo,
        tmp_path,
        paths=["apps"],
        namespace="shop",
        target="web",
        images={"web": WEB},
        tags=expected_tags(repo, "1.0.0", "1.1.0", "1.2.0"),
        replicas=2,
        # stepWeights [10, 50]
        expected=rollout_rows(promoted=[10, 50], failed=[10]),
    )
    assert actions == (
        ["initialize", "initialized", "start", "advance", "advance", "promote", "finalize", "succeed"]
        + ["start", "advance", "rollback"]
    )
    start = next(sha for sha, _, t in repo.gitcanary_commits() if t["Action"] == "start")
    message = git("log", "-1", "--format=%B", start, cwd=repo.remote)
    assert f"image web: {WEB}:1.0.0 -> {WEB}:1.1.0 (apps/web/fleet.yaml helm.values.image.tag)" in message
    rollback = repo.gitcanary_commits()[-1][0]
    message = git("log", "-1", "--format=%B", rollback, cwd=repo.remote)
    assert "written back: " in message and "apps/web/fleet.yaml helm.values.image.tag" in message
    repo.pull()
    fleet_yaml = (repo.human / "apps/web/fleet.yaml").read_text()
    assert "tag: 1.1.0 # the release" in fleet_yaml  # the old tag, the comment kept
    assert yaml.safe_load(fleet_yaml)["helm"]["values"]["replicaCount"] == 0
    assert "repository" not in fleet_yaml  # the chart's default repository still applies


def init_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "checkout"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "seed", cwd=root)
    return root


EXAMPLE = Path(__file__).parent.parent / "examples" / "fleet" / "apps" / "backend"
BACKEND = {f"apps/backend/{p.name}": p.read_text() for p in EXAMPLE.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("gitrepo", "expected"),
    [
        (GITREPO.format(path="apps"), "Fleet GitRepo shop (fleet/gitrepo.yaml) scans ./apps"),
        (
            GITREPO.format(path="apps/backend"),
            "ACTION NEEDED: Fleet GitRepo shop (fleet/gitrepo.yaml) does not scan apps/backend-gitcanary: "
            "add `- apps/backend-gitcanary` to its spec.paths",
        ),
        (
            None,
            "ACTION NEEDED: no Fleet GitRepo in this repository: check that the spec.paths of the GitRepo "
            "that deploys apps/backend also cover apps/backend-gitcanary",
        ),
    ],
)
def test_init_says_what_fleet_needs(tmp_path: Path, gitrepo: str | None, expected: str) -> None:
    files = dict(BACKEND)
    if gitrepo is not None:
        files["fleet/gitrepo.yaml"] = gitrepo
    root = init_repo(tmp_path, files)
    [result] = operations.init(root, "apps/backend")
    assert expected in result.hook
    assert "apps/backend-gitcanary/fleet.yaml" in result.changed
    # Never hooked into a kustomization: Fleet deploys the directory as a bundle of its own.
    assert not (root / "apps/kustomization.yaml").exists()


APEX_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: backend
spec:
  selector:
    app: backend
  ports:
    - name: http
      port: 80
      targetPort: 9898
"""


def count_services(objects: list[dict], name: str) -> int:
    return sum(1 for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == name)


def test_fleet_bundle_service_named_like_the_apex_is_taken_over(tmp_path: Path) -> None:
    """The app's own Service serves until the routing switch, which removes it and adds gitcanary's."""
    files = {
        **BACKEND,
        "apps/backend/service.yaml": APEX_SERVICE,
        "fleet/gitrepo.yaml": GITREPO.format(path="apps"),
    }
    root = init_repo(tmp_path, files)
    [result] = operations.init(root, "apps/backend", switch=True)
    assert result.switched
    initialized = fleet_build(root, ["apps"])
    assert count_services(initialized, "backend") == 1
    apex = next(o for o in initialized if o.get("kind") == "Service" and o["metadata"]["name"] == "backend")
    assert apex["spec"]["selector"] == {"app": "backend-primary"}
    assert not (root / "apps/backend/service.yaml").exists()
    message = git("log", "-1", "--format=%B", cwd=root)
    assert "took over Service prod/backend from apps/backend/service.yaml" in message
    # The commit before (Initializing) kept the app's Service, the only one of that name.
    before = fleet_build(tree_at_local(root, "HEAD~1", tmp_path / "before"), ["apps"])
    assert count_services(before, "backend") == 1


def tree_at_local(root: Path, rev: str, dest: Path) -> Path:
    git("worktree", "add", "-q", "--detach", str(dest), rev, cwd=root)
    return dest


@pytest.mark.parametrize("file", ["service.yaml", "svc/service.yaml"])
def test_flux_app_service_named_like_the_apex_is_taken_over(tmp_path: Path, file: str) -> None:
    """The same rule in a kustomize layout: the file leaves the app's resources in the switch commit."""
    repo = make_config_repo(tmp_path, "istio")
    root = repo.human
    (root / "apps/backend" / file).parent.mkdir(exist_ok=True)
    (root / "apps/backend" / file).write_text(APEX_SERVICE)
    repo.edit("apps/backend/kustomization.yaml", lambda doc: doc["resources"].append(file))  # type: ignore[index]
    repo.commit_and_push("the app ships its own Service")
    assert count_services(kustomize_build(root / "apps"), "backend") == 1
    operations.init(root, "apps/backend", switch=True)
    assert count_services(kustomize_build(root / "apps"), "backend") == 1
    kustomization = yaml.safe_load((root / "apps/backend/kustomization.yaml").read_text())
    assert file not in kustomization["resources"]
    assert not (root / "apps/backend" / file).exists()
    assert "took over Service prod/backend" in git("log", "-1", "--format=%B", cwd=root)


def test_chart_rendering_the_apex_service_is_refused_before_any_commit(tmp_path: Path) -> None:
    chart_service = APEX_SERVICE.replace("name: backend", "name: {{ .Release.Name }}").replace(
        "app: backend", "app: {{ .Release.Name }}"
    )
    files = {
        **CHART,
        "apps/web/chart/templates/service.yaml": chart_service,
        "apps/web/fleet.yaml": WEB_FLEET_YAML,
        "apps/web/canary.yaml": WEB_CANARY,
    }
    root = init_repo(tmp_path, files)
    head = git("rev-parse", "HEAD", cwd=root)
    with pytest.raises(SpecError) as caught:
        operations.init(root, "apps/web")
    assert caught.value.path == "apps/web/fleet.yaml" and caught.value.field == "helm"
    assert "Service shop/web" in str(caught.value) and "two sources for one object" in str(caught.value)
    assert git("rev-parse", "HEAD", cwd=root) == head


def test_remote_chart_is_a_clear_error(tmp_path: Path) -> None:
    files = {
        "apps/web/fleet.yaml": "helm:\n  repo: https://charts.example.com\n  chart: web\n",
        "apps/web/canary.yaml": WEB_CANARY,
    }
    root = init_repo(tmp_path, files)
    with pytest.raises(SpecError) as caught:
        operations.init(root, "apps/web")
    assert caught.value.path == "apps/web/fleet.yaml" and caught.value.field == "helm.chart"
    assert "only charts kept in this Git repository" in str(caught.value)


def test_status_shows_a_fleet_bundle(tmp_path: Path) -> None:
    root = init_repo(tmp_path, dict(BACKEND))
    operations.init(root, "apps/backend")
    [view] = operations.status(root)
    assert (view.key, view.phase, view.target_revision, view.error) == (
        "prod/backend",
        "Initializing",
        "6.1.0",
        "",
    )
    assert json.dumps(view.to_json())


def test_kustomize_bundle_with_a_kustomize_dir(tmp_path: Path) -> None:
    """fleet.yaml `kustomize.dir`: the target is its build; replicas and images go in its kustomization."""
    files = {
        "apps/backend/fleet.yaml": "defaultNamespace: prod\nkustomize:\n  dir: overlay\n",
        "apps/backend/base/deployment.yaml": BACKEND["apps/backend/deployment.yaml"],
        "apps/backend/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "apps/backend/overlay/kustomization.yaml": (
            f"resources:\n  - ../base\nimages:\n  - name: {PODINFO}\n    newTag: 6.2.0\n"
        ),
        "apps/backend/canary.yaml": BACKEND["apps/backend/canary.yaml"],
        "fleet/gitrepo.yaml": GITREPO.format(path="apps"),
    }
    root = init_repo(tmp_path, files)
    operations.init(root, "apps/backend", switch=True)
    assert_invariant(
        fleet_build(root, ["apps"]),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{PODINFO}:6.2.0"},
        canary_images={"backend": f"{PODINFO}:6.2.0"},
        canary_replicas=0,
        weights=(100, 0),
    )
    overlay = yaml.safe_load((root / "apps/backend/overlay/kustomization.yaml").read_text())
    assert overlay["replicas"] == [{"name": "backend", "count": 0}]
    assert not (root / "apps/backend/kustomization.yaml").exists()


def test_generated_bundle_follows_the_apps_cluster_exclusions() -> None:
    from gitcanary.manifests.fleet import Bundle, generated_bundle

    app = Bundle(
        "apps/backend",
        "apps/backend/fleet.yaml",
        {
            "defaultNamespace": "prod",
            "targetCustomizations": [
                {"name": "edge", "clusterSelector": {"matchLabels": {"tier": "edge"}}, "doNotDeploy": True},
                {"name": "big", "clusterGroup": "big", "helm": {"values": {"replicaCount": 5}}},
            ],
        },
    )
    assert generated_bundle(app, "prod") == {
        "defaultNamespace": "prod",
        "targetCustomizations": [
            {"name": "edge", "clusterSelector": {"matchLabels": {"tier": "edge"}}, "doNotDeploy": True}
        ],
    }


def test_app_inside_a_bundle_of_plain_manifests_above_it(tmp_path: Path) -> None:
    """One fleet.yaml for all of apps/: the generated dir becomes a bundle of its own, or the apps bundle
    would deploy its kustomization.yaml and status file as if they were objects."""
    files = {
        "apps/fleet.yaml": "defaultNamespace: prod\n",
        "apps/backend/deployment.yaml": BACKEND["apps/backend/deployment.yaml"],
        "apps/backend/canary.yaml": BACKEND["apps/backend/canary.yaml"],
        "fleet/gitrepo.yaml": GITREPO.format(path="apps"),
    }
    root = init_repo(tmp_path, files)
    [result] = operations.init(root, "apps/backend", switch=True)
    assert result.key == "prod/backend"
    assert "scans ./apps" in result.hook
    assert "apps/backend-gitcanary/fleet.yaml" in result.changed
    assert_invariant(
        fleet_build(root, ["apps"]),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{PODINFO}:6.1.0"},
        canary_images={"backend": f"{PODINFO}:6.1.0"},
        canary_replicas=0,
        weights=(100, 0),
    )


def test_helm_image_in_a_values_file_is_found_and_written_back_there(tmp_path: Path) -> None:
    """The tag comes from the file whose value wins (chart values.yaml < helm.values < valuesFiles)."""
    from gitcanary.manifests import detect

    files = {
        **CHART,
        "apps/web/fleet.yaml": (
            "helm:\n  chart: ./chart\n  values:\n    image:\n      tag: 1.0.0\n"
            "  valuesFiles:\n    - prod.yaml\n"
        ),
        "apps/web/prod.yaml": "image:\n  tag: 2.0.0 # prod\n",
    }
    root = init_repo(tmp_path, files)
    source = detect.locate(root, "apps/web", "web", f"{WEB}:2.0.0")
    assert source == detect.ImageSource("apps/web/prod.yaml", "image.tag", "helm-values", 0)
    assert detect.write_back(root, source, "web", f"{WEB}:2.0.0", f"{WEB}:1.9.0")
    assert (root / "apps/web/prod.yaml").read_text() == "image:\n  tag: 1.9.0 # prod\n"
    # Another repository is written next to the tag, where it overrides the chart's default.
    source = detect.locate(root, "apps/web", "web", f"{WEB}:1.9.0")
    assert source is not None
    assert detect.write_back(root, source, "web", f"{WEB}:1.9.0", "mirror.example.com/web:1.8.0")
    assert yaml.safe_load((root / "apps/web/prod.yaml").read_text()) == {
        "image": {"tag": "1.8.0", "repository": "mirror.example.com/web"}
    }


def test_bad_helm_image_keys_annotation_names_the_file_and_field(tmp_path: Path) -> None:
    canary = WEB_CANARY.replace(
        "  name: web\n", "  name: web\n  annotations:\n    gitcanary.io/helm-image-keys: image\n", 1
    )
    files = {**CHART, "apps/web/fleet.yaml": WEB_FLEET_YAML, "apps/web/canary.yaml": canary}
    root = init_repo(tmp_path, files)
    from gitcanary.manifests.discovery import scan
    from gitcanary.manifests.generate import Layout

    [loaded] = scan(root).canaries.values()
    with pytest.raises(SpecError) as caught:
        _ = Layout.of(loaded).helm_image_keys
    assert caught.value.path == "apps/web/canary.yaml"
    assert caught.value.field == "metadata.annotations.gitcanary.io/helm-image-keys"


def test_cli_init_prints_the_fleet_hook(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = init_repo(tmp_path, {**BACKEND, "fleet/gitrepo.yaml": GITREPO.format(path="apps/backend")})
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "init", "apps/backend"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote apps/backend-gitcanary/fleet.yaml" in proc.stdout
    assert "ACTION NEEDED" in proc.stdout and "spec.paths" in proc.stdout


def test_plain_bundle_contents_match_what_fleet_deploys(tmp_path: Path) -> None:
    """Not fleet.yaml, overlays/, a nested bundle, hidden files, or what .fleetignore names; both the
    reconciler's reading and the oracle's agree."""
    from gitcanary.manifests import fleet

    def config_map(name: str) -> str:
        return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"

    files = {
        "apps/a/fleet.yaml": "namespace: forced\n",
        "apps/a/one.yaml": config_map("one"),
        "apps/a/sub/two.yml": config_map("two") + "  namespace: elsewhere\n",
        "apps/a/overlays/prod/three.yaml": config_map("three"),
        "apps/a/nested/fleet.yaml": "{}\n",
        "apps/a/nested/four.yaml": config_map("four"),
        "apps/a/.hidden.yaml": config_map("hidden"),
        "apps/a/.fleetignore": "ignored-*.yaml\nskip/*\n",
        "apps/a/ignored-five.yaml": config_map("five"),
        "apps/a/skip/six.yaml": config_map("six"),
        "apps/a/sub/ignored-seven.yaml": config_map("seven"),
    }
    root = init_repo(tmp_path, files)
    bundle = fleet.bundle_of(root, "apps/a")
    assert bundle is not None
    ours = {(o["metadata"]["name"], o["metadata"]["namespace"]) for o in fleet.build(root, bundle)}
    assert ours == {("one", "forced"), ("two", "forced")}
    oracle = {(o["metadata"]["name"], o["metadata"]["namespace"]) for o in fleet_build(root, ["apps/a"])}
    assert oracle == ours | {("four", "default")}  # the nested bundle is deployed by itself


def test_reconciler_takes_over_the_apex_service_in_its_routing_switch(tmp_path: Path) -> None:
    """`gitcanary run` initializing a Fleet app that ships a Service named like the apex."""
    repo = make_config_repo(tmp_path, "fleet")
    (repo.human / "apps/backend/service.yaml").write_text(APEX_SERVICE)
    repo.commit_and_push("the app ships its own Service")
    clock = Clock(GOOD_FROM)
    settings = Settings(repo=str(repo.remote), workdir=tmp_path / "work", settle=0)
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    run_until(rec, clock, "prod/backend", "Initialized", 1)
    commits = repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == ["initialize", "initialized"]
    for sha, _, _ in commits:
        objects = fleet_build(tree_at(repo, sha, tmp_path / "trees" / sha), ["apps"])
        assert count_services(objects, "backend") == 1
    switch = commits[-1][0]
    assert "took over Service prod/backend from apps/backend/service.yaml" in git(
        "log", "-1", "--format=%B", switch, cwd=repo.remote
    )
    assert "apps/backend/service.yaml" in git("show", "--name-only", "--format=", switch, cwd=repo.remote)


def test_fleet_settings_gitcanary_does_not_act_on_are_warned_about(tmp_path: Path) -> None:
    fleet_yaml = WEB_FLEET_YAML + (
        "    ingress:\n      host: web.${ .ClusterLabels.region }.example.com\n"
        "targetCustomizations:\n"
        "  - name: eu\n    clusterSelector:\n      matchLabels:\n        region: eu\n"
        "    helm:\n      values:\n        replicaCount: 5\n"
        "  - name: lab\n    clusterGroup: lab\n    doNotDeploy: true\n"
    )
    files = {**CHART, "apps/web/fleet.yaml": fleet_yaml, "apps/web/canary.yaml": WEB_CANARY}
    root = init_repo(tmp_path, files)
    errors, warnings = validate_repo(root)
    assert errors == []
    assert warnings == [
        "apps/web/fleet.yaml: targetCustomizations[0] (eu) changes helm on some clusters; gitcanary renders "
        "the bundle's defaults, so the primary there is a copy of the default target",
        "apps/web/fleet.yaml: helm.values.ingress.host: Fleet fills in this template per cluster; gitcanary "
        "renders it as written",
    ]
