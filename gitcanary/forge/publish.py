"""Where each commit of a tick goes: the tracked branch, a step PR, or the rollout's promotion-gate PR.

The reconciler decides and commits as always; this edge routes the commits it made:
- `direct`: pushed to the branch (the reconciler's own push path, unchanged).
- `pull-request`: each step is cherry-picked onto the branch's head, pushed to a branch named for
  the canary and step, opened as a PR and merged through the API once mergeable. The step is done
  when its PR is merged: until then the branch still holds the old status, and the next ticks only
  drive that PR (merge it, or say it waits for review) instead of deciding again.
- promotion gate: the promotion commit goes on the rollout's gate PR; a person approving it lets
  gitcanary merge it (or they merge it), closing it unmerged is observed as `Gate.REJECTED`.
- rollbacks never wait for a person: pushed directly, else through a PR merged at once, else an
  error-level alert, retried every tick.

Nothing here is remembered between ticks: open PRs, their branches and the commits on them are
read back from the forge and Git, so a restarted gitcanary finds its PRs instead of duplicating them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pathspec
from git import GitCommandError

from gitcanary.analysis.builtin import builtin_metric
from gitcanary.analysis.templates import QueryModel, render_query
from gitcanary.audit.gitlog import merged_in
from gitcanary.audit.parse import STEP_MERGE_NOTE, merged_request
from gitcanary.core.observations import Gate
from gitcanary.errors import AnalysisError, GitcanaryError, GitError, PushRejected
from gitcanary.forge import gate, naming
from gitcanary.forge import markdown as md
from gitcanary.forge.base import Forge, ForgeError, KnowsItself, PullRequest, Release, Review
from gitcanary.forge.secrets import without_credentials
from gitcanary.git.trailers import MalformedTrailers, format_message, parse_trailers
from gitcanary.git.workspace import REMOTE, Workspace
from gitcanary.manifests import config_writeback, yamlio
from gitcanary.manifests.generate import Layout
from gitcanary.manifests.target import render_target
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.models import CanaryMetric, MetricTemplate
from gitcanary.spec.status import CanaryStatus

log = logging.getLogger("gitcanary.forge")
SCRATCH = "gitcanary-publish"  # the local branch commits are rebuilt on; never pushed under this name
# The start commit's line for an image change (git/messages): `image NAME: OLD -> NEW (FILE FIELD)`.
IMAGE_LINE = re.compile(r"^image (?P<name>[^:\s]+): (?P<old>\S+) -> (?P<new>\S+) \((?P<where>[^)]+)\)$")
SPEC_DIFF_LINES = 60
# The start commit's line for a config change (manifests/config_writeback.changes): keys, no values.
CONFIG_LINE = re.compile(r"^config (?P<kind>\S+) \S+: ")
CODEOWNERS_FILES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")  # GitHub's search order
REASON_CHARS = 300
# Ticks a step PR may spend on the forge's side before gitcanary stops waiting: reads while the
# forge still computes whether it merges (`mergeable: null`), each raising an ALERT from this many
# on; branch updates while it is `behind` a base that keeps moving, after which the PR is closed
# and the step decided again from the current branch.
UNDECIDED_TICKS = 5
RELEASES_KEPT = 256  # releases remembered between ticks (each a tag of an image a rollout shows)


@dataclass(frozen=True)
class PublishSettings:
    mode: str = "direct"  # the repository's default write mode; a canary annotation overrides it
    gate: bool = False  # promotion gate for every canary unless its annotation says otherwise
    merge_method: str = "merge"
    # Who is asked to review a gate PR once the promotion commit is on it, besides the canary's
    # gitcanary.io/reviewers and the CODEOWNERS of its file: logins, `team:SLUG` or `@org/SLUG`.
    reviewers: tuple[str, ...] = ()
    # A link per metric in the gate's evidence, e.g. a Grafana Explore or Prometheus graph URL,
    # with {metric} {query} {namespace} {name} {start} {end} (Unix seconds) filled in, URL-encoded;
    # empty: no links.
    metric_link: str = ""
    approvals_needed: int = 1  # approvals of the promotion commit before gitcanary merges the gate
    # Where an image's release notes are, on the same forge: (image or container, owner/name); an
    # image not named here is looked for in the repository its path names (ghcr.io/acme/app: acme/app).
    release_notes: tuple[tuple[str, str], ...] = ()
    # Owners (`acme`, a GitLab group `acme/platform`) or repositories (`acme/app`) whose releases
    # the gate may quote when the repository comes from the canary's `gitcanary.io/source-repo` or
    # the image's path (repository content); empty: the config repository's own owner. The
    # operator's `release_notes` map is the operator's choice and is always read.
    release_notes_from: tuple[str, ...] = ()


@dataclass
class _Routed:
    sha: str
    key: str
    trailers: dict[str, str]
    route: str  # direct | step | gate | rollback


@dataclass
class Publisher:
    forge: Forge
    workspace: Workspace
    settings: PublishSettings = field(default_factory=PublishSettings)
    canaries: dict[str, LoadedCanary] = field(default_factory=dict)  # the reconciler's catalog
    templates: Mapping[str, MetricTemplate] = field(default_factory=dict)  # its MetricTemplates
    waiting: dict[str, str] = field(default_factory=dict)  # key -> what it waits for (for status)
    # Commit message -> the PR that carried it, so notifications of a step link its pull request.
    pull_urls: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _open: list[PullRequest] | None = None
    _gates: dict[str, Gate | None] = field(default_factory=dict)
    # Who closed a gate unmerged and why, for the rollback commit this tick makes (key -> login, reason).
    _rejections: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Writers whose change request still stood on a gate closed unmerged (key -> logins), for the
    # rollback commit's `Objected-by` trailers.
    _objections: dict[str, list[str]] = field(default_factory=dict)
    _finalized: set[str] = field(default_factory=set)  # rollouts whose closed gate shows its outcome
    # Approvals of a gate merged by `rebase`, for the next step's trailers (key -> logins). Kept in
    # memory between the merge and the next step: a restart in between leaves them on GitHub only.
    _unrecorded_approvals: dict[str, list[str]] = field(default_factory=dict)
    # Commits the forge made when gitcanary merged its own PRs (a squash or merge commit is authored
    # by the forge's user, not gitcanary's git identity): the status file they carry is gitcanary's.
    merged_by_me: set[str] = field(default_factory=set)
    # Releases asked of the forge, by (repository, tag): the body is written several times a
    # tick, the forge is asked once (a release found is kept between ticks: see begin_tick).
    _releases: dict[tuple[str, str], Release | None] = field(default_factory=dict)
    _not_merged_by_me: set[str] = field(default_factory=set)  # asked the forge once: not gitcanary's
    _pull_pages: dict[str, str] = field(default_factory=dict)  # PR number -> its page, as the forge says
    _closed: set[int] = field(default_factory=set)  # PRs this process closed (a tick's list may hold them)
    # Step PR number -> ticks it was read with its mergeability not yet computed / updated while behind.
    _computing: dict[int, int] = field(default_factory=dict)
    _updates: dict[int, int] = field(default_factory=dict)

    def merged_own(self, sha: str) -> bool:
        """Commit `sha` is the forge's merge of one of gitcanary's own PRs.

        This process remembers the merges it made; after a restart the forge is asked: the PR the
        commit's subject names (`TITLE (#N)`, `Merge pull request #N`) must be merged with exactly
        this commit, from one of gitcanary's branches, opened and merged by the account gitcanary's
        token acts as. A subject alone proves nothing (anyone can write one); the forge's answer does.
        """
        if sha in self.merged_by_me:
            return True
        if sha in self._not_merged_by_me or not isinstance(self.forge, KnowsItself):
            return False  # this forge cannot say who gitcanary is: its status is written back once
        message = self.workspace.repo.commit(sha).message
        request = merged_request(message.decode() if isinstance(message, bytes) else message)
        if not request.startswith("#"):
            return False
        try:
            me = self.forge.login()
            pr = self.forge.get(int(request[1:]))
        except (ForgeError, ValueError) as exc:
            log.warning(
                "cannot ask the forge who merged %s (%s): treating it as a person's commit", sha[:12], exc
            )
            return False
        own = (
            pr.merged
            and pr.merge_sha == sha
            and pr.head.startswith(naming.BRANCH_ROOT)
            and pr.author == me
            and pr.merged_by == me
        )
        (self.merged_by_me if own else self._not_merged_by_me).add(sha)
        return own

    # -- per tick, before deciding ---------------------------------------------------------------

    def begin_tick(
        self, canaries: dict[str, LoadedCanary], templates: Mapping[str, MetricTemplate] | None = None
    ) -> None:
        self.forge.begin_tick()
        # A release found is kept per (repository, tag) for the process's life (its excerpt is
        # built once); one not found yet is asked again next tick, as it may be published since.
        found = [(k, v) for k, v in self._releases.items() if v is not None]
        self._releases = dict(found[-RELEASES_KEPT:])
        self.canaries = canaries
        self.templates = templates or {}
        self._open = None
        self._gates = {}
        self._rejections = {}
        self._objections = {}
        self.waiting = {}

    def open_prs(self) -> list[PullRequest]:
        if self._open is None:
            self._open = self.forge.list_open(naming.BRANCH_ROOT)
            self._sweep(self._open)
        return self._open

    def _sweep(self, open_prs: list[PullRequest]) -> None:
        """Delete gitcanary's branches that no open PR uses (closed by a person, or left by a crash).

        Runs before this tick pushes anything, so it never races a branch being opened now.
        """
        try:
            out = self.workspace.repo.git.ls_remote("--heads", REMOTE, naming.BRANCH_ROOT + "*")
        except GitCommandError:
            return
        used = {pr.head for pr in open_prs}
        for line in str(out).splitlines():
            branch = line.split("\t", 1)[-1].removeprefix("refs/heads/")
            if branch.startswith(naming.BRANCH_ROOT) and branch not in used:
                log.info("deleting stale branch %s", branch)
                self.forge.delete_branch(branch)

    def mode(self, loaded: LoadedCanary) -> str:
        return naming.write_mode(loaded.canary, loaded.source, self.settings.mode)

    def gated(self, loaded: LoadedCanary) -> bool:
        return naming.gated(loaded.canary, self.settings.gate)

    def pending(self, loaded: LoadedCanary, status: CanaryStatus | None) -> str | None:
        """Drive this canary's open PRs; a reason when a step PR is still open (the step is not done).

        Also keeps the promotion gate: opens its PR when analysis has started, refreshes its body,
        merges it once approved, and records what the core should observe about it.
        """
        key = loaded.canary.key
        prefix = naming.canary_prefix(key)
        mine = [pr for pr in self.open_prs() if pr.head.startswith(prefix)]
        if self.gated(loaded):
            reason = self._keep_gate(loaded, status, [pr for pr in mine if naming.is_gate_branch(pr.head)])
            if reason:
                self.waiting[key] = reason
                return reason
        for pr in mine:
            if naming.is_gate_branch(pr.head):
                continue
            step_reason = self._drive_step(pr)
            if step_reason:
                self.waiting[key] = step_reason
                return step_reason
        return None

    def after_landing(self, landed: dict[str, tuple[LoadedCanary, CanaryStatus | None]]) -> None:
        """Bring the gate PRs of canaries that just moved up to date in the same tick: open the
        gate of a rollout that started, withdraw a promotion a halt made stale, close a gate
        whose rollout ended or was superseded. Merging waits for the next tick's `pending`."""
        gated = {key: v for key, v in landed.items() if self.gated(v[0])}
        if not gated:
            return
        self.workspace.fetch()  # the gate's placeholder sits on what just landed
        self._open = None  # PRs closed during this tick are gone from the list
        for key, (loaded, status) in gated.items():
            gates = [pr for pr in self.open_prs() if pr.head.startswith(naming.canary_prefix(key))]
            self._keep_gate(
                loaded, status, [pr for pr in gates if naming.is_gate_branch(pr.head)], merge=False
            )

    def gate_state(self, key: str) -> Gate | None:
        return self._gates.get(key)

    def _drive_step(self, pr: PullRequest) -> str | None:
        full = self.forge.get(pr.number)
        rollback = pr.head.rsplit("/", 1)[-1].startswith("rollback-")
        if full.state == "open" and full.mergeable is None:
            # The forge computes mergeability after a push and answers null meanwhile: read again
            # next tick; from UNDECIDED_TICKS reads on, every tick raises an ALERT.
            reads = self._computing[pr.number] = self._computing.get(pr.number, 0) + 1
            if reads >= UNDECIDED_TICKS:
                log.error(
                    "ALERT: the forge has not said whether PR #%d (%s) can merge after %d reads",
                    pr.number,
                    full.url,
                    reads,
                )
            return f"waiting for the forge to compute whether PR #{pr.number} can merge ({full.url})"
        self._computing.pop(pr.number, None)
        if full.mergeable is False:
            # Conflicts with what landed since: the step was decided from a stale state. Decide again.
            log.warning("PR #%d (%s) conflicts with %s: closing it as stale", pr.number, pr.head, pr.base)
            self._drop_step(pr)
            return None
        if full.mergeable_state == "behind":
            # Branch protection wants the head up to date with the base: merge the base into it
            # (the forge's update-branch), at most UNDECIDED_TICKS times; a forge that cannot, a
            # refusal (conflict, head moved) or a base that keeps moving: decide the step again.
            updates = self._updates[pr.number] = self._updates.get(pr.number, 0) + 1
            if updates <= UNDECIDED_TICKS and self.forge.update_branch(pr.number, full.head_sha):
                log.info("PR #%d (%s) is behind %s: updated it from %s", pr.number, pr.head, pr.base, pr.base)
                return f"updating PR #{pr.number} from {pr.base} ({full.url})"
            log.warning("PR #%d (%s) stays behind %s: closing it as stale", pr.number, pr.head, pr.base)
            self._drop_step(pr)
            return None
        if full.mergeable and full.mergeable_state in ("clean", "unstable", "has_hooks"):
            merged = self.forge.merge(pr.number, self.settings.merge_method, sha=full.head_sha)
            if merged:
                self.merged_by_me.add(str(merged))
            if merged:
                log.info("merged PR #%d %s", pr.number, pr.title)
                self.forge.delete_branch(pr.head)
                return f"merged PR #{pr.number}; the next tick goes on from it"
        if rollback:
            log.error(
                "ALERT: rollback PR #%d (%s) cannot be merged (%s); retrying every tick",
                pr.number,
                full.url,
                full.mergeable_state,
            )
        return _why(full)

    def _drop_step(self, pr: PullRequest) -> None:
        """Close a step PR decided from a state that moved on; the tick decides that step again."""
        self.forge.close(pr.number)
        self._closed.add(pr.number)
        self.forge.delete_branch(pr.head)
        self._computing.pop(pr.number, None)
        self._updates.pop(pr.number, None)

    def _keep_gate(
        self,
        loaded: LoadedCanary,
        status: CanaryStatus | None,
        open_gates: list[PullRequest],
        merge: bool = True,
    ) -> str:
        """The gate PR of the rollout in progress; a reason only when this tick merged it.

        Every tick rewrites its body from Git (state, changes, evidence) and its state label; a
        gate of an older rollout is closed with its outcome (superseded, rolled back).
        """
        key = loaded.canary.key
        if status is None or not status.phase.in_rollout or not status.rollout_id:
            for pr in open_gates:  # a gate left from a finished rollout: nothing to decide anymore
                self._finish_gate(loaded, pr, status)
            # Once the rollout has its outcome (not while promoting or finalising), the closed
            # gate links every commit that followed the decision.
            if status is not None and status.rollout_id and status.phase.value in ("Succeeded", "Failed"):
                self._final_refresh(loaded, status.rollout_id)
            return ""
        branch = naming.gate_branch(key, status.rollout_id)
        current = next((pr for pr in open_gates if pr.head == branch), None)
        older = [pr for pr in open_gates if pr is not current]
        if current is None:
            found = self.forge.find(branch, state="all")
            if found is None:
                # The new gate first, so the one it supersedes can link it when it is closed.
                current = self._open_gate(loaded, status, branch)
        for pr in older:
            self._finish_gate(loaded, pr, status, successor=current)
        if current is None:
            if found is not None and found.closed_unmerged:
                self._gates[key] = Gate.REJECTED
                self._rejections[key] = self._rejection(found)
                self._objections[key] = [
                    _safe_login(r.login) for r in self.forge.get(found.number).objections()
                ]
                return ""
            return ""  # merged before the promotion commit: nothing left to gate
        self._gates[key] = Gate.OPEN
        tip = self._branch_tip(branch)
        carries_promotion = tip is not None and _trailers(tip[1]).get("Action") == "promote"
        if carries_promotion and tip is not None and self._stale(loaded, tip[0]):
            tip = self._withdraw(loaded, status, branch, tip)
            carries_promotion = False
        full = self._present(loaded, status, current.number, tip if carries_promotion else None)
        if carries_promotion and tip is not None and merge:
            counted = full.counted()
            objections = full.objections()
            approved = (
                len(counted) >= self.settings.approvals_needed
                and not objections  # a writer's standing change request blocks, as GitHub's rules do
                and bool(full.mergeable)
                and full.mergeable_state in ("clean", "unstable")
            )
            message = self._gate_message(full, tip[0], counted) if approved else None
            method = self.settings.merge_method
            merged = approved and self.forge.merge(current.number, method, sha=full.head_sha, message=message)
            if merged:
                self.merged_by_me.add(str(merged))
            if merged:
                who = ", ".join(r.login for r in counted)
                log.info("%s: promotion approved by %s; merged PR #%d", key, who, current.number)
                self._show_final(loaded, status.rollout_id, full, who)
                if method == "rebase":  # no merge commit: the next step carries the approval
                    self._unrecorded_approvals[key] = [_safe_login(r.login) for r in counted]
                self.forge.delete_branch(branch)
                return f"promotion approved: merged PR #{current.number}"
            if objections:
                who = ", ".join(r.login for r in objections)
                self.waiting[key] = (
                    f"promotion PR #{current.number} blocked by a change request of {who} ({current.url})"
                )
            else:
                self.waiting[key] = f"waiting for approval of promotion PR #{current.number} ({current.url})"
        return ""

    def _stale(self, loaded: LoadedCanary, promotion: str) -> bool:
        """The promotion was decided from a status the branch no longer has (a halt landed since)."""
        status_file = Layout.of(loaded).status
        git = self.workspace.repo.git
        try:
            before = git.rev_parse(f"{promotion}~1:{status_file}")
            now = git.rev_parse(f"{self.workspace.remote_ref}:{status_file}")
        except GitCommandError:
            return False
        return bool(before != now)

    def _withdraw(
        self, loaded: LoadedCanary, status: CanaryStatus, branch: str, tip: tuple[str, str]
    ) -> tuple[str, str]:
        """Replace a stale promotion by a placeholder on the branch's head that remembers it.

        The placeholder's `Gitcanary-Withdrawn` trailer keeps the withdrawn row in the body (from
        Git, after a restart too) and the PR stops conflicting, so nobody approves a dead commit.
        """
        trailers = _trailers(tip[1])
        withdrawn = f"{tip[0]} {trailers.get('Time', '-')} {trailers.get('Weight', '')}".strip()
        log.info("%s: stale promotion %s on the gate PR withdrawn", loaded.canary.key, tip[0][:8])
        sha = self._placeholder(loaded.canary.key, status, {"Withdrawn": withdrawn})
        self._push_ref(sha, branch)
        return sha, str(self.workspace.repo.git.log("-1", "--format=%B", sha))

    def _rejection(self, pr: PullRequest) -> tuple[str, str]:
        return rejection(self.forge, pr)

    # -- what the gate PR shows -----------------------------------------------------------------

    def _view(
        self,
        loaded: LoadedCanary,
        rollout_id: str,
        state: gate.State,
        *,
        promotion: tuple[str, str] | None = None,
        withdrawn: str = "",
        pr: PullRequest | None = None,
        status: CanaryStatus | None = None,
        decided_by: str = "",
        reason: str = "",
        results: list[tuple[str, str]] | None = None,
        superseded_by: str = "",
    ) -> gate.View:
        canary = loaded.canary
        logged = self._rollout_log(rollout_id)
        table = gate.rows(logged, rollout_id)
        # The PR that carried each step: a squash names it in its subject, a merge commit brought
        # it in (read only where step PRs exist: it walks the branch's history).
        pulls = {c.sha: n for c in logged if (n := _pull_number(c.message))}
        if self.mode(loaded) == "pull-request":
            merges = merged_in(self.workspace.repo, self.workspace.remote_ref)
            pulls.update({c.sha: merges[c.sha].request[1:] for c in logged if c.sha in merges})
        table = [
            replace(r, url=self._pull_url(pulls[r.sha]) or r.url) if r.sha in pulls else r for r in table
        ]
        previous = table[-1].weight if table else "0"
        if promotion is not None:
            sha, message = promotion
            when = datetime.fromtimestamp(int(self.workspace.repo.git.log("-1", "--format=%ct", sha)), UTC)
            # A rejected promotion goes where it was decided: before the rollback that followed.
            at = next((i for i, r in enumerate(table) if r.action == "rollback"), len(table))
            before = table[at - 1].weight if at else "0"
            kept = gate.rows([gate.LoggedCommit(sha, when, message)], rollout_id)
            table[at:at] = [replace(row, measured_at=before, pending=True) for row in kept]
        if withdrawn:
            sha, _, rest = withdrawn.partition(" ")
            when_text, _, weight = rest.partition(" ")
            when = gate.decided_at({"Time": when_text}, self.clock())
            table.append(gate.Row(sha, when, "promote", weight, previous, withdrawn=True, url="-"))
        primary, _, rest = rollout_id.partition("..")
        metrics = [
            gate.Metric(
                m.name,
                m.interval or gate.DEFAULT_WINDOW,
                m.threshold_range.min if m.threshold_range else None,
                m.threshold_range.max if m.threshold_range else None,
                self.settings.metric_link,
                self._query(loaded, m) if "{query}" in self.settings.metric_link else "",
            )
            for m in canary.spec.analysis.metrics
        ]
        changes, diff = self._changes(loaded, logged[0] if logged else None)
        configs, config_notes = self._configs(loaded, logged[0] if logged else None)
        if any(not note.startswith("config ConfigMap ") for note in config_notes):
            diff = ""  # a Secret's file (or a generator's source) would show its values
        approvals: tuple[gate.Approval, ...] = ()
        objections: tuple[tuple[str, str], ...] = ()
        head = ""
        if pr is not None:
            head = pr.head_sha if promotion is not None else ""
            counted = {r.login for r in pr.counted()} if promotion is not None else set()
            approvals = tuple(
                gate.Approval(r.login, r.commit, r.login in counted, _why_not(r, head))
                for r in pr.reviews
                if r.state == "APPROVED"
            )
            objections = tuple((r.login, _one_line(r.body)) for r in pr.objections())
        return gate.View(
            key=canary.key,
            primary=status.primary_revision if status else primary,
            canary=status.canary_revision if status else rest.split("/", 1)[0],
            rollout_id=rollout_id,
            state=state,
            rows=table,
            metrics=metrics,
            web_url=self.forge.web_url,
            commit_base=_commit_url(self.forge, "").rstrip("/"),
            now=self.clock(),
            changes=changes,
            spec_diff=diff,
            configs=configs,
            config_notes=config_notes if not configs else (),
            status_message=status.message if status else "",
            approvals=approvals,
            objections=objections if not state.final else (),
            head_sha=head,
            decided_by=decided_by,
            reason=reason,
            results=results or [],
            superseded_by=superseded_by,
            namespace=canary.metadata.namespace or "",
            name=canary.metadata.name,
        )

    def _pull_url(self, number: str) -> str:
        """The page of PR/MR `number` as the forge itself gives it (GitHub `/pull/N`, GitLab
        `/-/merge_requests/N`, Gitea `/pulls/N`), asked once per process; "" when it cannot say."""
        if number not in self._pull_pages:
            try:
                self._pull_pages[number] = self.forge.get(int(number)).url
            except (ForgeError, ValueError) as exc:
                log.warning("the page of PR %s: %s", number, exc)
                return ""
        return self._pull_pages[number]

    def _changes(
        self, loaded: LoadedCanary, first: gate.LoggedCommit | None
    ) -> tuple[list[gate.Change], str]:
        """What the rollout changes, from its start commit: image lines, who bumped, the bump commit."""
        if first is None:
            return [], ""
        bumped_by = _trailers(first.message).get("Bumped-By", "")
        git = self.workspace.repo.git
        changes = []
        for line in first.message.splitlines():
            found = IMAGE_LINE.match(line.strip())
            if not found:
                continue
            path = found["where"].split(" ", 1)[0]
            bump = ""
            try:
                history = str(git.log("-5", "--format=%H %ae", f"{first.sha}~1", "--", path))
            except GitCommandError:
                history = ""
            for entry in history.splitlines():
                sha, _, email = entry.partition(" ")
                if email != self.workspace.identity.email:
                    bump = _commit_url(self.forge, sha)
                    break
            new = _tag(found["new"])
            source = self._source_repo(loaded, found["name"], found["new"])
            # A digest (or an image left whole) names no tag a release could have.
            tagged = source and not any(c in new for c in "/@:")
            allowed = not source or self._may_read(found["name"], found["new"], source)
            release = self._release(source, new) if tagged and allowed else None
            changes.append(
                gate.Change(
                    found["name"],
                    _tag(found["old"]),
                    new,
                    found["where"],
                    bumped_by,
                    bump,
                    source,
                    release.url if release else "",
                    release.body if release else "",
                    refused=not allowed,
                )
            )
        if changes:
            return changes, ""
        # No image changed: the rest of the pod template did. Show the user's files as changed
        # since gitcanary's last commit before the start.
        directory = loaded.source.split("#", 1)[0].rsplit("/", 1)[0] or "."
        try:
            author = f"--author={self.workspace.identity.email}"
            base = str(git.log("-1", "--format=%H", author, f"{first.sha}~1"))
            diff = str(git.diff(base, f"{first.sha}~1", "--", directory)) if base else ""
        except GitCommandError:
            diff = ""
        lines = diff.splitlines()
        if len(lines) > SPEC_DIFF_LINES:
            lines = [*lines[:SPEC_DIFF_LINES], f"... {len(lines) - SPEC_DIFF_LINES} more lines"]
        return [], without_credentials("\n".join(lines).replace("```", "` ` `"))

    def _configs(
        self, loaded: LoadedCanary, first: gate.LoggedCommit | None
    ) -> tuple[list[config_writeback.ConfigDiff], list[str]]:
        """The tracked config the rollout changes: the primary's `-primary` copies at the start
        commit hold the promoted config, the app's build now holds the canary's. Read only when the
        start commit names a config change (a build per tick costs a kustomize run)."""
        if first is None:
            return [], []
        notes = [line.strip() for line in first.message.splitlines() if CONFIG_LINE.match(line.strip())]
        if not notes:
            return [], []
        layout = Layout.of(loaded)
        try:
            text = self.workspace.read(layout.primary, first.sha) or ""
            copies = [d for d in yamlio.safe_load_all(text, layout.primary) if isinstance(d, dict)]
            rendered = render_target(self.workspace.root, loaded)
            found = config_writeback.diffs(self.workspace.root, layout.app_dir, copies, rendered.configs)
        except GitcanaryError as exc:
            log.warning("%s: config diff for the gate PR not built: %s", loaded.canary.key, exc)
            found = []
        return found, notes

    def _query(self, loaded: LoadedCanary, metric: CanaryMetric) -> str:
        """The metric's query as the analysis renders it (templateRef, inline, builtin), one line."""
        canary = loaded.canary
        text = metric.query or ""
        if metric.template_ref is not None:
            key = f"{metric.template_ref.namespace or canary.namespace}/{metric.template_ref.name}"
            template = self.templates.get(key)
            text = template.spec.query if template else ""
        elif not text:
            builtin = builtin_metric(canary.provider, metric.name)
            text = builtin.query if builtin else ""
        interval = metric.interval or gate.DEFAULT_WINDOW
        model = QueryModel.for_canary(canary, interval, metric.template_variables)
        try:
            return " ".join(render_query(text, model).split())
        except AnalysisError:
            return ""

    def _source_repo(self, loaded: LoadedCanary, container: str, image: str) -> str:
        """Where the image's release notes are: the canary's `gitcanary.io/source-repo`, else the
        configured `--release-notes`, else the repository the image's path names on this forge
        (`ghcr.io/acme/app:1.2` -> `acme/app`); "" when none of them names one."""
        repository = image.split("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        annotated = naming.source_repos(loaded.canary)
        if container in annotated or "" in annotated:
            return annotated.get(container) or annotated[""]
        for key, repo in self.settings.release_notes:
            if key in (container, repository) and naming.valid_repo(repo):
                return repo
        first, _, rest = repository.partition("/")
        # A registry host (a dot or a port, or localhost) is not part of the repository's path.
        path = rest if ("." in first or ":" in first or first == "localhost") else repository
        return path if naming.valid_repo(path) else ""

    def _may_read(self, container: str, image: str, repo: str) -> bool:
        """Whether the gate may quote releases of `repo`: the operator's `--release-notes` named
        it for this image, or it is under an owner or is a repository `--release-notes-from`
        allows (default: the config repository's own owner). `gitcanary.io/source-repo` and an
        image's path are the repository writer's choice, and the bot's token may read private
        repositories they could not."""
        repository = image.split("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        if any(key in (container, repository) and r == repo for key, r in self.settings.release_notes):
            return True
        return naming.may_read(repo, self.settings.release_notes_from or (self._own_owner(),))

    def _own_owner(self) -> str:
        """The config repository's owner (a GitLab project's group path), from the forge's page."""
        path = urlsplit(self.forge.web_url).path.strip("/")
        return path.rpartition("/")[0]

    def _release(self, repo: str, tag: str) -> Release | None:
        """The release of `tag` (or `v` + tag, the other habit) in `repo`, asked once a tick; a
        forge error is logged and shows as none found, so it never stops the gate."""
        if (repo, tag) not in self._releases:
            found = None
            for name in dict.fromkeys([tag, tag if tag.startswith("v") else f"v{tag}"]):
                try:
                    found = self.forge.release(repo, name)
                except ForgeError as exc:
                    log.warning("release notes of %s %s: %s", repo, name, exc)
                    break
                if found is not None:
                    break
            if found is not None and not _same_site(found.url, self.forge.web_url):
                log.warning("release %s of %s links off the forge (%s): not shown", tag, repo, found.url)
                found = None
            self._releases[(repo, tag)] = found
        return self._releases[(repo, tag)]

    def _present(
        self, loaded: LoadedCanary, status: CanaryStatus, number: int, promotion: tuple[str, str] | None
    ) -> PullRequest:
        """Rewrite the open gate's body and label for its state now; comment when a person is needed."""
        full = self.forge.get(number)
        if promotion is not None:
            enough = len(full.counted()) >= self.settings.approvals_needed and not full.objections()
            state = gate.State.APPROVED if enough else gate.State.WAITING
        elif status.failed_checks > 0:
            state = gate.State.HALTED
        else:
            state = gate.State.ANALYSING
        tip = self._branch_tip(full.head) if promotion is None else None
        withdrawn = _trailers(tip[1]).get("Withdrawn", "") if tip else ""
        reason = ""
        if state is gate.State.HALTED:
            # "failure 1 of 2": how close the rollout is to rolling back (the analysis threshold).
            threshold = loaded.canary.spec.analysis.threshold
            count = (
                f"failure {status.failed_checks} of {threshold}"
                if threshold
                else f"failure {status.failed_checks}"
            )
            last = self._last_failure(status.rollout_id)
            reason = f"{count}: {last}" if last else count
        view = self._view(
            loaded,
            status.rollout_id,
            state,
            promotion=promotion,
            withdrawn=withdrawn,
            pr=full,
            status=status,
            reason=reason,
        )
        self._write(full, view)
        if promotion is not None and full.draft:
            self.forge.set_draft(number, False)
            logins, teams = self._reviewers(loaded)
            self._ask(number, logins, teams)
        elif promotion is None and not full.draft:
            self.forge.set_draft(number, True)
        return full

    def _write(self, pr: PullRequest, view: gate.View) -> None:
        text = gate.body(view)
        if text.strip() != pr.body.strip():
            self.forge.update_body(pr.number, text)
        label = view.state.label
        if label not in pr.labels:
            self.forge.set_state_label(pr.number, label, gate.LABEL_PREFIX)
            if view.state.needs_a_person:
                self.forge.comment(pr.number, gate.comment(view) + "\n\n" + gate.COMMENT_MARKER)

    def _ask(self, number: int, logins: list[str], teams: list[str]) -> None:
        """Ask for the gate's reviews; a login or team the forge refuses (unknown there, no
        access) is skipped, the tick goes on, and one comment on the PR says who was not asked."""
        try:
            self.forge.request_reviewers(number, logins, teams)
            return
        except ForgeError as exc:
            log.warning("requesting reviewers on #%d: %s; asking one by one", number, exc)
        refused: list[str] = []
        for name, as_team in [*((login, False) for login in logins), *((team, True) for team in teams)]:
            try:
                self.forge.request_reviewers(number, [] if as_team else [name], [name] if as_team else [])
            except ForgeError as exc:
                log.warning("reviewer %s not asked on #%d: %s", name, number, exc)
                refused.append(f"team {name}" if as_team else name)
        if refused:
            names = ", ".join(md.code(name) for name in refused)
            self.forge.comment(
                number,
                f"gitcanary could not ask {names} for a review: the forge refused (unknown there, or "
                "no access to this repository). Check `gitcanary.io/reviewers`, `--reviewers` and "
                "CODEOWNERS.\n\n" + gate.COMMENT_MARKER,
            )

    def _last_failure(self, rollout_id: str) -> str:
        for commit in reversed(self._rollout_log(rollout_id)):
            if _trailers(commit.message).get("Action") in ("halt", "rollback"):
                checks, _ = gate.checks_of(commit.message)
                failed = [c.text for c in checks if not c.ok]
                return "; ".join(failed) or commit.message.split("\n", 1)[0]
        return ""

    def _reviewers(self, loaded: LoadedCanary) -> tuple[list[str], list[str]]:
        """The canary's `gitcanary.io/reviewers`, gitcanary's `--reviewers` and the CODEOWNERS of
        the canary's manifest, together; logins and teams apart, as GitHub asks for them."""
        owners = naming.reviewers(loaded.canary) + list(self.settings.reviewers)
        source = loaded.source.split("#", 1)[0]
        for name in CODEOWNERS_FILES:
            text = self.workspace.read(name, self.workspace.remote_ref)
            if text is not None:
                owners += codeowners(text, source)
                break
        logins: list[str] = []
        teams: list[str] = []
        for owner in owners:
            name = owner.lstrip("@")
            if owner.startswith("team:"):
                teams.append(owner.removeprefix("team:"))
            elif "/" in name and owner.startswith("@"):
                teams.append(name.split("/", 1)[1])
            elif "/" not in name and "@" not in name:  # an email in CODEOWNERS names no login
                logins.append(name)
        return list(dict.fromkeys(logins)), list(dict.fromkeys(teams))

    def _finish_gate(
        self,
        loaded: LoadedCanary,
        pr: PullRequest,
        status: CanaryStatus | None,
        successor: PullRequest | None = None,
    ) -> None:
        """Close a gate whose rollout is over or replaced, saying which and linking what followed
        (a superseded gate: the new rollout's start and the gate PR that follows it)."""
        rollout = self._rollout_of(pr)
        full = self.forge.get(pr.number)
        if status is not None and status.rollout_id and rollout and status.rollout_id != rollout:
            view = self._view(
                loaded,
                rollout,
                gate.State.SUPERSEDED,
                pr=full,
                superseded_by=status.canary_revision,
                results=self._results(status.rollout_id, limit=1)
                + ([(f"the new gate #{successor.number}", successor.url)] if successor is not None else []),
                decided_by=self._bumped_by(status.rollout_id),
            )
            self._write(full, view)
        elif rollout:
            self._final_body(loaded, rollout, full)
        self.forge.close(pr.number)
        self._closed.add(pr.number)
        self.forge.delete_branch(pr.head)

    def _bumped_by(self, rollout_id: str) -> str:
        """Who made the change a rollout started for (its start commit's `Bumped-By`, name only)."""
        for commit in self._rollout_log(rollout_id):
            bumper = _trailers(commit.message).get("Bumped-By", "")
            if bumper:
                return bumper.split(" <", 1)[0]
        return ""

    def _rollout_of(self, pr: PullRequest) -> str:
        tip = self._branch_tip(pr.head)
        return _trailers(tip[1]).get("Rollout", "") if tip else ""

    def _final_refresh(self, loaded: LoadedCanary, rollout_id: str) -> None:
        """Once per rollout and process: the finished rollout's closed gate shows the final outcome."""
        if rollout_id in self._finalized:
            return
        found = self.forge.find(naming.gate_branch(loaded.canary.key, rollout_id), state="all")
        if found is None or found.open or self._final_body(loaded, rollout_id, found):
            self._finalized.add(rollout_id)

    def _final_body(self, loaded: LoadedCanary, rollout_id: str, pr: PullRequest) -> bool:
        """Write a finished rollout's outcome on its gate; False while Git does not show one yet."""
        logged = self._rollout_log(rollout_id)
        actions = [_trailers(c.message).get("Action", "") for c in logged]
        results = self._results(rollout_id)
        if "rollback" in actions:
            rollback = logged[actions.index("rollback")].message
            rejected = re.search(r"^Rejected-by: *(\S+)", rollback, re.M)
            said = re.search(r"^Rejected by @\S+: (.*)$", rollback, re.M)
            kept = None
            if rejected:
                state, who, why = gate.State.REJECTED, rejected[1], said[1] if said else ""
                kept = self._rejected_promotion(pr.head)
            else:
                state, who, why = gate.State.ROLLED_BACK, "", self._last_failure(rollout_id)
            view = self._view(
                loaded, rollout_id, state, promotion=kept, pr=pr, decided_by=who, reason=why, results=results
            )
        elif "promote" in actions:
            who = ", ".join(self._approvers_in_git()) or "a person merging this PR"
            view = self._view(loaded, rollout_id, gate.State.PROMOTED, pr=pr, decided_by=who, results=results)
        else:
            return False
        self._write(pr, view)
        return True

    def _rejected_promotion(self, branch: str) -> tuple[str, str] | None:
        """The promotion commit a person rejected, so the final body keeps the measurement they
        saw: the gate branch's tip, else the copy fetched while the gate was open (the branch may
        be deleted by now); None when neither is a promotion (e.g. after a restart)."""
        tip = self._branch_tip(branch)
        if tip is None:
            git = self.workspace.repo.git
            try:
                sha = str(git.rev_parse("--verify", f"refs/gitcanary/{branch}^{{commit}}"))
                tip = sha, str(git.log("-1", "--format=%B", sha))
            except GitCommandError:
                return None
        return tip if _trailers(tip[1]).get("Action") == "promote" else None

    def _show_final(self, loaded: LoadedCanary, rollout_id: str, pr: PullRequest, decided_by: str) -> None:
        self.workspace.fetch()
        results = self._results(rollout_id)
        view = self._view(
            loaded, rollout_id, gate.State.PROMOTED, pr=pr, decided_by=decided_by, results=results
        )
        self._write(pr, view)

    def _approvers_in_git(self) -> list[str]:
        """The newest gate merge's Approved-by trailers (the merge or squash commit carries them)."""
        text = str(
            self.workspace.repo.git.log(
                "-1", "--format=%B", "--fixed-strings", "--grep=Approved-by:", self.workspace.remote_ref
            )
        )
        return list(dict.fromkeys(re.findall(r"^Approved-by: *(\S+)", text, re.M)))

    def _results(self, rollout_id: str, limit: int = 0) -> list[tuple[str, str]]:
        """The commits that followed a decision: promote, finalize, succeed, or the rollback."""
        wanted = ("restart", "start") if limit else ("promote", "finalize", "succeed", "rollback")
        out = []
        for commit in self._rollout_log(rollout_id):
            action = _trailers(commit.message).get("Action", "")
            if action in wanted:
                out.append((f"{action} `{commit.sha[:7]}`", _commit_url(self.forge, commit.sha)))
        return out[-limit:] if limit else out

    def _gate_message(self, pr: PullRequest, head: str, counted: tuple[Review, ...]) -> str | None:
        """The gate's merge message: the approval, which otherwise lives only on the forge, as
        `Approved-by: LOGIN` trailers (one per approver) that `gitcanary history` reads back.

        `merge`: the merge commit's body, the PR title as GitHub's default has it, then the trailers.
        `squash`: every commit's message (GitHub's default list, which this replaces, so the
        audit still splits the squash into its steps), then the trailers as a paragraph of their own.
        `rebase`: GitHub replays the commits and makes no commit of its own, so there is no
        message to carry the approval: it stays on the gate PR on GitHub only, and the replayed
        commits name no PR either.
        """
        method = self.settings.merge_method
        if method == "rebase" or not counted:
            return None
        trailers = "\n".join(f"Approved-by: {_safe_login(r.login)}" for r in counted)
        if method == "merge":
            return f"{pr.title}\n\n{trailers}\n"
        out = str(
            self.workspace.repo.git.log(
                "--reverse", "--format=%B%x00", f"{self.workspace.remote_ref}..{head}"
            )
        )
        steps = [f"* {text.strip()}" for text in out.split("\x00") if text.strip()]
        # Joined to the last step's trailer block (no blank line between), so `git interpret-trailers
        # --parse` of the squash returns the Gitcanary-* trailers and the approval together.
        return "\n\n".join(steps) + "\n" + trailers + "\n"

    # -- git plumbing ----------------------------------------------------------------------------

    def _git_env(self) -> dict[str, str]:
        ident = self.workspace.identity
        return {
            "GIT_AUTHOR_NAME": ident.name,
            "GIT_AUTHOR_EMAIL": ident.email,
            "GIT_COMMITTER_NAME": ident.name,
            "GIT_COMMITTER_EMAIL": ident.email,
        }

    def _sign(self) -> str:
        key = self.workspace.signing_key
        return f"--gpg-sign={key}" if key else "--no-gpg-sign"

    def _rebuild(self, base: str, shas: list[str]) -> str:
        """`shas` replayed on `base` on the scratch branch; the new head."""
        git = self.workspace.repo.git
        git.checkout("-B", SCRATCH, base)
        for sha in shas:
            try:
                with git.custom_environment(**self._git_env()):
                    git.cherry_pick(sha, "--allow-empty", "--keep-redundant-commits", self._sign())
            except GitCommandError as exc:
                git.cherry_pick("--abort")
                raise GitError(f"cannot replay {sha[:8]} on {base[:8]}: {exc.stderr}") from exc
            amended = self._amended_message(sha)
            if amended is not None:
                note = Path(self.workspace.repo.git_dir) / "GITCANARY_AMENDED_MSG"
                note.write_text(amended)
                with git.custom_environment(**self._git_env()):
                    git.commit("--amend", "--allow-empty", "-F", str(note), self._sign())
        return str(git.rev_parse("HEAD"))

    def _amended_message(self, sha: str) -> str | None:
        """The message `sha` must carry instead of its own, when a person's decision on the gate
        has to reach Git through it; None to keep it.

        - A rollback of a gate a person closed: `Rejected by @LOGIN: REASON` in the body and
          `Rejected-by: LOGIN` joined to the trailer block (as `Approved-by` is).
        - The finalize step after a gate merged with `rebase` (which makes no commit of its own to
          carry the approval): `Approved-by: LOGIN` joined to that step's trailer block.
        """
        message = str(self.workspace.repo.git.log("-1", "--format=%B", sha))
        trailers = _trailers(message)
        approvers = self._unrecorded_approvals.get(trailers.get("Canary", ""))
        if (
            approvers
            and trailers.get("Action") in ("finalize", "succeed")
            and "\nApproved-by:" not in message
        ):
            return message.rstrip("\n") + "\n" + "".join(f"Approved-by: {login}\n" for login in approvers)
        rejection = self._rejections.get(trailers.get("Canary", ""))
        if trailers.get("Action") != "rollback" or rejection is None or "\nRejected-by:" in message:
            return None
        return rejected_message(message, *rejection, self._objections.get(trailers.get("Canary", ""), []))

    def _push_branch(self, branch: str) -> None:
        """Push the scratch head to gitcanary's own branch, replacing it (only gitcanary writes there)."""
        try:
            self.workspace.repo.git.push(REMOTE, f"+HEAD:refs/heads/{branch}", "--porcelain")
        except GitCommandError as exc:
            raise GitError(
                without_credentials(f"git push of {branch} to {self.workspace.url} failed: {exc.stderr}")
            ) from None

    def _branch_tip(self, branch: str) -> tuple[str, str] | None:
        """(sha, message) of the remote branch's head, or None when it does not exist."""
        git = self.workspace.repo.git
        local = f"refs/gitcanary/{branch}"
        try:
            git.fetch(REMOTE, f"+refs/heads/{branch}:{local}", "--no-tags")
        except GitCommandError:
            return None
        sha = str(git.rev_parse(local))
        return sha, str(git.log("-1", "--format=%B", sha))

    # -- the gate PR -----------------------------------------------------------------------------

    def _open_gate(self, loaded: LoadedCanary, status: CanaryStatus, branch: str) -> PullRequest:
        """The rollout's gate PR, opened as a draft when analysis starts, on a placeholder commit.

        GitHub opens no PR without a commit; the placeholder changes nothing, and the promotion
        commit replaces it when the analysis passes (then the PR becomes ready for review).
        """
        key = loaded.canary.key
        logged = self._rollout_log(status.rollout_id)
        changed = ", ".join(
            dict.fromkeys(
                " ".join(line.split(" ", 3)[1:3]).rstrip(":")
                for line in (logged[0].message.splitlines() if logged else [])
                if CONFIG_LINE.match(line.strip())
            )
        )
        title = naming.gate_title(key, status.primary_revision, status.canary_revision, changed)
        sha = self._placeholder(key, status, {})
        self._push_ref(sha, branch)
        pr = self.forge.open(
            branch, self.workspace.branch, title, "gitcanary is preparing this rollout.", draft=True
        )
        log.info("%s: opened promotion gate PR #%d %s", key, pr.number, pr.url)
        if self._open is not None:
            self._open.append(pr)
        return pr

    def _placeholder(self, key: str, status: CanaryStatus, extra: dict[str, str]) -> str:
        """An empty commit on the branch's head that holds the gate PR open until a promotion."""
        git = self.workspace.repo.git
        message = format_message(
            f"gitcanary: promotion gate for {key} {status.primary_revision} -> {status.canary_revision}",
            ["Placeholder: the promotion commit replaces it once the analysis has passed. Do not merge yet."],
            {"Canary": key, "Action": "gate", "Rollout": status.rollout_id, **extra},
        )
        base = self.workspace.remote_ref
        # Plumbing, not checkout: this runs while the reconciler is committing on its branch.
        with git.custom_environment(**self._git_env()):
            return str(git.commit_tree(f"{base}^{{tree}}", "-p", base, "-m", message, self._sign()))

    def _push_ref(self, sha: str, branch: str) -> None:
        try:
            self.workspace.repo.git.push(REMOTE, f"+{sha}:refs/heads/{branch}", "--porcelain")
        except GitCommandError as exc:
            raise GitError(
                without_credentials(f"git push of {branch} to {self.workspace.url} failed: {exc.stderr}")
            ) from None

    def _rollout_log(self, rollout_id: str) -> list[gate.LoggedCommit]:
        out = self.workspace.repo.git.log(
            "--reverse",
            "--fixed-strings",
            f"--grep=Gitcanary-Rollout: {rollout_id}",
            "--format=%H%x00%ct%x00%B%x01",
            self.workspace.remote_ref,
        )
        commits = []
        for record in str(out).split("\x01"):
            record = record.strip("\n")
            if record:
                sha, when, message = record.split("\x00", 2)
                commits.append(gate.LoggedCommit(sha, datetime.fromtimestamp(int(when), UTC), message))
        return commits

    # -- per tick, after deciding ----------------------------------------------------------------

    def _route(self, sha: str) -> _Routed:
        message = str(self.workspace.repo.git.log("-1", "--format=%B", sha))
        trailers = _trailers(message)
        key = trailers.get("Canary", "")
        loaded = self.canaries.get(key)
        action = trailers.get("Action", "")
        if loaded is None:
            return _Routed(sha, key, trailers, "direct")
        if action == "rollback":
            return _Routed(sha, key, trailers, "rollback")
        if action == "promote" and self.gated(loaded) and self._gates.get(key) is Gate.OPEN:
            return _Routed(sha, key, trailers, "gate")
        if self.mode(loaded) == "pull-request":
            return _Routed(sha, key, trailers, "step")
        return _Routed(sha, key, trailers, "direct")

    def publish(self, base: str, commits: list[str]) -> bool:
        """Route this tick's commits; False when all go straight to the branch (the caller pushes)."""
        routed = [self._route(sha) for sha in commits]
        if all(r.route == "direct" for r in routed) and not any(self._amended_message(r.sha) for r in routed):
            return False
        direct = [r for r in routed if r.route in ("direct", "rollback")]
        later = [r for r in routed if r.route in ("step", "gate")]
        refused: list[_Routed] = []
        if direct:
            self._rebuild(base, [r.sha for r in direct])
            try:
                self.workspace.push()
            except PushRejected:
                raise  # the branch moved: the reconciler's retry decides again on the new head
            except GitError as exc:
                # A protected branch refuses the bot's pushes: those commits go through PRs instead.
                log.warning("direct push refused (%s); opening PRs instead", exc)
                refused = direct
        for r in refused:
            if r.route == "rollback":
                self._close_steps(r.key)
            self._step_pr(r, merge_now=True)
        for r in later:
            if r.route == "gate":
                self._gate_commit(r)
            else:
                self._step_pr(r, merge_now=True)
        for r in direct:
            if r.route == "rollback" and r not in refused:
                self._close_steps(r.key)
        for r in routed:
            if r.trailers.get("Action") == "finalize":  # it carried them (directly or in its PR)
                self._unrecorded_approvals.pop(r.key, None)
            loaded = self.canaries.get(r.key)
            if (
                r.route == "rollback"
                and r.trailers.get("Rollout")
                and loaded is not None
                and self.gated(loaded)
            ):
                # A gate a person closed shows who rejected it in the same tick the rollback lands.
                self.workspace.fetch()
                self._final_refresh(loaded, r.trailers["Rollout"])
            if r.route == "rollback" and r.trailers.get("Rollout"):
                # The rollout is over: its gate branch (PR closed, or closed above) goes too.
                self.forge.delete_branch(naming.gate_branch(r.key, r.trailers["Rollout"]))
        return True

    def _close_steps(self, key: str) -> None:
        """A rollback makes this canary's open step and gate PRs moot: close them, delete their branches."""
        prefix = naming.canary_prefix(key)
        loaded = self.canaries.get(key)
        for pr in self.forge.list_open(prefix):
            if pr.head.rsplit("/", 1)[-1].startswith("rollback-"):
                continue
            if loaded is not None and naming.is_gate_branch(pr.head):
                self.workspace.fetch()  # the rollback has landed: the body links it
                self._finish_gate(loaded, pr, None)
                continue
            self.forge.close(pr.number)
            self._closed.add(pr.number)
            self.forge.delete_branch(pr.head)

    def _remote_head(self) -> str:
        return self.workspace.fetch()

    def _step_pr(self, r: _Routed, merge_now: bool) -> None:
        branch = naming.step_branch(r.key, r.trailers)
        existing = self.forge.find(branch)
        if existing is None:
            self._rebuild(self._remote_head(), [r.sha])
            self._push_branch(branch)
            message = str(self.workspace.repo.git.log("-1", "--format=%B", "HEAD"))
            title = message.partition("\n")[0]
            # Only the gate of this step's own rollout, while it is open: never a closed or
            # superseded one (the list is read once a tick; a gate closed since is left out).
            wanted = (
                naming.gate_branch(r.key, r.trailers.get("Rollout", "")) if r.trailers.get("Rollout") else ""
            )
            gates = [
                pr for pr in self.open_prs() if wanted and pr.head == wanted and pr.number not in self._closed
            ]
            body = gate.step_body(message, gates[0].url if gates else "")
            existing = self.forge.open(branch, self.workspace.branch, title, body)
            # Labelled, so watchers can filter step PRs out of their notifications.
            self.forge.set_state_label(existing.number, gate.STEP_LABEL, gate.LABEL_PREFIX)
            log.info("%s: opened PR #%d %s", r.key, existing.number, existing.url)
        self._carried_by(r.sha, existing)
        if not merge_now:
            return
        try:
            merged = self.forge.merge(
                existing.number, self.settings.merge_method, message=self._step_message(existing)
            )
            if merged:
                self.merged_by_me.add(str(merged))
        except ForgeError as exc:
            merged = None
            log.warning("merging PR #%d failed: %s", existing.number, exc)
        if merged:
            log.info("%s: merged PR #%d", r.key, existing.number)
            self.forge.delete_branch(branch)
            return
        if r.route == "rollback":
            log.error(
                "ALERT: rollback of %s could not be pushed or merged (PR #%d %s); retrying every tick",
                r.key,
                existing.number,
                existing.url,
            )
        self.waiting[r.key] = _why(self.forge.get(existing.number))

    def _gate_commit(self, r: _Routed) -> None:
        """Put the promotion commit on the gate PR, unless it already carries one decided from this state."""
        loaded = self.canaries[r.key]
        rollout = r.trailers.get("Rollout", "")
        branch = naming.gate_branch(r.key, rollout)
        head = self._remote_head()
        tip = self._branch_tip(branch)
        status_file = Layout.of(loaded).status
        if tip is not None and _trailers(tip[1]).get("Action") == "promote":
            git = self.workspace.repo.git
            try:
                same = git.rev_parse(f"{tip[0]}~1:{status_file}") == git.rev_parse(f"{head}:{status_file}")
            except GitCommandError:
                same = False
            if same:
                return
        self._rebuild(head, [r.sha])
        self._push_branch(branch)
        log.info("%s: promotion commit added to the gate PR (%s)", r.key, branch)
        pr = self.forge.find(branch)
        status = self._status_at(loaded, head)
        if pr is not None and status is not None:
            self._present(loaded, status, pr.number, self._branch_tip(branch))
        if pr is not None:
            self._carried_by(r.sha, pr)
            self.waiting[r.key] = f"waiting for approval of promotion PR #{pr.number} ({pr.url})"

    def _step_message(self, pr: PullRequest) -> str | None:
        """The merge message of a step PR: says gitcanary merged it, so `history` does not count
        it as an approval. `squash`: the note, then the step's message, whose trailer block stays
        last for `git interpret-trailers`; `rebase` makes no commit to carry it."""
        method = self.settings.merge_method
        if method == "merge":
            return f"{pr.title}\n\n{STEP_MERGE_NOTE}\n"
        if method == "squash":
            tip = self._branch_tip(pr.head)
            return f"{STEP_MERGE_NOTE}\n\n{tip[1].strip()}\n" if tip else None
        return None

    def _carried_by(self, sha: str, pr: PullRequest) -> None:
        message = self.workspace.repo.commit(sha).message
        text = message.decode() if isinstance(message, bytes) else message
        self.pull_urls[text.strip()] = pr.url

    def _status_at(self, loaded: LoadedCanary, rev: str) -> CanaryStatus | None:
        from gitcanary.manifests import yamlio

        text = self.workspace.read(Layout.of(loaded).status, rev)
        if text is None:
            return None
        try:
            return CanaryStatus.from_document(yamlio.load(text))
        except (GitcanaryError, ValueError, KeyError):
            return None


def _why(pr: PullRequest) -> str:
    """What an open PR waits for, in `gitcanary status` words."""
    if pr.mergeable_state == "blocked":
        return f"waiting for review of PR #{pr.number} ({pr.url})"
    return f"waiting for PR #{pr.number} to become mergeable ({pr.mergeable_state}, {pr.url})"


def _same_site(url: str, web_url: str) -> bool:
    """`url` is a web page on the forge gitcanary talks to (same scheme and host)."""
    a, b = urlsplit(url), urlsplit(web_url)
    return bool(a.scheme in ("http", "https") and (a.scheme, a.netloc) == (b.scheme, b.netloc))


def rejection(forge: Forge, pr: PullRequest) -> tuple[str, str]:
    """Who closed the gate and why. Where the forge names who closed it (GitHub's issue `closed`
    event, GitLab's `closed_by`, Gitea's timeline `close` event): that person, and their own
    last comment (GitHub's "Close with comment" posts it just before closing), else their last
    review with a text, else no reason: another person's words are never taken for theirs.
    Where it does not: the last comment by a person, else the last review with a text;
    "unknown" otherwise."""
    full = forge.get(pr.number)
    if full.closed_by:
        closer = full.closed_by
        said = [c.body for c in forge.comments(pr.number) if c.login == closer]
        said = [b for b in said if gate.COMMENT_MARKER not in b]
        said = said or [r.body for r in full.reviews if r.login == closer and r.body.strip()]
        return _safe_login(closer), _one_line(said[-1] if said else "")
    for comment in reversed(forge.comments(pr.number)):
        if gate.COMMENT_MARKER not in comment.body:
            return _safe_login(comment.login), _one_line(comment.body)
    for review in reversed(full.reviews):
        if review.body.strip():
            return _safe_login(review.login), _one_line(review.body)
    return "unknown", ""


def rejected_message(message: str, login: str, reason: str, objectors: list[str]) -> str | None:
    """A rollback commit's message with the person who closed the gate: "Rejected by @LOGIN:
    REASON" (or "(no reason given)") under its body, `Rejected-by: LOGIN` and one
    `Objected-by: LOGIN` per standing change request joined to its trailer block."""
    said = f"Rejected by @{login}: {reason}" if reason else f"Rejected by @{login} (no reason given)"
    head, cut, block = message.rstrip("\n").rpartition("\n\n")
    if not cut:
        return None
    objected = "".join(f"Objected-by: {o}\n" for o in objectors)
    return f"{head}\n{said}\n\n{block}\nRejected-by: {login}\n{objected}"


def _commit_url(forge: Forge, sha: str) -> str:
    """The forge's own page of a commit (GitLab's is under `/-/`); REPO/commit/SHA elsewhere."""
    made = getattr(forge, "commit_url", None)
    return str(made(sha)) if callable(made) else f"{forge.web_url}/commit/{sha}"


def _safe_login(login: str) -> str:
    """A forge login as a trailer value: GitHub's alphabet (letters, digits, '-', '[bot]') only."""
    return re.sub(r"[^A-Za-z0-9\[\]_.-]", "", login)[:60] or "unknown"


def _one_line(text: str) -> str:
    """A person's words for a commit body: one line, short, no credentials, no `Gitcanary-` start."""
    line = " ".join(without_credentials(text).split())
    if len(line) > REASON_CHARS:
        line = line[: REASON_CHARS - 1] + "…"
    return line


def _pull_number(message: str) -> str:
    """The PR a squash merge names in its subject (`TITLE (#12)`), which a row links to."""
    found = re.search(r"\(#(\d+)\)\s*$", message.split("\n", 1)[0])
    return found[1] if found else ""


def _why_not(review: Review, head: str) -> str:
    if not head:
        return "given before the promotion commit was here"
    if review.commit != head:
        return f"of `{review.commit[:7]}`, not of the promotion commit"
    if not review.can_write:
        return "the reviewer has no write access"
    return ""


def _tag(image: str) -> str:
    """`ghcr.io/org/app:6.1.1` -> `6.1.1`; a digest or an image without a tag stays whole."""
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag and "@" not in image else image


def codeowners(text: str, path: str) -> list[str]:
    """The owners of `path` in a CODEOWNERS file: the last matching pattern wins, as on GitHub."""
    owners: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *names = line.split()
        if pathspec.PathSpec.from_lines("gitignore", [pattern]).match_file(path):
            owners = names
    return owners


def _trailers(message: str) -> dict[str, str]:
    """A commit's `Gitcanary-*` trailers; none for a block that cannot be trusted (a trailer given
    twice): such a commit is not gitcanary's step, and never stops the gate of its canary."""
    try:
        return parse_trailers(message)
    except MalformedTrailers:
        return {}
