//! The per-call path both shims run after their reentrancy guard: count, decide, apply the limit, record.
//!
//! No allocation, no lock, no system call: relaxed/acquire atomics, one bounded seqlock read, a thread-exclusive
//! counter stripe, and the vDSO clock only when recording (or every [`HEARTBEAT_EVERY`] calls for the heartbeat).

use crate::decide::{decide, Decision, Rng};
use crate::layout::{Mode, Segment, COUNTER_STRIPES, MAX_HOOKS};
use crate::seqlock::READ_TRIES;
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Calls between heartbeat updates of one thread.
pub const HEARTBEAT_EVERY: u32 = 256;

/// What a thread keeps between its calls (in the shim's thread-local storage).
#[derive(Debug, Clone, Copy)]
pub struct ThreadCtx {
    ordinal: u32,
    tid: u32,
    seed: u64,
    rng: Rng,
    calls: u32,
}

impl ThreadCtx {
    /// Registers a new thread with the segment (cold: once per thread). `tid` is the kernel thread id.
    pub fn register(segment: &Segment, tid: u32) -> Self {
        let ordinal = segment.cursor.next_thread.fetch_add(1, Relaxed);
        let seed = segment.control.seed.load(Relaxed);
        ThreadCtx { ordinal, tid, seed, rng: Rng::for_thread(seed, ordinal), calls: 0 }
    }

    /// This thread's counter stripe, and whether it has it to itself.
    #[inline]
    fn stripe(&self) -> (usize, bool) {
        let last = COUNTER_STRIPES - 1;
        if (self.ordinal as usize) < last {
            (self.ordinal as usize, true)
        } else {
            (last, false)
        }
    }
}

#[inline]
fn bump(counter: &AtomicU64, exclusive: bool) {
    if exclusive {
        // Only this thread writes this stripe: a plain load+store is exact and avoids a locked instruction.
        counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
    } else {
        counter.fetch_add(1, Relaxed);
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (vDSO, no system call on Linux).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
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
        if hook >= MAX_HOOKS {
            return Decision::Pass;
        }
        let control = &self.control;
        let (stripe, exclusive) = ctx.stripe();
        let counters = &self.stripes[stripe].hooks[hook];
        bump(&counters.calls, exclusive);
        ctx.calls = ctx.calls.wrapping_add(1);
        if ctx.calls % HEARTBEAT_EVERY == 1 {
            self.header.heartbeat_ns.store(monotonic_ns(), Relaxed);
        }
        if control.arm_mask[hook / 64].load(Relaxed) & (1 << (hook % 64)) == 0 {
            return Decision::Pass;
        }
        let seed = control.seed.load(Relaxed);
        if seed != ctx.seed {
            ctx.seed = seed;
            ctx.rng = Rng::for_thread(seed, ctx.ordinal);
        }
        // Random mode without skip needs no process-wide position: keep threads off the shared cursor line.
        let needs_index = Mode::from_raw(control.mode.load(Relaxed)) != Mode::Random || control.skip.load(Relaxed) != 0;
        let index = if needs_index { self.cursor.next_armed_call() } else { 0 };
        let rng = ctx.rng;
        let read = control.lock.try_read(READ_TRIES, || {
            let mut next = rng;
            (decide(control, index, &mut next), control.limit.load(Relaxed), next)
        });
        let Some((mut decision, limit, next_rng)) = read else {
            return Decision::Pass; // a writer is mid-update (or died there): never stall the application
        };
        ctx.rng = next_rng;
        if decision != Decision::Pass && !self.cursor.take_fault_ticket(limit) {
            decision = Decision::Pass;
        }
        let code = match decision {
            Decision::Fault { code, .. } => {
                bump(&counters.faults, exclusive);
                code
            }
            _ => 0,
        };
        if control.recording.load(Relaxed) != 0 {
            self.ring.push(monotonic_ns(), hook as u16, code != 0, ctx.tid, code, size);
        }
        decision
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
