"""The cluster observer through the real `kubernetes` client against kmock's emulator.

Flux Kustomizations, Fleet GitRepos and Bundles, and Deployments are seeded shaped exactly like
their controllers write them (checked against the CRDs on seeding); commit ancestry is answered
by a real Git repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import git
from kube_emulator import (
    APPLICATIONS,
    BUNDLES,
    DEPLOYMENTS,
    GITREPOS,
    KUSTOMIZATIONS,
    Emulator,
    argocd_application,
    deployment,
    fleet_bundle,
    fleet_gitrepo,
    flux_kustomization,
    running_emulator,
)
from test_rollout import make_canary, rolling

from gitcanary.cluster import ClusterObserver, api_client
from gitcanary.cluster.connect import ClusterConfigError
from gitcanary.cluster.revisions import Ancestry, flux_revision, same_repository
from gitcanary.core.observations import Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.spec.status import Phase

NOW = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
DIRS = ["apps/backend", "apps/backend-gitcanary"]


class History:
    """A real repository: c1 <- c2 <- c3 on main, and `side` branching off c1."""

    def __init__(self, root: Path) -> None:
        from git import Repo

        root.mkdir()
        git("init", "-q", "-b", "main", cwd=root)
        self.commits = []
        for n in range(1, 4):
            (root / "apps").mkdir(exist_ok=True)
            (root / "apps" / f"step{n}.yaml").write_text(f"n: {n}\n")
            git("add", "-A", cwd=root)
            git("commit", "-q", "-m", f"step {n}", cwd=root)
            self.commits.append(git("rev-parse", "HEAD", cwd=root).strip())
        git("checkout", "-q", "-b", "side", self.commits[0], cwd=root)
        (root / "side.yaml").write_text("side: true\n")
        git("add", "-A", cwd=root)
        git("commit", "-q", "-m", "side", cwd=root)
        self.side = git("rev-parse", "HEAD", cwd=root).strip()
        git("checkout", "-q", "main", cwd=root)
        self.ancestry = Ancestry(Repo(root))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running
        running.assert_read_only()


@pytest.fixture
def kube(emulator: Emulator) -> Emulator:
    emulator.clear()
    return emulator


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "repo")


def observer_for(kube: Emulator, tmp_path: Path, history: History) -> ClusterObserver:
    api = api_client("on", str(kube.kubeconfig(tmp_path)))
    assert api is not None
    return ClusterObserver(api, "main", history.ancestry)


def ready_workloads(kube: Emulator, **canary: object) -> None:
    kube.put(DEPLOYMENTS, deployment("backend", **canary))  # type: ignore[arg-type]
    kube.put(DEPLOYMENTS, deployment("backend-primary"))


# -- Flux --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("applied_index", "want", "reason"),
    [
        (1, True, "Kustomization flux-system/apps applied"),  # exactly the commit
        (2, True, "Kustomization flux-system/apps applied"),  # a descendant
        (0, False, "not yet"),  # an older commit
    ],
    ids=["applied", "descendant", "not-yet-applied"],
)
def test_flux_commit_applied(
    kube: Emulator, tmp_path: Path, history: History, applied_index: int, want: bool, reason: str
) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[applied_index]))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.applied is want, seen
    assert reason in seen.reason
    assert seen.canary is not None and seen.canary.ready
    assert seen.primary is not None and seen.primary.ready
    assert (seen.live_since == NOW) is want


def test_flux_commit_on_another_line_is_not_applied(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.side))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and "not yet" in seen.reason


def test_flux_unknown_revision_waits(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", "f" * 40))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and "does not have" in seen.reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ready": False}, "not ready: Ready=False HealthCheckFailed"),
        ({"generation": 3, "observed": 2}, "has not observed its generation 3"),
    ],
    ids=["failed-health", "generation-not-observed"],
)
def test_flux_failed_health_waits(
    kube: Emulator, tmp_path: Path, history: History, overrides: dict[str, object], reason: str
) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[2], **overrides))  # type: ignore[arg-type]
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and reason in seen.reason, seen
    assert seen.live_since is None


def test_flux_most_specific_kustomization_and_other_branches(
    kube: Emulator, tmp_path: Path, history: History
) -> None:
    # The root one is behind but does not build ./apps itself; another branch's is ignored.
    kube.put(KUSTOMIZATIONS, flux_kustomization("root", "./", history.commits[0]))
    kube.put(KUSTOMIZATIONS, flux_kustomization("staging", "./apps", history.commits[0], branch="staging"))
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    kube.put(KUSTOMIZATIONS, flux_kustomization("never", "./apps/backend-gitcanary", None))
    ready_workloads(kube)
    observer = observer_for(kube, tmp_path, history)
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and "flux-system/never has applied nothing yet" in seen.reason
    kube.delete(KUSTOMIZATIONS, "flux-system", "never")
    observer.refresh()  # the next tick
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW + timedelta(seconds=1))
    assert seen.applied and seen.reason == f"Kustomization flux-system/apps applied {history.commits[1][:8]}"


def test_no_applier_builds_the_canary(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("infra", "./infrastructure", history.commits[2]))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied
    assert "no Flux Kustomization builds apps/backend" in seen.reason
    assert "no Fleet GitRepo covers apps/backend" in seen.reason


# -- Fleet -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gitrepo_index", "bundle_commit_index", "ready", "want", "reason"),
    [
        (1, 1, 1, True, "GitRepo fleet-local/apps applied"),
        (2, 2, 1, True, "GitRepo fleet-local/apps applied"),  # descendant
        (0, 0, 1, False, "not yet"),
        (2, 1, 1, False, "is not at"),  # GitRepo moved on, the Bundle not yet
        (2, 2, 0, False, "has 0/1 ready"),  # failed health
    ],
    ids=["applied", "descendant", "not-yet-applied", "bundle-behind", "bundle-not-ready"],
)
def test_fleet_commit_applied(
    kube: Emulator,
    tmp_path: Path,
    history: History,
    gitrepo_index: int,
    bundle_commit_index: int,
    ready: int,
    want: bool,
    reason: str,
) -> None:
    at = history.commits[gitrepo_index]
    kube.put(GITREPOS, fleet_gitrepo("apps", at, paths=["apps"]))
    kube.put(BUNDLES, fleet_bundle("apps-backend", "apps", history.commits[bundle_commit_index], ready=ready))
    kube.put(BUNDLES, fleet_bundle("other-repo-bundle", "other", history.commits[0], ready=0))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.applied is want, seen
    assert reason in seen.reason


def test_fleet_gitrepo_without_bundles_waits(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(GITREPOS, fleet_gitrepo("apps", history.commits[1], paths=["apps"]))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and "has no Bundles yet" in seen.reason


# -- workloads and the progress deadline -------------------------------------------------------


@pytest.mark.parametrize(
    ("canary", "analysis", "ready", "reason"),
    [
        ({"updated": 1}, {}, False, "1 out of 2 new replicas have been updated"),
        ({"total": 3}, {}, False, "1 old replicas are pending termination"),
        ({"ready": 1}, {}, False, "1 of 2 updated replicas are ready (readyThreshold 100%)"),
        ({"ready": 1}, {"canaryReadyThreshold": 50}, True, "1/2 ready"),
        ({"generation": 4, "observed": 3}, {}, False, "observed deployment generation less than desired"),
    ],
    ids=["not-updated", "old-pending", "not-ready", "ready-threshold", "generation-not-observed"],
)
def test_canary_readiness(
    kube: Emulator,
    tmp_path: Path,
    history: History,
    canary: dict[str, object],
    analysis: dict[str, int],
    ready: bool,
    reason: str,
) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    ready_workloads(kube, **canary)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(analysis), DIRS, history.commits[1], NOW)
    assert seen.applied and seen.canary is not None
    assert seen.canary.ready is ready and reason in seen.canary.reason
    assert (seen.live_since is not None) is ready


def test_missing_primary_waits(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    kube.put(DEPLOYMENTS, deployment("backend"))
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.primary is not None and not seen.primary.ready
    assert seen.primary.reason == "deployment prod/backend-primary not found"


@pytest.mark.parametrize(
    ("canary", "now", "action"),
    [
        ({"ready": 0, "unavailable_since": "2026-11-21T23:20:00Z"}, NOW, Action.NONE),  # 10m: at the deadline
        ({"ready": 0, "unavailable_since": "2026-11-21T23:19:59Z"}, NOW, Action.ROLLBACK),  # past it
        ({"ready": 1, "deadline_exceeded": True}, NOW, Action.ROLLBACK),  # Kubernetes says so
    ],
    ids=["within-deadline-waits", "unavailable-past-deadline", "progress-deadline-exceeded"],
)
def test_progress_deadline_rolls_back(
    kube: Emulator, tmp_path: Path, history: History, canary: dict[str, object], now: datetime, action: Action
) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    ready_workloads(kube, **canary)
    spec = make_canary()
    seen = observer_for(kube, tmp_path, history).observe(spec, DIRS, history.commits[1], now)
    status = rolling(Phase.PROGRESSING, canaryWeight=10, lastTransitionTime=now - timedelta(minutes=15))
    decision = decide(spec, status, Observation(now, "sha256:new", "6.1.1", cluster=seen))
    assert decision.action is action, decision
    if action is Action.ROLLBACK:
        assert decision.reason.startswith(
            "progress deadline exceeded: deployment backend not ready after 600s"
        )
        assert decision.revert_target


# -- when it went live, and an unreachable API ---------------------------------------------------


def test_live_since_is_when_first_seen_live(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[0]))
    ready_workloads(kube)
    observer = observer_for(kube, tmp_path, history)
    step = history.commits[1]
    assert observer.observe(make_canary(), DIRS, step, NOW).live_since is None
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", step))
    observer.refresh()
    later = NOW + timedelta(seconds=40)
    assert observer.observe(make_canary(), DIRS, step, later).live_since == later
    observer.refresh()
    assert observer.observe(make_canary(), DIRS, step, later + timedelta(seconds=30)).live_since == later
    # The next step commit went live again only when seen so.
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[2]))
    observer.refresh()
    then = later + timedelta(minutes=2)
    assert observer.observe(make_canary(), DIRS, history.commits[2], then).live_since == then


def test_api_unreachable_waits(tmp_path: Path, history: History) -> None:
    with running_emulator() as stopped:
        config = stopped.kubeconfig(tmp_path)
    api = api_client("on", str(config))  # the emulator is gone: connection refused
    assert api is not None
    observer = ClusterObserver(api, "main", history.ancestry)
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and seen.reason.startswith("cluster API unreachable")
    decision = decide(
        make_canary(),
        rolling(Phase.PROGRESSING, canaryWeight=10, lastTransitionTime=NOW - timedelta(hours=1)),
        Observation(NOW, "sha256:new", "6.1.1", live=True, cluster=seen),
    )
    assert decision.action is Action.NONE and "cluster API unreachable" in decision.reason


def test_api_errors_are_waits_not_crashes(kube: Emulator, tmp_path: Path, history: History) -> None:
    # The step is applied but its Deployments do not exist (yet): a reason, not an exception.
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.applied
    assert seen.canary is not None and not seen.canary.ready and "not found" in seen.canary.reason


# -- connecting --------------------------------------------------------------------------------


def test_connect_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert api_client("off") is None
    assert api_client("auto") is None  # nothing configured: the settle delay stands in
    with pytest.raises(
        ClusterConfigError,
        match="--cluster on: not running in a cluster, and kubeconfig .*/.kube/config cannot be loaded",
    ):
        api_client("on")
    with pytest.raises(ClusterConfigError, match="expected one of auto, on, off"):
        api_client("sometimes")


def test_flux_revision_formats() -> None:
    assert flux_revision("main@sha1:abc") == ("main", "abc")
    assert flux_revision("refs/heads/release/v2@sha1:abc") == ("release/v2", "abc")
    assert flux_revision("main/abc") == ("main", "abc")
    assert flux_revision("sha1:abc") == ("", "abc")


def test_flux_kustomization_reaching_the_app_through_references(
    kube: Emulator, tmp_path: Path, history: History
) -> None:
    # flux2-kustomize-helm-example's layout: the Kustomization's path holds an overlay that lists
    # the app's base by a relative path, outside `spec.path`.
    root = Path(history.ancestry.repo.working_tree_dir or "")
    (root / "clusters" / "prod").mkdir(parents=True)
    (root / "clusters" / "prod" / "kustomization.yaml").write_text(
        "resources:\n  - ../../apps/backend\n  - ../../apps/backend-gitcanary\n"
    )
    for app in ("backend", "backend-gitcanary"):
        (root / "apps" / app).mkdir(parents=True)
        (root / "apps" / app / "kustomization.yaml").write_text("resources: []\n")
    kube.put(KUSTOMIZATIONS, flux_kustomization("prod", "./clusters/prod", history.commits[0]))
    ready_workloads(kube)
    observer = observer_for(kube, tmp_path, history)
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and f"flux-system/prod applied {history.commits[0][:8]}, not yet" in seen.reason
    kube.put(KUSTOMIZATIONS, flux_kustomization("prod", "./clusters/prod", history.commits[1]))
    observer.refresh()
    assert observer.observe(make_canary(), DIRS, history.commits[1], NOW).applied


def test_fleet_gitrepo_of_this_repository_wins(kube: Emulator, tmp_path: Path, history: History) -> None:
    # Two GitRepos with the same layout and branch: only the one pulling our repository counts.
    ours = fleet_gitrepo("ours", history.commits[0], paths=["apps"])
    ours["spec"]["repo"] = "git@git.example.com:acme/config.git"
    theirs = fleet_gitrepo("theirs", history.commits[2], paths=["apps"])
    theirs["spec"]["repo"] = "https://git.example.com/acme/other-config"
    kube.put(GITREPOS, ours)
    kube.put(GITREPOS, theirs)
    kube.put(BUNDLES, fleet_bundle("theirs-apps", "theirs", history.commits[2], ready=1))
    ready_workloads(kube)
    api = api_client("on", str(kube.kubeconfig(tmp_path)))
    assert api is not None
    observer = ClusterObserver(api, "main", history.ancestry, "https://git.example.com/acme/config.git")
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and seen.reason.startswith("GitRepo fleet-local/ours is at"), seen.reason


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("git@github.com:acme/config.git", "https://github.com/acme/config", True),
        ("ssh://git@GitHub.com:22/acme/config.git/", "https://github.com/acme/config.git", True),
        ("https://github.com/acme/config", "https://github.com/acme/other", False),
    ],
)
def test_same_repository(a: str, b: str, same: bool) -> None:
    assert same_repository(a, b) is same


def test_flux_kustomization_of_another_repository_is_not_waited_for(
    kube: Emulator, tmp_path: Path, history: History
) -> None:
    # Same path and branch, but its revision is a commit of another repository (another GitRepository).
    kube.put(KUSTOMIZATIONS, flux_kustomization("platform-apps", "./apps", "e" * 40))
    kube.put(KUSTOMIZATIONS, flux_kustomization("apps", "./apps", history.commits[1]))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.applied and seen.reason == f"Kustomization flux-system/apps applied {history.commits[1][:8]}"


# -- Argo CD -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision_index", "sync", "health", "want", "reason"),
    [
        (1, "Synced", "Healthy", True, "Application argocd/apps synced"),
        (2, "Synced", "Healthy", True, "Application argocd/apps synced"),  # a descendant
        (0, "Synced", "Healthy", False, "not yet"),
        (1, "OutOfSync", "Healthy", False, "is OutOfSync, not Synced"),
        (1, "Synced", "Progressing", False, "is Progressing, not Healthy"),
        (1, "Synced", "Degraded", False, "is Degraded, not Healthy"),
        (None, "Unknown", "Missing", False, "has synced nothing yet"),
    ],
    ids=["applied", "descendant", "not-yet", "out-of-sync", "progressing", "degraded", "never-synced"],
)
def test_argocd_application_synced_and_healthy(
    kube: Emulator,
    tmp_path: Path,
    history: History,
    revision_index: int | None,
    sync: str,
    health: str,
    want: bool,
    reason: str,
) -> None:
    revision = None if revision_index is None else history.commits[revision_index]
    kube.put(APPLICATIONS, argocd_application("apps", "apps", revision, sync=sync, health=health))
    # an Application of another repository with the same path is not the owner
    other = argocd_application(
        "other", "apps", history.side, sync="OutOfSync", repo="https://x.example/o.git"
    )
    kube.put(APPLICATIONS, other)
    ready_workloads(kube)
    observer = ClusterObserver(
        api_client("on", str(kube.kubeconfig(tmp_path))),  # type: ignore[arg-type]
        "main",
        history.ancestry,
        "https://git.example.com/config.git",
    )
    seen = observer.observe(make_canary(), DIRS, history.commits[1], NOW)
    assert seen.applied is want, seen
    assert reason in seen.reason


def test_argocd_side_branch_commit_is_not_applied(kube: Emulator, tmp_path: Path, history: History) -> None:
    kube.put(APPLICATIONS, argocd_application("apps", "apps/backend", history.side))
    kube.put(APPLICATIONS, argocd_application("generated", "apps/backend-gitcanary", history.commits[1]))
    ready_workloads(kube)
    seen = observer_for(kube, tmp_path, history).observe(make_canary(), DIRS, history.commits[1], NOW)
    assert not seen.applied and "Application argocd/apps synced" in seen.reason and "not yet" in seen.reason
