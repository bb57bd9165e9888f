"""Build the Dockerfile's image without Docker, start it, and run `gitcanary demo` inside it.

No Docker daemon and no Docker Hub here: the image is made from what this machine reaches (Debian's
packages and PyPI), with well-kept daemonless tools, all Debian packages:

1. the gitcanary wheel (the Dockerfile's first stage: `pip wheel --no-deps .`);
2. a Debian root of the Dockerfile's base (`debian:<suite>-slim` is Debian's minbase variant) made by
   mmdebstrap, in which the Dockerfile's own recipe, scripts/image/install.sh, runs: Debian's Python,
   git, ssh, gnupg, and gitcanary with every extra in /opt/gitcanary;
3. packed as an OCI image layout by umoci, with the ENV, USER, WORKDIR, EXPOSE, ENTRYPOINT and CMD
   read from the Dockerfile (dockerfile-parse), which must contain nothing else this build could not
   follow;
4. unpacked and started with runc as the image says (user 65532), with a read-only root and
   writable /tmp and home as the chart mounts them: the extras import, and `gitcanary demo` runs.

Usage: python scripts/build_image.py [--out build/image] [--no-run]. Exits non-zero on any failure.
Debian's packages are cached in ~/.cache/gitcanary-image/apt between runs (apt checks each against
the signed index before using it); the cache never enters the image. Python packages come from PyPI
each time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "scripts/image/install.sh"
TOOLS = {"mmdebstrap": "mmdebstrap", "umoci": "umoci", "runc": "runc"}
# What the final stage may hold: the steps step 2 and 3 above reproduce.
FOLLOWED = {"FROM", "COPY", "RUN", "ENV", "USER", "WORKDIR", "EXPOSE", "ENTRYPOINT", "CMD"}


@dataclass
class ImageSpec:
    """The Dockerfile's final stage, as this build follows it."""

    suite: str
    env: dict[str, str]
    user: str
    workdir: str
    entrypoint: list[str]
    cmd: list[str]
    ports: list[str] = field(default_factory=list)


def read_dockerfile(path: Path) -> ImageSpec:
    parser = DockerfileParser(path=str(path))
    stages = [i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM"]
    final = parser.structure[stages[-1]:]
    base = final[0]["value"].split()[0]
    match = re.fullmatch(r"debian:([a-z]+)-slim", base)
    if not match:
        raise SystemExit(f"Dockerfile: the final stage is FROM {base}; this build makes "
                         "debian:<suite>-slim only")
    spec = ImageSpec(suite=match[1], env=dict(parser.envs), user="", workdir="/", entrypoint=[], cmd=[])
    for ins in final[1:]:
        kind, value = ins["instruction"], ins["value"]
        if kind not in FOLLOWED:
            raise SystemExit(f"Dockerfile line {ins['startline'] + 1}: {kind} is not followed by this build")
        if kind == "RUN" and RECIPE.rsplit("/", 1)[1] not in value:
            raise SystemExit(f"Dockerfile line {ins['startline'] + 1}: a RUN other than the recipe {RECIPE}")
        if kind == "COPY" and not (value.startswith("--from=build /wheels ") or value.startswith(RECIPE)):
            raise SystemExit(f"Dockerfile line {ins['startline'] + 1}: a COPY this build does not make")
        if kind == "USER":
            spec.user = value
        elif kind == "WORKDIR":
            spec.workdir = value
        elif kind == "EXPOSE":
            spec.ports += [p if "/" in p else f"{p}/tcp" for p in value.split()]
        elif kind in ("ENTRYPOINT", "CMD"):
            words = json.loads(value) if value.startswith("[") else ["/bin/sh", "-c", value]
            setattr(spec, kind.lower(), words)
    return spec


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", shlex.join(str(a) for a in args), flush=True)
    began = time.monotonic()
    done = subprocess.run([str(a) for a in args], check=True, text=True, **kwargs)  # type: ignore[call-overload]
    print(f"  ({args[0]} {args[1]}: {time.monotonic() - began:.0f}s)", flush=True)
    return done


def ensure_tools() -> None:
    missing = [package for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        run("apt-get", "update", "-qq")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
            env=env, stdout=subprocess.DEVNULL)


def build_rootfs(spec: ImageSpec, target: Path, work: Path, cache: Path) -> None:
    """The Dockerfile's two stages, in a Debian root at `target`."""
    wheels = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
        "--wheel-dir", wheels, ROOT)
    apt_cache = cache / "apt"
    apt_cache.mkdir(parents=True, exist_ok=True)
    recipe = ROOT / RECIPE
    # The recipe runs with a clean environment: this machine's pip settings name its own paths. The
    # CA bundle this machine's pip trusts (an HTTPS proxy may need it to reach PyPI) is lent to it for
    # the build only, then removed: the image keeps Debian's CA certificates alone.
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                   "PIP_NO_CACHE_DIR": "1", "PIP_CERT": "/tmp/build-ca.crt"}
    proxies = ("http_proxy", "https_proxy", "no_proxy")
    environment |= {k: v for k, v in os.environ.items() if k.lower() in proxies}
    install = " ".join([
        f"cp {shlex.quote(str(host_ca_bundle()))} \"$1/tmp/build-ca.crt\" &&",
        'chroot "$1" env -i', *(shlex.quote(f"{k}={v}") for k, v in environment.items()),
        "sh /tmp/install.sh /tmp/wheels",
    ])
    run(
        "mmdebstrap", "--mode=root", "--variant=minbase", "--quiet",
        # Debian's packages from earlier runs: apt checks each against the signed index before use.
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {shlex.quote(str(apt_cache))} /var/cache/apt/archives",
        f"--customize-hook=copy-in {shlex.quote(str(wheels))} {shlex.quote(str(recipe))} /tmp",
        f"--customize-hook={install}",
        f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(apt_cache))}",
        '--customize-hook=rm -rf "$1/tmp/wheels" "$1/tmp/install.sh" "$1/tmp/build-ca.crt"',
        spec.suite, target,
    )


