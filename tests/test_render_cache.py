"""Builds are cached by the content of what kustomize reads: a weight step builds nothing, and an
edit to any input (a base outside the app dir, a component's patch, a configMapGenerator's file)
builds again.

Real kustomize, a real bare remote, the real reconciler. Builds are counted through
GITCANARY_KUBECTL pointing at a wrapper script that appends a byte per run and execs the real
kubectl (no gitcanary code is patched). The expected target is built independently by the
oracle's own `kubectl kustomize` of the person's clone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo, git
from oracle import kustomize_build

from gitcanary.manifests import kustomize
from gitcanary.manifests.generate import Rendered
from gitcanary.manifests.render_cache import digest
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.status import Phase

KEY = "prod/web"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

FILES = {
    "base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "base/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: ghcr.io/stefanprodan/podinfo:6.0.0
          envFrom:
            - configMapRef:
                name: web-settings
""",
    "components/tuning/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - path: patch.yaml
configMapGenerator:
  - name: web-settings
    files:
      - settings.properties
""",
    "components/tuning/patch.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          args: ["--level=info"]
""",
    "components/tuning/settings.properties": "color=blue\n",
    "apps/kustomization.yaml": "resources:\n  - web\n",
    "apps/web/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: prod
resources:
  - ../../base
  - canary.yaml
components:
  - ../../components/tuning
images:
  - name: ghcr.io/stefanprodan/podinfo
    newTag: 6.1.0
""",
    "apps/web/canary.yaml": """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: prod
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  service:
    port: 80
    targetPort: 9898
  analysis:
    interval: 30s
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics: []
""",
}


@pytest.fixture
def repo(tmp_path: Path) -> ConfigRepo:
    seed = tmp_path / "seed"
    for path, text in FILES.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "web with a base, a component and a generator", cwd=seed)
    remote = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(remote), cwd=tmp_path)
    shutil.rmtree(seed)
    git("clone", "-q", str(remote), str(tmp_path / "human"), cwd=tmp_path)
    return ConfigRepo(remote, tmp_path / "human")


class Builds:
    """`kubectl kustomize` runs, counted by a wrapper in front of the real kubectl."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = kustomize.kubectl_path()
        self.file = tmp_path / "builds"
        self.file.write_text("")
        wrapper = tmp_path / "kubectl-counting"
        wrapper.write_text(f'#!/bin/sh\nprintf x >> "{self.file}"\nexec "{real}" "$@"\n')
        wrapper.chmod(0o755)
        monkeypatch.setenv("GITCANARY_KUBECTL", str(wrapper))
        kustomize.kubectl_path.cache_clear()

    def count(self) -> int:
        return self.file.stat().st_size


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Builds]:
    counter = Builds(tmp_path, monkeypatch)
    yield counter
    kustomize.kubectl_path.cache_clear()  # the next test finds the real kubectl again


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def reconciler(repo: ConfigRepo, tmp_path: Path, clock: Clock) -> Reconciler:
    settings = Settings(repo=str(repo.remote), workdir=tmp_path / "work", settle=0)
    return Reconciler(settings, clock=clock, sleep=lambda _: None)


def initialized(rec: Reconciler, clock: Clock) -> None:
    for _ in range(3):
        rec.tick()
        clock.now += timedelta(seconds=31)
    status = rec.reports[KEY].status
    assert status is not None and status.phase is Phase.INITIALIZED


def expected_target(repo: ConfigRepo) -> dict:
    """The Deployment as the oracle's own kustomize builds the person's clone."""
    repo.pull()
    objects = kustomize_build(repo.human / "apps" / "web")
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")


def built(rec: Reconciler) -> Rendered:
    """The build the reconciler decides from now (from its caches when they hold it)."""
    assert rec.catalog is not None
    return rec._rendered(KEY, rec.catalog.canaries[KEY])


def changed_by(repo: ConfigRepo, sha: str) -> set[str]:
    return set(git("show", "--name-only", "--format=", sha, cwd=repo.remote).split())


