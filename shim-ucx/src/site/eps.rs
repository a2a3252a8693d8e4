//! Endpoints: which worker each belongs to and its error handler (from `ucp_ep_create`), and the `endpoint`
//! site's failure, which fails an endpoint the way a dead peer does.
//!
//! Failing runs in three steps. **Draining**: the shim flushes the real endpoint, so every operation posted
//! before the fault lands before the application hears of any failure; operations posted meanwhile get requests
//! that complete with the code when the drain ends. **Failed, handler pending**: the error handler is queued for
//! the worker's next `ucp_worker_progress`, which is where UCX calls it. **Failed**: every operation on the
//! endpoint fails at the call with the code, a flush included, until the application closes it. Other endpoints
//! are untouched. The real endpoint stays healthy underneath, so a force close works as for a dead peer.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use std::sync::atomic::{Ordering::Relaxed, Ordering::Release};

use super::index::{Bitmap, PtrIndex};
use super::param::{FIELD_CALLBACK, FIELD_USER_DATA};
use super::{is_err, log_once, requests, workers, Once, FAILED_EPS, GATE, PENDING};
use crate::{Handle, Status, StatusPtr};

/// Endpoints the shim can follow.
const SLOTS: usize = 4096;

const FREE: u32 = 0;
const HEALTHY: u32 = 1;
const DRAINING: u32 = 2;
const FAILED_PENDING: u32 = 3;
const FAILED: u32 = 4;

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Working (or failing in a way the shim did not make).
    Healthy,
    /// Failing: earlier operations are being flushed; the code.
    Draining(usize, Status),
    /// Failed with the code.
    Failed(Status),
}

#[repr(C, align(64))]
struct Slot {
    ep: AtomicPtr<c_void>,
    worker: AtomicPtr<c_void>,
    handler: AtomicUsize,
    arg: AtomicPtr<c_void>,
    state: AtomicU32,
    code: AtomicI32,
    /// Bumped whenever the slot is taken, so a late drain completion of an earlier endpoint is recognised.
    generation: AtomicU32,
}

struct Table {
    slots: [Slot; SLOTS],
    used: Bitmap<{ SLOTS / 64 }>,
    index: PtrIndex<{ SLOTS * 2 }>,
}

static TABLE: Table = Table {
    slots: [const {
        Slot {
            ep: AtomicPtr::new(std::ptr::null_mut()),
            worker: AtomicPtr::new(std::ptr::null_mut()),
            handler: AtomicUsize::new(0),
            arg: AtomicPtr::new(std::ptr::null_mut()),
            state: AtomicU32::new(FREE),
            code: AtomicI32::new(0),
            generation: AtomicU32::new(0),
        }
    }; SLOTS],
    used: Bitmap::new(),
    index: PtrIndex::new(),
};

/// Error handlers queued for delivery.
static HANDLERS: AtomicU32 = AtomicU32::new(0);

static UNTRACKED: Once = Once::new();
static NO_HANDLER: Once = Once::new();

/// `ucp_err_handler_cb_t`.
type ErrHandler = unsafe extern "C" fn(*mut c_void, Handle, Status);

// `ucp_ep_params_t`: field_mask@0, err_handler { cb@24, arg@32 }, user_data@40.
const EP_FIELD_ERR_HANDLER: u64 = 1 << 2;
const EP_FIELD_USER_DATA: u64 = 1 << 3;

/// Follows the endpoint `ep` of `worker` just created with `params`.
///
/// # Safety
/// `params` is the `ucp_ep_params_t` the endpoint was created with (fields readable as its mask says).
pub(crate) unsafe fn register(ep: Handle, worker: Handle, params: *const c_void) {
    if ep.is_null() {
        return;
    }
    let (mut handler, mut arg) = (0usize, std::ptr::null_mut());
    if !params.is_null() {
        let base = params.cast::<u8>();
        // SAFETY: the mask is the first word; each field is read only when the mask names it.
        let word = |offset: usize| unsafe { base.add(offset).cast::<u64>().read_unaligned() };
        let mask = word(0);
        if mask & EP_FIELD_ERR_HANDLER != 0 {
            handler = word(24) as usize;
            arg = word(32) as *mut c_void;
        }
        if mask & EP_FIELD_USER_DATA != 0 {
            arg = word(40) as *mut c_void; // UCX: user_data overrides the handler's arg
        }
    }
    // The address may be an earlier endpoint's that closed in a way the shim did not see: start afresh.
    unregister(ep);
    let Some(idx) = alloc() else {
        log_once(
            &UNTRACKED,
            "too many endpoints: faults on further ones are reported at completion, not on the endpoint",
        );
        return;
    };
    let slot = &TABLE.slots[idx];
    slot.ep.store(ep, Relaxed);
    slot.worker.store(worker, Relaxed);
    slot.handler.store(handler, Relaxed);
    slot.arg.store(arg, Relaxed);
    slot.code.store(0, Relaxed);
    slot.generation.fetch_add(1, Relaxed);
    slot.state.store(HEALTHY, Release);
    if !TABLE.index.insert(ep, idx as u16) {
        slot.state.store(FREE, Release);
        free_slot(idx);
        log_once(
            &UNTRACKED,
            "too many endpoints: faults on further ones are reported at completion, not on the endpoint",
        );
    }
}

