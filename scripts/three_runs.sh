#!/usr/bin/env bash
# Runs the whole suite three times in a row (issue 29: "no flakes") and prints, for each run, its
# wall time, its exit code and the tests that failed or errored; a summary line at the end says how
# many runs had a failure. Extra arguments go to pytest; WORKERS=N sets the xdist workers (3 unless
# told). Meant for the lead on a quiet machine: three runs take about 30 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
workers="${WORKERS:-3}"
logs="$(mktemp -d)"
bad=0
for run in 1 2 3; do
    log="$logs/run$run.log"
    start=$(date +%s)
    nice -n 5 python -m pytest -n "$workers" --dist loadfile -q -rfE "$@" >"$log" 2>&1
    code=$?
    took=$(( $(date +%s) - start ))
    failed=$(grep -E '^(FAILED|ERROR) ' "$log" || true)
    echo "run $run: ${took} s, exit $code, $(tail -n 1 "$log")"
    if [ -n "$failed" ]; then
        echo "$failed" | sed 's/^/    /'
    fi
    [ "$code" -eq 0 ] || bad=$((bad + 1))
done
echo "runs with a failure: $bad of 3 (logs in $logs)"
[ "$bad" -eq 0 ]
