/*
 * ucx_selfloop.c - UCX self-loopback workload for the shim-ucx integration
 * tests.
 *
 * One process talks to itself through UCP: each thread owns a worker and an
 * endpoint connected to that worker's own address, plus a 4096-byte mapped
 * buffer used as the RMA/atomic target.  Every UCP call in the iteration loop
 * is reported with its status so a test can compare what the program saw with
 * what an LD_PRELOAD fault-injection library claims it injected.  Any call may
 * fail: errors are printed and the program carries on; waits are bounded.
 *
 * Build:
 *   cc -O1 -Wall -Wextra -Werror -pthread -o ucx_selfloop ucx_selfloop.c \
 *      -lucp -lucs
 *
 * Usage:
 *   ucx_selfloop [--ops LIST] [--iterations N] [--threads T] [--size BYTES]
 *                [--err-mode peer|none] [--quiet]
 *                [--stdin | --forever [--interval-us U]]
 *   ucx_selfloop --http PORT [--ops LIST] [--size BYTES] [--err-mode M]
 *                [--quiet] [--stdin]
 *
 *   --ops           comma list of put,get,tag,am,atomic,stream,flush,
 *                   ep_create,mem_map,rkey (default put,get,flush); each
 *                   iteration runs the selected ops in that fixed order.
 *   --iterations N  iterations per thread (default 10), then summary + exit 0.
 *   --threads T     T threads, each with its own worker/ep/mapping (default 1).
 *   --size BYTES    message size for put/get/tag/am/stream (1..4096, def. 64).
 *   --err-mode M    endpoint error handling mode (default peer).  UCX 1.13
 *                   rejects a FORCE close of a "none" endpoint (-5), so with
 *                   "none" endpoints are closed in flush mode instead.  With
 *                   "peer", UCX 1.13 cannot use self/shared-memory transports
 *                   (no peer failure support) and the loop runs over tcp.
 *   --quiet         no CALL lines (no TICK lines with --forever).
 *   --stdin         read commands from stdin: "run K" runs K iterations per
 *                   thread then prints SUMMARY.../DONE; "quit" or EOF exits 0.
 *   --forever       iterate until SIGINT/SIGTERM, sleeping --interval-us
 *                   microseconds (default 1000) between iterations.
 *   --http PORT     serve HTTP on 127.0.0.1:PORT (0 picks a free port), one
 *                   iteration per request; see "HTTP mode" below.  Runs one
 *                   thread; with --stdin, stdin is only watched for EOF.
 *
 * Output (stdout, line-buffered):
 *   CALL <n> <ucp_function> <status>          one per loop call (threads=1)
 *   CALL <t>:<n> <ucp_function> <status>      same, threads>1 (t is 0-based)
 *       n is the 1-based per-thread counter of printed calls; status is the
 *       integer ucs_status_t (0 = UCS_OK, negative = error).  For *_nbx calls
 *       it is the final status: the returned error pointer, 0 for an
 *       immediate completion, or the request status after progressing.
 *   SUMMARY <ucp_function> calls=<c> failures=<f>
 *       cumulative totals over all threads, one per function called at least
 *       once, alphabetical; printed after each "run" (and at exit), then:
 *   DONE
 *   TICK calls=<total> failures=<total>       once a second with --forever
 *   SETUP <ucp_function> <status>             setup call failed; exit code 3
 *   ERROR <text>                              bad --stdin command (ignored)
 *   HTTP <port>                               --http: listening, serving
 *   SERVED <n> <code> [<op> <ucp_function> <status>]
 *                                             --http without --quiet: the
 *       n-th request was answered with HTTP <code>; a 503 names the first
 *       failed call (status as in the JSON below).
 * Exit codes: 0 ok, 2 usage error, 3 setup failure, 4 cannot listen.
 *
 * Only loop calls are printed and counted.  Setup (ucp_init, ucp_worker_create,
 * ucp_worker_get_address, ucp_ep_create, ucp_mem_map, ucp_rkey_pack,
 * ucp_ep_rkey_unpack, ucp_worker_set_am_recv_handler) and cleanup calls
 * (ucp_ep_close_nbx of the main endpoint, unmap, destroy...) are not.
 *
 * Pairs: "tag" posts ucp_tag_recv_nbx, then ucp_tag_send_nbx only if the
 * receive was posted; if the send fails the receive is cancelled and reports
 * UCS_ERR_CANCELED (-16), so its failures = injected + failed sends.
 * "stream" calls ucp_stream_send_nbx, then ucp_stream_recv_nbx once per
 * message queued on the endpoint: normally one, none if the send failed and
 * nothing was queued, more after an earlier failed receive left its message
 * behind (the drain stops at the first failure).  "ep_create" closes only an
 * endpoint that was created; "rkey" unpacks only a buffer that was packed.
 * A request that does not complete within 10 s is cancelled and reported as
 * UCS_ERR_TIMED_OUT (-20) with a warning on stderr.
 *
 * Data checks (stderr "DATA_MISMATCH ..." lines): get after a successful put
 * in the same iteration, tag and stream payloads, AM payloads.  UCX's own log
 * messages are redirected to stderr so stdout stays parseable.
 *
 * HTTP mode: a stand-in for a service whose requests depend on UCX, to probe
 * while faults are injected.  Any method and path; a Content-Length body is
 * read and ignored (chunked bodies get 501).  HTTP/1.1 keep-alive is honoured
 * ("Connection: close" and HTTP/1.0 close after the answer).  Each request
 * runs one iteration of --ops and is answered
 *   200 {"ok":true,"ops":<selected ops>,"calls":<UCX calls made>}
 *   503 {"ok":false,"op":"put","function":"ucp_put_nbx",
 *        "status":"UCS_ERR_IO_ERROR","code":-3,"message":"Input/output error"}
 * where a 503 names the first call that failed ("message" is
 * ucs_status_string(); op "connect" is the endpoint being re-created).  After
 * any failure the endpoint is closed and re-created, as a server reconnects to
 * a peer that errored; a close the library refuses leaves the old endpoint in
 * use, and a failed re-creation is retried before the next request (so is a
 * failed ucp_ep_create/ucp_rkey_pack/ucp_ep_rkey_unpack at setup); the calls
 * of a reconnect are loop calls, printed and counted.  Serves until
 * SIGINT/SIGTERM, or EOF on stdin with --stdin (its input is ignored); then
 * prints SUMMARY and DONE like the other modes.  Clients that disconnect at
 * any point are only dropped (SIGPIPE is ignored); with 32 connections open,
 * a new one evicts the least recently used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#define BUF_SIZE        4096
#define AM_ID           7
#define TAG_VALUE       42
#define WAIT_TIMEOUT_NS (10ull * 1000000000ull)
#define CLEANUP_WAIT_NS (2ull * 1000000000ull)
/* Atomics target the last word so they never overlap a small put/get. */
#define ATOMIC_OFFSET   (BUF_SIZE - sizeof(uint64_t))

