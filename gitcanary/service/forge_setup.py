"""Build the forge pieces `gitcanary run` needs from its Settings."""

from __future__ import annotations

from gitcanary.forge.base import ForgeError
from gitcanary.forge.naming import MERGE_METHODS, WRITE_MODES
from gitcanary.forge.publish import Publisher, PublishSettings
from gitcanary.forge.secrets import read_secret
from gitcanary.git.workspace import Workspace
from gitcanary.service.settings import Settings


def publisher_for(settings: Settings, workspace: Workspace) -> Publisher | None:
    """A Publisher when a GitHub repository is configured; None leaves gitcanary in direct mode."""
    if settings.write_mode not in WRITE_MODES:
        raise ForgeError(f"--write-mode {settings.write_mode!r}: expected one of {', '.join(WRITE_MODES)}")
    if settings.merge_method not in MERGE_METHODS:
        raise ForgeError(
            f"--merge-method {settings.merge_method!r}: expected one of {', '.join(MERGE_METHODS)}"
        )
    if not settings.github_repo:
        if settings.write_mode != "direct" or settings.promotion_gate:
            raise ForgeError("--write-mode pull-request and --promotion-gate need --github-repo OWNER/NAME")
        return None
    from gitcanary.forge.github import GitHubConfig, GitHubForge

    token = settings.github_token.get_secret_value() if settings.github_token else None
    forge = GitHubForge(
        GitHubConfig(
            repo=settings.github_repo,
            api_url=settings.github_api_url,
            token=token,
            token_file=settings.github_token_file,
            app_id=settings.github_app_id,
            app_key_file=settings.github_app_key_file,
            installation_id=settings.github_installation_id,
        )
    )
    mode = PublishSettings(settings.write_mode, settings.promotion_gate, settings.merge_method)
    return Publisher(forge, workspace, mode)


def webhook_secret(settings: Settings) -> str | None:
    value = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return read_secret(value, settings.webhook_secret_file, "webhook secret")
