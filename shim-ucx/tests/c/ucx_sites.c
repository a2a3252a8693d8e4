/*
 * ucx_sites.c - per-operation UCX workload for the shim-ucx "site" tests.
 *
 * The shim can inject a fault at different points ("sites") of a UCP call:
 * before it is posted (post), at its completion (completion: the operation is
 * really posted and its request completes with the injected code), or on the
 * endpoint (endpoint: the endpoint's error handler fires).  This program runs
 * single operations and prints, line by line, everything an application can
 * observe about each one: what the call returned, every completion callback
 * with its arguments, the request status, the data that arrived, endpoint
 * errors.  The tests run it with and without the shim and read stdout.
 *
 * One process talks to itself: one context, one worker (single-threaded) and
 * two endpoints, "A" and "B", both connected to the worker's own address with
 * UCP_ERR_HANDLING_MODE_PEER and an error handler each.  A 64 KiB mapped
 * buffer is the RMA/atomic target; each endpoint has its own unpacked rkey.
 * With PEER error handling UCX 1.13 cannot use the self/shared-memory
 * transports, so run it with UCX_TLS=tcp (the program does not set UCX_TLS).
 * Without the shim every operation succeeds.
 *
 * Build:
 *   cc -O1 -Wall -Wextra -Werror -pthread -o ucx_sites ucx_sites.c \
 *      -lucp -lucs
 *
 * Usage:
 *   ucx_sites [--n N] [--ops LIST] [FLAGS]      batch mode
 *   ucx_sites --stdin [FLAGS]                   command mode
 *
 *   --n N           batch: repeat the op list N times (default 1).
 *   --ops LIST      batch: comma list of ops run in order on --ep (default
 *                   put): put,get,atomic,tag_send,tag_recv,am_send,am_rndv,
 *                   stream,flush,worker_flush,cancel_recv,progress.
 *   --ep A|B        endpoint for batch ops and for commands that omit it
 *                   (default A).
 *   --stdin         read commands from stdin, one per line; "DONE" is printed
 *                   after each; "quit" or EOF exits.
 *   --size BYTES    payload of put/get/tag/am_send/stream (1..32768, def. 64).
 *   FLAGS, applied to every operation's ucp_request_param_t:
 *   --user-requests user-provided requests (UCP_OP_ATTR_FIELD_REQUEST): each
 *                   post gets its own zeroed allocation of request_size bytes
 *                   (ucp_context_query) and passes the address just past it,
 *                   as ucp.h asks ("at least UCP request size bytes of
 *                   available space before the request").  UCX then returns
 *                   that same address as the handle.  Such handles are never
 *                   passed to ucp_request_free (it belongs to UCX's request
 *                   pool; UCX 1.13 documents freeing only "if user request
 *                   was not provided"), not even with --free-in-cb.
 *   --no-callback   no callback and no user_data; completion is polled with
 *                   ucp_request_check_status.
 *   --queries       after CHECK, also print what ucp_request_query (its
 *                   status field) and, for a tag receive,
 *                   ucp_tag_recv_request_test say of the completed handle:
 *                   QUERY <op> <i> <query's return> <attr.status>
 *                   TEST <op> <i> <status>
 *   --free-in-cb    the callback calls ucp_request_free on its request (not
 *                   for user-provided requests, see above).
 *   --user-no-imm   add UCP_OP_ATTR_FLAG_NO_IMM_CMPL (UCX may then run the
 *                   callback inside the call, before it returns the request).
 *
 * Commands (EP is A or B; omitted, --ep is used):
 *   put EP          ucp_put_nbx of --size bytes to the target's offset 0.
 *   get EP          ucp_get_nbx of the same region.
 *   atomic EP       ucp_atomic_op_nbx, UCP_ATOMIC_OP_ADD of a 64-bit 1 to the
 *                   buffer's last word.
 *   tag_send EP     posts ucp_tag_recv_nbx (op tag_recv) with a fresh tag,
 *   tag_recv EP     then ucp_tag_send_nbx (op tag_send) on EP; tag_recv is an
 *                   alias.  If the receive fails at once nothing is sent; if
 *                   the send fails, a receive still pending is cancelled.
 *   am_send EP      eager ucp_am_send_nbx (AM id 0) of --size bytes.
 *   am_rndv EP      ucp_am_send_nbx with UCP_AM_SEND_FLAG_RNDV, 32 KiB (op
 *                   am_rndv); the handler fetches the data with
 *                   ucp_am_recv_data_nbx (op am_recv_data; its POST and
 *                   maybe CB lines come from inside progress).  UCX owns the
 *                   descriptor once that call is made, even if it fails.
 *   stream EP       ucp_stream_send_nbx (op stream_send), then
 *                   ucp_stream_recv_nbx (op stream_recv, WAITALL) of the same
 *                   length; the receive is skipped if the send failed at once
 *                   or the endpoint's error handler has run.
 *   flush EP        ucp_ep_flush_nbx (op flush).
 *   worker_flush    ucp_worker_flush_nbx.
 *   cancel_recv     ucp_tag_recv_nbx with a tag nobody sends, then
 *                   ucp_request_cancel: completes with UCS_ERR_CANCELED (-16).
 *   putflush EP COUNT SIZE
 *                   COUNT puts of SIZE bytes (COUNT*SIZE <= 65536), distinct
 *                   patterns at offsets k*SIZE, not waited for; then
 *                   ucp_ep_flush_nbx (op flush).  Right after the flush call
 *                   returns, before any progress: "LANDED k/COUNT"; then all
 *                   requests are completed and freed and the worker is
 *                   progressed until idle: "LANDED_AFTER k/COUNT".
 *   close EP force|flush
 *                   ucp_ep_close_nbx in that mode, waited for: CLOSE.
 *   create EP       new endpoint in a closed slot (fresh error count): CREATE.
 *   progress        ucp_worker_progress until it returns 0 five times in a
 *                   row (at most 1 s).
 *   quit            exit.
 *
 * Output (stdout, line-buffered).  <i> is a per-op counter (0-based, every
 * post of that op name in the run); statuses are integer ucs_status_t.
 *   POST <op> <i> ret=<req|null|err:<code>>
 *       the call returned a request, NULL (done at once) or an error (then
 *       nothing else is printed for this post, no callback is expected).
 *   CB <op> <i> status=<s> ud_ok=<0|1> req_ok=<0|1> count=<k>
 *       a completion callback.  ud_ok: user_data is this post's context;
 *       req_ok: the request argument is the handle the call returned (a
 *       callback run before the call returned prints req_ok=1 for any non-NULL
 *       request and is compared once the call returns); k: callbacks so far
 *       for this post (2 means a duplicate).  A callback that matches no post
 *       prints "CB unknown -1 status=<s> ud_ok=0 req_ok=0 count=0".
 *   REQ_MISMATCH <op> <i>    an early callback's request != returned handle.
 *   CHECK <op> <i> <s>       ucp_request_check_status of the handle once the
 *                            op completed (not printed if freed in the cb),
 *                            then the handle is freed.
 *   TIMEOUT <op> <i>         no completion within 10 s: ucp_request_cancel,
 *                            up to 2 s more, then CHECK (1 = UCS_INPROGRESS
 *                            if still not complete) and free as usual.
 *   TIMEOUT am_handler <i>   AM send succeeded but no message within 10 s.
 *   DATA <op> <i> ok|mismatch|skipped
 *       payload check (skipped if that op reported an error): get (against
 *       the last put on that endpoint if it succeeded and nothing wrote the
 *       region since, else against the target memory), tag_send/tag_recv,
 *       am_send, am_rndv/am_recv_data, stream_send/stream_recv.
 *   EPERR <ep> <s> count=<k> in_progress=<0|1> ep_ok=<0|1>
 *       the endpoint's error handler ran; k counts its runs for this endpoint
 *       (since it was created); in_progress: called from inside
 *       ucp_worker_progress; ep_ok: its ep argument is that endpoint.  The
 *       endpoint is marked failed but stays open until "close".
 *   LANDED <k>/<COUNT>, LANDED_AFTER <k>/<COUNT>      putflush, see above.
 *   CLOSE <ep> <s>, CREATE <ep> <s>[, RKEY <ep> <s> if the unpack failed]
 *   ERROR <text>             bad command (stdin mode), followed by DONE.
 *   DONE                     stdin mode: the command has finished.
 *   EXIT                     before cleanup (endpoints force-closed).
 *   SETUP <what> <s>         setup failed; exit code 3.
 * Exit codes: 0 ok, 2 usage error, 3 setup failure.
 *
 * After each command the worker is progressed until idle so that a duplicate
 * callback shows up as count=2.  UCX's own log goes to stderr (a leaked
 * request shows there as "was not returned to mpool" at worker destroy).
 *
 * Examples:
 *   UCX_TLS=tcp ucx_sites --n 3 --ops put,get,tag_send,am_rndv --user-requests
 *   printf 'putflush A 16 4096\nclose A force\ncreate A\nput A\n' |
 *       UCX_TLS=tcp ucx_sites --stdin
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#define BUF_SIZE        (64 * 1024)          /* mapped target, scratch bufs */
#define MAX_SIZE        (32 * 1024)          /* --size limit */
#define AM_RNDV_SIZE    (32 * 1024)          /* am_rndv payload */
#define AM_ID           0
#define AM_MAGIC        0x414d5347u          /* AM header marker */
#define POST_MAGIC      0x706f73745f637478ull
#define ATOMIC_OFFSET   (BUF_SIZE - sizeof(uint64_t))
#define TAG_BASE        0x1000000000ull      /* tag_send pairs */
#define CANCEL_TAG_BASE 0x2000000000ull      /* cancel_recv: never sent */
#define WAIT_NS         (10ull * 1000000000ull)
#define CANCEL_WAIT_NS  (2ull * 1000000000ull)
#define SETTLE_NS       (200ull * 1000000ull)
#define PROGRESS_NS     (1000ull * 1000000ull)
#define IDLE_ROUNDS     5                    /* progress()==0 this many times */
#define NUM_EPS         2
#define UD_WINDOW       4096                 /* newest posts matched by ud */

