//! The UCP functions the shim follows without faulting them: progress (where queued callbacks and error handlers
//! are delivered), the request queries (which answer for requests whose completion the shim reports), and the
//! lifecycle of contexts, workers and endpoints (whose bookkeeping the sites need). None is in the hook table:
//! they are not counted, recorded or armed. Each forwards at once while nothing is followed.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::Ordering::Relaxed;

use shim_runtime::{fn_at, RealFn};
use shm_proto::layout::Site;

use crate::site::{self, eps, requests, workers, PENDING};
use crate::{status_ptr, Handle, Hook, Status, StatusPtr, LIBUCP, REAL, RUNTIME, UCS_ERR_NO_ELEM};

/// `UCS_ERR_BUSY`: what `ucp_worker_arm` answers when there is work to progress.
const UCS_ERR_BUSY: Status = -15;

macro_rules! real {
    ($name:ident: $literal:literal) => {
        pub(crate) static $name: RealFn = RealFn::new($literal, LIBUCP);
    };
}

real!(REQUEST_FREE: c"ucp_request_free");
real!(REQUEST_RELEASE: c"ucp_request_release");
real!(REQUEST_CANCEL: c"ucp_request_cancel");
real!(REQUEST_QUERY: c"ucp_request_query");
real!(REQUEST_IS_COMPLETED: c"ucp_request_is_completed");
real!(REQUEST_TEST: c"ucp_request_test");
real!(TAG_RECV_REQUEST_TEST: c"ucp_tag_recv_request_test");
real!(STREAM_RECV_REQUEST_TEST: c"ucp_stream_recv_request_test");
real!(WORKER_ARM: c"ucp_worker_arm");
real!(WORKER_WAIT: c"ucp_worker_wait");
real!(EP_CLOSE_NB: c"ucp_ep_close_nb");
real!(EP_DESTROY: c"ucp_ep_destroy");
real!(DISCONNECT_NB: c"ucp_disconnect_nb");
real!(INIT_VERSION: c"ucp_init_version");
real!(CLEANUP: c"ucp_cleanup");
real!(WORKER_CREATE: c"ucp_worker_create");
real!(WORKER_DESTROY: c"ucp_worker_destroy");

/// Calls the real function `$real` as `$ty` with the arguments, or evaluates `$missing` if it is not loaded.
macro_rules! call_real {
    ($real:expr, $ty:ty, $missing:expr, ($($arg:expr),*)) => {{
        let address = $real.get();
        if address.is_null() {
            $missing
        } else {
            // SAFETY: the real function of that name has this C signature; the caller's arguments, unchanged.
            unsafe { fn_at::<$ty>(address)($($arg),*) }
        }
    }};
}

/// The real `ucp_request_check_status`.
///
/// # Safety
/// `request` is a UCX request.
pub(crate) unsafe fn real_check_status(request: *mut c_void) -> Status {
    let address = REAL[Hook::RequestCheckStatus as usize].get();
    if address.is_null() {
        return UCS_ERR_NO_ELEM;
    }
    // SAFETY: the real function of that signature; the caller's request.
    unsafe { fn_at::<unsafe extern "C" fn(*mut c_void) -> Status>(address)(request) }
}

/// Intercepts `ucp_worker_progress`: one load and a jump while nothing is queued.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_worker_progress(worker: Handle) -> c_uint {
    let real = site::WORKER_PROGRESS.cached();
    if PENDING.load(Relaxed) == 0 && !real.is_null() {
        // SAFETY: the real function; the caller's worker. A tail call.
        return unsafe { fn_at::<unsafe extern "C" fn(Handle) -> c_uint>(real)(worker) };
    }
    // SAFETY: as above.
    unsafe { progress_delivering(worker) }
}

/// Progress while callbacks or error handlers are queued: the real progress first (its completions), then this
/// worker's queued callbacks, then its error handlers, as UCX orders a failure's requests before its handler.
#[inline(never)]
unsafe extern "C" fn progress_delivering(worker: Handle) -> c_uint {
    // SAFETY: the caller's worker.
    let progressed = requests::inside_progress(|| unsafe { site::real_progress(worker) });
    let delivered = requests::deliver_queued(worker) + eps::deliver_handlers(worker);
    progressed.saturating_add(delivered)
}

