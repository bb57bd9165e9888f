"""The mutation verdict (scripts/mutate_verdict.py): a run is `killed` only when an assertion fails;
an exception of any other kind is `crashed`, and neither a crash nor a pass exits non-zero."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

BODIES = {
    "assert": "assert 1 == 2",
    "raises": "with pytest.raises(ValueError):\n        pass",
    "hypothesis": "check()",
    "type error": "None + 1",
    "pass": "assert 1 == 1",
}
HYPOTHESIS = '''
from hypothesis import given, settings, strategies as st


@settings(max_examples=20, derandomize=True, database=None)
@given(st.integers())
def check(n):
    assert n < 5
'''


@pytest.mark.parametrize(
    ("body", "verdict", "status"),
    [("assert", "killed", 1), ("raises", "killed", 1), ("hypothesis", "killed", 1),
     ("type error", "crashed", 0), ("pass", "survived", 0)],
)
def test_only_a_failing_assertion_kills(tmp_path: Path, body: str, verdict: str, status: int) -> None:
    (tmp_path / "test_subject.py").write_text(
        f"import pytest\n{HYPOTHESIS}\n\ndef test_subject():\n    {BODIES[body]}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-p", "mutate_verdict", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=240,
    )
    found = re.search(r"MUTANT-VERDICT: (\w+)", run.stdout)
    assert found is not None and found.group(1) == verdict, run.stdout
    assert run.returncode == status