/* ---- options ------------------------------------------------------------ */

static unsigned long opt_n = 1;
static const char *opt_ops = "put";
static int opt_ep = 0;                       /* index into ep_names */
static int opt_stdin;
static int opt_user_requests;
static int opt_no_callback;
static int opt_queries;
static int opt_free_in_cb;
static int opt_user_no_imm;
static size_t opt_size = 64;

static const char *const ep_names[NUM_EPS] = { "A", "B" };

/* ---- UCX objects and buffers -------------------------------------------- */

/* One per created endpoint (a re-created endpoint gets a new one, so a late
 * call of an old handler cannot bump the new endpoint's count); never freed
 * before the worker is destroyed, since it is the error handler's arg. */
struct epctx {
    const char   *name;
    ucp_ep_h      ep;          /* NULL once closed */
    ucp_rkey_h    rkey;        /* NULL if the unpack failed */
    unsigned      err_count;
    int           failed;
    struct epctx *next_all;    /* list of all contexts, freed at exit */
};

static ucp_context_h  g_context;
static ucp_worker_h   g_worker;
static ucp_address_t *g_address;
static ucp_mem_h      g_memh;
static void          *g_rkey_buf;          /* packed once, unpacked per ep */
static size_t         g_request_size;      /* for user-provided requests */
static struct epctx  *g_eps[NUM_EPS];      /* current endpoint per name */
static struct epctx  *g_all_eps;
static int            g_in_progress;       /* inside ucp_worker_progress */

static uint8_t *rbuf;      /* mapped: the RMA/atomic target */
static uint8_t *sbuf;      /* payload sent by put/tag/am/stream/putflush */
static uint8_t *dbuf;      /* landing area of get/tag recv/stream recv */
static uint8_t *ambuf;     /* landing area of active messages */
static uint8_t *cbuf;      /* cancel_recv buffer (never filled) */

/* What the last put wrote, for the get check; invalid once anything else
 * writes the region (putflush) or the put failed. */
static struct {
    int                 valid;
    const struct epctx *ep;
    size_t              size;
    uint8_t             bytes[MAX_SIZE];
} last_put;

/* Active messages: the header carries a sequence number so a late message
 * from an earlier post is not mistaken for the current one. */
struct am_hdr {
    uint32_t magic;
    uint32_t seq;
};
static uint32_t am_next_seq;
static int      am_got;               /* the awaited message arrived */
static uint32_t am_want_seq;
static size_t   am_got_len;
static struct post *am_recv_post;     /* am_recv_data posted by the handler */

/* ---- posts: one per non-blocking call ------------------------------------ */

struct post {
    uint64_t      magic;       /* POST_MAGIC: checked through user_data */
    const char   *op;
    unsigned long i;           /* per-op-name counter */
    int           returned;    /* the call has returned */
    int           ret_err;     /* ... with an error: nothing more to print */
    void         *handle;      /* returned request, or NULL */
    ucs_status_t  final;       /* op result once known */
    unsigned      cb_count;
    ucs_status_t  cb_status;
    size_t        cb_length;   /* stream/am receive length */
    void         *early_req;   /* request arg of a callback before return */
    int           freed;       /* request freed in the callback */
    int           user_req;    /* user-provided request */
    void         *ureq_mem;    /* its allocation; handle = mem + size */
    int           abandoned;   /* timed out and still owned by UCX */
};

