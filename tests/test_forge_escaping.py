"""Untrusted text stays text: in every PR body and comment gitcanary writes, on every forge.

Author names, image tags, file paths, release text, a reviewer's reason, a provider's diagnostic
and a commit's prose are drawn from a generator of hostile text (mentions, issue and merge-request
references of each forge, Markdown links and images, raw HTML and comments, autolinks, emails,
GitLab quick actions, code fences, table pipes, control and bidi characters) and put into every
slot of every builder (`gate.body` in each state, `gate.comment`, `gate.step_body`).

The oracle is independent of gitcanary's escaping: markdown-it-py (CommonMark + GFM tables and
strikethrough) parses the body built from the hostile text and the body built from benign words
in the same slots. They must have the same block structure (untrusted text adds no heading, list,
table row or cell), the same links, images and HTML, and the same count of what a forge links in
rendered text (`@user`, `#1`, `!1`, `~label`, `%m`, `$s`, `&e`, `GH-1`, `scheme://`, `www.`,
`user@host`); and the author's name and the reviewer's reason must still be readable in it.
The same bodies then go through each forge's client to its local server (GitHub, GitLab, Gitea)
and are stored there as built.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_config_repo
from gitea_server import GiteaServer
from github_server import GitHubServer
from gitlab_server import GitLabServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gitcanary.forge import gate
from gitcanary.forge import markdown as md
from gitcanary.forge.base import Forge
from gitcanary.forge.gitea import GiteaConfig, GiteaForge
from gitcanary.forge.github import GitHubConfig, GitHubForge
from gitcanary.forge.gitlab import GitLabConfig, GitLabForge
from gitcanary.git.checks import Check
from gitcanary.manifests.config_writeback import ConfigDiff

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# What a forge turns into a link, a mention or a reference in text that Markdown left as text.
FORGE_LINKED = re.compile(r"(?<![\w\\])[@#!~%$&]\w|\bGH-\d|\w://|\bwww\.|\w@\w", re.I)
HOSTILE_PIECES = [
    "@alice",
    "@acme/sre",
    "@all",
    "#12",
    "!3",
    "GH-5",
    "~bug",
    "%v1",
    "$7",
    "&9",
    "acme/app#4",
    "[x](https://evil.example/p)",
    "![i](https://evil.example/i.png)",
    "[ref]: https://evil.example",
    "[x][ref]",
    "<https://evil.example>",
    "https://evil.example/a",
    "http://u:pw@evil.example",
    "www.evil.example",
    "pat@evil.example",
    "mailto:pat@evil.example",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<!--",
    "-->",
    "<details>",
    "</summary>",
    "&lt;b&gt;",
    "&#64;bob",
    "`",
    "```",
    "~~~",
    "|",
    "||",
    "\\",
    "*",
    "**b**",
    "_i_",
    "~~s~~",
    "$x$",
    "[^1]",
    "> q",
    "# h",
    "- l",
    "1. n",
    "2) n",
    "---",
    "===",
    "/merge",
    "/approve",
    "/close",
    ":smile:",
    "{+ins+}",
    "\n",
    "\n\n",
    "\r",
    "\t",
    "    ",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u2028",
    "\ufeff",
    "é",
    "名",
    "a",
    "b",
    " ",
]
hostile = st.lists(st.sampled_from(HOSTILE_PIECES) | st.text(max_size=6), min_size=1, max_size=8).map(
    lambda pieces: "".join(pieces) + " z"  # something printable is left of every value
)
SLOTS = [
    "key",
    "primary",
    "canary",
    "rollout",
    "status",
    "reason",
    "decided",
    "superseded",
    "container",
    "old",
    "new",
    "where",
    "author",
    "source",
    "notes",
    "diff",
    "config_note",
    "metric",
    "action",
    "weight",
    "note",
    "prose",
    "trailer",
    "check_note",
]
TOKEN = "gitcanary-token"  # the token the local servers know as gitcanary's
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WEB = "https://forge.example/acme/config"


def view_of(v: dict[str, str], state: gate.State) -> gate.View:
    """A view with `v[slot]` in every place a body shows someone else's text."""
    metric = gate.Metric(v["metric"], "1m", 99)
    rows = [
        gate.Row("a" * 40, WHEN, "start", "0", "0"),
        gate.Row(
            "b" * 40,
            WHEN + timedelta(minutes=1),
            v["action"],
            v["weight"],
            v["weight"],
            checks=(Check(v["metric"], 91.0, 99, None, False),),
            notes={v["metric"]: v["note"]},
            requests="canary=10 primary=30",
        ),
    ]
    change = gate.Change(
        v["container"],
        v["old"],
        v["new"],
        v["where"],
        f"{v['author']} <p@x.example>",
        f"{WEB}/commit/{'c' * 40}",
        v["source"],
        f"{WEB}/releases/tag/1",
        v["notes"],
    )
    config = ConfigDiff(
        "ConfigMap",
        f"ConfigMap {v['config_note']}",
        changed=(v["config_note"],),
        values=((v["config_note"], v["diff"] + "\nold", v["note"] + "\nnew"),),
    )
    return gate.View(
        key=v["key"],
        primary=v["primary"],
        canary=v["canary"],
        rollout_id=v["rollout"],
        state=state,
        rows=rows,
        metrics=[metric],
        web_url=WEB,
        now=WHEN + timedelta(minutes=5),
        changes=[change],
        spec_diff=v["diff"],
        configs=[config],
        status_message=v["status"],
        approvals=[gate.Approval("alice", "d" * 40, False, "the reviewer has no write access")],
        objections=[("pat", v["reason"])],
        head_sha="e" * 40 if state in (gate.State.WAITING, gate.State.APPROVED) else "",
        decided_by=v["decided"],
        reason=v["reason"],
        superseded_by=v["superseded"],
        results=[("rollback `fffffff`", f"{WEB}/commit/{'f' * 40}")],
    )


