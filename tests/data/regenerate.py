"""Rebuild the structure-only copies in tests/data/ (and gitcanary/schemas/*.json) from upstream files.

Usage: python tests/data/regenerate.py /path/to/shared

`shared` is the directory holding the unmodified upstream copies (schemas/crds/*.yaml and
fixtures/flagger/). Only structure is kept: every `description` keyword is dropped from the schemas,
comments are dropped from the fixtures; the loaded content is otherwise unchanged (checked below).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
PACKAGE_SCHEMAS = HERE.parent.parent / "gitcanary" / "schemas"

# upstream CRD file -> the kinds the tests need (all versions the file has)
CRD_KINDS = {
    "istio": ("VirtualService", "DestinationRule"),
    "flagger": ("Canary", "MetricTemplate"),
    "flux-kustomizations": ("Kustomization",),
    "gateway-api-httproutes": ("HTTPRoute",),
    "smi-trafficsplit": ("TrafficSplit",),
    "fleet": ("GitRepo", "Bundle"),
}


def strip_descriptions(node: Any, parent_key: str | None = None) -> Any:
    """Drop the `description` keyword, but keep a property that happens to be named `description`."""
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v, k)
            for k, v in node.items()
            if not (k == "description" and parent_key != "properties")
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def compact(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def load_crds(shared: Path, name: str) -> list[dict]:
    docs = yaml.safe_load_all((shared / "schemas" / "crds" / f"{name}.yaml").read_text())
    return [d for d in docs if d and d["spec"]["names"]["kind"] in CRD_KINDS[name]]


def trimmed_crd(crd: dict) -> dict:
    """Keep what identifies the kind and its schemas; drop annotations, labels and printer columns."""
    spec = crd["spec"]
    versions = []
    for v in spec["versions"]:
        kept = {k: v[k] for k in ("name", "served", "storage", "subresources") if k in v}
        kept["schema"] = {"openAPIV3Schema": strip_descriptions(v["schema"]["openAPIV3Schema"])}
        versions.append(kept)
    return {
        "apiVersion": crd["apiVersion"],
        "kind": crd["kind"],
        "metadata": {"name": crd["metadata"]["name"]},
        "spec": {
            "group": spec["group"],
            "names": spec["names"],
            "scope": spec["scope"],
            "versions": versions,
        },
    }


def write_crds(shared: Path) -> None:
    out = HERE / "crds"
    out.mkdir(exist_ok=True)
    for name in CRD_KINDS:
        (out / f"{name}.json").write_text(compact([trimmed_crd(c) for c in load_crds(shared, name)]))


def write_package_istio(shared: Path) -> None:
    """gitcanary/schemas/istio.json: {"<group>/<version>/<Kind>": openAPIV3Schema}, like flagger.json."""
    table = {}
    for crd in load_crds(shared, "istio"):
        for v in crd["spec"]["versions"]:
            key = f"{crd['spec']['group']}/{v['name']}/{crd['spec']['names']['kind']}"
            table[key] = strip_descriptions(v["schema"]["openAPIV3Schema"])
    (PACKAGE_SCHEMAS / "istio.json").write_text(compact(table))


# gitcanary/schemas/<file>: the upstream CRD files whose kinds gitcanary generates besides Istio's
PACKAGE_CRDS = {"gateway-api.json": "gateway-api-httproutes", "smi.json": "smi-trafficsplit"}


def write_package_crds(shared: Path) -> None:
    """gitcanary/schemas/{gateway-api,smi}.json, every version the CRD has (served or not: a mesh
    may serve an older SMI version than the CRD file marks as served)."""
    for filename, name in PACKAGE_CRDS.items():
        table = {}
        for crd in load_crds(shared, name):
            for v in crd["spec"]["versions"]:
                key = f"{crd['spec']['group']}/{v['name']}/{crd['spec']['names']['kind']}"
                table[key] = strip_descriptions(v["schema"]["openAPIV3Schema"])
        (PACKAGE_SCHEMAS / filename).write_text(compact(table))


def write_package_flagger(shared: Path) -> None:
    """gitcanary/schemas/flagger.json: the Flagger kinds gitcanary reads, keyed "<group>/<version>/<Kind>"."""
    docs = yaml.safe_load_all((shared / "schemas" / "crds" / "flagger.yaml").read_text())
    table = {}
    for crd in docs:
        kind = crd["spec"]["names"]["kind"] if crd else None
        if kind not in ("Canary", "MetricTemplate", "AlertProvider"):
            continue
        for v in crd["spec"]["versions"]:
            table[f"{crd['spec']['group']}/{v['name']}/{kind}"] = strip_descriptions(
                v["schema"]["openAPIV3Schema"]
            )
    (PACKAGE_SCHEMAS / "flagger.json").write_text(json.dumps(table, sort_keys=True, separators=(",", ":")))


def write_fixtures(shared: Path) -> None:
    src_root = shared / "fixtures" / "flagger"
    dst_root = HERE / "fixtures" / "flagger"
    sources = [*src_root.glob("kustomize/podinfo/*.yaml"), *src_root.glob("artifacts/examples/*.yaml")]
    for src in sorted(sources):
        docs = [d for d in yaml.safe_load_all(src.read_text()) if d is not None]
        text = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=4096)
        if [d for d in yaml.safe_load_all(text) if d is not None] != docs:
            raise SystemExit(f"{src}: re-serialized content differs")
        dst = dst_root / src.relative_to(src_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
    shutil.copyfile(src_root / "LICENSE", dst_root / "LICENSE")


def write_github(shared: Path) -> None:
    """GitHub's REST OpenAPI subset, descriptions (and summaries, examples) dropped: structure only."""
    spec = json.loads((shared / "schemas" / "github" / "rest-api-subset.json").read_text())
    stripped = strip_descriptions(spec)

    def drop(node: Any, parent_key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {
                k: drop(v, k)
                for k, v in node.items()
                if not (
                    k in ("summary", "examples", "example", "externalDocs") and parent_key != "properties"
                )
            }
        if isinstance(node, list):
            return [drop(v) for v in node]
        return node

    out = HERE / "github"
    out.mkdir(exist_ok=True)
    (out / "rest-api-subset.json").write_text(compact(drop(stripped)))


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    shared = Path(argv[1])
    write_crds(shared)
    write_package_istio(shared)
    write_package_crds(shared)
    write_package_flagger(shared)
    write_fixtures(shared)
    write_github(shared)


if __name__ == "__main__":
    main(sys.argv)