/// Intercepts `ucp_worker_arm`: with callbacks queued for the worker, it is busy (the application must progress
/// it rather than sleep).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_worker_arm(worker: Handle) -> Status {
    if PENDING.load(Relaxed) != 0 && (requests::queued_for(worker) || eps::handler_due(worker)) {
        return UCS_ERR_BUSY;
    }
    call_real!(WORKER_ARM, unsafe extern "C" fn(Handle) -> Status, UCS_ERR_NO_ELEM, (worker))
}

/// Intercepts `ucp_worker_wait`: returns at once while callbacks are queued for the worker.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_worker_wait(worker: Handle) -> Status {
    if PENDING.load(Relaxed) != 0 && (requests::queued_for(worker) || eps::handler_due(worker)) {
        return 0;
    }
    call_real!(WORKER_WAIT, unsafe extern "C" fn(Handle) -> Status, UCS_ERR_NO_ELEM, (worker))
}

/// Intercepts `ucp_request_free`.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_free(request: *mut c_void) {
    let real = || call_real!(REQUEST_FREE, unsafe extern "C" fn(*mut c_void), (), (request));
    if site::gated() && requests::free(request, false, real) {
        return;
    }
    real()
}

/// Intercepts `ucp_request_release` (deprecated: like free, but the callback still runs).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_release(request: *mut c_void) {
    let real = || call_real!(REQUEST_RELEASE, unsafe extern "C" fn(*mut c_void), (), (request));
    if site::gated() && requests::free(request, true, real) {
        return;
    }
    real()
}

/// Intercepts `ucp_request_cancel`: a shim-made request is complete already (nothing to cancel).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_cancel(worker: Handle, request: *mut c_void) {
    if site::gated() && requests::is_synthetic(request) == Some(true) {
        return;
    }
    call_real!(REQUEST_CANCEL, unsafe extern "C" fn(Handle, *mut c_void), (), (worker, request))
}

/// `ucp_request_attr_t`'s field bits, and its offsets (field_mask@0, debug_string@8, debug_string_size@16,
/// status@24, mem_type@28).
const REQUEST_ATTR_FIELD_INFO_STRING: u64 = 1 << 0;
const REQUEST_ATTR_FIELD_INFO_STRING_SIZE: u64 = 1 << 1;
const REQUEST_ATTR_FIELD_STATUS: u64 = 1 << 2;
const REQUEST_ATTR_FIELD_MEM_TYPE: u64 = 1 << 3;

/// What a shim-made request says of itself (`ucp_request_query`'s debug string), as UCX describes its own.
const SYNTHETIC_DESCRIPTION: &[u8] = b"faultline: completed at the call; its fault is reported at completion";

/// Fills the debug-string fields of `attr` (at `base`, field mask `mask`) for a shim-made request.
///
/// # Safety
/// `base` is the caller's `ucp_request_attr_t`, with the fields its mask names; with `INFO_STRING`, its
/// `debug_string` points to `debug_string_size` writable bytes (UCX's contract).
unsafe fn describe_synthetic(base: *mut u8, mask: u64) {
    if mask & REQUEST_ATTR_FIELD_INFO_STRING != 0 {
        // SAFETY: the caller asked for the string, so both fields are there.
        let (text, size) =
            unsafe { (base.add(8).cast::<*mut u8>().read_unaligned(), base.add(16).cast::<usize>().read_unaligned()) };
        if !text.is_null() && size > 0 {
            let len = SYNTHETIC_DESCRIPTION.len().min(size - 1);
            // SAFETY: `text` has `size` writable bytes (the caller's contract); `len + 1 <= size`.
            unsafe {
                std::ptr::copy_nonoverlapping(SYNTHETIC_DESCRIPTION.as_ptr(), text, len);
                text.add(len).write(0);
            }
        }
    }
    if mask & REQUEST_ATTR_FIELD_INFO_STRING_SIZE != 0 {
        // SAFETY: the caller asked for the size, so the field is there (written after the string's
        // own size was read from it).
        unsafe { base.add(16).cast::<usize>().write_unaligned(SYNTHETIC_DESCRIPTION.len() + 1) };
    }
}

