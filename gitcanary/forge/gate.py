"""The promotion gate's PR body: what changes, what each button does, and the evidence, from Git.

Pure: everything comes from the rollout's commits (trailers and bodies, the same evidence
`git log` shows), the gate branch and what the forge says about approvals, so a restarted
gitcanary writes the same body and nothing needs remembering between ticks.

The body is rewritten on every tick; its first line names the state (also the PR's label), so a
reviewer never reads "waiting for approval" over a halt, or "approve" on a PR that was merged.
Rows are kept narrow enough for GitHub's PR column (see `MAX_ROW_CHARS`): diagnostics become
footnotes and thresholds go into the column header instead of into every cell.
"""

from __future__ import annotations

import difflib
import functools
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gitcanary.duration import parse_duration
from gitcanary.forge import markdown as md
from gitcanary.forge.secrets import without_credentials
from gitcanary.git.checks import Check, parse_check_line, parse_check_trailer
from gitcanary.git.trailers import PREFIX, MalformedTrailers, parse_trailers
from gitcanary.manifests.config_writeback import ConfigDiff
from gitcanary.redaction import redact

MARKER = "<!-- gitcanary:promotion-gate -->"
COMMENT_MARKER = "<!-- gitcanary:gate-comment -->"  # tells gitcanary's own comments from people's
LABEL_PREFIX = "gitcanary: "
STEP_LABEL = LABEL_PREFIX + "step"
# GitHub's PR conversation column is 780px wide at the default 14px text: about 95 characters of
# proportional text (8.2px a character on average) before a table row wraps. A row's visible
# text (cells without link targets and Markdown punctuation, plus 2 characters of padding per
# cell) above this wraps in the browser.
MAX_ROW_CHARS = 95
DEFAULT_WINDOW = "1m"  # Flagger's default metric interval
# A release's text in the body: a few lines of words, enough to see what changed; the link has the rest.
EXCERPT_LINES = 4
EXCERPT_CHARS = 280
# A config value diff: lines cut to fit GitHub's column, a bounded number per key and per object.
CONFIG_LINE_CHARS = 90
CONFIG_KEY_LINES = 20
CONFIG_OBJECT_LINES = 60
CONFIG_NAME_CHARS = 60
UNITS = {"request-success-rate": "%", "request-duration": "ms"}


class State(StrEnum):
    """Where the rollout stands, as the PR's label and first line say."""

    ANALYSING = "analysing"
    HALTED = "halted"
    WAITING = "waiting for approval"
    APPROVED = "approved"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"

    @property
    def label(self) -> str:
        return LABEL_PREFIX + self.value

    @property
    def final(self) -> bool:
        return self in (State.PROMOTED, State.ROLLED_BACK, State.REJECTED, State.SUPERSEDED)

    @property
    def needs_a_person(self) -> bool:
        """A state change a reviewer should hear about (a comment, not only a body edit)."""
        return self in (State.WAITING, State.HALTED, State.ROLLED_BACK, State.SUPERSEDED)


HEADLINES = {
    State.ANALYSING: "⏳ **Analysing**: gitcanary is measuring the canary; nothing to approve yet.",
    State.HALTED: "⚠️ **Halted**: the last analysis failed; gitcanary measures again next interval.",
    State.WAITING: "✋ **Waiting for approval**: the analysis passed and the promotion commit is here.",
    State.APPROVED: "👍 **Approved**: gitcanary merges this PR on its next tick.",
    State.PROMOTED: "✅ **Promoted**",
    State.ROLLED_BACK: "↩️ **Rolled back** by the analysis",
    State.REJECTED: "🛑 **Rejected**",
    State.SUPERSEDED: "⏭️ **Superseded** by a newer revision",
}

# What `gitcanary status` looks for in an open gate's body (commands/pr_status.py).
WAITING_FOR_APPROVAL = HEADLINES[State.WAITING]


@dataclass(frozen=True)
class LoggedCommit:
    sha: str
    time: datetime  # commit time: only for commits without `Gitcanary-Time`
    message: str


