"""A world of planted credentials and generated repositories, for the credential property tests.

`Planted` puts a distinct canary value in every credential source gitcanary can read: the secrets
directory (and files outside it that a `../` or a symlink would reach), `GITCANARY_SECRET_*`
variables, the AWS credential chain (environment), a Google application-default file, forge tokens,
a git credential store, and the userinfo of the operator's `--prometheus`. `repositories()` is a
hypothesis strategy of repository content whose every address field (MetricTemplates of every
provider type, AlertProviders, webhooks, `metricsServer`, `gitcanary.io/source-repo`) points at a
capture server standing for an address the repository chose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from gitcanary.analysis.providers import MODULES
from gitcanary.redaction import spellings

NS = "prod"
# Valid Secret names: files in the store, a variable, and one whose `address` key the operator set.
STORE, ENV_SECRET, ROUTED = "metrics", "envsecret", "routed"
# Names a repository writer may try: escapes, absolute paths, a symlink out of the store.
HOSTILE = (
    "../../outside/loot",
    "../outside",
    "/etc/passwd",
    "linked",
    "a/../../outside/loot",
    "..",
    "missing",
)
KEYS = (
    "token",
    "username",
    "password",
    "datadog_api_key",
    "datadog_application_key",
    "newrelic_query_key",
    "serviceAccountKey",
)
# Keys that are identifiers, not credentials: they go into a URL path by design (an account, a project).
IDENTIFIERS = {"newrelic_account_id": "1234567", "project": "acme-prod", "org": "acme", "db": "metrics"}
QUERIES = {
    "prometheus": "up",
    "datadog": "avg:requests{*}",
    "cloudwatch": json.dumps([{"Id": "e", "Expression": "SUM(x)", "Label": "x"}]),
    "newrelic": "SELECT count(*) FROM Transaction",
    "graphite": "sumSeries(x)",
    "influxdb": "SELECT mean(v) FROM x",
    "dynatrace": "builtin:service.errors.total.rate",
    "stackdriver": "fetch k8s_container | within 1m",
    "splunk": "data('x').publish()",
    "keptn": "keptnmetric/prod/x",
    "externalmetrics": "prod/x",
}


@dataclass
class Planted:
    """Every planted value, by where it was planted, and the environment that holds them."""

    root: Path
    operator_url: str
    values: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (user, password) sent as Basic auth
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def prometheus(self) -> str:
        """The operator's --prometheus, with a planted password in its userinfo."""
        return self.operator_url.replace("http://", f"http://op:{self.values['prometheus-password']}@")

    def forms(self) -> set[str]:
        """Each planted value in every spelling it could travel in, and each Basic auth header."""
        found = {form for value in self.values.values() for form in spellings(value) if len(form) >= 8}
        for user, password in self.pairs:
            found.add(base64.b64encode(f"{user}:{password}".encode()).decode())
        return found

    def leaks(self, text: str) -> list[str]:
        return sorted(form for form in self.forms() if form in text)


def plant(root: Path, operator_url: str, tag: str = "") -> Planted:
    planted = Planted(root, operator_url)
    values = planted.values

    def value(source: str) -> str:
        digest = hashlib.sha256(f"{root}:{source}".encode()).hexdigest()[:12]
        values[source] = f"cAnArY{tag}-{source}-{digest}"
        return values[source]

    # The store: two secrets, every key; one of them routed by the operator to its own backend.
    for name in (STORE, ROUTED):
        folder = planted.secrets_dir / NS / name
        folder.mkdir(parents=True)
        for key in KEYS:
            (folder / key).write_text(value(f"{name}-{key}"))
        for key, identifier in IDENTIFIERS.items():
            (folder / key).write_text(identifier)
    (planted.secrets_dir / NS / ROUTED / "address").write_text(operator_url)
    planted.pairs += [(values[f"{n}-username"], values[f"{n}-password"]) for n in (STORE, ROUTED)]
    # Outside the store: what `../` or a symlink would reach (a pod's service-account token).
    for where in ("outside/loot", "outside"):
        folder = root / where
        folder.mkdir(parents=True, exist_ok=True)
        for key in ("token", "password", "username", "address"):
            (folder / key).write_text(value(f"{where}-{key}") if key != "address" else "http://127.0.0.1:9/")
    os.symlink(root / "outside/loot", planted.secrets_dir / NS / "linked")
    # The environment: a secret, the AWS chain, Google ADC, forge tokens.
    env = planted.environ
    for key in KEYS:
        env[f"GITCANARY_SECRET_PROD_ENVSECRET_{key.upper()}"] = value(f"env-{key}")
    for key, identifier in IDENTIFIERS.items():
        env[f"GITCANARY_SECRET_PROD_ENVSECRET_{key.upper()}"] = identifier
    planted.pairs.append((values["env-username"], values["env-password"]))
    env["AWS_ACCESS_KEY_ID"] = "AKIA" + value("aws-key-id")[-16:].upper().replace("-", "X")
    values["aws-key-id"] = env["AWS_ACCESS_KEY_ID"]
    env["AWS_SECRET_ACCESS_KEY"] = value("aws-secret")
    env["AWS_SESSION_TOKEN"] = value("aws-session")
    env["AWS_ENDPOINT_URL"] = operator_url  # the operator's AWS configuration names its endpoint
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    adc = root / "adc.json"
    adc.write_text(json.dumps(service_account(value("google-key-id"), f"{operator_url}/token")))
    values["google-private-key"] = json.loads(adc.read_text())["private_key"]
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(adc)
    env["GOOGLE_CLOUD_PROJECT"] = "acme-prod"
    value("google-access-token")  # what the operator's token endpoint hands out
    env["GITCANARY_FORGE_TOKEN"] = value("forge-token")
    env["GITCANARY_GITHUB_TOKEN"] = value("github-token")
    value("prometheus-password")
    value("git-password")
    return planted


