"""History and audit of repos the real reconciler wrote, and of the ways teams rewrite them.

One module-scoped run of the real Reconciler against a real Prometheus (signing its commits with an
SSH key) produces: a promotion, a rollout superseded by a newer bump, the promotion of that newer
bump, and a rollback. The tests then read it with `gitcanary history`/`audit` as a subprocess, and
read copies rewritten with real git: squash-merged (git's format and GitHub's), rebased onto a
branch by another committer, with a forged promote, and with a malformed commit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import ConfigRepo, git, make_config_repo
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus
from typer.testing import CliRunner

from gitcanary.commands.cli import app
from gitcanary.commands.manual import perform
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.request import ManualAction

BOT = "bot@example.com"
QUINN = "Quinn Reviewer <quinn@example.com>"
PAT = "Pat Person <pat@example.com>"
GOOD_FROM, GOOD_TO = DATA_END - timedelta(minutes=60), DATA_END - timedelta(minutes=30)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Produced:
    repo: ConfigRepo
    key: Path
    base: str  # the commit before gitcanary's first one (the seed)
    initialized: str  # gitcanary's routing switch: rollouts start after it


def _tick_until(rec: Reconciler, clock: Clock, phase: str, limit: int = 30) -> None:
    for _ in range(limit):
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        clock.now += timedelta(seconds=31)
        status = result.reports["prod/backend"].status
        if status is not None and status.phase.value == phase:
            return
    raise AssertionError(f"prod/backend did not reach {phase}")


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Produced]:
    traffic = [
        Traffic("backend", "prod", rps=20, error_ratio=0.001, p99_ms=120, start=GOOD_FROM, end=GOOD_TO),
        Traffic("backend", "prod", rps=20, error_ratio=0.10, p99_ms=140, start=GOOD_TO, end=DATA_END),
    ]
    base = tmp_path_factory.mktemp("audit")
    with running_prometheus(traffic, workdir=base / "prom") as prometheus:
        yield _produce(base, prometheus)


def _produce(base: Path, prometheus: PrometheusServer) -> Produced:
    repo = make_config_repo(base)
    # Steps of 25% keep the run short: start, 25%, 50%, promote, finalize, succeed.
    repo.edit("apps/backend/canary.yaml", lambda doc: doc["spec"]["analysis"].__setitem__("stepWeight", 25))
    repo.commit_and_push("backend: canary steps of 25%")
    key = base / "bot_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    settings = Settings(
        repo=str(repo.remote),
        workdir=base / "work",
        prometheus=prometheus.url,
        settle=0,
        author_email=BOT,
        signing_key=str(key),
        signing_format="ssh",
    )
    clock = Clock(GOOD_FROM + timedelta(minutes=1))
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    seed = git("rev-parse", "main", cwd=repo.remote).strip()
    _tick_until(rec, clock, "Initialized")
    initialized = git("rev-parse", "main", cwd=repo.remote).strip()
    repo.bump("apps/backend", "6.1.1")
    _tick_until(rec, clock, "Succeeded")
    repo.bump("apps/backend", "6.1.2")
    for _ in range(2):  # start, 25%: then a newer bump supersedes it
        rec.tick()
        clock.now += timedelta(seconds=31)
    repo.bump("apps/backend", "6.1.3")
    _tick_until(rec, clock, "Succeeded")
    repo.bump("apps/backend", "6.1.4")
    clock.now = GOOD_TO + timedelta(minutes=2)  # the errors start
    _tick_until(rec, clock, "Failed")
    # A person promotes 6.1.5 by hand (gitcanary promote): a request commit, honoured next tick.
    repo.bump("apps/backend", "6.1.5")
    for _ in range(2):  # start, 25%
        rec.tick()
        clock.now += timedelta(seconds=31)
    perform(ManualAction.PROMOTE, "prod/backend", str(repo.remote), actor=QUINN, now=clock.now)
    _tick_until(rec, clock, "Succeeded")
    return Produced(repo, key, seed, initialized)


def git_in(*args: str, cwd: Path, input: str) -> None:
    """git with a message on stdin, as a person would commit it."""
    base = ["git", "-c", "user.name=Pat Person", "-c", "user.email=pat@example.com"]
    subprocess.run([*base, *args], cwd=cwd, input=input, text=True, check=True, capture_output=True)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def gitcanary(*args: str, check: bool = True) -> Ran:
    """The real command line, in this process (a subprocess per call would double the run time)."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if check and ran.returncode != 0:
        raise AssertionError(f"gitcanary {' '.join(args)} exited {ran.returncode}: {ran.stderr}")
    return ran


