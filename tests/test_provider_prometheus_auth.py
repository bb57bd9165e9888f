"""A MetricTemplate's `secretRef` and `insecureSkipVerify` against a real Prometheus that enforces
basic auth and serves TLS with its own `--web.config.file` (bcrypt-hashed password, self-signed
certificate for 127.0.0.1). Secrets come from the environment or the secrets directory, as for alerts."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from gitcanary.analysis.providers import ProviderEnv, problems
from gitcanary.hooks.alerts import Secrets
from tests.metrics_servers import self_signed
from tests.prometheus_server import free_port
from tests.provider_checks import NS, check, secrets, template

USER, PASSWORD = "gitcanary", "correct horse battery staple"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The https address of a Prometheus that wants basic auth."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is installed by scripts/test.sh"
    work = tmp_path_factory.mktemp("secured-prometheus")
    cert, key = self_signed(work)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (work / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  {USER}: '{hashed}'\n"
    )
    (work / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={work / 'web.yml'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "log").open("w"),
    )
    address = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{address}/-/ready", verify=False, auth=(USER, PASSWORD)).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (work / "log").read_text()[-2000:]
            time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        process.wait(10)


QUERY = "vector(42)"


def test_basic_auth_from_the_environment_over_tls(secured: str) -> None:
    subject = template("t", QUERY, address=secured, secretRef={"name": "metrics"}, insecureSkipVerify=True)
    result = check(subject, env=ProviderEnv(secrets=secrets({"username": USER, "password": PASSWORD})))
    assert result.ok and result.value == 42, result.line


def test_basic_auth_from_the_secrets_directory(secured: str, tmp_path: Path) -> None:
    folder = tmp_path / NS / "prom-auth"
    folder.mkdir(parents=True)
    (folder / "username").write_text(USER + "\n")
    (folder / "password").write_text(PASSWORD + "\n")
    subject = template("t", QUERY, address=secured, secretRef={"name": "prom-auth"}, insecureSkipVerify=True)
    result = check(subject, env=ProviderEnv(secrets=Secrets(tmp_path, {})))
    assert result.ok and result.value == 42, result.line


def test_wrong_password_is_a_401_check_without_the_password(secured: str) -> None:
    subject = template("t", QUERY, address=secured, secretRef={"name": "metrics"}, insecureSkipVerify=True)
    result = check(subject, env=ProviderEnv(secrets=secrets({"username": USER, "password": "wrong-pass"})))
    assert not result.ok and "answered HTTP 401" in result.line
    assert "wrong-pass" not in result.line


def test_no_secret_ref_is_a_401_check(secured: str) -> None:
    result = check(template("t", QUERY, address=secured, insecureSkipVerify=True))
    assert not result.ok and "answered HTTP 401" in result.line


def test_half_a_secret_is_refused_before_any_request(secured: str) -> None:
    subject = template("t", QUERY, address=secured, secretRef={"name": "metrics"}, insecureSkipVerify=True)
    result = check(subject, env=ProviderEnv(secrets=secrets({"username": USER})))
    assert not result.ok and "secret metrics has no password" in result.line


def test_self_signed_certificate_fails_without_insecure_skip_verify(secured: str) -> None:
    subject = template("t", QUERY, address=secured, secretRef={"name": "metrics"})
    result = check(subject, env=ProviderEnv(secrets=secrets({"username": USER, "password": PASSWORD})))
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.line


def test_validate_problems_for_prometheus_templates() -> None:
    assert problems(template("t", QUERY, address="https://prom:9090")) == []
    assert problems(template("t", QUERY, address="prom:9090")) == [
        "spec.provider.address: 'prom:9090' is not an http(s) URL"
    ]
