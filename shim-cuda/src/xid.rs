//! XID presets: what the application sees when its GPU has a given XID, per API numbering, and the sticky
//! "dead GPU" state once such a fault has been injected.
//!
//! A preset (from `FAULTLINE_XID` or the node policy file, fixed at start-up, process-local) sets the start-up
//! error pool to its runtime code (unless codes are given) and the probability to 100 % (unless given). The
//! segment layout is pinned, so the XID itself is not in the segment: the CLI and dashboard see the pool code.
//!
//! Dead-GPU rule (documented in the README): once a call has been failed with the preset's code, every later
//! call of an armed hook (on the targeted device) fails with that code too, whatever the probability, pattern,
//! skip or limit say — until faults are disabled (`faultline disable`, `reset`) or the error pool no longer
//! holds the preset's code (the user chose other faults). Those calls are counted and recorded as faults.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed};

use shm_proto::layout::{MAX_HOOKS, POOL_CAP};
use shm_proto::seqlock::READ_TRIES;
use shm_proto::Segment;

/// Which C API a hook belongs to: the runtime's `cudaError_t` or the driver's `CUresult` numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `cuda*` functions of libcudart.
    Runtime,
    /// `cu*` functions of libcuda.
    Driver,
}

/// `cudaErrorSymbolNotFound` / `CUDA_ERROR_NOT_FOUND`: what a call returns when its real function is nowhere.
pub const NOT_FOUND: i32 = 500;
/// `cudaErrorNoDevice` / `CUDA_ERROR_NO_DEVICE`.
pub const NO_DEVICE: i32 = 100;

impl Api {
    /// The status of a call whose real function cannot be found.
    #[inline]
    pub fn missing(self) -> i32 {
        NOT_FOUND
    }
}

pub use shm_proto::xid::{preset as preset_for, presets, Preset};

use shm_proto::xid::CATALOG;

/// The active preset: its XID's catalogue index plus one (0: none). Set once at start-up.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Activates `preset` for this process (start-up only).
pub fn activate(preset: Option<Preset>) {
    let index = preset.and_then(|p| shm_proto::xid::index_of(p.xid));
    ACTIVE.store(index.map_or(0, |i| i + 1), Relaxed);
}

/// The active preset.
#[inline]
pub fn active() -> Option<Preset> {
    match ACTIVE.load(Relaxed) {
        0 => None,
        index => CATALOG.get(index - 1).and_then(|info| info.preset()),
    }
}

/// The status a hook of `api` returns for the injected pool code `code`: the active preset's own code for that
/// API when `code` is the preset's, otherwise `code` unchanged (the runtime and the driver number every code
/// they share identically; a code only one of them defines is returned as given).
#[inline]
pub fn code_for(api: Api, code: i32) -> i32 {
    match active() {
        Some(p) if code == p.runtime => match api {
            Api::Runtime => p.runtime,
            Api::Driver => p.driver,
        },
        _ => code,
    }
}

/// The preset code the GPU died with (0: alive).
static DEAD_CODE: AtomicI32 = AtomicI32::new(0);
/// The segment it died under (a forked child has another one and starts alive).
static DEAD_SEGMENT: AtomicPtr<Segment> = AtomicPtr::new(std::ptr::null_mut());
/// The control sequence last checked against the dead state.
static DEAD_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Whether the GPU is dead: one relaxed load, what a disabled call pays on top of the runtime's check.
#[inline(always)]
pub fn dead() -> bool {
    DEAD_CODE.load(Relaxed) != 0
}

/// Brings the GPU back (faults were disabled, or the pool no longer holds the preset's code).
#[cold]
pub fn revive() {
    DEAD_CODE.store(0, Relaxed);
}

/// Called for every injected `code` (pool numbering): the active preset's code kills the GPU.
#[inline]
pub fn note_injected(segment: Option<&Segment>, code: i32) {
    if let (Some(preset), Some(segment)) = (active(), segment) {
        if code == preset.runtime && DEAD_CODE.load(Relaxed) != code {
            die(segment, code);
        }
    }
}

