//! The flight recorder: one lane of the most recent calls per thread, each overwriting its own oldest.
//!
//! A thread records into a lane of its own ([`Ring::lane_of`]): it alone writes there, so a record is plain stores
//! between two stamp stores and a release of the lane's head, with no locked instruction and no cache line shared
//! with another writer. Threads beyond the owned lanes share the last lane, which keeps the multi-producer protocol:
//! a writer claims an index with one `fetch_add`, then owns the slot by moving its stamp from an older, complete
//! value to "`index` in progress" (odd); if the slot is still being written by an even older writer, the new record
//! is dropped and the slot remembers that, so a reader counts it as missed instead of waiting.
//!
//! Readers never block writers and always know exactly how many records they did not get, lane by lane. They merge
//! the lanes by timestamp (then lane, then position): a thread's records keep their order, and records of different
//! threads come in the order their calls were stamped. A record's `sequence` is its position in that merged stream,
//! counting every record written before it in any lane, missed ones included; the newest record's sequence is the
//! number of records ever written.

use crate::clock::{ClockPair, TickScale, TickSource};
use crate::site::Site;
use crate::sync::{fence, AtomicU64, Ordering};

/// One recorded call, as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// 1-based position in the process's merged recording (also counts records a reader missed).
    pub sequence: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the call was intercepted (converted from the ring's ticks on reading).
    pub time_ns: u64,
    /// Index into the segment's hook-name table.
    pub hook: u16,
    /// Whether faultline injected a failure into this call.
    pub injected: bool,
    /// Where the injected failure surfaced (`None` for a passed call; records of ABI 5 read as `Post`).
    pub site: Option<Site>,
    /// Kernel thread id of the caller.
    pub thread: u32,
    /// The status the application saw from faultline (0 when the call was passed to the real function).
    pub code: i32,
    /// The call's size argument where it has one (bytes), else 0.
    pub size: u64,
}

/// One lane slot: a stamp plus the record packed into atomics. 64 bytes, one cache line.
#[repr(C, align(64))]
pub struct Slot {
    /// 0: never written; `2*i+1`: record `i` being written; `2*i+2`: record `i` complete.
    stamp: AtomicU64,
    /// One past the highest record index whose writer found this slot busy and dropped its record (shared lane).
    dropped_below: AtomicU64,
    /// In the ring's [`TickSource`].
    ticks: AtomicU64,
    size: AtomicU64,
    /// `hook | injected << 16 | site << 17 | thread << 32`.
    hook_flags_thread: AtomicU64,
    code: AtomicU64,
    _pad: [u64; 2],
}

/// What a reader found at one record index of a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRead {
    /// The record, intact (its `sequence` is its 1-based position in the lane).
    Record(Record),
    /// The record was overwritten or dropped: it is gone.
    Missed,
    /// Its writer has claimed the index but not finished (or died before finishing).
    Pending,
}

/// Which lane a thread records into, and whether it is the lane's only writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneId {
    /// The lane's index.
    pub index: u8,
    /// The thread owns the lane (plain stores); otherwise it shares it (the multi-producer protocol).
    pub owned: bool,
}

/// `N` slots (`N` a power of two) plus the lane's claim counter and clear mark.
#[repr(C, align(64))]
pub struct Lane<const N: usize> {
    /// Number of records ever claimed in this lane (the next record's index).
    head: AtomicU64,
    /// Records below this index were cleared by a user; readers start here at the earliest.
    cleared_below: AtomicU64,
    _pad: [u64; 6],
    slots: [Slot; N],
}

impl<const N: usize> Lane<N> {
    const MASK: u64 = {
        assert!(N.is_power_of_two(), "lane capacity must be a power of two");
        N as u64 - 1
    };

    fn new() -> Self {
        let slot = || Slot {
            stamp: AtomicU64::new(0),
            dropped_below: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            size: AtomicU64::new(0),
            hook_flags_thread: AtomicU64::new(0),
            code: AtomicU64::new(0),
            _pad: [0; 2],
        };
        Lane {
            head: AtomicU64::new(0),
            cleared_below: AtomicU64::new(0),
            _pad: [0; 6],
            slots: std::array::from_fn(|_| slot()),
        }
    }

