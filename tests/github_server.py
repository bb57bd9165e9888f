"""A local GitHub-compatible REST server for the forge tests, used through real PyGithub.

It keeps real state: pull requests, reviews and refs live on a real bare Git repository, and a
merge is a real `git merge-tree` + `commit-tree` + `update-ref` on it. Every response it sends is
validated against GitHub's own OpenAPI description (tests/data/github/rest-api-subset.json); an
invalid response, or a status code the operation does not describe, is recorded in `errors` and
fails the test that uses the `github` fixture.

Branch protection is a real pre-receive hook in the bare repository: a push to the protected
branch is refused by git itself, as GitHub refuses it (GH006); merges through the API bypass
hooks, as GitHub's own merges do.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from forge_remote import BareRemote, LocalForge, incoming, respond, stamp
from openapi_schema_validator import OAS30Validator

SPEC_FILE = Path(__file__).parent / "data" / "github" / "rest-api-subset.json"
# GET .../issues/{n}/events, which the subset lacks (tests/data/github/SOURCES).
ISSUE_EVENTS = json.loads((Path(__file__).parent / "data" / "github" / "issue-events.json").read_text())
_SPEC: dict[str, Any] | None = None
PREFIX = "/api/v3"  # GitHub Enterprise's API root: PyGithub is given base_url=<server>/api/v3
GRAPHQL = "/api/graphql"  # GitHub Enterprise's GraphQL endpoint beside it


def spec() -> dict[str, Any]:
    global _SPEC
    if _SPEC is None:
        _SPEC = json.loads(SPEC_FILE.read_text())
    return _SPEC


def skeleton(schema: dict[str, Any]) -> Any:
    """The smallest instance of `schema` that has every required field (then overlaid with real state)."""
    if "allOf" in schema:
        out: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = skeleton(part)
            if isinstance(value, dict):
                out.update(value)
        return out
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return skeleton(schema[key][0])
    if schema.get("nullable"):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: skeleton(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "uri":
            return "https://github.example/x"
        if fmt == "email":
            return "x@example.com"
        return "x"
    return None


_MISSING = object()


def _resolve(schema: dict[str, Any], data: Any) -> dict[str, Any]:
    """One concrete object schema: `allOf` merged, the `anyOf`/`oneOf` option that fits `data`."""
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(part, data)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            for option in schema[key]:
                if isinstance(data, dict) and (option.get("type") == "object" or "properties" in option):
                    return _resolve(option, data)
            return _resolve(schema[key][0], data)
    return schema


def overlay(schema: dict[str, Any], data: Any) -> Any:
    """Real state `data`, completed with skeleton values for the required fields it lacks."""
    if isinstance(data, list):
        items = _resolve(schema, data).get("items", {})
        return [overlay(items, x) for x in data]
    if not isinstance(data, dict):
        return data
    schema = _resolve(schema, data)
    props = schema.get("properties", {})
    out = {name: skeleton(props.get(name, {})) for name in schema.get("required", []) if name not in data}
    for key, value in data.items():
        out[key] = overlay(props.get(key, {}), value)
    return out


def git(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env, input=input
    )




@dataclass
class Review:
    id: int
    user: str
    state: str
    commit_id: str
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
    merged_by: str | None = None
    created: float = field(default_factory=time.time)
    closed: float | None = None
    reviews: list[Review] = field(default_factory=list)
    head_sha: str = ""  # the head at merge or close, once the branch may be gone
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)  # requested reviewers (logins)
    requested_teams: list[str] = field(default_factory=list)
    comments: list[tuple[int, str, str]] = field(default_factory=list)  # (id, login, body)


@dataclass
class RateLimit:
    """Answer the next `count` requests to `method path-pattern` with GitHub's rate-limit 403."""

    count: int
    reset_in: int = 30
    retry_after: int | None = None  # a secondary limit: Retry-After instead of an empty window
    method: str = "POST"
    pattern: str = r"/pulls$"


