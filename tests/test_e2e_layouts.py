"""Other real layouts: Flagger's own podinfo kustomization and canary, and a plain-manifest directory.

Both have their image in a manifest's `image:` field rather than in a kustomization `images:` entry,
and neither has a parent kustomization: Flux's generated kustomization builds the path, so the
oracle builds it the way Flux does (a directory with a kustomization.yaml is one resource; other
directories are walked and their YAML files added).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from conftest import ConfigRepo, git
from hook_server import HookServer, hook_server
from oracle import assert_invariant, kustomize_build, rollout_rows
from prometheus_server import DATA_END, PrometheusServer, healthy_then_failing, running_prometheus
from test_e2e_rollout import Clock, tree_at
from test_yaml_layout_properties import changed_lines_are_only_values

from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

FIXTURES = Path(__file__).parent / "data" / "fixtures" / "flagger"
PODINFO = "ghcr.io/stefanprodan/podinfo"
GOOD_FROM, BAD_FROM = DATA_END - timedelta(minutes=60), DATA_END - timedelta(minutes=30)


@pytest.fixture(scope="module")
def prometheus_layouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = healthy_then_failing([("podinfo", "test"), ("backend", "shop")], GOOD_FROM, BAD_FROM)
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def flux_build(root: Path, path: str = "") -> list[dict]:
    """What Flux applies for a path without a kustomization.yaml (fluxcd/pkg kustomize generator)."""
    directory = root / path if path else root
    if (directory / "kustomization.yaml").exists():
        return kustomize_build(directory)
    objects: list[dict] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and entry.name != ".git":
            objects += flux_build(root, str(entry.relative_to(root)))
        elif entry.suffix in (".yaml", ".yml"):
            objects += [d for d in yaml.safe_load_all(entry.read_text()) if isinstance(d, dict)]
    return objects


def seed(tmp_path: Path, files: dict[str, str]) -> ConfigRepo:
    seed_dir = tmp_path / "seed"
    for name, text in files.items():
        (seed_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (seed_dir / name).write_text(text)
    git("init", "-q", "-b", "main", cwd=seed_dir)
    git("add", "-A", cwd=seed_dir)
    git("commit", "-q", "-m", "seed", cwd=seed_dir)
    git("clone", "-q", "--bare", str(seed_dir), str(tmp_path / "remote.git"), cwd=tmp_path)
    shutil.rmtree(seed_dir)
    git("clone", "-q", str(tmp_path / "remote.git"), str(tmp_path / "human"), cwd=tmp_path)
    return ConfigRepo(tmp_path / "remote.git", tmp_path / "human")


PODINFO_TAGS = ("6.0.0", "6.0.1", "6.0.2")


def podinfo_bump(repo: ConfigRepo) -> Callable[[str, str], None]:
    return lambda old, new: set_image(repo, "podinfo/deployment.yaml", f"{PODINFO}:{old}", f"{PODINFO}:{new}")


def set_image(repo: ConfigRepo, path: str, old: str, new: str) -> None:
    repo.pull()
    file = repo.human / path
    file.write_text(file.read_text().replace(old, new))
    repo.commit_and_push(f"bump {new.rsplit(':', 1)[1]}")


def run_until(rec: Reconciler, clock: Clock, key: str, phase: str, seconds: float, limit: int = 60) -> None:
    for _ in range(limit):
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        clock.advance(seconds)
        status = result.reports[key].status
        if status is not None and status.phase.value == phase:
            return
    raise AssertionError(f"{key} did not reach {phase}")


def promote_then_fail(
    repo: ConfigRepo,
    tmp_path: Path,
    prometheus: PrometheusServer,
    key: str,
    seconds: float,
    bump: Callable[[str, str], None],
    tags: tuple[str, str, str],
) -> None:
    """Initialize, release tags[1] on healthy traffic (promoted), then tags[2] on bad traffic (rolled
    back)."""
    clock = Clock(GOOD_FROM + timedelta(minutes=2))
    settings = Settings(repo=str(repo.remote), workdir=tmp_path / "work", prometheus=prometheus.url, settle=0)
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    run_until(rec, clock, key, "Initialized", seconds)
    bump(tags[0], tags[1])
    run_until(rec, clock, key, "Succeeded", seconds)
    bump(tags[1], tags[2])
    clock.now = BAD_FROM + timedelta(minutes=2)
    run_until(rec, clock, key, "Failed", seconds)


def check_every_commit(
    repo: ConfigRepo,
    tmp_path: Path,
    *,
    namespace: str,
    target: str,
    images: Callable[[str], dict[str, str]],
    tags: dict[str, tuple[str, str]],
    replicas: int,
    expected: list[tuple[str, str, int]],
    ab_match: list[dict] | None = None,
    path: str = "",
) -> list[str]:
    """Build every gitcanary commit as Flux would and hold it to the invariant; returns the actions."""
    actions = []
    commits = repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == [row[0] for row in expected]
    # Phase and weight come from the test's table (rollout_rows), never from gitcanary's trailers.
    for (sha, _subject, trailers), (_action, phase, weight) in zip(commits, expected, strict=True):
        actions.append(trailers["Action"])
        primary_tag, canary_tag = tags[sha]
        running = phase in ("Progressing", "Promoting", "Finalising")
        assert_invariant(
            flux_build(tree_at(repo, sha, tmp_path / "trees" / sha), path),
            namespace=namespace,
            target=target,
            service=target,
            primary_images=images(primary_tag),
            canary_images=images(canary_tag),
            canary_replicas=None if phase == "Initializing" else (replicas if running else 0),
            weights=None if phase == "Initializing" else (100 - weight, weight),
            ab_match=ab_match,
        )
    return actions


def expected_tags(repo: ConfigRepo, first: str, second: str, third: str) -> dict[str, tuple[str, str]]:
    """(primary, canary) image tags the person and the rollout imply at each gitcanary commit."""
    tags: dict[str, tuple[str, str]] = {}
    primary, canary = first, first
    for sha, subject, trailers in repo.remote_log():
        if subject == f"bump {second}":
            canary = second
        elif subject == f"bump {third}":
            canary = third
        action = trailers.get("Action")
        if action == "promote":
            primary = canary
        if action == "rollback":
            canary = primary  # the old tag is written back in the same commit
        if action:
            tags[sha] = (primary, canary)
    return tags


@pytest.fixture
def loadtester() -> Iterator[HookServer]:
    """Flagger's examples call its load tester in the cluster; a local server answers the way it does."""
    with hook_server() as server:
        yield server


