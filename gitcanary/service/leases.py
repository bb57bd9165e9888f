"""Leader election per repository on a coordination.k8s.io/v1 Lease, through the official client.

The only object gitcanary ever writes to a cluster: one Lease per repository and branch, in its own
namespace. Every write names the resourceVersion it read (a replace, never a blind patch), so two
replicas that race for an expired Lease cannot both win: the API server answers the second 409.
The decisions (create, take over, renew, wait, when to stop writing) are `leadership.Leadership`'s.

The holder also records on its Lease, in the annotation ENDPOINT_ANNOTATION, where it receives
webhooks (`http://POD_IP:PORT`): a follower that receives a delivery relays it there (relay.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitcanary.service.leadership import Action, Leadership, Record

log = logging.getLogger("gitcanary")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_LEASE_DURATION = 15.0
ENDPOINT_ANNOTATION = "gitcanary.io/webhook-endpoint"


def lease_name(repo: str, branch: str) -> str:
    """A DNS-1123 name for REPO#BRANCH: the same on every replica, whatever credentials its URL carries."""
    parts = urlsplit(repo)
    if parts.scheme and "@" in parts.netloc:  # https://user:token@host/... -> https://host/...
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    key = f"{urlunsplit(parts) if parts.scheme else repo}#{branch}"
    return "gitcanary-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def own_namespace(explicit: str | None = None) -> str:
    """gitcanary's namespace: the flag, else its service account's, else $POD_NAMESPACE, else default."""
    if explicit:
        return explicit
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return os.environ.get("POD_NAMESPACE") or "default"


