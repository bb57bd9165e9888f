"""`gitcanary plan` and `run --dry-run`: what a tick would commit, decided for real, pushed nowhere.

The planner is the reconciler itself (same reading, same decisions, same analysis against the same
metrics servers), working in a throwaway clone that it resets after each tick: its commits never
leave that clone, and the repository it reads is only fetched from. What it does not do:
- call webhooks that act (pre-rollout, rollout, post-rollout, event): it says which it would call and
  stops there for that canary; gate webhooks (confirm-*, rollback) only answer a question, so it asks;
- open or merge pull requests, or send notifications (those follow a push, and there is none);
- sign commits (nothing it commits is kept).
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitcanary.core import gates
from gitcanary.core.observations import Observation
from gitcanary.errors import GitcanaryError
from gitcanary.git.trailers import parse_trailers
from gitcanary.hooks.announce import Hooks
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings
from gitcanary.spec.models import Canary
from gitcanary.spec.status import CanaryStatus

# Webhook types that only answer a question (open or closed gate, roll back or not): safe to ask.
QUESTION_HOOKS = frozenset(
    {gates.CONFIRM_ROLLOUT, gates.CONFIRM_TRAFFIC_INCREASE, gates.CONFIRM_PROMOTION, gates.ROLLBACK}
)
WOULD_CALL = "would call "


class WouldCallWebhooks(GitcanaryError):
    """The next decision needs a webhook that acts (starts load, runs a migration): plan stops there."""


class _AskingHooks(Hooks):
    """Webhooks for a plan: questions are asked, actions are named and not called."""

    def ask(
        self,
        key: str,
        canary: Canary,
        status: CanaryStatus | None,
        obs: Observation,
        kinds: tuple[str, ...],
        asking: Callable[[str, str], None] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        # Every call goes through here (`call` too, and a canary's analysis worker asks directly).
        acting = [kind for kind in kinds if kind not in QUESTION_HOOKS]
        if acting:
            names = [
                f"{hook.name} ({hook.type})" for hook in canary.spec.analysis.webhooks if hook.type in acting
            ]
            raise WouldCallWebhooks(
                f"{WOULD_CALL}{', '.join(names) or ', '.join(acting)} before deciding; plan calls no webhook "
                "that acts"
            )
        return super().ask(key, canary, status, obs, kinds, asking, deadline)


@dataclass
class PlannedCommit:
    canary: str
    subject: str
    message: str
    files: list[str]
    diff: str
    trailers: dict[str, str] = field(default_factory=dict)
    # What `init` says beside its commit: what it hooked the generated dir into, or ACTION NEEDED.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "action": self.trailers.get("Action", ""),
            "phase": self.trailers.get("Phase", ""),
            "weight": self.trailers.get("Weight", ""),
            "subject": self.subject,
            "message": self.message,
            "files": self.files,
            "diff": self.diff,
            "notes": self.notes,
        }


@dataclass
class CanaryPlan:
    key: str
    source: str
    phase: str = ""
    weight: int | None = None
    commits: list[PlannedCommit] = field(default_factory=list)
    waiting: str = ""
    would_call: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "canary": self.key,
            "source": self.source,
            "phase": self.phase,
            "weight": self.weight,
            "commits": [commit.to_json() for commit in self.commits],
            "waiting": self.waiting,
            "would_call": self.would_call,
            "error": self.error,
            "warnings": self.warnings,
        }


@dataclass
class Plan:
    head: str
    canaries: list[CanaryPlan] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> why it could not be read

    def to_json(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "canaries": [canary.to_json() for canary in self.canaries],
            "errors": self.errors,
        }


class Planner(Reconciler):
    """A reconciler whose ticks stop before the push and forget their commits afterwards."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="gitcanary-plan-"))
        planned = settings.model_copy(update={"workdir": self._scratch / "repo", "signing_key": None})
        super().__init__(planned, **kwargs)
        self.hooks = _AskingHooks(
            secrets_dir=planned.secrets_dir, commit_url=planned.commit_url, sleep=self.sleep
        )
        self.publisher = None
        self.last_plan: Plan | None = None

    def _attempt(self) -> TickResult:
        head = self.workspace.sync()
        self.refresh(head)
        assert self.catalog is not None
        self.reports = {k: v for k, v in self.reports.items() if k in self.catalog.canaries}
        before = {}
        for key, loaded in self.catalog.canaries.items():
            try:
                before[key] = self._status(key, loaded)
            except GitcanaryError:
                before[key] = None  # reported by the decision below
        commits = self._decide_all(self.clock())
        result = TickResult(
            head, commits, dict(self.reports), {src: str(err) for src, err in self.catalog.errors.items()}
        )
        self.last_plan = self._describe(head, result, before)
        # Forget: the work tree and the caches go back to what the repository holds.
        self.workspace.reset(head)
        self._forget()
        self._moved = set()
        return result

    def _describe(self, head: str, result: TickResult, before: dict[str, CanaryStatus | None]) -> Plan:
        plan = Plan(head, errors=dict(result.errors))
        by_canary: dict[str, list[PlannedCommit]] = {}
        for sha in result.commits:
            commit = self._planned(sha)
            by_canary.setdefault(commit.canary, []).append(commit)
        for key, report in sorted(result.reports.items()):
            status = before.get(key)
            entry = CanaryPlan(
                key,
                report.source,
                phase=status.phase.value if status is not None else "",
                weight=status.canary_weight if status is not None else None,
                commits=by_canary.get(key, []),
                waiting=report.waiting,
                warnings=list(report.warnings),
            )
            loaded = self.catalog.canaries.get(key) if self.catalog is not None else None
            if loaded is not None:  # as validate says it: a webhook `run` from here could not reach
                from gitcanary.commands.validate import webhook_problems

                problems = webhook_problems(loaded.canary)
                entry.warnings += [f"{where}: {message}" for where, message in problems]
            if report.error.startswith(WOULD_CALL):
                entry.would_call = report.error
            else:
                entry.error = report.error
            plan.canaries.append(entry)
        return plan

    def _planned(self, sha: str) -> PlannedCommit:
        repo = self.workspace.repo
        commit = repo.commit(sha)
        message = commit.message.decode() if isinstance(commit.message, bytes) else commit.message
        trailers = parse_trailers(message)
        files = repo.git.show("--format=", "--name-only", sha).split()
        diff = repo.git.show("--format=", "--no-color", sha)
        return PlannedCommit(
            trailers.get("Canary", ""), message.splitlines()[0], message, files, diff, trailers
        )

    def close(self) -> None:
        """Remove the throwaway clone (and its lock file).

        On Ctrl-C a git child of the interrupted tick may still be writing into it while it is
        removed, leaving a directory behind: try again for a moment.
        """
        for _ in range(20):
            shutil.rmtree(self._scratch, ignore_errors=True)
            if not self._scratch.exists():
                return
            time.sleep(0.1)


