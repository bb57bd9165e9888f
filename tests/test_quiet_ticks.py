"""A canary waiting for its next analysis interval is not decided again at every tick: `decide`
says until when its wait holds, and the reconciler skips it until then, as long as the objects the
wait was decided from (commit, Canary, status, build) are the same ones. Anything new is decided at
once: a bump, an edit of the Canary, the interval running out.

Real kustomize, a real bare remote, the real reconciler; `decide` is wrapped only to count calls.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo
from test_render_cache import KEY, Clock, initialized, reconciler
from test_render_cache import repo as repo  # noqa: PLC0414 - the fixture, shared

from gitcanary.service import reconciler as reconciler_module
from gitcanary.spec.status import Phase


@pytest.fixture
def decides(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = reconciler_module.decide

    def counted(canary, status, obs):  # type: ignore[no-untyped-def]
        seen.append(canary.key)
        return real(canary, status, obs)

    monkeypatch.setattr(reconciler_module, "decide", counted)
    return seen


def in_analysis(repo: ConfigRepo, tmp_path: Path, clock: Clock) -> reconciler_module.Reconciler:
    rec = reconciler(repo, tmp_path, clock)
    initialized(rec, clock)
    repo.bump("apps/web", "6.1.1")
    rec.tick()  # START
    clock.now += timedelta(seconds=31)
    assert rec.tick().commits  # the first weight
    status = rec.reports[KEY].status
    assert status is not None and status.phase is Phase.PROGRESSING and status.canary_weight == 10
    return rec


def test_a_waiting_canary_is_decided_again_when_its_interval_ends(
    repo: ConfigRepo, tmp_path: Path, decides: list[str]
) -> None:
    clock = Clock()
    rec = in_analysis(repo, tmp_path, clock)
    clock.now += timedelta(seconds=1)
    assert not rec.tick().commits  # decided: a wait until 30 s after the step
    assert rec.reports[KEY].waiting == "waiting for the next analysis interval"
    decides.clear()
    for _ in range(3):
        clock.now += timedelta(seconds=9)
        assert not rec.tick().commits
    assert decides == []  # the same wait, not decided again
    assert rec.reports[KEY].waiting == "waiting for the next analysis interval"  # its report stands
    clock.now += timedelta(seconds=2)  # 30 s after the step
    result = rec.tick()
    assert decides and len(result.commits) == 1
    status = rec.reports[KEY].status
    assert status is not None and status.canary_weight == 20


@pytest.mark.parametrize("change", ["bump", "canary"])
def test_a_change_during_the_wait_is_decided_at_once(
    repo: ConfigRepo, tmp_path: Path, decides: list[str], change: str
) -> None:
    clock = Clock()
    rec = in_analysis(repo, tmp_path, clock)
    clock.now += timedelta(seconds=1)
    assert not rec.tick().commits
    if change == "bump":
        repo.bump("apps/web", "6.1.2")  # a newer revision restarts the analysis
        expected = "restart"
    else:  # the Canary now skips its analysis: promoted without waiting
        repo.pull()
        file = repo.human / "apps/web/canary.yaml"
        file.write_text(file.read_text().replace("  analysis:\n", "  skipAnalysis: true\n  analysis:\n"))
        repo.commit_and_push("web: skip the analysis")
        expected = "promote"
    clock.now += timedelta(seconds=1)  # still inside the interval
    result = rec.tick()
    assert len(result.commits) == 1
    assert repo.gitcanary_commits()[-1][2]["Action"] == expected
