"""How `gitcanary plan` and `run --dry-run` print a plan, and `plan` as `run`'s options minus the loop."""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    # Only the printers need them, once a plan exists: the CLI registers `plan` without loading
    # the reconciler (startup of every other command).
    from gitcanary.commands.plan import Plan, PlannedCommit

# `run` options that make no sense for one planned tick: it is always one tick, always a plan.
# Nor those about its own clone: a plan decides in a throwaway one and commits nothing that stays.
_NOT_FOR_PLAN = (
    "once",
    "dry_run",
    "listen",
    "interval",
    "webhook_secret_file",
    "workdir",
    "signing_key",
    "signing_format",
    # Nor replicas: a plan writes nothing, so it needs no leader.
    "leader_election",
    "lease_duration",
    "lease_namespace",
)


# `run` takes several --repo; a plan is of one repository.
_PLAN_REPO = Annotated[
    list[str],
    typer.Option(
        "--repo", help="URL or path of the config repository.", envvar="GITCANARY_REPO", show_default="."
    ),
]


def print_plan(plan: Plan, console: Console, err: Console, as_json: bool = False) -> None:
    """Per canary: where it is, what it would commit (subject, then the diff), or why nothing."""
    if as_json:
        console.print_json(json.dumps(plan.to_json()))
        return
    for source, problem in sorted(plan.errors.items()):
        err.print(Text(f"halted {source}: {problem}", style="red"))
    if not plan.canaries:
        console.print("no canary in the repository", highlight=False)
    for canary in plan.canaries:
        where = f"{canary.phase} {canary.weight}%" if canary.phase else "Uninitialized"
        console.print(Text(f"{canary.key} ({where} now)", style="bold"))
        for warning in canary.warnings:
            err.print(Text(f"  warning: {warning}", style="yellow"))
        if canary.error:
            console.print(Text(f"  would halt: {canary.error}", style="red"))
        elif canary.would_call:
            console.print(Text(f"  {canary.would_call}", style="yellow"))
        elif not canary.commits:
            console.print(f"  no commit: {canary.waiting or 'nothing to do'}", highlight=False)
        print_commits(canary.commits, console)
    committing = sum(len(c.commits) for c in plan.canaries)
    console.print(f"plan at {plan.head[:8]}: {committing} commit(s); nothing was pushed", highlight=False)


def print_commits(commits: list[PlannedCommit], console: Console) -> None:
    for commit in commits:
        step = commit.trailers.get("Phase", "")
        if commit.trailers.get("Weight"):
            step += f" {commit.trailers['Weight']}%"
        console.print(
            Text(f"  would commit: {commit.subject}" + (f" -> {step}" if step else ""), style="green")
        )
        for line in commit.diff.splitlines():
            console.print(_diff_line(line), highlight=False)


def _diff_line(line: str) -> Text:
    if line.startswith(("+++", "---", "diff ", "index ")):
        style = "bold"
    elif line.startswith("+"):
        style = "green"
    elif line.startswith("-"):
        style = "red"
    elif line.startswith("@@"):
        style = "cyan"
    else:
        style = ""
    return Text("    " + line, style=style)


def plan_command(run: Callable[..., None]) -> Callable[..., None]:
    """`gitcanary plan`: `run`'s options (same repository, metrics, cluster, provider...), one tick,
    printed as a plan; `run` must accept `once` and `dry_run`."""

    @functools.wraps(run)
    def plan(**kwargs: Any) -> None:
        run(**kwargs, once=True, dry_run=True)

    # run's annotations are strings naming cli.py's globals: resolve them there, once.
    hints = typing.get_type_hints(run, include_extras=True)
    parameters = [
        p.replace(annotation=_PLAN_REPO, default=["."])
        if name == "repo"
        else p.replace(annotation=hints[name])
        for name, p in inspect.signature(run).parameters.items()
        if name not in _NOT_FOR_PLAN
    ]
    plan.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    plan.__annotations__ = {p.name: p.annotation for p in parameters}
    plan.__doc__ = (
        "Show what one tick of `run` would commit, per canary (the transition and its diff), without "
        "pushing or changing any repository: it decides in a throwaway clone, as `run` would."
    )
    del plan.__wrapped__  # typer must read the signature above, not run's
    return plan


__all__ = ["plan_command", "print_commits", "print_plan"]
