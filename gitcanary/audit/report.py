"""`history` and `audit` as a rich table, JSON, Markdown, or a self-contained HTML page."""

from __future__ import annotations

import json
from datetime import timedelta
from html import escape

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gitcanary.audit.chart import render_svg
from gitcanary.audit.model import Audit, Outcome, Rollout
from gitcanary.audit.parse import Problem, iso
from gitcanary.audit.verify import Verdict

FORMATS = ("table", "json", "markdown", "html")
_OUTCOME_STYLE = {
    Outcome.PROMOTED: "green",
    Outcome.ROLLED_BACK: "red",
    Outcome.SUPERSEDED: "yellow",
    Outcome.CANCELLED: "yellow",
    Outcome.IN_PROGRESS: "cyan",
}


def human_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _failed(rollout: Rollout) -> str:
    return (
        rollout.reason
        if rollout.outcome is Outcome.ROLLED_BACK
        else "; ".join(dict.fromkeys(check.text for _step, check in rollout.failed_checks))
    )


def _row(rollout: Rollout) -> list[str]:
    return [
        rollout.canary,
        f"{rollout.from_revision} -> {rollout.to_revision}",
        iso(rollout.started),
        iso(rollout.ended) if rollout.ended else "-",
        human_duration(rollout.duration),
        rollout.outcome.value
        + (f" by {rollout.superseded_by.split('/')[0]}" if rollout.superseded_by else ""),
        f"{rollout.max_weight}%",
        _failed(rollout) or "-",
        "; ".join(
            part
            for part in (
                ", ".join(rollout.approvals),
                "rejected by " + ", ".join(r.removesuffix(" (rejected-by)") for r in rollout.rejections)
                if rollout.rejections
                else "",
                "objected by " + ", ".join(o.removesuffix(" (objected-by)") for o in rollout.objections)
                if rollout.objections
                else "",
            )
            if part
        )
        or "-",
        rollout.commit_range,
    ]


HEADERS = ["CANARY", "REVISION", "STARTED", "ENDED", "DURATION", "OUTCOME", "MAX WEIGHT", "FAILED CHECKS",
           "APPROVED", "COMMITS"]  # fmt: skip


def _flagged_commits(verdicts: list[Verdict] | None) -> set[str]:
    return {v.commit for v in verdicts or [] if v.flagged}


# -- history ---------------------------------------------------------------------------------


# Below this width the history shows fewer, shorter columns (every header still whole): kubectl's way.
WIDE_ENOUGH = 160
_COMPACT = {
    "CANARY": "CANARY",
    "REVISION": "REVISION",
    "STARTED": "STARTED",
    "OUTCOME": "OUTCOME",
    "MAX WEIGHT": "MAX",
    "FAILED CHECKS": "FAILED",
    "APPROVED": "APPROVED",
    "COMMITS": "COMMITS",
}


def new_table(headers: list[str], **options: object) -> Table:
    """A table whose cells wrap (fold) and whose headers never do: each column is at least its header."""
    table = Table(box=None, header_style="bold", **options)  # type: ignore[arg-type]
    for header in headers:
        table.add_column(header, overflow="fold", min_width=len(header))
    return table


def history_table(
    rollouts: list[Rollout], problems: list[Problem], verdicts: list[Verdict] | None, width: int | None = None
) -> RenderableType:
    """The history; on a console narrower than WIDE_ENOUGH, the compact columns (fits 80)."""
    compact = width is not None and width < WIDE_ENOUGH
    chosen = [h for h in HEADERS if h in _COMPACT] if compact else HEADERS
    table = new_table([_COMPACT[h] for h in chosen] if compact else HEADERS)
    flagged = _flagged_commits(verdicts)
    for rollout in rollouts:
        full: list[str | Text] = list(_row(rollout))
        full[5] = Text(str(full[5]), style=_OUTCOME_STYLE[rollout.outcome])
        if flagged & set(rollout.commits):
            full[9] = Text(f"{full[9]} UNVERIFIED", style="bold red")
        if compact:
            full[2] = iso(rollout.started).replace("T", " ").removesuffix("Z")[:16]
        table.add_row(*[cell for header, cell in zip(HEADERS, full, strict=True) if header in chosen])
    parts: list[RenderableType] = [table]
    if verdicts is not None:
        parts.append(verdict_table(verdicts))
    parts += [Text(f"skipped {p}", style="yellow") for p in problems]
    return Group(*parts)


