"""The live dashboard: every canary's phase, weight, last checks against thresholds, a chart of
its latest rollout from Git history, links to each step's commit and PR, and the manual actions as
the exact `gitcanary` commands to run. It reads a checkout and writes nothing.

Served by `gitcanary dashboard` and at `/` on `gitcanary run --listen`. The page is complete HTML
without JavaScript (charts are lazy `<img>`s of the audit report's SVGs, and a `<noscript>` meta
refresh reloads it); with JavaScript it polls `/dashboard/state` and swaps in `/dashboard/main` when
the branch head moves. Everything is computed once per head commit, so a poll costs a lookup.

A step is shown only when `gitcanary history --verify` accepts its commit (the bot's author and,
when configured, its signing key; trailers agreeing with the status file of the same commit): a
person's commit carrying `Gitcanary-*` trailers is listed under problems, never drawn as a step.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from git import GitCommandError, Repo

from gitcanary.audit.chart import render_svg
from gitcanary.audit.gitlog import StatusReader, read_log
from gitcanary.audit.model import Rollout, rollouts
from gitcanary.audit.parse import Step, parse_commits
from gitcanary.audit.verify import BotIdentity, allowed_signers_for, verify_commit
from gitcanary.core.manual_rules import refusal
from gitcanary.errors import GitcanaryError
from gitcanary.manifests import discovery
from gitcanary.manifests.files import YAML_SUFFIXES
from gitcanary.manifests.generate import Layout, read_status
from gitcanary.service.dashboard_cluster import Workload, WorkloadReader
from gitcanary.service.http import Router, StartResponse, plain
from gitcanary.service.logs import redact
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.request import ManualAction
from gitcanary.spec.status import CanaryStatus, Phase

log = logging.getLogger("gitcanary.dashboard")
DEFAULT_BOT_EMAIL = "gitcanary@users.noreply.local"  # `run --author-email`'s default

STATE_PATH, MAIN_PATH, CHART_PATH = "/dashboard/state", "/dashboard/main", "/dashboard/chart.svg"
PHASE_COLOURS = {
    "Succeeded": "#2e7d32",
    "Initialized": "#2e7d32",
    "Failed": "#c62828",
    "Error": "#c62828",
    "Progressing": "#1565c0",
    "Promoting": "#1565c0",
    "Finalising": "#1565c0",
    "Waiting": "#ef6c00",
    "WaitingPromotion": "#ef6c00",
    "Initializing": "#6a1b9a",
}


@dataclass
class Card:
    """One canary as the page shows it."""

    key: str
    source: str
    phase: str
    weight: int = 0
    failed_checks: int = 0
    threshold: int | None = None
    revisions: str = ""
    last_transition: str = ""
    message: str = ""
    suspended: bool = False
    thresholds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    rollout: Rollout | None = None
    # Every rollout of this canary that Git history holds (steps `history --verify` accepts), oldest first.
    rollouts: list[Rollout] = field(default_factory=list)
    target: str = ""  # the Deployment the Canary targets; its primary is `<target>-primary`

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def primary_weight(self) -> int:
        """The primary's share of the traffic: what the canary's weight leaves."""
        return 100 - self.weight

    @property
    def last_checks(self) -> list[Any]:
        """The checks of the latest step that measured any, in the latest rollout."""
        if self.rollout is None:
            return []
        for step in reversed(self.rollout.steps):
            if step.checks:
                return list(step.checks)
        return []


@dataclass
class Snapshot:
    head: str
    cards: list[Card]
    problems: list[str]
    took: float
    # Kept for the next head: only the files a commit changed are read again.
    catalog: discovery.Catalog | None = None
    status_files: dict[str, str] = field(default_factory=dict)  # canary key -> its status file
    # `history --verify`'s judgement of each gitcanary-looking commit read so far (sha -> reasons
    # it is flagged, empty when accepted): a commit is judged once, whatever the number of heads.
    verdicts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def state(self) -> dict[str, object]:
        return {
            "head": self.head,
            "canaries": [{"key": c.key, "phase": c.phase, "weight": c.weight} for c in self.cards],
        }


def _card(root: Path, loaded: LoadedCanary) -> Card:
    canary = loaded.canary
    analysis = canary.spec.analysis
    card = Card(key=canary.key, source=loaded.source, phase="Uninitialized")
    card.target = canary.spec.target_ref.name
    card.suspended = bool(canary.spec.suspend)
    card.threshold = analysis.threshold if analysis else None
    for metric in analysis.metrics if analysis else []:
        bounds = metric.threshold_range
        card.thresholds[metric.name] = (bounds.min, bounds.max) if bounds else (None, None)
    status: CanaryStatus | None = read_status(root, Layout.of(loaded))
    if status is not None:
        card.phase, card.weight, card.failed_checks = (
            status.phase.value,
            status.canary_weight,
            status.failed_checks,
        )
        old, new = status.primary_revision, status.canary_revision
        card.revisions = f"{old} -> {new}" if new and new != old else old
        card.last_transition = status.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        card.message = status.message
    return card


def take_snapshot(root: Path, previous: Snapshot | None = None, bot: BotIdentity | None = None) -> Snapshot:
    """Every canary in the checkout at `root`, with its latest rollout read from `git log`, made
    only of the commits `history --verify` accepts for `bot` (default: gitcanary's default email).

    With `previous` (a snapshot of an earlier head of the same checkout), only the files changed since
    are parsed again: a commit that moves one canary costs that canary, however many there are.
    """
    started = time.monotonic()
    repo = Repo(root)
    head = repo.head.commit.hexsha
    changed: set[str] | None = None
    if previous is not None and previous.catalog is not None:
        try:
            out = repo.git.diff("--name-only", "--no-renames", previous.head, head)
            changed = {line for line in out.splitlines() if line}
        except GitCommandError:  # the old head is gone (a force-push): read everything again
            changed = None
    if changed is None or previous is None or previous.catalog is None:
        catalog = discovery.scan(root)
        kept: dict[str, Card] = {}
    else:
        catalog = previous.catalog
        for path in sorted(changed):
            if path.endswith(YAML_SUFFIXES):
                discovery.scan_file(catalog, root, path)
        kept = {
            card.key: card
            for card in previous.cards
            if card.key in catalog.canaries
            and catalog.canaries[card.key].source.split("#")[0] not in changed
            and previous.status_files.get(card.key) not in changed
        }
    problems = [str(error) for error in catalog.errors.values()]
    cards = []
    status_files = {}
    for key in sorted(catalog.canaries):
        loaded = catalog.canaries[key]
        try:
            status_files[key] = Layout.of(loaded).status
            cards.append(kept[key] if key in kept else _card(root, loaded))
        except GitcanaryError as exc:  # one bad canary never hides the others
            cards.append(Card(key=key, source=loaded.source, phase="Error", message=str(exc)))
    bot = bot or BotIdentity(DEFAULT_BOT_EMAIL)
    signers = allowed_signers_for(bot)
    commits = read_log(repo, head, signatures=bot.signing_key is not None, allowed_signers=signers)
    verdicts = dict(previous.verdicts) if previous is not None else {}
    statuses = StatusReader(repo)
    for commit in commits:
        if commit.sha not in verdicts:
            verdict = verify_commit(bot, commit, statuses)
            verdicts[commit.sha] = verdict.reasons if verdict is not None else ()
    flagged = [c for c in commits if verdicts.get(c.sha)]
    problems += [
        f"commit {c.sha[:12]} ({c.subject[:60]}) is not shown as a step: history --verify flags it "
        f"({'; '.join(verdicts[c.sha])})"
        for c in flagged
    ]
    steps, skipped = parse_commits([c for c in commits if not verdicts.get(c.sha)])
    problems += [str(problem) for problem in skipped]
    every: dict[str, list[Rollout]] = {}
    for rollout in rollouts(steps):
        every.setdefault(rollout.canary, []).append(rollout)
    for card in cards:
        # Oldest first; the latest is the one started last (a stable sort keeps Git's order on ties).
        card.rollouts = sorted(every.get(card.key, []), key=lambda r: r.started)
        card.rollout = card.rollouts[-1] if card.rollouts else None
    return Snapshot(head, cards, problems, time.monotonic() - started, catalog, status_files, verdicts)


def github_commit_url(api_url: str, repo: str) -> str:
    """`https://github.com/OWNER/NAME/commit/{sha}` for a GitHub repository, GitHub Enterprise too
    (its API is `https://HOST/api/v3`, its pages `https://HOST/...`)."""
    base = api_url.rstrip("/")
    base = "https://github.com" if base == "https://api.github.com" else base.removesuffix("/api/v3")
    return f"{base}/{repo}/commit/{{sha}}"


class Dashboard:
    """The page and its endpoints over a checkout that `refresh` (if any) brings up to date."""

    def __init__(
        self,
        root: Callable[[], Path],
        repo_label: str,
        refresh: Callable[[], None] | None = None,
        commit_url: str | None = None,
        refresh_every: float = 2.0,
        bot: BotIdentity | None = None,
        workloads: WorkloadReader | None = None,
    ) -> None:
        self.bot = bot
        # Set when gitcanary reads the cluster: each card then shows the pods and images of the
        # canary's Deployment and of its primary.
        self.workloads = workloads
        self._root = root
        # Shown on the page and in the commands it prints: never a credential in a repository URL.
        self.repo_label = redact(repo_label)
        self._refresh = refresh
        self._refresh_every = refresh_every
        self._last_refresh = 0.0
        self.commit_url = commit_url
        self._lock = threading.Lock()
        self._cached: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._refresh is not None and time.monotonic() - self._last_refresh >= self._refresh_every:
                self._last_refresh = time.monotonic()
                try:
                    self._refresh()
                except GitcanaryError as exc:
                    log.warning("dashboard: cannot refresh the checkout: %s", exc)
            root = self._root()
            head = Repo(root).head.commit.hexsha
            if self._cached is None or self._cached.head != head:
                self._cached = take_snapshot(root, self._cached, self.bot)
                log.debug(
                    "dashboard: read %d canaries at %s in %.2fs",
                    len(self._cached.cards),
                    head[:8],
                    self._cached.took,
                )
            return self._cached

    def mount(self, router: Router, at_root: bool = True) -> None:
        if at_root:
            router.mount("/", self._page)
        router.mount("/dashboard", self._page)
        router.mount(STATE_PATH, self._state)
        router.mount(MAIN_PATH, self._main)
        router.mount(CHART_PATH, self._chart)

    # ------------------------------------------------------------------ endpoints
    def _page(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        snap, wanted = self.snapshot(), Filters.of(environ.get("QUERY_STRING", ""))
        return plain("200 OK", page(snap, self, wanted), "text/html; charset=utf-8")(environ, start_response)

    def _main(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        snap, wanted = self.snapshot(), Filters.of(environ.get("QUERY_STRING", ""))
        return plain("200 OK", main(snap, self, wanted), "text/html; charset=utf-8")(environ, start_response)

    def _state(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = json.dumps(self.snapshot().state())
        return plain("200 OK", body, "application/json")(environ, start_response)

    def _chart(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        wanted, rollout_id = query.get("canary", [""])[0], query.get("rollout", [""])[0]
        card = next((c for c in self.snapshot().cards if c.key == wanted), None)
        rollout = None
        if card is not None:
            # Without `rollout=`, the latest; with it, that one of the canary's earlier rollouts.
            matching = (r for r in card.rollouts if r.id == rollout_id)
            rollout = next(matching, None) if rollout_id else card.rollout
        if rollout is None:
            return plain("404 Not Found", "no such rollout of that canary\n")(environ, start_response)
        return plain("200 OK", render_svg(rollout), "image/svg+xml")(environ, start_response)

    # ------------------------------------------------------------------ links
    def commit_link(self, sha: str) -> str:
        short = escape(sha[:8])
        if not self.commit_url:
            return f"<code>{short}</code>"
        return f'<a href="{escape(self.commit_url.replace("{sha}", sha))}"><code>{short}</code></a>'

    def pr_link(self, number: str) -> str:
        if not number:
            return ""
        if self.commit_url and "/commit/{sha}" in self.commit_url:
            url = self.commit_url.replace("/commit/{sha}", f"/pull/{number}")
            return f'<a href="{escape(url)}">#{escape(number)}</a>'
        return f"#{escape(number)}"


# ---------------------------------------------------------------------- HTML
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:12px 20px;background:#263238;color:#fff}header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;color:#b0bec5;font-size:12px}
main{padding:12px 20px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px;padding:10px 14px}
.card h2{font-size:16px;margin:0 0 6px}.phase{color:#fff;border-radius:4px;padding:1px 7px;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 10px 2px 0;text-align:left;font-size:13px}
.ok{color:#2e7d32}.failed{color:#c62828;font-weight:600}code{font-size:12px}
.actions code{display:block;background:#f3f3f3;padding:3px 6px;margin:2px 0;user-select:all}
form.filters{margin:6px 0}form.filters select{margin-right:8px}
table#canaries{background:#fff;border:1px solid #ddd;margin:0 0 14px}table#canaries td{padding:3px 10px}
summary{cursor:pointer;color:#455a64}img.chart{max-width:100%;height:auto}.muted{color:#777}
"""

_SCRIPT = """
(function () {
  var main = document.querySelector('main'), note = document.getElementById('live');
  function text(r) { return r.text(); }
  function poll() {
    fetch('STATE', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (s) {
      if (s.head !== main.dataset.head) {
        return fetch('MAIN' + window.location.search, {cache: 'no-store'}).then(text).then(function (html) {
          main.outerHTML = html; main = document.querySelector('main');
        });
      }
    }).then(function () { note.textContent = 'live: checked ' + new Date().toLocaleTimeString(); },
            function () { note.textContent = 'live: cannot reach gitcanary, retrying'; });
  }
  setInterval(poll, 2000);
})();
""".replace("STATE", STATE_PATH).replace("MAIN", MAIN_PATH)


@dataclass(frozen=True)
class Filters:
    """The list's filters, from the page's query string (`?namespace=prod&phase=Failed`): applied
    here, on the server, so they work without JavaScript. Empty means any."""

    namespace: str = ""
    phase: str = ""

    @classmethod
    def of(cls, query: str) -> Filters:
        values = parse_qs(query)
        return cls(values.get("namespace", [""])[0], values.get("phase", [""])[0])

    def keep(self, card: Card) -> bool:
        return (not self.namespace or card.namespace == self.namespace) and (
            not self.phase or card.phase == self.phase
        )

    def query(self) -> str:
        return urlencode({k: v for k, v in (("namespace", self.namespace), ("phase", self.phase)) if v})


def page(snap: Snapshot, board: Dashboard, filters: Filters | None = None) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<link rel=icon href='data:,'>"
        "<noscript><meta http-equiv=refresh content=10></noscript>"
        f"<title>gitcanary: {escape(board.repo_label)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>gitcanary</h1><p>{escape(board.repo_label)} · read-only: this page writes nothing; "
        "run the commands it shows · <span id=live>live refresh needs JavaScript; "
        "without it the page reloads every 10 s</span></p></header>"
        f"{main(snap, board, filters)}<script>{_SCRIPT}</script></body></html>"
    )