    /// Number of records ever written (claimed) in this lane, including overwritten ones.
    pub fn written(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The index readers of this lane start from after the last clear.
    pub fn cleared_below(&self) -> u64 {
        self.cleared_below.load(Ordering::Acquire)
    }

    /// Appends a record as the lane's only writer: plain stores between the two stamps, then the head. Never
    /// waits. (The slot it overwrites is its own older record, finished: nobody else writes here.)
    #[inline(always)]
    pub fn push_owned(&self, ticks: u64, hook: u16, fault: Option<Site>, thread: u32, code: i32, size: u64) {
        // Only this thread stores `head`: a load and a store count exactly.
        let index = self.head.load(Ordering::Relaxed);
        let slot = &self.slots[(index & Self::MASK) as usize];
        // Wrapping: `head` lives in shared memory, and a corrupt one must not be an overflow panic.
        let writing = index.wrapping_mul(2).wrapping_add(1);
        slot.stamp.store(writing, Ordering::Relaxed);
        // A reader that sees any of the stores below also sees the odd stamp (its acquire fence pairs with this).
        fence(Ordering::Release);
        slot.write(ticks, hook, fault, thread, code, size);
        slot.stamp.store(writing.wrapping_add(1), Ordering::Release);
        self.head.store(index.wrapping_add(1), Ordering::Release);
    }

    /// Appends a record as one of several writers of this lane. Wait-free; never blocks.
    #[inline]
    pub fn push_shared(&self, ticks: u64, hook: u16, fault: Option<Site>, thread: u32, code: i32, size: u64) {
        let index = self.head.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(index & Self::MASK) as usize];
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
        slot.write(ticks, hook, fault, thread, code, size);
        slot.stamp.store(writing.wrapping_add(1), Ordering::Release);
    }

    /// Reads record `index` of this lane if it is still there, its time converted by `scale`.
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
            site: ((packed >> 16) & 1 == 1).then(|| Site::from_raw(((packed >> 17) & 3) as u32)),
            thread: (packed >> 32) as u32,
            code,
            size,
        })
    }
}

impl Slot {
    #[inline(always)]
    fn write(&self, ticks: u64, hook: u16, fault: Option<Site>, thread: u32, code: i32, size: u64) {
        self.ticks.store(ticks, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
        let flags = fault.map_or(0, |site| 1 | (site as u64) << 1);
        let packed = u64::from(hook) | (flags << 16) | (u64::from(thread) << 32);
        self.hook_flags_thread.store(packed, Ordering::Relaxed);
        self.code.store(code as u32 as u64, Ordering::Relaxed);
    }
}

/// `L` lanes of `N` slots each (`L`, `N` powers of two) behind one clock header.
#[repr(C, align(64))]
pub struct Ring<const L: usize, const N: usize> {
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
    /// The last TSC tick a record may carry without refreshing the recent pair (0, a zeroed or nanosecond ring:
    /// every stamp takes the slow path, which reads the right clock).
    refresh_due: AtomicU64,
    _pad: [u64; 1],
    lanes: [Lane<N>; L],
}

impl<const L: usize, const N: usize> Ring<L, N> {
    const LANE_MASK: usize = {
        assert!(L.is_power_of_two() && L <= 256, "lanes: a power of two, at most 256");
        L - 1
    };

    /// An empty ring (for small rings in tests and models; the segment's ring starts zeroed instead).
    pub fn new() -> Self {
        Ring {
            clock: AtomicU64::new(0),
            start_ticks: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            recent_version: AtomicU64::new(0),
            recent_ticks: AtomicU64::new(0),
            recent_ns: AtomicU64::new(0),
            refresh_due: AtomicU64::new(0),
            _pad: [0; 1],
            lanes: std::array::from_fn(|_| Lane::new()),
        }
    }

