/*
 * The per-thread state of a faultline shim, in initial-exec TLS.
 *
 * Stable Rust cannot choose a TLS model, and a Rust thread_local! in a shared object is general-dynamic: every
 * access calls __tls_get_addr. Initial-exec is one %fs-relative address computation, which is what an intercepted
 * call can afford (on x86-64 the Rust side computes it inline from this symbol; elsewhere it calls the accessor
 * below). The shim is preloaded, so its TLS block is part of the initial static TLS; a later dlopen of it draws on
 * glibc's small static-TLS surplus, which these few bytes fit.
 *
 * The block is zero-initialised (.tbss); the Rust side (shim-runtime/src/thread.rs) lays its ThreadState over it,
 * checks at compile time that it fits, and relies on all-zero being its "not registered yet" state.
 * Hidden: each shim library links its own copy, and two preloaded shims must never share one thread state.
 */
#include <stdint.h>

#define FAULTLINE_THREAD_STATE_BYTES 128

__attribute__((visibility("hidden"), tls_model("initial-exec")))
_Alignas(64) __thread uint8_t faultline_shim_thread_block[FAULTLINE_THREAD_STATE_BYTES];

__attribute__((visibility("hidden"))) void *faultline_shim_thread_state(void)
{
    return faultline_shim_thread_block;
}
