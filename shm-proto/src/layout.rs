//! The segment's memory layout: `#[repr(C)]`, fixed size, every shared field an atomic.
//!
//! The creator zero-fills the file, initialises everything, then stores `magic` last; readers check magic, ABI
//! version, kind and sizes before trusting anything else. Changing anything here without bumping [`ABI_VERSION`]
//! fails the layout assertions at the bottom of this file.

use crate::ring::Ring;
use crate::seqlock::SeqLock;
use crate::sync::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// First eight bytes of every segment.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FLTLINE\x01");
/// Bumped on every layout or semantic change of the segment.
pub const ABI_VERSION: u32 = 6;

/// Hooks a shim can declare (the CUDA shim needs the most).
pub const MAX_HOOKS: usize = 128;
/// Bytes of a hook name, NUL-padded.
pub const HOOK_NAME_LEN: usize = 48;
/// Bytes of the executable name, NUL-padded.
pub const EXE_NAME_LEN: usize = 64;
/// Positions of an X/O pattern.
pub const PATTERN_CAP: usize = 65_536;
/// 64-bit words of the pattern bitmap.
pub const PATTERN_WORDS: usize = PATTERN_CAP / 64;
/// Codes in an error pool.
pub const POOL_CAP: usize = 32;
/// Calls in a replay program.
pub const REPLAY_CAP: usize = 65_536;
/// Lanes of the flight recorder: one each for the first `RING_LANES - 1` threads, the last shared (ABI 5).
pub const RING_LANES: usize = 4;
/// Records in one lane of the flight recorder.
pub const LANE_CAP: usize = 4_096;
/// The flight recorder as the segment holds it.
pub type SegmentRing = Ring<RING_LANES, LANE_CAP>;
/// Bytes of the flight recorder: its clock line, then each lane's head line and slots.
const RING_BYTES: usize = 64 + RING_LANES * (64 + 64 * LANE_CAP);
/// Counter stripes; each thread writes its own (the last one is shared by any threads beyond).
pub const COUNTER_STRIPES: usize = 32;

/// Which shim owns a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Kind {
    /// `libfaultline_ucx.so`
    Ucx = 1,
    /// `libfaultline_cuda.so`
    Cuda = 2,
}

impl Kind {
    /// The name used in file names, the CLI and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ucx => "ucx",
            Kind::Cuda => "cuda",
        }
    }

    /// Parses `ucx` / `cuda`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ucx" => Some(Kind::Ucx),
            "cuda" => Some(Kind::Cuda),
            _ => None,
        }
    }

    /// Decodes the header's kind field.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Kind::Ucx),
            2 => Some(Kind::Cuda),
            _ => None,
        }
    }
}

/// How armed calls are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Mode {
    /// Each armed call faults with the set probability.
    Random = 0,
    /// X/O pattern, cycling.
    Pattern = 1,
    /// An exact per-call program taken from a recording.
    Replay = 2,
}

impl Mode {
    /// Decodes the control block's mode field (unknown values read as random, the safe default).
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Mode::Pattern,
            2 => Mode::Replay,
            _ => Mode::Random,
        }
    }

    /// The name used by the CLI and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Random => "random",
            Mode::Pattern => "pattern",
            Mode::Replay => "replay",
        }
    }
}

/// What the delay action does to a call that would fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum DelayMode {
    /// No delay.
    Off = 0,
    /// Sleep, then fail.
    BeforeFault = 1,
    /// Sleep, then pass the call through (a slow call instead of a failed one).
    InsteadOfFault = 2,
}

impl DelayMode {
    /// Decodes the control block's delay-mode field.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => DelayMode::BeforeFault,
            2 => DelayMode::InsteadOfFault,
            _ => DelayMode::Off,
        }
    }

    /// The name used by the CLI and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DelayMode::Off => "off",
            DelayMode::BeforeFault => "before-fault",
            DelayMode::InsteadOfFault => "instead-of-fault",
        }
    }
}

pub use crate::site::Site;

