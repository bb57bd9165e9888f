"""A local Gitea/Forgejo-compatible REST server (`/api/v1`) for the forge tests.

Real state on the config repo's bare remote (tests/forge_remote.py): pull requests and reviews
live here, refs and merges in Git. Every request body and every response is validated against
Gitea's swagger (tests/data/gitea/swagger-subset.json, see tests/data/gitea/SOURCES), made strict
(objects may hold only the properties the description names); a mismatch, or a status code the
operation does not list, lands in `errors` and fails the test. Emulated, not Gitea: the 429 a
proxy in front of Gitea answers (Gitea itself has no API rate limit), and a human's review or
merge is a method call here instead of a request. Gitea's own rules kept: a "WIP:" or "[WIP]"
title prefix makes a PR a draft (its default WORK_IN_PROGRESS_PREFIXES; `draft` is read-only),
a draft is not merged, an issue takes only labels the repository has, a review of an earlier
head is `stale`, and only `official` approvals count towards the branch protection.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from forge_remote import BareRemote, LocalForge, RateLimit, incoming, respond, stamp, strict, without_nulls
from jsonschema import Draft4Validator

SPEC_FILE = Path(__file__).parent / "data" / "gitea" / "swagger-subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text())
DEFINITIONS = strict(SPEC["definitions"])
PREFIX = "/api/v1"


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, REQUEST_CHANGES, COMMENT
    commit_id: str
    dismissed: bool = False
    official: bool = True
    body: str = ""


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    user: str
    state: str = "open"
    merged: bool = False
    merge_sha: str | None = None
    created: float = field(default_factory=time.time)
    closed: float | None = None
    reviews: list[Review] = field(default_factory=list)
    head_sha: str = ""
    labels: list[int] = field(default_factory=list)
    comments: list[tuple[int, str, str]] = field(default_factory=list)  # (id, login, body)
    requested: list[str] = field(default_factory=list)
    # Close and reopen events on its timeline: (id, type "close" or "reopen", login).
    events: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def draft(self) -> bool:
        return self.title.lower().startswith(("wip:", "[wip]"))


class GiteaServer(LocalForge):
    def __init__(self, bare: Path, owner: str = "acme", name: str = "config", branch: str = "main") -> None:
        self.owner, self.name, self.branch = owner, name, branch
        remote = BareRemote(bare, branch, "protected branch", ("Gitea", "noreply@gitea.example"))
        super().__init__(remote, {"gitcanary-token": "gitcanary-bot"})
        self.pulls: dict[int, Pull] = {}
        self.required_approvals = 0
        self.labels: dict[int, str] = {}  # the repository's labels: id -> name
        self.users = {"gitcanary-bot", "pat", "sam", "reader"}
        # Each user's permission (the collaborator permission API); others: write.
        self.permissions = {"reader": "read"}
        # Releases of repositories on this instance: (owner/name, tag) -> (name, body).
        self.releases: dict[tuple[str, str], tuple[str, str]] = {}
        self.checking = 0  # the next N reads of a PR say mergeable: false (Gitea's check still runs)
        self.rate_limits: list[RateLimit] = []
        self._ids = 100

    @property
    def html_url(self) -> str:
        return f"{self.url}/{self.owner}/{self.name}"

    # -- what a person does in the web UI ----------------------------------------------------------

    def approve(self, number: int, user: str = "pat", official: bool = True) -> None:
        self.review(number, user, "APPROVED", official=official)

    def review(self, number: int, user: str, state: str, body: str = "", official: bool = True) -> None:
        pull = self.pulls[number]
        self._ids += 1
        head = self.remote.rev(pull.head) or ""
        pull.reviews.append(Review(self._ids, user, state, head, official=official, body=body))

    def dismiss(self, number: int, user: str) -> None:
        """A maintainer dismisses `user`'s latest approval or change request: Gitea keeps that
        review, with `dismissed: true`."""
        votes = ("APPROVED", "REQUEST_CHANGES")
        [r for r in self.pulls[number].reviews if r.user == user and r.state in votes][-1].dismissed = True

    def comment(self, number: int, user: str, body: str) -> None:
        self._ids += 1
        self.pulls[number].comments.append((self._ids, user, body))

    def close(self, number: int, user: str = "pat") -> None:
        pull = self.pulls[number]
        pull.state, pull.closed, pull.head_sha = "closed", time.time(), self.remote.rev(pull.head) or ""
        self._ids += 1
        pull.events.append((self._ids, "close", user))

    def reopen(self, number: int, user: str = "pat") -> None:
        pull = self.pulls[number]
        if pull.state == "closed" and not pull.merged:
            pull.state, pull.closed = "open", None
            self._ids += 1
            pull.events.append((self._ids, "reopen", user))

    # -- state -----------------------------------------------------------------------------------

    def approvals(self, pull: Pull) -> int:
        latest = {r.user: r for r in pull.reviews if r.state in ("APPROVED", "REQUEST_CHANGES")}
        head = self.remote.rev(pull.head)
        # Gitea's dismiss_stale_approvals is on here: an approval of an earlier head does not count.
        return sum(
            1
            for r in latest.values()
            if r.state == "APPROVED" and not r.dismissed and r.official and r.commit_id == head
        )

    def mergeable(self, pull: Pull) -> bool:
        head, base = self.remote.rev(pull.head), self.remote.rev(pull.base)
        return bool(head and base and self.remote.merge_tree(base, head))

    def _user(self, login: str) -> dict[str, Any]:
        return {"id": abs(hash(login)) % 10000 + 1, "login": login}

    def _branch(self, ref: str, sha: str) -> dict[str, Any]:
        return {"label": ref, "ref": ref, "sha": sha, "repo_id": 1}

    def pull_json(self, pull: Pull) -> dict[str, Any]:
        api = f"{self.url}{PREFIX}/repos/{self.owner}/{self.name}"
        open_ = pull.state == "open"
        return {
            "id": pull.number * 7,
            "number": pull.number,
            "url": f"{api}/pulls/{pull.number}",
            "html_url": f"{self.html_url}/pulls/{pull.number}",
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "user": self._user(pull.user),
            "mergeable": self.mergeable(pull) if open_ else False,
            "merged": pull.merged,
            "merged_at": stamp(pull.closed) if pull.merged else None,
            "merge_commit_sha": pull.merge_sha,
            "closed_at": stamp(pull.closed) if pull.closed else None,
            "created_at": stamp(pull.created),
            "updated_at": stamp(),
            "head": self._branch(pull.head, self.remote.rev(pull.head) or pull.head_sha),
            "base": self._branch(pull.base, self.remote.rev(pull.base) or ""),
            "draft": pull.draft,
            "labels": [self.label_json(i) for i in pull.labels],
            "requested_reviewers": [self._user(u) for u in pull.requested],
        }

    def label_json(self, label_id: int) -> dict[str, Any]:
        name = self.labels[label_id]
        api = f"{self.url}{PREFIX}/repos/{self.owner}/{self.name}"
        return {
            "id": label_id,
            "name": name,
            "color": "ededed",
            "description": "",
            "exclusive": False,
            "is_archived": False,
            "url": f"{api}/labels/{label_id}",
        }

    def comment_json(self, pull: Pull, comment: tuple[int, str, str]) -> dict[str, Any]:
        return {
            "id": comment[0],
            "body": comment[2],
            "user": self._user(comment[1]),
            "html_url": f"{self.html_url}/pulls/{pull.number}#issuecomment-{comment[0]}",
            "pull_request_url": f"{self.html_url}/pulls/{pull.number}",
            "issue_url": "",
            "created_at": stamp(pull.created),
            "updated_at": stamp(pull.created),
        }

    def review_json(self, pull: Pull, review: Review) -> dict[str, Any]:
        return {
            "id": review.id,
            "user": self._user(review.user),
            "state": review.state,
            "commit_id": review.commit_id,
            "dismissed": review.dismissed,
            "stale": review.commit_id != (self.remote.rev(pull.head) or review.commit_id),
            "official": review.official,
            "body": review.body,
            "submitted_at": stamp(),
            "html_url": f"{self.html_url}/pulls/{pull.number}#issuecomment-{review.id}",
            "pull_request_url": f"{self.html_url}/pulls/{pull.number}",
        }

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, rest: str, query: dict[str, str], body: Any, user: str) -> Reply:
        if rest == "/pulls" and method == "get":
            state = query.get("state", "open")
            page, limit = int(query.get("page", 1)), int(query.get("limit", 30))
            found = [
                self.pull_json(p)
                for p in sorted(self.pulls.values(), key=lambda p: p.number, reverse=True)
                if state == "all" or p.state == state
            ]
            return Reply(200, found[(page - 1) * limit : page * limit], "/pulls")
        if rest == "/pulls" and method == "post":
            return self._create(body, user)
        match = re.fullmatch(r"/pulls/(\d+)(/merge|/reviews)?", rest)
        if match:
            template = "/pulls/{index}" + (match.group(2) or "")
            pull = self.pulls.get(int(match.group(1)))
            if pull is None:
                message = (
                    f"pull request does not exist [token {self._token}]" if self.echo_token else "not found"
                )
                return Reply(404, {"message": message}, template)
            if match.group(2) is None and method == "get":
                data = self.pull_json(pull)
                if self.checking > 0:
                    self.checking -= 1
                    data["mergeable"] = False
                return Reply(200, data, template)
            if match.group(2) is None and method == "patch":
                if "body" in body:
                    pull.body = str(body["body"])
                if "title" in body:
                    pull.title = str(body["title"])
                if body.get("state") == "closed" and pull.state == "open":
                    self.close(pull.number, user)
                elif body.get("state") == "open" and pull.state == "closed":
                    self.reopen(pull.number, user)
                return Reply(201, self.pull_json(pull), template)
            if match.group(2) == "/merge" and method == "post":
                return self._merge(pull, body)
            if match.group(2) == "/reviews" and method == "get":
                return Reply(200, [self.review_json(pull, r) for r in pull.reviews], template)
        reply = self._issue_parts(method, rest, body, user)
        if reply is not None:
            return reply
        match = re.fullmatch(r"/collaborators/([^/]+)/permission", rest)
        if match and method == "get":
            template, login = "/collaborators/{collaborator}/permission", unquote(match[1])
            if login not in self.users:
                return Reply(404, {"message": "user does not exist"}, template)
            permission = self.permissions.get(login, "write")
            data = {"permission": permission, "role_name": permission, "user": self._user(login)}
            return Reply(200, data, template)
        match = re.fullmatch(r"/branch_protections/(.+)", rest)
        if match and method == "get":
            template = "/branch_protections/{name}"
            if (
                unquote(match.group(1)) != self.branch
                or not (self.remote.bare / "gitcanary-test-protected").exists()
            ):
                return Reply(404, {"message": "not found"}, template)
            data = {
                "branch_name": self.branch,
                "rule_name": self.branch,
                "required_approvals": self.required_approvals,
            }
            return Reply(200, data, template)
        match = re.fullmatch(r"/branches/(.+)", rest)
        if match and method == "delete":
            template = "/branches/{branch}"
            if not self.remote.delete(unquote(match.group(1))):
                return Reply(404, {"message": "branch not found"}, template)
            return Reply(204, None, template)
        return Reply(404, {"message": "not found"}, None)

    def _release(self, repo: str, tag: str) -> Reply:
        if (repo, tag) not in self.releases:
            return Reply(404, {"message": "release does not exist"}, "/releases/tags/{tag}")
        name, text = self.releases[(repo, tag)]
        data = {
            "id": 7,
            "tag_name": tag,
            "name": name,
            "body": text,
            "html_url": f"{self.url}/{repo}/releases/tag/{tag}",
            "draft": False,
            "prerelease": False,
            "created_at": stamp(),
            "published_at": stamp(),
            "author": self._user("pat"),
            "assets": [],
        }
        return Reply(200, data, "/releases/tags/{tag}")

    def _issue_parts(self, method: str, rest: str, body: Any, user: str) -> Reply | None:
        """Labels, comments and requested reviewers: a PR's labels and comments live on its issue."""
        if rest == "/labels" and method == "get":
            return Reply(200, [self.label_json(i) for i in sorted(self.labels)], "/labels")
        if rest == "/labels" and method == "post":
            if body.get("name") in self.labels.values():
                return Reply(422, {"message": "label exists"}, "/labels")
            self._ids += 1
            self.labels[self._ids] = str(body["name"])
            return Reply(201, self.label_json(self._ids), "/labels")
        match = re.fullmatch(r"/issues/(\d+)/timeline", rest)
        if match and method == "get":
            return self._timeline(int(match.group(1)))
        match = re.fullmatch(r"/(issues|pulls)/(\d+)/(labels|comments|requested_reviewers)", rest)
        if match is None:
            return None
        template = f"/{match.group(1)}/{{index}}/{match.group(3)}"
        pull = self.pulls.get(int(match.group(2)))
        if pull is None or (match.group(1), match.group(3)) not in (
            ("issues", "labels"),
            ("issues", "comments"),
            ("pulls", "requested_reviewers"),
        ):
            return Reply(404, {"message": "not found"}, template)
        if match.group(3) == "labels" and method == "put":
            wanted = body.get("labels") or []
            if any(i not in self.labels for i in wanted):
                return Reply(404, {"message": "label does not exist"}, template)  # Gitea's answer
            pull.labels = [int(i) for i in wanted]
        if match.group(3) == "labels":
            return Reply(200, [self.label_json(i) for i in pull.labels], template)
        if match.group(3) == "comments" and method == "post":
            self.comment(pull.number, user, str(body.get("body", "")))
            return Reply(201, self.comment_json(pull, pull.comments[-1]), template)
        if match.group(3) == "comments":
            return Reply(200, [self.comment_json(pull, c) for c in pull.comments], template)
        if any(login not in self.users for login in body.get("reviewers") or []):
            return Reply(422, {"message": "user does not exist"}, template)
        for login in body.get("reviewers") or []:
            if login not in pull.requested:
                pull.requested.append(login)
                self._ids += 1
                pull.reviews.append(Review(self._ids, login, "REQUEST_REVIEW", ""))
        requests = [r for r in pull.reviews if r.state == "REQUEST_REVIEW"]
        return Reply(201, [self.review_json(pull, r) for r in requests], template)

    def _timeline(self, number: int) -> Reply:
        """The issue's comments and its close/reopen events, oldest first (Gitea's TimelineComment)."""
        template = "/issues/{index}/timeline"
        pull = self.pulls.get(number)
        if pull is None:
            return Reply(404, {"message": "not found"}, template)
        entries = [(i, "comment", login, body) for i, login, body in pull.comments]
        entries += [(i, kind, login, "") for i, kind, login in pull.events]
        data = [
            {
                "id": i,
                "type": kind,
                "user": self._user(login),
                "body": body,
                "created_at": stamp(pull.created),
                "updated_at": stamp(pull.created),
                "html_url": f"{self.html_url}/pulls/{number}#issuecomment-{i}",
                "issue_url": f"{self.html_url}/issues/{number}",
                "pull_request_url": f"{self.html_url}/pulls/{number}",
            }
            for i, kind, login, body in sorted(entries)
        ]
        return Reply(200, data, template)

    def _create(self, body: dict[str, Any], user: str) -> Reply:
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head_sha, base_sha = self.remote.rev(head), self.remote.rev(base)
        if head_sha is None or base_sha is None:
            return Reply(404, {"message": "branch not found"}, "/pulls")
        if any(p.head == head and p.base == base and p.state == "open" for p in self.pulls.values()):
            return Reply(409, {"message": "pull request already exists for these targets"}, "/pulls")
        if self.remote.ahead(base_sha, head_sha) == 0:
            return Reply(422, {"message": "There are no changes between the head and the base"}, "/pulls")
        number = max([0, *self.pulls]) + 1
        self.pulls[number] = Pull(
            number, head, base, str(body.get("title", "")), str(body.get("body", "")), user
        )
        return Reply(201, self.pull_json(self.pulls[number]), "/pulls")

    def _merge(self, pull: Pull, body: dict[str, Any]) -> Reply:
        template = "/pulls/{index}/merge"
        if pull.state != "open" or not self.mergeable(pull) or pull.draft:
            return Reply(405, {"message": "Please try again later"}, template)
        protected = (self.remote.bare / "gitcanary-test-protected").exists()
        if protected and self.approvals(pull) < self.required_approvals:
            return Reply(405, {"message": "Does not have enough approvals"}, template)
        sha = body.get("head_commit_id")
        if sha and sha != self.remote.rev(pull.head):
            return Reply(409, {"message": "head out of date"}, template)
        do = str(body.get("do"))
        if do not in ("merge", "squash", "rebase"):
            return Reply(405, {"message": f"merge style {do} is not allowed"}, template)
        base = self.remote.rev(pull.base)
        head = self.remote.rev(pull.head)
        assert base and head
        if do == "squash":
            title = body.get("merge_title_field") or f"{pull.title} (#{pull.number})"
            default = self.remote.messages(base, head)
        else:
            title = body.get("merge_title_field") or (
                f"Merge pull request '{pull.title}' (#{pull.number}) from {pull.head} into {pull.base}"
            )
            default = ""
        message = body.get("merge_message_field")
        text = f"{title}\n\n{default if message is None else message}"
        pull.merge_sha = self.remote.merge(pull.base, pull.head, do, text)
        pull.state, pull.merged, pull.closed, pull.head_sha = "closed", True, time.time(), head
        return Reply(200, None, template)

    # -- WSGI and validation -----------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = incoming(environ)
        method, path, query, body = request.method, request.path, request.query, request.body
        self.seen(request, request.authorization.removeprefix("token ").strip())
        repo = f"{PREFIX}/repos/{self.owner}/{self.name}"
        headers: list[tuple[str, str]] = []
        limit = next(
            (r for r in self.rate_limits if r.method.lower() == method and path.endswith(r.path_suffix)), None
        )
        if not path.startswith(PREFIX + "/"):  # a web page a body links to: a browser sends no token
            status = self.web_page(path)
            reason = "OK" if status == 200 else "Not Found"
            return respond(start_response, status, None, [], reason, "text/html")
        if self._token not in self.token_user and self._token != "pat-token":
            reply = Reply(401, {"message": "token is required"}, None, check=False)
        elif limit is not None:
            limit.count -= 1
            if limit.count <= 0:
                self.rate_limits.remove(limit)
            headers = [("Retry-After", str(limit.retry_after))]
            reply = Reply(429, {"message": "Too Many Requests"}, None, check=False)
        elif release := re.fullmatch(rf"{PREFIX}/repos/([^/]+/[^/]+)/releases/tags/([^/]+)", path):
            reply = self._release(release[1], unquote(release[2]))  # of any repository here
        elif not path.startswith(repo):
            reply = Reply(404, {"message": "not found"}, None)
        else:
            user = self.token_user.get(self._token, "pat")
            try:
                reply = self.handle(method, path[len(repo) :], query, body, user)
            except Exception as exc:  # a bug here must fail the test, not look like Gitea
                self.errors.append(f"{method.upper()} {path}: the test server raised {exc!r}")
                raise
            if reply.template is not None:
                self._check_request(reply.template, method, body)
                self._check_query(reply.template, method, query)
        if reply.check:
            self._check_response(reply, method)
        return respond(start_response, reply.status, reply.body, headers)

    def web_page(self, path: str) -> int:
        """Gitea's web pages bodies link to: a commit, a pull request, a release; 200 when it
        exists here, else 404."""
        site = f"/{self.owner}/{self.name}/"
        commit = re.fullmatch(re.escape(site) + r"commit/([0-9a-f]{40})", path)
        if commit:
            return 200 if self.remote.has_commit(commit[1]) else 404
        pull = re.fullmatch(re.escape(site) + r"pulls/(\d+)", path)
        if pull:
            return 200 if int(pull[1]) in self.pulls else 404
        release = re.fullmatch(r"/([^/]+/[^/]+)/releases/tag/([^/]+)", path)
        if release:
            return 200 if (release[1], unquote(release[2])) in self.releases else 404
        return 404

    def _op(self, template: str, method: str) -> dict[str, Any] | None:
        ops = SPEC["paths"].get("/repos/{owner}/{repo}" + template, {})
        return ops.get(method)

    def _check_request(self, template: str, method: str, body: Any) -> None:
        op = self._op(template, method)
        if op is None:
            return
        for param in op.get("parameters", []):
            if param.get("in") == "body":
                self.check(_validator(param["schema"]), body, f"{method.upper()} {template} request")

    def _check_query(self, template: str, method: str, query: dict[str, str]) -> None:
        op = self._op(template, method) or {}
        declared = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
        for name, value in query.items():
            param = declared.get(name)
            if param is None:
                self.errors.append(
                    f"{method.upper()} {template}: query parameter {name!r} is not in the swagger"
                )
            elif "enum" in param and value not in param["enum"]:
                self.errors.append(
                    f"{method.upper()} {template}: {name}={value!r} is not one of {param['enum']}"
                )

    def _check_response(self, reply: Reply, method: str) -> None:
        if reply.template is None:
            self.errors.append(f"{method.upper()} to a path with no operation here answered {reply.status}")
            return
        op = self._op(reply.template, method)
        if op is None or str(reply.status) not in op["responses"]:
            self.errors.append(
                f"{method.upper()} {reply.template}: status {reply.status} is not in the swagger"
            )
            return
        response = op["responses"][str(reply.status)]
        if "$ref" in response:
            response = SPEC["responses"][response["$ref"].rsplit("/", 1)[-1]]
        schema = response.get("schema")
        if schema is None:
            if reply.body is not None and reply.status < 400:
                self.errors.append(f"{method.upper()} {reply.template}: a body where the swagger has none")
            return
        what = f"{method.upper()} {reply.template} {reply.status}"
        self.check(_validator(schema), without_nulls(reply.body), what, most=100)


def _validator(schema: dict[str, Any]) -> Draft4Validator:
    return Draft4Validator({**strict(schema), "definitions": DEFINITIONS})


@dataclass
class Reply:
    status: int
    body: Any
    template: str | None
    check: bool = True
