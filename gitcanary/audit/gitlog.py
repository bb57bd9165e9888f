"""Read gitcanary's commits in one `git log` pass, from a local repository or a clone of a URL.

One process for the whole history: `--grep` lets git itself skip commits without a `Gitcanary-*`
trailer, and one record format carries everything the parser needs (no call per commit).
Signatures are checked only when asked (`%G?` runs gpg or ssh-keygen for each signed commit).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from git import GitCommandError, Repo
from git.exc import InvalidGitRepositoryError, NoSuchPathError

from gitcanary.audit.parse import (
    STEP_MERGE_NOTE,
    RawCommit,
    closing_approvals,
    merged_request,
    parse_time,
)
from gitcanary.errors import GitError
from gitcanary.git.workspace import _stderr as git_message
from gitcanary.manifests import yamlio
from gitcanary.manifests.discovery import STATUS_FILE

_FIELD, _RECORD = "\x1f", "\x1e"
_BASE = ["%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce"]
_SIGNATURE = ["%G?", "%GK", "%GF", "%GS"]
# Any line that is a Gitcanary trailer, also indented (git merge --squash) or bulleted (GitHub).
GREP = r"^[[:space:]*-]*Gitcanary-[A-Za-z-]+:"


def canary_grep(canary: str) -> str:
    """The `--grep` (extended regex) for a `Gitcanary-Canary` trailer naming exactly `canary`."""
    escaped = "".join(f"\\{c}" if c in ".[]()*+?{}|^$\\" else c for c in canary)
    return rf"^[[:space:]*-]*Gitcanary-Canary:[[:space:]]*{escaped}[[:space:]]*$"


def open_repo(repo: str, branch: str | None = None) -> tuple[Repo, str]:
    """A repository to read and the revision to read from: REPO itself when it is a local
    repository (work tree or bare), else a blob-less bare clone of the URL in a temporary directory."""
    path = Path(repo)
    if path.exists():
        try:
            return Repo(path, search_parent_directories=True), branch or "HEAD"
        except (InvalidGitRepositoryError, NoSuchPathError) as exc:
            raise GitError(f"--repo {repo}: not a Git repository") from exc
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-audit-"))
    # A clone only serves this process's reading; nothing in it is ever worth keeping.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    target = scratch / "repo.git"
    options: dict[str, object] = {"bare": True, "filter": "blob:none", "no_tags": True}
    if branch:
        options.update(branch=branch, single_branch=True)
    try:
        return Repo.clone_from(repo, target, **options), "HEAD"  # type: ignore[arg-type]
    except GitCommandError as exc:
        raise GitError(f"cannot clone {repo}: {git_message(exc)}") from exc


def read_log(
    repo: Repo,
    rev: str = "HEAD",
    *,
    signatures: bool = False,
    allowed_signers: Path | None = None,
    canary: str | None = None,
    since: datetime | None = None,
) -> list[RawCommit]:
    """gitcanary-looking commits reachable from `rev`, oldest first (parents before children).

    With `canary` (NAMESPACE/NAME), git keeps only the commits that name it, so the history of one
    canary costs what that canary's commits cost, however many others share the repository.
    With `since`, git stops walking at commits committed before it (`git log --since`), so the
    read costs what the window holds, not what the repository's age holds.
    """
    if rev == "HEAD" and not repo.head.is_valid():
        return []  # a repository with no commits yet has no history to read
    fields = _BASE + (_SIGNATURE if signatures else []) + ["%B"]
    command = ["git"]
    if allowed_signers is not None:
        command += ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers}"]
    command += [
        "log",
        "--topo-order",
        "--reverse",
        "-E",
        f"--grep={GREP if canary is None else canary_grep(canary)}",
        f"--format={_RECORD}{_FIELD.join(fields).replace(_FIELD, '%x1f')}",
        *_since(since),
        rev,
        "--",
    ]
    try:
        out = repo.git.execute(command, strip_newline_in_stdout=False)
    except GitCommandError as exc:
        raise GitError(f"git log {rev} in {repo.git_dir}: {git_message(exc)}") from exc
    assert isinstance(out, str)
    # A step PR gitcanary merged itself names no request: history lists it as no approval.
    merges = {sha: merge for sha, merge in merged_in(repo, rev, since).items() if not merge.by_gitcanary}
    unmerged = Merge("", "", ())
    commits = []
    for record in out.split(_RECORD):
        if not record.strip():
            continue
        parts = record.split(_FIELD)
        sha, parents, an, ae, ad, cn, ce = parts[:7]
        sig = parts[7:11] if signatures else ["", "", "", ""]
        merge = merges.get(sha, unmerged)
        commits.append(
            RawCommit(
                sha=sha,
                parents=tuple(parents.split()),
                author_name=an,
                author_email=ae,
                author_date=parse_time(ad),
                committer_name=cn,
                committer_email=ce,
                message=parts[-1].strip("\n"),
                signature=sig[0],
                signing_key=sig[1],
                signing_fingerprint=sig[2],
                signer=sig[3],
                merge_request=merge.request,
                merged_by=merge.merged_by,
                merge_approvals=merge.approvals,
            )
        )
    return commits


class Merge(NamedTuple):
    """The pull request whose merge commit brought a commit in."""

    request: str  # "#12"
    merged_by: str  # the merge commit's author
    approvals: tuple[str, ...]  # its closing approval trailers, "alice (approved-by)"
    by_gitcanary: bool = False  # a step PR gitcanary merged itself: plumbing, not an approval


def _since(since: datetime | None) -> list[str]:
    return [] if since is None else [f"--since={since.isoformat()}"]


def merged_in(repo: Repo, rev: str, since: datetime | None = None) -> dict[str, Merge]:
    """For each commit a pull request's merge commit on the first-parent line brought in: the PR
    (`#N`, GitLab's `!N`), the merge commit's author and the approvals its message closes with. Empty, after
    one cheap `git log --merges`, when no pull request was merged with a merge commit (direct
    pushes, squash or rebase merges).
    """
    try:
        merges = repo.git.log(
            "--merges",
            "--first-parent",
            f"--format={_RECORD}%H%x1f%an <%ae>%x1f%B",
            *_since(since),
            rev,
            "--",
        )
    except GitCommandError:
        return {}
    requests: dict[str, Merge] = {}
    for record in merges.split(_RECORD):
        if not record.strip():
            continue
        sha, who, message = record.split(_FIELD, 2)
        request = merged_request(message)
        if request:
            by_gitcanary = STEP_MERGE_NOTE in message
            requests[sha] = Merge(request, who, closing_approvals(message), by_gitcanary)
    if not requests:
        return {}
    parents: dict[str, list[str]] = {}
    for line in repo.git.rev_list("--parents", *_since(since), rev, "--").splitlines():
        sha, *rest = line.split()
        parents[sha] = rest
    mainline = [repo.git.rev_parse(rev)]
    while parents.get(mainline[-1]):
        mainline.append(parents[mainline[-1]][0])
    # Walk the first-parent line oldest first; `reached` holds every ancestor of the commit
    # before, so what a merge's other parents add beyond it is what that merge brought in.
    found: dict[str, Merge] = {}
    reached: set[str] = set()
    for commit in reversed(mainline):
        label = requests.get(commit)  # None: a plain merge brings commits in too, unattributed
        pending = [p for p in parents[commit][1:] if p not in reached]
        while pending:
            sha = pending.pop()
            if sha in reached:
                continue
            reached.add(sha)
            if label is not None:
                found[sha] = label
            pending += [p for p in parents.get(sha, []) if p not in reached]
        reached.add(commit)
    return found


class StatusReader:
    """The status file each canary had in a given commit, as gitcanary wrote it next to its trailers.

    `history --verify` compares a bot commit's trailers with this file: trailers that claim a phase
    or a weight the status file of the same commit does not hold were not written by gitcanary.
    """

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._paths: dict[str, str] = {}  # canary -> status file path, found once

    def _find(self, sha: str, canary: str) -> str | None:
        try:
            names = self.repo.git.ls_tree("-r", "--name-only", sha).splitlines()
        except GitCommandError:
            return None
        for name in names:
            if name.rsplit("/", 1)[-1] == STATUS_FILE:
                doc = self._load(sha, name)
                if doc is not None and doc.get("canary") == canary:
                    return name
        return None

    def _load(self, sha: str, path: str) -> dict[str, object] | None:
        try:
            text = self.repo.git.show(f"{sha}:{path}")
            doc = yamlio.load(text, path)
        except (GitCommandError, yamlio.YAMLError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def __call__(self, sha: str, canary: str) -> dict[str, object] | None:
        """The `status:` mapping of `canary`'s status file in commit `sha`; None if there is none."""
        path = self._paths.get(canary)
        doc = self._load(sha, path) if path else None
        if doc is None or doc.get("canary") != canary:
            path = self._find(sha, canary)
            if path is None:
                return None
            self._paths[canary] = path
            doc = self._load(sha, path)
        status = doc.get("status") if doc else None
        return status if isinstance(status, dict) else None