/* Reported functions; keep alphabetical, SUMMARY prints in this order. */
enum fn {
    FN_AM_SEND,
    FN_ATOMIC_OP,
    FN_EP_CLOSE,
    FN_EP_CREATE,
    FN_EP_FLUSH,
    FN_EP_RKEY_UNPACK,
    FN_GET,
    FN_MEM_MAP,
    FN_PUT,
    FN_RKEY_PACK,
    FN_STREAM_RECV,
    FN_STREAM_SEND,
    FN_TAG_RECV,
    FN_TAG_SEND,
    FN_WORKER_FLUSH,
    FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
    [FN_AM_SEND]        = "ucp_am_send_nbx",
    [FN_ATOMIC_OP]      = "ucp_atomic_op_nbx",
    [FN_EP_CLOSE]       = "ucp_ep_close_nbx",
    [FN_EP_CREATE]      = "ucp_ep_create",
    [FN_EP_FLUSH]       = "ucp_ep_flush_nbx",
    [FN_EP_RKEY_UNPACK] = "ucp_ep_rkey_unpack",
    [FN_GET]            = "ucp_get_nbx",
    [FN_MEM_MAP]        = "ucp_mem_map",
    [FN_PUT]            = "ucp_put_nbx",
    [FN_RKEY_PACK]      = "ucp_rkey_pack",
    [FN_STREAM_RECV]    = "ucp_stream_recv_nbx",
    [FN_STREAM_SEND]    = "ucp_stream_send_nbx",
    [FN_TAG_RECV]       = "ucp_tag_recv_nbx",
    [FN_TAG_SEND]       = "ucp_tag_send_nbx",
    [FN_WORKER_FLUSH]   = "ucp_worker_flush_nbx",
};

/* Ops in execution order; bit i of the op mask selects op_names[i]. */
enum op {
    OP_PUT, OP_GET, OP_TAG, OP_AM, OP_ATOMIC, OP_STREAM, OP_FLUSH,
    OP_EP_CREATE, OP_MEM_MAP, OP_RKEY, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "put", "get", "tag", "am", "atomic", "stream", "flush",
    "ep_create", "mem_map", "rkey",
};

/* Options. */
static unsigned opt_ops = (1u << OP_PUT) | (1u << OP_GET) | (1u << OP_FLUSH);
static unsigned long opt_iterations = 10;
static unsigned opt_threads = 1;
static size_t opt_size = 64;
static int opt_quiet;
static int opt_stdin;
static int opt_forever;
static unsigned long opt_interval_us = 1000;
static int opt_http;
static unsigned opt_http_port;
static ucp_err_handling_mode_t opt_err_mode = UCP_ERR_HANDLING_MODE_PEER;

/* Totals over all threads; read by the TICK printer while threads run. */
static atomic_ulong stat_calls[FN_COUNT];
static atomic_ulong stat_failures[FN_COUNT];

/* Set by SIGINT/SIGTERM; polled by every thread. */
static atomic_int stop_requested;

static ucp_context_h g_context;

/* Per-thread UCX objects and buffers. */
struct tstate {
    unsigned         idx;
    pthread_t        thread;
    ucp_worker_h     worker;
    ucp_address_t   *address;
    ucp_ep_h         ep;
    ucp_mem_h        memh;
    ucp_rkey_h       rkey;
    uint8_t         *rbuf;      /* mapped buffer: the RMA/atomic target */
    uint8_t         *src;       /* payload sent by put/tag/am */
    uint8_t         *dst;       /* landing area for get/tag/stream */
    uint8_t         *aux;       /* stream payload / expected stream data */
    unsigned long    ncalls;    /* printed-call counter */
    unsigned long    iter;
    unsigned long    am_received;
    unsigned long    stream_sent;      /* stream messages sent ok */
    unsigned long    stream_received;  /* stream messages received ok */
    /* Setup result, read by main after the ready handshake. */
    const char      *setup_fn;
    ucs_status_t     setup_status;
    /* --http: the op being run, and what the current request did (read by
     * main once the request is done). */
    const char      *cur_op;
    unsigned long    req_calls;
    const char      *fail_op;   /* NULL: no call failed */
    enum fn          fail_fn;
    ucs_status_t     fail_status;
};

/* Main thread -> workers command channel. */
enum cmd { CMD_NONE, CMD_RUN, CMD_FOREVER, CMD_SERVE, CMD_QUIT };

static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv_cmd;
    pthread_cond_t  cv_done;
    enum cmd        cmd;
    unsigned long   gen;        /* bumped for every new command */
    unsigned long   run_iters;
    unsigned        nready;     /* threads that finished setup */
    unsigned        ndone;      /* threads that finished the current command */
} ctl = {
    .mu      = PTHREAD_MUTEX_INITIALIZER,
    .cv_cmd  = PTHREAD_COND_INITIALIZER,
    .cv_done = PTHREAD_COND_INITIALIZER,
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned long us)
{
    struct timespec ts = { .tv_sec = (time_t)(us / 1000000),
                           .tv_nsec = (long)(us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* UCX logs to stdout by default, which would corrupt the line protocol. */
static ucs_log_func_rc_t log_to_stderr(const char *file, unsigned line,
                                       const char *function,
                                       ucs_log_level_t level,
                                       const ucs_log_component_config_t *comp,
                                       const char *message, va_list ap)
{
    (void)function;
    (void)comp;
    fprintf(stderr, "[UCX %s] %s:%u ",
            (level < UCS_LOG_LEVEL_LAST) ? ucs_log_level_names[level] : "LOG",
            file, line);
    vfprintf(stderr, message, ap);
    fputc('\n', stderr);
    return UCS_LOG_FUNC_RC_STOP;
}

static void record(struct tstate *ts, enum fn f, ucs_status_t status)
{
    atomic_fetch_add_explicit(&stat_calls[f], 1, memory_order_relaxed);
    if (status != UCS_OK) {
        atomic_fetch_add_explicit(&stat_failures[f], 1, memory_order_relaxed);
    }
    ts->ncalls++;
    ts->req_calls++;
    if (status != UCS_OK && ts->fail_op == NULL) {
        ts->fail_op = ts->cur_op;
        ts->fail_fn = f;
        ts->fail_status = status;
    }
    if (opt_quiet || opt_forever) {
        return;
    }
    if (opt_threads > 1) {
        printf("CALL %u:%lu %s %d\n", ts->idx, ts->ncalls, fn_names[f],
               (int)status);
    } else {
        printf("CALL %lu %s %d\n", ts->ncalls, fn_names[f], (int)status);
    }
}

static void print_summary(void)
{
    for (int f = 0; f < FN_COUNT; f++) {
        unsigned long c = atomic_load(&stat_calls[f]);
        if (c > 0) {
            printf("SUMMARY %s calls=%lu failures=%lu\n", fn_names[f], c,
                   atomic_load(&stat_failures[f]));
        }
    }
    printf("DONE\n");
    fflush(stdout);
}

static void totals(unsigned long *calls, unsigned long *failures)
{
    *calls = *failures = 0;
    for (int f = 0; f < FN_COUNT; f++) {
        *calls    += atomic_load_explicit(&stat_calls[f], memory_order_relaxed);
        *failures += atomic_load_explicit(&stat_failures[f],
                                          memory_order_relaxed);
    }
}

/*
 * Turn an nbx return value into a final status.  No completion callback is
 * used: an injected error never runs one, so we poll the request instead, and
 * give up after a deadline so a lost completion cannot hang a test.
 */
static ucs_status_t wait_request(ucp_worker_h worker, ucs_status_ptr_t req,
                                 const char *what, uint64_t timeout_ns)
{
    if (req == NULL) {
        return UCS_OK;
    }
    if (UCS_PTR_IS_ERR(req)) {
        return UCS_PTR_STATUS(req);
    }

    uint64_t deadline = now_ns() + timeout_ns;
    unsigned long spins = 0;
    ucs_status_t status;
    while ((status = ucp_request_check_status(req)) == UCS_INPROGRESS) {
        ucp_worker_progress(worker);
        if ((++spins % 256) == 0 && now_ns() > deadline) {
            fprintf(stderr, "WARNING: %s did not complete within %llu ms, "
                    "cancelling it\n", what,
                    (unsigned long long)(timeout_ns / 1000000));
            /* Free releases the request once UCX eventually completes it. */
            ucp_request_cancel(worker, req);
            ucp_request_free(req);
            return UCS_ERR_TIMED_OUT;
        }
    }
    ucp_request_free(req);
    return status;
}

static ucs_status_t wait_op(struct tstate *ts, ucs_status_ptr_t req,
                            enum fn f)
{
    return wait_request(ts->worker, req, fn_names[f], WAIT_TIMEOUT_NS);
}

/* Different bytes per thread and iteration so stale data is detected. */
static void fill_pattern(uint8_t *buf, size_t len, unsigned thread,
                         unsigned long iter)
{
    uint8_t seed = (uint8_t)(iter * 37u + thread * 101u + 1u);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 7u);
    }
}

static void check_data(struct tstate *ts, const char *what,
                       const uint8_t *expected, const uint8_t *got, size_t len)
{
    if (len != opt_size || memcmp(got, expected, opt_size) != 0) {
        fprintf(stderr, "DATA_MISMATCH op=%s thread=%u iteration=%lu "
                "len=%zu\n", what, ts->idx, ts->iter, len);
    }
}

static ucs_status_t am_handler(void *arg, const void *header,
                               size_t header_length, void *data,
                               size_t length, const ucp_am_recv_param_t *param)
{
    struct tstate *ts = arg;
    (void)header;
    (void)header_length;

    ts->am_received++;
    /* Sends are forced eager, so the payload should always be inline. */
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        check_data(ts, "am", ts->src, data, length);
    }
    return UCS_OK;
}

