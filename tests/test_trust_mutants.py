"""Trust boundaries' pure checks, for the mutants scripts/mutate.py's `trust` package runs:
credential redaction (gitcanary/redaction.py) and Kubernetes names (gitcanary/spec/names.py).

The oracles are written here from the published rules, not from gitcanary's code: Kubernetes'
`IsDNS1123Label`/`IsDNS1123Subdomain` (k8s.io/apimachinery/pkg/util/validation), spelt as character
checks rather than regular expressions; RFC 3986's userinfo; the encodings a secret travels in.
"""

from __future__ import annotations

import base64
import html
import json
import string
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary import redaction
from gitcanary.errors import SpecError
from gitcanary.spec import names

# -- Kubernetes names -----------------------------------------------------------------------------

ALNUM = set(string.ascii_lowercase + string.digits)


def is_label(text: str, limit: int = 63) -> bool:
    """RFC 1123 label as Kubernetes checks it: 1..63 of a-z 0-9 '-', alphanumeric at both ends."""
    return 0 < len(text) <= limit and set(text) <= ALNUM | {"-"} and text[0] in ALNUM and text[-1] in ALNUM


def is_subdomain(text: str, limit: int = 253) -> bool:
    return 0 < len(text) <= limit and all(is_label(part, 253) for part in text.split("."))


def is_metric(text: str) -> bool:
    allowed = set(string.ascii_letters + string.digits)
    return (
        0 < len(text) <= 63
        and set(text) <= allowed | set("._-")
        and text[0] in allowed
        and text[-1] in allowed
    )


