"""Which forge hosts the config repository, and where its API is, from a flag or the repository URL.

`--forge github|gitlab|gitea` wins; without it the host name of the repository URL decides
(github.com and hosts named github.* -> github; gitlab.com and gitlab.* -> gitlab; codeberg.org,
gitea.* and forgejo.* -> gitea). A self-hosted server under another name needs `--forge`.
The project path comes from the URL too (`https://gitlab.example.com/group/sub/app.git` ->
`group/sub/app`, `git@host:owner/name.git` -> `owner/name`) unless `--forge-repo` names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from gitcanary.forge.base import ForgeError

FORGES = ("github", "gitlab", "gitea")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/].*)$")  # git@host:owner/name.git


@dataclass(frozen=True)
class Location:
    kind: str | None  # github, gitlab, gitea, or None when the host says nothing
    host: str
    scheme: str
    path: str  # owner/name or group/sub/project, without .git


def locate(url: str) -> Location | None:
    """Host and project path of a remote URL; None for a local path."""
    if "://" in url:
        parts = urlsplit(url)
        host, scheme, path = parts.hostname or "", parts.scheme, parts.path
        if scheme not in ("http", "https"):
            scheme = "https"  # ssh://git@host/...: the API is served over HTTPS
    else:
        match = _SCP.match(url)
        if match is None:
            return None
        host, scheme, path = match["host"], "https", match["path"]
    path = path.strip("/").removesuffix(".git")
    return Location(_kind(host), host.lower(), scheme, path)


def _kind(host: str) -> str | None:
    host = host.lower()
    first = host.split(".", 1)[0]
    if host == "github.com" or first == "github":
        return "github"
    if host == "gitlab.com" or first == "gitlab":
        return "gitlab"
    if host == "codeberg.org" or first in ("gitea", "forgejo"):
        return "gitea"
    return None


def choose(flag: str | None, repo_url: str) -> str | None:
    """The forge to use: the flag, else what the URL's host says; None when neither says."""
    if flag:
        if flag not in FORGES:
            raise ForgeError(f"--forge {flag!r}: expected one of {', '.join(FORGES)}")
        return flag
    where = locate(repo_url)
    return where.kind if where else None


def api_root(kind: str, repo_url: str, given: str | None) -> str:
    """The API's base URL: `given`, else the repository's host (GitLab and Gitea serve both)."""
    if given:
        return given.rstrip("/")
    where = locate(repo_url)
    if where is None:
        raise ForgeError(f"--forge {kind}: --forge-api-url is needed when --repo is a local path")
    if kind == "github":
        return "https://api.github.com" if where.host == "github.com" else f"https://{where.host}/api/v3"
    return f"{where.scheme}://{where.host}"


def project_path(repo_url: str, given: str | None) -> str:
    if given:
        return given.strip("/")
    where = locate(repo_url)
    if where is None or "/" not in where.path:
        raise ForgeError("--forge-repo OWNER/NAME is needed: it cannot be read from --repo")
    return where.path
