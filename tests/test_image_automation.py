"""Image automation without rollout loops: a bot that bumps tags as Flux's image automation (or Argo CD
Image Updater) does, a registry stand-in listing tags, and the real reconciler over real Git.

A release is bad when the analysis says so; here an analysis stand-in fails every check of a tag in
`Health.bad` (the metric side has its own end-to-end tests with a real Prometheus). Everything
else is real: the bot's choice comes from Flux's own semver and regexp libraries (tests/fluxpolicy),
the objects it reads are validated against the upstream CRDs, pushes race as they would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ConfigRepo, git, make_config_repo
from image_automation import ArgoBot, FluxBot, Registry, build_fluxpolicy
from oracle import schema_problems

from gitcanary.commands import operations
from gitcanary.commands.manual import perform
from gitcanary.core.observations import CheckResult
from gitcanary.manifests import yamlio
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.request import ManualAction

IMAGE = "ghcr.io/stefanprodan/podinfo"
KUSTOMIZATION = "apps/backend/kustomization.yaml"
STATUS = "apps/backend-gitcanary/gitcanary-status.yaml"
POLICIES = "infrastructure/image-automation.yaml"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AUTOMATION_INTERVAL = timedelta(minutes=15)
PAT = "Pat Person <pat@example.com>"

IMAGE_REPOSITORY = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImageRepository",
    "metadata": {"name": "podinfo", "namespace": "flux-system"},
    "spec": {"image": IMAGE, "interval": "5m"},
}
IMAGE_POLICY = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImagePolicy",
    "metadata": {"name": "podinfo", "namespace": "flux-system"},
    "spec": {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": ">=6.0.0"}}},
}
AUTOMATION = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 15m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    commit:
      author:
        name: fluxcdbot
        email: fluxcdbot@users.noreply.github.com
    push:
      branch: main
  update:
    path: ./apps
    strategy: Setters
"""


@pytest.fixture(scope="module")
def fluxpolicy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fluxpolicy(tmp_path_factory.mktemp("fluxpolicy"))


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry()
    server.push("stefanprodan/podinfo", "6.0.0", "6.1.0")
    yield server
    server.close()


class Health:
    """The analysis stand-in: every check of a tag in `bad` fails, of any other tag passes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bad: set[str] = set()
        self.analysed: list[str] = []

    def __call__(self, *_: Any, **__: Any) -> tuple[CheckResult, ...]:
        tag = yamlio.load((self.workdir / KUSTOMIZATION).read_text())["images"][0]["newTag"]
        self.analysed.append(str(tag))
        if tag in self.bad:
            return (
                CheckResult(
                    "request-success-rate", 90.0, 99.0, None, False, "request-success-rate 90 < 99 failed"
                ),
            )
        return (
            CheckResult("request-success-rate", 99.9, 99.0, None, True, "request-success-rate 99.9 >= 99 ok"),
        )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def prepare(repo: ConfigRepo, policy_in_repo: bool = True, marker: str = "flux-system:podinfo:tag") -> None:
    def canary(doc: Any) -> None:
        analysis = doc["spec"]["analysis"]
        analysis["metrics"] = []
        analysis["interval"] = "30s"
        analysis["threshold"] = 1
        analysis["stepWeight"] = 50
        analysis["maxWeight"] = 50

    repo.edit("apps/backend/canary.yaml", canary)
    file = repo.human / KUSTOMIZATION
    file.write_text(
        file.read_text().replace(
            "newTag: 6.1.0 # bump this to start a canary release",
            f'newTag: 6.1.0 # {{"$imagepolicy": "{marker}"}}',
        )
    )
    (repo.human / "infrastructure").mkdir()
    docs = [IMAGE_REPOSITORY, IMAGE_POLICY] if policy_in_repo else []
    (repo.human / POLICIES).write_text(
        "".join("---\n" + yamlio.dump(doc) for doc in docs) + "---\n" + AUTOMATION
    )
    repo.commit_and_push("image automation: podinfo follows semver >=6.0.0")


def reconciler(repo: ConfigRepo, tmp_path: Path, clock: Clock) -> tuple[Reconciler, Health]:
    settings = Settings(repo=str(repo.remote), workdir=tmp_path / "work", settle=0)
    health = Health(tmp_path / "work")
    return Reconciler(settings, clock=clock, analyzer=health, sleep=lambda _: None), health


def tick(rec: Reconciler, clock: Clock, count: int = 1) -> None:
    for _ in range(count):
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        clock.now += timedelta(seconds=31)


def tick_until(rec: Reconciler, clock: Clock, repo: ConfigRepo, phase: str, limit: int = 12) -> None:
    for _ in range(limit):
        tick(rec, clock)
        if status(repo)["phase"] == phase:
            return
    raise AssertionError(f"never reached {phase}: {status(repo)}")


def status(repo: ConfigRepo) -> dict[str, Any]:
    return yamlio.load(git("show", f"main:{STATUS}", cwd=repo.remote))["status"]


def at_head(repo: ConfigRepo, path: str) -> str:
    return git("show", f"main:{path}", cwd=repo.remote)


def new_tag(repo: ConfigRepo) -> str:
    return str(yamlio.load(at_head(repo, KUSTOMIZATION))["images"][0]["newTag"])


def starts_of(repo: ConfigRepo, tag: str) -> int:
    """Rollouts of `tag` the remote's history holds (start and restart commits)."""
    return sum(
        1
        for _, _, t in repo.gitcanary_commits()
        if t.get("Action") in ("start", "restart") and t.get("Revision", "").endswith(f"..{tag}")
    )


