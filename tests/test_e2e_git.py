"""Git is the database: concurrent people, crashes, broken manifests. Real repos, real processes.

The canary here has no metrics (Flagger allows it: analysis passes with nothing to check), so
these tests exercise the Git model alone and run on the real clock where a process is involved.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo, git
from oracle import assert_commit
from prometheus_server import unavailable_prometheus

from gitcanary.errors import GitError
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def without_metrics(repo: ConfigRepo, interval: str = "30s") -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["analysis"]["metrics"] = []
        doc["spec"]["analysis"]["interval"] = interval
        doc["spec"]["analysis"]["stepWeight"] = 25
        doc["spec"]["analysis"]["maxWeight"] = 50

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("canary without metrics for the git tests")
    # The remote refuses anything but fast-forwards, as a protected branch would.
    git("config", "receive.denyNonFastForwards", "true", cwd=repo.remote)
    git("config", "receive.denyDeletes", "true", cwd=repo.remote)


class RacingClock:
    """The reconciler's clock; `during_next_tick` runs a person's push while the tick is deciding."""

    def __init__(self) -> None:
        self.now = START
        self.pending: list[Callable[[], None]] = []

    def __call__(self) -> datetime:
        if self.pending:
            self.pending.pop(0)()
        return self.now

    def during_next_tick(self, action: Callable[[], None]) -> None:
        self.pending.append(action)


def make(repo: ConfigRepo, tmp_path: Path, clock: RacingClock) -> Reconciler:
    # No metrics of their own: only the request counts beside each step reach Prometheus.
    settings = Settings(
        repo=str(repo.remote), workdir=tmp_path / "work", settle=0, prometheus=unavailable_prometheus()
    )
    return Reconciler(settings, clock=clock, sleep=lambda _: None)


def ticks(rec: Reconciler, clock: RacingClock, count: int) -> None:
    for _ in range(count):
        rec.tick()
        clock.now += timedelta(seconds=31)


def actions(repo: ConfigRepo) -> list[tuple[str, int, str]]:
    return [(t["Action"], int(t["Weight"]), t["Revision"]) for _, _, t in repo.gitcanary_commits()]


def ancestors_of_remote_head(repo: ConfigRepo, shas: list[str]) -> None:
    head = git("rev-parse", "main", cwd=repo.remote).strip()
    for sha in shas:
        git("merge-base", "--is-ancestor", sha, head, cwd=repo.remote)


def test_unrelated_human_commit_during_a_tick_is_kept(config_repo: ConfigRepo, tmp_path: Path) -> None:
    without_metrics(config_repo)
    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    ticks(rec, clock, 2)
    config_repo.bump("apps/backend", "6.1.1")
    pushed: list[str] = []

    def person_edits_docs() -> None:
        (config_repo.human / "NOTES.md").write_text("on call: pat\n")
        pushed.append(config_repo.commit_and_push("docs: on-call note"))

    clock.during_next_tick(person_edits_docs)
    ticks(rec, clock, 1)
    # Our START was rebased onto the person's commit and pushed; nothing was lost or forced.
    ancestors_of_remote_head(config_repo, pushed)
    assert actions(config_repo)[-1] == ("start", 0, "6.1.0..6.1.1")
    log = config_repo.remote_log()
    assert [subject for _, subject, _ in log[-2:]] == [
        "docs: on-call note",
        "gitcanary: start prod/backend rollout 6.1.0 -> 6.1.1",
    ]
    check_promotion(config_repo, tmp_path, EXPECTED[:3])


def test_bump_during_a_tick_is_decided_again(config_repo: ConfigRepo, tmp_path: Path) -> None:
    without_metrics(config_repo)
    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    ticks(rec, clock, 2)
    config_repo.bump("apps/backend", "6.1.1")
    pushed: list[str] = []
    clock.during_next_tick(lambda: pushed.append(config_repo.bump("apps/backend", "6.1.3")))
    ticks(rec, clock, 1)
    # The step decided on 6.1.1 was dropped: the person's newer bump is what starts.
    ancestors_of_remote_head(config_repo, pushed)
    assert actions(config_repo)[2:] == [("start", 0, "6.1.0..6.1.3")]
    ticks(rec, clock, 6)
    assert [a for a, _, _ in actions(config_repo)[2:]] == [
        "start",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
    ]
    check_promotion(config_repo, tmp_path, new="6.1.3")


def test_person_editing_a_generated_file_is_never_overwritten(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    ticks(rec, clock, 2)
    config_repo.bump("apps/backend", "6.1.1")
    ticks(rec, clock, 1)  # start

    def person_comments_routing() -> None:
        config_repo.pull()
        path = config_repo.human / "apps/backend-gitcanary/routing.yaml"
        text = path.read_text()
        path.write_text(text.replace("      weight: 100\n", "      weight: 100 # reviewed by pat\n", 1))
        config_repo.commit_and_push("note on routing")

    clock.during_next_tick(person_comments_routing)
    ticks(rec, clock, 1)  # advance to 25%, raced by the person's edit of the very same line
    config_repo.pull()
    routing = (config_repo.human / "apps/backend-gitcanary/routing.yaml").read_text()
    assert re.search(r"weight: 75 +# reviewed by pat", routing)  # our step re-decided on top of their edit
    assert actions(config_repo)[-1] == ("advance", 25, "6.1.0..6.1.1")
    assert [s for _, s, _ in config_repo.remote_log()].count("note on routing") == 1
    check_promotion(config_repo, tmp_path, EXPECTED[:4])  # the person's comment kept, the oracle content


def test_broken_canary_halts_only_itself(config_repo: ConfigRepo, tmp_path: Path) -> None:
    without_metrics(config_repo)
    broken = config_repo.human / "apps/frontend"
    broken.mkdir()
    (broken / "canary.yaml").write_text(
        (config_repo.human / "apps/backend/canary.yaml")
        .read_text()
        .replace("name: backend\n  namespace: prod", "name: frontend\n  namespace: prod")
        .replace("stepWeight: 25", "stepWieght: 25")
    )
    config_repo.commit_and_push("add frontend canary (with a typo)")
    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    result = rec.tick()
    assert result.errors == {
        "apps/frontend/canary.yaml": "apps/frontend/canary.yaml: spec.analysis.stepWieght: "
        "unknown field (not in Flagger's CRD); check its spelling"
    }
    assert actions(config_repo) == [("initialize", 0, "6.1.0..6.1.0")]  # backend went on

    validate = subprocess.run(
        [sys.executable, "-m", "gitcanary", "validate", str(config_repo.human)],
        capture_output=True,
        text=True,
    )
    assert validate.returncode == 1
    assert "apps/frontend/canary.yaml: spec.analysis.stepWieght" in validate.stderr


# -- crash anywhere, restart anywhere ---------------------------------------------------------

BLOCKING_HOOK = """#!/bin/sh
# Holds a push open while {block} exists, so a test can kill the pusher mid-push.
touch {entered}
while [ -e {block} ]; do sleep 0.05; done
exit 0
"""

EXPECTED = [
    ("initialize", 0),
    ("initialized", 0),
    ("start", 0),
    ("advance", 25),
    ("advance", 50),
    ("promote", 50),
    ("finalize", 0),
    ("succeed", 0),
]


def start_reconciler(repo: ConfigRepo, workdir: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitcanary",
            "run",
            "--repo",
            str(repo.remote),
            "--workdir",
            str(workdir),
            "--interval",
            "0.2",
            "--settle",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--prometheus",
            unavailable_prometheus(),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the reconciler and any git child it is running
    process.wait()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(240)
def test_killed_anywhere_resumes_without_repeating_or_skipping(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    without_metrics(config_repo, interval="1s")
    block, entered = tmp_path / "block", tmp_path / "entered"
    hook = config_repo.remote / "hooks" / "pre-receive"
    hook.write_text(BLOCKING_HOOK.format(block=block, entered=entered))
    hook.chmod(0o755)
    workdir, log = tmp_path / "work", tmp_path / "reconciler.log"

    def count() -> int:
        return len(config_repo.gitcanary_commits())

    # 1. Killed between ticks: after initialization, while idle.
    process = start_reconciler(config_repo, workdir, log)
    wait_for(lambda: count() >= 2, "initialization")
    kill(process)
    config_repo.bump("apps/backend", "6.1.1")

    # 2. Killed mid-push, twice: once the push is held by the remote, once right after it starts.
    for _ in range(2):
        block.touch()
        entered.unlink(missing_ok=True)
        process = start_reconciler(config_repo, workdir, log)
        wait_for(entered.exists, "a push in progress")
        kill(process)
        block.unlink()  # the remote finishes (or not) what the dead client started

    # 3. Killed at arbitrary moments while it works.
    for delay in (0.3, 0.7, 1.1):
        process = start_reconciler(config_repo, workdir, log)
        time.sleep(delay)
        kill(process)

    process = start_reconciler(config_repo, workdir, log)
    try:
        wait_for(
            lambda: any(t.get("Phase") == "Succeeded" for _, _, t in config_repo.gitcanary_commits()),
            "the rollout to finish",
            timeout=120,
        )
    finally:
        kill(process)
    got = [(t["Action"], int(t["Weight"])) for _, _, t in config_repo.gitcanary_commits()]
    assert got == EXPECTED, log.read_text()[-3000:]
    check_promotion(config_repo, tmp_path)


def check_promotion(
    repo: ConfigRepo, tmp_path: Path, expected: list[tuple[str, int]] = EXPECTED, new: str = "6.1.1"
) -> None:
    """The oracle after every commit of a 6.1.0 -> `new` promotion; the expectations from the table."""
    image = "ghcr.io/stefanprodan/podinfo"
    commits = repo.gitcanary_commits()
    assert [(t["Action"], int(t["Weight"])) for _, _, t in commits] == expected
    for (sha, _, _), (action, weight) in zip(commits, expected, strict=True):
        primary = new if action in ("promote", "finalize", "succeed") else "6.1.0"
        canary = "6.1.0" if action in ("initialize", "initialized", "update") else new
        assert_commit(
            repo.remote,
            sha,
            tmp_path / "trees",
            namespace="prod",
            target="backend",
            service="backend",
            primary_images={"backend": f"{image}:{primary}"},
            canary_images={"backend": f"{image}:{canary}"},
            # the HPA's minReplicas while analysing; 0 at rest; untouched before the switch
            canary_replicas={"initialize": None, "initialized": 0, "update": 0, "succeed": 0}.get(action, 2),
            weights=None if action == "initialize" else (100 - weight, weight),
        )


def test_changed_canary_manifest_updates_generated_objects_once(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    ticks(rec, clock, 2)  # Initialized

    config_repo.edit(
        "apps/backend/canary.yaml", lambda doc: doc["spec"]["service"]["hosts"].append("api.example.com")
    )
    config_repo.commit_and_push("serve backend on api.example.com too")
    ticks(rec, clock, 2)
    config_repo.edit(
        "apps/backend/canary.yaml", lambda doc: doc["spec"]["analysis"].__setitem__("threshold", 5)
    )
    config_repo.commit_and_push("more patience")
    ticks(rec, clock, 2)

    commits = config_repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == ["initialize", "initialized", "update"]
    assert commits[-1][2]["Phase"] == "Initialized"
    changed = git("show", "--format=", "--name-only", commits[-1][0], cwd=config_repo.remote).split()
    assert changed == ["apps/backend-gitcanary/routing.yaml"]
    routing = git("show", f"{commits[-1][0]}:apps/backend-gitcanary/routing.yaml", cwd=config_repo.remote)
    assert "- api.example.com" in routing
    # The oracle checks the VirtualService's hosts (and every other field) against the Canary.
    check_promotion(config_repo, tmp_path, [("initialize", 0), ("initialized", 0), ("update", 0)])


def test_app_that_does_not_build_halts_until_fixed(config_repo: ConfigRepo, tmp_path: Path) -> None:
    without_metrics(config_repo)
    human = config_repo.human
    frontend = human / "apps/frontend"
    frontend.mkdir()
    for name in ("kustomization.yaml", "deployment.yaml", "canary.yaml"):
        text = (human / "apps/backend" / name).read_text()
        (frontend / name).write_text(text.replace("backend", "frontend"))
    kustomization = frontend / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - hpa.yaml\n", "  - hpa.yml\n"))
    config_repo.edit("apps/frontend/canary.yaml", lambda doc: doc["spec"].pop("autoscalerRef"))
    config_repo.commit_and_push("add frontend (its kustomization names a file that is not there)")

    clock = RacingClock()
    rec = make(config_repo, tmp_path, clock)
    result = rec.tick()
    assert "apps/frontend: kustomize build failed" in result.reports["prod/frontend"].error
    assert [t["Canary"] for _, _, t in config_repo.gitcanary_commits()] == ["prod/backend"]

    kustomization.write_text(kustomization.read_text().replace("  - hpa.yml\n", ""))
    config_repo.commit_and_push("frontend: drop the missing hpa")
    result = rec.tick()
    assert not result.reports["prod/frontend"].error
    assert [t["Canary"] for _, _, t in config_repo.gitcanary_commits()] == [
        "prod/backend",
        "prod/backend",
        "prod/frontend",
    ]


def test_a_checked_out_remote_gets_a_clear_error(config_repo: ConfigRepo, tmp_path: Path) -> None:
    rec = make(ConfigRepo(config_repo.human, config_repo.human), tmp_path, RacingClock())
    with pytest.raises(GitError, match="point --repo at a bare repository"):
        rec.tick()
    assert git("status", "--porcelain", cwd=config_repo.human) == ""  # the person's clone is untouched
