"""A model-based test of people on a gate: random sequences of forge events against the local
GitHub, GitLab and Gitea servers, each outcome checked against an oracle that reads only the
event log.

Events, by two writers (pat, sam) and a reader (reader), at any moment: approve, request
changes, comment, dismiss (a maintainer dismisses the person's latest vote; on GitLab, which has
no dismissal, a maintainer re-requests their review, or the approver withdraws their approval),
close, reopen, and a push to the gate's branch. An event that cannot happen is left out of the
log: a dismissal with no vote to dismiss, a vote on a closed PR, a close of a closed PR or a
reopen of an open one, a close or reopen by the reader (who may not), a push to a closed PR.

The oracle replays the log with the rule the forges document: a writer's vote is their latest
approval or request for changes, a comment is no vote, a dismissal voids it, a push leaves a
request for changes standing and makes every earlier approval count for nothing (GitHub and
Gitea: it was of another head; GitLab resets approvals on push). From it:
- decision: rejected (the PR is closed), blocked (a writer's change request stands), approved (a
  writer approves the head and none objects), else waiting;
- the closer (the last close's author) and their reason: their last comment (on GitLab a request
  for changes is written as a note), else the text of their standing review, else none;
- the rollback's trailers (`Rejected-by`, one `Objected-by` per standing change request) and the
  `history` rows they make (rejections and objections, never approvals).
gitcanary reads the PR back through its own forge client and decides with the code the
reconciler uses (`PullRequest.objections`/`counted`, `publish.rejection`,
`publish.rejected_message`, and `audit` parsing of that message); all must be the oracle's.

CI runs a bounded number of sequences per forge with a fixed seed; `scripts/votes_model.py` runs
500 per forge and prints the disagreements (0; docs/pull-requests.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gitlab
import pytest
from conftest import git, make_config_repo
from gitea_server import GiteaServer
from github import Auth, Github
from github_server import GitHubServer
from gitlab_server import GitLabServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitcanary.audit.model import rollouts
from gitcanary.audit.parse import RawCommit, parse_commits
from gitcanary.forge.base import Forge
from gitcanary.forge.gitea import GiteaConfig, GiteaForge
from gitcanary.forge.github import GitHubConfig, GitHubForge
from gitcanary.forge.gitlab import GitLabConfig, GitLabForge
from gitcanary.forge.publish import rejected_message, rejection

TOKEN = "gitcanary-token"
WRITERS, PEOPLE = ("pat", "sam"), ("pat", "sam", "reader")
VOTES = ("approve", "changes")
KINDS = ("approve", "changes", "comment", "dismiss", "close", "reopen", "push")
SEQUENCES = int(os.environ.get("GITCANARY_VOTE_SEQUENCES", "10"))
events = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(KINDS)), max_size=10)
# A rollback step as gitcanary writes it, before the rejection is joined to it.
ROLLBACK = (
    "Roll back backend: promotion rejected\n\nThe promotion gate was closed unmerged.\n\n"
    "Gitcanary-Canary: prod/backend\nGitcanary-Action: rollback\nGitcanary-Rollout: 6.1.0..6.1.1/1\n"
    "Gitcanary-Phase: Failed\nGitcanary-Weight: 0\nGitcanary-Time: 2026-01-01T00:00:00Z"
)


# -- the oracle: the event log alone ---------------------------------------------------------------


def text(index: int, kind: str, user: str) -> str:
    return f"{kind} {index} by {user}"


def possible(log: list[tuple[str, str]], forge: str) -> list[tuple[int, str, str]]:
    """The events that happen, each with its position in `log` (its text's number)."""
    out: list[tuple[int, str, str]] = []
    votes: dict[str, str] = {}
    closed = False
    for index, (user, kind) in enumerate(log):
        if kind in ("close", "reopen"):
            if user not in WRITERS or closed == (kind == "close"):
                continue
            closed = kind == "close"
        elif closed:
            continue  # no review, comment, dismissal or push on a closed PR here
        elif kind == "dismiss":
            if votes.get(user) not in VOTES:
                continue
            votes[user] = "dismissed"
        elif kind in VOTES:
            votes[user] = kind
        out.append((index, user, kind))
    return out


def oracle(log: list[tuple[str, str]], forge: str) -> dict[str, Any]:
    votes: dict[str, tuple[str, int]] = {}  # user -> (vote, index of the vote's event)
    reviewed: dict[str, str] = {}  # user -> the text of their latest vote (a dismissal keeps it)
    comments: list[tuple[str, str]] = []
    closers: list[str] = []
    closed, pushed = False, -1
    for index, user, kind in possible(log, forge):
        if kind in VOTES:
            votes[user] = (kind, index)
            reviewed[user] = text(index, kind, user)
            if forge == "gitlab" and kind == "changes":
                comments.append((user, text(index, kind, user)))  # GitLab: the review's summary is a note
        elif kind == "dismiss":
            votes[user] = ("dismissed", index)
        elif kind == "comment":
            comments.append((user, text(index, kind, user)))
        elif kind == "push":
            pushed = index
        elif kind in ("close", "reopen"):
            closed = kind == "close"
            closers += [user] if closed else []
    objectors = sorted(w for w in WRITERS if votes.get(w, ("",))[0] == "changes")
    approvers = sorted(w for w in WRITERS if votes.get(w, ("", -1))[0] == "approve" and votes[w][1] > pushed)
    result: dict[str, Any] = {"objectors": objectors, "approvers": approvers}
    if closed:
        closer = closers[-1]
        said = [body for user, body in comments if user == closer]
        if not said and forge != "gitlab" and closer in reviewed:
            said = [reviewed[closer]]  # the text of their review (GitLab's votes carry none)
        reason = said[-1] if said else ""
        result["decision"] = "rejected"
        result["rejection"] = (closer, reason)
        result["said"] = (
            f"Rejected by @{closer}: {reason}" if reason else f"Rejected by @{closer} (no reason given)"
        )
        result["history"] = ([f"{closer} (rejected-by)"], [f"{o} (objected-by)" for o in objectors], [])
    else:
        result["decision"] = "blocked" if objectors else "approved" if approvers else "waiting"
    return result


# -- the forges ------------------------------------------------------------------------------------


class GitHubDriver:
    name = "github"

    def __init__(self, bare: Path) -> None:
        self.server = GitHubServer(bare).start()
        for user in PEOPLE:
            self.server.token_user[f"{user}-token"] = user
        self.server.permissions.update({"pat": "write", "sam": "write"})
        self.forge: Forge = GitHubForge(
            GitHubConfig(
                repo="acme/config",
                api_url=self.server.api_url,
                token=TOKEN,
                seconds_between_requests=None,
                seconds_between_writes=None,
            ),
            sleep=lambda _: None,
        )
        self.people = {
            user: Github(
                base_url=self.server.api_url, auth=Auth.Token(f"{user}-token"), retry=None, lazy=True
            )
            for user in PEOPLE
        }

    def act(self, number: int, user: str, kind: str, body: str) -> None:
        pull = self.people[user].get_repo("acme/config").get_pull(number)
        if kind == "dismiss":
            self.server.dismiss(number, user)
        elif kind in VOTES:
            pull.create_review(event={"approve": "APPROVE", "changes": "REQUEST_CHANGES"}[kind], body=body)
        elif kind == "comment":
            pull.create_issue_comment(body)
        elif kind in ("close", "reopen"):
            pull.edit(state="closed" if kind == "close" else "open")


class GitLabDriver:
    name = "gitlab"

    def __init__(self, bare: Path) -> None:
        self.server = GitLabServer(bare).start()
        for user in PEOPLE:
            self.server.token_user[f"{user}-token"] = user
        self.forge = GitLabForge(
            GitLabConfig(project="acme/config", url=self.server.url, token=TOKEN), sleep=lambda _: None
        )
        self.people = {
            user: gitlab.Gitlab(self.server.url, private_token=f"{user}-token").projects.get(
                "acme/config", lazy=True
            )
            for user in PEOPLE
        }

    def act(self, number: int, user: str, kind: str, body: str) -> None:
        mr = self.people[user].mergerequests.get(number, lazy=True)
        if kind == "approve":
            if user not in self.server.approvers(self.server.mrs[number]):
                mr.approve()  # POST .../approve as that person (GitLab refuses a second one: 401)
        elif kind == "changes":
            self.server.request_changes(number, user, body)  # the web UI's review (no REST call)
        elif kind == "dismiss":
            state = self.server.mrs[number].states.get(user)
            if state == "requested_changes":
                self.server.rerequest(number, user)  # a maintainer asks for their review again
            elif user in self.server.approvers(self.server.mrs[number]):
                mr.unapprove()  # POST .../unapprove: the approver withdraws it
        elif kind == "comment":
            mr.notes.create({"body": body})
        elif kind in ("close", "reopen"):
            mr.state_event = kind
            mr.save()


class GiteaDriver:
    name = "gitea"

    def __init__(self, bare: Path) -> None:
        self.server = GiteaServer(bare).start()
        self.forge = GiteaForge(
            GiteaConfig(repo="acme/config", url=self.server.url, token=TOKEN), sleep=lambda _: None
        )

    def act(self, number: int, user: str, kind: str, body: str) -> None:
        if kind == "dismiss":
            self.server.dismiss(number, user)
        elif kind in VOTES:
            self.server.review(
                number, user, {"approve": "APPROVED", "changes": "REQUEST_CHANGES"}[kind], body
            )
        elif kind == "comment":
            self.server.comment(number, user, body)
        elif kind == "close":
            self.server.close(number, user)
        elif kind == "reopen":
            self.server.reopen(number, user)


DRIVERS = {"github": GitHubDriver, "gitlab": GitLabDriver, "gitea": GiteaDriver}


@pytest.fixture(scope="module", params=list(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    repo = make_config_repo(tmp_path_factory.mktemp(request.param))
    made = DRIVERS[request.param](repo.remote)
    made.bare = repo.remote
    made.count = 0
    try:
        yield made
    finally:
        made.server.stop()
    assert not made.server.errors, "\n".join(made.server.errors)


def push(driver: Any, branch: str, message: str) -> None:
    """A new commit on the gate's branch, pushed with git (the forge sees its head move)."""
    tree = git("rev-parse", f"{branch}^{{tree}}", cwd=driver.bare).strip()
    head = git("commit-tree", tree, "-p", branch, "-m", message, cwd=driver.bare).strip()
    git("update-ref", f"refs/heads/{branch}", head, cwd=driver.bare)


def play(driver: Any, log: list[tuple[str, str]]) -> dict[str, Any]:
    """Open a fresh gate PR, play `log` on the forge, and read the outcome as gitcanary does."""
    driver.count += 1
    branch = f"gitcanary/prod/backend/promotion-m{driver.count}"
    tree = git("rev-parse", "main^{tree}", cwd=driver.bare).strip()
    head = git("commit-tree", tree, "-p", "main", "-m", f"promotion {driver.count}", cwd=driver.bare).strip()
    git("branch", branch, head, cwd=driver.bare)
    number = driver.forge.open(branch, "main", "Rollout", "gate").number
    for index, user, kind in possible(log, driver.name):
        if kind == "push":
            push(driver, branch, f"push {index}")
        else:
            driver.act(number, user, kind, text(index, kind, user))
    full = driver.forge.get(number)
    objectors = sorted(r.login for r in full.objections())
    out: dict[str, Any] = {"objectors": objectors, "approvers": sorted(r.login for r in full.counted())}
    if full.closed_unmerged:
        closer, reason = rejection(driver.forge, full)
        message = rejected_message(ROLLBACK, closer, reason, objectors)
        assert message is not None
        out["decision"] = "rejected"
        out["rejection"] = (closer, reason)
        out["said"] = next(line for line in message.splitlines() if line.startswith("Rejected by @"))
        out["history"] = history(message)
    else:
        out["decision"] = "blocked" if objectors else "approved" if out["approvers"] else "waiting"
    return out


def history(message: str) -> tuple[list[str], list[str], list[str]]:
    """(rejections, objections, approvals) as `gitcanary history`/`audit` read the rollback commit."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    commit = RawCommit("a" * 40, (), "gitcanary", "bot@example", when, "gitcanary", "bot@example", message)
    steps, problems = parse_commits([commit])
    assert not problems, problems
    (rollout,) = rollouts(steps)
    return rollout.rejections, rollout.objections, rollout.approvals


@settings(max_examples=SEQUENCES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(events)
# Read first, whatever the generator draws: another person's words are not the closer's reason;
# a standing objection survives a push and a reopen; the last closer is the one named.
@example([("sam", "comment"), ("pat", "close")])
@example([("pat", "changes"), ("sam", "approve"), ("sam", "push"), ("pat", "close")])
@example([("sam", "changes"), ("pat", "close"), ("pat", "reopen"), ("sam", "comment"), ("sam", "close")])
def test_gitcanary_reads_every_sequence_of_forge_events_as_the_event_log_says(
    driver: Any, log: list[tuple[str, str]]
) -> None:
    got, expected = play(driver, log), oracle(log, driver.name)
    assert got == expected, (possible(log, driver.name), got, expected)
