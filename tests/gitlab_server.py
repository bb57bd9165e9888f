"""A local GitLab-compatible REST server (`/api/v4`, merge requests) for the forge tests.

Real state on the config repo's bare remote (tests/forge_remote.py): merge requests and approvals
live here, refs and merges in Git. What it validates, and against what (tests/data/gitlab/SOURCES):
- merge request responses against GitLab's own JSON schema for its v4 API
  (`spec/fixtures/api/schemas/public_api/v4/merge_request.json`), because GitLab's OpenAPI v2
  description (`doc/api/openapi/openapi_v2.yaml`) could not be used for merge requests here;
- request bodies against python-gitlab's own model of each call (`_create_attrs`/`_update_attrs`
  of ProjectMergeRequestManager: required and optional names) and GitLab's documented merge
  parameters; no other key may be sent;
- notes (MR comments) against GitLab's own `public_api/v4/notes.json` schema (tests/data/gitlab);
- the approvals response (a GitLab EE schema not among those fixtures) against the fields
  GitLab's docs list for `GET .../approvals`, hand-copied in APPROVALS below, and the project's
  approval configuration (`GET /projects/:id/approvals`) likewise in PROJECT_APPROVALS;
- users found by username (`GET /users?username=`) against `user/basic.json`.
Draft is GitLab's: a "Draft: " title prefix makes the MR a draft, and a draft is not merged.
Approvals are reset on push when the project says so (`reset_approvals_on_push`, GitLab's
default): an approval given on an earlier head is no longer listed.
A mismatch lands in `errors` and fails the test. Emulated: a person's approval or close is a
method call here, and the project's merge method (merge commit or fast-forward) is a field.
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

from forge_remote import BareRemote, LocalForge, RateLimit, incoming, respond, stamp
from gitlab.v4.objects import ProjectMergeRequestManager, ProjectMergeRequestNoteManager, UserManager
from jsonschema import Draft7Validator
from referencing import Registry, Resource

DATA = Path(__file__).parent / "data" / "gitlab"
MERGE_REQUEST = json.loads((DATA / "merge_request.json").read_text())
NOTES = json.loads((DATA / "notes.json").read_text())
USER = json.loads((DATA / "user" / "basic.json").read_text())
RELEASE = json.loads((DATA / "release.json").read_text())
MEMBERS = json.loads((DATA / "members.json").read_text())
REVIEWERS = json.loads((DATA / "merge_request_reviewers.json").read_text())
REGISTRY = Registry().with_resources(
    [
        ("user/basic.json", Resource.opaque(USER)),
        ("public_api/v4/user/basic.json", Resource.opaque(USER)),  # as release.json names it
        # Only ever null here; GitLab's milestone.json is not copied (see SOURCES).
        ("milestone.json", Resource.opaque({"type": "object"})),
    ]
)
# GitLab docs, "Merge request approvals API", GET /projects/:id/merge_requests/:iid/approvals.
APPROVALS = {
    "type": "object",
    "required": ["approved", "approved_by"],
    "properties": {
        "approved": {"type": "boolean"},
        "approvals_required": {"type": "integer"},
        "approvals_left": {"type": "integer"},
        "approved_by": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["user"],
                "properties": {"user": {"type": "object", "required": ["username"]}},
            },
        },
    },
}
# GitLab docs, "Merge request approvals API", GET /projects/:id/approvals (project configuration).
PROJECT_APPROVALS = {
    "type": "object",
    "required": ["approvals_before_merge", "reset_approvals_on_push"],
    "properties": {
        "approvals_before_merge": {"type": "integer"},
        "reset_approvals_on_push": {"type": "boolean"},
        "selective_code_owner_removals": {"type": "boolean"},
        "disable_overriding_approvers_per_merge_request": {"type": "boolean"},
        "merge_requests_author_approval": {"type": "boolean"},
        "merge_requests_disable_committers_approval": {"type": "boolean"},
        "require_password_to_approve": {"type": "boolean"},
    },
    "additionalProperties": False,
}
# GitLab docs, "Notes API", GET /projects/:id/merge_requests/:iid/notes: sort and order_by.
NOTE_LIST_PARAMS = {"sort", "order_by", "page", "per_page", "pagination"}
DRAFT = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-)\s*", re.IGNORECASE)
# GitLab docs, "Merge requests API", PUT /projects/:id/merge_requests/:iid/merge.
MERGE_PARAMS = {
    "merge_commit_message",
    "squash_commit_message",
    "squash",
    "should_remove_source_branch",
    "merge_when_pipeline_succeeds",
    "auto_merge",
    "sha",
}


@dataclass
class MergeRequest:
    iid: int
    head: str
    base: str
    title: str
    description: str
    author: str
    state: str = "opened"
    merge_sha: str | None = None
    squash_sha: str | None = None
    created: float = field(default_factory=time.time)
    closed: float | None = None
    approved_by: list[tuple[str, str]] = field(default_factory=list)  # (username, head approved)
    head_sha: str = ""
    labels: list[str] = field(default_factory=list)
    reviewer_ids: list[int] = field(default_factory=list)
    notes: list[tuple[int, str, str, bool]] = field(default_factory=list)  # (id, author, body, system)
    closed_by: str = ""  # who closed it (GitLab's `closed_by`)
    # Each reviewer's state (GitLab's MergeRequestReviewer `state`), by username.
    states: dict[str, str] = field(default_factory=dict)

    @property
    def draft(self) -> bool:
        return DRAFT.match(self.title) is not None


class GitLabServer(LocalForge):
    def __init__(self, bare: Path, project: str = "acme/config", branch: str = "main") -> None:
        self.project, self.branch = project, branch
        remote = BareRemote(
            bare,
            branch,
            "GitLab: You are not allowed to push code to protected branches on this project.",
            ("GitLab", "noreply@gitlab.example"),
        )
        super().__init__(remote, {"gitcanary-token": "gitcanary-bot"})
        self.mrs: dict[int, MergeRequest] = {}
        self.required_approvals = 0
        self.reset_approvals_on_push = True  # the project's setting, GitLab's default
        self.project_approvals_status = 200  # 401, 403 or 404: the setting cannot be read
        self.users = {"gitcanary-bot", "pat", "sam", "reader"}
        # Each member's access level (10 guest, 20 reporter, 30 developer, ...); others: developer.
        self.access = {"reader": 20}
        # Releases of projects on this instance: (group/project, tag) -> (name, description).
        self.releases: dict[tuple[str, str], tuple[str, str]] = {}
        self._note_ids = 500
        self.merge_method = "merge"  # the project's setting: merge or ff (fast-forward)
        self.rate_limits: list[RateLimit] = []

    # -- what a person does in the web UI ----------------------------------------------------------

    def approve(self, iid: int, user: str = "pat") -> None:
        mr = self.mrs[iid]
        mr.approved_by = [a for a in mr.approved_by if a[0] != user]
        mr.approved_by.append((user, self.remote.rev(mr.head) or ""))
        self._set_state(mr, user, "approved")

    def unapprove(self, iid: int, user: str) -> None:
        mr = self.mrs[iid]
        mr.approved_by = [a for a in mr.approved_by if a[0] != user]
        self._set_state(mr, user, "unapproved")

    def request_changes(self, iid: int, user: str, body: str = "") -> None:
        """A reviewer submits a review with "Request changes" (GitLab 17): their approval, if any,
        is removed, and their reviewer state becomes requested_changes; the review's summary is
        a note. Emulated: the web UI's action (GitLab's REST API has no call for it)."""
        mr = self.mrs[iid]
        mr.approved_by = [a for a in mr.approved_by if a[0] != user]
        self._set_state(mr, user, "requested_changes")
        if body:
            self.note(iid, user, body)

    def rerequest(self, iid: int, user: str) -> None:
        """A maintainer re-requests `user`'s review: their state goes back to unreviewed (how a
        standing request for changes is lifted on GitLab without that reviewer)."""
        self._set_state(self.mrs[iid], user, "unreviewed")

    def _set_state(self, mr: MergeRequest, user: str, state: str) -> None:
        """An approval changes only a reviewer's state; submitting a review (request changes)
        makes its author a reviewer (emulated: what the web UI's review does)."""
        if self._id(user) not in mr.reviewer_ids:
            if state != "requested_changes":
                return
            mr.reviewer_ids.append(self._id(user))
        mr.states[user] = state

    def reopen(self, iid: int, user: str = "pat") -> None:
        mr = self.mrs[iid]
        if mr.state == "closed":
            mr.state, mr.closed, mr.closed_by = "opened", None, ""

    def note(self, iid: int, user: str, body: str, system: bool = False) -> None:
        self._note_ids += 1
        self.mrs[iid].notes.append((self._note_ids, user, body, system))

    def approvers(self, mr: MergeRequest) -> list[str]:
        """Who GitLab lists as approving: with resets on push, only approvals of the head."""
        head = self.remote.rev(mr.head) or mr.head_sha
        return [u for u, sha in mr.approved_by if not self.reset_approvals_on_push or sha == head]

    def close(self, iid: int, user: str = "pat") -> None:
        mr = self.mrs[iid]
        mr.state, mr.closed, mr.head_sha = "closed", time.time(), self.remote.rev(mr.head) or ""
        mr.closed_by = user

    # -- state -----------------------------------------------------------------------------------

    def detailed_status(self, mr: MergeRequest) -> str:
        head, base = self.remote.rev(mr.head), self.remote.rev(mr.base)
        if not head or not base or self.remote.merge_tree(base, head) is None:
            return "conflict"
        if mr.draft:
            return "draft_status"
        if len(self.approvers(mr)) < self.required_approvals:
            return "not_approved"
        if self.merge_method == "ff" and not self.remote.is_ancestor(base, head):
            return "need_rebase"  # a fast-forward project merges only what is rebased on the target
        return "mergeable"

    def _id(self, name: str) -> int:
        return sorted(self.users | {name}).index(name) + 1

    def _name_of(self, user_id: int) -> str:
        return sorted(self.users)[user_id - 1]

    def _user(self, name: str) -> dict[str, Any]:
        return {
            "id": self._id(name),
            "username": name,
            "name": name,
            "state": "active",
            "avatar_url": f"{self.url}/uploads/{name}.png",
            "web_url": f"{self.url}/{name}",
        }

    def mr_json(self, mr: MergeRequest) -> dict[str, Any]:
        status = self.detailed_status(mr) if mr.state == "opened" else "not_open"
        return {
            "id": mr.iid * 7,
            "iid": mr.iid,
            "project_id": 1,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": stamp(mr.created),
            "updated_at": stamp(),
            "merged_at": stamp(mr.closed) if mr.state == "merged" else None,
            "closed_at": stamp(mr.closed) if mr.state == "closed" else None,
            "target_branch": mr.base,
            "source_branch": mr.head,
            "upvotes": 0,
            "downvotes": 0,
            "author": self._user(mr.author),
            "assignee": self._user(mr.author),
            "source_project_id": 1,
            "target_project_id": 1,
            "labels": list(mr.labels),
            "work_in_progress": mr.draft,
            "draft": mr.draft,
            "reviewers": [self._user(self._name_of(i)) for i in mr.reviewer_ids],
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged" if status == "mergeable" else "cannot_be_merged",
            "detailed_merge_status": status,
            "has_conflicts": status == "conflict",
            "sha": self.remote.rev(mr.head) or mr.head_sha,
            "merge_commit_sha": mr.merge_sha,
            "squash_commit_sha": mr.squash_sha,
            "user_notes_count": len([n for n in mr.notes if not n[3]]),
            "should_remove_source_branch": None,
            "force_remove_source_branch": False,
            "web_url": f"{self.url}/{self.project}/-/merge_requests/{mr.iid}",
            "squash": False,
            # GitLab's schema has `closed_by` as a user object: sent only once someone closed it.
            **({"closed_by": self._user(mr.closed_by)} if mr.state == "closed" and mr.closed_by else {}),
        }

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, rest: str, query: dict[str, str], body: dict[str, Any], user: str) -> Reply:
        manager = ProjectMergeRequestManager
        if rest == "/merge_requests" and method == "get":
            allowed = {*manager._list_filters, "page", "per_page", "pagination"}  # filters + pagination
            self._check_keys("GET merge_requests query", query, (), tuple(allowed))
            state = query.get("state", "all")
            found = [
                self.mr_json(mr)
                for mr in sorted(self.mrs.values(), key=lambda m: m.iid, reverse=True)
                if (state == "all" or mr.state == state)
                and ("source_branch" not in query or mr.head == query["source_branch"])
            ]
            return Reply(200, found[: int(query.get("per_page", 20))], "list")
        if rest == "/merge_requests" and method == "post":
            self._check_keys(
                "POST merge_requests", body, manager._create_attrs.required, manager._create_attrs.optional
            )
            return self._create(body, user)
        if rest == "/approvals" and method == "get":
            if self.project_approvals_status != 200:  # as on tiers without it, or without the rights
                status = self.project_approvals_status
                return Reply(status, {"message": f"{status}"}, None)
            data = {
                "approvals_before_merge": self.required_approvals,
                "reset_approvals_on_push": self.reset_approvals_on_push,
                "disable_overriding_approvers_per_merge_request": False,
                "merge_requests_author_approval": False,
                "merge_requests_disable_committers_approval": False,
            }
            return Reply(200, data, "project_approvals")
        match = re.fullmatch(r"/merge_requests/(\d+)/notes", rest)
        if match and int(match.group(1)) in self.mrs:
            mr = self.mrs[int(match.group(1))]
            if method == "post":
                notes = ProjectMergeRequestNoteManager._create_attrs
                self._check_keys("POST notes", body, notes.required, notes.optional)
                self.note(mr.iid, user, str(body.get("body", "")))
                return Reply(201, self.note_json(mr, mr.notes[-1]), "note")
            self._check_keys("GET notes query", query, (), tuple(NOTE_LIST_PARAMS))
            notes = sorted(mr.notes, reverse=query.get("sort", "desc") == "desc")
            return Reply(200, [self.note_json(mr, n) for n in notes], "notes")
        match = re.fullmatch(r"/merge_requests/(\d+)/(approve|unapprove|reviewers)", rest)
        if match and int(match.group(1)) in self.mrs:
            return self._votes(self.mrs[int(match.group(1))], method, match.group(2), body, user)
        match = re.fullmatch(r"/merge_requests/(\d+)(/merge|/approvals)?", rest)
        if match:
            mr = self.mrs.get(int(match.group(1)))
            if mr is None:
                message = f"404 Not found (token {self._token})" if self.echo_token else "404 Not found"
                return Reply(404, {"message": message}, None)
            if match.group(2) is None and method == "get":
                return Reply(200, self.mr_json(mr), "mr")
            if match.group(2) is None and method == "put":
                self._check_keys("PUT merge_request", body, (), manager._update_attrs.optional)
                if "description" in body:
                    mr.description = str(body["description"])
                if "title" in body:
                    mr.title = str(body["title"])
                if "labels" in body:  # a comma-separated string, as python-gitlab sends a list
                    labels = body["labels"]
                    names = labels if isinstance(labels, list) else str(labels).split(",")
                    mr.labels = [str(n).strip() for n in names if str(n).strip()]
                if "reviewer_ids" in body:
                    ids = [int(i) for i in body["reviewer_ids"]]
                    if any(i < 1 or i > len(self.users) for i in ids):
                        return Reply(400, {"message": {"reviewer_ids": ["unknown user"]}}, None)
                    mr.reviewer_ids = ids
                if body.get("state_event") == "close" and mr.state == "opened":
                    self.close(mr.iid, user)
                if body.get("state_event") == "reopen" and mr.state == "closed":
                    self.reopen(mr.iid, user)
                return Reply(200, self.mr_json(mr), "mr")
            if match.group(2) == "/merge" and method == "put":
                self._check_keys("PUT merge", body, (), tuple(MERGE_PARAMS))
                return self._merge(mr, body)
            if match.group(2) == "/approvals" and method == "get":
                data = {
                    "approved": len(self.approvers(mr)) >= self.required_approvals,
                    "approvals_required": self.required_approvals,
                    "approvals_left": max(0, self.required_approvals - len(self.approvers(mr))),
                    "approved_by": [{"user": self._user(u)} for u in self.approvers(mr)],
                }
                return Reply(200, data, "approvals")
        match = re.fullmatch(r"/members/all/(\d+)", rest)
        if match and method == "get":
            name = self._name_of(int(match[1])) if 0 < int(match[1]) <= len(self.users) else ""
            if not name:
                return Reply(404, {"message": "404 Not found"}, None)
            member = {**self._user(name), "access_level": self.access.get(name, 30), "expires_at": None}
            return Reply(200, member, "member")
        match = re.fullmatch(r"/repository/branches/(.+)", rest)
        if match and method == "delete":
            if not self.remote.delete(match.group(1)):
                return Reply(404, {"message": "404 Branch Not Found"}, None)
            return Reply(204, None, None)
        return Reply(404, {"error": "404 Not Found"}, None)

    def _votes(self, mr: MergeRequest, method: str, what: str, body: dict[str, Any], user: str) -> Reply:
        """POST .../approve and .../unapprove (python-gitlab's approve()/unapprove()), and GET
        .../reviewers, each reviewer with their state."""
        if what == "reviewers" and method == "get":
            data = [
                {
                    "user": self._user(self._name_of(i)),
                    "state": mr.states.get(self._name_of(i), "unreviewed"),
                    "created_at": stamp(mr.created),
                }
                for i in mr.reviewer_ids
            ]
            return Reply(200, data, "reviewers")
        if what == "approve" and method == "post":
            self._check_keys("POST approve", body, (), ("sha",))
            if body.get("sha") and body["sha"] != self.remote.rev(mr.head):
                return Reply(409, {"message": "SHA does not match HEAD of source branch"}, None)
            if user in self.approvers(mr):
                return Reply(401, {"message": "401 Unauthorized"}, None)  # GitLab: already approved
            self.approve(mr.iid, user)
            return self._approvals(mr)
        if what == "unapprove" and method == "post":
            self._check_keys("POST unapprove", body, (), ())
            if user not in self.approvers(mr):
                return Reply(404, {"message": "404 Not found"}, None)
            self.unapprove(mr.iid, user)
            return self._approvals(mr)
        return Reply(404, {"error": "404 Not Found"}, None)

    def _approvals(self, mr: MergeRequest) -> Reply:
        data = {
            "approved": len(self.approvers(mr)) >= self.required_approvals,
            "approvals_required": self.required_approvals,
            "approvals_left": max(0, self.required_approvals - len(self.approvers(mr))),
            "approved_by": [{"user": self._user(u)} for u in self.approvers(mr)],
        }
        return Reply(201, data, "approvals")

    def _release(self, project: str, tag: str) -> Reply:
        if (project, tag) not in self.releases:
            return Reply(404, {"message": "404 Not found"}, None)
        name, text = self.releases[(project, tag)]
        data = {
            "name": name,
            "tag_name": tag,
            "description": text,
            "created_at": stamp(),
            "author": self._user("pat"),
        }
        return Reply(200, data, "release")

    def note_json(self, mr: MergeRequest, note: tuple[int, str, str, bool]) -> dict[str, Any]:
        when = stamp(mr.created)
        return {
            "id": note[0],
            "type": None,
            "body": note[2],
            "attachment": None,
            "author": self._user(note[1]),
            "created_at": when,
            "updated_at": when,
            "system": note[3],
            "noteable_id": mr.iid * 7,
            "noteable_iid": mr.iid,
            "noteable_type": "MergeRequest",
            "resolvable": False,
            "confidential": False,
            "internal": False,
        }

    def users_reply(self, query: dict[str, str]) -> Reply:
        allowed = {*UserManager._list_filters, "page", "per_page", "pagination"}
        self._check_keys("GET users query", query, (), tuple(allowed))
        name = query.get("username", "")
        return Reply(200, [self._user(name)] if name in self.users else [], "users")

    def _check_keys(
        self, what: str, body: dict[str, Any], required: Iterable[str], optional: Iterable[str]
    ) -> None:
        allowed = set(required) | set(optional)
        for key in body:
            if key not in allowed:
                self.errors.append(f"{what}: {key!r} is not a parameter python-gitlab/GitLab documents")
        for key in required:
            if key not in body:
                self.errors.append(f"{what}: required {key!r} missing")

    def _create(self, body: dict[str, Any], user: str) -> Reply:
        head, base = str(body["source_branch"]), str(body["target_branch"])
        head_sha, base_sha = self.remote.rev(head), self.remote.rev(base)
        if head_sha is None or base_sha is None:
            return Reply(400, {"message": {"source_branch": ["is invalid"]}}, None)
        if any(m.head == head and m.state == "opened" for m in self.mrs.values()):
            message = [f"Another open merge request already exists for this source branch: !{head}"]
            return Reply(409, {"message": message}, None)
        iid = max([0, *self.mrs]) + 1
        self.mrs[iid] = MergeRequest(
            iid, head, base, str(body["title"]), str(body.get("description", "")), user
        )
        return Reply(201, self.mr_json(self.mrs[iid]), "mr")

    def _merge(self, mr: MergeRequest, body: dict[str, Any]) -> Reply:
        if mr.state != "opened":
            return Reply(405, {"message": "405 Method Not Allowed"}, None)
        status = self.detailed_status(mr)
        if status == "conflict":
            return Reply(406, {"message": "Branch cannot be merged"}, None)
        if status == "need_rebase":
            return Reply(406, {"message": "Branch cannot be merged"}, None)
        if status != "mergeable":
            return Reply(405, {"message": "405 Method Not Allowed"}, None)
        head = self.remote.rev(mr.head)
        if body.get("sha") and body["sha"] != head:
            return Reply(409, {"message": "SHA does not match HEAD of source branch"}, None)
        base = self.remote.rev(mr.base)
        assert base and head
        reference = f"{self.project}!{mr.iid}"
        if body.get("squash"):
            message = body.get("squash_commit_message") or f"{mr.title}\n\n{self.remote.messages(base, head)}"
            mr.squash_sha = mr.merge_sha = self.remote.merge(mr.base, mr.head, "squash", str(message))
        elif self.merge_method == "ff":
            self.remote.fast_forward(mr.base, mr.head)  # no commit of GitLab's own: no message to carry
        else:
            default = (
                f"Merge branch '{mr.head}' into '{mr.base}'\n\n{mr.title}\n\nSee merge request {reference}"
            )
            message = body.get("merge_commit_message") or default
            mr.merge_sha = self.remote.merge(mr.base, mr.head, "merge", str(message))
        mr.state, mr.closed, mr.head_sha = "merged", time.time(), head
        return Reply(200, self.mr_json(mr), "mr")

    # -- WSGI and validation -----------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = incoming(environ)
        method, path, query, body = request.method, request.path, request.query, request.body
        if method in ("put", "post"):  # Grape reads parameters from the query string and the body alike
            body = {**query, **body}
        self.seen(request, environ.get("HTTP_PRIVATE_TOKEN", ""))
        # The project by path (acme/config, as gitcanary names it) or by id (as an MR's project_id).
        prefix = next(
            (
                p
                for p in (f"/api/v4/projects/{self.project}", "/api/v4/projects/1")
                if path.startswith(p + "/")
            ),
            f"/api/v4/projects/{self.project}",
        )
        reset = int(time.time()) + 60
        headers = [
            ("RateLimit-Limit", "2000"),
            ("RateLimit-Remaining", "1999"),
            ("RateLimit-Reset", str(reset)),
        ]
        limit = next(
            (r for r in self.rate_limits if r.method.lower() == method and path.endswith(r.path_suffix)), None
        )
        if not path.startswith("/api/"):  # a web page a body links to: a browser sends no token
            status = self.web_page(path)
            reason = "OK" if status == 200 else "Not Found"
            return respond(start_response, status, None, [], reason, "text/html")
        if self._token not in self.token_user:
            reply = Reply(401, {"message": "401 Unauthorized"}, None)
        elif limit is not None:
            reset = int(time.time()) + limit.retry_after  # GitLab's Retry-After is the time to the reset
            limit.count -= 1
            if limit.count <= 0:
                self.rate_limits.remove(limit)
            headers = [
                ("RateLimit-Limit", "2000"),
                ("RateLimit-Remaining", "0"),
                ("RateLimit-Reset", str(reset)),
                ("Retry-After", str(limit.retry_after)),
            ]
            reply = Reply(429, {"message": "Retry later"}, None)
        elif path == "/api/v4/users" and method == "get":
            reply = self.users_reply(query)
        elif release := re.fullmatch(r"/api/v4/projects/(.+)/releases/([^/]+)", path):
            reply = self._release(release[1], release[2])  # of any project here
        elif not path.startswith(prefix):
            reply = Reply(404, {"message": "404 Project Not Found"}, None)
        else:
            user = self.token_user[self._token]
            try:
                reply = self.handle(method, path[len(prefix) :], query, body, user)
            except Exception as exc:  # a bug here must fail the test, not look like GitLab
                self.errors.append(f"{method.upper()} {path}: the test server raised {exc!r}")
                raise
        self._check_response(reply, method, path)
        return respond(start_response, reply.status, reply.body, headers)

    def web_page(self, path: str) -> int:
        """GitLab's web pages bodies link to: a commit, a merge request, a release; 200 when it
        exists here, else 404 (GitLab's `/-/` routes)."""
        site = f"/{self.project}/-/"
        commit = re.fullmatch(re.escape(site) + r"commit/([0-9a-f]{40})", path)
        if commit:
            return 200 if self.remote.has_commit(commit[1]) else 404
        mr = re.fullmatch(re.escape(site) + r"merge_requests/(\d+)", path)
        if mr:
            return 200 if int(mr[1]) in self.mrs else 404
        release = re.fullmatch(r"/(.+)/-/releases/([^/]+)", path)
        if release:
            return 200 if (release[1], unquote(release[2])) in self.releases else 404
        return 404

    def _check_response(self, reply: Reply, method: str, path: str) -> None:
        schema: dict[str, Any] | None = {
            "mr": MERGE_REQUEST,
            "list": {"type": "array", "items": MERGE_REQUEST},
            "approvals": APPROVALS,
            "project_approvals": PROJECT_APPROVALS,
            "notes": NOTES,
            "note": NOTES["items"],
            "users": {"type": "array", "items": USER},
            "release": RELEASE,
            "member": MEMBERS["items"],
            "reviewers": REVIEWERS,
        }.get(reply.kind or "")
        if schema is None:
            return
        validator = Draft7Validator(schema, registry=REGISTRY)
        self.check(validator, reply.body, f"{method.upper()} {path} {reply.status}", most=100)


@dataclass
class Reply:
    status: int
    body: Any
    kind: str | None
