"""Every field gitcanary renders from spec.service, against the expected outputs of Flagger's router tests.

tests/data/flagger_router_cases.yaml holds Flagger's fixtures and what its tests assert (source named
there). Each case is rendered with gitcanary's router and service renderer; every assertion must hold,
and the oracle (tests/oracle.py), which the end-to-end tests run after every commit, must find nothing
wrong. Then each rendered field is deleted or altered in turn, and the oracle must notice: a field the
oracle does not check would let a regression through every end-to-end test.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from oracle import (
    _route_problems,
    affinity_of,
    nginx_field_problems,
    provider_routing_problems,
    schema_problems,
    service_field_problems,
    session_affinity_problems,
)

from gitcanary.manifests import render
from gitcanary.routers import router_for
from gitcanary.routers.affinity import session_cookies
from gitcanary.spec.load import load_canary
from gitcanary.spec.status import CanaryStatus, Phase

CASES = yaml.safe_load((Path(__file__).parent / "data" / "flagger_router_cases.yaml").read_text())["cases"]


def _merged(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merged(base.get(key), value)
        return out
    return copy.deepcopy(patch)


def target(name: str, namespace: str) -> dict:
    """Flagger's newTestDeployment, named after the case's target."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "podinfo", "image": "stefanprodan/podinfo:test"}]},
            },
        },
    }


def case_status(case: dict) -> CanaryStatus:
    """The status of the case's SetRoutes call: its canary weight, and its `phase` (Progressing)."""
    return CanaryStatus(
        phase=Phase(case.get("phase", "Progressing")),
        canaryWeight=case["routes"][1],
        lastAppliedSpec="revision-under-analysis",
        lastPromotedSpec="revision-before",
        lastTransitionTime=datetime(2026, 1, 1, tzinfo=UTC),
    )


def rendered(case: dict) -> tuple[dict, list[dict]]:
    """(the Canary as a document, what gitcanary renders for the case's SetRoutes call)."""
    doc = _merged(copy.deepcopy(case["canary"]), case.get("patch") or {})
    loaded = load_canary(doc, "case.yaml")
    canary = loaded.canary
    primary, canary_weight, mirrored = case["routes"]
    ingress = copy.deepcopy(case.get("ingress"))
    session = session_cookies(canary, case_status(case))
    objects = router_for(canary, "case.yaml").render(
        canary, primary, canary_weight, mirrored, ingress=ingress, session=session
    )
    deployment = target(canary.spec.target_ref.name, canary.namespace)
    objects += render.services(canary, deployment, "case.yaml", include_apex=True)
    return doc, objects + ([ingress] if ingress else [])


def _at(obj: Any, path: list[Any]) -> tuple[bool, Any]:
    for part in path:
        in_map = isinstance(obj, dict) and part in obj
        in_list = isinstance(obj, list) and isinstance(part, int) and part < len(obj)
        if in_map or in_list:
            obj = obj[part]
        else:
            return False, None
    return True, obj


