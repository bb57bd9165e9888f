"""Build the forge pieces `gitcanary run` needs from its Settings."""

from __future__ import annotations

import re

from gitcanary.forge import choice, naming
from gitcanary.forge.base import Forge, ForgeError
from gitcanary.forge.naming import MERGE_METHODS, WRITE_MODES
from gitcanary.forge.publish import Publisher, PublishSettings
from gitcanary.forge.secrets import read_secret
from gitcanary.git.workspace import Workspace
from gitcanary.service.settings import Settings


def publisher_for(settings: Settings, workspace: Workspace) -> Publisher | None:
    """A Publisher when a forge is configured (or detected); None leaves gitcanary in direct mode."""
    if settings.write_mode not in WRITE_MODES:
        raise ForgeError(f"--write-mode {settings.write_mode!r}: expected one of {', '.join(WRITE_MODES)}")
    if settings.merge_method not in MERGE_METHODS:
        raise ForgeError(
            f"--merge-method {settings.merge_method!r}: expected one of {', '.join(MERGE_METHODS)}"
        )
    mode = PublishSettings(
        settings.write_mode,
        settings.promotion_gate,
        settings.merge_method,
        reviewers=_reviewers(settings.reviewers),
        metric_link=settings.metric_link,
        release_notes=_release_notes(settings.release_notes),
        release_notes_from=_release_notes_from(settings.release_notes_from),
    )
    forge = forge_for(settings)
    if forge is None:
        if settings.write_mode != "direct" or settings.promotion_gate:
            raise ForgeError(
                "--write-mode pull-request and --promotion-gate need a forge: --github-repo OWNER/NAME, "
                "or --forge gitlab|gitea (detected from a gitlab.*/gitea.* --repo URL) with --forge-repo"
            )
        return None
    return Publisher(forge, workspace, mode)


def _reviewers(text: str) -> tuple[str, ...]:
    names = tuple(name for name in re.split(r"[,\s]+", text) if name)
    wrong = [name for name in names if not naming.valid_reviewer(name)]
    if wrong:
        raise ForgeError(f"--reviewers {', '.join(wrong)}: expected a login, team:SLUG or @org/SLUG")
    return names


def _release_notes(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        key, _, repo = entry.rpartition("=")
        if not key or not naming.valid_repo(repo):
            raise ForgeError(f"--release-notes {entry!r}: expected IMAGE=OWNER/NAME or CONTAINER=OWNER/NAME")
        pairs.append((key, repo))
    return tuple(pairs)


def _release_notes_from(text: str) -> tuple[str, ...]:
    names = tuple(name.strip("/") for name in re.split(r"[,\s]+", text) if name)
    wrong = [
        name
        for name in names
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*", name)
    ]
    if wrong or any(".." in name for name in names):
        raise ForgeError(
            f"--release-notes-from {', '.join(wrong) or text!r}: expected OWNER or OWNER/NAME, "
            "comma-separated"
        )
    return names


def forge_for(settings: Settings) -> Forge | None:
    """The forge of the repository, or None when nothing asks for one (direct mode, as before)."""
    asked = settings.write_mode != "direct" or settings.promotion_gate
    if not (settings.github_repo or settings.forge or settings.forge_repo or asked):
        return None
    if settings.github_repo and not settings.forge:
        kind: str | None = "github"
    else:
        kind = choice.choose(settings.forge, settings.repo)
    if kind is None:
        return None
    token = settings.forge_token.get_secret_value() if settings.forge_token else None
    if kind == "github":
        from gitcanary.forge.github import GitHubConfig, GitHubForge

        if settings.github_token:
            token = settings.github_token.get_secret_value()
        api = settings.forge_api_url or settings.github_api_url
        return GitHubForge(
            GitHubConfig(
                repo=settings.github_repo or choice.project_path(settings.repo, settings.forge_repo),
                api_url=api,
                token=token,
                token_file=settings.github_token_file or settings.forge_token_file,
                app_id=settings.github_app_id,
                app_key_file=settings.github_app_key_file,
                installation_id=settings.github_installation_id,
            )
        )
    project = choice.project_path(settings.repo, settings.forge_repo)
    api = choice.api_root(kind, settings.repo, settings.forge_api_url)
    if kind == "gitlab":
        from gitcanary.forge.gitlab import GitLabConfig, GitLabForge

        return GitLabForge(GitLabConfig(project, api, token=token, token_file=settings.forge_token_file))
    from gitcanary.forge.gitea import GiteaConfig, GiteaForge

    return GiteaForge(GiteaConfig(project, api, token=token, token_file=settings.forge_token_file))


def webhook_secret(settings: Settings) -> str | None:
    value = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return read_secret(value, settings.webhook_secret_file, "webhook secret")
