"""`gitcanary` command line: run the reconciler, initialize canaries, show status, validate a repo."""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from gitcanary import __version__
from gitcanary.commands.manual_cli import register as register_manual_commands
from gitcanary.commands.run_replicas import lease_api, repo_and_branch, run_replicas, settings_for
from gitcanary.errors import GitcanaryError
from gitcanary.git.trailers import parse_trailers
from gitcanary.manifests import yamlio
from gitcanary.redaction import redact, register, register_url

if TYPE_CHECKING:
    from gitcanary.cluster import ClusterObserver
    from gitcanary.commands.operations import CanaryView
    from gitcanary.service.http import HttpServer
    from gitcanary.service.reconciler import Reconciler
    from gitcanary.service.settings import Settings

app = typer.Typer(
    help="Progressive delivery for GitOps where Git is the only writer: canary releases driven by commits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help, like kubectl and flux: no boxes, no `<str>` placeholders, and it pipes cleanly.
    rich_markup_mode=None,
)


class PlainCommand(TyperCommand):
    """A command whose help names value types as kubectl does (`--repo string`), not `<str>`."""

    _LABELS = {"text": "string", "integer": "int", "float": "float", "path": "path", "choice": "string"}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for param in self.params:
            if param.param_type_name == "option" and not getattr(param, "is_flag", False):
                kind = getattr(param, "type", None)
                name = getattr(kind, "name", "string")
                param.metavar = param.metavar or self._LABELS.get(name, name)
            elif param.param_type_name == "argument":
                # An argument's name says what it is (CANARY, PATH); typer would add `<str>` after it.
                setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010 - an instance override


# Piped output (scripts, CI, tests) must not be cut at 80 columns the way a narrow terminal is.
console = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

RepoOpt = Annotated[
    str, typer.Option("--repo", help="URL or path of the config repository.", envvar="GITCANARY_REPO")
]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        help="spec.provider for canaries that set none: istio, linkerd, smi:v1alpha2, gatewayapi:v1, "
        "nginx, kubernetes... (default: istio, as in Flagger). Give init, status and validate the same "
        "value as run.",
        envvar="GITCANARY_PROVIDER",
    ),
]


class JudgeName(StrEnum):
    THRESHOLD = "threshold"
    COMPARE = "compare"


BranchOpt = Annotated[
    str, typer.Option("--branch", help="Branch the applier (Flux, Fleet) tracks.", envvar="GITCANARY_BRANCH")
]
ClusterOpt = Annotated[
    str,
    typer.Option(
        "--cluster",
        help="Read the cluster (read-only) to know a commit is applied and its workloads ready: auto "
        "(in-cluster service account, else a kubeconfig if there is one), on (must), off (the --settle "
        "delay stands in: a guess).",
        envvar="GITCANARY_CLUSTER",
    ),
]
RewriteUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rewrite-url",
        help="FROM=TO (repeatable): a webhook URL or metrics address under FROM (same scheme, host, "
        "port, and path prefix) is sent to TO instead, the rest of its path kept; for in-cluster names "
        "reached from outside, e.g. http://flagger-loadtester.prod/=http://127.0.0.1:8081/ over a "
        "port-forward. The variable takes rules separated by spaces.",
        envvar="GITCANARY_REWRITE_URL",
    ),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file for --cluster (default: $KUBECONFIG, then ~/.kube/config).",
        envvar="GITCANARY_KUBECONFIG",
    ),
]


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        console.print(f"gitcanary {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    max_yaml_bytes: Annotated[
        int,
        typer.Option(
            "--max-yaml-bytes",
            min=1,
            help="Largest YAML file gitcanary parses from the repository; a larger one is an error for "
            "that file (aliases and nesting are bounded too).",
            envvar="GITCANARY_MAX_YAML_BYTES",
        ),
    ] = yamlio.MAX_BYTES,
) -> None:
    """gitcanary reads Flagger Canary manifests in a Git repo and commits each step of their rollout."""
    yamlio.configure(max_bytes=max_yaml_bytes)


