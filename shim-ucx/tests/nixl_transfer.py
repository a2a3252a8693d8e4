#!/usr/bin/env python3
"""One NIXL DRAM READ between two agents in this process, over NIXL's bundled UCX.

Used by shim-ucx/tests/nixl.rs, with and without the faultline UCX shim preloaded. The initiator reads the target's
buffer (NIXL's UCX backend posts `ucp_get_nbx`), then checks the bytes.

The last stdout line is one JSON object:
  {"result": "ok", "intact": true|false, ...}    the transfer completed (intact: the data arrived unchanged)
  {"result": "error", "error": "...", ...}        NIXL reported an error (an exception, or the state became ERR)
  {"result": "timeout", "stage": "...", ...}      a bounded wait ran out
Exit status: 0 for ok and error (the process survived), 3 for timeout, 2 when NIXL cannot be imported. A crash shows
as a signal or another status. A last-resort watchdog (faulthandler, which needs no GIL) dumps the stacks and exits 1
if anything blocks inside NIXL for longer than the whole budget.

Environment: UCX_TLS defaults to "tcp,self" here (NIXL needs a transport with peer-failure handling; shared memory
only fails) and UCX_MODULES to "^efa" (see below). NIXL_TRANSFER_TIMEOUT_S bounds the transfer wait (default 30).
"""

import faulthandler
import json
import os
import sys
import time

os.environ.setdefault("UCX_TLS", "tcp,self")
# The wheel's UCX "efa" module needs the system libefa.so.1, which drags in a second libibverbs and libnl-route
# (Debian's ibverbs-providers); the two libnl-route copies get cross-wired and the process dies with SIGSEGV in
# rtnl_tc_unregister at exit, with or without any preload. Not loading that module (no EFA here) avoids it.
os.environ.setdefault("UCX_MODULES", "^efa")
os.environ.setdefault("NIXL_LOG_LEVEL", "WARN")
TIMEOUT_S = float(os.environ.get("NIXL_TRANSFER_TIMEOUT_S", "30"))
SIZE = 64 * 1024

stage = "start"


def report(result, code, **fields):
    line = {"result": result, "stage": stage}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    if result == "timeout":
        sys.stderr.flush()
        os._exit(code)  # a transfer is still in flight: do not wait for NIXL's teardown
    sys.exit(code)


# Last resort, for a call that blocks inside NIXL/UCX while holding the GIL.
faulthandler.dump_traceback_later(2 * TIMEOUT_S + 30, exit=True)

try:
    import numpy as np
    from nixl._api import nixl_agent, nixl_agent_config
except ImportError as e:
    report("error", 2, error=f"cannot import NIXL: {e}")


def main():
    global stage
    config = nixl_agent_config(backends=["UCX"])
    stage = "create agents"
    target = nixl_agent("target", config)
    initiator = nixl_agent("initiator", config)
    for agent in (target, initiator):
        if "UCX" not in agent.backends:
            return ("error", {"error": f"agent {agent.name}: no UCX backend (plugins: {agent.plugin_list})"})

    stage = "register memory"
    src = (np.arange(SIZE, dtype=np.uint64) % 251).astype(np.uint8)  # the target's data
    dst = np.zeros(SIZE, dtype=np.uint8)  # the initiator's buffer
    src_descs = np.array([[src.ctypes.data, src.nbytes, 0]], dtype=np.uint64)
    dst_descs = np.array([[dst.ctypes.data, dst.nbytes, 0]], dtype=np.uint64)
    target_reg = target.register_memory(src_descs, "DRAM")
    initiator_reg = initiator.register_memory(dst_descs, "DRAM")

    stage = "exchange metadata"
    remote_name = initiator.add_remote_agent(target.get_agent_metadata())
    target.add_remote_agent(initiator.get_agent_metadata())

    stage = "prepare transfer"
    local = initiator.get_xfer_descs(dst_descs, "DRAM")
    remote = initiator.get_xfer_descs(src_descs, "DRAM")
    handle = initiator.initialize_xfer("READ", local, remote, remote_name, b"faultline")

    stage = "post transfer"
    state = initiator.transfer(handle)
    stage = "wait for transfer"
    deadline = time.monotonic() + TIMEOUT_S
    polls = 0
    while state == "PROC":
        if time.monotonic() > deadline:
            return ("timeout", {"polls": polls})
        state = initiator.check_xfer_state(handle)
        polls += 1
    if state != "DONE":
        return ("error", {"error": f"transfer state {state}", "polls": polls})

    stage = "verify"
    intact = bool(np.array_equal(src, dst))

    stage = "clean up"
    initiator.release_xfer_handle(handle)
    initiator.remove_remote_agent(remote_name)
    target.remove_remote_agent(initiator.name)
    initiator.deregister_memory(initiator_reg)
    target.deregister_memory(target_reg)
    stage = "done"
    return ("ok", {"intact": intact, "bytes": SIZE, "polls": polls})


try:
    result, fields = main()
except Exception as e:  # nixlBackendError and friends: NIXL reported an error and the process lives on
    result, fields = "error", {"error": f"{type(e).__name__}: {e}"}

report(result, 3 if result == "timeout" else 0, **fields)
