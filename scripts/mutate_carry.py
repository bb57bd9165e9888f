#!/usr/bin/env python3
"""Which of a package's mutants not run in the current session an earlier report already saw killed.

An earlier run's report (docs/mutation.md at commit REF) lists every mutant that was not killed
(survivors, equivalents, crashes, timeouts) by module, operator and source line. A mutant not run
now is counted "killed at REF" only when its source line existed unchanged at REF and the report
lists no non-kill with the same module, operator and line text (a line text that appears several
times, or an operator with several mutants on one line, makes all of them "unknown": conservative).
It says nothing about mutants whose tests changed: check that `git diff REF HEAD` on the package's
test files only adds tests before relying on it.

    python scripts/mutate_carry.py core f1ed5d0                  # counts
    python scripts/mutate_carry.py core f1ed5d0 --unknown FILE   # job ids to run first (FILE -> .rerun)
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package")
    parser.add_argument("ref", help="the commit whose docs/mutation.md lists the earlier run's non-kills")
    parser.add_argument("--unknown", help="write the job ids of the mutants not known killed here")
    args = parser.parse_args()

    def show(path: str) -> str | None:
        done = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.ref}:{path}"], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    report = show("docs/mutation.md") or ""
    listed = {
        (m.group(1), m.group(2), m.group(3))
        for m in re.finditer(r"^- `(gitcanary/\S+\.py):\d+` (core/\w+)(?: \(\w+\))?: `(.*?)`(?:: |$)", report, re.M)
    }
    old: dict[str, set[str]] = {}
    db = sqlite3.connect(ROOT / "build" / "mutation" / f"{args.package}.sqlite")
    done = {job for (job,) in db.execute("SELECT job_id FROM work_results")}
    carried, unknown = [], []
    rows = db.execute("SELECT job_id, module_path, operator_name, start_pos_row FROM mutation_specs")
    for job, module, operator, line in rows:
        if job in done:
            continue
        if module not in old:
            old[module] = {text.strip() for text in (show(module) or "").splitlines()}
        text = (ROOT / module).read_text().splitlines()[line - 1].strip()
        known = (module, operator, text) not in listed and text in old[module]
        (carried if known else unknown).append(job)
    print(f"{args.package}: {len(carried) + len(unknown)} mutants not run in this session; "
          f"{len(carried)} of them killed in the run reported at {args.ref}; {len(unknown)} unknown")
    if args.unknown:
        Path(args.unknown).write_text("\n".join(unknown))


if __name__ == "__main__":
    main()
