"""End to end: the example Istio repo, a person bumping tags, the real reconciler and a real Prometheus.

After every commit gitcanary makes, the tree at that commit is built with real kustomize and
checked against the invariant by the independent oracle (tests/oracle.py).
"""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo
from oracle import assert_invariant, kustomize_build
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus

from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

IMAGE = "ghcr.io/stefanprodan/podinfo"
GOOD_FROM, GOOD_TO = DATA_END - timedelta(minutes=60), DATA_END - timedelta(minutes=30)
BAD_FROM, BAD_TO = GOOD_TO, DATA_END


@pytest.fixture(scope="module")
def prometheus_istio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """`backend` in `prod` is healthy for half an hour, then serves 10% errors for half an hour."""
    traffic = [
        Traffic("backend", "prod", rps=20, error_ratio=0.001, p99_ms=120, start=GOOD_FROM, end=GOOD_TO),
        Traffic("backend", "prod", rps=20, error_ratio=0.10, p99_ms=140, start=BAD_FROM, end=BAD_TO),
    ]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 31) -> None:
        self.now += timedelta(seconds=seconds)


def reconciler(repo: ConfigRepo, tmp_path: Path, prometheus: PrometheusServer, clock: Clock) -> Reconciler:
    settings = Settings(
        repo=str(repo.remote), workdir=tmp_path / "gitcanary-work", prometheus=prometheus.url, settle=0
    )
    return Reconciler(settings, clock=clock, sleep=lambda _: None)


def tick_until(rec: Reconciler, clock: Clock, phase: str, limit: int = 30) -> None:
    for _ in range(limit):
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        report = result.reports["prod/backend"]
        clock.advance()
        if report.status is not None and report.status.phase.value == phase:
            return
    raise AssertionError(f"prod/backend did not reach {phase} in {limit} ticks")


