"""`gitcanary run --config FILE`: the repositories of a YAML file served as repeated `--repo` would be.

A real `gitcanary run` process over two bare remotes initializes both (the remotes, read with git,
hold each one's `initialize` commit); a file with an unknown key stops it with the file, the field
and the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import ConfigRepo, make_config_repo
from typer.testing import CliRunner

from gitcanary.commands.cli import app


def _initialized(repo: ConfigRepo) -> bool:
    return any(trailers.get("Action") == "initialize" for _, _, trailers in repo.remote_log())


def test_run_config_serves_every_repository_in_the_file(tmp_path: Path) -> None:
    first = make_config_repo(tmp_path / "first")
    second = make_config_repo(tmp_path / "second")
    assert not _initialized(first) and not _initialized(second)
    config = tmp_path / "repos.yaml"
    config.write_text(
        f"repositories:\n  - repo: {first.remote}\n  - repo: {second.remote}\n    branch: main\n"
    )
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "gitcanary", "run", "--config", str(config)]
    command += ["--workdir", str(tmp_path / "work"), "--prometheus", "http://127.0.0.1:9"]
    command += ["--interval", "0.5", "--settle", "0", "--cluster", "off", "--leader-election", "off"]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_initialized(first) and _initialized(second)):
            assert process.poll() is None, log.read_text()
            time.sleep(0.3)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert _initialized(first), log.read_text()
    assert _initialized(second), log.read_text()
    # A clone each, under the one --workdir.
    assert len([p for p in (tmp_path / "work").iterdir() if p.is_dir()]) == 2


def test_an_unknown_key_names_the_file_and_the_field(tmp_path: Path) -> None:
    config = tmp_path / "repos.yaml"
    config.write_text("repositories:\n  - repo: /srv/config.git\n    brnch: main\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--once", "--cluster", "off"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"{config}: repositories.0.brnch: Extra inputs are not permitted" in text


def test_a_repository_listed_twice_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "repos.yaml"
    config.write_text("repositories:\n  - repo: /srv/a.git\n  - repo: /srv/a.git\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--once", "--cluster", "off"])
    assert result.exit_code == 1
    assert "listed twice" in " ".join(result.output.split())
