"""Pull-request mode, the promotion gate, rate limits and webhooks, through real PyGithub.

GitHub is tests/github_server.py: real state on the config repo's bare remote (real refs, real
merges), every response validated against GitHub's OpenAPI description; the `github` fixture fails
the test if any response did not match. The gate tests measure against a real Prometheus.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo, git
from github import Auth, Github
from github_server import GitHubServer, RateLimit
from oracle import assert_story, rollout_rows
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus, unavailable_prometheus

from gitcanary.commands import operations
from gitcanary.commands.pr_status import annotate as annotate_with_prs
from gitcanary.forge.base import ForgeError
from gitcanary.forge.github import GitHubConfig, GitHubForge
from gitcanary.forge.publish import Publisher, PublishSettings
from gitcanary.service.push_webhook import PATH, signature
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings

TOKEN = "gitcanary-token"
KEY = "prod/backend"
GOOD_FROM = DATA_END - timedelta(minutes=60)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def github(config_repo: ConfigRepo) -> Iterator[GitHubServer]:
    server = GitHubServer(config_repo.remote).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, "responses that do not match GitHub's OpenAPI description:\n" + "\n".join(
        server.errors
    )


@pytest.fixture(scope="module")
def healthy_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    traffic = [
        Traffic("backend", "prod", rps=20, error_ratio=0.001, p99_ms=120, start=GOOD_FROM, end=DATA_END)
    ]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def human_github(server: GitHubServer) -> Github:
    """A person on GitHub (another token): approves, closes and merges PRs, through PyGithub too."""
    return Github(base_url=server.api_url, auth=Auth.Token("pat-token"), retry=None, lazy=True)


def forge_for(server: GitHubServer, sleeps: list[float] | None = None, **config: object) -> GitHubForge:
    settings = GitHubConfig(
        repo="acme/config",
        api_url=server.api_url,
        token=TOKEN,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    settings = GitHubConfig(**{**settings.__dict__, **config})  # type: ignore[arg-type]
    return GitHubForge(settings, sleep=(sleeps.append if sleeps is not None else lambda _: None))


def reconciler(
    repo: ConfigRepo,
    work: Path,
    server: GitHubServer,
    clock: Clock,
    *,
    mode: str = "pull-request",
    gate: bool = False,
    prometheus: str | None = None,
    forge: GitHubForge | None = None,
    merge_method: str = "merge",
    reviewers: tuple[str, ...] = (),
    release_notes_from: tuple[str, ...] = (),
) -> Reconciler:
    address = prometheus or unavailable_prometheus()
    settings = Settings(repo=str(repo.remote), workdir=work, settle=0, prometheus=address)
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    publish = PublishSettings(
        mode, gate, merge_method, reviewers=reviewers, release_notes_from=release_notes_from
    )
    rec.publisher = Publisher(forge or forge_for(server), rec.workspace, publish)
    return rec


def without_metrics(repo: ConfigRepo) -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["analysis"]["metrics"] = []
        doc["spec"]["analysis"]["stepWeight"] = 25
        doc["spec"]["analysis"]["maxWeight"] = 50

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("canary without metrics for the PR tests")


def annotate(repo: ConfigRepo, **annotations: str) -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["metadata"]["annotations"] = dict(annotations)
        doc["spec"]["analysis"]["stepWeight"] = 25  # two steps to 50%: fewer ticks, same path

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("annotate the canary")


def tick(rec: Reconciler, clock: Clock) -> TickResult:
    result = rec.tick()
    assert not result.errors and not any(r.error for r in result.reports.values()), result
    clock.now += timedelta(seconds=31)
    return result


def phase(repo: ConfigRepo) -> str:
    commits = repo.gitcanary_commits()
    return commits[-1][2]["Phase"] if commits else ""


def actions(repo: ConfigRepo) -> list[tuple[str, int]]:
    return [(t["Action"], int(t["Weight"])) for _, _, t in repo.gitcanary_commits()]


def branches(repo: ConfigRepo) -> list[str]:
    out = git("for-each-ref", "--format=%(refname:short)", "refs/heads/gitcanary", cwd=repo.remote)
    return out.split()


def first_parents(repo: ConfigRepo) -> list[str]:
    return git("log", "--first-parent", "--format=%s", "main", cwd=repo.remote).splitlines()


def test_step_prs_are_merged_on_a_protected_branch(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    # A branch left by a crash between its push and its PR: no open PR uses it, so it is swept.
    git(
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/gitcanary/prod/backend/advance-w75-i0-f0-x",
        cwd=config_repo.human,
    )
    github.protect()
    clock = Clock(GOOD_FROM)
    rec = reconciler(config_repo, tmp_path / "work", github, clock)
    for _ in range(2):
        tick(rec, clock)
    assert "gitcanary/prod/backend/advance-w75-i0-f0-x" not in branches(config_repo)
    github.protect(False)  # a person with admin rights pushes the bump
    config_repo.bump("apps/backend", "6.1.1")
    github.protect()
    landed: list[str] = []
    for _ in range(8):
        landed += tick(rec, clock).commits
        if phase(config_repo) == "Succeeded":
            break

    # The tick reports the commits that landed on main (through merged PRs), one per step.
    assert landed == [
        sha
        for sha, _, t in config_repo.gitcanary_commits()
        if t["Action"] not in ("initialize", "initialized")
    ]
    assert actions(config_repo) == [
        ("initialize", 0),
        ("initialized", 0),
        ("start", 0),
        ("advance", 25),
        ("advance", 50),
        ("promote", 50),
        ("finalize", 0),
        ("succeed", 0),
    ]
    # Every step reached main as a merged PR: main's own history holds merges and the person's commits only.
    gitcanary_subjects = [s for s in first_parents(config_repo) if s.startswith("gitcanary:")]
    assert gitcanary_subjects == []
    assert len(github.pulls) == 8 and all(p.merged for p in github.pulls.values())
    assert github.pulls[4].head == "gitcanary/prod/backend/advance-w25-i0-f0-6.1.0_6.1.1"
    assert branches(config_repo) == []  # merged branches are deleted
    check_story(config_repo, tmp_path)


def check_story(repo: ConfigRepo, tmp_path: Path, rows: list[tuple[str, str, int]] | None = None) -> None:
    """The oracle after every step commit of the 6.1.0 -> 6.1.1 rollout (stepWeight 25, maxWeight 50);
    by default it is promoted."""
    rows = rows or rollout_rows(promoted=[25, 50])
    args = ("ghcr.io/stefanprodan/podinfo", ("6.1.0", "6.1.1"))
    assert_story(
        repo.remote,
        repo.gitcanary_commits(),
        rows,
        tmp_path / "trees",
        image=args[0],
        tags=args[1],
        replicas=2,
    )


def test_required_review_blocks_then_unblocks_and_a_restart_finds_the_open_pr(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    github.protect()
    github.required_approvals = 1
    clock = Clock(GOOD_FROM)
    rec = reconciler(config_repo, tmp_path / "work", github, clock)

    result = tick(rec, clock)
    assert "waiting for review of PR #1" in result.reports[KEY].waiting
    assert actions(config_repo) == []  # the step is not done until its PR is merged
    result = tick(rec, clock)
    assert "waiting for review of PR #1" in result.reports[KEY].waiting

    # Restart elsewhere (a new process, a new work directory): the open PR is found, not duplicated.
    del rec
    rec = reconciler(config_repo, tmp_path / "elsewhere", github, clock, merge_method="rebase")
    result = tick(rec, clock)
    assert len(github.pulls) == 1 and github.pulls[1].state == "open"
    assert "waiting for review of PR #1" in result.reports[KEY].waiting
    # `gitcanary status` says so too, from Git and the forge alone.
    env = {**os.environ, "COLUMNS": "250", "GITCANARY_GITHUB_TOKEN": TOKEN}
    shown = subprocess.run(
        [sys.executable, "-m", "gitcanary", "status", "--repo", str(config_repo.remote)]
        + ["--github-repo", "acme/config", "--github-api-url", github.api_url],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "Uninitialized" in shown and "waiting for review of PR #1" in shown

    human_github(github).get_repo("acme/config").get_pull(1).create_review(event="APPROVE")
    result = tick(rec, clock)
    assert github.pulls[1].merged
    assert actions(config_repo) == [("initialize", 0)]
    # Rebase-merged: the step commit itself (author, message, trailers) is on main's first-parent line.
    assert first_parents(config_repo)[0].startswith("gitcanary: initialize prod/backend")
    check_story(config_repo, tmp_path, rollout_rows()[:1])  # the rebase-merged step, held to the oracle
    result = tick(rec, clock)  # the next step opens its own PR, which again waits for a review
    assert "waiting for review of PR #2" in result.reports[KEY].waiting
    assert [a for a, _ in actions(config_repo)] == ["initialize"]
    assert len(github.pulls) == 2


def test_rate_limit_is_waited_out_from_the_headers(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    sleeps: list[float] = []
    github.rate_limits.append(RateLimit(count=1, reset_in=40, method="POST", pattern=r"/pulls$"))
    clock = Clock(GOOD_FROM)
    rec = reconciler(config_repo, tmp_path / "work", github, clock, forge=forge_for(github, sleeps))
    tick(rec, clock)

    assert len(sleeps) == 1 and 30 <= sleeps[0] <= 41  # X-RateLimit-Reset said 40s from now
    posts = [r for r in github.requests if r == ("POST", "/api/v3/repos/acme/config/pulls")]
    assert len(posts) == 2  # refused once, then one retry after the wait: no hammering
    assert actions(config_repo) == [("initialize", 0)]


def test_rate_limit_longer_than_allowed_fails_the_tick_not_the_process(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    github.rate_limits.append(RateLimit(count=1, reset_in=3600))
    forge = forge_for(github, sleeps, max_rate_wait=60.0)
    push_feature_branch(config_repo)
    with pytest.raises(ForgeError, match="resets in"):
        forge.open("feature", "main", "t", "b")
    assert sleeps == []
    sent = len(github.requests)
    with pytest.raises(ForgeError, match="resets in"):  # the next tick, still inside the window...
        forge.open("feature", "main", "t", "b")
    assert len(github.requests) == sent  # ...spends no request: the headers said none remain
    forge.clock = lambda: time.time() + 3601  # the window has reset
    assert forge.open("feature", "main", "t", "b").number == 1


def push_feature_branch(repo: ConfigRepo) -> None:
    git("checkout", "-q", "-b", "feature", cwd=repo.human)
    (repo.human / "note.txt").write_text("x\n")
    git("add", "-A", cwd=repo.human)
    git("commit", "-q", "-m", "note", cwd=repo.human)
    git("push", "-q", "origin", "feature", cwd=repo.human)


def test_secondary_rate_limit_waits_retry_after(config_repo: ConfigRepo, github: GitHubServer) -> None:
    sleeps: list[float] = []
    push_feature_branch(config_repo)
    github.rate_limits.append(RateLimit(count=2, retry_after=7))
    forge = forge_for(github, sleeps)
    assert forge.open("feature", "main", "t", "b").number == 1
    assert sleeps == [7.0, 7.0]  # Retry-After said 7s, twice; then the third request went through
    assert len([r for r in github.requests if r == ("POST", "/api/v3/repos/acme/config/pulls")]) == 3


def gate_to_waiting(
    repo: ConfigRepo,
    github: GitHubServer,
    tmp_path: Path,
    prometheus: PrometheusServer | None,
    mode: str,
    merge_method: str = "merge",
    reviewers: tuple[str, ...] = (),
    release_notes_from: tuple[str, ...] = (),
) -> tuple[Reconciler, Clock]:
    """Roll 6.1.1 out with the gate on until its promotion waits for approval (no metrics: no Prometheus)."""
    if prometheus is None:
        without_metrics(repo)
    annotate(repo, **{"gitcanary.io/promotion-gate": "true"})
    clock = Clock(GOOD_FROM + timedelta(minutes=2))
    address = prometheus.url if prometheus else unavailable_prometheus()
    rec = reconciler(
        repo,
        tmp_path / "work",
        github,
        clock,
        mode=mode,
        prometheus=address,
        merge_method=merge_method,
        reviewers=reviewers,
        release_notes_from=release_notes_from,
    )
    for _ in range(2):
        tick(rec, clock)
    github.protect(False)
    repo.bump("apps/backend", "6.1.1")
    if mode == "pull-request":
        github.protect()
    tick(rec, clock)
    # The gate PR opens in the tick whose start commit lands, when analysis starts.
    assert actions(repo)[-1] == ("start", 0)
    assert [p.title for p in github.pulls.values() if p.title.startswith("Rollout ")] == [
        "Rollout prod/backend 6.1.0 -> 6.1.1"
    ]
    for _ in range(8):
        result = tick(rec, clock)
        if "waiting for approval" in result.reports[KEY].waiting:
            return rec, clock
    raise AssertionError(f"no promotion waiting for approval: {actions(repo)}")


def gate_pull(github: GitHubServer) -> int:
    return next(n for n, p in github.pulls.items() if p.title.startswith("Rollout "))


def rollout_history(repo: ConfigRepo) -> dict:
    """`gitcanary history prod/backend -o json` of the remote: the newest rollout, read from Git alone."""
    from typer.testing import CliRunner

    from gitcanary.commands.cli import app

    args = ["history", KEY, "--repo", str(repo.remote), "-o", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["rollouts"][0]


def test_promotion_gate_approved_promotes(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, healthy_prometheus: PrometheusServer
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, healthy_prometheus, mode="direct")
    number = gate_pull(github)
    pull = github.pulls[number]
    assert pull.title == "Rollout prod/backend 6.1.0 -> 6.1.1"
    assert len([p for p in github.pulls.values() if p.title.startswith("Rollout ")]) == 1
    # Analysis passed at 50%: the promotion commit is on the PR, not on main.
    assert actions(config_repo)[-1] == ("advance", 50)
    assert "promote" not in [a for a, _ in actions(config_repo)]
    body = pull.body
    # Thresholds and windows in the header, each value with its unit and a mark (tests/test_gate_pr.py
    # covers the body in full).
    assert "| requests | success-rate<br>≥99% | duration<br>≤500ms | error-rate<br>≤1 |" in body
    assert "| promote<br>(here) |" in body
    advance = next(sha for sha, _, t in config_repo.gitcanary_commits() if t["Weight"] == "50")
    assert f"{github.html_url}/commit/{advance}" in body
    assert "99.9% ✅" in body

    # Waiting more ticks neither duplicates the PR nor its promotion commit.
    head = github.rev(pull.head)
    for _ in range(2):
        result = tick(rec, clock)
        assert "waiting for approval of promotion PR" in result.reports[KEY].waiting
    assert github.rev(pull.head) == head and len(github.pulls) == 1
    # Restart elsewhere while the gate PR is open: its state comes back from the forge and Git alone.
    rec = reconciler(
        config_repo, tmp_path / "elsewhere", github, clock, mode="direct", prometheus=healthy_prometheus.url
    )
    result = tick(rec, clock)
    assert "waiting for approval of promotion PR" in result.reports[KEY].waiting
    assert github.rev(pull.head) == head and len(github.pulls) == 1
    views = operations.status(rec.workspace.root)
    annotate_with_prs(views, forge_for(github))
    assert views[0].phase == "Progressing" and views[0].waiting.startswith(
        f"waiting for approval of promotion PR #{number}"
    )

    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    assert pull.merged
    assert [a for a, _ in actions(config_repo)][-3:] == ["promote", "finalize", "succeed"]
    assert branches(config_repo) == []
    # The approval, given only on GitHub, is in Git: a trailer closing the gate's merge commit...
    merge = git("log", "-1", "--format=%B", str(pull.merge_sha), cwd=config_repo.remote)
    assert merge.startswith(f"Merge pull request #{number} from acme/gitcanary/prod/backend/")
    assert merge.rstrip().endswith(f"{pull.title}\n\nApproved-by: pat")
    # ...which `gitcanary history` reads back from Git alone.
    rollout = rollout_history(config_repo)
    assert (rollout["to"], rollout["outcome"]) == ("6.1.1", "promoted")
    assert "pat (approved-by)" in rollout["approvals"] and f"PR #{number}" in rollout["involved"]


@pytest.mark.parametrize("merge_method", ["squash", "rebase"])
def test_promotion_gate_approval_in_a_squash_and_not_in_a_rebase(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, merge_method: str
) -> None:
    """A squash carries the approval in its last step's trailers; after a rebase, the finalize step."""
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, "direct", merge_method)
    number = gate_pull(github)
    people = human_github(github).get_repo("acme/config")
    people.get_pull(number).create_review(event="APPROVE")
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    pull = github.pulls[number]
    assert pull.merged and [a for a, _ in actions(config_repo)][-3:] == ["promote", "finalize", "succeed"]
    rollout = rollout_history(config_repo)
    assert (rollout["to"], rollout["outcome"]) == ("6.1.1", "promoted")
    check_story(config_repo, tmp_path)
    if merge_method == "squash":
        squash = git("log", "-1", "--format=%B", str(pull.merge_sha), cwd=config_repo.remote)
        assert squash.startswith(f"{pull.title} (#{number})\n\n* gitcanary: promote prod/backend")
        # The approval joins the last step's trailer block, so git's own parser returns both.
        assert "Gitcanary-Action: promote" in squash and squash.rstrip().endswith("\nApproved-by: pat")
        parsed = subprocess.run(
            ["git", "interpret-trailers", "--parse"], input=squash, capture_output=True, text=True
        ).stdout
        assert "Approved-by: pat" in parsed and "Gitcanary-Action: promote" in parsed
        assert "pat (approved-by)" in rollout["approvals"] and f"PR #{number}" in rollout["involved"]
        assert [s["action"] for s in rollout["steps"]][-3:] == ["promote", "finalize", "succeed"]
    else:
        # A rebase makes no commit of its own: the finalize step after it carries the approval,
        # joined to its trailer block.
        finalize = next(sha for sha, _, t in config_repo.gitcanary_commits() if t["Action"] == "finalize")
        message = git("log", "-1", "--format=%B", finalize, cwd=config_repo.remote)
        parsed = subprocess.run(
            ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
        ).stdout
        assert "Approved-by: pat" in parsed and "Gitcanary-Action: finalize" in parsed
        assert "pat (approved-by)" in rollout["approvals"]