def flagger_example(name: str, loadtester: HookServer) -> str:
    text = (FIXTURES / "artifacts" / "examples" / name).read_text()
    return text.replace("http://flagger-loadtester.test/", f"{loadtester.url}/")


def test_flaggers_podinfo_promotes_and_rolls_back(
    tmp_path: Path, prometheus_layouts: PrometheusServer, loadtester: HookServer
) -> None:
    files = {f"podinfo/{p.name}": p.read_text() for p in (FIXTURES / "kustomize" / "podinfo").iterdir()}
    files["podinfo/canary.yaml"] = flagger_example("istio-canary.yaml", loadtester)
    repo = seed(tmp_path, files)
    promote_then_fail(
        repo, tmp_path, prometheus_layouts, "test/podinfo", 16, podinfo_bump(repo), PODINFO_TAGS
    )

    actions = check_every_commit(
        repo,
        tmp_path,
        namespace="test",
        target="podinfo",
        images=lambda tag: {"podinfod": f"{PODINFO}:{tag}"},
        tags=expected_tags(repo, "6.0.0", "6.0.1", "6.0.2"),
        replicas=2,
        # stepWeight 5, maxWeight 50, threshold 10
        expected=rollout_rows(promoted=list(range(5, 55, 5)), failed=[5], halts=9),
    )
    # stepWeight 5 up to maxWeight 50: ten advances; threshold 10: nine halts, then the rollback.
    assert actions == (
        ["initialize", "initialized", "start"]
        + ["advance"] * 10
        + ["promote", "finalize", "succeed", "start", "advance"]
        + ["halt"] * 9
        + ["rollback"]
    )
    repo.pull()
    assert f"image: {PODINFO}:6.0.1" in (repo.human / "podinfo/deployment.yaml").read_text()
    # Its hooks reached the load tester: the conformance test before each rollout's first step.
    assert [body["metadata"]["type"] for body in loadtester.posted("/")].count("bash") == 2


