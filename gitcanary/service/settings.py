"""Settings for `gitcanary run`: flags, or GITCANARY_* environment variables."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gitcanary.manifests.image_policies import DEFAULT_AUTOMATION_AUTHORS


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
    # How many canaries' analyses a tick sends at once (over one pool of kept-alive connections);
    # 1 sends each inline, when its canary's step asks for it.
    analysis_concurrency: int = Field(default=16, ge=1)
    settle: float = 10.0
    author_name: str = "gitcanary"
    author_email: str = "gitcanary@users.noreply.local"
    signing_key: str | None = None
    signing_format: str = "openpgp"  # or "ssh" (signing_key is then a key file), or "x509"
    push_attempts: int = 6
    commit_url: str | None = None  # e.g. https://github.com/acme/fleet/commit/{sha}, for notifications
    secrets_dir: Path | None = None  # AlertProvider and MetricTemplate secretRefs [/etc/gitcanary/secrets]
    # Where a credential may go besides --prometheus and providers' official endpoints (origins).
    credential_endpoints: list[str] = Field(default_factory=list)
    # Pull-request mode, the promotion gate and push webhooks (gitcanary.forge).
    write_mode: str = "direct"  # or "pull-request"; a canary's gitcanary.io/write-mode wins
    promotion_gate: bool = False  # a canary's gitcanary.io/promotion-gate wins
    merge_method: str = "merge"  # merge, squash or rebase
    reviewers: str = ""  # the gate's reviewers besides CODEOWNERS: "alice,team:platform"
    metric_link: str = ""  # a link per metric in the gate: {metric} {query} {namespace} {name} {start} {end}
    release_notes: str = ""  # where images' release notes are: "ghcr.io/acme/app=acme/app,sidecar=acme/proxy"
    # owners or repositories the gate may quote releases of; "": the config repository's owner
    release_notes_from: str = ""
    github_repo: str | None = None  # OWNER/NAME; PRs need it
    github_api_url: str = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    github_token: SecretStr | None = None
    github_token_file: Path | None = None
    github_app_id: str | None = None
    github_app_key_file: Path | None = None
    github_installation_id: int | None = None
    # GitLab and Gitea/Forgejo (and GitHub named the same way): the forge, detected from `repo`'s
    # host unless named; the project path, read from `repo` unless named; a self-hosted API root.
    forge: str | None = None  # github, gitlab or gitea
    forge_repo: str | None = None  # OWNER/NAME or GROUP/SUBGROUP/PROJECT
    forge_api_url: str | None = None  # GitLab/Gitea: https://HOST (no /api/v4, /api/v1)
    forge_token: SecretStr | None = None
    forge_token_file: Path | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None
    # Read the cluster to know a step is live: "auto" (in-cluster, else a kubeconfig if there is
    # one), "on" (must), "off" (the settle delay stands in). Off unless asked: the CLI asks "auto".
    cluster: str = "off"
    kubeconfig: str | None = None
    # `spec.provider` of canaries that set none (Flagger's -mesh-provider); None means istio.
    provider: str | None = None
    # Commit author emails of image automations: a failed revision they push back is held
    # (phase Quarantined), not rolled out again. The authors of the repository's Flux
    # ImageUpdateAutomations are added to these.
    automation_authors: list[str] = Field(default_factory=lambda: list(DEFAULT_AUTOMATION_AUTHORS))
    # The judge of canaries without a gitcanary.io/judge annotation: threshold (Flagger's) or compare.
    judge: str = "threshold"
    # /healthz answers 503 once no tick has completed for this many poll intervals (0: never).
    liveness_intervals: float = Field(default=30.0, ge=0)
    # One canary's analysis may take this share of min(poll interval, its analysis interval), at least
    # 5 s; what is not answered by then is a failed check, and no other canary waits for it.
    analysis_budget: float = Field(default=0.5, gt=0, le=1)

    def resolved_workdir(self) -> Path:
        return self.workdir or default_workdir(self.repo, self.branch)
