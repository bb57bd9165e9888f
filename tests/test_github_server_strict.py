"""The local GitHub server validates and never fills, and the mergeability states it plays.

tests/github_server.py builds every response whole from its state (tests/github_objects.py) and
checks it, closed, against GitHub's description; request bodies are checked the same way. Here:
every operation gitcanary calls answers with no error and no missing required field; a response
lacking a field, or a request with a key the operation does not describe, is caught (nothing is
filled in to hide it); and each mergeability state GitHub answers (null while computing, behind,
unstable, dirty, blocked, clean) ends with the step PR merged or closed as stale within a bounded
number of ticks, for generated sequences of them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ConfigRepo, git
from github import Auth, Github, GithubException
from github_server import PLAYED, GitHubServer, Pull, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcanary.forge.github import GitHubConfig, GitHubForge
from gitcanary.forge.publish import UNDECIDED_TICKS, Publisher
from gitcanary.git.workspace import Workspace

TOKEN = "gitcanary-token"


@pytest.fixture
def github(config_repo: ConfigRepo) -> Iterator[GitHubServer]:
    server = GitHubServer(config_repo.remote).start()
    try:
        yield server
    finally:
        server.stop()


def forge_for(server: GitHubServer) -> GitHubForge:
    config = GitHubConfig(
        repo="acme/config",
        api_url=server.api_url,
        token=TOKEN,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    return GitHubForge(config, sleep=lambda _: None)


def step_branch(repo: ConfigRepo, name: str, file: str | None = None) -> str:
    """A branch `name` one commit ahead of main on the remote (a file of its own: no conflict)."""
    git("checkout", "-q", "-B", name, "origin/main", cwd=repo.human)
    path = repo.human / (file or f"steps/{name.replace('/', '_')}.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{name}\n")
    git("add", "-A", cwd=repo.human)
    git("commit", "-qm", f"step {name}", cwd=repo.human)
    git("push", "-q", "origin", f"{name}:refs/heads/{name}", cwd=repo.human)
    git("checkout", "-q", "--detach", cwd=repo.human)
    return name


def move_main(repo: ConfigRepo, what: str) -> None:
    """A person's commit lands on main (an unrelated file): every open PR is behind it."""
    git("fetch", "-q", "origin", cwd=repo.human)
    git("checkout", "-q", "-B", "main", "origin/main", cwd=repo.human)
    (repo.human / f"notes-{what}.txt").write_text(what + "\n")
    git("add", "-A", cwd=repo.human)
    git("commit", "-qm", f"a person's note {what}", cwd=repo.human)
    git("push", "-q", "origin", "main", cwd=repo.human)
    git("checkout", "-q", "--detach", cwd=repo.human)


def test_every_operation_answers_whole_with_nothing_filled(
    config_repo: ConfigRepo, github: GitHubServer
) -> None:
    forge = forge_for(github)
    github.releases[("stefanprodan/podinfo", "6.1.1")] = ("6.1.1", "notes")
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-w25-x")
    opened = forge.open(head, "main", "gitcanary: advance", "a step")
    forge.set_state_label(opened.number, "gitcanary:step", "gitcanary:")
    forge.comment(opened.number, "a comment")
    assert [c.body for c in forge.comments(opened.number)] == ["a comment"]
    person = Github(base_url=github.api_url, auth=Auth.Token("pat-token"), retry=None)
    pr = person.get_repo("acme/config").get_pull(opened.number)
    pr.create_review(event="APPROVE", body="ok")
    pr.create_review_request(reviewers=["someone"])
    pr.edit(title="gitcanary: advance to 25%")
    assert person.get_user().login == "pat"
    assert person.get_repo("acme/config").default_branch == "main"
    assert person.get_repo("acme/config").get_git_ref("heads/main").object.sha == github.rev("main")
    assert forge.release("stefanprodan/podinfo", "6.1.1") is not None
    full = forge.get(opened.number)
    assert full.approvers == ("pat",) and full.labels == ("gitcanary:step",)
    assert full.mergeable and full.mergeable_state == "clean"
    assert forge.update_branch(opened.number, full.head_sha)  # nothing to bring in: a no-op
    assert forge.merge(opened.number, "merge", sha=full.head_sha)
    forge.delete_branch(head)
    merged = forge.get(opened.number)
    assert merged.merged and merged.merged_by == "gitcanary[bot]"
    pr = person.get_repo("acme/config").get_pull(opened.number)
    assert (pr.additions, pr.deletions, pr.changed_files, pr.commits) == (1, 0, 1, 1)
    assert github.errors == []
    assert github.missing_required == 0