/// Identity of the process and its shim. Written once by the creator before `magic`.
#[repr(C, align(64))]
pub struct Header {
    /// [`MAGIC`], stored last by the creator.
    pub magic: AtomicU64,
    /// [`ABI_VERSION`] of the creator.
    pub abi_version: AtomicU32,
    /// [`Kind`] as `u32`.
    pub kind: AtomicU32,
    /// `size_of::<Segment>()` of the creator.
    pub total_size: AtomicU64,
    /// The process id as the process itself sees it (its own pid namespace).
    pub pid: AtomicU32,
    /// Number of valid entries in `hook_names`.
    pub hook_count: AtomicU32,
    /// Field 22 of `/proc/self/stat` (clock ticks since boot), to tell a reused pid from the original process.
    pub start_time_ticks: AtomicU64,
    /// Wall-clock creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: AtomicU64,
    /// `CLOCK_MONOTONIC` ns of a recent intercepted call (updated every few hundred calls per thread).
    pub heartbeat_ns: AtomicU64,
    /// Bit 0: the shim could not find some real function (calls to it fail with a "not found" status).
    pub flags: AtomicU32,
    _reserved: u32,
    /// The hooks the shim arms by default (what `reset` goes back to).
    pub default_arm_mask: [AtomicU64; MAX_HOOKS / 64],
    /// The executable's name, NUL-padded.
    pub exe_name: [AtomicU8; EXE_NAME_LEN],
    /// The shim's hook names, so readers need no hard-coded list.
    pub hook_names: [[AtomicU8; HOOK_NAME_LEN]; MAX_HOOKS],
    /// The inode of the creating process's pid namespace (its name carries it too; see `segment`).
    pub pid_ns: AtomicU64,
}

/// The strategy, written by one writer at a time under `lock` and read consistently by the shims.
#[repr(C, align(64))]
pub struct Control {
    /// Guards every field below for multi-word consistency. Its sequence shares a cache line with `enabled` and
    /// the scalars after it: the shims' fast path reads the two, and only writers ever store to this line.
    pub lock: SeqLock,
    /// 0/1. Also read alone (relaxed) first on the hot path: disabled costs one load.
    pub enabled: AtomicU32,
    /// 0/1: record armed calls into the ring.
    pub recording: AtomicU32,
    /// [`Mode`] as `u32`.
    pub mode: AtomicU32,
    /// Fault probability in parts per million (random mode).
    pub probability_ppm: AtomicU32,
    /// RNG seed (random mode).
    pub seed: AtomicU64,
    /// Bit `i` arms hook `i`.
    pub arm_mask: [AtomicU64; MAX_HOOKS / 64],
    /// Armed calls passed before the strategy starts.
    pub skip: AtomicU64,
    /// Stop after this many faults (0: no limit).
    pub limit: AtomicU64,
    /// Microseconds of the delay action.
    pub delay_us: AtomicU32,
    /// [`DelayMode`] as `u32`.
    pub delay_mode: AtomicU32,
    /// Number of codes in `pool`.
    pub pool_len: AtomicU32,
    /// Number of positions in the pattern.
    pub pattern_len: AtomicU32,
    /// Number of `X` in the pattern.
    pub pattern_faults: AtomicU32,
    /// Number of calls in the replay program.
    pub replay_len: AtomicU32,
    /// 0/1: replay loops instead of passing everything after its end.
    pub replay_loop: AtomicU32,
    /// The shim's periodic stats line, as [`crate::config::StatsInterval::to_raw`] encodes it (0: off). Not part of
    /// the strategy: read and stored alone (relaxed), outside the seqlock and the journal. This word was padding
    /// before, always 0 (off), so segments, shims and tools of ABI 3 with and without it agree.
    pub stats_interval: AtomicU32,
    /// Error codes to inject.
    pub pool: [AtomicI32; POOL_CAP],
    /// Pattern bitmap: bit `p % 64` of word `p / 64` set means position `p` is `X`.
    pub pattern_bits: [AtomicU64; PATTERN_WORDS],
    /// Number of `X` in the words before each word, so an X's ordinal (for code cycling) is O(1).
    pub pattern_rank: [AtomicU32; PATTERN_WORDS],
    /// The replay program: 0 passes the call, anything else is injected as that code.
    pub replay: [AtomicI32; REPLAY_CAP],
    /// [`Site`] as `u32` (ABI 6: this word was tail padding before).
    pub site: AtomicU32,
}

