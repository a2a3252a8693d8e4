//! The one place atomics come from, so the lock-free protocols (seqlock, ring) can be model-checked with loom
//! (`RUSTFLAGS="--cfg loom"`). Everything that lives in shared memory uses these types.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// A hint inside bounded retry loops; loom needs to be told to schedule another thread.
#[inline]
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
