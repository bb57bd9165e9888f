"""The forge on GitLab (gitlab.com or self-managed) through python-gitlab: merge requests.

GitLab names things differently; this module maps them onto the `Forge` protocol:
- a merge request's `iid` is the PR number, `opened`/`merged`/`closed`/`locked` its state;
- `detailed_merge_status` says whether it can merge: `mergeable` -> clean, `not_approved` ->
  blocked (approval rules), `conflict`/`has_conflicts` -> dirty, `need_rebase` -> behind, CI and
  discussions -> pending, `checking`/`unchecked` -> unknown (GitLab is still computing);
- approvers come from the MR approvals API (`approved_by`), which GitLab Free also answers;
- `squash` is a flag on the merge call; `rebase` (fast-forward) is the project's own merge method:
  gitcanary then merges without a merge commit and, as on GitHub, has no commit to carry a message.

Rate limits: GitLab answers 429 with `Retry-After` and `RateLimit-Reset`, and sends
`RateLimit-Remaining` on every response. python-gitlab's own waiting is off so the waiting is
ours (the injected sleep, one log line, a bounded number of attempts), as on GitHub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gitlab
import requests
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project, ProjectMergeRequest

from gitcanary.forge.base import ForgeError, PullRequest
from gitcanary.forge.secrets import Redactor, read_secret

log = logging.getLogger("gitcanary.forge")
T = TypeVar("T")
PUBLIC_URL = "https://gitlab.com"
# detailed_merge_status -> (mergeable, GitHub-style mergeable_state) as publish.py reads them.
MERGE_STATUS: dict[str, tuple[bool | None, str]] = {
    "mergeable": (True, "clean"),
    "not_approved": (True, "blocked"),
    "conflict": (False, "dirty"),
    "need_rebase": (True, "behind"),
    "ci_must_pass": (True, "pending"),
    "ci_still_running": (True, "pending"),
    "discussions_not_resolved": (True, "pending"),
    "draft_status": (True, "draft"),
    "blocked_status": (True, "blocked"),
    "checking": (None, "unknown"),
    "unchecked": (None, "unknown"),
    "preparing": (None, "unknown"),
    "approvals_syncing": (None, "unknown"),
}
NOT_MERGED_YET = (405, 406, 409, 422)  # blocked, conflict, head moved, cannot be merged


class _Gitlab(gitlab.Gitlab):
    """python-gitlab whose own 429 handling (a time.sleep inside each request) is off: ours waits."""

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        return super().http_request(*args, **kwargs)


@dataclass(frozen=True)
class GitLabConfig:
    """Where and as whom to reach GitLab: a project path (`group/sub/project`) and a token."""

    project: str
    url: str = PUBLIC_URL  # self-managed: https://gitlab.example.com (no /api/v4)
    token: str | None = None
    token_file: Path | None = None
    timeout: int = 15
    max_rate_wait: float = 900.0
    rate_attempts: int = 4


class GitLabForge:
    """One GitLab project; every call goes through `_call` (rate limits, redacted errors)."""

    def __init__(
        self,
        config: GitLabConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if "/" not in config.project:
            raise ForgeError(f"GitLab project {config.project!r}: expected GROUP/PROJECT")
        self.config = config
        self.sleep, self.clock = sleep, clock
        self.redact = Redactor()
        token = read_secret(config.token, config.token_file, "GitLab token")
        if not token:
            raise ForgeError("GitLab token missing: set GITCANARY_FORGE_TOKEN or --forge-token-file")
        self.redact.add(token)
        self._headers: dict[str, str] = {}
        session = requests.Session()
        session.hooks["response"].append(self._remember_headers)
        self.gl = _Gitlab(
            config.url.rstrip("/"), private_token=token, timeout=config.timeout, session=session
        )
        self.project: Project = self.gl.projects.get(config.project, lazy=True)
        self._slept_until = 0.0
        self._web_url = f"{config.url.rstrip('/')}/{config.project}"

    @property
    def web_url(self) -> str:
        return self._web_url

    # -- rate limits and errors ----------------------------------------------------------------

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._headers = {k.lower(): v for k, v in response.headers.items()}

    def _wait_for_window(self) -> None:
        """The last response said no requests remain: wait for the reset instead of spending one."""
        if self._headers.get("ratelimit-remaining") != "0":
            return
        reset = float(self._headers.get("ratelimit-reset") or 0)
        if reset > self._slept_until + 1:
            self._back_off(max(1.0, reset - self.clock()), "rate limit exhausted")

    def _back_off(self, seconds: float, why: str) -> None:
        if seconds > self.config.max_rate_wait:
            raise ForgeError(f"GitLab {why}; the window resets in {seconds:.0f}s: retrying on a later tick")
        log.warning("GitLab %s: waiting %.0fs before the next request", why, seconds)
        self.sleep(seconds)
        self._slept_until = self.clock() + seconds

    def _rate_wait(self, exc: GitlabError) -> float | None:
        if exc.response_code != 429:
            return None
        if "retry-after" in self._headers:
            return max(1.0, float(self._headers["retry-after"]))
        if "ratelimit-reset" in self._headers:
            return max(1.0, float(self._headers["ratelimit-reset"]) - self.clock())
        return 60.0

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.config.rate_attempts + 1):
            self._wait_for_window()
            try:
                return fn()
            except GitlabError as exc:
                wait = self._rate_wait(exc)
                if wait is None or attempt == self.config.rate_attempts:
                    raise self._error(what, exc) from None
                self._back_off(wait, f"rate limit hit ({what})")
                self._headers = {}  # waited as the answer asked: its RateLimit-Remaining 0 is spent
            except (OSError, requests.RequestException) as exc:
                raise ForgeError(self.redact(f"GitLab {what}: {exc}")) from None
        raise AssertionError("unreachable")

    def _error(self, what: str, exc: GitlabError) -> ForgeError:
        return ForgeError(self.redact(f"GitLab {what} failed: HTTP {exc.response_code}: {exc.error_message}"))

    # -- the interface -------------------------------------------------------------------------

    def _convert(self, mr: ProjectMergeRequest, approvers: tuple[str, ...] = ()) -> PullRequest:
        state = str(mr.state)
        status = str(getattr(mr, "detailed_merge_status", "") or "unchecked")
        mergeable, mergeable_state = MERGE_STATUS.get(status, (None, "unknown"))
        if getattr(mr, "has_conflicts", False):
            mergeable, mergeable_state = False, "dirty"
        return PullRequest(
            number=int(mr.iid),
            head=str(mr.source_branch),
            base=str(mr.target_branch),
            title=str(mr.title or ""),
            body=str(mr.description or ""),
            state="open" if state == "opened" else "closed",
            merged=state == "merged",
            url=str(mr.web_url),
            head_sha=str(mr.sha or ""),
            mergeable=mergeable if state == "opened" else None,
            mergeable_state=mergeable_state if state == "opened" else "unknown",
            approvers=approvers,
        )

    def _approvers(self, mr: ProjectMergeRequest) -> tuple[str, ...]:
        approvals = mr.approvals.get()
        return tuple(str(entry["user"]["username"]) for entry in approvals.approved_by or [])

    def find(self, head: str, state: str = "open") -> PullRequest | None:
        wanted = {"open": "opened", "closed": "closed", "all": "all"}[state]

        def go() -> PullRequest | None:
            found = self.project.mergerequests.list(
                source_branch=head,
                state=wanted,
                order_by="created_at",
                sort="desc",
                per_page=1,
                get_all=False,
            )
            if state == "closed":  # GitLab keeps merged apart from closed; GitHub's closed holds both
                found += self.project.mergerequests.list(
                    source_branch=head, state="merged", per_page=1, get_all=False
                )
                found.sort(key=lambda mr: int(mr.iid), reverse=True)
            return self._convert(found[0]) if found else None

        return self._call(f"listing merge requests from {head}", go)

    def list_open(self, prefix: str) -> list[PullRequest]:
        def go() -> list[PullRequest]:
            return [
                self._convert(mr)
                for mr in self.project.mergerequests.list(state="opened", iterator=True)
                if str(mr.source_branch).startswith(prefix)
            ]

        return self._call("listing open merge requests", go)

    def get(self, number: int) -> PullRequest:
        def go() -> PullRequest:
            mr = self.project.mergerequests.get(number)
            return self._convert(mr, self._approvers(mr) if mr.state == "opened" else ())

        return self._call(f"reading merge request !{number}", go)

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        def go() -> PullRequest:
            data = {"source_branch": head, "target_branch": base, "title": title, "description": body}
            return self._convert(self.project.mergerequests.create(data))

        return self._call(f"opening a merge request from {head}", go)

    def update_body(self, number: int, body: str) -> None:
        self._call(
            f"updating merge request !{number}",
            lambda: self.project.mergerequests.update(number, {"description": body}),
        )

    def merge(
        self, number: int, method: str, sha: str | None = None, message: str | None = None
    ) -> str | None:
        def go() -> str | None:
            kwargs: dict[str, Any] = {}
            if sha:
                kwargs["sha"] = sha
            if method == "squash":
                kwargs["squash"] = True
                if message is not None:
                    # GitLab's squash subject is the MR title; the body replaces its commit list.
                    kwargs["squash_commit_message"] = f"{self._title(number)} (!{number})\n\n{message}"
            elif method == "merge" and message is not None:
                # merge_commit_message replaces the whole message: keep GitLab's default subject.
                kwargs["merge_commit_message"] = self._merge_subject(number) + "\n\n" + message
            try:
                # http_put, not ProjectMergeRequest.merge: that sends its extra keywords (squash,
                # sha) in the query string; every parameter goes in the body here.
                path = f"{self.project.mergerequests.path}/{number}/merge"
                data = self.gl.http_put(path, post_data=kwargs)
                if not isinstance(data, dict):
                    raise ForgeError(f"GitLab merging merge request !{number}: unexpected answer")
            except GitlabError as exc:
                if exc.response_code in NOT_MERGED_YET:
                    log.info("merge request !%d not merged yet: %s", number, self._error("merge", exc))
                    return None
                raise
            return str(data.get("merge_commit_sha") or data.get("squash_commit_sha") or data.get("sha"))

        return self._call(f"merging merge request !{number}", go)

    def _title(self, number: int) -> str:
        return str(self.project.mergerequests.get(number).title)

    def _merge_subject(self, number: int) -> str:
        mr = self.project.mergerequests.get(number)
        return f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'"

    def close(self, number: int) -> None:
        self._call(
            f"closing merge request !{number}",
            lambda: self.project.mergerequests.update(number, {"state_event": "close"}),
        )

    def delete_branch(self, branch: str) -> None:
        def go() -> None:
            try:
                self.project.branches.delete(branch)
            except GitlabError as exc:
                if exc.response_code != 404:  # already gone
                    raise

        self._call(f"deleting branch {branch}", go)
