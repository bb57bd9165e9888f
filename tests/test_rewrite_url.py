"""`--rewrite-url FROM=TO`: in-cluster webhook and metrics URLs sent to addresses reachable from here.

The rules are proved as a class (every URL under FROM goes to TO with the rest of it kept, every
other URL is untouched, the most specific rule wins, malformed rules are refused), then end to end:
`run` calls a Flagger webhook named by its in-cluster URL at a real local server, and `validate`
and `plan` say which webhook URLs do not resolve here, before and after a rule.
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ConfigRepo, git
from hook_server import hook_server
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.core import urlmap
from gitcanary.core.urlmap import UrlMap, UrlMapError

CANARY = "apps/backend/canary.yaml"
IN_CLUSTER = "http://flagger-loadtester.prod.invalid"  # .invalid never resolves (RFC 2606)

_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_host = st.lists(_label, min_size=1, max_size=3).map(".".join)
_segment = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_path = st.lists(_segment, max_size=3).map(lambda parts: "".join(f"/{p}" for p in parts))
_port = st.one_of(st.none(), st.integers(1, 65535))
_scheme = st.sampled_from(["http", "https"])
_query = st.one_of(
    st.just(""), st.text(string.ascii_letters + "=&", min_size=1, max_size=8).map("?{}".format)
)


def _url(scheme: str, host: str, port: int | None, path: str) -> str:
    return f"{scheme}://{host}{f':{port}' if port else ''}{path}"


@settings(max_examples=200, derandomize=True)
@given(_scheme, _host, _port, _path, _scheme, _host, _port, _path, _path, _query, st.booleans())
def test_every_url_under_from_goes_to_to_with_the_rest_kept(
    scheme: str,
    host: str,
    port: int | None,
    prefix: str,
    to_scheme: str,
    to_host: str,
    to_port: int | None,
    to_path: str,
    rest: str,
    query: str,
    slash: bool,
) -> None:
    source = _url(scheme, host, port, prefix) + ("/" if slash else "")
    target = _url(to_scheme, to_host, to_port, to_path) + ("/" if slash else "")
    rules = UrlMap.parse([f"{source}={target}"])
    url = _url(scheme, host.upper(), port, prefix + rest) + query
    # The oracle: string concatenation, TO's path followed by what came after FROM's.
    expected_path = (to_path + rest) if rest else (to_path + ("/" if slash else "") or "")
    expected = _url(to_scheme, to_host, to_port, expected_path) + query
    assert rules.rewrite(url) == expected


@settings(max_examples=200, derandomize=True)
@given(_scheme, _host, _port, _path, _host, _path, _query)
def test_a_url_no_rule_covers_is_returned_unchanged(
    scheme: str, host: str, port: int | None, prefix: str, other: str, path: str, query: str
) -> None:
    rules = UrlMap.parse([f"{_url(scheme, host, port, prefix)}=http://127.0.0.1:8081/"])
    url = _url(scheme, f"{other}.elsewhere", port, path) + query  # another host: never the rule's
    assert rules.rewrite(url) == url
    # Another port, or a path that only shares FROM's leading characters, is not covered either.
    other_port = (port or (80 if scheme == "http" else 443)) % 65535 + 1
    assert rules.rewrite(_url(scheme, host, other_port, prefix + path)) == _url(
        scheme, host, other_port, prefix + path
    )
    sibling = _url(scheme, host, port, prefix + "x" + path)  # /api -> /apix: not a segment boundary
    if prefix:
        assert rules.rewrite(sibling) == sibling


@settings(max_examples=100, derandomize=True)
@given(_host, _path, _path, st.permutations(range(2)))
def test_the_longest_from_path_wins_in_any_order(host: str, outer: str, inner: str, order: list[int]) -> None:
    rules = [
        f"http://{host}{outer}=http://outer.local/",
        f"http://{host}{outer}/deep{inner}=http://inner.local/",
    ]
    mapped = UrlMap.parse([rules[i] for i in order])
    assert mapped.rewrite(f"http://{host}{outer}/deep{inner}/x") == "http://inner.local/x"
    assert mapped.rewrite(f"http://{host}{outer}/shallow") == "http://outer.local/shallow"


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ("http://a.prod/", "expected FROM=TO"),
        ("=http://b/", "expected FROM=TO"),
        ("a.prod=http://b/", "FROM must be an http(s) URL"),
        ("ftp://a.prod/=http://b/", "FROM must be an http(s) URL"),
        ("http://u:p@a.prod/=http://b/", "without credentials"),
        ("http://a.prod/?x=1=http://b/", "no ? or #"),
        ("http://a.prod/=localhost:8080", "TO must be an http(s) URL"),
        ("http://a.prod:99999/=http://b/", "FROM must be an http(s) URL"),
    ],
)
def test_malformed_rules_are_refused_with_what_is_wrong(rule: str, said: str) -> None:
    with pytest.raises(UrlMapError, match=re.escape(said)):
        UrlMap.parse([rule])


def test_two_destinations_for_one_from_are_refused() -> None:
    with pytest.raises(UrlMapError, match="map the same FROM"):
        UrlMap.parse(["http://a.prod/=http://b/", "http://a.prod=http://c/"])


def test_credentials_in_the_url_go_with_it() -> None:
    rules = UrlMap.parse([f"{IN_CLUSTER}/=http://127.0.0.1:8081/"])
    assert (
        rules.rewrite("http://u:pw@flagger-loadtester.prod.invalid/gate") == "http://u:pw@127.0.0.1:8081/gate"
    )


# --- end to end: run, validate, plan ---------------------------------------------------------------


def gitcanary(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gitcanary", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _with_webhook(config_repo: ConfigRepo, url: str) -> None:
    def change(doc: Any) -> None:
        doc["spec"]["analysis"]["webhooks"] = [{"name": "load-test", "type": "pre-rollout", "url": url}]
        doc["spec"]["analysis"]["interval"] = "1s"  # each `run --once` start outlasts it

    config_repo.edit(CANARY, change)
    config_repo.commit_and_push("a pre-rollout load test at its in-cluster URL")


def _started(config_repo: ConfigRepo, tmp_path: Path) -> list[str]:
    """The canary initialized, routed to its primary, and bumped: the next tick calls pre-rollout."""
    assert gitcanary("init", "apps/backend", "--switch", cwd=config_repo.human).returncode == 0
    git("push", "-q", "origin", "main", cwd=config_repo.human)
    config_repo.bump("apps/backend", "6.1.1")
    return [
        "run",
        "--once",
        "--repo",
        str(config_repo.remote),
        "--workdir",
        str(tmp_path / "w"),
        "--settle",
        "0",
    ]


def test_run_calls_an_in_cluster_webhook_where_the_rule_sends_it(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    with hook_server() as hooks:
        _with_webhook(config_repo, f"{IN_CLUSTER}/load?test=smoke")
        run = _started(config_repo, tmp_path)
        started = gitcanary(*run, "--log-format", "text", cwd=tmp_path)
        assert "start prod/backend rollout 6.1.0 -> 6.1.1" in started.stdout, started.stderr

        # Without a rule the in-cluster name does not resolve from here: the hook fails. (The 1s
        # analysis interval must have passed since the start: a process can start in less.)
        time.sleep(1.1)
        unmapped = gitcanary(*run, "--log-format", "text", cwd=tmp_path)
        assert "pre-rollout webhook load-test failed: ConnectError" in unmapped.stdout, unmapped.stderr
        assert hooks.posted("/load?test=smoke") == []

        time.sleep(1.1)
        mapped = gitcanary(
            *run,
            "--log-format",
            "text",
            env={"GITCANARY_REWRITE_URL": f"{IN_CLUSTER}/={hooks.url}/"},
            cwd=tmp_path,
        )
        (body,) = hooks.posted("/load?test=smoke")
        assert (body["name"], body["namespace"], body["phase"]) == ("backend", "prod", "Progressing")
        assert "advance prod/backend to 10% (6.1.0 -> 6.1.1)" in mapped.stdout, mapped.stderr


def test_validate_and_plan_name_unresolvable_webhooks_until_mapped(
    config_repo: ConfigRepo, tmp_path: Path
) -> None:
    _with_webhook(config_repo, f"{IN_CLUSTER}/")
    said = (
        "spec.analysis.webhooks[0].url: webhook load-test: "
        "host flagger-loadtester.prod.invalid does not resolve"
    )
    plain = gitcanary("validate", ".", cwd=config_repo.human)
    assert said in plain.stderr
    mapped = gitcanary(
        "validate", ".", "--rewrite-url", f"{IN_CLUSTER}/=http://127.0.0.1:8081/", cwd=config_repo.human
    )
    assert "webhooks[0]" not in mapped.stderr
    # The example's MetricTemplate names its Prometheus in-cluster too: said, then checked as rewritten.
    template = "spec.provider.address: host prometheus.istio-system does not resolve from this machine"
    assert template in plain.stderr and template in mapped.stderr
    both = gitcanary(
        "validate", ".", "--rewrite-url", f"{IN_CLUSTER}/=http://127.0.0.1:8081/",
        "--rewrite-url", "http://prometheus.istio-system:9090=http://127.0.0.1:9090", cwd=config_repo.human,
    )  # fmt: skip
    assert "spec.provider.address" not in both.stderr and "webhooks[0]" not in both.stderr, both.stderr
    elsewhere = gitcanary(
        "validate",
        ".",
        "--rewrite-url",
        f"{IN_CLUSTER}/=http://still-in-cluster.invalid/",
        cwd=config_repo.human,
    )
    assert "(rewritten to http://still-in-cluster.invalid/) does not resolve" in elsewhere.stderr

    plan = ["plan", "--repo", str(config_repo.remote), "--settle", "0", "--cluster", "off", "-o", "json"]
    warned = json.loads(gitcanary(*plan, cwd=tmp_path).stdout)["canaries"][0]["warnings"]
    assert any(said in w for w in warned), warned
    rule = f"{IN_CLUSTER}/=http://127.0.0.1:8081/"
    warned = json.loads(gitcanary(*plan, "--rewrite-url", rule, cwd=tmp_path).stdout)["canaries"][0][
        "warnings"
    ]
    assert not any("webhooks[0]" in w for w in warned), warned
    refused = gitcanary(*plan, "--rewrite-url", "nonsense", cwd=tmp_path)
    assert refused.returncode == 1 and "expected FROM=TO" in refused.stderr


def test_the_process_map_is_what_the_command_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urlmap, "_current", UrlMap())
    assert urlmap.rewrite(f"{IN_CLUSTER}/x") == f"{IN_CLUSTER}/x"
    urlmap.configure([f"{IN_CLUSTER}=http://127.0.0.1:1/"])
    assert urlmap.rewrite(f"{IN_CLUSTER}/x") == "http://127.0.0.1:1/x"
    assert urlmap.rewritten(f"{IN_CLUSTER}/x") == f"{IN_CLUSTER}/x (rewritten to http://127.0.0.1:1/x)"


def test_an_http_proxy_in_the_environment_carries_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other way out, documented beside --rewrite-url: HTTP_PROXY (httpx honours it, NO_PROXY too)."""
    from gitcanary.hooks.webhooks import post_json

    with hook_server() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        post_json(f"{IN_CLUSTER}/gate/approve", {"name": "backend"}, timeout=5)
        assert proxy.posted(f"{IN_CLUSTER}/gate/approve") == [{"name": "backend"}]


def test_a_rewrite_destination_is_an_operator_endpoint_and_its_source_is_not() -> None:
    """--rewrite-url's TO is the operator's choice: a credential may go there; FROM stays unbound."""
    from gitcanary.analysis.providers.endpoints import CredentialNotBound, check
    from gitcanary.core import urlmap
    from gitcanary.service.credentials import credential_endpoints
    from gitcanary.service.settings import Settings

    settings = Settings(repo="/nowhere", prometheus="http://127.0.0.1:9090")
    try:
        urlmap.configure(["http://prometheus.istio-system:9090=http://127.0.0.1:19090"])
        endpoints = credential_endpoints(settings)
        check(urlmap.rewrite("http://prometheus.istio-system:9090/api/v1/query"), "prometheus", endpoints)
        with pytest.raises(CredentialNotBound):
            check("http://prometheus.istio-system:9090/api/v1/query", "prometheus", endpoints)
        urlmap.configure([])
        with pytest.raises(CredentialNotBound):
            check("http://127.0.0.1:19090/api/v1/query", "prometheus", credential_endpoints(settings))
    finally:
        urlmap.configure([])
