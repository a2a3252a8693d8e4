//! The strategy as an ordinary value ([`Strategy`]), and its consistent reading from / publication to the shared
//! control block. The CLI and dashboard read-modify-write a `Strategy`; the shims read the control block directly.

use crate::layout::{Control, Cursor, DelayMode, Mode, MAX_HOOKS, PATTERN_CAP, PATTERN_WORDS, POOL_CAP, REPLAY_CAP};
use crate::seqlock::{LockError, READ_TRIES};
use crate::sync::Ordering::{AcqRel, Relaxed};

/// Everything a user can set, as one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// Faults are injected at all.
    pub enabled: bool,
    /// Armed calls are recorded into the ring.
    pub recording: bool,
    /// Random, pattern or replay.
    pub mode: Mode,
    /// Random mode: parts per million.
    pub probability_ppm: u32,
    /// Random mode: seed.
    pub seed: u64,
    /// Bit `i` arms hook `i`.
    pub arm_mask: [u64; MAX_HOOKS / 64],
    /// Armed calls passed before the strategy starts.
    pub skip: u64,
    /// Stop after this many faults (0: unlimited).
    pub limit: u64,
    /// Delay action length.
    pub delay_us: u32,
    /// Delay action.
    pub delay_mode: DelayMode,
    /// Codes to inject (1..=32, all errors for the segment's kind).
    pub pool: Vec<i32>,
    /// Pattern mode: `true` = X (fault).
    pub pattern: Vec<bool>,
    /// Replay mode: per-call code, 0 = pass.
    pub replay: Vec<i32>,
    /// Replay mode: loop instead of passing after the end.
    pub replay_loop: bool,
}

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x5EED_FA17_0000_0001;

impl Strategy {
    /// The defaults: disabled, random at 0 %, the kind's default pool, hooks armed per `default_armed`.
    pub fn defaults(default_pool: &[i32], default_armed: impl Fn(usize) -> bool) -> Self {
        let mut arm_mask = [0u64; MAX_HOOKS / 64];
        for hook in (0..MAX_HOOKS).filter(|&h| default_armed(h)) {
            arm_mask[hook / 64] |= 1 << (hook % 64);
        }
        Strategy {
            enabled: false,
            recording: false,
            mode: Mode::Random,
            probability_ppm: 0,
            seed: DEFAULT_SEED,
            arm_mask,
            skip: 0,
            limit: 0,
            delay_us: 0,
            delay_mode: DelayMode::Off,
            pool: default_pool.to_vec(),
            pattern: Vec::new(),
            replay: Vec::new(),
            replay_loop: false,
        }
    }

    /// Whether hook `index` is armed.
    pub fn is_armed(&self, index: usize) -> bool {
        index < MAX_HOOKS && self.arm_mask[index / 64] & (1 << (index % 64)) != 0
    }

    /// Arms or disarms hook `index`.
    pub fn set_armed(&mut self, index: usize, armed: bool) {
        if index < MAX_HOOKS {
            if armed {
                self.arm_mask[index / 64] |= 1 << (index % 64);
            } else {
                self.arm_mask[index / 64] &= !(1 << (index % 64));
            }
        }
    }

    /// The pattern as `X`/`O` text.
    pub fn pattern_text(&self) -> String {
        self.pattern.iter().map(|&x| if x { 'X' } else { 'O' }).collect()
    }

    /// Whether switching from `self` to `next` starts a new call sequence (pattern, replay, skip and limit count
    /// from the next call again).
    pub fn restarts_sequence(&self, next: &Strategy) -> bool {
        self.mode != next.mode
            || self.pattern != next.pattern
            || self.replay != next.replay
            || self.replay_loop != next.replay_loop
            || self.skip != next.skip
            || self.limit != next.limit
            || (!self.enabled && next.enabled)
    }
}

/// Why a strategy could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Another live process is writing this segment right now.
    #[error("another faultline (pid {holder_pid}) is changing this process right now; try again")]
    Busy {
        /// Its pid.
        holder_pid: u32,
    },
    /// A length is over the segment's capacity.
    #[error("{what} has {len} entries; the segment holds at most {cap}")]
    TooLong {
        /// Which list.
        what: &'static str,
        /// Given.
        len: usize,
        /// Allowed.
        cap: usize,
    },
    /// A state the shim could never use.
    #[error("{0}")]
    Invalid(&'static str),
}

impl Control {
    /// Reads the whole strategy consistently. `None` if writers kept it changing or one died mid-write.
    pub fn snapshot(&self) -> Option<Strategy> {
        self.lock.try_read(READ_TRIES * 1024, || self.load_unsynchronised())
    }

    fn load_unsynchronised(&self) -> Strategy {
        let pool_len = (self.pool_len.load(Relaxed) as usize).min(POOL_CAP);
        let pattern_len = (self.pattern_len.load(Relaxed) as usize).min(PATTERN_CAP);
        let replay_len = (self.replay_len.load(Relaxed) as usize).min(REPLAY_CAP);
        Strategy {
            enabled: self.enabled.load(Relaxed) != 0,
            recording: self.recording.load(Relaxed) != 0,
            mode: Mode::from_raw(self.mode.load(Relaxed)),
            probability_ppm: self.probability_ppm.load(Relaxed),
            seed: self.seed.load(Relaxed),
            arm_mask: std::array::from_fn(|i| self.arm_mask[i].load(Relaxed)),
            skip: self.skip.load(Relaxed),
            limit: self.limit.load(Relaxed),
            delay_us: self.delay_us.load(Relaxed),
            delay_mode: DelayMode::from_raw(self.delay_mode.load(Relaxed)),
            pool: self.pool[..pool_len].iter().map(|c| c.load(Relaxed)).collect(),
            pattern: (0..pattern_len).map(|p| self.pattern_bits[p / 64].load(Relaxed) & (1 << (p % 64)) != 0).collect(),
            replay: self.replay[..replay_len].iter().map(|c| c.load(Relaxed)).collect(),
            replay_loop: self.replay_loop.load(Relaxed) != 0,
        }
    }

