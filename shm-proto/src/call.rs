//! The per-call path both shims run after their reentrancy guard: count, decide, apply the limit, record.
//!
//! No allocation, no lock, no system call: relaxed/acquire atomics, a thread-exclusive counter stripe, and a
//! clock read only when recording (or every [`HEARTBEAT_EVERY`] calls of a hook for the heartbeat).
//!
//! The fast path ([`Segment::try_pass`]) reads one shared word of the strategy: the control block's seqlock
//! sequence. Each thread keeps a [`Plan`], the few strategy fields a call that passes needs, copied from one
//! consistent read; while the sequence is the one the plan was read at, the plan *is* the published strategy (a
//! writer changes the sequence before and after it writes). A call in random mode then costs a draw from the
//! thread's own RNG and one comparison (and, when recording, a ring push). Everything rarer (a fault, pattern and
//! replay positions, skip, the heartbeat, a changed strategy) takes the general path, which decides from a
//! consistent read of the control block; the fast path gives way to it before changing anything, so both count and
//! draw exactly alike.

use crate::clock::monotonic_ns;
use crate::decide::{decide, Decision, Rng};
use crate::layout::{Control, HookCounter, Mode, Segment, SegmentRing, Site, COUNTER_STRIPES, MAX_HOOKS, POOL_CAP};
use crate::ring::LaneId;
use crate::seqlock::READ_TRIES;
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Calls of one hook by one thread between heartbeat updates.
pub const HEARTBEAT_EVERY: u64 = 256;

/// What a thread keeps between its calls (in the shim's thread-local storage). Plain integers and flags, so the
/// all-zero value is valid (a shim may lay it over zeroed storage; it must [`register`](ThreadCtx::register)
/// before the first call; a zeroed context never takes the fast path, being not `exclusive`). The fields the fast
/// path reads come first and fill [`ThreadCtx::HOT_BYTES`], so that with a few bytes of its own in front a shim
/// keeps one cache line per thread hot.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct ThreadCtx {
    rng: Rng,
    /// The counter stripe this thread writes.
    stripe: u32,
    /// Whether no other thread writes that stripe (then a plain load+store counts exactly).
    exclusive: bool,
    /// The flight recorder's lane this thread writes.
    lane: LaneId,
    plan: Plan,
    ordinal: u32,
    tid: u32,
    seed: u64,
}

/// The strategy as the fast path needs it, valid while the control block's sequence equals `seq`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Plan {
    /// The sequence it was read at; odd (never a stable sequence) for "no plan yet".
    seq: u64,
    /// Bit `i` arms hook `i`.
    arm_mask: [u64; MAX_HOOKS / 64],
    /// A call in random mode faults iff the high 32 bits of its draw are below this (see [`fault_threshold`]).
    threshold: u32,
    /// Random mode below 100 %, no skip, a non-empty pool: decided from the thread's RNG alone, no shared cursor.
    random_without_index: bool,
    /// Record armed calls.
    recording: bool,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(ThreadCtx, plan) + size_of::<Plan>() == ThreadCtx::HOT_BYTES);
};

const NO_PLAN: u64 = 1;

/// `decide` faults a random-mode call iff `below(hi, 1_000_000) < ppm`, i.e. `hi · 10⁶ < ppm · 2³²`, i.e.
/// `hi < ⌈ppm · 2³² / 10⁶⌉` for the integer `hi`: the same decision as one comparison. Below 100 % the bound
/// fits 32 bits (100 %, where every draw faults, never takes the fast path).
fn fault_threshold(ppm: u32) -> u32 {
    u32::try_from((u64::from(ppm) << 32).div_ceil(1_000_000)).unwrap_or(u32::MAX)
}

impl Plan {
    /// The plan for what `control` holds now; call inside a seqlock read.
    fn load(control: &Control, seq: u64) -> (Plan, u64) {
        let mode = Mode::from_raw(control.mode.load(Relaxed));
        let pool_len = (control.pool_len.load(Relaxed) as usize).min(POOL_CAP);
        let ppm = control.probability_ppm.load(Relaxed);
        let plan = Plan {
            seq,
            arm_mask: std::array::from_fn(|i| control.arm_mask[i].load(Relaxed)),
            threshold: fault_threshold(ppm),
            random_without_index: mode == Mode::Random
                && ppm < 1_000_000
                && control.skip.load(Relaxed) == 0
                && pool_len > 0,
            recording: control.recording.load(Relaxed) != 0,
        };
        (plan, control.seed.load(Relaxed))
    }

    #[inline(always)]
    fn armed(&self, hook: usize) -> bool {
        self.arm_mask[hook / 64] & (1 << (hook % 64)) != 0
    }
}

