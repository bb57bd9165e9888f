"""Replicas act at once, not at their next poll: a relayed webhook, and a new leader's first tick.

Two real `gitcanary run` processes on one bare remote and the emulated API server, polling only
every 300 s, so that only what is tested can cause a tick within the test's waits:
- a push webhook sent to the follower makes the leader commit the rollout's start within seconds
  (the follower relays it);
- after the leader is killed with SIGKILL, the follower takes the Lease over and commits the step
  that was due (the start of a bump pushed before the kill) within one lease duration of the kill.
The remote's history (read with git) and the Lease (read from the emulator) are the oracles. A
relay carries no credential: a local HTTP receiver sees the body, a fresh HMAC of it and the
event, never GitLab's token.
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
from replica_processes import RunProcesses

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


LEASE_SECONDS = 15.0


class Pair(RunProcesses):
    """Two `gitcanary run` replicas of one repository, polling every POLL seconds."""

    def __init__(self, tmp: Path, repo: ConfigRepo, emulator: Emulator) -> None:
        self.tmp = tmp
        self.repo = repo
        self.emulator = emulator
        super().__init__()

    def start(self) -> None:
        kubeconfig = self.emulator.kubeconfig(self.tmp)
        for index in range(2):
            log = self.tmp / f"run-{index}.log"
            command = gitcanary(
                "run", "--repo", str(self.repo.remote), "--workdir", str(self.tmp / f"work-{index}"),
                "--interval", str(POLL), "--settle", "0", "--cluster", "off",
                "--prometheus", "http://127.0.0.1:9", "--listen", "127.0.0.1:0", "--log-format", "text",
                "--leader-election", "on", "--kubeconfig", str(kubeconfig),
                "--lease-namespace", NAMESPACE, "--lease-duration", str(LEASE_SECONDS),
            )  # fmt: skip
            env = {**os.environ, "GITCANARY_WEBHOOK_SECRET": SECRET}
            env.pop("POD_IP", None)
            process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
            self.processes[process.pid] = process
            self.logs[process.pid] = log
        self.wait_for(lambda: len(self.urls()) == 2, "both processes serving")
        self.wait_for(lambda: (self.lease().get("metadata") or {}).get("annotations"), "a recorded leader")
        self.wait_for(lambda: all(ready(url) for url in self.urls().values()), "both ready (first tick done)")

    def urls(self) -> dict[int, str]:
        served = r"serving /healthz on (http://\S+)"
        found = {pid: re.search(served, log.read_text()) for pid, log in self.logs.items()}
        return {pid: match.group(1) for pid, match in found.items() if match}

    def lease(self) -> dict:
        return self.emulator.leases().get((NAMESPACE, lease_name(str(self.repo.remote), "main")), {})

    def holder(self) -> str:
        return str((self.lease().get("spec") or {}).get("holderIdentity") or "")

    def roles(self) -> tuple[int, int]:
        """(leader's pid, follower's pid)."""
        leader = int(self.holder().rsplit("_", 1)[1])
        (follower,) = set(self.processes) - {leader}
        return leader, follower


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def pair(tmp_path: Path, emulator: Emulator) -> Iterator[Pair]:
    repo = make_config_repo(tmp_path / "repo")
    initialized(repo, tmp_path)
    replicas = Pair(tmp_path, repo, emulator)
    try:
        replicas.start()
        yield replicas
    finally:
        replicas.stop()


def started(repo: ConfigRepo, index: int) -> bool:
    commits = repo.gitcanary_commits()
    return len(commits) > index and commits[index][2].get("Action") == "start"


@pytest.mark.timeout(240)
def test_a_webhook_sent_to_the_follower_steps_the_leader_at_once(pair: Pair) -> None:
    repo = pair.repo
    leader, follower = pair.roles()
    urls = pair.urls()
    # The leader records where it receives webhooks: its own served address.
    assert pair.lease()["metadata"]["annotations"][ENDPOINT_ANNOTATION] == urls[leader]

    before = len(repo.gitcanary_commits())
    repo.bump("apps/backend", "6.1.1")
    body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": str(repo.remote)}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    sent = time.monotonic()
    answer = httpx.post(
        urls[follower] + "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "X-GitHub-Delivery": "t-1"},
        timeout=10,
    )
    assert answer.status_code == 202 and "relayed to the leader" in answer.text, (answer.text, pair.tail())
    pair.wait_for(lambda: len(repo.gitcanary_commits()) > before, "the leader's commit after the relay", 30)
    stepped = time.monotonic() - sent
    print(f"webhook to the follower -> leader's commit: {stepped:.2f}s (poll interval {POLL}s)")
    assert started(repo, before), repo.gitcanary_commits()
    assert "relayed a push webhook to the leader" in pair.logs[follower].read_text()
    # A delivery that does not prove the secret is refused by the follower, not relayed.
    forged = httpx.post(
        urls[follower] + "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"},
        timeout=10,
    )
    assert forged.status_code == 401


@pytest.mark.timeout(240)
def test_a_new_leader_steps_at_once_within_one_lease_duration(pair: Pair) -> None:
    """A bump lands, nobody sends a webhook, the leader dies: the follower takes over and ticks
    at once. Its poll (300 s) is far beyond the lease (15 s): only ticking on taking the Lease over
    lands the start within one lease duration of the kill."""
    repo = pair.repo
    leader, _ = pair.roles()
    before = len(repo.gitcanary_commits())
    repo.bump("apps/backend", "6.1.1")
    killed = time.monotonic()
    pair.processes[leader].send_signal(signal.SIGKILL)
    pair.processes[leader].wait(timeout=10)
    pair.wait_for(lambda: not pair.holder().endswith(f"_{leader}"), "a new holder", 2 * LEASE_SECONDS)
    takeover = time.monotonic() - killed
    pair.wait_for(lambda: len(repo.gitcanary_commits()) > before, "a new commit", 2 * LEASE_SECONDS)
    failover = time.monotonic() - killed
    print(f"kill -> new holder {takeover:.2f}s, -> its first commit {failover:.2f}s (lease {LEASE_SECONDS}s)")
    assert failover <= LEASE_SECONDS, (takeover, failover, pair.tail())
    assert started(repo, before) and len(repo.gitcanary_commits()) == before + 1, repo.gitcanary_commits()
