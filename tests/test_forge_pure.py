"""The pure parts of the forge edge: branch names, the gate body, the core's gate observation."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import NEW, ROLLOUT, T0, make_canary, rolling

from gitcanary.core.observations import Gate, Observation
from gitcanary.core.rollout import Action, decide
from gitcanary.errors import SpecError
from gitcanary.forge import gate, naming
from gitcanary.forge.secrets import Redactor, without_credentials
from gitcanary.git.trailers import format_message
from gitcanary.service.push_webhook import signature, verify
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus, Phase

LATER = T0 + timedelta(minutes=5)


def observe(gate_state: Gate | None, now: datetime = LATER) -> Observation:
    return Observation(now, NEW, "6.1.1", promotion_gate=gate_state)


@pytest.mark.parametrize(
    ("status", "gate_state", "action"),
    [
        (rolling(Phase.PROGRESSING, canaryWeight=30), Gate.REJECTED, Action.ROLLBACK),
        (rolling(Phase.PROGRESSING, canaryWeight=10), Gate.REJECTED, Action.ROLLBACK),
        # Not due for analysis yet: a closed gate still rolls back at once (nobody waits for a human no).
        (
            rolling(Phase.PROGRESSING, canaryWeight=10, lastTransitionTime=LATER),
            Gate.REJECTED,
            Action.ROLLBACK,
        ),
        (rolling(Phase.WAITING_PROMOTION, canaryWeight=30), Gate.REJECTED, Action.ROLLBACK),
        # An open gate changes nothing in the core: the promotion commit is routed to it by the edge.
        (rolling(Phase.PROGRESSING, canaryWeight=30), Gate.OPEN, Action.MEASURE),
        # Once promoting (the gate PR was merged), a gate state is irrelevant.
        (rolling(Phase.PROMOTING, canaryWeight=30), Gate.REJECTED, Action.FINALIZE),
    ],
)
def test_gate_observation(status: CanaryStatus, gate_state: Gate, action: Action) -> None:
    decision = decide(make_canary(), status, observe(gate_state))
    assert decision.action is action
    if action is Action.ROLLBACK:
        assert decision.status is not None and decision.status.phase is Phase.FAILED
        assert decision.revert_target and "promotion PR closed unmerged" in decision.reason


def valid_ref(name: str) -> bool:
    proc = subprocess.run(["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False)
    return proc.returncode == 0


def test_branch_names_are_valid_refs_and_ignore_time() -> None:
    trailers = {
        "Action": "advance",
        "Weight": "50",
        "Iterations": "0",
        "Failed-Checks": "1",
        "Revision": "6.1.0..6.1.1",
    }
    branch = naming.step_branch("prod/backend", trailers)
    assert branch == "gitcanary/prod/backend/advance-w50-i0-f1-6.1.0_6.1.1"
    gate_branch = naming.gate_branch("prod/backend", ROLLOUT)
    assert gate_branch.startswith("gitcanary/prod/backend/promotion-") and naming.is_gate_branch(gate_branch)
    odd = naming.step_branch("team a/back:end", {"Action": "start", "Revision": "v1..v2~rc^1"})
    for name in (branch, gate_branch, odd):
        assert valid_ref(name), name
    assert naming.gate_title("prod/backend", "6.1.0", "6.1.1") == "Rollout prod/backend 6.1.0 -> 6.1.1"


def with_annotations(**annotations: str) -> Canary:
    canary = make_canary()
    meta = canary.metadata.model_copy(update={"annotations": annotations})
    return canary.model_copy(update={"metadata": meta})


def test_annotations_override_the_repository_setting() -> None:
    assert naming.write_mode(with_annotations(), "apps/c.yaml", "direct") == "direct"
    pr = with_annotations(**{"gitcanary.io/write-mode": "pull-request"})
    assert naming.write_mode(pr, "apps/c.yaml", "direct") == "pull-request"
    assert naming.gated(with_annotations(**{"gitcanary.io/promotion-gate": "true"}), False)
    assert not naming.gated(with_annotations(**{"gitcanary.io/promotion-gate": "false"}), True)
    bad = with_annotations(**{"gitcanary.io/write-mode": "pr"})
    with pytest.raises(SpecError) as raised:
        naming.write_mode(bad, "apps/backend/canary.yaml#0", "direct")
    assert str(raised.value).startswith(
        "apps/backend/canary.yaml: metadata.annotations[gitcanary.io/write-mode]"
    )


def test_gate_body_has_a_row_per_step_with_metrics_and_links() -> None:
    def commit(sha: str, minute: int, action: str, weight: int, *checks: str) -> gate.LoggedCommit:
        message = format_message(
            f"gitcanary: {action} prod/backend",
            [action, *checks],
            {"Canary": "prod/backend", "Action": action, "Rollout": ROLLOUT, "Weight": weight},
        )
        return gate.LoggedCommit(sha, datetime(2026, 11, 1, 12, minute, tzinfo=UTC), message)

    log = [
        commit("a" * 40, 0, "start", 0),
        commit(
            "b" * 40,
            1,
            "advance",
            25,
            "request-success-rate 99.9 >= 99 ok",
            "request-duration 120ms <= 500ms ok",
        ),
        commit(
            "c" * 40,
            2,
            "halt",
            25,
            "request-success-rate 97.1 < 99 failed",
            "request-duration 130ms <= 500ms ok",
        ),
    ]
    rows = gate.rows(log, ROLLOUT)
    view = gate.View(
        key="prod/backend",
        primary="6.1.0",
        canary="6.1.1",
        rollout_id=ROLLOUT,
        state=gate.State.HALTED,
        rows=rows,
        metrics=[
            gate.Metric("request-success-rate", "1m", 99),
            gate.Metric("request-duration", "1m", None, 500),
        ],
        web_url="https://gh/acme/config",
        now=datetime(2026, 11, 1, 12, 5, tzinfo=UTC),
    )
    text = gate.body(view)
    header = "| UTC | at | requests | success-rate<br>≥99% | duration<br>≤500ms | result | step |"
    assert header in text
    # Checks measured at the weight before the step they decided (25% -> the halt at 25%); these
    # commits count no requests (no Gitcanary-Requests): n/a.
    assert "| 11-01<br>12:01 | 0% | n/a | 99.9% ✅ | 120ms ✅ | → 25% |" in text
    assert "| 11-01<br>12:02 | 25% | n/a | 97.1% ❌ | 130ms ✅ | halt |" in text
    assert "| 11-01<br>12:00 | 0% | – | not measured | – | started |" in text
    assert f"[`ccccccc`](https://gh/acme/config/commit/{'c' * 40})" in text
    assert gate.rows(log, "another-rollout") == []


def test_redaction_and_signatures() -> None:
    redact = Redactor("ghp_abcdef123456")
    assert redact("token ghp_abcdef123456 refused") == "token *** refused"
    url = "push to https://x-access-token:ghs_abc@github.com/acme/config.git failed"
    assert without_credentials(url) == "push to https://***@github.com/acme/config.git failed"
    body = b'{"zen": "Keep it logically awesome."}'
    assert verify(b"secret", body, signature(b"secret", body))
    assert not verify(b"secret", body, None)
    assert not verify(b"secret", body, signature(b"other", body))
    assert not verify(b"", body, signature(b"", body))  # no secret configured: nothing verifies


def test_settings_errors_name_the_flag(tmp_path: Path) -> None:
    from gitcanary.forge.base import ForgeError
    from gitcanary.git.workspace import Workspace
    from gitcanary.service.forge_setup import publisher_for, webhook_secret
    from gitcanary.service.settings import Settings

    workspace = Workspace(str(tmp_path / "remote.git"), "main", tmp_path / "work")
    direct = Settings(repo="r", github_token=None)
    assert publisher_for(direct, workspace) is None  # no forge configured: direct pushes as before
    for bad, flag in (
        ({"write_mode": "pull-request"}, "--github-repo"),
        ({"promotion_gate": True}, "--github-repo"),
        ({"write_mode": "pr"}, "--write-mode 'pr'"),
        ({"merge_method": "fast-forward"}, "--merge-method 'fast-forward'"),
        ({"promotion_gate": True, "github_repo": "a/b", "reviewers": "al ice?"}, "--reviewers ice\\?"),
        ({"promotion_gate": True, "github_repo": "a/b", "release_notes": "app"}, "--release-notes 'app'"),
    ):
        with pytest.raises(ForgeError, match=flag):
            publisher_for(Settings(repo="r", **bad), workspace)
    # The gate's flags reach the publisher (GITCANARY_* as the other settings).
    gated = Settings(
        repo="r",
        github_repo="acme/config",
        github_token="t",
        promotion_gate=True,
        reviewers="alice, team:platform @acme/sre",
        metric_link="https://grafana.example/explore?query={query}",
        release_notes="ghcr.io/acme/app=acme/app,sidecar=acme/proxy",
    )
    publisher = publisher_for(gated, workspace)
    assert publisher is not None
    assert publisher.settings.reviewers == ("alice", "team:platform", "@acme/sre")
    assert publisher.settings.metric_link == "https://grafana.example/explore?query={query}"
    assert publisher.settings.release_notes == (("ghcr.io/acme/app", "acme/app"), ("sidecar", "acme/proxy"))
    missing = tmp_path / "no-such-secret"
    with pytest.raises(ForgeError, match="webhook secret: cannot read .*no-such-secret"):
        webhook_secret(Settings(repo="r", webhook_secret_file=missing))
    (tmp_path / "secret").write_text("s3cret\n")
    assert webhook_secret(Settings(repo="r", webhook_secret_file=tmp_path / "secret")) == "s3cret"


owner_part = st.text("abcAB-.1", min_size=1, max_size=4).filter(lambda p: p[0].isalnum())


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(owner_part, min_size=2, max_size=4).map("/".join),
    st.lists(st.lists(owner_part, min_size=1, max_size=3).map("/".join), max_size=3).map(tuple),
)
def test_release_notes_are_read_only_from_allowed_owners_or_repositories(
    repo: str, allowed: tuple[str, ...]
) -> None:
    """`gitcanary.io/source-repo` (repository content) names a repository the gate reads only when
    the operator's list (default: the config repository's owner) holds it or an owner above it."""
    segments = repo.lower().split("/")
    expected = naming.valid_repo(repo) and any(
        segments[: a.count("/") + 1] == a.lower().split("/") for a in allowed
    )
    assert naming.may_read(repo, allowed) is expected
    assert not naming.may_read(repo, ())


def test_an_owner_allows_its_repositories_and_no_lookalike() -> None:
    assert naming.may_read("ACME/app", ("acme",)) and naming.may_read("acme/team/app", ("acme",))
    assert not naming.may_read("acme-evil/app", ("acme",)) and not naming.may_read("acme", ("acme",))
    assert naming.may_read("other/app", ("acme", "other/app")) and not naming.may_read(
        "other/x", ("other/app",)
    )


def test_a_gate_without_metrics_says_every_step_passed_unmeasured() -> None:
    view = gate.View(
        key="prod/backend",
        primary="6.1.0",
        canary="6.1.1",
        rollout_id="6.1.0..6.1.1",
        state=gate.State.WAITING,
        rows=[gate.Row("a" * 40, datetime(2026, 11, 1, tzinfo=UTC), "advance", "50", "0")],
        metrics=[],
        web_url="https://forge.example/acme/config",
        now=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert "**No metrics**" in gate.body(view)
    measured = gate.View(**{**view.__dict__, "metrics": [gate.Metric("request-success-rate")]})
    assert "**No metrics**" not in gate.body(measured)