impl ThreadCtx {
    /// Bytes at the start of a context that the fast path reads.
    pub const HOT_BYTES: usize = 48;

    /// Registers a new thread with the segment (cold: once per thread). `tid` is the kernel thread id.
    pub fn register(segment: &Segment, tid: u32) -> Self {
        let ordinal = segment.cursor.next_thread.fetch_add(1, Relaxed);
        let seed = segment.control.seed.load(Relaxed);
        let last = COUNTER_STRIPES as u32 - 1;
        ThreadCtx {
            ordinal,
            tid,
            stripe: ordinal.min(last),
            exclusive: ordinal < last,
            lane: SegmentRing::lane_of(ordinal),
            seed,
            rng: Rng::for_thread(seed, ordinal),
            plan: Plan {
                seq: NO_PLAN,
                arm_mask: [0; MAX_HOOKS / 64],
                threshold: 0,
                random_without_index: false,
                recording: false,
            },
        }
    }

    /// The kernel thread id this context was registered with.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The flight recorder's lane this thread writes.
    pub fn lane(&self) -> LaneId {
        self.lane
    }
}

/// Adds one; returns the count before.
#[inline(always)]
fn bump(counter: &AtomicU64, exclusive: bool) -> u64 {
    if exclusive {
        // Only this thread writes this stripe: a plain load+store is exact and avoids a locked instruction.
        let before = counter.load(Relaxed);
        counter.store(before.wrapping_add(1), Relaxed);
        before
    } else {
        counter.fetch_add(1, Relaxed)
    }
}