static ucp_ep_params_t self_ep_params(struct tstate *ts)
{
    ucp_ep_params_t p = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
        .address    = ts->address,
        /* PEER is required for UCP_EP_CLOSE_FLAG_FORCE to be accepted. */
        .err_mode   = opt_err_mode,
    };
    return p;
}

/* Force close unless --err-mode none, where UCX only allows flush mode. */
static ucs_status_ptr_t start_close_ep(ucp_ep_h ep)
{
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    if (opt_err_mode == UCP_ERR_HANDLING_MODE_PEER) {
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        prm.flags        = UCP_EP_CLOSE_FLAG_FORCE;
    }
    return ucp_ep_close_nbx(ep, &prm);
}

static ucs_status_t close_ep(ucp_worker_h worker, ucp_ep_h ep,
                             uint64_t timeout_ns)
{
    return wait_request(worker, start_close_ep(ep), "ucp_ep_close_nbx",
                        timeout_ns);
}

/* ---- setup / cleanup ---------------------------------------------------- */

static int setup_fail(struct tstate *ts, const char *fn, ucs_status_t status)
{
    ts->setup_fn = fn;
    ts->setup_status = status;
    return -1;
}

static int thread_setup(struct tstate *ts)
{
    ucs_status_t status;

    ts->rbuf = aligned_alloc(BUF_SIZE, BUF_SIZE);
    ts->src  = aligned_alloc(BUF_SIZE, BUF_SIZE);
    ts->dst  = aligned_alloc(BUF_SIZE, BUF_SIZE);
    ts->aux  = aligned_alloc(BUF_SIZE, BUF_SIZE);
    if (!ts->rbuf || !ts->src || !ts->dst || !ts->aux) {
        fprintf(stderr, "out of memory\n");
        return setup_fail(ts, "malloc", UCS_ERR_NO_MEMORY);
    }
    memset(ts->rbuf, 0, BUF_SIZE);

    ucp_worker_params_t wp = {
        .field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SINGLE,
    };
    status = ucp_worker_create(g_context, &wp, &ts->worker);
    if (status != UCS_OK) {
        ts->worker = NULL;
        return setup_fail(ts, "ucp_worker_create", status);
    }

    size_t addr_len;
    status = ucp_worker_get_address(ts->worker, &ts->address, &addr_len);
    if (status != UCS_OK) {
        ts->address = NULL;
        return setup_fail(ts, "ucp_worker_get_address", status);
    }

    ucp_ep_params_t ep_params = self_ep_params(ts);
    status = ucp_ep_create(ts->worker, &ep_params, &ts->ep);
    if (status != UCS_OK) {
        ts->ep = NULL;
        if (!opt_http) {
            return setup_fail(ts, "ucp_ep_create", status);
        }
    }

    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                      UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address    = ts->rbuf,
        .length     = BUF_SIZE,
    };
    status = ucp_mem_map(g_context, &mp, &ts->memh);
    if (status != UCS_OK) {
        ts->memh = NULL;
        return setup_fail(ts, "ucp_mem_map", status);
    }

    /* --http connects (again) on the next request instead. */
    if (ts->ep != NULL) {
        void *rkey_buf;
        size_t rkey_len;
        status = ucp_rkey_pack(g_context, ts->memh, &rkey_buf, &rkey_len);
        if (status != UCS_OK && !opt_http) {
            return setup_fail(ts, "ucp_rkey_pack", status);
        }
        if (status == UCS_OK) {
            status = ucp_ep_rkey_unpack(ts->ep, rkey_buf, &ts->rkey);
            ucp_rkey_buffer_release(rkey_buf);
            if (status != UCS_OK) {
                ts->rkey = NULL;
                if (!opt_http) {
                    return setup_fail(ts, "ucp_ep_rkey_unpack", status);
                }
            }
        }
    }

    ucp_am_handler_param_t ap = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                      UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id         = AM_ID,
        .cb         = am_handler,
        .arg        = ts,
    };
    status = ucp_worker_set_am_recv_handler(ts->worker, &ap);
    if (status != UCS_OK) {
        return setup_fail(ts, "ucp_worker_set_am_recv_handler", status);
    }
    return 0;
}

/* Tolerates partial setup; every wait is bounded. */
static void thread_cleanup(struct tstate *ts)
{
    if (ts->rkey != NULL) {
        ucp_rkey_destroy(ts->rkey);
    }
    if (ts->ep != NULL) {
        ucs_status_t st = close_ep(ts->worker, ts->ep, CLEANUP_WAIT_NS);
        if (st != UCS_OK) {
            fprintf(stderr, "note: closing endpoint at exit: %s\n",
                    ucs_status_string(st));
        }
    }
    if (ts->memh != NULL) {
        ucp_mem_unmap(g_context, ts->memh);
    }
    if (ts->address != NULL) {
        ucp_worker_release_address(ts->worker, ts->address);
    }
    if (ts->worker != NULL) {
        /* Also destroys any endpoint whose close was refused. */
        ucp_worker_destroy(ts->worker);
    }
    free(ts->rbuf);
    free(ts->src);
    free(ts->dst);
    free(ts->aux);
}

