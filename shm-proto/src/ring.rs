//! The flight recorder: a multi-producer ring of the most recent calls that overwrites the oldest.
//!
//! Writers never wait: a writer claims a global index with one `fetch_add`, then owns the slot by moving its stamp
//! from an older, complete value to "`index` in progress" (odd). If the slot is still being written by an even older
//! writer, the new record is dropped and the slot remembers that, so a reader counts it as missed instead of waiting.
//! Readers never block writers and always know exactly how many records they did not get.

use crate::sync::{fence, AtomicU64, Ordering};

/// One recorded call, as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// 1-based position in the process's recording (also counts records a reader missed).
    pub sequence: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the call was intercepted.
    pub time_ns: u64,
    /// Index into the segment's hook-name table.
    pub hook: u16,
    /// Whether faultline injected a failure into this call.
    pub injected: bool,
    /// Kernel thread id of the caller.
    pub thread: u32,
    /// The status the application saw from faultline (0 when the call was passed to the real function).
    pub code: i32,
    /// The call's size argument where it has one (bytes), else 0.
    pub size: u64,
}

/// One ring slot: a stamp plus the record packed into atomics. 64 bytes, one cache line.
#[repr(C, align(64))]
pub struct Slot {
    /// 0: never written; `2*i+1`: record `i` being written; `2*i+2`: record `i` complete.
    stamp: AtomicU64,
    /// One past the highest record index whose writer found this slot busy and dropped its record.
    dropped_below: AtomicU64,
    time_ns: AtomicU64,
    size: AtomicU64,
    /// `hook | injected << 16 | thread << 32`.
    hook_flags_thread: AtomicU64,
    code: AtomicU64,
    _pad: [u64; 2],
}

/// What a reader found at one record index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRead {
    /// The record, intact.
    Record(Record),
    /// The record was overwritten or dropped: it is gone.
    Missed,
    /// Its writer has claimed the index but not finished (or died before finishing).
    Pending,
}

/// A ring of `N` slots (`N` a power of two) plus the claim counter and the clear mark.
#[repr(C, align(64))]
pub struct Ring<const N: usize> {
    /// Number of records ever claimed (the next record's index).
    head: AtomicU64,
    /// Records below this index were cleared by a user; readers start here at the earliest.
    cleared_below: AtomicU64,
    _pad: [u64; 6],
    slots: [Slot; N],
}

impl<const N: usize> Ring<N> {
    const MASK: u64 = {
        assert!(N.is_power_of_two(), "ring capacity must be a power of two");
        N as u64 - 1
    };

    /// An empty ring (for small rings in tests and models; the segment's ring starts zeroed instead).
    pub fn new() -> Self {
        let slot = || Slot {
            stamp: AtomicU64::new(0),
            dropped_below: AtomicU64::new(0),
            time_ns: AtomicU64::new(0),
            size: AtomicU64::new(0),
            hook_flags_thread: AtomicU64::new(0),
            code: AtomicU64::new(0),
            _pad: [0; 2],
        };
        Ring {
            head: AtomicU64::new(0),
            cleared_below: AtomicU64::new(0),
            _pad: [0; 6],
            slots: std::array::from_fn(|_| slot()),
        }
    }

    /// Number of records ever written (claimed), including overwritten ones.
    pub fn written(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The index readers start from after the last clear.
    pub fn cleared_below(&self) -> u64 {
        self.cleared_below.load(Ordering::Acquire)
    }

    /// Forget everything recorded so far (readers start at the current head).
    pub fn clear(&self) {
        self.cleared_below.store(self.head.load(Ordering::Acquire), Ordering::Release);
    }

    /// Appends one record. Wait-free; never blocks.
    #[inline]
    pub fn push(&self, time_ns: u64, hook: u16, injected: bool, thread: u32, code: i32, size: u64) {
        let index = self.head.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(index & Self::MASK) as usize];
        let writing = 2 * index + 1;
        let mut stamp = slot.stamp.load(Ordering::Relaxed);
        loop {
            if stamp & 1 == 1 || stamp >= writing {
                // An older writer is still on this slot, or a newer one already took it: drop ours, visibly.
                slot.dropped_below.fetch_max(index + 1, Ordering::Release);
                return;
            }
            match slot.stamp.compare_exchange_weak(stamp, writing, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => stamp = now,
            }
        }
        fence(Ordering::Release);
        slot.time_ns.store(time_ns, Ordering::Relaxed);
        slot.size.store(size, Ordering::Relaxed);
        let packed = u64::from(hook) | (u64::from(injected) << 16) | (u64::from(thread) << 32);
        slot.hook_flags_thread.store(packed, Ordering::Relaxed);
        slot.code.store(code as u32 as u64, Ordering::Relaxed);
        slot.stamp.store(writing + 1, Ordering::Release);
    }

