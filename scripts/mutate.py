#!/usr/bin/env python3
"""Mutation testing with cosmic-ray, per package, counting a kill only when an assertion fails.

For each named package the script copies the repository to build/mutation/<package>/ (mutants are
written into that copy, never into the worktree), lets cosmic-ray (https://cosmic-ray.readthedocs.io)
list the mutants of the package's modules, runs the package's tests against each one, and writes
the score into docs/mutation.md (between the generated markers) and build/mutation/<package>.json.

The test command is pytest with scripts/mutate_verdict.py, which sorts every test failure: a
failing `assert` (or `pytest.raises`/`pytest.fail`) is a kill; any other exception (a TypeError from
the mutated code, a fixture or import error) is a crash, and a run cut by cosmic-ray's timeout is a
timeout. Only kills count for the score:

    score = killed / (mutants run - mutants listed as equivalent)

Crashes and timeouts are reported beside it, never counted as kills. Skipped before running (the
report says how many): mutants inside type annotations (postponed by `from __future__ import
annotations`, so never evaluated; mypy checks them) and operators that only make type errors or
swap identity for equality (EXCLUDED_OPERATORS, each with its reason).

A surviving mutant is either killed by a new test or listed in scripts/mutate_equivalent.py with
why no test can tell it from the original; the report lists every other survivor.

    nice -n 19 python scripts/mutate.py core            # one package
    nice -n 19 python scripts/mutate.py core judges     # several, one after the other
    python scripts/mutate.py --list                     # the packages and their tests
    python scripts/mutate.py --report                   # rewrite docs/mutation.md from build/mutation
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "mutation.md"
BEGIN, END = "<!-- mutate.py: begin -->", "<!-- mutate.py: end -->"

sys.path.insert(0, str(ROOT / "scripts"))
from mutate_equivalent import EQUIVALENT  # noqa: E402


@dataclass(frozen=True)
class Package:
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    # A module that only some of the tests reach (none of the others imports it, directly or through
    # the package): its mutants run against those alone, with the same outcome in less time.
    focus: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def tests_for(self, module: str) -> tuple[str, ...]:
        return dict(self.focus).get(module, self.tests)


PACKAGES: dict[str, Package] = {
    "core": Package(
        ("gitcanary/core",),
        (
            "tests/test_urlmap_mutants.py",
            "tests/test_rollout.py",
            "tests/test_gates.py",
            "tests/test_manual_rules.py",
            "tests/test_rollout_holds.py",
            "tests/test_status_ladder.py",
            "tests/test_rollout_mirroring.py",
            "tests/test_rollout_cluster.py",
            "tests/test_core_mutants.py",
            "tests/test_ladder_mutants.py",
            "tests/test_rollout_mutants.py",
            "tests/test_core_total_mutants.py",
            "tests/test_core_values_mutants.py",
        ),
        # Nothing in gitcanary/core imports urlmap; of the tests above only these two do.
        focus=(("gitcanary/core/urlmap.py", ("tests/test_urlmap_mutants.py", "tests/test_core_values_mutants.py")),),
    ),
    # Trust boundaries (docs/DESIGN "Trust boundaries"): credentials redacted at every output,
    # names checked as Kubernetes names, commit messages sanitized and trailers unforgeable, paths
    # resolved inside the clone, Markdown from repository values escaped.
    "trust": Package(
        (
            "gitcanary/redaction.py",
            "gitcanary/spec/names.py",
            "gitcanary/git/trailers.py",
            "gitcanary/manifests/paths.py",
            "gitcanary/forge/markdown.py",
        ),
        (
            "tests/test_trust_mutants.py",
            "tests/test_trailer_properties.py",
            "tests/test_security_trailers.py::test_git_and_gitcanary_read_the_same_single_trailer_block",
            "tests/test_path_properties.py",
            # The builders' tests; the one through each forge's local server reaches the same builders.
            *(f"tests/test_forge_escaping.py::{test}" for test in (
                "test_untrusted_text_renders_as_text_in_every_builder",
                "test_a_named_example_is_escaped_and_readable",
                "test_the_check_fails_on_unescaped_text",
                "test_release_notes_excerpt_is_linear_and_remembered",
                "test_excerpt_keeps_words_and_drops_markup",
            )),
        ),

    ),
    "judges": Package(("gitcanary/analysis/judges",), ("tests/test_judge_compare.py",)),
    # The pure functions' tests; the end-to-end ones (a real repository, kustomize) take minutes
    # each under load and reach the same functions.
    "config-tracking": Package(
        ("gitcanary/manifests/config_tracking.py",),
        (
            *(f"tests/test_config_tracking.py::{test}" for test in (
                "test_every_reference_flagger_tracks_is_found_init_containers_included",
                "test_the_primary_points_at_the_copies_and_only_at_tracked_ones",
                "test_disabled_annotation_registry_secrets_and_missing_objects_are_not_tracked",
                "test_sops_secret_is_copied_as_it_is_but_for_its_name_when_its_mac_covers_encrypted_values_only",
                "test_sops_secret_whose_mac_covers_its_name_stays_shared_with_a_warning",
                "test_external_secret_copy_writes_the_primary_secret",
                "test_strict_sealed_secret_stays_shared_with_a_warning_naming_it",
                "test_revision_covers_config_content_and_is_the_template_hash_without_config",
            )),
            "tests/test_config_tracking_mutants.py",
        ),
    ),
    "image-quarantine": Package(
        ("gitcanary/manifests/image_quarantine.py",),
        ("tests/test_quarantine_rule.py", "tests/test_hand_made_bugs.py"),
    ),
    "render-cache": Package(
        ("gitcanary/manifests/render_cache.py",),
        ("tests/test_render_cache.py", "tests/test_hand_made_bugs.py"),
    ),
    "commit-path": Package(
        ("gitcanary/git/editable_tree.py",),
        ("tests/test_editable_tree.py", "tests/test_workspace_commit.py", "tests/test_hand_made_bugs.py"),
    ),
    "providers": Package(
        ("gitcanary/analysis/providers",),
        tuple(sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_provider_*.py"))),
    ),
    "escaping": Package(
        ("gitcanary/service/dashboard.py", "gitcanary/audit/report.py"),
        ("tests/test_dashboard.py", "tests/test_audit_e2e.py", "tests/test_hand_made_bugs.py"),
    ),
}

# Operators left out, with why: each would add mutants that no assertion can catch by design.
EXCLUDED_OPERATORS: dict[str, str] = {
    # 1 << n, a ^ b, a ** b ... in place of + - * /: type errors or absurd values; the arithmetic
    # swaps among + - * / (kept) are the ones a wrong formula is made of.
    r"core/ReplaceBinaryOperator_.*_(LShift|RShift|BitXor|Pow|Mod|FloorDiv)$": "exotic arithmetic",
    # `|` here is a type union or a set/dict union; `&` is kept as the meaningful swap.
    r"core/ReplaceBinaryOperator_BitOr_(?!BitAnd$).*": "union operator into arithmetic",
    # `x is None` -> `x == None` behaves the same for every object here; `is` -> `<` is a TypeError.
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(?!Is$|IsNot$).*": "identity into equality/order",
    r"core/ReplaceComparisonOperator_\w+_(Is|IsNot)$": "equality/order into identity (interning-dependent)",
    # cosmic-ray reads `**` of dict unpacking (`{**a, **b}`) as a power; none of the measured modules
    # raises to a power, and the mutant is not Python that runs.
    r"core/ReplaceBinaryOperator_Pow_.*": "dict unpacking read as a power",
}


def test_args(package: Package, module: str = "") -> list[str]:
    tests = package.tests_for(module) if module else package.tests
    return [
        "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
        # The mutation verdict decides pass/fail; pytest-timeout's own failure is a pytest.fail and
        # would pass for an assertion: cosmic-ray's timeout bounds each run instead.
        "-p", "no:timeout", "-p", "no:assertion_count", "-o", "enable_assertion_pass_hook=false",
        # A mutant that breaks one test module's imports leaves the other modules' tests to judge it.
        "--continue-on-collection-errors",
        "-p", "mutate_verdict",
        *(test for test in tests if (ROOT / test.partition("::")[0]).exists()),
    ]


def forked_pytest(args: list[str], timeout: float, imports_to: Path | None = None) -> tuple[Any, str]:
    """Run pytest on `args` in a forked child: (cosmic-ray's TestOutcome, the child's output).

    The parent has the third-party modules the tests use already imported (preimport), never
    gitcanary's or the tests' own: the child imports those from disk, mutant included. This saves
    the interpreter's start and most imports per mutant, the bulk of a run on a busy machine.
    """
    from cosmic_ray.work_item import TestOutcome

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: pytest, its output into the pipe, its exit status as ours
        status = 3
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.setpgid(0, 0)
            import pytest

            status = int(pytest.main(args))
            if imports_to is not None:
                imports_to.write_text("\n".join(sorted(sys.modules)))
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([pipe], [], [], left)
            if ready:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return TestOutcome.KILLED, "timeout"
    output = b"".join(chunks).decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    return (TestOutcome.SURVIVED if code == 0 else TestOutcome.KILLED), output


def under(name: str, mutated: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in mutated)


def pulls_in(name: str, mutated: tuple[str, ...]) -> bool:
    """Whether importing `name` imports a module under test (tried in a forked child, so the
    parent stays clean): such a module would bind the unmutated code for every mutant."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            importlib.import_module(name)
            code = int(any(under(loaded, mutated) for loaded in sys.modules))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) != 0