/// Intercepts `ucp_request_query`: the status of a followed request is the reported one.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_query(request: *mut c_void, attr: *mut c_void) -> Status {
    type Query = unsafe extern "C" fn(*mut c_void, *mut c_void) -> Status;
    if !site::gated() || attr.is_null() {
        return call_real!(REQUEST_QUERY, Query, UCS_ERR_NO_ELEM, (request, attr));
    }
    let base = attr.cast::<u8>();
    // SAFETY: `attr` is the caller's `ucp_request_attr_t`; its mask is the first word.
    let mask = unsafe { base.cast::<u64>().read_unaligned() };
    let synthetic = requests::is_synthetic(request);
    let status = if synthetic == Some(true) {
        // SAFETY: the caller's attr, with the fields its mask names.
        unsafe { describe_synthetic(base, mask) };
        if mask & REQUEST_ATTR_FIELD_MEM_TYPE != 0 {
            // SAFETY: the caller asked for the memory type, so the field is there (host: the shim made no transfer).
            unsafe { base.add(28).cast::<u32>().write_unaligned(0) };
        }
        0
    } else {
        call_real!(REQUEST_QUERY, Query, UCS_ERR_NO_ELEM, (request, attr))
    };
    if status == 0 && mask & REQUEST_ATTR_FIELD_STATUS != 0 && synthetic.is_some() {
        // What the real query filled in (asked of real requests only; a shim-made one's is the shim's to fill).
        // SAFETY: as above: the caller asked for the status field, and the real query wrote it.
        let real_status = || unsafe { base.add(24).cast::<Status>().read_unaligned() };
        if let Some(reported) = requests::status_of(request, real_status) {
            // SAFETY: as above.
            unsafe { base.add(24).cast::<Status>().write_unaligned(reported) };
        }
    }
    status
}

/// Intercepts `ucp_request_is_completed` (deprecated).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_is_completed(request: *mut c_void) -> c_int {
    if site::gated() && requests::is_synthetic(request) == Some(true) {
        let status = requests::status_of(request, || 0).unwrap_or(0);
        return c_int::from(status != requests::UCS_INPROGRESS);
    }
    call_real!(REQUEST_IS_COMPLETED, unsafe extern "C" fn(*mut c_void) -> c_int, 1, (request))
}

/// The receive-test family: `real` asks UCX (filling the info) for a real request; a followed request's status is
/// the reported one.
fn test_status(request: *mut c_void, real: impl FnOnce() -> Status) -> Status {
    if !site::gated() || requests::is_synthetic(request).is_none() {
        return real();
    }
    requests::status_of(request, real).unwrap_or(UCS_ERR_NO_ELEM)
}

/// Intercepts `ucp_request_test` (deprecated).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_request_test(request: *mut c_void, info: *mut c_void) -> Status {
    type Test = unsafe extern "C" fn(*mut c_void, *mut c_void) -> Status;
    test_status(request, || call_real!(REQUEST_TEST, Test, UCS_ERR_NO_ELEM, (request, info)))
}

/// Intercepts `ucp_tag_recv_request_test`.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_tag_recv_request_test(request: *mut c_void, info: *mut c_void) -> Status {
    type Test = unsafe extern "C" fn(*mut c_void, *mut c_void) -> Status;
    test_status(request, || call_real!(TAG_RECV_REQUEST_TEST, Test, UCS_ERR_NO_ELEM, (request, info)))
}

/// Intercepts `ucp_stream_recv_request_test`: a shim-made request's data did land (its length).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_stream_recv_request_test(request: *mut c_void, length: *mut usize) -> Status {
    type Test = unsafe extern "C" fn(*mut c_void, *mut usize) -> Status;
    if site::gated() && requests::is_synthetic(request) == Some(true) && !length.is_null() {
        // SAFETY: the caller's length output.
        unsafe { length.write(requests::length_of(request).unwrap_or(0)) };
    }
    test_status(request, || call_real!(STREAM_RECV_REQUEST_TEST, Test, UCS_ERR_NO_ELEM, (request, length)))
}

/// Intercepts `ucp_ep_close_nb` (deprecated): the endpoint is forgotten.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_ep_close_nb(ep: Handle, mode: c_uint) -> StatusPtr {
    let ret = call_real!(
        EP_CLOSE_NB,
        unsafe extern "C" fn(Handle, c_uint) -> StatusPtr,
        status_ptr(UCS_ERR_NO_ELEM),
        (ep, mode)
    );
    if !site::is_err(ret) {
        eps::unregister(ep);
    }
    ret
}

