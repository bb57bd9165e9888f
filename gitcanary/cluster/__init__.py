"""Read-only observers of the cluster: is a commit applied (Flux, Fleet), are the workloads ready.

gitcanary never writes to the cluster; everything here is get/list on the official `kubernetes`
client. What it sees goes to the pure core as `observations.ClusterObservation`.
"""

from gitcanary.cluster.connect import api_client
from gitcanary.cluster.observer import ClusterObserver

__all__ = ["ClusterObserver", "api_client"]