static struct post **posts;           /* every post, for callback lookups */
static size_t nposts, posts_cap;
static size_t nsettled;               /* posts[0..nsettled) are settled */
static struct post *cur_posting;      /* post whose call is in progress */

/* Per-op-name counters. */
static struct {
    const char   *op;
    unsigned long next;
} op_counters[16];

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "ucx_sites: out of memory\n");
        exit(1);
    }
    return p;
}

/* Never-zero bytes depending on seed, so a cleared region that was not
 * written never matches. */
static void fill_pattern(uint8_t *buf, size_t len, unsigned long seed)
{
    for (size_t j = 0; j < len; j++) {
        buf[j] = (uint8_t)(1u + (seed * 131u + j * 7u) % 255u);
    }
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

/* All progress goes through here so handlers can tell they run inside it. */
static unsigned progress(void)
{
    g_in_progress++;
    unsigned n = ucp_worker_progress(g_worker);
    g_in_progress--;
    return n;
}

/* Progress until the worker reports no work IDLE_ROUNDS times in a row, or
 * for at most bound_ns. */
static void progress_idle(uint64_t bound_ns)
{
    uint64_t deadline = now_ns() + bound_ns;
    int idle = 0;
    while (idle < IDLE_ROUNDS && now_ns() < deadline) {
        idle = (progress() == 0) ? idle + 1 : 0;
    }
}

static unsigned long next_index(const char *op)
{
    size_t k;
    for (k = 0; k < sizeof(op_counters) / sizeof(op_counters[0]); k++) {
        if (op_counters[k].op == NULL) {
            op_counters[k].op = op;
            break;
        }
        if (strcmp(op_counters[k].op, op) == 0) {
            break;
        }
    }
    return op_counters[k].next++;
}

/* ---- posts and completion callbacks ------------------------------------- */

static struct post *post_new(const char *op)
{
    struct post *p = xcalloc(1, sizeof(*p));
    p->magic = POST_MAGIC;
    p->op    = op;
    p->i     = next_index(op);
    p->final = UCS_INPROGRESS;
    if (nposts == posts_cap) {
        posts_cap = posts_cap ? posts_cap * 2 : 64;
        posts = realloc(posts, posts_cap * sizeof(*posts));
        if (posts == NULL) {
            fprintf(stderr, "ucx_sites: out of memory\n");
            exit(1);
        }
    }
    posts[nposts++] = p;
    return p;
}

/* The post whose context is `user_data`, among the newest UD_WINDOW posts
 * (a late duplicate comes soon after); compares pointers only, so a bogus
 * user_data is never dereferenced. */
static struct post *post_by_user_data(const void *user_data)
{
    size_t stop = (nposts > UD_WINDOW) ? nposts - UD_WINDOW : 0;
    for (size_t k = nposts; k-- > stop;) {
        if (posts[k] == user_data) {
            return posts[k];
        }
    }
    return NULL;
}

/* The newest unsettled post whose returned handle is `request`. */
static struct post *post_by_handle(const void *request)
{
    for (size_t k = nposts; k-- > nsettled;) {
        struct post *p = posts[k];
        if (!p->freed && p->returned && p->handle != NULL &&
            p->handle == request) {
            return p;
        }
    }
    return NULL;
}

/* Common body of every completion callback. */
static void on_complete(void *request, ucs_status_t status, size_t length,
                        void *user_data)
{
    struct post *by_ud  = post_by_user_data(user_data);
    struct post *by_req = post_by_handle(request);
    struct post *p = by_ud ? by_ud : by_req ? by_req : cur_posting;
    if (p == NULL) {
        printf("CB unknown -1 status=%d ud_ok=0 req_ok=0 count=0\n",
               (int)status);
        return;
    }

    p->cb_count++;
    if (p->cb_count == 1) {
        p->cb_status = status;
        p->cb_length = length;
    }
    int ud_ok = (by_ud == p) && (p->magic == POST_MAGIC);
    int req_ok;
    if (p->returned) {
        req_ok = (request != NULL) && (request == p->handle);
    } else {
        /* Before the call returned (UCP_OP_ATTR_FLAG_NO_IMM_CMPL): checked
         * against the handle once it is returned. */
        req_ok = (request != NULL);
        if (p->cb_count == 1) {
            p->early_req = request;
        }
    }
    printf("CB %s %lu status=%d ud_ok=%d req_ok=%d count=%u\n", p->op, p->i,
           (int)status, ud_ok, req_ok, p->cb_count);

    if (opt_free_in_cb && !p->user_req && req_ok && p->cb_count == 1) {
        ucp_request_free(request);
        p->freed = 1;
    }
}

static void send_cb(void *request, ucs_status_t status, void *user_data)
{
    on_complete(request, status, 0, user_data);
}

static void tag_recv_cb(void *request, ucs_status_t status,
                        const ucp_tag_recv_info_t *info, void *user_data)
{
    on_complete(request, status, (info != NULL) ? info->length : 0, user_data);
}

static void length_cb(void *request, ucs_status_t status, size_t length,
                      void *user_data)
{
    on_complete(request, status, length, user_data);
}

enum cb_kind { CB_SEND, CB_TAG_RECV, CB_STREAM_RECV, CB_AM_RECV };

/* The request parameters every post uses, per the command-line flags. */
static void post_param(struct post *p, enum cb_kind kind,
                       ucp_request_param_t *prm)
{
    memset(prm, 0, sizeof(*prm));
    if (!opt_no_callback) {
        prm->op_attr_mask |= UCP_OP_ATTR_FIELD_CALLBACK |
                             UCP_OP_ATTR_FIELD_USER_DATA;
        prm->user_data = p;
        switch (kind) {
        case CB_SEND:        prm->cb.send        = send_cb;     break;
        case CB_TAG_RECV:    prm->cb.recv        = tag_recv_cb; break;
        case CB_STREAM_RECV: prm->cb.recv_stream = length_cb;   break;
        case CB_AM_RECV:     prm->cb.recv_am     = length_cb;   break;
        }
    }
    if (opt_user_requests) {
        /* ucp.h: "There should be at least UCP request size bytes of
         * available space before the request." */
        p->user_req = 1;
        p->ureq_mem = xcalloc(1, g_request_size);
        prm->op_attr_mask |= UCP_OP_ATTR_FIELD_REQUEST;
        prm->request = (uint8_t *)p->ureq_mem + g_request_size;
    }
    if (opt_user_no_imm) {
        prm->op_attr_mask |= UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    }
}

/* Marks the start of the call (an early callback may need it). */
static void post_begin(struct post *p, struct post **saved)
{
    *saved = cur_posting;
    cur_posting = p;
}

/* Records and prints what the call returned. */
static void post_returned(struct post *p, struct post *saved,
                          ucs_status_ptr_t ret)
{
    cur_posting = saved;
    p->returned = 1;
    if (ret == NULL) {
        printf("POST %s %lu ret=null\n", p->op, p->i);
        p->final = UCS_OK;
    } else if (UCS_PTR_IS_ERR(ret)) {
        printf("POST %s %lu ret=err:%d\n", p->op, p->i,
               (int)UCS_PTR_STATUS(ret));
        p->final   = UCS_PTR_STATUS(ret);
        p->ret_err = 1;
    } else {
        printf("POST %s %lu ret=req\n", p->op, p->i);
        p->handle = ret;
        if (p->cb_count > 0 && p->early_req != ret) {
            printf("REQ_MISMATCH %s %lu\n", p->op, p->i);
        }
    }
}

/* Whether a returned request has completed (its callback ran, or without
 * callbacks, its status is final). */
static int post_complete(const struct post *p)
{
    if (p->handle == NULL) {
        return 1;
    }
    if (opt_no_callback) {
        return ucp_request_check_status(p->handle) != UCS_INPROGRESS;
    }
    return p->cb_count > 0;
}

/* Releases a finished handle, unless it is user-provided: those are not
 * UCX's to take back (ucp_request_free would put them in its pool). */
static void post_release(struct post *p)
{
    if (!p->user_req) {
        ucp_request_free(p->handle);
    }
}

/* --queries: what the other request queries say of a completed handle. */
static void print_queries(struct post *p)
{
    ucp_request_attr_t attr;
    memset(&attr, 0, sizeof(attr));
    attr.field_mask = UCP_REQUEST_ATTR_FIELD_STATUS;
    ucs_status_t queried = ucp_request_query(p->handle, &attr);
    printf("QUERY %s %lu %d %d\n", p->op, p->i, (int)queried,
           queried == UCS_OK ? (int)attr.status : 0);
    if (strcmp(p->op, "tag_recv") == 0) {
        ucp_tag_recv_info_t info;
        printf("TEST %s %lu %d\n", p->op, p->i,
               (int)ucp_tag_recv_request_test(p->handle, &info));
    }
}

/* Waits (bounded) for a returned request, prints CHECK and frees it; sets
 * p->final.  No-op for posts that returned NULL or an error. */
static void post_wait(struct post *p)
{
    if (p->handle == NULL || p->final != UCS_INPROGRESS) {
        return;
    }
    uint64_t deadline = now_ns() + WAIT_NS;
    int timed_out = 0;
    while (!post_complete(p)) {
        progress();
        if (now_ns() > deadline) {
            timed_out = 1;
            break;
        }
    }

    if (timed_out) {
        printf("TIMEOUT %s %lu\n", p->op, p->i);
        /* Cancelling completes it (with UCS_ERR_CANCELED, or OK if it was
         * finishing); give that a short bounded wait. */
        if (!p->freed) {
            ucp_request_cancel(g_worker, p->handle);
        }
        deadline = now_ns() + CANCEL_WAIT_NS;
        while (!post_complete(p) && now_ns() < deadline) {
            progress();
        }
        if (!post_complete(p)) {
            /* Freed now, UCX releases it when it completes; a user-provided
             * request stays UCX's until then, so its memory is kept. */
            p->abandoned = 1;
        }
    }

    if (!p->freed) {
        ucs_status_t st = ucp_request_check_status(p->handle);
        printf("CHECK %s %lu %d\n", p->op, p->i, (int)st);
        if (opt_queries) {
            print_queries(p);
        }
        post_release(p);
        p->final = opt_no_callback ? st : p->cb_status;
    } else {
        p->final = p->cb_status;
    }
    if (timed_out) {
        p->final = UCS_ERR_TIMED_OUT;
    }
}

/* End of a command: progress until idle so that duplicate callbacks show,
 * then stop matching these posts by handle (UCX may reuse the requests) and
 * drop their user request memory. */
static void settle_posts(void)
{
    progress_idle(SETTLE_NS);
    for (; nsettled < nposts; nsettled++) {
        struct post *p = posts[nsettled];
        if (p->ureq_mem != NULL && !p->abandoned) {
            free(p->ureq_mem);
            p->ureq_mem = NULL;
        }
    }
}

/* len 0: nothing to compare, "skipped". */
static void print_data(const struct post *p, const uint8_t *expected,
                       const uint8_t *got, size_t len)
{
    const char *what;
    if (p->final != UCS_OK || len == 0) {
        what = "skipped";
    } else {
        what = (memcmp(expected, got, len) == 0) ? "ok" : "mismatch";
    }
    printf("DATA %s %lu %s\n", p->op, p->i, what);
}

/* ---- endpoints ------------------------------------------------------------ */

static void ep_error_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    struct epctx *c = arg;
    c->err_count++;
    c->failed = 1;
    /* Not closed here: the script closes it with "close". */
    printf("EPERR %s %d count=%u in_progress=%d ep_ok=%d\n", c->name,
           (int)status, c->err_count, g_in_progress > 0,
           (ep != NULL) && (ep == c->ep));
}

