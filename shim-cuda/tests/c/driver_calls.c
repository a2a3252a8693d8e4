/*
 * driver_calls.c - CUDA driver API workload for the shim-cuda integration
 * tests, run against the test double libcuda.so.1 (test_double_libcuda.c).
 *
 * Calls the driver API the way applications reach it, chosen with --resolve,
 * and prints what each call returned, then how often each entry point of the
 * double was reached, so a test can tell injected faults from real answers.
 *
 * Build:
 *   cc -O1 -Wall -Wextra -Werror -o driver_calls driver_calls.c -ldl
 *       (only dlopens "libcuda.so.1": find it with LD_LIBRARY_PATH)
 *   cc ... -DLINKED driver_calls.c /dir/libcuda.so.1 -Wl,-rpath,/dir -ldl
 *       (also linked against it, for --resolve link)
 *
 * Usage:
 *   driver_calls [--resolve link|dlsym|proc|proc11] [--ptds] [--version V]
 *                [--devices LIST] [--iterations N]
 *
 *   --resolve link    call the functions the program was linked against
 *             dlsym   dlopen("libcuda.so.1") and dlsym each function by name
 *             proc    dlsym cuGetProcAddress_v2 (CUDA 12 signature) from the
 *                     handle, resolve everything else through it
 *             proc11  the same with cuGetProcAddress (CUDA 11.3 signature)
 *   --ptds            proc/proc11: ask for per-thread-default-stream variants
 *                     (CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)
 *   --version V       proc/proc11: the CUDA version asked for (default 12000;
 *                     cuCtxCreate then has the _v3 signature)
 *   --devices LIST    comma list of device ordinals (default 0): setup makes
 *                     one context per device; each iteration, per device,
 *                     makes it current (cuCtxSetCurrent), then runs the loop
 *   --iterations N    default 1
 *
 * Output (stdout):
 *   CALL <n> <function> <status> [count=<c>] [dev=<d>]
 *       setup: cuInit, cuDeviceGetCount, then per device cuDeviceGet,
 *       cuDeviceGetAttribute, cuCtxCreate*; then cuModuleLoadData,
 *       cuModuleGetFunction. Loop (per iteration and device):
 *       cuCtxSetCurrent, cuMemAlloc_v2, cuMemcpyHtoD_v2, cuLaunchKernel,
 *       cuMemcpyDtoH_v2, cuMemcpyHtoDAsync_v2, cuMemcpyDtoHAsync_v2,
 *       cuStreamSynchronize, cuStreamQuery, cuCtxSynchronize, cuMemFree_v2.
 *       Every call is made even if an earlier one failed.
 *   DATA_MISMATCH <iteration>   (stderr) bytes came back wrong after a
 *       successful round trip
 *   DOUBLE <entry point> <calls>   from the double, nonzero ones only
 * Exit codes: 0 ok, 2 usage error, 3 libcuda or a function not found.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long cuuint64_t;

#define MAX_DEVICES 4
#define BYTES 64

static struct {
    CUresult (*init)(unsigned int);
    CUresult (*device_get_count)(int *);
    CUresult (*device_get)(int *, int);
    CUresult (*device_get_attribute)(int *, int, int);
    CUresult (*ctx_create_v2)(void **, unsigned int, int);
    CUresult (*ctx_create_v3)(void **, void *, int, unsigned int, int);
    CUresult (*ctx_set_current)(void *);
    CUresult (*ctx_synchronize)(void);
    CUresult (*module_load_data)(void **, const void *);
    CUresult (*module_get_function)(void **, void *, const char *);
    CUresult (*mem_alloc)(CUdeviceptr *, size_t);
    CUresult (*mem_free)(CUdeviceptr);
    CUresult (*memcpy_htod)(CUdeviceptr, const void *, size_t);
    CUresult (*memcpy_dtoh)(void *, CUdeviceptr, size_t);
    CUresult (*memcpy_htod_async)(CUdeviceptr, const void *, size_t, void *);
    CUresult (*memcpy_dtoh_async)(void *, CUdeviceptr, size_t, void *);
    CUresult (*launch_kernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                              void **, void **);
    CUresult (*stream_synchronize)(void *);
    CUresult (*stream_query)(void *);
} cu;

static void (*print_double_calls)(void);
static int use_ctx_v3;

#ifdef LINKED
CUresult cuInit(unsigned int);
CUresult cuDeviceGetCount(int *);
CUresult cuDeviceGet(int *, int);
CUresult cuDeviceGetAttribute(int *, int, int);
CUresult cuCtxCreate_v2(void **, unsigned int, int);
CUresult cuCtxSetCurrent(void *);
CUresult cuCtxSynchronize(void);
CUresult cuModuleLoadData(void **, const void *);
CUresult cuModuleGetFunction(void **, void *, const char *);
CUresult cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemcpyHtoD_v2(CUdeviceptr, const void *, size_t);
CUresult cuMemcpyDtoH_v2(void *, CUdeviceptr, size_t);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void *, size_t, void *);
CUresult cuMemcpyDtoHAsync_v2(void *, CUdeviceptr, size_t, void *);
CUresult cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                        void **, void **);
CUresult cuStreamSynchronize(void *);
CUresult cuStreamQuery(void *);
void test_double_print_calls(void);

static int resolve_linked(void)
{
    cu.init = cuInit;
    cu.device_get_count = cuDeviceGetCount;
    cu.device_get = cuDeviceGet;
    cu.device_get_attribute = cuDeviceGetAttribute;
    cu.ctx_create_v2 = cuCtxCreate_v2;
    cu.ctx_set_current = cuCtxSetCurrent;
    cu.ctx_synchronize = cuCtxSynchronize;
    cu.module_load_data = cuModuleLoadData;
    cu.module_get_function = cuModuleGetFunction;
    cu.mem_alloc = cuMemAlloc_v2;
    cu.mem_free = cuMemFree_v2;
    cu.memcpy_htod = cuMemcpyHtoD_v2;
    cu.memcpy_dtoh = cuMemcpyDtoH_v2;
    cu.memcpy_htod_async = cuMemcpyHtoDAsync_v2;
    cu.memcpy_dtoh_async = cuMemcpyDtoHAsync_v2;
    cu.launch_kernel = cuLaunchKernel;
    cu.stream_synchronize = cuStreamSynchronize;
    cu.stream_query = cuStreamQuery;
    print_double_calls = test_double_print_calls;
    return 0;
}
#else
static int resolve_linked(void)
{
    fprintf(stderr, "--resolve link needs a build with -DLINKED\n");
    return -1;
}
#endif

/* The functions by exported name (dlsym) and by cuGetProcAddress name. */
static const struct {
    void **slot;
    const char *exported;
    const char *proc;
} functions[] = {
    { (void **)&cu.init, "cuInit", "cuInit" },
    { (void **)&cu.device_get_count, "cuDeviceGetCount", "cuDeviceGetCount" },
    { (void **)&cu.device_get, "cuDeviceGet", "cuDeviceGet" },
    { (void **)&cu.device_get_attribute, "cuDeviceGetAttribute", "cuDeviceGetAttribute" },
    { (void **)&cu.ctx_create_v2, "cuCtxCreate_v2", "cuCtxCreate" },
    { (void **)&cu.ctx_set_current, "cuCtxSetCurrent", "cuCtxSetCurrent" },
    { (void **)&cu.ctx_synchronize, "cuCtxSynchronize", "cuCtxSynchronize" },
    { (void **)&cu.module_load_data, "cuModuleLoadData", "cuModuleLoadData" },
    { (void **)&cu.module_get_function, "cuModuleGetFunction", "cuModuleGetFunction" },
    { (void **)&cu.mem_alloc, "cuMemAlloc_v2", "cuMemAlloc" },
    { (void **)&cu.mem_free, "cuMemFree_v2", "cuMemFree" },
    { (void **)&cu.memcpy_htod, "cuMemcpyHtoD_v2", "cuMemcpyHtoD" },
    { (void **)&cu.memcpy_dtoh, "cuMemcpyDtoH_v2", "cuMemcpyDtoH" },
    { (void **)&cu.memcpy_htod_async, "cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync" },
    { (void **)&cu.memcpy_dtoh_async, "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoHAsync" },
    { (void **)&cu.launch_kernel, "cuLaunchKernel", "cuLaunchKernel" },
    { (void **)&cu.stream_synchronize, "cuStreamSynchronize", "cuStreamSynchronize" },
    { (void **)&cu.stream_query, "cuStreamQuery", "cuStreamQuery" },
};
#define FUNCTIONS (sizeof functions / sizeof functions[0])