def service_account(key_id: str, token_uri: str) -> dict[str, str]:
    """A Google service-account key file (a fresh RSA key) whose token endpoint is `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "acme-prod",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": "gitcanary@acme-prod.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


def git_credentials(planted: Planted, home: Path, capture_url: str) -> None:
    """A git credential store (in `home`) that holds a planted password for the capture server's
    host: were git ever pointed there, it would send it."""
    home.mkdir(parents=True, exist_ok=True)
    store = home / ".git-credentials"
    host = capture_url.removeprefix("http://")
    store.write_text(f"http://gitcanary:{planted.values['git-password']}@{host}\n")
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = store --file {store}\n")
    planted.pairs.append(("gitcanary", planted.values["git-password"]))


# -- generated repository content ---------------------------------------------------------------


def _address(capture: str) -> st.SearchStrategy[str | None]:
    paths = st.sampled_from(["", "/", "/api", "/v1/query?x=1", "/prom/", "/%2e%2e/x"])
    return st.one_of(
        st.none(),
        st.builds(lambda p: capture + p, paths),
        st.builds(lambda p: capture.replace("127.0.0.1", "localhost") + p, paths),
        st.builds(lambda p: capture.replace("http://", "http://repo:own@") + p, paths),
    )


def templates(capture: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    secret = st.one_of(st.none(), st.sampled_from((STORE, ENV_SECRET, ROUTED, *HOSTILE)))
    one = st.builds(
        lambda kind, address, ref, headers: {
            "kind": kind,
            "address": address,
            "secret": ref,
            "headers": headers,
        },
        st.sampled_from(sorted(MODULES)),
        _address(capture),
        secret,
        st.sampled_from([None, {"X-Scope-OrgID": ["tenant"]}]),
    )
    # Every provider type at least once, then more of any.
    every = [
        st.builds(
            lambda a, r, k=kind: {"kind": k, "address": a, "secret": r, "headers": None},
            _address(capture),
            secret,
        )
        for kind in sorted(MODULES)
    ]
    return st.builds(lambda fixed, more: [*fixed, *more], st.tuples(*every), st.lists(one, max_size=4))


def alert_providers(capture: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.builds(
        lambda kind, address, ref: {"kind": kind, "address": address, "secret": ref},
        st.sampled_from(["slack", "msteams", "discord", "rocket", "gchat", "generic"]),
        _address(capture),
        st.one_of(st.none(), st.sampled_from((STORE, ENV_SECRET, *HOSTILE))),
    )
    return st.lists(one, min_size=1, max_size=3)


def webhooks(capture: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    kinds = ["confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion",
             "post-rollout", "rollback", "event"]  # fmt: skip
    one = st.builds(
        lambda kind, address: {"type": kind, "url": address or capture},
        st.sampled_from(kinds),
        _address(capture),
    )
    return st.lists(one, min_size=1, max_size=4)


@dataclass(frozen=True)
class Repository:
    templates: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    hooks: list[dict[str, Any]]
    metrics_server: str | None


def repositories(capture: str) -> st.SearchStrategy[Repository]:
    return st.builds(
        Repository, templates(capture), alert_providers(capture), webhooks(capture), _address(capture)
    )


def template_doc(index: int, spec: dict[str, Any]) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": spec["kind"]}
    if spec["address"]:
        provider["address"] = spec["address"]
    if spec["secret"]:
        provider["secretRef"] = {"name": spec["secret"]}
    if spec["headers"]:
        provider["headers"] = spec["headers"]
    if spec["kind"] == "cloudwatch":
        provider["region"] = "us-east-1"
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": f"t{index}-{spec['kind']}", "namespace": NS},
        "spec": {"provider": provider, "query": QUERIES[spec["kind"]]},
    }


def alert_doc(index: int, spec: dict[str, Any]) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": "slack" if spec["kind"] == "generic" else spec["kind"]}
    if spec["address"]:
        provider["address"] = spec["address"]
    if spec["secret"]:
        provider["secretRef"] = {"name": spec["secret"]}
    meta: dict[str, Any] = {"name": f"alert{index}", "namespace": NS}
    if spec["kind"] == "generic":
        meta["annotations"] = {"gitcanary.io/provider-type": "generic"}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": meta, "spec": provider}
