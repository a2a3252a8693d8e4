/*
 * fake_libucp.c - BENCHMARK TEST DOUBLE of libucp. Not UCX, not a test.
 *
 * Compiled as `libucp.so.0` so that call_loop links against it and the faultline shim (which never links libucp)
 * finds it as the "real" library: through dlsym(RTLD_NEXT), or by a loaded object whose file name starts with
 * `libucp.`. Each function returns at once, so what call_loop measures is the call itself (PLT + whatever the
 * preloaded shim adds in front of it), not UCX.
 *
 * Only the symbols call_loop uses are defined. Handles and the parameter struct are opaque pointers here: the
 * shim forwards them without looking inside.
 *
 * Build: cc -O2 -shared -fPIC -Wl,-soname,libucp.so.0 -o libucp.so.0 fake_libucp.c
 */
#include <stddef.h>
#include <stdint.h>

/* ucs_status_ptr_t ucp_put_nbx(ucp_ep_h, const void *, size_t, uint64_t, ucp_rkey_h, const ucp_request_param_t *):
 * NULL is UCS_OK ("completed in place"). */
void *ucp_put_nbx(void *ep, const void *buffer, size_t count, uint64_t remote_addr, void *rkey, const void *param)
{
    (void)ep;
    (void)buffer;
    (void)count;
    (void)remote_addr;
    (void)rkey;
    (void)param;
    return NULL;
}

/* ucs_status_t ucp_request_check_status(void *request): UCS_OK. */
int ucp_request_check_status(void *request)
{
    (void)request;
    return 0;
}

/* unsigned ucp_worker_progress(ucp_worker_h worker): nothing to progress. */
unsigned ucp_worker_progress(void *worker)
{
    (void)worker;
    return 0;
}
