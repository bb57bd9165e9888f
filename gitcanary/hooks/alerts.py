"""Notifications to Slack, Microsoft Teams, Discord, Rocket.Chat, Google Chat or any JSON endpoint.

A canary's `analysis.alerts[]` name Flagger `AlertProvider`s (read from the repo like the
MetricTemplates) and a severity filter. The provider's address is a credential, so it comes from
the environment or a mounted file, never from Git: `secretRef: {name: S}` on AlertProvider `NS/P`
reads the Secret's keys (`address`, `proxy`) from

    env  GITCANARY_SECRET_<NS>_<S>_<KEY>     (upper case; every other character becomes _)
    file <secrets-dir>/<NS>/<S>/<key>        (a Kubernetes Secret mounted as a volume)

the environment winning. An inline `spec.address` is used only without a secretRef.
A generic JSON webhook is an AlertProvider annotated `gitcanary.io/provider-type: generic`: Flagger's
CRD has no such `type`, so `spec.type` stays a Flagger value and the manifest stays valid.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitcanary.errors import AnalysisError, GitcanaryError
from gitcanary.hooks.webhooks import WebhookError, post_json
from gitcanary.redaction import redact, redact_value, register, register_url
from gitcanary.spec.models import AlertProvider, Canary

log = logging.getLogger("gitcanary.hooks")

PROVIDER_TYPE_ANNOTATION = "gitcanary.io/provider-type"
DEFAULT_SECRETS_DIR = Path("/etc/gitcanary/secrets")
SEVERITIES = ("info", "warn", "error")
_COLOURS = {"info": "#2eb886", "warn": "#daa038", "error": "#a30200"}


class AlertError(GitcanaryError):
    """A notification could not be sent (no address, unknown provider, the endpoint refused it)."""


def wanted(alert_severity: str, severity: str) -> bool:
    """Flagger's filter: an `info` alert gets everything, `warn` gets warn and error, `error` only error."""
    level = alert_severity or "info"
    if level == "info":
        return True
    return severity == level or (severity == "error" and level == "warn")


@dataclass(frozen=True)
class Notice:
    """One notification: what happened to which canary, with the evidence and the links."""

    canary: Canary
    severity: str  # info | warn | error
    message: str  # Flagger's wording, e.g. "New revision detected, progressing canary analysis."
    action: str
    phase: str
    weight: int
    primary_revision: str
    canary_revision: str
    failed: tuple[str, ...] = ()  # failing checks with their values, e.g. "error-rate 10 > 1 failed"
    commit: str = ""
    commit_url: str = ""
    pr_url: str = ""

    @property
    def title(self) -> str:
        return f"{self.canary.name}.{self.canary.namespace}"

    @property
    def versions(self) -> str:
        if self.canary_revision and self.canary_revision != self.primary_revision:
            return f"{self.primary_revision} -> {self.canary_revision}"
        return self.primary_revision

    def facts(self) -> list[tuple[str, str]]:
        rows = [
            ("Canary", self.canary.key),
            ("Versions", self.versions),
            ("Phase", self.phase),
            ("Weight", f"{self.weight}%"),
        ]
        if self.failed:
            rows.append(("Failed checks", "\n".join(self.failed)))
        if self.commit:
            rows.append(("Commit", self.commit_url or self.commit[:12]))
        if self.pr_url:
            rows.append(("Pull request", self.pr_url))
        return rows

    def text(self) -> str:
        lines = [f"{self.title}: {self.message}", f"{self.versions} at {self.weight}% ({self.phase})"]
        lines += self.failed
        if self.commit:
            lines.append(f"commit: {self.commit_url or self.commit[:12]}")
        if self.pr_url:
            lines.append(f"pull request: {self.pr_url}")
        return "\n".join(lines)


def _slack(notice: Notice, channel: str | None, username: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": username or "gitcanary",
        "text": f"{notice.title}: {notice.message}",
        "attachments": [
            {
                "color": _COLOURS[notice.severity],
                "author_name": notice.title,
                "title": notice.message,
                "title_link": notice.commit_url or None,
                "text": notice.text(),
                "fields": [{"title": k, "value": v, "short": "\n" not in v} for k, v in notice.facts()],
                "mrkdwn_in": ["text"],
            }
        ],
    }
    if channel:
        body["channel"] = channel
    return body