@dataclass(frozen=True)
class Change:
    """One image change of the rollout, as the start commit names it."""

    container: str
    old: str
    new: str
    where: str  # file and field, e.g. `apps/backend/kustomization.yaml images[0].newTag`
    bumped_by: str = ""
    bump_url: str = ""  # the commit that made the change
    source: str = ""  # the image's source repository on the forge, where release notes were looked for
    notes_url: str = ""  # the release of the new tag there; "" when none was found
    notes: str = ""  # that release's text, untrusted: rendered only through `excerpt`
    refused: bool = False  # `source` is not a repository the operator lets the gate read


@dataclass(frozen=True)
class Row:
    """One step of the rollout; `checks` are the analysis that decided it (measured at `measured_at`)."""

    sha: str
    time: datetime  # when the step was decided (`Gitcanary-Time`)
    action: str
    weight: str
    measured_at: str  # the weight the canary had while it was measured (the step before)
    checks: tuple[Check, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)  # metric -> diagnostic
    # `Gitcanary-Requests`: "canary=N primary=M" served over the window, "n/a" where the provider
    # has no request-rate query; "" on commits without it.
    requests: str = ""
    primary: dict[str, str] = field(default_factory=dict)  # `Gitcanary-Primary`: metric -> value
    pending: bool = False  # the promotion commit this PR carries, not yet on the branch
    withdrawn: bool = False  # a promotion this PR carried, stale after a halt landed
    url: str = ""  # the step PR, else the commit


@dataclass(frozen=True)
class Metric:
    name: str
    window: str = DEFAULT_WINDOW
    min: float | None = None
    max: float | None = None
    link: str = ""  # a URL template: {metric} {query} {namespace} {name} {start} {end}
    query: str = ""  # the metric's query as gitcanary sends it, for {query}; "" when not known

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "")

    @property
    def header(self) -> str:
        """`success-rate<br>≥99%`: the name and below it its threshold, once instead of in every
        cell (the window goes in the legend under the table). Stacked because a header is often
        its column's widest cell: GitHub's 780 px column has no room for both on one line."""
        bound = ""
        if self.min is not None and self.max is not None:
            bound = f" {_num(self.min)}–{_num(self.max)}{self.unit}"
        elif self.min is not None:
            bound = f" ≥{_num(self.min)}{self.unit}"
        elif self.max is not None:
            bound = f" ≤{_num(self.max)}{self.unit}"
        return f"{md.text(_short(self.name))}{BR if bound else ''}{bound.strip()}"


@dataclass(frozen=True)
class Approval:
    login: str
    sha: str  # the commit the review approved
    counts: bool
    why: str = ""  # why it does not count


@dataclass(frozen=True)
class View:
    """Everything one body shows; built by the publisher from Git and the forge."""

    key: str
    primary: str
    canary: str
    rollout_id: str
    state: State
    rows: Sequence[Row]
    metrics: Sequence[Metric]
    web_url: str
    now: datetime
    changes: Sequence[Change] = ()
    spec_diff: str = ""
    configs: Sequence[ConfigDiff] = ()  # tracked ConfigMaps and Secrets that change
    config_notes: Sequence[str] = ()  # the start commit's config lines, when no diff can be shown
    status_message: str = ""
    approvals: Sequence[Approval] = ()
    # Standing change requests by writers (login, their review's text): each blocks the promotion.
    objections: Sequence[tuple[str, str]] = ()
    head_sha: str = ""  # the promotion commit an approval must name
    decided_by: str = ""  # final states: who decided
    reason: str = ""  # rejected / rolled back: why
    results: Sequence[tuple[str, str]] = ()  # final states: (label, url) of the resulting commits
    superseded_by: str = ""  # the newer revision
    namespace: str = ""
    name: str = ""
    # Where a commit's page is: REPO/commit (GitHub, Gitea), REPO/-/commit (GitLab); "" = the former.
    commit_base: str = ""


