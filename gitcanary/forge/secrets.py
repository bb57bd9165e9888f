"""Credentials read from the environment or a file, kept out of logs, messages and exceptions."""

from __future__ import annotations

import re
from pathlib import Path

from gitcanary.forge.base import ForgeError

REDACTED = "***"


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
    """Replaces every known secret in a text; applied to anything gitcanary writes or raises."""

    def __init__(self, *secrets: str | None) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def without_credentials(text: str) -> str:
    """`https://x-access-token:TOKEN@github.com/...` -> `https://***@github.com/...` wherever it appears."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)
