"""Where a credential may go: endpoints the operator configured, or a provider's official one.

The repository names what to measure, never where a credential goes. A MetricTemplate's
`provider.address` is written by anyone with push rights, so a request that carries a credential
(a secretRef's token or password, the AWS credential chain, Google application default credentials,
the cluster's service-account token) is sent only to

- an origin the operator configured: `--prometheus`, each `--credential-endpoint`, or the `address`
  key of the operator's own Secret that the template's secretRef names;
- or the provider's official endpoint (Datadog's, New Relic's, Google Cloud Monitoring's, the AWS
  CloudWatch endpoint of the region, a Splunk Observability realm's).

Anything else fails the check before the request is sent, naming `--credential-endpoint`, the option
that would allow it. `check` is the one decision, applied to the final URL of each request that
carries a credential (after any rewrite), so other URL transformations compose with it.
An origin is scheme, host and port: `https://host` and `https://host:443` are one origin, and a
path never widens or narrows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gitcanary.errors import AnalysisError

OPTION = "--credential-endpoint"
ENV = "GITCANARY_CREDENTIAL_ENDPOINTS"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Official endpoints, https only, by provider type. Each host here is run by the vendor and cannot
# be claimed by a customer (Dynatrace's `<tenant>.live.dynatrace.com` can, so it is not here: an
# operator names their tenant with --credential-endpoint or the Secret's `address`).
OFFICIAL: dict[str, tuple[re.Pattern[str], ...]] = {
    "datadog": (
        re.compile(r"api\.(?:(?:us3|us5|ap1|ap2)\.)?datadoghq\.com"),
        re.compile(r"api\.datadoghq\.eu"),
        re.compile(r"api\.ddog-gov\.com"),
    ),
    "newrelic": (re.compile(r"insights-api(?:\.eu)?\.newrelic\.com"),),
    "stackdriver": (re.compile(r"monitoring\.googleapis\.com"), re.compile(r"oauth2\.googleapis\.com")),
    "cloudwatch": (
        re.compile(r"monitoring(?:-fips)?\.[a-z]{2}(?:-gov)?-[a-z]+-\d\.amazonaws\.com(?:\.cn)?"),
    ),
    "splunk": (re.compile(r"(?:api|stream)\.[a-z]{2}\d\.signalfx\.com"),),
}


class CredentialNotBound(AnalysisError):
    """A request with a credential to an address the operator did not configure: not sent."""


def origin(url: str) -> str | None:
    """`scheme://host:port` of `url` (lower case, default port made explicit); None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def _shown(url: str) -> str:
    """`url` for a message: its origin, never userinfo, path or query (which may hold a token)."""
    found = origin(url)
    return found if found is not None else repr(url[:60])


@dataclass(frozen=True)
class Endpoints:
    """The origins the operator configured (`--prometheus`, `--credential-endpoint`...)."""

    origins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, urls: Iterable[str | None]) -> Endpoints:
        """The origins of `urls` (those that are not URLs are ignored: nothing to allow)."""
        found = {origin(url) for url in urls if url}
        return cls(frozenset(o for o in found if o is not None))

    def plus(self, *urls: str | None) -> Endpoints:
        return Endpoints(self.origins | Endpoints.of(urls).origins)

    def allows(self, url: str, kind: str) -> bool:
        """True when a credential of a `kind` provider may go to `url`."""
        found = origin(url)
        if found is None:
            return False
        if found in self.origins:
            return True
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        official = OFFICIAL.get(kind, ())
        return parts.scheme.lower() == "https" and any(p.fullmatch(host) for p in official)


def check(url: str, kind: str, endpoints: Endpoints, *, credential: str = "credentials") -> None:
    """Raise `CredentialNotBound` unless a `kind` provider may send `credential` to `url`.

    The one binding decision: call it on the final URL of every request that carries a credential.
    """
    if endpoints.allows(url, kind):
        return
    raise CredentialNotBound(
        f"{kind}: not sending {credential} to {_shown(url)}, an address the repository chose: "
        f"allow it with {OPTION} {_shown(url)} (or ${ENV}), or name it in the secret's address key"
    )


@dataclass(frozen=True)
class Binding:
    """The credential of one provider of type `kind`, bound to what `endpoints` (and the type's
    official endpoints) allow: `check(url)` before each request that carries it."""

    kind: str
    endpoints: Endpoints
    credential: str = "credentials"

    def check(self, url: str) -> None:
        check(url, self.kind, self.endpoints, credential=self.credential)


__all__ = ["ENV", "OFFICIAL", "OPTION", "Binding", "CredentialNotBound", "Endpoints", "check", "origin"]