def rows(commits: list[LoggedCommit], rollout_id: str, metrics: Sequence[str] = ()) -> list[Row]:
    """The rollout's step commits (oldest first) as rows; `metrics` is kept for older callers."""
    out: list[Row] = []
    previous = "0"
    for commit in commits:
        try:
            trailers = parse_trailers(commit.message)
        except MalformedTrailers:
            continue  # not a step gitcanary wrote: never shown as one
        action = trailers.get("Action", "")
        if trailers.get("Rollout") != rollout_id or action in ("update", "gate", ""):
            continue
        checks, notes = checks_of(commit.message)
        weight = trailers.get("Weight", "")
        out.append(
            Row(
                commit.sha,
                decided_at(trailers, commit.time),
                action,
                weight,
                previous,
                checks,
                notes,
                trailers.get("Requests", ""),
                _pairs(trailers.get("Primary", "")),
            )
        )
        previous = weight or previous
    return out


def _pairs(text: str) -> dict[str, str]:
    """`a=1 b=none` -> {"a": "1", "b": "none"}; anything else in it is left out."""
    return dict(
        (key, value)
        for key, sep, value in (token.partition("=") for token in text.split())
        if sep and re.fullmatch(r"none|-?\d+(\.\d+)?(e[-+]?\d+)?", value)
    )


def decided_at(trailers: dict[str, str], fallback: datetime) -> datetime:
    raw = trailers.get("Time")
    if raw:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return fallback.astimezone(UTC)


def checks_of(message: str) -> tuple[tuple[Check, ...], dict[str, str]]:
    """The checks of one commit (its `Gitcanary-Check` trailers, else its human lines), and each
    check's diagnostic (the parenthesised note its human line ends with)."""
    found: list[Check] = []
    notes: dict[str, str] = {}
    for line in message.splitlines():
        text = line.strip()
        if text.startswith(PREFIX + "Check:"):
            try:
                found.append(parse_check_trailer(text.split(":", 1)[1].strip()))
            except ValueError:
                continue
    lines = [line.strip() for line in message.splitlines()[1:]]
    if not found:
        found = [c for c in (parse_check_line(line) for line in lines) if c is not None]
    names = {c.name for c in found}
    for text in lines:
        name = text.split(" ", 1)[0]
        if name in names and text.endswith(")") and " (" in text:
            notes[name] = text[text.index(" (") + 2 : -1]
    return tuple(found), notes


def _num(value: float) -> str:
    """Four significant digits below a thousand (`99.95`, `0.4`), then three and a suffix
    (`12.3k`, `1.24M`): never an exponent a reviewer has to decode, and narrow enough for the
    table (`12345.678` was `1.235e+04`)."""
    if abs(value) < 999.95:
        return f"{value:.4g}"
    for limit, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        scaled = float(f"{value / limit:.3g}")
        if abs(scaled) < 1000:
            return f"{scaled:g}{suffix}"
    return f"{value / 1e12:.0f}T"


def _short(name: str) -> str:
    """`request-success-rate` -> `success-rate`: narrower headers for the two builtins."""
    return name.removeprefix("request-")


# A cell's second line: what the first one is compared with. A browser sizes a column by its
# widest line, so stacking keeps rows within `MAX_ROW_CHARS` (rows are two lines, not six).
BR = "<br>"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(f"%m-%d{BR}%H:%M")


def _link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url else text


def _code_link(sha: str, url: str) -> str:
    return _link(f"`{sha[:7]}`", url)


VERDICTS = {
    "start": "started",
    "restart": "restarted",
    "advance": "→ {weight}%",
    "halt": "halt",
    "rollback": "rollback",
    "promote": "promote",
    "cancel": "abandoned",
    "wait": "wait",
}


def _verdict(row: Row) -> str:
    verdict = VERDICTS.get(row.action)
    text = verdict.format(weight=md.text(row.weight)) if verdict else md.text(row.action)
    if row.withdrawn:
        return "withdrawn"
    if row.pending:
        return f"{text}{BR}(here)"
    return text


