"""What every local forge in the tests does to the bare remote, whatever its API looks like.

Real state only: refs are read with `git for-each-ref`, merges are `git merge-tree` + `commit-tree`
+ `update-ref` on the bare repository, and branch protection is a real pre-receive hook, so a
direct push to the protected branch is refused by git itself while API merges (which bypass
hooks, as the forges' own merges do) land. `LocalForge` is what the three servers
(tests/github_server.py, gitlab_server.py, gitea_server.py) share around their own API: the HTTP
server, the request as WSGI hands it over, and the record of requests, tokens and the problems
their validation against each forge's description finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

from jsonschema.protocols import Validator

from gitcanary.service.http import HttpServer, Router

PROTECT_HOOK = """#!/bin/sh
# The forge's protected branch, as a real pre-receive hook: refuse direct pushes to the branch.
while read old new ref; do
  if [ "$ref" = "refs/heads/{branch}" ] && [ -f "$GIT_DIR/gitcanary-test-protected" ]; then
    echo "error: {message} $ref" >&2
    exit 1
  fi
done
exit 0
"""


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env, input=input
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def stamp(when: float | None = None) -> str:
    return datetime.fromtimestamp(when or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RateLimit:
    """Answer the next `count` requests whose method and path match with the forge's 429."""

    count: int
    retry_after: int = 7
    method: str = "POST"
    path_suffix: str = "s"  # e.g. "/merge_requests" or "/pulls"