def automation_day(rec: Reconciler, clock: Clock, bot: FluxBot | ArgoBot) -> None:
    """24 simulated hours: the bot runs every AUTOMATION_INTERVAL, the reconciler ticks after each run."""
    end = clock.now + timedelta(hours=24)
    while clock.now < end:
        bot.run()
        tick(rec, clock)
        clock.now += AUTOMATION_INTERVAL


def test_flux_semver_policy_quarantines_the_failed_tag_in_the_rollback_commit(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo)
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    bot = FluxBot(repo.remote, tmp_path / "flux-bot", registry, fluxpolicy)
    assert bot.run() is None  # 6.1.0 is already the newest tag
    tick(rec, clock, 2)  # initialize, route to the primary

    health.bad.add("6.1.1")
    registry.push("stefanprodan/podinfo", "6.1.1")
    assert bot.run() == "6.1.1"
    tick_until(rec, clock, repo, "Failed")

    sha, subject, trailers = repo.remote_log()[-1]
    assert trailers["Action"] == "rollback" and subject.startswith(
        "gitcanary: roll back prod/backend 6.1.1 -> 6.1.0"
    )
    body = git("log", "-1", "--format=%B", sha, cwd=repo.remote)
    assert (
        "quarantined backend 6.1.1: ImagePolicy flux-system/podinfo "
        "spec.policy.semver.range: '>=6.0.0, != 6.1.1'" in body
    )
    assert "gitcanary retry prod/backend" in body
    # One commit: the exclusion and the old tag back; the diff of the policy file is the range line alone.
    changed = git("show", "--format=", "--name-only", sha, cwd=repo.remote).split()
    assert POLICIES in changed and KUSTOMIZATION in changed
    diff = git("show", "--format=", "-U0", sha, "--", POLICIES, cwd=repo.remote)
    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-      range: '>=6.0.0'",
        "+      range: '>=6.0.0, != 6.1.1'",
    ]
    assert 'newTag: 6.1.0 # {"$imagepolicy": "flux-system:podinfo:tag"}' in at_head(repo, KUSTOMIZATION)
    for doc in yamlio.safe_load_all(at_head(repo, POLICIES)):
        assert schema_problems(doc) == [], doc
    commits_after_rollback = len(repo.remote_log())

    automation_day(rec, clock, bot)
    assert bot.pushed == ["6.1.1"]  # Flux's semver library honours the exclusion: never brought back
    assert starts_of(repo, "6.1.1") == 1
    assert len(repo.remote_log()) == commits_after_rollback  # 1 commit per quarantine: the rollback
    assert status(repo)["phase"] == "Failed"

    # A newer good tag is selected and promoted as usual.
    registry.push("stefanprodan/podinfo", "6.1.2")
    assert bot.run() == "6.1.2"
    tick_until(rec, clock, repo, "Succeeded")
    assert status(repo)["primaryRevision"] == "6.1.2"


def test_retry_lifts_the_quarantine_and_rolls_the_tag_out_again(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo)
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    bot = FluxBot(repo.remote, tmp_path / "flux-bot", registry, fluxpolicy)
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    registry.push("stefanprodan/podinfo", "6.1.1")
    bot.run()
    tick_until(rec, clock, repo, "Failed")
    assert "!= 6.1.1" in at_head(repo, POLICIES)

    health.bad.clear()  # the fault was elsewhere (a dependency, since fixed): a person retries
    result = perform(ManualAction.RETRY, "prod/backend", str(repo.remote), actor=PAT, now=clock.now)
    assert any("quarantine of 6.1.1 lifted" in note for note in result.notes), result.notes
    assert "'>=6.0.0'" in at_head(repo, POLICIES) and "!=" not in at_head(repo, POLICIES)
    assert 'newTag: 6.1.1 # {"$imagepolicy": "flux-system:podinfo:tag"}' in at_head(repo, KUSTOMIZATION)
    tick_until(rec, clock, repo, "Succeeded")
    assert status(repo)["primaryRevision"] == "6.1.1" and "quarantined" not in status(repo)
    assert bot.run() is None  # the policy selects 6.1.1 again, which Git already says


