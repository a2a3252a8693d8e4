//! The calling thread's state, found with one initial-exec TLS access (the block lives in `c/thread_state.c`).

use std::cell::{Cell, UnsafeCell};

use shm_proto::{Segment, ThreadCtx};

/// Bytes of the C block this state is laid over (`FAULTLINE_THREAD_STATE_BYTES`).
const BLOCK_BYTES: usize = 128;
/// Its alignment (`_Alignas(64)`).
const BLOCK_ALIGN: usize = 64;

/// Per-thread state, mutated in place. All-zero (how every thread's block starts) means "not registered yet":
/// a null `segment` never matches the runtime's. The in-call flag, the segment and the context's hot part share the
/// block's first cache line.
#[repr(C)]
pub(crate) struct ThreadState {
    /// Set while an intercepted call of this thread is inside the real function (or deciding).
    pub(crate) in_call: Cell<bool>,
    /// The segment `ctx` is registered with (null: none yet; a forked child's new segment differs).
    pub(crate) segment: Cell<*const Segment>,
    /// Only meaningful once `segment` matches.
    pub(crate) ctx: UnsafeCell<ThreadCtx>,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ThreadState>() <= BLOCK_BYTES, "grow FAULTLINE_THREAD_STATE_BYTES in thread_state.c");
    assert!(align_of::<ThreadState>() <= BLOCK_ALIGN);
    assert!(offset_of!(ThreadState, ctx) + ThreadCtx::HOT_BYTES <= 64, "the fast path's fields in one line");
};

extern "C" {
    /// This thread's zero-initialised block of `BLOCK_BYTES` bytes, aligned to `BLOCK_ALIGN`.
    #[cfg(not(target_arch = "x86_64"))]
    fn faultline_shim_thread_state() -> *mut u8;
    /// The TLS symbol itself; only ever named in `asm!` (a TLS relocation), never accessed as a plain static.
    #[cfg(target_arch = "x86_64")]
    static faultline_shim_thread_block: [u8; BLOCK_BYTES];
}

/// This thread's block: the thread pointer plus the block's initial-exec offset, inline.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block() -> *mut u8 {
    let block: *mut u8;
    // SAFETY: reads the block's TP offset from the GOT (an R_X86_64_TPOFF64 entry the linker makes for
    // @GOTTPOFF) and adds the thread pointer stored at %fs:0, the x86-64 TLS ABI's initial-exec sequence. Reads
    // only; the result is the same on every call of a thread.
    unsafe {
        std::arch::asm!(
            "mov {block}, qword ptr [rip + {tls}@GOTTPOFF]",
            "add {block}, qword ptr fs:[0]",
            block = out(reg) block,
            tls = sym faultline_shim_thread_block,
            options(pure, readonly, nostack),
        );
    }
    block
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn block() -> *mut u8 {
    // SAFETY: the C accessor only computes this thread's TLS address.
    unsafe { faultline_shim_thread_state() }
}

impl ThreadState {
    /// The calling thread's state. Valid for the thread's whole life (no destructor runs on it: it needs none).
    #[inline(always)]
    pub(crate) fn current() -> &'static ThreadState {
        // SAFETY: the block is large and aligned enough (asserted above), starts zeroed, and ThreadState is
        // repr(C) of cells over a bool, a raw pointer and ThreadCtx (plain integers and flags), for all of which
        // all-zero is a valid value. Only this thread ever gets this address, and ThreadState is not Sync, so the
        // reference never leaves the thread; the block lives as long as the thread.
        unsafe { &*block().cast::<ThreadState>() }
    }
}
