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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from forge_remote import BareRemote, LocalForge, incoming, respond, stamp
from github_objects import Site, error
from openapi_schema_validator import OAS30Validator

SPEC_FILE = Path(__file__).parent / "data" / "github" / "rest-api-subset.json"
# GET .../issues/{n}/events, which the subset lacks (tests/data/github/SOURCES).
ISSUE_EVENTS = json.loads((Path(__file__).parent / "data" / "github" / "issue-events.json").read_text())
_SPEC: dict[str, Any] | None = None
# A played mergeability state -> what GitHub answers for it (`mergeable`, `mergeable_state`).
PLAYED: dict[str, tuple[bool | None, str]] = {
    "null": (None, "unknown"),
    "behind": (True, "behind"),
    "unstable": (True, "unstable"),
    "dirty": (False, "dirty"),
    "blocked": (True, "blocked"),
    "clean": (True, "clean"),
}
PREFIX = "/api/v3"  # GitHub Enterprise's API root: PyGithub is given base_url=<server>/api/v3
GRAPHQL = "/api/graphql"  # GitHub Enterprise's GraphQL endpoint beside it


def spec() -> dict[str, Any]:
    global _SPEC
    if _SPEC is None:
        _SPEC = json.loads(SPEC_FILE.read_text())
    return _SPEC


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
    base_at_close: str | None = None  # the base's commit when it merged or closed
    # Mergeability states a scenario plays on the next reads of this pull (GitHub's `mergeable`,
    # `mergeable_state`), before its real state: see GitHubServer.play.
    played: list[str] = field(default_factory=list)
    shown: str = ""  # the mergeable_state the last read showed (what a merge right after it meets)
    seen_at: tuple[str | None, str | None] | None = None  # (base, head) at the last read
    shown_played: bool = False  # the last read showed a played state


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
        self._diffstats: dict[tuple[str, str], tuple[int, int, int, int]] = {}  # by (base, head) too
        self._ids = 1000
        # Branch protection's "require branches to be up to date before merging": a pull whose head
        # lacks the base's tip is `behind`, and GitHub merges it only after update-branch.
        self.require_up_to_date = False
        # GitHub computes mergeability in the background: the first read after a push to the head
        # or the base answers `mergeable: null` (off by default: most tests merge in one read).
        self.compute_after_push = False
        # Called with each pull as it is opened (a person pushing to the base right then, say).
        self.after_open: Callable[[Pull], None] | None = None
        # Required fields the responses lacked, over the server's life: nothing fills them in,
        # and the tests assert it stays 0 (each one is also an error in `errors`).
        self.missing_required = 0
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

    def play(self, number: int, *states: str) -> None:
        """Make the next reads of pull `number` answer these mergeability states, one a read,
        before its real one: `null` (GitHub still computing: `mergeable: null`), `behind`,
        `unstable` (a failing check that is not required), `dirty`, `blocked` or `clean`. A merge
        follows what the last read showed: GitHub refuses one it showed dirty, behind or null."""
        with self._lock:
            unknown = set(states) - set(PLAYED)
            assert not unknown, f"no such mergeable state: {unknown}"
            self.pulls[number].played += states

    def mergeable_state(self, pull: Pull, read: bool = False) -> tuple[bool | None, str]:
        """GitHub's (mergeable, mergeable_state) of `pull`; `read`: a client reads it now (a
        played state is used up, and GitHub's first read after a push is `null` when
        `compute_after_push` is set)."""
        if pull.state != "open":
            return None, "unknown"
        if read and pull.played:
            pull.shown, pull.shown_played = pull.played.pop(0), True
            return PLAYED[pull.shown]
        if read:
            pull.shown_played = False
        head, base = self.rev(pull.head), self.rev(pull.base)
        if read:
            seen, pull.seen_at = pull.seen_at, (base, head)
            if self.compute_after_push and seen != (base, head):
                pull.shown = "null"
                return PLAYED["null"]
        state = self._real_state(pull, head, base)
        if read:
            pull.shown = state[1]
        return state

    def _real_state(self, pull: Pull, head: str | None, base: str | None) -> tuple[bool | None, str]:
        if head is None or base is None or self._merge_tree(base, head) is None:
            return False, "dirty"
        if pull.draft:
            return True, "draft"  # GitHub merges no draft, whatever the reviews say
        if self.approvals(pull) < self.required_approvals:
            return True, "blocked"
        if self.require_up_to_date and not self._contains(head, base):
            return True, "behind"  # protection wants the head to include the base's tip
        return True, "clean"

    def _contains(self, head: str, base: str) -> bool:
        return git("merge-base", "--is-ancestor", base, head, cwd=self.bare).returncode == 0

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
        pull.closed, pull.head_sha, pull.base_at_close = time.time(), head, base
        return sha

    # -- JSON views ----------------------------------------------------------------------------

    def _schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        op = spec()["paths"][path][method]
        response = op["responses"].get(str(status))
        if response is None:
            return None
        return response.get("content", {}).get("application/json", {}).get("schema", {})

    @property
    def site(self) -> Site:
        return Site(self.server.url, self.api_url, self.owner, self.name, self.default_branch)

    def _user(self, login: str) -> dict[str, Any]:
        return self.site.user(login)

    def _repo(self, full: bool = False) -> dict[str, Any]:
        open_pulls = sum(1 for p in self.pulls.values() if p.state == "open")
        return self.site.repository(open_pulls, stamp(), full)

    def _stats(self, base: str, head: str) -> tuple[int, int, int, int]:
        """(commits, additions, deletions, changed files) of `head` over `base`, as git counts them."""
        if (base, head) not in self._diffstats:
            commits = git("rev-list", "--count", f"{base}..{head}", cwd=self.bare).stdout.strip()
            numstat = git("diff", "--numstat", f"{base}...{head}", cwd=self.bare).stdout.splitlines()
            rows = [line.split("\t", 2) for line in numstat if line]
            added = sum(int(r[0]) for r in rows if r[0].isdigit())  # "-" for a binary file
            deleted = sum(int(r[1]) for r in rows if r[1].isdigit())
            self._diffstats[(base, head)] = (int(commits or 0), added, deleted, len(rows))
        return self._diffstats[(base, head)]

    def pull_json(self, pull: Pull, schema: dict[str, Any]) -> dict[str, Any]:
        """A Pull Request (GET one) or a Pull Request Simple (lists), whole, from the pull's state."""
        full = "mergeable_state" in schema.get("properties", {})
        mergeable, mergeable_state = self.mergeable_state(pull, read=full)
        head_sha = self.rev(pull.head) or pull.head_sha
        base_sha = self.rev(pull.base) or ""
        api = f"{self.site.repo_api}/pulls/{pull.number}"
        issue = f"{self.site.repo_api}/issues/{pull.number}"
        html = f"{self.html_url}/pull/{pull.number}"
        owner = self._user(self.owner)
        data: dict[str, Any] = {
            "url": api,
            "id": pull.number * 7,
            "node_id": f"PR_{pull.number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.site.repo_api}/pulls/comments{{/number}}",
            "comments_url": f"{issue}/comments",
            "statuses_url": f"{self.site.repo_api}/statuses/{head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user(pull.user),
            "body": pull.body,
            "labels": [self._label(name) for name in pull.labels],
            "milestone": None,
            "created_at": stamp(pull.created),
            "updated_at": stamp(),
            "closed_at": stamp(pull.closed) if pull.closed else None,
            "merged_at": stamp(pull.closed) if pull.merged else None,
            "merge_commit_sha": pull.merge_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user(login) for login in pull.requested],
            "requested_teams": [],
            "head": {
                "label": f"{self.owner}:{pull.head}",
                "ref": pull.head,
                "sha": head_sha,
                "user": owner,
                "repo": self._repo(),
            },
            "base": {
                "label": f"{self.owner}:{pull.base}",
                "ref": pull.base,
                "sha": base_sha,
                "user": owner,
                "repo": self._repo(),
            },
            "_links": self.site.pull_links(pull.number, head_sha),
            "author_association": self.association(pull.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if full:
            # Counted over the pull's own commits: from the base it was opened on while open,
            # from the base it merged into (its first parent) once merged.
            since = base_sha if pull.state == "open" else (pull.base_at_close or base_sha)
            stats = self._stats(since, head_sha) if head_sha and since else (0, 0, 0, 0)
            commits, added, deleted, files = stats
            data.update(
                merged=pull.merged,
                mergeable=mergeable,
                rebaseable=mergeable,
                mergeable_state=mergeable_state,
                merged_by=self._user(pull.merged_by) if pull.merged_by else None,
                comments=len(pull.comments),
                review_comments=0,
                maintainer_can_modify=False,
                commits=commits,
                additions=added,
                deletions=deleted,
                changed_files=files,
            )
        return data

    def _label(self, name: str) -> dict[str, Any]:
        return self.site.label(name)

    def association(self, login: str) -> str:
        return self.associations.get(login, "COLLABORATOR")

    def comment_json(self, pull: Pull, comment: tuple[int, str, str]) -> dict[str, Any]:
        number, login, text = comment
        api = self.site.repo_api
        return {
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

    def review_json(self, pull: Pull, review: Review) -> dict[str, Any]:
        html = f"{self.html_url}/pull/{pull.number}#pullrequestreview-{review.id}"
        api = f"{self.site.repo_api}/pulls/{pull.number}"
        return {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self._user(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": api,
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "submitted_at": stamp(),
            "commit_id": review.commit_id,
            "author_association": self.association(review.user),
        }

    # -- the API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any], user: str) -> Reply:
        repo = f"/repos/{self.owner}/{self.name}"
        if path == "/user" and method == "get":  # the account the token acts as
            return Reply(200, self.site.private_user(user), "/user")
        release = re.fullmatch(r"/repos/([^/]+/[^/]+)/releases/tags/([^/]+)", path)
        if release and method == "get":  # of any repository on this GitHub
            return self._release(release[1], unquote(release[2]))
        if not path.startswith(repo):
            return Reply(404, {"message": "Not Found"}, None)
        rest = path[len(repo) :]
        if rest == "" and method == "get":
            return Reply(200, self._repo(full=True), "/repos/{owner}/{repo}")
        if rest == "/pulls" and method == "get":
            return self._list_pulls(query)
        if rest == "/pulls" and method == "post":
            return self._create_pull(body, user)
        match = re.fullmatch(r"/pulls/(\d+)(/merge|/reviews|/update-branch)?", rest)
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
            if match.group(2) == "/update-branch" and method == "put":
                return self._update_branch(pull, body)
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
            return Reply(200, self.site.ref(match.group(1), sha), template)
        match = re.fullmatch(r"/git/refs/heads/(.+)", rest)
        if match and method == "delete":
            if self.rev(match.group(1)) is None:
                # The description gives this 422 no body (GitHub's own carries a message).
                return Reply(422, None, "/repos/{owner}/{repo}/git/refs/{ref}")
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
        if self.after_open is not None:  # a scenario's move between the PR's opening and its merge
            self.after_open(pull)
            self._refs = None
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
            "author": self._user("pat"),
            "assets": [],
        }
        return Reply(200, data, template)

    def _permission(self, login: str) -> Reply:
        template = "/repos/{owner}/{repo}/collaborators/{username}/permission"
        permission = self.permissions.get(login, "write")
        if permission == "none":
            return Reply(404, {"message": "Not Found"}, template)
        role = {"read": "read", "write": "write", "admin": "admin"}[permission]
        rights = {"pull": True, "triage": permission != "read", "push": permission != "read",
                  "maintain": permission == "admin", "admin": permission == "admin"}
        user = {**self._user(login), "permissions": rights, "role_name": role}
        return Reply(200, {"permission": permission, "role_name": role, "user": user}, template)

    def _request_reviewers(self, number: int, body: dict[str, Any]) -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
        pull = self.pulls.get(number)
        if pull is None or any(login in self.unknown_users for login in body.get("reviewers") or []):
            # GitHub's answer to a login that is no collaborator (or no user at all).
            return Reply(422, None, template)  # the description gives this 422 no body
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
            pull.base_at_close = self.rev(pull.base)
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
        self.check_strictly(schema, data, "GET issue events 200", most=100)
        return 200, data

    def check_request(self, template: str | None, method: str, body: Any) -> None:
        """Record a request body that GitHub's description of the operation does not allow: every
        body of every operation, checked closed (a key the operation does not describe is one
        GitHub would ignore, so gitcanary meant something that did not happen)."""
        if template is None or method not in spec()["paths"][template]:
            return
        request = spec()["paths"][template][method].get("requestBody")
        if request is None:
            if body:
                self.errors.append(f"{method.upper()} {template} request: a body where the spec has none")
            return
        schema = request.get("content", {}).get("application/json", {}).get("schema")
        if not body and not request.get("required"):
            return  # no body at all: the operation's defaults
        if schema:
            self.check_strictly(schema, body, f"{method.upper()} {template} request", most=100)

    def _merge_pull(self, pull: Pull, body: dict[str, Any], user: str) -> Reply:
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
        mergeable, state = self.mergeable_state(pull)
        if pull.shown_played:
            mergeable, state = PLAYED[pull.shown]  # GitHub merges as the read before showed the pull
        if pull.state != "open" or not mergeable:
            return Reply(405, {"message": "Pull Request is not mergeable"}, template)
        if state == "behind":
            return Reply(405, {"message": "Head branch is not up to date with the base branch"}, template)
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

    def _update_branch(self, pull: Pull, body: dict[str, Any] | None) -> Reply:
        """GitHub's update-branch: a real merge commit of the base into the head branch (GitHub
        does it in the background and answers 202; here it is done before the answer)."""
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/update-branch"
        head, base = self.rev(pull.head), self.rev(pull.base)
        expected = (body or {}).get("expected_head_sha")
        if pull.state != "open" or head is None or base is None:
            return Reply(422, error("Validation Failed"), template)
        if expected and expected != head:
            message = "expected head sha didn't match current head ref."
            return Reply(422, error(message), template)
        tree = self._merge_tree(head, base)
        if tree is None:
            return Reply(422, error("merge conflict between base and head"), template)
        pull.shown_played = False  # the head moves: what the last read showed no longer holds
        if not self._contains(head, base):
            text = f"Merge branch '{pull.base}' into {pull.head}\n"
            env = {**os.environ, "GIT_AUTHOR_NAME": "GitHub", "GIT_AUTHOR_EMAIL": "noreply@github.example",
                   "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.example"}
            sha = git("commit-tree", tree, "-p", head, "-p", base, "-F", "-", cwd=self.bare, env=env,
                      input=text).stdout.strip()
            update = git("update-ref", f"refs/heads/{pull.head}", sha, head, cwd=self.bare)
            assert update.returncode == 0, update.stderr
            self._refs = None
        url = f"{self.html_url}/pull/{pull.number}"
        return Reply(202, {"message": "Updating pull request branch.", "url": url}, template)

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
                if method in ("post", "put", "patch", "delete"):
                    self.check_request(_template_for(path[len(PREFIX) :], method), method, body)
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
        """Turn state into JSON and check it, as built, against GitHub's schema for that operation
        and status (no field is filled in: a missing one is an error of this server)."""
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
            what = f"{method.upper()} {reply.template} {reply.status}"
            if not self.check_strictly(schema, body, what):
                return {"message": "test server produced a response that does not match GitHub's schema"}
        elif body is not None:
            self.errors.append(f"{method.upper()} {reply.template}: a body where the spec has none")
        return body

    def check_strictly(self, schema: dict[str, Any], data: Any, what: str, most: int = 5) -> bool:
        """Check `data` against `schema` closed (see `closed`) with formats checked; count each
        missing required field in `missing_required` (it stays 0: nothing is filled in)."""
        validator = OAS30Validator(closed(schema), format_checker=OAS30Validator.FORMAT_CHECKER)
        found = list(validator.iter_errors(data))
        self.missing_required += sum(1 for e in _leaves(found) if e.validator == "required")
        return self.check(validator, data, what, most)

    def _json(self, thing: Any, schema: dict[str, Any]) -> Any:
        if isinstance(thing, Pull):
            return self.pull_json(thing, schema)
        if thing[0] == "label":
            return self._label(thing[1])
        if thing[0] == "comment":
            return self.comment_json(thing[1], thing[2])
        return self.review_json(thing[0], thing[1])


def _leaves(errors: Iterable[Any]) -> Iterator[Any]:
    """Each validation error, and the errors under a `oneOf`/`anyOf` that none of the options took."""
    for problem in errors:
        yield problem
        yield from _leaves(problem.context or [])


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every object that lists its properties closed (`additionalProperties: false`)
    where the description leaves it open: GitHub ignores a request key it does not know, so a
    misspelt one would change nothing there and pass silently here; and a response key this server
    invents would be one PyGithub may read and real GitHub never sends. `allOf` parts stay open
    (each part alone lists only some of the properties)."""
    if isinstance(schema, list):
        return [closed(x) for x in schema]  # type: ignore[return-value]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "allOf":
            out[key] = value
        elif key in ("properties", "patternProperties"):
            out[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("oneOf", "anyOf"):
            out[key] = closed(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out and "allOf" not in out:
        out["additionalProperties"] = False
    return out


@dataclass
class Reply:
    status: int
    body: Any
    template: str | None


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
    202: "Accepted",
    201: "Created",
    204: "No Content",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
}
