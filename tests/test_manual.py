"""Manual actions as commits: a person promotes, aborts, retries, pauses; the reconciler's next tick acts.

Real Git (a bare remote, a person's clone, gitcanary's own clone), the real CLI for the person's
side, the real reconciler on an injected clock. The canary has no metrics (analysis passes with
nothing to check), so these tests exercise the Git side alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo, git
from oracle import assert_invariant, kustomize_build
from prometheus_server import unavailable_prometheus

from gitcanary.commands.manual import ManualActionError, invoker, perform
from gitcanary.git.workspace import Identity
from gitcanary.manifests import yamlio
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.request import ManualAction

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
IMAGE = "ghcr.io/stefanprodan/podinfo"
PAT = "Pat Person <pat@example.com>"
STATUS = "apps/backend-gitcanary/gitcanary-status.yaml"


class Clock:
    """The reconciler's clock; `during_next_tick` runs a person's action while the tick is deciding."""

    def __init__(self) -> None:
        self.now = START
        self.pending: list[Callable[[], None]] = []

    def __call__(self) -> datetime:
        if self.pending:
            self.pending.pop(0)()
        return self.now


def setup(repo: ConfigRepo, tmp_path: Path) -> tuple[Reconciler, Clock]:
    def no_metrics(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["analysis"]["metrics"] = []
        doc["spec"]["analysis"]["interval"] = "30s"
        doc["spec"]["analysis"]["stepWeight"] = 25
        doc["spec"]["analysis"]["maxWeight"] = 50

    repo.edit("apps/backend/canary.yaml", no_metrics)
    repo.commit_and_push("canary without metrics")
    git("config", "receive.denyNonFastForwards", "true", cwd=repo.remote)  # never forced
    clock = Clock()
    settings = Settings(
        repo=str(repo.remote), workdir=tmp_path / "work", settle=0, prometheus=unavailable_prometheus()
    )
    rec = Reconciler(settings, clock=clock)
    ticks(rec, clock, 2)  # Initializing, Initialized
    return rec, clock


def ticks(rec: Reconciler, clock: Clock, count: int) -> None:
    for _ in range(count):
        result = rec.tick()
        assert not any(report.error for report in result.reports.values()), result
        clock.now += timedelta(seconds=31)


def last(repo: ConfigRepo) -> tuple[str, str, dict[str, str]]:
    return repo.remote_log()[-1]


def author(repo: ConfigRepo, sha: str) -> str:
    return git("log", "-1", "--format=%an <%ae>|%cn <%ce>", sha, cwd=repo.remote).strip()


def status_at(repo: ConfigRepo, sha: str = "main") -> dict:
    return yamlio.load(git("show", f"{sha}:{STATUS}", cwd=repo.remote))["status"]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitcanary", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=120,
    )


def check_tree(repo: ConfigRepo, tmp_path: Path, primary: str, canary: str, replicas: int) -> None:
    """The invariant on the remote head: what kustomize builds matches the phase."""
    tree = tmp_path / f"tree-{len(list(tmp_path.glob('tree-*')))}"
    git("clone", "-q", str(repo.remote), str(tree), cwd=tmp_path)
    assert_invariant(
        kustomize_build(tree / "apps"),
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{IMAGE}:{primary}"},
        canary_images={"backend": f"{IMAGE}:{canary}"},
        canary_replicas=replicas,
        weights=(100, 0),
    )


def test_promote_from_the_cli_skips_the_remaining_analysis(config_repo: ConfigRepo, tmp_path: Path) -> None:
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 2)  # start, advance to 25%
    assert status_at(config_repo)["canaryWeight"] == 25

    # The person's identity comes from git (GIT_AUTHOR_* here), the push goes to their clone's origin.
    env = {"GIT_AUTHOR_NAME": "Pat Person", "GIT_AUTHOR_EMAIL": "pat@example.com"}
    done = cli("promote", "prod/backend", "--repo", str(config_repo.human), cwd=config_repo.human, env=env)
    assert done.returncode == 0, done.stderr
    assert "request promote of prod/backend (by Pat Person)" in done.stdout
    sha, subject, trailers = last(config_repo)
    assert author(config_repo, sha) == f"{PAT}|{PAT}"
    assert trailers["Actor"] == PAT and trailers["Action"] == "manual-promote"
    request = status_at(config_repo)["request"]
    assert request["action"] == "promote" and request["rolloutId"] == trailers["Rollout"]

    ticks(rec, clock, 1)  # honoured at once, though 25% -> 50% was still to come
    sha, subject, trailers = last(config_repo)
    assert subject == (
        "gitcanary: promote prod/backend 6.1.0 -> 6.1.1: copy canary spec to primary "
        "(promote requested by Pat Person)"
    )
    assert trailers["Action"] == "promote" and trailers["Actor"] == PAT and trailers["Request"] == "promote"
    assert author(config_repo, sha).startswith("gitcanary <")
    assert "request" not in status_at(config_repo)
    ticks(rec, clock, 3)
    assert [t["Action"] for _, _, t in config_repo.gitcanary_commits()][-6:] == [
        "start",
        "advance",
        "manual-promote",
        "promote",
        "finalize",
        "succeed",
    ]
    check_tree(config_repo, tmp_path, "6.1.1", "6.1.1", 0)


def test_abort_rolls_back_and_retry_analyses_the_same_revision_again(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 2)  # start, advance to 25%
    perform(ManualAction.ABORT, "prod/backend", str(config_repo.remote), actor=PAT)
    ticks(rec, clock, 1)
    _, subject, trailers = last(config_repo)
    assert subject == "gitcanary: roll back prod/backend 6.1.1 -> 6.1.0 (abort requested by Pat Person)"
    assert trailers["Phase"] == "Failed" and trailers["Actor"] == PAT
    check_tree(config_repo, tmp_path, "6.1.0", "6.1.0", 0)  # the old tag is written back

    # retry: the person's commit puts 6.1.1 back (images only), the reconciler starts analysing it.
    result = perform(ManualAction.RETRY, "prod/backend", str(config_repo.remote), actor=PAT)
    assert result.notes == [
        "image backend restored: ghcr.io/stefanprodan/podinfo:6.1.0 -> ghcr.io/stefanprodan/podinfo:6.1.1 "
        "in apps/backend/kustomization.yaml images[0].newTag"
    ]
    changed = git("show", "--format=", "--name-only", result.commit, cwd=config_repo.remote).split()
    assert sorted(changed) == [
        "apps/backend-gitcanary/gitcanary-status.yaml",
        "apps/backend/kustomization.yaml",
    ]
    check_tree(config_repo, tmp_path, "6.1.0", "6.1.1", 0)  # still Failed: the canary stays at zero
    ticks(rec, clock, 1)
    _, subject, trailers = last(config_repo)
    assert subject == "gitcanary: start prod/backend rollout 6.1.0 -> 6.1.1 (retry requested by Pat Person)"
    assert trailers["Phase"] == "Progressing" and trailers["Request"] == "retry"
    ticks(rec, clock, 5)
    assert status_at(config_repo)["phase"] == "Succeeded"
    check_tree(config_repo, tmp_path, "6.1.1", "6.1.1", 0)


def test_pause_holds_the_rollout_until_resume(config_repo: ConfigRepo, tmp_path: Path) -> None:
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 1)  # start
    perform(ManualAction.PAUSE, "prod/backend", str(config_repo.remote), actor=PAT)
    canary = git("show", "main:apps/backend/canary.yaml", cwd=config_repo.remote)
    assert yamlio.load(canary)["spec"]["suspend"] is True
    paused_at = last(config_repo)[0]
    ticks(rec, clock, 4)
    assert last(config_repo)[0] == paused_at  # suspended: no step at all
    # From a sub-directory of the person's clone: the push goes to its origin.
    perform(ManualAction.RESUME, "prod/backend", str(config_repo.human / "apps"), actor=PAT)
    seeded = git("show", "main~2:apps/backend/canary.yaml", cwd=config_repo.remote)
    assert git("show", "main:apps/backend/canary.yaml", cwd=config_repo.remote) == seeded  # as before
    ticks(rec, clock, 1)
    assert last(config_repo)[2]["Action"] == "advance"


def test_a_request_pushed_during_a_tick_wins_over_the_step_decided_before_it(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 1)  # start; the next tick would advance to 25%
    clock.pending.append(
        lambda: perform(ManualAction.ABORT, "prod/backend", str(config_repo.remote), actor=PAT)
    )
    ticks(rec, clock, 1)
    # The advance decided before the request arrived was dropped (it touched the same status file);
    # deciding again saw the request. Nothing was forced: the request commit is in the history.
    actions = [t["Action"] for _, _, t in config_repo.gitcanary_commits()]
    assert actions[-3:] == ["start", "manual-abort", "rollback"]
    assert status_at(config_repo)["phase"] == "Failed"


def test_a_person_s_commit_racing_the_request_is_kept(config_repo: ConfigRepo, tmp_path: Path) -> None:
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 1)
    config_repo.pull()
    (config_repo.human / "NOTES.md").write_text("on call: pat\n")
    git("add", "NOTES.md", cwd=config_repo.human)
    git("commit", "-q", "-m", "docs: on-call note", cwd=config_repo.human)
    git("push", "-q", "origin", "HEAD:main", cwd=config_repo.human)
    perform(ManualAction.PROMOTE, "prod/backend", str(config_repo.remote), actor=PAT)
    subjects = [subject for _, subject, _ in config_repo.remote_log()]
    assert subjects[-2:] == [
        "docs: on-call note",
        "gitcanary: request promote of prod/backend (by Pat Person)",
    ]


REFUSED = [
    (ManualAction.PROMOTE, "prod/nope", "unknown canary prod/nope in "),
    (ManualAction.PROMOTE, "prod/backend/x", "expected NAMESPACE/NAME or NAME -n NAMESPACE"),
    (ManualAction.PROMOTE, "Prod/backend", "'Prod' is not a namespace name"),
    (ManualAction.PROMOTE, "prod/backend", "cannot promote prod/backend: phase Initialized: no rollout"),
    (ManualAction.ABORT, "prod/backend", "cannot abort prod/backend: phase Initialized"),
    (ManualAction.RETRY, "prod/backend", "cannot retry prod/backend: phase Initialized: retry re-runs"),
    (ManualAction.RESUME, "prod/backend", "cannot resume prod/backend: it is not paused"),
]


def test_actions_that_do_not_fit_say_why_and_commit_nothing(config_repo: ConfigRepo, tmp_path: Path) -> None:
    setup(config_repo, tmp_path)
    before = config_repo.remote_log()
    for action, key, message in REFUSED:
        with pytest.raises(ManualActionError) as raised:
            perform(action, key, str(config_repo.remote), actor=PAT)
        assert message in str(raised.value)
    with pytest.raises(ManualActionError, match="canaries there: prod/backend"):
        perform(ManualAction.ABORT, "prod/nope", str(config_repo.remote), actor=PAT)
    assert config_repo.remote_log() == before


def test_cli_errors_exit_1_with_the_reason(config_repo: ConfigRepo, tmp_path: Path) -> None:
    setup(config_repo, tmp_path)
    perform(ManualAction.PAUSE, "prod/backend", str(config_repo.remote), actor=PAT)
    again = cli("pause", "prod/backend", "--repo", str(config_repo.remote), "--actor", PAT, cwd=tmp_path)
    assert again.returncode == 1 and "cannot pause prod/backend: it is already paused" in again.stderr
    bad = cli("promote", "prod/backend", "--repo", str(config_repo.remote), "--actor", "pat", cwd=tmp_path)
    assert bad.returncode == 1 and "expected 'Name <email>'" in bad.stderr


def test_a_directory_that_is_not_a_checkout_says_so(tmp_path: Path) -> None:
    with pytest.raises(ManualActionError, match="is not a Git checkout: run this in a clone"):
        perform(ManualAction.PAUSE, "prod/backend", str(tmp_path), actor=PAT)


def test_the_request_push_is_retried_when_a_person_pushed_first(
    config_repo: ConfigRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real race: git's own pre-push hook lets a person push between our commit and our push."""
    rec, clock = setup(config_repo, tmp_path)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 1)
    config_repo.pull()
    hooks, marker = tmp_path / "hooks", tmp_path / "raced"
    hooks.mkdir()
    human = config_repo.human
    (hooks / "pre-push").write_text(
        "#!/bin/sh\n"
        f'[ -e "{marker}" ] && exit 0\n'
        f'touch "{marker}"\n'
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f'echo "on call: pat" > "{human}/NOTES.md"\n'
        f'git -C "{human}" add NOTES.md\n'
        f'git -C "{human}" -c user.name=Sam -c user.email=sam@example.com commit -q -m "docs: on-call note"\n'
        f'git -C "{human}" push -q origin HEAD:main\n'
    )
    (hooks / "pre-push").chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    perform(ManualAction.PROMOTE, "prod/backend", str(config_repo.remote), actor=PAT)
    assert marker.exists()
    subjects = [subject for _, subject, _ in config_repo.remote_log()]
    assert subjects[-2:] == [
        "docs: on-call note",
        "gitcanary: request promote of prod/backend (by Pat Person)",
    ]
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    ticks(rec, clock, 1)
    assert last(config_repo)[2]["Action"] == "promote"


def test_without_a_git_identity_or_actor_nobody_acts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ManualActionError, match="who is acting"):
        invoker(tmp_path)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Pat Person")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "pat@example.com")
    assert invoker(tmp_path) == Identity("Pat Person", "pat@example.com")
