"""The endpoints the operator configured for `run`: where a credential may go (see
`gitcanary.analysis.providers.endpoints`)."""

from __future__ import annotations

from gitcanary.analysis.providers.endpoints import Endpoints
from gitcanary.service.settings import Settings


def credential_endpoints(settings: Settings) -> Endpoints:
    """`--prometheus` (its userinfo is the operator's) and every `--credential-endpoint`."""
    return Endpoints.of([settings.prometheus, *settings.credential_endpoints])


__all__ = ["credential_endpoints"]