class BareRemote:
    """The bare repository behind a forge: refs, protection, and the three merge methods."""

    def __init__(self, bare: Path, branch: str, refusal: str, committer: tuple[str, str]) -> None:
        self.bare, self.branch = bare, branch
        self.committer = committer
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(PROTECT_HOOK.replace("{branch}", branch).replace("{message}", refusal))
        hook.chmod(0o755)

    def protect(self, on: bool = True) -> None:
        marker = self.bare / "gitcanary-test-protected"
        if on:
            marker.write_text("protected\n")
        else:
            marker.unlink(missing_ok=True)

    def rev(self, branch: str) -> str | None:
        out = git("for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}", cwd=self.bare)
        return out.strip() or None

    def has_commit(self, sha: str) -> bool:
        """Whether `sha` names a commit here (a web page of it would answer 200)."""
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.bare, capture_output=True, check=False
        )
        return found.returncode == 0

    def branches(self) -> list[str]:
        out = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=self.bare)
        return out.split()

    def delete(self, branch: str) -> bool:
        if self.rev(branch) is None:
            return False
        git("update-ref", "-d", f"refs/heads/{branch}", cwd=self.bare)
        return True

    def ahead(self, base: str, head: str) -> int:
        return int(git("rev-list", "--count", f"{base}..{head}", cwd=self.bare).strip())

    def merge_tree(self, base: str, head: str) -> str | None:
        proc = subprocess.run(
            ["git", "merge-tree", "--write-tree", base, head], cwd=self.bare, capture_output=True, text=True
        )
        return proc.stdout.split()[0] if proc.returncode == 0 else None

    def messages(self, base: str, head: str) -> str:
        return git("log", "--reverse", "--format=%B", f"{base}..{head}", cwd=self.bare)

    def _env(self, author: tuple[str, str] | None = None, date: str | None = None) -> dict[str, str]:
        name, email = self.committer
        env = {**os.environ, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        a_name, a_email = author or self.committer
        env |= {"GIT_AUTHOR_NAME": a_name, "GIT_AUTHOR_EMAIL": a_email}
        if date:
            env["GIT_AUTHOR_DATE"] = date
        return env

    def merge(self, base_branch: str, head_branch: str, method: str, message: str) -> str:
        """Land `head_branch` on `base_branch`: a merge commit, a squash commit, or a rebase
        (each commit replayed, author and message kept: no commit of the forge's own)."""
        base, head = self.rev(base_branch), self.rev(head_branch)
        assert base and head
        if method == "rebase":
            sha = self.replay(base, head)
        else:
            tree = self.merge_tree(base, head)
            assert tree
            parents = ["-p", base] + ([] if method == "squash" else ["-p", head])
            text = message.rstrip("\n") + "\n"
            sha = git("commit-tree", tree, *parents, "-F", "-", cwd=self.bare, env=self._env(), input=text)
            sha = sha.strip()
        git("update-ref", f"refs/heads/{base_branch}", sha, base, cwd=self.bare)
        return sha

    def is_ancestor(self, older: str, newer: str) -> bool:
        proc = subprocess.run(
            ["git", "merge-base", "--is-ancestor", older, newer], cwd=self.bare, check=False
        )
        return proc.returncode == 0

    def fast_forward(self, base_branch: str, head_branch: str) -> str:
        """Move the base to the head, which must contain it (GitLab's fast-forward merge method)."""
        base, head = self.rev(base_branch), self.rev(head_branch)
        assert base and head and self.is_ancestor(base, head)
        git("update-ref", f"refs/heads/{base_branch}", head, base, cwd=self.bare)
        return head

    def replay(self, base: str, head: str) -> str:
        """A rebase merge: each commit replayed on `base`, author and message kept.

        git 2.39 has no `merge-tree --merge-base`: each commit is merged with the base's tip, which
        is a replay for a branch whose commits each touch what the ones before them left alone
        (gitcanary's branches hold one commit).
        """
        onto = base
        for commit in git("rev-list", "--reverse", f"{base}..{head}", cwd=self.bare).split():
            tree = self.merge_tree(onto, commit)
            assert tree
            fields = git("log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", commit, cwd=self.bare)
            name, email, date, message = fields.split("\x00", 3)
            onto = git(
                "commit-tree",
                tree,
                "-p",
                onto,
                "-F",
                "-",
                cwd=self.bare,
                env=self._env((name, email), date),
                input=message,
            ).strip()
        return onto


class JsonApp(Router):
    """Every path goes to one WSGI callable (the Router gives the plumbing, HttpServer the thread)."""

    def __init__(self, app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> None:
        super().__init__()
        self.app = app
        self.lock = threading.RLock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            return self.app(environ, start_response)


def serve(app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> HttpServer:
    return HttpServer(JsonApp(app), "127.0.0.1:0")


def strict(schema: Any) -> Any:
    """A copy of a swagger schema in which objects allow only the properties they name.

    Swagger 2.0 leaves `additionalProperties` open, so a misspelt field would pass unnoticed; the
    forges' Go and Ruby structs only ever send and read the names they declare.
    """
    if isinstance(schema, list):
        return [strict(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def without_nulls(data: Any) -> Any:
    """Swagger 2.0 has no `nullable`; the forges send null for unset pointers (merged_at, ...)."""
    if isinstance(data, dict):
        return {k: without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [without_nulls(v) for v in data]
    return data


@dataclass
class Incoming:
    """One request as a local forge reads it."""

    method: str  # lower case
    path: str
    query: dict[str, str]
    body: Any  # the JSON body, {} when there is none
    authorization: str  # the Authorization header ("" when absent)


def incoming(environ: dict[str, Any]) -> Incoming:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return Incoming(
        environ["REQUEST_METHOD"].lower(),
        environ.get("PATH_INFO", ""),  # wsgiref has decoded %2F: acme/config, a/b/c branches
        {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()},
        json.loads(raw) if raw else {},
        environ.get("HTTP_AUTHORIZATION", ""),
    )


def respond(
    start_response: Callable[..., Any],
    status: int,
    body: Any,
    headers: list[tuple[str, str]],
    reason: str = "",
    content_type: str = "application/json",
) -> list[bytes]:
    """The JSON answer: `body` (none for None) with the status line, length and `headers`."""
    data = b"" if body is None else json.dumps(body).encode()
    status_line = f"{status} {reason or ('OK' if status < 400 else 'Error')}"
    length = ("Content-Length", str(len(data)))
    start_response(status_line, [("Content-Type", content_type), length, *headers])
    return [data]


class LocalForge:
    """A local forge's HTTP server and what it records: each request, each token it saw, and every
    problem its validation found (the fixtures fail the test that made one)."""

    def __init__(self, remote: BareRemote, token_user: dict[str, str]) -> None:
        self.remote = remote
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.seen_tokens: set[str] = set()
        self.token_user = token_user
        self.echo_token = False  # a leaky proxy that puts the caller's token in its 404s
        self._token = ""
        self.server = serve(self.wsgi)

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def protect(self, on: bool = True) -> None:
        self.remote.protect(on)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise NotImplementedError

    def seen(self, request: Incoming, token: str) -> None:
        self.requests.append((request.method.upper(), request.path))
        self._token = token
        self.seen_tokens.add(token)

    def check(self, validator: Validator, data: Any, what: str, most: int = 5) -> bool:
        """Record where `data` breaks the schema, as `what at PATH: MESSAGE`; True when it holds."""
        found = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])
        for problem in found[:most]:
            where = "/".join(str(p) for p in problem.path)
            self.errors.append(f"{what} at {where}: {problem.message}")
        return not found
