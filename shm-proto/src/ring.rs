//! The flight recorder: a multi-producer ring of the most recent calls that overwrites the oldest.
//!
//! Writers never wait: a writer claims a global index with one `fetch_add`, then owns the slot by moving its stamp
//! from an older, complete value to "`index` in progress" (odd). If the slot is still being written by an even older
//! writer, the new record is dropped and the slot remembers that, so a reader counts it as missed instead of waiting.
//! Readers never block writers and always know exactly how many records they did not get.

use crate::clock::{ClockPair, TickScale, TickSource};
use crate::sync::{fence, AtomicU64, Ordering};

/// One recorded call, as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// 1-based position in the process's recording (also counts records a reader missed).
    pub sequence: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the call was intercepted (converted from the ring's ticks on reading).
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
    /// In the ring's [`TickSource`].
    ticks: AtomicU64,
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
    /// [`TickSource`] of the timestamps, as `u64` (0, a zeroed ring: nanoseconds).
    clock: AtomicU64,
    /// The [`ClockPair`] taken when the ring was started (see [`crate::clock`]).
    start_ticks: AtomicU64,
    start_ns: AtomicU64,
    /// Even: `recent_*` is a complete pair; odd: a writer is replacing it.
    recent_version: AtomicU64,
    /// The recent [`ClockPair`], refreshed by recording writers.
    recent_ticks: AtomicU64,
    recent_ns: AtomicU64,
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
            ticks: AtomicU64::new(0),
            size: AtomicU64::new(0),
            hook_flags_thread: AtomicU64::new(0),
            code: AtomicU64::new(0),
            _pad: [0; 2],
        };
        Ring {
            head: AtomicU64::new(0),
            cleared_below: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            start_ticks: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            recent_version: AtomicU64::new(0),
            recent_ticks: AtomicU64::new(0),
            recent_ns: AtomicU64::new(0),
            slots: std::array::from_fn(|_| slot()),
        }
    }

    /// Chooses the timestamp source and takes the start pair. Once, before the ring is shared.
    pub fn start_clock(&self, source: TickSource) {
        let start = ClockPair::now(source);
        self.clock.store(source as u64, Ordering::Relaxed);
        self.start_ticks.store(start.ticks, Ordering::Relaxed);
        self.start_ns.store(start.ns, Ordering::Relaxed);
        self.recent_ticks.store(start.ticks, Ordering::Relaxed);
        self.recent_ns.store(start.ns, Ordering::Relaxed);
    }

    /// A timestamp for [`Ring::push`], from the ring's source; refreshes the recent pair when this timestamp lies
    /// further past it than it lies past the start, or 2³¹ ticks past it (so readers interpolate, see
    /// [`crate::clock`]).
    #[inline]
    pub fn stamp(&self) -> u64 {
        match self.quick_stamp() {
            Some(ticks) => ticks,
            None => self.stamp_refreshing(),
        }
    }

    /// [`Ring::stamp`] when it is one `rdtsc` and three loads (the TSC, no refresh due); `None` otherwise.
    #[inline(always)]
    pub fn quick_stamp(&self) -> Option<u64> {
        if TickSource::from_raw(self.clock.load(Ordering::Relaxed)) != TickSource::Tsc {
            return None;
        }
        let ticks = TickSource::Tsc.now();
        let recent = self.recent_ticks.load(Ordering::Relaxed);
        let recent_age = recent.wrapping_sub(self.start_ticks.load(Ordering::Relaxed));
        (ticks.wrapping_sub(recent) <= recent_age.min(1 << 31)).then_some(ticks)
    }

    /// [`Ring::stamp`]'s other cases: nanoseconds, or a refresh of the recent pair.
    #[cold]
    #[inline(never)]
    pub fn stamp_refreshing(&self) -> u64 {
        let source = TickSource::from_raw(self.clock.load(Ordering::Relaxed));
        let ticks = source.now();
        if source != TickSource::MonotonicNs {
            self.refresh_recent(source);
        }
        ticks
    }

    /// Replaces the recent pair; if another writer is at it, leaves it to them.
    #[cold]
    #[inline(never)]
    fn refresh_recent(&self, source: TickSource) {
        let version = self.recent_version.load(Ordering::Relaxed);
        if version & 1 == 1
            || self.recent_version.compare_exchange(version, version + 1, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let pair = ClockPair::now(source);
        self.recent_ticks.store(pair.ticks, Ordering::Relaxed);
        self.recent_ns.store(pair.ns, Ordering::Relaxed);
        self.recent_version.store(version + 2, Ordering::Release);
    }

    /// Converts this ring's timestamps to `CLOCK_MONOTONIC` nanoseconds: a function of the ring alone.
    pub fn tick_scale(&self) -> TickScale {
        let source = TickSource::from_raw(self.clock.load(Ordering::Relaxed));
        let pair = |ticks: &AtomicU64, ns: &AtomicU64| ClockPair {
            ticks: ticks.load(Ordering::Relaxed),
            ns: ns.load(Ordering::Relaxed),
            uncertainty_ns: 0,
        };
        let start = pair(&self.start_ticks, &self.start_ns);
        // A writer replacing the recent pair holds it for a few hundred ns; a dead one leaves the start pair,
        // and the scale then uses the reader's own reading instead.
        for _ in 0..1024 {
            let version = self.recent_version.load(Ordering::Acquire);
            let recent = pair(&self.recent_ticks, &self.recent_ns);
            fence(Ordering::Acquire);
            if version & 1 == 0 && self.recent_version.load(Ordering::Relaxed) == version {
                return TickScale::new(source, start, recent);
            }
            crate::sync::spin_hint();
        }
        TickScale::new(source, start, ClockPair::now(source))
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

    /// Appends one record stamped `ticks` (from [`Ring::stamp`]). Wait-free; never blocks.
    #[inline]
    pub fn push(&self, ticks: u64, hook: u16, injected: bool, thread: u32, code: i32, size: u64) {
        let index = self.head.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(index & Self::MASK) as usize];
        // Wrapping: `head` lives in shared memory, and a corrupt one must not be an overflow panic.
        let writing = index.wrapping_mul(2).wrapping_add(1);
        let mut stamp = slot.stamp.load(Ordering::Relaxed);
        loop {
            if stamp & 1 == 1 || stamp >= writing {
                // An older writer is still on this slot, or a newer one already took it: drop ours, visibly.
                slot.dropped_below.fetch_max(index.wrapping_add(1), Ordering::Release);
                return;
            }
            match slot.stamp.compare_exchange_weak(stamp, writing, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => stamp = now,
            }
        }
        fence(Ordering::Release);
        slot.ticks.store(ticks, Ordering::Relaxed);
        slot.size.store(size, Ordering::Relaxed);
        let packed = u64::from(hook) | (u64::from(injected) << 16) | (u64::from(thread) << 32);
        slot.hook_flags_thread.store(packed, Ordering::Relaxed);
        slot.code.store(code as u32 as u64, Ordering::Relaxed);
        slot.stamp.store(writing.wrapping_add(1), Ordering::Release);
    }

    /// Reads record `index` if it is still there.
    pub fn read(&self, index: u64) -> SlotRead {
        self.read_with(index, &self.tick_scale())
    }

    /// [`Ring::read`] with the timestamp converted by `scale` (one calibration for many reads).
    pub fn read_with(&self, index: u64, scale: &TickScale) -> SlotRead {
        let slot = &self.slots[(index & Self::MASK) as usize];
        // Indices come from shared memory: wrapping arithmetic, never an overflow panic on a corrupt one.
        let complete = index.wrapping_mul(2).wrapping_add(2);
        let before = slot.stamp.load(Ordering::Acquire);
        if before > complete || slot.dropped_below.load(Ordering::Acquire) > index {
            return SlotRead::Missed;
        }
        if before < complete {
            return SlotRead::Pending;
        }
        let ticks = slot.ticks.load(Ordering::Relaxed);
        let size = slot.size.load(Ordering::Relaxed);
        let packed = slot.hook_flags_thread.load(Ordering::Relaxed);
        let code = slot.code.load(Ordering::Relaxed) as u32 as i32;
        fence(Ordering::Acquire);
        if slot.stamp.load(Ordering::Relaxed) != before {
            return SlotRead::Missed; // overwritten while we read it
        }
        SlotRead::Record(Record {
            sequence: index.wrapping_add(1),
            time_ns: scale.to_ns(ticks),
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
        // `head` and `cleared` come from shared memory: saturating arithmetic, so a corrupt value is a large
        // count, never an overflow panic.
        if head > self.next.saturating_add(N as u64) {
            let oldest_possible = head - N as u64;
            self.missed = self.missed.saturating_add(oldest_possible - self.next);
            self.next = oldest_possible;
        }
        let scale = ring.tick_scale();
        while self.next < head {
            match ring.read_with(self.next, &scale) {
                SlotRead::Record(record) => sink(record),
                SlotRead::Missed => self.missed = self.missed.saturating_add(1),
                SlotRead::Pending if writers_gone => self.missed = self.missed.saturating_add(1),
                SlotRead::Pending => return,
            }
            self.next += 1;
        }
    }
}

// The ring lives in the shared segment: its header and slot layout are ABI (see `layout`'s assertions).
#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(Ring<1>, head) == 0);
    assert!(offset_of!(Ring<1>, cleared_below) == 8);
    assert!(offset_of!(Ring<1>, clock) == 16);
    assert!(offset_of!(Ring<1>, start_ticks) == 24);
    assert!(offset_of!(Ring<1>, start_ns) == 32);
    assert!(offset_of!(Ring<1>, recent_version) == 40);
    assert!(offset_of!(Ring<1>, recent_ns) == 56);
    assert!(offset_of!(Ring<1>, slots) == 64);
    assert!(size_of::<Slot>() == 64);
    assert!(offset_of!(Slot, ticks) == 16);
};

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
    fn corrupt_indices_from_shared_memory_never_overflow() {
        let ring = zeroed::<8>();
        for head in [u64::MAX, u64::MAX / 2 + 1, u64::MAX - 3] {
            ring.head.store(head, Ordering::Relaxed);
            ring.cleared_below.store(head - 2, Ordering::Relaxed);
            let mut cursor = RingCursor::oldest(&ring);
            cursor.drain(&ring, true, |_| {});
            let _ = ring.read(head - 1);
            ring.push(1, 0, false, 1, 0, 0);
        }
        let mut cursor = RingCursor { next: u64::MAX - 1, missed: u64::MAX };
        ring.cleared_below.store(0, Ordering::Relaxed);
        ring.head.store(u64::MAX, Ordering::Relaxed);
        cursor.drain(&ring, true, |_| {});
        assert_eq!(cursor.missed, u64::MAX, "saturates");
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

    /// With this machine's clock: every record's time lies between `CLOCK_MONOTONIC` readings taken around its
    /// push (up to the pairs' uncertainty), and reading twice gives the same times.
    #[test]
    fn stamps_convert_to_monotonic_time_the_same_way_on_every_read() {
        use crate::clock::{monotonic_ns, TickSource};
        let ring = zeroed::<64>();
        ring.start_clock(TickSource::detect());
        let mut brackets = Vec::new();
        for i in 0..40u64 {
            let before = monotonic_ns();
            ring.push(ring.stamp(), 1, false, 7, 0, i);
            brackets.push((before, monotonic_ns()));
            // Let time pass unevenly, so the recent pair is refreshed at different distances.
            let until = monotonic_ns() + (i % 5) * 50_000;
            while monotonic_ns() < until {
                std::hint::spin_loop();
            }
        }
        let read = || {
            let mut times = Vec::new();
            RingCursor::oldest(&ring).drain(&ring, false, |r| times.push(r.time_ns));
            times
        };
        let times = read();
        assert_eq!(times, read(), "a function of the ring alone");
        let slack = 20_000; // two pairs' uncertainty, generously, on a loaded machine
        for (time, (before, after)) in times.iter().zip(&brackets) {
            assert!(before - slack <= *time && *time <= after + slack, "{time} not in [{before}, {after}]");
        }
    }
}