    /// Publishes `next` as one consistent update. When it starts a new sequence (see
    /// [`Strategy::restarts_sequence`]) the cursor is reset so the pattern / replay / skip / limit start at the
    /// target's next armed call. `is_dead` tells whether a pid holding the writer lock is gone.
    pub fn publish(
        &self,
        cursor: &Cursor,
        next: &Strategy,
        writer_pid: u32,
        is_dead: impl Fn(u32) -> bool,
    ) -> Result<(), PublishError> {
        self.publish_with(cursor, next, false, writer_pid, is_dead)
    }

    /// Like [`Control::publish`], but always starts a new sequence, even if `next` equals what is in force (a user
    /// who sets the same pattern again means "from the next call").
    pub fn publish_and_restart(
        &self,
        cursor: &Cursor,
        next: &Strategy,
        writer_pid: u32,
        is_dead: impl Fn(u32) -> bool,
    ) -> Result<(), PublishError> {
        self.publish_with(cursor, next, true, writer_pid, is_dead)
    }

    fn publish_with(
        &self,
        cursor: &Cursor,
        next: &Strategy,
        always_restart: bool,
        writer_pid: u32,
        is_dead: impl Fn(u32) -> bool,
    ) -> Result<(), PublishError> {
        check_lengths(next)?;
        let guard = self
            .lock
            .try_lock(writer_pid, next.seed as u32 ^ 0x5A5A, is_dead)
            .map_err(|LockError::Busy { holder_pid }| PublishError::Busy { holder_pid })?;
        // Holding the lock, what is stored is exactly the previous state.
        let restart = always_restart || self.load_unsynchronised().restarts_sequence(next);
        self.store_unsynchronised(next);
        if restart {
            cursor.armed_calls.store(0, Relaxed);
            cursor.fault_tickets.store(0, Relaxed);
        }
        drop(guard);
        Ok(())
    }

    fn store_unsynchronised(&self, s: &Strategy) {
        self.enabled.store(u32::from(s.enabled), Relaxed);
        self.recording.store(u32::from(s.recording), Relaxed);
        self.mode.store(s.mode as u32, Relaxed);
        self.probability_ppm.store(s.probability_ppm, Relaxed);
        self.seed.store(s.seed, Relaxed);
        for (word, value) in self.arm_mask.iter().zip(s.arm_mask) {
            word.store(value, Relaxed);
        }
        self.skip.store(s.skip, Relaxed);
        self.limit.store(s.limit, Relaxed);
        self.delay_us.store(s.delay_us, Relaxed);
        self.delay_mode.store(s.delay_mode as u32, Relaxed);
        for (slot, code) in self.pool.iter().zip(s.pool.iter().chain(std::iter::repeat(&0))) {
            slot.store(*code, Relaxed);
        }
        self.pool_len.store(s.pool.len() as u32, Relaxed);
        let mut faults = 0u32;
        for word in 0..PATTERN_WORDS {
            let mut bits = 0u64;
            for (bit, &x) in s.pattern.iter().skip(word * 64).take(64).enumerate() {
                bits |= u64::from(x) << bit;
            }
            self.pattern_rank[word].store(faults, Relaxed);
            self.pattern_bits[word].store(bits, Relaxed);
            faults += bits.count_ones();
        }
        self.pattern_len.store(s.pattern.len() as u32, Relaxed);
        self.pattern_faults.store(faults, Relaxed);
        for (slot, code) in self.replay.iter().zip(s.replay.iter().chain(std::iter::repeat(&0))) {
            slot.store(*code, Relaxed);
        }
        self.replay_len.store(s.replay.len() as u32, Relaxed);
        self.replay_loop.store(u32::from(s.replay_loop), Relaxed);
    }
}

fn check_lengths(s: &Strategy) -> Result<(), PublishError> {
    for (what, len, cap) in [
        ("the error pool", s.pool.len(), POOL_CAP),
        ("the pattern", s.pattern.len(), PATTERN_CAP),
        ("the replay program", s.replay.len(), REPLAY_CAP),
    ] {
        if len > cap {
            return Err(PublishError::TooLong { what, len, cap });
        }
    }
    if s.pool.is_empty() {
        return Err(PublishError::Invalid("the error pool is empty"));
    }
    if s.pool.contains(&0) {
        return Err(PublishError::Invalid("the error pool contains 0, which is success"));
    }
    if s.probability_ppm > 1_000_000 {
        return Err(PublishError::Invalid("probability is over 100 %"));
    }
    if s.mode == crate::layout::Mode::Pattern && s.pattern.is_empty() {
        return Err(PublishError::Invalid("pattern mode needs a pattern"));
    }
    Ok(())
}

impl Cursor {
    /// Claims the next armed-call index of the current sequence.
    #[inline]
    pub fn next_armed_call(&self) -> u64 {
        self.armed_calls.fetch_add(1, Relaxed)
    }

    /// Whether one more fault is allowed under `limit` (0: unlimited). Exact across threads.
    #[inline]
    pub fn take_fault_ticket(&self, limit: u64) -> bool {
        limit == 0 || self.fault_tickets.fetch_add(1, AcqRel) < limit
    }
}
