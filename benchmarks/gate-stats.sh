#!/usr/bin/env bash
# The regression gate's calibration (docs/ci.md): RUNS gate runs, every third
# with a 30% slowdown injected into the measured code, each run's pairs appended
# to LOG; then `python -m sim.bench.gate_stats LOG` derives baseline and thresholds.
# usage: benchmarks/gate-stats.sh [RUNS] [LOG] [extra sim.bench.regression options]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
log=${2:-/tmp/gate-stats/runs.jsonl}
shift 2 2>/dev/null || shift $#
py=${PYTHON:-.venv/bin/python}
mkdir -p "$(dirname "$log")"
for i in $(seq 1 "$runs"); do
  inject=()
  [ $((i % 3)) = 0 ] && inject=(--inject-slowdown 0.3)
  echo "run $i/$runs ${inject[*]} $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
  # exit 1 (a regression found) is an outcome here, not an error
  "$py" -m sim.bench.regression --log "$log" "${inject[@]}" "$@"
  [ $? -le 1 ] || { echo "run $i failed to measure" >&2; exit 2; }
done
