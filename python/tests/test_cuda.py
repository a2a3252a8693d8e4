"""The CUDA shim that came with the package, in a Python program calling the real CUDA runtime from PyPI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import faultline

COUNTER = Path(__file__).resolve().parent / "cudart_counter.py"
NO_DEVICE = 100  # cudaErrorNoDevice


def device_count_status(program: faultline.ShimmedProcess) -> int:
    program.send("count")
    return int(program.read_until(lambda line: line.lstrip("-").isdigit())[-1])


def test_cuda_faults_fail_runtime_calls_and_the_runtimes_own_answer_comes_back_after(
    shimmed: faultline.Launcher, cuda_faults: Callable[..., faultline.Faults]
) -> None:
    program = shimmed([sys.executable, COUNTER], kind="cuda")
    program.read_until("ready")
    own = device_count_status(program)
    assert own in (0, 35), "a driver's answer, or cudaErrorInsufficientDriver where there is none"
    with cuda_faults(program, strategy="X", hooks=["cudaGetDeviceCount"], error_codes=["cudaErrorNoDevice"]):
        assert device_count_status(program) == NO_DEVICE
    assert device_count_status(program) == own
    assert faultline.processes("cuda", shm_dir=shimmed.shm_dir) == [program]
