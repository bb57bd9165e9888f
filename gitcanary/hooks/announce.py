"""What the reconciler does with webhooks and notifications, around the pure core.

Before deciding: call the hook types the core asks for (`Decision.hooks`), and remember when a due
analysis committed nothing (a closed gate), so the next one is an interval later, not every poll.
After a push: for every transition that reached the remote, call the `event` hooks, the
`post-rollout` hooks when it ended a rollout, and send the notifications.

Delivery guarantees (Git is the record; these calls are side effects of it):
- gates and rollback hooks are questions, asked again on every attempt; nothing is lost if asked twice;
- pre-rollout and rollout hooks are called once per step by this process: a push that is rejected and
  decided again reuses their answers. A crash between the call and the push calls them again after
  the restart (at least once, like Flagger);
- event and post-rollout hooks and notifications go out only for commits that reached the remote,
  so a step dropped in a rebase is never announced; a crash right after the push loses them
  (at most once; the commit itself is the durable record).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from gitcanary.core import gates
from gitcanary.core.observations import HookResult, Observation
from gitcanary.core.rollout import Action, Decision
from gitcanary.hooks.alerts import Notice, Notifier, Secrets
from gitcanary.hooks.webhooks import WebhookRunner
from gitcanary.spec.models import AlertProvider, Canary
from gitcanary.spec.status import CanaryStatus, Phase

log = logging.getLogger("gitcanary.hooks")

# Hook types whose run means "a due analysis happened" (a gate closed after it commits nothing).
_ANALYSIS = (gates.PRE_ROLLOUT, gates.ROLLOUT, gates.CONFIRM_TRAFFIC_INCREASE, gates.CONFIRM_PROMOTION)


@dataclass(frozen=True)
class Transition:
    """One committed transition, waiting for its push before it is announced."""

    canary: Canary
    old: CanaryStatus | None
    decision: Decision
    commit: str
    muted: bool = False  # the failure came from a hook with muteAlert
    pr_url: str = ""  # set by pull-request mode when the step is a PR
    message: str = ""  # the commit message: finds the commit as it landed (rebased, merged in a PR)


def alert_of(transition: Transition) -> tuple[str, str] | None:
    """(severity, message) Flagger would alert with for this transition, or None."""
    decision, new = transition.decision, transition.decision.status
    assert new is not None
    match decision.action:
        case Action.INITIALIZED:
            return "info", "Initialization done!"
        case Action.START:
            return "info", "New revision detected, progressing canary analysis."
        case Action.RESTART:
            return "info", "New revision detected, restarting canary analysis."
        case Action.WAIT if transition.muted:
            return None
        case Action.WAIT if new.phase is Phase.WAITING_PROMOTION:
            return "warn", "Canary promotion is waiting for approval."
        case Action.WAIT:
            return "warn", "Canary is waiting for approval."
        case Action.HALT:
            return None if transition.muted else ("warn", f"Halt advancement: {', '.join(decision.failed)}")
        case Action.HOLD:
            return "warn", f"Hold advancement: {new.hold_reason}."
        case Action.ROLLBACK if "rollback webhook" in decision.reason:
            return "warn", "Rolling back: manual rollback webhook invoked."
        case Action.ROLLBACK:
            return "error", f"Canary failed! {decision.reason}. Rolled back to {new.primary_revision}."
        case Action.QUARANTINE:
            return "warn", f"{new.canary_revision} failed before; an image automation brought it back: held."
        case Action.SUCCEED:
            return "info", "Canary analysis completed successfully, promotion finished."
        case Action.PROMOTE if new.phase is Phase.SUCCEEDED:
            return "info", "Canary analysis was skipped, promotion finished."
    return None


class Hooks:
    def __init__(
        self,
        *,
        secrets_dir: Path | None = None,
        commit_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.runner = WebhookRunner(sleep=sleep)
        secrets = Secrets(secrets_dir) if secrets_dir else Secrets()
        if environ is not None:
            secrets.environ = environ
        self.notifier = Notifier(secrets, sleep=sleep)
        self.commit_url = commit_url
        self._attempts: dict[str, tuple[str, datetime]] = {}
        self._results: dict[str, Mapping[str, HookResult]] = {}
        self.errors: list[str] = []  # the last announcement's failures (logged; for status and tests)

    # -- before deciding ---------------------------------------------------------------------

    def last_attempt(self, key: str, status: CanaryStatus | None) -> datetime | None:
        remembered = self._attempts.get(key)
        if remembered is None or status is None or remembered[0] != status.model_dump_json():
            return None
        return remembered[1]

    def call(
        self, key: str, canary: Canary, status: CanaryStatus | None, obs: Observation, kinds: tuple[str, ...]
    ) -> dict[str, HookResult]:
        """Call the hook types `kinds` here and now, and remember their answers (`record`)."""
        results = self.ask(key, canary, status, obs, kinds)
        self.record(key, results)
        return results

    def ask(
        self,
        key: str,
        canary: Canary,
        status: CanaryStatus | None,
        obs: Observation,
        kinds: tuple[str, ...],
        asking: Callable[[str, str], None] | None = None,
        deadline: float | None = None,
    ) -> dict[str, HookResult]:
        """Call the hook types `kinds`, none past `deadline` (monotonic); safe from a canary's
        analysis worker (one per canary)."""
        return self.runner.run(key, canary, status, kinds, obs.last_attempt, asking, deadline)

    def record(self, key: str, results: Mapping[str, HookResult]) -> None:
        """Remember the answers `decide` read, on the tick's thread (for `muted`)."""
        self._results[key] = {**self._results.get(key, {}), **results}

    def observed(self, key: str, status: CanaryStatus | None, obs: Observation, decision: Decision) -> None:
        """After the last `decide` of a tick: remember a due analysis that committed nothing."""
        # A committed step changes the status, which retires the remembered attempt by itself; it is
        # kept until then, so a step decided again after a rejected push sees the same attempt.
        if status is None or decision.status is not None:
            return
        if obs.checks is not None or any(kind in obs.hooks for kind in _ANALYSIS):
            self._attempts[key] = (status.model_dump_json(), obs.now)

    def muted(self, key: str, decision: Decision) -> bool:
        """The failure behind `decision` came only from hooks whose `muteAlert` is set."""
        lines = set(decision.failed) | set(decision.details)  # a HALT's failures, a WAIT's gate
        culprits = [
            r
            for r in self._results.get(key, {}).values()
            if not r.ok and r.type != gates.ROLLBACK and r.line in lines
        ]
        return bool(culprits) and all(r.mute_alert for r in culprits)

    def begin(self, key: str) -> None:
        """A new observation of `key` starts: forget the previous hook answers (not the step cache)."""
        self._results.pop(key, None)

    def transition(
        self,
        key: str,
        canary: Canary,
        old: CanaryStatus | None,
        decision: Decision,
        sha: str,
        message: str = "",
        pr_url: str = "",
    ) -> Transition:
        """A committed transition, to announce after the push (`pr_url`: the step's pull request)."""
        muted = self.muted(key, decision)
        return Transition(canary, old, decision, sha, muted=muted, pr_url=pr_url, message=message)

    # -- after the push ------------------------------------------------------------------------

    def announce(
        self,
        transitions: list[Transition],
        providers: Mapping[str, AlertProvider],
        landed: Mapping[str, str] | None = None,
        pull_requests: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Event and post-rollout hooks and notifications for transitions now on the remote.

        `landed` maps commit messages to the commits as they landed on the branch: a transition
        whose message is not there did not land (its PR is still open) and is not announced.
        `pull_requests` maps commit messages to the PR that carried them (pull-request mode).
        """
        errors: list[str] = []
        for transition in transitions:
            if landed is not None:
                sha = landed.get(transition.message.strip())
                if sha is None:
                    continue
                transition = replace(transition, commit=sha)
            pull = (pull_requests or {}).get(transition.message.strip())
            if pull and not transition.pr_url:
                transition = replace(transition, pr_url=pull)
            try:
                errors += self._announce(transition, providers)
            except Exception as exc:  # noqa: BLE001 - an announcement must never break a tick
                log.exception("%s: announcing %s failed", transition.canary.key, transition.commit[:8])
                errors.append(f"{transition.canary.key}: {exc}")
        self.errors = errors
        return errors

    def _announce(self, transition: Transition, providers: Mapping[str, AlertProvider]) -> list[str]:
        canary, decision = transition.canary, transition.decision
        new = decision.status
        assert new is not None
        warning = decision.action in (Action.HALT, Action.ROLLBACK, Action.WAIT, Action.HOLD)
        errors = self.runner.notify(
            canary,
            new,
            gates.EVENT,
            {
                "eventMessage": new.message or decision.reason,
                "eventType": "Warning" if warning else "Normal",
                "timestamp": str(int(new.last_transition_time.timestamp() * 1000)),
                "commit": transition.commit,
            },
        )
        if new.phase in (Phase.SUCCEEDED, Phase.FAILED) and decision.action in (
            Action.SUCCEED,
            Action.ROLLBACK,
            Action.PROMOTE,
        ):
            errors += self.runner.notify(canary, new, gates.POST_ROLLOUT)
        alert = alert_of(transition)
        if alert is not None and canary.spec.analysis.alerts:
            severity, message = alert
            notice = Notice(
                canary=canary,
                severity=severity,
                message=message,
                action=decision.action.value,
                phase=new.phase.value,
                weight=(transition.old.canary_weight if transition.old else 0)
                if decision.action is Action.ROLLBACK
                else new.canary_weight,
                primary_revision=new.primary_revision,
                canary_revision=new.canary_revision,
                failed=decision.failed,
                commit=transition.commit,
                commit_url=self.commit_url.replace("{sha}", transition.commit) if self.commit_url else "",
                pr_url=transition.pr_url,
            )
            errors += self.notifier.send(notice, providers)
        return errors