/* ---- ops ---------------------------------------------------------------- */

static int op_selected(enum op op)
{
    return (opt_ops >> op) & 1u;
}

/* op_selected(), noting the op so a failed call can be attributed to it. */
static int begin_op(struct tstate *ts, enum op op)
{
    if (!op_selected(op)) {
        return 0;
    }
    ts->cur_op = op_names[op];
    return 1;
}

static uint64_t rbuf_addr(struct tstate *ts, size_t offset)
{
    return (uint64_t)(uintptr_t)(ts->rbuf + offset);
}

static void op_tag(struct tstate *ts)
{
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    memset(ts->dst, 0, opt_size);

    ucs_status_ptr_t rreq = ucp_tag_recv_nbx(ts->worker, ts->dst, opt_size,
                                             TAG_VALUE, (ucp_tag_t)-1, &prm);
    if (UCS_PTR_IS_ERR(rreq)) {
        /* Sending now would leave an unexpected message for the next
         * iteration's receive, so the pair stops here. */
        record(ts, FN_TAG_RECV, UCS_PTR_STATUS(rreq));
        return;
    }

    ucs_status_ptr_t sreq = ucp_tag_send_nbx(ts->ep, ts->src, opt_size,
                                             TAG_VALUE, &prm);
    ucs_status_t sst = wait_op(ts, sreq, FN_TAG_SEND);
    if (sst != UCS_OK && rreq != NULL) {
        /* Likely nothing will match the posted receive; cancelling completes
         * it with UCS_ERR_CANCELED (a no-op if it already matched). */
        ucp_request_cancel(ts->worker, rreq);
    }
    ucs_status_t rst = wait_op(ts, rreq, FN_TAG_RECV);

    /* Printed in call order, each with its final status. */
    record(ts, FN_TAG_RECV, rst);
    record(ts, FN_TAG_SEND, sst);
    if (rst == UCS_OK && sst == UCS_OK) {
        check_data(ts, "tag", ts->src, ts->dst, opt_size);
    }
}

/*
 * Stream messages are numbered by successful sends.  A receive that fails
 * leaves its message queued on the endpoint, so every message still queued
 * is received (one printed call each) to keep the stream in step; the loop
 * stops at the first failed receive.
 */
static void op_stream(struct tstate *ts)
{
    ucp_request_param_t sprm = { .op_attr_mask = 0 };
    fill_pattern(ts->aux, opt_size, ts->idx, ts->stream_sent);
    ucs_status_t st = wait_op(ts, ucp_stream_send_nbx(ts->ep, ts->aux,
                                                      opt_size, &sprm),
                              FN_STREAM_SEND);
    record(ts, FN_STREAM_SEND, st);
    if (st == UCS_OK) {
        ts->stream_sent++;
    }

    ucp_request_param_t rprm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = UCP_STREAM_RECV_FLAG_WAITALL,
    };
    while (ts->stream_received < ts->stream_sent) {
        size_t length = 0;
        memset(ts->dst, 0, opt_size);
        ucs_status_ptr_t req = ucp_stream_recv_nbx(ts->ep, ts->dst, opt_size,
                                                   &length, &rprm);
        if (req != NULL && !UCS_PTR_IS_ERR(req)) {
            /* With WAITALL a request completes only once all bytes arrived. */
            length = opt_size;
        }
        st = wait_op(ts, req, FN_STREAM_RECV);
        record(ts, FN_STREAM_RECV, st);
        if (st != UCS_OK) {
            break;
        }
        fill_pattern(ts->aux, opt_size, ts->idx, ts->stream_received++);
        check_data(ts, "stream", ts->aux, ts->dst, length);
    }
}

static void op_am(struct tstate *ts)
{
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        /* Eager keeps the payload inline in the handler; no rndv protocol. */
        .flags        = UCP_AM_SEND_FLAG_EAGER,
    };
    unsigned long before = ts->am_received;
    ucs_status_t st = wait_op(ts, ucp_am_send_nbx(ts->ep, AM_ID, NULL, 0,
                                                  ts->src, opt_size, &prm),
                              FN_AM_SEND);
    record(ts, FN_AM_SEND, st);
    if (st != UCS_OK) {
        return;
    }
    /* Let the handler run now so its data check sees this iteration. */
    uint64_t deadline = now_ns() + WAIT_TIMEOUT_NS;
    while (ts->am_received == before && now_ns() < deadline) {
        ucp_worker_progress(ts->worker);
    }
    if (ts->am_received == before) {
        fprintf(stderr, "WARNING: active message not delivered within "
                "timeout (thread=%u iteration=%lu)\n", ts->idx, ts->iter);
    }
}

static void op_ep_create(struct tstate *ts)
{
    ucp_ep_params_t ep_params = self_ep_params(ts);
    ucp_ep_h ep;
    ucs_status_t st = ucp_ep_create(ts->worker, &ep_params, &ep);
    record(ts, FN_EP_CREATE, st);
    if (st != UCS_OK) {
        return;
    }
    /* A refused close leaves the ep to ucp_worker_destroy at exit. */
    record(ts, FN_EP_CLOSE, close_ep(ts->worker, ep, WAIT_TIMEOUT_NS));
}

static void op_mem_map(struct tstate *ts)
{
    void *buf = aligned_alloc(BUF_SIZE, BUF_SIZE);
    if (buf == NULL) {
        fprintf(stderr, "out of memory, skipping mem_map\n");
        return;
    }
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                      UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address    = buf,
        .length     = BUF_SIZE,
    };
    ucp_mem_h memh;
    ucs_status_t st = ucp_mem_map(g_context, &mp, &memh);
    record(ts, FN_MEM_MAP, st);
    if (st == UCS_OK) {
        ucp_mem_unmap(g_context, memh);
    }
    free(buf);
}

/* Packs the thread's memory key and unpacks it on its endpoint, recording both calls: the remote key, or NULL if
 * either call failed. */
static ucp_rkey_h exchange_rkey(struct tstate *ts)
{
    void *rkey_buf;
    size_t rkey_len;
    ucs_status_t st = ucp_rkey_pack(g_context, ts->memh, &rkey_buf, &rkey_len);
    record(ts, FN_RKEY_PACK, st);
    if (st != UCS_OK) {
        return NULL;
    }
    ucp_rkey_h rkey;
    st = ucp_ep_rkey_unpack(ts->ep, rkey_buf, &rkey);
    record(ts, FN_EP_RKEY_UNPACK, st);
    ucp_rkey_buffer_release(rkey_buf);
    return st == UCS_OK ? rkey : NULL;
}

static void op_rkey(struct tstate *ts)
{
    ucp_rkey_h rkey = exchange_rkey(ts);
    if (rkey != NULL) {
        ucp_rkey_destroy(rkey);
    }
}