def _msteams(notice: Notice, channel: str | None, username: str | None) -> dict[str, Any]:
    links = [("View commit", notice.commit_url), ("View pull request", notice.pr_url)]
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": _COLOURS[notice.severity].lstrip("#"),
        "summary": f"{notice.title}: {notice.message}",
        "sections": [
            {
                "activityTitle": notice.message,
                "activitySubtitle": notice.title,
                "facts": [{"name": k, "value": v} for k, v in notice.facts()],
            }
        ],
        "potentialAction": [
            {"@type": "OpenUri", "name": name, "targets": [{"os": "default", "uri": uri}]}
            for name, uri in links
            if uri
        ],
    }


def _discord(notice: Notice, channel: str | None, username: str | None) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": f"{notice.title}: {notice.message}",
        "description": notice.text(),
        "color": int(_COLOURS[notice.severity].lstrip("#"), 16),
        "fields": [{"name": k, "value": v, "inline": "\n" not in v} for k, v in notice.facts()],
    }
    if notice.commit_url:
        embed["url"] = notice.commit_url
    return {
        "username": username or "gitcanary",
        "content": f"{notice.title}: {notice.message}",
        "embeds": [embed],
    }


def _gchat(notice: Notice, channel: str | None, username: str | None) -> dict[str, Any]:
    return {"text": notice.text()}


def _generic(notice: Notice, channel: str | None, username: str | None) -> dict[str, Any]:
    return {
        "canary": notice.canary.key,
        "name": notice.canary.name,
        "namespace": notice.canary.namespace,
        "severity": notice.severity,
        "message": notice.message,
        "action": notice.action,
        "phase": notice.phase,
        "weight": notice.weight,
        "primaryRevision": notice.primary_revision,
        "canaryRevision": notice.canary_revision,
        "failedChecks": list(notice.failed),
        "commit": notice.commit,
        "commitUrl": notice.commit_url,
        "pullRequestUrl": notice.pr_url,
        "channel": channel or "",
        "username": username or "",
    }


FORMATS: dict[str, Callable[[Notice, str | None, str | None], dict[str, Any]]] = {
    "slack": _slack,
    "rocket": _slack,  # Rocket.Chat incoming webhooks take Slack's payload
    "msteams": _msteams,
    "discord": _discord,
    "gchat": _gchat,
    "generic": _generic,
}


def provider_type(provider: AlertProvider) -> str:
    return provider.metadata.annotations.get(PROVIDER_TYPE_ANNOTATION) or provider.spec.type


def env_name(namespace: str, secret: str, key: str) -> str:
    return "GITCANARY_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{namespace}_{secret}_{key}".upper())


# A user name is no secret: masking one ("gitcanary", "admin") would blank ordinary words everywhere.
_NOT_SECRET_KEYS = {"username", "user"}


# Kubernetes' rules for what a Secret may be called and what its keys may be (DNS-1123 subdomain,
# DNS-1123 label for the namespace, `[-._a-zA-Z0-9]+` for a key): nothing else is ever a path part.
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def secret_ref_problem(namespace: str, secret: str, key: str = "token") -> str | None:
    """Why `namespace/secret` key `key` cannot name a Kubernetes Secret's key, or None when it can."""
    if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        return f"namespace {namespace[:80]!r} is not a Kubernetes namespace name (DNS-1123 label)"
    if len(secret) > 253 or not _SECRET_NAME.fullmatch(secret):
        return f"secret name {secret[:80]!r} is not a Kubernetes name (DNS-1123 subdomain)"
    if len(key) > 253 or not _SECRET_KEY.fullmatch(key) or key in (".", ".."):
        return f"secret key {key[:80]!r} is not a Kubernetes Secret key"
    return None


class SecretNameError(AlertError, AnalysisError):
    """A secretRef that names no Kubernetes Secret (`../x`, `/etc/x`): a failed notification for an
    AlertProvider, a failed check for a MetricTemplate."""