/// Intercepts `ucp_ep_destroy` (deprecated).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_ep_destroy(ep: Handle) {
    call_real!(EP_DESTROY, unsafe extern "C" fn(Handle), (), (ep));
    eps::unregister(ep);
}

/// Intercepts `ucp_disconnect_nb` (deprecated).
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_disconnect_nb(ep: Handle) -> StatusPtr {
    let ret = call_real!(DISCONNECT_NB, unsafe extern "C" fn(Handle) -> StatusPtr, status_ptr(UCS_ERR_NO_ELEM), (ep));
    if !site::is_err(ret) {
        eps::unregister(ep);
    }
    ret
}

/// Intercepts `ucp_init_version` (what `ucp_init` calls): notes whether the context can be woken.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_init_version(
    api_major: c_uint,
    api_minor: c_uint,
    params: *const c_void,
    config: *const c_void,
    context_p: *mut Handle,
) -> Status {
    type Init = unsafe extern "C" fn(c_uint, c_uint, *const c_void, *const c_void, *mut Handle) -> Status;
    let status = call_real!(INIT_VERSION, Init, UCS_ERR_NO_ELEM, (api_major, api_minor, params, config, context_p));
    if status == 0 && !context_p.is_null() {
        // SAFETY: the real call succeeded, so `*context_p` is the new context; `params` as the caller gave it.
        unsafe { workers::context_created(*context_p, params) };
    }
    status
}

/// Intercepts `ucp_cleanup`.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_cleanup(context: Handle) {
    workers::context_destroyed(context);
    call_real!(CLEANUP, unsafe extern "C" fn(Handle), (), (context))
}

/// Intercepts `ucp_worker_create`: notes the worker's context.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_worker_create(context: Handle, params: *const c_void, worker_p: *mut Handle) -> Status {
    type Create = unsafe extern "C" fn(Handle, *const c_void, *mut Handle) -> Status;
    let status = call_real!(WORKER_CREATE, Create, UCS_ERR_NO_ELEM, (context, params, worker_p));
    if status == 0 && !worker_p.is_null() {
        // SAFETY: the real call succeeded, so `*worker_p` is the new worker.
        workers::worker_created(unsafe { *worker_p }, context);
    }
    status
}

/// Intercepts `ucp_worker_destroy`: the worker's followed requests and endpoints go with it. A drain still
/// running on it is progressed to its end first (bounded), so UCX's own request leak check stays quiet.
///
/// # Safety
/// As the real function's.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ucp_worker_destroy(worker: Handle) {
    let start = std::time::Instant::now();
    while eps::draining_on(worker) && start.elapsed() < std::time::Duration::from_secs(1) {
        // SAFETY: the caller's worker, still alive; the application is not progressing it (it is destroying it).
        unsafe { site::real_progress(worker) };
    }
    requests::forget_worker(worker);
    eps::forget_worker(worker);
    workers::worker_destroyed(worker);
    call_real!(WORKER_DESTROY, unsafe extern "C" fn(Handle), (), (worker))
}

/// `ucp_ep_create` at a site: under `endpoint` the endpoint is created and then fails as an unreachable peer's
/// does (its error handler, from progress); elsewhere the call fails with the code.
///
/// # Safety
/// `real` is null or the real `ucp_ep_create`; the caller's arguments.
pub(crate) unsafe fn ep_create_fault(
    code: Status,
    site: Site,
    real: *mut c_void,
    worker: Handle,
    params: *const c_void,
    ep_p: *mut Handle,
) -> Status {
    if site != Site::Endpoint || real.is_null() || ep_p.is_null() {
        return code;
    }
    type Create = unsafe extern "C" fn(Handle, *const c_void, *mut Handle) -> Status;
    // SAFETY: the real function (not null), the caller's arguments.
    let status = unsafe { fn_at::<Create>(real)(worker, params, ep_p) };
    if status != 0 {
        return status;
    }
    // SAFETY: the real call made `*ep_p`; `params` as the caller gave it.
    unsafe {
        eps::register(*ep_p, worker, params);
        eps::fail(*ep_p, code);
    }
    0
}