    /// The lane of the thread registered `ordinal`-th with the segment: the first `L - 1` threads own one each,
    /// later ones share the last.
    pub fn lane_of(ordinal: u32) -> LaneId {
        let last = Self::LANE_MASK as u32;
        LaneId { index: ordinal.min(last) as u8, owned: ordinal < last }
    }

    /// The lanes.
    pub fn lanes(&self) -> &[Lane<N>; L] {
        &self.lanes
    }

    /// Chooses the timestamp source and takes the start pair. Once, before the ring is shared.
    pub fn start_clock(&self, source: TickSource) {
        let start = ClockPair::now(source);
        self.clock.store(source as u64, Ordering::Relaxed);
        self.start_ticks.store(start.ticks, Ordering::Relaxed);
        self.start_ns.store(start.ns, Ordering::Relaxed);
        self.recent_ticks.store(start.ticks, Ordering::Relaxed);
        self.recent_ns.store(start.ns, Ordering::Relaxed);
        let due = if source == TickSource::Tsc { start.ticks } else { 0 };
        self.refresh_due.store(due, Ordering::Relaxed);
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

    /// [`Ring::stamp`] when it is one `rdtsc`, one load and a comparison (the TSC, no refresh due); `None`
    /// otherwise (no TSC here, a nanosecond ring, or a refresh due).
    #[inline(always)]
    pub fn quick_stamp(&self) -> Option<u64> {
        #[cfg(target_arch = "x86_64")]
        {
            let ticks = TickSource::Tsc.now();
            (ticks <= self.refresh_due.load(Ordering::Relaxed)).then_some(ticks)
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Where the next refresh falls after a recent pair taken at `recent` ticks: as far past it as it lies past
    /// the start, at most 2³¹ ticks.
    fn due_after(&self, recent: u64) -> u64 {
        let age = recent.wrapping_sub(self.start_ticks.load(Ordering::Relaxed));
        recent.saturating_add(age.min(1 << 31))
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
        self.refresh_due.store(self.due_after(pair.ticks), Ordering::Relaxed);
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

    /// Appends one record stamped `ticks` (from [`Ring::stamp`]) to `lane`. Wait-free; never blocks.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the record's fields, passed in registers on the hot path
    pub fn push(&self, lane: LaneId, ticks: u64, hook: u16, fault: Option<Site>, thread: u32, code: i32, size: u64) {
        let target = &self.lanes[usize::from(lane.index) & Self::LANE_MASK];
        if lane.owned {
            target.push_owned(ticks, hook, fault, thread, code, size);
        } else {
            target.push_shared(ticks, hook, fault, thread, code, size);
        }
    }

    /// Number of records ever written (claimed) in all lanes, including overwritten ones.
    pub fn written(&self) -> u64 {
        self.lanes.iter().fold(0u64, |sum, lane| sum.wrapping_add(lane.written()))
    }

    /// Records discarded by clears, in all lanes.
    pub fn cleared_below(&self) -> u64 {
        self.lanes.iter().fold(0u64, |sum, lane| sum.wrapping_add(lane.cleared_below()))
    }

    /// Records written since the last clear that no longer fit their lane (overwritten), all lanes together.
    pub fn overwritten(&self) -> u64 {
        self.lanes.iter().fold(0u64, |sum, lane| {
            sum.saturating_add(lane.written().wrapping_sub(lane.cleared_below()).saturating_sub(N as u64))
        })
    }

    /// Forget everything recorded so far (readers start at each lane's current head).
    pub fn clear(&self) {
        for lane in &self.lanes {
            lane.cleared_below.store(lane.head.load(Ordering::Acquire), Ordering::Release);
        }
    }

    /// The capacity in records, all lanes together.
    pub const fn capacity(&self) -> usize {
        L * N
    }
}

impl<const L: usize, const N: usize> Default for Ring<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A reader's position in one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LaneCursor {
    /// The next record index to read.
    next: u64,
}

/// A reader's position in a ring, which counts exactly what it missed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingCursor {
    /// Per lane (empty until the first read: then every lane from its first record).
    lanes: Vec<LaneCursor>,
    /// Records that were written but that this reader did not get (overwritten, dropped, or torn).
    pub missed: u64,
}

impl RingCursor {
    /// A cursor at the oldest record still in each lane (after the last clear).
    pub fn oldest<const L: usize, const N: usize>(ring: &Ring<L, N>) -> Self {
        let lanes = ring
            .lanes
            .iter()
            .map(|lane| LaneCursor { next: lane.written().saturating_sub(N as u64).max(lane.cleared_below()) })
            .collect();
        Self { lanes, missed: 0 }
    }

    /// Records this cursor has passed, read or not, in all lanes: the sequence of the last record it delivered.
    pub fn position(&self) -> u64 {
        self.lanes.iter().fold(0u64, |sum, lane| sum.saturating_add(lane.next))
    }

    /// Moves past everything but the newest `count` records of each lane (without counting them as missed): a
    /// view that shows only the newest records reads no more than `count` per lane.
    pub fn skip_to_newest<const L: usize, const N: usize>(&mut self, ring: &Ring<L, N>, count: u64) {
        self.lanes.resize(L, LaneCursor::default());
        for (cursor, lane) in self.lanes.iter_mut().zip(&ring.lanes) {
            cursor.next = cursor.next.max(lane.written().saturating_sub(count));
        }
    }

    /// Reads every record now available, merged across lanes by time, handing each to `sink`. In each lane it stops
    /// at the first record still being written unless `writers_gone` (a dead process), in which case unfinished
    /// records count as missed.
    pub fn drain<const L: usize, const N: usize>(
        &mut self,
        ring: &Ring<L, N>,
        writers_gone: bool,
        mut sink: impl FnMut(Record),
    ) {
        self.lanes.resize(L, LaneCursor::default());
        let scale = ring.tick_scale();
        let mut batch: Vec<(u64, usize, u64, Record)> = Vec::new();
        for (index, (cursor, lane)) in self.lanes.iter_mut().zip(&ring.lanes).enumerate() {
            let head = lane.written();
            let cleared = lane.cleared_below();
            if cursor.next < cleared {
                cursor.next = cleared; // a user cleared the lane: those records are not "missed", they were discarded
            }
            // `head` and `cleared` come from shared memory: saturating arithmetic, so a corrupt value is a large
            // count, never an overflow panic.
            if head > cursor.next.saturating_add(N as u64) {
                let oldest_possible = head - N as u64;
                self.missed = self.missed.saturating_add(oldest_possible - cursor.next);
                cursor.next = oldest_possible;
            }
            while cursor.next < head {
                match lane.read_with(cursor.next, &scale) {
                    SlotRead::Record(record) => batch.push((record.time_ns, index, cursor.next, record)),
                    SlotRead::Missed => self.missed = self.missed.saturating_add(1),
                    SlotRead::Pending if writers_gone => self.missed = self.missed.saturating_add(1),
                    SlotRead::Pending => break,
                }
                cursor.next += 1;
            }
        }
        batch.sort_unstable_by_key(|&(time, lane, index, _)| (time, lane, index));
        let first = self.position().saturating_sub(batch.len() as u64);
        for (offset, (_, _, _, mut record)) in batch.into_iter().enumerate() {
            record.sequence = first.saturating_add(offset as u64 + 1);
            sink(record);
        }
    }
}

// The ring lives in the shared segment: its header, lane and slot layout are ABI (see `layout`'s assertions).
#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(Ring<1, 1>, clock) == 0);
    assert!(offset_of!(Ring<1, 1>, start_ticks) == 8);
    assert!(offset_of!(Ring<1, 1>, start_ns) == 16);
    assert!(offset_of!(Ring<1, 1>, recent_version) == 24);
    assert!(offset_of!(Ring<1, 1>, recent_ns) == 40);
    assert!(offset_of!(Ring<1, 1>, refresh_due) == 48);
    assert!(offset_of!(Ring<1, 1>, lanes) == 64);
    assert!(offset_of!(Lane<1>, head) == 0);
    assert!(offset_of!(Lane<1>, cleared_below) == 8);
    assert!(offset_of!(Lane<1>, slots) == 64);
    assert!(size_of::<Lane<4>>() == 64 + 4 * 64);
    assert!(size_of::<Slot>() == 64);
    assert!(offset_of!(Slot, ticks) == 16);
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn zeroed<const L: usize, const N: usize>() -> Box<Ring<L, N>> {
        // SAFETY: a Ring is all atomics and padding; all-zero is its documented initial state.
        unsafe { Box::new_zeroed().assume_init() }
    }

    fn drain_all<const L: usize, const N: usize>(ring: &Ring<L, N>, cursor: &mut RingCursor) -> Vec<Record> {
        let mut seen = Vec::new();
        cursor.drain(ring, false, |r| seen.push(r));
        seen
    }

    #[test]
    fn a_shared_lane_overwrites_the_oldest_and_counts_what_was_missed() {
        let ring = zeroed::<1, 4>();
        let lane = Ring::<1, 4>::lane_of(0);
        assert!(!lane.owned, "with one lane every thread shares it");
        for i in 0..10u32 {
            ring.push(lane, u64::from(i), 1, (i % 2 == 0).then_some(Site::Post), 7, -(i as i32), 8);
        }
        let mut cursor = RingCursor::default();
        let seen: Vec<u64> = drain_all(&ring, &mut cursor).iter().map(|r| r.sequence).collect();
        assert_eq!(seen, vec![7, 8, 9, 10]);
        assert_eq!(cursor.missed, 6);
    }

    #[test]
    fn an_owned_lane_overwrites_its_oldest_and_counts_what_was_missed() {
        let ring = zeroed::<2, 4>();
        let lane = Ring::<2, 4>::lane_of(0);
        assert_eq!(lane, LaneId { index: 0, owned: true });
        assert_eq!(Ring::<2, 4>::lane_of(1), LaneId { index: 1, owned: false }, "the last lane is shared");
        assert_eq!(Ring::<2, 4>::lane_of(u32::MAX), LaneId { index: 1, owned: false });
        for i in 0..10u32 {
            ring.push(lane, u64::from(i), 1, None, 7, -(i as i32), u64::from(i));
        }
        let mut cursor = RingCursor::default();
        let sizes: Vec<u64> = drain_all(&ring, &mut cursor).iter().map(|r| r.size).collect();
        assert_eq!(sizes, vec![6, 7, 8, 9]);
        assert_eq!((cursor.missed, cursor.position()), (6, 10));
    }

    /// Lanes merge by time; each record's sequence counts every record before it in any lane.
    #[test]
    fn lanes_merge_by_time_and_number_the_merged_stream() {
        let ring = zeroed::<4, 8>();
        let (a, b, shared) = (Ring::<4, 8>::lane_of(0), Ring::<4, 8>::lane_of(1), Ring::<4, 8>::lane_of(9));
        ring.push(a, 10, 0, None, 1, 0, 0);
        ring.push(b, 5, 1, None, 2, 0, 0);
        ring.push(shared, 7, 2, Some(Site::Post), 3, -3, 0);
        ring.push(a, 20, 0, None, 1, 0, 0);
        ring.push(b, 20, 1, None, 2, 0, 0);
        let mut cursor = RingCursor::oldest(&ring);
        let seen: Vec<(u64, u64, u32)> =
            drain_all(&ring, &mut cursor).iter().map(|r| (r.sequence, r.time_ns, r.thread)).collect();
        assert_eq!(seen, vec![(1, 5, 2), (2, 7, 3), (3, 10, 1), (4, 20, 1), (5, 20, 2)], "ties: by lane");
        ring.push(b, 30, 1, None, 2, 0, 0);
        let more: Vec<u64> = drain_all(&ring, &mut cursor).iter().map(|r| r.sequence).collect();
        assert_eq!(more, vec![6], "a later read goes on numbering");
        assert_eq!((ring.written(), cursor.missed), (6, 0));
    }

    #[test]
    fn the_newest_records_are_numbered_as_in_a_full_read() {
        let ring = zeroed::<2, 16>();
        let (a, b) = (Ring::<2, 16>::lane_of(0), Ring::<2, 16>::lane_of(1));
        for t in 0..12u64 {
            ring.push(if t % 3 == 0 { b } else { a }, t, 0, None, 1, 0, t);
        }
        let full = drain_all(&ring, &mut RingCursor::oldest(&ring));
        let mut newest = RingCursor::oldest(&ring);
        newest.skip_to_newest(&ring, 3);
        let tail = drain_all(&ring, &mut newest);
        let top: Vec<Record> = tail[tail.len() - 3..].to_vec();
        assert_eq!(top, full[full.len() - 3..].to_vec());
        assert_eq!(newest.missed, 0, "skipped records are not missed");
    }

    #[test]
    fn corrupt_indices_from_shared_memory_never_overflow() {
        let ring = zeroed::<2, 8>();
        for head in [u64::MAX, u64::MAX / 2 + 1, u64::MAX - 3] {
            for lane in &ring.lanes {
                lane.head.store(head, Ordering::Relaxed);
                lane.cleared_below.store(head - 2, Ordering::Relaxed);
            }
            let mut cursor = RingCursor::oldest(&ring);
            cursor.drain(&ring, true, |_| {});
            let _ = ring.lanes[0].read_with(head - 1, &TickScale::NANOSECONDS);
            ring.push(Ring::<2, 8>::lane_of(0), 1, 0, None, 1, 0, 0);
            ring.push(Ring::<2, 8>::lane_of(1), 1, 0, None, 1, 0, 0);
            let _ = (ring.written(), ring.cleared_below(), cursor.position());
        }
        let mut cursor = RingCursor { lanes: vec![LaneCursor { next: u64::MAX - 1 }; 2], missed: u64::MAX };
        for lane in &ring.lanes {
            lane.cleared_below.store(0, Ordering::Relaxed);
            lane.head.store(u64::MAX, Ordering::Relaxed);
        }
        cursor.drain(&ring, true, |_| {});
        assert_eq!(cursor.missed, u64::MAX, "saturates");
    }

    #[test]
    fn clear_discards_without_counting_as_missed() {
        let ring = zeroed::<2, 8>();
        let lane = Ring::<2, 8>::lane_of(0);
        for _ in 0..3 {
            ring.push(lane, 0, 0, None, 0, 0, 0);
        }
        ring.clear();
        ring.push(Ring::<2, 8>::lane_of(1), 5, 2, Some(Site::Completion), 3, -3, 64);
        let mut cursor = RingCursor::oldest(&ring);
        let seen = drain_all(&ring, &mut cursor);
        assert_eq!(cursor.missed, 0);
        assert_eq!(
            seen,
            vec![Record {
                sequence: 4,
                time_ns: 5,
                hook: 2,
                injected: true,
                site: Some(Site::Completion),
                thread: 3,
                code: -3,
                size: 64
            }]
        );
        assert_eq!(ring.written() - ring.cleared_below(), 1);
    }

    /// With this machine's clock: every record's time lies between `CLOCK_MONOTONIC` readings taken around its
    /// push (up to the pairs' uncertainty), and reading twice gives the same times.
    #[test]
    fn stamps_convert_to_monotonic_time_the_same_way_on_every_read() {
        use crate::clock::{monotonic_ns, TickSource};
        let ring = zeroed::<2, 64>();
        ring.start_clock(TickSource::detect());
        let mut brackets = Vec::new();
        for i in 0..40u64 {
            let before = monotonic_ns();
            ring.push(Ring::<2, 64>::lane_of(0), ring.stamp(), 1, None, 7, 0, i);
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
