"""A model-based test of votes on a gate: random sequences of review events against the local
GitHub and Gitea servers, each decision checked against an oracle that reads only the event log.

Events: approve, request changes, comment, and a maintainer's dismissal of the latest vote, by
two writers (pat, sam) and a reader (reader). The oracle replays the log with the rule the
forges document: a reviewer's vote is their latest approval or change request, a comment is no
vote, a dismissal voids it; only writers vote. Decision: blocked (a writer's change request
stands), approved (a writer approves and none objects), else waiting. gitcanary reads the PR
back through its own forge client (`get`) and decides with `PullRequest.objections` and
`counted`; the objectors and approvers must be the oracle's, on every sequence.

CI runs a bounded number of sequences with a fixed seed; `scripts/votes_model.py` runs 500 per
forge and prints the disagreements (0; docs/pull-requests.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_config_repo
from gitea_server import GiteaServer
from github import Auth, Github
from github_server import GitHubServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcanary.forge.base import Forge
from gitcanary.forge.gitea import GiteaConfig, GiteaForge
from gitcanary.forge.github import GitHubConfig, GitHubForge

TOKEN = "gitcanary-token"
WRITERS, PEOPLE = ("pat", "sam"), ("pat", "sam", "reader")
KINDS = ("approve", "changes", "comment", "dismiss")
SEQUENCES = int(os.environ.get("GITCANARY_VOTE_SEQUENCES", "15"))
events = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(KINDS)), max_size=8)


def oracle(log: list[tuple[str, str]]) -> tuple[str, set[str], set[str]]:
    """(decision, objectors, approvers) from the event log alone."""
    votes: dict[str, str] = {}
    for user, kind in log:
        if kind in ("approve", "changes"):
            votes[user] = kind
        elif kind == "dismiss" and votes.get(user) in ("approve", "changes"):
            votes[user] = "dismissed"
    objectors = {w for w in WRITERS if votes.get(w) == "changes"}
    approvers = {w for w in WRITERS if votes.get(w) == "approve"}
    return ("blocked" if objectors else "approved" if approvers else "waiting"), objectors, approvers


class GitHubDriver:
    def __init__(self, bare: Path) -> None:
        self.server = GitHubServer(bare).start()
        for user in PEOPLE:
            self.server.token_user[f"{user}-token"] = user
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

    def vote(self, number: int, user: str, kind: str) -> None:
        if kind == "dismiss":
            self.server.dismiss(number, user)
            return
        event = {"approve": "APPROVE", "changes": "REQUEST_CHANGES", "comment": "COMMENT"}[kind]
        self.people[user].get_repo("acme/config").get_pull(number).create_review(event=event, body=f"{kind}")


class GiteaDriver:
    def __init__(self, bare: Path) -> None:
        self.server = GiteaServer(bare).start()
        self.forge = GiteaForge(
            GiteaConfig(repo="acme/config", url=self.server.url, token=TOKEN), sleep=lambda _: None
        )

    def vote(self, number: int, user: str, kind: str) -> None:
        if kind == "dismiss":
            self.server.dismiss(number, user)
            return
        state = {"approve": "APPROVED", "changes": "REQUEST_CHANGES", "comment": "COMMENT"}[kind]
        self.server.review(number, user, state, kind)


@pytest.fixture(scope="module", params=["github", "gitea"])
def driver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    repo = make_config_repo(tmp_path_factory.mktemp(request.param))
    made = {"github": GitHubDriver, "gitea": GiteaDriver}[request.param](repo.remote)
    made.bare = repo.remote
    made.count = 0
    try:
        yield made
    finally:
        made.server.stop()
    assert not made.server.errors, "\n".join(made.server.errors)


def decide(driver: Any, log: list[tuple[str, str]]) -> tuple[str, set[str], set[str]]:
    """Open a fresh gate PR, play `log` on the forge, and decide as gitcanary does."""
    driver.count += 1
    branch = f"gitcanary/prod/backend/promotion-m{driver.count}"
    tree = git("rev-parse", "main^{tree}", cwd=driver.bare).strip()
    head = git("commit-tree", tree, "-p", "main", "-m", f"promotion {driver.count}", cwd=driver.bare).strip()
    git("branch", branch, head, cwd=driver.bare)
    number = driver.forge.open(branch, "main", "Rollout", "gate").number
    played: list[tuple[str, str]] = []
    for user, kind in log:
        if kind == "dismiss" and not _has_vote(played, user):
            continue  # nothing of theirs to dismiss: the event does not happen
        driver.vote(number, user, kind)
        played.append((user, kind))
    full = driver.forge.get(number)
    objectors = {r.login for r in full.objections()}
    approvers = {r.login for r in full.counted()}
    decision = "blocked" if objectors else "approved" if approvers else "waiting"
    return decision, objectors, approvers


def _has_vote(played: list[tuple[str, str]], user: str) -> bool:
    votes = [k for u, k in played if u == user and k in ("approve", "changes", "dismiss")]
    return bool(votes) and votes[-1] != "dismiss"


@settings(max_examples=SEQUENCES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(events)
def test_gitcanary_decides_every_sequence_of_votes_as_the_event_log_says(
    driver: Any, log: list[tuple[str, str]]
) -> None:
    played = [(u, k) for u, k in log]
    decided = decide(driver, played)
    kept = _played(played)
    assert decided == oracle(kept), (kept, decided, oracle(kept))


def _played(log: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The events that happen: a dismissal with no standing vote of that person does not."""
    out: list[tuple[str, str]] = []
    for user, kind in log:
        if kind == "dismiss" and not _has_vote(out, user):
            continue
        out.append((user, kind))
    return out
