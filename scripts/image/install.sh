#!/bin/sh
# The image's recipe, one file for both builds: the Dockerfile runs it in debian:bookworm-slim, and
# scripts/build_image.py runs it in a Debian bookworm root that mmdebstrap makes from Debian's own
# packages (minbase, the variant the slim image is made with), so the tests build and start what
# the Dockerfile builds. Runs as root; $1 is a directory holding the gitcanary wheel.
set -eu
wheels="$1"
export DEBIAN_FRONTEND=noninteractive

# Debian's Python (bookworm: 3.11); git for the clone, fetch and push; ssh for SSH remotes; gnupg
# for signed commits; the CA bundle for HTTPS remotes and metrics backends.
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv git openssh-client gnupg ca-certificates
rm -rf /var/lib/apt/lists/*

# gitcanary with every extra the README lists as supported (a test checks this list against
# pyproject.toml): helm (Fleet bundles with Helm charts), cloudwatch, stackdriver.
python3 -m venv /opt/gitcanary
set -- "$wheels"/gitcanary-*.whl
/opt/gitcanary/bin/pip install --disable-pip-version-check "$1[helm,cloudwatch,stackdriver]"

# The user the image runs as (USER 65532:65532 in the Dockerfile; the chart's runAsUser).
groupadd --gid 65532 gitcanary
useradd --uid 65532 --gid 65532 --home-dir /var/lib/gitcanary --create-home gitcanary