def test_a_policy_outside_the_repository_is_held_not_rolled_out_again(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo, policy_in_repo=False)
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    bot = FluxBot(
        repo.remote,
        tmp_path / "flux-bot",
        registry,
        fluxpolicy,
        cluster_objects=[IMAGE_REPOSITORY, IMAGE_POLICY],
    )
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    registry.push("stefanprodan/podinfo", "6.1.1")
    bot.run()
    tick_until(rec, clock, repo, "Failed")
    sha, _, _ = repo.remote_log()[-1]
    body = git("log", "-1", "--format=%B", sha, cwd=repo.remote)
    assert "6.1.1 not quarantined in ImagePolicy flux-system/podinfo" in body
    before = len(repo.gitcanary_commits())
    analysed = len(health.analysed)

    automation_day(rec, clock, bot)
    assert bot.pushed == ["6.1.1", "6.1.1"]  # it brought the tag back once, then Git kept it
    assert starts_of(repo, "6.1.1") == 1  # 0 repeated rollouts
    assert len(health.analysed) == analysed  # nothing analysed: no canary traffic for the failed tag
    held = repo.gitcanary_commits()[before:]
    assert [t["Action"] for _, _, t in held] == ["quarantine"]  # at most 1 more commit: the hold
    assert held[0][1] == "gitcanary: quarantine prod/backend 6.1.1: failed before, not rolled out again"
    hold_body = git("log", "-1", "--format=%B", held[0][0], cwd=repo.remote)
    assert "pushed back by an image automation" in hold_body and "gitcanary retry prod/backend" in hold_body
    assert status(repo)["phase"] == "Quarantined" and status(repo)["canaryWeight"] == 0
    [view] = operations.status(rec.root)  # what `gitcanary status` prints
    assert view.phase == "Quarantined" and "gitcanary retry prod/backend" in view.message
    assert new_tag(repo) == "6.1.1"  # no ping-pong: the old tag is not written back again

    # Retry from Quarantined: the tag is already in Git; analysis starts again, nothing is restored.
    health.bad.clear()
    result = perform(ManualAction.RETRY, "prod/backend", str(repo.remote), actor=PAT, now=clock.now)
    assert result.notes == []
    tick(rec, clock)
    assert status(repo)["phase"] == "Progressing" and starts_of(repo, "6.1.1") == 2
    assert "quarantined" not in status(repo)
    tick_until(rec, clock, repo, "Succeeded")

    registry.push("stefanprodan/podinfo", "6.1.2")
    assert bot.run() == "6.1.2"
    tick_until(rec, clock, repo, "Succeeded")
    assert status(repo)["primaryRevision"] == "6.1.2"