@app.command()
def run(
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
            help="URL or path of a config repository; repeat it to serve several from one process, each "
            "as URL or URL#BRANCH (BRANCH overrides --branch for that one).",
            envvar="GITCANARY_REPO",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file listing repositories to serve (repositories: a list of repo and optional "
            "branch), added to any --repo. See docs/replicas.md.",
            envvar="GITCANARY_CONFIG",
        ),
    ] = None,
    branch: BranchOpt = "main",
    prometheus: Annotated[
        str,
        typer.Option(
            help="Prometheus for builtin metrics, and for templates whose "
            "address does not resolve from here.",
            envvar="GITCANARY_PROMETHEUS",
        ),
    ] = "http://127.0.0.1:9090",
    interval: Annotated[
        float, typer.Option(help="Seconds between polls of the repository.", envvar="GITCANARY_POLL_INTERVAL")
    ] = 10.0,
    settle: Annotated[
        float,
        typer.Option(
            help="Seconds a commit is given to be applied before the next "
            "step is measured, when there is no cluster access (see --cluster).",
            envvar="GITCANARY_SETTLE",
        ),
    ] = 10.0,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where gitcanary keeps its own clone [default: ~/.cache/gitcanary/<hash>].",
            envvar="GITCANARY_WORKDIR",
        ),
    ] = None,
    author_name: Annotated[
        str, typer.Option(help="Author and committer name of its commits.", envvar="GITCANARY_AUTHOR_NAME")
    ] = "gitcanary",
    author_email: Annotated[
        str,
        typer.Option(
            help="Author and committer email of its commits (history --verify checks it).",
            envvar="GITCANARY_AUTHOR_EMAIL",
        ),
    ] = "gitcanary@users.noreply.local",
    signing_key: Annotated[
        str | None,
        typer.Option(
            help="Sign commits with this key: a GPG key id, or an SSH key file with --signing-format ssh.",
            envvar="GITCANARY_SIGNING_KEY",
        ),
    ] = None,
    signing_format: Annotated[
        str, typer.Option(help="openpgp, ssh or x509 (git's gpg.format).", envvar="GITCANARY_SIGNING_FORMAT")
    ] = "openpgp",
    listen: Annotated[
        str,
        typer.Option(
            help="HOST:PORT for the HTTP endpoints (the dashboard at /, health, metrics, push webhooks); "
            "port 0 picks a free one, an empty value serves nothing. Not served with --once. The default "
            "serves this machine only; in a cluster give 0.0.0.0:8080 (the chart and deploy/ do).",
            envvar="GITCANARY_LISTEN",
        ),
    ] = "127.0.0.1:8080",
    once: Annotated[bool, typer.Option("--once", help="Do one tick and exit (scripts, tests, CI).")] = False,
    cluster: ClusterOpt = "auto",
    kubeconfig: KubeconfigOpt = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Debug lines too, and the HTTP client's and scheduler's own lines (off by default).",
        ),
    ] = False,
    commit_url: Annotated[
        str | None,
        typer.Option(
            help="Link to a commit in notifications, {sha} replaced: "
            "https://github.com/acme/fleet/commit/{sha}.",
            envvar="GITCANARY_COMMIT_URL",
        ),
    ] = None,
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where AlertProvider and MetricTemplate secretRefs are read: "
            "<dir>/<namespace>/<secret>/<key> (env GITCANARY_SECRET_<NAMESPACE>_<SECRET>_<KEY> wins); "
            "default /etc/gitcanary/secrets.",
            envvar="GITCANARY_SECRETS_DIR",
        ),
    ] = None,
    credential_endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--credential-endpoint",
            help="An endpoint (its origin: scheme, host, port) that may receive credentials besides "
            "--prometheus and providers' official ones (repeatable; GITCANARY_CREDENTIAL_ENDPOINTS, "
            "space-separated). A MetricTemplate whose address is elsewhere gets no secretRef value, "
            "cloud identity or cluster token: its check fails, naming this option.",
            envvar="GITCANARY_CREDENTIAL_ENDPOINTS",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="json: one JSON object per line on stderr (time, level, message, canary, commit...); "
            "text: lines for people; auto: text when stderr is a terminal, else json (a pod's log, a "
            "pipe). With json, --once still prints its commits on stdout.",
            envvar="GITCANARY_LOG_FORMAT",
        ),
    ] = "auto",
    write_mode: Annotated[
        str,
        typer.Option(
            help="direct (push to BRANCH) or pull-request (each step a PR gitcanary merges when mergeable); "
            "a canary's gitcanary.io/write-mode annotation wins.",
            envvar="GITCANARY_WRITE_MODE",
        ),
    ] = "direct",
    promotion_gate: Annotated[
        bool,
        typer.Option(
            help="One PR per rollout carrying the promotion: approving it promotes, closing it rolls back; "
            "a canary's gitcanary.io/promotion-gate annotation wins.",
            envvar="GITCANARY_PROMOTION_GATE",
        ),
    ] = False,
    merge_method: Annotated[
        str,
        typer.Option(
            help="How gitcanary merges its PRs: merge, squash or rebase.", envvar="GITCANARY_MERGE_METHOD"
        ),
    ] = "merge",
    reviewers: Annotated[
        str,
        typer.Option(
            help="Asked to review a gate PR once its promotion commit is there, with the canary's "
            "gitcanary.io/reviewers and the CODEOWNERS of its file: comma-separated logins and "
            "team:SLUG (or @org/SLUG) teams, e.g. alice,team:platform.",
            envvar="GITCANARY_REVIEWERS",
        ),
    ] = "",
    metric_link: Annotated[
        str,
        typer.Option(
            help="A link per metric under the gate's evidence, e.g. "
            "'https://grafana.example/explore?query={query}'; {metric}, {query} (as gitcanary sends it), "
            "{namespace}, {name}, {start} and {end} (Unix seconds) are filled in URL-encoded.",
            envvar="GITCANARY_METRIC_LINK",
        ),
    ] = "",
    release_notes: Annotated[
        str,
        typer.Option(
            help="Where the gate finds an image's release notes on the same forge: comma-separated "
            "IMAGE=OWNER/NAME or CONTAINER=OWNER/NAME; a canary's gitcanary.io/source-repo wins, and "
            "an image not named is looked for in the repository its path names (ghcr.io/acme/app: "
            "acme/app).",
            envvar="GITCANARY_RELEASE_NOTES",
        ),
    ] = "",
    release_notes_from: Annotated[
        str,
        typer.Option(
            help="Owners (acme) or repositories (acme/app) whose releases the gate may quote when "
            "the repository comes from gitcanary.io/source-repo or the image's path, comma-separated; "
            "default: the config repository's owner. --release-notes entries are read as given.",
            envvar="GITCANARY_RELEASE_NOTES_FROM",
        ),
    ] = "",
    github_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME of REPO on GitHub, for PRs and the gate.", envvar="GITCANARY_GITHUB_REPO"
        ),
    ] = None,
    github_api_url: Annotated[
        str,
        typer.Option(help="GitHub Enterprise: https://HOST/api/v3.", envvar="GITCANARY_GITHUB_API_URL"),
    ] = "https://api.github.com",
    github_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the GitHub token (or set GITCANARY_GITHUB_TOKEN; never a flag).",
            envvar="GITCANARY_GITHUB_TOKEN_FILE",
        ),
    ] = None,
    github_app_id: Annotated[
        str | None,
        typer.Option(
            help="GitHub App id, instead of a token (with the two options below).",
            envvar="GITCANARY_GITHUB_APP_ID",
        ),
    ] = None,
    github_app_key_file: Annotated[
        Path | None,
        typer.Option(
            help="GitHub App private key (PEM), with --github-app-id and --github-installation-id.",
            envvar="GITCANARY_GITHUB_APP_KEY_FILE",
        ),
    ] = None,
    github_installation_id: Annotated[
        int | None,
        typer.Option(
            help="The GitHub App's installation id on OWNER.", envvar="GITCANARY_GITHUB_INSTALLATION_ID"
        ),
    ] = None,
    forge: Annotated[
        str | None,
        typer.Option(
            help="github, gitlab or gitea (Gitea and Forgejo) for PRs and the gate; by default read from "
            "--repo's host (github.*, gitlab.*, gitea.*, forgejo.*, codeberg.org).",
            envvar="GITCANARY_FORGE",
        ),
    ] = None,
    forge_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME or GROUP/PROJECT on the forge; by default the path of --repo's URL.",
            envvar="GITCANARY_FORGE_REPO",
        ),
    ] = None,
    forge_api_url: Annotated[
        str | None,
        typer.Option(
            help="Self-hosted GitLab or Gitea: https://HOST (default: --repo's host).",
            envvar="GITCANARY_FORGE_API_URL",
        ),
    ] = None,
    forge_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the GitLab or Gitea token (or set GITCANARY_FORGE_TOKEN; never a flag).",
            envvar="GITCANARY_FORGE_TOKEN_FILE",
        ),
    ] = None,
    webhook_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the webhook secret (or set GITCANARY_WEBHOOK_SECRET); with one, "
            "POST /webhooks/github, /webhooks/gitlab or /webhooks/gitea on --listen triggers a tick.",
            envvar="GITCANARY_WEBHOOK_SECRET_FILE",
        ),
    ] = None,
    provider: ProviderOpt = None,
    automation_author: Annotated[
        list[str] | None,
        typer.Option(
            "--automation-author",
            help="Commit author email of an image automation (repeatable): a failed tag it pushes back "
            "is held, not rolled out again [default: fluxcdbot@users.noreply.github.com and "
            "noreply@argoproj.io, or GITCANARY_AUTOMATION_AUTHORS as a JSON list]; the authors of the "
            "repository's Flux ImageUpdateAutomations count too.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Decide every tick as run would, in a throwaway clone (not --workdir), and print what it "
            "would commit (transition and diff); push nothing, open no PR, call no webhook that acts.",
        ),
    ] = False,
    output: Annotated[
        str, typer.Option("-o", "--output", help="With --dry-run or plan: text or json.")
    ] = "text",
    judge: Annotated[
        JudgeName,
        typer.Option(
            help="Judge of canaries without a gitcanary.io/judge annotation: threshold (each metric against "
            "its thresholdRange, as Flagger) or compare (canary against primary; see docs/judge.md).",
            envvar="GITCANARY_JUDGE",
        ),
    ] = JudgeName.THRESHOLD,
    leader_election: Annotated[
        str,
        typer.Option(
            "--leader-election",
            help="Replicas: auto (a Lease per repository in gitcanary's namespace when running in a "
            "cluster and --cluster is not off, else one replica), on (must, through --kubeconfig or the "
            "service account, even with --cluster off), off (this process acts alone). Not with --once "
            "or --dry-run. A follower relays verified webhooks to the leader, at the address the leader "
            "records on its Lease ($POD_IP, else the --listen IP, with the --listen port). See "
            "docs/replicas.md.",
            envvar="GITCANARY_LEADER_ELECTION",
        ),
    ] = "auto",
    lease_duration: Annotated[
        float,
        typer.Option(
            min=2.0,
            help="Seconds of a Lease: a leader that cannot renew stops writing after half of it, and "
            "another replica takes over after 0.6 of it.",
            envvar="GITCANARY_LEASE_DURATION",
        ),
    ] = 15.0,
    lease_namespace: Annotated[
        str | None,
        typer.Option(
            help="Namespace of the Leases [default: the service account's, else $POD_NAMESPACE, else "
            "default].",
            envvar="GITCANARY_LEASE_NAMESPACE",
        ),
    ] = None,
    analysis_budget: Annotated[
        float,
        typer.Option(
            min=0.05,
            max=1.0,
            help="Share of the poll interval (or of a canary's analysis interval, if shorter) one "
            "canary's analysis (its webhooks, then its metrics) may take, at least 5 s; the webhooks "
            "and metrics not answered by then fail with that reason. Other canaries do not wait for "
            "it: each lands its commit when its own decision is ready (direct mode). See docs/scale.md.",
            envvar="GITCANARY_ANALYSIS_BUDGET",
        ),
    ] = 0.5,
    liveness_intervals: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="/healthz answers 503 once no tick has completed for this many poll intervals since "
            "the start or the last completed tick, so Kubernetes restarts a stuck process; 0: never. "
            "See docs/operations.md.",
            envvar="GITCANARY_LIVENESS_INTERVALS",
        ),
    ] = 30.0,
    rewrite_url: RewriteUrlOpt = None,
) -> None:
    """Watch each REPO; on an image bump, drive its canary by commits: weights, halts, promotion, rollback."""
    from gitcanary.service import logs
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.reconciler import TickResult
    from gitcanary.service.settings import Settings

    log_format = logs.chosen(log_format, sys.stderr)
    try:
        logs.configure(log_format, verbose)
    except ValueError as exc:
        _fail(exc)
    _configure_rewrites(rewrite_url)
    as_json = log_format == "json"
    log = logging.getLogger("gitcanary")
    specs = [repo_and_branch(spec, branch) for spec in repo or []]
    if config is not None:
        from gitcanary.service.repo_config import load_run_config

        try:
            specs += [(url, own or branch) for url, own in load_run_config(config)]
        except GitcanaryError as exc:
            _fail(exc)
    if not specs:
        _fail(GitcanaryError("--repo or --config: give at least one repository"))
    first_repo, first_branch = specs[0]
    settings = Settings(
        repo=first_repo,
        branch=first_branch,
        prometheus=prometheus,
        poll_interval=interval,
        settle=settle,
        workdir=workdir,
        author_name=author_name,
        author_email=author_email,
        signing_key=signing_key,
        signing_format=signing_format,
        cluster=cluster,
        kubeconfig=kubeconfig,
        commit_url=commit_url,
        secrets_dir=secrets_dir,
        credential_endpoints=credential_endpoint or [],
        write_mode=write_mode,
        promotion_gate=promotion_gate,
        merge_method=merge_method,
        reviewers=reviewers,
        metric_link=metric_link,
        release_notes=release_notes,
        release_notes_from=release_notes_from,
        github_repo=github_repo,
        github_api_url=github_api_url,
        github_token_file=github_token_file,
        github_app_id=github_app_id,
        github_app_key_file=github_app_key_file,
        github_installation_id=github_installation_id,
        forge=forge,
        forge_repo=forge_repo,
        forge_api_url=forge_api_url,
        forge_token_file=forge_token_file,
        webhook_secret_file=webhook_secret_file,
        provider=provider,
        judge=judge.value,
        analysis_budget=analysis_budget,
        liveness_intervals=liveness_intervals,
    )
    if automation_author:
        settings = settings.model_copy(update={"automation_authors": automation_author})
    if len(specs) > 1 and (dry_run or once):
        _fail(GitcanaryError("several repositories: not with --once or --dry-run (run one at a time)"))
    try:
        leases = None if once or dry_run else lease_api(settings, leader_election)
        if len(specs) > 1 or leases is not None:
            run_replicas(
                [settings_for(settings, url, own, workdir, len(specs) > 1) for url, own in specs],
                listen,
                leases,
                lease_duration,
                lease_namespace,
            )
            return
    except GitcanaryError as exc:
        _fail(exc)
    if dry_run:
        if not verbose:  # the reconciler logs each commit it makes; in a plan they are printed as plans
            log.setLevel(logging.WARNING)
        _plan(settings, once, output == "json")
        return
    try:
        reconciler = MonitoredReconciler(settings)
    except GitcanaryError as exc:
        _fail(exc)
        return
    if reconciler.observer is None:
        log.warning("no cluster access: a commit counts as applied %gs after it (a guess)", settle)
    warned: set[str] = set()

    def show(result: TickResult) -> None:
        if as_json:
            log_result(result)
            if not once:
                return
            for sha in result.commits:  # a script's result: the commits, on stdout
                console.print(
                    f"{escape(str(sha[:8]))} {escape(str(_subject(reconciler, sha)))}", highlight=False
                )
            return
        for report in result.reports.values():
            for warning in report.warnings:
                if warning not in warned:  # once per process, not every tick
                    warned.add(warning)
                    err.print(f"[yellow]warning:[/yellow] {escape(str(warning))}", highlight=False)
        for source, message in result.errors.items():
            err.print(f"[red]halted[/red] {escape(str(source))}: {escape(str(message))}", highlight=False)
        for report in result.reports.values():
            if report.error:
                err.print(
                    f"[red]halted[/red] {escape(str(report.key))}: {escape(str(report.error))}",
                    highlight=False,
                )
        for sha in result.commits:
            body = reconciler.workspace.repo.commit(sha).message
            text = body.decode() if isinstance(body, bytes) else body
            subject, *rest = text.splitlines()
            console.print(f"{sha[:8]} {subject}", highlight=False, markup=False)
            for line in _evidence(rest):  # the checks and their values, in words
                console.print(f"         {line}", highlight=False, markup=False)

    def log_result(result: TickResult) -> None:
        """The tick's news as JSON log records, with the canary and commit as fields."""
        for report in result.reports.values():
            for warning in report.warnings:
                if warning not in warned:
                    warned.add(warning)
                    log.warning(warning, extra={"canary": report.key})
            if report.error:
                log.error("halted: %s", report.error, extra={"canary": report.key})
        for source, problem in result.errors.items():
            log.error("halted: %s", problem, extra={"file": source})
        for sha in result.commits:
            body = reconciler.workspace.repo.commit(sha).message
            text = body.decode() if isinstance(body, bytes) else body
            trailers = parse_trailers(text)
            fields = {
                "commit": sha,
                "canary": trailers.get("Canary", ""),
                "action": trailers.get("Action", ""),
            }
            log.info("pushed %s", text.splitlines()[0], extra=fields)

    try:
        from gitcanary.service.forge_setup import publisher_for

        reconciler.publisher = publisher_for(settings, reconciler.workspace)
        if once:
            result = reconciler.tick()
            show(result)
            if result.errors or any(r.error for r in result.reports.values()):
                raise typer.Exit(2)
            return
        server = _serve(listen, reconciler, as_json) if listen else None
        try:
            reconciler.run_forever(on_tick=show)
        finally:
            if server is not None:
                server.stop()
    except GitcanaryError as exc:
        _fail(exc)


