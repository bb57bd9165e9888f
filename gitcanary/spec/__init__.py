"""Flagger's Canary and MetricTemplate as gitcanary reads them, and the status it commits."""

from gitcanary.spec.models import Canary, CanaryAnalysis, CanaryMetric, CanaryService, MetricTemplate
from gitcanary.spec.status import CanaryStatus, Phase

__all__ = [
    "Canary",
    "CanaryAnalysis",
    "CanaryMetric",
    "CanaryService",
    "CanaryStatus",
    "MetricTemplate",
    "Phase",
]
