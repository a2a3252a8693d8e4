#!/usr/bin/env bash
# Packs faultline the way the seed UCX fault injector is released: ucx-fault-injector-linux-<arch>.tar.gz holding
# one directory with `ucx-fault-client` (faultline's client under the seed's name) and `libucx_fault_injector.so`
# (faultline's UCX shim), so a script that downloads the seed's tarball works by changing only the URL.
#
#   scripts/seed-release.sh [--no-build] [OUT_DIR]
#
# Builds the two in release mode (unless --no-build: then they must already be in $CARGO_TARGET_DIR/release), writes
# the tarball to OUT_DIR (default: the repository's target/dist) and prints its path.
set -euo pipefail

build=1
if [[ "${1:-}" == "--no-build" ]]; then
  build=0
  shift
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="${1:-$root/target/dist}"
out_dir="$(mkdir -p "$out_dir" && cd "$out_dir" && pwd)"
cd "$root"
target_dir="$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)"

if ((build)); then
  cargo build --release -p shim-ucx -p faultline >&2
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
name="ucx-fault-injector-linux-${arch}"
client="$target_dir/release/ucx-fault-client"
shim="$target_dir/release/libfaultline_ucx.so"
for built in "$client" "$shim"; do
  if [[ ! -f "$built" ]]; then
    echo "seed-release.sh: $built is missing (run without --no-build to build it)" >&2
    exit 1
  fi
done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$client" "$stage/$name/ucx-fault-client"
cp "$shim" "$stage/$name/libucx_fault_injector.so"
tar czf "$out_dir/$name.tar.gz" -C "$stage" "$name"
echo "$out_dir/$name.tar.gz"
