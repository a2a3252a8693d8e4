/*
 * test_double_libcuda.c - a TEST DOUBLE of the CUDA driver library, NOT the
 * NVIDIA driver.  The shim-cuda integration tests build it as
 * "libcuda.so.1" in a private directory, because no GPU driver is installed
 * on the test machines.
 *
 * It implements the driver entry points the faultline CUDA shim intercepts
 * (plus the few it needs to look like a driver: cuDriverGetVersion,
 * cuCtxGetDevice, cuCtxGetCurrent, per-thread-stream variants), answers
 * CUDA_SUCCESS, and counts every call per entry point, so a test can tell
 * whether a call reached the "driver" or was answered by the shim.
 *
 *   - 2 devices (ordinals 0 and 1); CUdevice == ordinal.
 *   - Contexts are heap objects that remember their device; each thread has
 *     a context stack (cuCtxCreate pushes, cuCtxSetCurrent replaces the top).
 *   - "Device memory" is host memory, so memcpys move real bytes.
 *   - cuGetProcAddress / cuGetProcAddress_v2 resolve like the real driver:
 *     the newest ABI version of the symbol that is <= the requested CUDA
 *     version (cuMemAlloc at 12000 -> cuMemAlloc_v2, at 2000 -> cuMemAlloc;
 *     cuCtxCreate at 12000 -> cuCtxCreate_v3), and the per-thread-stream
 *     variant (cuLaunchKernel_ptsz, ...) with
 *     CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
 *
 * TEST_DOUBLE_TRACE=1 in the environment prints every cuGetProcAddress
 * request on stderr.
 *
 * Introspection for tests (not CUDA API):
 *   int  test_double_calls(const char *name)  calls of entry point `name`
 *                                              (-1 if the double has none)
 *   void test_double_print_calls(void)        "DOUBLE <name> <calls>" lines
 *                                              on stdout, nonzero ones only
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef unsigned int CUdeviceptr_v1;
typedef void *CUstream;
typedef void *CUfunction;
typedef void *CUmodule;
typedef unsigned long long cuuint64_t;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_NOT_FOUND 500
#define DEVICES 2

#define EXPORT __attribute__((visibility("default")))

typedef struct {
    int device;
} context;

/* ---- call counting ---------------------------------------------------- */

#define ENTRY_POINTS(X) \
    X(cuInit) X(cuDriverGetVersion) X(cuDeviceGet) X(cuDeviceGetCount) \
    X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuCtxCreate) \
    X(cuCtxCreate_v2) X(cuCtxCreate_v3) X(cuCtxCreate_v4) X(cuCtxSetCurrent) \
    X(cuCtxGetCurrent) X(cuCtxPushCurrent_v2) X(cuCtxPopCurrent_v2) \
    X(cuCtxGetDevice) X(cuCtxSynchronize) X(cuMemAlloc) X(cuMemAlloc_v2) \
    X(cuMemFree) X(cuMemFree_v2) X(cuMemcpy) X(cuMemcpyAsync) \
    X(cuMemcpyAsync_ptsz) X(cuMemcpyHtoD) X(cuMemcpyHtoD_v2) \
    X(cuMemcpyDtoH) X(cuMemcpyDtoH_v2) X(cuMemcpyDtoD) X(cuMemcpyDtoD_v2) \
    X(cuMemcpyHtoDAsync) X(cuMemcpyHtoDAsync_v2) X(cuMemcpyDtoHAsync) \
    X(cuMemcpyDtoHAsync_v2) X(cuMemcpyDtoDAsync) X(cuMemcpyDtoDAsync_v2) \
    X(cuLaunchKernel) X(cuLaunchKernel_ptsz) X(cuStreamSynchronize) \
    X(cuStreamSynchronize_ptsz) X(cuStreamQuery) X(cuStreamQuery_ptsz) \
    X(cuEventSynchronize) X(cuEventQuery) X(cuModuleLoad) X(cuModuleLoadData) \
    X(cuModuleLoadDataEx) X(cuModuleLoadFatBinary) X(cuModuleGetFunction) \
    X(cuGetProcAddress) X(cuGetProcAddress_v2)

