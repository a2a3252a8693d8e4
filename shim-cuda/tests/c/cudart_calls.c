/*
 * cudart_calls.c - CUDA runtime workload for the shim-cuda integration tests.
 *
 * Calls CUDA runtime functions of a real libcudart (the PyPI wheel's
 * libcudart.so.12 on machines without a GPU, where every call answers
 * cudaErrorInsufficientDriver = 35) and prints what each returned, so a test
 * can compare what the program saw with what the LD_PRELOAD shim injected.
 *
 * Build:
 *   cc -O1 -Wall -Wextra -Werror -o cudart_calls cudart_calls.c -ldl
 *       (dlopens --cudart PATH and looks every function up in that handle)
 *   cc ... -DLINKED cudart_calls.c /path/to/libcudart.so.12 -Wl,-rpath,/path/to
 *       (calls the functions it was linked against)
 *
 * Usage:
 *   cudart_calls [--cudart PATH] [--ops LIST] [--iterations N] [--device D]
 *                [--stdin] [--quiet]
 *
 *   --cudart PATH   the libcudart to dlopen (required unless built -DLINKED)
 *   --ops LIST      comma list of count,setdevice,getdevice,props,props_v1,
 *                   malloc,mallocasync,free,memcpy,memcpyasync,memset,launch,
 *                   devsync,streamsync,streamcreate,eventsync,meminfo (not
 *                   intercepted by the shim),getlasterror,peeklasterror,
 *                   streamquery,eventquery; default
 *                   count,malloc,free,memcpy,launch,devsync. Each iteration
 *                   calls them in the given order.
 *   --iterations N  iterations (default 1), then SUMMARY/DONE and exit 0.
 *   --device D      device argument of setdevice and props (default 0).
 *   --stdin         read commands from stdin instead: "run K" runs K
 *                   iterations then prints SUMMARY.../DONE; "ops LIST"
 *                   replaces the ops list (as --ops) and prints DONE;
 *                   "quit"/EOF exits.
 *   --quiet         no CALL lines.
 *
 * Output (stdout, line-buffered):
 *   CALL <n> <function> <status> [count=<c>]   one per call; n counts from 1;
 *       status is the cudaError_t; cudaGetDeviceCount also prints the count
 *       it left (-1: untouched).
 *   SUMMARY <function> calls=<c> failures=<f>  cumulative, alphabetical
 *   DONE
 *   ERROR <text>                               bad --stdin command
 * Exit codes: 0 ok, 2 usage error, 3 libcudart or a function not found.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int cudaError_t;
typedef struct {
    unsigned int x, y, z;
} dim3;

enum op {
    OP_COUNT, OP_SETDEVICE, OP_GETDEVICE, OP_PROPS, OP_PROPS_V1, OP_MALLOC, OP_MALLOCASYNC, OP_FREE, OP_MEMCPY,
    OP_MEMCPYASYNC, OP_MEMSET, OP_LAUNCH, OP_DEVSYNC, OP_STREAMSYNC, OP_STREAMCREATE, OP_EVENTSYNC, OP_MEMINFO,
    OP_GETLASTERROR, OP_PEEKLASTERROR, OP_STREAMQUERY, OP_EVENTQUERY, OPS
};

static const char *const op_names[OPS] = {
    "count", "setdevice", "getdevice", "props", "props_v1", "malloc", "mallocasync", "free", "memcpy",
    "memcpyasync", "memset", "launch", "devsync", "streamsync", "streamcreate", "eventsync", "meminfo",
    "getlasterror", "peeklasterror", "streamquery", "eventquery",
};

static const char *const fn_names[OPS] = {
    "cudaGetDeviceCount", "cudaSetDevice", "cudaGetDevice", "cudaGetDeviceProperties_v2",
    "cudaGetDeviceProperties", "cudaMalloc", "cudaMallocAsync", "cudaFree", "cudaMemcpy", "cudaMemcpyAsync",
    "cudaMemset", "cudaLaunchKernel", "cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaStreamCreate",
    "cudaEventSynchronize", "cudaMemGetInfo", "cudaGetLastError", "cudaPeekAtLastError", "cudaStreamQuery",
    "cudaEventQuery",
};

static struct {
    cudaError_t (*count)(int *);
    cudaError_t (*setdevice)(int);
    cudaError_t (*getdevice)(int *);
    cudaError_t (*props)(void *, int);
    cudaError_t (*props_v1)(void *, int);
    cudaError_t (*malloc)(void **, size_t);
    cudaError_t (*mallocasync)(void **, size_t, void *);
    cudaError_t (*free)(void *);
    cudaError_t (*memcpy)(void *, const void *, size_t, int);
    cudaError_t (*memcpyasync)(void *, const void *, size_t, int, void *);
    cudaError_t (*memset)(void *, int, size_t);
    cudaError_t (*launch)(const void *, dim3, dim3, void **, size_t, void *);
    cudaError_t (*devsync)(void);
    cudaError_t (*streamsync)(void *);
    cudaError_t (*streamcreate)(void **);
    cudaError_t (*eventsync)(void *);
    cudaError_t (*meminfo)(size_t *, size_t *);
    cudaError_t (*getlasterror)(void);
    cudaError_t (*peeklasterror)(void);
    cudaError_t (*streamquery)(void *);
    cudaError_t (*eventquery)(void *);
} cuda;

#ifdef LINKED
cudaError_t cudaGetDeviceCount(int *);
cudaError_t cudaSetDevice(int);
cudaError_t cudaGetDevice(int *);
cudaError_t cudaGetDeviceProperties_v2(void *, int);
cudaError_t cudaGetDeviceProperties(void *, int);
cudaError_t cudaMalloc(void **, size_t);
cudaError_t cudaMallocAsync(void **, size_t, void *);
cudaError_t cudaFree(void *);
cudaError_t cudaMemcpy(void *, const void *, size_t, int);
cudaError_t cudaMemcpyAsync(void *, const void *, size_t, int, void *);
cudaError_t cudaMemset(void *, int, size_t);
cudaError_t cudaLaunchKernel(const void *, dim3, dim3, void **, size_t, void *);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(void *);
cudaError_t cudaStreamCreate(void **);
cudaError_t cudaEventSynchronize(void *);
cudaError_t cudaMemGetInfo(size_t *, size_t *);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaStreamQuery(void *);
cudaError_t cudaEventQuery(void *);

static int resolve(const char *path)
{
    (void)path;
    cuda.count = cudaGetDeviceCount;
    cuda.setdevice = cudaSetDevice;
    cuda.getdevice = cudaGetDevice;
    cuda.props = cudaGetDeviceProperties_v2;
    cuda.props_v1 = cudaGetDeviceProperties;
    cuda.malloc = cudaMalloc;
    cuda.mallocasync = cudaMallocAsync;
    cuda.free = cudaFree;
    cuda.memcpy = cudaMemcpy;
    cuda.memcpyasync = cudaMemcpyAsync;
    cuda.memset = cudaMemset;
    cuda.launch = cudaLaunchKernel;
    cuda.devsync = cudaDeviceSynchronize;
    cuda.streamsync = cudaStreamSynchronize;
    cuda.streamcreate = cudaStreamCreate;
    cuda.eventsync = cudaEventSynchronize;
    cuda.meminfo = cudaMemGetInfo;
    cuda.getlasterror = cudaGetLastError;
    cuda.peeklasterror = cudaPeekAtLastError;
    cuda.streamquery = cudaStreamQuery;
    cuda.eventquery = cudaEventQuery;
    return 0;
}
#else
static int resolve(const char *path)
{
    if (path == NULL) {
        fprintf(stderr, "--cudart PATH is required\n");
        return -1;
    }
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return -1;
    }
    void **slots[OPS] = {
        (void **)&cuda.count, (void **)&cuda.setdevice, (void **)&cuda.getdevice, (void **)&cuda.props,
        (void **)&cuda.props_v1, (void **)&cuda.malloc, (void **)&cuda.mallocasync, (void **)&cuda.free,
        (void **)&cuda.memcpy, (void **)&cuda.memcpyasync, (void **)&cuda.memset, (void **)&cuda.launch,
        (void **)&cuda.devsync, (void **)&cuda.streamsync, (void **)&cuda.streamcreate, (void **)&cuda.eventsync,
        (void **)&cuda.meminfo, (void **)&cuda.getlasterror, (void **)&cuda.peeklasterror,
        (void **)&cuda.streamquery, (void **)&cuda.eventquery,
    };
    for (int i = 0; i < OPS; i++) {
        *slots[i] = dlsym(lib, fn_names[i]);
        if (*slots[i] == NULL) {
            fprintf(stderr, "dlsym %s: %s\n", fn_names[i], dlerror());
            return -1;
        }
    }
    return 0;
}
#endif

static int ops[64];
static int nops;
static int opt_device;
static int opt_quiet;
static unsigned long printed;
static unsigned long calls_of[OPS], failures_of[OPS];

static void kernel_stub(void)
{
}

static void report(enum op op, cudaError_t status, const char *extra)
{
    calls_of[op]++;
    if (status != 0) {
        failures_of[op]++;
    }
    if (!opt_quiet) {
        printf("CALL %lu %s %d%s%s\n", ++printed, fn_names[op], status, extra ? " " : "", extra ? extra : "");
    }
}

static void run_op(enum op op)
{
    static char host_a[256], host_b[256];
    static char props[4096];
    char extra[32];
    void *ptr = NULL;
    switch (op) {
    case OP_COUNT: {
        int count = -1;
        cudaError_t status = cuda.count(&count);
        snprintf(extra, sizeof extra, "count=%d", count);
        report(op, status, extra);
        return;
    }
    case OP_SETDEVICE:
        report(op, cuda.setdevice(opt_device), NULL);
        return;
    case OP_GETDEVICE: {
        int device = -1;
        report(op, cuda.getdevice(&device), NULL);
        return;
    }
    case OP_PROPS:
        report(op, cuda.props(props, opt_device), NULL);
        return;
    case OP_PROPS_V1:
        report(op, cuda.props_v1(props, opt_device), NULL);
        return;
    case OP_MALLOC:
        report(op, cuda.malloc(&ptr, 256), NULL);
        return;
    case OP_MALLOCASYNC:
        report(op, cuda.mallocasync(&ptr, 256, NULL), NULL);
        return;
    case OP_FREE:
        report(op, cuda.free(NULL), NULL);
        return;
    case OP_MEMCPY:
        report(op, cuda.memcpy(host_b, host_a, sizeof host_a, 0), NULL);
        return;
    case OP_MEMCPYASYNC:
        report(op, cuda.memcpyasync(host_b, host_a, sizeof host_a, 0, NULL), NULL);
        return;
    case OP_MEMSET:
        report(op, cuda.memset(host_a, 0, sizeof host_a), NULL);
        return;
    case OP_LAUNCH: {
        dim3 one = { 1, 1, 1 };
        report(op, cuda.launch((const void *)kernel_stub, one, one, NULL, 0, NULL), NULL);
        return;
    }
    case OP_DEVSYNC:
        report(op, cuda.devsync(), NULL);
        return;
    case OP_STREAMSYNC:
        report(op, cuda.streamsync(NULL), NULL);
        return;
    case OP_STREAMCREATE:
        report(op, cuda.streamcreate(&ptr), NULL);
        return;
    case OP_EVENTSYNC:
        report(op, cuda.eventsync(NULL), NULL);
        return;
    case OP_MEMINFO: {
        size_t free_bytes = 0, total = 0;
        report(op, cuda.meminfo(&free_bytes, &total), NULL);
        return;
    }
    case OP_GETLASTERROR:
        report(op, cuda.getlasterror(), NULL);
        return;
    case OP_PEEKLASTERROR:
        report(op, cuda.peeklasterror(), NULL);
        return;
    case OP_STREAMQUERY:
        report(op, cuda.streamquery(NULL), NULL);
        return;
    case OP_EVENTQUERY:
        report(op, cuda.eventquery(NULL), NULL);
        return;
    case OPS:
        break;
    }
}

static void run(unsigned long iterations)
{
    for (unsigned long i = 0; i < iterations; i++) {
        for (int k = 0; k < nops; k++) {
            run_op((enum op)ops[k]);
        }
    }
}

static void print_summary(void)
{
    /* fn_names sorted alphabetically for the summary. */
    int order[OPS];
    for (int i = 0; i < OPS; i++) {
        order[i] = i;
    }
    for (int i = 1; i < OPS; i++) {
        for (int j = i; j > 0 && strcmp(fn_names[order[j - 1]], fn_names[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    for (int i = 0; i < OPS; i++) {
        int op = order[i];
        if (calls_of[op] > 0) {
            printf("SUMMARY %s calls=%lu failures=%lu\n", fn_names[op], calls_of[op], failures_of[op]);
        }
    }
    printf("DONE\n");
    fflush(stdout);
}

static void usage(const char *msg)
{
    fprintf(stderr, "cudart_calls: %s\n", msg);
    fprintf(stderr, "usage: cudart_calls [--cudart PATH] [--ops LIST] [--iterations N] [--device D] [--stdin] "
                    "[--quiet]\n");
    exit(2);
}

static void parse_ops(const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL) {
        usage("out of memory");
    }
    nops = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < OPS; i++) {
            if (strcmp(tok, op_names[i]) == 0) {
                found = i;
            }
        }
        if (found < 0 || nops == (int)(sizeof ops / sizeof ops[0])) {
            usage("unknown op in --ops (or too many)");
        }
        ops[nops++] = found;
    }
    free(copy);
    if (nops == 0) {
        usage("empty --ops");
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "cudart", required_argument, NULL, 'c' }, { "ops", required_argument, NULL, 'o' },
        { "iterations", required_argument, NULL, 'n' }, { "device", required_argument, NULL, 'd' },
        { "stdin", no_argument, NULL, 's' }, { "quiet", no_argument, NULL, 'q' }, { NULL, 0, NULL, 0 },
    };
    const char *cudart = NULL;
    unsigned long iterations = 1;
    int from_stdin = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_ops("count,malloc,free,memcpy,launch,devsync");
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (c) {
        case 'c': cudart = optarg; break;
        case 'o': parse_ops(optarg); break;
        case 'n': iterations = strtoul(optarg, NULL, 10); break;
        case 'd': opt_device = atoi(optarg); break;
        case 's': from_stdin = 1; break;
        case 'q': opt_quiet = 1; break;
        default: usage("bad option");
        }
    }
    if (resolve(cudart) != 0) {
        return 3;
    }
    if (!from_stdin) {
        run(iterations);
        print_summary();
        return 0;
    }
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *end;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        if (strcmp(line, "quit") == 0) {
            break;
        }
        if (strncmp(line, "ops ", 4) == 0) {
            parse_ops(line + 4);
            printf("DONE\n");
            fflush(stdout);
            continue;
        }
        if (strncmp(line, "run ", 4) == 0) {
            errno = 0;
            unsigned long k = strtoul(line + 4, &end, 10);
            if (errno == 0 && *end == '\0') {
                run(k);
                print_summary();
                continue;
            }
        }
        printf("ERROR unknown command: %s\n", line);
    }
    return 0;
}
