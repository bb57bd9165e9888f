"""The same pull-request-mode scenarios on GitHub, GitLab and Gitea, through each forge's real client.

Each forge is a local server keeping real state on the config repo's bare remote (real merges,
protection by a pre-receive hook) and validating what it is sent and what it answers against the
forge's published description (tests/github_server.py, tests/gitlab_server.py,
tests/gitea_server.py); a mismatch fails the test. Clients: PyGithub, python-gitlab, httpx.
What a person does (approve, close) goes through PyGithub on GitHub and is a server call on
GitLab and Gitea.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ConfigRepo, git
from forge_remote import RateLimit
from gitea_server import GiteaServer
from github import Auth, Github
from github_server import GitHubServer
from github_server import RateLimit as GitHubRateLimit
from gitlab_server import GitLabServer
from prometheus_server import DATA_END, unavailable_prometheus

from gitcanary.audit.gitlog import open_repo, read_log
from gitcanary.audit.model import Rollout, rollouts
from gitcanary.audit.parse import parse_commits
from gitcanary.forge.base import Forge, ForgeError
from gitcanary.forge.gitea import GiteaConfig, GiteaForge
from gitcanary.forge.github import GitHubConfig, GitHubForge
from gitcanary.forge.gitlab import GitLabConfig, GitLabForge
from gitcanary.forge.publish import Publisher, PublishSettings
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings

TOKEN = "gitcanary-token"
KEY = "prod/backend"
START = DATA_END - timedelta(minutes=58)
FORGES = ["github", "gitlab", "gitea"]
# The draft prefixes GitLab ("Draft: ") and Gitea ("WIP: ") keep in the title itself.
DRAFT_TITLE = re.compile(r"^(Draft|WIP): ")


@dataclass(frozen=True)
class Request:
    """One pull (merge) request as the forge's server holds it, whatever the forge calls things."""

    number: int
    head: str
    title: str
    state: str  # open, closed, merged
    merge_sha: str | None
    body: str
    draft: bool = False
    labels: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()  # bodies, oldest first
    reviewers: tuple[str, ...] = ()  # requested reviewers' logins


class Side:
    """One forge under test: its server, a gitcanary client for it, and what a person does there."""

    name = ""
    create_suffix = ""  # the path of "open a PR" requests

    def forge(self, sleeps: list[float] | None = None, **config: Any) -> Forge:
        raise NotImplementedError

    def requests_list(self) -> list[Request]:
        raise NotImplementedError

    def approve(self, number: int) -> None:
        raise NotImplementedError

    def approve_without_write(self, number: int) -> None:
        """An approval by someone without write access (the forge's permission API says read)."""
        raise NotImplementedError

    def close(self, number: int) -> None:
        raise NotImplementedError

    def vote(self, number: int, user: str, event: str, body: str = "") -> None:
        """`user` reviews: APPROVE, REQUEST_CHANGES or COMMENT (GitHub's events)."""
        raise NotImplementedError

    def dismiss(self, number: int, user: str) -> None:
        self.server.dismiss(number, user)

    def say(self, number: int, user: str, body: str) -> None:
        """`user` writes a conversation comment (GitLab: a note)."""
        if self.name == "gitlab":
            self.server.note(number, user, body)
        elif self.name == "gitea":
            self.server.comment(number, user, body)
        else:
            self.server.pulls[number].comments.append((self.server._next_id(), user, body))

    def require_approvals(self, count: int) -> None:
        self.server.required_approvals = count

    def protect(self, on: bool = True) -> None:
        self.server.protect(on)

    def rate_limit(self, count: int, retry_after: int) -> None:
        raise NotImplementedError

    def posts_to_open(self) -> int:
        return len([r for r in self.server.requests if r[0] == "POST" and r[1].endswith(self.create_suffix)])

    def add_token(self, secret: str) -> None:
        self.server.token_user[secret] = "gitcanary-bot"

    def seen_tokens(self) -> set[str]:
        return set(self.server.seen_tokens)

    def errors(self) -> list[str]:
        return list(self.server.errors)

    def cli_args(self) -> list[str]:
        raise NotImplementedError

    server: Any


