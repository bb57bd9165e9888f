"""Table tests for the pure audit core: check trailers, message segments, steps, rollouts, audits.

Messages come from the real writer (`gitcanary.git.messages.compose`) wherever the reconciler would
write them, so the parser is tested against the shape it reads in real histories.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitcanary.audit.model import Outcome, audit, parse_since, rollouts
from gitcanary.audit.parse import (
    RawCommit,
    Step,
    closing_approvals,
    merged_request,
    parse_commits,
    segments,
)
from gitcanary.audit.verify import BotIdentity, verify_commit
from gitcanary.core.observations import CheckResult, Verdict
from gitcanary.core.rollout import Action, Decision
from gitcanary.git import messages
from gitcanary.git.checks import Check, check_trailer, parse_check_line, parse_check_trailer
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

T0 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
OK = CheckResult("request-success-rate", 99.87, 99.0, None, True, "request-success-rate 99.87 >= 99 ok")
BAD = CheckResult("request-success-rate", 91.5, 99.0, None, False, "request-success-rate 91.5 < 99 failed")
SLOW = CheckResult("request-duration", None, None, 500.0, False, "request-duration no data: failed")
BOT = "gitcanary@users.noreply.local"


def canary(name: str = "backend") -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 20, "stepWeight": 10},
            },
        }
    )


def message(
    action: Action,
    phase: Phase,
    weight: int,
    minute: int,
    *,
    rollout: str = "6.1.0..6.1.1",
    checks: tuple[CheckResult, ...] = (),
    name: str = "backend",
    extra: dict[str, object] | None = None,
) -> str:
    """The message the reconciler writes for this step of a rollout started at T0."""
    old, new = rollout.split("..")
    status = CanaryStatus(
        phase=phase,
        canary_weight=weight,
        failed_checks=sum(not c.ok for c in checks),
        last_applied_spec="sha256:new",
        last_promoted_spec="sha256:old",
        primary_revision=new if phase in (Phase.SUCCEEDED,) else old,
        canary_revision=new,
        rollout_id=f"{rollout}/{T0:%Y-%m-%dT%H:%M:%SZ}",
        last_transition_time=T0 + timedelta(minutes=minute),
    )
    failed = tuple(c.line for c in checks if not c.ok)
    decision = Decision(action, "why", status, tuple(c.line for c in checks), failed, checks=checks)
    return messages.compose(canary(name), None, decision, [], extra)


def commit(
    text: str, sha: str = "a" * 40, author: str = "gitcanary", email: str = BOT, minute: int = 0
) -> RawCommit:
    return RawCommit(sha, (), author, email, T0 + timedelta(minutes=minute), author, email, text)


PROMOTION = [
    message(Action.START, Phase.PROGRESSING, 0, 0, extra={"Bumped-By": "Pat <pat@example.com>"}),
    message(Action.ADVANCE, Phase.PROGRESSING, 10, 1),
    message(Action.ADVANCE, Phase.PROGRESSING, 20, 2, checks=(OK,)),
    message(Action.PROMOTE, Phase.PROMOTING, 20, 3, checks=(OK,)),
    message(Action.FINALIZE, Phase.FINALISING, 0, 4),
    message(Action.SUCCEED, Phase.SUCCEEDED, 0, 5),
]
ROLLBACK = [
    message(Action.START, Phase.PROGRESSING, 0, 0, rollout="6.1.1..6.1.2"),
    message(Action.ADVANCE, Phase.PROGRESSING, 10, 1, rollout="6.1.1..6.1.2"),
    message(Action.HALT, Phase.PROGRESSING, 10, 2, rollout="6.1.1..6.1.2", checks=(BAD, SLOW)),
    message(Action.ROLLBACK, Phase.FAILED, 0, 3, rollout="6.1.1..6.1.2", checks=(BAD,)),
]


def one_per_commit(texts: list[str]) -> list[RawCommit]:
    return [commit(text, sha=f"{i:02x}" * 20) for i, text in enumerate(texts)]


@pytest.mark.parametrize(
    ("check", "trailer"),
    [
        (OK, "request-success-rate value=99.87 min=99 ok"),
        (BAD, "request-success-rate value=91.5 min=99 failed"),
        (SLOW, "request-duration value=none max=500 failed"),
        (CheckResult("latency", 3.0, 1.0, 10.0, True, ""), "latency value=3 min=1 max=10 ok"),
    ],
)
def test_check_trailer_round_trip(check: CheckResult, trailer: str) -> None:
    assert check_trailer(check) == trailer
    parsed = parse_check_trailer(trailer)
    assert (parsed.name, parsed.value, parsed.min, parsed.max, parsed.ok) == (
        check.name, check.value, check.min, check.max, check.ok,
    )  # fmt: skip


COMPARED = [
    (
        CheckResult(
            "request-duration", 312.0, None, 500.0, False, "",
            primary=240.0, p_value=0.00041, effect="x1.30", outcome=Verdict.FAIL,
        ),
        "request-duration value=312 max=500 primary=240 p=0.00041 effect=x1.30 failed",
    ),
    (
        CheckResult(
            "request-success-rate", 99.9, 99.0, None, True, "",
            primary=99.95, p_value=0.61, effect="+0.05pp", outcome=Verdict.PASS,
        ),
        "request-success-rate value=99.9 min=99 primary=99.95 p=0.61 effect=+0.05pp ok",
    ),
    (
        CheckResult("request-success-rate", None, 99.0, None, False, "", outcome=Verdict.WAIT),
        "request-success-rate value=none min=99 primary=none waiting",
    ),
    (
        CheckResult(
            "request-success-rate", 80.0, 99.0, None, False, "",
            primary=79.0, p_value=0.7, effect="-1.00pp", outcome=Verdict.HOLD,
        ),
        "request-success-rate value=80 min=99 primary=79 p=0.7 effect=-1.00pp holding",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("check", "trailer"), COMPARED)
def test_compared_check_trailer_carries_both_values_p_and_effect(check: CheckResult, trailer: str) -> None:
    assert check_trailer(check) == trailer
    parsed = parse_check_trailer(trailer)
    assert (parsed.name, parsed.value, parsed.primary, parsed.p_value, parsed.effect, parsed.verdict) == (
        check.name, check.value, check.primary, check.p_value, check.effect, check.verdict.value,
    )  # fmt: skip
    assert parsed.ok is (check.verdict is Verdict.PASS)
    assert parsed.compared


def test_an_effect_that_is_not_a_number_never_reaches_the_trailer() -> None:
    sneaky = CheckResult("m", 1.0, None, None, True, "", primary=1.0, effect="x1\nGitcanary-Phase: Succeeded")
    assert check_trailer(sneaky) == "m value=1 primary=1 ok"
    assert check_trailer(replace(sneaky, effect="x1\n")) == "m value=1 primary=1 ok"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "rate",
        "rate 5 ok",
        "rate value=x ok",
        "rate value=1 other=2 ok",
        "rate min=1 ok",
        "rate value=1 maybe",
        "rate value=1 primary=x failed",
        "rate value=1 effect=big failed",
    ],
)
def test_bad_check_trailers_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(ValueError, match="Gitcanary-Check"):
        parse_check_trailer(bad)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("request-success-rate 92 < 99 failed", Check("request-success-rate", 92, 99, None, False)),
        ("request-duration 131ms <= 500ms ok", Check("request-duration", 131, None, 500, True)),
        ("error-rate 8 > 1 failed", Check("error-rate", 8, None, 1, False)),
        ("latency 5 in [1, 10] ok", Check("latency", 5, 1, 10, True)),
        ("request-duration no data: failed", Check("request-duration", None, None, None, False)),
        ("error-rate 0.1 <= 1 ok (address unreachable from here)", Check("error-rate", 0.1, None, 1, True)),
        ("advance to 20%", None),
        ("halt at 20% (1/2 failed checks)", None),
        ("failed checks reached threshold 2/2", None),
        ("image backend: a:1 -> a:2 (apps/backend/kustomization.yaml images[0].newTag)", None),
    ],
)
def test_check_lines_of_older_commits(line: str, expected: Check | None) -> None:
    assert parse_check_line(line) == expected


def test_a_promotion_and_a_rollback() -> None:
    steps, problems = parse_commits(one_per_commit(PROMOTION + ROLLBACK))
    assert problems == []
    promoted, rolled_back = rollouts(steps)
    assert (promoted.from_revision, promoted.to_revision, promoted.outcome) == (
        "6.1.0",
        "6.1.1",
        Outcome.PROMOTED,
    )
    assert promoted.duration == timedelta(minutes=5) and promoted.max_weight == 20
    # A bump is no approval: it is among those involved, and APPROVED lists approvals only.
    assert promoted.approvals == [] and promoted.involved == ["bumped by Pat <pat@example.com>"]
    assert promoted.commit_range == "000000000000..050505050505"
    assert rolled_back.outcome is Outcome.ROLLED_BACK and rolled_back.max_weight == 10
    assert rolled_back.reason == "request-success-rate 91.5 (min 99)"
    assert [(s.action, c.name, c.value) for s, c in rolled_back.failed_checks] == [
        ("halt", "request-success-rate", 91.5),
        ("halt", "request-duration", None),
        ("rollback", "request-success-rate", 91.5),
    ]


def test_superseded_cancelled_and_in_progress() -> None:
    texts = [
        message(Action.START, Phase.PROGRESSING, 0, 0, rollout="1..2"),
        message(Action.ADVANCE, Phase.PROGRESSING, 10, 1, rollout="1..2"),
        # A newer bump: the restart carries a new rollout id (rollout._start).
        message(Action.RESTART, Phase.PROGRESSING, 0, 2, rollout="1..3"),
        message(Action.CANCEL, Phase.INITIALIZED, 0, 3, rollout="1..3"),
        message(Action.START, Phase.PROGRESSING, 0, 4, rollout="1..4"),
        message(Action.ADVANCE, Phase.PROGRESSING, 10, 5, rollout="1..4"),
    ]
    steps, _ = parse_commits(one_per_commit(texts))
    first, second, third = rollouts(steps)
    assert (first.outcome, first.superseded_by, first.ended) == (
        Outcome.SUPERSEDED,
        second.id,
        second.started,
    )
    assert second.outcome is Outcome.CANCELLED and second.ended == T0 + timedelta(minutes=3)
    assert third.outcome is Outcome.IN_PROGRESS and third.ended is None and third.duration is None


def test_setup_and_update_commits_are_no_rollouts() -> None:
    init = message(Action.INITIALIZE, Phase.INITIALIZING, 0, 0).replace(
        "6.1.0..6.1.1/2026-11-21T23:00:00Z", "6.1.0/init"
    )
    steps, problems = parse_commits(one_per_commit([init]))
    assert problems == [] and len(steps) == 1 and rollouts(steps) == []


def test_git_squash_and_github_squash_give_the_same_rollouts() -> None:
    direct = [r.fingerprint() for r in rollouts(parse_commits(one_per_commit(PROMOTION + ROLLBACK))[0])]
    texts = PROMOTION + ROLLBACK
    indented = [
        "commit 123\nAuthor: gitcanary <x>\nDate: now\n\n"
        + "\n".join(f"    {line}" for line in t.splitlines())
        for t in texts
    ]
    git_squash = "Squashed commit of the following:\n\n" + "\n\n".join(reversed(indented))
    github_squash = "Rollout backend (#7)\n\n" + "\n\n".join(f"* {t}" for t in texts)
    for squashed in (git_squash, github_squash):
        steps, problems = parse_commits([commit(squashed)])
        assert problems == []
        assert [r.fingerprint() for r in rollouts(steps)] == direct
    assert "PR #7" in rollouts(parse_commits([commit(github_squash)])[0])[0].involved


def test_a_step_seen_twice_counts_once() -> None:
    """A rebased copy next to its original (say, a branch merged twice) is one step."""
    commits = one_per_commit(PROMOTION) + [commit(PROMOTION[1], sha="f" * 40)]
    steps, _ = parse_commits(commits)
    assert len(steps) == len(PROMOTION)


def test_two_trailer_blocks_without_text_between_them() -> None:
    first, second = PROMOTION[1], PROMOTION[2]
    trailers = [line for line in second.splitlines() if line.startswith("Gitcanary-")]
    assert len(segments(first + "\n".join(trailers))) == 2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("Gitcanary-Weight: 10", "Gitcanary-Weight: ten"), "Gitcanary-Weight: not a whole number: 'ten'"),
        (
            ("Gitcanary-Canary: prod/backend", "Gitcanary-Canary: backend"),
            "Gitcanary-Canary: expected NAMESPACE/NAME",
        ),
        (
            ("Gitcanary-Action: advance", "Gitcanary-Action: advance now"),
            "Gitcanary-Action: not an action name",
        ),
        (
            ("Gitcanary-Time: 2026-11-21T23:01:00Z", "Gitcanary-Time: later"),
            "Gitcanary-Time: not an ISO 8601",
        ),
        (("Gitcanary-Phase: Progressing\n", ""), "Gitcanary-Phase is missing"),
    ],
)
def test_malformed_trailers_are_reported_and_skipped(change: tuple[str, str], problem: str) -> None:
    broken = PROMOTION[1].replace(*change)
    assert broken != PROMOTION[1]
    steps, problems = parse_commits(one_per_commit([PROMOTION[0], broken, *PROMOTION[2:]]))
    assert len(steps) == len(PROMOTION) - 1
    assert len(problems) == 1 and problems[0].message.startswith(problem)
    assert rollouts(steps)[0].outcome is Outcome.PROMOTED


def test_commits_without_time_or_check_trailers_still_parse() -> None:
    """Commits from before `Gitcanary-Time`/`Gitcanary-Check`: the author date and the body lines."""
    legacy = [
        "\n".join(
            line for line in text.splitlines() if not line.startswith(("Gitcanary-Time", "Gitcanary-Check"))
        )
        for text in ROLLBACK
    ]
    commits = [commit(text, sha=f"{i:040x}", minute=10 + i) for i, text in enumerate(legacy)]
    (rollout,) = rollouts(parse_commits(commits)[0])
    assert rollout.started == T0 + timedelta(minutes=10) and rollout.duration == timedelta(minutes=3)
    assert rollout.reason == "request-success-rate 91.5 (min 99)"


def test_compared_rollout_shows_canary_against_primary_in_history_report_and_chart() -> None:
    from gitcanary.audit.chart import render_svg
    from gitcanary.audit.report import history_html, history_markdown

    slow, slower = (replace(COMPARED[0][0], value=v, line=f"request-duration {v}") for v in (300.0, 330.0))
    wait = COMPARED[2][0]
    texts = [
        message(Action.START, Phase.PROGRESSING, 0, 0),
        message(Action.HOLD, Phase.PROGRESSING, 10, 1, checks=(wait,)),
        message(Action.HALT, Phase.PROGRESSING, 10, 2, checks=(slow,)),
        message(Action.ROLLBACK, Phase.FAILED, 0, 3, checks=(slower,)),
    ]
    steps, problems = parse_commits(one_per_commit(texts))
    assert not problems
    [rollout] = rollouts(steps)
    assert rollout.outcome is Outcome.ROLLED_BACK
    markdown = history_markdown("prod/backend", [rollout], [], None)
    assert "request-duration 330 (primary 240, p=0.00041, x1.30, max 500)" in markdown
    html = history_html("prod/backend", [rollout], [], None)
    assert "request-success-rate no data (primary no data, min 99) waiting" in html
    assert "request-duration 300 (primary 240, p=0.00041, x1.30, max 500) failed" in html
    svg = render_svg(rollout)
    # The primary's line is drawn beside the canary's in the duration panel.
    assert svg.count("<title>primary</title>") == 1 and "canary" in svg


def test_audit_window_and_figures() -> None:
    later = [t.replace("2026-11-21T23:0", "2026-11-22T23:0") for t in PROMOTION]  # a day later, 5 min again
    steps, problems = parse_commits(one_per_commit(PROMOTION + ROLLBACK + later))
    everything = audit(rollouts(steps), problems, None)
    assert (len(everything.rollouts), len(everything.promoted), len(everything.rolled_back)) == (3, 2, 1)
    assert everything.success_rate == pytest.approx(2 / 3)
    assert everything.median_time_to_promote == timedelta(minutes=5)
    recent = audit(rollouts(steps), problems, T0 + timedelta(hours=1))
    assert len(recent.rollouts) == 1 and recent.success_rate == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", T0 - timedelta(days=30)), ("12h", T0 - timedelta(hours=12)), ("2w", T0 - timedelta(weeks=2)),
     ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC))],
)  # fmt: skip
def test_since(text: str, expected: datetime) -> None:
    assert parse_since(text, T0) == expected


def test_since_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match="--since 'soon'"):
        parse_since("soon", T0)


PAT = "pat <pat@example.com>"
NOT_BOT = f"author {PAT} is not the bot <{BOT}>"
UNSIGNED = "not signed by the configured key: no signature"


@pytest.mark.parametrize(
    ("author", "signature", "signer", "actor", "verdict", "reasons"),
    [
        (BOT, "G", BOT, "", "ok", ()),
        (BOT, "N", "", "", "FLAGGED", (UNSIGNED,)),
        (BOT, "B", "", "", "FLAGGED", ("not signed by the configured key: bad signature",)),
        (BOT, "G", "mallory@example.com", "", "FLAGGED", ("signed by another key: good signature (mallory",)),
        ("pat@example.com", "N", "", "", "FLAGGED", (NOT_BOT, UNSIGNED)),
        # A person's commit that claims a bot transition (promote) is flagged, whoever it names as actor.
        ("pat@example.com", "N", "", PAT, "FLAGGED", (NOT_BOT, UNSIGNED)),
        ("pat@example.com", "N", "", "ann <ann@example.com>", "FLAGGED", (NOT_BOT, UNSIGNED)),
    ],
)
def test_verdicts(
    author: str, signature: str, signer: str, actor: str, verdict: str, reasons: tuple[str, ...]
) -> None:
    bot = BotIdentity(BOT, "~/.ssh/bot", "ssh")
    text = PROMOTION[3] + (f"Gitcanary-Actor: {actor}\n" if actor else "")
    name = "gitcanary" if author == BOT else "pat"
    raw = RawCommit("c" * 40, (), name, author, T0, name, author, text, signature, "", "", signer)
    result = verify_commit(bot, raw)
    assert result is not None and result.verdict == verdict
    assert len(result.reasons) == len(reasons), result.reasons
    for got, want in zip(result.reasons, reasons, strict=True):
        assert got.startswith(want)


def test_human_commits_are_not_verified() -> None:
    assert (
        verify_commit(BotIdentity(BOT), commit("bump backend to 6.1.1\n", author="pat", email="p@x")) is None
    )


def test_openpgp_key_ids_match_by_suffix() -> None:
    bot = BotIdentity(BOT, "0x1234ABCD", "openpgp")
    signed = RawCommit(
        "d" * 40, (), "gitcanary", BOT, T0, "gitcanary", BOT, PROMOTION[0], "G", "99991234ABCD", "", ""
    )
    other = RawCommit(
        "d" * 40, (), "gitcanary", BOT, T0, "gitcanary", BOT, PROMOTION[0], "G", "9999FFFFFFFF", "", ""
    )
    assert verify_commit(bot, signed).verdict == "ok"  # type: ignore[union-attr]
    assert verify_commit(bot, other).verdict == "FLAGGED"  # type: ignore[union-attr]


def test_actions_this_version_does_not_know_are_steps_not_outcomes() -> None:
    """A newer gitcanary (or a manual action) may write an action name this one does not know."""
    paused = PROMOTION[1].replace("Gitcanary-Action: advance", "Gitcanary-Action: pause")
    paused += "Gitcanary-Actor: Pat <pat@example.com>\n"
    steps, problems = parse_commits(one_per_commit([PROMOTION[0], paused]))
    (rollout,) = rollouts(steps)
    assert problems == [] and [s.action for s in rollout.steps] == ["start", "pause"]
    assert rollout.outcome is Outcome.IN_PROGRESS
    assert "pause by Pat <pat@example.com>" in rollout.involved and rollout.approvals == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "backend"], "no canary named backend in the repository"),
        (["history"], "name a canary (NAMESPACE/NAME), or pass --verify"),
        (["audit", "-o", "xml"], "-o xml: expected one of table, json, markdown, html"),
        (["audit", "--since", "soon"], "--since 'soon': expected e.g. 30d"),
        (["audit", "--repo", "{tmp}"], "not a Git repository"),
        (["audit", "--repo", "{tmp}/missing.git"], "cannot clone"),
    ],
)
def test_command_line_errors_say_what_is_wrong(args: list[str], message: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gitcanary.commands.cli import app

    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    if "--repo" not in argv:
        argv += ["--repo", str(tmp_path)]
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1 and message in result.stderr, result.stderr


def test_manual_requests_are_approvals_not_steps() -> None:
    """`gitcanary promote` commits a request (gitcanary.commands.manual); the reconciler honours it with the
    transition, which names the actor too. Requests move nothing, so they are no steps."""
    from gitcanary.git.trailers import format_message

    request = format_message(
        "gitcanary: request promote of prod/backend (by Pat)",
        ["Progressing at 10%, 6.1.0 -> 6.1.1", "the reconciler does it on its next tick"],
        {"Canary": "prod/backend", "Action": "manual-promote", "Actor": "Pat <pat@example.com>",
         "Rollout": "6.1.0..6.1.1/2026-11-21T23:00:00Z", "Phase": "Progressing"},
    )  # fmt: skip
    idle_pause = format_message(
        "gitcanary: pause prod/backend (by Pat)",
        ["spec.suspend: true (not initialized)"],
        {"Canary": "prod/backend", "Action": "manual-pause", "Actor": "Pat <pat@example.com>"},
    )
    steps, problems = parse_commits(one_per_commit([idle_pause, *PROMOTION[:2], request, *PROMOTION[2:]]))
    assert problems == []
    (rollout,) = rollouts(steps)
    assert [s.action for s in rollout.steps] == [
        "start",
        "advance",
        "advance",
        "promote",
        "finalize",
        "succeed",
    ]
    assert [r.action for r in rollout.requests] == ["manual-promote"]
    assert rollout.approvals[0] == "promote requested by Pat <pat@example.com>"
    assert rollout.to_json()["requests"][0]["actor"] == "Pat <pat@example.com>"
    verdict = verify_commit(BotIdentity(BOT), commit(request, author="Pat", email="pat@example.com"))
    assert verdict is not None and verdict.verdict == "manual by Pat <pat@example.com>, unsigned"


def _without_approvals(steps: list[Step]) -> list[dict[str, object]]:
    """Everything a step records but its commit, subject and approvals (checks, times, weights...)."""
    return [{**step.to_json(), "commit": None, "subject": None} for step in steps]


APPROVED = "Approved-by: alice\nApproved-by: bob"
GIT_SQUASH = "Squashed commit of the following:\n\n" + "\n\n".join(
    "commit 123\nAuthor: gitcanary <x>\nDate: now\n\n" + "\n".join(f"    {line}" for line in t.splitlines())
    for t in reversed(PROMOTION)
)
GITHUB_SQUASH = "Rollout prod/backend 6.1.0 -> 6.1.1 (#9)\n\n" + "\n\n".join(f"* {t}" for t in PROMOTION)
# Whose approvals each step names: a closing paragraph speaks for every step of the commit.
BOTH = ("alice (approved-by)", "bob (approved-by)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What the promotion gate's squash merge writes: every message as a bullet, then the trailers.
        (f"{GITHUB_SQUASH}\n\n{APPROVED}\n", [BOTH] * 6),
        # ...with the blank lines and spaces a person's editor may leave around them.
        (f"{GITHUB_SQUASH}\n\n\n  {APPROVED.replace(chr(10), chr(10) + '  ')}\n\n", [BOTH] * 6),
        (f"{GIT_SQUASH}\n\n{APPROVED}\n", [BOTH] * 6),
        # A gate PR holds one commit, the promotion: its squash is that one step, approved.
        (f"Rollout prod/backend 6.1.0 -> 6.1.1 (#9)\n\n* {PROMOTION[3]}\n{APPROVED}\n", [BOTH]),
        # Not approvals: other trailers, or a closing paragraph that is prose.
        (f"{GITHUB_SQUASH}\n\nSigned-off-by: alice <a@example.com>\n", [()] * 6),
        (f"{GITHUB_SQUASH}\n\nApproved by the release team (#ops-by: slack)\n", [()] * 6),
        # A step's own trailer (inside its block) is that step's only; the closing one everyone's.
        (
            GITHUB_SQUASH.replace(
                "Gitcanary-Action: promote\n", "Gitcanary-Action: promote\nReviewed-by: carol\n"
            )
            + f"\n\n{APPROVED}\n",
            [BOTH] * 3 + [("carol (reviewed-by)", *BOTH)] + [BOTH] * 2,
        ),
    ],
    ids=[
        "github-squash",
        "editor-spacing",
        "git-squash",
        "gate-one-step",
        "signed-off",
        "prose",
        "own-and-closing",
    ],
)
def test_a_squash_closing_with_approval_trailers(text: str, expected: list[tuple[str, ...]]) -> None:
    """The trailer paragraph closing a squash reaches every step, and leaves the last step whole."""
    steps, problems = parse_commits([commit(text)])
    assert problems == []
    assert [step.approvals for step in steps] == expected
    direct = parse_commits(one_per_commit(PROMOTION))[0]
    mine = {step.identity for step in steps}
    assert _without_approvals(steps) == _without_approvals([s for s in direct if s.identity in mine])
    (rollout,) = rollouts(steps)
    for approval in expected[-1]:
        assert approval in rollout.approvals
    if len(steps) == len(PROMOTION):  # the last step's trailers survived: the rollout is complete
        assert rollout.outcome is Outcome.PROMOTED and steps[-1].action == "succeed"


def test_a_merge_commits_approvals_reach_the_commits_it_brought_in() -> None:
    merged = replace(commit(PROMOTION[3]), merge_request="#9", merged_by="GitHub <x>", merge_approvals=BOTH)
    (step,) = parse_commits([merged])[0]
    assert step.approvals == BOTH and step.pull_request == "#9"
    (rollout,) = rollouts([step])
    assert rollout.approvals[:2] == list(BOTH)


def _person_commit(text: str, signature: str = "N") -> RawCommit:
    return RawCommit("d" * 40, (), "pat", "pat@example.com", T0, "pat", "pat@example.com", text, signature)


@pytest.mark.parametrize("signature", ["N", "G"])
def test_a_persons_init_and_manual_request_are_labelled_not_flagged(signature: str) -> None:
    """`gitcanary init` and `gitcanary promote` commit as the person: their commits, labelled as such."""
    init = (
        "gitcanary: initialize prod/backend: primary at 6.1.0\n\nPrimary created\n\n"
        "Gitcanary-Canary: prod/backend\nGitcanary-Action: initialize\nGitcanary-Rollout: 6.1.0/init\n"
        "Gitcanary-Phase: Initializing\nGitcanary-Weight: 0\nGitcanary-Failed-Checks: 0\n"
    )
    signed = "signed" if signature == "G" else "unsigned"
    for bot in (BotIdentity(BOT), BotIdentity(BOT, "~/.ssh/bot", "ssh")):
        verdict = verify_commit(bot, _person_commit(init, signature))
        assert verdict is not None and not verdict.flagged
        assert verdict.verdict == f"init by pat <pat@example.com>, {signed}"
    request = init.replace("Action: initialize", "Action: manual-promote") + f"Gitcanary-Actor: {PAT}\n"
    verdict = verify_commit(BotIdentity(BOT), _person_commit(request, signature))
    assert verdict is not None and verdict.verdict == f"manual by {PAT}, {signed}"
    # the same person's commit claiming a transition the bot makes is not theirs to make
    forged = init.replace("Action: initialize", "Action: succeed")
    verdict = verify_commit(BotIdentity(BOT), _person_commit(forged, signature))
    assert verdict is not None and verdict.flagged


def test_an_abort_after_halts_reads_as_the_abort() -> None:
    """The reason is the rollback's own: an abort is "aborted by ...", never "0 failed checks" nor an
    earlier halt's metric."""
    halt = message(Action.HALT, Phase.PROGRESSING, 10, 1, checks=(BAD,))
    abort = message(Action.ROLLBACK, Phase.FAILED, 0, 2).replace(
        "\nwhy\n", "\naborted by Pat <pat@example.com>\n"
    )
    steps, _ = parse_commits(one_per_commit([PROMOTION[0], halt, abort]))
    (rollout,) = rollouts(steps)
    assert rollout.outcome is Outcome.ROLLED_BACK
    assert rollout.reason == "aborted by Pat <pat@example.com>"
    # a rollback on failed metrics still names them
    failed = message(Action.ROLLBACK, Phase.FAILED, 0, 2, checks=(BAD,))
    (rollout,) = rollouts(parse_commits(one_per_commit([PROMOTION[0], halt, failed]))[0])
    assert rollout.reason == "request-success-rate 91.5 (min 99)"


