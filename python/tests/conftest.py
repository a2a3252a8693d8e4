"""The wheel's acceptance suite, run against an installed wheel from a directory of its own (no repository paths).

scripts/test.sh runs it through faultline/tests/python_wheel.rs, which builds the wheel, installs it into a fresh
venv in a temporary directory, copies this directory there with the UCX test program (`ucx_selfloop`, built from
shim-ucx/tests/c/ucx_selfloop.c) beside it, and sets FAULTLINE_WHEEL to the wheel's path. To run it by hand, do the
same: it needs the wheel installed, `ucx_selfloop` here, and NIXL, numpy, the CUDA runtime (nvidia-cuda-runtime-cu12)
and mypy importable (scripts/install-deps.sh --test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def selfloop() -> Path:
    """The UCX self-loop program: `--stdin --ops put` runs `run N` iterations of ucp_put_nbx on request."""
    program = HERE / "ucx_selfloop"
    if not program.is_file():
        pytest.fail(f"{program} is missing: build shim-ucx/tests/c/ucx_selfloop.c and put it beside the tests")
    return program


@pytest.fixture(scope="session")
def wheel() -> Path:
    """The wheel under test (FAULTLINE_WHEEL)."""
    path = os.environ.get("FAULTLINE_WHEEL")
    if not path or not Path(path).is_file():
        pytest.fail("FAULTLINE_WHEEL must name the wheel that is installed here")
    return Path(path)