def preimport(modules: list[str], work: Path, mutated: tuple[str, ...]) -> None:
    """Import in this (parent) process what the tests imported, except the modules under test, the
    gitcanary modules that import them, and the tests (which import them)."""
    tests = {p.stem for p in (work / "tests").glob("*.py")}
    own = tests | {p.stem for p in (work / "scripts").glob("*.py")}
    for name in modules:
        top = name.partition(".")[0]
        if top in own or top in ("tests", "__main__", "__mp_main__") or name in sys.modules:
            continue
        if top == "gitcanary" and (under(name, mutated) or pulls_in(name, mutated)):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    stray = [name for name in sys.modules
             if under(name, mutated) or name.partition(".")[0] in ("tests", *tests)]
    if stray:
        raise SystemExit(f"preimport pulled in the code under test: {stray[:5]}")


# (i, n): this process runs the pending mutants whose job id hashes to i of n (--shard i/n), each
# shard in its own copy of the repository, all writing into the one session database.
SHARD = (0, 1)


def in_shard(job_id: str) -> bool:
    index, count = SHARD
    return int(job_id[-8:], 16) % count == index if count > 1 else True


def execute(session: Path, package: Package, timeout: float) -> None:
    """cosmic-ray's `exec` with the forked runner: each pending mutant applied, tested, restored."""
    from cosmic_ray import mutating
    from cosmic_ray.work_db import WorkDB, use_db

    current: list[list[str]] = [test_args(package)]
    mutating.run_tests = lambda _command, limit: forked_pytest(current[0], limit)
    rerun_file = session.with_suffix(".rerun")
    first = set(rerun_file.read_text().split()) if rerun_file.exists() else set()
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted((item for item in db.pending_work_items if in_shard(item.job_id)),
                         key=lambda item: item.job_id not in first)
        for done, item in enumerate(pending, 1):
            current[0] = test_args(package, str(item.mutations[0].module_path))
            result = mutating.mutate_and_test(item.mutations, " ".join(current[0]), timeout)
            db.set_result(item.job_id, result)
            if done % 25 == 0 or done == len(pending):
                print(f"  {done}/{len(pending)} mutants", flush=True)