def _cell(check: Check | None, metric: Metric, footnote: str, primary: str = "") -> str:
    """`99.9% ✅<br>vs 99.8`: the canary's value, its verdict, and below it the primary's where
    measured (the compare judge's, else the one measured beside the threshold judge's)."""
    if check is None:
        return "–"
    if check.value is None:
        return f"no data ❌{footnote}"
    mark = "✅" if check.ok else "❌"
    value = f"{_num(check.value)}{metric.unit} {mark}{footnote}"
    if check.primary is not None:
        return f"{value}{BR}vs {_num(check.primary)}{metric.unit}"
    if primary and primary != "none":
        return f"{value}{BR}vs {_num(float(primary))}{metric.unit}"
    return value


def _requests(row: Row) -> str:
    """`1.2k<br>vs 4.8k` (the canary's, then the primary's), `n/a` where the provider cannot
    count, `–` for a step not measured."""
    if not row.checks:
        return "–"
    counts = _pairs(row.requests)
    if not counts:
        return "n/a"
    canary, primary = (_count(counts.get(side, "none")) for side in ("canary", "primary"))
    return f"{canary}{BR}vs {primary}"


def _count(text: str) -> str:
    if text == "none":
        return "no data"
    number = float(text)
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if number >= size:
            return f"{number / size:.3g}{suffix}"
    return f"{number:.0f}"


def visible_width(cells: Sequence[str]) -> int:
    """The characters a row shows: link targets, code ticks and emphasis do not print."""
    total = 0
    for cell in cells:
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)
        text = re.sub(r"[`*~]", "", text)
        text = re.sub(r"\[\^\d+\]", "¹", text)
        total += len(text) + 2
    return total


def _evidence(view: View) -> list[str]:
    metrics = list(view.metrics)
    counted = bool(metrics)  # a request count per measured row; "n/a" where the provider has none
    header = ["UTC", "at", *(["requests"] if counted else []), *(m.header for m in metrics), "result", "step"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    footnotes: list[str] = []
    last_measured: datetime | None = None
    for row in view.rows:
        by_name = {c.name: c for c in row.checks}
        cells = [_when(row.time), f"{md.text(row.measured_at)}%", *([_requests(row)] if counted else [])]
        for metric in metrics:
            footnote = ""
            note = row.notes.get(metric.name)
            if note:
                text = f"{_short(metric.name)}: {note}"
                if text not in footnotes:  # the same diagnostic on every row is one footnote
                    footnotes.append(text)
                footnote = f"[^{footnotes.index(text) + 1}]"
            cells.append(_cell(by_name.get(metric.name), metric, footnote, row.primary.get(metric.name, "")))
        if metrics and not row.checks and not row.withdrawn:
            cells[3 if counted else 2] = "not measured"
        elif row.checks:
            last_measured = row.time if last_measured is None else max(last_measured, row.time)
        # A withdrawn promotion is no longer on any branch: its commit has no page to link.
        commits = view.commit_base or f"{view.web_url}/commit"
        url = "" if row.withdrawn else row.url or f"{commits}/{row.sha}"
        cells += [_verdict(row), _code_link(row.sha, url)]
        lines.append("| " + " | ".join(cells) + " |")
    out = lines
    if not metrics:
        out += [
            "",
            "⚠️ **No metrics**: this canary's analysis (`spec.analysis.metrics`) is empty, so every step "
            "above passed without measuring anything (`gitcanary validate` warns about it).",
        ]
    if metrics:
        if last_measured is None:
            out += ["", "Not measured yet: the first steps move traffic before any analysis runs."]
        else:
            out += [
                "",
                f"Last measured {last_measured.strftime('%Y-%m-%d %H:%M')} UTC "
                f"({_age(view.now - last_measured)} before this update). Values: the canary's at "
                "weight `at`, `vs` the primary's; `requests`: served over the first window "
                "(`n/a`: not counted).",
                "",
                "Windows: " + " · ".join(md.text(f"{_short(m.name)} {m.window}") for m in metrics) + ".",
            ]
        links = [
            _link(md.text(_short(m.name)), _expand(m.link, m, view, last_measured)) for m in metrics if m.link
        ]
        if links:
            out += ["", "Queries: " + " · ".join(links)]
    if footnotes:
        out += [""] + [f"[^{i}]: {md.text(text)}" for i, text in enumerate(footnotes, 1)]
    return out


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _expand(template: str, metric: Metric, view: View, end: datetime | None) -> str:
    """The link template with each known `{field}` URL-encoded in; other braces (a Grafana
    JSON state, say) are left as they are."""
    moment = end or view.now
    start = moment.timestamp() - parse_duration(metric.window)
    values = {
        "metric": metric.name,
        "query": metric.query,
        "namespace": view.namespace,
        "name": view.name,
        "start": str(int(start)),
        "end": str(int(moment.timestamp())),
    }
    return re.sub(
        r"\{(" + "|".join(values) + r")\}", lambda m: urllib.parse.quote(values[m[1]], safe=""), template
    )


def _changes(view: View) -> list[str]:
    if not view.changes and not view.spec_diff:
        return [f"The target's pod template changes from {md.code(view.primary)} to {md.code(view.canary)}."]
    out: list[str] = []
    if view.changes:
        out += ["| container | change | file and field | bumped by |", "|---|---|---|---|"]
        for change in view.changes:
            who = md.text(change.bumped_by.rsplit(" <", 1)[0]) or "–"
            if change.bump_url:
                who = _link(who, change.bump_url)
            new = _link(md.code(change.new), change.notes_url)  # as Renovate links the new version
            cells = [md.code(change.container), f"{md.code(change.old)} → {new}", md.code(change.where), who]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "**Release notes**", "", *_release_notes(view.changes)]
    if view.spec_diff:
        out += [
            "",
            "<details><summary>Spec diff (not an image change)</summary>",
            "",
            "```diff",
            *(_diff_line(line) for line in view.spec_diff.rstrip().splitlines()),
            "```",
            "</details>",
        ]
    return out


