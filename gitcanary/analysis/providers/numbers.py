"""Reading one number out of a backend's JSON without trusting its shape."""

from __future__ import annotations

import math
from typing import Any

from gitcanary.analysis.providers.base import NoDataError
from gitcanary.errors import AnalysisError


def number(container: Any, index: int | str, what: str) -> float | None:
    """`container[index]` as a float; None when it is null; `AnalysisError` when the shape is wrong.

    NaN is no data (as in Flagger's Prometheus provider); an infinity is an error, never a value
    that passes a bound.
    """
    try:
        raw = container[index]
    except (IndexError, KeyError, TypeError) as exc:
        raise AnalysisError(f"unexpected {what} {_short(container)}") from exc
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise AnalysisError(f"{what} value {raw!r} is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{what} value {_short(raw)} is not a number") from exc
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise AnalysisError(f"{what} value is {'+Inf' if value > 0 else '-Inf'}")
    return value


def required(value: float | None, what: str) -> float:
    if value is None:
        raise NoDataError(f"{what} is null")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
