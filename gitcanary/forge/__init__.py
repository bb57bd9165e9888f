"""Forges behind one small interface (GitHub, GitLab, Gitea/Forgejo): pull requests for protected
branches, the promotion gate, and the signed push webhooks that wake the reconciler."""

from gitcanary.forge.base import Forge, ForgeError, PullRequest

__all__ = ["Forge", "ForgeError", "PullRequest"]
