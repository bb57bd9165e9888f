"""The forge on Gitea and Forgejo (same REST API, `/api/v1`) over httpx: pull requests.

No maintained Python client covers both (the generated ones trail the server by versions), and
gitcanary needs about fifteen endpoints, so they are called directly with httpx, as the swagger names them.
- `mergeable` is Gitea's conflict check only; the approvals a protected branch requires come from
  its branch protection (`required_approvals`, readable by repository admins) and the reviews:
  fewer official approvals than required -> `blocked`, as GitHub says;
- reviews come from the reviews API: each reviewer's latest, with the `commit_id` it was given
  on, DISMISSED when `dismissed`, and can_write when the review is `official` (one the branch
  protection counts) and the collaborator permission API says write or more; approvers are the
  approving ones neither dismissed nor stale;
- draft is Gitea's "WIP: " title prefix (the PR's `draft` field is read-only, derived from the
  instance's WORK_IN_PROGRESS_PREFIXES); labels go through the issue labels API (a label the
  repository lacks is created first), comments through issue comments, reviewers through
  `requested_reviewers`;
- merge styles are Gitea's `do`: merge, squash, rebase (a rebase makes no commit of its own),
  and `merge_message_field` carries the body gitcanary adds (the Approved-by trailers).

Rate limits: Gitea has none of its own, but instances sit behind proxies that answer 429 with
`Retry-After` (and some send `X-RateLimit-Remaining`/`-Reset`): both are honoured, with the
injected sleep and a bounded number of attempts, as on GitHub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from gitcanary.forge.base import Comment, ForgeError, PullRequest, Release, Review
from gitcanary.forge.client import ForgeClient

log = logging.getLogger("gitcanary.forge")
T = TypeVar("T")
NOT_MERGED_YET = (405, 409)  # not mergeable (approvals, conflict, checks) or the head moved
PAGE = 50
RECHECK_SECONDS = 2.0
DRAFT_PREFIX = "WIP: "
# Gitea's default WORK_IN_PROGRESS_PREFIXES, plus Forgejo's and GitLab's "Draft:" habit.
DRAFT_PREFIXES = ("wip:", "[wip]", "draft:")
LABEL_COLOR = "#ededed"
WRITE_PERMISSIONS = ("write", "admin", "owner")
REVIEW_STATES = {"APPROVED": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}


class _Status(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class GiteaConfig:
    """Where and as whom to reach Gitea/Forgejo: `owner/name` and an access token."""

    repo: str
    url: str  # https://gitea.example.com (no /api/v1)
    token: str | None = None
    token_file: Path | None = None
    timeout: float = 15.0
    max_rate_wait: float = 900.0
    rate_attempts: int = 4


class GiteaForge(ForgeClient):
    """One Gitea or Forgejo repository; every call goes through `_request`."""

    name = "Gitea"

    def __init__(
        self,
        config: GiteaConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = config.url.rstrip("/")
        super().__init__(
            config.repo, f"{base}/{config.repo}", max_rate_wait=config.max_rate_wait, sleep=sleep, clock=clock
        )
        self.config = config
        token = self.token(config.token, config.token_file)
        self.http = httpx.Client(
            base_url=f"{base}/api/v1/repos/{config.repo}",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=config.timeout,
        )
        self._remaining: str | None = None
        self._reset = 0.0

    # -- requests, rate limits and errors --------------------------------------------------------

    def _request(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call; a rate-limit answer is waited out and retried, other errors raise `_Status`."""
        for attempt in range(1, self.config.rate_attempts + 1):
            if self._remaining == "0" and self._reset > self._slept_until + 1:
                self._back_off(max(1.0, self._reset - self.clock()), "rate limit exhausted")
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ForgeError(self.redact(f"Gitea {what}: {exc}")) from None
            self._remaining = response.headers.get("x-ratelimit-remaining")
            self._reset = float(response.headers.get("x-ratelimit-reset") or 0)
            if response.status_code != 429 or attempt == self.config.rate_attempts:
                if response.is_success:
                    return response
                raise _Status(response)
            wait = response.headers.get("retry-after")
            seconds = float(wait) if wait else max(1.0, self._reset - self.clock()) if self._reset else 60.0
            self._back_off(max(1.0, seconds), f"rate limit hit ({what})")
            self._remaining = None  # waited as the answer asked: its remaining 0 is spent
        raise AssertionError("unreachable")

    def _error(self, what: str, response: httpx.Response) -> ForgeError:
        try:
            data = response.json()
            message = str(data.get("message") or "") if isinstance(data, dict) else ""
        except ValueError:
            message = response.text[:200]
        return ForgeError(self.redact(f"Gitea {what} failed: HTTP {response.status_code}: {message}"))

    def _json(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._request(what, method, path, **kwargs).json()
        except _Status as exc:
            raise self._error(what, exc.response) from None

    # -- the interface -------------------------------------------------------------------------

    def _convert(
        self, data: dict[str, Any], reviews: tuple[Review, ...] = (), required: int = 0
    ) -> PullRequest:
        open_ = data.get("state") == "open"
        mergeable: bool | None = bool(data.get("mergeable")) if open_ else None
        head_sha = str(data["head"].get("sha") or "")
        approvers = tuple(r.login for r in reviews if r.state == "APPROVED" and r.commit == head_sha)
        official = [r for r in reviews if r.state == "APPROVED" and r.commit == head_sha and r.can_write]
        state = "unknown"
        if open_:
            state = "dirty" if not mergeable else "blocked" if len(official) < required else "clean"
        title, prefixed = _without_draft(str(data.get("title") or ""))
        return PullRequest(
            number=int(data["number"]),
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
            title=title,
            body=str(data.get("body") or ""),
            state="open" if open_ else "closed",
            merged=bool(data.get("merged")),
            url=str(data.get("html_url") or ""),
            head_sha=head_sha,
            mergeable=mergeable,
            mergeable_state=state,
            approvers=approvers,
            reviews=reviews,
            labels=tuple(str(label.get("name")) for label in data.get("labels") or []),
            draft=bool(data.get("draft")) or prefixed,
        )

    def _pulls(self, state: str) -> list[dict[str, Any]]:
        """Every PR in `state`, newest first (Gitea's order when no `sort` is given)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"state": state, "page": page, "limit": PAGE}
            batch = self._json("listing pull requests", "GET", "/pulls", params=params)
            out += batch
            if len(batch) < PAGE:
                return out
            page += 1

    def find(self, head: str, state: str = "open") -> PullRequest | None:
        for data in self._pulls(state):
            if data["head"]["ref"] == head:
                return self._convert(data)
        return None

    def list_open(self, prefix: str) -> list[PullRequest]:
        return [self._convert(d) for d in self._pulls("open") if str(d["head"]["ref"]).startswith(prefix)]

    def get(self, number: int) -> PullRequest:
        data = self._json(f"reading PR #{number}", "GET", f"/pulls/{number}")
        if data.get("state") == "open" and not data.get("mergeable"):
            # Gitea says `mergeable: false` both for a conflict and while its conflict check still
            # runs (a PR just opened or pushed to): ask once more before calling it a conflict,
            # which gitcanary answers by closing the PR.
            self.sleep(RECHECK_SECONDS)
            data = self._json(f"reading PR #{number}", "GET", f"/pulls/{number}")
        reviews = self._reviews(number, str(data["head"].get("sha") or ""))
        if data.get("state") != "open":
            closed = self._closed_by(number) if not data.get("merged") else ""
            return replace(self._convert(data, reviews), closed_by=closed)
        return self._convert(data, reviews, self._required(str(data["base"]["ref"])))

    def _closed_by(self, number: int) -> str:
        """Who closed it last: the user of its timeline's latest `close` event
        (GET /repos/{owner}/{repo}/issues/{index}/timeline, oldest first); "" when none says."""
        what = f"reading the timeline of PR #{number}"
        closers: list[str] = []
        page = 1
        while True:
            params = {"page": page, "limit": PAGE}
            batch = self._json(what, "GET", f"/issues/{number}/timeline", params=params)
            closers += [
                str((e.get("user") or {}).get("login") or "ghost") for e in batch if e.get("type") == "close"
            ]
            if len(batch) < PAGE:
                return closers[-1] if closers else ""
            page += 1

    def _reviews(self, number: int, head: str) -> tuple[Review, ...]:
        """Each reviewer's latest review, oldest first.

        A review keeps its `commit_id`, so one of an earlier head is not `PullRequest.counted`;
        one Gitea calls `stale` never counts, even if its `commit_id` were the head. `official`
        is Gitea's own word that the branch protection counts the reviewer (an approvals
        whitelist, or write access without one): that is can_write.
        """
        latest: dict[str, Review] = {}
        for r in self._json(f"reading reviews of PR #{number}", "GET", f"/pulls/{number}/reviews"):
            state = REVIEW_STATES.get(str(r.get("state")))
            if state is None:  # PENDING (a draft review) and REQUEST_REVIEW say nothing yet
                continue
            login = str((r.get("user") or {}).get("login") or "ghost")
            if state == "COMMENTED" and login in latest:
                continue  # as on GitHub: a comment does not replace an approval or a change request
            latest.pop(login, None)
            latest[login] = Review(
                login,
                "DISMISSED" if r.get("dismissed") else state,
                _commit(r, head),
                bool(r.get("official")) and self._can_write(login),
                str(r.get("body") or ""),
            )
        return tuple(latest.values())

    def _can_write(self, login: str) -> bool:
        """`write`, `admin` or `owner` from GET .../collaborators/{user}/permission (once a tick)."""

        def ask() -> bool:
            what = f"reading the permission of {login}"
            try:
                response = self._request(what, "GET", f"/collaborators/{quote(login, safe='')}/permission")
            except _Status as exc:
                if exc.response.status_code in (403, 404):  # not a collaborator, or not visible
                    return False
                raise self._error(what, exc.response) from None
            return str(response.json().get("permission")) in WRITE_PERMISSIONS

        return self.may_write(login, ask)

    def release(self, repo: str, tag: str) -> Release | None:
        """GET /repos/{owner}/{repo}/releases/tags/{tag} of a repository on the same instance."""
        what = f"reading the release {tag} of {repo}"
        path = f"{self.config.url.rstrip('/')}/api/v1/repos/{repo}/releases/tags/{quote(tag, safe='')}"
        try:
            data = self._request(what, "GET", path).json()
        except _Status as exc:
            if exc.response.status_code in (403, 404):
                return None
            raise self._error(what, exc.response) from None
        return Release(
            repo,
            str(data.get("tag_name") or tag),
            str(data.get("name") or ""),
            str(data.get("body") or ""),
            str(data.get("html_url") or ""),
        )

    def _required(self, base: str) -> int:
        """Approvals the base branch's protection requires; 0 when it has none or cannot be read."""
        try:
            response = self._request("reading branch protection", "GET", f"/branch_protections/{quote(base)}")
        except _Status:
            return 0
        return int(response.json().get("required_approvals") or 0)

    def open(self, head: str, base: str, title: str, body: str, draft: bool = False) -> PullRequest:
        data = {
            "head": head,
            "base": base,
            "title": self.redact((DRAFT_PREFIX if draft else "") + title),
            "body": self.redact(body),
        }
        return self._convert(self._json(f"opening a PR from {head}", "POST", "/pulls", json=data))

    def update_body(self, number: int, body: str) -> None:
        self._json(f"updating PR #{number}", "PATCH", f"/pulls/{number}", json={"body": self.redact(body)})

    def set_draft(self, number: int, draft: bool) -> None:
        """Gitea has no draft flag to set: a "WIP: " title prefix is what makes a PR a draft."""
        data = self._json(f"reading PR #{number}", "GET", f"/pulls/{number}")
        title, prefixed = _without_draft(str(data.get("title") or ""))
        if prefixed != draft:
            wanted = (DRAFT_PREFIX if draft else "") + title
            self._json(f"retitling PR #{number}", "PATCH", f"/pulls/{number}", json={"title": wanted})

    def request_reviewers(self, number: int, logins: list[str], teams: list[str]) -> None:
        if not logins and not teams:
            return
        data = {"reviewers": logins, "team_reviewers": teams}
        what = f"requesting reviewers on PR #{number}"
        self._json(what, "POST", f"/pulls/{number}/requested_reviewers", json=data)

    def set_state_label(self, number: int, label: str, prefix: str) -> None:
        what = f"labelling PR #{number}"
        current = [str(x["name"]) for x in self._json(what, "GET", f"/issues/{number}/labels")]
        wanted = [name for name in current if not name.startswith(prefix)] + [label]
        if sorted(wanted) == sorted(current):
            return
        ids = self._label_ids(wanted)
        # PUT replaces the whole label set, so the previous state's label goes.
        self._json(what, "PUT", f"/issues/{number}/labels", json={"labels": [ids[n] for n in wanted]})

    def _label_ids(self, names: list[str]) -> dict[str, int]:
        """The repository's label ids by name; a missing one is created (Gitea labels an issue only
        with labels the repository or its organisation has)."""
        known: dict[str, int] = {}
        page = 1
        while True:
            params = {"page": page, "limit": PAGE}
            batch = self._json("listing labels", "GET", "/labels", params=params)
            known.update({str(x["name"]): int(x["id"]) for x in batch})
            if len(batch) < PAGE:
                break
            page += 1
        for name in names:
            if name not in known:
                made = self._json(
                    f"creating label {name}", "POST", "/labels", json={"name": name, "color": LABEL_COLOR}
                )
                known[name] = int(made["id"])
        return known

    def comment(self, number: int, body: str) -> None:
        what = f"commenting on PR #{number}"
        self._json(what, "POST", f"/issues/{number}/comments", json={"body": self.redact(body)})

    def comments(self, number: int) -> list[Comment]:
        found = self._json(f"reading the comments of PR #{number}", "GET", f"/issues/{number}/comments")
        return [
            Comment(str((c.get("user") or {}).get("login") or "ghost"), str(c.get("body") or ""))
            for c in found
        ]

    def merge(
        self, number: int, method: str, sha: str | None = None, message: str | None = None
    ) -> str | None:
        what = f"merging PR #{number}"
        data: dict[str, Any] = {"do": method}
        if sha:
            data["head_commit_id"] = sha
        if message is not None and method != "rebase":
            data["merge_message_field"] = message
        try:
            self._request(what, "POST", f"/pulls/{number}/merge", json=data)
        except _Status as exc:
            if exc.response.status_code in NOT_MERGED_YET:
                log.info("PR #%d not merged yet: %s", number, self._error("merge", exc.response))
                return None
            raise self._error(what, exc.response) from None
        merged = self._json(f"reading PR #{number}", "GET", f"/pulls/{number}")
        return str(merged.get("merge_commit_sha") or "") or None

    def close(self, number: int) -> None:
        self._json(f"closing PR #{number}", "PATCH", f"/pulls/{number}", json={"state": "closed"})

    def delete_branch(self, branch: str) -> None:
        try:
            self._request(f"deleting branch {branch}", "DELETE", f"/branches/{quote(branch, safe='')}")
        except _Status as exc:
            if exc.response.status_code != 404:  # already gone
                raise self._error(f"deleting branch {branch}", exc.response) from None


def _without_draft(title: str) -> tuple[str, bool]:
    """The title without a work-in-progress prefix, and whether it had one."""
    lowered = title.lower()
    for prefix in DRAFT_PREFIXES:
        if lowered.startswith(prefix):
            return title[len(prefix) :].lstrip(), True
    return title, False


def _commit(review: dict[str, Any], head: str) -> str:
    commit = str(review.get("commit_id") or "")
    return "" if review.get("stale") and commit == head else commit