fn alloc() -> Option<usize> {
    TABLE.used.take()
}

fn free_slot(idx: usize) {
    TABLE.used.give(idx);
}

/// The application closed (or destroyed) `ep`: forget it. A failure not yet reported is dropped (UCX calls no
/// handler of a closed endpoint); requests waiting for its drain complete with the code.
pub(crate) fn unregister(ep: Handle) {
    let Some(idx) = TABLE.index.remove(ep).map(usize::from) else { return };
    let slot = &TABLE.slots[idx];
    let state = slot.state.swap(FREE, AcqRel);
    if state >= DRAINING {
        FAILED_EPS.fetch_sub(1, Relaxed);
        GATE.fetch_sub(1, Relaxed);
    }
    if state == FAILED_PENDING {
        HANDLERS.fetch_sub(1, Relaxed);
        PENDING.fetch_sub(1, AcqRel);
    }
    if state == DRAINING {
        requests::complete_waiting(idx);
    }
    slot.generation.fetch_add(1, Relaxed);
    free_slot(idx);
}

/// The worker `ep` belongs to (null if the shim does not follow it).
pub(crate) fn worker_of(ep: Handle) -> Handle {
    TABLE.index.get(ep).map_or(std::ptr::null_mut(), |idx| TABLE.slots[usize::from(idx)].worker.load(Relaxed))
}

/// How `ep` stands.
pub(crate) fn health(ep: Handle) -> Health {
    let Some(idx) = TABLE.index.get(ep).map(usize::from) else { return Health::Healthy };
    let slot = &TABLE.slots[idx];
    match slot.state.load(Acquire) {
        DRAINING => Health::Draining(idx, slot.code.load(Relaxed)),
        FAILED_PENDING | FAILED => Health::Failed(slot.code.load(Relaxed)),
        _ => Health::Healthy,
    }
}

/// Starts failing `ep` with `code` (nothing if it is failing already). False if the shim does not follow `ep`.
///
/// # Safety
/// `ep` is an endpoint the application holds (not closed).
pub(crate) unsafe fn fail(ep: Handle, code: Status) -> bool {
    let Some(idx) = TABLE.index.get(ep).map(usize::from) else { return false };
    let slot = &TABLE.slots[idx];
    if slot.state.load(Acquire) != HEALTHY {
        return true; // failing already, with its first code
    }
    slot.code.store(code, Relaxed);
    if slot.state.compare_exchange(HEALTHY, DRAINING, AcqRel, Acquire).is_err() {
        return true;
    }
    FAILED_EPS.fetch_add(1, Relaxed);
    GATE.fetch_add(1, Relaxed);
    // Flush the real endpoint: the failure is reported once everything posted before it has landed.
    let generation = slot.generation.load(Relaxed);
    let mut param = [0u64; 6];
    param[0] = u64::from(FIELD_CALLBACK | FIELD_USER_DATA);
    param[2] = drain_done as unsafe extern "C" fn(*mut c_void, Status, *mut c_void) as usize as u64;
    param[4] = (u64::from(generation) << 16) | idx as u64;
    // SAFETY: `ep` is live (this function's contract); the param names a callback and user data only.
    let request = unsafe { super::real_ep_flush(ep, param.as_ptr().cast()) };
    if request.is_null() || is_err(request) {
        drained(idx, generation);
    }
    true
}

