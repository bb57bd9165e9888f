"""Run the votes model-based test (tests/test_forge_votes_model.py) over many sequences per forge.

Usage: python scripts/votes_model.py [SEQUENCES]   (default 500 per forge; CI runs 10)

Each sequence opens a fresh gate PR on the local GitHub, GitLab and Gitea servers, plays random
forge events (votes, comments, dismissals, close, reopen, push) and compares what gitcanary
reads (decision, closer and reason, trailers, history rows) with the event-log oracle;
pytest fails on the first disagreement and prints it (hypothesis then shrinks it to a minimal sequence).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    count = sys.argv[1] if len(sys.argv) > 1 else "500"
    env = {**os.environ, "GITCANARY_VOTE_SEQUENCES": count, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    ran = subprocess.run(
        # No per-test timeout: hypothesis runs every sequence inside one test call.
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-q",
            "--timeout=0",
            "tests/test_forge_votes_model.py",
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    verdict = "0 disagreements" if ran.returncode == 0 else "failed: a disagreement or an error (above)"
    took = time.monotonic() - started
    print(f"{count} sequences per forge (GitHub, GitLab, Gitea): {verdict} in {took:.0f} s")
    return ran.returncode


if __name__ == "__main__":
    raise SystemExit(main())
