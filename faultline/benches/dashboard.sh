#!/usr/bin/env bash
# Dashboard responsiveness with many shimmed processes: frame time and CPU use of the real `faultline` dashboard,
# drawn in a real terminal (tmux, 160x50) at its 10 Hz tick, over N processes doing real UCX traffic.
#
#   faultline/benches/dashboard.sh [N=200] [SECONDS=10]
#
# Starts N `ucx_selfloop --forever --interval-us 100000 --quiet` under the UCX shim (5 % random faults, recording on
# in every tenth), each in a private segment directory, then runs `faultline --bench-report FILE` in tmux: after a
# 2 s warm-up it draws for SECONDS and writes frame times (the `terminal.draw` call: layout, widgets, diff, escape
# sequences written to the pty) and the CPU time of the whole dashboard process (UI, input and sampler threads,
# utime+stime from /proc/self/stat). Budget: <= 5 ms per frame, <= 5 % of one core.
# Everything it starts is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
seconds=${2:-10}

bench_cleanup() { tmux -S "$work/tmux" kill-server 2>/dev/null || true; }
# shellcheck source=faultline/benches/workload.sh
source faultline/benches/workload.sh
start_workload "$n"
echo "$count segments; measuring the dashboard for ${seconds}s (plus 2s warm-up)..."

tmux -S "$work/tmux" -f /dev/null new-session -d -x 160 -y 50 \
  "FAULTLINE_SHM_DIR=$shm $faultline --bench-report $work/report --bench-seconds $seconds; sleep 60"
for _ in $(seq 1 $(((seconds + 30) * 10))); do
  [[ -s $work/report ]] && break
  sleep 0.1
done
[[ -s $work/report ]] || { echo "no report; screen:"; tmux -S "$work/tmux" capture-pane -p; exit 1; }
alive=0
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
echo "workload processes still running: $alive/$n"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cat "$work/report"