class GitHubSide(Side):
    name, create_suffix = "github", "/pulls"

    def __init__(self, repo: ConfigRepo) -> None:
        self.server = GitHubServer(repo.remote).start()
        self.people = Github(
            base_url=self.server.api_url, auth=Auth.Token("pat-token"), retry=None, lazy=True
        )

    def forge(self, sleeps: list[float] | None = None, **config: Any) -> Forge:
        settings = GitHubConfig(
            repo="acme/config",
            api_url=self.server.api_url,
            token=TOKEN,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        settings = GitHubConfig(**{**settings.__dict__, **config})
        return GitHubForge(settings, sleep=sleeps.append if sleeps is not None else lambda _: None)

    def requests_list(self) -> list[Request]:
        return [
            Request(
                p.number,
                p.head,
                p.title,
                "merged" if p.merged else p.state,
                p.merge_sha,
                p.body,
                p.draft,
                tuple(p.labels),
                tuple(c[2] for c in p.comments),
                tuple(p.requested),
            )
            for p in self.server.pulls.values()
        ]

    def approve(self, number: int) -> None:
        self.people.get_repo("acme/config").get_pull(number).create_review(event="APPROVE")

    def approve_without_write(self, number: int) -> None:
        reader = Github(base_url=self.server.api_url, auth=Auth.Token("reader-token"), retry=None, lazy=True)
        reader.get_repo("acme/config").get_pull(number).create_review(event="APPROVE")

    def close(self, number: int) -> None:
        self.people.get_repo("acme/config").get_pull(number).edit(state="closed")

    def vote(self, number: int, user: str, event: str, body: str = "") -> None:
        self.server.token_user[f"{user}-token"] = user
        person = Github(base_url=self.server.api_url, auth=Auth.Token(f"{user}-token"), retry=None, lazy=True)
        person.get_repo("acme/config").get_pull(number).create_review(event=event, body=body)

    def rate_limit(self, count: int, retry_after: int) -> None:
        self.server.rate_limits.append(GitHubRateLimit(count=count, retry_after=retry_after))

    def seen_tokens(self) -> set[str]:
        return set(self.server.seen_authorization)

    def add_token(self, secret: str) -> None:
        self.server.token_user[secret] = "gitcanary[bot]"

    def cli_args(self) -> list[str]:
        return ["--github-repo", "acme/config", "--github-api-url", self.server.api_url]


class GitLabSide(Side):
    name, create_suffix = "gitlab", "/merge_requests"

    def __init__(self, repo: ConfigRepo) -> None:
        self.server = GitLabServer(repo.remote).start()

    def forge(self, sleeps: list[float] | None = None, **config: Any) -> Forge:
        settings = GitLabConfig(project="acme/config", url=self.server.url, token=TOKEN)
        settings = GitLabConfig(**{**settings.__dict__, **config})
        return GitLabForge(settings, sleep=sleeps.append if sleeps is not None else lambda _: None)

    def requests_list(self) -> list[Request]:
        return [
            Request(
                m.iid,
                m.head,
                DRAFT_TITLE.sub("", m.title),
                "open" if m.state == "opened" else m.state,
                m.merge_sha,
                m.description,
                m.draft,
                tuple(m.labels),
                tuple(n[2] for n in m.notes if not n[3]),
                tuple(sorted(self.server.users)[i - 1] for i in m.reviewer_ids),
            )
            for m in self.server.mrs.values()
        ]

    def approve(self, number: int) -> None:
        self.server.approve(number)

    def approve_without_write(self, number: int) -> None:
        self.server.approve(number, "reader")  # a Reporter: listed by the approvals API, no push access

    def close(self, number: int) -> None:
        self.server.close(number)

    def vote(self, number: int, user: str, event: str, body: str = "") -> None:
        """GitLab's review: approve (the approvals API), request changes (reviewer state
        requested_changes, its summary a note), or a comment (a note)."""
        if event == "APPROVE":
            self.server.approve(number, user)
        elif event == "REQUEST_CHANGES":
            self.server.request_changes(number, user, body)
        else:
            self.server.note(number, user, body)

    def dismiss(self, number: int, user: str) -> None:
        self.server.rerequest(number, user)  # GitLab has no dismissal: a maintainer re-requests the review

    def rate_limit(self, count: int, retry_after: int) -> None:
        self.server.rate_limits.append(RateLimit(count, retry_after, "POST", "/merge_requests"))

    def cli_args(self) -> list[str]:
        return ["--forge", "gitlab", "--forge-repo", "acme/config", "--forge-api-url", self.server.url]


class GiteaSide(Side):
    name, create_suffix = "gitea", "/pulls"

    def __init__(self, repo: ConfigRepo) -> None:
        self.server = GiteaServer(repo.remote).start()

    def forge(self, sleeps: list[float] | None = None, **config: Any) -> Forge:
        settings = GiteaConfig(repo="acme/config", url=self.server.url, token=TOKEN)
        settings = GiteaConfig(**{**settings.__dict__, **config})
        return GiteaForge(settings, sleep=sleeps.append if sleeps is not None else lambda _: None)

    def requests_list(self) -> list[Request]:
        return [
            Request(
                p.number,
                p.head,
                DRAFT_TITLE.sub("", p.title),
                "merged" if p.merged else p.state,
                p.merge_sha,
                p.body,
                p.draft,
                tuple(self.server.labels[i] for i in p.labels),
                tuple(c[2] for c in p.comments),
                tuple(p.requested),
            )
            for p in self.server.pulls.values()
        ]

    def approve(self, number: int) -> None:
        self.server.approve(number)

    def approve_without_write(self, number: int) -> None:
        # Official (no branch protection whitelist says otherwise) but read access only.
        self.server.approve(number, "reader")

    def close(self, number: int) -> None:
        self.server.close(number)

    def vote(self, number: int, user: str, event: str, body: str = "") -> None:
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "REQUEST_CHANGES"}.get(event, "COMMENT")
        self.server.review(number, user, state, body)

    def rate_limit(self, count: int, retry_after: int) -> None:
        self.server.rate_limits.append(RateLimit(count, retry_after, "POST", "/pulls"))

    def cli_args(self) -> list[str]:
        return ["--forge", "gitea", "--forge-repo", "acme/config", "--forge-api-url", self.server.url]