def host_ca_bundle() -> Path:
    """The CA bundle this machine's pip uses (PIP_CERT, else its config's `cert`, else the system's)."""
    named = os.environ.get("PIP_CERT") or subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True, text=True
    ).stdout.strip()
    return Path(named or "/etc/ssl/certs/ca-certificates.crt")


def pack(spec: ImageSpec, layout: Path, tag: str, work: Path, cache: Path) -> None:
    """An OCI image layout at `layout` (tag `tag`) with the root and the Dockerfile's settings."""
    if layout.exists():
        shutil.rmtree(layout)
    layout.parent.mkdir(parents=True, exist_ok=True)
    run("umoci", "init", "--layout", layout)
    image = f"{layout}:{tag}"
    run("umoci", "new", "--image", image)
    bundle = work / "bundle"
    run("umoci", "unpack", "--image", image, bundle)
    shutil.rmtree(bundle / "rootfs")
    build_rootfs(spec, bundle / "rootfs", work, cache)
    # What the build lent the recipe is gone before packing: the wheel, the recipe, the CA bundle.
    lent = ["tmp/wheels", "tmp/install.sh", "tmp/build-ca.crt"]
    left = [path for path in lent if (bundle / "rootfs" / path).exists()]
    if left:
        raise SystemExit(f"the image's root still holds {', '.join(left)}")
    run("umoci", "repack", "--image", image, bundle)
    settings = ["--clear=config.env", "--clear=config.entrypoint", "--clear=config.cmd"]
    settings += [f"--config.env={key}={value}" for key, value in spec.env.items()]
    settings += [f"--config.entrypoint={word}" for word in spec.entrypoint]
    settings += [f"--config.cmd={word}" for word in spec.cmd]
    settings += [f"--config.exposedports={port}" for port in spec.ports]
    run("umoci", "config", "--image", image, f"--config.user={spec.user}",
        f"--config.workingdir={spec.workdir}", *settings)
    run("umoci", "gc", "--layout", layout)