/// The drain's flush completed (inside the real progress, or the real close of the endpoint).
unsafe extern "C" fn drain_done(request: *mut c_void, _status: Status, user_data: *mut c_void) {
    // SAFETY: the flush request UCX just completed; freeing a completed request returns it to UCX.
    unsafe { super::real_request_free(request) };
    let word = user_data as u64;
    drained((word & 0xffff) as usize, (word >> 16) as u32);
}

/// The drain of slot `idx` (taken at `generation`) ended: the endpoint is failed and its handler is due.
fn drained(idx: usize, generation: u32) {
    let Some(slot) = TABLE.slots.get(idx) else { return };
    if slot.generation.load(Acquire) != generation {
        return; // closed meanwhile
    }
    if slot.state.compare_exchange(DRAINING, FAILED_PENDING, AcqRel, Acquire).is_ok() {
        HANDLERS.fetch_add(1, Relaxed);
        PENDING.fetch_add(1, AcqRel);
        requests::complete_waiting(idx);
        workers::signal(slot.worker.load(Relaxed));
    }
}

/// Calls the error handlers due on `worker` (from its progress, after the requests' callbacks, as UCX does).
pub(crate) fn deliver_handlers(worker: Handle) -> u32 {
    if HANDLERS.load(Acquire) == 0 {
        return 0;
    }
    let mut delivered = 0;
    for slot in &TABLE.slots {
        if slot.state.load(Acquire) != FAILED_PENDING || slot.worker.load(Relaxed) != worker {
            continue;
        }
        if slot.state.compare_exchange(FAILED_PENDING, FAILED, AcqRel, Acquire).is_err() {
            continue;
        }
        HANDLERS.fetch_sub(1, Relaxed);
        PENDING.fetch_sub(1, AcqRel);
        delivered += 1;
        let handler = slot.handler.load(Relaxed);
        if handler == 0 {
            log_once(&NO_HANDLER, "an endpoint failed that has no error handler: only its operations report it");
            continue;
        }
        let (arg, ep, code) = (slot.arg.load(Relaxed), slot.ep.load(Relaxed), slot.code.load(Relaxed));
        // SAFETY: the application registered this handler for `ep` with `ucp_ep_create`, so it has
        // `ucp_err_handler_cb_t`'s signature; UCX would call it with the same arguments.
        requests::inside_progress(|| unsafe {
            shim_runtime::fn_at::<ErrHandler>(handler as *mut c_void)(arg, ep, code)
        });
    }
    delivered
}

/// Whether a handler is due on `worker`.
pub(crate) fn handler_due(worker: Handle) -> bool {
    HANDLERS.load(Acquire) != 0
        && TABLE.slots.iter().any(|s| s.state.load(Acquire) == FAILED_PENDING && s.worker.load(Relaxed) == worker)
}

/// `ucp_worker_destroy`: the worker's endpoints are gone with it.
pub(crate) fn forget_worker(worker: Handle) {
    for slot in &TABLE.slots {
        if slot.state.load(Acquire) != FREE && slot.worker.load(Relaxed) == worker {
            unregister(slot.ep.load(Relaxed));
        }
    }
}

/// Whether any endpoint of `worker` is still draining.
pub(crate) fn draining_on(worker: Handle) -> bool {
    FAILED_EPS.load(Relaxed) != 0
        && TABLE.slots.iter().any(|s| s.state.load(Acquire) == DRAINING && s.worker.load(Relaxed) == worker)
}

/// A forked child: none of the parent's endpoints are its own.
pub(crate) fn forget_all() {
    TABLE.index.clear();
    HANDLERS.store(0, Relaxed);
    for (idx, slot) in TABLE.slots.iter().enumerate() {
        slot.state.store(FREE, Relaxed);
        free_slot(idx);
    }
}

/// A fault the application sees on a failing endpoint, for [`Health::Draining`]: a request completing with the
/// code when the drain ends (or the code at the call if there is no room).
///
/// # Safety
/// `param` is the caller's param (null or readable as its mask says).
pub(crate) unsafe fn while_draining(
    endpoint: usize,
    code: Status,
    worker: Handle,
    kind: requests::CbKind,
    param: *const c_void,
) -> StatusPtr {
    let faulted = requests::Faulted { code, worker, kind };
    // SAFETY: this function's contract.
    unsafe { requests::waiting(faulted, param, endpoint) }.unwrap_or_else(|| super::status_ptr(code))
}