/// Process-wide sequence state the shims advance. Own cache lines: hot in pattern mode.
#[repr(C, align(64))]
pub struct Cursor {
    /// Armed calls since the current strategy started (the pattern / replay position).
    pub armed_calls: AtomicU64,
    _pad0: [u64; 7],
    /// Faults taken against `limit` since the current strategy started.
    pub fault_tickets: AtomicU64,
    _pad1: [u64; 7],
    /// Next thread ordinal to hand out (counter stripe and RNG stream of each thread).
    pub next_thread: AtomicU32,
    _pad2: [u32; 15],
}

/// Calls and faults of one hook in one stripe.
#[repr(C)]
pub struct HookCounter {
    /// Intercepted calls while enabled.
    pub calls: AtomicU64,
    /// Injected faults.
    pub faults: AtomicU64,
}

/// One thread's counters for every hook.
#[repr(C, align(64))]
pub struct Stripe {
    /// Indexed by hook.
    pub hooks: [HookCounter; MAX_HOOKS],
}

/// The whole segment.
#[repr(C, align(64))]
pub struct Segment {
    /// Identity.
    pub header: Header,
    /// Strategy.
    pub control: Control,
    /// Sequence state.
    pub cursor: Cursor,
    /// Per-thread counters; a reader sums the stripes.
    pub stripes: [Stripe; COUNTER_STRIPES],
    /// The flight recorder.
    pub ring: SegmentRing,
    /// Only writers (the tools) touch it: who holds the writer lock, and the last consistent strategy.
    pub journal: Journal,
    /// The Kubernetes pod the process runs in, written once by the creator (ABI 4).
    pub pod: PodSlot,
}

/// Which pod a process runs in ([`crate::pod::PodIdentity`]), each name NUL-padded; all empty outside Kubernetes.
#[repr(C, align(64))]
pub struct PodSlot {
    /// The pod's namespace.
    pub namespace: [AtomicU8; 64],
    /// The pod's name.
    pub name: [AtomicU8; 256],
    /// The container's name.
    pub container: [AtomicU8; 64],
    /// The pod's UID (from the cgroup).
    pub uid: [AtomicU8; 64],
}

impl PodSlot {
    /// Records `identity` (names too long for their field are cut; [`crate::pod`] keeps them within bounds).
    pub fn write(&self, identity: &crate::pod::PodIdentity) {
        write_name(&self.namespace, &identity.namespace);
        write_name(&self.name, &identity.pod);
        write_name(&self.container, &identity.container);
        write_name(&self.uid, &identity.uid);
    }

    /// The recorded identity. A hostile writer can put any bytes here: they come back lossily decoded, and callers
    /// that print them escape control characters as for every name read from a segment.
    pub fn read(&self) -> crate::pod::PodIdentity {
        crate::pod::PodIdentity {
            namespace: read_name(&self.namespace),
            pod: read_name(&self.name),
            container: read_name(&self.container),
            uid: read_name(&self.uid),
        }
    }
}

/// What lets a writer that died mid-change be recovered from (see `control`): the lock holder's identity across
/// pid namespaces, and a copy of the control block as it was before the change in progress. Kept out of the
/// shims' way at the end of the segment.
#[repr(C, align(64))]
pub struct Journal {
    /// The writer-lock word of the holder whose identity follows (identity fields are valid only while it
    /// equals the lock's current word).
    pub writer_tag: AtomicU64,
    /// The holder's pid namespace inode.
    pub writer_pid_ns: AtomicU64,
    /// The holder's start time (`/proc/<pid>/stat` field 22), so a reused pid is not mistaken for it.
    pub writer_start_ticks: AtomicU64,
    /// The (even) sequence whose state `backup` holds; a change in progress has sequence `backup_seq + 1` once
    /// its writer starts on the live fields.
    pub backup_seq: AtomicU64,
    _pad: [u64; 4],
    /// The strategy before the change in progress (its `lock` is unused).
    pub backup: Control,
}

/// Marks types that may live in the shared segment.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only atomics, integers and padding (no pointers, no references, no
/// `Drop`), and every bit pattern — in particular all-zero — is a valid value.
pub unsafe trait ShmSafe {}
// SAFETY: Segment and all its parts are repr(C) aggregates of atomics and integer padding.
unsafe impl ShmSafe for Segment {}

