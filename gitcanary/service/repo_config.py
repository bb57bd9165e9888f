"""`gitcanary run --config FILE`: the repositories one process serves, listed in a YAML file.

The file yields what repeated `--repo URL#BRANCH` yields (a repository and its branch each), so
`run` builds the same per-repository settings from either. It is read through the bounded YAML
reader and validated strictly: a misspelt key is an error naming the file and the field, never a
setting silently left at its default.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gitcanary.errors import SpecError
from gitcanary.manifests import yamlio


class RepositoryEntry(BaseModel):
    """One repository: its URL or path, and the branch the applier tracks (default: --branch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str = Field(min_length=1)
    branch: str | None = Field(None, min_length=1)


class RunConfig(BaseModel):
    """The whole file: `repositories:`, a list of entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repositories: list[RepositoryEntry] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _once_each(self) -> RunConfig:
        # Two reconcilers on one repository and branch would race each other's commits.
        seen: set[tuple[str, str | None]] = set()
        for entry in self.repositories:
            key = (entry.repo, entry.branch)
            if key in seen:
                raise ValueError(f"{entry.repo} (branch {entry.branch or 'default'}) is listed twice")
            seen.add(key)
        return self


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_run_config(path: Path) -> list[tuple[str, str | None]]:
    """(repository, branch or None) for each entry of FILE, in order; SpecError naming the file,
    the field and the reason when it cannot be read or does not validate."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, "", f"cannot read: {exc}") from None
    try:
        doc = yamlio.load(text, source)
    except (yamlio.YAMLError, ValueError) as exc:
        raise SpecError(source, "", f"not valid YAML: {exc}") from None
    try:
        config = RunConfig.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = first["msg"].removeprefix("Value error, ")
        raise SpecError(source, _field(first["loc"]), reason) from None
    return [(entry.repo, entry.branch) for entry in config.repositories]