def unpack(layout: Path, tag: str, work: Path) -> Path:
    """The image as an OCI runtime bundle: its root, and the runtime config umoci makes from the
    image's config (user, env, working directory, ENTRYPOINT + CMD), kept as image-config.json."""
    bundle = work / "run"
    bundle.mkdir()
    image = f"{layout}:{tag}"
    run("umoci", "raw", "unpack", "--image", image, bundle / "rootfs")
    run("umoci", "raw", "runtime-config", "--image", image, "--rootfs", bundle / "rootfs",
        bundle / "image-config.json")
    return bundle


def start(
    spec: ImageSpec, bundle: Path, args: list[str], name: str, entrypoint: list[str] | None = None
) -> str:
    """Run the image with these arguments after its ENTRYPOINT (or `entrypoint`, as `docker run
    --entrypoint`), in place of its CMD, as a pod of the chart would: its user, a read-only root,
    empty writable /tmp and home. Returns what it printed."""
    config = json.loads((bundle / "image-config.json").read_text())
    process = config["process"]
    # umoci made the runtime config from the image's: args are ENTRYPOINT + CMD, user and env its own.
    assert process["args"] == spec.entrypoint + spec.cmd, process["args"]
    process["args"] = (spec.entrypoint if entrypoint is None else entrypoint) + args
    process["terminal"] = False
    config["root"]["readonly"] = True
    uid, gid = process["user"]["uid"], process["user"]["gid"]
    for where in ("/tmp", process["cwd"]):
        config["mounts"].append({
            "destination": where, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=0755", f"uid={uid}", f"gid={gid}"],
        })
    (bundle / "config.json").write_text(json.dumps(config))
    container = f"gitcanary-image-{name}-{os.getpid()}"
    print("+ runc run", shlex.join(process["args"]), flush=True)
    try:
        proc = subprocess.run(["runc", "run", "--bundle", str(bundle), container],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    finally:
        subprocess.run(["runc", "delete", "--force", container], capture_output=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"the image's `{shlex.join(process['args'])}` exited {proc.returncode}:\n{output}")
    return output


# Inside the image: the user the Dockerfile names, Debian's Python, and every extra importable (the
# Helm one loads its Go library and renders values).
CHECK_EXTRAS = """
import os, sys, boto3, google.auth, helm_python
assert sys.executable == "/opt/gitcanary/bin/python", sys.executable
assert sys.base_prefix == "/usr", sys.base_prefix
print("uid", os.getuid(), "gid", os.getgid())
print("helm", helm_python.values_from_yaml("a: 1"))
print("python", sys.version.split()[0], "boto3", boto3.__version__)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "image", help="the OCI image layout")
    parser.add_argument("--no-run", action="store_true", help="build only; do not start the image")
    parser.add_argument("--no-build", action="store_true", help="start the image --out holds; do not build")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitcanary-image")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("scripts/build_image.py needs root (mmdebstrap --mode=root, runc); IMAGE=0 skips "
                         "it in scripts/test.sh")
    spec = read_dockerfile(ROOT / "Dockerfile")
    (tag,) = re.findall(r'(?m)^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text())
    ensure_tools()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gitcanary-image-") as tmp:
        work = Path(tmp)
        if not options.no_build:
            pack(spec, options.out.resolve(), tag, work, options.cache)
        built = time.monotonic() - started
        print(f"built {options.out}:{tag} (OCI layout) in {built:.0f}s", flush=True)
        if options.no_run:
            return 0
        bundle = unpack(options.out.resolve(), tag, work)
        checked = start(spec, bundle, ["-c", CHECK_EXTRAS], "extras", entrypoint=["python"])
        print(checked, end="")
        user = spec.user.split(":")
        if f"uid {user[0]} gid {user[1]}" not in checked:
            raise SystemExit(f"the image does not run as USER {spec.user}")
        demo = start(spec, bundle, ["demo", "--speed", "0.3"], "demo")
        print(demo[-1500:], end="")
        if "promoted" not in demo:
            raise SystemExit("the demo in the image did not promote")
        print(f"image built in {built:.0f}s; extras checked and the demo run in it in "
              f"{time.monotonic() - started - built:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