def test_a_retry_is_credited_to_the_rollout_it_starts() -> None:
    from gitcanary.git.trailers import format_message

    rollback = message(Action.ROLLBACK, Phase.FAILED, 0, 1, checks=(BAD,))
    retry = format_message(
        "gitcanary: request retry of prod/backend (by Pat)",
        ["Failed, 6.1.0 -> 6.1.1"],
        {"Canary": "prod/backend", "Action": "manual-retry", "Actor": "Pat <pat@example.com>",
         "Rollout": "6.1.0..6.1.1/2026-11-21T23:00:00Z", "Phase": "Failed"},
    )  # fmt: skip
    again = message(Action.START, Phase.PROGRESSING, 0, 4, rollout="6.1.0..6.1.2")
    commits = [commit(PROMOTION[0]), commit(rollback, "b" * 40, minute=1)]
    commits += [
        commit(retry, "c" * 40, "Pat", "pat@example.com", minute=3),
        commit(again, "d" * 40, minute=4),
    ]
    first, second = rollouts(parse_commits(commits)[0])
    assert first.requests == [] and [r.action for r in second.requests] == ["manual-retry"]
    assert "retry requested by Pat <pat@example.com>" in second.involved
    assert second.approvals == []  # a retry is no approval


@pytest.mark.parametrize("width", [80, 100])
def test_history_and_verification_tables_fit_the_console_with_whole_headers(width: int) -> None:
    from rich.console import Console

    from gitcanary.audit import report

    halt = message(Action.HALT, Phase.PROGRESSING, 10, 1, checks=(BAD, SLOW))
    long_name = "a-rather-long-canary-name-for-a-service"
    steps, _ = parse_commits(
        one_per_commit(
            [
                *PROMOTION,
                message(
                    Action.START,
                    Phase.PROGRESSING,
                    0,
                    9,
                    rollout="6.1.1..6.1.2-rc.1+build.77",
                    name=long_name,
                ),
                halt,
            ]
        )
    )
    found = rollouts(steps)
    verdicts = [verify_commit(BotIdentity(BOT), c) for c in one_per_commit([*PROMOTION[:2]])]
    console = Console(width=width, record=True, color_system=None)
    console.print(report.history_table(found, [], [v for v in verdicts if v is not None], console.width))
    lines = console.export_text().splitlines()
    assert lines and max(len(line) for line in lines) <= width
    header = lines[0].split()
    assert header == ["CANARY", "REVISION", "STARTED", "OUTCOME", "MAX", "FAILED", "APPROVED", "COMMITS"]
    assert any(line.split() == ["COMMIT", "ACTION", "AUTHOR", "SIGNATURE", "VERDICT"] for line in lines)


