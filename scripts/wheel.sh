#!/usr/bin/env bash
# Builds the Python wheel into target/wheels/: the `faultline` executable, both shims (inside the `faultline`
# package, where the binary finds them: `faultline shim-path ucx|cuda`), the typed Python package and its pytest
# plugin. Needs maturin (scripts/install-deps.sh --test installs it, or `pip install maturin`).
#   scripts/wheel.sh               a stripped wheel, for publishing
#   scripts/wheel.sh --unstripped  the release build's binary and shims as they are (debug line tables kept); reuses
#                                  `cargo build --release --workspace` without relinking (what the tests use)
#   --out DIR                      write the wheel to DIR instead of target/wheels/
# The tag is manylinux_2_<N>, N the newest glibc symbol version the binary needs on this machine (maturin's audit).
set -euo pipefail
cd "$(dirname "$0")/.."

strip=1
out=target/wheels
while (($#)); do
  case "$1" in
    --unstripped) strip=0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    *) echo "usage: scripts/wheel.sh [--unstripped] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

command -v maturin >/dev/null 2>&1 || {
  echo "maturin not found: run scripts/install-deps.sh --test, or pip install maturin" >&2
  exit 1
}

# The same build as `cargo build --release --workspace` (same features), so nothing is rebuilt after it.
cargo build --release --locked -p faultline -p shim-ucx -p shim-cuda
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
release=$target_dir/release
# maturin takes the package from python/faultline/, so the shims are put there for the build (and only then).
shims=python/faultline/shims
trap 'rm -rf "$shims"' EXIT
rm -rf "$shims"
mkdir -p "$shims"
cp "$release/libfaultline_ucx.so" "$release/libfaultline_cuda.so" "$shims/"
maturin_args=(build --release --out "$out")
if ((strip)); then
  strip --strip-unneeded "$shims"/*.so
  maturin_args+=(--strip)
fi
maturin "${maturin_args[@]}"