def _select(name: str, label: str, options: list[str], chosen: str) -> str:
    shown = ["<option value=''>all</option>"] + [
        f"<option value='{escape(o)}'{' selected' if o == chosen else ''}>{escape(o)}</option>"
        for o in options
    ]
    return f"<label>{label} <select name={name} id=filter-{name}>{''.join(shown)}</select></label> "


def _filters_html(snap: Snapshot, filters: Filters) -> str:
    namespaces = sorted({card.namespace for card in snap.cards} | ({filters.namespace} - {""}))
    phases = sorted({card.phase for card in snap.cards} | ({filters.phase} - {""}))
    return (
        "<form method=get class=filters id=filters>"
        + _select("namespace", "namespace", namespaces, filters.namespace)
        + _select("phase", "phase", phases, filters.phase)
        + "<button type=submit>filter</button> <a href='?'>clear</a></form>"
    )


def _list_html(shown: list[Card], total: int, filters: Filters) -> str:
    counts: dict[str, int] = {}
    for card in shown:
        counts[card.phase] = counts.get(card.phase, 0) + 1
    by_phase = " · ".join(
        f"<span class=count data-phase='{escape(phase)}'>{escape(phase)} <b>{n}</b></span>"
        for phase, n in sorted(counts.items())
    )
    out = [
        f"<p id=counts data-shown={len(shown)} data-total={total}><b>{len(shown)}</b> of {total} canaries"
        f"{' · ' + by_phase if by_phase else ''}</p>",
        "<table id=canaries><tr><th>canary</th><th>namespace</th><th>phase</th><th>canary weight</th>"
        "<th>primary weight</th><th>failed checks</th><th>revisions</th><th>rollouts</th></tr>",
    ]
    for card in shown:
        colour = PHASE_COLOURS.get(card.phase, "#607d8b")
        out.append(
            f"<tr class=row data-key='{escape(card.key)}' data-namespace='{escape(card.namespace)}' "
            f"data-phase='{escape(card.phase)}'><td><a href='#{escape(quote(card.key, safe='/'))}'>"
            f"{escape(card.key.split('/', 1)[-1])}</a></td><td>{escape(card.namespace)}</td>"
            f"<td><span class=phase style='background:{colour}'>{escape(card.phase)}</span></td>"
            f"<td>{card.weight}%</td><td>{card.primary_weight}%</td><td>{card.failed_checks}</td>"
            f"<td>{escape(card.revisions) or '-'}</td><td>{len(card.rollouts)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def main(snap: Snapshot, board: Dashboard, filters: Filters | None = None) -> str:
    filters = filters or Filters()
    shown = [card for card in snap.cards if filters.keep(card)]
    parts = [f"<main data-head='{escape(snap.head)}' data-query='{escape(filters.query())}'>"]
    parts.append(f"<p class=muted>{len(snap.cards)} canaries at commit {board.commit_link(snap.head)}</p>")
    for problem in snap.problems:
        parts.append(f"<p class=failed>{escape(problem)}</p>")
    parts.append(_filters_html(snap, filters))
    parts.append(_list_html(shown, len(snap.cards), filters))
    parts += [_card_html(card, board) for card in shown]
    parts.append("</main>")
    return "".join(parts)


def _fmt(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _card_html(card: Card, board: Dashboard) -> str:
    colour = PHASE_COLOURS.get(card.phase, "#607d8b")
    paused = " <span class=muted>(paused)</span>" if card.suspended else ""
    out = [
        f"<section class=card id='{escape(card.key)}'><h2>{escape(card.key)} "
        f"<span class=phase style='background:{colour}'>{escape(card.phase)}</span>{paused}</h2>",
        f"<div>canary weight <b>{card.weight}%</b> · primary <b>{card.primary_weight}%</b>"
        f" · failed checks {card.failed_checks}"
        f"{f'/{card.threshold}' if card.threshold else ''} · {escape(card.revisions) or '-'}"
        f" · last transition {escape(card.last_transition) or '-'}</div>",
    ]
    if card.message:
        out.append(f"<div class=muted>{escape(card.message)}</div>")
    checks = card.last_checks
    if card.thresholds or checks:
        measured = {check.name: check for check in checks}
        # The compare judge measured the primary too: show it beside the canary, with the p-value.
        compared = any(getattr(check, "compared", False) for check in checks)
        primary_head = "<th>primary</th>" if compared else ""
        out.append(
            f"<table><tr><th>metric</th><th>last value</th>{primary_head}<th>threshold</th><th></th></tr>"
        )
        for name in list(card.thresholds) + [n for n in measured if n not in card.thresholds]:
            low, high = card.thresholds.get(name, (None, None))
            check = measured.get(name)
            if check is not None:
                low = check.min if check.min is not None else low
                high = check.max if check.max is not None else high
            bounds = " ".join(
                part
                for part in (
                    f">= {low:g}" if low is not None else "",
                    f"<= {high:g}" if high is not None else "",
                )
                if part
            )
            verdict = (
                ""
                if check is None
                else f"<span class=muted>{escape(check.verdict)}</span>"
                if check.verdict in ("wait", "hold")
                else ("<span class=ok>ok</span>" if check.ok else "<span class=failed>failed</span>")
            )
            value = "-" if check is None else _fmt(check.value)
            primary = ""
            if compared:
                shown = "-" if check is None or check.primary is None else _fmt(check.primary)
                if check is not None and check.p_value is not None:
                    shown += f" (p={check.p_value:.3g})"
                primary = f"<td>{escape(shown)}</td>"
            out.append(
                f"<tr><td>{escape(name)}</td><td>{value}</td>{primary}<td>{escape(bounds)}</td>"
                f"<td>{verdict}</td></tr>"
            )
        out.append("</table>")
    if card.rollout is not None:
        rollout = card.rollout
        out.append(
            f"<details open><summary>latest rollout {escape(rollout.from_revision)} -> "
            f"{escape(rollout.to_revision)}: {escape(str(rollout.outcome))}</summary>"
            f"<img class=chart loading=lazy width=720 alt='weight and metrics of {escape(card.key)}' "
            f"src='{CHART_PATH}?canary={quote(card.key)}'>"
            "<table><tr><th>time (UTC)</th><th>step</th><th>weight</th><th>commit</th><th>PR</th></tr>"
        )
        out += [_step_row(step, board) for step in rollout.steps]
        out.append("</table></details>")
    earlier = card.rollouts[:-1]
    if earlier:
        out.append(
            f"<details class=earlier><summary>{len(earlier)} earlier rollout{'s' if len(earlier) > 1 else ''}"
            "</summary><table><tr><th>started (UTC)</th><th>revisions</th><th>outcome</th><th>steps</th>"
            "<th>first commit</th><th>last commit</th><th>chart</th></tr>"
        )
        for old in reversed(earlier):  # newest first, under the latest
            chart = f"{CHART_PATH}?{urlencode({'canary': card.key, 'rollout': old.id})}"
            out.append(
                f"<tr class=rollout data-rollout='{escape(old.id)}'>"
                f"<td>{old.started.strftime('%Y-%m-%d %H:%M:%S')}</td>"
                f"<td>{escape(old.from_revision)} -&gt; {escape(old.to_revision)}</td>"
                f"<td>{escape(str(old.outcome))}</td><td>{len(old.steps)}</td>"
                f"<td>{board.commit_link(old.steps[0].commit)}</td><td>{board.commit_link(old.steps[-1].commit)}</td>"
                f"<td><a href='{escape(chart)}'>chart</a></td></tr>"
            )
        out.append("</table></details>")
    if board.workloads is not None and card.target:
        found = board.workloads.read(card.namespace, card.target)
        out.append(
            "<table class=workloads><tr><th></th><th>deployment</th><th>ready</th><th>images</th>"
            "<th>pods</th></tr>"
        )
        out += [_workload_row("canary", found.canary), _workload_row("primary", found.primary)]
        out.append("</table>")
    commands = _actions(card, board.repo_label)
    if commands:
        out.append("<div class=actions><b>manual actions</b> (copy and run; each is one commit by you)")
        out += [f"<code>{escape(command)}</code>" for command in commands]
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _workload_row(role: str, workload: Workload) -> str:
    images = "<br>".join(f"<code>{escape(image)}</code>" for image in workload.images) or "-"
    pods = "<br>".join(
        f"<span class=pod>{escape(pod.name)} {escape(pod.phase)}"
        f"{'' if pod.ready else ' (not ready)'}{f' restarts {pod.restarts}' if pod.restarts else ''}</span>"
        for pod in workload.pods
    )
    if workload.error:
        pods = (pods + "<br>" if pods else "") + f"<span class=muted>{escape(workload.error)}</span>"
    return (
        f"<tr class='workload {role}'><td>{role}</td><td>{escape(workload.name)}</td>"
        f"<td>{workload.ready}/{workload.desired}</td><td>{images}</td><td>{pods or '-'}</td></tr>"
    )


def _step_row(step: Step, board: Dashboard) -> str:
    return (
        f"<tr><td>{step.time.strftime('%Y-%m-%d %H:%M:%S')}</td><td>{escape(step.action)}</td>"
        f"<td>{step.weight}%</td><td>{board.commit_link(step.commit)}</td>"
        f"<td>{board.pr_link(step.pull_request)}</td></tr>"
    )


def _actions(card: Card, repo: str) -> list[str]:
    """The manual actions that fit the canary now (the rule the CLI applies), as commands."""
    if card.phase in ("Error", "Uninitialized"):
        return []
    phase = Phase(card.phase)
    return [
        f"gitcanary {action.value} {card.key} --repo {repo}"
        for action in ManualAction
        if refusal(action, phase, card.suspended) is None
    ]