def copy_tree(work: Path) -> None:
    ignore = shutil.ignore_patterns(".git", "build", "site", ".venv", "__pycache__", ".pytest_cache",
                                    ".ruff_cache", ".mypy_cache", ".benchmarks")
    shutil.copytree(ROOT, work, ignore=ignore)


def annotation_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every annotation in a module: mutants there are never executed."""
    tree = ast.parse(path.read_text())
    spans = []
    for node in ast.walk(tree):
        notes: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            notes.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            notes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                spans.append(((note.lineno, note.col_offset), (note.end_lineno or 0, note.end_col_offset or 0)))
    return spans


def source_line(work: Path, module: str, line: int) -> str:
    return (work / module).read_text().splitlines()[line - 1].strip()


def skip_excluded(work: Path, session: Path) -> dict[str, int]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    skipped: dict[str, int] = {}
    patterns = {re.compile(pattern): why for pattern, why in EXCLUDED_OPERATORS.items()}
    spans: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            module = str(mutation.module_path)
            why = next((why for pattern, why in patterns.items() if pattern.match(mutation.operator_name)), None)
            if why is None:
                if module not in spans:
                    spans[module] = annotation_spans(work / module)
                start = tuple(mutation.start_pos)
                if any(lo <= start < hi for lo, hi in spans[module]):
                    why = "inside a type annotation"
            if why is not None:
                skipped[why] = skipped.get(why, 0) + 1
                db.set_result(item.job_id, WorkResult(output=f"excluded: {why}", worker_outcome=WorkerOutcome.SKIPPED))
    return skipped


def verdict(output: str | None) -> str:
    if output == "timeout":
        return "timeout"
    found = re.search(r"MUTANT-VERDICT: (\w+)", output or "")
    return found.group(1) if found else "crashed"


def run_package(name: str, package: Package) -> dict[str, Any]:

    work = BUILD / (name if SHARD[1] == 1 else f"{name}.shard{SHARD[0]}")
    session = BUILD / f"{name}.sqlite"
    fresh = not session.exists()
    if fresh and SHARD[1] > 1:
        raise SystemExit(f"{name}: start the session unsharded (it lists the mutants), then shard it")
    # A fresh copy each time (an interrupted run may have left a mutant on disk); the session's
    # mutant positions stay valid as long as the package's source is unchanged.
    shutil.rmtree(work, ignore_errors=True)
    copy_tree(work)
    os.chdir(work)
    sys.path[:0] = [str(work), str(work / "scripts")]
    os.environ["PYTHONPATH"] = f"{work}:{work / 'scripts'}"
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant is never read back from a stale .pyc
    sys.dont_write_bytecode = True
    args = test_args(package)
    # The unmutated package must pass: otherwise every mutant would look killed.
    started = time.monotonic()
    outcome, output = forked_pytest(args, timeout=600, imports_to=BUILD / f"{name}.imports")
    baseline = time.monotonic() - started
    if verdict(output) != "survived":
        raise SystemExit(f"{name}: the tests do not pass on the unmutated copy:\n{output[-3000:]}")
    mutated = tuple(module.removesuffix(".py").replace("/", ".") for module in package.modules)
    preimport((BUILD / f"{name}.imports").read_text().split(), work, mutated)
    timeout = max(30.0, 4 * baseline)
    config = work / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(list(package.modules))}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(' '.join(args))}\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n"
    )
    skipped: dict[str, int] = {}
    if fresh:
        subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=work, check=True)
        skipped = skip_excluded(work, session)
        (BUILD / f"{name}.skipped.json").write_text(json.dumps(skipped))
    else:
        skipped = json.loads((BUILD / f"{name}.skipped.json").read_text())
    print(f"{name}: baseline {baseline:.1f}s, timeout {timeout:.0f}s, running the mutants", flush=True)
    (BUILD / f"{name}.baseline").write_text(f"{baseline:.1f}")
    execute(session, package, timeout)
    return summarize(name, package)


def equivalent_reason(module: str, operator: str, line: int, column: int) -> str | None:
    """The reason listed for this mutant in mutate_equivalent.py: keyed by the line's text, or by the
    line's text and the fragment of it the mutated operator sits in (for a line with several)."""
    raw = (ROOT / module).read_text().splitlines()[line - 1]
    text = raw.strip()
    at = column - (len(raw) - len(raw.lstrip()))
    for key, reason in EQUIVALENT.items():
        if key[:3] != (module, operator, text):
            continue
        if len(key) == 3:
            return reason
        start = text.find(key[3])
        if start <= at < start + len(key[3]):
            return reason
    return None


