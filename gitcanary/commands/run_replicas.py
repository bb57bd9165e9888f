"""`run` over several repositories, or with replicas: one reconciler and one Lease per repository.

The single-repository `run` stays in cli.py; this is what `run` hands over to when `--repo` is given
more than once, `--config` names several repositories, or leader election is on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitcanary.errors import GitcanaryError
from gitcanary.git.trailers import parse_trailers

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gitcanary.service.http import HttpServer
    from gitcanary.service.replicas import Replica
    from gitcanary.service.settings import Settings


def repo_and_branch(spec: str, branch: str) -> tuple[str, str]:
    """`--repo URL#BRANCH`: that repository on its own branch; plain URL: on --branch."""
    url, hashed, own = spec.rpartition("#")
    return (url, own) if hashed and url and own else (spec, branch)


def settings_for(base: Settings, url: str, own_branch: str, workdir: Path | None, several: bool) -> Settings:
    from gitcanary.service.settings import default_workdir

    # Several repositories under one --workdir: a clone each, named as the default cache names them.
    where = workdir / default_workdir(url, own_branch).name if workdir is not None and several else workdir
    return base.model_copy(update={"repo": url, "branch": own_branch, "workdir": where})


def lease_api(settings: Settings, leader_election: str) -> ApiClient | None:
    """The client for Leases (`--leader-election`), or None: this process acts alone, and says so."""
    from gitcanary.cluster.connect import api_client

    if leader_election not in ("auto", "on", "off"):
        raise GitcanaryError(f"--leader-election {leader_election}: expected auto, on or off")
    if leader_election == "off":
        return None
    # `auto` elects only inside a cluster (its own service account, whose Role grants Leases): a
    # laptop's kubeconfig is for reading, and Leases written there would only confuse. `on` reaches
    # the API server even with --cluster off (no observing; the settle delay stands in).
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and settings.cluster != "off"
    api = None
    if leader_election == "on" or in_cluster:
        api = api_client("on", settings.kubeconfig)
    if api is None:
        logging.getLogger("gitcanary").warning(
            "no cluster for Leases: one replica (run no second gitcanary on the same repository)"
        )
    return api


def run_replicas(
    every: list[Settings],
    listen: str,
    api: ApiClient | None,
    lease_duration: float,
    lease_namespace: str | None,
) -> None:
    """`run` with several repositories or with leader election: one reconciler and Lease per repository."""
    from gitcanary.service import replicas as replicated
    from gitcanary.service.forge_setup import publisher_for, webhook_secret
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.leases import LeaseElector, lease_name, own_identity, own_namespace
    from gitcanary.service.reconciler import TickResult

    log = logging.getLogger("gitcanary")
    first = every[0]
    namespace = own_namespace(lease_namespace)
    identity = own_identity()
    if api is not None:
        log.info(
            "leader election on Leases in namespace %s as %s (%gs)",
            namespace,
            identity,
            lease_duration,
            extra={"namespace": namespace, "identity": identity},
        )
    served: list[replicated.Replica] = []
    for settings in every:
        reconciler = MonitoredReconciler(settings)
        reconciler.publisher = publisher_for(settings, reconciler.workspace)
        elector = (
            LeaseElector(api, lease_name(settings.repo, settings.branch), namespace, identity, lease_duration)
            if api is not None
            else None
        )
        replica = replicated.Replica(reconciler, elector)
        replicated.guard(replica)
        served.append(replica)
    if served and served[0].reconciler.observer is None:
        log.warning("no cluster access: a commit counts as applied %gs after it (a guess)", first.settle)
    fleet = replicated.Replicas(served)
    server = None
    if listen:
        from gitcanary.service.http import HttpServer, Router  # only the commands that serve

        router = Router()
        router.mount("/healthz", fleet.healthz)
        fleet.mount(router, webhook_secret(first))
        from gitcanary.service.dashboard import Dashboard

        # The page of the first repository: the dashboard reads one clone.
        lead = served[0].reconciler
        from gitcanary.audit.verify import BotIdentity

        bot = BotIdentity(first.author_email, first.signing_key, first.signing_format)
        Dashboard(
            lambda: lead.workspace.root, lead.settings.repo, commit_url=first.commit_url, bot=bot
        ).mount(router)
        try:
            server = HttpServer(router, listen).start()
        except (OSError, ValueError) as exc:
            raise GitcanaryError(f"--listen {listen}: {exc}") from exc
        log.info(
            f"serving /healthz on {server.url} (and {', '.join(sorted(set(router.routes) - {'/healthz'}))})",
            extra={"url": server.url},
        )
        if api is not None and webhook_secret(first):
            _advertise_webhooks(served, server)

    def on_tick(replica: replicated.Replica, result: TickResult) -> None:
        for report in result.reports.values():
            if report.error:
                log.error("halted: %s", report.error, extra={"canary": report.key, "repo": replica.name})
        for source, problem in result.errors.items():
            log.error("halted: %s", problem, extra={"file": source, "repo": replica.name})
        for sha in result.commits:
            body = replica.reconciler.workspace.repo.commit(sha).message
            text = body.decode() if isinstance(body, bytes) else body
            trailers = parse_trailers(text)
            fields = {"commit": sha, "canary": trailers.get("Canary", ""), "repo": replica.name}
            log.info("pushed %s", text.splitlines()[0], extra=fields)

    try:
        fleet.run_forever(on_tick)
    finally:
        if server is not None:
            server.stop()


def _advertise_webhooks(served: list[Replica], server: HttpServer) -> None:
    """Record on each Lease this replica holds where it receives webhooks, for followers to relay to."""
    from gitcanary.service.relay import own_endpoint

    endpoint = own_endpoint(server.host, server.port)
    if endpoint is None:
        logging.getLogger("gitcanary").warning(
            "no address for other replicas to relay webhooks to (set POD_IP, or --listen on an IP): "
            "a webhook that reaches a follower waits for the leader's next poll"
        )
    for replica in served:
        if replica.elector is not None:
            replica.elector.endpoint = endpoint
