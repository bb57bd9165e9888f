"""Session affinity (`analysis.sessionAffinity`): the cookies Flagger's Istio and Gateway API routers set.

While the canary takes traffic, responses from the canary carry `Set-Cookie: <cookieName>=<value>`
and a route ahead of the weighted one sends requests bearing that cookie to the canary alone; with
`primaryCookieName`, responses from the primary carry a second cookie (living one analysis interval)
that pins those users to the primary. Once the canary's weight is back to 0, a route matching the
last run's cookie expires it (`Max-Age=-1`). Flagger keeps a random cookie value in the Canary's
status; gitcanary derives it from the canary and the revision under analysis (`lastAppliedSpec`), so
a restarted reconciler renders the same cookie without storing a new field, and each new revision
gets a new one.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

from gitcanary.spec.models import Canary, SessionAffinity
from gitcanary.spec.status import CanaryStatus, Phase

COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"
_LETTERS = string.ascii_letters  # Flagger's randSeq draws 10 of these


@dataclass(frozen=True)
class SessionCookies:
    """`name=value` cookies for one render; empty strings where there is none."""

    canary: str = ""  # handed out by the canary while it takes traffic
    primary: str = ""  # handed out by the primary then (with primaryCookieName)
    previous: str = ""  # the last run's canary cookie, expired once the weight is back to 0


def cookie_value(canary_key: str, revision: str, role: str) -> str:
    """Ten letters, like Flagger's randSeq, fixed by the canary, the revision and the cookie's role."""
    digest = hashlib.sha256(f"{canary_key}\0{revision}\0{role}".encode()).digest()
    return "".join(_LETTERS[b % len(_LETTERS)] for b in digest[:10])


def session_cookies(canary: Canary, status: CanaryStatus) -> SessionCookies | None:
    """The cookies the routers render for `status`, None when the canary asks for no affinity."""
    affinity = canary.spec.analysis.session_affinity
    if affinity is None:
        return None
    revision = status.last_applied_spec
    if status.canary_weight > 0:
        primary = ""
        if affinity.primary_cookie_name:
            primary = f"{affinity.primary_cookie_name}={cookie_value(canary.key, revision, 'primary')}"
        return SessionCookies(
            canary=f"{affinity.cookie_name}={cookie_value(canary.key, revision, 'canary')}", primary=primary
        )
    if status.phase in (Phase.INITIALIZING, Phase.INITIALIZED) or status.phase.in_rollout:
        # No run has handed out a cookie for this revision yet (before the first step, or blue/green,
        # whose canary takes no weighted traffic).
        return SessionCookies()
    return SessionCookies(previous=f"{affinity.cookie_name}={cookie_value(canary.key, revision, 'canary')}")


def build_cookie(affinity: SessionAffinity, cookie: str, max_age: int) -> str:
    """Flagger's SessionAffinity.BuildCookie: the Set-Cookie value with the Canary's attributes."""
    out = f"{cookie}; Max-Age={max_age}"
    if affinity.domain:
        out += f"; Domain={affinity.domain}"
    if affinity.http_only:
        out += "; HttpOnly"
    if affinity.partitioned:
        out += "; Partitioned"
    if affinity.path:
        out += f"; Path={affinity.path}"
    if affinity.same_site:
        out += f"; SameSite={affinity.same_site}"
    if affinity.secure:
        out += "; Secure"
    return out


def cookie_regex(cookie: str) -> str:
    """The Cookie-header regex Flagger matches a `name=value` cookie with."""
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


def expired(cookie: str) -> str:
    """The Set-Cookie value that deletes `cookie` in the browser."""
    return f"{cookie}; Max-Age=-1"
