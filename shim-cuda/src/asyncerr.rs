//! The `completion` fault site: asynchronous errors, as a GPU reports them.
//!
//! On a GPU, a kernel that faults or a copy that fails does not fail its launch: the launch returned long
//! before. The error surfaces at the next call that waits for that work (a stream, event or device
//! synchronisation, a blocking copy) and in the runtime's per-thread last error. With `FAULTLINE_SITE=completion`
//! a faulted asynchronous call ([`Flow::Async`]: launches, `*Async` copies) does not run, returns success and
//! leaves a *pending error* here; the next synchronising call ([`Flow::Sync`]) whose scope covers it returns the
//! code instead of its own status, and consumes it. `cudaGetLastError` / `cudaPeekAtLastError`
//! ([`Flow::LastError`]) see pending errors of the current device and the thread's *injected last error*, which
//! every injected runtime-API failure sets (as the real runtime records a failing call's status).
//!
//! Everything is fixed-size and allocation-free: [`CAPACITY`] pending errors in a static table (a full table
//! makes the next deferred fault surface at its call, as `post`), and one `i32` of thread-local state touched
//! only on slow paths. The gates on the hot paths are one relaxed load each ([`pending`], [`quiet`]).

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize};

use crate::xid::{self, Api};

/// A stream handle as an integer (`cudaStream_t` / `CUstream`).
pub type Stream = usize;

/// The legacy default stream: `0` (NULL) or `cudaStreamLegacy` / `CU_STREAM_LEGACY` (`0x1`).
fn legacy(stream: Stream) -> bool {
    stream <= 1
}

/// What a call waits for, when it reports pending errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The work of one stream (`cudaStreamSynchronize`, `cuStreamQuery`, …).
    Stream(Stream),
    /// All work of the current device (device / context / event synchronisation, blocking copies).
    Device,
}

/// How an intercepted call takes part in asynchronous errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Synchronous by nature: every site fails it at the call.
    Plain,
    /// Enqueues work on this stream: under `completion` a fault is deferred to the next synchronisation.
    Async(Stream),
    /// Waits for work: reports (and consumes) a pending error of its scope.
    Sync(Scope),
    /// `cudaGetLastError` (`consume`) / `cudaPeekAtLastError`.
    LastError {
        /// Whether the answer is cleared (`cudaGetLastError`) or left (`cudaPeekAtLastError`).
        consume: bool,
    },
}

/// Pending errors at most; one more deferred fault surfaces at its call.
pub const CAPACITY: usize = 32;

/// A slot's state word: a generation in the high bits (so a reader can tell a slot that was freed and reused
/// while it read the fields), the tag in the low two.
const FREE: u32 = 0;
const BUSY: u32 = 1;
const SET: u32 = 2;
const TAG: u32 = 3;
const GENERATION: u32 = 4;

/// One pending error. The fields are written while the slot is `BUSY` (owned by one writer) and published by
/// storing `SET`; they do not change while it is `SET`.
struct Pending {
    state: AtomicU32,
    /// The device the failed work ran on (-1: unknown, matches every device).
    device: AtomicI32,
    stream: AtomicUsize,
    /// Pool numbering.
    code: AtomicI32,
    /// Order of deferral (the oldest error of a scope is reported first).
    order: AtomicU64,
}

impl Pending {
    const fn new() -> Self {
        Pending {
            state: AtomicU32::new(FREE),
            device: AtomicI32::new(-1),
            stream: AtomicUsize::new(0),
            code: AtomicI32::new(0),
            order: AtomicU64::new(0),
        }
    }
}

static TABLE: [Pending; CAPACITY] = [const { Pending::new() }; CAPACITY];
/// Slots `SET`: the gate of every synchronising call.
static PENDING: AtomicU32 = AtomicU32::new(0);
static ORDER: AtomicU64 = AtomicU64::new(0);
static FULL_REPORTED: AtomicBool = AtomicBool::new(false);
/// Threads whose injected last error is set: with [`PENDING`], the gate of `cudaGetLastError`.
static LAST_ERRORS: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// This thread's injected last error (runtime numbering; 0: none).
    static LAST_ERROR: Cell<c_int> = const { Cell::new(0) };
}

