"""Replica failover: seconds from killing the leader (SIGKILL) to the first commit of the new one.

Two real `gitcanary run` processes serve one config repository (a bare remote seeded from
examples/istio) with leader election on Leases in an emulated API server (tests/kube_emulator.py:
kmock plus Leases with resourceVersion conflicts), a real Prometheus scraping a local exporter that
a traffic thread feeds. The Canary analyses every 2 s in steps of 10 up to 50. When the second step
has landed, the process named by the Lease is killed; the figures are the seconds until the Lease
names another holder (`takeover_s`) and until the next gitcanary commit lands on the remote
(`first_commit_s`: the new leader ticks as soon as it holds the Lease, and the step that was due
per the commit times in Git lands in that tick). The target: `first_commit_s` <= the lease.

    python bench/bench_failover.py                       # default lease of 15 s
    python bench/bench_failover.py --lease-duration 8 --runs 3 --json

`measure_failover()` returns the same figures as a dict (bench/bench_scale.py imports it).

`--relay` measures instead the seconds from a signed push webhook to the commit that starts the
rollout, with two replicas that poll only every 300 s (tests/test_replica_relay.py's pair): sent
to the leader itself (`to_leader_s`, the floor) and sent to the follower, which relays it
(`via_follower_s`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import make_config_repo  # noqa: E402
from kube_emulator import running_emulator  # noqa: E402
from prometheus_server import Exporter, running_prometheus  # noqa: E402
from test_e2e_live import TrafficFeed  # noqa: E402
from test_replica_relay import SECRET, Pair, initialized, started  # noqa: E402

from gitcanary.service.leases import lease_name  # noqa: E402

NAMESPACE = "gitcanary"


def measure_failover(
    lease_duration: float = 15.0, replicas: int = 2, timeout: float = 180.0, logs: Path | None = None
) -> dict[str, Any]:
    """Kill the leader mid-rollout; {lease_duration_s, takeover_s, first_commit_s, replicas}.
    `logs`: a directory that keeps each process's log (`run-N.log`)."""
    with tempfile.TemporaryDirectory(prefix="gitcanary-failover-") as tmp, running_emulator() as emulator:
        base = Path(tmp)
        exporter = Exporter()
        feed = TrafficFeed(exporter)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            with running_prometheus(workdir=base / "prometheus", exporter=exporter) as prometheus:
                prometheus.wait_for(
                    'sum(rate(istio_requests_total{destination_workload="backend"}[10s]))', timeout=30
                )
                repo = make_config_repo(base / "repo")

                def change(doc: Any) -> None:
                    analysis = doc["spec"]["analysis"]
                    analysis.update(interval="2s", stepWeight=10, maxWeight=50)
                    analysis["metrics"] = [
                        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"},
                        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "10s"},
                    ]

                repo.edit("apps/backend/canary.yaml", change)
                repo.commit_and_push("analysis every 2s")
                kubeconfig = emulator.kubeconfig(base)
                for index in range(replicas):
                    command = [sys.executable, "-m", "gitcanary", "run", "--repo", str(repo.remote)]
                    command += ["--workdir", str(base / f"work-{index}"), "--prometheus", prometheus.url]
                    command += ["--interval", "0.5", "--settle", "1", "--listen", "", "--cluster", "off"]
                    command += ["--leader-election", "on", "--kubeconfig", str(kubeconfig)]
                    command += ["--lease-namespace", NAMESPACE, "--lease-duration", str(lease_duration)]
                    log = ((logs or base) / f"run-{index}.log").open("wb")
                    processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
                name = lease_name(str(repo.remote), "main")

                def holder() -> str:
                    lease = emulator.leases().get((NAMESPACE, name))
                    return str(lease["spec"].get("holderIdentity") or "") if lease else ""

                def wait(predicate: Any, what: str) -> None:
                    deadline = time.monotonic() + timeout
                    while not predicate():
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"no {what} within {timeout}s")
                        time.sleep(0.05)

                def actions() -> list[tuple[str, str]]:
                    return [
                        (t.get("Action", ""), t.get("Weight", "")) for _, _, t in repo.gitcanary_commits()
                    ]

                wait(
                    lambda: any(a == "finalize" or a == "initialize" for a, _ in actions()), "initialization"
                )
                wait(lambda: len(actions()) >= 2, "the routing commit")
                repo.bump("apps/backend", "6.1.1")
                wait(lambda: ("advance", "20") in actions(), "second step")
                victim = int(holder().rsplit("_", 1)[1])
                before = len(actions())
                killed = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                wait(lambda: not holder().endswith(f"_{victim}"), "new holder")
                takeover = time.monotonic() - killed
                wait(lambda: len(actions()) > before, "commit by the new leader")
                first_commit = time.monotonic() - killed
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            feed.stop()
            exporter.close()
    return {
        "replicas": replicas,
        "lease_duration_s": lease_duration,
        "takeover_s": round(takeover, 2),
        "first_commit_s": round(first_commit, 2),
    }


