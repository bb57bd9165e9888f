"""A test that reaches no assertion fails: the pytest plugin that counts the checks each test makes.

What counts as a check, made while the test function runs (its fixtures' setup does not count):
- an `assert` statement that passes, in a test module, a conftest, or a helper module next to them
  (tests/*.py: they are registered for pytest's assertion rewriting below, so their `assert`s count
  when a test calls them), in the project (not an installed package's own asserts, which pytest
  rewrites for its plugins); pytest calls `pytest_assertion_pass` for each, which needs
  `enable_assertion_pass_hook = true` in the ini (pyproject.toml);
- a `pytest.raises(...)` or `pytest.warns(...)` check (it is an assertion: it fails the test when
  the exception or warning does not come);
- for hypothesis tests, the `assert`s of every example count (the body runs once per example).
A failing `assert` or `pytest.fail` fails the test on its own, so only passing tests are checked.

A passing test with no check fails with `<node id> reached no assertion`, naming the test, so a new
test added on any branch that forgets to assert is caught by the normal run (scripts/test.sh).
Loaded for every run from tests/conftest.py's `pytest_plugins`.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import _pytest
import pluggy
import pytest

# Helper modules beside the tests (oracles, stand-in servers, shared checks): their asserts are a
# test's asserts when it calls them, so they get the same rewriting test modules get. Registered at
# import time: tests/conftest.py loads this plugin before any test module imports a helper.
_HERE = Path(__file__).resolve().parent
pytest.register_assert_rewrite(
    *sorted(
        path.stem
        for path in _HERE.glob("*.py")
        if not path.stem.startswith("test_") and path.stem not in {"conftest", "assertion_count"}
    )
)


# pytest caches rewritten modules under a name that does not say whether passing asserts call the
# hook: a cache written before the hook was enabled would count nothing. Dropped once, marked done.
_CACHE = _HERE / "__pycache__"
if _CACHE.is_dir() and not (_CACHE / "assertion-pass-hook").exists():
    for stale in _CACHE.glob("*-pytest-*.pyc"):
        stale.unlink(missing_ok=True)
    (_CACHE / "assertion-pass-hook").touch()

_PLUMBING = tuple(str(Path(module.__file__).resolve().parent) + os.sep for module in (_pytest, pluggy))


class _Counter:
    """The checks the running test has made; `None` between tests (assertions then go uncounted)."""

    def __init__(self) -> None:
        self.count: int | None = None
        self.root = str(_HERE) + os.sep  # the run's rootdir, set when pytest configures

    def add(self) -> None:
        if self.count is not None:
            self.count += 1


_COUNTER = _Counter()


def _counting(check: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(check)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _COUNTER.add()
        return check(*args, **kwargs)

    return counted


def pytest_configure(config: pytest.Config) -> None:
    _COUNTER.root = str(config.rootpath) + os.sep
    if not config.getini("enable_assertion_pass_hook"):
        raise pytest.UsageError(
            "assertion_count needs `enable_assertion_pass_hook = true` in the pytest ini: without it "
            "pytest does not report passing asserts and every test would look like it asserts nothing"
        )
    # Patched before the test modules are imported, so `from pytest import raises` gets the
    # counting one too.
    if not getattr(pytest.raises, "_assertion_count", False):
        for name in ("raises", "warns"):
            wrapped = _counting(getattr(pytest, name))
            wrapped._assertion_count = True  # type: ignore[attr-defined]
            setattr(pytest, name, wrapped)


def pytest_assertion_pass(item: pytest.Item, lineno: int, orig: str, expl: str) -> None:
    # pytest also rewrites its plugins' packages (hypothesis's internal asserts pass by the
    # thousand): count only the asserts written in the project (under the rootdir, in no installed
    # package), found as the nearest caller outside pytest's and pluggy's own frames.
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PLUMBING):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return
    file = frame.f_code.co_filename
    if file.startswith(_COUNTER.root) and f"{os.sep}site-packages{os.sep}" not in file:
        _COUNTER.add()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    _COUNTER.count = 0
    try:
        result = yield
    finally:
        count, _COUNTER.count = _COUNTER.count, None
    # Reached only when the test passed (a failure propagates from the yield above).
    if count == 0:
        raise pytest.fail.Exception(
            f"{item.nodeid} reached no assertion: a test must check an outcome (assert, pytest.raises "
            "or pytest.warns) or it passes whether or not the feature works (tests/assertion_count.py)",
            pytrace=False,
        )
    return result