/// Whether any error is pending: one relaxed load, what a synchronising call pays.
#[inline(always)]
pub fn pending() -> bool {
    PENDING.load(Relaxed) != 0
}

/// Whether `cudaGetLastError` / `cudaPeekAtLastError` can go straight to the runtime: no pending error and no
/// thread with an injected last error (two relaxed loads).
#[inline(always)]
pub fn quiet() -> bool {
    PENDING.load(Relaxed) == 0 && LAST_ERRORS.load(Relaxed) == 0
}

/// Defers `code` (pool numbering), failed work on `stream` of `device`, to the next synchronisation that covers
/// it. `false` if the table is full (the fault then surfaces at its call).
#[cold]
pub fn defer(device: c_int, stream: Stream, code: c_int) -> bool {
    for slot in &TABLE {
        let state = slot.state.load(Relaxed);
        if state & TAG != FREE || slot.state.compare_exchange(state, state | BUSY, Acquire, Relaxed).is_err() {
            continue;
        }
        // A reader that sees any of the stores below also sees the slot `BUSY` when it re-reads the state (the
        // seqlock writer's fence), so it never takes a half-written slot for the one it read as `SET`.
        fence(Release);
        slot.device.store(device, Relaxed);
        slot.stream.store(stream, Relaxed);
        slot.code.store(code, Relaxed);
        slot.order.store(ORDER.fetch_add(1, Relaxed), Relaxed);
        slot.state.store((state & !TAG) | SET, Release);
        PENDING.fetch_add(1, Relaxed);
        return true;
    }
    if !FULL_REPORTED.swap(true, Relaxed) {
        shim_runtime::log!("{CAPACITY} asynchronous errors pending: further completion faults surface at their call");
    }
    false
}

/// A consistent copy of a `SET` slot, and the state word it was read under.
#[derive(Clone, Copy)]
struct Seen {
    state: u32,
    device: c_int,
    stream: Stream,
    code: c_int,
    order: u64,
}

fn read(slot: &Pending) -> Option<Seen> {
    let state = slot.state.load(Acquire);
    if state & TAG != SET {
        return None;
    }
    let seen = Seen {
        state,
        device: slot.device.load(Relaxed),
        stream: slot.stream.load(Relaxed),
        code: slot.code.load(Relaxed),
        order: slot.order.load(Relaxed),
    };
    fence(Acquire);
    (slot.state.load(Relaxed) == state).then_some(seen)
}

/// Frees the slot read as `seen`; `false` if another thread consumed it first.
fn consume(slot: &Pending, seen: &Seen) -> bool {
    let next = (seen.state & !TAG).wrapping_add(GENERATION) | FREE;
    let won = slot.state.compare_exchange(seen.state, next, AcqRel, Relaxed).is_ok();
    if won {
        PENDING.fetch_sub(1, Relaxed);
        #[cfg(test)]
        tests::CONSUMED.fetch_add(1, Relaxed);
    }
    won
}

/// Whether a pending error on (`device`, `stream`) is covered by a call on `device` waiting for `scope`. An
/// unknown device (-1) on either side matches any; streams match if equal or if either is the legacy default
/// stream (which synchronises with the other blocking streams); `cudaStreamPerThread` (`0x2`) only matches itself.
fn covers(scope: Scope, device: c_int, pending_device: c_int, pending_stream: Stream) -> bool {
    let device_matches = device < 0 || pending_device < 0 || device == pending_device;
    device_matches
        && match scope {
            Scope::Device => true,
            Scope::Stream(stream) => stream == pending_stream || legacy(stream) || legacy(pending_stream),
        }
}

