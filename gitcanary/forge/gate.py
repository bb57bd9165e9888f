"""The promotion gate's PR body: one row per step of the rollout, rebuilt from Git each time.

Pure: the rows come from the commits' trailers and bodies (the same evidence `git log` shows), so
a restarted gitcanary writes the same body and nothing needs remembering between ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gitcanary.git.trailers import MalformedTrailers, parse_trailers

MARKER = "<!-- gitcanary:promotion-gate -->"
WAITING_FOR_APPROVAL = "analysis passed; **waiting for approval** to promote"
VERDICTS = {
    "start": "started",
    "restart": "restarted",
    "advance": "passed",
    "halt": "failed: halt",
    "rollback": "failed: rolled back",
    "promote": "passed: promotion",
    "cancel": "abandoned",
}


@dataclass(frozen=True)
class LoggedCommit:
    sha: str
    time: datetime
    message: str


@dataclass(frozen=True)
class Row:
    sha: str
    time: datetime
    action: str
    weight: str
    checks: dict[str, str]
    pending: bool = False  # the promotion commit this PR carries, not yet on the branch


def rows(commits: list[LoggedCommit], rollout_id: str, metrics: list[str]) -> list[Row]:
    """The rollout's step commits (oldest first) as table rows."""
    out = []
    for commit in commits:
        try:
            trailers = parse_trailers(commit.message)
        except MalformedTrailers:
            continue  # not a step gitcanary wrote: never shown as one
        if trailers.get("Rollout") != rollout_id or trailers.get("Action") == "update":
            continue
        checks: dict[str, str] = {}
        for line in commit.message.splitlines()[1:]:
            for name in metrics:
                if line.startswith(name + " "):
                    checks[name] = line[len(name) + 1 :].strip()
        out.append(
            Row(commit.sha, commit.time, trailers.get("Action", ""), trailers.get("Weight", ""), checks)
        )
    return out


def body(
    key: str,
    primary: str,
    canary: str,
    rollout_id: str,
    table: list[Row],
    metrics: list[str],
    web_url: str,
    status_line: str,
) -> str:
    lines = [
        f"gitcanary is rolling out **{key}** from `{primary}` to `{canary}` (rollout `{rollout_id}`).",
        "",
        f"**Approve this PR to promote `{canary}`** (gitcanary merges it once the promotion commit is here "
        f"and the checks have passed); **close it unmerged to roll back** to `{primary}`.",
        "",
        f"Status: {status_line}",
        "",
        "| time (UTC) | weight | " + " | ".join(metrics) + (" | " if metrics else "") + "verdict | commit |",
        "|---|---|" + "---|" * len(metrics) + "---|---|",
    ]
    for row in table:
        cells = [row.checks.get(name, "") for name in metrics]
        link = f"[`{row.sha[:8]}`]({web_url}/commit/{row.sha})"
        verdict = VERDICTS.get(row.action, row.action)
        if row.pending:
            verdict += " (in this PR)"
        when = row.time.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"| {when} | {row.weight}% | " + "".join(f"{c} | " for c in cells) + f"{verdict} | {link} |"
        )
    lines += ["", MARKER, ""]
    return "\n".join(lines)
