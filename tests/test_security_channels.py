"""Every output channel, one planted secret each: a rollout that notifies, calls webhooks, is planned,
audited and shown on the dashboard leaks none of them.

The secrets: a Prometheus password (`--prometheus`), a token in the commit-link template
(`--commit-url`, used in notifications and on the dashboard), and the userinfo of an AlertProvider's
address and of a webhook URL (both repository content: used to post, never echoed).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import git
from hook_server import HookServer
from security_cli import Setup, cli, initialized, status_of

PROMETHEUS = "Pr0mPass-Ch4nnels"
LINK = "L1nkT0ken-Ch4nnels"
ALERT = "Al3rtT0ken-Ch4nnels"
HOOK = "H00kT0ken-Ch4nnels"
ALL = (PROMETHEUS, LINK, ALERT, HOOK)


def _clean(where: str, text: str, secrets: tuple[str, ...] = ALL) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret} leaked in {where}:\n{text}"


def _serve_dashboard(tmp_path: Path, repo: str, commit_url: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", "dashboard", "--repo", repo, "--listen", "127.0.0.1:0"]
        + ["--commit-url", commit_url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 240  # it clones and reads every canary first; the machine is shared
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        lines.append(line)
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return proc, found[1]
    proc.terminate()
    raise AssertionError("the dashboard did not start:\n" + "".join(lines))


def test_planted_secrets_reach_no_output_channel(tmp_path: Path) -> None:
    sink = HookServer().start()
    try:
        hook = f"http://hook:{HOOK}@{sink.url.removeprefix('http://')}/event"

        def alerts_and_hooks(doc) -> None:  # noqa: ANN001 - a ruamel map
            analysis = doc["spec"]["analysis"]
            analysis["alerts"] = [{"name": "team", "severity": "info", "providerRef": {"name": "team"}}]
            analysis["webhooks"] = [{"name": "events", "type": "event", "url": hook}]

        setup: Setup = initialized(tmp_path, alerts_and_hooks)
        human = setup.repo.human
        (human / "apps/alerts").mkdir()
        (human / "apps/alerts/team.yaml").write_text(
            "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\n"
            "metadata:\n  name: team\n  namespace: prod\n"
            f"spec:\n  type: slack\n  address: http://alerts:{ALERT}@{sink.url.removeprefix('http://')}/alert\n"
        )
        git("add", "-A", cwd=human)
        git("commit", "-qm", "alert the team", cwd=human)
        git("push", "-q", "origin", "HEAD:main", cwd=human)
        setup.repo.bump("apps/backend", "6.1.1")
        prometheus = f"http://gitcanary:{PROMETHEUS}@127.0.0.1:9"
        commit_url = f"https://ci:{LINK}@git.example/acme/config/commit/{{sha}}"
        options = ("--prometheus", prometheus, "--commit-url", commit_url)
        outputs = {"run (start)": setup.run_once(*options, "--log-format", "json").output}
        time.sleep(1.1)
        outputs["run (first step)"] = setup.run_once(*options, "--log-format", "text").output
        time.sleep(1.1)
        plan = ("plan", "--repo", str(setup.repo.remote), "--cluster", "off", "--settle", "0", *options)
        outputs["plan"] = cli(*plan, cwd=tmp_path).output
        outputs["plan -o json"] = cli(*plan, "-o", "json", cwd=tmp_path).output
        assert "127.0.0.1:9" in outputs["plan"], outputs["plan"]  # the failed query it would commit
        outputs["run (rollback)"] = setup.run_once(*options, "--log-format", "json").output
        assert status_of(setup)["phase"] == "Failed", outputs
        remote = str(setup.repo.remote)
        for name, command in {
            "history": ("history", "prod/backend", "--repo", remote, "-o", "json"),
            "history --verify": ("history", "--verify", "--repo", remote),
            "audit json": ("audit", "--repo", remote, "-o", "json"),
            "audit html": ("audit", "--repo", remote, "-o", "html"),
            "status": ("status", "--repo", remote, "-o", "json"),
        }.items():
            outputs[name] = cli(*command, cwd=tmp_path).output
        for name, output in outputs.items():
            _clean(name, output)
        # Notifications and webhook payloads were sent (and carry the commit links, masked).
        bodies = {r.path: json.dumps(r.body) for r in sink.requests}
        assert "/alert" in bodies and "/event" in bodies, bodies.keys()
        assert "git.example/acme/config/commit/" in bodies["/alert"], bodies["/alert"]
        for request in sink.requests:
            _clean(f"the body posted to {request.path}", json.dumps(request.body))
        # What gitcanary committed and pushed: its own commit messages hold none of them (the
        # AlertProvider and webhook addresses are the repository's own content, not gitcanary's).
        _clean("gitcanary's commits", git("log", "--author=gitcanary", "--format=%B", "main", cwd=remote))
        _clean("the remote's history", setup.remote_history(), (PROMETHEUS, LINK))
        # The dashboard: its page and its state, with commit links from the same template.
        proc, url = _serve_dashboard(tmp_path, remote, commit_url)
        try:
            page = httpx.get(f"{url}/", timeout=30).text
            state = httpx.get(f"{url}/dashboard/state", timeout=30).text
            main = httpx.get(f"{url}/dashboard/main", timeout=30).text
        finally:
            proc.terminate()
            log, _ = proc.communicate(timeout=30)
        assert "prod/backend" in page + main, page
        for name, text in (("dashboard page", page), ("dashboard state", state), ("dashboard main", main)):
            _clean(name, text)
        _clean("the dashboard's log", log)
    finally:
        sink.stop()


def test_an_echoed_basic_credential_is_masked_too() -> None:
    """A webhook or alert server that answers 403 with the Authorization it got: the error becomes a
    failed check line (committed) and a log line; the base64 of the URL's userinfo is masked there."""
    import base64

    from gitcanary.redaction import redact, register_url

    register_url("http://hook:Ech0edS3cret@hooks.example/gate")
    basic = base64.b64encode(b"hook:Ech0edS3cret").decode()
    assert (
        redact(f"webhook gate failed: HTTP 403: denied {basic}")
        == "webhook gate failed: HTTP 403: denied ***"
    )