def _configure_rewrites(rules: list[str] | None) -> None:
    """--rewrite-url for this process: where webhooks and metrics addresses are chosen."""
    from gitcanary.core import urlmap

    try:
        urlmap.configure(rules or [])
    except GitcanaryError as exc:
        _fail(exc)


def _plan(settings: Settings, once: bool, as_json: bool) -> None:
    """`plan` and `run --dry-run`: decide, print the plan, push nothing."""
    from gitcanary.commands.plan import plan_forever, plan_once
    from gitcanary.commands.plan_cli import print_plan

    try:
        if once:
            plan = plan_once(settings)
            print_plan(plan, console, err, as_json)
            if plan.errors or any(c.error for c in plan.canaries):
                raise typer.Exit(2)
        else:
            plan_forever(settings, lambda plan: print_plan(plan, console, err, as_json))
    except GitcanaryError as exc:
        _fail(exc)


def _evidence(body: list[str]) -> list[str]:
    """A commit body's lines for people: everything but the blank lines and the trailers."""
    return [line for line in body if line.strip() and not line.startswith(("Gitcanary-", "Approved-by:"))]


def _subject(reconciler: Reconciler, sha: str) -> str:
    summary = reconciler.workspace.repo.commit(sha).summary
    return summary.decode() if isinstance(summary, bytes) else summary