def own_identity() -> str:
    """Pod name (or host name) and process id: a restarted process is a new holder."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


class LeaseElector:
    """Keeps reading and writing one Lease on a thread of its own; `leads()` says whether to write now."""

    def __init__(
        self,
        api: client.ApiClient,
        name: str,
        namespace: str,
        identity: str,
        duration: float = DEFAULT_LEASE_DURATION,
        *,
        on_lead: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace
        self.state = Leadership(identity, duration)
        self.on_lead = on_lead
        self.monotonic = monotonic
        self._lease: client.V1Lease | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holder = ""  # who leads, as last read (for /readyz and the logs)
        self.endpoint: str | None = None  # where this replica receives webhooks, written when it leads
        self.holder_endpoint = ""  # where the holder said it receives webhooks, as last read

    def leads(self) -> bool:
        with self._lock:
            return self.state.leads(self.monotonic())

    def holder_now(self) -> tuple[str, str]:
        """(holder, its webhook address) read now, for a follower that has not read the Lease since
        it was written; the state machine is left alone. ("", "") when it cannot be read."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=5)
        except Exception:  # noqa: BLE001 - 404, 403 or the network: nobody known to relay to
            return "", ""
        record = _record(lease)
        return (record.holder if record else ""), _endpoint(lease)

    def step(self) -> None:
        """One read and, when the state machine says so, one write."""
        was = self.leads()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=5)
        except ApiException as exc:
            if exc.status != 404:
                hint = " (its Role must grant get, create and update on leases)" if exc.status == 403 else ""
                log.warning("lease %s/%s: cannot read it: %s%s", self.namespace, self.name, exc.reason, hint)
                return
            lease = None
        except Exception as exc:  # noqa: BLE001 - network failures: keep the state, its deadline runs
            log.warning("lease %s/%s: cannot read it: %s", self.namespace, self.name, exc)
            return
        record = _record(lease)
        self.holder = record.holder if record else ""
        self.holder_endpoint = _endpoint(lease)
        with self._lock:
            self.state, action = self.state.observe(record, self.monotonic())
        if action is not Action.WAIT:
            self._write(action, lease)
        if self.leads() and not was:
            log.info("leading %s/%s as %s", self.namespace, self.name, self.state.identity)
            if self.on_lead is not None:
                self.on_lead()
        elif was and not self.leads():
            log.warning(
                "no longer leading %s/%s (held by %s)", self.namespace, self.name, self.holder or "nobody"
            )

    def _write(self, action: Action, lease: client.V1Lease | None) -> None:
        now = datetime.now(UTC)
        identity = self.state.identity
        started = self.monotonic()
        try:
            if action is Action.CREATE or lease is None:
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(
                        name=self.name,
                        namespace=self.namespace,
                        annotations={ENDPOINT_ANNOTATION: self.endpoint} if self.endpoint else None,
                    ),
                    spec=client.V1LeaseSpec(
                        holder_identity=identity,
                        lease_duration_seconds=max(1, round(self.state.duration)),
                        acquire_time=now,
                        renew_time=now,
                        lease_transitions=0,
                    ),
                )
                written = self.api.create_namespaced_lease(self.namespace, body, _request_timeout=5)
            else:
                spec = lease.spec or client.V1LeaseSpec()
                if action is Action.TAKE:
                    spec.acquire_time = now
                    spec.lease_transitions = (spec.lease_transitions or 0) + 1
                spec.holder_identity = identity
                spec.lease_duration_seconds = max(1, round(self.state.duration))
                spec.renew_time = now
                lease.spec = spec  # metadata keeps the resourceVersion read: the write's precondition
                meta = lease.metadata or client.V1ObjectMeta()
                annotations = dict(meta.annotations or {})
                if self.endpoint:
                    annotations[ENDPOINT_ANNOTATION] = self.endpoint
                else:  # a former holder's address must not draw this holder's deliveries
                    annotations.pop(ENDPOINT_ANNOTATION, None)
                meta.annotations = annotations or None
                lease.metadata = meta
                written = self.api.replace_namespaced_lease(
                    self.name, self.namespace, lease, _request_timeout=5
                )
        except ApiException as exc:
            with self._lock:
                self.state = self.state.conflicted() if exc.status == 409 else self.state
            if exc.status != 409:
                log.warning(
                    "lease %s/%s: cannot %s it: %s", self.namespace, self.name, action.value, exc.reason
                )
            elif action is not Action.RENEW:
                # Another replica created or took it first: learn who now (and where it receives
                # webhooks), not a retry period later.
                self.holder, self.holder_endpoint = self.holder_now()
            return
        except Exception as exc:  # noqa: BLE001 - the deadline in the state stops our writes in time
            log.warning("lease %s/%s: cannot %s it: %s", self.namespace, self.name, action.value, exc)
            return
        record = _record(written)
        if record is not None and record.holder == identity:
            self.holder = identity
            self.holder_endpoint = _endpoint(written)
            with self._lock:
                self.state = self.state.wrote(record, started)

    def release(self) -> None:
        """On a clean stop: empty the holder so another replica takes over at once, not after a timeout."""
        if not self.leads():
            return
        with self._lock:
            self.state = self.state.conflicted()  # stop writing Git before the Lease says so
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=5)
            if lease.spec is not None and lease.spec.holder_identity == self.state.identity:
                lease.spec.holder_identity = ""
                self.api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=5)
        except Exception as exc:  # noqa: BLE001 - the Lease then expires by itself
            log.warning("lease %s/%s: cannot release it: %s", self.namespace, self.name, exc)

    def start(self) -> LeaseElector:
        def loop() -> None:
            while not self._stop.is_set():
                self.step()
                with self._lock:
                    pause = self.state.next_read(self.monotonic())
                self._stop.wait(pause)

        self._thread = threading.Thread(target=loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.release()


def _endpoint(lease: client.V1Lease | None) -> str:
    annotations = lease.metadata.annotations if lease is not None and lease.metadata is not None else None
    return str((annotations or {}).get(ENDPOINT_ANNOTATION) or "")


def _record(lease: client.V1Lease | None) -> Record | None:
    if lease is None:
        return None
    holder = lease.spec.holder_identity if lease.spec is not None else None
    version = lease.metadata.resource_version if lease.metadata is not None else None
    return Record(holder or "", str(version or ""))
