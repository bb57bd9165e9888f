"""The one redaction of credentials, applied at every boundary where text leaves gitcanary.

Commit messages and trailers, pull-request titles, bodies and comments, notifications, log lines
(text and JSON), CLI output and errors, `/readyz` and `/metrics`, audit reports: all of them pass
their text through `redact`. It masks

- the userinfo of any URL (`https://user:token@host/` -> `https://***@host/`), whatever the scheme;
- token-like query parameters (`?access_token=...`) and `Authorization:` header values;
- every secret gitcanary was configured with (`register`): forge tokens, webhook secrets, alert
  provider secrets, and the user and password found in a configured URL, in every spelling they
  may reach a message in: as is, percent-decoded, percent-encoded (`quote`, `quote_plus`), escaped
  in JSON or HTML, base64 (standard and URL-safe), and the `Authorization: Basic` value of a user
  and password (`register_basic`), which a server may echo back in an error.

A foundation module: it imports nothing from gitcanary, so every layer can use it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit

REDACTED = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words
_PATTERNS = (
    (re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"<>]+@"), rf"\g<keep>{REDACTED}@"),
    (
        re.compile(
            r"(?P<keep>[?&;](?:access_token|token|password|passwd|secret|api_key|apikey|key|auth)=)[^&\s'\"]+",
            re.I,
        ),
        rf"\g<keep>{REDACTED}",
    ),
    (re.compile(r"(?P<keep>authorization:\s*(?:bearer|basic|token)?\s*)\S+", re.I), rf"\g<keep>{REDACTED}"),
)
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(*secrets: str | None) -> None:
    """Mask these values wherever they appear from now on (in this process)."""
    global _secrets
    found = set(_secrets)
    for secret in secrets:
        if not secret:
            continue
        for form in spellings(secret):
            if len(form) >= MIN_SECRET:
                found.add(form)
    with _lock:
        _secrets = tuple(sorted(found, key=len, reverse=True))  # longest first: no partial leftovers


def spellings(secret: str) -> set[str]:
    """The ways `secret` can be written in a message: as is, and encoded the ways a URL, a JSON or
    HTML document, or an HTTP header would carry it."""
    found = set()
    for plain in {secret, secret.strip(), unquote(secret)}:
        raw = plain.encode()
        found |= {
            plain,
            quote(plain, safe=""),
            quote_plus(plain, safe=""),
            json.dumps(plain)[1:-1],
            html.escape(plain),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
        }
    return found


def register_basic(user: str | None, password: str | None) -> None:
    """Mask the `Authorization: Basic` value of `user`:`password` (and its encodings): an HTTP
    client sends it, and a server that echoes it back must not leak it into a failed check."""
    if user is None or password is None:
        return
    register(base64.b64encode(f"{user}:{password}".encode()).decode(), password)


def register_url(url: str | None) -> None:
    """Mask the credentials a URL carries (user and password of its userinfo), wherever they appear."""
    if not url or "@" not in url:
        return
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return
    if "@" not in parts.netloc:
        return
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    # HTTP clients send the userinfo as `Authorization: Basic base64(user:password)`: a server that
    # echoes that value back (in an error body that becomes a failed check) must not leak it either.
    basic = base64.b64encode(unquote(userinfo).encode()).decode()
    register(userinfo, password or None, basic)
    if not password and user not in ("git", "ssh", "oauth2", "x-access-token"):
        register(user)  # a bare token as the user name: https://TOKEN@host/


def redact(text: str) -> str:
    """`text` with every credential masked."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: object) -> object:
    """`redact` applied to every string inside a JSON-like value (notification payloads)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


__all__ = ["REDACTED", "redact", "redact_value", "register", "register_basic", "register_url", "spellings"]