def test_a_response_missing_a_required_field_is_caught_not_filled(
    config_repo: ConfigRepo, github: GitHubServer
) -> None:
    """Validation sees what was built: drop any one required field of a pull and it is an error
    (a server that filled fields in would have passed it)."""
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-w50-x")
    forge_for(github).open(head, "main", "t", "b")
    schema = spec()["paths"]["/repos/{owner}/{repo}/pulls/{pull_number}"]["get"]["responses"]["200"]
    schema = schema["content"]["application/json"]["schema"]
    pull: Pull = github.pulls[1]
    whole = github.pull_json(pull, schema)
    assert github.check_strictly(schema, whole, "whole") and github.errors == []
    for name in schema["required"]:
        broken = copy.deepcopy(whole)
        del broken[name]
        before = github.missing_required
        assert not github.check_strictly(schema, broken, f"without {name}")
        assert github.missing_required == before + 1
        assert github.errors[-1].startswith(f"without {name} at : '{name}' is a required property")
    github.errors.clear()
    github.missing_required = 0
    # A key the description does not have is an error too (the schema is checked closed).
    assert not github.check_strictly(schema, {**whole, "mergable": True}, "misspelt")
    assert "'mergable' was unexpected" in github.errors[-1]
    github.errors.clear()


def test_a_request_key_the_operation_does_not_describe_is_an_error(
    config_repo: ConfigRepo, github: GitHubServer
) -> None:
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-w75-x")
    opened = forge_for(github).open(head, "main", "t", "b")
    person = Github(base_url=github.api_url, auth=Auth.Token("pat-token"), retry=None)
    url = f"{github.api_url}/repos/acme/config/pulls/{opened.number}"
    person.requester.requestJsonAndCheck("PATCH", url, input={"titel": "x"})  # GitHub ignores it
    assert github.errors == ["PATCH /repos/{owner}/{repo}/pulls/{pull_number} request at : "
                             "Additional properties are not allowed ('titel' was unexpected)"]
    github.errors.clear()
    with pytest.raises(GithubException):
        person.requester.requestJsonAndCheck("PUT", f"{url}/merge", input={"merge_method": "octopus"})
    assert any("'octopus' is not one of" in e for e in github.errors)
    github.errors.clear()


# -- mergeability states ---------------------------------------------------------------------------


def publisher(server: GitHubServer, tmp_path: Path) -> Publisher:
    workspace = Workspace(str(server.bare), "main", tmp_path / "work")
    return Publisher(forge_for(server), workspace)


def tick_once(pub: Publisher, pull: Pull) -> str | None:
    """One tick's drive of an open step PR, found as the tick finds it (the list: no full read)."""
    found = pub.forge.find(pull.head)
    assert found is not None
    return pub._drive_step(found)


def drive(pub: Publisher, server: GitHubServer, number: int, most: int) -> int:
    """Ticks until pull `number` is merged or closed; how many it took (most + 1: never)."""
    for ticks in range(1, most + 1):
        pull = server.pulls[number]
        tick_once(pub, pull)
        if pull.state != "open":
            return ticks
    return most + 1