impl Segment {
    /// A zeroed segment in private heap memory (tests, previews). Not initialised: no magic, no strategy.
    pub fn new_zeroed() -> Box<Segment> {
        // SAFETY: Segment is ShmSafe: all-zero is a valid value of every field.
        unsafe { Box::<Segment>::new_zeroed().assume_init() }
    }
}

impl Header {
    /// The executable name written by the creator.
    pub fn exe_name(&self) -> String {
        read_name(&self.exe_name)
    }

    /// Hook name `index`, or `None` past `hook_count`.
    pub fn hook_name(&self, index: usize) -> Option<String> {
        let count = (self.hook_count.load(Ordering::Relaxed) as usize).min(MAX_HOOKS);
        (index < count).then(|| read_name(&self.hook_names[index]))
    }

    /// Every hook name, in table order.
    pub fn hook_names(&self) -> Vec<String> {
        (0..MAX_HOOKS).map_while(|i| self.hook_name(i)).collect()
    }
}

/// Writes `name` NUL-padded (truncated to fit, keeping a final NUL).
pub(crate) fn write_name(dst: &[AtomicU8], name: &str) {
    let bytes = name.as_bytes();
    for (i, cell) in dst.iter().enumerate() {
        let byte = if i + 1 < dst.len() { bytes.get(i).copied().unwrap_or(0) } else { 0 };
        cell.store(byte, Ordering::Relaxed);
    }
}

fn read_name(src: &[AtomicU8]) -> String {
    let bytes: Vec<u8> = src.iter().map(|b| b.load(Ordering::Relaxed)).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

// Layout pins: a change to any of these is an ABI change. Bump ABI_VERSION and update the numbers together.
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(ABI_VERSION == 6, "layout numbers below belong to ABI 6");
    assert!(size_of::<Header>() == 6336);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, abi_version) == 8);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, total_size) == 16);
    assert!(offset_of!(Header, pid) == 24);
    assert!(offset_of!(Header, start_time_ticks) == 32);
    assert!(offset_of!(Header, heartbeat_ns) == 48);
    assert!(offset_of!(Header, default_arm_mask) == 64);
    assert!(offset_of!(Header, exe_name) == 80);
    assert!(offset_of!(Header, hook_names) == 144);
    assert!(offset_of!(Header, pid_ns) == 6288);
    assert!(size_of::<Control>() == 274_688);
    assert!(offset_of!(Control, enabled) == 16);
    assert!(offset_of!(Control, stats_interval) == 100);
    assert!(offset_of!(Control, pool) == 104);
    assert!(offset_of!(Control, pattern_bits) == 232);
    assert!(offset_of!(Control, pattern_rank) == 8424);
    assert!(offset_of!(Control, replay) == 12_520);
    assert!(offset_of!(Control, site) == 274_664);
    assert!(size_of::<Cursor>() == 192);
    assert!(size_of::<Stripe>() == 2048);
    assert!(RING_BYTES == 1_048_896);
    assert!(size_of::<SegmentRing>() == RING_BYTES);
    assert!(offset_of!(Segment, control) == 6336);
    assert!(offset_of!(Segment, cursor) == 6336 + 274_688);
    assert!(offset_of!(Segment, stripes) == 6336 + 274_688 + 192);
    assert!(offset_of!(Segment, ring) == 6336 + 274_688 + 192 + 2048 * COUNTER_STRIPES);
    assert!(size_of::<Journal>() == 64 + 274_688);
    assert!(offset_of!(Journal, backup) == 64);
    assert!(offset_of!(Segment, journal) == 6336 + 274_688 + 192 + 2048 * COUNTER_STRIPES + RING_BYTES);
    assert!(size_of::<PodSlot>() == 448);
    assert!(offset_of!(PodSlot, name) == 64);
    assert!(offset_of!(PodSlot, container) == 320);
    assert!(offset_of!(PodSlot, uid) == 384);
    assert!(offset_of!(Segment, pod) == 6336 + 274_688 + 192 + 2048 * COUNTER_STRIPES + RING_BYTES + 64 + 274_688);
    assert!(size_of::<Segment>() == 6336 + 274_688 + 192 + 2048 * COUNTER_STRIPES + RING_BYTES + 64 + 274_688 + 448);
    assert!(align_of::<Segment>() == 64);
};