/* Creates endpoint `slot` to the worker's own address and unpacks its rkey.
 * Returns the ucp_ep_create status; *rkey_status gets the unpack's. */
static ucs_status_t create_ep(int slot, ucs_status_t *rkey_status)
{
    struct epctx *c = xcalloc(1, sizeof(*c));
    c->name     = ep_names[slot];
    c->next_all = g_all_eps;
    g_all_eps   = c;

    ucp_ep_params_t params = {
        .field_mask      = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                           UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address         = g_address,
        .err_mode        = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler.cb  = ep_error_cb,
        .err_handler.arg = c,
    };
    *rkey_status = UCS_OK;
    ucs_status_t status = ucp_ep_create(g_worker, &params, &c->ep);
    if (status != UCS_OK) {
        c->ep = NULL;
        return status;
    }
    g_eps[slot] = c;
    *rkey_status = ucp_ep_rkey_unpack(c->ep, g_rkey_buf, &c->rkey);
    if (*rkey_status != UCS_OK) {
        c->rkey = NULL;
    }
    return UCS_OK;
}

/* ucp_ep_close_nbx in force or flush mode, waited for (bounded).  The slot
 * is emptied unless the call failed at once (then UCX kept the endpoint). */
static ucs_status_t close_ep(int slot, int force, uint64_t bound_ns)
{
    struct epctx *c = g_eps[slot];
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t req = ucp_ep_close_nbx(c->ep, &prm);
    if (UCS_PTR_IS_ERR(req)) {
        return UCS_PTR_STATUS(req);
    }
    ucs_status_t status = UCS_OK;
    if (req != NULL) {
        uint64_t deadline = now_ns() + bound_ns;
        while ((status = ucp_request_check_status(req)) == UCS_INPROGRESS &&
               now_ns() < deadline) {
            progress();
        }
        if (status == UCS_INPROGRESS) {
            fprintf(stderr, "ucx_sites: closing %s did not complete\n",
                    c->name);
            status = UCS_ERR_TIMED_OUT;
        }
        ucp_request_free(req);
    }
    if (c->rkey != NULL) {
        ucp_rkey_destroy(c->rkey);
        c->rkey = NULL;
    }
    c->ep = NULL;
    g_eps[slot] = NULL;
    return status;
}

