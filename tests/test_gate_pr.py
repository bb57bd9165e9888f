"""The promotion gate PR as a reviewer sees it: rendered to HTML, checked at every tick.

Each body is rendered with markdown-it-py (CommonMark plus GFM tables, as GitHub renders PR
descriptions) and checked:
- width: no table row shows more than `gate.MAX_ROW_CHARS` characters, the measure of GitHub's
  780px PR column at its 14px text (about 8.2px a character), counting each cell's text plus 2
  characters of padding (links count their text, not their target);
- links: every link into the repository's web pages names a commit that exists in the remote or
  a pull request the server holds (the server's web routes answer 200 for exactly those);
- truth: the state the body and label name is the state main's commits say.
GitHub is tests/github_server.py through real PyGithub, every request and response validated.
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo, git
from github import Auth, Github
from github_server import GitHubServer
from markdown_it import MarkdownIt
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus, unavailable_prometheus
from test_forge import (
    GOOD_FROM,
    KEY,
    Clock,
    actions,
    annotate,
    gate_pull,
    gate_to_waiting,
    human_github,
    phase,
    rollout_history,
    tick,
)

from gitcanary.forge import gate
from gitcanary.git.checks import Check
from gitcanary.service.reconciler import Reconciler

MD = MarkdownIt("commonmark").enable("table")


@pytest.fixture
def github(config_repo: ConfigRepo) -> Iterator[GitHubServer]:
    server = GitHubServer(config_repo.remote).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, "\n".join(server.errors)


def rendered_tables(body: str) -> list[list[list[str]]]:
    """Every table of the rendered body, as rows of cell texts (what a browser shows); a cell's
    `<br>` starts a new line of it, shown here as "\n"."""
    tables: list[list[list[str]]] = []
    in_cell = False
    for token in MD.parse(body):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        in_cell = token.type in ("th_open", "td_open") or (in_cell and token.type == "inline")
        if token.type == "inline" and in_cell:
            kinds = ("text", "code_inline")
            parts = [
                "\n" if c.type == "html_inline" and c.content.lower().startswith("<br") else c.content
                for c in token.children or []
                if c.type in kinds or c.type == "html_inline"
            ]
            tables[-1][-1].append("".join(parts))
    return tables


def plain(body: str) -> str:
    """The words a reader sees: the rendered HTML's text, without the zero-width spaces that keep
    forges from linking someone else's text."""
    return html.unescape(re.sub(r"<[^>]+>", "", MD.render(body))).replace("\u200b", "")


def table_width(table: list[list[str]]) -> int:
    """A browser sizes each column to its widest line: the table is as wide as those summed, plus
    2 characters of padding a column."""
    columns = range(len(table[0]))
    return sum(max(len(line) for row in table for line in row[i].split("\n")) + 2 for i in columns)


def check_body(server: GitHubServer, body: str) -> None:
    html = MD.render(body)
    assert "<table>" in html
    for table in rendered_tables(body):
        width = table_width(table)
        assert width <= gate.MAX_ROW_CHARS, f"table wider than GitHub's column ({width}): {table}"
        assert all(row[i].count("\n") <= 1 for row in table for i in range(len(row))), table  # 2 lines
    for url in re.findall(r'href="([^"]+)"', html):
        assert url.startswith(server.server.url), url
        assert httpx.get(url).status_code == 200, f"link to nothing: {url}"


def state_on_main(repo: ConfigRepo, server: GitHubServer, number: int) -> str:
    """The state a gate PR must show, from main's commits and the gate branch alone (an oracle:
    it reads trailers with git, not gitcanary's rendering)."""
    pull = server.pulls[number]
    commits = repo.gitcanary_commits()
    sha, _, last = commits[-1]
    rollout = git("log", "-1", "--format=%B", server.rev(pull.head) or pull.head_sha, cwd=repo.remote)
    mine = re.search(r"^Gitcanary-Rollout: (.*)$", rollout, re.M)
    if pull.merged:
        return "promoted"
    if mine and last.get("Rollout") != mine[1]:
        return "superseded"
    if last["Action"] == "rollback":
        message = git("log", "-1", "--format=%B", sha, cwd=repo.remote)
        return "rejected" if "\nRejected-by: " in message else "rolled back"
    head = server.rev(pull.head)
    base = git("rev-parse", f"{head}~1", cwd=repo.remote).strip() if head else ""
    if "Gitcanary-Action: promote" in rollout and base == server.rev("main"):
        return "waiting for approval"  # a promotion decided from what main says now
    if int(last.get("Failed-Checks", "0")) > 0:
        return "halted"
    return "analysing"