SIDES: dict[str, Callable[[ConfigRepo], Side]] = {
    "github": GitHubSide,
    "gitlab": GitLabSide,
    "gitea": GiteaSide,
}


@pytest.fixture(params=FORGES)
def side(request: pytest.FixtureRequest, config_repo: ConfigRepo) -> Iterator[Side]:
    made = SIDES[request.param](config_repo)
    try:
        yield made
    finally:
        made.server.stop()
    assert not made.errors(), f"requests or responses outside {made.name}'s description:\n" + "\n".join(
        made.errors()
    )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> Any:
        return self.now


def reconciler(
    repo: ConfigRepo,
    work: Path,
    side: Side,
    clock: Clock,
    *,
    mode: str = "pull-request",
    gate: bool = False,
    merge_method: str = "merge",
    forge: Forge | None = None,
) -> Reconciler:
    settings = Settings(repo=str(repo.remote), workdir=work, settle=0, prometheus=unavailable_prometheus())
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    rec.publisher = Publisher(forge or side.forge(), rec.workspace, PublishSettings(mode, gate, merge_method))
    return rec


def tick(rec: Reconciler, clock: Clock) -> TickResult:
    result = rec.tick()
    assert not result.errors and not any(r.error for r in result.reports.values()), result
    clock.now += timedelta(seconds=31)
    return result


def without_metrics(repo: ConfigRepo, **annotations: str) -> None:
    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["analysis"]["metrics"] = []
        doc["spec"]["analysis"]["stepWeight"] = 25
        doc["spec"]["analysis"]["maxWeight"] = 50
        if annotations:
            doc["metadata"]["annotations"] = dict(annotations)

    repo.edit("apps/backend/canary.yaml", change)
    repo.commit_and_push("canary without metrics for the forge tests")


def actions(repo: ConfigRepo) -> list[tuple[str, int]]:
    return [(t["Action"], int(t["Weight"])) for _, _, t in repo.gitcanary_commits()]


def phase(repo: ConfigRepo) -> str:
    commits = repo.gitcanary_commits()
    return commits[-1][2]["Phase"] if commits else ""


def branches(repo: ConfigRepo) -> list[str]:
    out = git("for-each-ref", "--format=%(refname:short)", "refs/heads/gitcanary", cwd=repo.remote)
    return out.split()


def bump_past_protection(repo: ConfigRepo, side: Side, tag: str, protect_after: bool = True) -> None:
    side.protect(False)  # a person with the right to push to the protected branch pushes the bump
    repo.bump("apps/backend", tag)
    if protect_after:
        side.protect()


