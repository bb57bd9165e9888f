"""Credentials read from the environment or a file, kept out of logs, messages and exceptions."""

from __future__ import annotations

from pathlib import Path

from gitcanary.forge.base import ForgeError
from gitcanary.redaction import REDACTED, redact, register

__all__ = ["REDACTED", "Redactor", "read_secret", "without_credentials"]


def read_secret(value: str | None, file: Path | str | None, what: str) -> str | None:
    """`value` if given, else the stripped contents of `file`; None when neither is set.

    Files suit Kubernetes Secrets mounted as volumes (rotated without a restart of the Pod's env).
    """
    if value:
        return value.strip()
    if file:
        path = Path(file)
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ForgeError(f"{what}: cannot read {path}: {exc.strerror}") from None
        if not text:
            raise ForgeError(f"{what}: {path} is empty")
        return text
    return None


class Redactor:
    """The forge's handle on `gitcanary.redaction`: a secret it adds is masked at every boundary."""

    def __init__(self, *secrets: str | None) -> None:
        register(*secrets)

    def add(self, secret: str | None) -> None:
        register(secret)

    def __call__(self, text: str) -> str:
        return redact(text)


def without_credentials(text: str) -> str:
    """`https://x-access-token:TOKEN@github.com/...` -> `https://***@github.com/...` wherever it appears."""
    return redact(text)