def _serve(listen: str, reconciler: Reconciler, as_json: bool = False) -> HttpServer:
    """Start the HTTP endpoints of `run` (each concern mounts its path on the router)."""
    from gitcanary.service.health import Liveness
    from gitcanary.service.http import HttpServer, Router, plain  # only the commands that serve
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.telemetry import mount_telemetry

    router = Router()
    if isinstance(reconciler, MonitoredReconciler):  # alive while its ticks complete
        router.mount("/healthz", Liveness(reconciler.readiness, reconciler.settings.liveness_intervals).app())
    else:
        router.mount("/healthz", plain("200 OK", "ok\n"))
    mount_telemetry(router, reconciler)
    from gitcanary.audit.verify import BotIdentity
    from gitcanary.service import push_webhook
    from gitcanary.service.dashboard import Dashboard, github_commit_url
    from gitcanary.service.forge_setup import webhook_secret

    # The same read-only page as `gitcanary dashboard`, over the reconciler's own clone; commits and
    # PRs link to GitHub when gitcanary knows the repository there.
    settings = reconciler.settings
    links = settings.commit_url or (
        github_commit_url(settings.github_api_url, settings.github_repo) if settings.github_repo else None
    )
    bot = BotIdentity(settings.author_email, settings.signing_key, settings.signing_format)
    # When the reconciler reads the cluster, the page shows each canary's pods and images through
    # the same read-only client.
    from gitcanary.service.dashboard_cluster import WorkloadReader

    api = getattr(getattr(reconciler, "observer", None), "api", None)
    pods = WorkloadReader(api) if api is not None else None
    Dashboard(
        lambda: reconciler.workspace.root, settings.repo, commit_url=links, bot=bot, workloads=pods
    ).mount(router)
    secret = webhook_secret(reconciler.settings)
    if secret:
        receiver = push_webhook.WebhookReceiver(secret, reconciler.wake, reconciler.settings.branch)
        for path in push_webhook.PATHS:
            router.mount(path, receiver)
    try:
        server = HttpServer(router, listen).start()
    except (OSError, ValueError) as exc:
        _fail(GitcanaryError(f"--listen {listen}: {exc}"))
        raise
    served = f"serving /healthz on {server.url} (and {', '.join(sorted(set(router.routes) - {'/healthz'}))})"
    if as_json:
        logging.getLogger("gitcanary").info(served, extra={"url": server.url})
    else:
        err.print(served, highlight=False)
    return server


