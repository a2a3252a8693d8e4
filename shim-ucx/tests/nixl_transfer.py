#!/usr/bin/env python3
"""NIXL DRAM transfers between two agents in this process, over NIXL's bundled UCX.

Used by shim-ucx/tests/nixl.rs, with and without the faultline UCX shim preloaded.

    nixl_transfer.py [--op read|write] [--transfers N] [--size BYTES]

--op read (the default): the initiator reads the target's buffer (NIXL's UCX backend posts `ucp_get_nbx`, then
`ucp_ep_flush_nbx`). --op write: the initiator writes its buffer into the target's (`ucp_put_nbx`, then the flush).
Each transfer has its own handle (initialize_xfer ... release_xfer_handle) and its own byte pattern, written into the
source just before the transfer is posted; when a transfer fails the next pattern is written into the source at
once, as NIXL users reuse their buffers. A transfer reported DONE whose destination differs from what the source
held when it was posted is counted as corrupt.

NIXL's Python API reports a failed transfer by raising (transfer() or check_xfer_state() raise nixlBackendError,
nixlRemoteDisconnectError, ...: the bindings turn every error status into an exception); a returned "ERR" is
counted too. Each failure is recorded as "<call>:<exception or ERR>", the call being "transfer" or "check".

The last stdout line is one JSON object:
  {"result": "ok", "intact": true|false, ...}    every transfer completed (intact: every one's data arrived unchanged)
  {"result": "error", "error": "...", ...}        a transfer failed (with --transfers 1), or NIXL failed outside one
  {"result": "timeout", "stage": "...", ...}      a bounded wait ran out
With --transfers > 1 the result is "ok" whenever the process got through all of them, and the counts say how they
ended: "done", "failed", "failures" ({"<call>:<kind>": count}), "first_failure_at" (the first failed transfer's
index), "corrupt", "landed_at_error" (failed transfers whose bytes were all in the destination when the failure was
reported: nothing of theirs was still in flight when the source was reused).
Exit status: 0 for ok and error (the process survived), 3 for timeout, 2 when NIXL cannot be imported. A crash shows
as a signal or another status. A last-resort watchdog (faulthandler, which needs no GIL) dumps the stacks and exits 1
if anything blocks inside NIXL for longer than the whole budget.

Environment: UCX_TLS defaults to "tcp,self" here (NIXL needs a transport with peer-failure handling; shared memory
only fails) and UCX_MODULES to "^efa" (see below). NIXL_TRANSFER_TIMEOUT_S bounds each transfer's wait (default 30).
"""

import argparse
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

parser = argparse.ArgumentParser()
parser.add_argument("--op", choices=["read", "write"], default="read")
parser.add_argument("--transfers", type=int, default=1)
parser.add_argument("--size", type=int, default=64 * 1024)
args = parser.parse_args()

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
faulthandler.dump_traceback_later(args.transfers * TIMEOUT_S + 30, exit=True)

try:
    import numpy as np
    from nixl._api import nixl_agent, nixl_agent_config
except ImportError as e:
    report("error", 2, error=f"cannot import NIXL: {e}")


class Timeout(Exception):
    pass


def pattern(i):
    """Transfer i's bytes: different from every other transfer's at every offset."""
    return ((np.arange(args.size, dtype=np.uint64) + 7 * i + 1) % 251).astype(np.uint8)


def one_transfer(initiator, local, remote, remote_name):
    """Posts one transfer and waits for it: ("DONE", polls) or ("<call>:<failure>", polls). Always releases it."""
    handle = initiator.initialize_xfer(args.op.upper(), local, remote, remote_name, b"faultline")
    call, polls = "transfer", 0
    try:
        state = initiator.transfer(handle)
        call = "check"
        deadline = time.monotonic() + TIMEOUT_S
        while state == "PROC":
            if time.monotonic() > deadline:
                raise Timeout(polls)
            state = initiator.check_xfer_state(handle)
            polls += 1
        outcome = "DONE" if state == "DONE" else f"{call}:{state}"
    except Timeout:
        raise
    except Exception as e:  # nixlBackendError and friends: NIXL reported an error and the process lives on
        outcome = f"{call}:{type(e).__name__}"
    return outcome, polls, handle


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
    theirs = np.zeros(args.size, dtype=np.uint8)  # the target agent's buffer
    ours = np.zeros(args.size, dtype=np.uint8)  # the initiator's buffer
    src, dst = (theirs, ours) if args.op == "read" else (ours, theirs)
    theirs_descs = np.array([[theirs.ctypes.data, theirs.nbytes, 0]], dtype=np.uint64)
    ours_descs = np.array([[ours.ctypes.data, ours.nbytes, 0]], dtype=np.uint64)
    target_reg = target.register_memory(theirs_descs, "DRAM")
    initiator_reg = initiator.register_memory(ours_descs, "DRAM")

    stage = "exchange metadata"
    remote_name = initiator.add_remote_agent(target.get_agent_metadata())
    target.add_remote_agent(initiator.get_agent_metadata())
    local = initiator.get_xfer_descs(ours_descs, "DRAM")
    remote = initiator.get_xfer_descs(theirs_descs, "DRAM")

    done, corrupt, landed_at_error, polls_total = 0, 0, 0, 0
    failures = {}
    first_failure, first_failure_at = None, None
    src[:] = pattern(0)
    for i in range(args.transfers):
        stage = f"transfer {i}"
        posted = src.copy()  # what the source holds when the transfer is posted
        try:
            outcome, polls, handle = one_transfer(initiator, local, remote, remote_name)
        except Timeout as e:
            return ("timeout", {"transfer": i, "polls": e.args[0]})
        polls_total += polls
        if outcome == "DONE":
            done += 1
            corrupt += int(not np.array_equal(dst, posted))
            initiator.release_xfer_handle(handle)
            src[:] = pattern(i + 1)
        else:
            landed_at_error += int(np.array_equal(dst, posted))
            src[:] = pattern(i + 1)  # reuse the buffer at once, as NIXL users do
            failures[outcome] = failures.get(outcome, 0) + 1
            if first_failure is None:
                first_failure, first_failure_at = outcome, i
            initiator.release_xfer_handle(handle)

    stage = "clean up"
    initiator.remove_remote_agent(remote_name)
    target.remove_remote_agent(initiator.name)
    initiator.deregister_memory(initiator_reg)
    target.deregister_memory(target_reg)
    stage = "done"
    counts = {
        "op": args.op,
        "bytes": args.size,
        "transfers": args.transfers,
        "done": done,
        "failed": args.transfers - done,
        "failures": failures,
        "corrupt": corrupt,
        "landed_at_error": landed_at_error,
        "first_failure_at": first_failure_at,
        "polls": polls_total,
    }
    if args.transfers == 1 and first_failure is not None:
        return ("error", {"error": first_failure, **counts})
    return ("ok", {"intact": corrupt == 0, **counts})


try:
    result, fields = main()
except Exception as e:  # NIXL failed outside a transfer: the process lives on
    result, fields = "error", {"error": f"{type(e).__name__}: {e}"}

report(result, 3 if result == "timeout" else 0, **fields)