/* ---- operations ------------------------------------------------------------ */

static uint64_t rbuf_addr(size_t offset)
{
    return (uint64_t)(uintptr_t)(rbuf + offset);
}

static void op_put(struct epctx *c)
{
    struct post *saved, *p = post_new("put");
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    fill_pattern(sbuf, opt_size, 1000u + p->i);

    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_put_nbx(c->ep, sbuf, opt_size, rbuf_addr(0),
                                       c->rkey, &prm);
    post_returned(p, saved, ret);
    post_wait(p);

    last_put.valid = (p->final == UCS_OK);
    last_put.ep    = c;
    last_put.size  = opt_size;
    memcpy(last_put.bytes, sbuf, opt_size);
}

static void op_get(struct epctx *c)
{
    struct post *saved, *p = post_new("get");
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    memset(dbuf, 0, opt_size);

    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_get_nbx(c->ep, dbuf, opt_size, rbuf_addr(0),
                                       c->rkey, &prm);
    post_returned(p, saved, ret);
    post_wait(p);
    if (UCS_PTR_IS_ERR(ret)) {
        return;
    }
    /* Against what the last put wrote if it succeeded on this endpoint;
     * otherwise against the target memory itself (it is ours). */
    const uint8_t *expected = rbuf;
    if (last_put.valid && last_put.ep == c && last_put.size >= opt_size) {
        expected = last_put.bytes;
    }
    print_data(p, expected, dbuf, opt_size);
}

static void op_atomic(struct epctx *c)
{
    static uint64_t one = 1;
    struct post *saved, *p = post_new("atomic");
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    prm.op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
    prm.datatype      = ucp_dt_make_contig(sizeof(one));

    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_atomic_op_nbx(c->ep, UCP_ATOMIC_OP_ADD, &one, 1,
                                             rbuf_addr(ATOMIC_OFFSET), c->rkey,
                                             &prm);
    post_returned(p, saved, ret);
    post_wait(p);
}

/* tag_recv then tag_send with a tag used only by this pair. */
static void op_tag(struct epctx *c)
{
    static unsigned long pairs;
    ucp_tag_t tag = TAG_BASE + pairs++;
    ucp_request_param_t prm;
    struct post *saved;

    struct post *r = post_new("tag_recv");
    post_param(r, CB_TAG_RECV, &prm);
    memset(dbuf, 0, opt_size);
    post_begin(r, &saved);
    ucs_status_ptr_t rret = ucp_tag_recv_nbx(g_worker, dbuf, opt_size, tag,
                                             (ucp_tag_t)-1, &prm);
    post_returned(r, saved, rret);
    if (UCS_PTR_IS_ERR(rret)) {
        /* A send now would sit in the unexpected queue forever. */
        return;
    }

    struct post *s = post_new("tag_send");
    post_param(s, CB_SEND, &prm);
    fill_pattern(sbuf, opt_size, 2000u + s->i);
    post_begin(s, &saved);
    ucs_status_ptr_t sret = ucp_tag_send_nbx(c->ep, sbuf, opt_size, tag,
                                             &prm);
    post_returned(s, saved, sret);
    post_wait(s);

    if (s->final != UCS_OK && !post_complete(r)) {
        /* The message may never come: let anything in flight land, then
         * cancel the receive (a no-op if it matched meanwhile). */
        if (!UCS_PTR_IS_ERR(sret)) {
            progress_idle(SETTLE_NS);
        }
        if (!post_complete(r)) {
            ucp_request_cancel(g_worker, r->handle);
        }
    }
    post_wait(r);

    print_data(r, sbuf, dbuf, opt_size);
    if (!UCS_PTR_IS_ERR(sret)) {
        print_data(s, sbuf, dbuf, opt_size);
    }
}

/* Waits (bounded) until the handler saw the message with sequence `seq`. */
static int wait_am(uint32_t seq, uint64_t bound_ns)
{
    uint64_t deadline = now_ns() + bound_ns;
    while (!(am_got && am_want_seq == seq) && now_ns() < deadline) {
        progress();
    }
    return am_got && am_want_seq == seq;
}

/* Eager (small) or rendezvous (32 KiB) active message to ourselves. */
static void op_am(struct epctx *c, int rndv)
{
    struct post *saved, *p = post_new(rndv ? "am_rndv" : "am_send");
    size_t len = rndv ? AM_RNDV_SIZE : opt_size;
    struct am_hdr hdr = { .magic = AM_MAGIC, .seq = am_next_seq++ };
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    prm.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags         = rndv ? UCP_AM_SEND_FLAG_RNDV : UCP_AM_SEND_FLAG_EAGER;
    fill_pattern(sbuf, len, 3000u + hdr.seq);
    memset(ambuf, 0, len);
    am_got       = 0;
    am_want_seq  = hdr.seq;
    am_recv_post = NULL;

    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_am_send_nbx(c->ep, AM_ID, &hdr, sizeof(hdr),
                                           sbuf, len, &prm);
    post_returned(p, saved, ret);
    if (UCS_PTR_IS_ERR(ret)) {
        return;
    }
    post_wait(p);

    /* A failed send may still have delivered (or not): no long wait then. */
    int got = wait_am(hdr.seq, (p->final == UCS_OK) ? WAIT_NS : SETTLE_NS);
    if (!got && p->final == UCS_OK) {
        printf("TIMEOUT am_handler %lu\n", p->i);
    }
    struct post *r = am_recv_post;
    if (r != NULL) {
        post_wait(r);
    }
    int delivered = got && am_got_len == len &&
                    (r == NULL || r->final == UCS_OK);
    const char *what = (p->final != UCS_OK ||
                        (r != NULL && r->final != UCS_OK)) ? "skipped" :
                       (delivered && memcmp(sbuf, ambuf, len) == 0) ? "ok" :
                       "mismatch";
    printf("DATA %s %lu %s\n", p->op, p->i, what);
    if (r != NULL && !r->ret_err) {
        print_data(r, sbuf, ambuf, len);
    }
}