def _configs(view: View) -> list[str]:
    """The tracked ConfigMaps and Secrets that change: keys always, values of ConfigMaps only.

    Keys and values are the repository's text: each name is shown in code with its backticks
    removed, each value line inside a fenced diff (a fence in the text is broken up), cut to
    `CONFIG_LINE_CHARS`, with control characters dropped and credentials masked. A Secret's values
    are never here: the publisher does not even read them (see `ConfigDiff`).
    """
    out = ["**Config changes**", ""]
    if not view.configs:
        if view.config_notes:
            out += [f"- {md.text(_line(note))}" for note in view.config_notes]
            return [*out, "", "(Values not shown: the build no longer differs from the primary's copy.)"]
        return [*out, "No config change."]
    for diff in view.configs:
        parts = [
            f"{label} {', '.join(_name(k) for k in keys)}"
            for label, keys in (("changed", diff.changed), ("added", diff.added), ("removed", diff.removed))
            if keys
        ]
        what = "; ".join(parts) or "content changed"
        if diff.new:
            what = "new (the primary has no copy yet): " + what
        if diff.secret and (diff.changed or diff.added):
            what += " (value changed, not shown)"
        kind, _, name = diff.producer.partition(" ")
        out.append(f"- {_line(kind)} {_name(name)}: {what}")
    for diff in view.configs:
        lines = _value_diff(diff)
        if lines:
            out += [
                "",
                f"<details><summary>{_html(diff.producer)}: values (primary → canary)</summary>",
                "",
                "```diff",
                *lines,
                "```",
                "</details>",
            ]
    return out


def _value_diff(diff: ConfigDiff) -> list[str]:
    out: list[str] = []
    for key, old, new in diff.values:
        if old is None or new is None:
            out.append(_line(f"# {key}: not text, not shown"))
            continue
        lines = list(
            difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"{key} (primary)", f"{key} (canary)", lineterm="", n=1
            )
        )
        if len(lines) > CONFIG_KEY_LINES:
            lines = [*lines[:CONFIG_KEY_LINES], f"# … {len(lines) - CONFIG_KEY_LINES} more lines of {key}"]
        out += [_line(line) for line in lines]
    if len(out) > CONFIG_OBJECT_LINES:
        out = [*out[:CONFIG_OBJECT_LINES], f"# … {len(out) - CONFIG_OBJECT_LINES} more lines"]
    return out


