"""Real metrics servers from Debian packages, started by tests on loopback ports.

- VictoriaMetrics (`victoria-metrics`): speaks Prometheus' query API; fed through its
  `/api/v1/import/prometheus` endpoint with explicit timestamps.
- InfluxDB 1.x (`influxdb`): InfluxQL over `/query`, fed with line protocol over `/write`.
scripts/test.sh installs both; a test fails (never skips) when one is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.prometheus_server import free_port


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is installed by scripts/test.sh (Debian package)"
    return found


def _wait(url: str, log: Path, ok: tuple[int, ...] = (200, 204), auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=2, verify=False, auth=auth).status_code in ok:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-2000:] if log.exists() else "no log"
        time.sleep(0.2)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, signed by themselves (so only insecureSkipVerify trusts them)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@contextmanager
def victoria_metrics(
    workdir: Path, *, basic_auth: tuple[str, str] | None = None, tls: bool = False
) -> Iterator[str]:
    """VictoriaMetrics on a loopback port; with `basic_auth` and `tls` it enforces both itself."""
    port = free_port()
    log = workdir / "vm.log"
    args = [
        _binary("victoria-metrics"),
        f"-storageDataPath={workdir / 'vm-data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-search.disableCache",
        "-search.latencyOffset=0s",
    ]
    if basic_auth:
        args += [f"-httpAuth.username={basic_auth[0]}", f"-httpAuth.password={basic_auth[1]}"]
    if tls:
        cert, key = self_signed(workdir)
        args += ["-tls", f"-tlsCertFile={cert}", f"-tlsKeyFile={key}"]
    process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)
    address = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        _wait(f"{address}/health", log, auth=basic_auth)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def vm_import(address: str, lines: list[str], auth: tuple[str, str] | None = None) -> None:
    """Prometheus exposition lines with millisecond timestamps, made searchable at once."""
    content = "\n".join(lines) + "\n"
    options: dict[str, object] = {"timeout": 10, "verify": False, "auth": auth}
    httpx.post(f"{address}/api/v1/import/prometheus", content=content, **options).raise_for_status()  # type: ignore[arg-type]
    httpx.get(f"{address}/internal/force_flush", **options).raise_for_status()  # type: ignore[arg-type]


@contextmanager
def influxdb(workdir: Path, *, auth: bool = False) -> Iterator[str]:
    port = free_port()
    config = workdir / "influxdb.conf"
    data = workdir / "influx"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
        f'[meta]\n  dir = "{data}/meta"\n'
        f'[data]\n  dir = "{data}/data"\n  wal-dir = "{data}/wal"\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  auth-enabled = {"true" if auth else "false"}\n'
        f"  log-enabled = false\n"
    )
    log = workdir / "influxd.log"
    process = subprocess.Popen(
        [_binary("influxd"), "-config", str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    address = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{address}/ping", log)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def influx_query(address: str, q: str, auth: tuple[str, str] | None = None, db: str | None = None) -> None:
    """Run one InfluxQL statement; a statement error (answered with 200) fails too."""
    params = {"q": q, **({"db": db} if db else {})}
    response = httpx.post(f"{address}/query", params=params, auth=auth, timeout=10)
    response.raise_for_status()
    errors = [r["error"] for r in response.json().get("results", []) if "error" in r]
    assert not errors, errors


def influx_write(address: str, database: str, lines: list[str], auth: tuple[str, str] | None = None) -> None:
    response = httpx.post(
        f"{address}/write",
        params={"db": database, "precision": "s"},
        content="\n".join(lines),
        auth=auth,
        timeout=10,
    )
    response.raise_for_status()


GRAPHITE_SETTINGS = """\
SECRET_KEY = "gitcanary-tests-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STORAGE_DIR = "{work}/storage"
WHISPER_DIR = "{work}/storage/whisper"
CERES_DIR = "{work}/storage/ceres"
RRD_DIR = "{work}/storage/rrd"
LOG_DIR = "{work}/log"
INDEX_FILE = "{work}/storage/index"
STANDARD_DIRS = [WHISPER_DIR]
CARBONLINK_HOSTS = ["127.0.0.1:{cache_query}"]
DATABASES = {{"default": {{"NAME": "{work}/graphite.db", "ENGINE": "django.db.backends.sqlite3"}}}}
TAGDB = ""
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
DEFAULT_XFILES_FACTOR = 0
"""

CARBON_CONF = """\
[cache]
STORAGE_DIR = {work}/storage/
LOCAL_DATA_DIR = {work}/storage/whisper/
WHITELISTS_DIR = {work}/storage/lists/
CONF_DIR = {work}/
LOG_DIR = {work}/log/
PID_DIR = {work}/
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {cache_query}
LOG_LISTENER_CONN_SUCCESS = False
"""

# graphite-web is Debian's Python package (python3-django): it runs under Debian's own python3.
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class Graphite:
    url: str
    line_port: int

    def send(self, lines: list[str]) -> None:
        """Plaintext protocol lines (`path value timestamp`) to carbon-cache."""
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=10) as conn:
            conn.sendall(("\n".join(lines) + "\n").encode())


@contextmanager
def graphite(workdir: Path) -> Iterator[Graphite]:
    """carbon-cache (Debian's `graphite-carbon`) feeding graphite-web (`graphite-web`) by its
    cache query port and whisper files, on loopback ports; retention 10s for a day."""
    carbon = _binary("carbon-cache")
    assert Path(SYSTEM_PYTHON).exists()
    line, pickle, cache_query, web = free_port(), free_port(), free_port(), free_port()
    for folder in ("storage/whisper", "storage/lists", "log", "settings"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    values = {"work": workdir, "line": line, "pickle": pickle, "cache_query": cache_query}
    (workdir / "carbon.conf").write_text(CARBON_CONF.format(**values))
    (workdir / "storage-schemas.conf").write_text("[default]\npattern = .*\nretentions = 10s:1d\n")
    (workdir / "settings" / "gitcanary_graphite_settings.py").write_text(GRAPHITE_SETTINGS.format(**values))
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(workdir / "settings"),
        "DJANGO_SETTINGS_MODULE": "graphite.settings",
        "GRAPHITE_SETTINGS_MODULE": "gitcanary_graphite_settings",
    }
    carbon_log = workdir / "carbon.out"
    cache = subprocess.Popen(
        [SYSTEM_PYTHON, carbon, f"--config={workdir / 'carbon.conf'}", "--debug", "start"],
        stdout=carbon_log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    web_log = workdir / "web.out"
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "django", "migrate", "--run-syncdb", "-v0"],
        env=env,
        check=True,
        stdout=web_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = subprocess.Popen(
        [SYSTEM_PYTHON, "-m", "django", "runserver", "--noreload", "--nothreading", f"127.0.0.1:{web}"],
        env=env,
        stdout=web_log.open("a"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"http://127.0.0.1:{web}/render?target=none&format=json", web_log)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", line), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, carbon_log.read_text()[-2000:]
                time.sleep(0.2)
        yield Graphite(f"http://127.0.0.1:{web}", line)
    finally:
        for process in (server, cache):
            process.terminate()
            process.wait(10)
