"""`--rewrite-url FROM=TO` (gitcanary/core/urlmap.py), table tests for scripts/mutate.py's core run.

The rules are the ones the module's docstring and docs/ promise: an http(s) URL whose scheme, host
and port are FROM's (default ports filled in, host and scheme case-insensitive, RFC 3986) and whose
path starts with FROM's at a `/` boundary goes to TO, keeping the rest of its path, its query, its
fragment and its userinfo; the longest FROM path wins; anything else is returned byte for byte.
Expectations are written out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.core import urlmap
from gitcanary.core.urlmap import UrlMap, UrlMapError, parse_rule

EXAMPLE_RULES = [
    "http://loadtester.prod/=http://127.0.0.1:8081/",
    "http://prometheus.istio-system:9090=http://127.0.0.1:9090/prom/",
    "http://prometheus.istio-system:9090/api/v1=http://127.0.0.1:9091",
    "https://metrics.example.com/=https://proxy.local:8443/m",
]


def example_rules() -> UrlMap:
    """The rules above, which are valid: refusing one is a failed assertion."""
    try:
        return UrlMap.parse(EXAMPLE_RULES)
    except Exception as error:  # noqa: BLE001 - any refusal or error fails the test
        pytest.fail(f"valid --rewrite-url rules refused: {type(error).__name__}: {error}")


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://loadtester.prod/", "http://127.0.0.1:8081/"),
        ("http://loadtester.prod", "http://127.0.0.1:8081/"),
        ("http://loadtester.prod/gate/check?x=1#f", "http://127.0.0.1:8081/gate/check?x=1#f"),
        ("HTTP://LoadTester.Prod:80/a", "http://127.0.0.1:8081/a"),  # case and the default port
        ("http://loadtester.prod:8080/a", "http://loadtester.prod:8080/a"),  # another port: untouched
        ("https://loadtester.prod/a", "https://loadtester.prod/a"),  # another scheme
        ("http://loadtester.prod.evil/a", "http://loadtester.prod.evil/a"),
        ("http://prometheus.istio-system:9090/graph", "http://127.0.0.1:9090/prom/graph"),
        ("http://prometheus.istio-system:9090", "http://127.0.0.1:9090/prom/"),
        # The longest FROM path wins, at a segment boundary only.
        ("http://prometheus.istio-system:9090/api/v1/query?q=up", "http://127.0.0.1:9091/query?q=up"),
        ("http://prometheus.istio-system:9090/api/v1", "http://127.0.0.1:9091"),
        ("http://prometheus.istio-system:9090/api/v10", "http://127.0.0.1:9090/prom/api/v10"),
        ("https://metrics.example.com:443/q", "https://proxy.local:8443/m/q"),
        # Credentials go with the URL to the same service.
        ("http://user:pw@loadtester.prod/a", "http://user:pw@127.0.0.1:8081/a"),
        ("ftp://loadtester.prod/a", "ftp://loadtester.prod/a"),
        ("not a url", "not a url"),
        ("http://[::1/a", "http://[::1/a"),
        ("http:///nohost", "http:///nohost"),
    ],
)
def test_rewrite_table(url: str, sent: str) -> None:
    assert example_rules().rewrite(url) == sent


def test_a_target_with_its_own_credentials_keeps_them() -> None:
    rules = UrlMap.parse(["http://a.prod/=http://op:secret@127.0.0.1:1/"])
    assert rules.rewrite("http://u:p@a.prod/x") == "http://op:secret@127.0.0.1:1/x"


def test_the_most_specific_rule_wins_in_any_order() -> None:
    texts = ["http://h/=http://one/", "http://h/a=http://two/", "http://h/a/b=http://three/"]
    for ordered in (texts, texts[::-1]):
        rules = UrlMap.parse(ordered)
        assert [rules.rewrite(u) for u in ("http://h/x", "http://h/a/x", "http://h/a/b/x")] == [
            "http://one/x",
            "http://two/x",
            "http://three/x",
        ]
        matched = rules.match("http://h/a/b")
        assert matched is not None and matched.path == "/a/b"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("http://a/", "expected FROM=TO"),
        ("=http://b/", "expected FROM=TO"),
        ("http://a/= ", "expected FROM=TO"),
        ("ftp://a/=http://b/", "FROM must be an http(s) URL without credentials"),
        ("http://u:p@a/=http://b/", "FROM must be an http(s) URL without credentials"),
        ("http://a:99999/=http://b/", "FROM must be an http(s) URL"),
        ("http://a/?q=1=http://b/", "FROM is a scheme, host, port and path (no ? or #)"),
        ("http://a/#f=http://b/", "FROM is a scheme, host, port and path (no ? or #)"),
        ("http://a/=ftp://b/", "TO must be an http(s) URL"),
        ("http://a/=http://b/?q", "TO is a scheme, host, port and path (no ? or #)"),
        ("http://a/=http://b/#x", "TO is a scheme, host, port and path (no ? or #)"),
    ],
)
def test_a_malformed_rule_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(UrlMapError) as raised:
        parse_rule(text)
    assert says in str(raised.value)
    assert repr(text) in str(raised.value) or "FROM=TO" in str(raised.value)


def test_a_rule_parses_to_its_origin_and_path() -> None:
    rule = parse_rule(" HTTPS://Metrics.Example.com/api/ = http://127.0.0.1:8080/x ")
    assert (rule.scheme, rule.host, rule.port, rule.path) == ("https", "metrics.example.com", 443, "/api")
    assert rule.text == "https://metrics.example.com/api=http://127.0.0.1:8080/x"
    assert parse_rule("http://a:8080=http://b/").text == "http://a:8080/=http://b/"
    # Only the scheme's own default port is left out, a lower one is shown.
    assert parse_rule("http://a:79=http://b/").text == "http://a:79/=http://b/"
    assert parse_rule("https://a:80=http://b/").text == "https://a:80/=http://b/"
    assert parse_rule("https://a:443=http://b/").text == "https://a/=http://b/"


def test_the_same_from_twice_must_agree() -> None:
    try:
        agreeing = UrlMap.parse(["http://a/=http://b/", "http://a=http://b/"])
    except UrlMapError as error:
        pytest.fail(f"the same FROM twice to the same TO was refused: {error}")
    assert len(agreeing.rules) == 2
    with pytest.raises(UrlMapError) as raised:
        UrlMap.parse(["http://a/=http://b/", "http://a:80/=http://c/"])
    with pytest.raises(UrlMapError):
        UrlMap.parse(["http://a/=http://c/", "http://a:80/=http://b/"])  # either order
    assert "map the same FROM" in str(raised.value)
    assert "http://a/=http://c/" in str(raised.value) and "http://a/=http://b/" in str(raised.value)


@pytest.fixture
def configured() -> Iterator[None]:
    urlmap.configure(["http://loadtester.prod/=http://127.0.0.1:8081/"])
    yield
    urlmap.configure([])


@pytest.mark.usefixtures("configured")
def test_the_process_map_rewrites_and_names_its_destinations() -> None:
    assert urlmap.destinations() == ["http://127.0.0.1:8081/"]
    assert urlmap.rewrite("http://loadtester.prod/x") == "http://127.0.0.1:8081/x"
    assert (
        urlmap.rewritten("http://loadtester.prod/x")
        == "http://loadtester.prod/x (rewritten to http://127.0.0.1:8081/x)"
    )
    assert urlmap.rewritten("http://other/x") == "http://other/x"
    urlmap.configure(["http://a.prod/=http://z.local/"])  # a target that sorts after the URL
    assert urlmap.rewritten("http://a.prod/x") == "http://a.prod/x (rewritten to http://z.local/x)"


URLISH = st.one_of(
    st.text(max_size=30),
    st.builds(
        "{}://{}{}{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp"]),
        st.sampled_from(
            ["loadtester.prod", "u:p@loadtester.prod", "prometheus.istio-system", "metrics.example.com"]
        ),
        st.sampled_from(["", ":80", ":443", ":9090", ":x"]),
        st.sampled_from(["", "/", "/api/v1", "/api/v1/"]),
        st.text(st.sampled_from(list("/apiv1?#=&x")), max_size=12),
    ),
)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(url=URLISH)
def test_rewriting_never_raises_and_leaves_unmatched_urls_byte_for_byte(url: str) -> None:
    try:
        sent = example_rules().rewrite(url)
    except Exception as error:  # noqa: BLE001 - the property under test is "raises nothing"
        pytest.fail(f"rewrite({url!r}) raised {type(error).__name__}: {error}")
    if example_rules().match(url) is None:
        assert sent == url
    else:
        assert urlsplit(sent).hostname in {"127.0.0.1", "proxy.local"}
