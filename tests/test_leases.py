"""The Lease elector and the leader guard against the emulated API server, with a real reconciler.

A replica that does not hold a repository's Lease neither decides nor pushes; one that held it and
lost it between deciding and pushing pushes nothing. The remote's history (read with git) is the
oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ConfigRepo, make_config_repo
from kube_emulator import Emulator, running_emulator
from kubernetes import client
from prometheus_server import unavailable_prometheus

from gitcanary.service.instrumented import MonitoredReconciler
from gitcanary.service.leases import ENDPOINT_ANNOTATION, LeaseElector, lease_name
from gitcanary.service.replicas import NotLeading, Replica, guard
from gitcanary.service.settings import Settings


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as served:
        yield served


def api(emulator: Emulator) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = emulator.url
    return client.ApiClient(configuration)


def test_lease_names_are_dns_safe_and_ignore_credentials() -> None:
    name = lease_name("https://bot:s3cret@github.com/acme/Config.git", "main")
    assert name == lease_name("https://github.com/acme/Config.git", "main")
    assert name != lease_name("https://github.com/acme/Config.git", "staging")
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()


def test_two_electors_one_leader_and_a_stale_write_is_refused(emulator: Emulator) -> None:
    now = [0.0]
    a = LeaseElector(api(emulator), "gitcanary-race", "gc", "a_1", 10, monotonic=lambda: now[0])
    b = LeaseElector(api(emulator), "gitcanary-race", "gc", "b_2", 10, monotonic=lambda: now[0])
    a.step()
    b.step()
    assert a.leads() and not b.leads()
    # a stops renewing; b has seen the same record for 0.6 of the duration: it takes over
    now[0] = 6.0
    b.step()
    assert b.leads() and not a.leads()  # a's own deadline (half the duration) passed first
    # a comes back with the record it read long ago: its write names a stale resourceVersion
    stale = (
        a._lease
        if a._lease is not None
        else client.CoordinationV1Api(api(emulator)).read_namespaced_lease("gitcanary-race", "gc")
    )
    stale.metadata.resource_version = "1"
    with pytest.raises(client.exceptions.ApiException) as refused:
        client.CoordinationV1Api(api(emulator)).replace_namespaced_lease("gitcanary-race", "gc", stale)
    assert refused.value.status == 409
    a.step()
    assert not a.leads() and b.leads()
    holders = [w[2]["spec"]["holderIdentity"] for w in emulator.lease_writes() if w[1] == "gitcanary-race"]
    assert holders[0] == "a_1" and set(holders[1:]) == {"b_2"}


def reconciler(repo: ConfigRepo, work: Path, url: str | None = None) -> MonitoredReconciler:
    settings = Settings(
        repo=url or str(repo.remote), workdir=work, settle=0, prometheus=unavailable_prometheus()
    )
    return MonitoredReconciler(settings)


def test_a_follower_neither_decides_nor_pushes(
    emulator: Emulator, config_repo: ConfigRepo, tmp_path: Path
) -> None:
    name = lease_name(str(config_repo.remote), "main")
    other = LeaseElector(api(emulator), name, "gc", "other_1", 30)
    other.step()
    assert other.leads()
    mine = LeaseElector(api(emulator), name, "gc", "me_2", 30)
    mine.step()
    replica = Replica(reconciler(config_repo, tmp_path / "work"), mine)
    guard(replica)
    before = config_repo.remote_log()
    result = replica.reconciler.tick()
    assert result.head == "" and not result.commits
    assert config_repo.remote_log() == before  # the repository needs initializing, yet nothing landed
    # The follower stood by: its clone is at the remote's head, its catalog read.
    assert replica.reconciler.catalog is not None and "prod/backend" in replica.reconciler.catalog.canaries


def test_a_leader_that_lost_its_lease_before_pushing_pushes_nothing(
    emulator: Emulator, config_repo: ConfigRepo, tmp_path: Path
) -> None:
    name = lease_name(str(config_repo.remote), "main") + "-lost"
    now = [0.0]
    mine = LeaseElector(api(emulator), name, "gc", "me_3", 10, monotonic=lambda: now[0])
    mine.step()
    assert mine.leads()
    replica = Replica(reconciler(config_repo, tmp_path / "work"), mine)
    guard(replica)
    guarded = replica.reconciler.workspace.push

    def after_a_long_decide_pass() -> None:
        now[0] = 5.0  # deciding outlasted the renew deadline (half the lease) with no renewal
        guarded()

    replica.reconciler.workspace.push = after_a_long_decide_pass  # type: ignore[method-assign]
    before = config_repo.remote_log()
    with pytest.raises(NotLeading):
        replica.reconciler.tick()
    assert config_repo.remote_log() == before


def test_webhooks_reach_the_repository_their_payload_names(config_repo: ConfigRepo, tmp_path: Path) -> None:
    """One HTTP server for several repositories: a signed push wakes only the repository it names."""
    import io
    import json

    from gitcanary.service import push_webhook
    from gitcanary.service.http import Router
    from gitcanary.service.replicas import Replicas

    other = make_config_repo(tmp_path / "other")
    woken: list[str] = []
    replicas = []
    for repo, name in ((config_repo, "first"), (other, "second")):
        replica = Replica(reconciler(repo, tmp_path / f"work-{name}", f"file://{repo.remote}"))
        replica.wake = lambda name=name: woken.append(name)  # type: ignore[misc]
        replicas.append(replica)
    served = Replicas(replicas)
    router = Router()
    served.mount(router, "s3cret")

    def deliver(payload: dict[str, object]) -> str:
        body = json.dumps(payload).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": push_webhook.PATH,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "HTTP_X_GITHUB_EVENT": "push",
            "HTTP_X_HUB_SIGNATURE_256": push_webhook.signature(b"s3cret", body),
        }
        statuses: list[str] = []
        answer = b"".join(router(environ, lambda status, headers, exc=None: statuses.append(status)))
        return f"{statuses[0]} {answer.decode().strip()}"

    assert deliver(
        {
            "ref": "refs/heads/main",
            "repository": {"clone_url": f"file://{str(other.remote).removesuffix('.git')}"},
        }
    ).startswith("202")
    assert woken == ["second"]
    deliver({"ref": "refs/heads/main", "repository": {"clone_url": f"file://{config_repo.remote}/"}})
    assert woken == ["second", "first"]
    assert "no repository here" in deliver(
        {"ref": "refs/heads/main", "repository": {"clone_url": "https://x/y.git"}}
    )
    deliver(
        {"ref": "refs/heads/other", "repository": {"clone_url": str(config_repo.remote)}}
    )  # another branch
    assert woken == ["second", "first"]


def test_a_clean_stop_hands_over_at_once(emulator: Emulator) -> None:
    """SIGTERM: the leader stops writing, empties the holder, and a follower takes over on its next read."""
    now = [0.0]
    a = LeaseElector(api(emulator), "gitcanary-release", "gc", "a_1", 15, monotonic=lambda: now[0])
    b = LeaseElector(api(emulator), "gitcanary-release", "gc", "b_2", 15, monotonic=lambda: now[0])
    a.step()
    b.step()
    assert a.leads() and not b.leads()
    a.stop()  # never started: stop() only releases
    assert not a.leads()
    b.step()  # same instant: no waiting for the lease to expire
    assert b.leads()


def test_the_holder_records_its_webhook_address_and_a_new_holder_replaces_it(emulator: Emulator) -> None:
    """Followers relay webhooks to the address on the Lease: only the current holder's may be there."""
    now = [0.0]
    a = LeaseElector(api(emulator), "gitcanary-address", "gc", "a_1", 10, monotonic=lambda: now[0])
    b = LeaseElector(api(emulator), "gitcanary-address", "gc", "b_2", 10, monotonic=lambda: now[0])
    a.endpoint = "http://10.0.0.1:8080"
    assert b.holder_now() == ("", "")  # no Lease yet
    a.step()
    # b has never read the Lease: a read now names the holder and its address.
    assert b.holder_now() == ("a_1", "http://10.0.0.1:8080")
    b.step()
    assert (b.holder, b.holder_endpoint) == ("a_1", "http://10.0.0.1:8080")
    now[0] = 6.0  # a went silent; b (with no address of its own) takes over
    b.step()
    assert b.leads()

    def stored() -> dict[str, str]:
        lease = emulator.leases()[("gc", "gitcanary-address")]
        return lease["metadata"].get("annotations") or {}

    assert ENDPOINT_ANNOTATION not in stored()  # a's address would draw b's deliveries to a dead pod
    b.endpoint = "http://10.0.0.2:8080"
    now[0] = 7.0
    b.step()  # the renewal records it
    assert stored()[ENDPOINT_ANNOTATION] == "http://10.0.0.2:8080"
    assert a.holder_now() == ("b_2", "http://10.0.0.2:8080")