impl Segment {
    /// Whether faults are enabled: the one relaxed load a disabled shim pays per call.
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        self.control.enabled.load(Relaxed) != 0
    }

    /// Decides one intercepted call of `hook` (an index into the hook table) whose size argument is `size`.
    /// Call only while [`Segment::enabled`]; the caller performs the returned decision.
    #[inline]
    pub fn on_call(&self, hook: usize, ctx: &mut ThreadCtx, size: u64) -> Decision {
        if self.try_pass(hook, ctx, size) {
            return Decision::Pass;
        }
        self.on_call_general(hook, ctx, size)
    }

    /// The fast path of [`Segment::on_call`], for a shim to run without leaving its hook: if this call passes and
    /// needs nothing rare — a current plan, no heartbeat due, and either an unarmed hook or random mode drawing a
    /// pass — it counts (and records) the call exactly as `on_call` would and returns true. Otherwise it changes
    /// nothing and returns false, and the caller runs `on_call`. Loads, compares, two stores; a call only to
    /// record.
    #[inline(always)]
    pub fn try_pass(&self, hook: usize, ctx: &mut ThreadCtx, size: u64) -> bool {
        if hook >= MAX_HOOKS || !ctx.exclusive || self.control.lock.read_begin() != ctx.plan.seq {
            return false;
        }
        let calls = &self.stripes[ctx.stripe as usize % COUNTER_STRIPES].hooks[hook].calls;
        let before = calls.load(Relaxed);
        if before.is_multiple_of(HEARTBEAT_EVERY) {
            return false;
        }
        if ctx.plan.armed(hook) {
            if !ctx.plan.random_without_index {
                return false;
            }
            let mut rng = ctx.rng;
            if (rng.next_u64() >> 32) < u64::from(ctx.plan.threshold) {
                return false;
            }
            ctx.rng = rng;
            if ctx.plan.recording {
                self.record(hook, ctx, None, 0, size);
            }
        }
        calls.store(before.wrapping_add(1), Relaxed);
        true
    }

    /// Everything `try_pass` leaves: counts (and beats), re-reads a changed strategy, decides from a consistent
    /// read of the control block, records.
    #[inline(never)]
    fn on_call_general(&self, hook: usize, ctx: &mut ThreadCtx, size: u64) -> Decision {
        if hook >= MAX_HOOKS {
            return Decision::Pass;
        }
        let counters = &self.stripes[ctx.stripe as usize % COUNTER_STRIPES].hooks[hook];
        if bump(&counters.calls, ctx.exclusive).is_multiple_of(HEARTBEAT_EVERY) {
            self.beat();
        }
        if self.control.lock.read_begin() != ctx.plan.seq && !self.replan(ctx) {
            return self.pass_unplanned(hook, ctx, size);
        }
        if !ctx.plan.armed(hook) {
            return Decision::Pass;
        }
        // Random mode without skip needs no process-wide position: keep threads off the shared cursor line.
        let index = if ctx.plan.random_without_index { 0 } else { self.cursor.next_armed_call() };
        let decision = self.decide_general(index, ctx.rng, ctx, counters);
        if ctx.plan.recording {
            let (fault, code) = match decision {
                Decision::Fault { code, site, .. } => (Some(site), code),
                _ => (None, 0),
            };
            self.record(hook, ctx, fault, code, size);
        }
        decision
    }

    /// The strategy changed since this thread's plan was read (or it has none yet): reads it again. False if a
    /// writer stayed mid-update for every try (or died there): it is never waited for.
    #[cold]
    #[inline(never)]
    fn replan(&self, ctx: &mut ThreadCtx) -> bool {
        let control = &self.control;
        for _ in 0..READ_TRIES {
            let begin = control.lock.read_begin();
            let (plan, seed) = Plan::load(control, begin);
            if control.lock.read_valid(begin) {
                ctx.plan = plan;
                if seed != ctx.seed {
                    ctx.seed = seed;
                    ctx.rng = Rng::for_thread(seed, ctx.ordinal);
                }
                return true;
            }
            crate::sync::spin_hint();
        }
        false
    }

    /// A call that passes because no consistent strategy could be read; recorded if recording is on.
    #[cold]
    #[inline(never)]
    fn pass_unplanned(&self, hook: usize, ctx: &ThreadCtx, size: u64) -> Decision {
        let armed = self.control.arm_mask[hook / 64].load(Relaxed) & (1 << (hook % 64)) != 0;
        if armed && self.control.recording.load(Relaxed) != 0 {
            self.record(hook, ctx, None, 0, size);
        }
        Decision::Pass
    }

    /// Decides armed call `index` from a consistent read of the control block with the thread's RNG (`rng`),
    /// applies the fault limit and counts the fault.
    #[inline]
    fn decide_general(&self, index: u64, rng: Rng, ctx: &mut ThreadCtx, counters: &HookCounter) -> Decision {
        let control = &self.control;
        let read = control.lock.try_read(READ_TRIES, || {
            let mut next = rng;
            (decide(control, index, &mut next), control.limit.load(Relaxed), next)
        });
        // `None`: a writer is mid-update (or died there): never stall the application, pass.
        let Some((decision, limit, next_rng)) = read else { return Decision::Pass };
        ctx.rng = next_rng;
        if decision == Decision::Pass || !self.cursor.take_fault_ticket(limit) {
            return Decision::Pass;
        }
        if let Decision::Fault { .. } = decision {
            bump(&counters.faults, ctx.exclusive);
        }
        decision
    }

    /// Appends the call to the flight recorder. Its rare cases (a clock refresh, no TSC) are a tail call, so the
    /// common one saves no registers.
    #[inline(never)]
    fn record(&self, hook: usize, ctx: &ThreadCtx, fault: Option<Site>, code: i32, size: u64) {
        match self.ring.quick_stamp() {
            Some(ticks) => self.ring.push(ctx.lane, ticks, hook as u16, fault, ctx.tid, code, size),
            None => self.record_refreshing(hook as u16, ctx, fault, code, size),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_refreshing(&self, hook: u16, ctx: &ThreadCtx, fault: Option<Site>, code: i32, size: u64) {
        self.ring.push(ctx.lane, self.ring.stamp_refreshing(), hook, fault, ctx.tid, code, size);
    }

    /// Marks the process as alive and calling.
    #[cold]
    #[inline(never)]
    fn beat(&self) {
        self.header.heartbeat_ns.store(monotonic_ns(), Relaxed);
    }

    /// Calls and faults of `hook`, summed over the stripes.
    pub fn hook_totals(&self, hook: usize) -> (u64, u64) {
        if hook >= MAX_HOOKS {
            return (0, 0);
        }
        self.stripes.iter().fold((0, 0), |(calls, faults), stripe| {
            let c = &stripe.hooks[hook];
            (calls + c.calls.load(Relaxed), faults + c.faults.load(Relaxed))
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::fault_threshold;

    /// The one comparison of the fast path agrees with `decide`'s `below(hi, 10⁶) < ppm` right at the boundary.
    #[test]
    fn the_fault_threshold_is_exactly_decides_boundary() {
        let below = |hi: u64| (hi * 1_000_000) >> 32;
        for ppm in [0u32, 1, 2, 3, 7, 999, 300_000, 333_333, 500_000, 999_999] {
            let threshold = u64::from(fault_threshold(ppm));
            if threshold > 0 {
                assert!(below(threshold - 1) < u64::from(ppm), "ppm {ppm}: the last faulting draw");
            }
            assert!(below(threshold) >= u64::from(ppm), "ppm {ppm}: the first passing draw");
        }
        assert_eq!(fault_threshold(0), 0, "0 %: no draw faults");
    }
}