def plan_init(
    checkout: Path, app_path: str, *, switch: bool = False, provider: str | None = None
) -> list[PlannedCommit]:
    """What `gitcanary init` would commit in `checkout`, worked out in a copy (work tree included)."""
    from git import InvalidGitRepositoryError, NoSuchPathError, Repo

    from gitcanary.commands.operations import _relative, init

    try:
        root = Path(Repo(checkout, search_parent_directories=True).working_tree_dir or checkout)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return [] if init(checkout, app_path) is None else []  # init raises the error it names
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-init-plan-"))
    try:
        copy = scratch / root.name
        shutil.copytree(root, copy, symlinks=True)
        results = init(copy, _relative(root, app_path), switch=switch, provider=provider)
        repo = Repo(copy)
        planned: list[PlannedCommit] = []
        for result in results:
            if result.commit is None:
                continue
            for sha in repo.git.rev_list("--reverse", f"{result.commit}~1..HEAD").split():
                message = repo.commit(sha).message
                text = message.decode() if isinstance(message, bytes) else message
                trailers = parse_trailers(text)
                if trailers.get("Canary") != result.key:
                    continue
                planned.append(
                    PlannedCommit(
                        result.key,
                        text.splitlines()[0],
                        text,
                        repo.git.show("--format=", "--name-only", sha).split(),
                        repo.git.show("--format=", "--no-color", sha),
                        trailers,
                        # Said once, with the commit that writes the generated dir (as init says it).
                        _first_note(result.hook, result.key, planned),
                    )
                )
        return planned
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _first_note(note: str, key: str, planned: list[PlannedCommit]) -> list[str]:
    return [note] if note and not any(commit.canary == key for commit in planned) else []


def plan_once(settings: Settings, **kwargs: Any) -> Plan:
    """One tick's decisions for `settings.repo`, committed nowhere that outlives this call."""
    planner = Planner(settings, **kwargs)
    try:
        planner.tick()
        assert planner.last_plan is not None
        return planner.last_plan
    finally:
        planner.close()


def plan_forever(settings: Settings, on_plan: Callable[[Plan], Any], **kwargs: Any) -> None:
    """`run --dry-run`: plan every poll interval, print each plan, push nothing."""
    planner = Planner(settings, **kwargs)
    # A pod's stop (SIGTERM) must not leave the throwaway clone behind: leave through `finally`.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        planner.run_forever(on_tick=lambda _result: on_plan(planner.last_plan) if planner.last_plan else None)
    finally:
        planner.close()


__all__ = ["Plan", "PlannedCommit", "Planner", "plan_forever", "plan_init", "plan_once"]
