#!/usr/bin/env python3
"""Delete or alter the rendering of each routing field, one at a time, and require a test to fail.

Each mutation edits one line of a copy of the `gitcanary` package (every router: Istio, Gateway API,
NGINX, SMI/Linkerd, the Service renderer; the weights each renders and reads back) and runs the
router tests against that copy: tests/test_router_fields.py (Flagger's router tests as data, plus the
oracle the end-to-end tests run) and tests/test_routers.py. A mutation counts as killed only when a
test's assertion fails (scripts/mutate_verdict.py): one that only makes the code raise is a crash,
not a kill. A mutation not killed is a survivor; the script prints every survivor and exits 1 if
there is one. (scripts/mutate.py runs cosmic-ray's generated mutants over whole packages.)

    python scripts/mutate_routers.py            # all mutations
    python scripts/mutate_routers.py -k istio   # those whose name contains "istio"
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_router_fields.py", "tests/test_routers.py", "tests/test_router_weights.py", "-k", "not oracle_notices"]

# (name, file under gitcanary/, the text rendering the field, what it becomes)
MUTATIONS: list[tuple[str, str, str, str]] = [
    ("istio hosts", "routers/istio.py", 'vs_spec: dict[str, Any] = {"hosts": hosts}', 'vs_spec: dict[str, Any] = {"hosts": [name]}'),
    ("istio gateways", "routers/istio.py", 'vs_spec["gateways"] = list(svc.gateways)', "pass"),
    ("istio match", "routers/istio.py", 'http["match"] = copy.deepcopy(match)', "pass"),
    ("istio rewrite", "routers/istio.py", 'http["rewrite"] = dict(svc.rewrite)', "pass"),
    ("istio timeout", "routers/istio.py", 'http["timeout"] = svc.timeout', "pass"),
    ("istio retries", "routers/istio.py", 'http["retries"] = dict(svc.retries)', "pass"),
    ("istio headers", "routers/istio.py", 'http["headers"] = dict(svc.headers)', "pass"),
    ("istio corsPolicy", "routers/istio.py", 'http["corsPolicy"] = dict(svc.cors_policy)', "pass"),
    ("istio trafficPolicy", "routers/istio.py", 'rule_spec["trafficPolicy"] = dict(svc.traffic_policy)', "pass"),
    ("istio destination port", "routers/istio.py", 'return {"host": host, "port": {"number": svc.port}}', 'return {"host": host}'),
    ("istio DestinationRule host", "routers/istio.py", 'rule_spec: dict[str, Any] = {"host": f"{name}-{suffix}"}', 'rule_spec: dict[str, Any] = {"host": name}'),
    ("istio mirror", "routers/istio.py", 'http[0]["mirror"] = {"host": f"{name}-canary"}', "pass"),
    ("istio mirrorPercentage", "routers/istio.py", 'http[0]["mirrorPercentage"] = {"value": float(canary.spec.analysis.mirror_weight)}', "pass"),
    ("istio A/B merge", "routers/istio.py", "merge_match_conditions(canary.spec.analysis.match, svc.match)", "svc.match"),
    ("istio A/B everyone else", "routers/istio.py", '_http_route(canary, svc.match, [{"destination": weighted[0]["destination"], "weight": 100}]),', ""),
    ("gatewayapi parentRefs", "routers/gatewayapi.py", '{"parentRefs": [dict(ref) for ref in svc.gateway_refs]}', '{"parentRefs": []}'),
    ("gatewayapi hostnames", "routers/gatewayapi.py", 'spec["hostnames"] = list(svc.hosts)', "pass"),
    ("gatewayapi matches", "routers/gatewayapi.py", "matches = route_matches(svc.match, where) or [dict(DEFAULT_MATCH)]", "matches = [dict(DEFAULT_MATCH)]"),
    ("gatewayapi header filters", "routers/gatewayapi.py", 'filters.append({"type": kind, kind[0].lower() + kind[1:]: modifier})', "pass"),
    ("gatewayapi URLRewrite", "routers/gatewayapi.py", 'filters.append({"type": "URLRewrite", "urlRewrite": rewrite})', "pass"),
    ("gatewayapi rewrite hostname", "routers/gatewayapi.py", 'rewrite["hostname"] = svc.rewrite["authority"]', "pass"),
    ("gatewayapi timeouts", "routers/gatewayapi.py", 'rule["timeouts"] = {"request": canary.spec.service.timeout}', "pass"),
    ("gatewayapi backend port", "routers/gatewayapi.py", '"name": name, "port": port, "weight": weight}', '"name": name, "weight": weight}'),
    ("gatewayapi mirror filter", "routers/gatewayapi.py", 'mirror = ({"type": "RequestMirror", "requestMirror": {"backendRef": ref}},)', "mirror = ()"),
    ("gatewayapi A/B merge", "routers/gatewayapi.py", 'weighted["matches"] = merge_matches(analysis, matches)', "pass"),
    ("nginx canary backend", "routers/nginx.py", 'service["name"] = f"{apex}-canary"', 'service["name"] = apex'),
    ("nginx user annotations", "routers/nginx.py", "annotations = {k: str(v) for k, v in (meta.get(\"annotations\") or {}).items() if CANARY not in k}", "annotations = {}"),
    ("nginx canary", "routers/nginx.py", 'annotations[CANARY] = "true"', "pass"),
    ("nginx weight", "routers/nginx.py", "annotations[WEIGHT] = str(canary_weight)", 'annotations[WEIGHT] = "0"'),
    ("nginx by-header", "routers/nginx.py", "out[BY_HEADER] = name", "pass"),
    ("nginx by-header-value", "routers/nginx.py", 'out[BY_HEADER_VALUE] = str(value["exact"])', "pass"),
    ("nginx by-header-pattern", "routers/nginx.py", 'out[BY_HEADER_PATTERN] = str(value["regex"])', "pass"),
    ("nginx by-cookie", "routers/nginx.py", 'out[BY_COOKIE] = str(value.get("exact", ""))', "pass"),
    # The Ingress walk nginx and skipper share (routers/base.py), and its refusals.
    ("ingress walk apex paths", "routers/base.py", 'if ((path.get("backend") or {}).get("service") or {}).get("name") == apex', "if True"),
    ("ingress walk no backend", "routers/base.py", "if not found:", "if False:"),
    # Session affinity (analysis.sessionAffinity): sticky routes, Set-Cookie headers, the cookie itself.
    ("istio affinity canary Set-Cookie", "routers/istio.py", "value = affinity.build_cookie(settings, session.canary, settings.max_age)", "continue"),
    ("istio affinity primary Set-Cookie", "routers/istio.py", "value = affinity.build_cookie(settings, session.primary, interval)", "continue"),
    ("istio affinity canary cookie match", "routers/istio.py", "merge_match_conditions([_cookie_match(session.canary)], svc.match),", "svc.match,"),
    ("istio affinity primary cookie match", "routers/istio.py", "merge_match_conditions([_cookie_match(session.primary)], svc.match),", "svc.match,"),
    ("istio affinity sticky canary weight", "routers/istio.py", '{"destination": _destination(canary, canary_host), "weight": 100},', '{"destination": _destination(canary, canary_host), "weight": 0},'),
    ("istio affinity sticky primary weight", "routers/istio.py", '{"destination": _destination(canary, primary_host), "weight": 100},', '{"destination": _destination(canary, primary_host), "weight": 0},'),
    ("istio affinity sticky primary route", "routers/istio.py", "return [sticky_canary, sticky_primary, weighted]", "return [sticky_canary, weighted]"),
    ("istio affinity previous cookie match", "routers/istio.py", 'sticky["match"] = merge_match_conditions([_cookie_match(session.previous)], svc.match)', "pass"),
    ("istio affinity expiry", "routers/istio.py", "affinity.SET_COOKIE_HEADER: affinity.expired(session.previous),", ""),
    ("istio affinity routes", "routers/istio.py", "http = _sticky_routes(canary, http[0], session or SessionCookies())", "pass"),
    ("istio affinity weights read back", "routers/istio.py", "for http in routes[-1:] if sticky else routes[:1]:", "for http in routes[:1]:"),
    ("gatewayapi affinity canary Set-Cookie", "routers/gatewayapi.py", "cookie = affinity.build_cookie(settings, session.canary, settings.max_age)", "continue"),
    ("gatewayapi affinity primary Set-Cookie", "routers/gatewayapi.py", "cookie = affinity.build_cookie(settings, session.primary, interval)", "continue"),
    ("gatewayapi affinity canary cookie match", "routers/gatewayapi.py", 'sticky_canary["matches"] = merge_matches([_cookie_match(session.canary)], service_matches)', "pass"),
    ("gatewayapi affinity primary cookie match", "routers/gatewayapi.py", 'sticky_primary["matches"] = merge_matches([_cookie_match(session.primary)], service_matches)', "pass"),
    ("gatewayapi affinity sticky canary weight", "routers/gatewayapi.py", 'self._backend(canary, f"{name}-canary", 100),', 'self._backend(canary, f"{name}-canary", 0),'),
    ("gatewayapi affinity sticky primary rule", "routers/gatewayapi.py", "rules.append(sticky_primary)", "pass"),
    ("gatewayapi affinity previous cookie match", "routers/gatewayapi.py", 'sticky["matches"] = merge_matches([_cookie_match(session.previous)], service_matches)', "pass"),
    ("gatewayapi affinity expiry", "routers/gatewayapi.py", 'sticky["filters"] = [*sticky.get("filters", []), _set_cookie(affinity.expired(session.previous))]', "pass"),
    ("gatewayapi affinity rules", "routers/gatewayapi.py", "rules = self._sticky_rules(canary, weighted, session or SessionCookies())", "pass"),
    ("gatewayapi service.mirror", "routers/gatewayapi.py", 'filters.append({"type": "RequestMirror", "requestMirror": dict(mirror)})', "pass"),
    ("affinity Max-Age", "routers/affinity.py", 'out = f"{cookie}; Max-Age={max_age}"', 'out = f"{cookie}"'),
    ("affinity Domain", "routers/affinity.py", 'out += f"; Domain={affinity.domain}"', "pass"),
    ("affinity HttpOnly", "routers/affinity.py", 'out += "; HttpOnly"', "pass"),
    ("affinity Partitioned", "routers/affinity.py", 'out += "; Partitioned"', "pass"),
    ("affinity Path", "routers/affinity.py", 'out += f"; Path={affinity.path}"', "pass"),
    ("affinity SameSite", "routers/affinity.py", 'out += f"; SameSite={affinity.same_site}"', "pass"),
    ("affinity Secure", "routers/affinity.py", 'out += "; Secure"', "pass"),
    ("affinity cookie regex", "routers/affinity.py", 'return f".*{name}.*{value}.*"', 'return f".*{name}.*"'),
    ("affinity expired", "routers/affinity.py", 'return f"{cookie}; Max-Age=-1"', 'return f"{cookie}; Max-Age=0"'),
    ("affinity previous cookie", "routers/affinity.py", "return SessionCookies(previous=f\"{affinity.cookie_name}={cookie_value(canary.key, revision, 'canary')}\")", "return SessionCookies()"),
    ("affinity primary cookie", "routers/affinity.py", "primary = f\"{affinity.primary_cookie_name}={cookie_value(canary.key, revision, 'primary')}\"", "pass"),
    ("affinity default maxAge", "spec/models.py", "return 86400", "return 3600"),
    # The weights each router renders, and reads back (a swapped or constant weight must be noticed).
    ("istio primary weight", "routers/istio.py", '"weight": primary_weight},', '"weight": canary_weight},'),
    ("istio canary weight", "routers/istio.py", '{"destination": _destination(canary, f"{name}-canary"), "weight": canary_weight},', '{"destination": _destination(canary, f"{name}-canary"), "weight": 0},'),
    ("istio A/B everyone-else weight", "routers/istio.py", '[{"destination": weighted[0]["destination"], "weight": 100}]', '[{"destination": weighted[0]["destination"], "weight": 0}]'),
    ("istio weights read back", "routers/istio.py", "primary = int(dest.get(\"weight\", 0))", "primary = 100"),
    ("gatewayapi primary weight", "routers/gatewayapi.py", 'self._backend(canary, f"{name}-primary", primary_weight),', 'self._backend(canary, f"{name}-primary", canary_weight),'),
    ("gatewayapi canary weight", "routers/gatewayapi.py", 'self._backend(canary, f"{name}-canary", canary_weight),', 'self._backend(canary, f"{name}-canary", 0),'),
    ("gatewayapi weights read back", "routers/gatewayapi.py", 'canary_weight = int(ref.get("weight", 1))', "canary_weight = 0"),
    ("nginx weights read back", "routers/nginx.py", "return 100 - weight, weight", "return 100, weight"),
    ("smi apex service", "routers/smi.py", '"service": name,', '"service": f"{name}-primary",'),
    ("smi primary backend", "routers/smi.py", '{"service": f"{name}-primary", "weight": primary_weight},', '{"service": f"{name}-primary", "weight": canary_weight},'),
    ("smi canary backend", "routers/smi.py", '{"service": f"{name}-canary", "weight": canary_weight},', '{"service": f"{name}-canary", "weight": 0},'),
    ("smi apiVersion", "routers/smi.py", '"apiVersion": self.api_version,', '"apiVersion": "split.smi-spec.io/v1alpha2",'),
    ("smi labels", "routers/smi.py", '"labels": dict(MANAGED_BY)}', '"labels": {}}'),
    ("smi weights read back", "routers/smi.py", 'return found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)', 'return 100 - found.get(f"{name}-canary", 0), found.get(f"{name}-canary", 0)'),
    ("service port name", "manifests/render.py", '"name": svc.port_name,', '"name": "http",'),
    ("service port", "manifests/render.py", '"port": svc.port,', '"port": 80,'),
    ("service targetPort", "manifests/render.py", '"targetPort": svc.target_port if svc.target_port is not None else svc.port,', '"targetPort": svc.port,'),
    ("service appProtocol", "manifests/render.py", 'port["appProtocol"] = svc.app_protocol', "pass"),
    ("service custom annotations", "manifests/render.py", 'meta["annotations"] = dict(extra["annotations"])  # type: ignore[index]', "pass"),
    ("service custom labels", "manifests/render.py", '"labels": {**((extra or {}).get("labels") or {}), label: service_name, **MANAGED_BY},', '"labels": {label: service_name, **MANAGED_BY},'),
    ("contour prefix", "routers/contour.py", 'return str(uri.get("prefix") or "/")', 'return "/"'),
    ("contour header contains prefix", "routers/contour.py", 'header["contains"] = str(value["prefix"])', 'header["exact"] = str(value["prefix"])'),
    ("contour header contains suffix", "routers/contour.py", 'header["contains"] = str(value["suffix"])', 'header["exact"] = str(value["suffix"])'),
    ("contour header exact", "routers/contour.py", 'header["exact"] = str(value["exact"])', "pass"),
    ("contour retry count", "routers/contour.py", 'policy: dict[str, Any] = {"count": int(retries.get("attempts") or 0)}', "policy: dict[str, Any] = {}"),
    ("contour perTryTimeout", "routers/contour.py", 'policy["perTryTimeout"] = str(retries["perTryTimeout"])', "pass"),
    ("contour retryOn", "routers/contour.py", 'policy["retryOn"] = str(retries["retryOn"]).split(",")', "pass"),
    ("contour timeoutPolicy", "routers/contour.py", 'route["timeoutPolicy"] = {"response": svc.timeout, "idle": "5m"}', "pass"),
    ("contour weight", "routers/contour.py", 'service["weight"] = weight', "pass"),
    ("contour l5d header", "routers/contour.py", 'service["requestHeadersPolicy"] = {"set": [{"name": "l5d-dst-override", "value": host}]}', "pass"),
    ("contour A/B everyone else", "routers/contour.py", "_route(canary, plain, 100, 0),", ""),
    ("apex annotations", "routers/base.py", 'meta["annotations"] = dict(apex["annotations"])', "pass"),
    ("apex labels", "routers/base.py", '"labels": {**(apex.get("labels") or {}), **MANAGED_BY},', '"labels": dict(MANAGED_BY),'),
    ("traefik primary weight", "routers/traefik.py", '"port": port, "weight": primary_weight}', '"port": port}'),
    ("traefik canary weight", "routers/traefik.py", '"weight": canary_weight,', '"weight": 100,'),
    ("traefik namespace", "routers/traefik.py", '{"name": f"{name}-primary", "namespace": canary.namespace,', '{"name": f"{name}-primary", "namespace": "default",'),
    ("gloo upstream name", "routers/gloo.py", 'return f"{canary.namespace}-{canary.service_name}-{role}upstream-{canary.spec.service.port}"', 'return f"{canary.service_name}-{role}upstream"'),
    ("gloo weight", "routers/gloo.py", 'destination["weight"] = weight', "pass"),
    ("gloo inheritablePathMatchers", "routers/gloo.py", 'route: dict[str, Any] = {"inheritablePathMatchers": True}', "route: dict[str, Any] = {}"),
    ("gloo matchers", "routers/gloo.py", 'route["matchers"] = matchers', "pass"),
    ("gloo regex header", "routers/gloo.py", 'headers.append({"name": name, "value": str(value["regex"]), "regex": True})', 'headers.append({"name": name, "value": str(value["regex"])})'),
    ("gloo exact header", "routers/gloo.py", 'header["value"] = str(value["exact"])', "pass"),
    ("gloo upstream service", "routers/gloo.py", '"serviceName": f"{canary.service_name}-{role}",', '"serviceName": canary.service_name,'),
    ("gloo upstream port", "routers/gloo.py", '"servicePort": canary.spec.service.port,', '"servicePort": 80,'),
    ("kuma service name", "routers/kuma.py", 'return f"{name}_{canary.namespace}_svc_{canary.spec.service.port}"', 'return f"{name}_{canary.namespace}_svc"'),
    ("kuma namespace", "routers/kuma.py", 'del metadata["namespace"]  # cluster-scoped', "pass"),
    ("kuma mesh", "routers/kuma.py", '"mesh": canary.metadata.annotations.get(MESH_ANNOTATION, "default"),', '"mesh": "default",'),
    ("kuma sources", "routers/kuma.py", '"sources": [{"match": {"kuma.io/service": "*"}}],', ""),
    ("kuma destinations", "routers/kuma.py", '"destinations": [{"match": {"kuma.io/service": kuma_service(canary, name)}}],', '"destinations": [],'),
    ("apisix priority", "routers/apisix.py", 'route["priority"] = MAX_PRIORITY', "pass"),
    ("apisix primary backend", "routers/apisix.py", 'primary["serviceName"] = f"{apex}-primary"', "pass"),
    ("apisix primary weight", "routers/apisix.py", 'primary["weight"] = primary_weight', "pass"),
    ("apisix canary weight", "routers/apisix.py", 'second["weight"] = canary_weight', "pass"),
    ("apisix canary port", "routers/apisix.py", 'second: dict[str, Any] = {"serviceName": f"{apex}-canary", "servicePort": primary.get("servicePort")}', 'second: dict[str, Any] = {"serviceName": f"{apex}-canary", "servicePort": 80}'),
    ("apisix user annotations", "routers/apisix.py", 'metadata["annotations"] = dict(meta["annotations"])', "pass"),
    ("apisix name", "routers/apisix.py", 'return f"{ref.name if ref else canary.service_name}-{canary.service_name}-canary"', 'return f"{canary.service_name}-canary"'),
    ("skipper primary backend", "routers/skipper.py", 'service["name"] = f"{apex}-primary"', "pass"),
    ("skipper canary path", "routers/skipper.py", "paths.append(second)", "pass"),
    ("skipper weights", "routers/skipper.py", 'annotations[BACKEND_WEIGHTS] = json.dumps(weights, sort_keys=True, separators=(",", ":"))', 'annotations[BACKEND_WEIGHTS] = "{}"'),
    ("skipper Weight(100)", "routers/skipper.py", 'predicate = insert_predicate(annotations.get(PREDICATE, ""), ROUTE_WEIGHT)', 'predicate = annotations.get(PREDICATE, "")'),
    ("skipper False()", "routers/skipper.py", "insert_predicate(predicate, ROUTE_DISABLE) if canary_weight == 0 else predicate", "predicate"),
    ("skipper user annotations", "routers/skipper.py", 'annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()}', "annotations: dict[str, str] = {}"),
    ("appmesh dns", "routers/appmesh.py", '"serviceDiscovery": {"dns": {"hostname": f"{name}.{canary.namespace}.svc.cluster.local."}},', '"serviceDiscovery": {"dns": {"hostname": name}},'),
    ("appmesh pod selector", "routers/appmesh.py", '"podSelector": {"matchLabels": {"app": pods}},', '"podSelector": {"matchLabels": {"app": canary.service_name}},'),
    ("appmesh access log", "routers/appmesh.py", 'spec["logging"] = {"accessLog": {"file": {"path": "/dev/stdout"}}}', "pass"),
    ("appmesh backends", "routers/appmesh.py", 'spec["backends"] = backends', "pass"),
    ("appmesh listener timeout", "routers/appmesh.py", 'listener["timeout"] = {"http": timeout}', "pass"),
    ("appmesh route timeout", "routers/appmesh.py", 'http["timeout"] = timeout', "pass"),
    ("appmesh retry policy", "routers/appmesh.py", 'http["retryPolicy"] = retry', "pass"),
    ("appmesh headers", "routers/appmesh.py", 'match["headers"] = headers', "pass"),
    ("appmesh gateway expose", "routers/appmesh.py", 'gateway["gateway.appmesh.k8s.aws/expose"] = "true"', "pass"),
    ("appmesh gateway retries", "routers/appmesh.py", 'gateway["gateway.appmesh.k8s.aws/retries"] = str(int(svc.retries["attempts"]))', "pass"),
    ("traefik port", "routers/traefik.py", 'name, port = canary.service_name, canary.spec.service.port', 'name, port = canary.service_name, 80'),
]


def mutate(work: Path, file: str, old: str, new: str) -> None:
    path = work / "gitcanary" / file
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{file}: expected exactly one {old!r} (found {text.count(old)}): update MUTATIONS")
    path.write_text(text.replace(old, new))


def run_tests(work: Path) -> str:
    """The verdict of the tests against the package in `work`: killed (an assertion failed),
    crashed (only other exceptions) or survived (scripts/mutate_verdict.py decides)."""
    env = {**os.environ, "PYTHONPATH": f"{work}{os.pathsep}{ROOT / 'scripts'}"}
    proc = subprocess.run(
        # pyproject's `pythonpath = [".", ...]` would put the unmutated package first: override it.
        # pytest-timeout's failure would read as an assertion: subprocess's timeout bounds a run.
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:timeout",
         "-p", "no:assertion_count", "-o", "enable_assertion_pass_hook=false", "-p", "mutate_verdict", "-q",
         "-o", f"pythonpath={work} tests", *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    found = re.search(r"MUTANT-VERDICT: (\w+)", proc.stdout)
    return found.group(1) if found else "crashed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only mutations whose name contains this")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if args.k in m[0]]
    survivors = []
    with tempfile.TemporaryDirectory(prefix="gitcanary-mutants-") as tmp:
        work = Path(tmp)
        if not args.k and run_tests(_fresh(work)) != "survived":
            print("the tests fail without any mutation: fix them first", file=sys.stderr)
            return 2
        for name, file, old, new in chosen:
            mutate(_fresh(work), file, old, new)
            verdict = run_tests(work)
            print(f"{'killed ' if verdict == 'killed' else verdict.upper()} {name}", flush=True)
            if verdict != "killed":
                survivors.append(name)
    print(f"{len(chosen) - len(survivors)}/{len(chosen)} mutations killed by a failing assertion, "
          f"{len(survivors)} not (survived or crashed)")
    return 1 if survivors else 0


def _fresh(work: Path) -> Path:
    shutil.rmtree(work / "gitcanary", ignore_errors=True)
    shutil.copytree(ROOT / "gitcanary", work / "gitcanary", ignore=shutil.ignore_patterns("__pycache__"))
    return work


if __name__ == "__main__":
    sys.exit(main())
