"""Settings for `gitcanary run`: flags, or GITCANARY_* environment variables."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_workdir(repo: str, branch: str) -> Path:
    digest = hashlib.sha256(f"{repo}#{branch}".encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "gitcanary" / digest


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GITCANARY_", extra="ignore")

    repo: str = Field(description="URL or path of the config repository")
    branch: str = "main"
    workdir: Path | None = None
    prometheus: str = "http://127.0.0.1:9090"
    poll_interval: float = 10.0
    settle: float = 10.0
    author_name: str = "gitcanary"
    author_email: str = "gitcanary@users.noreply.local"
    signing_key: str | None = None
    signing_format: str = "openpgp"  # or "ssh" (signing_key is then a key file), or "x509"
    push_attempts: int = 6
    # `spec.provider` of canaries that set none (Flagger's -mesh-provider); None means istio.
    provider: str | None = None

    def resolved_workdir(self) -> Path:
        return self.workdir or default_workdir(self.repo, self.branch)
