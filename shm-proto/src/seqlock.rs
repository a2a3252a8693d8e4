//! Consistent publication of multi-word state by one writer at a time.
//!
//! Readers (the shims' hot path) never block: they retry a bounded number of times and otherwise give up, which the
//! shims treat as "pass the call through". Writers (the CLI, the dashboard) take a writer lock that names their pid,
//! so a writer that dies holding it can be detected and replaced instead of wedging the segment forever.

use crate::sync::{fence, spin_hint, AtomicU64, Ordering};

/// How many times a non-blocking reader retries before it gives up.
pub const READ_TRIES: u32 = 64;

/// A sequence counter plus a writer lock. `#[repr(C)]` because it lives in the shared segment.
#[repr(C)]
pub struct SeqLock {
    /// Even: stable. Odd: a write is in progress (or its writer died mid-write).
    seq: AtomicU64,
    /// 0 when free, otherwise `pid << 32 | nonce` of the holder.
    writer: AtomicU64,
}

/// Why a write could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockError {
    /// Another live process holds the writer lock.
    Busy {
        /// The holder's pid.
        holder_pid: u32,
    },
}

impl SeqLock {
    /// A fresh, unlocked, stable seqlock (for heap copies and tests; the segment is zero-initialised instead).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self { seq: AtomicU64::new(0), writer: AtomicU64::new(0) }
    }

    /// A fresh seqlock under loom (loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self { seq: AtomicU64::new(0), writer: AtomicU64::new(0) }
    }

    /// The current sequence number (even when stable); changes on every completed write.
    pub fn sequence(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Runs `read` until it observed a stable, unchanged sequence, at most `tries` times.
    ///
    /// `read` may run several times and must only load (relaxed) from the protected state; its result is
    /// discarded unless the sequence was even and unchanged around it.
    #[inline]
    pub fn try_read<R>(&self, tries: u32, mut read: impl FnMut() -> R) -> Option<R> {
        for _ in 0..tries {
            let begin = self.read_begin();
            let value = read();
            if self.read_valid(begin) {
                return Some(value);
            }
            spin_hint();
        }
        None
    }

    /// Starts one optimistic read: the sequence to hand to [`SeqLock::read_valid`] after loading (relaxed) from
    /// the protected state. For hot paths that inline a single attempt; everything else uses `try_read`.
    #[inline(always)]
    pub fn read_begin(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Whether what was loaded since `read_begin` returned `begin` is a consistent snapshot.
    #[inline(always)]
    pub fn read_valid(&self, begin: u64) -> bool {
        fence(Ordering::Acquire);
        begin & 1 == 0 && self.seq.load(Ordering::Relaxed) == begin
    }

    /// Takes the writer lock as `pid`. A holder for which `is_dead(held)` is true is replaced (`held` is its lock
    /// word: its pid in the high 32 bits).
    pub fn try_lock(&self, pid: u32, nonce: u32, is_dead: impl Fn(u64) -> bool) -> Result<WriteGuard<'_>, LockError> {
        let mine = (u64::from(pid) << 32) | u64::from(nonce.max(1));
        let mut current = 0;
        loop {
            match self.writer.compare_exchange(current, mine, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(0) => current = 0,
                Err(held) => {
                    let holder_pid = (held >> 32) as u32;
                    if holder_pid != pid && !is_dead(held) {
                        return Err(LockError::Busy { holder_pid });
                    }
                    // The holder died (or is an earlier incarnation of ourselves): take over from it.
                    current = held;
                }
            }
        }
        // An odd sequence means the previous writer died mid-write: readers already treat the state as unstable,
        // so continue that write rather than opening a new one.
        let seq = self.seq.load(Ordering::Relaxed);
        let interrupted = seq & 1 == 1;
        let odd = if interrupted { seq } else { seq + 1 };
        self.seq.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(WriteGuard { lock: self, odd, mine, interrupted })
    }

    /// The writer-lock word now (0: free; else the holder's `pid << 32 | nonce`).
    pub fn holder(&self) -> u64 {
        self.writer.load(Ordering::Acquire)
    }
}

#[cfg(not(loom))]
impl Default for SeqLock {
    fn default() -> Self {
        Self::new()
    }
}

/// While alive, the protected state may be written (relaxed stores); dropping it publishes the write.
pub struct WriteGuard<'a> {
    lock: &'a SeqLock,
    odd: u64,
    mine: u64,
    interrupted: bool,
}

impl WriteGuard<'_> {
    /// The odd sequence of this write; the state before it had `sequence() - 1`.
    pub fn sequence(&self) -> u64 {
        self.odd
    }

    /// Our lock word.
    pub fn word(&self) -> u64 {
        self.mine
    }

    /// Whether this write continues one whose writer died mid-write (the sequence was already odd).
    pub fn continues_interrupted_write(&self) -> bool {
        self.interrupted
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.lock.seq.store(self.odd + 1, Ordering::Release);
        // Only release the lock if nobody declared us dead and took it over meanwhile.
        let _ = self.lock.writer.compare_exchange(self.mine, 0, Ordering::Release, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_dead_writer_is_replaced_and_its_half_write_completed() {
        let lock = SeqLock::new();
        let guard = lock.try_lock(100, 1, |_| false).unwrap();
        std::mem::forget(guard); // the writer "dies" mid-write: seq stays odd, lock held
        assert_eq!(lock.try_read(READ_TRIES, || ()), None, "readers must not trust a half-written state");
        assert_eq!(lock.try_lock(200, 1, |_| false).err(), Some(LockError::Busy { holder_pid: 100 }));
        let guard = lock.try_lock(200, 1, |held| held >> 32 == 100).unwrap();
        assert!(guard.continues_interrupted_write());
        drop(guard);
        assert_eq!(lock.try_read(READ_TRIES, || 7), Some(7));
        assert_eq!(lock.sequence() & 1, 0);
        assert!(lock.try_lock(300, 1, |_| false).is_ok(), "the lock is free again after the takeover write");
    }
}
