"""The forge on Gitea and Forgejo (same REST API, `/api/v1`) over httpx: pull requests.

No maintained Python client covers both (the generated ones trail the server by versions), and
gitcanary needs eight endpoints, so they are called directly with httpx, as the swagger names them.
- `mergeable` is Gitea's conflict check only; the approvals a protected branch requires come from
  its branch protection (`required_approvals`, readable by repository admins) and the reviews:
  fewer official approvals than required -> `blocked`, as GitHub says;
- approvers are reviewers whose latest review is APPROVED and neither dismissed nor stale;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from gitcanary.forge.base import ForgeError, PullRequest
from gitcanary.forge.secrets import Redactor, read_secret

log = logging.getLogger("gitcanary.forge")
T = TypeVar("T")
NOT_MERGED_YET = (405, 409)  # not mergeable (approvals, conflict, checks) or the head moved
PAGE = 50
RECHECK_SECONDS = 2.0


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


class GiteaForge:
    """One Gitea or Forgejo repository; every call goes through `_request`."""

    def __init__(
        self,
        config: GiteaConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if "/" not in config.repo:
            raise ForgeError(f"Gitea repository {config.repo!r}: expected OWNER/NAME")
        self.config = config
        self.sleep, self.clock = sleep, clock
        self.redact = Redactor()
        token = read_secret(config.token, config.token_file, "Gitea token")
        if not token:
            raise ForgeError("Gitea token missing: set GITCANARY_FORGE_TOKEN or --forge-token-file")
        self.redact.add(token)
        base = config.url.rstrip("/")
        self.http = httpx.Client(
            base_url=f"{base}/api/v1/repos/{config.repo}",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=config.timeout,
        )
        self._web_url = f"{base}/{config.repo}"
        self._remaining: str | None = None
        self._reset = 0.0
        self._slept_until = 0.0

    @property
    def web_url(self) -> str:
        return self._web_url

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

    def _back_off(self, seconds: float, why: str) -> None:
        if seconds > self.config.max_rate_wait:
            raise ForgeError(f"Gitea {why}; the window resets in {seconds:.0f}s: retrying on a later tick")
        log.warning("Gitea %s: waiting %.0fs before the next request", why, seconds)
        self.sleep(seconds)
        self._slept_until = self.clock() + seconds

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
        self, data: dict[str, Any], approvers: tuple[str, ...] = (), required: int = 0
    ) -> PullRequest:
        open_ = data.get("state") == "open"
        mergeable: bool | None = bool(data.get("mergeable")) if open_ else None
        state = "unknown"
        if open_:
            state = "dirty" if not mergeable else "blocked" if len(approvers) < required else "clean"
        return PullRequest(
            number=int(data["number"]),
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
            title=str(data.get("title") or ""),
            body=str(data.get("body") or ""),
            state="open" if open_ else "closed",
            merged=bool(data.get("merged")),
            url=str(data.get("html_url") or ""),
            head_sha=str(data["head"].get("sha") or ""),
            mergeable=mergeable,
            mergeable_state=state,
            approvers=approvers,
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
        if data.get("state") != "open":
            return self._convert(data)
        return self._convert(data, self._approvers(number), self._required(str(data["base"]["ref"])))

    def _approvers(self, number: int) -> tuple[str, ...]:
        latest: dict[str, dict[str, Any]] = {}
        for review in self._json(f"reading reviews of PR #{number}", "GET", f"/pulls/{number}/reviews"):
            login = (review.get("user") or {}).get("login") or "ghost"
            if review.get("state") in ("APPROVED", "REQUEST_CHANGES"):
                latest.pop(login, None)
                latest[login] = review
        return tuple(
            login
            for login, r in latest.items()
            if r.get("state") == "APPROVED" and not r.get("dismissed") and not r.get("stale")
        )

    def _required(self, base: str) -> int:
        """Approvals the base branch's protection requires; 0 when it has none or cannot be read."""
        try:
            response = self._request("reading branch protection", "GET", f"/branch_protections/{quote(base)}")
        except _Status:
            return 0
        return int(response.json().get("required_approvals") or 0)

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        data = {"head": head, "base": base, "title": title, "body": body}
        return self._convert(self._json(f"opening a PR from {head}", "POST", "/pulls", json=data))

    def update_body(self, number: int, body: str) -> None:
        self._json(f"updating PR #{number}", "PATCH", f"/pulls/{number}", json={"body": body})

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