def summarize(name: str, package: Package) -> dict[str, Any]:
    """The package's score from its session so far (a run cut short reports the mutants it ran)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    session = BUILD / f"{name}.sqlite"
    skipped = json.loads((BUILD / f"{name}.skipped.json").read_text())
    baseline = float((BUILD / f"{name}.baseline").read_text())
    counts = {"killed": 0, "survived": 0, "crashed": 0, "timeout": 0, "equivalent": 0}
    survivors, crashes = [], []
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sum(1 for _ in db.pending_work_items)
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            mutation = item.mutations[0]
            late = next((why for pattern, why in EXCLUDED_OPERATORS.items()
                         if re.match(pattern, mutation.operator_name)), None)
            if late is not None:  # an exclusion added after the session was started
                skipped[late] = skipped.get(late, 0) + 1
                continue
            module = str(mutation.module_path)
            line = mutation.start_pos[0]
            text = source_line(ROOT, module, line)
            where = {"module": module, "line": line, "operator": mutation.operator_name,
                     "occurrence": mutation.occurrence, "source": text}
            outcome = verdict(result.output)
            if outcome == "survived":
                reason = equivalent_reason(module, mutation.operator_name, line, mutation.start_pos[1])
                if reason:
                    counts["equivalent"] += 1
                    survivors.append({**where, "equivalent": reason})
                    continue
                survivors.append(where)
            elif outcome in ("crashed", "timeout"):
                crashes.append({**where, "outcome": outcome})
            counts[outcome] += 1
    ran = sum(counts.values())
    score = counts["killed"] / (ran - counts["equivalent"]) if ran > counts["equivalent"] else 0.0
    summary = {"package": name, "modules": list(package.modules), "tests": list(package.tests), "ran": ran,
               "not_run": pending,
               **counts, "skipped": skipped, "score": round(100 * score, 1), "baseline_seconds": round(baseline, 1),
               "survivors": survivors, "crashes": crashes, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (BUILD / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print(f"{name}: {counts['killed']} killed of {ran - counts['equivalent']} ({summary['score']}%), "
          f"{counts['survived']} survived, {counts['equivalent']} equivalent, {counts['crashed']} crashed, "
          f"{counts['timeout']} timed out", flush=True)
    return summary


def write_report() -> None:
    rows, details = [], []
    for name in PACKAGES:
        file = BUILD / f"{name}.json"
        if not file.exists():
            rows.append(f"| {name} | not run | | | | | | | | | | |")
            continue
        s = json.loads(file.read_text())
        rows.append(f"| {name} | {s['date']} | `nice -n 10 python scripts/mutate.py {name}` | "
                    f"{s['ran'] + s['not_run']} | **{s['score']}%** | {s['killed']} | {s['survived']} | "
                    f"{s['equivalent']} | {s['crashed']} | {s['timeout']} | {sum(s['skipped'].values())} | "
                    f"{s['not_run']} |")
        details.append(f"\n### {name}\n\nModules: {', '.join(f'`{m}`' for m in s['modules'])}; run on {s['date']} "
                       f"against {len(s['tests'])} test files (baseline {s['baseline_seconds']} s).\n")
        if s["skipped"]:
            details.append("Skipped before running: " + "; ".join(f"{n} {why}" for why, n in s["skipped"].items()) + ".\n")
        unexplained = [v for v in s["survivors"] if "equivalent" not in v]
        equivalent = [v for v in s["survivors"] if "equivalent" in v]
        if unexplained:
            details.append("\nSurvivors not yet killed (a test is missing):\n")
            details += [f"- `{v['module']}:{v['line']}` {v['operator']}: `{v['source']}`" for v in unexplained]
        if equivalent:
            details.append("\nEquivalent survivors (no test can tell them from the original):\n")
            details += [f"- `{v['module']}:{v['line']}` {v['operator']}: `{v['source']}`: {v['equivalent']}"
                        for v in equivalent]
        if s["crashes"]:
            details.append("\nCrashes and timeouts (not counted as kills):\n")
            details += [f"- `{v['module']}:{v['line']}` {v['operator']} ({v['outcome']}): `{v['source']}`"
                        for v in s["crashes"]]
    table = ["| package | date | command | mutants | score (of the mutants run) | killed | survived | equivalent "
             "| crashed | timed out | skipped | not run yet |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
             *rows]
    generated = "\n".join([BEGIN, *table, *details, END])
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + generated + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help=f"any of: {', '.join(PACKAGES)}")
    parser.add_argument("--list", action="store_true", help="print the packages, their modules and tests")
    parser.add_argument("--report", action="store_true",
                        help="only summarize the named packages' sessions so far and rewrite docs/mutation.md")
    parser.add_argument("--fresh", action="store_true", help="drop a previous session instead of resuming it")
    parser.add_argument("--shard", default="0/1",
                        help="i/n: run only the i-th of n parts of the pending mutants (start n processes)")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="resume, running the survivors (and crashes) again against today's tests")
    args = parser.parse_args()
    global SHARD
    index, _, count = args.shard.partition("/")
    SHARD = (int(index), int(count))
    if args.list:
        for name, package in PACKAGES.items():
            print(f"{name}: {' '.join(package.modules)}\n  tests: {' '.join(package.tests)}")
        return 0
    unknown = [name for name in args.packages if name not in PACKAGES]
    if unknown:
        parser.error(f"unknown package {unknown}: choose from {', '.join(PACKAGES)}")
    BUILD.mkdir(parents=True, exist_ok=True)
    if args.report:
        for name in args.packages:
            if (BUILD / f"{name}.sqlite").exists():
                summarize(name, PACKAGES[name])
        write_report()
        return 0
    for name in args.packages:
        session = BUILD / f"{name}.sqlite"
        if args.fresh:
            session.unlink(missing_ok=True)
        elif args.rerun_survivors and session.exists() and SHARD[0] == 0:
            # Shard 0 reopens the survivors for every shard: start it first.
            again = ("output LIKE '%MUTANT-VERDICT: survived%' OR output LIKE '%MUTANT-VERDICT: crashed%' "
                     "OR output = 'timeout'")
            with sqlite3.connect(session) as db:
                rerun = [job for (job,) in db.execute(f"SELECT job_id FROM work_results WHERE {again}")]
                db.execute(f"DELETE FROM work_results WHERE {again}")
            # Run first, before the mutants never run: what new tests changed shows soonest.
            (BUILD / f"{name}.rerun").write_text("\n".join(rerun))
        run_package(name, PACKAGES[name])
        write_report()
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
