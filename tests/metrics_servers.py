"""Real metrics servers from Debian packages, started by tests on loopback ports.

- VictoriaMetrics (`victoria-metrics`): speaks Prometheus' query API; fed through its
  `/api/v1/import/prometheus` endpoint with explicit timestamps.
- InfluxDB 1.x (`influxdb`): InfluxQL over `/query`, fed with line protocol over `/write`.
scripts/test.sh installs both; a test fails (never skips) when one is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.prometheus_server import free_port


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is installed by scripts/test.sh (Debian package)"
    return found


def _wait(url: str, log: Path, ok: tuple[int, ...] = (200, 204)) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=2).status_code in ok:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-2000:] if log.exists() else "no log"
        time.sleep(0.2)


@contextmanager
def victoria_metrics(workdir: Path) -> Iterator[str]:
    port = free_port()
    log = workdir / "vm.log"
    process = subprocess.Popen(
        [
            _binary("victoria-metrics"),
            f"-storageDataPath={workdir / 'vm-data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-search.disableCache",
            "-search.latencyOffset=0s",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{address}/health", log)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def vm_import(address: str, lines: list[str]) -> None:
    """Prometheus exposition lines with millisecond timestamps, made searchable at once."""
    response = httpx.post(f"{address}/api/v1/import/prometheus", content="\n".join(lines) + "\n", timeout=10)
    response.raise_for_status()
    httpx.get(f"{address}/internal/force_flush", timeout=10).raise_for_status()


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


def influx_query(address: str, q: str, auth: tuple[str, str] | None = None) -> None:
    httpx.post(f"{address}/query", params={"q": q}, auth=auth, timeout=10).raise_for_status()


def influx_write(address: str, database: str, lines: list[str], auth: tuple[str, str] | None = None) -> None:
    response = httpx.post(
        f"{address}/write",
        params={"db": database, "precision": "s"},
        content="\n".join(lines),
        auth=auth,
        timeout=10,
    )
    response.raise_for_status()
