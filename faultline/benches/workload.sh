# Shared by the benchmark scripts (source it after `cd` to the repository root): builds the release binary and
# shim, makes a scratch directory and a private segment directory, and starts shimmed UCX programs in them.
# Sets: faultline, shim, work, shm, pids, count. Everything started is stopped and removed on exit; a script that
# needs more clean-up defines `bench_cleanup` before sourcing this.

# The whole workspace, as scripts/test.sh builds it: the same feature set, so neither rebuilds the other's binaries.
cargo build --release -q --workspace
target=${CARGO_TARGET_DIR:-target}
faultline=$(realpath "$target/release/faultline")
shim=$(realpath "$target/release/libfaultline_ucx.so")

work=$(mktemp -d /tmp/faultline-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/faultline-bench.XXXXXX)
pids=()
cleanup() {
  declare -F bench_cleanup >/dev/null && bench_cleanup
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

cc -O1 -pthread -o "$work/ucx_selfloop" shim-ucx/tests/c/ucx_selfloop.c -lucp -lucs

# start_workload N [VAR=VALUE...]: N shimmed `ucx_selfloop --forever` programs (5 % random faults, recording on in
# every tenth), each with the extra environment given (`{i}` in a value becomes the program's number), then waits
# until their N segments exist; `count` is how many do.
start_workload() {
  local n=$1 i record
  shift
  echo "starting $n shimmed UCX processes..."
  for i in $(seq 1 "$n"); do
    record=0
    ((i % 10 == 0)) && record=1
    env FAULTLINE_SHM_DIR="$shm" LD_PRELOAD="$shim" FAULTLINE_ENABLED=1 FAULTLINE_PROBABILITY=5 \
      FAULTLINE_RECORD=$record UCX_WARN_UNUSED_ENV_VARS=n "${@//\{i\}/$i}" \
      "$work/ucx_selfloop" --forever --interval-us 100000 --quiet --ops put,get,flush \
      </dev/null >/dev/null 2>>"$work/workload.log" &
    pids+=($!)
  done
  for _ in $(seq 1 600); do
    count=$(find "$shm" -name 'faultline.ucx.*' | wc -l)
    ((count >= n)) && break
    sleep 0.1
  done
}
