"""Secret hygiene: a credential given to gitcanary (in the repository URL, in the Prometheus address)
reaches no output: not the pushed history, not stdout or stderr of any command, not the log lines
(text or JSON), not `/readyz` or `/metrics`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from security_cli import cli, initialized, status_of

TOKEN = "ghp_S3cr3tT0kenNeverShown"
PASSWORD = "Pr0m-Passw0rd-Nev3r"


def _clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret} leaked in:\n{text}"


def test_a_prometheus_password_never_reaches_commits_history_or_output(tmp_path: Path) -> None:
    setup = initialized(tmp_path)
    prometheus = f"http://gitcanary:{PASSWORD}@127.0.0.1:9"
    setup.repo.bump("apps/backend", "6.1.1")
    outputs = []
    for log_format in ("json", "text", "json"):  # start, then failed checks up to the rollback
        ran = setup.run_once("--prometheus", prometheus, "--log-format", log_format)
        outputs.append(ran.output)
    assert status_of(setup)["phase"] == "Failed", outputs  # the failed checks were committed
    history = setup.remote_history()
    assert "127.0.0.1:9" in history  # the address is named in the evidence, without its userinfo
    _clean(history, PASSWORD)
    for command in (
        ("history", "prod/backend", "--repo", str(setup.repo.remote)),
        ("history", "prod/backend", "--repo", str(setup.repo.remote), "-o", "json"),
        ("history", "--verify", "--repo", str(setup.repo.remote)),
        ("audit", "--repo", str(setup.repo.remote), "-o", "html"),
        ("audit", "--repo", str(setup.repo.remote), "-o", "markdown"),
        ("status", "--repo", str(setup.repo.remote)),
    ):
        outputs.append(cli(*command, cwd=tmp_path).output)
    for output in outputs:
        _clean(output, PASSWORD)


def test_a_token_in_the_repository_url_reaches_no_output_channel(tmp_path: Path) -> None:
    # Nothing listens there: every command fails, and each error names the URL it could not reach.
    url = f"http://x-access-token:{TOKEN}@127.0.0.1:9/acme/config.git"
    work = tmp_path / "work"
    runs = [
        cli(
            "run",
            "--once",
            "--repo",
            url,
            "--workdir",
            str(work),
            "--log-format",
            fmt,
            "--cluster",
            "off",
            cwd=tmp_path,
        )
        for fmt in ("json", "text")
    ]
    runs += [
        cli("status", "--repo", url, cwd=tmp_path),
        cli("history", "prod/backend", "--repo", url, cwd=tmp_path),
        cli("audit", "--repo", url, cwd=tmp_path),
        cli(
            "promote", "prod/backend", "--repo", url, "--actor", "Pat Person <pat@example.com>", cwd=tmp_path
        ),
    ]
    for ran in runs:
        assert ran.returncode != 0
        assert "127.0.0.1:9" in ran.output, ran.output  # the error still says where
        _clean(ran.output, TOKEN)
    # Also as an environment variable, and on the HTTP endpoints of a running reconciler.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", "run", "--workdir", str(tmp_path / "w2"),
         "--listen", "127.0.0.1:0", "--interval", "1", "--cluster", "off", "--log-format", "text"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**__import__("os").environ, "GITCANARY_REPO": url},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = None
        lines = []
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            found = re.search(r"serving /healthz on http://127\.0\.0\.1:(\d+)", line)
            port = found and found[1]
        assert port, "".join(lines)
        body = ""
        for _ in range(60):
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            body = ready.text
            if "last error" in body:
                break
            time.sleep(0.5)
        assert "127.0.0.1:9" in body, body
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        for text in (body, metrics):
            _clean(text, TOKEN)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    _clean("".join(lines) + out, TOKEN)


def test_status_of_a_url_leaves_no_clone_behind(tmp_path: Path) -> None:
    setup = initialized(tmp_path / "repo")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    ran = cli("status", "--repo", f"file://{setup.repo.remote}", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert ran.returncode == 0 and "prod" in ran.output, ran.output
    assert list(scratch.iterdir()) == []
