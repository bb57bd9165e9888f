"""The forge on GitHub (github.com or GitHub Enterprise) through PyGithub.

Rate limits: GitHub says how many requests remain and when the window resets in every response's
`X-RateLimit-*` headers, and sends 403/429 with `Retry-After` or `X-RateLimit-Reset` once exceeded.
gitcanary reads them: it waits out an exhausted window before the next request, and on a
rate-limit answer it sleeps until the reset and retries a bounded number of times. PyGithub's own
retry is off so the waiting is ours (one clock, one log line, testable), its write throttle stays on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from github import Auth, Github, GithubException, RateLimitExceededException
from github.GitRelease import GitRelease
from github.IssueEvent import IssueEvent
from github.PaginatedList import PaginatedList
from github.PullRequest import PullRequest as GhPull
from github.Repository import Repository

from gitcanary.forge.base import Comment, ForgeError, PullRequest, Release, Review
from gitcanary.forge.client import ForgeClient
from gitcanary.forge.secrets import Redactor, read_secret

log = logging.getLogger("gitcanary.forge")
T = TypeVar("T")
# Reviewers whose approval GitHub's branch protection counts: people with write access, as
# GET /repos/{owner}/{repo}/collaborators/{username}/permission names it.
WRITE_PERMISSIONS = ("admin", "write")
PUBLIC_API = "https://api.github.com"


@dataclass(frozen=True)
class GitHubConfig:
    """Where and as whom to reach GitHub. `token` or the App trio; secrets may come from files."""

    repo: str  # owner/name
    api_url: str = PUBLIC_API  # GitHub Enterprise: https://HOST/api/v3
    token: str | None = None
    token_file: Path | None = None
    app_id: str | None = None
    app_key_file: Path | None = None
    installation_id: int | None = None
    timeout: int = 15
    # PyGithub's pacing between requests and between writes (GitHub asks integrations for it).
    seconds_between_requests: float | None = 0.25
    seconds_between_writes: float | None = 1.0
    max_rate_wait: float = 900.0  # longer waits fail the tick (it is retried on the next one)
    rate_attempts: int = 4


def _auth(config: GitHubConfig, redact: Redactor) -> Auth.Auth:
    token = read_secret(config.token, config.token_file, "GitHub token")
    if token:
        redact.add(token)
        return Auth.Token(token)
    if config.app_id and config.app_key_file and config.installation_id:
        key = read_secret(None, config.app_key_file, "GitHub App private key")
        assert key is not None
        redact.add(key)
        return Auth.AppAuth(config.app_id, key).get_installation_auth(config.installation_id)
    raise ForgeError(
        "GitHub credentials missing: set GITCANARY_GITHUB_TOKEN (or --github-token-file), or "
        "--github-app-id, --github-app-key-file and --github-installation-id"
    )


class GitHubForge(ForgeClient):
    """One GitHub repository; every call goes through `_call` (rate limits, redacted errors)."""

    name = "GitHub"

    def __init__(
        self,
        config: GitHubConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        host = config.api_url.rstrip("/")
        web = "https://github.com" if host == PUBLIC_API else host.removesuffix("/api/v3")
        super().__init__(
            config.repo, f"{web}/{config.repo}", max_rate_wait=config.max_rate_wait, sleep=sleep, clock=clock
        )
        self.config = config
        self.gh = Github(
            base_url=host,
            auth=_auth(config, self.redact),
            timeout=config.timeout,
            retry=None,
            seconds_between_requests=config.seconds_between_requests,
            seconds_between_writes=config.seconds_between_writes,
        )
        self._repo: Repository | None = None
        self._login: str | None = None
        self.owner = config.repo.split("/", 1)[0]

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = self._call("reading the repository", lambda: self.gh.get_repo(self.config.repo))
        return self._repo

    # -- rate limits and errors ----------------------------------------------------------------

    def _wait_for_window(self) -> None:
        """The last response said no requests remain: wait for the reset instead of spending one."""
        remaining, _ = self.gh.requester.rate_limiting
        reset = self.gh.requester.rate_limiting_resettime
        # The headers still say 0 after a wait that already ran to this reset: do not wait twice.
        if remaining == 0 and reset > self._slept_until + 1:
            self._back_off(max(1.0, reset - self.clock()), "rate limit exhausted")

    def _rate_wait(self, exc: GithubException) -> float | None:
        """Seconds to wait when `exc` is a rate-limit answer, from its headers; None otherwise."""
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        limited = isinstance(exc, RateLimitExceededException) or (
            exc.status in (403, 429)
            and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
        )
        if not limited:
            return None
        if "retry-after" in headers:
            return max(1.0, float(headers["retry-after"]))
        if "x-ratelimit-reset" in headers:
            return max(1.0, float(headers["x-ratelimit-reset"]) - self.clock())
        return 60.0  # a secondary limit without headers: GitHub asks for at least a minute

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.config.rate_attempts + 1):
            self._wait_for_window()
            try:
                return fn()
            except GithubException as exc:
                wait = self._rate_wait(exc)
                if wait is None or attempt == self.config.rate_attempts:
                    raise self._error(what, exc) from None
                self._back_off(wait, f"rate limit hit ({what})")
            except OSError as exc:  # connection refused, timeouts
                raise ForgeError(self.redact(f"GitHub {what}: {exc}")) from None
        raise AssertionError("unreachable")

    def _error(self, what: str, exc: GithubException) -> ForgeError:
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("message") or exc.message or "")
        details = "; ".join(str(e.get("message") or e.get("code")) for e in data.get("errors", []) or [])
        text = f"GitHub {what} failed: HTTP {exc.status}: {message}" + (f" ({details})" if details else "")
        return ForgeError(self.redact(text))

    # -- the interface -------------------------------------------------------------------------

    def _convert(self, pr: GhPull, full: bool = False) -> PullRequest:
        mergeable, state = None, "unknown"
        approvers: tuple[str, ...] = ()
        reviews: tuple[Review, ...] = ()
        if full:
            mergeable, state = pr.mergeable, pr.mergeable_state or "unknown"
            if pr.state == "open" or not pr.merged_at:  # a gate closed unmerged: who objected, and why
                reviews = self._reviews(pr)
                approvers = tuple(r.login for r in reviews if r.state == "APPROVED")
        return PullRequest(
            number=pr.number,
            head=pr.head.ref,
            base=pr.base.ref,
            title=pr.title or "",
            body=pr.body or "",
            state=pr.state,
            merged=bool(pr.merged_at),
            url=pr.html_url,
            head_sha=pr.head.sha,
            mergeable=mergeable,
            mergeable_state=state,
            approvers=approvers,
            reviews=reviews,
            labels=tuple(label.name for label in pr.labels),
            draft=bool(pr.draft),
            merge_sha=(pr.merge_commit_sha or "") if full else "",
            author=pr.user.login if pr.user else "",
            merged_by=(pr.merged_by.login if pr.merged_by else "") if full and pr.merged_at else "",
            closed_by=self._closed_by(pr) if full and pr.state == "closed" and not pr.merged_at else "",
        )

    def _closed_by(self, pr: GhPull) -> str:
        """Who closed it last: the actor of its issue's latest `closed` event
        (GET /repos/{owner}/{repo}/issues/{n}/events, oldest first); "" when none says."""
        events = PaginatedList(IssueEvent, self.gh.requester, f"{pr.issue_url}/events", {"per_page": 100})
        closers = [e.actor.login if e.actor else "ghost" for e in events if e.event == "closed"]
        return closers[-1] if closers else ""

    def _reviews(self, pr: GhPull) -> tuple[Review, ...]:
        """Each reviewer's latest review (reviews come oldest first), ordered by that review."""
        latest: dict[str, Review] = {}
        for review in pr.get_reviews():
            login = review.user.login if review.user else "ghost"  # a deleted account, as GitHub shows it
            if review.state in ("COMMENTED", "PENDING") and login in latest:
                continue  # a comment is no vote: it neither replaces an approval nor lifts a change request
            latest.pop(login, None)
            latest[login] = Review(
                login, review.state, review.commit_id or "", self._can_write(login), review.body or ""
            )
        return tuple(latest.values())

    def _can_write(self, login: str) -> bool:
        """Write access as GitHub's permission API says it (`maintain` reads as `write` there);
        `author_association` would call a triager or an org member with read access a writer."""

        def ask() -> bool:
            try:
                return self.repo.get_collaborator_permission(login) in WRITE_PERMISSIONS
            except GithubException as exc:
                if exc.status == 404:  # not a collaborator at all
                    return False
                raise

        return self.may_write(login, ask)

    def release(self, repo: str, tag: str) -> Release | None:
        def go() -> Release | None:
            try:
                # As Repository.get_release(tag) asks it, without reading the repository first.
                url = f"{self.config.api_url.rstrip('/')}/repos/{repo}/releases/tags/{quote(tag, safe='')}"
                found = GitRelease(self.gh.requester, url=url).complete()
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            return Release(repo, found.tag_name, found.name or "", found.body or "", found.html_url)

        return self._call(f"reading the release {tag} of {repo}", go)

    def find(self, head: str, state: str = "open") -> PullRequest | None:
        def go() -> PullRequest | None:
            for pr in self.repo.get_pulls(state=state, head=f"{self.owner}:{head}"):
                return self._convert(pr)
            return None

        return self._call(f"listing PRs from {head}", go)

    def list_open(self, prefix: str) -> list[PullRequest]:
        def go() -> list[PullRequest]:
            return [
                self._convert(pr)
                for pr in self.repo.get_pulls(state="open")
                if pr.head.ref.startswith(prefix)
            ]

        return self._call("listing open PRs", go)

    def login(self) -> str:
        """The account the token acts as, asked once (`GET /user`)."""
        if self._login is None:
            self._login = str(self._call("reading the token's user", lambda: self.gh.get_user().login))
        return self._login

    def get(self, number: int) -> PullRequest:
        return self._call(
            f"reading PR #{number}", lambda: self._convert(self.repo.get_pull(number), full=True)
        )

    def open(self, head: str, base: str, title: str, body: str, draft: bool = False) -> PullRequest:
        def go() -> PullRequest:
            pr = self.repo.create_pull(
                base=base, head=head, title=self.redact(title), body=self.redact(body), draft=draft
            )
            return self._convert(pr)

        return self._call(f"opening a PR from {head}", go)

    def update_body(self, number: int, body: str) -> None:
        text = self.redact(body)
        self._call(f"updating PR #{number}", lambda: self.repo.get_pull(number).edit(body=text))

    def set_draft(self, number: int, draft: bool) -> None:
        """GitHub's REST API cannot change a PR's draft flag: its GraphQL mutations do."""

        def go() -> None:
            pr = self.repo.get_pull(number)
            if bool(pr.draft) == draft:
                return
            if draft:
                pr.convert_to_draft()
            else:
                pr.mark_ready_for_review()

        self._call(f"marking PR #{number} {'draft' if draft else 'ready for review'}", go)

    def request_reviewers(self, number: int, logins: list[str], teams: list[str]) -> None:
        if not logins and not teams:
            return
        self._call(
            f"requesting reviewers on PR #{number}",
            lambda: self.repo.get_pull(number).create_review_request(reviewers=logins, team_reviewers=teams),
        )

    def set_state_label(self, number: int, label: str, prefix: str) -> None:
        def go() -> None:
            pr = self.repo.get_pull(number)
            current = [lab.name for lab in pr.labels]
            wanted = [name for name in current if not name.startswith(prefix)] + [label]
            if sorted(wanted) != sorted(current):
                # One PUT replaces the set, so the old state's label goes. In the documented
                # `{"labels": [...]}` form: PyGithub's set_labels sends a bare list.
                url = f"{pr.issue_url}/labels"
                self.gh.requester.requestJsonAndCheck("PUT", url, input={"labels": wanted})

        self._call(f"labelling PR #{number}", go)

    def comment(self, number: int, body: str) -> None:
        self._call(
            f"commenting on PR #{number}",
            lambda: self.repo.get_pull(number).create_issue_comment(self.redact(body)),
        )

    def comments(self, number: int) -> list[Comment]:
        def go() -> list[Comment]:
            return [
                Comment(c.user.login if c.user else "ghost", c.body or "")
                for c in self.repo.get_pull(number).get_issue_comments()
            ]

        return self._call(f"reading the comments of PR #{number}", go)

    def merge(
        self, number: int, method: str, sha: str | None = None, message: str | None = None
    ) -> str | None:
        def go() -> str | None:
            try:
                kwargs: dict[str, Any] = {"merge_method": method}
                if sha:
                    kwargs["sha"] = sha
                if message is not None and method != "rebase":
                    # No commit_title: GitHub's default subject ("Merge pull request #N from ...",
                    # or "TITLE (#N)" for a squash) is how `gitcanary history` finds the PR.
                    kwargs["commit_message"] = self.redact(message)
                # PUT .../merge directly: reading the PR first would be a second read of its
                # mergeability, which GitHub may answer differently from the one decided on.
                url = f"{self.repo.url}/pulls/{number}/merge"
                _, data = self.gh.requester.requestJsonAndCheck("PUT", url, input=kwargs)
                return str(data["sha"])
            except GithubException as exc:
                if exc.status in (405, 409):  # not mergeable yet (reviews, checks, conflict) or head moved
                    log.info("PR #%d not merged yet: %s", number, self._error("merge", exc))
                    return None
                raise

        return self._call(f"merging PR #{number}", go)

    def update_branch(self, number: int, head_sha: str) -> bool:
        """GitHub's update-branch (the base merged into the head, 202: started); False on its 422
        (the head is no longer `head_sha`, or the base does not merge into it cleanly)."""

        def go() -> bool:
            try:
                url = f"{self.repo.url}/pulls/{number}/update-branch"
                self.gh.requester.requestJsonAndCheck("PUT", url, input={"expected_head_sha": head_sha})
            except GithubException as exc:
                if exc.status == 422:
                    log.info("PR #%d not updated: %s", number, self._error("update-branch", exc))
                    return False
                raise
            return True

        return self._call(f"updating the branch of PR #{number}", go)

    def close(self, number: int) -> None:
        self._call(f"closing PR #{number}", lambda: self.repo.get_pull(number).edit(state="closed"))

    def delete_branch(self, branch: str) -> None:
        def go() -> None:
            try:
                # DELETE /git/refs/heads/BRANCH directly: a lazy GitRef would address /git/ref/.
                self.gh.requester.requestJsonAndCheck("DELETE", f"{self.repo.url}/git/refs/heads/{branch}")
            except GithubException as exc:
                if exc.status not in (404, 422):  # already gone
                    raise

        self._call(f"deleting branch {branch}", go)