def measure_relay(to: str) -> float:
    """Seconds from a signed push webhook sent `to` "leader" or "follower" to the start commit."""
    import hashlib
    import hmac

    import httpx

    with tempfile.TemporaryDirectory(prefix="gitcanary-relay-") as tmp, running_emulator() as emulator:
        base = Path(tmp)
        repo = make_config_repo(base / "repo")
        initialized(repo, base)
        pair = Pair(base, repo, emulator)
        try:
            pair.start()
            leader, follower = pair.roles()
            before = len(repo.gitcanary_commits())
            repo.bump("apps/backend", "6.1.1")
            body = json.dumps(
                {"ref": "refs/heads/main", "repository": {"clone_url": str(repo.remote)}}
            ).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            sent = time.monotonic()
            answer = httpx.post(
                pair.urls()[leader if to == "leader" else follower] + "/webhooks/github",
                content=body,
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature},
                timeout=10,
            )
            answer.raise_for_status()
            pair.wait_for(lambda: started(repo, before), "the start commit", 60)
            return time.monotonic() - sent
        finally:
            pair.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=1, help="kill a leader this many times (fresh each time)")
    parser.add_argument("--logs", type=Path, help="keep each process's log here (run-N.log)")
    parser.add_argument("--relay", action="store_true", help="measure push -> first step via a follower")
    args = parser.parse_args()
    if args.relay:
        relays = [
            {
                "to_leader_s": round(measure_relay("leader"), 2),
                "via_follower_s": round(measure_relay("follower"), 2),
            }
            for _ in range(args.runs)
        ]
        if args.json:
            print(json.dumps(relays))
            return
        for figures in relays:
            print(
                f"push webhook -> start commit: sent to the leader {figures['to_leader_s']:.2f} s, "
                f"sent to the follower (relayed) {figures['via_follower_s']:.2f} s"
            )
        return
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    runs = [measure_failover(args.lease_duration, args.replicas, logs=args.logs) for _ in range(args.runs)]
    if args.json:
        print(json.dumps(runs[0] if len(runs) == 1 else runs))
        return
    for figures in runs:
        print(
            f"failover with {figures['replicas']} replicas, lease {figures['lease_duration_s']:g} s: "
            f"Lease taken over after {figures['takeover_s']:.2f} s, "
            f"first commit by the new leader {figures['first_commit_s']:.2f} s after the kill"
        )
    if len(runs) > 1:
        takeovers = [f["takeover_s"] for f in runs]
        commits = [f["first_commit_s"] for f in runs]
        print(
            f"median of {len(runs)}: takeover {statistics.median(takeovers):.2f} s "
            f"(max {max(takeovers):.2f}), "
            f"first commit {statistics.median(commits):.2f} s (max {max(commits):.2f})"
        )


if __name__ == "__main__":
    main()