def oracle_problems(doc: dict, objects: list[dict], case: dict) -> list[str]:
    """What the end-to-end oracle checks of routing: weights, mirroring and every spec.service field."""
    provider = doc["spec"].get("provider") or "istio"
    namespace = doc["metadata"]["namespace"]
    service = doc["spec"]["service"].get("name") or doc["spec"]["targetRef"]["name"]
    primary, canary_weight, mirrored = case["routes"]
    ab_match = doc["spec"].get("analysis", {}).get("match")
    problems = service_field_problems(objects, doc, provider, namespace)
    problems += session_affinity_problems(objects, doc, provider, namespace, (primary, canary_weight))
    if provider == "istio":
        vs = [o for o in objects if o["kind"] == "VirtualService"]
        sticky = affinity_of(doc, provider) is not None
        problems += (
            _route_problems(vs[0], service, namespace, (primary, canary_weight), ab_match, sticky)
            if vs
            else ["no VS"]
        )
        mirror = (((vs[0]["spec"].get("http") or [{}])[0]).get("mirror") or {}).get("host") if vs else None
        if (mirror == f"{service}-canary") != mirrored:
            problems.append(f"mirror is {mirror}, mirrored {mirrored}")
        percentage = (vs[0]["spec"]["http"][0].get("mirrorPercentage") or {}).get("value") if vs else None
        wanted = doc["spec"]["analysis"].get("mirrorWeight") if mirrored else None
        if (percentage or None) != (wanted or None):
            problems.append(f"mirrorPercentage is {percentage}, expected {wanted}")
    else:
        ingress = (doc["spec"].get("ingressRef") or {}).get("name")
        weights_mirror = mirrored and doc["spec"]["analysis"].get("iterations", 0) > 0
        problems += provider_routing_problems(
            objects, provider, namespace, service, (primary, canary_weight), ab_match, ingress, weights_mirror
        )
        if provider == "nginx":
            problems += nginx_field_problems(objects, doc, namespace)
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c["test"] for c in CASES])
def test_gitcanary_renders_what_flaggers_router_tests_expect(case: dict) -> None:
    doc, objects = rendered(case)
    failures = []
    for expectation in case["expect"]:
        kind, name = expectation["object"]
        found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
        present, value = _at(found[0], expectation["path"])
        if "absent" in expectation:
            ok = not present or value in (None, [], {})
        elif "length" in expectation:
            ok = present and len(value) == expectation["length"]
        elif "matches" in expectation:
            ok = present and re.fullmatch(expectation["matches"], str(value)) is not None
        else:
            ok = present and value == expectation["equals"]
        if not ok:
            failures.append(f"{kind} {name} {expectation['path']}: {value!r} vs {expectation}")
    assert not failures, "\n".join(failures)
    assert oracle_problems(doc, objects, case) == []
    assert [p for obj in objects for p in schema_problems(obj)] == []


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict) and obj:
        return [leaf for key, value in obj.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(obj, list) and obj:
        return [leaf for index, value in enumerate(obj) for leaf in _leaves(value, (*path, index))]
    return [path]


def _mutants(obj: dict) -> list[tuple[str, dict]]:
    """Each routing field deleted, and each scalar altered, one at a time."""
    out = []
    for leaf in _leaves(obj.get("spec") or {}):
        for cut in range(1, len(leaf) + 1):  # delete the field and every field holding it
            mutant = copy.deepcopy(obj)
            holder = mutant["spec"]
            for part in leaf[: cut - 1]:
                holder = holder[part]
            del holder[leaf[cut - 1]]
            out.append((f"delete spec.{'.'.join(map(str, leaf[:cut]))}", mutant))
        mutant = copy.deepcopy(obj)
        holder = mutant["spec"]
        for part in leaf[:-1]:
            holder = holder[part]
        if leaf and isinstance(holder[leaf[-1]], str | int | float | bool):
            holder[leaf[-1]] = f"mutated-{holder[leaf[-1]]}"
            out.append((f"alter spec.{'.'.join(map(str, leaf))}", mutant))
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    for key in notes:
        mutant = copy.deepcopy(obj)
        del mutant["metadata"]["annotations"][key]
        out.append((f"delete annotation {key}", mutant))
    return out


def _equivalent(obj: dict, what: str) -> bool:
    """Mutants the mesh reads exactly as the original. Istio: an unset destination weight is 0, and a
    route's lone destination takes all traffic whatever its weight. Gateway API: a backendRef's group
    defaults to "" and its kind to Service, and an unset weight is 1, which splits the same when the
    other backends' weights are 0."""
    if obj["kind"] == "TraefikService" and what.endswith(".weight") and what.startswith("delete "):
        # Traefik: a lone weighted service takes all traffic whatever its weight (unset is 1).
        return len(obj["spec"]["weighted"]["services"]) == 1
    if obj["kind"] == "HTTPRoute" and what.startswith("delete spec.rules."):
        if what.endswith((".group", ".kind")):
            return True
        if what.endswith(".weight"):
            rule, _, ref = what.split(" ")[1].split(".")[2:5]
            refs = obj["spec"]["rules"][int(rule)]["backendRefs"]
            return all(r.get("weight") == 0 for i, r in enumerate(refs) if i != int(ref))
        return False
    if obj["kind"] != "VirtualService" or not (
        what.startswith("delete spec.http.") and what.endswith(".weight")
    ):
        return False
    _, _, http, _, route, _ = what.split(" ")[1].split(".")
    destinations = obj["spec"]["http"][int(http)]["route"]
    return destinations[int(route)].get("weight") == 0 or len(destinations) == 1


ROUTING_KINDS = (
    "VirtualService",
    "DestinationRule",
    "HTTPRoute",
    "Service",
    "HTTPProxy",
    "TraefikService",
    "RouteTable",
    "Upstream",
    "TrafficRoute",
    "ApisixRoute",
    "VirtualNode",
    "VirtualRouter",
)


@pytest.mark.parametrize("case", CASES, ids=[c["test"] for c in CASES])
def test_the_oracle_notices_any_rendered_routing_field_deleted_or_altered(case: dict) -> None:
    doc, objects = rendered(case)
    ingress_name = f"{(doc['spec'].get('ingressRef') or {}).get('name')}-canary"
    survivors = []
    for index, obj in enumerate(objects):
        if obj["kind"] not in ROUTING_KINDS and obj["metadata"]["name"] != ingress_name:
            continue
        for what, mutant in _mutants(obj):
            if what.startswith("delete spec.selector") or what.startswith("alter spec.selector"):
                continue  # the Services' selectors: assert_invariant checks them against the pods
            if what.endswith(".protocol") or what == "alter spec.type" or what == "delete spec.type":
                continue  # constant fields, not rendered from spec.service
            if "kustomize.toolkit.fluxcd.io" in what:
                continue  # Flux's bookkeeping annotation, copied but not routing
            if _equivalent(obj, what):
                continue
            mutated = [*objects[:index], mutant, *objects[index + 1 :]]
            try:
                # assert_invariant runs both: the routing fields and each object's schema
                noticed = bool(oracle_problems(doc, mutated, case) or schema_problems(mutant))
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                noticed = True  # the oracle fails on it: the end-to-end test goes red all the same
            if not noticed:
                survivors.append(f"{obj['kind']} {obj['metadata']['name']}: {what}")
    assert not survivors, "the oracle misses:\n" + "\n".join(survivors)
