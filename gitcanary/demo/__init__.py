"""`gitcanary demo`: real gitcanary, real Git and kustomize, against a SIMULATED cluster and Prometheus."""

from gitcanary.demo.runner import run_demo

__all__ = ["run_demo"]