def verdict_table(verdicts: list[Verdict]) -> RenderableType:
    table = new_table(
        ["COMMIT", "ACTION", "AUTHOR", "SIGNATURE", "VERDICT"], title="verification", title_justify="left"
    )
    for verdict in verdicts:
        shown = verdict.verdict + (": " + "; ".join(verdict.reasons) if verdict.reasons else "")
        table.add_row(
            verdict.commit[:12],
            ",".join(verdict.actions),
            verdict.author,
            verdict.signature,
            Text(shown, style="bold red" if verdict.flagged else "green"),
        )
    return table


def history_json(
    canary: str | None, rollouts: list[Rollout], problems: list[Problem], verdicts: list[Verdict] | None
) -> str:
    body: dict[str, object] = {
        "canary": canary,
        "rollouts": [r.to_json() for r in rollouts],
        "problems": [{"commit": p.commit, "subject": p.subject, "message": p.message} for p in problems],
    }
    if verdicts is not None:
        body["verification"] = [v.to_json() for v in verdicts]
    return json.dumps(body, indent=2)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def history_markdown(
    canary: str | None, rollouts: list[Rollout], problems: list[Problem], verdicts: list[Verdict] | None
) -> str:
    lines = [f"# Rollouts of {canary}" if canary else "# Rollouts", ""]
    lines += _md_table(HEADERS, [_row(r) for r in rollouts]) if rollouts else ["No rollouts."]
    lines += _md_verdicts(verdicts) + _md_problems(problems)
    return "\n".join(lines) + "\n"


_VERDICT_COLUMNS = ["commit", "action", "author", "signature", "verdict", "why"]


def _verdict_rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [
        [v.commit[:12], ",".join(v.actions), v.author, v.signature, v.verdict, "; ".join(v.reasons)]
        for v in verdicts
    ]


def _md_verdicts(verdicts: list[Verdict] | None) -> list[str]:
    if verdicts is None:
        return []
    return [
        "",
        "## Verification",
        "",
        *_md_table(_VERDICT_COLUMNS, _verdict_rows(verdicts)),
    ]


def _md_problems(problems: list[Problem]) -> list[str]:
    if not problems:
        return []
    return [
        "",
        "## Skipped commits",
        "",
        *[f"- `{p.commit[:12]}` {_md_cell(p.subject)}: {p.message}" for p in problems],
    ]


# -- audit -----------------------------------------------------------------------------------


def _rate(audit: Audit) -> str:
    rate = audit.success_rate
    return "-" if rate is None else f"{rate:.0%}"


def _summary_rows(audit: Audit) -> list[list[str]]:
    return [
        ["rollouts", str(len(audit.rollouts))],
        ["promoted", str(len(audit.promoted))],
        ["rolled back", str(len(audit.rolled_back))],
        ["still open", str(len(audit.open))],
        ["success rate (promoted / promoted + rolled back)", _rate(audit)],
        ["median time to promote", human_duration(audit.median_time_to_promote)],
    ]


_CANARY_HEADERS = ["CANARY", "ROLLOUTS", "PROMOTED", "ROLLED BACK", "SUPERSEDED", "CANCELLED", "OPEN"]


def _canary_rows(audit: Audit) -> list[list[str]]:
    return [
        [
            s.canary,
            *map(str, (s.rollouts, s.promoted, s.rolled_back, s.superseded, s.cancelled, s.in_progress)),
        ]
        for s in audit.per_canary
    ]


def _rollback_rows(audit: Audit) -> list[list[str]]:
    return [
        [r.canary, f"{r.from_revision} -> {r.to_revision}", iso(r.ended) if r.ended else "-", r.reason or "-"]
        for r in audit.rolled_back
    ]


def _open_rows(audit: Audit) -> list[list[str]]:
    return [
        [
            r.canary,
            f"{r.from_revision} -> {r.to_revision}",
            iso(r.started),
            r.steps[-1].phase,
            f"{r.steps[-1].weight}%",
        ]
        for r in audit.open
    ]


def audit_table(audit: Audit) -> RenderableType:
    def table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
        result = new_table(headers, title=title, title_justify="left", title_style="bold")
        for row in rows:
            result.add_row(*row)
        return result

    window = f"since {iso(audit.since)}" if audit.since else "all history"
    parts: list[RenderableType] = [
        table(f"audit ({window})", ["", ""], _summary_rows(audit)),
        table("per canary", _CANARY_HEADERS, _canary_rows(audit)),
    ]
    if audit.rolled_back:
        parts.append(table("rollbacks", ["CANARY", "REVISION", "ENDED", "REASON"], _rollback_rows(audit)))
    if audit.open:
        parts.append(
            table("open rollouts", ["CANARY", "REVISION", "STARTED", "PHASE", "WEIGHT"], _open_rows(audit))
        )
    parts += [Text(f"skipped {p}", style="yellow") for p in audit.problems]
    return Group(*parts)