#[cold]
fn die(segment: &Segment, code: i32) {
    DEAD_SEGMENT.store(segment as *const Segment as *mut Segment, Relaxed);
    DEAD_SEQUENCE.store(segment.control.lock.sequence(), Relaxed);
    DEAD_CODE.store(code, Relaxed);
}

/// If the GPU is dead and `hook` is armed, the code the call must fail with. Re-checks the rule whenever the
/// control block changed since the last check (one acquire load otherwise).
#[inline]
pub fn dead_code(segment: &Segment, hook: usize) -> Option<i32> {
    let code = dead_now(segment)?;
    let control = &segment.control;
    let armed = hook < MAX_HOOKS && control.arm_mask[hook / 64].load(Acquire) & (1 << (hook % 64)) != 0;
    armed.then_some(code)
}

/// The preset code the GPU is dead with under `segment`, whatever the hook (re-checking the rule as
/// [`dead_code`] does); `None` if it is alive.
#[inline]
pub fn dead_now(segment: &Segment) -> Option<i32> {
    let code = DEAD_CODE.load(Relaxed);
    if code == 0 {
        return None;
    }
    if !std::ptr::eq(DEAD_SEGMENT.load(Relaxed), segment) {
        revive();
        return None;
    }
    let control = &segment.control;
    let sequence = control.lock.sequence();
    if sequence != DEAD_SEQUENCE.load(Relaxed) && sequence & 1 == 0 {
        let still = control.lock.try_read(READ_TRIES, || {
            let len = (control.pool_len.load(Relaxed) as usize).min(POOL_CAP);
            control.pool[..len].iter().any(|c| c.load(Relaxed) == code)
        });
        match still {
            Some(false) => {
                revive();
                return None;
            }
            Some(true) => DEAD_SEQUENCE.store(sequence, Relaxed),
            None => {} // a writer is busy: keep the state until the next call sees it settled
        }
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_proto::codes::{self, CUDA_DRIVER, CUDA_RUNTIME};
    use shm_proto::Kind;

    #[test]
    fn every_preset_code_is_a_named_error_of_its_api() {
        for p in presets() {
            let runtime = CUDA_RUNTIME.iter().find(|c| c.code == p.runtime);
            let driver = CUDA_DRIVER.iter().find(|c| c.code == p.driver);
            assert!(runtime.is_some() && driver.is_some(), "XID {}", p.xid);
            assert!(codes::is_error(Kind::Cuda, p.runtime), "XID {}", p.xid);
        }
        let name = |table: &[codes::CodeInfo], code| table.iter().find(|c| c.code == code).map(|c| c.name);
        let xid = |n| preset_for(n).unwrap();
        assert_eq!(name(CUDA_RUNTIME, xid(79).runtime), Some("cudaErrorNoDevice"));
        assert_eq!(name(CUDA_DRIVER, xid(79).driver), Some("CUDA_ERROR_NO_DEVICE"));
        assert_eq!(name(CUDA_RUNTIME, xid(48).runtime), Some("cudaErrorECCUncorrectable"));
        assert_eq!(name(CUDA_DRIVER, xid(94).driver), Some("CUDA_ERROR_ECC_UNCORRECTABLE"));
        assert_eq!(name(CUDA_DRIVER, xid(74).driver), Some("CUDA_ERROR_NVLINK_UNCORRECTABLE"));
        assert_eq!(name(CUDA_RUNTIME, xid(43).runtime), Some("cudaErrorLaunchTimeout"));
        assert_eq!(xid(43).runtime, 702, "the current value, not the pre-10.1 one (6)");
        assert_eq!(name(CUDA_DRIVER, xid(119).driver), Some("CUDA_ERROR_UNKNOWN"));
        assert!(preset_for(13).is_none());
    }
}