@app.command()
def init(
    path: Annotated[str, typer.Argument(help="App directory (or canary file) inside the repository.")],
    repo: Annotated[Path, typer.Option("--repo", help="Local checkout to commit in.")] = Path("."),
    switch: Annotated[
        bool,
        typer.Option(
            "--switch",
            help="Also commit the routing switch and the target's scale-down now (an app that serves no "
            "traffic yet: nothing to wait for).",
        ),
    ] = False,
    provider: ProviderOpt = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print what init would commit (each commit and its diff), worked out in a copy of the "
            "checkout; change nothing.",
        ),
    ] = False,
    output: Annotated[str, typer.Option("-o", "--output", help="With --plan: text or json.")] = "text",
) -> None:
    """Commit the generated primary and services for the canaries under PATH (then push it yourself).

    Routing switches to the primary, and the target scales to zero, in a second commit that
    `gitcanary run` makes once the primary has had time to become ready (or at once with --switch).
    An app dir with a fleet.yaml is a Fleet bundle: the generated dir gets its own fleet.yaml, and
    init says whether a GitRepo's spec.paths in the repository covers it.
    """
    from gitcanary.commands.operations import image_automation
    from gitcanary.commands.operations import init as do_init

    if plan:
        _plan_init(repo, path, switch, provider, output == "json")
        return
    try:
        # Rendering every target with kustomize takes a while on many apps: say so on a terminal.
        with err.status(f"initializing the canaries under {path}...", spinner="dots"):
            results = do_init(repo, path, switch=switch, provider=provider)
    except GitcanaryError as exc:
        _fail(exc)
        return
    for result in results:
        if result.already:
            console.print(f"{escape(str(result.key))}: already initialized; nothing to do")
            continue
        console.print(
            f"{escape(str(result.key))}: committed {escape(str(result.commit[:8] if result.commit else '-'))}"
        )
        for changed in result.changed:
            console.print(f"  wrote {escape(str(changed))}")
        if result.hook:
            console.print(f"  {escape(str(result.hook))}")
    for line in image_automation(repo, provider, path):
        console.print(escape(str(line)), highlight=False)
    if any(result.switched for result in results):
        console.print(
            "Push these commits: the primary, the services and the routing to it (100/0) are ready."
        )
    elif any(not result.already for result in results):
        console.print("Push this commit; `gitcanary run` routes traffic to the primary once it is applied.")


def _plan_init(repo: Path, path: str, switch: bool, provider: str | None, as_json: bool) -> None:
    from gitcanary.commands.plan import plan_init
    from gitcanary.commands.plan_cli import print_commits

    try:
        planned = plan_init(repo, path, switch=switch, provider=provider)
    except GitcanaryError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps([commit.to_json() for commit in planned], indent=2))
        return
    from gitcanary.commands.operations import image_automation

    for key in dict.fromkeys(commit.canary for commit in planned):
        console.print(key, highlight=False)
        print_commits([commit for commit in planned if commit.canary == key], console)
        for commit in planned:
            for note in commit.notes if commit.canary == key else []:
                console.print(f"  {escape(note)}", highlight=False)  # ACTION NEEDED, as init says it
    for line in image_automation(repo, provider, path):
        console.print(escape(str(line)), highlight=False)
    console.print(f"{len(planned)} commit(s) planned; nothing was written", highlight=False)


def _checkout(repo: str, branch: str) -> Path:
    """A local path to read: REPO itself when it is a work tree, else a fresh clone (URL or bare repo)."""
    candidate = Path(repo)
    bare = (candidate / "HEAD").is_file() and (candidate / "objects").is_dir()
    if candidate.is_dir() and not bare:
        return candidate
    from gitcanary.git.workspace import Workspace

    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-status-"))
    # The clone only serves this command: nothing of it (a copy of the repository) is left behind.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    workspace = Workspace(repo, branch, scratch / "repo")
    workspace.sync()
    return workspace.root


def _status_views(
    root: Path,
    settle: float,
    cluster: str,
    kubeconfig: str | None,
    repo: str,
    branch: str,
    provider: str | None,
) -> list[CanaryView]:
    from gitcanary.commands.operations import status as do_status

    observer = _observer(cluster, kubeconfig, root, repo, branch)
    return do_status(root, settle=settle, observer=observer, provider=provider)


def _observer(
    mode: str, kubeconfig: str | None, root: Path, repo: str, branch: str
) -> ClusterObserver | None:
    from git import Repo

    from gitcanary.cluster import ClusterObserver, api_client
    from gitcanary.cluster.revisions import Ancestry

    api = api_client(mode, kubeconfig)
    return ClusterObserver(api, branch, Ancestry(Repo(root)), repo) if api is not None else None