@pytest.mark.parametrize("state", sorted(PLAYED))
def test_each_state_ends_merged_or_closed_as_stale(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, state: str
) -> None:
    pub = publisher(github, tmp_path)
    head = step_branch(config_repo, f"gitcanary/prod/backend/advance-{state}")
    number = pub.forge.open(head, "main", "t", "b").number
    github.play(number, state, state)  # shown twice: gitcanary reads once before it acts
    if state == "blocked":
        github.play(number, "clean")  # the review arrives
    ticks = drive(pub, github, number, 4)
    pull = github.pulls[number]
    if state == "dirty":
        assert (pull.state, pull.merged, ticks) == ("closed", False, 1)
        assert github.rev(head) is None  # the stale step's branch is gone: the tick decides again
    else:
        assert pull.merged and ticks <= 3, (state, ticks)
    updates = github.requests.count(("PUT", f"/api/v3/repos/acme/config/pulls/{number}/update-branch"))
    assert updates == (2 if state == "behind" else 0)
    assert github.errors == [] and github.missing_required == 0


def test_behind_is_updated_from_the_base_then_merged(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    github.require_up_to_date = True
    github.compute_after_push = True  # and GitHub answers null after each push
    pub = publisher(github, tmp_path)
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-behind")
    number = pub.forge.open(head, "main", "t", "b").number
    move_main(config_repo, "one")
    ticks = drive(pub, github, number, 2 + 2 * 2)
    pull = github.pulls[number]
    assert pull.merged and ticks <= 5
    assert ("PUT", "/api/v3/repos/acme/config/pulls/1/update-branch") in github.requests
    main = github.rev("main")
    assert main is not None
    log = git("log", "--format=%s", main, cwd=config_repo.remote)
    assert "a person's note one" in log and "step gitcanary/prod/backend/advance-behind" in log
    assert github.errors == [] and github.missing_required == 0


def test_a_base_that_keeps_moving_closes_the_step_after_bounded_updates(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    github.require_up_to_date = True
    pub = publisher(github, tmp_path)
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-chased")
    number = pub.forge.open(head, "main", "t", "b").number
    ticks = 0
    while github.pulls[number].state == "open" and ticks < 3 * UNDECIDED_TICKS:
        move_main(config_repo, f"n{ticks}")
        tick_once(pub, github.pulls[number])
        ticks += 1
    assert github.pulls[number].state == "closed" and not github.pulls[number].merged
    assert ticks == UNDECIDED_TICKS + 1
    assert github.errors == []


def test_an_update_github_refuses_closes_the_step_as_stale(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """GitHub showed `behind` before it found the conflict: its update-branch answers 422, and
    the step is closed and decided again rather than retried."""
    pub = publisher(github, tmp_path)
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-refused", file="shared.txt")
    number = pub.forge.open(head, "main", "t", "b").number
    step_branch(config_repo, "person", file="shared.txt")  # the same file, other content, on main
    git("push", "-q", "origin", "person:main", cwd=config_repo.human)
    github.play(number, "behind")
    assert tick_once(pub, github.pulls[number]) is None
    update = ("PUT", f"/api/v3/repos/acme/config/pulls/{number}/update-branch")
    assert github.requests.count(update) == 1
    pull = github.pulls[number]
    assert pull.state == "closed" and not pull.merged and github.rev(head) is None
    assert github.errors == []


def test_null_forever_raises_an_alert_every_tick_from_the_bound(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pub = publisher(github, tmp_path)
    head = step_branch(config_repo, "gitcanary/prod/backend/advance-null")
    number = pub.forge.open(head, "main", "t", "b").number
    github.play(number, *["null"] * (UNDECIDED_TICKS + 2))
    reasons = []
    with caplog.at_level(logging.ERROR, logger="gitcanary"):
        for _ in range(UNDECIDED_TICKS + 2):
            reasons.append(tick_once(pub, github.pulls[number]))
    alerts = [r for r in caplog.records if "has not said whether PR" in r.getMessage()]
    assert len(alerts) == 3  # ticks UNDECIDED_TICKS, +1, +2
    assert all(r and "compute whether PR #1 can merge" in r for r in reasons)
    assert github.pulls[number].state == "open"
    assert drive(pub, github, number, 2) == 1  # once GitHub answers, it merges
    assert github.pulls[number].merged


@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(states=st.lists(st.sampled_from(sorted(PLAYED)), max_size=7))
def test_any_sequence_of_states_ends_merged_or_closed_within_bounded_ticks(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, states: list[str]
) -> None:
    """Whatever GitHub answers, tick after tick, the step PR is merged or closed as stale: never
    open longer than the states played plus one tick, closed only when one of them was `dirty`."""
    pub = publisher(github, tmp_path)
    name = f"gitcanary/prod/backend/advance-{len(github.pulls) + 1}"
    number = pub.forge.open(step_branch(config_repo, name), "main", "t", "b").number
    github.play(number, *states)
    ticks = drive(pub, github, number, len(states) + 1)
    pull = github.pulls[number]
    assert ticks <= len(states) + 1, (states, ticks)
    # The oracle, read by read: it merges at the first clean or unstable state (GitHub's merge
    # rules allow both) or at the real, clean one after the played ones; a dirty state, or a
    # behind one past the updates gitcanary tries, closes it; each behind one before that is
    # answered with an update-branch.
    outcome, updates = "merged", 0
    for state in states:
        if state in ("clean", "unstable"):
            break
        if state == "dirty" or (state == "behind" and updates == UNDECIDED_TICKS):
            outcome = "closed"
            break
        updates += state == "behind"
    assert ("merged" if pull.merged else pull.state) == outcome, states
    update_path = f"/api/v3/repos/acme/config/pulls/{number}/update-branch"
    assert github.requests.count(("PUT", update_path)) == updates, states
    assert github.errors == [] and github.missing_required == 0


def test_a_rollout_through_behind_and_null_step_prs_succeeds(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """End to end: the reconciler's rollout on a protected main that must be up to date, GitHub
    answering null after every push, and a person's commit landing on main while each step PR is
    open. Every step lands through update-branch and a merge, in a bounded number of ticks."""
    from test_forge import GOOD_FROM, Clock, actions, phase, reconciler, tick, without_metrics

    without_metrics(config_repo)
    github.protect()
    github.require_up_to_date = True
    github.compute_after_push = True
    clock = Clock(GOOD_FROM)
    rec = reconciler(config_repo, tmp_path / "work", github, clock)
    for _ in range(6):  # initialized first (its PRs computed, then merged)
        tick(rec, clock)
    assert phase(config_repo) == "Initialized"
    github.protect(False)  # a person with admin rights pushes the bump
    config_repo.bump("apps/backend", "6.1.1")
    github.protect()
    notes: list[str] = []

    def person_pushes(pull: Pull) -> None:  # right after the step PR opens, before its merge
        if len(notes) < 3:
            github.protect(False)
            move_main(config_repo, f"n{pull.number}")
            notes.append(f"a person's note n{pull.number}")
            github.protect()

    github.after_open = person_pushes
    for _ in range(60):
        if phase(config_repo) == "Succeeded":
            break
        tick(rec, clock)
    assert phase(config_repo) == "Succeeded", actions(config_repo)
    assert [a for a, _ in actions(config_repo)][-3:] == ["promote", "finalize", "succeed"]
    updates = [r for r in github.requests if r[0] == "PUT" and r[1].endswith("/update-branch")]
    assert updates, "no step PR was ever behind"
    assert all(p.merged for p in github.pulls.values() if p.state == "closed")
    on_main = git("log", "--format=%s", "main", cwd=config_repo.remote).splitlines()
    assert notes and all(note in on_main for note in notes)  # no person's commit is lost
    assert github.errors == [] and github.missing_required == 0
