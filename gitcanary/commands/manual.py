"""Manual actions by a person: `gitcanary promote|abort|pause|resume|retry NS/NAME`.

Each is one commit authored by that person, with a `Gitcanary-Actor` trailer, pushed like any
human commit: fetched fresh, never forced, and on a rejected push decided again from the new head.

- pause/resume set or remove Flagger's own `spec.suspend` in the Canary manifest, so Flagger-aware
  tools read the same switch, and the reconciler (which already honours `suspend`) needs nothing new.
- promote/abort/retry write a *request* into the canary's status file; the reconciler honours it on
  its next tick with the transition commit (promotion, rollback, new analysis). A request rather
  than the transition itself, because the transition needs what only the reconciler has (the
  rendered target, the mesh router, the analysis state) and because one writer of generated objects
  keeps the invariant in one place. The race with a reconciler step is then a conflict on one file,
  which whichever side pushes second re-decides.
- retry after a rollback that wrote the primary's images back also restores the failed revision's
  images in the user's manifests (from the commit before the rollback), because the canary must run
  that revision again and Git must say so; the reconciler then starts the analysis as for a bump.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from git import GitCommandError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gitcanary.core.manual_rules import refusal
from gitcanary.errors import GitcanaryError, GitError, PushRejected
from gitcanary.git.trailers import format_message
from gitcanary.git.workspace import Identity, Workspace
from gitcanary.manifests import detect, discovery, image_policies, image_quarantine, paths, render, yamlio
from gitcanary.manifests.generate import Layout, read_primary, read_status, write_documents
from gitcanary.manifests.target import render_target
from gitcanary.service.logs import redact
from gitcanary.spec import canary_ref
from gitcanary.spec.load import LoadedCanary
from gitcanary.spec.request import IDENT, ManualAction, ManualRequest, check_ident
from gitcanary.spec.status import CanaryStatus, utcnow

PUSH_ATTEMPTS = 5


class ManualActionError(GitcanaryError):
    """The action cannot be done: unknown canary, wrong phase, no identity."""


@dataclass
class ManualResult:
    key: str
    action: ManualAction
    commit: str
    subject: str
    url: str
    notes: list[str] = field(default_factory=list)


def parse_actor(text: str) -> Identity:
    """`Name <email>` (git's own form) -> Identity; a clear error otherwise."""
    try:
        ident = check_ident(text)
    except ValueError as exc:
        raise ManualActionError(f"--actor {exc}") from None
    match = IDENT.fullmatch(ident)
    assert match is not None
    return Identity(match.group("name").strip(), match.group("email"))


def invoker(cwd: Path) -> Identity:
    """The person running the command, as git would author their commit (user.name, GIT_AUTHOR_*)."""
    proc = subprocess.run(
        ["git", "-c", "user.useConfigOnly=true", "var", "GIT_AUTHOR_IDENT"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    # useConfigOnly: never an identity git guessed from the host name. `git var` prints
    # "Name <email> 1700000000 +0000"; drop the date.
    ident = re.sub(r"\s+\d+\s+[-+]\d{4}\s*$", "", proc.stdout.strip())
    if proc.returncode != 0 or not IDENT.fullmatch(ident) or ident.startswith("<"):
        raise ManualActionError(
            "who is acting? git has no user.name/user.email here: set them "
            "(git config --global user.name ...) or pass --actor 'Name <email>'"
        )
    return parse_actor(ident)


def resolve_remote(repo: str) -> tuple[str, Path]:
    """(where to push, where to read the invoker's git config): a checkout means its `origin`."""
    path = Path(repo)
    if not path.is_dir():
        return repo, Path.cwd()  # a URL
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return repo, Path.cwd()  # a bare repository: push to it directly
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=path, capture_output=True, text=True, check=False
    )
    if inside.stdout.strip() != "true":
        raise ManualActionError(
            f"{repo} is not a Git checkout: run this in a clone of the config repository, or pass --repo URL"
        )
    proc = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=path, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ManualActionError(
            f"{repo} is a checkout without an 'origin' remote: pass --repo the config repository's URL"
        )
    return proc.stdout.strip(), path


def perform(
    action: ManualAction,
    key: str,
    repo: str,
    branch: str = "main",
    actor: str | None = None,
    now: datetime | None = None,
    namespace: str | None = None,
) -> ManualResult:
    """Commit `action` on the canary `key` names (NS/NAME, NAME with `namespace`, or a NAME only one
    namespace has: `spec.canary_ref`) as its own commit and push it."""
    try:
        ref = canary_ref.parse(key, namespace)
    except canary_ref.CanaryRefError as exc:
        raise ManualActionError(str(exc)) from None
    url, cwd = resolve_remote(repo)
    identity = parse_actor(actor) if actor else invoker(cwd)
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-manual-"))
    try:
        workspace = Workspace(url, branch, scratch / "repo", identity)
        retrying = Retrying(
            stop=stop_after_attempt(PUSH_ATTEMPTS),
            wait=wait_exponential_jitter(multiplier=0.1, max=2.0),
            retry=retry_if_exception_type(PushRejected),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return _attempt(workspace, action, ref, identity, now or utcnow())
        except RetryError as exc:
            raise GitError(
                f"could not push to {redact(url)} after {PUSH_ATTEMPTS} attempts: {branch} keeps moving"
            ) from exc
        raise AssertionError("unreachable")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _attempt(
    workspace: Workspace, action: ManualAction, ref: canary_ref.CanaryRef, identity: Identity, now: datetime
) -> ManualResult:
    """One try from the remote's current head: re-read, re-check, write, commit, push."""
    workspace.sync()
    root = workspace.root
    loaded = _find(root, ref, workspace.url, workspace.branch)
    key = loaded.canary.key
    layout = Layout.of(loaded)
    status = read_status(root, layout)
    suspended = loaded.canary.spec.suspend
    why = refusal(action, status.phase if status else None, suspended)
    if why is not None:
        raise ManualActionError(f"cannot {action.value} {key}: {why}")
    actor = f"{identity.name} <{identity.email}>"
    notes: list[str] = []
    restored: list[str] = []
    if action.requested:
        assert status is not None
        if action is ManualAction.RETRY:
            notes, restored = _restore_failed_images(workspace, loaded, status)
            lifted_notes, lifted = _lift_quarantine(root, loaded, status)
            notes += lifted_notes
            restored += [path for path in lifted if path not in restored]
        request = ManualRequest(action=action, actor=actor, rollout_id=status.rollout_id, requested_at=now)
        requested = status.model_copy(update={"request": request})
        write_documents(root, layout.status, [requested.to_document(key)])
        changed = [layout.status, *restored]
        subject = f"gitcanary: request {action.value} of {key} (by {identity.name})"
        body = [
            f"{status.phase.value} at {status.canary_weight}%, "
            f"{status.primary_revision} -> {status.canary_revision}",
            "the reconciler does it on its next tick",
            *notes,
        ]
    else:
        changed = [_set_suspend(root, loaded, action is ManualAction.PAUSE)]
        verb = "pause" if action is ManualAction.PAUSE else "resume"
        subject = f"gitcanary: {verb} {key} (by {identity.name})"
        state = f"{status.phase.value} at {status.canary_weight}%" if status else "not initialized"
        body = [f"spec.suspend: {'true' if action is ManualAction.PAUSE else 'removed'} ({state})"]
    trailers: dict[str, object] = {"Canary": key, "Action": f"manual-{action.value}", "Actor": actor}
    # When it was asked, as step commits say it: squash merges and rebases keep the trailer.
    trailers["Time"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if status is not None:
        trailers["Rollout"] = status.rollout_id or f"{status.primary_revision}/init"
        trailers["Phase"] = status.phase.value
    message = format_message(subject, body, trailers)
    sha = workspace.commit(message, changed)
    workspace.push()
    return ManualResult(key, action, sha, subject, workspace.url, notes)


def _find(root: Path, ref: canary_ref.CanaryRef, url: str, branch: str) -> LoadedCanary:
    catalog = discovery.scan(root)
    try:
        return catalog.canaries[canary_ref.resolve(ref, catalog.canaries)]
    except canary_ref.CanaryRefError as exc:
        known = ", ".join(sorted(catalog.canaries)) or "none"
        broken = "".join(f"; {source} does not load: {err}" for source, err in sorted(catalog.errors.items()))
        why = str(exc).partition(" in the repository")[0]
        where = f"in {redact(url)} ({branch}); canaries there: {known}{broken}"
        raise ManualActionError(f"{why} {where}") from None


def _set_suspend(root: Path, loaded: LoadedCanary, suspend: bool) -> str:
    """Set (pause) or remove (resume) `spec.suspend` in the Canary's own file, round-trip."""
    path, _, index = loaded.source.partition("#")
    file = paths.no_symlink(root, path, source=loaded.source)
    text = file.read_text()
    docs = yamlio.load_all(text)
    spec = docs[int(index or 0)]["spec"]
    if suspend:
        spec["suspend"] = True
    else:
        spec.pop("suspend", None)
    paths.write(
        root, path, yamlio.dump_all(docs, like=text) if len(docs) > 1 else yamlio.dump(docs[0], like=text)
    )
    return path


def _restore_failed_images(
    workspace: Workspace, loaded: LoadedCanary, status: CanaryStatus
) -> tuple[list[str], list[str]]:
    """After a rollback that wrote the primary's images back, put the failed revision's images again.

    The images come from the target as it was built in the commit before the rollback; only image
    entries are written (the replicas stay the reconciler's to set), each where the target takes it from.
    Returns the lines for the commit message and the files changed.
    """
    root = workspace.root
    layout = Layout.of(loaded)
    current = render_target(root, loaded)
    if current.spec_hash != status.last_promoted_spec:
        return [], []  # the target still holds the failed revision (or a newer one): nothing to restore
    rollback = _rollback_commit(workspace, layout, status.rollout_id)
    if rollback is None:
        return [], []
    before = Path(tempfile.mkdtemp(prefix="gitcanary-before-")) / "tree"
    repo = workspace.repo
    try:
        repo.git.worktree("add", "--detach", str(before), f"{rollback}~1")
        catalog = discovery.Catalog()
        discovery.scan_file(catalog, before, loaded.source.partition("#")[0])
        then = catalog.canaries.get(loaded.canary.key)
        failed = render_target(before, then) if then is not None else None
    except (GitCommandError, GitcanaryError) as exc:
        raise ManualActionError(
            f"cannot find the images {status.canary_revision} ran with before rollback {rollback[:8]}: {exc}"
        ) from exc
    finally:
        shutil.rmtree(before.parent, ignore_errors=True)
        repo.git.worktree("prune")
    if failed is None:
        return [], []
    notes: list[str] = []
    paths: list[str] = []
    changes = detect.image_changes(
        render.container_images(current.target), render.container_images(failed.target)
    )
    for container, now_image, failed_image in changes:
        source = detect.locate(root, layout.app_dir, container, now_image, layout.helm_image_keys)
        if source is None or not now_image:
            raise ManualActionError(
                f"cannot retry {loaded.canary.key}: where {container}'s image {now_image} is set in "
                f"{layout.app_dir} is not found; set {failed_image} yourself (that is a bump)"
            )
        if detect.write_back(root, source, container, now_image, failed_image, layout.helm_image_keys):
            notes.append(
                f"image {container} restored: {now_image} -> {failed_image} in {source.path} {source.field}"
            )
            paths.append(source.path)
    return notes, paths


def _lift_quarantine(root: Path, loaded: LoadedCanary, status: CanaryStatus) -> tuple[list[str], list[str]]:
    """Remove the exclusions a rollback wrote for the failed tag, so the automation may select it again."""
    tag = status.canary_revision
    if not tag:
        return [], []
    layout = Layout.of(loaded)
    primary = read_primary(root, layout) or {}
    notes: list[str] = []
    paths: list[str] = []
    for image in render.container_images(primary).values():
        repository = detect.ImageRef.parse(image).repository
        for selector in image_policies.find(root, layout.app_dir, repository):
            lifted = image_quarantine.lift(root, selector, tag)
            if lifted is not None:
                notes.append(f"quarantine of {tag} lifted: {lifted.line}")
                paths.append(lifted.path)
    return notes, paths


def _rollback_commit(workspace: Workspace, layout: Layout, rollout_id: str) -> str | None:
    """The commit that rolled back `rollout_id`, found by its trailers."""
    out = workspace.repo.git.log(
        "--format=%H",
        "-n",
        "1",
        "--fixed-strings",
        "--all-match",
        f"--grep=Gitcanary-Rollout: {rollout_id}",
        "--grep=Gitcanary-Action: rollback",
        "HEAD",
        "--",
        layout.status,
    )
    return out.strip() or None
