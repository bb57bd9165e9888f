"""The CLI as kubectl users expect it: `get canaries` columns and outputs, phase colours only on a
terminal (none piped or with NO_COLOR), tables within 80 columns, and quiet library logs."""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ConfigRepo, git

from gitcanary.service import logs

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# SGR codes that set a colour (30-38, 90-97 foreground); NO_COLOR allows bold (no-color.org).
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[0-9;]*m")


def gitcanary(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    command = [sys.executable, "-m", "gitcanary", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=full, timeout=120)


def on_terminal(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run with stdout on a pseudo-terminal (80 columns, as a fresh pty reports none)."""
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "FORCE_COLOR")}
    full.update({"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **(env or {})})
    controller, worker = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", *args], cwd=cwd, stdout=worker, stderr=worker, env=full
    )
    os.close(worker)
    shown = drained(controller)
    proc.wait(timeout=120)
    os.close(controller)
    return shown


def drained(controller: int) -> str:
    """All a pseudo-terminal's other end wrote, until it closed (Linux reports that as EIO)."""
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture
def initialized(config_repo: ConfigRepo) -> ConfigRepo:
    out = gitcanary("init", "apps/backend", "--switch", cwd=config_repo.human)
    assert out.returncode == 0, out.stderr
    git("push", "-q", cwd=config_repo.human)  # get and status read the checkout's origin remote
    return config_repo


def _status_file(repo: Path) -> dict[str, object]:
    """The oracle: the status file as YAML, read without gitcanary."""
    [path] = list(repo.rglob("gitcanary-status.yaml"))
    return yaml.safe_load(path.read_text())["status"]


def test_get_canaries_lists_what_the_status_file_says(initialized: ConfigRepo) -> None:
    expected = _status_file(initialized.human)
    result = gitcanary("get", "canaries", "--repo", str(initialized.human), cwd=initialized.human)
    assert result.returncode == 0, result.stderr
    header, row = [line.split() for line in result.stdout.strip().splitlines()]
    assert header == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert row[:4] == ["prod", "backend", expected["phase"], str(expected.get("canaryWeight", 0))]
    assert row[4].startswith(str(expected["lastTransitionTime"])[:16].replace(" ", "T"))

    wide = gitcanary("get", "canaries", "-o", "wide", cwd=initialized.human).stdout.splitlines()
    canary = yaml.safe_load((initialized.human / "apps/backend/canary.yaml").read_text())
    wide_columns = ["FAILEDCHECKS", "INTERVAL", "MIRROR", "STEPWEIGHT", "STEPWEIGHTS", "MAXWEIGHT"]
    assert wide[0].split()[5:] == wide_columns
    assert canary["spec"]["analysis"]["interval"] in wide[1].split()


def test_get_canaries_json_and_yaml_are_kubectl_lists(initialized: ConfigRepo) -> None:
    expected = _status_file(initialized.human)
    for output, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        result = gitcanary("get", "canaries", "-o", output, cwd=initialized.human)
        listing = load(result.stdout)
        assert listing["kind"] == "List"
        [item] = listing["items"]
        assert item["kind"] == "Canary" and item["metadata"] == {"name": "backend", "namespace": "prod"}
        assert item["status"]["phase"] == expected["phase"]
        assert item["spec"]["targetRef"]["name"] == "backend"
    # a URL (here the bare remote, after a push) is cloned and read the same way
    assert git("push", "-q", cwd=initialized.human) == ""
    args = ("get", "canaries", "--repo", str(initialized.remote), "-o", "json")
    remote = gitcanary(*args, cwd=initialized.human)
    assert json.loads(remote.stdout)["items"][0]["status"]["phase"] == expected["phase"]


def test_get_canaries_filters_by_namespace(initialized: ConfigRepo) -> None:
    none = gitcanary("get", "canaries", "-n", "staging", cwd=initialized.human)
    assert none.returncode == 0 and none.stdout == ""
    assert "No canaries found in staging namespace" in none.stderr
    prod = gitcanary("get", "canaries", "-n", "prod", cwd=initialized.human).stdout.splitlines()
    assert prod[0].split()[0] == "NAME" and prod[1].split()[0] == "backend"
    named = gitcanary("get", "canaries", "backend", cwd=initialized.human).stdout.splitlines()
    assert len(named) == 2 and named[1].split()[:2] == ["prod", "backend"]
    missing = gitcanary("get", "canaries", "frontend", cwd=initialized.human)
    assert missing.returncode == 1 and 'No canary "frontend" found.' in missing.stderr


def test_phase_colours_only_on_a_terminal(initialized: ConfigRepo) -> None:
    piped = gitcanary("get", "canaries", cwd=initialized.human).stdout
    assert not ANSI.search(piped)
    coloured = on_terminal("get", "canaries", cwd=initialized.human)
    assert COLOUR.search(coloured), coloured
    plain = on_terminal("get", "canaries", cwd=initialized.human, env={"NO_COLOR": "1"})
    assert not COLOUR.search(plain) and "Initialized" in plain


def test_tables_fit_80_columns_on_a_terminal(initialized: ConfigRepo) -> None:
    for command in (["get", "canaries"], ["get", "canaries", "-A"]):
        out = ANSI.sub("", on_terminal(*command, cwd=initialized.human))
        assert out.strip() and all(len(line) <= 80 for line in out.splitlines()), out
    out = on_terminal("status", "--cluster", "off", cwd=initialized.human)
    assert all(len(ANSI.sub("", line)) <= 80 for line in out.splitlines()), out


@pytest.fixture
def web() -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.parametrize("verbose", [False, True])
def test_library_noise_is_off_unless_verbose(web: str, verbose: bool) -> None:
    stream = io.StringIO()
    logs.configure("text", verbose=verbose, stream=stream)
    try:
        httpx.get(web + "?query=rate%28x%29", timeout=5)  # httpx logs the request itself at INFO
        logging.getLogger("apscheduler.scheduler").warning("maximum number of running instances reached")
        logging.getLogger("gitcanary").info("advance prod/backend to 20%")
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert "advance prod/backend to 20%" in text
    assert ("HTTP Request" in text) is verbose
    assert ("maximum number of running instances" in text) is verbose


def test_status_says_the_guess_once_and_fits_80_columns(config_repo: ConfigRepo) -> None:
    assert gitcanary("init", "apps/backend", cwd=config_repo.human).returncode == 0  # Initializing
    # --local: the checkout as it is, the init not pushed yet
    out = gitcanary("status", "--local", "--cluster", "off", "--settle", "3600", cwd=config_repo.human).stdout
    assert out.count("guessing: no cluster access") == 1, out
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILED", "REVISION"]
    assert lines[1].split()[:3] == ["prod", "backend", "Initializing"]
    assert lines[2].startswith("    waiting: ") and lines[2].endswith(" *")
    shown = ANSI.sub("", on_terminal("status", "--local", "--cluster", "off", cwd=config_repo.human))
    assert all(len(line) <= 80 for line in shown.splitlines()), shown


def test_long_commands_show_progress_on_a_terminal_only(initialized: ConfigRepo) -> None:
    shown = on_terminal("audit", "--repo", str(initialized.human), cwd=initialized.human)
    assert "gitcanary commits..." in shown  # the spinner's line, cleared once the report prints
    piped = gitcanary("audit", "--repo", str(initialized.human), cwd=initialized.human)
    assert piped.returncode == 0 and "gitcanary commits..." not in piped.stderr + piped.stdout


def test_text_logs_say_each_commit_and_its_evidence_in_words(config_repo: ConfigRepo, tmp_path: Path) -> None:
    result = gitcanary(
        "run", "--repo", str(config_repo.remote), "--once", "--cluster", "off", "--listen", "",
        "--log-format", "text", "--workdir", str(tmp_path / "work"), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [entry] = [e for e in config_repo.gitcanary_commits() if e[2].get("Action") == "initialize"]
    body = git("log", "-1", "--format=%b", entry[0], cwd=config_repo.remote)
    evidence = [line for line in body.splitlines() if line.strip() and not line.startswith("Gitcanary-")]
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(entry[0][:8]))
    assert lines[at] == f"{entry[0][:8]} {entry[1]}"
    assert [line.strip() for line in lines[at + 1 : at + 1 + len(evidence)]] == evidence
    assert not any("Gitcanary-" in line for line in lines)