NAME_CHARS = st.sampled_from(list("ab09-.Z_ /\n"))
NAMES = st.one_of(
    st.text(NAME_CHARS, max_size=12),
    st.integers(1, 300).flatmap(
        lambda n: st.sampled_from(["a" * n, "a" * (n - 1) + "-", "a." * (n // 2) + "b"])
    ),
)


def accepted(check: object, text: object, **kwargs: int) -> bool:
    try:
        result = check(text, "apps/backend.yaml", "metadata.name", **kwargs)  # type: ignore[operator]
    except SpecError as error:
        assert "apps/backend.yaml" in str(error) and "metadata.name" in str(error)
        return False
    assert result == text
    return True


@settings(max_examples=150, derandomize=True, deadline=None)
@given(text=NAMES, reserve=st.sampled_from([0, 8]))
def test_names_are_checked_as_kubernetes_checks_them(text: str, reserve: int) -> None:
    assert accepted(names.check_label, text, reserve=reserve) == is_label(text, 63 - reserve)
    assert accepted(names.check_subdomain, text, reserve=reserve) == is_subdomain(text, 253 - reserve)
    assert accepted(names.check_metric, text.replace("a.", "A.")) == is_metric(text.replace("a.", "A."))


@pytest.mark.parametrize(
    ("check", "text", "limit"),
    [
        (names.check_label, "a" * 63, True),
        (names.check_label, "a" * 64, False),
        (names.check_subdomain, "a" * 253, True),
        (names.check_subdomain, "a" * 254, False),
        (names.check_metric, "a" * 63, True),
        (names.check_metric, "a" * 64, False),
    ],
)
def test_name_length_limits_are_inclusive(check: object, text: str, limit: bool) -> None:
    assert accepted(check, text) is limit


@pytest.mark.parametrize("value", [None, 7, ["a"]])
def test_a_name_that_is_not_text_is_refused(value: object) -> None:
    for check in (names.check_label, names.check_subdomain, names.check_metric):
        assert not accepted(check, value)


@pytest.mark.parametrize(
    ("check", "text", "says"),
    [
        (names.check_label, "a" * 70, f"{'a' * 70!r} is longer than 63 characters"),
        (names.check_subdomain, "A" * 100, f"{('A' * 80 + '...')!r} is not a Kubernetes name"),
        (
            names.check_label,
            "A",
            "'A' is not a Kubernetes name (lower-case a-z, 0-9 and '-', DNS-1123 label)",
        ),
    ],
)
def test_a_refused_name_is_shown_shortened(check: object, text: str, says: str) -> None:
    with pytest.raises(SpecError) as raised:
        check(text, "apps/backend.yaml", "metadata.name")  # type: ignore[operator]
    assert says in str(raised.value)


# -- redaction --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers into a registry of its own (the process's is restored after)."""
    monkeypatch.setattr(redaction, "_secrets", ())
    yield


def encodings(secret: str) -> Iterator[str]:
    raw = secret.encode()
    yield secret
    yield quote(secret, safe="")
    yield quote_plus(secret, safe="")
    yield json.dumps(secret)[1:-1]
    yield html.escape(secret)
    yield base64.b64encode(raw).decode()
    yield base64.urlsafe_b64encode(raw).decode()
    yield base64.b64encode(raw).decode().rstrip("=")


SECRETS = st.text(st.sampled_from(list("abcXYZ019+/=&<>\"' %é")), min_size=4, max_size=16).filter(
    lambda s: s.strip() == s and "%" not in s
)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(secret=SECRETS)
def test_a_registered_secret_is_masked_in_every_spelling(secret: str) -> None:
    redaction.register(secret)
    for form in encodings(secret):
        out = redaction.redact(f"error: {form} rejected")
        assert form not in out, (form, out)
        assert out.startswith("error: ") and out.endswith(" rejected")


def test_short_and_empty_values_are_not_registered() -> None:
    redaction.register(None, "", "abc")
    # "abc" itself is too short to mask; its longer encodings (base64 "YWJj") are not words.
    assert "abc" not in redaction._secrets and "" not in redaction._secrets
    assert redaction.redact("abc def") == "abc def"
    redaction.register("abcd")
    assert redaction.redact("x abcd y") == "x *** y"


def test_the_longest_secret_is_masked_first() -> None:
    redaction.register("token", "token-extended-value")
    assert redaction.redact("a token-extended-value b") == "a *** b"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("clone https://user:s3cr3t@example.com/x.git failed", "clone https://***@example.com/x.git failed"),
        ("see ssh+git://tok@host/repo", "see ssh+git://***@host/repo"),
        ("GET /api?access_token=abc123&x=1", "GET /api?access_token=***&x=1"),
        ("GET /api?x=1&API_KEY=abc123", "GET /api?x=1&API_KEY=***"),
        ("GET /api;password=hunter22", "GET /api;password=***"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("authorization: basic dXNlcjpwYXNz", "authorization: basic ***"),
        ("Authorization:token xyz", "Authorization:token ***"),
        ("nothing here", "nothing here"),
        ("", ""),
        ("https://example.com/no-user", "https://example.com/no-user"),
        ("mail a@b.c", "mail a@b.c"),
    ],
)
def test_credentials_in_urls_queries_and_headers_are_masked(text: str, masked: str) -> None:
    assert redaction.redact(text) == masked


@pytest.mark.parametrize(
    ("url", "hidden", "kept"),
    [
        ("https://pat:hunter22@git.example.com/r.git", ["hunter22", "pat:hunter22"], []),
        ("https://TOKEN1234@git.example.com/r.git", ["TOKEN1234"], []),
        ("https://git@git.example.com/r.git", [], ["git"]),  # a conventional user, no secret
        ("https://oauth2:glpat-12345@gitlab.example.com/r.git", ["glpat-12345"], ["oauth2"]),
        ("https://x-access-token:ghs_12345@github.com/r.git", ["ghs_12345"], ["x-access-token"]),
        ("https://git.example.com/r.git", [], ["git.example.com"]),
        ("not a url", [], ["not a url"]),
    ],
)
def test_a_configured_urls_credentials_are_masked_wherever_they_appear(
    url: str, hidden: list[str], kept: list[str]
) -> None:
    redaction.register_url(url)
    for value in hidden:
        assert redaction.redact(f"said {value} here") == "said *** here"
        basic = base64.b64encode(url.split("//")[1].split("@")[0].encode()).decode()
        assert redaction.redact(f"echo {basic}") == "echo ***"
    for value in kept:
        assert redaction.redact(f"said {value} here") == f"said {value} here"


def test_a_url_without_userinfo_registers_nothing() -> None:
    for url in (None, "", "https://host/path@x", "http://[::1"):
        redaction.register_url(url)
    assert redaction._secrets == ()


def test_the_basic_header_of_a_user_and_password_is_masked() -> None:
    redaction.register_basic("pat", "hunter22")
    header = base64.b64encode(b"pat:hunter22").decode()
    assert redaction.redact(f"got {header} and hunter22") == "got *** and ***"
    redaction.register_basic(None, "zzzzzz")
    redaction.register_basic("zzzzzz", None)
    assert redaction.redact("zzzzzz") == "zzzzzz"


def test_every_string_inside_a_payload_is_redacted_and_the_rest_kept() -> None:
    redaction.register("hunter22")
    payload = {"a": "x hunter22", "b": ["hunter22", 3, None, {"c": ("hunter22",)}], "d": 1.5, "e": True}
    assert redaction.redact_value(payload) == {
        "a": "x ***",
        "b": ["***", 3, None, {"c": ["***"]}],
        "d": 1.5,
        "e": True,
    }


def test_spellings_cover_the_stripped_and_decoded_forms() -> None:
    forms = redaction.spellings(" a%2Fb ")
    assert {" a%2Fb ", "a%2Fb", " a/b "} <= forms
