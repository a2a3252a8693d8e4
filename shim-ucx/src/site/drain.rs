//! Waiting, inside a faulted flush of the `post` site, for the operations posted before it: the flush returns
//! the injected code only after they have landed, as a dead connection never delivers data after its error.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::time::{Duration, Instant};

use super::param::{FIELD_CALLBACK, FIELD_USER_DATA};
use super::{is_err, log_once, real_progress, real_request_free, Once};
use crate::{Handle, Status, StatusPtr};

/// How long a drain waits before it gives up (and says so): a peer that never acknowledges must not hang the
/// application's flush forever.
const LIMIT: Duration = Duration::from_secs(10);

static TIMED_OUT: Once = Once::new();

unsafe extern "C" fn flushed(_request: *mut c_void, _status: Status, user_data: *mut c_void) {
    // SAFETY: `user_data` is the `AtomicBool` of the `wait` below, alive until the flush completed or was freed.
    unsafe { &*user_data.cast::<AtomicBool>() }.store(true, Release);
}

/// Posts a real flush with `flush` (given its param) and progresses `worker` until it completed.
///
/// # Safety
/// `worker` is a live worker the calling thread may progress (it is inside the application's own flush call on
/// that worker, not inside progress); `flush` calls the real flush.
pub(crate) unsafe fn wait(worker: Handle, flush: impl FnOnce(*const c_void) -> StatusPtr) {
    let done = AtomicBool::new(false);
    let mut param = [0u64; 6];
    param[0] = u64::from(FIELD_CALLBACK | FIELD_USER_DATA);
    param[2] = flushed as unsafe extern "C" fn(*mut c_void, Status, *mut c_void) as usize as u64;
    param[4] = &done as *const AtomicBool as u64;
    let request = flush(param.as_ptr().cast());
    if request.is_null() || is_err(request) {
        return; // nothing was in flight, or the flush itself failed at the call
    }
    let start = Instant::now();
    while !done.load(Acquire) {
        // SAFETY: this function's contract.
        if unsafe { real_progress(worker) } == 0 && start.elapsed() > LIMIT {
            break;
        }
    }
    // Freeing the request before it completes disables its callback, so `done` is never written after this frame.
    // SAFETY: the request the real flush returned, not yet freed.
    unsafe { real_request_free(request) };
    if !done.load(Acquire) {
        log_once(&TIMED_OUT, "a faulted flush waited 10 s for earlier operations: some may still land after it");
    }
}
