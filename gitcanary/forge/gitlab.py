"""The forge on GitLab (gitlab.com or self-managed) through python-gitlab: merge requests.

GitLab names things differently; this module maps them onto the `Forge` protocol:
- a merge request's `iid` is the PR number, `opened`/`merged`/`closed`/`locked` its state;
- `detailed_merge_status` says whether it can merge: `mergeable` -> clean, `not_approved` ->
  blocked (approval rules), `conflict`/`has_conflicts` -> dirty, `need_rebase` -> behind, CI and
  discussions -> pending, `checking`/`unchecked` -> unknown (GitLab is still computing);
- approvers come from the MR approvals API (`approved_by`), which GitLab Free also answers,
  and a standing request for changes from the reviewers API (a reviewer in state
  `requested_changes`, GitLab 17);
  an approval carries no commit, so it is taken as one of the current head only when the project
  resets approvals on push (`reset_approvals_on_push`, GitLab's default): otherwise it counts
  for nothing here, because nothing says which head it approved; an approver counts only with
  Developer access or more (the members API, asked once per tick);
- draft is the MR's `draft` flag, which GitLab derives from a "Draft: " title prefix (the prefix
  is what gitcanary writes); labels are the MR's labels, comments its non-system notes, and
  reviewers its `reviewer_ids` (usernames resolved through the users API);
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
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project, ProjectMergeRequest

from gitcanary.forge.base import Comment, ForgeError, PullRequest, Release, Review
from gitcanary.forge.client import ForgeClient

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
DRAFT_PREFIX = "Draft: "
# The title prefixes GitLab reads as draft (its Gitlab::Regex.merge_request_draft).
DRAFT_PREFIXES = ("draft:", "[draft]", "(draft)", "draft -")
NOT_MERGED_YET = (405, 406, 409, 422)  # blocked, conflict, head moved, cannot be merged
DEVELOPER = 30  # GitLab's access level that may push to unprotected branches and approve by default


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


class GitLabForge(ForgeClient):
    """One GitLab project; every call goes through `_call` (rate limits, redacted errors)."""

    name = "GitLab"

    def __init__(
        self,
        config: GitLabConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = config.url.rstrip("/")
        super().__init__(
            config.project,
            f"{base}/{config.project}",
            max_rate_wait=config.max_rate_wait,
            sleep=sleep,
            clock=clock,
            shape="project {repo!r}: expected GROUP/PROJECT",
        )
        self.config = config
        token = self.token(config.token, config.token_file)
        self._headers: dict[str, str] = {}
        session = requests.Session()
        session.hooks["response"].append(self._remember_headers)
        self.gl = _Gitlab(base, private_token=token, timeout=config.timeout, session=session)
        self.project: Project = self.gl.projects.get(config.project, lazy=True)

    def commit_url(self, sha: str) -> str:
        """GitLab's commit page is under the project's `/-/` routes."""
        return f"{self.web_url}/-/commit/{sha}"

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

    def _convert(self, mr: ProjectMergeRequest, reviews: tuple[Review, ...] = ()) -> PullRequest:
        state = str(mr.state)
        status = str(getattr(mr, "detailed_merge_status", "") or "unchecked")
        mergeable, mergeable_state = MERGE_STATUS.get(status, (None, "unknown"))
        if getattr(mr, "has_conflicts", False):
            mergeable, mergeable_state = False, "dirty"
        title, prefixed = _without_draft(str(mr.title or ""))
        draft = bool(getattr(mr, "draft", False) or getattr(mr, "work_in_progress", False) or prefixed)
        return PullRequest(
            number=int(mr.iid),
            head=str(mr.source_branch),
            base=str(mr.target_branch),
            title=title,
            body=str(mr.description or ""),
            closed_by=str((getattr(mr, "closed_by", None) or {}).get("username") or ""),
            state="open" if state == "opened" else "closed",
            merged=state == "merged",
            url=str(mr.web_url),
            head_sha=str(mr.sha or ""),
            mergeable=mergeable if state == "opened" else None,
            mergeable_state=mergeable_state if state == "opened" else "unknown",
            approvers=tuple(r.login for r in reviews if r.state == "APPROVED"),
            reviews=reviews,
            labels=tuple(str(label) for label in getattr(mr, "labels", None) or ()),
            draft=draft,
        )

    def _reviews(self, mr: ProjectMergeRequest) -> tuple[Review, ...]:
        """The MR's votes: its approvals, and its reviewers' standing requests for changes.

        Approvals come from the approvals API. can_write is the approver's access level in the
        project (GitLab's members API, direct or inherited) at Developer or more, who may push;
        GitLab's approvals API also lists approvals an approval rule would not count, e.g. by a
        Reporter when no rule restricts approvers. commit is the current head only when the
        project resets approvals on push: then an approval still listed was given on that head.
        Otherwise it may be of any earlier head, and "" makes it count for nothing (see
        docs/forges.md).

        A request for changes is a reviewer whose state is `requested_changes` in the reviewers
        API (GitLab 17): it stands whatever the head, until that reviewer approves (GitLab then
        sets `approved`) or their review is requested again (`unreviewed`). Its text is the
        reviewer's latest note, which is where GitLab puts a review's summary.
        """
        approvals = mr.approvals.get()
        commit = str(mr.sha or "") if self._resets_approvals() else ""
        approved = [
            Review(str(entry["user"]["username"]), "APPROVED", commit, self._can_write(entry["user"]))
            for entry in approvals.approved_by or []
        ]
        approvers = {r.login for r in approved}
        objecting = [
            r.user
            for r in mr.reviewer_details.list(iterator=True)
            if str(getattr(r, "state", "")) == "requested_changes" and r.user["username"] not in approvers
        ]
        if not objecting:
            return tuple(approved)
        said: dict[str, str] = {}
        for note in mr.notes.list(sort="asc", order_by="created_at", iterator=True):
            if not getattr(note, "system", False):
                said[str(note.author["username"])] = str(note.body or "")
        objections = [
            Review(
                str(u["username"]), "CHANGES_REQUESTED", "", self._can_write(u), said.get(u["username"], "")
            )
            for u in objecting
        ]
        return (*objections, *approved)

    def _can_write(self, user: dict[str, Any]) -> bool:
        """Developer access (30) or more, from GET /projects/:id/members/all/:user_id."""

        def ask() -> bool:
            try:
                member = self.project.members_all.get(int(user["id"]))
            except GitlabError as exc:
                if exc.response_code == 404:  # not a member, directly or through a group
                    return False
                raise
            return int(getattr(member, "access_level", 0) or 0) >= DEVELOPER

        return self.may_write(str(user["username"]), ask)

    def release(self, repo: str, tag: str) -> Release | None:
        """GET /projects/:id/releases/:tag_name; the release's page is GitLab's `-/releases/TAG`."""

        def go() -> Release | None:
            try:
                found = self.gl.projects.get(repo, lazy=True).releases.get(tag)
            except GitlabError as exc:
                if exc.response_code in (403, 404):  # no such project, release, or no access
                    return None
                raise
            url = f"{self.config.url.rstrip('/')}/{repo}/-/releases/{quote(str(found.tag_name), safe='')}"
            return Release(
                repo,
                str(found.tag_name),
                str(getattr(found, "name", "") or ""),
                str(getattr(found, "description", "") or ""),
                url,
            )

        return self._call(f"reading the release {tag} of {repo}", go)

    def _resets_approvals(self) -> bool:
        """The project's `reset_approvals_on_push`; True (GitLab's default) when it cannot be read."""
        try:
            return bool(getattr(self.project.approvals.get(), "reset_approvals_on_push", True))
        except GitlabError as exc:
            if exc.response_code in (401, 403, 404):  # no rights to read it, or a tier without it
                return True
            raise

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
            return self._convert(mr, self._reviews(mr))

        return self._call(f"reading merge request !{number}", go)

    def open(self, head: str, base: str, title: str, body: str, draft: bool = False) -> PullRequest:
        def go() -> PullRequest:
            data = {
                "source_branch": head,
                "target_branch": base,
                "title": self.redact((DRAFT_PREFIX if draft else "") + title),
                "description": self.redact(body),
            }
            return self._convert(self.project.mergerequests.create(data))

        return self._call(f"opening a merge request from {head}", go)

    def update_body(self, number: int, body: str) -> None:
        self._call(
            f"updating merge request !{number}",
            lambda: self.project.mergerequests.update(number, {"description": self.redact(body)}),
        )

    def set_draft(self, number: int, draft: bool) -> None:
        """GitLab marks an MR draft by its title's "Draft: " prefix (the API's way to set `draft`)."""

        def go() -> None:
            mr = self.project.mergerequests.get(number)
            title, prefixed = _without_draft(str(mr.title or ""))
            if prefixed != draft:
                wanted = (DRAFT_PREFIX if draft else "") + title
                self.project.mergerequests.update(number, {"title": wanted})

        self._call(f"marking merge request !{number} {'draft' if draft else 'ready'}", go)

    def request_reviewers(self, number: int, logins: list[str], teams: list[str]) -> None:
        """Add `logins` to the MR's reviewers. GitLab has no team reviewers: a group approval
        rule is its way to ask a team, so `teams` are only logged."""
        if teams:
            log.info("GitLab has no team reviewers; not requested on !%d: %s", number, ", ".join(teams))
        if not logins:
            return

        def go() -> None:
            mr = self.project.mergerequests.get(number)
            ids = [int(r["id"]) for r in getattr(mr, "reviewers", None) or []]
            for login in logins:
                found = self.gl.users.list(username=login, get_all=False)
                if not found:
                    log.warning("GitLab has no user %r to request a review of !%d from", login, number)
                    continue
                if int(found[0].id) not in ids:
                    ids.append(int(found[0].id))
            self.project.mergerequests.update(number, {"reviewer_ids": ids})

        self._call(f"requesting reviewers on merge request !{number}", go)

    def set_state_label(self, number: int, label: str, prefix: str) -> None:
        def go() -> None:
            current = [str(x) for x in self.project.mergerequests.get(number).labels or []]
            wanted = [name for name in current if not name.startswith(prefix)] + [label]
            if sorted(wanted) != sorted(current):
                # `labels` replaces the whole set (GitLab creates a project label it does not know).
                self.project.mergerequests.update(number, {"labels": ",".join(wanted)})

        self._call(f"labelling merge request !{number}", go)

    def comment(self, number: int, body: str) -> None:
        self._call(
            f"commenting on merge request !{number}",
            lambda: self.project.mergerequests.get(number, lazy=True).notes.create(
                {"body": self.redact(body)}
            ),
        )

    def comments(self, number: int) -> list[Comment]:
        """The MR's notes written by people: system notes (label changes, pushes) are left out."""

        def go() -> list[Comment]:
            notes = self.project.mergerequests.get(number, lazy=True).notes.list(
                sort="asc", order_by="created_at", iterator=True
            )
            return [
                Comment(str(n.author["username"]), str(n.body or ""))
                for n in notes
                if not getattr(n, "system", False)
            ]

        return self._call(f"reading the notes of merge request !{number}", go)

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
                # merge_commit_message replaces the whole message: keep GitLab's default subject
                # and its "See merge request group/project!N" line (how `gitcanary history` names
                # the MR), before the message's last paragraph, its trailers.
                text, _, last = message.rstrip().rpartition("\n\n")
                reference = f"See merge request {self.config.project}!{number}"
                parts = [self._merge_subject(number), text, reference, last]
                kwargs["merge_commit_message"] = "\n\n".join(p for p in parts if p) + "\n"
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
        return _without_draft(str(self.project.mergerequests.get(number).title))[0]

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


def _without_draft(title: str) -> tuple[str, bool]:
    """The title without a draft prefix GitLab recognises, and whether it had one."""
    lowered = title.lower()
    for prefix in DRAFT_PREFIXES:
        if lowered.startswith(prefix):
            return title[len(prefix) :].lstrip(), True
    return title, False
