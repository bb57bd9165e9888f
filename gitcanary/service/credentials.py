"""The endpoints the operator configured for `run`: where a credential may go (see
`gitcanary.analysis.providers.endpoints`)."""

from __future__ import annotations

from gitcanary.analysis.providers.endpoints import Endpoints
from gitcanary.core import urlmap
from gitcanary.service.settings import Settings


def credential_endpoints(settings: Settings) -> Endpoints:
    """`--prometheus` (its userinfo is the operator's), every `--credential-endpoint`, and every
    `--rewrite-url` destination: the operator wrote each of them, so a repository address rewritten
    there reaches a service the operator chose."""
    return Endpoints.of([settings.prometheus, *settings.credential_endpoints, *urlmap.destinations()])


__all__ = ["credential_endpoints"]