def tree_at(repo: ConfigRepo, sha: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", sha], cwd=repo.remote, capture_output=True, check=True).stdout
    tar = into / "tree.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as handle:
        handle.extractall(into, filter="data")
    return into


def check_invariant(repo: ConfigRepo, tmp_path: Path, sha: str, expected: tuple) -> None:
    _action, _phase, weight, primary, canary, replicas, routed = expected
    tree = tree_at(repo, sha, tmp_path / "trees" / sha)
    objects = kustomize_build(tree / "apps")
    assert_invariant(
        objects,
        namespace="prod",
        target="backend",
        service="backend",
        primary_images={"backend": f"{IMAGE}:{primary}"},
        canary_images={"backend": f"{IMAGE}:{canary}"},
        canary_replicas=replicas,
        weights=(100 - weight, weight) if routed else None,
    )


# action, phase, weight, primary tag, canary tag, target replicas (None: untouched), routed
FIRST_ROLLOUT = [
    ("initialize", "Initializing", 0, "6.1.0", "6.1.0", None, False),
    ("initialized", "Initialized", 0, "6.1.0", "6.1.0", 0, True),
]
PROMOTION = [
    ("start", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
    ("advance", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
    ("advance", "Progressing", 20, "6.1.0", "6.1.1", 2, True),
    ("advance", "Progressing", 30, "6.1.0", "6.1.1", 2, True),
    ("advance", "Progressing", 40, "6.1.0", "6.1.1", 2, True),
    ("advance", "Progressing", 50, "6.1.0", "6.1.1", 2, True),
    ("promote", "Promoting", 50, "6.1.1", "6.1.1", 2, True),
    ("finalize", "Finalising", 0, "6.1.1", "6.1.1", 2, True),
    ("succeed", "Succeeded", 0, "6.1.1", "6.1.1", 0, True),
]
ROLLBACK = [
    ("start", "Progressing", 0, "6.1.1", "6.1.2", 2, True),
    ("advance", "Progressing", 10, "6.1.1", "6.1.2", 2, True),
    ("halt", "Progressing", 10, "6.1.1", "6.1.2", 2, True),
    ("rollback", "Failed", 0, "6.1.1", "6.1.1", 0, True),
]


def test_promote_then_roll_back(
    config_repo: ConfigRepo, tmp_path: Path, prometheus_istio: PrometheusServer
) -> None:
    clock = Clock(GOOD_FROM + timedelta(minutes=2))
    rec = reconciler(config_repo, tmp_path, prometheus_istio, clock)

    tick_until(rec, clock, "Initialized")
    config_repo.bump("apps/backend", "6.1.1")
    tick_until(rec, clock, "Succeeded")

    config_repo.bump("apps/backend", "6.1.2")
    clock.now = BAD_FROM + timedelta(minutes=2)
    tick_until(rec, clock, "Failed")

    commits = config_repo.gitcanary_commits()
    expected = FIRST_ROLLOUT + PROMOTION + ROLLBACK
    assert [(t["Action"], t["Phase"], int(t["Weight"])) for _, _, t in commits] == [
        (e[0], e[1], e[2]) for e in expected
    ]
    for (sha, _subject, _trailers), row in zip(commits, expected, strict=True):
        check_invariant(config_repo, tmp_path, sha, row)

    subjects = {t["Action"]: subject for _, subject, t in commits}
    # The halt names the failing metric with its value and threshold; so does the rollback.
    assert "request-success-rate" in subjects["halt"] and "99" in subjects["halt"]
    assert subjects["rollback"].startswith("gitcanary: roll back prod/backend 6.1.2 -> 6.1.1")
    # Git's desired state is what runs: the person's images: entry holds the old tag again.
    config_repo.pull()
    assert (
        "newTag: 6.1.1 # bump this to start a canary release"
        in (config_repo.human / "apps/backend/kustomization.yaml").read_text()
    )

    # Every commit carries trailers git itself can parse.
    last = commits[-1][0]
    parsed = subprocess.run(
        ["git", "log", "-1", "--format=%(trailers:key=Gitcanary-Phase,valueonly)", last],
        cwd=config_repo.remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert parsed.strip() == "Failed"


def test_new_bump_mid_rollout_restarts_on_newest(
    config_repo: ConfigRepo, tmp_path: Path, prometheus_istio: PrometheusServer
) -> None:
    clock = Clock(GOOD_FROM + timedelta(minutes=1))
    rec = reconciler(config_repo, tmp_path, prometheus_istio, clock)
    tick_until(rec, clock, "Initialized")
    config_repo.bump("apps/backend", "6.1.1")
    for _ in range(3):  # start, 10%, 20%
        rec.tick()
        clock.advance()
    config_repo.bump("apps/backend", "6.1.3")
    tick_until(rec, clock, "Succeeded")

    rows = [(t["Action"], int(t["Weight"]), t["Revision"]) for _, _, t in config_repo.gitcanary_commits()]
    restart = rows.index(("restart", 0, "6.1.0..6.1.3"))
    assert rows[2:restart] == [
        ("start", 0, "6.1.0..6.1.1"),
        ("advance", 10, "6.1.0..6.1.1"),
        ("advance", 20, "6.1.0..6.1.1"),
    ]
    assert [r[1] for r in rows[restart:] if r[0] == "advance"] == [10, 20, 30, 40, 50]
    assert rows[-1] == ("succeed", 0, "6.1.3..6.1.3")
    # Every commit against this test's own table: the newest bump restarts the analysis at 0%.
    first = [
        ("start", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 20, "6.1.0", "6.1.1", 2, True),
        ("restart", "Progressing", 0, "6.1.0", "6.1.3", 2, True),
    ]
    # then PROMOTION's steps (10% .. 50%, promote, finalize, succeed) for 6.1.3
    newest = [
        (a, p, w, pr.replace("6.1.1", "6.1.3"), c.replace("6.1.1", "6.1.3"), r, x)
        for a, p, w, pr, c, r, x in PROMOTION[1:]
    ]
    table = FIRST_ROLLOUT + first + newest
    commits = config_repo.gitcanary_commits()
    assert [(t["Action"], t["Phase"], int(t["Weight"])) for _, _, t in commits] == [row[:3] for row in table]
    for (sha, _subject, _trailers), row in zip(commits, table, strict=True):
        check_invariant(config_repo, tmp_path, sha, row)


def test_no_data_is_a_failed_check(
    config_repo: ConfigRepo, tmp_path: Path, prometheus_istio: PrometheusServer
) -> None:
    """Outside the data there are no series: the canary must roll back, never pass."""
    clock = Clock(DATA_END + timedelta(hours=3))
    rec = reconciler(config_repo, tmp_path, prometheus_istio, clock)
    tick_until(rec, clock, "Initialized")
    config_repo.bump("apps/backend", "6.1.1")
    tick_until(rec, clock, "Failed")
    commits = config_repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "halt",
        "rollback",
    ]
    halt = subprocess.run(
        ["git", "log", "-1", "--format=%B", commits[4][0]],
        cwd=config_repo.remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "no data" in halt or "no values" in halt