def audit_json(audit: Audit) -> str:
    return json.dumps(audit.to_json(), indent=2)


def audit_markdown(audit: Audit) -> str:
    window = f"since {iso(audit.since)}" if audit.since else "all history"
    lines = [f"# Rollout audit ({window})", ""]
    lines += _md_table(["", ""], _summary_rows(audit))
    lines += ["", "## Per canary", "", *_md_table(_CANARY_HEADERS, _canary_rows(audit))]
    if audit.rolled_back:
        lines += [
            "",
            "## Rollbacks",
            "",
            *_md_table(["canary", "revision", "ended", "reason"], _rollback_rows(audit)),
        ]
    if audit.open:
        lines += [
            "",
            "## Open rollouts",
            "",
            *_md_table(["canary", "revision", "started", "phase", "weight"], _open_rows(audit)),
        ]
    lines += ["", "## Rollouts", "", *_md_table(HEADERS, [_row(r) for r in audit.rollouts])]
    lines += _md_problems(audit.problems)
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; font-size: 13px; vertical-align: top; }
th { background: #f3f3f3; }
section.rollout { border-top: 1px solid #ccc; margin-top: 1.5em; padding-top: 0.5em; }
.promoted { color: #2e7d32; } .rolled-back { color: #c62828; } .flagged { color: #c62828; font-weight: bold; }
code { font-size: 12px; }
"""


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_rollout(rollout: Rollout, flagged: set[str]) -> str:
    steps = [
        [
            iso(step.time),
            step.action,
            step.phase,
            f"{step.weight}%",
            "; ".join(f"{c.text} {c.word}" for c in step.checks) or "-",
            step.commit[:12] + (" UNVERIFIED" if step.commit in flagged else ""),
        ]
        for step in rollout.steps
    ]
    outcome_class = rollout.outcome.value.replace(" ", "-")
    return (
        f'<section class="rollout"><h3>{escape(rollout.canary)} {escape(rollout.from_revision)} &rarr; '
        f"{escape(rollout.to_revision)}: "
        f'<span class="{outcome_class}">{escape(rollout.outcome.value)}</span></h3>'
        + _html_table(HEADERS, [_row(rollout)])
        + render_svg(rollout)
        + "<details><summary>steps</summary>"
        + _html_table(["time", "action", "phase", "weight", "checks", "commit"], steps)
        + "</details></section>"
    )


def _page(title: str, sections: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>" + "\n".join(sections) + "</body></html>\n"
    )


def _html_problems(problems: list[Problem]) -> list[str]:
    if not problems:
        return []
    rows = [[p.commit[:12], p.subject, p.message] for p in problems]
    return ["<h2>Skipped commits</h2>", _html_table(["commit", "subject", "why"], rows)]


def _html_verdicts(verdicts: list[Verdict] | None) -> list[str]:
    if verdicts is None:
        return []
    return ["<h2>Verification</h2>", _html_table(_VERDICT_COLUMNS, _verdict_rows(verdicts))]


def audit_html(audit: Audit, verdicts: list[Verdict] | None = None) -> str:
    window = f"since {iso(audit.since)}" if audit.since else "all history"
    flagged = _flagged_commits(verdicts)
    sections = [
        _html_table(["", ""], _summary_rows(audit)),
        "<h2>Per canary</h2>",
        _html_table(_CANARY_HEADERS, _canary_rows(audit)),
    ]
    if audit.rolled_back:
        sections += [
            "<h2>Rollbacks</h2>",
            _html_table(["canary", "revision", "ended", "reason"], _rollback_rows(audit)),
        ]
    if audit.open:
        sections += [
            "<h2>Open rollouts</h2>",
            _html_table(["canary", "revision", "started", "phase", "weight"], _open_rows(audit)),
        ]
    sections += _html_verdicts(verdicts) + _html_problems(audit.problems)
    sections += ["<h2>Rollouts</h2>", *[_html_rollout(r, flagged) for r in reversed(audit.rollouts)]]
    return _page(f"gitcanary rollout audit ({window})", sections)


def history_html(
    canary: str | None, rollouts: list[Rollout], problems: list[Problem], verdicts: list[Verdict] | None
) -> str:
    flagged = _flagged_commits(verdicts)
    sections = [
        *_html_verdicts(verdicts),
        *_html_problems(problems),
        *[_html_rollout(r, flagged) for r in rollouts],
    ]
    return _page(f"gitcanary history of {canary}" if canary else "gitcanary history", sections)