static void run_iteration(struct tstate *ts)
{
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    ucs_status_t st;
    int put_ok = 0;

    ts->iter++;
    fill_pattern(ts->src, opt_size, ts->idx, ts->iter);

    if (begin_op(ts, OP_PUT)) {
        st = wait_op(ts, ucp_put_nbx(ts->ep, ts->src, opt_size,
                                     rbuf_addr(ts, 0), ts->rkey, &prm),
                     FN_PUT);
        record(ts, FN_PUT, st);
        put_ok = (st == UCS_OK);
    }
    if (begin_op(ts, OP_GET)) {
        memset(ts->dst, 0, opt_size);
        st = wait_op(ts, ucp_get_nbx(ts->ep, ts->dst, opt_size,
                                     rbuf_addr(ts, 0), ts->rkey, &prm),
                     FN_GET);
        record(ts, FN_GET, st);
        if (put_ok && st == UCS_OK) {
            check_data(ts, "put/get", ts->src, ts->dst, opt_size);
        }
    }
    if (begin_op(ts, OP_TAG)) {
        op_tag(ts);
    }
    if (begin_op(ts, OP_AM)) {
        op_am(ts);
    }
    if (begin_op(ts, OP_ATOMIC)) {
        uint64_t one = 1;
        ucp_request_param_t aprm = {
            .op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE,
            .datatype     = ucp_dt_make_contig(sizeof(one)),
        };
        st = wait_op(ts, ucp_atomic_op_nbx(ts->ep, UCP_ATOMIC_OP_ADD, &one, 1,
                                           rbuf_addr(ts, ATOMIC_OFFSET),
                                           ts->rkey, &aprm),
                     FN_ATOMIC_OP);
        record(ts, FN_ATOMIC_OP, st);
    }
    if (begin_op(ts, OP_STREAM)) {
        op_stream(ts);
    }
    if (begin_op(ts, OP_FLUSH)) {
        record(ts, FN_EP_FLUSH,
               wait_op(ts, ucp_ep_flush_nbx(ts->ep, &prm), FN_EP_FLUSH));
        record(ts, FN_WORKER_FLUSH,
               wait_op(ts, ucp_worker_flush_nbx(ts->worker, &prm),
                       FN_WORKER_FLUSH));
    }
    if (begin_op(ts, OP_EP_CREATE)) {
        op_ep_create(ts);
    }
    if (begin_op(ts, OP_MEM_MAP)) {
        op_mem_map(ts);
    }
    if (begin_op(ts, OP_RKEY)) {
        op_rkey(ts);
    }
}

/* ---- --http: one request ----------------------------------------------- */

/*
 * Close the endpoint and create a new one with a fresh rkey, as a server
 * reconnects to a peer after an error.  A close refused outright (an error
 * pointer, nothing started) leaves the endpoint valid, so it stays in use;
 * otherwise it is gone whatever the close request's final status.  If a step
 * fails, ep or rkey stays NULL and the next request tries again.
 */
static void reconnect(struct tstate *ts)
{
    ts->cur_op = "connect";
    if (ts->rkey != NULL) {
        ucp_rkey_destroy(ts->rkey);
        ts->rkey = NULL;
    }
    if (ts->ep != NULL) {
        ucs_status_ptr_t req = start_close_ep(ts->ep);
        if (UCS_PTR_IS_ERR(req)) {
            record(ts, FN_EP_CLOSE, UCS_PTR_STATUS(req));
        } else {
            record(ts, FN_EP_CLOSE, wait_request(ts->worker, req,
                                                 "ucp_ep_close_nbx",
                                                 CLEANUP_WAIT_NS));
            ts->ep = NULL;
            /* Messages queued on the old endpoint went with it. */
            ts->stream_sent = ts->stream_received = 0;
        }
    }
    if (ts->ep == NULL) {
        ucp_ep_params_t ep_params = self_ep_params(ts);
        ucs_status_t st = ucp_ep_create(ts->worker, &ep_params, &ts->ep);
        record(ts, FN_EP_CREATE, st);
        if (st != UCS_OK) {
            ts->ep = NULL;
            return;
        }
    }
    ts->rkey = exchange_rkey(ts);
}

/* One iteration on a connected endpoint; the first failed call (fail_op)
 * is the request's answer, and any failure is followed by a reconnect. */
static void serve_request(struct tstate *ts)
{
    ts->req_calls = 0;
    ts->fail_op = NULL;
    if (ts->ep == NULL || ts->rkey == NULL) {
        reconnect(ts);
        if (ts->fail_op != NULL) {
            return;
        }
    }
    run_iteration(ts);
    if (ts->fail_op != NULL) {
        reconnect(ts);
    }
}

/* ---- threads ------------------------------------------------------------ */

static void *thread_main(void *arg)
{
    struct tstate *ts = arg;
    int failed = (thread_setup(ts) != 0);

    pthread_mutex_lock(&ctl.mu);
    ctl.nready++;
    pthread_cond_broadcast(&ctl.cv_done);
    pthread_mutex_unlock(&ctl.mu);

    unsigned long seen = 0;
    while (!failed) {
        pthread_mutex_lock(&ctl.mu);
        while (ctl.gen == seen) {
            pthread_cond_wait(&ctl.cv_cmd, &ctl.mu);
        }
        seen = ctl.gen;
        enum cmd cmd = ctl.cmd;
        unsigned long iters = ctl.run_iters;
        pthread_mutex_unlock(&ctl.mu);

        if (cmd == CMD_QUIT) {
            break;
        }
        if (cmd == CMD_RUN) {
            for (unsigned long i = 0; i < iters && !stop_requested; i++) {
                run_iteration(ts);
            }
        } else if (cmd == CMD_SERVE) {
            serve_request(ts);
        } else if (cmd == CMD_FOREVER) {
            while (!stop_requested) {
                run_iteration(ts);
                if (opt_interval_us > 0) {
                    sleep_us(opt_interval_us);
                }
            }
        }

        pthread_mutex_lock(&ctl.mu);
        ctl.ndone++;
        pthread_cond_broadcast(&ctl.cv_done);
        pthread_mutex_unlock(&ctl.mu);
    }

    thread_cleanup(ts);
    return NULL;
}

static void issue(enum cmd cmd, unsigned long iters)
{
    pthread_mutex_lock(&ctl.mu);
    ctl.cmd = cmd;
    ctl.run_iters = iters;
    ctl.ndone = 0;
    ctl.gen++;
    pthread_cond_broadcast(&ctl.cv_cmd);
    pthread_mutex_unlock(&ctl.mu);
}

static void wait_done(void)
{
    pthread_mutex_lock(&ctl.mu);
    while (ctl.ndone < opt_threads) {
        pthread_cond_wait(&ctl.cv_done, &ctl.mu);
    }
    pthread_mutex_unlock(&ctl.mu);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, 1);
}

/* ---- command line ------------------------------------------------------- */

