"""One metric check as a `Gitcanary-Check` trailer, and back; plus the human lines older commits hold.

The trailer is ``request-success-rate value=92 min=99 failed``: the metric name, its value
(``none`` when there was no data), its bounds, and the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# Lines written by `analysis.run.judge`: `name 92 < 99 failed`, `name 131ms <= 500ms ok`,
# `name 5 in [1, 10] ok`, optionally followed by ` (note)`; and `name <reason>: failed` without data.
_JUDGED = re.compile(
    rf"^(?P<name>[A-Za-z0-9][\w.-]*) (?P<value>{_NUMBER})[a-z%]* "
    rf"(?:(?P<op><=|>=|<|>) (?P<bound>{_NUMBER})[a-z%]*|in \[(?P<low>{_NUMBER})[a-z%]*, "
    rf"(?P<high>{_NUMBER})[a-z%]*\]) (?P<verdict>ok|failed)(?: \(.*\))?$"
)
_NO_DATA = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*) (?P<reason>[^:]+): failed(?: \(.*\))?$")


class _CheckLike(Protocol):
    # Read-only members, so frozen dataclasses (observations.CheckResult, Check) both fit.
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def ok(self) -> bool: ...


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    min: float | None = None
    max: float | None = None
    ok: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "min": self.min, "max": self.max, "ok": self.ok}

    @property
    def text(self) -> str:
        """`request-success-rate 92 (min 99)`: the failing metric and its value, for reports."""
        value = "no data" if self.value is None else _show(self.value)
        bounds = [f"min {_show(self.min)}" if self.min is not None else "", ""]
        bounds[1] = f"max {_show(self.max)}" if self.max is not None else ""
        shown = ", ".join(b for b in bounds if b)
        return f"{self.name} {value}" + (f" ({shown})" if shown else "")


def _show(number: float) -> str:
    return f"{number:.6g}"


def check_trailer(check: _CheckLike) -> str:
    # One token: a name with a space would shift every field after it (names are checked on load).
    name = "_".join(str(check.name).split()) or "unnamed"
    parts = [name, f"value={'none' if check.value is None else _show(check.value)}"]
    if check.min is not None:
        parts.append(f"min={_show(check.min)}")
    if check.max is not None:
        parts.append(f"max={_show(check.max)}")
    parts.append("ok" if check.ok else "failed")
    return " ".join(parts)


def parse_check_trailer(text: str) -> Check:
    """The inverse of `check_trailer`; ValueError names what is wrong."""
    tokens = text.split()
    if len(tokens) < 3 or tokens[-1] not in ("ok", "failed"):
        raise ValueError(f"Gitcanary-Check {text!r}: expected 'NAME value=V [min=A] [max=B] ok|failed'")
    fields: dict[str, float | None] = {}
    for token in tokens[1:-1]:
        key, sep, raw = token.partition("=")
        if not sep or key not in ("value", "min", "max"):
            raise ValueError(f"Gitcanary-Check {text!r}: unknown field {token!r}")
        try:
            fields[key] = None if raw == "none" else float(raw)
        except ValueError:
            raise ValueError(f"Gitcanary-Check {text!r}: {key} is not a number: {raw!r}") from None
    if "value" not in fields:
        raise ValueError(f"Gitcanary-Check {text!r}: no value=")
    return Check(tokens[0], fields["value"], fields.get("min"), fields.get("max"), tokens[-1] == "ok")


def parse_check_line(line: str) -> Check | None:
    """A check from the human line in a commit body (commits from before `Gitcanary-Check`)."""
    line = line.strip()
    match = _JUDGED.match(line)
    if match:
        value = float(match["value"])
        low = high = None
        if match["op"] in (">=", "<"):
            low = float(match["bound"])
        elif match["op"] in ("<=", ">"):
            high = float(match["bound"])
        elif match["low"] is not None:
            low, high = float(match["low"]), float(match["high"])
        return Check(match["name"], value, low, high, match["verdict"] == "ok")
    match = _NO_DATA.match(line)
    if match and " " not in match["name"] and not line.startswith(("image ", "halt ", "failed checks")):
        return Check(match["name"], None, None, None, False)
    return None