def checked_tick(rec: Reconciler, clock: Clock, repo: ConfigRepo, server: GitHubServer) -> None:
    """One tick, then every gate PR's label and headline say what main and its branch say."""
    tick(rec, clock)
    for number, pull in server.pulls.items():
        if not pull.title.startswith("Rollout ") or not pull.labels:
            continue
        if pull.state == "closed" and pull.labels[0] != "gitcanary: superseded":
            latest = max(n for n, p in server.pulls.items() if p.title.startswith("Rollout "))
            if number != latest:
                continue
        expected = state_on_main(repo, server, number)
        if expected == "waiting for approval" and pull.labels == ["gitcanary: approved"]:
            expected = "approved"
        assert pull.labels == [f"gitcanary: {expected}"], (number, pull.labels, expected)
        assert gate.HEADLINES[gate.State(expected)].split("**")[1].lower() in pull.body.split("\n")[0].lower()
        check_body(server, pull.body)


def test_promoted_only_by_an_approval_of_the_promotion_commit(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    annotate(config_repo)
    # The image's own repository on this GitHub (ghcr.io/stefanprodan/podinfo) has a release of the
    # new tag; its text is someone else's: markup, links, mentions and a credential in a URL.
    github.releases[("stefanprodan/podinfo", "6.1.1")] = (
        "6.1.1",
        "## Fixes\n* <img src=x onerror=alert(1)> faster **startup** by @alice in #42\n"
        "* see [the docs](https://evil.example/phish) and https://u:hunter2@git.example/x\n"
        + "| a | table |\n" + "more words " * 60,
    )
    # The operator lets the gate read that owner's releases (by default only acme's, the config's).
    rec, clock = gate_to_waiting(
        config_repo, github, tmp_path, None, "direct", release_notes_from=("stefanprodan",)
    )
    number = gate_pull(github)
    pull = github.pulls[number]
    release = f"{github.server.url}/stefanprodan/podinfo/releases/tag/6.1.1"
    assert f"| `backend` | `6.1.0` → [`6.1.1`]({release}) |" in pull.body
    notes = pull.body.split("**Release notes**", 1)[1].split("###", 1)[0]
    assert f"[release in stefanprodan/podinfo]({release})" in notes
    assert "faster \\*\\*startup\\*\\* by \\@\u200balice in \\#\u200b42" in notes  # no markup, no pings
    assert "<img" not in notes and "evil.example" not in notes and "hunter2" not in notes
    quoted = [line for line in notes.splitlines() if line.startswith("  > ")]
    assert 1 < len(quoted) <= gate.EXCERPT_LINES + 1 and sum(map(len, quoted)) < gate.EXCERPT_CHARS + 80
    # The promotion commit is on the PR: ready for review, labelled, one comment asking for a person.
    assert not pull.draft and pull.labels == ["gitcanary: waiting for approval"]
    asks = [c for c in pull.comments if "approve" in c[2]]
    assert len(asks) == 1
    check_body(github, pull.body)
    assert pull.body.startswith("✋ **Waiting for approval**")
    assert f"→ [`6.1.1`]({release}) | `apps/backend/kustomization.yaml images[0].newTag` |" in pull.body
    bump = git("log", "-1", "--format=%H", "--author=pat@example.com", "main", cwd=config_repo.remote).strip()
    assert f"[Pat Person]({github.html_url}/commit/{bump})" in pull.body
    assert "- **Close** unmerged: gitcanary commits a rollback" in pull.body
    assert "writes `6.1.0` back into `apps/backend/kustomization.yaml images[0].newTag`" in pull.body
    # A reader's approval (no write access) is shown but does not count, and nothing merges.
    reader = human_github(github)
    from github import Auth, Github

    reader = Github(base_url=github.api_url, auth=Auth.Token("reader-token"), retry=None, lazy=True)
    reader.get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    # A triager is a collaborator (GitHub's author_association says COLLABORATOR) with read access:
    # GitHub's permission API says so, and branch protection would not count the approval.
    triager = Github(base_url=github.api_url, auth=Auth.Token("triager-token"), retry=None, lazy=True)
    triager.get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    tick(rec, clock)
    assert not pull.merged
    assert "@reader approved" in pull.body and "not counted, the reviewer has no write access" in pull.body
    assert "@triager approved" in pull.body and pull.body.count("the reviewer has no write access") == 2
    check_body(github, pull.body)
    assert len([c for c in pull.comments if "approve" in c[2]]) == 1  # no new state: no new comment

    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(5):
        checked_tick(rec, clock, config_repo, github)
        if phase(config_repo) == "Succeeded":
            break
    checked_tick(
        rec, clock, config_repo, github
    )  # the tick after the rollout ends links the commits that followed
    assert pull.merged and pull.labels == ["gitcanary: promoted"]
    assert pull.body.startswith("✅ **Promoted**: approved by pat.")
    succeed = config_repo.gitcanary_commits()[-1][0]
    assert f"{github.html_url}/commit/{succeed}" in pull.body
    assert state_on_main(config_repo, github, number) == "promoted"
    check_body(github, pull.body)


def test_an_approval_before_the_promotion_commit_does_not_count(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """Approved at the start, promoted only after a second approval of the promotion commit."""
    annotate(
        config_repo,
        **{
            "gitcanary.io/promotion-gate": "true",
            "gitcanary.io/reviewers": "pat, @acme/sre",
            "gitcanary.io/source-repo": "backend=acme/backend-src",
        },
    )
    github.releases[("acme/backend-src", "v6.1.1")] = ("v6.1.1", "")
    from test_forge import reconciler, without_metrics

    without_metrics(config_repo)
    clock = Clock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    rec = reconciler(config_repo, tmp_path / "work", github, clock, mode="direct")
    for _ in range(2):
        tick(rec, clock)
    config_repo.bump("apps/backend", "6.1.1")
    tick(rec, clock)
    number = gate_pull(github)
    pull = github.pulls[number]
    assert pull.draft and pull.labels == ["gitcanary: analysing"]
    check_body(github, pull.body)
    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(8):
        checked_tick(rec, clock, config_repo, github)
        assert not pull.merged, "an approval of the placeholder promoted"
        if "waiting for approval" in pull.labels[0]:
            break
    assert pull.requested == ["pat"] and pull.requested_teams == ["sre"]
    release = f"{github.server.url}/acme/backend-src/releases/tag/v6.1.1"
    assert f"[release in acme/backend-src]({release})\n  > (the release has no text)" in pull.body
    assert "not counted, of `" in pull.body and "not of the promotion commit" in pull.body
    tick(rec, clock)
    assert not pull.merged
    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    assert pull.merged


def test_rejected_by_a_person_names_them_and_their_reason_in_git(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, "direct")
    number = gate_pull(github)
    people = human_github(github).get_repo("acme/config").get_pull(number)
    people.create_issue_comment("p99 looks worse in the EU dashboard")
    people.edit(state="closed")
    checked_tick(rec, clock, config_repo, github)
    assert actions(config_repo)[-1] == ("rollback", 0)
    message = git("log", "-1", "--format=%B", "main", cwd=config_repo.remote)
    assert "Rejected by @pat: p99 looks worse in the EU dashboard" in message
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
    ).stdout
    assert "Rejected-by: pat" in parsed and "Gitcanary-Action: rollback" in parsed
    history = rollout_history(config_repo)
    assert history["rejections"] == ["pat (rejected-by)"] and "pat (rejected-by)" not in history["approvals"]
    tick(rec, clock)
    pull = github.pulls[number]
    assert pull.labels == ["gitcanary: rejected"] and state_on_main(config_repo, github, number) == "rejected"
    assert pull.body.startswith("🛑 **Rejected** by pat. Reason: p99 looks worse in the EU dashboard")
    # Not the config repository's owner, and not allowed by --release-notes-from: never asked.
    assert (
        "- `backend` `6.1.1`: release notes not read from stefanprodan/podinfo (not an allowed "
        "source: `gitcanary run --release-notes-from`)" in pull.body
    )
    assert not [r for r in github.requests if "/releases/" in r[1]], github.requests
    check_body(github, pull.body)


def test_superseded_by_a_newer_bump_and_restarted_mid_gate(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, "direct")
    first = gate_pull(github)
    # gitcanary restarts elsewhere mid-gate: the same body, no second PR, no second comment.
    body = github.pulls[first].body
    rec = _restarted(rec, config_repo, github, tmp_path, clock)
    tick(rec, clock)
    assert (
        len(github.pulls) == 1
        and github.pulls[first].body.split("### Evidence")[0] == body.split("### Evidence")[0]
    )
    assert len(github.pulls[first].comments) == 1
    config_repo.bump("apps/backend", "6.1.2")
    for _ in range(3):
        checked_tick(rec, clock, config_repo, github)
    old = github.pulls[first]
    assert old.state == "closed" and old.labels == ["gitcanary: superseded"]
    assert old.body.startswith("⏭️ **Superseded** by a newer revision (`6.1.2`, bumped by Pat Person)")
    assert any("replaced `6.1.1`" in c[2] for c in old.comments)
    check_body(github, old.body)
    newer = [p for p in github.pulls.values() if p.number != first and p.title.startswith("Rollout ")]
    assert len(newer) == 1 and newer[0].title.endswith("-> 6.1.2")
    # The superseded gate links the gate that follows it.
    assert f"[the new gate #{newer[0].number}]({github.html_url}/pull/{newer[0].number})" in old.body
    check_body(github, newer[0].body)


def _restarted(
    rec: Reconciler, repo: ConfigRepo, server: GitHubServer, tmp_path: Path, clock: Clock
) -> Reconciler:
    from test_forge import reconciler

    return reconciler(repo, tmp_path / "elsewhere", server, clock, mode="direct")


def test_halted_body_withdraws_the_promotion_and_footnotes_diagnostics() -> None:
    """Pure: a halt after a promotion was on the PR; the row is withdrawn, the rows stay narrow."""
    when = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    rows = [
        gate.Row("a" * 40, when, "start", "0", "0"),
        gate.Row("b" * 40, when, "advance", "10", "0"),
        gate.Row(
            "c" * 40,
            when,
            "advance",
            "20",
            "10",
            (Check("request-success-rate", 99.9, 99, None, True), Check("error-rate", 0.4, None, 1, True)),
            {
                "error-rate": "prometheus.istio-system does not resolve here; queried http://u:pw@10.0.0.7:9090"
            },
        ),
        gate.Row("d" * 40, when, "halt", "20", "20", (Check("request-success-rate", 91.0, 99, None, False),)),
        gate.Row("e" * 40, when, "promote", "20", "20", withdrawn=True, url="-"),
    ]
    view = gate.View(
        key=KEY,
        primary="6.1.0",
        canary="6.1.1",
        rollout_id="6.1.0..6.1.1/2026-11-01T12:00:00Z",
        state=gate.State.HALTED,
        rows=rows,
        metrics=[
            gate.Metric("request-success-rate", "1m", 99),
            gate.Metric(
                "error-rate", "2m", None, 1, "https://grafana.example/explore?m={metric}&from={start}"
            ),
        ],
        web_url="https://github.example/acme/config",
        now=when,
        reason="request-success-rate 91 (min 99)",
    )
    body = gate.body(view)
    shown = plain(body)
    assert body.startswith("⚠️ **Halted**") and "Reason: request-success-rate 91 (min 99)" in shown
    assert (
        "| success-rate<br>≥99% | error-rate<br>≤1 |" in body
        and "Windows: success-rate 1m · error-rate 2m." in body
    )
    assert "| not measured |" in body and "| withdrawn | `eeeeeee` |" in body
    # Measured rows without a request count (a provider with no request-rate query) say so.
    assert "| 10% | n/a | 99.9% ✅ |" in body and "| 0% | – | not measured |" in body
    assert "0.4 ✅[^1]" in body and "[^1]: error-rate: prometheus.istio-system" in shown
    assert "91% ❌" in body and "Last measured 2026-11-01 12:00 UTC" in body
    assert "queried http://***@10.0.0.7:9090" in shown and "pw@" not in shown  # credentials masked
    assert "[error-rate](https://grafana.example/explore?m=error-rate&from=" in body
    for table in rendered_tables(body):
        assert table_width(table) <= gate.MAX_ROW_CHARS, table


BAD_FROM = DATA_END - timedelta(minutes=30)  # a short incident: 2 minutes of 20% errors
PRIMARY_RPS = 60
RELAPSE = DATA_END - timedelta(minutes=10)  # failing from here to the end of the data


@pytest.fixture(scope="module")
def incident_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    good = dict(rps=20, error_ratio=0.0, p99_ms=80)
    bad = dict(rps=20, error_ratio=0.2, p99_ms=90)
    traffic = [
        # The primary serves the rest of the traffic, healthy throughout.
        Traffic("backend-primary", "prod", rps=PRIMARY_RPS, error_ratio=0.0, p99_ms=70, start=GOOD_FROM),
        Traffic("backend", "prod", start=GOOD_FROM, end=BAD_FROM, **good),  # type: ignore[arg-type]
        Traffic("backend", "prod", start=BAD_FROM, end=BAD_FROM + timedelta(minutes=2), **bad),  # type: ignore[arg-type]
        Traffic("backend", "prod", start=BAD_FROM + timedelta(minutes=2), end=RELAPSE, **good),  # type: ignore[arg-type]
        Traffic("backend", "prod", start=RELAPSE, end=DATA_END, **bad),  # type: ignore[arg-type]
    ]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


def yaml_threshold(repo: ConfigRepo) -> int:
    """The canary's analysis threshold, read from its file (not from gitcanary)."""
    import yaml

    doc = yaml.safe_load(git("show", "main:apps/backend/canary.yaml", cwd=repo.remote))
    return int(doc["spec"]["analysis"]["threshold"])


def test_halted_then_promoted(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, incident_prometheus: PrometheusServer
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, incident_prometheus, "direct")
    number = gate_pull(github)
    pull = github.pulls[number]
    stale = github.rev(pull.head)
    clock.now = BAD_FROM + timedelta(seconds=40)  # the incident: the next analysis fails once
    checked_tick(rec, clock, config_repo, github)
    assert actions(config_repo)[-1] == ("halt", 50)
    # The promotion decided before the halt is withdrawn: the PR is a draft again, shows the row
    # struck through, and says once why a person's approval would not count now.
    assert pull.draft and pull.labels == ["gitcanary: halted"]
    assert f"| withdrawn | `{stale[:7]}` |" in pull.body
    assert any("failed" in c[2] for c in pull.comments)
    threshold = yaml_threshold(config_repo)
    assert f"Reason: failure 1 of {threshold}: " in pull.body.split("\n")[0], pull.body.split("\n")[0]
    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    clock.now = BAD_FROM + timedelta(minutes=5)  # healthy again
    for _ in range(4):
        checked_tick(rec, clock, config_repo, github)
        if pull.labels == ["gitcanary: waiting for approval"]:
            break
    assert not pull.merged and not pull.draft
    assert "not of the promotion commit" in pull.body  # the approval during the halt
    # Each measured row: the requests both sides served over the first window (1m of the steady
    # rates the data was written with) and the primary's value under the canary's.
    rows = [r for table in rendered_tables(pull.body) for r in table if r[1].endswith("%")]
    measured = [r for r in rows if "✅" in "".join(r) or "❌" in "".join(r)]
    assert measured, rows
    for row in measured:
        canary, primary = (float(n.removeprefix("vs ").removesuffix("k")) * 1000 for n in row[2].split("\n"))
        # Prometheus extrapolates a rate at the window's edges: within 2% of rate x window.
        assert canary == pytest.approx(20 * 60, rel=0.02), row
        assert primary == pytest.approx(PRIMARY_RPS * 60, rel=0.02), row
        assert row[3].endswith("\nvs 100%") and row[4].endswith("\nvs 70ms"), row
    human_github(github).get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(5):
        checked_tick(rec, clock, config_repo, github)
        if phase(config_repo) == "Succeeded":
            break
    checked_tick(rec, clock, config_repo, github)
    assert pull.merged and pull.labels == ["gitcanary: promoted"]


def test_rolled_back_by_the_analysis(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path, incident_prometheus: PrometheusServer
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, incident_prometheus, "direct")
    number = gate_pull(github)
    pull = github.pulls[number]
    clock.now = RELAPSE + timedelta(seconds=40)
    for _ in range(4):
        checked_tick(rec, clock, config_repo, github)
        if actions(config_repo)[-1][0] == "rollback":
            break
    assert actions(config_repo)[-1] == ("rollback", 0)
    checked_tick(rec, clock, config_repo, github)
    assert pull.state == "closed" and not pull.merged and pull.labels == ["gitcanary: rolled back"]
    assert pull.body.startswith("↩️ **Rolled back** by the analysis. Reason: request-success-rate")
    rollback = config_repo.gitcanary_commits()[-1][0]
    assert f"{github.html_url}/commit/{rollback}" in pull.body
    assert any("rolled `prod/backend` back to `6.1.0`" in c[2] for c in pull.comments)


def test_step_prs_are_labelled_link_the_gate_and_reviewers_come_from_codeowners(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """Where branch protection wants a PR per step: each is labelled, names the gate it belongs
    to and folds its trailers; the gate asks the configured reviewers and the CODEOWNERS of the
    canary for a review."""
    (config_repo.human / ".github").mkdir()
    (config_repo.human / ".github" / "CODEOWNERS").write_text(
        "# owners\n*.md @docs-team\n/apps/backend/ @alice @acme/sre\n/apps/frontend/ @bob\n"
    )
    config_repo.commit_and_push("CODEOWNERS")
    rec, clock = gate_to_waiting(
        config_repo, github, tmp_path, None, "pull-request", reviewers=("carol", "team:platform", "alice")
    )
    number = gate_pull(github)
    gate_url = f"{github.html_url}/pull/{number}"
    steps = [p for p in github.pulls.values() if p.number != number and p.head.startswith("gitcanary/")]
    after_gate = [p for p in steps if p.number > number]
    assert after_gate and all(p.merged for p in after_gate)
    for pull in steps:
        assert pull.labels == ["gitcanary: step"], (pull.title, pull.labels)
        assert "<details><summary>Trailers" in pull.body and "Gitcanary-Canary: prod/backend" in pull.body
        assert pull.body.index("<details>") < pull.body.index("Gitcanary-Canary")  # folded, not in view
    for pull in after_gate:
        assert f"One step of the rollout gated by {gate_url}" in pull.body
        if "Gitcanary-Check" in pull.body:
            check_body(github, pull.body)
    pull = github.pulls[number]
    # The configured reviewers and the CODEOWNERS, together, each once.
    assert pull.requested == ["carol", "alice"] and pull.requested_teams == ["platform", "sre"]
    # The bot's own step merges are not approvals in `gitcanary history`.
    approvals = rollout_history(config_repo)["approvals"]
    assert not any(f"PR #{p.number}" in a for p in steps for a in approvals), approvals
    # The steps landed through their PRs: each row links the PR that carried it, on GitHub.
    for step in (p for p in after_gate if "Gitcanary-Action: advance" in p.body):
        assert f"]({github.html_url}/pull/{step.number}) |" in pull.body
    check_body(github, pull.body)


def test_a_change_that_is_not_an_image_shows_its_spec_diff(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    from test_forge import reconciler, without_metrics

    without_metrics(config_repo)
    annotate(config_repo, **{"gitcanary.io/promotion-gate": "true"})
    clock = Clock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    rec = reconciler(config_repo, tmp_path / "work", github, clock, mode="direct")
    for _ in range(2):
        tick(rec, clock)

    def debug_logs(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["template"]["spec"]["containers"][0]["command"][2] = "--level=debug"

    config_repo.edit("apps/backend/deployment.yaml", debug_logs)
    config_repo.commit_and_push("backend: debug logs")
    checked_tick(rec, clock, config_repo, github)
    body = github.pulls[gate_pull(github)].body
    assert "<details><summary>Spec diff (not an image change)</summary>" in body
    assert "-            - --level=info\n+            - --level=debug" in body
    assert "| container | change |" not in body
    check_body(github, body)


def test_reviewers_metric_links_and_release_notes_from_the_command_line(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """`run --once` ticks with the gate's flags (and one as an environment variable, as the other
    settings take them): the gate PR links each metric's query, URL-encoded, finds the release
    notes where --release-notes says, and asks the configured reviewers besides CODEOWNERS."""
    import os
    import sys
    import urllib.parse

    (config_repo.human / "CODEOWNERS").write_text("/apps/backend/ @bob\n")
    config_repo.commit_and_push("CODEOWNERS")
    annotate(config_repo, **{"gitcanary.io/promotion-gate": "true"})
    github.releases[("acme/podinfo-src", "v6.1.1")] = ("v6.1.1", "Faster startup")
    token_file = tmp_path / "token"
    token_file.write_text("gitcanary-token\n")
    env = {**os.environ, "COLUMNS": "250", "GITCANARY_PROMETHEUS": unavailable_prometheus()}
    env["GITCANARY_RELEASE_NOTES"] = "ghcr.io/stefanprodan/podinfo=acme/podinfo-src"
    env.pop("GITCANARY_GITHUB_TOKEN", None)
    command = [sys.executable, "-m", "gitcanary", "run", "--once", "--repo", str(config_repo.remote)]
    command += ["--workdir", str(tmp_path / "work"), "--settle", "0", "--log-format", "text"]
    command += ["--github-repo", "acme/config", "--github-api-url", github.api_url]
    command += ["--github-token-file", str(token_file), "--reviewers", "alice,team:platform"]
    command += ["--metric-link", "https://grafana.example/explore?left={query}&m={metric}"]

    def run_once() -> None:
        proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        assert proc.returncode == 0, proc.stderr

    for _ in range(2):
        run_once()
    config_repo.bump("apps/backend", "6.1.1")
    run_once()
    body = github.pulls[gate_pull(github)].body
    query = (
        'sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="prod", '
        'destination_workload=~"backend", response_code!~"5.*" }[1m] ) ) / sum( rate( '
        'istio_requests_total{ reporter="destination", destination_workload_namespace="prod", '
        'destination_workload=~"backend" }[1m] ) ) * 100'
    )
    link = f"https://grafana.example/explore?left={urllib.parse.quote(query, safe='')}&m=request-success-rate"
    assert f"[success-rate]({link})" in body
    assert f"[release in acme/podinfo-src]({github.server.url}/acme/podinfo-src/releases/tag/v6.1.1)" in body


CONFIG_KEY = "PODINFO_UI_MESSAGE"  # examples/istio/apps/backend/kustomization.yaml
OLD_MESSAGE = "hello from backend"
NEW_MESSAGE = "hello <b>again</b> **from** backend"
SECRET_KEY = "DB_PASSWORD"
OLD_SECRET, NEW_SECRET = "old-s3cret-9f2e7", "new-s3cret-7c1d4"


def test_config_only_release_shows_configmap_values_and_never_secret_values(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """A release that changes a ConfigMap literal and a Secret literal, no image: the gate PR lists
    the ConfigMap's key with its old and new value (as text, not markup) and the Secret's key only;
    neither Secret value is anywhere in the PR, in plain text or base64."""
    import base64

    from test_forge import reconciler, without_metrics

    def add_secret(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["secretGenerator"] = [{"name": "backend-db", "literals": [f"{SECRET_KEY}={OLD_SECRET}"]}]

    def reference_secret(doc) -> None:  # noqa: ANN001 - ruamel map
        container = doc["spec"]["template"]["spec"]["containers"][0]
        container["envFrom"].append({"secretRef": {"name": "backend-db"}})

    config_repo.edit("apps/backend/kustomization.yaml", add_secret)
    config_repo.edit("apps/backend/deployment.yaml", reference_secret)
    config_repo.commit_and_push("backend reads a Secret")
    annotate(config_repo, **{"gitcanary.io/promotion-gate": "true"})
    without_metrics(config_repo)
    clock = Clock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    rec = reconciler(config_repo, tmp_path / "work", github, clock, mode="direct")
    for _ in range(2):
        tick(rec, clock)

    def change(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["configMapGenerator"][0]["literals"][0] = f"{CONFIG_KEY}={NEW_MESSAGE}"
        doc["secretGenerator"][0]["literals"][0] = f"{SECRET_KEY}={NEW_SECRET}"

    config_repo.pull()
    config_repo.edit("apps/backend/kustomization.yaml", change)
    config_repo.commit_and_push("backend: new message and database password")
    tick(rec, clock)
    number = gate_pull(github)
    pull = github.pulls[number]
    for _ in range(6):
        checked_tick(rec, clock, config_repo, github)
        if "waiting for approval" in pull.labels[0]:
            break
    assert pull.labels == ["gitcanary: waiting for approval"]
    # Named by what changed, not "6.1.0 -> 6.1.0".
    assert re.fullmatch(
        r"Rollout prod/backend 6\.1\.0: ConfigMap backend-config-\w+, Secret backend-db-\w+", pull.title
    ), pull.title
    assert "Rollout of **prod/backend** at `6.1.0`: a change of its config" in pull.body
    configs = pull.body.split("**Config changes**", 1)[1].split("###", 1)[0]
    assert f"- ConfigMap `backend-config`: changed `{CONFIG_KEY}`" in configs
    assert f"- Secret `backend-db`: changed `{SECRET_KEY}` (value changed, not shown)" in configs
    html = MD.render(pull.body)
    assert f"-{OLD_MESSAGE}\n+{NEW_MESSAGE.replace('<', '&lt;').replace('>', '&gt;')}" in html
    assert "<b>again</b>" not in html and "<strong>from</strong>" not in html
    everything = [pull.title, pull.body, *(body for _, _, body in pull.comments)]
    for secret in (OLD_SECRET, NEW_SECRET):
        encoded = base64.b64encode(f"{secret}".encode()).decode()
        for text in everything:
            assert secret not in text and encoded not in text
    check_body(github, pull.body)


def test_no_config_change_is_said() -> None:
    view = gate.View(
        "prod/backend",
        "6.1.0",
        "6.1.1",
        "6.1.0..6.1.1",
        gate.State.ANALYSING,
        [],
        [],
        "https://x",
        datetime.now(UTC),
    )
    assert "**Config changes**\n\nNo config change." in gate.body(view)


def test_config_values_are_bounded_and_sanitized() -> None:
    """A ConfigMap value is someone else's text: a code fence, markup, a credential in a URL, a
    control character, a 300-character line and 100 lines stay inside the folded diff, cut short."""
    from gitcanary.manifests.config_writeback import ConfigDiff

    hostile = "```\n</details><img src=x onerror=alert(1)>\nhttps://u:hunter2@git.example/x\x1b[31m\n"
    new = hostile + "x" * 300 + "\n" + "\n".join(f"line {i}" for i in range(100))
    diffs = [
        ConfigDiff("ConfigMap", "ConfigMap app-<b>config", changed=("a`b",), values=(("a`b", "old", new),)),
        ConfigDiff("Secret", "Secret db", changed=("PASSWORD",)),
    ]
    view = gate.View(
        *("prod/backend", "6.1.0", "6.1.1", "6.1.0..6.1.1", gate.State.ANALYSING, [], []),
        *("https://x", datetime.now(UTC)),
        configs=diffs,
    )
    body = gate.body(view)
    html = MD.render(body)
    assert "hunter2" not in body and "\x1b" not in body
    assert "<img" not in html and "<b>" not in html
    assert html.count("</details>") == 1 and body.count("```") == 2
    block = body.split("```diff\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert len(block) == gate.CONFIG_KEY_LINES + 1
    assert max(len(line) for line in block) <= gate.CONFIG_LINE_CHARS
    assert "- ConfigMap `app-<b>config`: changed `a'b`" in body  # in code: shown, not rendered
    assert "- Secret `db`: changed `PASSWORD` (value changed, not shown)" in body


def test_a_writers_change_request_blocks_until_they_approve_and_is_recorded_when_closed(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    """Votes: each writer's latest review. Pat (write) requests changes, Sam (write) approves: the
    gate is not merged and says who objects and why; a comment by Pat lifts nothing; Pat's own
    approval lifts it and the gate is merged with both approvals. A read-only reviewer's change
    request blocks nothing."""
    github.token_user["sam-token"] = "sam"
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, "direct")
    number = gate_pull(github)
    pat = human_github(github).get_repo("acme/config").get_pull(number)
    sam = Github(base_url=github.api_url, auth=Auth.Token("sam-token"), retry=None, lazy=True)
    reader = Github(base_url=github.api_url, auth=Auth.Token("reader-token"), retry=None, lazy=True)
    reader.get_repo("acme/config").get_pull(number).create_review(event="REQUEST_CHANGES", body="nope")
    pat.create_review(event="REQUEST_CHANGES", body="p99 regressed in [EU](https://evil.example) @acme/sre")
    sam.get_repo("acme/config").get_pull(number).create_review(event="APPROVE")
    for _ in range(2):
        checked_tick(rec, clock, config_repo, github)
        pull = github.pulls[number]
        assert not pull.merged and pull.labels == ["gitcanary: waiting for approval"]
        assert "**Blocked** by a change request of @pat." in pull.body.split("\n")[0]
        said = "p99 regressed in \\[EU\\](https:\u200b//evil.example) \\@\u200bacme/sre"
        assert f"- 🛑 @pat requested changes: {said}." in pull.body
        assert "@reader requested" not in pull.body  # no write access: no vote
        pat.create_review(event="COMMENT", body="still looking")
    assert "blocked by a change request of pat" in rec.publisher.waiting[KEY]
    pat.create_review(event="APPROVE")
    for _ in range(5):
        tick(rec, clock)
        if phase(config_repo) == "Succeeded":
            break
    assert github.pulls[number].merged
    merge = git("log", "-1", "--format=%B", "--grep=Approved-by", "main", cwd=config_repo.remote)
    assert "Approved-by: sam" in merge and "Approved-by: pat" in merge


def test_a_change_request_standing_when_the_gate_is_closed_is_recorded(
    config_repo: ConfigRepo, github: GitHubServer, tmp_path: Path
) -> None:
    rec, clock = gate_to_waiting(config_repo, github, tmp_path, None, "direct")
    number = gate_pull(github)
    people = human_github(github).get_repo("acme/config").get_pull(number)
    people.create_review(event="REQUEST_CHANGES", body="not this week")
    people.edit(state="closed")
    checked_tick(rec, clock, config_repo, github)
    assert actions(config_repo)[-1] == ("rollback", 0)
    message = git("log", "-1", "--format=%B", "main", cwd=config_repo.remote)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
    ).stdout
    assert "Rejected-by: pat" in parsed and "Objected-by: pat" in parsed
    history = rollout_history(config_repo)
    assert history["objections"] == ["pat (objected-by)"] and history["approvals"] == []
