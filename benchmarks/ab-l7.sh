#!/bin/bash
# Side by side, per CPU-second: sim.core L7 at an older commit, sim.core L7 now, and
# HAProxy (configured as bench core configures it), each a fresh process pinned to CPU 1,
# in turn, ROUNDS times, in front of the nginx backend of a `failover-sim bench core`
# run folder (its backend-nginx.conf; wrk and the backend on CPU 0).
#
#   benchmarks/ab-l7.sh OLD_COMMIT BENCH_DIR [ROUNDS]
#   benchmarks/ab-l7.sh c1f17cd results/bench-core-20261128d 4
#
# Prints one line per process: requests in 6 s of wrk (50 connections, keep-alive, after
# 2 s of warm-up) and the process's own CPU seconds (utime + stime from /proc).
set -euo pipefail
old=$1 bench=$(realpath "$2") rounds=${3:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'pkill -f "$work/" 2>/dev/null || true; [ -f "$bench/backend-nginx.pid" ] && kill "$(cat "$bench/backend-nginx.pid")" 2>/dev/null || true; git -C "$root" worktree remove --force "$work/old" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$root" worktree add -f "$work/old" "$old" -q
backend=$(awk '/listen/{split($2,a,":"); print a[2]; exit}' "$bench/backend-nginx.conf")
port=38111
sed -e "s/^listen: .*/listen: 127.0.0.1:$port/" -e "s/address: 127.0.0.1:[0-9]*/address: 127.0.0.1:$backend/" \
    "$bench/simcore-http.yaml" > "$work/simcore.yaml"
sed -e "s/bind 127.0.0.1:[0-9]*/bind 127.0.0.1:$port/" -e "s/server b1 127.0.0.1:[0-9]*/server b1 127.0.0.1:$backend/" \
    "$bench/haproxy-http.cfg" > "$work/haproxy.cfg"
(taskset -c 0 nginx -p "$bench" -c "$bench/backend-nginx.conf" > /dev/null 2>&1 &)
sleep 1
python=${PYTHON:-$root/.venv/bin/python}  # PYTHON=...: a worktree without its own .venv
for i in $(seq 1 "$rounds"); do
  for v in old new haproxy; do
    case $v in
      haproxy) (exec taskset -c 1 haproxy -db -f "$work/haproxy.cfg" > /dev/null 2>&1) & ;;
      old) (cd "$work/old" && PYTHONPATH="$work/old" exec taskset -c 1 "$python" -m sim serve "$work/simcore.yaml" > /dev/null 2>&1) & ;;
      new) (cd "$root" && PYTHONPATH="$root" exec taskset -c 1 "$python" -m sim serve "$work/simcore.yaml" > /dev/null 2>&1) & ;;
    esac
    pid=$!
    # until it listens (sim.core's imports take seconds on a busy machine; a fixed
    # 1.5 s wait made wrk fail and end the script there), then half a second more
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
    sleep 0.5
    taskset -c 0 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" > /dev/null 2>&1
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    n=$(taskset -c 0 wrk -t1 -c50 -d6s "http://127.0.0.1:$port/" 2>&1 | awk '/requests in/{print $1}')
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    awk -v i="$i" -v v="$v" -v n="$n" -v c="$((t1 - t0))" \
        'BEGIN{printf "%s %-8s requests=%d cpu_s=%.2f req_per_cpu_s=%.0f\n", i, v, n, c/100, n/(c/100)}'
    kill "$pid"; wait 2>/dev/null || true; sleep 0.3
  done
done
