"""Google Cloud Monitoring (Flagger's `stackdriver`), through `projects.timeSeries.query` (MQL).

Follows Flagger's `pkg/metrics/providers/stackdriver.go`: a `secretRef` must hold `project` and may
hold `serviceAccountKey` (a service account's JSON key); without a key, application default
credentials are used (`GOOGLE_APPLICATION_CREDENTIALS`, or the workload identity of the pod), and
without a secretRef the project is the one those credentials name. The value is the first value of
the first point of the first time series; no series, no point or no value is no data. The window is
the query's own (`| within {{ interval }}`), as in Flagger. Where Flagger reads a non-double value
as 0, gitcanary reads an int64 value as its number and refuses any other type.
`provider.address`, which Flagger ignores, is ignored here too unless the operator allowed that
endpoint (`--credential-endpoint`, or the `address` key of the template's Secret): Google
credentials go to `https://monitoring.googleapis.com` or to an endpoint the operator named, never to
one the repository chose (see `endpoints`).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from gitcanary.analysis.providers.base import (
    Credentials,
    Limits,
    NoDataError,
    ProviderEnv,
    Target,
    header_values,
)
from gitcanary.analysis.providers.http import HttpPool, fetch, json_body, redact_url
from gitcanary.analysis.providers.numbers import number
from gitcanary.errors import AnalysisError
from gitcanary.redaction import register
from gitcanary.spec.models import MetricTemplateProvider

DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
SCOPES = ["https://www.googleapis.com/auth/monitoring.read"]


class StackdriverProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        try:
            import google.auth
            import google.auth.exceptions
            from google.oauth2 import service_account
        except ImportError as exc:  # pragma: no cover - the extra is part of the install
            raise AnalysisError(
                "stackdriver needs google-auth (pip install 'gitcanary[stackdriver]')"
            ) from exc
        credentials = Credentials(target, env.secrets)
        project = credentials.need("project") if credentials.present else None
        key = credentials.get("serviceAccountKey") if credentials.present else None
        if key:
            try:
                info = json.loads(key)
                self.google: Any = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            except (ValueError, KeyError) as exc:
                raise AnalysisError(
                    "stackdriver serviceAccountKey is not a service account JSON key"
                ) from exc
        else:
            try:
                self.google, default_project = google.auth.default(scopes=SCOPES)
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise AnalysisError(f"stackdriver: no application default credentials ({exc})") from exc
            project = project or default_project
            # What an application-default file holds (a user's refresh token and client secret).
            register(getattr(self.google, "refresh_token", None), getattr(self.google, "client_secret", None))
        if not project:
            raise AnalysisError("stackdriver has no project (secretRef key project)")
        # Flagger ignores the address; gitcanary follows it only where the operator allows.
        chosen = target.address if env.endpoints.allows(target.address or "", "stackdriver") else None
        address = (chosen or DEFAULT_ADDRESS).rstrip("/")
        self.bound = env.binding(target, "Google credentials")
        self.url = f"{address}/v3/projects/{quote(project, safe='')}/timeSeries:query"
        self.what = f"stackdriver at {redact_url(address)}"
        self.headers = header_values(target.spec.headers)
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)
        self.lock = threading.Lock()

    def _token(self) -> str:
        from google.auth.exceptions import GoogleAuthError

        with self.lock:
            if not self.google.valid:
                try:
                    self.google.refresh(_bounded_request(self.limits))
                except GoogleAuthError as exc:
                    # The token endpoint's reason, without any signed assertion (a JWT) it may echo:
                    # that grant is a credential for an hour. Refresh tokens are registered above.
                    said = _JWT.sub("***", str(exc.args[0] if exc.args else exc))[:200]
                    refused = f"stackdriver credentials refused by the token endpoint: {said}"
                    raise AnalysisError(refused) from exc
            token: str = self.google.token
            register(token)
            return token

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        headers = {**self.headers, "Authorization": f"Bearer {self._token()}"}
        response = fetch(
            self.http,
            "POST",
            self.url,
            json={"query": query},
            headers=headers,
            limits=self.limits,
            what=self.what,
            bound=self.bound,
        )
        body = json_body(response, self.what)
        if not isinstance(body, dict):
            raise AnalysisError(f"{self.what} answered something that is not a query result")
        series = body.get("timeSeriesData") or []
        if not isinstance(series, list):
            raise AnalysisError(f"{self.what} answered timeSeriesData that is not a list")
        if not series:
            raise NoDataError("stackdriver returned no time series")
        points = series[0].get("pointData") if isinstance(series[0], dict) else None
        if not points:
            raise NoDataError("stackdriver time series has no points")
        values = points[0].get("values") if isinstance(points[0], dict) else None
        if not values or not isinstance(values, list) or not isinstance(values[0], dict):
            raise NoDataError("stackdriver point has no values")
        typed = values[0]
        for key in ("doubleValue", "int64Value"):
            if key in typed:
                value = number(typed, key, "stackdriver value")
                if value is None:
                    raise NoDataError("stackdriver value is NaN")
                return value
        raise AnalysisError(f"stackdriver value is not a number: {sorted(typed)}")

    def close(self) -> None:
        pass


def _bounded_request(limits: Limits) -> Any:
    """google-auth's requests transport with our deadline (its own default is 120 s)."""
    import google.auth.transport.requests

    class Bounded(google.auth.transport.requests.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: Any = None,
            headers: Any = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> Any:
            return super().__call__(url, method, body, headers, timeout=limits.deadline, **kwargs)

    return Bounded()


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> StackdriverProvider:
    return StackdriverProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    return []


def warnings(spec: MetricTemplateProvider, query: str) -> list[str]:
    if spec.address:
        return [
            f"spec.provider.address: stackdriver ignores it (as Flagger does) and queries {DEFAULT_ADDRESS}, "
            "unless the operator allows that endpoint with --credential-endpoint"
        ]
    return []
