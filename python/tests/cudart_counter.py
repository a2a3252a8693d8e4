#!/usr/bin/env python3
"""A CUDA runtime program for the wheel's tests: on each `count` line on standard input it calls
cudaGetDeviceCount from the PyPI runtime (nvidia-cuda-runtime-cu12, loaded with ctypes) and prints the status it
returned; `quit` or the end of input exits. With no driver the runtime answers cudaErrorInsufficientDriver (35)."""

import ctypes
import os
import sys

import nvidia.cuda_runtime

library = os.path.join(list(nvidia.cuda_runtime.__path__)[0], "lib", "libcudart.so.12")
cudart = ctypes.CDLL(library)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    count = ctypes.c_int(0)
    print(cudart.cudaGetDeviceCount(ctypes.byref(count)), flush=True)
