"""`gitcanary run` as a person starts it on a laptop: text logs on a terminal, JSON in a pipe (a pod's
log), and its HTTP endpoints on this machine only unless told otherwise."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import ROOT, ConfigRepo
from test_cli_look import drained

RUN = ["run", "--once", "--settle", "0", "--cluster", "off", "--prometheus", "http://127.0.0.1:9"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITCANARY_")}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm"}


def _stderr_on_terminal(args: list[str], cwd: Path) -> str:
    """stderr on a pseudo-terminal (stdout piped): what a person running it sees of the logs."""
    controller, worker = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=worker, env=_env()
    )
    os.close(worker)
    shown = drained(controller)
    proc.communicate(timeout=120)
    os.close(controller)
    return shown


def test_logs_are_text_on_a_terminal_and_json_in_a_pipe(config_repo: ConfigRepo, tmp_path: Path) -> None:
    args = [*RUN, "--repo", str(config_repo.remote), "--workdir", str(tmp_path / "w")]
    shown = _stderr_on_terminal(args, tmp_path)
    assert "no cluster access" in shown
    assert not any(line.lstrip().startswith("{") for line in shown.splitlines()), shown
    piped = subprocess.run(
        [sys.executable, "-m", "gitcanary", *args], cwd=tmp_path, capture_output=True, text=True, env=_env()
    )
    records = [json.loads(line) for line in piped.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "message"} <= set(r) for r in records), piped.stderr
    # Either can be forced: json on a terminal, text in a pipe.
    forced = _stderr_on_terminal([*args, "--log-format", "json"], tmp_path)
    assert all(json.loads(line) for line in forced.splitlines() if line.strip())
    text = subprocess.run(
        [sys.executable, "-m", "gitcanary", *args, "--log-format", "text"],
        cwd=tmp_path, capture_output=True, text=True, env=_env(),
    )  # fmt: skip
    assert "no cluster access" in text.stderr and not text.stderr.lstrip().startswith("{")


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on `port`."""
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = row.split()[1], row.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
            found.add(address)
    return found


def test_run_listens_on_this_machine_only_by_default(config_repo: ConfigRepo, tmp_path: Path) -> None:
    args = ["run", "--repo", str(config_repo.remote), "--workdir", str(tmp_path / "w"), "--cluster", "off"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", *args, "--log-format", "json", "--leader-election", "off"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        said = next((line for line in proc.stderr if "serving" in line or "--listen" in line), "")
        # Either it serves on 127.0.0.1:8080, or that port is taken here and it says so: the default
        # named, either way, is this machine's loopback address, not every interface.
        if "serving" in said:
            assert "http://127.0.0.1:8080" in json.loads(said)["message"]
            assert httpx.get("http://127.0.0.1:8080/healthz", timeout=5).status_code == 200
            # The kernel's own table of listening sockets: 127.0.0.1:8080, not 0.0.0.0:8080.
            assert _listeners(8080) == {"0100007F"}
        else:
            assert "--listen 127.0.0.1:8080" in said, said
    finally:
        proc.terminate()
        proc.wait(timeout=30)
