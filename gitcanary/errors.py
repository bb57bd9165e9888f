"""One hierarchy for every error gitcanary reports; messages name the file and field at fault."""

from __future__ import annotations


class GitcanaryError(Exception):
    """Base of every error gitcanary raises on purpose."""


class SpecError(GitcanaryError):
    """A manifest (Canary, MetricTemplate, kustomization, policy) is invalid.

    `path` is the file relative to the repository root, `field` a dotted path inside the
    object (``spec.analysis.threshold``), so the user can go straight to the line at fault.
    """

    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {message}")


class RenderError(GitcanaryError):
    """kustomize failed, or the rendered output lacks what the canary points at."""


class AnalysisError(GitcanaryError):
    """A metric query could not be run (network, HTTP status, PromQL error, no data)."""


class GitError(GitcanaryError):
    """A Git operation failed in a way retrying will not fix."""


class PushRejected(GitcanaryError):
    """The remote moved under us; the caller fetches, rebases or re-decides, and retries."""