def _line(text: str) -> str:
    """One line of someone else's text: credentials masked, no control characters, no code fence,
    at most `CONFIG_LINE_CHARS` characters."""
    text = redact(without_credentials(text))
    text = "".join(c if c.isprintable() else " " for c in text.replace("\t", "  "))
    text = text.replace("```", "` ` `").replace("~~~", "~ ~ ~")
    return text if len(text) <= CONFIG_LINE_CHARS else text[: CONFIG_LINE_CHARS - 1] + "…"


def _diff_line(text: str) -> str:
    """One line of the repository's diff inside the body's fence: printable, and never a fence."""
    text = "".join(c if c.isprintable() else " " for c in text.replace("\t", "    "))
    return text.replace("```", "` ` `").replace("~~~", "~ ~ ~")


def _name(text: str) -> str:
    name = _line(text)
    if len(name) > CONFIG_NAME_CHARS:
        name = name[: CONFIG_NAME_CHARS - 1] + "…"
    return md.code(name)


def _html(text: str) -> str:
    return md.html(_line(text)[:CONFIG_NAME_CHARS])


def _release_notes(changes: Sequence[Change]) -> list[str]:
    """Per change: an excerpt of the new tag's release and its link, or why there is none."""
    out: list[str] = []
    for change in changes:
        name = f"{md.code(change.container)} {md.code(change.new)}"
        source = md.text(change.source)
        if change.notes_url:
            out.append(f"- {name}: [release in {source}]({change.notes_url})")
            out += [f"  > {line}" for line in excerpt(change.notes)] or ["  > (the release has no text)"]
        elif change.refused:
            out.append(
                f"- {name}: release notes not read from {source} (not an allowed source: "
                "`gitcanary run --release-notes-from`)"
            )
        elif change.source:
            out.append(f"- {name}: no release notes found in {source}")
        else:
            out.append(
                f"- {name}: no release notes found (no source repository known: set "
                "`gitcanary.io/source-repo` or `--release-notes`)"
            )
    return out


def excerpt(text: str) -> list[str]:
    """A release's text as a few short lines that render as plain words.

    The text is someone else's: no HTML (tags and comments dropped), no links (a reviewer follows
    the release link, not one planted in its notes), no credentials, no Markdown (`markdown.text`),
    no @mentions or #references that would notify people or link this repository's issues; at
    most `EXCERPT_LINES` lines and `EXCERPT_CHARS` characters, with "…" where it was cut.

    Linear in the text's length (each pass below moves forward only: no pattern that rescans
    from every `<` or every letter, as a 125,000-character release once made it take 50 s), and
    remembered per text, so a body rewritten every tick excerpts each release once.
    """
    return list(_excerpt(text))


@functools.lru_cache(maxsize=256)
def _excerpt(text: str) -> tuple[str, ...]:
    lines: list[str] = []
    wanted = EXCERPT_LINES + 1  # one more than shown: whether to say "…"
    for raw in _without_comments(text).splitlines():
        words = [_no_link(w) for w in _without_tags(raw).split()]
        line = " ".join(words).lstrip("#>*-+= ").strip()
        if line and not set(line) <= set("-=_*|: "):
            lines.append(line)
            if len(lines) == wanted:
                break
    out: list[str] = []
    room = EXCERPT_CHARS
    for line in lines[:EXCERPT_LINES]:
        if room <= 1:
            break
        if len(line) > room:
            line = line[: room - 1].rstrip() + "…"
        room -= len(line)
        out.append(line)
    if out and (len(out) < len(lines)) and not out[-1].endswith("…"):
        out.append("…")
    return tuple(md.text(without_credentials(line)) for line in out)


def _without_comments(text: str) -> str:
    """`<!-- ... -->` dropped (an unclosed one to the end), in one forward scan."""
    parts: list[str] = []
    at = 0
    while (start := text.find("<!--", at)) != -1:
        parts.append(text[at:start])
        end = text.find("-->", start + 4)
        if end == -1:
            return " ".join(parts)
        parts.append(" ")
        at = end + 3
    parts.append(text[at:])
    return "".join(parts)