static int resolve(const char *mode, int ptds, int version)
{
    if (strcmp(mode, "link") == 0) {
        return resolve_linked();
    }
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen libcuda.so.1: %s\n", dlerror());
        return -1;
    }
    *(void **)&print_double_calls = dlsym(lib, "test_double_print_calls");
    if (strcmp(mode, "dlsym") == 0) {
        for (size_t i = 0; i < FUNCTIONS; i++) {
            *functions[i].slot = dlsym(lib, functions[i].exported);
            if (*functions[i].slot == NULL) {
                fprintf(stderr, "dlsym %s: %s\n", functions[i].exported, dlerror());
                return -1;
            }
        }
        return 0;
    }
    int v2 = strcmp(mode, "proc") == 0;
    if (!v2 && strcmp(mode, "proc11") != 0) {
        fprintf(stderr, "unknown --resolve %s\n", mode);
        return -1;
    }
    CUresult (*get_proc_v2)(const char *, void **, int, cuuint64_t, int *) = NULL;
    CUresult (*get_proc_v1)(const char *, void **, int, cuuint64_t) = NULL;
    if (v2) {
        *(void **)&get_proc_v2 = dlsym(lib, "cuGetProcAddress_v2");
    } else {
        *(void **)&get_proc_v1 = dlsym(lib, "cuGetProcAddress");
    }
    if (get_proc_v2 == NULL && get_proc_v1 == NULL) {
        fprintf(stderr, "dlsym cuGetProcAddress: %s\n", dlerror());
        return -1;
    }
    cuuint64_t flags = ptds ? 2 /* CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM */ : 0;
    use_ctx_v3 = version >= 11040 && version < 12050;
    for (size_t i = 0; i < FUNCTIONS; i++) {
        void **slot = functions[i].slot == (void **)&cu.ctx_create_v2 && use_ctx_v3 ? (void **)&cu.ctx_create_v3
                                                                                     : functions[i].slot;
        int status = -1;
        CUresult r = v2 ? get_proc_v2(functions[i].proc, slot, version, flags, &status)
                        : get_proc_v1(functions[i].proc, slot, version, flags);
        if (r != 0 || *slot == NULL) {
            fprintf(stderr, "cuGetProcAddress(%s, %d): %d (status %d)\n", functions[i].proc, version, r, status);
            return -1;
        }
    }
    return 0;
}