class GitHubServer(LocalForge):
    """GitHub's REST API for one repository `owner/name`, backed by the bare repository `bare`."""

    def __init__(self, bare: Path, owner: str = "acme", name: str = "config", branch: str = "main") -> None:
        token_user = {
            "gitcanary-token": "gitcanary[bot]",
            "reader-token": "reader",
            "triager-token": "triager",
        }
        # GitHub's branch protection refuses a push with GH006; its committer is GitHub's own.
        refusal = "GH006: Protected branch update failed for"
        super().__init__(BareRemote(bare, branch, refusal, ("GitHub", "noreply@github.example")), token_user)
        self.bare = bare
        self.owner, self.name, self.default_branch = owner, name, branch
        self.pulls: dict[int, Pull] = {}
        self.required_approvals = 0
        self.rate_limits: list[RateLimit] = []
        # How each user relates to the repository (GitHub's author_association); others: COLLABORATOR.
        self.associations = {"gitcanary[bot]": "NONE", "reader": "CONTRIBUTOR"}
        # Each user's permission on the repository (the collaborator permission API); others: write.
        # A triager is a collaborator (author_association COLLABORATOR) who may not write.
        self.permissions = {"gitcanary[bot]": "none", "reader": "read", "triager": "read"}
        # Releases of repositories on this GitHub: (owner/name, tag) -> (name, body).
        self.releases: dict[tuple[str, str], tuple[str, str]] = {}
        self.unknown_users: set[str] = set()  # logins a review cannot be requested from
        self._lock = threading.RLock()
        self._refs: dict[str, str] | None = None
        self._trees: dict[tuple[str, str], str | None] = {}  # merge results by (base, head): immutable
        self._ids = 1000
        # Each PR's issue events: (id, "closed" or "reopened", actor, time), oldest first.
        self.issue_events: dict[int, list[tuple[int, str, str, float]]] = {}

    @property
    def seen_authorization(self) -> set[str]:
        """The tokens requests carried (GitHub's `Authorization: token ...`)."""
        return self.seen_tokens

    @property
    def api_url(self) -> str:
        return self.server.url + PREFIX

    @property
    def html_url(self) -> str:
        return f"{self.server.url}/{self.owner}/{self.name}"

    # -- state helpers -------------------------------------------------------------------------

    def rev(self, ref: str) -> str | None:
        """The branch's commit; refs are read once per request (one `git for-each-ref`), not per lookup."""
        with self._lock:
            if self._refs is None:
                fmt = "--format=%(refname) %(objectname)"
                out = git("for-each-ref", fmt, "refs/heads", cwd=self.bare).stdout
                self._refs = dict(line.split(" ", 1) for line in out.splitlines() if line)
            return self._refs.get(f"refs/heads/{ref}")

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _merge_tree(self, base: str, head: str) -> str | None:
        if (base, head) not in self._trees:
            proc = git("merge-tree", "--write-tree", base, head, cwd=self.bare)
            self._trees[(base, head)] = proc.stdout.split()[0] if proc.returncode == 0 else None
        return self._trees[(base, head)]

    def dismiss(self, number: int, user: str) -> None:
        """A maintainer dismisses `user`'s latest approval or change request, as GitHub's dismissal
        does: that review's state becomes DISMISSED (a person's action on the site)."""
        with self._lock:
            votes = ("APPROVED", "CHANGES_REQUESTED")
            review = [r for r in self.pulls[number].reviews if r.user == user and r.state in votes][-1]
            review.state = "DISMISSED"

    def approvals(self, pull: Pull) -> int:
        latest: dict[str, str] = {}
        for review in pull.reviews:
            latest[review.user] = review.state
        return sum(1 for state in latest.values() if state == "APPROVED")

    def mergeable_state(self, pull: Pull) -> tuple[bool | None, str]:
        if pull.state != "open":
            return None, "unknown"
        head, base = self.rev(pull.head), self.rev(pull.base)
        if head is None or base is None or self._merge_tree(base, head) is None:
            return False, "dirty"
        if pull.draft:
            return True, "draft"  # GitHub merges no draft, whatever the reviews say
        if self.approvals(pull) < self.required_approvals:
            return True, "blocked"
        return True, "clean"

    def human_merge(self, number: int, user: str = "pat") -> str:
        """A person presses the merge button (no review rule applies to an admin here)."""
        with self._lock:
            self._refs = None
            return self._merge(self.pulls[number], "merge", user)

    def _merge(
        self, pull: Pull, method: str, user: str, title: str | None = None, message: str | None = None
    ) -> str:
        """GitHub's merge. `title`/`message` are the API's `commit_title`/`commit_message`: the
        subject and the body of the merge or squash commit, each replacing only its own default
        (a rebase makes no commit of its own and ignores both)."""
        base, head = self.rev(pull.base), self.rev(pull.head)
        assert base and head
        tree = self._merge_tree(base, head)
        assert tree
        env_user = {"GIT_AUTHOR_NAME": "GitHub", "GIT_AUTHOR_EMAIL": "noreply@github.example"}
        env = {**env_user, "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.example"}
        full_env = {**os.environ, **env}
        if method == "rebase":
            sha = self.remote.replay(base, head)
        else:
            if method == "squash":
                subject = f"{pull.title} (#{pull.number})"
                if message is None:  # GitHub's default: the PR's commit messages, oldest first
                    message = git("log", "--reverse", "--format=%B", f"{base}..{head}", cwd=self.bare).stdout
                parents = ["-p", base]
            else:
                subject = f"Merge pull request #{pull.number} from {self.owner}/{pull.head}"
                message = pull.title if message is None else message
                parents = ["-p", base, "-p", head]
            text = f"{title if title is not None else subject}\n\n{message}".rstrip("\n") + "\n"
            sha = git(
                "commit-tree", tree, *parents, "-F", "-", cwd=self.bare, env=full_env, input=text
            ).stdout.strip()
        update = git("update-ref", f"refs/heads/{pull.base}", sha, base, cwd=self.bare)
        assert update.returncode == 0, update.stderr
        self._refs = None
        pull.state, pull.merged, pull.merge_sha, pull.merged_by = "closed", True, sha, user
        pull.closed, pull.head_sha = time.time(), head
        return sha

    # -- JSON views ----------------------------------------------------------------------------

    def _schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        op = spec()["paths"][path][method]
        response = op["responses"].get(str(status))
        if response is None:
            return None
        return response.get("content", {}).get("application/json", {}).get("schema", {})

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 100000 + 1,
            "type": "Bot" if login.endswith("[bot]") else "User",
            "html_url": f"{self.server.url}/{login}",
        }

    def _repo(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "full_name": f"{self.owner}/{self.name}",
            "default_branch": self.default_branch,
            "html_url": self.html_url,
            "url": f"{self.api_url}/repos/{self.owner}/{self.name}",
            "owner": self._user(self.owner),
        }

    def pull_json(self, pull: Pull, schema: dict[str, Any]) -> dict[str, Any]:
        mergeable, mergeable_state = self.mergeable_state(pull)
        head_sha = self.rev(pull.head) or pull.head_sha
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        data: dict[str, Any] = {
            "id": pull.number * 7,
            "node_id": f"PR_{pull.number}",
            "draft": pull.draft,
            "labels": [self._label(name) for name in pull.labels],
            "requested_reviewers": [self._user(login) for login in pull.requested],
            "issue_url": f"{api}/issues/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "url": f"{api}/pulls/{pull.number}",
            "html_url": f"{self.html_url}/pull/{pull.number}",
            "user": self._user(pull.user),
            "created_at": stamp(pull.created),
            "updated_at": stamp(),
            "closed_at": stamp(pull.closed) if pull.closed else None,
            "merged_at": stamp(pull.closed) if pull.merged else None,
            "merge_commit_sha": pull.merge_sha,
            "head": {
                "ref": pull.head,
                "sha": head_sha,
                "label": f"{self.owner}:{pull.head}",
                "repo": self._repo(),
            },
            "base": {
                "ref": pull.base,
                "sha": self.rev(pull.base) or "",
                "label": f"{self.owner}:{pull.base}",
                "repo": self._repo(),
            },
        }
        if "mergeable_state" in schema.get("properties", {}):
            data.update(
                mergeable=mergeable,
                mergeable_state=mergeable_state,
                merged=pull.merged,
                merged_by=self._user(pull.merged_by) if pull.merged_by else None,
                commits=1,
            )
        return overlay(schema, data)

    def _label(self, name: str) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        return {
            "id": abs(hash(name)) % 100000 + 1,
            "node_id": f"LA_{name}",
            "url": f"{api}/labels/{name}",
            "name": name,
            "description": "",
            "color": "ededed",
            "default": False,
        }

    def association(self, login: str) -> str:
        return self.associations.get(login, "COLLABORATOR")

    def comment_json(
        self, pull: Pull, comment: tuple[int, str, str], schema: dict[str, Any]
    ) -> dict[str, Any]:
        number, login, text = comment
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        data = {
            "id": number,
            "node_id": f"IC_{number}",
            "url": f"{api}/issues/comments/{number}",
            "html_url": f"{self.html_url}/pull/{pull.number}#issuecomment-{number}",
            "issue_url": f"{api}/issues/{pull.number}",
            "body": text,
            "user": self._user(login),
            "created_at": stamp(),
            "updated_at": stamp(),
            "author_association": self.association(login),
        }
        return overlay(schema, data)

    def review_json(self, pull: Pull, review: Review, schema: dict[str, Any]) -> dict[str, Any]:
        data = {
            "author_association": self.association(review.user),
            "id": review.id,
            "user": self._user(review.user),
            "state": review.state,
            "commit_id": review.commit_id,
            "body": review.body,
            "html_url": f"{self.html_url}/pull/{pull.number}#review-{review.id}",
            "pull_request_url": f"{self.api_url}/repos/{self.owner}/{self.name}/pulls/{pull.number}",
        }
        return overlay(schema, data)

    # -- the API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any], user: str) -> Reply:
        repo = f"/repos/{self.owner}/{self.name}"
        if path == "/user" and method == "get":  # the account the token acts as
            return Reply(200, self._user(user), "/user", full=True)
        release = re.fullmatch(r"/repos/([^/]+/[^/]+)/releases/tags/([^/]+)", path)
        if release and method == "get":  # of any repository on this GitHub
            return self._release(release[1], unquote(release[2]))
        if not path.startswith(repo):
            return Reply(404, {"message": "Not Found"}, None)
        rest = path[len(repo) :]
        if rest == "" and method == "get":
            return Reply(200, self._repo(), "/repos/{owner}/{repo}", full=True)
        if rest == "/pulls" and method == "get":
            return self._list_pulls(query)
        if rest == "/pulls" and method == "post":
            return self._create_pull(body, user)
        match = re.fullmatch(r"/pulls/(\d+)(/merge|/reviews)?", rest)
        if match:
            pull = self.pulls.get(int(match.group(1)))
            template = "/repos/{owner}/{repo}/pulls/{pull_number}" + (match.group(2) or "")
            if pull is None:
                message = f"Not Found (token {self._token})" if self.echo_token else "Not Found"
                return Reply(404, {"message": message}, template)
            if match.group(2) is None and method == "get":
                return Reply(200, pull, template)
            if match.group(2) is None and method == "patch":
                return self._update_pull(pull, body, user)
            if match.group(2) == "/merge" and method == "put":
                return self._merge_pull(pull, body, user)
            if match.group(2) == "/reviews" and method == "get":
                return Reply(200, [(pull, r) for r in pull.reviews], template)
            if match.group(2) == "/reviews" and method == "post":
                return self._review(pull, body, user)
        match = re.fullmatch(r"/collaborators/([^/]+)/permission", rest)
        if match and method == "get":
            return self._permission(unquote(match[1]))
        match = re.fullmatch(r"/pulls/(\d+)/requested_reviewers", rest)
        if match and method == "post":
            return self._request_reviewers(int(match.group(1)), body)
        match = re.fullmatch(r"/issues/(\d+)/(labels|comments)", rest)
        if match:
            return self._issue(int(match.group(1)), match.group(2), method, body, user)
        match = re.fullmatch(r"/git/ref/heads/(.+)", rest)
        if match and method == "get":
            template = "/repos/{owner}/{repo}/git/ref/{ref}"
            sha = self.rev(match.group(1))
            if sha is None:
                return Reply(404, {"message": "Not Found"}, template)
            ref = f"refs/heads/{match.group(1)}"
            api = f"{self.api_url}/repos/{self.owner}/{self.name}"
            data = {"ref": ref, "url": f"{api}/git/{ref}", "object": {"sha": sha, "type": "commit"}}
            return Reply(200, data, template, full=True)
        match = re.fullmatch(r"/git/refs/heads/(.+)", rest)
        if match and method == "delete":
            if self.rev(match.group(1)) is None:
                return Reply(
                    422, {"message": "Reference does not exist"}, "/repos/{owner}/{repo}/git/refs/{ref}"
                )
            git("update-ref", "-d", f"refs/heads/{match.group(1)}", cwd=self.bare)
            self._refs = None
            return Reply(204, None, "/repos/{owner}/{repo}/git/refs/{ref}")
        return Reply(404, {"message": "Not Found"}, None)

    def _list_pulls(self, query: dict[str, str]) -> Reply:
        state = query.get("state", "open")
        head = query.get("head", "")
        base = query.get("base")
        found = [
            p
            for p in sorted(self.pulls.values(), key=lambda p: p.number, reverse=True)
            if (state == "all" or p.state == state)
            and (not head or f"{self.owner}:{p.head}" == head)
            and (base is None or p.base == base)
        ]
        return Reply(200, found, "/repos/{owner}/{repo}/pulls")

    def _create_pull(self, body: dict[str, Any], user: str) -> Reply:
        template = "/repos/{owner}/{repo}/pulls"
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head = head.split(":", 1)[-1]
        invalid = {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}
        head_sha, base_sha = self.rev(head), self.rev(base)
        if head_sha is None or base_sha is None:
            return Reply(
                422, {**invalid, "errors": [{"resource": "PullRequest", "code": "invalid"}]}, template
            )
        if any(p.head == head and p.base == base and p.state == "open" for p in self.pulls.values()):
            message = f"A pull request already exists for {self.owner}:{head}."
            return Reply(
                422,
                {**invalid, "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]},
                template,
            )
        ahead = git("rev-list", "--count", f"{base_sha}..{head_sha}", cwd=self.bare).stdout.strip()
        if ahead == "0":
            message = f"No commits between {base} and {head}"
            return Reply(
                422,
                {**invalid, "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]},
                template,
            )
        number = max([0, *self.pulls]) + 1
        pull = Pull(number, head, base, str(body.get("title", "")), str(body.get("body") or ""), user)
        pull.draft = bool(body.get("draft", False))
        self.pulls[number] = pull
        return Reply(201, pull, template)

    def _release(self, repo: str, tag: str) -> Reply:
        template = "/repos/{owner}/{repo}/releases/tags/{tag}"
        if (repo, tag) not in self.releases:
            return Reply(404, {"message": "Not Found"}, template)
        name, text = self.releases[(repo, tag)]
        api = f"{self.api_url}/repos/{repo}/releases/7"
        data = {
            "url": api,
            "html_url": f"{self.server.url}/{repo}/releases/tag/{tag}",
            "assets_url": f"{api}/assets",
            "upload_url": f"{api}/assets{{?name,label}}",
            "tarball_url": None,
            "zipball_url": None,
            "id": 7,
            "node_id": "RE_7",
            "tag_name": tag,
            "target_commitish": "main",
            "name": name,
            "body": text,
            "draft": False,
            "prerelease": False,
            "created_at": stamp(),
            "published_at": stamp(),
            "author": self._user("pat"),  # the schema's other required fields are filled in by overlay
            "assets": [],
        }
        return Reply(200, data, template, full=True)

    def _permission(self, login: str) -> Reply:
        template = "/repos/{owner}/{repo}/collaborators/{username}/permission"
        permission = self.permissions.get(login, "write")
        if permission == "none":
            return Reply(404, {"message": "Not Found"}, template)
        role = {"read": "read", "write": "write", "admin": "admin"}[permission]
        rights = {"pull": True, "triage": permission != "read", "push": permission != "read",
                  "maintain": permission == "admin", "admin": permission == "admin"}
        user = {**self._user(login), "permissions": rights, "role_name": role}
        return Reply(200, {"permission": permission, "role_name": role, "user": user}, template, full=True)

    def _request_reviewers(self, number: int, body: dict[str, Any]) -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
        self._check_request(template, "post", body)
        pull = self.pulls.get(number)
        if pull is None or any(login in self.unknown_users for login in body.get("reviewers") or []):
            # GitHub's answer to a login that is no collaborator (or no user at all).
            return Reply(422, {"message": "Validation Failed"}, template)
        for login in body.get("reviewers") or []:
            if login not in pull.requested:
                pull.requested.append(str(login))
        pull.requested_teams += [str(t) for t in body.get("team_reviewers") or []]
        return Reply(201, pull, template)

    def _issue(self, number: int, what: str, method: str, body: Any, user: str) -> Reply:
        """A PR's labels and conversation comments live on its issue, as on GitHub."""
        template = "/repos/{owner}/{repo}/issues/{issue_number}/" + what
        pull = self.pulls.get(number)
        if pull is None:
            return Reply(404, {"message": "Not Found"}, template)
        if method in ("put", "post"):
            self._check_request(template, method, body)
        if what == "labels":
            if method == "put":
                pull.labels = [str(x) for x in body.get("labels", [])]
            elif method == "post":
                pull.labels += [str(x) for x in body.get("labels", []) if x not in pull.labels]
            elif method == "delete":
                pull.labels = []
                return Reply(204, None, template)
            return Reply(200, [("label", name) for name in pull.labels], template)
        if method == "post":
            comment = (self._next_id(), user, str(body.get("body", "")))
            pull.comments.append(comment)
            return Reply(201, ("comment", pull, comment), template)
        return Reply(200, [("comment", pull, c) for c in pull.comments], template)

    def web_page(self, path: str) -> int:
        """GitHub's web pages that PR bodies link to: 200 for a commit or PR that exists, else 404."""
        site = f"/{self.owner}/{self.name}"
        commit = re.fullmatch(re.escape(site) + r"/commit/([0-9a-f]{40})", path)
        if commit:
            return (
                200
                if git("cat-file", "-e", f"{commit[1]}^{{commit}}", cwd=self.bare).returncode == 0
                else 404
            )
        pull = re.fullmatch(re.escape(site) + r"/pull/(\d+)", path)
        release = re.fullmatch(r"/([^/]+/[^/]+)/releases/tag/([^/]+)", path)
        if release:
            return 200 if (release[1], unquote(release[2])) in self.releases else 404
        return 200 if pull and int(pull[1]) in self.pulls else 404

    def graphql(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """GitHub's GraphQL endpoint, for the two mutations REST lacks: draft <-> ready for review.

        GraphQL has no OpenAPI description: the query text is checked against the exact
        mutations GitHub documents, and anything else is recorded as an error.
        """
        query = str(body.get("query", ""))
        found = re.search(
            r"(markPullRequestReadyForReview|convertPullRequestToDraft)\(input: \$input\)", query
        )
        node = str((body.get("variables") or {}).get("input", {}).get("pullRequestId", ""))
        pull = self.pulls.get(int(node.removeprefix("PR_"))) if re.fullmatch(r"PR_\d+", node) else None
        if found is None or pull is None:
            self.errors.append(f"GraphQL request this server does not know: {query!r} {node!r}")
            return {"errors": [{"type": "NOT_FOUND", "message": "unknown"}]}
        pull.draft = found.group(1) == "convertPullRequestToDraft"
        return {"data": {found.group(1): {"clientMutationId": None, "pullRequest": {"isDraft": pull.draft}}}}

    def _update_pull(self, pull: Pull, body: dict[str, Any], user: str = "pat") -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}"
        if "title" in body:
            pull.title = str(body["title"])
        if "body" in body:
            pull.body = str(body["body"] or "")
        if body.get("state") == "closed" and pull.state == "open":
            self.close(pull.number, user)
        elif body.get("state") == "open" and pull.state == "closed" and not pull.merged:
            self.reopen(pull.number, user)
        return Reply(200, pull, template)

    # -- who closed and reopened it: the issue's events (a self-contained operation) ------------

    def close(self, number: int, user: str = "pat") -> None:
        """`user` closes the PR unmerged; its issue gets a `closed` event with them as actor."""
        with self._lock:
            pull = self.pulls[number]
            pull.state, pull.closed, pull.head_sha = "closed", time.time(), self.rev(pull.head) or ""
            self.issue_events.setdefault(number, []).append((self._next_id(), "closed", user, time.time()))

    def reopen(self, number: int, user: str = "pat") -> None:
        with self._lock:
            pull = self.pulls[number]
            pull.state, pull.closed = "open", None
            self.issue_events.setdefault(number, []).append((self._next_id(), "reopened", user, time.time()))

    def issue_events_reply(self, number: int, query: dict[str, str]) -> tuple[int, Any]:
        """GET /repos/{owner}/{repo}/issues/{issue_number}/events, checked against
        tests/data/github/issue-events.json (its own description: the subset lacks it)."""
        op = ISSUE_EVENTS["paths"]["/repos/{owner}/{repo}/issues/{issue_number}/events"]["get"]
        known = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        for name in query:
            if name not in known:
                self.errors.append(f"GET issue events: query parameter {name!r} is not in the description")
        if number not in self.pulls:
            return 410, {"message": "Gone", "documentation_url": "https://docs.github.com/rest"}
        page, size = int(query.get("page", 1)), int(query.get("per_page", 30))
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        events = self.issue_events.get(number, [])[(page - 1) * size : page * size]
        data = [
            {
                "id": i,
                "node_id": f"CE_{i}",
                "url": f"{api}/issues/events/{i}",
                "actor": _simple_user(self.server.url, self.api_url, login),
                "event": kind,
                "commit_id": None,
                "commit_url": None,
                "created_at": stamp(when),
                "performed_via_github_app": None,
                "state_reason": None,
            }
            for i, kind, login, when in events
        ]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        self.check(OAS30Validator(schema), data, "GET issue events 200", most=100)
        return 200, data

    def _check_request(self, template: str, method: str, body: Any) -> None:
        """Record a request body that GitHub's description of the operation does not allow."""
        request = spec()["paths"][template][method].get("requestBody") or {}
        schema = request.get("content", {}).get("application/json", {}).get("schema")
        if schema:
            self.check(OAS30Validator(schema), body, f"{method.upper()} {template} request", most=100)

    def _merge_pull(self, pull: Pull, body: dict[str, Any], user: str) -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
        self._check_request(template, "put", body)
        mergeable, state = self.mergeable_state(pull)
        if pull.state != "open" or not mergeable:
            return Reply(405, {"message": "Pull Request is not mergeable"}, template)
        if state == "draft":
            return Reply(405, {"message": "Pull Request is still a draft"}, template)
        if state == "blocked":
            need = self.required_approvals
            message = f"At least {need} approving review is required by reviewers with write access."
            return Reply(405, {"message": message}, template)
        sha = body.get("sha")
        if sha and sha != self.rev(pull.head):
            return Reply(
                409, {"message": "Head branch was modified. Review and try the merge again."}, template
            )
        method = str(body.get("merge_method", "merge"))
        if method not in ("merge", "squash", "rebase"):
            return Reply(405, {"message": f"{method} merges are not allowed on this repository."}, template)
        title, message = body.get("commit_title"), body.get("commit_message")
        merged = self._merge(
            pull,
            method,
            user,
            None if title is None else str(title),
            None if message is None else str(message),
        )
        return Reply(
            200, {"sha": merged, "merged": True, "message": "Pull Request successfully merged"}, template
        )

    def _review(self, pull: Pull, body: dict[str, Any], user: str) -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
        event = str(body.get("event", "COMMENT"))
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(event, "COMMENTED")
        review = Review(self._next_id(), user, state, self.rev(pull.head) or "", str(body.get("body") or ""))
        pull.reviews.append(review)
        return Reply(200, (pull, review), template)

    # -- WSGI ----------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = incoming(environ)
        method, path, query, body = request.method, request.path, request.query, request.body
        with self._lock:
            self._refs = None  # pushes arrive through git, between requests
            token = request.authorization.split(" ", 1)[1] if " " in request.authorization else ""
            self.seen(request, token)
            user = self.token_user.get(token, "pat")
            limit = next(
                (r for r in self.rate_limits if r.method.lower() == method and re.search(r.pattern, path)),
                None,
            )
            headers = self._rate_headers(remaining=4999)
            if path == GRAPHQL and method == "post":
                return respond(start_response, 200, self.graphql(body, user), [])
            events = re.fullmatch(
                re.escape(f"{PREFIX}/repos/{self.owner}/{self.name}/issues/") + r"(\d+)/events", path
            )
            if events and method == "get":
                status, data = self.issue_events_reply(int(events[1]), query)
                return respond(start_response, status, data, headers, _REASONS.get(status, "Gone"))
            if not path.startswith(PREFIX):
                status = self.web_page(path)
                return respond(start_response, status, None, [], _REASONS[status], "text/html")
            elif limit is not None and limit.count > 0:
                limit.count -= 1
                if limit.count == 0:
                    self.rate_limits.remove(limit)
                template = _template_for(path[len(PREFIX) :], method)
                if limit.retry_after is not None:
                    headers = [*self._rate_headers(remaining=4000), ("Retry-After", str(limit.retry_after))]
                    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
                else:
                    headers = self._rate_headers(remaining=0, reset_in=limit.reset_in)
                    message = "API rate limit exceeded for installation."
                reply = Reply(
                    403,
                    {"message": message, "documentation_url": "https://docs.github.com/rest/rate-limit"},
                    template,
                )
            else:
                try:
                    reply = self.handle(method, path[len(PREFIX) :], query, body, user)
                except Exception as exc:  # a bug in this server must fail the test, not look like GitHub
                    self.errors.append(f"{method.upper()} {path}: the test server raised {exc!r}")
                    raise
            payload = self._render(reply, method)
        reason, kind = _REASONS.get(reply.status, "OK"), "application/json; charset=utf-8"
        return respond(start_response, reply.status, payload, headers, reason, kind)

    def _rate_headers(self, remaining: int, reset_in: int = 3600) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Used", str(5000 - remaining)),
            ("X-RateLimit-Reset", str(int(time.time()) + reset_in)),
            ("X-RateLimit-Resource", "core"),
        ]

    def _render(self, reply: Reply, method: str) -> Any:
        """Turn state into JSON and check it against GitHub's schema for that operation and status."""
        if reply.template is None:
            # A request this server has no operation for: gitcanary called something GitHub's
            # description (as far as the subset goes) does not have, or the server lacks it.
            self.errors.append(f"{method.upper()} to a path with no operation here answered {reply.status}")
            return reply.body
        op = spec()["paths"][reply.template].get(method)
        if op is None or str(reply.status) not in op["responses"]:
            self.errors.append(f"{method.upper()} {reply.template}: status {reply.status} is not in the spec")
            return reply.body
        schema = self._schema(reply.template, method, reply.status)
        body = reply.body
        if schema is not None and schema != {}:
            if isinstance(body, list):
                item = schema.get("items", {})
                body = [self._json(x, item) for x in body]
            elif isinstance(body, Pull | tuple):
                body = self._json(body, schema)
            elif reply.full and isinstance(body, dict):
                body = overlay(schema, body)
            what = f"{method.upper()} {reply.template} {reply.status}"
            if not self.check(OAS30Validator(schema), body, what):
                return {"message": "test server produced a response that does not match GitHub's schema"}
        elif body is not None and not isinstance(body, dict):
            self.errors.append(f"{method.upper()} {reply.template}: a body where the spec has none")
        return body

    def _json(self, thing: Any, schema: dict[str, Any]) -> Any:
        if isinstance(thing, Pull):
            return self.pull_json(thing, schema)
        if thing[0] == "label":
            return overlay(schema, self._label(thing[1]))
        if thing[0] == "comment":
            return self.comment_json(thing[1], thing[2], schema)
        return self.review_json(thing[0], thing[1], schema)


@dataclass
class Reply:
    status: int
    body: Any
    template: str | None
    full: bool = False


def _simple_user(site: str, api: str, login: str) -> dict[str, Any]:
    """GitHub's Simple User, every field its description requires."""
    user = f"{api}/users/{login}"
    return {
        "login": login,
        "id": abs(hash(login)) % 100000 + 1,
        "node_id": f"U_{login}",
        "avatar_url": f"{site}/avatars/{login}",
        "gravatar_id": "",
        "url": user,
        "html_url": f"{site}/{login}",
        "followers_url": f"{user}/followers",
        "following_url": f"{user}/following{{/other_user}}",
        "gists_url": f"{user}/gists{{/gist_id}}",
        "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user}/subscriptions",
        "organizations_url": f"{user}/orgs",
        "repos_url": f"{user}/repos",
        "events_url": f"{user}/events{{/privacy}}",
        "received_events_url": f"{user}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def _template_for(path: str, method: str) -> str | None:
    for template, ops in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in ops:
            return template
    return None


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
}