def _without_tags(line: str) -> str:
    """`<...>` in one line dropped, in one forward scan (a `<` with no `>` after it ends the scan:
    no later `<` on the line can have one either)."""
    parts: list[str] = []
    at = 0
    while (start := line.find("<", at)) != -1:
        end = line.find(">", start + 1)
        if end == -1:
            break
        parts += [line[at:start], " "]
        at = end + 1
    parts.append(line[at:])
    return "".join(parts)


def _no_link(word: str) -> str:
    """A word holding a URL (`scheme://…`, `www.…`) is "(link)"."""
    return "(link)" if "://" in word or word.lower().startswith("www.") else word


def _buttons(view: View) -> list[str]:
    where = ", ".join(md.code(c.where) for c in view.changes) or "the target"
    names = {c.bumped_by.rsplit(" <", 1)[0] for c in view.changes if c.bumped_by}
    bumpers = ", ".join(sorted(md.text(name) for name in names))
    undo = f", undoing the bump by {bumpers}" if bumpers else ""
    if view.head_sha:
        approve = (
            f"- **Approve** (a review of the promotion commit `{view.head_sha[:7]}`): gitcanary merges "
            f"this PR, which promotes {md.code(view.canary)} to the primary, then commits routing all "
            "traffic to the primary and finishing the rollout (scaling the canary to 0)."
        )
    else:
        approve = (
            "- **Approve**: nothing to approve yet. When the analysis passes, gitcanary puts the "
            f"promotion commit of {md.code(view.canary)} here and asks for a review of that commit; an "
            "approval given before then does not count."
        )
    if view.configs or view.config_notes:
        undo += ", and writes the primary's config back where the app's source sets it"
    return [
        approve,
        f"- **Close** unmerged: gitcanary commits a rollback that routes all traffic to the primary "
        f"and writes {md.code(view.primary)} back into {where}{undo}. Say why in a comment before closing: "
        "it goes into the rollback commit.",
    ]


def _approvals(view: View) -> list[str]:
    out: list[str] = []
    if view.objections:
        out += ["", "**Change requests** (each blocks the promotion)", ""]
        for login, said in view.objections:
            out.append(
                f"- 🛑 {_mention(login)} requested changes: {md.text(said) or '(no text)'}. Lifted only by "
                f"{_mention(login)}'s approval or a dismissal of the review."
            )
    if not view.approvals:
        return out
    out += ["", "**Approvals**", ""]
    for a in view.approvals:
        if a.counts:
            out.append(f"- ✅ {_mention(a.login)} approved {md.code(a.sha[:7])} (counts)")
        else:
            out.append(f"- ➖ {_mention(a.login)} approved {md.code(a.sha[:7])}: not counted, {a.why}")
    return out


def _mention(login: str) -> str:
    """A forge login the body means to mention (an approver): the forge's login alphabet only."""
    return "@" + (re.sub(r"[^A-Za-z0-9_.-]", "", login) or "unknown")


def headline(view: View) -> str:
    text = HEADLINES[view.state]
    decided_by = md.text(view.decided_by)
    if view.objections and view.state is State.WAITING:
        names = ", ".join(_mention(login) for login, _ in view.objections)
        text += f" **Blocked** by a change request of {names}."
    if view.state is State.PROMOTED and decided_by:
        text += f": approved by {decided_by}."
    elif view.state is State.REJECTED:
        text += f" by {decided_by or 'a person closing this PR'}."
    elif view.state is State.SUPERSEDED:
        who = f", bumped by {decided_by}" if decided_by else ""
        text += f" ({md.code(view.superseded_by)}{who}): a new gate PR follows it."
    elif view.state is State.ROLLED_BACK:
        text += "."
    if view.reason and view.state in (State.REJECTED, State.ROLLED_BACK, State.HALTED):
        text += f" Reason: {md.text(view.reason)}"
    return text


