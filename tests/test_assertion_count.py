"""The check that every test asserts (tests/assertion_count.py), run on tests written to pass without
checking anything, in a pytest of their own: each such test fails and is named; a test that asserts,
uses pytest.raises or pytest.warns, or asserts in a helper module beside it passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SUBJECT = '''
import warnings

import pytest
from hypothesis import given, settings, strategies as st

import helper_checks


def test_nothing():
    value = 1 + 1


def test_asserts():
    assert 1 + 1 == 2


def test_raises():
    with pytest.raises(ZeroDivisionError):
        1 / 0


def test_warns():
    with pytest.warns(UserWarning):
        warnings.warn("w", UserWarning)


def test_helper_asserts():
    helper_checks.check_even(4)


def test_helper_returns():
    helper_checks.compute(4)


@settings(max_examples=5, derandomize=True)
@given(st.integers())
def test_hypothesis_asserts(n):
    assert n == n


@settings(max_examples=5, derandomize=True)
@given(st.integers())
def test_hypothesis_nothing(n):
    n + 1
'''

HELPER = '''
def check_even(n):
    assert n % 2 == 0


def compute(n):
    return n * 2
'''


def test_a_test_that_reaches_no_assertion_fails_by_name(tmp_path: Path) -> None:
    (tmp_path / "test_subject.py").write_text(SUBJECT)
    (tmp_path / "helper_checks.py").write_text(HELPER)
    # The plugin registers its own directory's helpers; this run's helper sits beside its test.
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "pytest.register_assert_rewrite('helper_checks')\n"
        "pytest_plugins = ['assertion_count']\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS)])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-rf",
         "-o", "enable_assertion_pass_hook=true", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=240,
    )
    failed = sorted(
        line.split("::")[1].split(" ")[0] for line in run.stdout.splitlines() if line.startswith("FAILED ")
    )
    assert failed == ["test_helper_returns", "test_hypothesis_nothing", "test_nothing"], run.stdout
    assert "test_subject.py::test_nothing reached no assertion" in run.stdout
    assert "3 failed, 5 passed" in run.stdout, run.stdout