/* msg == NULL means --help: usage on stdout, exit 0. */
static void usage(const char *msg, const char *arg)
{
    FILE *out = (msg != NULL) ? stderr : stdout;
    if (msg != NULL) {
        fprintf(stderr, "ucx_selfloop: %s%s%s\n", msg, arg ? ": " : "",
                arg ? arg : "");
    }
    fprintf(out,
            "usage: ucx_selfloop [--ops put,get,tag,am,atomic,stream,flush,"
            "ep_create,mem_map,rkey]\n"
            "                    [--iterations N] [--threads T] "
            "[--size BYTES] [--quiet]\n"
            "                    [--err-mode peer|none]\n"
            "                    [--stdin | --forever [--interval-us U]]\n"
            "       ucx_selfloop --http PORT [--ops LIST] [--size BYTES] "
            "[--err-mode M]\n"
            "                    [--quiet] [--stdin]\n");
    exit((msg != NULL) ? 2 : 0);
}

static unsigned long parse_ulong(const char *s, const char *what,
                                 unsigned long min, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
        v > max) {
        usage(what, s);
    }
    return v;
}

static unsigned parse_ops(const char *list)
{
    unsigned mask = 0;
    char *copy = strdup(list);
    char *save = NULL;
    if (copy == NULL) {
        usage("out of memory", NULL);
    }
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < OP_COUNT; i++) {
            if (strcmp(tok, op_names[i]) == 0) {
                mask |= 1u << i;
                found = 1;
            }
        }
        if (!found) {
            usage("unknown op", tok);
        }
    }
    free(copy);
    if (mask == 0) {
        usage("empty --ops", list);
    }
    return mask;
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "ops",         required_argument, NULL, 'o' },
        { "iterations",  required_argument, NULL, 'n' },
        { "threads",     required_argument, NULL, 't' },
        { "size",        required_argument, NULL, 's' },
        { "quiet",       no_argument,       NULL, 'q' },
        { "stdin",       no_argument,       NULL, 'i' },
        { "forever",     no_argument,       NULL, 'f' },
        { "interval-us", required_argument, NULL, 'u' },
        { "err-mode",    required_argument, NULL, 'e' },
        { "http",        required_argument, NULL, 'H' },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': opt_ops = parse_ops(optarg); break;
        case 'n': opt_iterations = parse_ulong(optarg, "bad --iterations", 0,
                                               ULONG_MAX); break;
        case 't': opt_threads = (unsigned)parse_ulong(optarg, "bad --threads",
                                                      1, 256); break;
        case 's': opt_size = parse_ulong(optarg, "bad --size", 1, BUF_SIZE);
                  break;
        case 'q': opt_quiet = 1; break;
        case 'i': opt_stdin = 1; break;
        case 'f': opt_forever = 1; break;
        case 'u': opt_interval_us = parse_ulong(optarg, "bad --interval-us", 0,
                                                60000000ul); break;
        case 'e':
            if (strcmp(optarg, "peer") == 0) {
                opt_err_mode = UCP_ERR_HANDLING_MODE_PEER;
            } else if (strcmp(optarg, "none") == 0) {
                opt_err_mode = UCP_ERR_HANDLING_MODE_NONE;
            } else {
                usage("bad --err-mode", optarg);
            }
            break;
        case 'H': opt_http = 1;
                  opt_http_port = (unsigned)parse_ulong(optarg, "bad --http",
                                                        0, 65535); break;
        case 'h': usage(NULL, NULL); break;
        default:  usage("bad option", NULL); break;
        }
    }
    if (optind < argc) {
        usage("unexpected argument", argv[optind]);
    }
    if (opt_stdin && opt_forever) {
        usage("--stdin and --forever are exclusive", NULL);
    }
    if (opt_http && opt_forever) {
        usage("--http and --forever are exclusive", NULL);
    }
    if (opt_http && opt_threads != 1) {
        usage("--http runs one thread", NULL);
    }
}

/* ---- main --------------------------------------------------------------- */

/* Accepts exactly "run K" (K a decimal count, surrounding blanks ok). */
static int parse_run(const char *line, unsigned long *k)
{
    char *end;
    line += strspn(line, " \t");
    if (strncmp(line, "run", 3) != 0 || (line[3] != ' ' && line[3] != '\t')) {
        return 0;
    }
    line += 3 + strspn(line + 3, " \t");
    if (*line < '0' || *line > '9') {
        return 0;
    }
    errno = 0;
    *k = strtoul(line, &end, 10);
    return errno == 0 && end[strspn(end, " \t")] == '\0';
}

static void run_stdin_loop(void)
{
    char line[256];
    while (!stop_requested && fgets(line, sizeof(line), stdin) != NULL) {
        char word[32];
        unsigned long k;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        if (sscanf(line, "%31s", word) == 1 && strcmp(word, "quit") == 0) {
            break;
        }
        if (parse_run(line, &k)) {
            issue(CMD_RUN, k);
            wait_done();
            print_summary();
        } else {
            printf("ERROR unknown command: %s\n", line);
            fflush(stdout);
        }
    }
}

static void run_forever_loop(void)
{
    issue(CMD_FOREVER, 0);
    uint64_t next_tick = now_ns() + 1000000000ull;
    while (!stop_requested) {
        sleep_us(50000);
        if (now_ns() >= next_tick) {
            next_tick += 1000000000ull;
            if (!opt_quiet) {
                unsigned long calls, failures;
                totals(&calls, &failures);
                printf("TICK calls=%lu failures=%lu\n", calls, failures);
            }
        }
    }
    wait_done();
}

/* ---- --http: the server ------------------------------------------------- */

#define HTTP_MAX_CONNS      32
#define HTTP_HEAD_MAX       8192
#define HTTP_SEND_TIMEOUT_S 5

struct http_conn {
    int                fd;          /* -1: free slot */
    size_t             len;         /* bytes of the next request head in buf */
    unsigned long long discard;     /* body bytes still to read and drop */
    int                pending;     /* head parsed; answer once discard is 0 */
    int                close_after; /* answer with "Connection: close" */
    int                head_only;   /* HEAD: the answer has no body */
    unsigned long      last_used;   /* when all slots are taken, the least
                                       recently used connection is evicted */
    char               buf[HTTP_HEAD_MAX];
};

static struct http_conn http_conns[HTTP_MAX_CONNS];
static unsigned long http_clock;
static unsigned long http_served;

