"""Several repositories in one `gitcanary run`, and several replicas of it: one leader per repository.

Each repository has its own reconciler (its own clone, caches, readiness and metrics); one
scheduler ticks them all, one at a time per repository, repositories side by side. With leader
election on, each repository also has a `leases.LeaseElector`, and its reconciler is guarded from
outside, with no change to the loop:
- a tick starts only while this replica leads that repository (a follower does not fetch, decide,
  call a webhook, commit or notify);
- the push (and a pull-request publish) is asked again just before it writes: a leader whose
  renewals failed stops at its renew deadline, before any follower may take over;
- a follower keeps its clone at the remote's head, reading only, and ticks at once when it becomes
  leader: Git holds all the state, so the new leader resumes where the old one stopped;
- a follower that receives a verified webhook relays it to the leader (relay.py), so a push is
  stepped at once whichever replica the forge reached.
Git itself is the last safety: two writers that raced would meet a rejected push, and the loser
re-reads and decides again, so a step lands once.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from gitcanary.cluster.revisions import same_repository
from gitcanary.errors import GitcanaryError
from gitcanary.service import push_webhook, relay
from gitcanary.service.http import Router, StartResponse, plain
from gitcanary.service.instrumented import MonitoredReconciler
from gitcanary.service.leases import LeaseElector
from gitcanary.service.reconciler import TickResult

log = logging.getLogger("gitcanary")


class NotLeading(GitcanaryError):
    """This replica does not (or no longer) lead the repository: it must not write."""


@dataclass
class Replica:
    """One repository served by this process: its reconciler and, with replicas, its Lease."""

    reconciler: MonitoredReconciler
    elector: LeaseElector | None = None
    receiver: push_webhook.WebhookReceiver | None = None
    wake: Callable[[], None] = field(default=lambda: None)

    @property
    def name(self) -> str:
        return f"{self.reconciler.settings.repo}#{self.reconciler.settings.branch}"

    def leads(self) -> bool:
        return self.elector is None or self.elector.leads()


def guard(replica: Replica) -> None:
    """Make the reconciler write only while its replica leads (instance attributes, as
    MonitoredReconciler counts pushes: the reconciler's code is the same with or without replicas)."""
    reconciler = replica.reconciler
    if replica.elector is None:
        return
    tick = reconciler.tick
    push = reconciler.workspace.push

    def leader_tick() -> TickResult:
        if not replica.leads():
            standby(reconciler)
            # A standby tick is a completed turn of the loop: liveness (/healthz) counts it, so a
            # follower stays alive while it stands by, and a wedged loop still stops counting.
            reconciler.readiness.succeeded()
            return TickResult(head="")
        return tick()

    def leader_push() -> None:
        if not replica.leads():
            # What this tick committed stays local: the next tick resets the clone to the remote,
            # and the caches built on those commits are dropped now.
            forget(reconciler)
            raise NotLeading(f"{replica.name}: lease lost before pushing; nothing pushed")
        push()

    reconciler.tick = leader_tick  # type: ignore[method-assign]
    reconciler.workspace.push = leader_push  # type: ignore[method-assign]
    publisher = reconciler.publisher
    if publisher is not None:
        publish = publisher.publish

        def leader_publish(base: str, commits: list[str]) -> bool:
            if not replica.leads():
                forget(reconciler)
                raise NotLeading(f"{replica.name}: lease lost before publishing; nothing published")
            return publish(base, commits)

        publisher.publish = leader_publish  # type: ignore[method-assign]


def standby(reconciler: MonitoredReconciler) -> None:
    """A follower keeps its clone and caches at the remote's head (reading only), so that taking
    over costs one incremental tick rather than a clone and a render of every app."""
    try:
        reconciler.refresh(reconciler.workspace.sync())
    except Exception as exc:  # noqa: BLE001 - reading ahead must never stop the loop; the leader's tick decides
        log.warning("standing by for %s: %s", reconciler.settings.repo, exc)


def forget(reconciler: MonitoredReconciler) -> None:
    """The next tick scans the repository afresh (caches may describe commits that never landed)."""
    reconciler.last_head = None


class Replicas:
    """The repositories of one process, ticked on one scheduler."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas

    def run_forever(self, on_tick: Callable[[Replica, TickResult], Any]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(max(len(self.replicas), 1))})

        for index, replica in enumerate(self.replicas):
            job_id = f"tick-{index}"

            def job(replica: Replica = replica) -> None:
                # A wake that came during this tick (a webhook, or this replica became leader while
                # it stood by) is served now: the scheduler drops a run due while the job runs.
                while True:
                    try:
                        result = replica.reconciler.tick()
                    except NotLeading as exc:
                        log.warning("%s", exc)
                        return
                    except GitcanaryError as exc:
                        log.error("tick failed: %s", exc, extra={"repo": replica.name})
                        return
                    if result.head:
                        on_tick(replica, result)
                    if not (replica.leads() and replica.reconciler.woken()):
                        return

            scheduler.add_job(
                job,
                "interval",
                id=job_id,
                seconds=replica.reconciler.settings.poll_interval,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now().astimezone(),
            )

            def schedule(job_id: str = job_id) -> None:
                if scheduler.running:
                    scheduler.modify_job(job_id, next_run_time=datetime.now().astimezone())

            replica.reconciler.schedule_wakes(schedule)
            replica.wake = replica.reconciler.wake
        for replica in self.replicas:
            if replica.elector is not None:
                replica.elector.on_lead = _on_lead(replica)
                replica.elector.start()
        try:
            scheduler.start()
        finally:
            for replica in self.replicas:
                replica.wake = lambda: None
                replica.reconciler.schedule_wakes(None)
            if scheduler.running:
                scheduler.shutdown(wait=True)  # the running ticks finish before the leases go
            for replica in self.replicas:
                if replica.elector is not None:
                    replica.elector.stop()

    # -- HTTP -------------------------------------------------------------------------------

    def mount(self, router: Router, webhook_secret: str | None) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LabelledByRepo(self.replicas))
        router.mount("/metrics", make_wsgi_app(registry))
        router.mount("/readyz", self.readyz)
        if webhook_secret:
            for replica in self.replicas:
                replica.receiver = push_webhook.WebhookReceiver(
                    webhook_secret,
                    _waker(replica),
                    replica.reconciler.settings.branch,
                    _relayer(replica, webhook_secret) if replica.elector is not None else None,
                )
            for path in push_webhook.PATHS:
                router.mount(path, self.route_webhook)

    def healthz(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Alive while every repository's loop completes ticks (a standby tick counts) within
        its `--liveness-intervals`: one stuck repository makes the process restart."""
        from gitcanary.service.health import Liveness

        lines = []
        alive = True
        for replica in self.replicas:
            settings = replica.reconciler.settings
            ok, why = Liveness(replica.reconciler.readiness, settings.liveness_intervals).check()
            alive = alive and ok
            lines.append(f"{settings.repo} {settings.branch}: {'ok' if ok else 'stuck'}: {why}")
        status = "200 OK" if alive else "503 Service Unavailable"
        return plain(status, "\n".join(lines) + "\n")(environ, start_response)

    def readyz(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Ready when every repository is (or `?repo=URL` for one): a follower is ready, standing by."""
        wanted = parse_qs(environ.get("QUERY_STRING", "")).get("repo", [])
        lines = []
        ready = True
        for replica in self.replicas:
            settings = replica.reconciler.settings
            if wanted and not any(same_repository(w, settings.repo) or w == replica.name for w in wanted):
                continue
            if replica.leads():
                ok, why = replica.reconciler.readiness.check()
                role = "leading; " if replica.elector is not None else ""
            else:
                assert replica.elector is not None
                ok, why, role = True, f"standing by: {replica.elector.holder or 'nobody'} leads", ""
            ready = ready and ok
            lines.append(f"{settings.repo} {settings.branch}: {'ok' if ok else 'not ready'}: {role}{why}")
        if wanted and not lines:
            return plain("404 Not Found", "no such repository here\n")(environ, start_response)
        status = "200 OK" if ready else "503 Service Unavailable"
        return plain(status, "\n".join(lines) + "\n")(environ, start_response)

    def route_webhook(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Hand a delivery to the receiver of each repository its payload names (each checks the secret)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not push_webhook.present_credential(environ):  # refused before its body is read
            return plain("401 Unauthorized", "no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token\n")(
                environ, start_response
            )
        if length < 0 or length > push_webhook.MAX_BODY:
            return plain("413 Payload Too Large", "bad length\n")(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        urls = payload_urls(body)
        # A delivery that names no repository (a ping, a status) goes to every receiver: it only wakes.
        chosen = [
            r
            for r in self.replicas
            if r.receiver is not None
            and (not urls or any(same_repository(u, r.reconciler.settings.repo) for u in urls))
        ]
        if not chosen:
            return plain("202 Accepted", "no repository here matches the delivery\n")(environ, start_response)
        answer: Iterable[bytes] = []
        relayed: dict[str, str] = {}  # leader's address -> why the relay failed ("": it did not)
        for index, replica in enumerate(chosen):
            assert replica.receiver is not None
            copy = {**environ, "wsgi.input": io.BytesIO(body), RELAYED: relayed}
            responded = replica.receiver(copy, start_response if index == 0 else _ignore)
            if index == 0:
                answer = responded
        return answer


def _ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
    return lambda _: None


def _waker(replica: Replica) -> Callable[[], None]:
    return lambda: replica.wake()  # the scheduler sets `wake` once it runs


RELAYED = "gitcanary.relayed"  # the environ key of one request's relays: one per leader's address


def _relayer(replica: Replica, secret: str) -> push_webhook.Relay:
    """The receiver's relay: None (wake here) while this replica leads, else pass the delivery on."""

    def relay_delivery(event: str, body: bytes, environ: dict[str, Any]) -> tuple[str, str] | None:
        elector = replica.elector
        if elector is None or replica.leads():
            return None
        fields = {"repo": replica.name, "holder": elector.holder or "nobody"}
        relayed_by = environ.get("HTTP_" + relay.RELAYED_HEADER.upper().replace("-", "_"))
        if relayed_by:
            log.warning(
                "%s: webhook relayed by %s, but this replica does not lead either; the leader's poll "
                "will see the push",
                replica.name,
                relayed_by,
                extra=fields,
            )
            return "503 Service Unavailable", "this replica does not lead the repository either\n"
        holder, endpoint = elector.holder, elector.holder_endpoint
        if not holder or not endpoint:  # not read since the leader wrote it (just started): read now
            holder, endpoint = elector.holder_now()
            fields["holder"] = holder or "nobody"
        if holder == elector.state.identity:
            return None  # this replica has just been written in: it ticks
        if not holder or not endpoint or endpoint == elector.endpoint:
            log.warning(
                "%s: webhook reached a follower, and %s; the leader's poll will see the push",
                replica.name,
                f"the leader {holder} records no address to relay it to" if holder else "nobody leads",
                extra=fields,
            )
            return "202 Accepted", "not leading, and no leader address to relay to: its poll sees the push\n"
        done: dict[str, str] = environ.setdefault(RELAYED, {})
        if endpoint not in done:
            done[endpoint] = relay.relay(
                endpoint,
                secret.encode(),
                body,
                event,
                push_webhook.delivery_id(environ),
                elector.state.identity,
            )
        if done[endpoint]:
            log.warning(
                "%s: could not relay a webhook to the leader %s: %s; its poll will see the push",
                replica.name,
                holder,
                done[endpoint],
                extra=fields,
            )
            return "202 Accepted", "not leading; relaying to the leader failed: its poll sees the push\n"
        log.info("%s: relayed a %s webhook to the leader %s", replica.name, event, holder, extra=fields)
        return "202 Accepted", f"relayed to the leader {holder}\n"

    return relay_delivery


def _on_lead(replica: Replica) -> Callable[[], None]:
    # The caches follow the remote while standing by (a follower never commits), so a new leader
    # only ticks: at once, not at its next poll, and again at once if a standby tick was running.
    return lambda: replica.reconciler.wake()


REPOSITORY_URL_KEYS = ("clone_url", "ssh_url", "git_url", "html_url", "git_http_url", "git_ssh_url", "url")


def payload_urls(body: bytes) -> list[str]:
    """The repository URLs a GitHub, GitLab or Gitea payload names (`repository`, GitLab's `project`)."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(payload, dict):
        return []
    urls = []
    for key in ("repository", "project"):
        section = payload.get(key)
        if isinstance(section, dict):
            urls += [v for k in REPOSITORY_URL_KEYS if isinstance(v := section.get(k), str) and v]
    return urls


class LabelledByRepo(Collector):
    """Every repository's own metrics on one `/metrics`, each series with a `repo` label (and
    `branch`), plus `gitcanary_leader` (1 where this replica leads that repository)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        leader = Metric("gitcanary_leader", "1 where this replica leads the repository (Lease held)", "gauge")
        for replica in self.replicas:
            settings = replica.reconciler.settings
            labels = {"repo": settings.repo, "branch": settings.branch}
            leader.add_sample("gitcanary_leader", labels, 1.0 if replica.leads() else 0.0)
            for family in replica.reconciler.metrics.registry.collect():
                target = merged.get(family.name)
                if target is None:
                    target = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    target.samples.append(
                        Sample(
                            sample.name,
                            {**sample.labels, **labels},
                            sample.value,
                            sample.timestamp,
                            sample.exemplar,
                        )
                    )
        yield leader
        yield from merged.values()
