"""Bounded parsing and isolation: a YAML bomb costs milliseconds, and one broken canary (of any kind)
halts that canary alone while another rolls back in the same tick."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from conftest import git, make_config_repo
from security_cli import Setup, cli, fast_canary, status_of

from gitcanary.manifests import yamlio

MAX_SECONDS = 2.0
MAX_MEGABYTES = 200


def _bomb_canary() -> str:
    """Flagger's own Canary shape with a billion-laughs webhook metadata (9^9 leaves once expanded)."""
    lines = [
        "apiVersion: flagger.app/v1beta1", "kind: Canary", "metadata:", "  name: backend",
        "  namespace: prod", "spec:", "  targetRef:", "    apiVersion: apps/v1", "    kind: Deployment",
        "    name: backend", "  service:", "    port: 80", "  analysis:", "    interval: 1m",
        "    threshold: 1", "    stepWeight: 10", "    maxWeight: 50", "    webhooks:", "      - name: bomb",
        "        url: http://127.0.0.1:9/",
        "        metadata:", '          a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]  # fmt: skip
    lines += [f"          a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _timed(*args: str, cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak MB, output) of one CLI run, measured by GNU time around the process."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "gitcanary", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    *rest, last = proc.stderr.strip().splitlines()
    seconds, kilobytes = last.split()
    return float(seconds), int(kilobytes) / 1024, proc.stdout + "\n".join(rest)


def test_an_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    (repo.human / "apps/backend/canary.yaml").write_text(_bomb_canary())
    repo.commit_and_push("an alias bomb in a webhook's metadata")
    # What the interpreter and the CLI cost before reading anything, on this (shared) machine.
    startup, _, _ = _timed("--version", cwd=tmp_path)
    seconds, megabytes, output = _timed("validate", ".", cwd=repo.human)
    print(f"validate on the alias bomb: {seconds:.2f}s, {megabytes:.0f} MB (startup alone {startup:.2f}s)")
    assert "apps/backend/canary.yaml" in output and "alias bomb" in output, output
    assert megabytes < MAX_MEGABYTES
    assert seconds < MAX_SECONDS + max(0.0, startup - 0.5), (seconds, startup)
    for command in (
        ("status",),
        (
            "run",
            "--once",
            "--repo",
            str(repo.remote),
            "--workdir",
            str(tmp_path / "work"),
            "--cluster",
            "off",
        ),
    ):
        seconds, megabytes, output = _timed(*command, cwd=repo.human)
        assert "alias bomb" in output, output
        assert megabytes < MAX_MEGABYTES and seconds < 60, (command, seconds, megabytes)


def test_parsing_limits_are_clear_errors() -> None:
    deep = "a: " + "[" * 500 + "]" * 500
    for text, words in (
        (deep, "depth"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("x: &a [*a]\n", "recursive alias"),
    ):
        try:
            yamlio.load(text)
        except yamlio.YAMLError as exc:
            assert words in str(exc), str(exc)
        else:
            raise AssertionError(f"{text[:20]!r} was parsed")
    yamlio.configure(max_bytes=1000)
    try:
        try:
            list(yamlio.safe_load_all("a: " + "x" * 2000, "big.yaml"))
        except yamlio.YAMLLimitError as exc:
            assert "big.yaml: 2003 bytes is over the 1000-byte limit" in str(exc)
        else:
            raise AssertionError("an oversized file was parsed")
    finally:
        yamlio.configure(max_bytes=yamlio.MAX_BYTES)
    # An ordinary anchor (shared labels, say) is fine.
    assert yamlio.load("base: &b {x: 1}\nother: *b\n")["other"] == {"x": 1}


def test_max_yaml_bytes_is_configurable_from_the_cli(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    ran = cli("--max-yaml-bytes", "200", "validate", ".", cwd=repo.human)
    assert ran.returncode != 0 and "over the 200-byte limit" in ran.output, ran.output


class _Hostile(BaseHTTPRequestHandler):
    """A metrics endpoint a MetricTemplate in the repository points at, answering nonsense."""

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [42]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _add_broken_app(human: Path, port: int) -> None:
    """apps/api: a copy of backend whose only metric queries the hostile endpoint."""
    shutil.copytree(human / "apps/backend", human / "apps/api")
    for file in (human / "apps/api").iterdir():
        file.write_text(file.read_text().replace("backend", "api"))
    canary = human / "apps/api/canary.yaml"
    doc = yamlio.load(canary.read_text())
    fast_canary(doc)
    doc["spec"]["analysis"]["metrics"] = [
        {
            "name": "hostile",
            "templateRef": {"name": "hostile"},
            "thresholdRange": {"min": 1},
            "interval": "1m",
        }
    ]
    canary.write_text(yamlio.dump(doc))
    (human / "apps/metric-templates/hostile.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\n"
        "metadata:\n  name: hostile\n  namespace: prod\n"
        f"spec:\n  provider:\n    type: prometheus\n    address: http://127.0.0.1:{port}\n  query: up\n"
    )
    templates = human / "apps/metric-templates/kustomization.yaml"
    templates.write_text(templates.read_text() + "  - hostile.yaml\n")
    parent = human / "apps/kustomization.yaml"
    parent.write_text(parent.read_text() + "  - api\n")


def test_one_broken_canary_never_delays_another_ones_rollback(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = make_config_repo(tmp_path)
        human = repo.human
        _add_broken_app(human, server.server_address[1])
        repo.edit("apps/backend/canary.yaml", fast_canary)  # type: ignore[arg-type]
        git("add", "-A", cwd=human)
        git("commit", "-qm", "two apps", cwd=human)
        for app in ("apps/api", "apps/backend"):
            ran = cli("init", app, cwd=human)
            assert ran.returncode == 0, ran.output
        git("push", "-q", "origin", "HEAD:main", cwd=human)
        setup = Setup(repo, tmp_path / "work", tmp_path)
        assert setup.run_once().returncode == 0
        repo.pull()
        repo.bump("apps/api", "6.1.1")
        repo.bump("apps/backend", "6.1.1")
        outputs = []
        for _ in range(4):
            outputs.append(setup.run_once().output)
            time.sleep(1.1)  # the 1s analysis interval
        assert status_of(setup)["phase"] == "Failed", outputs  # backend rolled back...
        rollback = git(
            "log", "-1", "--format=%s", "--grep=Gitcanary-Action: rollback", "main", cwd=repo.remote
        )
        assert rollback.startswith("gitcanary: roll back prod/backend 6.1.1 -> 6.1.0"), outputs
        assert "newTag: 6.1.0" in git("show", "main:apps/backend/kustomization.yaml", cwd=repo.remote)
        # ...while api's nonsense answer is a failed check with its reason (the providers turn an
        # answer of unexpected shape into one, since the metrics-backends work), never a promotion.
        assert any("prod/api" in out and "hostile" in out for out in outputs[1:]), outputs
        api = yamlio.load(git("show", "main:apps/api-gitcanary/gitcanary-status.yaml", cwd=repo.remote))
        assert api["status"]["phase"] in ("Progressing", "Failed")
    finally:
        server.shutdown()
