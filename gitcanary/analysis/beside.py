"""What a reviewer reads beside each check: the requests both sides served over the analysis
window, and the primary's value of each metric, where the threshold judge measured the canary only.

Both are measured with the analysis' own machinery (`run_analysis`: the same address, provider,
bounds and redaction), on copies of the canary: one whose only metric is the provider's
request-rate query (`policies/providers/*.yaml` `requests:`), and one whose target is the primary
workload (`<target>-primary`, as Flagger names it). They inform the gate PR and `git log`; no
verdict depends on them.
"""

from __future__ import annotations

from collections.abc import Callable

from gitcanary.analysis.builtin import request_rate_query
from gitcanary.core.observations import CheckResult
from gitcanary.duration import parse_duration
from gitcanary.spec.models import Canary, CanaryMetric

DEFAULT_WINDOW = "1m"
NOT_AVAILABLE = "n/a"  # the provider has no request-rate query

Analyze = Callable[[Canary], tuple[CheckResult, ...]]


def of_primary(canary: Canary) -> Canary:
    """The canary with the primary workload as its target."""
    ref = canary.spec.target_ref.model_copy(update={"name": f"{canary.spec.target_ref.name}-primary"})
    return canary.model_copy(update={"spec": canary.spec.model_copy(update={"target_ref": ref})})


def counting_requests(canary: Canary) -> Canary | None:
    """The canary whose one metric is its provider's request rate over the first metric's window;
    None when the provider has no request-rate query."""
    query = request_rate_query(canary.provider)
    if query is None:
        return None
    metric = CanaryMetric(name="requests", query=query, interval=window(canary))
    analysis = canary.spec.analysis.model_copy(update={"metrics": [metric]})
    return canary.model_copy(update={"spec": canary.spec.model_copy(update={"analysis": analysis})})


def window(canary: Canary) -> str:
    metrics = canary.spec.analysis.metrics
    return (metrics[0].interval if metrics else None) or DEFAULT_WINDOW


def beside_trailers(canary: Canary, checks: tuple[CheckResult, ...], analyze: Analyze) -> dict[str, str]:
    """`Requests` (`canary=N primary=M`, or `n/a`) and, unless the judge measured the primary
    already, `Primary` (`METRIC=VALUE ...`) for the step commit's trailer block."""
    trailers: dict[str, str] = {}
    counting = counting_requests(canary)
    if counting is None:
        trailers["Requests"] = NOT_AVAILABLE
    else:
        seconds = parse_duration(window(canary))
        sides = [analyze(counting), analyze(of_primary(counting))]
        counts = [_count(side, seconds) for side in sides]
        trailers["Requests"] = f"canary={counts[0]} primary={counts[1]}"
    if checks and all(check.primary is None for check in checks):
        primary = {check.name: check.value for check in analyze(of_primary(canary))}
        trailers["Primary"] = " ".join(f"{_token(name)}={_show(value)}" for name, value in primary.items())
    return trailers


def _count(checks: tuple[CheckResult, ...], seconds: float) -> str:
    rate = checks[0].value if checks else None
    return "none" if rate is None else str(round(rate * seconds))


def _token(name: str) -> str:
    return "_".join(name.replace("=", "_").split()) or "unnamed"


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"