/// The oldest pending error covered by `scope` on `device` (pool numbering); with `take`, every error the scope
/// covers is consumed (the call waited for all that work), and the oldest one it consumed is returned.
fn find(scope: Scope, device: c_int, take: bool) -> Option<c_int> {
    let mut oldest: Option<(u64, c_int)> = None;
    for slot in &TABLE {
        let Some(seen) = read(slot) else { continue };
        if !covers(scope, device, seen.device, seen.stream) || (take && !consume(slot, &seen)) {
            continue;
        }
        if oldest.is_none_or(|(order, _)| seen.order < order) {
            oldest = Some((seen.order, seen.code));
        }
    }
    oldest.map(|(_, code)| code)
}

/// After a synchronising call of `api` waiting for `scope` returned `status`: the code of a pending error it
/// covers (in `api`'s numbering), consumed, or `status`. An error that happened earlier wins over the call's
/// own status. A sticky code (the active XID preset's) kills the GPU now; a runtime call also records it as the
/// thread's last error.
#[cold]
#[inline(never)]
pub fn report(api: Api, scope: Scope, status: c_int) -> c_int {
    let Some(code) = find(scope, crate::device::context_device(), true) else { return status };
    xid::note_injected(crate::RUNTIME.segment(), code);
    let code = xid::code_for(api, code);
    if api == Api::Runtime {
        set_last_error(code);
    }
    code
}

/// Records `code` (runtime numbering) as this thread's injected last error.
#[cold]
pub fn set_last_error(code: c_int) {
    let _ = LAST_ERROR.try_with(|last| {
        if last.replace(code) == 0 && code != 0 {
            LAST_ERRORS.fetch_add(1, Relaxed);
        }
    });
}

/// This thread's injected last error (0: none), cleared with `consume`.
fn last_error(consume: bool) -> c_int {
    LAST_ERROR
        .try_with(|last| {
            let code = last.get();
            if consume && code != 0 {
                last.set(0);
                LAST_ERRORS.fetch_sub(1, Relaxed);
            }
            code
        })
        .unwrap_or(0)
}

