//! The decision engine: a pure function of (control block, armed-call index, per-thread RNG) shared by both shims.
//!
//! Semantics (from the product brief): the cursor advances once per armed call, process-wide; `skip` armed calls
//! pass before the strategy starts; a pattern `X` faults and takes the next pool code in order, cycling; random mode
//! faults with the set probability and draws the code uniformly from the pool; replay overrides both and ignores
//! skip and limit. `limit` (stop after M faults) needs a process-wide count and is applied by the caller
//! ([`crate::Cursor::take_fault_ticket`]) after a successful consistent read.

use crate::layout::{Control, DelayMode, Mode, Site, PATTERN_CAP, POOL_CAP, REPLAY_CAP};
use crate::sync::Ordering::Relaxed;

/// What to do with one intercepted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Call the real function.
    Pass,
    /// Inject `code` where `site` says (at the call: return it without calling the real function), after sleeping
    /// `delay_us` (0: no sleep).
    Fault {
        /// The injected status.
        code: i32,
        /// Sleep before failing.
        delay_us: u32,
        /// Where the application sees it (read in the same consistent read as the rest of the decision).
        site: Site,
    },
    /// Sleep `us`, then call the real function (the delay action "instead of failing").
    Delay {
        /// Microseconds.
        us: u32,
    },
}

/// A per-thread wyrand stream: cheap, statistically solid for this, and reproducible from (seed, thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The stream of thread `ordinal` (0 for the first thread that made an armed call) under `seed`.
    pub fn for_thread(seed: u64, ordinal: u32) -> Self {
        // SplitMix64's finaliser spreads (seed, thread) over the whole state space, so the threads' streams (each
        // a walk of the state by a fixed odd step) start at unrelated points.
        let mut z = seed ^ u64::from(ordinal).wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng { state: z ^ (z >> 31) }
    }

    /// The next 64 random bits (wyrand: one add, one 64×64→128 multiply; passes BigCrush and PractRand).
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xA076_1D64_78BD_642F);
        let product = u128::from(self.state) * u128::from(self.state ^ 0xE703_7ED1_A0B4_28DB);
        (product >> 64) as u64 ^ product as u64
    }
}

/// Maps 32 random bits uniformly onto `0..n` (Lemire's multiply-shift; bias below 2^-32 · n).
#[inline]
fn below(bits: u32, n: u64) -> u64 {
    (u64::from(bits) * n) >> 32
}

/// Decides armed call number `index` (0-based since the strategy started). Loads are relaxed: call this inside a
/// seqlock read so the result is discarded if a writer intervened.
#[inline(always)]
pub fn decide(control: &Control, index: u64, rng: &mut Rng) -> Decision {
    let mode = Mode::from_raw(control.mode.load(Relaxed));
    if mode == Mode::Replay {
        return replay(control, index);
    }
    let skip = control.skip.load(Relaxed);
    if index < skip {
        return Decision::Pass;
    }
    let pool_len = (control.pool_len.load(Relaxed) as usize).min(POOL_CAP) as u64;
    if pool_len == 0 {
        return Decision::Pass; // never inject "success"
    }
    let code_ordinal = match mode {
        Mode::Random => {
            let bits = rng.next_u64();
            let ppm = u64::from(control.probability_ppm.load(Relaxed));
            if below((bits >> 32) as u32, 1_000_000) >= ppm {
                return Decision::Pass;
            }
            below(bits as u32, pool_len)
        }
        _ => {
            let len = (control.pattern_len.load(Relaxed) as usize).min(PATTERN_CAP) as u64;
            if len == 0 {
                return Decision::Pass;
            }
            let step = index - skip;
            let position = (step % len) as usize;
            let word = control.pattern_bits[position / 64].load(Relaxed);
            let bit = 1u64 << (position % 64);
            if word & bit == 0 {
                return Decision::Pass;
            }
            let faults_per_cycle = u64::from(control.pattern_faults.load(Relaxed));
            let before_in_word = u64::from((word & (bit - 1)).count_ones());
            let rank = u64::from(control.pattern_rank[position / 64].load(Relaxed)) + before_in_word;
            ((step / len) * faults_per_cycle + rank) % pool_len
        }
    };
    let code = control.pool[code_ordinal as usize].load(Relaxed);
    if code == 0 {
        return Decision::Pass;
    }
    with_delay(control, code)
}

#[inline(never)]
fn replay(control: &Control, index: u64) -> Decision {
    let len = (control.replay_len.load(Relaxed) as usize).min(REPLAY_CAP) as u64;
    if len == 0 {
        return Decision::Pass;
    }
    let position = if control.replay_loop.load(Relaxed) != 0 {
        index % len
    } else if index < len {
        index
    } else {
        return Decision::Pass;
    };
    match control.replay[position as usize].load(Relaxed) {
        0 => Decision::Pass,
        code => Decision::Fault { code, delay_us: 0, site: Site::from_raw(control.site.load(Relaxed)) },
    }
}

fn with_delay(control: &Control, code: i32) -> Decision {
    let site = Site::from_raw(control.site.load(Relaxed));
    match DelayMode::from_raw(control.delay_mode.load(Relaxed)) {
        DelayMode::Off => Decision::Fault { code, delay_us: 0, site },
        DelayMode::BeforeFault => Decision::Fault { code, delay_us: control.delay_us.load(Relaxed), site },
        DelayMode::InsteadOfFault => Decision::Delay { us: control.delay_us.load(Relaxed) },
    }
}
