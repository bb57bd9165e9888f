"""End to end: webhooks and notifications through the real Reconciler on a real ConfigRepo.

The hooks point at real local HTTP servers that answer like Flagger's load tester (tests/hook_server.py);
a person opens a gate the way Flagger users do, with a POST to `/gate/open`. Notifications go to
real local sinks through AlertProviders read from the repository, their address from the
environment or a mounted secret file, never from Git. After every commit the invariant holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ConfigRepo
from github_server import GitHubServer
from hook_server import HookServer, hook_server
from oracle import assert_story, rollout_rows
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus, unavailable_prometheus
from test_e2e_rollout import check_invariant
from test_forge import GOOD_FROM, without_metrics
from test_forge import reconciler as forge_reconciler

from gitcanary.commands import operations
from gitcanary.manifests import yamlio
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings

CANARY = "apps/backend/canary.yaml"
STATUS = "apps/backend-gitcanary/gitcanary-status.yaml"
BAD_FROM = DATA_END - timedelta(minutes=30)
PODINFO = {"name": "backend", "namespace": "prod"}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def servers() -> Iterator[dict[str, HookServer]]:
    with (
        hook_server() as hooks,
        hook_server() as rollout_gate,
        hook_server() as promotion_gate,
        hook_server() as sink,
    ):
        yield {"hooks": hooks, "rollout": rollout_gate, "promotion": promotion_gate, "sink": sink}


@pytest.fixture
def github(config_repo: ConfigRepo) -> Iterator[GitHubServer]:
    """A local GitHub API on the config repo (tests/github_server.py), as in test_forge."""
    server = GitHubServer(config_repo.remote).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, "\n".join(server.errors)


@pytest.fixture(scope="module")
def prometheus_bad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """`backend` in `prod` serves 10% errors for the last half hour of the data."""
    traffic = [Traffic("backend", "prod", rps=20, error_ratio=0.10, p99_ms=140, start=BAD_FROM, end=DATA_END)]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def write_providers(repo: ConfigRepo, sink: HookServer) -> None:
    """Three AlertProviders, none holding an address: two secretRefs and a generic JSON webhook."""
    docs = [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "slack", "namespace": "prod"},
            "spec": {"type": "slack", "channel": "#deploys", "secretRef": {"name": "slack-url"}},
        },
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "discord", "namespace": "prod"},
            "spec": {"type": "discord", "secretRef": {"name": "discord-url"}},
        },
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {
                "name": "oncall",
                "namespace": "prod",
                "annotations": {"gitcanary.io/provider-type": "generic"},
            },
            "spec": {"type": "slack", "secretRef": {"name": "oncall-url"}},
        },
    ]
    path = repo.human / "apps" / "alerts" / "providers.yaml"
    path.parent.mkdir()
    path.write_text(yamlio.dump_all(docs))


def set_analysis(repo: ConfigRepo, **changes: Any) -> None:
    def change(doc: Any) -> None:
        for key, value in changes.items():
            doc["spec"]["analysis"][key] = value

    repo.edit(CANARY, change)


def make_reconciler(repo: ConfigRepo, tmp_path: Path, clock: Clock, prometheus: str) -> Reconciler:
    settings = Settings(
        repo=str(repo.remote),
        workdir=tmp_path / "gitcanary-work",
        prometheus=prometheus,
        settle=0,
        commit_url="https://git.example.com/fleet/commit/{sha}",
        secrets_dir=tmp_path / "secrets",
    )
    return Reconciler(settings, clock=clock, sleep=lambda _: None)


def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: HookServer) -> None:
    """slack from the environment; discord and oncall from files, as a mounted Secret would be."""
    monkeypatch.setenv("GITCANARY_SECRET_PROD_SLACK_URL_ADDRESS", f"{sink.url}/slack")
    for name, path in (("discord-url", "/discord"), ("oncall-url", "/oncall")):
        folder = tmp_path / "secrets" / "prod" / name
        folder.mkdir(parents=True)
        (folder / "address").write_text(f"{sink.url}{path}\n")


def tick(rec: Reconciler, clock: Clock, seconds: float = 31) -> TickResult:
    result = rec.tick()
    assert not result.errors and not any(r.error for r in result.reports.values()), result
    clock.now += timedelta(seconds=seconds)
    return result


def actions(repo: ConfigRepo) -> list[tuple[str, str, int]]:
    return [(t["Action"], t["Phase"], int(t["Weight"])) for _, _, t in repo.gitcanary_commits()]


def test_gates_wait_and_open(
    config_repo: ConfigRepo, tmp_path: Path, servers: dict[str, HookServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks, sink = servers["hooks"], servers["sink"]
    set_analysis(
        config_repo,
        maxWeight=20,
        metrics=[],
        webhooks=[
            {"name": "start", "type": "confirm-rollout", "url": f"{servers['rollout'].url}/gate/check"},
            {"name": "smoke", "type": "pre-rollout", "url": f"{hooks.url}/smoke", "timeout": "5s"},
            {"name": "load", "type": "rollout", "url": f"{hooks.url}/load", "metadata": {"cmd": "hey -z 1m"}},
            {"name": "promote", "type": "confirm-promotion", "url": f"{servers['promotion'].url}/gate/check"},
            {"name": "cleanup", "type": "post-rollout", "url": f"{hooks.url}/post"},
            {"name": "audit", "type": "event", "url": f"{hooks.url}/events"},
        ],
        alerts=[
            {"name": "team", "severity": "info", "providerRef": {"name": "slack"}},
            {"name": "pager", "severity": "error", "providerRef": {"name": "oncall"}},
        ],
    )
    write_providers(config_repo, sink)
    config_repo.commit_and_push("canary with gates, hooks and alerts")
    secrets(tmp_path, monkeypatch, sink)
    clock = Clock(datetime(2026, 11, 22, 1, 0).astimezone())
    rec = make_reconciler(config_repo, tmp_path, clock, unavailable_prometheus())
    tick(rec, clock)
    tick(rec, clock)
    assert actions(config_repo)[-1] == ("initialized", "Initialized", 0)

    # A bump meets a closed confirm-rollout gate: one commit to Waiting, the canary stays at 0 replicas.
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clock)
    sha, subject, trailers = config_repo.gitcanary_commits()[-1]
    assert subject == "gitcanary: hold prod/backend rollout 6.1.0 -> 6.1.1: waiting for approval"
    assert (trailers["Action"], trailers["Phase"]) == ("wait", "Waiting")
    config_repo.pull()
    assert "Halt advancement waiting for approval start" in (config_repo.human / STATUS).read_text()
    # Still closed: asked again, nothing committed.
    before = len(config_repo.gitcanary_commits())
    result = tick(rec, clock)
    assert not result.commits and "waiting for rollout approval" in result.reports["prod/backend"].waiting
    assert len(servers["rollout"].posted("/gate/check")) == 2
    assert servers["rollout"].posted("/gate/check")[0] | {"checksum": ""} == {
        **PODINFO,
        "phase": "Progressing",
        "checksum": "",
        "metadata": {},
    }

    # The person opens the gate the load tester's way; the rollout starts and advances.
    httpx.post(f"{servers['rollout'].url}/gate/open", json=PODINFO)
    tick(rec, clock)  # start
    tick(rec, clock)  # pre-rollout, then 10%
    tick(rec, clock)  # rollout hook, then 20% (max)
    assert len(hooks.posted("/smoke")) == 1
    assert [body["metadata"] for body in hooks.posted("/load")] == [{"cmd": "hey -z 1m"}]

    # Max weight: the closed confirm-promotion gate holds it in WaitingPromotion.
    tick(rec, clock)
    assert actions(config_repo)[-1] == ("wait", "WaitingPromotion", 20)
    assert config_repo.gitcanary_commits()[-1][1] == (
        "gitcanary: hold prod/backend at 20% (6.1.0 -> 6.1.1): waiting for promotion approval"
    )
    config_repo.pull()
    [view] = operations.status(config_repo.human, now=clock.now, settle=0)
    assert (view.phase, view.waiting) == (
        "WaitingPromotion",
        "Halt advancement waiting for promotion approval promote",
    )
    loads = len(hooks.posted("/load"))
    tick(rec, clock, seconds=5)  # due: the analysis (rollout hook) runs again; the gate is still closed
    assert len(hooks.posted("/load")) == loads + 1
    result = tick(rec, clock)  # 5 s after that attempt: not due, nothing called, nothing committed
    assert len(hooks.posted("/load")) == loads + 1 and not result.commits
    assert len(config_repo.gitcanary_commits()) == before + 4

    httpx.post(f"{servers['promotion'].url}/gate/open", json=PODINFO)
    for _ in range(4):
        tick(rec, clock)
    assert [a[0] for a in actions(config_repo)[-3:]] == ["promote", "finalize", "succeed"]

    # post-rollout ran once, after Succeeded reached the remote; every commit was an event.
    assert [body["phase"] for body in hooks.posted("/post")] == ["Succeeded"]
    events = hooks.posted("/events")
    commits = config_repo.gitcanary_commits()
    assert [e["metadata"]["commit"] for e in events] == [sha for sha, _, _ in commits]
    assert events[2]["metadata"]["eventType"] == "Warning" and events[2]["phase"] == "Waiting"
    assert events[-1]["metadata"]["eventMessage"] == "Promotion completed! Scaling down canary"
    assert len(hooks.posted("/smoke")) == 1  # pre-rollout: once for the rollout's first step

    # Notifications: the info alert got every one, the error-only alert none.
    slack = [body["attachments"][0] for body in sink.posted("/slack")]
    assert [(a["color"], a["title"]) for a in slack] == [
        ("#2eb886", "Initialization done!"),
        ("#daa038", "Canary is waiting for approval."),
        ("#2eb886", "New revision detected, progressing canary analysis."),
        ("#daa038", "Canary promotion is waiting for approval."),
        ("#2eb886", "Canary analysis completed successfully, promotion finished."),
    ]
    succeeded = slack[-1]
    assert succeeded["title_link"] == f"https://git.example.com/fleet/commit/{commits[-1][0]}"
    assert sink.posted("/oncall") == []
    # The oracle after every commit, each row from this test's story (maxWeight 20, stepWeight 10):
    # action, phase, weight, primary tag, canary tag, target replicas (the HPA's 2 while scaled), routed.
    table = [
        ("initialize", "Initializing", 0, "6.1.0", "6.1.0", None, False),
        ("initialized", "Initialized", 0, "6.1.0", "6.1.0", 0, True),
        ("wait", "Waiting", 0, "6.1.0", "6.1.1", 0, True),
        ("start", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 20, "6.1.0", "6.1.1", 2, True),
        ("wait", "WaitingPromotion", 20, "6.1.0", "6.1.1", 2, True),
        ("promote", "Promoting", 20, "6.1.1", "6.1.1", 2, True),
        ("finalize", "Finalising", 0, "6.1.1", "6.1.1", 2, True),
        ("succeed", "Succeeded", 0, "6.1.1", "6.1.1", 0, True),
    ]
    assert actions(config_repo) == [row[:3] for row in table]
    for (sha, _, _), row in zip(commits, table, strict=True):
        check_invariant(config_repo, tmp_path, sha, row)


def test_failing_hooks_and_metrics_notify_by_severity(
    config_repo: ConfigRepo,
    tmp_path: Path,
    servers: dict[str, HookServer],
    monkeypatch: pytest.MonkeyPatch,
    prometheus_bad: PrometheusServer,
) -> None:
    """A failing pre-rollout hook is a failed check; then a failing metric reaches threshold: rollback."""
    hooks, sink = servers["hooks"], servers["sink"]
    hooks.script("/smoke", [403, 200])  # fails once, then passes
    set_analysis(
        config_repo,
        threshold=3,
        webhooks=[{"name": "smoke", "type": "pre-rollout", "url": f"{hooks.url}/smoke"}],
        alerts=[
            {"name": "team", "providerRef": {"name": "slack"}},
            {"name": "chat", "severity": "warn", "providerRef": {"name": "discord"}},
            {"name": "pager", "severity": "error", "providerRef": {"name": "oncall", "namespace": "prod"}},
        ],
    )
    write_providers(config_repo, sink)
    config_repo.commit_and_push("canary with a pre-rollout hook and alerts")
    secrets(tmp_path, monkeypatch, sink)
    clock = Clock(BAD_FROM + timedelta(minutes=2))
    rec = make_reconciler(config_repo, tmp_path, clock, prometheus_bad.url)
    for _ in range(2):
        tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    for _ in range(5):
        tick(rec, clock)
    assert actions(config_repo)[2:] == [
        ("start", "Progressing", 0),
        ("halt", "Progressing", 0),
        ("advance", "Progressing", 10),
        ("halt", "Progressing", 10),
        ("rollback", "Failed", 0),
    ]
    table = [
        ("initialize", "Initializing", 0, "6.1.0", "6.1.0", None, False),
        ("initialized", "Initialized", 0, "6.1.0", "6.1.0", 0, True),
        ("start", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
        ("halt", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
        ("halt", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
        ("rollback", "Failed", 0, "6.1.0", "6.1.0", 0, True),
    ]
    assert actions(config_repo) == [row[:3] for row in table]
    for (sha, _, _), row in zip(config_repo.gitcanary_commits(), table, strict=True):
        check_invariant(config_repo, tmp_path, sha, row)
    halt = config_repo.gitcanary_commits()[3]
    assert halt[1] == (
        "gitcanary: halt prod/backend at 0% (6.1.0 -> 6.1.1): "
        "pre-rollout webhook smoke failed: HTTP 403: Forbidden"
    )
    assert halt[2]["Failed-Checks"] == "1"

    slack = [body["attachments"][0]["title"] for body in sink.posted("/slack")]
    assert slack[0] == "Initialization done!"
    assert slack[1] == "New revision detected, progressing canary analysis."
    assert slack[2] == "Halt advancement: pre-rollout webhook smoke failed: HTTP 403: Forbidden"
    assert slack[3].startswith("Halt advancement: request-success-rate 90")
    assert slack[4].startswith("Canary failed! failed checks reached threshold 3/3")
    discord = [body["embeds"][0]["title"] for body in sink.posted("/discord")]
    assert discord == [f"backend.prod: {title}" for title in slack[2:]]  # warn and error only
    [pager] = sink.posted("/oncall")  # error only: the rollback
    assert pager["severity"] == "error" and pager["action"] == "rollback"
    assert (pager["primaryRevision"], pager["canaryRevision"], pager["weight"]) == ("6.1.0", "6.1.1", 10)
    assert any(line.startswith("request-success-rate 90") for line in pager["failedChecks"])
    assert (
        pager["commitUrl"] == f"https://git.example.com/fleet/commit/{config_repo.gitcanary_commits()[-1][0]}"
    )


def test_pre_rollout_is_not_called_twice_when_its_step_is_decided_again(
    config_repo: ConfigRepo, tmp_path: Path, servers: dict[str, HookServer]
) -> None:
    """While the pre-rollout hook runs, a person pushes a change to the app (no new revision).

    gitcanary's push is rejected; the change touches an input of the canary, so it drops its step,
    re-reads and decides the same step again: the hook's answer is reused, not asked twice.
    """
    hooks = servers["hooks"]
    set_analysis(
        config_repo,
        metrics=[],
        webhooks=[{"name": "smoke", "type": "pre-rollout", "url": f"{hooks.url}/smoke"}],
    )
    config_repo.commit_and_push("canary with a pre-rollout hook")
    clock = Clock(datetime(2026, 11, 22, 1, 0).astimezone())
    rec = make_reconciler(config_repo, tmp_path, clock, unavailable_prometheus())
    tick(rec, clock)
    tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clock)  # start

    def person_pushes(_body: object) -> None:
        config_repo.pull()
        deployment = config_repo.human / "apps" / "backend" / "deployment.yaml"
        deployment.write_text("# owned by team web\n" + deployment.read_text())
        config_repo.commit_and_push("a comment in the deployment")

    hooks.on("/smoke", person_pushes)
    result = tick(rec, clock)
    hooks.on("/smoke", lambda _body: None)
    assert len(result.commits) == 1
    assert len(hooks.posted("/smoke")) == 1
    log = config_repo.remote_log()
    assert log[-2][1] == "a comment in the deployment"  # the person's commit is kept, ours on top
    assert (log[-1][2]["Action"], log[-1][2]["Weight"]) == ("advance", "10")
    # stepWeight 10 (the example's): the first step only, each commit held to the oracle.
    assert_story(
        config_repo.remote,
        config_repo.gitcanary_commits(),
        rollout_rows()[:2] + [("start", "Progressing", 0), ("advance", "Progressing", 10)],
        tmp_path / "trees",
        image="ghcr.io/stefanprodan/podinfo",
        tags=("6.1.0", "6.1.1"),
        replicas=2,
    )


def test_a_step_dropped_in_a_rebase_is_never_announced(
    config_repo: ConfigRepo, tmp_path: Path, servers: dict[str, HookServer]
) -> None:
    """docs/webhooks-alerts.md: "A step dropped in a rebase is never announced." While the
    pre-rollout hook of the step after the start runs, a person bumps the tag again: gitcanary's
    push of that step is rejected, the step is dropped and the newer bump decided instead. Each
    event names a commit that landed, one event per landed commit, and none the dropped step."""
    hooks = servers["hooks"]
    set_analysis(
        config_repo,
        metrics=[],
        webhooks=[
            {"name": "smoke", "type": "pre-rollout", "url": f"{hooks.url}/smoke"},
            {"name": "audit", "type": "event", "url": f"{hooks.url}/events"},
        ],
    )
    config_repo.commit_and_push("canary with a pre-rollout hook and an event hook")
    clock = Clock(datetime(2026, 11, 22, 1, 0).astimezone())
    rec = make_reconciler(config_repo, tmp_path, clock, unavailable_prometheus())
    tick(rec, clock)
    tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clock)  # start 6.1.1
    hooks.on("/smoke", lambda _body: config_repo.bump("apps/backend", "6.1.3"))
    tick(rec, clock)  # decides the first step of 6.1.1, which the person's bump makes stale
    hooks.on("/smoke", lambda _body: None)
    landed = [sha for sha, _, _ in config_repo.gitcanary_commits()]
    announced = [e["metadata"]["commit"] for e in hooks.posted("/events")]
    assert announced == landed
    steps = [(t["Action"], t["Rollout"]) for _, _, t in config_repo.gitcanary_commits()]
    assert not any(action == "advance" and "6.1.1" in rollout for action, rollout in steps), steps
    assert any("6.1.3" in rollout for _, rollout in steps), steps


def test_rollback_hook_rolls_back_and_writes_the_old_tag_back(
    config_repo: ConfigRepo, tmp_path: Path, servers: dict[str, HookServer]
) -> None:
    """A person asks the load tester for a rollback mid-analysis; the next analysis run rolls back."""
    loadtester = servers["rollout"]
    set_analysis(
        config_repo,
        metrics=[],
        webhooks=[{"name": "manual", "type": "rollback", "url": f"{loadtester.url}/rollback/check"}],
    )
    config_repo.commit_and_push("canary with a manual rollback hook")
    clock = Clock(datetime(2026, 11, 22, 1, 0).astimezone())
    rec = make_reconciler(config_repo, tmp_path, clock, unavailable_prometheus())
    tick(rec, clock)
    tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clock)  # start
    tick(rec, clock)  # 10%: the hook was asked and signalled nothing
    assert loadtester.posted("/rollback/check")[-1]["phase"] == "Progressing"
    httpx.post(f"{loadtester.url}/rollback/open", json=PODINFO)
    tick(rec, clock)
    sha, subject, trailers = config_repo.gitcanary_commits()[-1]
    assert subject == "gitcanary: roll back prod/backend 6.1.1 -> 6.1.0"
    assert (trailers["Action"], trailers["Phase"]) == ("rollback", "Failed")
    table = [
        ("initialize", "Initializing", 0, "6.1.0", "6.1.0", None, False),
        ("initialized", "Initialized", 0, "6.1.0", "6.1.0", 0, True),
        ("start", "Progressing", 0, "6.1.0", "6.1.1", 2, True),
        ("advance", "Progressing", 10, "6.1.0", "6.1.1", 2, True),
        ("rollback", "Failed", 0, "6.1.0", "6.1.0", 0, True),  # the old tag written back
    ]
    assert actions(config_repo) == [row[:3] for row in table]
    for (commit, _, _), row in zip(config_repo.gitcanary_commits(), table, strict=True):
        check_invariant(config_repo, tmp_path, commit, row)
    config_repo.pull()
    assert "rollback webhook manual invoked" in (config_repo.human / STATUS).read_text()


def test_pull_request_mode_announces_commits_as_they_landed(
    config_repo: ConfigRepo,
    github: GitHubServer,
    tmp_path: Path,
    servers: dict[str, HookServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each step is a PR merged through the (local) GitHub API: events name the commits on main,
    and notifications link the pull request that carried each step."""
    hooks, sink = servers["hooks"], servers["sink"]
    without_metrics(config_repo)
    set_analysis(
        config_repo,
        webhooks=[{"name": "audit", "type": "event", "url": f"{hooks.url}/events"}],
        alerts=[{"name": "pager", "providerRef": {"name": "oncall"}}],
    )
    write_providers(config_repo, sink)
    monkeypatch.setenv("GITCANARY_SECRET_PROD_ONCALL_URL_ADDRESS", f"{sink.url}/oncall")
    config_repo.commit_and_push("an event hook and a generic alert")
    clock = Clock(GOOD_FROM)
    rec = forge_reconciler(config_repo, tmp_path / "work", github, clock)
    tick(rec, clock)
    tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    github.protect()  # from now on every step is a PR that gitcanary merges
    for _ in range(8):
        tick(rec, clock)
        if config_repo.gitcanary_commits()[-1][2]["Phase"] == "Succeeded":
            break
    landed = [sha for sha, _, _ in config_repo.gitcanary_commits()]
    assert [e["metadata"]["commit"] for e in hooks.posted("/events")] == landed
    # stepWeight 25 up to maxWeight 50 (without_metrics), promoted; each step commit held to the oracle.
    assert_story(
        config_repo.remote,
        config_repo.gitcanary_commits(),
        rollout_rows(promoted=[25, 50]),
        tmp_path / "trees",
        image="ghcr.io/stefanprodan/podinfo",
        tags=("6.1.0", "6.1.1"),
        replicas=2,
    )
    assert hooks.posted("/events")[-1]["phase"] == "Succeeded"
    # Steps decided before the branch was protected were pushed directly: no PR to link.
    notices = sink.posted("/oncall")
    by_commit = {n["commit"]: n["pullRequestUrl"] for n in notices}
    step_prs = {f"{github.html_url}/pull/{number}" for number in github.pulls}
    after_protection = [sha for sha in landed if by_commit.get(sha)]
    assert after_protection, notices
    assert {by_commit[sha] for sha in after_protection} <= step_prs
    assert notices[-1]["phase"] == "Succeeded" and notices[-1]["pullRequestUrl"] in step_prs
