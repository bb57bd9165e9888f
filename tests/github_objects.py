"""GitHub's REST objects, built whole from the local GitHub server's state (tests/github_server.py).

Each builder returns every field GitHub's description requires of that object, with a value of
the described type derived from the state it is given (URLs from the API root and the object's
name or number, counts from the Git repository). Nothing is filled in afterwards: the server checks
each response against the description as built, so a builder that misses a required field fails
the test that asked for it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

EPOCH = "2026-01-01T00:00:00Z"  # when this server's repository and users were created


def number_for(name: str) -> int:
    """A stable positive id for a name (Python's `hash` of a str changes per process)."""
    return zlib.crc32(name.encode()) % 10_000_000 + 1


@dataclass(frozen=True)
class Site:
    """Where the objects live: the web root, the API root and the one repository `owner/name`."""

    web: str  # http://127.0.0.1:PORT
    api: str  # http://127.0.0.1:PORT/api/v3
    owner: str
    name: str
    default_branch: str

    @property
    def repo_api(self) -> str:
        return f"{self.api}/repos/{self.owner}/{self.name}"

    @property
    def repo_web(self) -> str:
        return f"{self.web}/{self.owner}/{self.name}"

    def user(self, login: str) -> dict[str, Any]:
        """GitHub's Simple User."""
        api = f"{self.api}/users/{login}"
        ident = number_for(login)
        return {
            "login": login,
            "id": ident,
            "node_id": f"U_{ident}",
            "avatar_url": f"{self.web}/avatars/u/{ident}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
        }

    def private_user(self, login: str) -> dict[str, Any]:
        """GitHub's Private User: the account a token acts as (GET /user)."""
        return {
            **self.user(login),
            "name": login,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": EPOCH,
            "updated_at": EPOCH,
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": False,
        }

    def repository(self, open_issues: int, pushed_at: str, full: bool = False) -> dict[str, Any]:
        """GitHub's Repository (inside a pull's head and base), or Full Repository (GET /repos/o/n)."""
        api, web = self.repo_api, self.repo_web
        host = web.split("://", 1)[-1]
        data: dict[str, Any] = {
            "id": number_for(f"{self.owner}/{self.name}"),
            "node_id": f"R_{number_for(self.owner + '/' + self.name)}",
            "name": self.name,
            "full_name": f"{self.owner}/{self.name}",
            "owner": self.user(self.owner),
            "private": False,
            "html_url": web,
            "description": None,
            "fork": False,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://{host}.git",
            "hooks_url": f"{api}/hooks",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@{host.split('/', 1)[0]}:{self.owner}/{self.name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{web}.git",
            "mirror_url": None,
            "svn_url": web,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "default_branch": self.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "archived": False,
            "disabled": False,
            "license": None,
            "pushed_at": pushed_at,
            "created_at": EPOCH,
            "updated_at": pushed_at,
        }
        if full:
            data.update(has_discussions=False, network_count=0, subscribers_count=0)
        else:
            data["has_downloads"] = False
        return data

    def label(self, name: str) -> dict[str, Any]:
        ident = number_for(f"label:{name}")
        return {
            "id": ident,
            "node_id": f"LA_{ident}",
            "url": f"{self.repo_api}/labels/{name}",
            "name": name,
            "description": "",
            "color": "ededed",
            "default": False,
        }

    def ref(self, branch: str, sha: str) -> dict[str, Any]:
        """GitHub's Git Reference of a branch."""
        ref = f"refs/heads/{branch}"
        return {
            "ref": ref,
            "node_id": f"REF_{number_for(ref)}",
            "url": f"{self.repo_api}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.repo_api}/git/commits/{sha}"},
        }

    def pull_links(self, number: int, head_sha: str) -> dict[str, Any]:
        api = f"{self.repo_api}/pulls/{number}"
        issue = f"{self.repo_api}/issues/{number}"
        return {
            "self": {"href": api},
            "html": {"href": f"{self.repo_web}/pull/{number}"},
            "issue": {"href": issue},
            "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{api}/comments"},
            "review_comment": {"href": f"{self.repo_api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/commits"},
            "statuses": {"href": f"{self.repo_api}/statuses/{head_sha}"},
        }


ERROR_DOCS = "https://docs.github.com/rest"


def error(message: str, **extra: Any) -> dict[str, Any]:
    """GitHub's Basic Error / Validation Error body: `message` and `documentation_url`."""
    return {"message": message, "documentation_url": ERROR_DOCS, **extra}
