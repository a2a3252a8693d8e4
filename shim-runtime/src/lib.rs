//! What both preloaded shims share, so each shim is only its table of thin exported hooks:
//!
//! - [`Runtime`]: the load-time state machine that creates the process's segment from `FAULTLINE_*`, re-creates it
//!   in a forked child, and answers [`Runtime::enter`] for every intercepted call;
//! - [`RealFn`]: lookup of the real function (`dlsym(RTLD_NEXT)`, then any loaded copy of the library found with
//!   `dl_iterate_phdr`, such as the renamed `libucp-<hash>.so` that Python wheels load `RTLD_LOCAL`), and
//!   [`fn_at`], the one place a resolved address becomes a typed function pointer;
//! - [`CallGuard`]: the per-thread reentrancy guard (only the outermost intercepted call can be faulted);
//! - [`log`]: rate-limited stderr lines written without allocating.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod log;
mod macros;
mod real;
mod runtime;
mod thread;

pub use real::{fn_at, RealFn};
pub use runtime::{CallGuard, Entered, Fast, Runtime, ShimSpec};
pub use shm_proto::{Decision, Kind};

/// A `&CStr` from a NUL-terminated literal, checked at compile time.
pub const fn cstr(bytes: &'static [u8]) -> &'static std::ffi::CStr {
    match std::ffi::CStr::from_bytes_with_nul(bytes) {
        Ok(name) => name,
        Err(_) => panic!("hook names are NUL-terminated literals"),
    }
}

/// Sleeps `us` microseconds (the delay action; the one system call the hot path may make).
pub fn sleep_us(us: u32) {
    let ts =
        libc::timespec { tv_sec: (us / 1_000_000) as libc::time_t, tv_nsec: (us % 1_000_000) as libc::c_long * 1000 };
    // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}