def test_flaggers_ab_testing_canary(
    tmp_path: Path, prometheus_layouts: PrometheusServer, loadtester: HookServer
) -> None:
    """istio-abtest.yaml: ten iterations with Firefox users and insiders on the canary, then promotion."""
    files = {f"podinfo/{p.name}": p.read_text() for p in (FIXTURES / "kustomize" / "podinfo").iterdir()}
    abtest = flagger_example("istio-abtest.yaml", loadtester)
    files["podinfo/canary.yaml"] = abtest
    repo = seed(tmp_path, files)
    promote_then_fail(
        repo, tmp_path, prometheus_layouts, "test/podinfo", 16, podinfo_bump(repo), PODINFO_TAGS
    )

    match = yaml.safe_load(abtest)["spec"]["analysis"]["match"]
    actions = check_every_commit(
        repo,
        tmp_path,
        namespace="test",
        target="podinfo",
        images=lambda tag: {"podinfod": f"{PODINFO}:{tag}"},
        tags=expected_tags(repo, "6.0.0", "6.0.1", "6.0.2"),
        replicas=2,
        # 10 iterations; the matched requests all go to the canary
        expected=rollout_rows(promoted=[100] * 10, failed=[100], halts=9),
        ab_match=match,
    )
    assert actions == (
        ["initialize", "initialized", "start"]
        + ["advance"] * 10
        + ["promote", "finalize", "succeed"]
        + ["start", "advance"]
        + ["halt"] * 9
        + ["rollback"]
    )
    weights = [int(t["Weight"]) for _, _, t in repo.gitcanary_commits() if t["Action"] == "advance"]
    assert weights == [100] * 11  # every iteration sends the matched requests to the canary


PLAIN_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: backend
  template:
    metadata:
      labels:
        app.kubernetes.io/name: backend
    spec:
      containers:
        - name: app
          image: registry.example.com/shop/backend:2.0.0
"""

PLAIN_CANARY = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: backend
  namespace: shop
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: backend
  service:
    port: 8080
  analysis:
    interval: 1m
    threshold: 1
    stepWeights: [5, 25, 50]
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
"""


def test_plain_manifests_without_kustomization(tmp_path: Path, prometheus_layouts: PrometheusServer) -> None:
    repo = seed(
        tmp_path,
        {"deploy/backend/deployment.yaml": PLAIN_DEPLOYMENT, "deploy/backend/canary.yaml": PLAIN_CANARY},
    )
    image = "registry.example.com/shop/backend"

    def bump(old: str, new: str) -> None:
        set_image(repo, "deploy/backend/deployment.yaml", f"{image}:{old}", f"{image}:{new}")

    promote_then_fail(
        repo, tmp_path, prometheus_layouts, "shop/backend", 61, bump, ("2.0.0", "2.1.0", "2.2.0")
    )

    actions = check_every_commit(
        repo,
        tmp_path,
        namespace="shop",
        target="backend",
        images=lambda tag: {"app": f"{image}:{tag}"},
        tags=expected_tags(repo, "2.0.0", "2.1.0", "2.2.0"),
        replicas=3,
        # stepWeights [5, 25, 50]
        expected=rollout_rows(promoted=[5, 25, 50], failed=[5]),
    )
    assert actions == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
        "start",
        "advance",
        "rollback",
    ]
    repo.pull()
    deployment = (repo.human / "deploy/backend/deployment.yaml").read_text()
    assert f"image: {image}:2.1.0" in deployment
    assert "replicas: 0" in deployment  # the target idles at zero; the primary keeps the 3