/* The enumerator's name; NULL for a code this UCX version does not name. */
static const char *status_name(ucs_status_t st)
{
#define NAME(code) case code: return #code
    switch (st) {
    NAME(UCS_OK); NAME(UCS_INPROGRESS); NAME(UCS_ERR_NO_MESSAGE);
    NAME(UCS_ERR_NO_RESOURCE); NAME(UCS_ERR_IO_ERROR);
    NAME(UCS_ERR_NO_MEMORY); NAME(UCS_ERR_INVALID_PARAM);
    NAME(UCS_ERR_UNREACHABLE); NAME(UCS_ERR_INVALID_ADDR);
    NAME(UCS_ERR_NOT_IMPLEMENTED); NAME(UCS_ERR_MESSAGE_TRUNCATED);
    NAME(UCS_ERR_NO_PROGRESS); NAME(UCS_ERR_BUFFER_TOO_SMALL);
    NAME(UCS_ERR_NO_ELEM); NAME(UCS_ERR_SOME_CONNECTS_FAILED);
    NAME(UCS_ERR_NO_DEVICE); NAME(UCS_ERR_BUSY); NAME(UCS_ERR_CANCELED);
    NAME(UCS_ERR_SHMEM_SEGMENT); NAME(UCS_ERR_ALREADY_EXISTS);
    NAME(UCS_ERR_OUT_OF_RANGE); NAME(UCS_ERR_TIMED_OUT);
    NAME(UCS_ERR_EXCEEDS_LIMIT); NAME(UCS_ERR_UNSUPPORTED);
    NAME(UCS_ERR_REJECTED); NAME(UCS_ERR_NOT_CONNECTED);
    NAME(UCS_ERR_CONNECTION_RESET); NAME(UCS_ERR_ENDPOINT_TIMEOUT);
    default: return NULL;
    }
#undef NAME
}

/* Copies text into a JSON string body: quotes and backslashes escaped,
 * control characters replaced. */
static void json_text(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (; *src != '\0' && n + 3 < size; src++) {
        if (*src == '"' || *src == '\\') {
            dst[n++] = '\\';
        }
        dst[n++] = ((unsigned char)*src < 0x20) ? ' ' : *src;
    }
    dst[n] = '\0';
}

static void conn_close(struct http_conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* All of it or -1: a client that went away is only dropped. */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One write per answer, so no small second segment waits on a delayed ACK. */
static int http_reply(struct http_conn *c, int code, const char *body)
{
    const char *reason = (code == 200) ? "OK" :
                         (code == 503) ? "Service Unavailable" :
                         (code == 400) ? "Bad Request" :
                         (code == 431) ? "Request Header Fields Too Large" :
                         (code == 501) ? "Not Implemented" : "Error";
    char msg[1024];
    size_t body_len = strlen(body);
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n%s",
                     code, reason, body_len,
                     c->close_after ? "close" : "keep-alive",
                     c->head_only ? "" : body);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        return -1;
    }
    return send_all(c->fd, msg, (size_t)n);
}

/* A request we do not serve: answered, then the connection is closed. */
static void http_refuse(struct http_conn *c, int code, const char *why)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"ok\":false,\"error\":\"%s\"}\n", why);
    c->close_after = 1;
    http_reply(c, code, body);
    conn_close(c);
}

/* Runs the request on the UCX thread and answers it; -1 if sending failed. */
static int http_answer(struct http_conn *c, struct tstate *ts)
{
    issue(CMD_SERVE, 0);
    wait_done();
    http_served++;

    char body[512];
    if (ts->fail_op == NULL) {
        snprintf(body, sizeof(body), "{\"ok\":true,\"ops\":%d,\"calls\":%lu}\n",
                 __builtin_popcount(opt_ops), ts->req_calls);
        if (!opt_quiet) {
            printf("SERVED %lu 200\n", http_served);
        }
        return http_reply(c, 200, body);
    }

    char number[16];
    char message[128];
    const char *name = status_name(ts->fail_status);
    if (name == NULL) {
        snprintf(number, sizeof(number), "%d", (int)ts->fail_status);
        name = number;
    }
    json_text(message, sizeof(message), ucs_status_string(ts->fail_status));
    snprintf(body, sizeof(body),
             "{\"ok\":false,\"op\":\"%s\",\"function\":\"%s\","
             "\"status\":\"%s\",\"code\":%d,\"message\":\"%s\"}\n",
             ts->fail_op, fn_names[ts->fail_fn], name, (int)ts->fail_status,
             message);
    if (!opt_quiet) {
        printf("SERVED %lu 503 %s %s %s\n", http_served, ts->fail_op,
               fn_names[ts->fail_fn], name);
    }
    return http_reply(c, 503, body);
}

/* Whether the comma list `value` holds `token` (any case). */
static int has_token(const char *value, const char *token)
{
    size_t len = strlen(token);
    while (*value != '\0') {
        value += strspn(value, " \t,");
        size_t word = strcspn(value, ",");
        size_t end = word;
        while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t')) {
            end--;
        }
        if (end == len && strncasecmp(value, token, len) == 0) {
            return 1;
        }
        value += word;
    }
    return 0;
}

/*
 * Parses the NUL-terminated head in c->buf (request line and header lines,
 * CRLF-separated).  Returns 0, or the HTTP status to refuse it with.
 */
static int parse_head(struct http_conn *c, unsigned long long *content_length,
                      int *expect_continue)
{
    char *line = c->buf;
    char *next = strstr(line, "\r\n");
    if (next != NULL) {
        *next = '\0';
        next += 2;
    }
    char *method_end = strchr(line, ' ');
    char *version = strrchr(line, ' ');
    if (method_end == NULL || method_end == line || version == method_end ||
        strncmp(version + 1, "HTTP/1.", 7) != 0) {
        return 400;
    }
    int http10 = (strcmp(version + 1, "HTTP/1.0") == 0);
    c->head_only = (method_end - line == 4 && strncmp(line, "HEAD", 4) == 0);

    int wants_close = 0, keep_alive = 0;
    *content_length = 0;
    *expect_continue = 0;
    for (line = next; line != NULL && *line != '\0'; line = next) {
        next = strstr(line, "\r\n");
        if (next != NULL) {
            *next = '\0';
            next += 2;
        }
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            return 400;
        }
        *colon = '\0';
        char *value = colon + 1 + strspn(colon + 1, " \t");
        if (strcasecmp(line, "Content-Length") == 0) {
            char *end;
            errno = 0;
            *content_length = strtoull(value, &end, 10);
            if (errno != 0 || end == value || value[0] == '-' ||
                end[strspn(end, " \t")] != '\0') {
                return 400;
            }
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            return 501;
        } else if (strcasecmp(line, "Connection") == 0) {
            wants_close |= has_token(value, "close");
            keep_alive |= has_token(value, "keep-alive");
        } else if (strcasecmp(line, "Expect") == 0) {
            *expect_continue = has_token(value, "100-continue");
        }
    }
    c->close_after = wants_close || (http10 && !keep_alive);
    return 0;
}

/* Answers every request whose head and body have arrived. */
static void http_process(struct http_conn *c, struct tstate *ts)
{
    while (c->fd >= 0) {
        if (c->pending) {
            if (c->discard > 0) {
                return;
            }
            c->pending = 0;
            if (http_answer(c, ts) != 0 || c->close_after) {
                conn_close(c);
            }
            continue;
        }
        /* Blank lines before a request line are allowed (RFC 9112 2.2). */
        while (c->len >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
            c->len -= 2;
            memmove(c->buf, c->buf + 2, c->len);
        }
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->len == HTTP_HEAD_MAX) {
                http_refuse(c, 431, "request head too large");
            }
            return;
        }
        size_t head_len = (size_t)(end - c->buf) + 4;
        *end = '\0';
        unsigned long long content_length;
        int expect_continue;
        int refuse = parse_head(c, &content_length, &expect_continue);
        if (refuse != 0) {
            http_refuse(c, refuse, (refuse == 501) ? "chunked bodies are not "
                        "supported" : "malformed request");
            return;
        }
        size_t body_here = c->len - head_len;
        if (body_here > content_length) {
            body_here = (size_t)content_length;
        }
        size_t used = head_len + body_here;
        c->len -= used;
        memmove(c->buf, c->buf + used, c->len);
        c->discard = content_length - body_here;
        c->pending = 1;
        if (expect_continue && c->discard > 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (send_all(c->fd, cont, sizeof(cont) - 1) != 0) {
                conn_close(c);
            }
        }
    }
}