    /// Reads record `index` if it is still there.
    pub fn read(&self, index: u64) -> SlotRead {
        let slot = &self.slots[(index & Self::MASK) as usize];
        let complete = 2 * index + 2;
        let before = slot.stamp.load(Ordering::Acquire);
        if before > complete || slot.dropped_below.load(Ordering::Acquire) > index {
            return SlotRead::Missed;
        }
        if before < complete {
            return SlotRead::Pending;
        }
        let time_ns = slot.time_ns.load(Ordering::Relaxed);
        let size = slot.size.load(Ordering::Relaxed);
        let packed = slot.hook_flags_thread.load(Ordering::Relaxed);
        let code = slot.code.load(Ordering::Relaxed) as u32 as i32;
        fence(Ordering::Acquire);
        if slot.stamp.load(Ordering::Relaxed) != before {
            return SlotRead::Missed; // overwritten while we read it
        }
        SlotRead::Record(Record {
            sequence: index + 1,
            time_ns,
            hook: packed as u16,
            injected: (packed >> 16) & 1 == 1,
            thread: (packed >> 32) as u32,
            code,
            size,
        })
    }

    /// The capacity in records.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A reader's position in a ring, which counts exactly what it missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCursor {
    /// The next record index to read.
    pub next: u64,
    /// Records that were written but that this reader did not get (overwritten, dropped, or torn).
    pub missed: u64,
}

impl RingCursor {
    /// A cursor at the oldest record still in the ring (after the last clear).
    pub fn oldest<const N: usize>(ring: &Ring<N>) -> Self {
        let head = ring.written();
        let start = head.saturating_sub(N as u64).max(ring.cleared_below());
        Self { next: start, missed: 0 }
    }

    /// Reads every record now available, in order, handing each to `sink`. Stops at the first record still being
    /// written unless `writers_gone` (a dead process), in which case unfinished records count as missed.
    pub fn drain<const N: usize>(&mut self, ring: &Ring<N>, writers_gone: bool, mut sink: impl FnMut(Record)) {
        let head = ring.written();
        let cleared = ring.cleared_below();
        if self.next < cleared {
            self.next = cleared; // a user cleared the ring: those records are not "missed", they were discarded
        }
        if head > self.next + N as u64 {
            let oldest_possible = head - N as u64;
            self.missed += oldest_possible - self.next;
            self.next = oldest_possible;
        }
        while self.next < head {
            match ring.read(self.next) {
                SlotRead::Record(record) => sink(record),
                SlotRead::Missed => self.missed += 1,
                SlotRead::Pending if writers_gone => self.missed += 1,
                SlotRead::Pending => return,
            }
            self.next += 1;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn zeroed<const N: usize>() -> Box<Ring<N>> {
        // SAFETY: a Ring is all atomics and padding; all-zero is its documented initial state.
        unsafe { Box::new_zeroed().assume_init() }
    }

    #[test]
    fn overwrites_the_oldest_and_counts_what_was_missed() {
        let ring = zeroed::<4>();
        for i in 0..10u32 {
            ring.push(u64::from(i), 1, i % 2 == 0, 7, -(i as i32), 8);
        }
        let mut cursor = RingCursor::default();
        let mut seen = Vec::new();
        cursor.drain(&ring, false, |r| seen.push(r.sequence));
        assert_eq!(seen, vec![7, 8, 9, 10]);
        assert_eq!(cursor.missed, 6);
    }

    #[test]
    fn clear_discards_without_counting_as_missed() {
        let ring = zeroed::<8>();
        for _ in 0..3 {
            ring.push(0, 0, false, 0, 0, 0);
        }
        ring.clear();
        ring.push(5, 2, true, 3, -3, 64);
        let mut cursor = RingCursor::oldest(&ring);
        let mut seen = Vec::new();
        cursor.drain(&ring, false, |r| seen.push(r));
        assert_eq!(cursor.missed, 0);
        assert_eq!(
            seen,
            vec![Record { sequence: 4, time_ns: 5, hook: 2, injected: true, thread: 3, code: -3, size: 64 }]
        );
    }
}
