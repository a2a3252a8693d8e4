#!/usr/bin/env bash
# Every test: installs what the tests need, checks formatting and lints, runs the whole suite (unit, property,
# concurrency, integration against real UCX / NIXL / CUDA runtime / kernel log / tmux / local Kubernetes API),
# and the loom models of the lock-free protocols.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --release --workspace
cargo test --workspace
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
  cargo test -p shm-proto --release --test loom