static void http_readable(struct http_conn *c, struct tstate *ts)
{
    char scratch[4096];
    ssize_t n;
    c->last_used = ++http_clock;
    if (c->discard > 0) {
        size_t want = (c->discard < sizeof(scratch)) ? (size_t)c->discard
                                                     : sizeof(scratch);
        n = recv(c->fd, scratch, want, MSG_DONTWAIT);
        if (n > 0) {
            c->discard -= (unsigned long long)n;
        }
    } else {
        n = recv(c->fd, c->buf + c->len, HTTP_HEAD_MAX - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t)n;
        }
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        /* Closed or reset by the client; whatever it sent was answered. */
        conn_close(c);
        return;
    }
    http_process(c, ts);
}

static void http_accept(int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            return;
        }
        /* Reads never block (poll + MSG_DONTWAIT); answers are bounded. */
        struct timeval tv = { .tv_sec = HTTP_SEND_TIMEOUT_S };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        struct http_conn *slot = NULL;
        for (int i = 0; i < HTTP_MAX_CONNS && slot == NULL; i++) {
            if (http_conns[i].fd < 0) {
                slot = &http_conns[i];
            }
        }
        if (slot == NULL) {
            slot = &http_conns[0];
            for (int i = 1; i < HTTP_MAX_CONNS; i++) {
                if (http_conns[i].last_used < slot->last_used) {
                    slot = &http_conns[i];
                }
            }
            conn_close(slot);
        }
        slot->fd          = fd;
        slot->len         = 0;
        slot->discard     = 0;
        slot->pending     = 0;
        slot->close_after = 0;
        slot->head_only   = 0;
        slot->last_used   = ++http_clock;
    }
}

/* Returns the exit code: 0 after a signal or stdin EOF, 4 if it cannot
 * listen. */
static int run_http_server(struct tstate *ts)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {
        .sin_family      = AF_INET,
        .sin_port        = htons((uint16_t)opt_http_port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t addr_len = sizeof(addr);
    int one = 1;
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &addr_len) != 0) {
        fprintf(stderr, "ucx_selfloop: cannot listen on 127.0.0.1:%u: %s\n",
                opt_http_port, strerror(errno));
        if (lfd >= 0) {
            close(lfd);
        }
        return 4;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < HTTP_MAX_CONNS; i++) {
        http_conns[i].fd = -1;
    }

    /* Signals stay blocked except inside ppoll(), so one that arrives
     * between the stop check and the wait still ends the wait. */
    sigset_t sigs, unblocked;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, &unblocked);

    printf("HTTP %u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);

    struct pollfd fds[2 + HTTP_MAX_CONNS];
    struct http_conn *polled[2 + HTTP_MAX_CONNS];
    while (!stop_requested) {
        nfds_t n = 0;
        fds[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
        if (opt_stdin) {
            fds[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        }
        nfds_t first_conn = n;
        for (int i = 0; i < HTTP_MAX_CONNS; i++) {
            if (http_conns[i].fd >= 0) {
                polled[n] = &http_conns[i];
                fds[n++] = (struct pollfd){ .fd = http_conns[i].fd,
                                            .events = POLLIN };
            }
        }
        if (ppoll(fds, n, NULL, &unblocked) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "ucx_selfloop: poll: %s\n", strerror(errno));
            break;
        }
        if (opt_stdin && fds[1].revents != 0) {
            char ignored[256];
            ssize_t r = read(STDIN_FILENO, ignored, sizeof(ignored));
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                break;
            }
        }
        for (nfds_t i = first_conn; i < n; i++) {
            if (fds[i].revents != 0) {
                http_readable(polled[i], ts);
            }
        }
        if (fds[0].revents & POLLIN) {
            http_accept(lfd);
        }
    }

    for (int i = 0; i < HTTP_MAX_CONNS; i++) {
        if (http_conns[i].fd >= 0) {
            conn_close(&http_conns[i]);
        }
    }
    close(lfd);
    pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    ucs_log_push_handler(log_to_stderr);

    /* Threads inherit a blocked mask (UCX's async thread too), so the
     * signals always land in the main thread's handler. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a signal must interrupt fgets() in --stdin mode. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ucp_params_t params = {
        .field_mask        = UCP_PARAM_FIELD_FEATURES |
                             UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features          = UCP_FEATURE_RMA | UCP_FEATURE_TAG |
                             UCP_FEATURE_AM | UCP_FEATURE_AMO64 |
                             UCP_FEATURE_STREAM,
        .mt_workers_shared = 1,
    };
    ucs_status_t status = ucp_init(&params, NULL, &g_context);
    if (status != UCS_OK) {
        printf("SETUP ucp_init %d\n", (int)status);
        return 3;
    }

    struct tstate *threads = calloc(opt_threads, sizeof(*threads));
    if (threads == NULL) {
        fprintf(stderr, "out of memory\n");
        ucp_cleanup(g_context);
        return 1;
    }
    unsigned started = 0;
    for (unsigned i = 0; i < opt_threads; i++) {
        threads[i].idx = i;
        if (pthread_create(&threads[i].thread, NULL, thread_main,
                           &threads[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            break;
        }
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    pthread_mutex_lock(&ctl.mu);
    while (ctl.nready < started) {
        pthread_cond_wait(&ctl.cv_done, &ctl.mu);
    }
    pthread_mutex_unlock(&ctl.mu);

    const struct tstate *failed = NULL;
    for (unsigned i = 0; i < started && failed == NULL; i++) {
        if (threads[i].setup_fn != NULL) {
            failed = &threads[i];
        }
    }

    int rc = 0;
    if (failed != NULL || started < opt_threads) {
        /* Survivors are parked waiting for a command; release them. */
        issue(CMD_QUIT, 0);
        rc = (failed != NULL) ? 3 : 1;
    } else if (opt_http) {
        rc = run_http_server(&threads[0]);
        if (rc == 0) {
            print_summary();
        }
        issue(CMD_QUIT, 0);
    } else if (opt_stdin) {
        run_stdin_loop();
        print_summary();
        issue(CMD_QUIT, 0);
    } else if (opt_forever) {
        run_forever_loop();
        print_summary();
        issue(CMD_QUIT, 0);
    } else {
        issue(CMD_RUN, opt_iterations);
        wait_done();
        print_summary();
        issue(CMD_QUIT, 0);
    }

    for (unsigned i = 0; i < started; i++) {
        pthread_join(threads[i].thread, NULL);
    }
    if (failed != NULL) {
        printf("SETUP %s %d\n", failed->setup_fn, (int)failed->setup_status);
    }
    free(threads);
    ucp_cleanup(g_context);
    return rc;
}
