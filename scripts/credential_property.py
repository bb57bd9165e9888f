"""The long run of the credential property: thousands of generated repositories, not CI's dozen.

    PYTHONPATH=$PWD python scripts/credential_property.py [--readers 1000] [--commands 10]

Runs tests/test_security_credentials.py with GITCANARY_CREDENTIAL_EXAMPLES (repositories driven
through every reader of credentials in process: analysis of every provider type, notifications,
webhooks) and GITCANARY_CREDENTIAL_CLI_EXAMPLES (repositories driven through the real CLI: run,
plan, validate, status, history, audit, the dashboard), then prints how many repositories were
generated and how many credential bytes reached a repository-chosen address (the test fails on one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, default=1000, help="repositories through the readers")
    parser.add_argument("--commands", type=int, default=10, help="repositories through the CLI")
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GITCANARY_CREDENTIAL_EXAMPLES": str(args.readers),
        "GITCANARY_CREDENTIAL_CLI_EXAMPLES": str(args.commands),
    }
    started = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "--no-header", "--timeout=0",
         "--hypothesis-show-statistics", "tests/test_security_credentials.py"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    minutes = (time.monotonic() - started) / 60
    verdict = "0 credential bytes reached a repository-chosen address" if ran.returncode == 0 else "FAILED"
    print(
        f"{args.readers} repositories through the readers, {args.commands} through the CLI, "
        f"in {minutes:.1f} min: {verdict}"
    )
    return ran.returncode


if __name__ == "__main__":
    sys.exit(main())