/* AM handler: copies eager data; for rendezvous, fetches it into ambuf with
 * ucp_am_recv_data_nbx (op am_recv_data), which completes later. */
static ucs_status_t am_handler(void *arg, const void *header,
                               size_t header_length, void *data,
                               size_t length, const ucp_am_recv_param_t *param)
{
    const struct am_hdr *hdr = header;
    (void)arg;
    if (header_length != sizeof(*hdr) || hdr->magic != AM_MAGIC ||
        length > BUF_SIZE) {
        fprintf(stderr, "ucx_sites: unexpected active message\n");
        return UCS_OK;   /* drops a rendezvous descriptor too */
    }
    if (hdr->seq != am_want_seq) {
        /* Late message from an earlier post: dropped. */
        return UCS_OK;
    }
    am_got     = 1;
    am_got_len = length;
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        memcpy(ambuf, data, length);
        return UCS_OK;
    }

    struct post *saved, *p = post_new("am_recv_data");
    ucp_request_param_t prm;
    post_param(p, CB_AM_RECV, &prm);
    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_am_recv_data_nbx(g_worker, data, ambuf, length,
                                                &prm);
    post_returned(p, saved, ret);
    am_recv_post = p;
    /* UCX owns the descriptor once the receive is initiated, even if it
     * failed. */
    return UCS_INPROGRESS;
}

static void op_stream(struct epctx *c)
{
    struct post *saved, *s = post_new("stream_send");
    ucp_request_param_t prm;
    post_param(s, CB_SEND, &prm);
    fill_pattern(sbuf, opt_size, 4000u + s->i);
    post_begin(s, &saved);
    ucs_status_ptr_t sret = ucp_stream_send_nbx(c->ep, sbuf, opt_size, &prm);
    post_returned(s, saved, sret);
    post_wait(s);
    if (UCS_PTR_IS_ERR(sret)) {
        return;   /* nothing was queued: a receive would only time out */
    }
    if (c->failed) {
        /* No data can arrive on a failed endpoint. */
        print_data(s, sbuf, sbuf, 0);
        return;
    }

    struct post *r = post_new("stream_recv");
    post_param(r, CB_STREAM_RECV, &prm);
    prm.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags         = UCP_STREAM_RECV_FLAG_WAITALL;
    memset(dbuf, 0, opt_size);
    size_t length = 0;
    post_begin(r, &saved);
    ucs_status_ptr_t rret = ucp_stream_recv_nbx(c->ep, dbuf, opt_size, &length,
                                                &prm);
    post_returned(r, saved, rret);
    post_wait(r);
    if (UCS_PTR_IS_ERR(rret)) {
        return;
    }
    print_data(r, sbuf, dbuf, opt_size);
    print_data(s, sbuf, dbuf, opt_size);
}

static struct post *post_ep_flush(struct epctx *c)
{
    struct post *saved, *p = post_new("flush");
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_ep_flush_nbx(c->ep, &prm);
    post_returned(p, saved, ret);
    return p;
}

static void op_flush(struct epctx *c)
{
    post_wait(post_ep_flush(c));
}

static void op_worker_flush(void)
{
    struct post *saved, *p = post_new("worker_flush");
    ucp_request_param_t prm;
    post_param(p, CB_SEND, &prm);
    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_worker_flush_nbx(g_worker, &prm);
    post_returned(p, saved, ret);
    post_wait(p);
}

static void op_cancel_recv(void)
{
    static unsigned long n;
    struct post *saved, *p = post_new("cancel_recv");
    ucp_request_param_t prm;
    post_param(p, CB_TAG_RECV, &prm);
    post_begin(p, &saved);
    ucs_status_ptr_t ret = ucp_tag_recv_nbx(g_worker, cbuf, 64,
                                            CANCEL_TAG_BASE + n++,
                                            (ucp_tag_t)-1, &prm);
    post_returned(p, saved, ret);
    if (p->handle != NULL && !post_complete(p)) {
        ucp_request_cancel(g_worker, p->handle);
    }
    post_wait(p);
}

/* Puts (k-th at offset k*size) whose bytes are all at their target. */
static unsigned count_landed(unsigned count, size_t size)
{
    unsigned landed = 0;
    for (unsigned k = 0; k < count; k++) {
        size_t off = (size_t)k * size;
        if (memcmp(rbuf + off, sbuf + off, size) == 0) {
            landed++;
        }
    }
    return landed;
}

static void op_putflush(struct epctx *c, unsigned count, size_t size)
{
    static unsigned long rounds;
    struct post **puts = xcalloc(count, sizeof(*puts));
    size_t total = (size_t)count * size;

    /* Clear the target (it is our memory and nothing is in flight), give
     * each put its own pattern. */
    memset(rbuf, 0, total);
    for (unsigned k = 0; k < count; k++) {
        fill_pattern(sbuf + (size_t)k * size, size,
                     5000u + rounds * 1024u + k);
    }
    rounds++;
    last_put.valid = 0;

    for (unsigned k = 0; k < count; k++) {
        struct post *saved, *p = post_new("put");
        ucp_request_param_t prm;
        post_param(p, CB_SEND, &prm);
        post_begin(p, &saved);
        ucs_status_ptr_t ret = ucp_put_nbx(c->ep, sbuf + (size_t)k * size,
                                           size, rbuf_addr((size_t)k * size),
                                           c->rkey, &prm);
        post_returned(p, saved, ret);
        puts[k] = p;
    }
    struct post *f = post_ep_flush(c);
    /* No progress between the flush returning and this check. */
    printf("LANDED %u/%u\n", count_landed(count, size), count);

    for (unsigned k = 0; k < count; k++) {
        post_wait(puts[k]);
    }
    post_wait(f);
    /* Puts complete locally (often at once, over tcp) before their data is
     * read on the target side; with no request pending, e.g. after a flush
     * that failed at once, only progress lets it land. */
    progress_idle(SETTLE_NS);
    printf("LANDED_AFTER %u/%u\n", count_landed(count, size), count);
    free(puts);
}

/* ---- command dispatch ------------------------------------------------------ */

