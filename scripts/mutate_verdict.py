"""pytest plugin for mutation runs: a mutant is killed only when a test's assertion fails.

Loaded with `-p mutate_verdict` by scripts/mutate.py and scripts/mutate_routers.py. It sorts each
test failure by what failed it:
- an assertion: `AssertionError` (an `assert`, or hypothesis re-raising the falsified one, alone or
  in a group of failures) or pytest's `Failed` (`pytest.raises` that saw no exception, `pytest.fail`)
  raised while the test function ran;
- anything else (a `TypeError` from the mutated code, an error in a fixture, an import error):
  a crash. A crash says the mutant broke the code, not that a test checked its outcome.
It prints one line, `MUTANT-VERDICT: killed|crashed|survived <test> <exception>`, stops the session
at the first assertion failure, and exits 1 only for `killed` (0 otherwise), so a runner that reads
the exit status counts assertion failures only.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

_ASSERTION_TYPES: tuple[type[BaseException], ...] = (AssertionError, pytest.fail.Exception)


def _is_assertion(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_is_assertion(inner) for inner in error.exceptions)
    return isinstance(error, _ASSERTION_TYPES)


class _Verdict:
    def __init__(self) -> None:
        self.killed: str | None = None
        self.crashed: str | None = None


_VERDICT = _Verdict()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    report = yield
    if report.failed and call.excinfo is not None:
        error = call.excinfo.value
        where = f"{item.nodeid} {type(error).__name__}"
        if call.when == "call" and _is_assertion(error):
            if _VERDICT.killed is None:
                _VERDICT.killed = where
            item.session.shouldstop = "an assertion failed: the mutant is killed"
        elif _VERDICT.crashed is None:
            _VERDICT.crashed = f"{where} (in {call.when})"
    return report


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module that cannot be imported (with --continue-on-collection-errors the others still run):
    # a crash unless another test's assertion kills the mutant.
    if report.failed and _VERDICT.crashed is None:
        _VERDICT.crashed = f"{report.nodeid} (collection)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _VERDICT.killed is not None:
        verdict, session.exitstatus = f"killed {_VERDICT.killed}", 1
    elif _VERDICT.crashed is not None or exitstatus not in (0, 1):
        # A collection or import error (exit status 2, 3, 4) is a crash too.
        verdict, session.exitstatus = f"crashed {_VERDICT.crashed or f'pytest exit {exitstatus}'}", 0
    else:
        verdict, session.exitstatus = "survived", 0
    print(f"\nMUTANT-VERDICT: {verdict}", flush=True)
