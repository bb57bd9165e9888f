"""Build a `kubernetes` API client: in-cluster service account first, else a kubeconfig."""

from __future__ import annotations

import os

from kubernetes import client, config

from gitcanary.errors import GitcanaryError

CLUSTER_MODES = ("auto", "on", "off")


class ClusterConfigError(GitcanaryError):
    pass


def api_client(mode: str, kubeconfig: str | None = None) -> client.ApiClient | None:
    """The client for `mode` (`--cluster`): None with `off`, or with `auto` when nothing is configured.

    `auto` uses the pod's service account when running in a cluster, else `kubeconfig` (or
    `$KUBECONFIG`, `~/.kube/config`) when one exists; `on` insists and says why it cannot.
    """
    if mode not in CLUSTER_MODES:
        raise ClusterConfigError(f"--cluster {mode}: expected one of {', '.join(CLUSTER_MODES)}")
    if mode == "off":
        return None
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
            return _finish(configuration)
        except config.ConfigException as exc:
            if mode == "on":
                raise ClusterConfigError(f"--cluster on: in-cluster configuration failed: {exc}") from exc
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    default = os.path.expanduser(config.KUBE_CONFIG_DEFAULT_LOCATION)
    if mode == "auto" and path is None and not os.path.exists(default):
        return None  # no cluster access configured: the settle delay stands in
    try:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        where = path or default
        raise ClusterConfigError(
            f"--cluster {mode}: not running in a cluster, and kubeconfig {where} cannot be loaded: {exc}"
        ) from exc
    return _finish(configuration)


def _finish(configuration: client.Configuration) -> client.ApiClient:
    # One quick attempt per question: an unreachable API means "wait", asked again next tick.
    configuration.retries = 1
    return client.ApiClient(configuration)