static int parse_ep(const char *s)
{
    for (int k = 0; k < NUM_EPS; k++) {
        if (strcasecmp(s, ep_names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

/* Ops usable in --ops (single word, endpoint from --ep). */
static const char *const batch_ops[] = {
    "put", "get", "atomic", "tag_send", "tag_recv", "am_send", "am_rndv",
    "stream", "flush", "worker_flush", "cancel_recv", "progress", NULL,
};

static int is_batch_op(const char *name, size_t len)
{
    for (int k = 0; batch_ops[k] != NULL; k++) {
        if (strlen(batch_ops[k]) == len && strncmp(batch_ops[k], name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Runs one command; returns 0, or -1 after printing ERROR. */
static int run_command(int argc, char **argv)
{
    const char *cmd = argv[0];
    int slot = opt_ep;
    if (argc >= 2 && (slot = parse_ep(argv[1])) < 0) {
        printf("ERROR unknown endpoint '%s'\n", argv[1]);
        return -1;
    }

    /* Commands that do not take an endpoint. */
    if (strcmp(cmd, "worker_flush") == 0) {
        op_worker_flush();
        goto out;
    } else if (strcmp(cmd, "cancel_recv") == 0) {
        op_cancel_recv();
        goto out;
    } else if (strcmp(cmd, "progress") == 0) {
        progress_idle(PROGRESS_NS);
        return 0;
    } else if (strcmp(cmd, "create") == 0) {
        if (g_eps[slot] != NULL) {
            printf("ERROR endpoint %s is open\n", ep_names[slot]);
            return -1;
        }
        ucs_status_t rkey_status;
        ucs_status_t st = create_ep(slot, &rkey_status);
        printf("CREATE %s %d\n", ep_names[slot], (int)st);
        if (st == UCS_OK && rkey_status != UCS_OK) {
            printf("RKEY %s %d\n", ep_names[slot], (int)rkey_status);
        }
        return 0;
    }

    /* The rest need an open endpoint. */
    struct epctx *c = g_eps[slot];
    if (c == NULL) {
        printf("ERROR endpoint %s is closed\n", ep_names[slot]);
        return -1;
    }
    int rma = !strcmp(cmd, "put") || !strcmp(cmd, "get") ||
              !strcmp(cmd, "atomic") || !strcmp(cmd, "putflush");
    if (rma && c->rkey == NULL) {
        printf("ERROR endpoint %s has no rkey\n", ep_names[slot]);
        return -1;
    }

    if (strcmp(cmd, "put") == 0) {
        op_put(c);
    } else if (strcmp(cmd, "get") == 0) {
        op_get(c);
    } else if (strcmp(cmd, "atomic") == 0) {
        op_atomic(c);
    } else if (strcmp(cmd, "tag_send") == 0 || strcmp(cmd, "tag_recv") == 0) {
        op_tag(c);
    } else if (strcmp(cmd, "am_send") == 0) {
        op_am(c, 0);
    } else if (strcmp(cmd, "am_rndv") == 0) {
        op_am(c, 1);
    } else if (strcmp(cmd, "stream") == 0) {
        op_stream(c);
    } else if (strcmp(cmd, "flush") == 0) {
        op_flush(c);
    } else if (strcmp(cmd, "putflush") == 0) {
        char *end1 = NULL, *end2 = NULL;
        unsigned long count = (argc == 4) ? strtoul(argv[2], &end1, 10) : 0;
        unsigned long size  = (argc == 4) ? strtoul(argv[3], &end2, 10) : 0;
        if (argc != 4 || *end1 != '\0' || *end2 != '\0' || count == 0 ||
            size == 0 || count > BUF_SIZE || size > BUF_SIZE ||
            count * size > BUF_SIZE) {
            printf("ERROR usage: putflush EP COUNT SIZE "
                   "(COUNT*SIZE <= %d)\n", BUF_SIZE);
            return -1;
        }
        op_putflush(c, (unsigned)count, (size_t)size);
    } else if (strcmp(cmd, "close") == 0) {
        int force;
        if (argc == 3 && strcmp(argv[2], "force") == 0) {
            force = 1;
        } else if (argc == 3 && strcmp(argv[2], "flush") == 0) {
            force = 0;
        } else {
            printf("ERROR usage: close EP force|flush\n");
            return -1;
        }
        ucs_status_t st = close_ep(slot, force, WAIT_NS);
        printf("CLOSE %s %d\n", ep_names[slot], (int)st);
        return 0;
    } else {
        printf("ERROR unknown command '%s'\n", cmd);
        return -1;
    }
out:
    settle_posts();
    return 0;
}

/* stdin mode: one command per line, DONE after each. */
static void run_stdin(void)
{
    char line[512];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *argv[8];
        int argc = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok != NULL && argc < 8;
             tok = strtok(NULL, " \t\r\n")) {
            argv[argc++] = tok;
        }
        if (argc == 0) {
            continue;
        }
        if (strcmp(argv[0], "quit") == 0) {
            return;
        }
        run_command(argc, argv);
        printf("DONE\n");
    }
}

/* Batch mode: --n rounds of --ops on --ep. */
static void run_batch(void)
{
    for (unsigned long n = 0; n < opt_n; n++) {
        const char *s = opt_ops;
        while (*s != '\0') {
            size_t len = strcspn(s, ",");
            char name[32];
            snprintf(name, sizeof(name), "%.*s", (int)len, s);
            char *argv[2] = { name, (char *)ep_names[opt_ep] };
            run_command(2, argv);
            s += len;
            s += (*s == ',');
        }
    }
}

/* ---- setup / cleanup -------------------------------------------------------- */

static int setup_fail(const char *what, ucs_status_t status)
{
    printf("SETUP %s %d\n", what, (int)status);
    return -1;
}

static int setup(void)
{
    ucs_status_t st;

    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES,
        .features   = UCP_FEATURE_TAG | UCP_FEATURE_RMA | UCP_FEATURE_AM |
                      UCP_FEATURE_STREAM | UCP_FEATURE_AMO64 |
                      UCP_FEATURE_WAKEUP,
    };
    st = ucp_init(&params, NULL, &g_context);
    if (st != UCS_OK) {
        g_context = NULL;
        return setup_fail("ucp_init", st);
    }

    ucp_context_attr_t attr = { .field_mask = UCP_ATTR_FIELD_REQUEST_SIZE };
    st = ucp_context_query(g_context, &attr);
    if (st != UCS_OK) {
        return setup_fail("ucp_context_query", st);
    }
    g_request_size = attr.request_size;

    ucp_worker_params_t wp = {
        .field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SINGLE,
    };
    st = ucp_worker_create(g_context, &wp, &g_worker);
    if (st != UCS_OK) {
        g_worker = NULL;
        return setup_fail("ucp_worker_create", st);
    }

    size_t addr_len;
    st = ucp_worker_get_address(g_worker, &g_address, &addr_len);
    if (st != UCS_OK) {
        g_address = NULL;
        return setup_fail("ucp_worker_get_address", st);
    }

    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                      UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address    = rbuf,
        .length     = BUF_SIZE,
    };
    st = ucp_mem_map(g_context, &mp, &g_memh);
    if (st != UCS_OK) {
        g_memh = NULL;
        return setup_fail("ucp_mem_map", st);
    }
    size_t rkey_len;
    st = ucp_rkey_pack(g_context, g_memh, &g_rkey_buf, &rkey_len);
    if (st != UCS_OK) {
        g_rkey_buf = NULL;
        return setup_fail("ucp_rkey_pack", st);
    }

    ucp_am_handler_param_t ap = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                      UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id         = AM_ID,
        .cb         = am_handler,
        .arg        = NULL,
    };
    st = ucp_worker_set_am_recv_handler(g_worker, &ap);
    if (st != UCS_OK) {
        return setup_fail("ucp_worker_set_am_recv_handler", st);
    }

    for (int slot = 0; slot < NUM_EPS; slot++) {
        ucs_status_t rkey_st;
        st = create_ep(slot, &rkey_st);
        if (st != UCS_OK) {
            return setup_fail("ucp_ep_create", st);
        }
        if (rkey_st != UCS_OK) {
            return setup_fail("ucp_ep_rkey_unpack", rkey_st);
        }
    }
    return 0;
}

/* Tolerates partial setup. */
static void cleanup(void)
{
    for (int slot = 0; slot < NUM_EPS; slot++) {
        if (g_eps[slot] != NULL) {
            ucs_status_t st = close_ep(slot, 1, CANCEL_WAIT_NS);
            if (st != UCS_OK) {
                fprintf(stderr, "ucx_sites: closing %s at exit: %s\n",
                        ep_names[slot], ucs_status_string(st));
            }
        }
    }
    if (g_rkey_buf != NULL) {
        ucp_rkey_buffer_release(g_rkey_buf);
    }
    if (g_memh != NULL) {
        ucp_mem_unmap(g_context, g_memh);
    }
    if (g_address != NULL) {
        ucp_worker_release_address(g_worker, g_address);
    }
    if (g_worker != NULL) {
        /* Also destroys an endpoint whose close failed. */
        ucp_worker_destroy(g_worker);
    }
    if (g_context != NULL) {
        ucp_cleanup(g_context);
    }
    while (g_all_eps != NULL) {
        struct epctx *next = g_all_eps->next_all;
        free(g_all_eps);
        g_all_eps = next;
    }
    for (size_t k = 0; k < nposts; k++) {
        if (!posts[k]->abandoned) {
            free(posts[k]->ureq_mem);
        }
        free(posts[k]);
    }
    free(posts);
}

/* ---- main -------------------------------------------------------------------- */

static void usage(const char *why)
{
    fprintf(stderr,
            "ucx_sites: %s\n"
            "usage: ucx_sites [--n N] [--ops LIST] [--ep A|B] [--size BYTES]\n"
            "                 [--user-requests] [--no-callback] [--free-in-cb]\n"
            "                 [--user-no-imm] [--stdin]\n", why);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    enum { O_N = 256, O_OPS, O_EP, O_SIZE, O_STDIN, O_UREQ, O_NOCB, O_FREECB,
           O_NOIMM, O_QUERIES };
    static const struct option longopts[] = {
        { "n",             required_argument, NULL, O_N },
        { "ops",           required_argument, NULL, O_OPS },
        { "ep",            required_argument, NULL, O_EP },
        { "size",          required_argument, NULL, O_SIZE },
        { "stdin",         no_argument,       NULL, O_STDIN },
        { "user-requests", no_argument,       NULL, O_UREQ },
        { "no-callback",   no_argument,       NULL, O_NOCB },
        { "free-in-cb",    no_argument,       NULL, O_FREECB },
        { "user-no-imm",   no_argument,       NULL, O_NOIMM },
        { "queries",       no_argument,       NULL, O_QUERIES },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case O_N:
            opt_n = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0') {
                usage("bad --n");
            }
            break;
        case O_OPS:
            opt_ops = optarg;
            break;
        case O_EP:
            if ((opt_ep = parse_ep(optarg)) < 0) {
                usage("--ep must be A or B");
            }
            break;
        case O_SIZE:
            opt_size = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || opt_size == 0 ||
                opt_size > MAX_SIZE) {
                usage("--size must be 1..32768");
            }
            break;
        case O_STDIN:  opt_stdin = 1;         break;
        case O_UREQ:   opt_user_requests = 1; break;
        case O_NOCB:   opt_no_callback = 1;   break;
        case O_FREECB: opt_free_in_cb = 1;    break;
        case O_NOIMM:  opt_user_no_imm = 1;   break;
        case O_QUERIES: opt_queries = 1;      break;
        default:
            usage("unknown option");
        }
    }
    if (optind != argc) {
        usage("unexpected argument");
    }
    if (opt_free_in_cb && opt_no_callback) {
        usage("--free-in-cb needs a callback");
    }
    /* Validate the op list up front. */
    const char *s = opt_ops;
    do {
        size_t len = strcspn(s, ",");
        if (!is_batch_op(s, len)) {
            usage("bad --ops entry");
        }
        s += len;
    } while (*s++ == ',');
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    ucs_log_push_handler(log_to_stderr);

    rbuf  = aligned_alloc(4096, BUF_SIZE);
    sbuf  = aligned_alloc(4096, BUF_SIZE);
    dbuf  = aligned_alloc(4096, BUF_SIZE);
    ambuf = aligned_alloc(4096, BUF_SIZE);
    cbuf  = aligned_alloc(4096, 4096);
    if (!rbuf || !sbuf || !dbuf || !ambuf || !cbuf) {
        fprintf(stderr, "ucx_sites: out of memory\n");
        return 1;
    }
    memset(rbuf, 0, BUF_SIZE);

    int rc = 0;
    if (setup() != 0) {
        rc = 3;
    } else {
        if (opt_stdin) {
            run_stdin();
        } else {
            run_batch();
        }
        printf("EXIT\n");
    }
    cleanup();
    free(rbuf);
    free(sbuf);
    free(dbuf);
    free(ambuf);
    free(cbuf);
    return rc;
}
