#!/usr/bin/env bash
# `make pytest`: the suite in two lanes, because this 2-core machine is mostly idle during it
# (pytest uses about one core on average). The slow lane holds the scenarios that spend their
# time in child processes and waits (SIGKILLed workers, faults, wheels, containers, the demo,
# signals); it runs beside the rest under `nice`, so the fast lane keeps its CPU. Each lane is a
# whole pytest session of its own (its own temp dir, log file and secret scan); the exit status
# fails when either lane fails, and the slow lane's output follows the fast lane's.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SLOW=(
  tests/reliability
  tests/pipeline/test_crash.py
  tests/deploy
  tests/cli/test_demo.py
  tests/cli/test_run_stops.py
)
work=$(mktemp -d -t chronoforce-lanes.XXXXXX)
trap 'kill "${slow:-}" 2>/dev/null; rm -rf "$work"' EXIT
nice -n 10 "$BIN/pytest" --basetemp="$work/slow" "${SLOW[@]}" "$@" >"$work/slow.log" 2>&1 &
slow=$!
ignores=()
for path in "${SLOW[@]}"; do ignores+=("--ignore=$path"); done
"$BIN/pytest" "${ignores[@]}" "$@"
fast_rc=$?
wait "$slow"
slow_rc=$?
echo
echo "==================== slow lane: ${SLOW[*]} ===================="
cat "$work/slow.log"
echo "lanes: fast exit $fast_rc, slow exit $slow_rc"
if [[ $fast_rc -ne 0 ]]; then exit "$fast_rc"; fi
exit "$slow_rc"
