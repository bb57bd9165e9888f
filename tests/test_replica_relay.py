"""A webhook that reaches a follower is relayed to the leader, which steps at once.

Two real `gitcanary run` processes on one bare remote and the emulated API server, polling only
every 300 s: a push webhook sent to the follower must make the leader commit the rollout's start
within seconds, which nothing but the relay can cause. The remote's history (read with git) and
the Lease (read from the emulator) are the oracles. A relay carries no credential: a local HTTP
receiver sees the body, a fresh HMAC of it and the event, never GitLab's token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ConfigRepo, make_config_repo
from hook_server import HookServer
from kube_emulator import Emulator, running_emulator

from gitcanary.service import relay
from gitcanary.service.leases import ENDPOINT_ANNOTATION, lease_name

NAMESPACE = "gitcanary"
SECRET = "relay-test-secret"
POLL = 300  # seconds: far longer than the test waits, so only a webhook can cause a tick


def test_only_a_bare_ip_and_port_is_a_relay_address(monkeypatch: pytest.MonkeyPatch) -> None:
    assert relay.checked("http://10.1.2.3:8080") == "http://10.1.2.3:8080"
    assert relay.checked("http://10.1.2.3:8080/") == "http://10.1.2.3:8080"
    assert relay.checked("http://[fd00::5]:8080") == "http://[fd00::5]:8080"
    for bad in (
        "https://10.1.2.3:8080",  # the pod port speaks plain HTTP; anything else is not ours
        "http://evil.example:8080",  # a name would be resolved: only an address
        "http://10.1.2.3",  # no port
        "http://u:p@10.1.2.3:8080",
        "http://10.1.2.3:8080/elsewhere",
        "http://10.1.2.3:8080?x=1",
        "",
    ):
        assert relay.checked(bad) is None, bad
    monkeypatch.delenv("POD_IP", raising=False)
    assert relay.own_endpoint("0.0.0.0", 8080) is None  # every interface names no one
    assert relay.own_endpoint("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    monkeypatch.setenv("POD_IP", "10.4.0.7")
    assert relay.own_endpoint("0.0.0.0", 8080) == "http://10.4.0.7:8080"


def test_a_relay_carries_the_body_and_a_fresh_signature_never_a_token() -> None:
    receiver = HookServer().start()
    try:
        body = json.dumps({"ref": "refs/heads/main", "project": {"git_http_url": "https://x/y.git"}}).encode()
        assert relay.relay(receiver.url, SECRET.encode(), body, "push", "d-1", "pod-a_7") == ""
        (request,) = receiver.requests
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert request.path == "/webhooks/github"
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        assert headers["x-github-event"] == "push" and headers["x-gitcanary-relayed-by"] == "pod-a_7"
        assert request.body == json.loads(body)
        assert SECRET not in json.dumps(request.headers) and "x-gitlab-token" not in headers
    finally:
        receiver.stop()
    # Nobody listening: the reason comes back (the follower logs it), nothing is raised.
    assert relay.relay("http://127.0.0.1:9", SECRET.encode(), b"{}", "push", "", "me")
    assert "not http://IP:PORT" in relay.relay("http://x.example:1", SECRET.encode(), b"{}", "push", "", "me")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with running_emulator() as served:
        yield served


def gitcanary(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitcanary", *args]


def initialized(repo: ConfigRepo, tmp: Path) -> None:
    """Initialize the canary (primary, then routing) with two single ticks, before the replicas start."""
    for _ in range(2):
        subprocess.run(
            gitcanary(
                "run", "--once", "--repo", str(repo.remote), "--workdir", str(tmp / "init"),
                "--settle", "0", "--cluster", "off", "--leader-election", "off",
                "--prometheus", "http://127.0.0.1:9", "--listen", "",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
    assert any(t.get("Phase") == "Initialized" for _, _, t in repo.gitcanary_commits()), repo.remote_log()


@pytest.mark.timeout(240)
def test_a_webhook_sent_to_the_follower_steps_the_leader_at_once(tmp_path: Path, emulator: Emulator) -> None:
    repo = make_config_repo(tmp_path / "repo")
    initialized(repo, tmp_path)
    kubeconfig = emulator.kubeconfig(tmp_path)
    processes: dict[int, subprocess.Popen[bytes]] = {}
    logs: dict[int, Path] = {}

    def tail() -> str:
        return "\n".join(f"--- {pid}\n{log.read_text()[-3000:]}" for pid, log in logs.items())

    def wait_for(predicate, what: str, timeout: float = 60) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} within {timeout}s; logs:\n{tail()}")

    try:
        for index in range(2):
            log = tmp_path / f"run-{index}.log"
            command = gitcanary(
                "run", "--repo", str(repo.remote), "--workdir", str(tmp_path / f"work-{index}"),
                "--interval", str(POLL), "--settle", "0", "--cluster", "off",
                "--prometheus", "http://127.0.0.1:9", "--listen", "127.0.0.1:0", "--log-format", "text",
                "--leader-election", "on", "--kubeconfig", str(kubeconfig),
                "--lease-namespace", NAMESPACE, "--lease-duration", "15",
            )  # fmt: skip
            env = {**os.environ, "GITCANARY_WEBHOOK_SECRET": SECRET}
            env.pop("POD_IP", None)
            process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
            processes[process.pid] = process
            logs[process.pid] = log

        def urls() -> dict[int, str]:
            served = r"serving /healthz on (http://\S+)"
            found = {pid: re.search(served, log.read_text()) for pid, log in logs.items()}
            return {pid: match.group(1) for pid, match in found.items() if match}

        def lease() -> dict:
            return emulator.leases().get((NAMESPACE, lease_name(str(repo.remote), "main")), {})

        def ready(url: str) -> bool:
            try:
                return httpx.get(url + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(lambda: len(urls()) == 2, "both processes serving")
        wait_for(lambda: (lease().get("metadata") or {}).get("annotations"), "a leader recording its address")
        wait_for(lambda: all(ready(url) for url in urls().values()), "both ready (first tick done)")
        leader = int(lease()["spec"]["holderIdentity"].rsplit("_", 1)[1])
        (follower,) = set(processes) - {leader}
        # The leader records where it receives webhooks: its own served address.
        assert lease()["metadata"]["annotations"][ENDPOINT_ANNOTATION] == urls()[leader]

        before = len(repo.gitcanary_commits())
        repo.bump("apps/backend", "6.1.1")
        body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": str(repo.remote)}}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        sent = time.monotonic()
        answer = httpx.post(
            urls()[follower] + "/webhooks/github",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "X-GitHub-Delivery": "t-1"},
            timeout=10,
        )
        assert answer.status_code == 202 and "relayed to the leader" in answer.text, (answer.text, tail())
        wait_for(lambda: len(repo.gitcanary_commits()) > before, "the leader's commit after the relay", 30)
        stepped = time.monotonic() - sent
        print(f"webhook to the follower -> leader's commit: {stepped:.2f}s (poll interval {POLL}s)")
        (_, subject, trailers) = repo.gitcanary_commits()[before]
        assert trailers.get("Action") == "start" and "6.1.1" in subject, (subject, trailers)
        assert "relayed a push webhook to the leader" in logs[follower].read_text()
        # A delivery that does not prove the secret is refused by the follower, not relayed.
        forged = httpx.post(
            urls()[follower] + "/webhooks/github",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"},
            timeout=10,
        )
        assert forged.status_code == 401
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
