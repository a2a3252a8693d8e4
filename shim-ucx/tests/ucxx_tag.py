#!/usr/bin/env python3
"""One ucxx tag_send between a listener's endpoint and a client endpoint of one worker, in this process.

Used by shim-ucx/tests/ucxx.rs under the faultline UCX shim. ucxx (PyPI ucxx-cu12: the low-level API of
`ucxx._lib.libucxx`, over libucxx and the libucx-cu12 wheel's UCX; host memory, no GPU) wraps every UCX request in
a C++ request object that it completes from the request's callback, or at the call when UCX answers there.

The worker is progressed explicitly here (no progress thread). After a wireup message each way (two tag sends),
the client sends one 8-byte message with tag 7 to
the listener's endpoint; the script waits (bounded) for the send's request to complete and asks it
(`check_error()`); unless the send failed at the call (then nothing was sent), the listener's endpoint then receives
the message, which waits in UCX's unexpected queue.

The last stdout line is one JSON object:
  {"send": "ok" | "<exception class>", "message": "<its text>", "completed_at_call": true|false,
   "received": true|false (the message arrived intact) | null (not received: the send failed at the call)}
  {"result": "timeout", "stage": "..."}    a bounded wait ran out (exit 3)
Exit status 0 when the process got through (whatever the send said), 2 when ucxx cannot be imported.
The worker and its endpoints are closed and dropped before the script ends, so that UCX's request leak check
("was not returned to mpool", at ucp_worker_destroy) runs while the output is still read. UCX logs to stdout
unless UCX_LOG_FILE says otherwise: its lines come before the result line.
"""

import faulthandler
import gc
import json
import os
import sys
import time

os.environ.setdefault("UCX_TLS", "tcp,self")
os.environ.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")  # ucxx sets UCX_MEMTYPE_CACHE, which UCX 1.21 does not know
TIMEOUT_S = float(os.environ.get("UCXX_TIMEOUT_S", "30"))
faulthandler.dump_traceback_later(3 * TIMEOUT_S + 30, exit=True)

try:
    import numpy as np
    import ucxx._lib.libucxx as ucx_api
    from ucxx._lib.arr import Array
except ImportError as e:
    print(json.dumps({"result": "error", "error": f"cannot import ucxx: {e}"}), flush=True)
    sys.exit(2)


class Timeout(Exception):
    pass


def progress_until(worker, done, stage):
    """Progresses the worker until done() holds; raises Timeout after TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise Timeout(stage)
        worker.progress()


def main():
    ctx = ucx_api.UCXContext(feature_flags=(ucx_api.Feature.TAG,))
    worker = ucx_api.UCXWorker(ctx)
    accepted = []
    listener = ucx_api.UCXListener.create(
        worker=worker,
        port=0,
        cb_func=lambda conn_request: accepted.append(
            listener.create_endpoint_from_conn_request(conn_request, endpoint_error_handling=True)
        ),
    )
    client = ucx_api.UCXEndpoint.create(worker, "127.0.0.1", listener.port, endpoint_error_handling=True)
    progress_until(worker, lambda: accepted, "accept")
    server = accepted[0]

    # Wire both endpoints up first (one message each way, as ucxx's own benchmarks do), so that UCX can complete
    # the measured send inside the call: the case where a callback run inside the call would leak ucxx's request.
    # These two sends are the armed calls FAULTLINE_SKIP=2 lets pass.
    wireup = [np.zeros(1, dtype="u8") for _ in range(2)]
    requests = [
        server.tag_recv(Array(wireup[0]), tag=ucx_api.UCXXTag(1)),
        client.tag_recv(Array(wireup[1]), tag=ucx_api.UCXXTag(2)),
        client.tag_send(Array(np.ones(1, dtype="u8")), tag=ucx_api.UCXXTag(1)),
        server.tag_send(Array(np.ones(1, dtype="u8")), tag=ucx_api.UCXXTag(2)),
    ]
    progress_until(worker, lambda: all(r.completed for r in requests), "wireup")
    for r in requests:
        r.check_error()
    del requests

    out = {"ucx": ".".join(map(str, ucx_api.get_ucx_version()))}
    send = client.tag_send(Array(np.array([0xFA17], dtype="u8")), tag=ucx_api.UCXXTag(7))
    out["completed_at_call"] = bool(send.completed)
    progress_until(worker, lambda: send.completed, "send")
    try:
        send.check_error()
        out.update(send="ok", message="")
    except Exception as e:  # ucxx's exception for the request's status
        out.update(send=type(e).__name__, message=str(e))
    if out["completed_at_call"] and out["send"] != "ok":
        out["received"] = None  # failed at the call: nothing was sent, so nothing to receive
    else:
        # An eager message that came before its receive waits in UCX's unexpected queue.
        received = np.zeros(1, dtype="u8")
        recv = server.tag_recv(Array(received), tag=ucx_api.UCXXTag(7))
        progress_until(worker, lambda: recv.completed, "receive")
        recv.check_error()
        out["received"] = int(received[0]) == 0xFA17
        del recv

    for ep in (client, server):
        ep.close_blocking()  # not a fixed wait: ucxx's own bounded close
    del send, client, server, accepted, listener
    worker.progress()
    del worker, ctx
    gc.collect()
    return out


try:
    result = main()
except Timeout as e:
    print(json.dumps({"result": "timeout", "stage": e.args[0]}), flush=True)
    os._exit(3)
print(json.dumps(result), flush=True)