@app.command()
def status(
    repo: Annotated[
        str, typer.Option("--repo", help="URL or path of the config repository.", envvar="GITCANARY_REPO")
    ] = ".",
    branch: BranchOpt = "main",
    output: Annotated[
        str, typer.Option("-o", "--output", help="table, wide (adds LASTTRANSITIONTIME) or json.")
    ] = "table",
    settle: Annotated[
        float,
        typer.Option(
            help="Without cluster access: seconds after which a commit counts as applied (as run --settle).",
            envvar="GITCANARY_SETTLE",
        ),
    ] = 10.0,
    cluster: ClusterOpt = "auto",
    kubeconfig: KubeconfigOpt = None,
    github_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME on GitHub: also show the PRs canaries wait on.", envvar="GITCANARY_GITHUB_REPO"
        ),
    ] = None,
    github_api_url: Annotated[
        str, typer.Option(help="GitHub Enterprise: https://HOST/api/v3.", envvar="GITCANARY_GITHUB_API_URL")
    ] = "https://api.github.com",
    github_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the GitHub token (or set GITCANARY_GITHUB_TOKEN).",
            envvar="GITCANARY_GITHUB_TOKEN_FILE",
        ),
    ] = None,
    forge: Annotated[
        str | None,
        typer.Option(
            help="github, gitlab or gitea: also show the requests canaries wait on (see run --forge).",
            envvar="GITCANARY_FORGE",
        ),
    ] = None,
    forge_repo: Annotated[
        str | None,
        typer.Option(
            help="The project on the forge, owner/name (default: from --repo).", envvar="GITCANARY_FORGE_REPO"
        ),
    ] = None,
    forge_api_url: Annotated[
        str | None,
        typer.Option(
            help="The forge's API address, for self-hosted servers.", envvar="GITCANARY_FORGE_API_URL"
        ),
    ] = None,
    forge_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the forge token (or set GITCANARY_FORGE_TOKEN).",
            envvar="GITCANARY_FORGE_TOKEN_FILE",
        ),
    ] = None,
    provider: ProviderOpt = None,
    canary: Annotated[
        str | None,
        typer.Argument(
            help="Only this canary: NAMESPACE/NAME, NAME -n NAMESPACE, or a NAME only one namespace has."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "-n", "--namespace", help="The canary's namespace, or only canaries of it (as kubectl -n)."
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "-w",
            "--watch",
            help="With a canary: print each change until its rollout ends, as kubectl rollout status; "
            "exit 0 once the repository's revision is promoted (at once when nothing is to roll out), "
            "1 when it failed (rolled back or held) or --timeout passed.",
        ),
    ] = False,
    timeout: Annotated[
        str,
        typer.Option("--timeout", help="With --watch: give up after this long (30s, 10m); 0 waits for ever."),
    ] = "0",
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Read the checkout's work tree as it is (uncommitted changes included), not its origin "
            "remote's --branch.",
        ),
    ] = False,
) -> None:
    """Every canary: phase, weight, failed checks, current -> new revision, and what it waits for
    (from the cluster with --cluster, else a guess from the settle delay, and it says so).

    What it reads is the remote, as promote and abort act on it: --repo's URL, or a checkout's origin
    remote (fetched into a scratch clone); --local reads the checkout itself."""
    from gitcanary.commands.reading import source
    from gitcanary.spec import canary_ref

    try:
        ref = canary_ref.parse(canary, namespace) if canary is not None else None
        if watch and ref is None:
            raise GitcanaryError("--watch: name the canary to watch (NAMESPACE/NAME or NAME -n NAMESPACE)")
        from gitcanary.duration import parse_duration

        limit = parse_duration(timeout) if timeout not in ("0", "") else 0.0
        read = source(repo, branch, local)
        if read.note:
            err.print(read.note, highlight=False, markup=False)
    except (GitcanaryError, ValueError) as exc:
        _fail(exc)
        return

    def current() -> list[CanaryView]:
        views = _status_views(read.root, settle, cluster, kubeconfig, repo, branch, provider)
        if ref is None:  # every canary, or those of -n (a file that does not load is always said)
            return [
                v
                for v in views
                if namespace is None or v.key == v.source or v.key.startswith(f"{namespace}/")
            ]
        key = canary_ref.resolve(ref, [v.key for v in views if v.key != v.source])  # not unreadable files
        return [v for v in views if v.key == key]

    if watch:
        from gitcanary.commands.watch import Watch

        def fetched() -> CanaryView:
            read.refresh()
            return current()[0]

        def say(text: str) -> None:
            (err if text.startswith("error:") else console).print(text, highlight=False, markup=False)

        try:
            raise typer.Exit(Watch(fetched, say, timeout=limit).run())
        except GitcanaryError as exc:
            _fail(exc)
    try:
        views = current()
        if github_repo:
            from gitcanary.commands.pr_status import annotate
            from gitcanary.forge.github import GitHubConfig, GitHubForge

            token = os.environ.get("GITCANARY_GITHUB_TOKEN")
            config = GitHubConfig(github_repo, github_api_url, token=token, token_file=github_token_file)
            annotate(views, GitHubForge(config))
        elif forge or forge_repo:
            from gitcanary.commands.pr_status import annotate
            from gitcanary.service.forge_setup import forge_for
            from gitcanary.service.settings import Settings

            found = forge_for(
                Settings(
                    repo=repo,
                    branch=branch,
                    forge=forge,
                    forge_repo=forge_repo,
                    forge_api_url=forge_api_url,
                    forge_token_file=forge_token_file,
                )
            )
            if found is not None:
                annotate(views, found)
    except GitcanaryError as exc:
        _fail(exc)
        return
    if output == "json":
        print(json.dumps([v.to_json() for v in views], indent=2))
        return
    from gitcanary.commands.listing import PHASE_STYLES

    # The guess is the same for every row: said once under the table, not on each row.
    guess = f" (guessing: no cluster access, a commit counts as applied {settle:g}s after it)"
    guessed = False
    wide = output == "wide"
    header = ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILED", "REVISION"]
    header += ["LASTTRANSITIONTIME"] if wide else []
    rows: list[tuple[list[str], str, str]] = []
    for view in views:
        namespace, _, name = view.key.partition("/") if "/" in view.key else ("", "", view.key)
        revision = (
            f"{view.primary_revision} -> {view.canary_revision}"
            if view.canary_revision and view.canary_revision != view.primary_revision
            else view.primary_revision or view.target_revision
        )
        waiting = f"error: {view.error}" if view.error else f"waiting: {view.waiting}" if view.waiting else ""
        if waiting.endswith(guess):
            waiting, guessed = waiting.removesuffix(guess) + " *", True
        cells = [namespace, name, view.phase, str(view.weight), str(view.failed_checks), revision]
        rows.append((cells + ([view.last_transition] if wide else []), view.phase, waiting))
    # kubectl's layout: columns three spaces apart, and what each canary waits for on a line of its
    # own under its row, wrapped to the terminal, so the table fits 80 columns.
    widths = [max(len(h), *(len(r[0][i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    console.print("   ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(), style="bold")
    for cells, phase, waiting in rows:
        padded = [escape(c.ljust(w)) for c, w in zip(cells, widths, strict=True)]
        style = PHASE_STYLES.get(phase, "")
        if style:
            padded[2] = f"[{style}]{padded[2]}[/{style}]"
        console.print("   ".join(padded).rstrip(), highlight=False)
        if waiting:
            width = max(40, (console.width or 80) - 4)
            for line in textwrap.wrap(waiting, width):
                console.print(f"    {line}", highlight=False, markup=False)
    if guessed:
        console.print(
            f"* guessing: no cluster access (--cluster), a commit counts as applied {settle:g}s after it",
            highlight=False,
        )

    for view in views:
        for warning in view.warnings:
            err.print(
                f"[yellow]warning:[/yellow] {escape(str(view.key))}: {escape(str(warning))}", highlight=False
            )


get_app = typer.Typer(
    help="List resources from the repository, as kubectl get does.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(get_app, name="get")

OutputOpt = Annotated[
    str,
    typer.Option(
        "-o",
        "--output",
        help="table (the default), wide (more columns), json or yaml (a kubectl-style List of Canaries).",
    ),
]


@get_app.command("canaries")
def get_canaries(
    name: Annotated[
        str | None,
        typer.Argument(help="Only this canary: NAME (in every namespace, or in -n) or NAMESPACE/NAME."),
    ] = None,
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            help="URL or path of the config repository; a checkout means its origin remote's --branch "
            "(as promote acts on it), unless --local.",
            envvar="GITCANARY_REPO",
        ),
    ] = ".",
    branch: BranchOpt = "main",
    all_namespaces: Annotated[
        bool,
        typer.Option(
            "-A",
            "--all-namespaces",
            help="Every namespace (also what you get without -n: a repository has no current namespace).",
        ),
    ] = False,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="Only canaries in this namespace.")
    ] = None,
    output: OutputOpt = "table",
    provider: ProviderOpt = None,
    local: Annotated[
        bool,
        typer.Option("--local", help="Read the checkout's work tree as it is, not its origin remote."),
    ] = False,
) -> None:
    """Every canary in the repository with its status, weight and last transition, read from Git
    (the columns of `kubectl get canaries`; see `status` for what each one waits for). `get canary
    NAME` is the same."""
    from gitcanary.commands.listing import COLUMNS, PHASE_STYLES, WIDE, canaries
    from gitcanary.commands.reading import source
    from gitcanary.spec import canary_ref

    if output not in ("table", "wide", "json", "yaml"):
        _fail(GitcanaryError(f"-o {output}: expected table, wide, json or yaml"))
    try:
        ref = canary_ref.parse(name, None if all_namespaces else namespace) if name is not None else None
        if ref is not None:
            name, namespace = ref.name, ref.namespace or namespace
            all_namespaces = all_namespaces and ref.namespace is None
        read = source(repo, branch, local)
        if read.note:
            err.print(read.note, highlight=False, markup=False)
        rows = canaries(read.root, None if all_namespaces else namespace, provider)
        rows = [row for row in rows if name is None or row.name == name]
    except GitcanaryError as exc:
        _fail(exc)
        return
    if output in ("json", "yaml"):
        listing = {"apiVersion": "v1", "kind": "List", "items": [row.to_object() for row in rows]}
        if output == "json":
            print(json.dumps(listing, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(listing, sort_keys=False), end="")
        return
    if not rows:
        where = f" in {namespace} namespace" if namespace and not all_namespaces else ""
        what = f'canary "{name}"' if name else "canaries"
        err.print(f"No {what} found{where}.", highlight=False, markup=False)
        if name:
            raise typer.Exit(1)  # as kubectl: a named resource that is not there is an error
        return
    wide = output == "wide"
    show_namespace = namespace is None or all_namespaces
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 3, 0, 0))
    for column in (("NAMESPACE",) if show_namespace else ()) + COLUMNS + (WIDE if wide else ()):
        table.add_column(column, no_wrap=True)
    for row in rows:
        cells = row.cells(wide)
        style = PHASE_STYLES.get(row.view.phase, "")
        cells[1] = f"[{style}]{cells[1]}[/{style}]" if style else cells[1]
        table.add_row(*(([row.namespace] if show_namespace else []) + cells))
    console.print(table, highlight=False)


# kubectl takes the singular too: `kubectl get canary backend`.
get_app.command("canary", hidden=True)(get_canaries)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Checkout of the config repository.")] = Path("."),
    rewrite_url: RewriteUrlOpt = None,
    provider: ProviderOpt = None,
) -> None:
    """Report every problem of every file at once: Canaries, MetricTemplates, target builds, generated
    objects, and the Flux Kustomizations or Fleet GitRepos that apply them; exit 1 on errors, warnings listed
    (docs/validate-and-plan.md)."""
    from gitcanary.commands.operations import image_automation
    from gitcanary.commands.validate import validate as do_validate

    if not path.is_dir():
        _fail(FileNotFoundError(f"{path}: no such directory"))
    _configure_rewrites(rewrite_url)  # addresses and webhook URLs are checked as run would send them
    errors, warnings = do_validate(path, provider=provider)
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(str(warning))}", highlight=False)
    for problem in errors:
        err.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False)
    for line in image_automation(path, provider):
        console.print(escape(str(line)), highlight=False)
    if errors:
        raise typer.Exit(1)
    console.print("ok: every canary and generated object is valid")