@dataclass
class Secrets:
    """Where secretRefs resolve: the environment, then files under `directory`.

    Every reader of the secret store (MetricTemplates, AlertProviders) comes through `get`: a name
    that is not a Kubernetes name is refused before it is used, and a file is read only when its
    resolved path (symlinks followed) stays under `directory`.
    """

    directory: Path = DEFAULT_SECRETS_DIR
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def get(self, namespace: str, secret: str, key: str) -> str | None:
        problem = secret_ref_problem(namespace, secret, key)
        if problem is not None:
            raise SecretNameError(f"secretRef: {problem}; gitcanary reads only Kubernetes names")
        value = self.environ.get(env_name(namespace, secret, key))
        if not value:
            value = self._file(namespace, secret, key)
        value = value.strip() if value else None
        # A provider's address or token never reaches a log line or an error. A user name is no
        # secret, and masking one ("gitcanary", "admin") would blank ordinary words everywhere.
        if key.lower() not in _NOT_SECRET_KEYS:
            register(value)
        register_url(value)
        return value or None

    def _file(self, namespace: str, secret: str, key: str) -> str | None:
        root = self.directory.resolve()
        path = (root / namespace / secret / key).resolve()
        # A mounted Secret is a tree of symlinks (key -> ..data/key -> ..2026_x/key), all inside the
        # mount: follow them, and read only what ends up inside the store.
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path.read_text()

    def where(self, namespace: str, secret: str, key: str) -> str:
        return f"${env_name(namespace, secret, key)} or {self.directory / namespace / secret / key}"


def endpoint(provider: AlertProvider, secrets: Secrets) -> tuple[str, str | None]:
    """(address, proxy) of `provider`; AlertError naming the provider and where it looked."""
    spec = provider.spec
    address, proxy = spec.address, spec.proxy
    if spec.secret_ref is not None:
        name = spec.secret_ref.name
        address = secrets.get(provider.namespace, name, "address") or address
        proxy = secrets.get(provider.namespace, name, "proxy") or proxy
        if not address:
            raise AlertError(
                f"AlertProvider {provider.key}: spec.secretRef {name}: no address in "
                f"{secrets.where(provider.namespace, name, 'address')}"
            )
    if not address:
        raise AlertError(f"AlertProvider {provider.key}: spec.address: no address to post to")
    return address, proxy


class Notifier:
    """Sends a `Notice` to every alert of its canary whose severity filter lets it through."""

    def __init__(
        self, secrets: Secrets, *, timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.secrets = secrets
        self.timeout = timeout
        self.sleep = sleep
        self.sent = 0

    def send(self, notice: Notice, providers: Mapping[str, AlertProvider]) -> list[str]:
        """Post `notice`; the errors (one line each), which never stop a rollout."""
        errors = []
        for alert in notice.canary.spec.analysis.alerts:
            if not wanted(alert.severity, notice.severity):
                continue
            namespace = alert.provider_ref.namespace or notice.canary.namespace
            key = f"{namespace}/{alert.provider_ref.name}"
            try:
                provider = providers.get(key)
                if provider is None:
                    raise AlertError(f"alert {alert.name}: no AlertProvider {key} in the repository")
                kind = provider_type(provider)
                render = FORMATS.get(kind)
                if render is None:
                    raise AlertError(f"AlertProvider {key}: type {kind!r} is not one gitcanary sends")
                address, proxy = endpoint(provider, self.secrets)
                register_url(address)  # an inline address's userinfo too, not only a secretRef's
                register_url(proxy)
                body = redact_value(render(notice, provider.spec.channel, provider.spec.username))
                assert isinstance(body, dict)
                post_json(address, body, timeout=self.timeout, retries=2, proxy=proxy, sleep=self.sleep)
                self.sent += 1
            except (AlertError, WebhookError) as exc:
                message = redact(f"{notice.canary.key}: alert {alert.name}: {exc}")
                log.warning("%s", message)
                errors.append(message)
        return errors


def missing_providers(canary: Canary, source: str, providers: Mapping[str, AlertProvider]) -> list[str]:
    """One error per `analysis.alerts[i].providerRef` naming no AlertProvider in the repository."""
    errors = []
    for index, alert in enumerate(canary.spec.analysis.alerts):
        key = f"{alert.provider_ref.namespace or canary.namespace}/{alert.provider_ref.name}"
        if key not in providers:
            field = f"spec.analysis.alerts[{index}].providerRef"
            errors.append(f"{source}: {field}: no AlertProvider {key} in the repository")
    return errors
