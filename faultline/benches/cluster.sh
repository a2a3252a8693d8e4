#!/usr/bin/env bash
# Cluster-wide live processes, measured (not a test: it prints numbers, never fails on a budget).
#
#   faultline/benches/cluster.sh [N=50] [SECONDS=20]
#
# 1. The node agent's session: N shimmed UCX programs (`ucx_selfloop --forever --interval-us 100000`, 5 % random
#    faults, recording on in every tenth) in one segment directory, and the agent's `faultline node watch` as the
#    dashboard's feed opens it (a snapshot every 500 ms, the newest 32 records of each process), its output read and
#    thrown away. CPU time (utime+stime from /proc/PID/stat) over SECONDS after a 2 s warm-up. Budget: <= 2 % of a
#    core with 50 processes.
# 2. `cargo bench -p faultline --bench cluster`: the dashboard with 50 nodes x 20 processes (frame <= 10 ms) and the
#    change latency through the exec endpoint (p99 <= 1 s). See faultline/benches/cluster.rs.
# Everything it starts is stopped and removed on exit. Results: faultline/benches/CLUSTER.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50}
seconds=${2:-20}

# shellcheck source=faultline/benches/workload.sh
source faultline/benches/workload.sh
start_workload "$n" FAULTLINE_POD_NAMESPACE=dynamo 'FAULTLINE_POD_NAME=decode-{i}'

# The session's standard input stays open (the operator is there) until the measurement ends.
mkfifo "$work/stdin"
FAULTLINE_SHM_DIR=$shm "$faultline" node watch --interval-ms 500 --records 32 <"$work/stdin" >"$work/watch.out" &
watch=$!
pids+=($watch)
exec 3>"$work/stdin"
sleep 2
cpu_ticks() { awk '{print $14 + $15}' "/proc/$watch/stat"; }
before=$(cpu_ticks)
sleep "$seconds"
after=$(cpu_ticks)
exec 3>&-
snapshots=$(grep -c '"type":"snapshot"' "$work/watch.out" || true)
listed=$(tail -n 1 "$work/watch.out" | grep -o '"pid":' | wc -l)
hz=$(getconf CLK_TCK)
echo "agent session: $count segments, $listed processes in the last snapshot, $snapshots snapshots"
awk -v t=$((after - before)) -v hz="$hz" -v s="$seconds" \
  'BEGIN { printf "  CPU: %.2f s over %d s = %.2f %% of one core\n", t / hz, s, 100 * t / hz / s }'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

cargo bench -q -p faultline --bench cluster
