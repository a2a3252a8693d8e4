/*
 * call_loop.c - benchmark driver for the faultline UCX shim's per-call overhead. Not a test.
 *
 * Calls ucp_put_nbx, ucp_request_check_status or ucp_worker_progress (the benchmark test double in fake_libucp.c, through the PLT) N
 * times in a tight loop on each of
 * T threads, and prints nanoseconds per call two ways, each averaged over the threads: wall clock (CLOCK_MONOTONIC
 * around each thread's timed loop, after a barrier and a warm-up) and the thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID around the same loop). On a machine shared with other work the CPU time leaves out the
 * time a thread waited for a core, which wall clock counts. Run it plain for the baseline, or with
 * LD_PRELOAD=libfaultline_ucx.so and FAULTLINE_* in the environment for the shim's configurations.
 *
 * Every result is used (faulted calls are counted, the rest are summed into a value that is printed), so the
 * compiler cannot drop the calls; the callee lives in another shared object, so it cannot inline them either.
 *
 * Build: cc -O2 -pthread -o call_loop call_loop.c -L<dir> -lucp -Wl,-rpath,<dir>   (<dir> holds libucp.so.0)
 * Usage: call_loop [N calls per thread, default 50000000] [T threads, default 1] [put | check | progress, default put]
 * Output (one line): wall_ns_per_call=<float> cpu_ns_per_call=<float> threads=<T> calls_per_thread=<N>
 *                    faults=<count> check=<sum>
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *ucp_put_nbx(void *ep, const void *buffer, size_t count, uint64_t remote_addr, void *rkey, const void *param);
int ucp_request_check_status(void *request);
unsigned ucp_worker_progress(void *worker);

/* Which function the loop calls: 0 ucp_put_nbx, 1 ucp_request_check_status. */
static int function;

/* Calls before the timed loop: resolves the PLT slot and the shim's real-function cache, registers the thread. */
#define WARMUP_CALLS 100000

/* UCS_PTR_IS_ERR: statuses -1..-100 encoded as pointers (the shim's injected faults). */
static int is_err(void *p)
{
    return (uintptr_t)p >= (uintptr_t)-100;
}

/* One per thread, on its own cache lines: the loop keeps its tallies in locals, but the struct must not share a
 * line with another thread's (false sharing would show up as a scaling cost the shim did not cause). */
struct worker {
    _Alignas(128) pthread_t thread;
    uint64_t calls;
    double wall_ns;    /* timed loop, CLOCK_MONOTONIC nanoseconds */
    double cpu_ns;     /* timed loop, this thread's CPU nanoseconds */
    uint64_t faults;   /* results that were errors */
    uintptr_t check;   /* sum of the other results (0 with the test double: NULL is UCS_OK) */
};

static pthread_barrier_t start;
static char buffer[64];
static int ep; /* stands in for a ucp_ep_h: never dereferenced */

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_calls(struct worker *w, uint64_t calls)
{
    uint64_t faults = 0;
    uintptr_t check = 0;
    if (function == 2) {
        for (uint64_t i = 0; i < calls; i++) {
            unsigned progressed = ucp_worker_progress(buffer + (i & 63));
            check += (uintptr_t)progressed;
        }
    } else if (function == 1) {
        for (uint64_t i = 0; i < calls; i++) {
            int status = ucp_request_check_status(buffer + (i & 63));
            if (status < 0)
                faults++;
            else
                check += (uintptr_t)status;
        }
    } else {
        for (uint64_t i = 0; i < calls; i++) {
            void *r = ucp_put_nbx(&ep, buffer, i & 63, (uint64_t)(uintptr_t)buffer, NULL, NULL);
            if (is_err(r))
                faults++;
            else
                check += (uintptr_t)r;
        }
    }
    w->faults += faults;
    w->check += check;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    run_calls(w, WARMUP_CALLS);
    pthread_barrier_wait(&start);
    uint64_t wall0 = now_ns(CLOCK_MONOTONIC);
    uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    run_calls(w, w->calls);
    uint64_t cpu1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t wall1 = now_ns(CLOCK_MONOTONIC);
    w->wall_ns = (double)(wall1 - wall0);
    w->cpu_ns = (double)(cpu1 - cpu0);
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t calls = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000u;
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    function = argc > 3 && strcmp(argv[3], "check") == 0      ? 1
               : argc > 3 && strcmp(argv[3], "progress") == 0 ? 2
                                                              : 0;
    if (calls == 0 || threads < 1 || threads > 64 || (argc > 3 && !function && strcmp(argv[3], "put") != 0)) {
        fprintf(stderr, "usage: %s [calls per thread > 0] [threads 1..64] [put | check | progress]\n", argv[0]);
        return 2;
    }
    struct worker *workers = aligned_alloc(_Alignof(struct worker), (size_t)threads * sizeof(struct worker));
    if (!workers)
        return 1;
    memset(workers, 0, (size_t)threads * sizeof(struct worker));
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (long t = 0; t < threads; t++) {
        workers[t].calls = calls;
        if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    double wall = 0, cpu = 0;
    uint64_t faults = 0;
    uintptr_t check = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(workers[t].thread, NULL);
        wall += workers[t].wall_ns / (double)calls;
        cpu += workers[t].cpu_ns / (double)calls;
        faults += workers[t].faults;
        check += workers[t].check;
    }
    printf("wall_ns_per_call=%.3f cpu_ns_per_call=%.3f threads=%ld calls_per_thread=%llu faults=%llu check=%llu\n",
           wall / (double)threads, cpu / (double)threads, threads, (unsigned long long)calls,
           (unsigned long long)faults, (unsigned long long)check);
    free(workers);
    return 0;
}