static unsigned long printed;

static CUresult report(const char *fn, CUresult status, const char *extra)
{
    printf("CALL %lu %s %d%s%s\n", ++printed, fn, status, extra ? " " : "", extra ? extra : "");
    return status;
}

int main(int argc, char **argv)
{
    const char *mode = "link";
    int ptds = 0, version = 12000, devices[MAX_DEVICES] = { 0 }, ndevices = 1;
    unsigned long iterations = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--ptds") == 0) {
            ptds = 1;
        } else if (value != NULL && strcmp(arg, "--resolve") == 0) {
            mode = value, i++;
        } else if (value != NULL && strcmp(arg, "--version") == 0) {
            version = atoi(value), i++;
        } else if (value != NULL && strcmp(arg, "--iterations") == 0) {
            iterations = strtoul(value, NULL, 10), i++;
        } else if (value != NULL && strcmp(arg, "--devices") == 0) {
            ndevices = 0;
            char *copy = strdup(value);
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL && ndevices < MAX_DEVICES;
                 t = strtok_r(NULL, ",", &save)) {
                devices[ndevices++] = atoi(t);
            }
            free(copy);
            i++;
        } else {
            fprintf(stderr, "usage: driver_calls [--resolve link|dlsym|proc|proc11] [--ptds] [--version V] "
                            "[--devices LIST] [--iterations N]\n");
            return 2;
        }
    }
    if (ndevices == 0 || resolve(mode, ptds, version) != 0) {
        return ndevices == 0 ? 2 : 3;
    }

    char extra[48];
    int count = -1;
    report("cuInit", cu.init(0), NULL);
    CUresult status = cu.device_get_count(&count);
    snprintf(extra, sizeof extra, "count=%d", count);
    report("cuDeviceGetCount", status, extra);
    void *ctx[MAX_DEVICES] = { NULL };
    for (int d = 0; d < ndevices; d++) {
        int dev = -1, value = -1;
        snprintf(extra, sizeof extra, "dev=%d", devices[d]);
        report("cuDeviceGet", cu.device_get(&dev, devices[d]), extra);
        report("cuDeviceGetAttribute", cu.device_get_attribute(&value, 16, devices[d]), extra);
        if (use_ctx_v3) {
            report("cuCtxCreate_v3", cu.ctx_create_v3(&ctx[d], NULL, 0, 0, devices[d]), extra);
        } else {
            report("cuCtxCreate_v2", cu.ctx_create_v2(&ctx[d], 0, devices[d]), extra);
        }
    }
    static const char image[] = "test double module image";
    void *module = NULL, *function = NULL;
    report("cuModuleLoadData", cu.module_load_data(&module, image), NULL);
    report("cuModuleGetFunction", cu.module_get_function(&function, module, "kernel"), NULL);

    unsigned char out[BYTES], back[BYTES];
    for (unsigned long it = 0; it < iterations; it++) {
        for (int d = 0; d < ndevices; d++) {
            snprintf(extra, sizeof extra, "dev=%d", devices[d]);
            report("cuCtxSetCurrent", cu.ctx_set_current(ctx[d]), extra);
            CUdeviceptr dptr = 0;
            memset(out, (int)(it + d + 1), sizeof out);
            memset(back, 0, sizeof back);
            int ok = report("cuMemAlloc_v2", cu.mem_alloc(&dptr, BYTES), extra) == 0;
            ok &= report("cuMemcpyHtoD_v2", cu.memcpy_htod(dptr, out, BYTES), extra) == 0;
            report("cuLaunchKernel", cu.launch_kernel(function, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), extra);
            ok &= report("cuMemcpyDtoH_v2", cu.memcpy_dtoh(back, dptr, BYTES), extra) == 0;
            if (ok && memcmp(out, back, BYTES) != 0) {
                fprintf(stderr, "DATA_MISMATCH %lu\n", it);
            }
            report("cuMemcpyHtoDAsync_v2", cu.memcpy_htod_async(dptr, out, BYTES, NULL), extra);
            report("cuMemcpyDtoHAsync_v2", cu.memcpy_dtoh_async(back, dptr, BYTES, NULL), extra);
            report("cuStreamSynchronize", cu.stream_synchronize(NULL), extra);
            report("cuStreamQuery", cu.stream_query(NULL), extra);
            report("cuCtxSynchronize", cu.ctx_synchronize(), extra);
            if (dptr != 0) {
                report("cuMemFree_v2", cu.mem_free(dptr), extra);
            }
        }
    }
    if (print_double_calls != NULL) {
        print_double_calls();
    }
    return 0;
}
