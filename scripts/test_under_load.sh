#!/usr/bin/env bash
# `make test` N times in a row (default 5) while `sentryfuse bench ros` runs the whole system in
# parallel, over and over: do the tests hold on a busy 2-core machine? (issue 14). Prints one
# line per run and exits non-zero if any run failed; the logs stay in $LOGS (default: a temp dir).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-5}"
logs="${LOGS:-$(mktemp -d -t sentryfuse-under-load-XXXX)}"
make data > "$logs/setup.log" 2>&1 || { echo "set-up failed: $logs/setup.log" >&2; exit 1; }

stop="$logs/stop"
(
  while [ ! -e "$stop" ]; do
    .venv/bin/sentryfuse bench ros --duration 300 >> "$logs/bench_ros.log" 2>&1 || sleep 5
  done
) &
load=$!
trap 'touch "$stop"; pkill -INT -P "$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT

failed=0
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  make test > "$logs/test_$run.log" 2>&1
  status=$?
  summary=$(grep -E "^[=]+ .*(passed|failed).* in " "$logs/test_$run.log" | tail -1)
  echo "run $run of $runs: status $status, $(( $(date +%s) - started )) s: $summary (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  [ "$status" -eq 0 ] || failed=1
done
echo "logs: $logs"
exit "$failed"