GITLAB_MERGE = (
    "Merge branch 'gitcanary/prod/backend/promotion' into 'main'\n\nRollout prod/backend 6.1.0 -> 6.1.1"
    "\n\nSee merge request acme/platform/config!12\n\nApproved-by: alice\nApproved-by: bob\n"
)
GITEA_MERGE = (
    "Merge pull request 'Rollout prod/backend 6.1.0 -> 6.1.1' (#12) from gitcanary/prod/backend/promotion"
    " into main\n\nRollout prod/backend 6.1.0 -> 6.1.1\n\nApproved-by: alice\nApproved-by: bob\n"
)


@pytest.mark.parametrize(
    ("message", "reference"),
    [
        ("Merge pull request #12 from acme/gitcanary/prod/backend/promotion\n\nRollout", "#12"),
        ("Rollout prod/backend 6.1.0 -> 6.1.1 (#12)\n\n* step", "#12"),  # GitHub's or Gitea's squash
        ("Rollout prod/backend 6.1.0 -> 6.1.1 (!12)\n\n* step", "!12"),  # gitcanary's GitLab squash
        (GITLAB_MERGE, "!12"),
        (GITEA_MERGE, "#12"),
        # Not requests: a person's merge of branches, a reference quoted in a step's body.
        ("Merge branch 'hotfix' into 'main'\n\nno request here\n", ""),
        ("gitcanary: advance\n\nSee merge request acme/config!3\n", ""),
    ],
)
def test_each_forges_merge_names_its_request(message: str, reference: str) -> None:
    assert merged_request(message) == reference


@pytest.mark.parametrize("message", [GITLAB_MERGE, GITEA_MERGE], ids=["gitlab", "gitea"])
def test_gitlab_and_gitea_merge_commits_close_with_the_approvals(message: str) -> None:
    """The gate's merge on GitLab and Gitea: the approvals close the message, after the forge's lines."""
    assert closing_approvals(message) == BOTH
    merged = replace(
        commit(PROMOTION[3]),
        merge_request=merged_request(message),
        merged_by="x <x@example.com>",
        merge_approvals=closing_approvals(message),
    )
    (step,) = parse_commits([merged])[0]
    assert step.approvals == BOTH and step.pull_request in ("!12", "#12")
