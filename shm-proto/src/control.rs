//! The strategy as an ordinary value ([`Strategy`]), and its consistent reading from / publication to the shared
//! control block. The CLI and dashboard read-modify-write a `Strategy`; the shims read the control block directly.

use crate::layout::{
    Control, Cursor, DelayMode, Journal, Mode, Site, MAX_HOOKS, PATTERN_CAP, PATTERN_WORDS, POOL_CAP, REPLAY_CAP,
};
use crate::seqlock::{LockError, READ_TRIES};
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};

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
    /// Where an injected fault surfaces.
    pub site: Site,
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
            site: Site::Post,
        }
    }

    /// Whether hook `index` is armed.
    pub fn is_armed(&self, index: usize) -> bool {
        index < MAX_HOOKS && self.arm_mask[index / 64] & (1 << (index % 64)) != 0
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

/// Who is writing: recorded with the writer lock so that others, in any pid namespace, can tell when it died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    /// Its pid in its own pid namespace.
    pub pid: u32,
    /// That namespace's inode.
    pub pid_ns: u64,
    /// Its start time (clock ticks since boot).
    pub start_ticks: u64,
}

impl Writer {
    /// This process.
    pub fn this_process() -> Self {
        Writer {
            pid: std::process::id(),
            pid_ns: crate::process::own_pid_ns(),
            start_ticks: crate::process::own_start_ticks(),
        }
    }
}

/// The process holding a writer lock, as far as the segment tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its pid (in its own pid namespace when `identity` is known, else as it wrote it).
    pub pid: u32,
    /// Its pid namespace and start time, unless it died before recording them.
    pub identity: Option<(u64, u64)>,
}

impl Holder {
    /// Whether the holder has certainly ended (unknown namespaces count as alive).
    pub fn has_ended(&self) -> bool {
        match self.identity {
            Some((pid_ns, start)) => crate::process::certainly_ended(pid_ns, self.pid, start),
            None => crate::process::pid_is_gone(self.pid),
        }
    }
}

/// Why the strategy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A live writer kept changing it.
    #[error("the settings are being changed right now; try again")]
    Busy,
    /// The control block holds values no faultline writes.
    #[error("corrupt control block: {0}")]
    Corrupt(String),
}

impl Journal {
    fn claim(&self, word: u64, writer: &Writer) {
        self.writer_pid_ns.store(writer.pid_ns, Relaxed);
        self.writer_start_ticks.store(writer.start_ticks, Relaxed);
        self.writer_tag.store(word, Release);
    }

    /// Who holds the lock word `held`.
    pub fn holder(&self, held: u64) -> Holder {
        let pid = (held >> 32) as u32;
        let identity = (self.writer_tag.load(Acquire) == held)
            .then(|| (self.writer_pid_ns.load(Relaxed), self.writer_start_ticks.load(Relaxed)));
        Holder { pid, identity }
    }
}

/// Blocks every catchable asynchronous signal for as long as it lives (Ctrl-C, SIGTERM, SIGHUP…): a change is
/// never left half-written by them; they are delivered when the change is complete.
struct SignalsHeld(libc::sigset_t);