def test_step_requests_are_opened_and_merged_on_a_protected_branch(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    stale = "gitcanary/prod/backend/advance-w75-i0-f0-x"  # left by a crash between push and open
    git("push", "-q", "origin", f"HEAD:refs/heads/{stale}", cwd=config_repo.human)
    side.protect()
    clock = Clock()
    rec = reconciler(config_repo, tmp_path / "work", side, clock)
    for _ in range(2):
        tick(rec, clock)
    assert stale not in branches(config_repo)
    bump_past_protection(config_repo, side, "6.1.1")
    for _ in range(8):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    assert [a for a, _ in actions(config_repo)] == [
        "initialize",
        "initialized",
        "start",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
    ]
    requests = side.requests_list()
    assert len(requests) == 8 and all(r.state == "merged" for r in requests)
    assert requests[3].head == "gitcanary/prod/backend/advance-w25-i0-f0-6.1.0_6.1.1"
    subjects = git("log", "--first-parent", "--format=%s", "main", cwd=config_repo.remote).splitlines()
    assert not [s for s in subjects if s.startswith("gitcanary:")]  # every step arrived as a merge
    assert branches(config_repo) == []


def test_a_required_approval_holds_the_step_and_a_restart_finds_the_open_request(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    without_metrics(config_repo)
    side.protect()
    side.require_approvals(1)
    clock = Clock()
    rec = reconciler(config_repo, tmp_path / "work", side, clock)
    for _ in range(2):
        result = tick(rec, clock)
        assert "waiting for review of PR #1" in result.reports[KEY].waiting
    assert actions(config_repo) == []
    rec = reconciler(config_repo, tmp_path / "elsewhere", side, clock, merge_method="squash")
    result = tick(rec, clock)
    assert "waiting for review of PR #1" in result.reports[KEY].waiting
    assert [(r.number, r.state) for r in side.requests_list()] == [(1, "open")]  # found, not duplicated
    # `gitcanary status` says so too, from Git and the forge alone.
    token_env = "GITCANARY_GITHUB_TOKEN" if side.name == "github" else "GITCANARY_FORGE_TOKEN"
    shown = subprocess.run(
        [sys.executable, "-m", "gitcanary", "status", "--repo", str(config_repo.remote), *side.cli_args()],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "250", token_env: TOKEN},
    ).stdout
    assert "waiting for review of PR #1" in shown
    side.approve(1)
    tick(rec, clock)
    assert side.requests_list()[0].state == "merged" and actions(config_repo) == [("initialize", 0)]
    result = tick(rec, clock)
    assert "waiting for review of PR #2" in result.reports[KEY].waiting


def gate_to_waiting(
    repo: ConfigRepo, side: Side, tmp_path: Path, mode: str, method: str
) -> tuple[Reconciler, Clock]:
    without_metrics(repo, **{"gitcanary.io/promotion-gate": "true"})
    clock = Clock()
    rec = reconciler(repo, tmp_path / "work", side, clock, mode=mode, merge_method=method)
    for _ in range(2):
        tick(rec, clock)
    bump_past_protection(repo, side, "6.1.1", protect_after=mode == "pull-request")
    for _ in range(10):
        result = tick(rec, clock)
        if "waiting for approval" in result.reports[KEY].waiting:
            return rec, clock
    raise AssertionError(f"no promotion waiting for approval: {actions(repo)}")


def gate_request(side: Side) -> Request:
    return next(r for r in side.requests_list() if r.title.startswith("Rollout "))


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_the_gate_approved_promotes_and_its_merge_carries_the_approval(
    config_repo: ConfigRepo, side: Side, tmp_path: Path, method: str
) -> None:
    """Merge and squash commits carry `Approved-by`; a rebase (GitLab: a fast-forward project)
    makes no commit of the forge's own, so gitcanary's next commit carries it."""
    if method == "rebase" and side.name == "gitlab":
        side.server.merge_method = "ff"  # GitLab rebases by the project's setting, not per merge
    rec, clock = gate_to_waiting(config_repo, side, tmp_path, "direct", method)
    gate = gate_request(side)
    assert gate.title == "Rollout prod/backend 6.1.0 -> 6.1.1"
    assert "Waiting for approval" in gate.body and "| 50% | promote<br>(here) |" in gate.body  # the evidence
    assert actions(config_repo)[-1] == ("advance", 50)
    side.approve(gate.number)
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    gate = gate_request(side)
    assert gate.state == "merged"
    assert [a for a, _ in actions(config_repo)][-3:] == ["promote", "finalize", "succeed"]
    assert branches(config_repo) == []
    if method == "rebase":
        # No commit of the forge's own: gitcanary's next step (the finalize) carries the approval.
        log = git("log", "--format=%B%x00", "main", cwd=config_repo.remote).split("\x00")
        carrying = [m for m in log if "Approved-by" in m]
        assert len(carrying) == 1 and "Gitcanary-Action: finalize" in carrying[0], carrying
        assert carrying[0].rstrip().endswith("\nApproved-by: pat")
        return
    assert gate.merge_sha
    message = git("log", "-1", "--format=%B", gate.merge_sha, cwd=config_repo.remote)
    # In the message's trailer block (its last paragraph), where `git interpret-trailers` reads it.
    assert message.rstrip().endswith("\nApproved-by: pat")
    # `gitcanary history` reads the approval and names the request from the forge's own message.
    sign = "!" if side.name == "gitlab" else "#"
    promotion = history_of(config_repo)[-1]
    assert "pat (approved-by)" in promotion.approvals
    assert f"PR {sign}{gate.number}" in promotion.involved
    if method == "squash":
        assert "Gitcanary-Action: promote" in message  # every step's message, then the approval


def test_only_approvals_of_the_promotion_by_who_may_write_merge_the_gate(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """The gate is a draft while the analysis runs; once the promotion commit is there it is ready,
    labelled, commented and its reviewers asked. An approval of the placeholder (an earlier head)
    and one by someone without write access do not merge it; an approval of the promotion does."""
    # The image's source repository, under the config repository's own owner (the only one the gate
    # reads by default), on the same forge, has a release of 6.1.1.
    without_metrics(
        config_repo,
        **{
            "gitcanary.io/promotion-gate": "true",
            "gitcanary.io/reviewers": "sam",
            "gitcanary.io/source-repo": "acme/podinfo",
        },
    )
    side.server.releases[("acme/podinfo", "6.1.1")] = ("6.1.1", "Faster **startup**")
    clock = Clock()
    rec = reconciler(config_repo, tmp_path / "work", side, clock, mode="direct")
    for _ in range(2):
        tick(rec, clock)
    bump_past_protection(config_repo, side, "6.1.1", protect_after=False)
    for _ in range(10):
        tick(rec, clock)
        opened = [r for r in side.requests_list() if r.title.startswith("Rollout ")]
        if opened:
            break
    (gate,) = opened
    assert gate.draft and gate.labels == ("gitcanary: analysing",) and gate.reviewers == ()
    side.approve(gate.number)  # of the placeholder: stale once the promotion replaces it
    for _ in range(10):
        result = tick(rec, clock)
        if "waiting for approval" in result.reports[KEY].waiting:
            break
    gate = gate_request(side)
    assert not gate.draft and gate.state == "open"
    assert gate.labels == ("gitcanary: waiting for approval",)
    assert gate.reviewers == ("sam",)
    assert any("<!-- gitcanary:gate-comment -->" in c for c in gate.comments)
    # Release notes through this forge's releases API, linked from the new tag.
    assert "[release in acme/podinfo](" in gate.body and "  > Faster \\*\\*startup\\*\\*" in gate.body
    side.approve_without_write(gate.number)
    for _ in range(3):
        tick(rec, clock)
    assert gate_request(side).state == "open", "a stale approval or one without write access merged"
    assert "not counted, the reviewer has no write access" in gate_request(side).body
    side.approve(gate.number)
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    assert gate_request(side).state == "merged"


def test_gitlab_approvals_count_only_when_the_project_resets_them_on_push(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    """GitLab's approvals carry no commit: with resets on push off, nothing says which head one
    approved, so none counts and the gate waits."""
    side = GitLabSide(config_repo)
    try:
        side.server.reset_approvals_on_push = False
        rec, clock = gate_to_waiting(config_repo, side, tmp_path, "direct", "merge")
        side.approve(gate_request(side).number)
        for _ in range(3):
            tick(rec, clock)
        assert gate_request(side).state == "open"
        side.server.reset_approvals_on_push = True
        for _ in range(3):
            tick(rec, clock)
        assert gate_request(side).state == "merged"
    finally:
        side.server.stop()
    assert not side.errors(), side.errors()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_gitlab_approvals_count_when_the_setting_cannot_be_read(
    config_repo: ConfigRepo, tmp_path: Path, status: int
) -> None:
    """docs/forges.md: "If gitcanary cannot read the setting (... 401, 403 or 404 ...), it takes
    GitLab's default, on": the project really does not reset approvals, but the answer hides it."""
    side = GitLabSide(config_repo)
    try:
        side.server.reset_approvals_on_push = False
        side.server.project_approvals_status = status
        rec, clock = gate_to_waiting(config_repo, side, tmp_path, "direct", "merge")
        side.approve(gate_request(side).number)
        for _ in range(3):
            tick(rec, clock)
        assert gate_request(side).state == "merged"
    finally:
        side.server.stop()


def history_of(repo: ConfigRepo) -> list[Rollout]:
    handle, rev = open_repo(str(repo.remote), "main")
    steps, problems = parse_commits(read_log(handle, rev))
    assert problems == []
    return rollouts(steps)


def test_the_gate_closed_rolls_back(config_repo: ConfigRepo, side: Side, tmp_path: Path) -> None:
    rec, clock = gate_to_waiting(config_repo, side, tmp_path, "pull-request", "merge")
    side.close(gate_request(side).number)
    for _ in range(3):
        tick(rec, clock)
        if phase(config_repo) == "Failed":
            break
    assert actions(config_repo)[-1] == ("rollback", 0) and phase(config_repo) == "Failed"
    config_repo.pull()
    assert "newTag: 6.1.0" in (config_repo.human / "apps/backend/kustomization.yaml").read_text()
    assert branches(config_repo) == []


def test_a_rate_limit_is_waited_out(config_repo: ConfigRepo, side: Side, tmp_path: Path) -> None:
    without_metrics(config_repo)
    sleeps: list[float] = []
    side.rate_limit(count=2, retry_after=7)
    clock = Clock()
    rec = reconciler(config_repo, tmp_path / "work", side, clock, forge=side.forge(sleeps))
    tick(rec, clock)
    assert sleeps == [7.0, 7.0]  # Retry-After said 7s, twice; the third request went through
    assert side.posts_to_open() == 3  # no hammering
    assert actions(config_repo) == [("initialize", 0)]


def test_a_rate_limit_longer_than_allowed_fails_the_call_not_the_process(
    config_repo: ConfigRepo, side: Side
) -> None:
    sleeps: list[float] = []
    side.rate_limit(count=1, retry_after=3600)
    forge = side.forge(sleeps, max_rate_wait=60.0)
    git("push", "-q", "origin", "HEAD:refs/heads/feature", cwd=config_repo.human)
    with pytest.raises(ForgeError, match="resets in"):
        forge.open("feature", "main", "t", "b")
    assert sleeps == []


def test_the_token_never_reaches_an_output(
    config_repo: ConfigRepo, side: Side, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "glpat-S3cretT0kenThatMustNeverShow"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    side.add_token(secret)
    side.server.echo_token = True  # a misbehaving proxy echoing credentials into error messages
    without_metrics(config_repo)
    forge = side.forge(token=None, token_file=token_file)
    clock = Clock()
    with caplog.at_level(logging.DEBUG):
        rec = reconciler(config_repo, tmp_path / "work", side, clock, forge=forge)
        for _ in range(3):
            tick(rec, clock)
        with pytest.raises(ForgeError) as raised:
            forge.get(999)
    assert secret in side.seen_tokens()  # it was used...
    assert secret not in str(raised.value) and "***" in str(raised.value)  # ...never shown
    assert secret not in caplog.text
    assert secret not in git("log", "--all", "--format=%B", cwd=config_repo.remote)
    assert all(secret not in r.body + r.title for r in side.requests_list())


def test_run_once_from_the_command_line(config_repo: ConfigRepo, side: Side, tmp_path: Path) -> None:
    side.protect()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {**os.environ, "COLUMNS": "250", "GITCANARY_PROMETHEUS": unavailable_prometheus()}
    env.pop("GITCANARY_GITHUB_TOKEN", None)
    env.pop("GITCANARY_FORGE_TOKEN", None)
    token_flag = "--github-token-file" if side.name == "github" else "--forge-token-file"
    proc = subprocess.run(
        [sys.executable, "-m", "gitcanary", "run", "--once", "--repo", str(config_repo.remote)]
        + ["--workdir", str(tmp_path / "work"), "--write-mode", "pull-request"]
        + side.cli_args()
        + [token_flag, str(token_file)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r.state for r in side.requests_list()] == ["merged"] and actions(config_repo) == [
        ("initialize", 0)
    ]
    assert TOKEN not in proc.stderr + proc.stdout


def _deliveries(kind: str, secret: bytes, body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(a good delivery's headers, bad ones) as each forge sends them."""
    import hashlib
    import hmac

    from gitcanary.service.push_webhook import signature

    def hexmac(key: bytes, data: bytes) -> str:
        return hmac.new(key, data, hashlib.sha256).hexdigest()

    if kind == "gitlab":
        good = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret.decode()}
        bad = [{"X-Gitlab-Event": "Push Hook"}, {**good, "X-Gitlab-Token": "wrong"}]
    elif kind == "gitea":
        good = {"X-Gitea-Event": "push", "X-Gitea-Signature": hexmac(secret, body)}
        bad = [
            {"X-Gitea-Event": "push"},
            {**good, "X-Gitea-Signature": hexmac(b"wrong", body)},
            {**good, "X-Gitea-Signature": hexmac(secret, body + b" ")},  # signed another body
            {**good, "X-Gitea-Signature": signature(secret, body)},  # GitHub's sha256= form is not Gitea's
        ]
    else:
        good = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature(secret, body)}
        bad = [{"X-GitHub-Event": "push"}, {**good, "X-Hub-Signature-256": signature(b"wrong", body)}]
    return good, bad


@pytest.mark.parametrize("kind", FORGES)
def test_push_webhooks_of_each_forge_wake_the_reconciler(
    config_repo: ConfigRepo, tmp_path: Path, kind: str
) -> None:
    import httpx

    from gitcanary.commands.cli import _serve

    settings = Settings(repo=str(config_repo.remote), workdir=tmp_path / "work", webhook_secret="s3cret-hook")
    rec = Reconciler(settings)
    woke: list[int] = []
    rec._wake = lambda: woke.append(1)  # what run_forever installs: reschedule the tick now
    server = _serve("127.0.0.1:0", rec)
    try:
        url = f"{server.url}/webhooks/{kind}"
        body = b'{"ref": "refs/heads/main"}'
        good, bad = _deliveries(kind, b"s3cret-hook", body)
        for headers in bad:
            assert httpx.post(url, content=body, headers=headers).status_code == 401, headers
        assert woke == []
        assert httpx.post(url, content=body, headers=good).status_code == 202
        assert woke == [1]
        other = b'{"ref": "refs/heads/gitcanary/prod/backend/x"}'
        good_other, _ = _deliveries(kind, b"s3cret-hook", other)
        assert httpx.post(url, content=other, headers=good_other).status_code == 202
        assert woke == [1]  # a push to gitcanary's own branch does not wake it
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("url", "kind", "project", "api"),
    [
        (
            "https://gitlab.com/acme/platform/config.git",
            "gitlab",
            "acme/platform/config",
            "https://gitlab.com",
        ),
        ("git@gitlab.example.com:acme/config.git", "gitlab", "acme/config", "https://gitlab.example.com"),
        ("https://codeberg.org/acme/config", "gitea", "acme/config", "https://codeberg.org"),
        (
            "ssh://git@forgejo.example.org:2222/acme/config.git",
            "gitea",
            "acme/config",
            "https://forgejo.example.org",
        ),
        ("https://github.com/acme/config.git", "github", "acme/config", "https://api.github.com"),
        ("https://git.example.com/acme/config.git", None, "acme/config", None),
    ],
)
def test_the_forge_and_its_project_are_read_from_the_repository_url(
    url: str, kind: str | None, project: str, api: str | None
) -> None:
    from gitcanary.forge import choice

    assert choice.choose(None, url) == kind
    assert choice.project_path(url, None) == project
    if kind is not None:
        assert choice.api_root(kind, url, None) == api
    assert choice.choose("gitea", url) == "gitea"  # the flag wins
    with pytest.raises(ForgeError, match="--forge 'bitbucket'"):
        choice.choose("bitbucket", url)


def test_run_help_names_the_forge_options() -> None:
    from typer.testing import CliRunner

    from gitcanary.commands.cli import app

    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250", "TERM": "dumb"}).output
    for flag in ("--forge ", "--forge-repo", "--forge-api-url", "--forge-token-file", "/webhooks/gitlab"):
        assert flag in out


def test_gitea_asks_again_before_taking_a_running_conflict_check_for_a_conflict(
    config_repo: ConfigRepo,
) -> None:
    server = GiteaServer(config_repo.remote).start()
    try:
        sleeps: list[float] = []
        forge = GiteaForge(GiteaConfig("acme/config", server.url, token=TOKEN), sleep=sleeps.append)
        git("checkout", "-q", "-b", "feature", cwd=config_repo.human)
        (config_repo.human / "note.txt").write_text("x\n")
        git("add", "-A", cwd=config_repo.human)
        git("commit", "-q", "-m", "note", cwd=config_repo.human)
        git("push", "-q", "origin", "feature", cwd=config_repo.human)
        number = forge.open("feature", "main", "t", "b").number
        server.checking = 1  # the first read comes while Gitea still checks
        pr = forge.get(number)
        assert (pr.mergeable, pr.mergeable_state, sleeps) == (True, "clean", [2.0])
        server.checking = 2  # still false on the second read: a conflict, as far as gitcanary can tell
        assert forge.get(number).mergeable_state == "dirty"
    finally:
        server.stop()
    assert not server.errors


def test_a_writers_change_request_blocks_the_gate_until_dismissed(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """Votes with each forge's own review states (GitHub CHANGES_REQUESTED and DISMISSED, Gitea
    REQUEST_CHANGES and `dismissed`): Pat's change request blocks Sam's approval and is shown with
    its text; a comment lifts nothing; a dismissal on the forge lifts it and the gate merges.
    GitLab: reviewer state requested_changes, lifted by re-requesting the review; its text is the
    reviewer's latest note, so there the comment is Sam's."""
    rec, clock = gate_to_waiting(config_repo, side, tmp_path, "direct", "merge")
    number = gate_request(side).number
    side.vote(number, "pat", "REQUEST_CHANGES", "wait for the EU traffic")
    side.vote(number, "sam", "APPROVE")
    for _ in range(2):
        tick(rec, clock)
        gate = gate_request(side)
        assert gate.state == "open" and "**Blocked** by a change request of @pat." in gate.body
        assert "- 🛑 @pat requested changes: wait for the EU traffic." in gate.body
        side.vote(number, "pat" if side.name != "gitlab" else "sam", "COMMENT", "still looking")
    side.dismiss(number, "pat")
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    gate = gate_request(side)
    assert gate.state == "merged", (rec.publisher.waiting, gate.body)
    assert "Approved-by: sam" in git("log", "-1", "--format=%B", str(gate.merge_sha), cwd=config_repo.remote)


def test_the_person_who_closed_the_gate_is_named_and_another_persons_words_are_not_theirs(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """The forge says who closed the request (GitHub's issue `closed` event, GitLab's `closed_by`,
    Gitea's timeline `close`): Sam's favourable comment is not the closer's reason; Pat closed it
    without a word, and the rollback says exactly that."""
    rec, clock = gate_to_waiting(config_repo, side, tmp_path, "direct", "merge")
    number = gate_request(side).number
    side.say(number, "sam", "looks good to me, ship it")
    side.server.close(number, "pat")
    tick(rec, clock)
    assert actions(config_repo)[-1] == ("rollback", 0)
    message = git("log", "-1", "--format=%B", "main", cwd=config_repo.remote)
    assert "Rejected by @pat (no reason given)" in message and "Rejected-by: pat" in message
    assert "sam" not in message and "ship it" not in message
    side.say(number, "pat", "p99 is worse")  # said after: a later rollout's business
    tick(rec, clock)
    body = gate_request(side).body
    assert body.startswith("🛑 **Rejected** by pat.")
    # The measurement Pat rejected stays in the final body: the promotion's row, with its values.
    rows = [line for line in body.splitlines() if line.startswith("| ") and "<br>" in line]
    promotion = [i for i, line in enumerate(rows) if "promote<br>(here)" in line]
    assert len(promotion) == 1 and "| 50% |" in rows[promotion[0]], body
    assert "rollback" in rows[promotion[0] + 1], body  # where it was decided: before the rollback


@pytest.mark.parametrize("side", ["gitea", "github"], indirect=True)
def test_an_unknown_reviewer_is_skipped_and_the_gate_says_so(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """Gitea refuses a review request naming a login it does not know (422): the others are still
    asked, the tick goes on to the promotion, and one comment names who was not asked."""
    without_metrics(
        config_repo, **{"gitcanary.io/promotion-gate": "true", "gitcanary.io/reviewers": "sam, nobody-here"}
    )
    if side.name == "github":
        side.server.unknown_users = {"nobody-here"}
    clock = Clock()
    rec = reconciler(config_repo, tmp_path / "work", side, clock, mode="direct")
    for _ in range(2):
        tick(rec, clock)
    bump_past_protection(config_repo, side, "6.1.1", protect_after=False)
    for _ in range(10):
        result = tick(rec, clock)
        if "waiting for approval" in result.reports[KEY].waiting:
            break
    gate = gate_request(side)
    assert "waiting for approval" in result.reports[KEY].waiting and gate.reviewers == ("sam",)
    refusals = [c for c in gate.comments if "could not ask" in c]
    assert len(refusals) == 1 and "`nobody-here`" in refusals[0] and "`sam`" not in refusals[0]


def test_step_rows_of_the_gate_link_the_forges_own_page_of_each_request(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """In pull-request mode the evidence links each step to the request that carried it: the URL
    the forge returns for it (GitHub /pull/N, GitLab /-/merge_requests/N, Gitea /pulls/N)."""
    gate_to_waiting(config_repo, side, tmp_path, "pull-request", "merge")
    pages = {"github": "{web}/pull/{n}", "gitlab": "{web}/-/merge_requests/{n}", "gitea": "{web}/pulls/{n}"}[
        side.name
    ]
    web = side.server.html_url if side.name != "gitlab" else f"{side.server.url}/acme/config"
    body = gate_request(side).body
    linked = re.findall(r"\]\((http[^)]+)\)", body)
    steps = [r.number for r in side.requests_list() if not r.title.startswith("Rollout ")]
    requests = [url for url in linked if "/commit/" not in url and "/releases/" not in url]
    assert requests, body
    assert set(requests) <= {pages.format(web=web, n=n) for n in steps}, requests


def test_every_link_in_every_body_resolves_on_its_own_forge(
    config_repo: ConfigRepo, side: Side, tmp_path: Path
) -> None:
    """Every link in the gate's body and in each step request's body, GET on the forge's own
    server: its commit pages (GitLab's under `/-/commit/`), request pages and release pages answer
    200; links elsewhere (none here) would fail the test as well."""
    gate_to_waiting(config_repo, side, tmp_path, "pull-request", "merge")
    bodies = [r.body for r in side.requests_list()]
    links = {url for body in bodies for url in re.findall(r"\]\((https?://[^)\s]+)\)", body)}
    assert any("/commit/" in url for url in links), bodies
    for url in sorted(links):
        assert url.startswith(side.server.url), url
        assert httpx.get(url).status_code == 200, f"link to nothing on {side.name}: {url}"
