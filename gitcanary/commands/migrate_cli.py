"""`gitcanary migrate`: the read-only check that a cluster running Flagger is ready to hand over."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gitcanary.errors import GitcanaryError

console = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)


def migrate(
    path: Annotated[Path, typer.Argument(help="Checkout of the config repository.")] = Path("."),
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            help="Kubeconfig of the cluster Flagger runs in (default: $KUBECONFIG, ~/.kube/config)."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="spec.provider for canaries that set none (as run's --provider).",
            envvar="GITCANARY_PROVIDER",
        ),
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text or json.")] = "text",
) -> None:
    """Check, reading the cluster only, that gitcanary can take over from Flagger without a traffic gap:
    Flagger stopped, no Canary object left to garbage-collect what gitcanary generates, live selectors
    the same. Exit 1 while something blocks. Steps: docs/migrate-from-flagger.md."""
    from gitcanary.cluster import api_client
    from gitcanary.commands.migrate import check

    try:
        api = api_client("on", kubeconfig)
        assert api is not None
        findings = check(path, api, provider)
    except GitcanaryError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    if output == "json":
        print(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for finding in findings:
            console.print(str(finding), style="red" if finding.blocking else None, highlight=False)
    if any(f.blocking for f in findings):
        raise typer.Exit(1)
    if output != "json":
        console.print("ready: gitcanary can take over; see docs/migrate-from-flagger.md", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