def body(view: View) -> str:
    lines = [
        headline(view),
        "",
        (
            f"Rollout of **{md.text(view.key)}** from {md.code(view.primary)} to {md.code(view.canary)} "
            if view.primary != view.canary
            else f"Rollout of **{md.text(view.key)}** at {md.code(view.canary)}: a change of its config "
            "or pod template, not of its image "
        )
        + f"(rollout {md.code(view.rollout_id)}).",
    ]
    if view.status_message and not view.state.final:
        lines += ["", f"gitcanary: {md.text(view.status_message)}"]
    if view.results:
        lines += ["", "Resulting commits: " + ", ".join(_link(label, url) for label, url in view.results)]
    if view.state is State.ANALYSING or view.state is State.HALTED:
        lines += [
            "",
            "This PR is a draft until the analysis passes and the promotion commit is here; "
            "an approval given before then is shown but does not count.",
        ]
    lines += ["", "### What changes", "", *_changes(view), "", *_configs(view)]
    if not view.state.final:
        lines += ["", "### What each button does", "", *_buttons(view)]
    lines += _approvals(view)
    lines += ["", "### Evidence", "", *_evidence(view), "", MARKER, ""]
    # The body quotes commit messages (diagnostics, diffs): credentials in URLs are masked; the
    # forge masks its own token in everything it sends.
    return without_credentials("\n".join(lines))


def comment(view: View) -> str:
    """The one comment a state change that needs a person gets (a body edit notifies nobody)."""
    return without_credentials(_comment(view))


def _comment(view: View) -> str:
    match view.state:
        case State.WAITING:
            return (
                f"The analysis of {md.code(view.canary)} passed and the promotion commit "
                f"{md.code(view.head_sha[:7])} is on this PR: **approve** it to promote, or **close** this "
                f"PR to roll back to {md.code(view.primary)}."
            )
        case State.HALTED:
            return (
                f"The analysis of {md.code(view.canary)} failed "
                f"({md.text(view.reason) or 'see the evidence'}); "
                "gitcanary withdrew any promotion from this PR and measures again next interval. "
                "Approvals given so far no longer count."
            )
        case State.ROLLED_BACK:
            return (
                f"gitcanary rolled {md.code(view.key)} back to {md.code(view.primary)}: "
                f"{md.text(view.reason) or 'the analysis failed'}. "
                "This PR is closed; the rollback commit is linked in the description."
            )
        case State.SUPERSEDED:
            return (
                f"A newer revision ({md.code(view.superseded_by)}) replaced {md.code(view.canary)} "
                "mid-rollout; "
                "this PR is closed and a new one gates the newer revision."
            )
    return headline(view)


def step_body(message: str, gate_url: str) -> str:
    """A step PR's body: what the step did in words, the gate it belongs to, the trailers folded.

    Step PRs exist where branch protection wants CI on every change; they need no review (the
    gate, or the analysis, decides), so the body says so instead of repeating the message.
    """
    lines = message.strip().splitlines()[1:]
    prose = [line.strip() for line in lines if line.strip() and not line.strip().startswith(PREFIX)]
    trailers = [line.strip() for line in lines if line.strip().startswith(PREFIX)]
    checks, notes = checks_of(message)
    names = {c.name for c in checks}
    said = [line for line in prose if line.split(" ", 1)[0] not in names]
    out = [f"- {md.text(line)}" for line in said]
    if checks:
        out += ["", "| check | value | |", "|---|---|---|"]
        for check in checks:
            value = "no data" if check.value is None else f"{_num(check.value)}{UNITS.get(check.name, '')}"
            out.append(f"| {md.text(check.name)} | {value} | {'✅' if check.ok else '❌'} |")
        out += [f"\n{md.text(f'{name}: {note}')}" for name, note in notes.items()]
    if gate_url:
        out += ["", f"One step of the rollout gated by {gate_url}: approve or close that PR, not this one."]
    out += [
        "",
        "gitcanary merges this PR as soon as it is mergeable; it records one step and needs no review.",
        "",
        "<details><summary>Trailers (for <code>git interpret-trailers</code>)</summary>",
        "",
        "```",
        *(md.clean(t).replace("```", "` ` `") for t in trailers),
        "```",
        "</details>",
    ]
    return without_credentials("\n".join(out) + "\n")
