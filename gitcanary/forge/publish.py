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
from dataclasses import dataclass, field
from datetime import UTC, datetime

from git import GitCommandError

from gitcanary.core.observations import Gate
from gitcanary.errors import GitcanaryError, GitError, PushRejected
from gitcanary.forge import gate, naming
from gitcanary.forge.base import Forge, ForgeError, PullRequest
from gitcanary.forge.secrets import without_credentials
from gitcanary.git.trailers import format_message, parse_trailers
from gitcanary.git.workspace import REMOTE, Workspace
from gitcanary.manifests.generate import Layout
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.status import CanaryStatus

log = logging.getLogger("gitcanary.forge")
SCRATCH = "gitcanary-publish"  # the local branch commits are rebuilt on; never pushed under this name


@dataclass(frozen=True)
class PublishSettings:
    mode: str = "direct"  # the repository's default write mode; a canary annotation overrides it
    gate: bool = False  # promotion gate for every canary unless its annotation says otherwise
    merge_method: str = "merge"


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
    waiting: dict[str, str] = field(default_factory=dict)  # key -> what it waits for (for status)
    # Commit message -> the PR that carried it, so notifications of a step link its pull request.
    pull_urls: dict[str, str] = field(default_factory=dict)
    _open: list[PullRequest] | None = None
    _gates: dict[str, Gate | None] = field(default_factory=dict)

    # -- per tick, before deciding ---------------------------------------------------------------

    def begin_tick(self, canaries: dict[str, LoadedCanary]) -> None:
        self.canaries = canaries
        self._open = None
        self._gates = {}
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
        """Open the gate PR of a rollout whose start just landed, in the same tick rather than the next."""
        for key, (loaded, status) in landed.items():
            if not self.gated(loaded) or status is None or not status.phase.in_rollout:
                continue
            branch = naming.gate_branch(key, status.rollout_id)
            if any(pr.head == branch for pr in self.open_prs()):
                continue
            self.workspace.fetch()  # the gate's placeholder sits on what just landed
            gates = [pr for pr in self.open_prs() if pr.head.startswith(naming.canary_prefix(key))]
            self._keep_gate(loaded, status, [pr for pr in gates if naming.is_gate_branch(pr.head)])

    def gate_state(self, key: str) -> Gate | None:
        return self._gates.get(key)

    def _drive_step(self, pr: PullRequest) -> str | None:
        full = self.forge.get(pr.number)
        rollback = pr.head.rsplit("/", 1)[-1].startswith("rollback-")
        if full.mergeable is False:
            # Conflicts with what landed since: the step was decided from a stale state. Decide again.
            log.warning("PR #%d (%s) conflicts with %s: closing it as stale", pr.number, pr.head, pr.base)
            self.forge.close(pr.number)
            self.forge.delete_branch(pr.head)
            return None
        if full.mergeable and full.mergeable_state in ("clean", "unstable", "has_hooks"):
            merged = self.forge.merge(pr.number, self.settings.merge_method, sha=full.head_sha)
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

    def _keep_gate(
        self, loaded: LoadedCanary, status: CanaryStatus | None, open_gates: list[PullRequest]
    ) -> str:
        """The gate PR of the rollout in progress; a reason only when this tick merged it."""
        key = loaded.canary.key
        if status is None or not status.phase.in_rollout or not status.rollout_id:
            for pr in open_gates:  # a gate left from a finished rollout: nothing to decide anymore
                self.forge.close(pr.number)
                self.forge.delete_branch(pr.head)
            return ""
        branch = naming.gate_branch(key, status.rollout_id)
        current = next((pr for pr in open_gates if pr.head == branch), None)
        for pr in open_gates:
            if pr is not current:
                self.forge.close(pr.number)
                self.forge.delete_branch(pr.head)
        if current is None:
            found = self.forge.find(branch, state="all")
            if found is not None and found.closed_unmerged:
                self._gates[key] = Gate.REJECTED
                return ""
            if found is not None:  # merged before the promotion commit: nothing left to gate
                return ""
            current = self._open_gate(loaded, status, branch)
        self._gates[key] = Gate.OPEN
        tip = self._branch_tip(branch)
        carries_promotion = tip is not None and parse_trailers(tip[1]).get("Action") == "promote"
        self._refresh_body(loaded, status, current, tip if carries_promotion else None)
        if carries_promotion:
            full = self.forge.get(current.number)
            approved = full.approvals > 0 and full.mergeable and full.mergeable_state in ("clean", "unstable")
            message = self._gate_message(full, tip[0]) if approved and tip is not None else None
            method = self.settings.merge_method
            if approved and self.forge.merge(current.number, method, sha=full.head_sha, message=message):
                log.info(
                    "%s: promotion approved by %s; merged PR #%d",
                    key,
                    ", ".join(full.approvers),
                    current.number,
                )
                self.forge.delete_branch(branch)
                return f"promotion approved: merged PR #{current.number}"
            self.waiting[key] = f"waiting for approval of promotion PR #{current.number} ({current.url})"
        return ""

    def _gate_message(self, pr: PullRequest, head: str) -> str | None:
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
        if method == "rebase" or not pr.approvers:
            return None
        trailers = "\n".join(f"Approved-by: {login}" for login in pr.approvers)
        if method == "merge":
            return f"{pr.title}\n\n{trailers}\n"
        out = str(
            self.workspace.repo.git.log(
                "--reverse", "--format=%B%x00", f"{self.workspace.remote_ref}..{head}"
            )
        )
        steps = [f"* {text.strip()}" for text in out.split("\x00") if text.strip()]
        return "\n\n".join([*steps, trailers]) + "\n"

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
        return str(git.rev_parse("HEAD"))

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
        """The rollout's gate PR, opened when analysis starts on a placeholder commit.

        GitHub opens no PR without a commit; the placeholder changes nothing, and the promotion
        commit replaces it when the analysis passes.
        """
        key = loaded.canary.key
        title = naming.gate_title(key, status.primary_revision, status.canary_revision)
        git = self.workspace.repo.git
        message = format_message(
            f"gitcanary: promotion gate for {key} {status.primary_revision} -> {status.canary_revision}",
            ["Placeholder: the promotion commit replaces it once the analysis has passed. Do not merge yet."],
            {"Canary": key, "Action": "gate", "Rollout": status.rollout_id},
        )
        base = self.workspace.remote_ref
        # Plumbing, not checkout: this runs while the reconciler is committing on its branch.
        with git.custom_environment(**self._git_env()):
            sha = str(git.commit_tree(f"{base}^{{tree}}", "-p", base, "-m", message, self._sign()))
        try:
            git.push(REMOTE, f"+{sha}:refs/heads/{branch}", "--porcelain")
        except GitCommandError as exc:
            raise GitError(
                without_credentials(f"git push of {branch} to {self.workspace.url} failed: {exc.stderr}")
            ) from None
        pr = self.forge.open(branch, self.workspace.branch, title, "gitcanary is preparing this rollout.")
        log.info("%s: opened promotion gate PR #%d %s", key, pr.number, pr.url)
        if self._open is not None:
            self._open.append(pr)
        return pr

    def _refresh_body(
        self,
        loaded: LoadedCanary,
        status: CanaryStatus,
        pr: PullRequest,
        promotion: tuple[str, str] | None,
    ) -> None:
        metrics = [m.name for m in loaded.canary.spec.analysis.metrics]
        logged = self._rollout_log(status.rollout_id)
        table = gate.rows(logged, status.rollout_id, metrics)
        if promotion is not None:
            sha, message = promotion
            when = datetime.fromtimestamp(int(self.workspace.repo.git.log("-1", "--format=%ct", sha)), UTC)
            extra = gate.rows([gate.LoggedCommit(sha, when, message)], status.rollout_id, metrics)
            table += [gate.Row(r.sha, r.time, r.action, r.weight, r.checks, pending=True) for r in extra]
            status_line = gate.WAITING_FOR_APPROVAL
        else:
            status_line = f"{status.phase.value} at {status.canary_weight}%: {status.message}"
        text = gate.body(
            loaded.canary.key,
            status.primary_revision,
            status.canary_revision,
            status.rollout_id,
            table,
            metrics,
            self.forge.web_url,
            status_line,
        )
        if text.strip() != pr.body.strip():
            self.forge.update_body(pr.number, text)

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
        trailers = parse_trailers(message)
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
        if all(r.route == "direct" for r in routed):
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
            if r.route == "rollback" and r.trailers.get("Rollout"):
                # The rollout is over: its gate branch (PR closed, or closed above) goes too.
                self.forge.delete_branch(naming.gate_branch(r.key, r.trailers["Rollout"]))
        return True

    def _close_steps(self, key: str) -> None:
        """A rollback makes this canary's open step and gate PRs moot: close them, delete their branches."""
        prefix = naming.canary_prefix(key)
        for pr in self.forge.list_open(prefix):
            if pr.head.rsplit("/", 1)[-1].startswith("rollback-"):
                continue
            self.forge.close(pr.number)
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
            title, _, rest = message.partition("\n")
            body = rest.strip() + "\n\nOpened by gitcanary, which merges it once it is mergeable."
            existing = self.forge.open(branch, self.workspace.branch, title, body)
            log.info("%s: opened PR #%d %s", r.key, existing.number, existing.url)
        self._carried_by(r.sha, existing)
        if not merge_now:
            return
        try:
            merged = self.forge.merge(existing.number, self.settings.merge_method)
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
        if tip is not None and parse_trailers(tip[1]).get("Action") == "promote":
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
            self._refresh_body(loaded, status, pr, self._branch_tip(branch))
        if pr is not None:
            self._carried_by(r.sha, pr)
            self.waiting[r.key] = f"waiting for approval of promotion PR #{pr.number} ({pr.url})"

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
