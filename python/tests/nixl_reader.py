#!/usr/bin/env python3
"""Two NIXL agents in one process, reading on request: a long-running NIXL program for the wheel's tests.

The agents are set up once (UCX backend, DRAM registered, metadata exchanged); then each `read` line on standard
input posts one DRAM READ (NIXL's UCX backend calls `ucp_get_nbx`), waits for it, checks the bytes and prints one
JSON line:
  {"ready": true}                                  once, when the agents are set up
  {"result": "ok", "intact": true|false}           a READ completed (intact: the data arrived unchanged)
  {"result": "error", "error": "..."}              NIXL reported an error (an exception, or the state ERR)
  {"result": "timeout"}                            the transfer did not finish in NIXL_TRANSFER_TIMEOUT_S (30)
`quit` or the end of input releases everything and exits 0.

UCX_TLS defaults to "tcp,self" (NIXL needs peer-failure handling; shared memory alone fails) and UCX_MODULES to
"^efa" (the wheel's EFA module crashes at exit next to Debian's ibverbs; there is no EFA here).
"""

import json
import os
import sys
import time

os.environ.setdefault("UCX_TLS", "tcp,self")
os.environ.setdefault("UCX_MODULES", "^efa")
os.environ.setdefault("NIXL_LOG_LEVEL", "WARN")
TIMEOUT_S = float(os.environ.get("NIXL_TRANSFER_TIMEOUT_S", "30"))
SIZE = 64 * 1024

import numpy as np  # noqa: E402
from nixl._api import nixl_agent, nixl_agent_config  # noqa: E402


def say(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Reader:
    def __init__(self):
        config = nixl_agent_config(backends=["UCX"])
        self.target = nixl_agent("target", config)
        self.initiator = nixl_agent("initiator", config)
        self.src = (np.arange(SIZE, dtype=np.uint64) % 251).astype(np.uint8)
        self.dst = np.zeros(SIZE, dtype=np.uint8)
        self.src_descs = np.array([[self.src.ctypes.data, self.src.nbytes, 0]], dtype=np.uint64)
        self.dst_descs = np.array([[self.dst.ctypes.data, self.dst.nbytes, 0]], dtype=np.uint64)
        self.target_reg = self.target.register_memory(self.src_descs, "DRAM")
        self.initiator_reg = self.initiator.register_memory(self.dst_descs, "DRAM")
        self.remote = self.initiator.add_remote_agent(self.target.get_agent_metadata())
        self.target.add_remote_agent(self.initiator.get_agent_metadata())

    def read(self):
        self.dst[:] = 0
        local = self.initiator.get_xfer_descs(self.dst_descs, "DRAM")
        remote = self.initiator.get_xfer_descs(self.src_descs, "DRAM")
        handle = self.initiator.initialize_xfer("READ", local, remote, self.remote, b"faultline")
        try:
            state = self.initiator.transfer(handle)
            deadline = time.monotonic() + TIMEOUT_S
            while state == "PROC":
                if time.monotonic() > deadline:
                    return {"result": "timeout"}
                state = self.initiator.check_xfer_state(handle)
            if state != "DONE":
                return {"result": "error", "error": f"transfer state {state}"}
            return {"result": "ok", "intact": bool(np.array_equal(self.src, self.dst))}
        finally:
            try:
                self.initiator.release_xfer_handle(handle)
            except Exception:  # a failed transfer's handle may refuse to be released; it goes with the agent
                pass

    def close(self):
        self.initiator.remove_remote_agent(self.remote)
        self.target.remove_remote_agent(self.initiator.name)
        self.initiator.deregister_memory(self.initiator_reg)
        self.target.deregister_memory(self.target_reg)


def main():
    reader = Reader()
    say(ready=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "read":
            say(result="unknown command", command=command)
            continue
        try:
            say(**reader.read())
        except Exception as error:  # nixlBackendError and friends: NIXL reported the failure, the process lives on
            say(result="error", error=f"{type(error).__name__}: {error}")
    reader.close()


if __name__ == "__main__":
    main()
