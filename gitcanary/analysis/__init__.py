"""Metric analysis: a canary's metrics queried on their backends (`analysis.providers`: Prometheus and
every other Flagger metric provider) and judged against their thresholds."""

from gitcanary.analysis.builtin import BUILTIN_NAMES, BuiltinMetric, builtin_metric, builtin_providers
from gitcanary.analysis.prometheus import NoDataError, PrometheusClient, QueryClient
from gitcanary.analysis.run import ClientFactory, format_number, judge, run_analysis
from gitcanary.analysis.templates import QueryModel, render_query

__all__ = [
    "BUILTIN_NAMES",
    "BuiltinMetric",
    "ClientFactory",
    "NoDataError",
    "PrometheusClient",
    "QueryClient",
    "QueryModel",
    "builtin_metric",
    "builtin_providers",
    "format_number",
    "judge",
    "render_query",
    "run_analysis",
]