shim_runtime::__hook_skeleton! {
    fn ucp_ep_create(worker: Handle, params: *const c_void, ep_p: *mut Handle) -> Status,
    enter = RUNTIME.enter(Hook::EpCreate as usize, 0u64),
    // SAFETY: the caller's arguments; `real` as the skeleton found it.
    fault = |code, site, real| unsafe { ep_create_fault(code, site, real, worker, params, ep_p) },
    missing = UCS_ERR_NO_ELEM,
    // SAFETY: the real call succeeded, so `*ep_p` is the new endpoint.
    after = |status| if status == 0 && !ep_p.is_null() { unsafe { eps::register(*ep_p, worker, params) } },
    layers = {
        /// Every endpoint is noted, whether or not faults are enabled (the site may be switched on later).
        ///
        /// # Safety
        /// As the export's.
        #[inline(always)]
        pub(crate) unsafe fn export(worker: Handle, params: *const c_void, ep_p: *mut Handle) -> Status {
            let real = REAL[Hook::EpCreate as usize].get();
            if real.is_null() || RUNTIME.enabled() {
                // SAFETY: `real` is the real function or null; the caller's arguments.
                return unsafe { intercept(real, worker, params, ep_p) };
            }
            // SAFETY: the real function (not null); the caller's arguments.
            let status = unsafe { forward(real, worker, params, ep_p) };
            if status == 0 && !ep_p.is_null() {
                // SAFETY: the real call made `*ep_p`.
                unsafe { eps::register(*ep_p, worker, params) };
            }
            status
        }
    }
}

shim_runtime::__hook_skeleton! {
    fn ucp_ep_close_nbx(ep: Handle, param: *const c_void) -> StatusPtr,
    enter = RUNTIME.enter(Hook::EpCloseNbx as usize, 0u64),
    fault = |code, site| status_ptr(code),
    missing = status_ptr(UCS_ERR_NO_ELEM),
    after = |status| if !site::is_err(status) { eps::unregister(ep) },
    layers = {
        /// Every close is noted, whether or not faults are enabled.
        ///
        /// # Safety
        /// As the export's.
        #[inline(always)]
        pub(crate) unsafe fn export(ep: Handle, param: *const c_void) -> StatusPtr {
            let real = REAL[Hook::EpCloseNbx as usize].get();
            if real.is_null() || RUNTIME.enabled() {
                // SAFETY: `real` is the real function or null; the caller's arguments.
                return unsafe { intercept(real, ep, param) };
            }
            // SAFETY: the real function (not null); the caller's arguments.
            let ret = unsafe { forward(real, ep, param) };
            if !site::is_err(ret) {
                eps::unregister(ep);
            }
            ret
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ucp_request_attr_t` as UCX 1.13 lays it out.
    #[repr(C)]
    struct RequestAttr {
        field_mask: u64,
        debug_string: *mut u8,
        debug_string_size: usize,
        status: Status,
        mem_type: u32,
    }

    #[test]
    fn a_shim_made_request_describes_itself_within_the_callers_buffer() {
        let mut buffer = [0xAAu8; 16];
        let mut attr = RequestAttr {
            field_mask: REQUEST_ATTR_FIELD_INFO_STRING | REQUEST_ATTR_FIELD_INFO_STRING_SIZE,
            debug_string: buffer.as_mut_ptr(),
            debug_string_size: buffer.len(),
            status: 0,
            mem_type: 0,
        };
        // SAFETY: a whole attr whose string points to its 16 bytes.
        unsafe { describe_synthetic((&mut attr as *mut RequestAttr).cast(), attr.field_mask) };
        assert_eq!(&buffer[..15], &SYNTHETIC_DESCRIPTION[..15], "truncated to the caller's size");
        assert_eq!(buffer[15], 0, "and terminated");
        assert_eq!(attr.debug_string_size, SYNTHETIC_DESCRIPTION.len() + 1, "the size a whole one needs");

        let mut untouched = RequestAttr { field_mask: 0, debug_string_size: 3, ..attr };
        // SAFETY: as above; no field asked for.
        unsafe { describe_synthetic((&mut untouched as *mut RequestAttr).cast(), 0) };
        assert_eq!(untouched.debug_string_size, 3);
    }
}