def step_message(v: dict[str, str]) -> str:
    one_line = {k: " ".join(t.splitlines()) for k, t in v.items()}  # a commit line holds no newline
    return (
        f"gitcanary: step of {one_line['key']}\n\n{one_line['prose']}\n"
        f"request-success-rate 91 (min 99) ({one_line['check_note']})\n\n"
        f"Gitcanary-Check: request-success-rate value=91 min=99 failed\n"
        f"Gitcanary-Bumped-By: {one_line['trailer']}\n"
    )


def builds(v: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(what, Markdown) for every body and comment builder."""
    for state in gate.State:
        view = view_of(v, state)
        yield f"body {state}", gate.body(view)
        yield f"comment {state}", gate.comment(view)
    yield "step body", gate.step_body(step_message(v), f"{WEB}/pull/3")


def blocks(tokens: list[Token]) -> list[str]:
    return [t.type for t in tokens if t.type != "inline"]


def active(tokens: list[Token]) -> Counter[str]:
    """Links, images and HTML the rendered body holds, and what a forge would link in its text."""
    found: Counter[str] = Counter()
    for token in tokens:
        if token.type in ("html_block", "fence", "code_block"):
            if token.type == "html_block":
                found.update(f"html {tag}" for tag in re.findall(r"</?[A-Za-z][^>]*>", token.content))
                found.update(f"forge {m}" for m in FORGE_LINKED.findall(html.unescape(token.content)))
            continue
        for child in token.children or []:
            if child.type == "link_open":
                found[f"link {child.attrGet('href')}"] += 1
            elif child.type == "image":
                found[f"image {child.attrGet('src')}"] += 1
            elif child.type == "html_inline":
                found[f"html {child.content}"] += 1
            elif child.type == "text":
                found.update(f"forge {m}" for m in FORGE_LINKED.findall(child.content))
    return found


def plain(body: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", MD.render(body))).replace(md.ZWSP, "")
    return " ".join(text.split())


def benign() -> dict[str, str]:
    return {slot: f"word{i}" for i, slot in enumerate(SLOTS)}


BASELINE = list(builds(benign()))


def check_inert(v: dict[str, str]) -> list[tuple[str, str]]:
    """Every builder's Markdown from `v` is as inert as from benign words; returns the bodies."""
    built = list(builds(v))
    for (what, body), (_, baseline) in zip(built, BASELINE, strict=True):
        tokens, expected = MD.parse(body), MD.parse(baseline)
        assert blocks(tokens) == blocks(expected), f"{what}: the untrusted text changed the structure"
        assert active(tokens) == active(expected), f"{what}: {active(tokens) - active(expected)}"
        assert "\u202e" not in body and "\x1b" not in body and "\x00" not in body, what
    return built


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries({slot: hostile for slot in SLOTS}))
def test_untrusted_text_renders_as_text_in_every_builder(v: dict[str, str]) -> None:
    built = dict(check_inert(v))
    # Still readable: the author's name and the person's reason show as their words.
    name = md.clean(v["author"])
    for what in ("body promoted", "body rejected"):
        assert name in plain(built[what]), (what, name)
    assert md.clean(v["reason"]) in plain(built["body rejected"])