def test_validate_and_init_name_the_policy_that_selects_the_image(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo)
    done = subprocess.run(
        [sys.executable, "-m", "gitcanary", "validate", str(repo.human)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "prod/backend: ghcr.io/stefanprodan/podinfo: selected by ImagePolicy flux-system/podinfo "
        f"({POLICIES}), semver policy; a rolled-back tag is quarantined in spec.policy.semver.range"
    ) in done.stdout
    init = subprocess.run(
        [sys.executable, "-m", "gitcanary", "init", "apps/backend"],
        cwd=repo.human,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    assert "selected by ImagePolicy flux-system/podinfo" in init.stdout


def test_a_person_bumping_the_failed_tag_again_is_a_new_rollout(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo, policy_in_repo=False)
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    repo.bump("apps/backend", "6.1.1")
    tick_until(rec, clock, repo, "Failed")
    repo.bump("apps/backend", "6.1.1")  # a person, not an automation: they mean it
    tick(rec, clock)
    assert status(repo)["phase"] == "Progressing" and starts_of(repo, "6.1.1") == 2


APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: backend
  namespace: argocd
  annotations:
    # podinfo follows semver 6.x
    argocd-image-updater.argoproj.io/image-list: podinfo=ghcr.io/stefanprodan/podinfo:~6
    argocd-image-updater.argoproj.io/podinfo.update-strategy: semver
    argocd-image-updater.argoproj.io/write-back-method: git
    argocd-image-updater.argoproj.io/write-back-target: kustomization
spec:
  project: default
  source:
    repoURL: https://git.example.com/fleet.git
    path: apps/backend
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: prod
"""


def test_argo_image_updater_application_gets_ignore_tags(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    repo = make_config_repo(tmp_path)
    prepare(repo, policy_in_repo=False, marker="none:none")
    (repo.human / POLICIES).unlink()
    (repo.human / "argocd").mkdir()
    (repo.human / "argocd/backend.yaml").write_text(APPLICATION)
    repo.commit_and_push("argo cd application with image updater")
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    bot = ArgoBot(repo.remote, tmp_path / "argo-bot", registry, fluxpolicy, KUSTOMIZATION)
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    registry.push("stefanprodan/podinfo", "6.1.1")
    assert bot.run() == "6.1.1"
    tick_until(rec, clock, repo, "Failed")
    app = at_head(repo, "argocd/backend.yaml")
    assert "argocd-image-updater.argoproj.io/podinfo.ignore-tags: 6.1.1\n" in app
    assert "# podinfo follows semver 6.x" in app  # round-trip: the comment stays
    assert schema_problems(yamlio.safe_load_all(app).__next__()) == []
    commits = len(repo.remote_log())
    for _ in range(8):
        bot.run()
        tick(rec, clock)
        clock.now += AUTOMATION_INTERVAL
    assert bot.pushed == ["6.1.1"] and len(repo.remote_log()) == commits
    registry.push("stefanprodan/podinfo", "6.2.0")
    assert bot.run() == "6.2.0"
    tick_until(rec, clock, repo, "Succeeded")


def test_a_configured_automation_identity_is_held_too(tmp_path: Path) -> None:
    """A bot with its own identity (GITCANARY_AUTOMATION_AUTHORS, --automation-author) is automation."""
    repo = make_config_repo(tmp_path)
    prepare(repo, policy_in_repo=False)
    clock = Clock()
    settings = Settings(
        repo=str(repo.remote),
        workdir=tmp_path / "work",
        settle=0,
        automation_authors=["renovate@example.com"],
    )
    health = Health(tmp_path / "work")
    rec = Reconciler(settings, clock=clock, analyzer=health, sleep=lambda _: None)
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    repo.bump("apps/backend", "6.1.1")
    tick_until(rec, clock, repo, "Failed")
    git("pull", "-q", "--rebase", cwd=repo.human)
    repo.edit(KUSTOMIZATION, lambda doc: doc["images"][0].__setitem__("newTag", "6.1.1"))
    git("add", "-A", cwd=repo.human)
    git(
        "-c",
        "user.name=Renovate",
        "-c",
        "user.email=renovate@example.com",
        "commit",
        "-qm",
        "bump",
        cwd=repo.human,
    )
    git("push", "-q", "origin", "HEAD:main", cwd=repo.human)
    tick(rec, clock, 3)
    assert status(repo)["phase"] == "Quarantined" and starts_of(repo, "6.1.1") == 1


def test_the_bot_running_before_flux_applies_the_exclusion_is_held_once(
    tmp_path: Path, registry: Registry, fluxpolicy: Path
) -> None:
    """The rollback commit's exclusion reaches the cluster at Flux's next sync; a bot run in between
    still uses the old range and brings the tag back: one hold commit, then nothing loops."""
    repo = make_config_repo(tmp_path)
    prepare(repo)
    clock = Clock()
    rec, health = reconciler(repo, tmp_path, clock)
    bot = FluxBot(repo.remote, tmp_path / "flux-bot", registry, fluxpolicy)
    tick(rec, clock, 2)
    health.bad.add("6.1.1")
    registry.push("stefanprodan/podinfo", "6.1.1")
    bot.run()
    tick_until(rec, clock, repo, "Failed")
    rollback = len(repo.gitcanary_commits())

    bot.cluster_objects = [IMAGE_POLICY]  # the cluster still holds the policy without the exclusion
    assert bot.run() == "6.1.1"
    tick(rec, clock, 2)
    assert status(repo)["phase"] == "Quarantined"
    bot.cluster_objects = []  # applied: the policy now selects 6.1.0, which the bot writes back
    for _ in range(6):
        bot.run()
        tick(rec, clock)
        clock.now += AUTOMATION_INTERVAL
    assert bot.pushed == ["6.1.1", "6.1.1", "6.1.0"]
    assert [t["Action"] for _, _, t in repo.gitcanary_commits()[rollback:]] == ["quarantine"]
    assert starts_of(repo, "6.1.1") == 1 and new_tag(repo) == "6.1.0"
    registry.push("stefanprodan/podinfo", "6.1.2")
    assert bot.run() == "6.1.2"
    tick_until(rec, clock, repo, "Succeeded")