def history(repo: Path | str, *extra: str) -> dict:
    return json.loads(gitcanary("history", "prod/backend", "--repo", str(repo), "-o", "json", *extra).stdout)


def fingerprints(body: dict) -> list[dict]:
    """Rollouts without the commits that carried them: what rewrites must leave unchanged."""
    found = []
    for rollout in body["rollouts"]:
        rollout = {k: v for k, v in rollout.items() if k not in ("commits", "commitRange")}
        rollout["approvals"] = [a for a in rollout["approvals"] if not a.startswith("PR ")]
        # gitcanary.commands.manual writes no Time trailer: a request's time is its author date, which a
        # squash replaces; its commit changes with any rewrite.
        rollout["requests"] = [
            {k: v for k, v in r.items() if k not in ("commit", "time")} for r in rollout["requests"]
        ]
        rollout["steps"] = [
            {k: v for k, v in s.items() if k not in ("commit", "subject")} for s in rollout["steps"]
        ]
        found.append(rollout)
    return found


def clone(produced: Produced, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    git("clone", "-q", str(produced.repo.remote), str(into), cwd=into.parent)
    return into


def test_history_of_the_reconcilers_commits(produced: Produced) -> None:
    body = history(produced.repo.remote)
    rows = [(r["from"], r["to"], r["outcome"], r["maxWeight"]) for r in body["rollouts"]]
    assert rows == [  # newest first
        ("6.1.3", "6.1.5", "promoted", 25),
        ("6.1.3", "6.1.4", "rolled back", 25),
        ("6.1.1", "6.1.3", "promoted", 50),
        ("6.1.1", "6.1.2", "superseded", 25),
        ("6.1.0", "6.1.1", "promoted", 50),
    ]
    by_hand, rolled_back, newer, superseded, first = body["rollouts"]
    # A manual promote: the person's request, and the reconciler's promotion naming them.
    assert by_hand["approvals"][:2] == [f"promote requested by {QUINN}", f"bumped by {PAT}"]
    assert f"promote by {QUINN}" in by_hand["approvals"] and len(by_hand["requests"]) == 1
    assert [s["action"] for s in by_hand["steps"]] == ["start", "advance", "promote", "finalize", "succeed"]
    assert superseded["supersededBy"] == newer["id"] and superseded["ended"] == newer["started"]
    # The failing metric and its value come from Gitcanary-Check trailers.
    failing = {(c["action"], c["name"]) for c in rolled_back["failedChecks"]}
    assert failing == {(a, m) for a in ("halt", "rollback") for m in ("request-success-rate", "error-rate")}
    value = next(c for c in rolled_back["failedChecks"] if c["name"] == "request-success-rate")
    assert 85 < value["value"] < 95 and value["min"] == 99 and value["ok"] is False
    assert rolled_back["reason"].startswith("request-success-rate 9")
    # Times are the reconciler's clock (the Time trailer), not the wall clock of the commits.
    assert first["started"] == "2025-01-15T11:02:02Z" and first["durationSeconds"] == 5 * 31
    actions = ["start", "advance", "advance", "promote", "finalize", "succeed"]
    assert [s["action"] for s in first["steps"]] == actions
    assert first["approvals"] == [f"bumped by {PAT}"]
    assert len(first["commits"]) == 6 and first["commitRange"].count("..") == 1
    assert body["problems"] == []


def test_history_table_and_url(produced: Produced) -> None:
    """A URL is cloned (bare, no blobs); the table names outcome, weight and the failing metric."""
    out = gitcanary("history", "prod/backend", "--repo", produced.repo.remote.as_uri()).stdout
    assert "OUTCOME" in out.splitlines()[0] and "request-success-rate" in out
    order = [
        out.index(f" {to}  ")
        for to in ("6.1.3 -> 6.1.5", "6.1.3 -> 6.1.4", "6.1.1 -> 6.1.3", "6.1.1 -> 6.1.2", "6.1.0 -> 6.1.1")
    ]
    assert order == sorted(order)  # newest first
    for outcome in ("rolled back", "superseded", "promoted", "50%", "bumped by Pat Person"):
        assert outcome in out


def test_audit_sums_up_every_canary(produced: Produced, tmp_path: Path) -> None:
    body = json.loads(gitcanary("audit", "--repo", str(produced.repo.remote), "-o", "json").stdout)
    assert (body["rollouts"], body["promoted"], body["rolledBack"], body["open"]) == (5, 3, 1, 0)
    assert body["successRate"] == pytest.approx(3 / 4)
    # Two promotions took 5 intervals, the one promoted by hand 4.
    assert body["medianTimeToPromoteSeconds"] == 5 * 31
    assert body["canaries"] == [
        {"canary": "prod/backend", "rollouts": 5, "promoted": 3, "rolledBack": 1, "superseded": 1,
         "cancelled": 0, "inProgress": 0}
    ]  # fmt: skip
    assert body["rollbacks"][0]["reason"].startswith("request-success-rate")
    markdown = gitcanary("audit", "--repo", str(produced.repo.remote), "-o", "markdown").stdout
    assert "| success rate (promoted / promoted + rolled back) | 75% |" in markdown
    # The data is from January 2025: a 30-day window holds none of it.
    recent = json.loads(
        gitcanary("audit", "--repo", str(produced.repo.remote), "--since", "30d", "-o", "json").stdout
    )
    assert recent["rollouts"] == 0


def test_squash_merges_give_the_same_history(produced: Produced, tmp_path: Path) -> None:
    original = fingerprints(history(produced.repo.remote))
    work = clone(produced, tmp_path / "work")
    messages = git("log", "--reverse", "--format=%B%x00", f"{produced.initialized}..main", cwd=work)
    # git's own squash: "Squashed commit of the following:", newest first, indented.
    git("checkout", "-q", "-b", "git-squash", produced.initialized, cwd=work)
    git("merge", "-q", "--squash", "main", cwd=work)
    git("commit", "-q", "--no-edit", cwd=work)
    squashed = history(work, "--branch", "git-squash")
    assert fingerprints(squashed) == original
    assert all(len(r["commits"]) == 1 for r in squashed["rollouts"])
    # GitHub's squash: the PR title, then each message as a bullet, oldest first.
    bullets = [f"* {m.strip()}" for m in messages.split("\x00") if m.strip()]
    git("checkout", "-q", "-b", "github-squash", produced.initialized, cwd=work)
    git("merge", "-q", "--squash", "main", cwd=work)
    git_in("commit", "-q", "-F", "-", cwd=work, input="Rollouts of backend (#12)\n\n" + "\n\n".join(bullets))
    github = history(work, "--branch", "github-squash")
    assert fingerprints(github) == original
    assert "PR #12" in github["rollouts"][0]["approvals"]


def test_rebased_history_is_the_same_history(produced: Produced, tmp_path: Path) -> None:
    original = history(produced.repo.remote)
    work = clone(produced, tmp_path / "work")
    git("checkout", "-q", "-b", "side", produced.base, cwd=work)
    (work / "NOTES.md").write_text("a person's change on another branch\n")
    git("add", "NOTES.md", cwd=work)
    git("commit", "-q", "-m", "notes", cwd=work)
    git("-c", "user.name=Riley Rebaser", "-c", "user.email=riley@example.com",
        "rebase", "-q", "--onto", "side", produced.base, "main", cwd=work)  # fmt: skip
    rebased = history(work, "--branch", "main")
    assert fingerprints(rebased) == fingerprints(original)
    assert set(rebased["rollouts"][0]["commits"]).isdisjoint(original["rollouts"][0]["commits"])
    committers = git("log", "--format=%ce", "-3", "main", cwd=work).split()
    assert committers == ["riley@example.com"] * 3


def _verify(repo: Path, *extra: str) -> Ran:
    return gitcanary(
        "history", "--verify", "--repo", str(repo), "-o", "json", "--bot-email", BOT, *extra, check=False
    )


def test_verify_flags_a_forged_promote(produced: Produced, tmp_path: Path) -> None:
    work = clone(produced, tmp_path / "work")
    key = ("--signing-key", str(produced.key), "--signing-format", "ssh")
    genuine = _verify(work, *key)
    assert genuine.returncode == 0, genuine.stderr
    verdicts = json.loads(genuine.stdout)["verification"]
    assert len(verdicts) == 2 + 6 + 2 + 6 + 4 + 6
    # The person's manual request is theirs, openly: shown, not flagged.
    assert {v["verdict"] for v in verdicts} == {"ok", f"manual by {QUINN}"}
    assert all(v["signature"].startswith("good signature") for v in verdicts if v["verdict"] == "ok")

    promote = git("log", "-1", "--format=%B", "--all-match", "--grep=Gitcanary-Action: promote",
                  "--grep=Gitcanary-Rollout: 6.1.1..6.1.3", "main", cwd=work)  # fmt: skip
    assert promote.startswith("gitcanary: promote prod/backend 6.1.1 -> 6.1.3")
    forged = promote.replace("6.1.1..6.1.3", "6.1.3..6.1.4").replace("6.1.3 -> 6.1.4", "6.1.3 -> 6.1.4")
    git_in("commit", "-q", "--allow-empty", "--no-gpg-sign", "-F", "-", cwd=work, input=forged)
    # The same, claiming the bot as its author: unsigned, it is flagged all the same.
    git_in("-c", f"user.email={BOT}", "-c", "user.name=gitcanary", "commit", "-q", "--allow-empty",
        "--no-gpg-sign", "-F", "-", cwd=work, input=forged)  # fmt: skip
    result = _verify(work, *key)
    assert result.returncode == 1
    flagged = [v for v in json.loads(result.stdout)["verification"] if v["verdict"] == "FLAGGED"]
    assert [v["author"] for v in flagged] == ["Pat Person <pat@example.com>", f"gitcanary <{BOT}>"]
    assert "is not the bot" in flagged[0]["reasons"][0]
    assert flagged[1]["reasons"] == ["not signed by the configured key: no signature"]
    assert "failed verification" in result.stderr
    # Without a key: the person's commit stands out by its author, and the one claiming the bot by
    # trailers its own status file contradicts (it claims a promotion the tree does not hold).
    authors_only = [v for v in json.loads(_verify(work).stdout)["verification"] if v["verdict"] == "FLAGGED"]
    assert [v["author"] for v in authors_only] == ["Pat Person <pat@example.com>", f"gitcanary <{BOT}>"]
    assert any("its status file says phase: " in reason for reason in authors_only[1]["reasons"])


def test_a_malformed_commit_is_reported_and_skipped(produced: Produced, tmp_path: Path) -> None:
    work = clone(produced, tmp_path / "work")
    broken = "gitcanary: advance prod/backend to lots\n\n"
    broken += "Gitcanary-Canary: prod/backend\nGitcanary-Action: advance\n"
    broken += (
        "Gitcanary-Rollout: x..y/2025-01-15T11:59:00Z\nGitcanary-Phase: Progressing\nGitcanary-Weight: lots\n"
    )
    git_in("commit", "-q", "--allow-empty", "-F", "-", cwd=work, input=broken)
    result = gitcanary("history", "prod/backend", "--repo", str(work), "-o", "json")
    body = json.loads(result.stdout)
    assert len(body["rollouts"]) == 5
    assert [p["message"] for p in body["problems"]] == ["Gitcanary-Weight: not a whole number: 'lots'"]
    assert "skipped" in result.stderr and "Gitcanary-Weight" in result.stderr


def test_a_merged_pull_request_names_who_merged_it(produced: Produced, tmp_path: Path) -> None:
    """Steps that arrived through a PR's merge commit name the PR and whoever merged it."""
    original = history(produced.repo.remote)
    work = clone(produced, tmp_path / "work")
    git("checkout", "-q", "-b", "merged", produced.initialized, cwd=work)
    git("-c", "user.name=Ann Approver", "-c", "user.email=ann@example.com", "merge", "-q", "--no-ff",
        "-m", "Merge pull request #34 from acme/gitcanary-rollouts", "main", cwd=work)  # fmt: skip
    merged = history(work, "--branch", "merged")
    assert fingerprints(merged) == fingerprints(original)
    for rollout in merged["rollouts"]:
        assert {"PR #34", "PR #34 merged by Ann Approver <ann@example.com>"} <= set(rollout["approvals"])


def test_a_merge_commits_approved_by_trailers_name_the_approvers(produced: Produced, tmp_path: Path) -> None:
    """The promotion gate's merge commit closes with `Approved-by: LOGIN`: every step it brought in
    (and so each rollout) names the approvers, next to the PR and who merged it."""
    work = clone(produced, tmp_path / "work")
    git("checkout", "-q", "-b", "merged", produced.initialized, cwd=work)
    git("-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", "merge", "-q", "--no-ff",
        "-m", "Merge pull request #35 from acme/gitcanary-rollouts", "-m", "Rollouts of backend",
        "-m", "Approved-by: alice\nApproved-by: bob", "main", cwd=work)  # fmt: skip
    merged = history(work, "--branch", "merged")
    assert len(merged["rollouts"]) == 5 and merged["problems"] == []
    for rollout in merged["rollouts"]:
        assert {"alice (approved-by)", "bob (approved-by)", "PR #35"} <= set(rollout["approvals"])
    # Beyond the approvals, the history is the one the reconciler wrote.
    approvals = ("alice (approved-by)", "bob (approved-by)")
    without = fingerprints(merged)
    for rollout in without:
        rollout["approvals"] = [a for a in rollout["approvals"] if a not in approvals]
    assert without == fingerprints(history(produced.repo.remote))