# A repository shaped like the well-known Flux + Flagger + Istio GitOps layout: apps/ has no
# kustomization.yaml (Flux generates one for ./apps), each app patches its Deployment with a JSON
# 6902 patch (an injected sidecar), pins the image with newName + newTag, and the canaries use
# MetricTemplates that live with the Istio config, several to a file, in another namespace.
GITOPS_FILES = {
    "clusters/prod/apps.yaml": """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 30m0s
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./apps
  prune: true
""",
    "apps/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    "apps/cart/kustomization.yaml": """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - canary.yaml
  - deployment.yaml
  - hpa.yaml
images:
  - name: ghcr.io/acme/cart
    newName: ghcr.io/acme/cart
    newTag: 1.0.0 # {"$imagepolicy": "flux-system:cart:tag"}
patchesJson6902:
- path: deployment.patch.yaml
  target:
      group: apps
      kind: Deployment
      name: cart
      version: v1
""",
    "apps/cart/deployment.patch.yaml": """- op: add
  path: /spec/template/metadata/annotations/sidecar.istio.io~1status
  value: '{"containers":["istio-proxy"]}'
- op: add
  path: /spec/template/spec/containers/1
  value:
    name: istio-proxy
    image: docker.io/istio/proxyv2:1.18.5
    args: [proxy, sidecar]
""",
    "apps/cart/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
  labels:
    app: cart
spec:
  minReadySeconds: 5
  selector:
    matchLabels:
      app: cart
  template:
    metadata:
      annotations:
        prometheus.io/scrape: "true"
      labels:
        app: cart
    spec:
      containers:
      - name: cart
        image: ghcr.io/acme/cart:0.9.0
        ports:
        - containerPort: 9898
          name: http
""",
    "apps/cart/hpa.yaml": """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: cart
  namespace: shop
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: cart
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 99
""",
    "apps/cart/canary.yaml": """apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: cart
  namespace: shop
spec:
  # deployment reference
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: cart
  progressDeadlineSeconds: 120
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: cart
  service:
    port: 9898
  skipAnalysis: false
  analysis:
    interval: 15s
    threshold: 3
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: error-rate
        templateRef:
          name: error-rate
          namespace: istio-system
        thresholdRange:
          max: 1
        interval: 30s
      - name: latency
        templateRef:
          name: latency
          namespace: istio-system
        thresholdRange:
          max: 500
        interval: 30s
""",
    "istio/gateway/flagger-metrics.yaml": """apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://flagger-prometheus.istio-system:9090
  query: |
    100 - sum(rate(istio_requests_total{reporter="destination",
      destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}",
      response_code!~"5.*"}[{{ interval }}]))
    / sum(rate(istio_requests_total{reporter="destination",
      destination_workload_namespace="{{ namespace }}",
      destination_workload=~"{{ target }}"}[{{ interval }}]))
    * 100
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: latency
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://flagger-prometheus.istio-system:9090
  query: |
    histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",
      destination_workload_namespace="{{ namespace }}",
      destination_workload=~"{{ target }}"}[{{ interval }}]))
      by (le))
""",
}


@pytest.fixture(scope="module")
def prometheus_cart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = healthy_then_failing([("cart", "shop")], GOOD_FROM, BAD_FROM)
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def test_gitops_layout_with_patches_and_shared_templates(
    tmp_path: Path, prometheus_cart: PrometheusServer
) -> None:
    repo = seed(tmp_path, GITOPS_FILES)

    def bump(old: str, new: str) -> None:
        repo.pull()
        repo.edit("apps/cart/kustomization.yaml", lambda doc: doc["images"][0].__setitem__("newTag", new))
        repo.commit_and_push(f"bump {new}")

    promote_then_fail(repo, tmp_path, prometheus_cart, "shop/cart", 16, bump, ("1.0.0", "1.1.0", "1.2.0"))
    init = repo.gitcanary_commits()[0][0]
    body = git("log", "-1", "--format=%B", init, cwd=repo.remote)
    assert "Flux Kustomization apps (clusters/prod/apps.yaml) builds ./apps" in body

    proxy = {"istio-proxy": "docker.io/istio/proxyv2:1.18.5"}
    actions = check_every_commit(
        repo,
        tmp_path,
        namespace="shop",
        target="cart",
        images=lambda tag: {"cart": f"ghcr.io/acme/cart:{tag}", **proxy},
        tags=expected_tags(repo, "1.0.0", "1.1.0", "1.2.0"),
        replicas=1,
        # stepWeight 10, maxWeight 30
        expected=rollout_rows(promoted=[10, 20, 30], failed=[10], halts=2),
        path="apps",
    )
    assert actions == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
        "start",
        "advance",
        "halt",
        "halt",
        "rollback",
    ]
    repo.pull()
    kustomization = (repo.human / "apps/cart/kustomization.yaml").read_text()
    assert 'newTag: 1.1.0 # {"$imagepolicy": "flux-system:cart:tag"}' in kustomization
    # The kustomization mixes "images:\n  - " with "patchesJson6902:\n- ": every edit of a user's
    # file (each of the rollout's commits) keeps each line it does not change, byte for byte.
    edited = 0
    for sha, _, _ in repo.gitcanary_commits():
        for path in git("diff", "--name-only", f"{sha}^", sha, cwd=repo.remote).split():
            if "-gitcanary/" in path:
                continue
            old, new = (git("show", f"{rev}:{path}", cwd=repo.remote) for rev in (f"{sha}^", sha))
            assert not changed_lines_are_only_values(old, new), (sha, path, new)
            edited += 1
    assert edited >= 4  # the replicas entry, two bumps taken over, the rollback's tag