def test_promotion_gate_closed_rolls_back_and_the_rollback_never_waits_for_a_review(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, mode="pull-request")
    github.required_approvals = 1  # from now on, main is protected and every PR needs a review
    human_github(github).get_repo("acme/config").get_pull(gate_pull(github)).edit(state="closed")
    with caplog.at_level(logging.ERROR, logger="gitcanary.forge"):
        tick(rec, clock)
        tick(rec, clock)
    # The push to main was refused, the rollback PR cannot be merged without a review: alert, retry.
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT: rollback" in r.getMessage()]
    assert len(alerts) >= 2  # once when opened, again on the next tick's retry
    rollbacks = [p for p in github.pulls.values() if p.head.startswith("gitcanary/prod/backend/rollback-")]
    assert len(rollbacks) == 1 and rollbacks[0].state == "open"
    assert actions(config_repo)[-1] == ("advance", 50)

    github.required_approvals = 0  # someone lifts the rule: the next retry merges the rollback at once
    tick(rec, clock)
    assert rollbacks[0].merged
    assert actions(config_repo)[-1] == ("rollback", 0) and phase(config_repo) == "Failed"
    config_repo.pull()
    assert "newTag: 6.1.0" in (config_repo.human / "apps/backend/kustomization.yaml").read_text()
    assert branches(config_repo) == []  # the closed gate's branch and the rollback's are gone
    check_story(config_repo, tmp_path, rollout_rows(failed=[25, 50]))  # closed at 50%: no halt, rolled back