#define AS_ENUM(name) E_##name,
#define AS_NAME(name) #name,
enum { ENTRY_POINTS(AS_ENUM) ENTRY_COUNT };
static const char *const entry_names[] = { ENTRY_POINTS(AS_NAME) };
static atomic_long calls[ENTRY_COUNT];

#define COUNT(name) atomic_fetch_add(&calls[E_##name], 1)

EXPORT int test_double_calls(const char *name)
{
    for (int i = 0; i < ENTRY_COUNT; i++) {
        if (strcmp(entry_names[i], name) == 0) {
            return (int)atomic_load(&calls[i]);
        }
    }
    return -1;
}

EXPORT void test_double_print_calls(void)
{
    for (int i = 0; i < ENTRY_COUNT; i++) {
        long n = atomic_load(&calls[i]);
        if (n != 0) {
            printf("DOUBLE %s %ld\n", entry_names[i], n);
        }
    }
    fflush(stdout);
}

/* ---- contexts --------------------------------------------------------- */

#define STACK 16
static __thread context *ctx_stack[STACK];
static __thread int ctx_depth;

static context *current(void)
{
    return ctx_depth > 0 ? ctx_stack[ctx_depth - 1] : NULL;
}

static CUresult new_context(context **pctx, CUdevice dev)
{
    if (pctx == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (dev < 0 || dev >= DEVICES) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    context *ctx = malloc(sizeof *ctx);
    if (ctx == NULL) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    ctx->device = dev;
    if (ctx_depth < STACK) {
        ctx_stack[ctx_depth++] = ctx;
    }
    *pctx = ctx;
    return CUDA_SUCCESS;
}

/* ---- initialisation, devices, contexts ---------------------------------- */

EXPORT CUresult cuInit(unsigned int flags)
{
    (void)flags;
    COUNT(cuInit);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *version)
{
    COUNT(cuDriverGetVersion);
    if (version == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *version = 12090;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    COUNT(cuDeviceGet);
    if (device == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (ordinal < 0 || ordinal >= DEVICES) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *device = ordinal;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count)
{
    COUNT(cuDeviceGetCount);
    if (count == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = DEVICES;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice dev)
{
    COUNT(cuDeviceGetAttribute);
    if (value == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (dev < 0 || dev >= DEVICES) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *value = 1000 + attribute;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(context **pctx, CUdevice dev)
{
    static context primary[DEVICES] = { { 0 }, { 1 } };
    COUNT(cuDevicePrimaryCtxRetain);
    if (pctx == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (dev < 0 || dev >= DEVICES) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *pctx = &primary[dev];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate(context **pctx, unsigned int flags, CUdevice dev)
{
    (void)flags;
    COUNT(cuCtxCreate);
    return new_context(pctx, dev);
}

EXPORT CUresult cuCtxCreate_v2(context **pctx, unsigned int flags, CUdevice dev)
{
    (void)flags;
    COUNT(cuCtxCreate_v2);
    return new_context(pctx, dev);
}

EXPORT CUresult cuCtxCreate_v3(context **pctx, void *params, int num_params, unsigned int flags, CUdevice dev)
{
    (void)params;
    (void)num_params;
    (void)flags;
    COUNT(cuCtxCreate_v3);
    return new_context(pctx, dev);
}

EXPORT CUresult cuCtxCreate_v4(context **pctx, void *params, unsigned int flags, CUdevice dev)
{
    (void)params;
    (void)flags;
    COUNT(cuCtxCreate_v4);
    return new_context(pctx, dev);
}

EXPORT CUresult cuCtxSetCurrent(context *ctx)
{
    COUNT(cuCtxSetCurrent);
    if (ctx == NULL) {
        if (ctx_depth > 0) {
            ctx_depth--;
        }
        return CUDA_SUCCESS;
    }
    if (ctx_depth == 0) {
        ctx_depth = 1;
    }
    ctx_stack[ctx_depth - 1] = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(context **pctx)
{
    COUNT(cuCtxGetCurrent);
    if (pctx == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pctx = current();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPushCurrent_v2(context *ctx)
{
    COUNT(cuCtxPushCurrent_v2);
    if (ctx == NULL || ctx_depth >= STACK) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    ctx_stack[ctx_depth++] = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPopCurrent_v2(context **pctx)
{
    COUNT(cuCtxPopCurrent_v2);
    if (ctx_depth == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    context *top = ctx_stack[--ctx_depth];
    if (pctx != NULL) {
        *pctx = top;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
    COUNT(cuCtxGetDevice);
    if (device == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (current() == NULL) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    *device = current()->device;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize(void)
{
    COUNT(cuCtxSynchronize);
    return CUDA_SUCCESS;
}

/* ---- memory ------------------------------------------------------------- */

static CUresult alloc(CUdeviceptr *dptr, size_t bytes)
{
    if (dptr == NULL || bytes == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    void *p = calloc(1, bytes);
    if (p == NULL) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *dptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

static CUresult copy(CUdeviceptr dst, const void *src, size_t bytes)
{
    if (dst == 0 || src == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove((void *)(uintptr_t)dst, src, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytes)
{
    COUNT(cuMemAlloc);
    (void)bytes;
    /* A 32-bit "device pointer" cannot hold a host address: hand out a token. */
    if (dptr == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dptr = 0x1000;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    COUNT(cuMemAlloc_v2);
    return alloc(dptr, bytes);
}

EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    (void)dptr;
    COUNT(cuMemFree);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    COUNT(cuMemFree_v2);
    free((void *)(uintptr_t)dptr);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
    COUNT(cuMemcpy);
    return copy(dst, (const void *)(uintptr_t)src, bytes);
}

EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    (void)stream;
    COUNT(cuMemcpyAsync);
    return copy(dst, (const void *)(uintptr_t)src, bytes);
}

EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    (void)stream;
    COUNT(cuMemcpyAsync_ptsz);
    return copy(dst, (const void *)(uintptr_t)src, bytes);
}

EXPORT CUresult cuMemcpyHtoD(CUdeviceptr_v1 dst, const void *src, unsigned int bytes)
{
    (void)dst;
    (void)src;
    (void)bytes;
    COUNT(cuMemcpyHtoD);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes)
{
    COUNT(cuMemcpyHtoD_v2);
    return copy(dst, src, bytes);
}

EXPORT CUresult cuMemcpyDtoH(void *dst, CUdeviceptr_v1 src, unsigned int bytes)
{
    (void)dst;
    (void)src;
    (void)bytes;
    COUNT(cuMemcpyDtoH);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes)
{
    COUNT(cuMemcpyDtoH_v2);
    if (dst == NULL || src == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove(dst, (const void *)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoD(CUdeviceptr_v1 dst, CUdeviceptr_v1 src, unsigned int bytes)
{
    (void)dst;
    (void)src;
    (void)bytes;
    COUNT(cuMemcpyDtoD);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
    COUNT(cuMemcpyDtoD_v2);
    return copy(dst, (const void *)(uintptr_t)src, bytes);
}

EXPORT CUresult cuMemcpyHtoDAsync(CUdeviceptr_v1 dst, const void *src, unsigned int bytes, CUstream stream)
{
    (void)dst;
    (void)src;
    (void)bytes;
    (void)stream;
    COUNT(cuMemcpyHtoDAsync);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream)
{
    (void)stream;
    COUNT(cuMemcpyHtoDAsync_v2);
    return copy(dst, src, bytes);
}

EXPORT CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr_v1 src, unsigned int bytes, CUstream stream)
{
    (void)dst;
    (void)src;
    (void)bytes;
    (void)stream;
    COUNT(cuMemcpyDtoHAsync);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    (void)stream;
    COUNT(cuMemcpyDtoHAsync_v2);
    if (dst == NULL || src == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove(dst, (const void *)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoDAsync(CUdeviceptr_v1 dst, CUdeviceptr_v1 src, unsigned int bytes, CUstream stream)
{
    (void)dst;
    (void)src;
    (void)bytes;
    (void)stream;
    COUNT(cuMemcpyDtoDAsync);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    (void)stream;
    COUNT(cuMemcpyDtoDAsync_v2);
    return copy(dst, (const void *)(uintptr_t)src, bytes);
}

/* ---- modules, launches, streams ---------------------------------------- */

static int module_token;
static int function_token;

EXPORT CUresult cuModuleLoad(CUmodule *module, const char *path)
{
    COUNT(cuModuleLoad);
    if (module == NULL || path == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *module = &module_token;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    COUNT(cuModuleLoadData);
    if (module == NULL || image == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *module = &module_token;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int n, int *options, void **values)
{
    (void)n;
    (void)options;
    (void)values;
    COUNT(cuModuleLoadDataEx);
    if (module == NULL || image == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *module = &module_token;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatbin)
{
    COUNT(cuModuleLoadFatBinary);
    if (module == NULL || fatbin == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *module = &module_token;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleGetFunction(CUfunction *function, CUmodule module, const char *name)
{
    COUNT(cuModuleGetFunction);
    if (function == NULL || module != &module_token || name == NULL) {
        return function == NULL || name == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_FOUND;
    }
    *function = &function_token;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int shared, CUstream stream, void **params,
                               void **extra)
{
    (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shared, (void)stream, (void)params,
        (void)extra;
    COUNT(cuLaunchKernel);
    return f == &function_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                    unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                                    CUstream stream, void **params, void **extra)
{
    (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shared, (void)stream, (void)params,
        (void)extra;
    COUNT(cuLaunchKernel_ptsz);
    return f == &function_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuStreamSynchronize(CUstream stream)
{
    (void)stream;
    COUNT(cuStreamSynchronize);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamSynchronize_ptsz(CUstream stream)
{
    (void)stream;
    COUNT(cuStreamSynchronize_ptsz);
    return CUDA_SUCCESS;
}

/* All work is done by the time a call returns: every stream and event is complete. */
EXPORT CUresult cuStreamQuery(CUstream stream)
{
    (void)stream;
    COUNT(cuStreamQuery);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamQuery_ptsz(CUstream stream)
{
    (void)stream;
    COUNT(cuStreamQuery_ptsz);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventSynchronize(void *event)
{
    (void)event;
    COUNT(cuEventSynchronize);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventQuery(void *event)
{
    (void)event;
    COUNT(cuEventQuery);
    return CUDA_SUCCESS;
}

/* ---- cuGetProcAddress ------------------------------------------------- */

#define CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM 2
#define CU_GET_PROC_ADDRESS_SUCCESS 0
#define CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND 1
#define CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT 2

typedef struct {
    const char *name;   /* the name asked for, without version suffix */
    int version;        /* the CUDA version that introduced this ABI */
    void *fn;
    void *ptsz;         /* per-thread-default-stream variant, if any */
} proc_entry;

#define FN(f) ((void *)(f))

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags);
EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status);

static const proc_entry proc_table[] = {
    { "cuInit", 2000, FN(cuInit), NULL },
    { "cuDriverGetVersion", 2020, FN(cuDriverGetVersion), NULL },
    { "cuDeviceGet", 2000, FN(cuDeviceGet), NULL },
    { "cuDeviceGetCount", 2000, FN(cuDeviceGetCount), NULL },
    { "cuDeviceGetAttribute", 2000, FN(cuDeviceGetAttribute), NULL },
    { "cuDevicePrimaryCtxRetain", 7000, FN(cuDevicePrimaryCtxRetain), NULL },
    { "cuCtxCreate", 2000, FN(cuCtxCreate), NULL },
    { "cuCtxCreate", 3020, FN(cuCtxCreate_v2), NULL },
    { "cuCtxCreate", 11040, FN(cuCtxCreate_v3), NULL },
    { "cuCtxCreate", 12050, FN(cuCtxCreate_v4), NULL },
    { "cuCtxSetCurrent", 4000, FN(cuCtxSetCurrent), NULL },
    { "cuCtxGetCurrent", 4000, FN(cuCtxGetCurrent), NULL },
    { "cuCtxPushCurrent", 4000, FN(cuCtxPushCurrent_v2), NULL },
    { "cuCtxPopCurrent", 4000, FN(cuCtxPopCurrent_v2), NULL },
    { "cuCtxGetDevice", 2000, FN(cuCtxGetDevice), NULL },
    { "cuCtxSynchronize", 2000, FN(cuCtxSynchronize), NULL },
    { "cuMemAlloc", 2000, FN(cuMemAlloc), NULL },
    { "cuMemAlloc", 3020, FN(cuMemAlloc_v2), NULL },
    { "cuMemFree", 2000, FN(cuMemFree), NULL },
    { "cuMemFree", 3020, FN(cuMemFree_v2), NULL },
    { "cuMemcpy", 4000, FN(cuMemcpy), NULL },
    { "cuMemcpyAsync", 4000, FN(cuMemcpyAsync), FN(cuMemcpyAsync_ptsz) },
    { "cuMemcpyHtoD", 2000, FN(cuMemcpyHtoD), NULL },
    { "cuMemcpyHtoD", 3020, FN(cuMemcpyHtoD_v2), NULL },
    { "cuMemcpyDtoH", 2000, FN(cuMemcpyDtoH), NULL },
    { "cuMemcpyDtoH", 3020, FN(cuMemcpyDtoH_v2), NULL },
    { "cuMemcpyDtoD", 2000, FN(cuMemcpyDtoD), NULL },
    { "cuMemcpyDtoD", 3020, FN(cuMemcpyDtoD_v2), NULL },
    { "cuMemcpyHtoDAsync", 2000, FN(cuMemcpyHtoDAsync), NULL },
    { "cuMemcpyHtoDAsync", 3020, FN(cuMemcpyHtoDAsync_v2), NULL },
    { "cuMemcpyDtoHAsync", 2000, FN(cuMemcpyDtoHAsync), NULL },
    { "cuMemcpyDtoHAsync", 3020, FN(cuMemcpyDtoHAsync_v2), NULL },
    { "cuMemcpyDtoDAsync", 3000, FN(cuMemcpyDtoDAsync), NULL },
    { "cuMemcpyDtoDAsync", 3020, FN(cuMemcpyDtoDAsync_v2), NULL },
    { "cuLaunchKernel", 4000, FN(cuLaunchKernel), FN(cuLaunchKernel_ptsz) },
    { "cuStreamSynchronize", 2000, FN(cuStreamSynchronize), FN(cuStreamSynchronize_ptsz) },
    { "cuStreamQuery", 2000, FN(cuStreamQuery), FN(cuStreamQuery_ptsz) },
    { "cuEventSynchronize", 2000, FN(cuEventSynchronize), NULL },
    { "cuEventQuery", 2000, FN(cuEventQuery), NULL },
    { "cuModuleLoad", 2000, FN(cuModuleLoad), NULL },
    { "cuModuleLoadData", 2000, FN(cuModuleLoadData), NULL },
    { "cuModuleLoadDataEx", 2010, FN(cuModuleLoadDataEx), NULL },
    { "cuModuleLoadFatBinary", 2000, FN(cuModuleLoadFatBinary), NULL },
    { "cuModuleGetFunction", 2000, FN(cuModuleGetFunction), NULL },
    { "cuGetProcAddress", 11030, FN(cuGetProcAddress), NULL },
    { "cuGetProcAddress", 12000, FN(cuGetProcAddress_v2), NULL },
};

static CUresult lookup(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status)
{
    const proc_entry *best = NULL;
    int known = 0;
    if (symbol == NULL || pfn == NULL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (getenv("TEST_DOUBLE_TRACE") != NULL) {
        fprintf(stderr, "test double: cuGetProcAddress(%s, %d, %llu)\n", symbol, version, flags);
    }
    *pfn = NULL;
    for (size_t i = 0; i < sizeof proc_table / sizeof proc_table[0]; i++) {
        const proc_entry *e = &proc_table[i];
        if (strcmp(e->name, symbol) != 0) {
            continue;
        }
        known = 1;
        if (e->version <= version && (best == NULL || e->version > best->version)) {
            best = e;
        }
    }
    if (best == NULL) {
        if (status != NULL) {
            *status = known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        }
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best->ptsz != NULL ? best->ptsz : best->fn;
    if (status != NULL) {
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    COUNT(cuGetProcAddress);
    return lookup(symbol, pfn, version, flags, NULL);
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status)
{
    COUNT(cuGetProcAddress_v2);
    return lookup(symbol, pfn, version, flags, status);
}
