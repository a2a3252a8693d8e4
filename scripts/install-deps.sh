#!/usr/bin/env bash
# Installs what faultline needs on a Debian machine, skipping what is already there.
#   scripts/install-deps.sh          build + demo: a C compiler, Debian's UCX, tmux
#   scripts/install-deps.sh --test   also what the tests use: ucx-utils (ucx_perftest), NIXL, ucxx and the CUDA
#                                    runtime from PyPI, kubernetes-validate, kmock, junitparser (reads the experiments'
#                                    JUnit), and for the Python wheel's test maturin, pytest and mypy
set -euo pipefail

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1

sudo_if_needed() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

packages=(build-essential pkg-config libucx-dev tmux)
((want_tests)) && packages+=(ucx-utils util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

if ((want_tests)); then
  python=${PYTHON:-python3}
  pip=("$python" -m pip install -q --disable-pip-version-check)
  # NIXL runs a DRAM transfer over its bundled UCX with no GPU; --no-deps avoids ~6 GB of torch.
  "$python" -c "import numpy" 2>/dev/null || "${pip[@]}" numpy
  "$python" -c "import nixl._api" 2>/dev/null || "${pip[@]}" --no-deps nixl nixl-cu12
  # ucxx's low-level API over its own UCX wheel (libucxx-cu12, libucx-cu12), host memory only: no GPU or driver needed.
  "$python" -c "import ucxx._lib.libucxx" 2>/dev/null || "${pip[@]}" ucxx-cu12
  # The real CUDA runtime: with no driver every call answers cudaErrorInsufficientDriver (35).
  "$python" -c "import nvidia.cuda_runtime" 2>/dev/null || "${pip[@]}" nvidia-cuda-runtime-cu12
  command -v kubernetes-validate >/dev/null 2>&1 || "${pip[@]}" kubernetes-validate
  "$python" -c "import kmock" 2>/dev/null || "${pip[@]}" kmock
  "$python" -c "import junitparser" 2>/dev/null || "${pip[@]}" junitparser
  # The wheel's test (faultline/tests/python_wheel.rs): maturin builds it (scripts/wheel.sh); its pytest suite runs
  # in a venv that sees these packages, and mypy checks the installed package. kmock registers a pytest plugin that
  # imports pytest_asyncio without depending on it, so pytest fails to start without pytest-asyncio.
  command -v maturin >/dev/null 2>&1 || "${pip[@]}" 'maturin>=1.5,<2'
  "$python" -c "import pytest, pytest_asyncio" 2>/dev/null || "${pip[@]}" pytest pytest-asyncio
  "$python" -c "import mypy" 2>/dev/null || "${pip[@]}" mypy
fi