def test_tokens_never_leak(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "ghp_S3cretT0kenThatMustNeverShow"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    github.token_user[secret] = "gitcanary[bot]"
    github.echo_token = True  # a misbehaving proxy echoing credentials into error messages
    without_metrics(config_repo)
    forge = forge_for(github, token=None, token_file=token_file)
    clock = Clock(GOOD_FROM)
    with caplog.at_level(logging.DEBUG):
        rec = reconciler(config_repo, tmp_path / "work", github, clock, forge=forge)
        for _ in range(3):
            tick(rec, clock)
        with pytest.raises(ForgeError) as raised:
            forge.get(999)
    assert secret in github.seen_authorization  # it was used...
    assert secret not in str(raised.value) and "***" in str(raised.value)  # ...never shown
    assert secret not in caplog.text
    history = git("log", "--all", "--format=%B", cwd=config_repo.remote)
    assert secret not in history
    assert all(secret not in p.body and secret not in p.title for p in github.pulls.values())


def test_webhook_needs_a_valid_signature(config_repo: ConfigRepo, tmp_path: Path) -> None:
    from gitcanary.commands.cli import _serve

    settings = Settings(repo=str(config_repo.remote), workdir=tmp_path / "work", webhook_secret="s3cret-hook")
    rec = Reconciler(settings)
    woke: list[int] = []
    rec._wake = lambda: woke.append(1)  # what run_forever installs: reschedule the tick now
    server = _serve("127.0.0.1:0", rec)
    try:
        url = server.url + PATH
        body = b'{"ref": "refs/heads/main"}'
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
        assert httpx.post(url, content=body, headers=headers).status_code == 401
        bad = {**headers, "X-Hub-Signature-256": signature(b"wrong", body)}
        assert httpx.post(url, content=body, headers=bad).status_code == 401
        tampered = {**headers, "X-Hub-Signature-256": signature(b"s3cret-hook", body)}
        assert httpx.post(url, content=body + b" ", headers=tampered).status_code == 401
        assert woke == []  # nothing happened
        good = {**headers, "X-Hub-Signature-256": signature(b"s3cret-hook", body)}
        assert httpx.post(url, content=body, headers=good).status_code == 202
        assert woke == [1]
        other = b'{"ref": "refs/heads/gitcanary/prod/backend/x"}'
        signed = {**headers, "X-Hub-Signature-256": signature(b"s3cret-hook", other)}
        assert httpx.post(url, content=other, headers=signed).status_code == 202
        pr_event = {**good, "X-GitHub-Event": "pull_request"}
        assert httpx.post(url, content=body, headers=pr_event).status_code == 202
        assert woke == [1, 1]  # the push to gitcanary's own branch did not wake it
    finally:
        server.stop()


def test_run_help_documents_pr_mode() -> None:
    from typer.testing import CliRunner

    from gitcanary.commands.cli import app

    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250", "TERM": "dumb"}).output
    for flag in (
        "--write-mode",
        "--promotion-gate",
        "--merge-method",
        "--github-repo",
        "--webhook-secret-file",
    ):
        assert flag in out


def test_run_once_in_pull_request_mode_from_the_command_line(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    github.protect()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {**os.environ, "COLUMNS": "250", "GITCANARY_PROMETHEUS": unavailable_prometheus()}
    env.pop("GITCANARY_GITHUB_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "run", "--once", "--repo", str(config_repo.remote)]
        + ["--workdir", str(tmp_path / "work"), "--write-mode", "pull-request", "--merge-method", "squash"]
        + ["--github-repo", "acme/config", "--github-api-url", github.api_url]
        + ["--github-token-file", str(token_file)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert github.pulls[1].merged and actions(config_repo) == [("initialize", 0)]
    squashed = git("log", "-1", "--format=%s", "main", cwd=config_repo.remote).strip()
    assert squashed.startswith("gitcanary: initialize prod/backend") and squashed.endswith("(#1)")
    assert TOKEN not in proc.stderr + proc.stdout
    check_story(config_repo, tmp_path, rollout_rows()[:1])  # the squashed initialization, held to the oracle


def test_a_restart_trusts_its_own_squash_merges_from_the_forge_not_a_persons(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """A squash commit is the forge's (authored by GitHub), not gitcanary's git identity. After a
    restart gitcanary asks the forge whose PR the commit merged: its own (opened and merged by its
    token's account, from its branch) is its status; a person's PR from a `gitcanary/` branch is not."""
    without_metrics(config_repo)
    github.protect()
    clock = Clock(GOOD_FROM)
    first = reconciler(config_repo, tmp_path / "work", github, clock, merge_method="squash")
    for _ in range(2):
        tick(first, clock)
    github.protect(False)  # a person with admin rights pushes the bump
    config_repo.bump("apps/backend", "6.1.1")
    github.protect()
    tick(first, clock)
    assert actions(config_repo) == [("initialize", 0), ("initialized", 0), ("start", 0)]
    squash = git(
        "log", "-1", "--format=%an%n%H", "main", "--", "apps/backend-gitcanary", cwd=config_repo.remote
    )
    assert squash.split() == ["GitHub", github.pulls[3].merge_sha]
    # A restart: a new process, a new clone, nothing in memory. Its first tick goes on from the
    # squashed status (the next weight), with no restore commit and no halt.
    restarted = reconciler(config_repo, tmp_path / "work2", github, clock, merge_method="squash")
    tick(restarted, clock)
    assert actions(config_repo)[-1] == ("advance", 25)
    assert not any("restore" in s for s in first_parents(config_repo)), first_parents(config_repo)
    assert ("GET", "/api/v3/user") in github.requests  # it asked the forge who it is

    # A person opens a PR from a branch named like gitcanary's, changing the status, and merges it.
    human = config_repo.human
    config_repo.pull()
    git("checkout", "-q", "-b", "gitcanary/prod/backend/forged", cwd=human)
    status = human / "apps/backend-gitcanary/gitcanary-status.yaml"
    status.write_text(status.read_text().replace("phase: Progressing", "phase: Promoting"))
    git("commit", "-qam", "gitcanary: promote prod/backend", cwd=human)
    git("push", "-q", "origin", "gitcanary/prod/backend/forged", cwd=human)
    git("checkout", "-q", "main", cwd=human)
    pr = (
        human_github(github)
        .get_repo("acme/config")
        .create_pull(base="main", head="gitcanary/prod/backend/forged", title="promote", body="")
    )
    github.human_merge(pr.number)
    again = reconciler(config_repo, tmp_path / "work3", github, clock, merge_method="squash")
    result = again.tick()
    # Not obeyed: no promotion; the canary halts, saying the status is not gitcanary's.
    assert "not written by gitcanary" in result.reports[KEY].error, result.reports[KEY]
    assert ("promote", 25) not in actions(config_repo)
