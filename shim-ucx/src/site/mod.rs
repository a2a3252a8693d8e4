//! Where an injected UCX fault surfaces (the process's fault site): at the call (`post`), at the operation's
//! completion (`completion`, [`requests`]), or on its endpoint (`endpoint`, [`eps`]); and the rule every site
//! keeps: no operation lands after the application was told of a failure ([`drain`]).
//!
//! What a passing call pays for all this is one load of [`GATE`] in the data hooks and the request queries, and
//! one load of [`PENDING`] in `ucp_worker_progress`: both are zero unless a fault of the later sites is live.

pub(crate) mod drain;
pub(crate) mod eps;
pub(crate) mod index;
pub(crate) mod param;
pub(crate) mod requests;
pub(crate) mod workers;

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use shim_runtime::RealFn;
use shm_proto::layout::Site;

pub(crate) use crate::status_ptr;
use crate::{Handle, Hook, Status, StatusPtr, LIBUCP, REAL, RUNTIME};
use requests::{CbKind, Faulted};

/// Requests the shim follows plus endpoints it failed: while non-zero, the data hooks and request queries look
/// first (a failed endpoint stays failed, and a faulted request reports its code, whether or not faults are
/// still enabled).
pub(crate) static GATE: AtomicU32 = AtomicU32::new(0);
/// Callbacks and error handlers queued for a worker's next progress.
pub(crate) static PENDING: AtomicU32 = AtomicU32::new(0);
/// Endpoints failing or failed.
pub(crate) static FAILED_EPS: AtomicU32 = AtomicU32::new(0);

/// Whether the data hooks and request queries must look first.
#[inline(always)]
pub(crate) fn gated() -> bool {
    GATE.load(Relaxed) != 0
}

/// A log line written once per process.
pub(crate) struct Once(AtomicBool);

impl Once {
    pub(crate) const fn new() -> Self {
        Once(AtomicBool::new(false))
    }
}

pub(crate) fn log_once(once: &Once, text: &str) {
    if !once.0.swap(true, Relaxed) {
        shim_runtime::log!("{text}");
    }
}

/// `UCS_PTR_IS_ERR`.
pub(crate) fn is_err(ptr: StatusPtr) -> bool {
    (ptr as usize) >= (-100isize) as usize
}

// The shim's own calls of UCP functions it does not hook (the hooked ones are the hook table's `REAL`; the
// followed ones, `api`'s).
static AM_DATA_RELEASE: RealFn = RealFn::new(c"ucp_am_data_release", LIBUCP);
static WORKER_SIGNAL: RealFn = RealFn::new(c"ucp_worker_signal", LIBUCP);
pub(crate) static WORKER_PROGRESS: RealFn = RealFn::new(c"ucp_worker_progress", LIBUCP);

/// The real `ucp_ep_flush_nbx`.
///
/// # Safety
/// As the real function's.
pub(crate) unsafe fn real_ep_flush(ep: Handle, param: *const c_void) -> StatusPtr {
    let real = REAL[Hook::EpFlushNbx as usize].get();
    if real.is_null() {
        return status_ptr(crate::UCS_ERR_NO_ELEM);
    }
    // SAFETY: the real function of that signature; the caller's contract.
    unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(Handle, *const c_void) -> StatusPtr>(real)(ep, param) }
}

/// The real `ucp_worker_flush_nbx`.
///
/// # Safety
/// As the real function's.
pub(crate) unsafe fn real_worker_flush(worker: Handle, param: *const c_void) -> StatusPtr {
    let real = REAL[Hook::WorkerFlushNbx as usize].get();
    if real.is_null() {
        return status_ptr(crate::UCS_ERR_NO_ELEM);
    }
    // SAFETY: as above.
    unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(Handle, *const c_void) -> StatusPtr>(real)(worker, param) }
}

/// The real `ucp_request_free`.
///
/// # Safety
/// As the real function's.
pub(crate) unsafe fn real_request_free(request: *mut c_void) {
    let real = crate::api::REQUEST_FREE.get();
    if !real.is_null() {
        // SAFETY: as above.
        unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(*mut c_void)>(real)(request) }
    }
}

/// The real `ucp_worker_signal`.
///
/// # Safety
/// As the real function's.
pub(crate) unsafe fn real_worker_signal(worker: Handle) {
    let real = WORKER_SIGNAL.get();
    if !real.is_null() {
        // SAFETY: as above.
        unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(Handle) -> Status>(real)(worker) };
    }
}

/// The real `ucp_worker_progress`.
///
/// # Safety
/// As the real function's.
pub(crate) unsafe fn real_progress(worker: Handle) -> u32 {
    let real = WORKER_PROGRESS.get();
    if real.is_null() {
        return 0;
    }
    // SAFETY: as above.
    unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(Handle) -> u32>(real)(worker) }
}

/// An injected fault of an operation on endpoint `ep` (a send, RMA, atomic or stream call) at `site`; `post`
/// posts it for real with a given param.
///
/// # Safety
/// `ep` and `param` are the caller's, as given to the real function.
pub(crate) unsafe fn ep_op(
    code: Status,
    site: Site,
    ep: Handle,
    kind: CbKind,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    let worker = eps::worker_of(ep);
    match site {
        Site::Post => status_ptr(code),
        // SAFETY: the caller's param; `post` is the real call (this function's contract).
        Site::Completion => unsafe { requests::complete_with_code(Faulted { code, worker, kind }, param, post) },
        Site::Endpoint => {
            // SAFETY: the caller's endpoint.
            if !unsafe { eps::fail(ep, code) } {
                // SAFETY: as above.
                return unsafe { requests::complete_with_code(Faulted { code, worker, kind }, param, post) };
            }
            match eps::health(ep) {
                // SAFETY: the caller's param.
                eps::Health::Draining(slot, code) => unsafe { eps::while_draining(slot, code, worker, kind, param) },
                eps::Health::Failed(code) => status_ptr(code),
                eps::Health::Healthy => status_ptr(code),
            }
        }
    }
}

