//! The shim's `dlsym`: lookups in a libcuda / libcudart *handle* get the hook's slot wrapper.
//!
//! The CUDA runtime reaches the driver with `dlopen("libcuda.so.1")` + `dlsym(handle, "cuGetProcAddress_v2")`,
//! and `ctypes` (vLLM's CUDA wrapper, …) calls libcudart through `dlsym(handle, "cudaMalloc")`: symbol
//! interposition never sees either, because a handle lookup only searches that library's own dependency tree.
//! So the shim exports `dlsym` itself:
//!
//! - `dlsym(RTLD_NEXT | RTLD_DEFAULT, …)` depends on the *caller's* object, so those are forwarded by an
//!   assembly trampoline that jumps (not calls) to the real `dlsym`: glibc still sees the original return
//!   address. Nothing else runs on that path.
//! - `dlsym(handle, name)` (the caller does not matter there) runs the real lookup, then, if `name` is a hook
//!   and the result lies in the library of that hook, returns the slot wrapper instead
//!   ([`crate::proc_address::after_dlsym`]). Lookups made by the shim itself are never wrapped.
//!
//! The real `dlsym` comes from `dlvsym(RTLD_NEXT, "dlsym", <glibc version>)`, resolved by the constructor (or by
//! the first call, if someone looks something up before the constructor ran). x86-64 and AArch64 only; on other
//! architectures the shim exports no `dlsym` and handle lookups are not intercepted.

use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

#[cfg_attr(test, allow(dead_code))] // the exported dlsym is left out of unit tests
type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

/// The real `dlsym` (null until resolved). Read by the trampoline with a plain load.
static REAL_DLSYM: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// glibc versions `dlsym` has been published under (libc ≥ 2.34; libdl on x86-64; libdl on AArch64).
const VERSIONS: [&CStr; 3] = [c"GLIBC_2.34", c"GLIBC_2.2.5", c"GLIBC_2.17"];

/// Resolves the real `dlsym` (idempotent; the constructor calls it). Returns it, or null if none was found.
#[cold]
pub extern "C" fn resolve() -> *mut c_void {
    let cached = REAL_DLSYM.load(Relaxed);
    if !cached.is_null() {
        return cached;
    }
    let mut found = std::ptr::null_mut();
    for version in VERSIONS {
        // SAFETY: RTLD_NEXT from this library with NUL-terminated strings; dlvsym returns null if absent.
        found = unsafe { libc::dlvsym(libc::RTLD_NEXT, c"dlsym".as_ptr(), version.as_ptr()) };
        if !found.is_null() {
            break;
        }
    }
    if found.is_null() {
        shim_runtime::log!("the real dlsym cannot be found; lookups in library handles fail");
    } else {
        REAL_DLSYM.store(found, Relaxed);
    }
    found
}

/// `dlsym(handle, symbol)` for a real handle, from `caller` (a return address).
///
/// # Safety
/// The arguments are the application's `dlsym` arguments.
#[cfg_attr(test, allow(dead_code))] // the exported dlsym is left out of unit tests
unsafe extern "C" fn handle_lookup(handle: *mut c_void, symbol: *const c_char, caller: *const c_void) -> *mut c_void {
    let real = resolve();
    if real.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `real` is glibc's dlsym (not null), whose C signature `DlsymFn` mirrors; the arguments are the
    // caller's, unchanged.
    let found = unsafe { shim_runtime::fn_at::<DlsymFn>(real)(handle, symbol) };
    if found.is_null() || symbol.is_null() {
        return found;
    }
    // SAFETY: dlsym just accepted `symbol` as a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(symbol) };
    // Cheapest test first: most lookups in a process (Python extension modules, plugins) are not hooks.
    if crate::proc_address::hook_named(name.to_bytes()).is_none() || crate::proc_address::in_this_library(caller) {
        return found;
    }
    crate::proc_address::after_dlsym(name, found)
}

/// Intercepts `dlsym`.
///
/// # Safety
/// The caller upholds `dlsym`'s contract.
#[cfg(all(not(test), target_arch = "x86_64"))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void {
    // RTLD_NEXT is (void *)-1, RTLD_DEFAULT is 0: jump to the real dlsym with the caller's frame untouched.
    // Otherwise jump to `handle_lookup` with the return address as third argument. If the real dlsym is not
    // resolved yet, resolve it (arguments saved, stack aligned to 16 for the call) and jump.
    core::arch::naked_asm!(
        "cmp rdi, -1",
        "je 2f",
        "test rdi, rdi",
        "je 2f",
        "mov rdx, [rsp]",
        "jmp {handle_lookup}",
        "2:",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "je 3f",
        "jmp rax",
        "3:",
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {resolve}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "test rax, rax",
        "je 4f",
        "jmp rax",
        "4:",
        "ret",
        handle_lookup = sym handle_lookup,
        real = sym REAL_DLSYM,
        resolve = sym resolve,
    )
}

/// Intercepts `dlsym`.
///
/// # Safety
/// The caller upholds `dlsym`'s contract.
#[cfg(all(not(test), target_arch = "aarch64"))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void {
    // As on x86-64; the return address is in x30 (lr), passed on in x2.
    core::arch::naked_asm!(
        "cmn x0, #1",
        "b.eq 2f",
        "cbz x0, 2f",
        "mov x2, x30",
        "b {handle_lookup}",
        "2:",
        "adrp x16, {real}",
        "ldr x16, [x16, :lo12:{real}]",
        "cbz x16, 3f",
        "br x16",
        "3:",
        "stp x29, x30, [sp, #-32]!",
        "mov x29, sp",
        "stp x0, x1, [sp, #16]",
        "bl {resolve}",
        "mov x16, x0",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "cbz x16, 4f",
        "br x16",
        "4:",
        "mov x0, #0",
        "ret",
        handle_lookup = sym handle_lookup,
        real = sym REAL_DLSYM,
        resolve = sym resolve,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_real_dlsym_is_found() {
        assert!(!super::resolve().is_null());
    }
}