def test_a_named_example_is_escaped_and_readable() -> None:
    v = benign() | {"author": "@acme/sre [x](https://evil.example)<img src=x>", "reason": "/merge #1"}
    body = dict(check_inert(v))["body rejected"]
    assert "@acme/sre [x](https://evil.example)<img src=x>" in plain(body)
    assert "\\@\u200bacme/sre \\[x\\](https:\u200b//evil.example)\\<img src=x\\>" in body
    assert "Reason: \\/merge \\#\u200b1" in body


def test_the_check_fails_on_unescaped_text() -> None:
    """The oracle sees what escaping prevents: a builder without it fails the check."""
    v = benign() | {"author": "[x](https://evil.example) @alice"}
    body = gate.body(view_of(v, gate.State.ANALYSING)).replace(md.text(v["author"]), v["author"])
    baseline = gate.body(view_of(benign(), gate.State.ANALYSING))
    added = active(MD.parse(body)) - active(MD.parse(baseline))
    assert added["link https://evil.example"] >= 1 and added["forge @a"] >= 1, added


# -- the same bodies through each forge's client, stored by its local server --------------------


def _github(bare: Path) -> tuple[Any, Forge, Any]:
    server = GitHubServer(bare).start()
    forge = GitHubForge(
        GitHubConfig(
            repo="acme/config",
            api_url=server.api_url,
            token=TOKEN,
            seconds_between_requests=None,
            seconds_between_writes=None,
        ),
        sleep=lambda _: None,
    )
    return server, forge, lambda n: (server.pulls[n].body, [c[2] for c in server.pulls[n].comments])


def _gitlab(bare: Path) -> tuple[Any, Forge, Any]:
    server = GitLabServer(bare).start()
    forge = GitLabForge(
        GitLabConfig(project="acme/config", url=server.url, token=TOKEN), sleep=lambda _: None
    )
    return server, forge, lambda n: (server.mrs[n].description, [x[2] for x in server.mrs[n].notes])


def _gitea(bare: Path) -> tuple[Any, Forge, Any]:
    server = GiteaServer(bare).start()
    forge = GiteaForge(GiteaConfig(repo="acme/config", url=server.url, token=TOKEN), sleep=lambda _: None)
    return server, forge, lambda n: (server.pulls[n].body, [c[2] for c in server.pulls[n].comments])


@pytest.fixture(scope="module", params=["github", "gitlab", "gitea"])
def forge_pr(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    repo = make_config_repo(tmp_path_factory.mktemp(request.param))
    tree = git("rev-parse", "main^{tree}", cwd=repo.remote).strip()
    placeholder = git("commit-tree", tree, "-p", "main", "-m", "placeholder", cwd=repo.remote).strip()
    git("branch", "gitcanary/prod/backend/promotion-x", placeholder, cwd=repo.remote)
    server, forge, stored = {"github": _github, "gitlab": _gitlab, "gitea": _gitea}[request.param](
        repo.remote
    )
    try:
        pr = forge.open("gitcanary/prod/backend/promotion-x", "main", "Rollout", "preparing")
        yield forge, pr.number, stored
    finally:
        server.stop()
    assert not server.errors, "\n".join(server.errors)


@settings(max_examples=8, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries({slot: hostile for slot in SLOTS}))
def test_each_forge_stores_the_inert_body_as_built(forge_pr: Any, v: dict[str, str]) -> None:
    forge, number, stored = forge_pr
    for what, body in check_inert(v):
        if what.startswith("comment"):
            forge.comment(number, body)
            assert stored(number)[1][-1] == body, what
        else:
            forge.update_body(number, body)
            assert stored(number)[0] == body, what
            assert forge.get(number).body == body, what


def test_release_notes_excerpt_is_linear_and_remembered() -> None:
    """A 125,000-character hostile release (every pattern the old regexes rescanned from) is
    excerpted in well under a second, and a second body reuses the first excerpt."""
    import time

    gate._excerpt.cache_clear()
    for text in ("<!--" * 31_250, "<" * 125_000, "a" * 125_000, "<a" * 62_500, "x://" * 31_250):
        started = time.perf_counter()
        gate.excerpt(text)
        assert time.perf_counter() - started < 0.5, text[:8]
    big = "word " * 25_000
    gate.excerpt(big)
    gate.excerpt(big)
    assert gate._excerpt.cache_info().hits >= 1


def test_excerpt_keeps_words_and_drops_markup() -> None:
    lines = gate.excerpt(
        "## Fixes\n<!-- hidden -->\n* faster by @al in #4 see https://x.example/a\n<b>bold</b>"
    )
    assert [line.replace(md.ZWSP, "").replace("\\", "") for line in lines] == [
        "Fixes",
        "faster by @al in #4 see (link)",
        "bold",
    ]