/// An injected fault of a worker operation (`tag_recv`, `am_recv_data`): there is no endpoint to fail, so the
/// `endpoint` site reports it at completion too.
///
/// # Safety
/// As [`ep_op`].
pub(crate) unsafe fn worker_op(
    code: Status,
    site: Site,
    worker: Handle,
    kind: CbKind,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    match site {
        Site::Post => status_ptr(code),
        // SAFETY: this function's contract.
        _ => unsafe { requests::complete_with_code(Faulted { code, worker, kind }, param, post) },
    }
}

/// An injected fault of `ucp_am_recv_data_nbx`. The call hands the data descriptor to UCX, so failing it at the
/// call (`post`) must still give the descriptor back (`ucp_am_data_release`): else UCX keeps the message, and a
/// rendezvous sender waits for ever for a receive that will never come.
///
/// # Safety
/// As [`ep_op`]; `data_desc` is the descriptor the application's AM handler received.
pub(crate) unsafe fn am_recv_data(
    code: Status,
    site: Site,
    worker: Handle,
    data_desc: *mut c_void,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    if site == Site::Post {
        let real = AM_DATA_RELEASE.get();
        if !real.is_null() && !data_desc.is_null() {
            // SAFETY: the real `ucp_am_data_release`; the worker and the descriptor the application gave up.
            unsafe { shim_runtime::fn_at::<unsafe extern "C" fn(Handle, *mut c_void)>(real)(worker, data_desc) };
        }
        return status_ptr(code);
    }
    // SAFETY: this function's contract.
    unsafe { worker_op(code, site, worker, CbKind::AmRecv, param, post) }
}

/// An injected fault of `ucp_ep_flush_nbx`: in the `post` site it returns the code only once the operations
/// posted before it have landed.
///
/// # Safety
/// As [`ep_op`].
pub(crate) unsafe fn ep_flush(
    code: Status,
    site: Site,
    ep: Handle,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    let worker = eps::worker_of(ep);
    match site {
        Site::Post if !worker.is_null() && !requests::in_progress() => {
            // SAFETY: the caller's endpoint; a real flush of it, progressing its worker.
            unsafe { drain::wait(worker, |p| real_ep_flush(ep, p)) };
            status_ptr(code)
        }
        // Nowhere to progress from (an endpoint the shim did not see created, or a flush posted from inside
        // progress): the flush reports the code when it really completes, which is after those operations.
        // SAFETY: this function's contract.
        Site::Post => unsafe {
            requests::complete_with_code(Faulted { code, worker, kind: CbKind::Send }, param, post)
        },
        // SAFETY: as above.
        _ => unsafe { ep_op(code, site, ep, CbKind::Send, param, post) },
    }
}

/// An injected fault of `ucp_worker_flush_nbx`, as [`ep_flush`]; the `endpoint` site reports it at completion.
///
/// # Safety
/// As [`ep_op`].
pub(crate) unsafe fn worker_flush(
    code: Status,
    site: Site,
    worker: Handle,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    match site {
        Site::Post if !requests::in_progress() => {
            // SAFETY: the caller's worker; a real flush of it, progressing it.
            unsafe { drain::wait(worker, |p| real_worker_flush(worker, p)) };
            status_ptr(code)
        }
        // SAFETY: this function's contract.
        _ => unsafe { requests::complete_with_code(Faulted { code, worker, kind: CbKind::Send }, param, post) },
    }
}

/// The gate of a data hook on endpoint `ep`: an operation on a failing or failed endpoint gets its code (counted
/// and recorded as a fault at the endpoint site); caller-provided request memory used again retires the request
/// it held. `None`: go on as usual.
///
/// # Safety
/// `param` is the caller's (null or readable as its mask says).
pub(crate) unsafe fn ep_gate(
    hook: Hook,
    ep: Handle,
    size: u64,
    kind: CbKind,
    param: *const c_void,
) -> Option<StatusPtr> {
    // SAFETY: this function's contract.
    let view = unsafe { param::View::read(param) };
    requests::retire_reused(&view);
    if FAILED_EPS.load(Relaxed) == 0 || ep.is_null() {
        return None;
    }
    let (slot, code) = match eps::health(ep) {
        eps::Health::Healthy => return None,
        eps::Health::Draining(slot, code) => (Some(slot), code),
        eps::Health::Failed(code) => (None, code),
    };
    let call = RUNTIME.enter_forced(hook as usize, size, code, Site::Endpoint);
    let answer = match slot {
        // SAFETY: the caller's param.
        Some(slot) => unsafe { eps::while_draining(slot, code, eps::worker_of(ep), kind, param) },
        None => status_ptr(code),
    };
    drop(call);
    Some(answer)
}

/// The gate of a worker data hook: only the reuse of caller-provided request memory.
///
/// # Safety
/// As [`ep_gate`].
pub(crate) unsafe fn worker_gate(param: *const c_void) -> Option<StatusPtr> {
    // SAFETY: this function's contract.
    requests::retire_reused(&unsafe { param::View::read(param) });
    None
}

/// A forked child starts with nothing followed (UCX itself does not survive a fork).
pub(crate) extern "C" fn after_fork_in_child() {
    requests::forget_all();
    eps::forget_all();
    workers::forget_all();
    GATE.store(0, Relaxed);
    PENDING.store(0, Relaxed);
    FAILED_EPS.store(0, Relaxed);
}
