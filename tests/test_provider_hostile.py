"""A hostile metrics answer is a failed check with its reason, never a halt, for every provider.

Generated answers: compression bombs (gzip, deflate) that inflate far past the cap from a small
body, JSON nested deeper than any parser should follow, a declared charset no codec knows, bytes
that are not UTF-8, encodings gitcanary cannot inflate in bounded steps, corrupt compressed bodies.
Every HTTP provider (and CloudWatch, whose SDK is sent through the same bounded HTTP) turns each into
a failed check whose line says why, with no exception escaping `run_analysis`.

`test_peak_rss_*` measures the other half of the bound: one 150 MB answer, or a gzip bomb of 1 GB,
keeps the process's peak RSS under half the chart's memory limit.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcanary.analysis.providers import Limits, ProviderEnv
from gitcanary.manifests import yamlio
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import check, secrets, template
from tests.vendor_server import Reply, VendorServer, serve

ROOT = Path(__file__).resolve().parent.parent
CAP = 1024 * 1024
SECRETS = {
    "datadog_api_key": "a",
    "datadog_application_key": "b",
    "newrelic_account_id": "1",
    "newrelic_query_key": "k",
    "dynatrace_token": "t",
    "sf_token_key": "s",
}
QUERIES = {
    "prometheus": "sum(up)",
    "datadog": "avg:x{*}",
    "newrelic": "SELECT count(*) FROM T",
    "dynatrace": "builtin:x",
    "graphite": "target=a.b",
    "influxdb": "SELECT last(v) FROM m",
    "splunk": "data('x').publish()",
    "cloudwatch": json.dumps([{"Id": "e", "Expression": "SUM(x)"}]),
}
ENV = ProviderEnv(secrets=secrets(SECRETS), limits=Limits(deadline=10, max_bytes=CAP))


@pytest.fixture(scope="module", autouse=True)
def aws_identity() -> Iterator[None]:
    """Some AWS identity for botocore to sign with (the operator's, in a deployment)."""
    saved = {key: os.environ.get(key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "AKIAHOSTILETEST", "AWS_SECRET_ACCESS_KEY": "hostile"})
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def server() -> Iterator[VendorServer]:
    yield from serve(VendorServer(lambda r: Reply(200, {})))


def subject(kind: str, server: VendorServer) -> MetricTemplate:
    provider: dict[str, Any] = {"type": kind, "address": server.url}
    if kind in ("datadog", "newrelic", "dynatrace", "splunk"):
        provider["secretRef"] = {"name": "metrics"}
    if kind == "cloudwatch":
        provider["region"] = "us-east-1"
    return template("t", QUERIES[kind], **provider)


def deep(depth: int) -> bytes:
    return b'{"status":"success","data":' + b"[" * depth + b"]" * depth + b"}"


def bomb(megabytes: int, wrap: str) -> bytes:
    zeros = b"\0" * (megabytes * 1024 * 1024)
    return gzip.compress(zeros, 9) if wrap == "gzip" else zlib.compress(zeros, 9)


# (what the answer is, the Reply, words the check line must hold: its reason)
HOSTILE = st.one_of(
    st.builds(
        lambda mb, wrap: (
            f"{wrap} bomb {mb} MB",
            Reply(200, raw=bomb(mb, wrap), headers={"Content-Encoding": wrap}),
            "byte cap",
        ),  # fmt: skip
        st.integers(2, 40),
        st.sampled_from(["gzip", "deflate"]),
    ),
    st.builds(
        lambda depth: (f"JSON {depth} deep", Reply(200, raw=deep(depth)), "deep"),
        st.integers(65, 200_000),
    ),
    st.builds(
        lambda charset: (
            f"charset {charset}",
            Reply(200, raw=b'{"status":"success"}', content_type=f"application/json; charset={charset}"),
            "",
        ),
        st.sampled_from(["x-unknown", "utf-99", "ebcdic-no", "\u00e9"]),
    ),
    st.builds(
        lambda junk: ("not UTF-8", Reply(200, raw=b'{"a": "' + junk + b'"}'), ""),
        st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80" * 10]),
    ),
    st.builds(
        lambda encoding: (
            f"encoding {encoding}",
            Reply(200, raw=b"xxxx", headers={"Content-Encoding": encoding}),
            "content-encoding",
        ),  # fmt: skip
        st.sampled_from(["br", "zstd", "gzip, gzip", "compress"]),
    ),
    st.builds(
        lambda cut: (
            "corrupt gzip",
            Reply(200, raw=b"\x1f\x8b\x08\x00" + cut, headers={"Content-Encoding": "gzip"}),
            "inflate",
        ),  # fmt: skip
        st.binary(min_size=1, max_size=64),
    ),
)


@settings(
    max_examples=int(os.environ.get("GITCANARY_HOSTILE_EXAMPLES", "40")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=st.sampled_from(sorted(QUERIES)), hostile=HOSTILE)
def test_a_hostile_answer_is_a_failed_check_with_its_reason(
    server: VendorServer, kind: str, hostile: tuple[str, Reply, str]
) -> None:
    what, reply, reason = hostile
    if kind == "cloudwatch" and reason == "deep":
        reason = ""  # CloudWatch speaks CBOR: botocore refuses JSON of any depth, with its own reason
    server.answer = lambda r: reply
    result = check(subject(kind, server), env=ENV)  # any exception escaping here is the failure
    assert not result.ok and result.value is None, (what, result.line)
    assert "failed" in result.line and (reason in result.line or not reason), (what, result.line)


# -- peak RSS of one huge answer ------------------------------------------------------------------

_CHILD = r"""
import gzip, json, sys, threading, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import UTC, datetime
from gitcanary.analysis import run_analysis
from gitcanary.analysis.providers import Endpoints, ProviderEnv
from gitcanary.spec.models import Canary, MetricTemplate

kind, shape = sys.argv[1], sys.argv[2]
CHUNK = b"[" + b"1," * (512 * 1024) + b"1]"  # 1 MB, sent 150 times: the server holds one chunk
packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip, built 1 MB at a time: the server stays small
BOMB = b"".join(packer.compress(b" " * 2**20) for _ in range(256)) + packer.flush()  # 256 MB in ~250 KB

class Handler(BaseHTTPRequestHandler):
    def _any(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if shape == "gzip":
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        try:
            if shape == "raw":
                for _ in range(150):
                    self.wfile.write(CHUNK)
            else:
                self.wfile.write(BOMB)  # one gzip member: what follows its end is not inflated
        except OSError:
            pass
    do_GET = do_POST = _any
    def log_message(self, *a): pass

httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{httpd.server_address[1]}"
provider = {"type": kind, "address": url}
if kind == "cloudwatch":
    provider["region"] = "us-east-1"
query = json.dumps([{"Id": "e", "Expression": "SUM(x)"}]) if kind == "cloudwatch" else "sum(up)"
template = MetricTemplate.model_validate({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
    "metadata": {"name": "t", "namespace": "prod"}, "spec": {"provider": provider, "query": query}})
canary = Canary.model_validate({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
    "metadata": {"name": "b", "namespace": "prod"}, "spec": {"targetRef": {"name": "b"},
    "service": {"port": 80}, "analysis": {"metrics": [{"name": "m", "templateRef": {"name": "t"}}]}}})
(result,) = run_analysis(canary, {"prod/t": template}, default_address=url, now=datetime.now(UTC),
                         env=ProviderEnv(endpoints=Endpoints.of([url])))
# VmHWM is this process's own peak: ru_maxrss would carry the pytest worker's peak, which Linux
# keeps across the vfork+exec that started this child.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"line": result.line, "maxrss_kb": hwm}))
"""


def chart_memory_limit() -> int:
    """The chart's container memory limit, in bytes (charts/gitcanary/values.yaml)."""
    values = yamlio.load((ROOT / "charts/gitcanary/values.yaml").read_text())
    limit = str(values["resources"]["limits"]["memory"])
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(limit[:-2]) * units[limit[-2:]]


@pytest.mark.parametrize(("kind", "shape"), [("prometheus", "raw"), ("prometheus", "gzip"),
                                             ("cloudwatch", "raw"), ("cloudwatch", "gzip")])  # fmt: skip
def test_peak_rss_of_one_huge_answer_is_under_half_the_chart_limit(kind: str, shape: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, shape],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    peak = found["maxrss_kb"] * 1024
    assert "byte cap" in found["line"], found["line"]
    assert peak < chart_memory_limit() / 2, f"{kind} {shape}: peak RSS {peak / 2**20:.0f} MiB"
    print(f"{kind} {shape}: peak RSS {peak / 2**20:.0f} MiB, {found['line']}")
