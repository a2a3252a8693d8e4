#!/usr/bin/env bash
# The main job: installs what is missing, builds, and opens the dashboard on a built-in demo workload
# (a small program doing real UCX traffic to itself, with the faultline UCX shim preloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace
exec target/release/faultline demo "$@"