/// What `cudaGetLastError` (`consume`) / `cudaPeekAtLastError` answer from the shim's side, if anything: the
/// dead GPU's code (sticky: every time), else the thread's injected last error, else a pending error of the
/// current device (runtime numbering; a sticky one kills the GPU, as a report does). `None`: ask the real
/// runtime.
#[cold]
#[inline(never)]
pub fn last_error_answer(consume: bool) -> Option<c_int> {
    if !crate::RUNTIME.enabled() {
        if xid::dead() {
            xid::revive(); // faults were disabled: the GPU is back (as `intercept::enter` does)
        }
    } else if let Some(code) = crate::RUNTIME.segment().and_then(xid::dead_now) {
        return Some(xid::code_for(Api::Runtime, code));
    }
    match last_error(consume) {
        0 => {}
        code => return Some(code),
    }
    if !pending() {
        return None;
    }
    let code = find(Scope::Device, crate::device::context_device(), consume)?;
    xid::note_injected(crate::RUNTIME.segment(), code); // a sticky code, once seen, is a dead GPU
    Some(xid::code_for(Api::Runtime, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is process-wide: the tests that use it run one after another under this lock.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    /// Pending errors consumed so far (each exactly once).
    pub(super) static CONSUMED: AtomicU64 = AtomicU64::new(0);

    fn drain() {
        while find(Scope::Device, -1, true).is_some() {}
        assert!(!pending());
    }

    #[test]
    fn a_sync_reports_what_its_scope_covers_oldest_first_and_consumes_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        assert!(defer(0, 0x100, 700));
        assert!(defer(0, 0x200, 719));
        assert!(defer(1, 0x100, 214));
        assert!(pending());
        assert_eq!(find(Scope::Stream(0x300), 0, true), None, "another stream of the device");
        assert_eq!(find(Scope::Stream(0x200), 0, false), Some(719), "peek");
        assert_eq!(find(Scope::Stream(0x200), 0, true), Some(719));
        assert_eq!(find(Scope::Stream(0x200), 0, true), None, "consumed");
        assert_eq!(find(Scope::Stream(0), 1, true), Some(214), "the legacy stream covers every stream");
        assert!(defer(-1, 2, 1));
        assert_eq!(find(Scope::Stream(0x100), 0, false), Some(700), "older than the unknown device's");
        assert_eq!(find(Scope::Device, 0, true), Some(700), "the oldest; the device's others consumed with it");
        assert!(!pending());
        drain();
    }

    #[test]
    fn the_table_is_bounded_and_slots_are_reused() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        for i in 0..CAPACITY {
            assert!(defer(0, 0, i as c_int + 1));
        }
        assert!(!defer(0, 0, 999), "full: the fault surfaces at its call");
        assert_eq!(find(Scope::Device, 0, true), Some(1));
        assert!(!pending());
        assert!(defer(0, 7, 5));
        assert_eq!(find(Scope::Stream(7), 0, true), Some(5));
        drain();
    }

    #[test]
    fn concurrent_deferrals_and_reports_lose_and_duplicate_nothing() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        let consumed_before = CONSUMED.load(Relaxed);
        let threads: Vec<_> = (0..4usize)
            .map(|t| {
                std::thread::spawn(move || {
                    let stream = 0x1000 * (t + 1);
                    let (mut deferred, mut reported) = (0u64, 0u64);
                    for i in 0..2000 {
                        if defer(0, stream, (t * 10_000 + i) as c_int + 1) {
                            deferred += 1;
                        }
                        // Another thread's stream now and then: whoever reports an error consumes it.
                        let scope = Scope::Stream(if i % 7 == 0 { 0x1000 * ((t + 1) % 4 + 1) } else { stream });
                        while find(scope, 0, true).is_some() {
                            reported += 1;
                        }
                    }
                    (deferred, reported)
                })
            })
            .collect();
        let (mut deferred, mut reported) = (0, 0);
        for thread in threads {
            let (d, r) = thread.join().unwrap();
            deferred += d;
            reported += r;
        }
        assert!(deferred > 0 && reported > 0);
        assert_eq!(PENDING.load(Relaxed), 0, "everything deferred was consumed");
        // A report returns one code but consumes every error its scope covers: count the consumptions.
        assert_eq!(CONSUMED.load(Relaxed) - consumed_before, deferred, "each error consumed exactly once");
        assert!(reported <= deferred);
    }

    #[test]
    fn the_per_thread_stream_only_matches_itself_and_unknown_devices_match_any() {
        assert!(covers(Scope::Stream(2), 0, 0, 2));
        assert!(!covers(Scope::Stream(2), 0, 0, 0x100));
        assert!(covers(Scope::Stream(2), 0, 0, 0), "the legacy stream's work");
        assert!(covers(Scope::Stream(1), 0, 0, 0x100), "cudaStreamLegacy");
        assert!(!covers(Scope::Device, 0, 1, 0));
        assert!(covers(Scope::Device, -1, 1, 0));
        assert!(covers(Scope::Device, 1, -1, 0));
    }

    #[test]
    fn the_injected_last_error_is_per_thread_and_cleared_once() {
        let before = LAST_ERRORS.load(Relaxed);
        set_last_error(2);
        assert_eq!(LAST_ERRORS.load(Relaxed), before + 1);
        std::thread::spawn(|| assert_eq!(last_error(true), 0, "another thread's")).join().unwrap();
        assert_eq!(last_error(false), 2);
        set_last_error(700);
        assert_eq!(LAST_ERRORS.load(Relaxed), before + 1, "replaced, still one thread");
        assert_eq!(last_error(true), 700);
        assert_eq!(last_error(true), 0);
        assert_eq!(LAST_ERRORS.load(Relaxed), before);
    }
}