@app.command()
def dashboard(
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            help="URL or path of the config repository: a work tree is read as it is, a URL or a bare "
            "repository is cloned and fetched again as the page polls.",
            envvar="GITCANARY_REPO",
        ),
    ] = ".",
    branch: BranchOpt = "main",
    listen: Annotated[
        str, typer.Option(help="HOST:PORT to serve the page on; port 0 picks a free one.")
    ] = "127.0.0.1:8090",
    commit_url: Annotated[
        str | None,
        typer.Option(
            help="Link each commit, {sha} replaced (https://github.com/acme/fleet/commit/{sha}); "
            "PR numbers link to .../pull/N of the same repository.",
            envvar="GITCANARY_COMMIT_URL",
        ),
    ] = None,
    bot_email: Annotated[
        str,
        typer.Option(
            "--bot-email",
            help="Author email of genuine gitcanary commits: only steps `history --verify` accepts "
            "are shown.",
            envvar="GITCANARY_AUTHOR_EMAIL",
        ),
    ] = "gitcanary@users.noreply.local",
    signing_key: Annotated[
        str | None,
        typer.Option(
            "--signing-key",
            help="The key gitcanary signs with (a GPG key id, or an SSH key file): steps not signed "
            "with it are not shown.",
            envvar="GITCANARY_SIGNING_KEY",
        ),
    ] = None,
    signing_format: Annotated[
        str, typer.Option("--signing-format", help="openpgp, ssh or x509.", envvar="GITCANARY_SIGNING_FORMAT")
    ] = "openpgp",
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster",
            help="Read the cluster (read-only) to show each canary's pods and images, and its "
            "primary's: auto (in-cluster service account, else a kubeconfig if there is one), on "
            "(must), off.",
        ),
    ] = "off",
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Serve a live, read-only web page of every canary: a list filtered by namespace and phase,
    then each canary's phase, weight beside the primary's, last checks against their thresholds, a
    chart of its latest rollout and its earlier rollouts, commits and PRs, pods and images (with
    --cluster), and the manual actions as commands to run. It writes nothing. `gitcanary run
    --listen` serves the same page at /."""
    import threading

    from gitcanary.audit.verify import BotIdentity
    from gitcanary.service.dashboard import Dashboard

    try:
        root = _checkout(repo, branch)
    except GitcanaryError as exc:
        _fail(exc)
        return
    refresh = None
    if root != Path(repo):  # our own clone (a URL, a bare repository): fetch it as the page polls
        from gitcanary.git.workspace import Workspace

        workspace = Workspace(repo, branch, root)

        def refresh() -> None:
            workspace.sync()

    from gitcanary.cluster import api_client
    from gitcanary.service.dashboard_cluster import WorkloadReader
    from gitcanary.service.http import HttpServer, Router, plain

    try:
        api = api_client(cluster, kubeconfig)
    except GitcanaryError as exc:
        _fail(exc)
        return
    bot = BotIdentity(bot_email, signing_key, signing_format)
    pods = WorkloadReader(api) if api is not None else None
    board = Dashboard(lambda: root, repo, refresh=refresh, commit_url=commit_url, bot=bot, workloads=pods)
    with err.status(f"reading the canaries of {board.repo_label}...", spinner="dots"):
        board.snapshot()  # the first read parses every Canary; later heads re-read what changed
    router = Router()
    router.mount("/healthz", plain("200 OK", "ok\n"))
    board.mount(router)
    try:
        server = HttpServer(router, listen).start()
    except (OSError, ValueError) as exc:
        _fail(GitcanaryError(f"--listen {listen}: {exc}"))
        return
    shown = f"dashboard of {board.repo_label} on {server.url}/ (read-only; Ctrl-C stops it)"
    err.print(shown, highlight=False, markup=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to leave the demo's config repo [default: a new temporary directory]."
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="Seconds per analysis interval in the demo.")] = 2.0,
    provider: Annotated[
        str,
        typer.Option(
            help="Which example to run: istio, gateway-api (HTTPRoute), linkerd (TrafficSplit), nginx "
            "(canary Ingress), contour (HTTPProxy), traefik (TraefikService), gloo (RouteTable), kuma "
            "(TrafficRoute), apisix (ApisixRoute), skipper (weighted canary Ingress) or appmesh (App Mesh "
            "VirtualRouter)."
        ),
    ] = "istio",
    metrics: Annotated[
        str,
        typer.Option(
            help="Which backend the istio example's error-rate MetricTemplate queries: prometheus or "
            "graphite (the SIMULATED cluster answers Graphite's render API too)."
        ),
    ] = "prometheus",
    own: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            help="Your own config repository (a path or URL; its --branch, never its work tree): its canary "
            "and MetricTemplates against the SIMULATED cluster, a healthy release and a bad one, in a copy "
            "(your repository is not changed). See docs/getting-started.md.",
        ),
    ] = None,
    canary: Annotated[
        str | None,
        typer.Option("--canary", help="With --repo: which canary (NAMESPACE/NAME) when it has several."),
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="With --repo: the branch to copy.")] = "main",
) -> None:
    """A full rollout and a rollback on a local Git repo, against a SIMULATED cluster (about a minute);
    with --repo, on a copy of your own repository."""
    from gitcanary.demo import run_demo

    try:
        if own is not None:
            from gitcanary.demo.own_repo import run_own_demo

            raise typer.Exit(run_own_demo(own, directory, canary, branch, interval=speed, console=console))
        code = run_demo(directory, interval=speed, console=console, provider=provider, metrics=metrics)
    except GitcanaryError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


register_manual_commands(app)  # promote, abort, pause, resume, retry (gitcanary/commands/manual_cli.py)

# Rollout history and audits from Git alone; the bodies live in gitcanary.audit.commands.
from gitcanary.audit.commands import audit_command, history  # noqa: E402

app.command("history")(history)
app.command("audit")(audit_command)

from gitcanary.commands.plan_cli import plan_command  # noqa: E402

app.command("plan")(plan_command(run))

from gitcanary.commands.migrate_cli import register as register_migrate  # noqa: E402

register_migrate(app)  # gitcanary migrate: is a Flagger cluster ready to hand over (read-only)


# Options and variables whose value is a credential; every URL given may carry one in its userinfo.
_SECRET_OPTIONS = ("--github-token", "--webhook-secret")
_SECRET_VARIABLES = ("GITCANARY_GITHUB_TOKEN", "GITCANARY_WEBHOOK_SECRET")


class _RedactingStream(io.TextIOBase):
    """stdout/stderr of the CLI: each complete line passes `redact` before it is written.

    Every CLI channel (tables, JSON, reports, errors, log lines, tracebacks) goes through here, so a
    token in `--repo https://TOKEN@host/...` never reaches a terminal or a CI log.
    """

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            self.inner.write(redact(complete + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(redact(self._pending))
            self._pending = ""
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


def _register_credentials(argv: list[str], environ: dict[str, str]) -> None:
    """Every credential the command line or the environment hands gitcanary, masked from then on."""
    for index, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in _SECRET_OPTIONS:
            register(value if eq else (argv[index + 1] if index + 1 < len(argv) else None))
        if "@" in arg:
            register_url(value if eq else arg)
    for key, value in environ.items():
        if key in _SECRET_VARIABLES:
            register(value)
        elif key.startswith("GITCANARY_") and "@" in value:
            register_url(value)


for _info in app.registered_commands + get_app.registered_commands:  # every command, wherever registered
    if _info.cls in (None, TyperCommand):
        _info.cls = PlainCommand


def main() -> None:
    _register_credentials(sys.argv[1:], dict(os.environ))
    if not isinstance(sys.stdout, _RedactingStream):
        sys.stdout = _RedactingStream(sys.stdout)
        sys.stderr = _RedactingStream(sys.stderr)
    try:
        app()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main()