def test_weight_steps_build_nothing(repo: ConfigRepo, tmp_path: Path, builds: Builds) -> None:
    clock = Clock()
    rec = reconciler(repo, tmp_path, clock)
    initialized(rec, clock)
    repo.bump("apps/web", "6.1.1")
    before = builds.count()
    started = rec.tick()  # the bump: one build, START (the target's replicas go to 1)
    assert [t["Action"] for _, _, t in repo.gitcanary_commits()][-1] == "start"
    assert builds.count() - before == 1
    clock.now += timedelta(seconds=31)
    rec.tick()  # the first step builds again: START changed the app's kustomization `replicas:`
    steps = 0
    for _ in range(3):
        clock.now += timedelta(seconds=31)
        before = builds.count()
        result = rec.tick()
        assert len(result.commits) == 1
        # Only gitcanary's generated files changed, so the app builds as before: no kustomize run.
        assert all(path.startswith("apps/web-gitcanary/") for path in changed_by(repo, result.commits[0]))
        assert builds.count() == before, "a weight step ran kustomize"
        steps += 1
    assert steps == 3 and started.commits
    before = builds.count()
    assert built(rec).target == expected_target(repo)  # from the cache, and still what the app builds
    assert builds.count() == before


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("base/deployment.yaml", "          envFrom:", "          workingDir: /srv\n          envFrom:"),
        ("components/tuning/patch.yaml", "--level=info", "--level=debug"),
        ("components/tuning/settings.properties", "color=blue", "color=green"),
    ],
)
def test_an_edit_to_any_input_builds_again(
    repo: ConfigRepo, tmp_path: Path, builds: Builds, path: str, old: str, new: str
) -> None:
    """Each of these files sits outside the app dir: only the full input set finds them."""
    clock = Clock()
    rec = reconciler(repo, tmp_path, clock)
    initialized(rec, clock)
    cached = built(rec)
    file = repo.human / path
    file.write_text(file.read_text().replace(old, new))
    repo.commit_and_push(f"edit {path}")
    before = builds.count()
    rec.tick()
    assert builds.count() - before == 1
    target = expected_target(repo)
    assert built(rec).target == target != cached.target
    # The changed pod template is a new revision: the rollout starts.
    assert repo.gitcanary_commits()[-1][2]["Action"] == "start"


def test_an_edit_outside_the_inputs_builds_nothing(repo: ConfigRepo, tmp_path: Path, builds: Builds) -> None:
    clock = Clock()
    rec = reconciler(repo, tmp_path, clock)
    initialized(rec, clock)
    repo.pull()
    (repo.human / "README.md").write_text("not read by any build\n")
    (repo.human / "apps" / "web-gitcanary" / "note.yaml").write_text("a: generated dir, not an input\n")
    repo.commit_and_push("unrelated files")
    before = builds.count()
    rec.tick()
    assert builds.count() == before


def test_digest_reads_every_file_under_an_input_dir_but_not_generated_dirs(tmp_path: Path) -> None:
    """`gen` stands for a generated dir set by the gitcanary.io/generated-dir annotation (any name)."""
    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "gen").mkdir()
    (tmp_path / "app" / "sub" / "values.yaml").write_text("a: 1\n")
    (tmp_path / "gen" / "routing.yaml").write_text("weight: 10\n")
    first = digest(tmp_path, {"app", "gen"}, {"gen"})
    (tmp_path / "gen" / "routing.yaml").write_text("weight: 20\n")
    assert digest(tmp_path, {"app", "gen"}, {"gen"}) == first
    (tmp_path / "app" / "sub" / "values.yaml").write_text("a: 2\n")
    assert digest(tmp_path, {"app", "gen"}, {"gen"}) != first
    assert digest(tmp_path, {"app"}, set(), salt="other canary fields") != digest(tmp_path, {"app"}, set())


def test_a_hand_edit_of_a_cached_status_is_seen_by_a_live_reconciler(
    repo: ConfigRepo, tmp_path: Path
) -> None:
    """The status gitcanary just committed stays cached only while the file holds what it wrote: a
    person's edit after that (same process, no restart) is read, not obeyed, and written back."""
    clock = Clock()
    rec = reconciler(repo, tmp_path, clock)
    initialized(rec, clock)
    repo.bump("apps/web", "6.1.1")
    for _ in range(2):
        rec.tick()  # START, then a first step: gitcanary's own status is cached
        clock.now += timedelta(seconds=31)
    repo.pull()
    status_file = repo.human / "apps/web-gitcanary/gitcanary-status.yaml"
    own = status_file.read_text()
    assert "phase: Progressing" in own
    status_file.write_text(own.replace("phase: Progressing", "phase: Promoting"))
    repo.commit_and_push("hand edit of the status")
    rec.tick()
    subject = git("log", "-1", "--format=%s", "main", cwd=repo.remote).strip()
    assert subject == "gitcanary: restore prod/web status written by Pat Person"
    repo.pull()
    assert status_file.read_text() == own