impl SignalsHeld {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data; both sets are initialised by sigfillset/pthread_sigmask before use.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            // Faults raised by the code itself must still be delivered (the segment guard handles SIGBUS).
            for synchronous in [libc::SIGBUS, libc::SIGSEGV, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGABRT] {
                libc::sigdelset(&mut all, synchronous);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsHeld(old)
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
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
            site: Site::from_raw(self.site.load(Relaxed)),
        }
    }

    /// Checks what [`Control::load_unsynchronised`] clamps or maps silently: every raw value must be one a
    /// faultline writer stores.
    fn check_raw(&self) -> Result<(), String> {
        let flag = |name: &str, value: u32| (value > 1).then(|| format!("{name} is {value}, not 0 or 1"));
        let checks = [
            flag("enabled", self.enabled.load(Relaxed)),
            flag("recording", self.recording.load(Relaxed)),
            flag("replay_loop", self.replay_loop.load(Relaxed)),
            (self.mode.load(Relaxed) > Mode::Replay as u32).then(|| format!("mode {}", self.mode.load(Relaxed))),
            (self.delay_mode.load(Relaxed) > DelayMode::InsteadOfFault as u32)
                .then(|| format!("delay mode {}", self.delay_mode.load(Relaxed))),
            (self.site.load(Relaxed) > Site::Endpoint as u32).then(|| format!("site {}", self.site.load(Relaxed))),
            (self.pool_len.load(Relaxed) as usize > POOL_CAP)
                .then(|| format!("error pool length {} > {POOL_CAP}", self.pool_len.load(Relaxed))),
            (self.pattern_len.load(Relaxed) as usize > PATTERN_CAP)
                .then(|| format!("pattern length {} > {PATTERN_CAP}", self.pattern_len.load(Relaxed))),
            (self.replay_len.load(Relaxed) as usize > REPLAY_CAP)
                .then(|| format!("replay length {} > {REPLAY_CAP}", self.replay_len.load(Relaxed))),
        ];
        match checks.into_iter().flatten().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Loads and validates (caller ensures stability).
    fn load_checked(&self) -> Result<Strategy, String> {
        self.check_raw()?;
        let strategy = self.load_unsynchronised();
        check_lengths(&strategy).map_err(|e| e.to_string())?;
        Ok(strategy)
    }

    /// Reads the strategy for a tool: consistent and range-checked. While a change is in progress — or was left
    /// half-done by a writer that died — this is the last consistent state (the journal's copy, or the live
    /// fields if the writer had not started on them yet), which is also what a takeover restores.
    pub fn read(&self, journal: &Journal) -> Result<Strategy, ReadError> {
        let settled = || -> Option<Result<Strategy, String>> {
            let seq = self.lock.read_begin();
            if seq & 1 == 0 {
                let value = self.load_checked();
                return self.lock.read_valid(seq).then_some(value);
            }
            let backup_seq = journal.backup_seq.load(Acquire);
            let value =
                if backup_seq.wrapping_add(1) == seq { journal.backup.load_checked() } else { self.load_checked() };
            crate::sync::fence(Acquire);
            let unchanged = self.lock.sequence() == seq && journal.backup_seq.load(Relaxed) == backup_seq;
            unchanged.then_some(value)
        };
        for _ in 0..READ_TRIES * 1024 {
            if let Some(value) = settled() {
                return value.map_err(ReadError::Corrupt);
            }
            crate::sync::spin_hint();
        }
        Err(ReadError::Busy)
    }

    /// Publishes `next` as one consistent update, as `writer`. When it starts a new sequence (see
    /// [`Strategy::restarts_sequence`]) the cursor is reset so the pattern / replay / skip / limit start at the
    /// target's next armed call. A lock holder for which `is_dead` is true is taken over; if it died mid-change,
    /// its change is first rolled back to the journal's copy.
    pub fn publish(
        &self,
        cursor: &Cursor,
        journal: &Journal,
        next: &Strategy,
        is_dead: impl Fn(&Holder) -> bool,
    ) -> Result<(), PublishError> {
        self.publish_as(cursor, journal, next, false, &Writer::this_process(), is_dead)
    }

    /// Like [`Control::publish`], with the writer's identity given, and `always_restart` to start a new sequence
    /// even if `next` equals what is in force (a user who sets the same pattern again means "from the next call").
    pub fn publish_as(
        &self,
        cursor: &Cursor,
        journal: &Journal,
        next: &Strategy,
        always_restart: bool,
        writer: &Writer,
        is_dead: impl Fn(&Holder) -> bool,
    ) -> Result<(), PublishError> {
        check_lengths(next)?;
        let _signals = SignalsHeld::new();
        let guard = self.take_over(journal, writer, is_dead)?;
        let previous = self.keep_backup(journal, &guard);
        let restart = always_restart || previous.restarts_sequence(next);
        self.store_unsynchronised(next);
        if restart {
            cursor.armed_calls.store(0, Relaxed);
            cursor.fault_tickets.store(0, Relaxed);
        }
        drop(guard);
        Ok(())
    }

    /// If a writer died mid-change (odd sequence, holder certainly ended per `is_dead`), takes its lock over and
    /// republishes the last consistent state. `Ok(true)` if it repaired something.
    pub fn repair(
        &self,
        journal: &Journal,
        writer: &Writer,
        is_dead: impl Fn(&Holder) -> bool,
    ) -> Result<bool, PublishError> {
        if self.lock.sequence() & 1 == 0 {
            return Ok(false);
        }
        let _signals = SignalsHeld::new();
        let guard = self.take_over(journal, writer, is_dead)?;
        let repaired = guard.continues_interrupted_write();
        drop(guard);
        Ok(repaired)
    }

    /// Holding the lock, what is stored is exactly the previous state: keeps a copy, then says whose copy it is.
    /// From here on a writer that dies leaves enough behind to roll its change back. Returns the copy.
    fn keep_backup(&self, journal: &Journal, guard: &crate::seqlock::WriteGuard<'_>) -> Strategy {
        let previous = self.load_unsynchronised();
        journal.backup.store_unsynchronised(&previous);
        journal.backup_seq.store(guard.sequence() - 1, Release);
        crate::sync::fence(Release);
        previous
    }

    /// Test support: a publish by `writer` that is killed half-way through the live fields — the lock stays
    /// held and the sequence odd, the switches and mode of `next` are stored, its lists are not — exactly as
    /// [`Control::publish_as`] leaves things when its process dies there (signals cannot stop it; `SIGKILL` can).
    #[doc(hidden)]
    pub fn publish_killed_midway(&self, journal: &Journal, next: &Strategy, writer: &Writer) {
        let Ok(guard) = self.take_over(journal, writer, |_| false) else { return };
        let previous = self.keep_backup(journal, &guard);
        let half =
            Strategy { enabled: next.enabled, mode: next.mode, probability_ppm: next.probability_ppm, ..previous };
        self.store_unsynchronised(&half);
        std::mem::forget(guard);
    }

    /// Takes the writer lock and records who holds it; rolls back a dead writer's half-done change.
    fn take_over(
        &self,
        journal: &Journal,
        writer: &Writer,
        is_dead: impl Fn(&Holder) -> bool,
    ) -> Result<crate::seqlock::WriteGuard<'_>, PublishError> {
        let nonce = (crate::clock::monotonic_ns() as u32) ^ 0x5A5A;
        let guard = self
            .lock
            .try_lock(writer.pid, nonce, |held| is_dead(&journal.holder(held)))
            .map_err(|LockError::Busy { holder_pid }| PublishError::Busy { holder_pid })?;
        journal.claim(guard.word(), writer);
        if guard.continues_interrupted_write() && journal.backup_seq.load(Acquire).wrapping_add(1) == guard.sequence() {
            // The dead writer had started on the live fields: put back what was there before its change.
            let before = journal.backup.load_unsynchronised();
            self.store_unsynchronised(&before);
        }
        Ok(guard)
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
        self.site.store(s.site as u32, Relaxed);
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
