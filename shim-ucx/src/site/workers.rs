//! Which workers can be woken: a callback or error handler the shim queues for a worker whose context has
//! `UCP_FEATURE_WAKEUP` also signals it, so an application asleep on the worker's event fd progresses it.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};

use crate::Handle;

const CONTEXTS: usize = 64;
const WORKERS: usize = 1024;
/// `UCP_FEATURE_WAKEUP`.
const FEATURE_WAKEUP: u64 = 1 << 4;
/// `UCP_PARAM_FIELD_FEATURES`, `UCP_PARAM_FIELD_REQUEST_SIZE`.
const PARAM_FIELD_FEATURES: u64 = 1 << 0;
const PARAM_FIELD_REQUEST_SIZE: u64 = 1 << 1;

struct Entry {
    key: AtomicPtr<c_void>,
    value: AtomicU64,
}

impl Entry {
    const fn empty() -> Entry {
        Entry { key: AtomicPtr::new(std::ptr::null_mut()), value: AtomicU64::new(0) }
    }
}

/// Context → its features.
static CONTEXT_FEATURES: [Entry; CONTEXTS] = [const { Entry::empty() }; CONTEXTS];
/// Context → the application's request space (`ucp_params_t.request_size`), where it asked for any.
static CONTEXT_REQUEST_SIZE: [Entry; CONTEXTS] = [const { Entry::empty() }; CONTEXTS];
/// Worker → its context.
static WORKER_CONTEXT: [Entry; WORKERS] = [const { Entry::empty() }; WORKERS];

fn put(table: &[Entry], key: Handle, value: u64) {
    if key.is_null() {
        return;
    }
    if let Some(entry) = table.iter().find(|e| e.key.load(Acquire) == key) {
        entry.value.store(value, Relaxed);
        return;
    }
    for entry in table {
        if entry.key.compare_exchange(std::ptr::null_mut(), key, AcqRel, Acquire).is_ok() {
            entry.value.store(value, Relaxed);
            return;
        }
    }
}

fn get(table: &[Entry], key: Handle) -> Option<u64> {
    (!key.is_null()).then(|| table.iter().find(|e| e.key.load(Acquire) == key).map(|e| e.value.load(Relaxed)))?
}

fn forget(table: &[Entry], key: Handle) {
    if let Some(entry) = table.iter().find(|e| e.key.load(Acquire) == key && !key.is_null()) {
        entry.key.store(std::ptr::null_mut(), Relaxed);
    }
}

/// `ucp_init_version` made `context` with `params`.
///
/// # Safety
/// `params` is null or a `ucp_params_t` (fields readable as its mask says).
pub(crate) unsafe fn context_created(context: Handle, params: *const c_void) {
    let field = |bit: u64, word: usize| -> u64 {
        if params.is_null() {
            return 0;
        }
        let base = params.cast::<u64>();
        // SAFETY: field_mask is the first word of a `ucp_params_t` (this function's contract).
        let mask = unsafe { base.read_unaligned() };
        if mask & bit == 0 {
            return 0;
        }
        // SAFETY: the mask names the field, so the caller's struct has it (features: word 1, request_size: 2).
        unsafe { base.add(word).read_unaligned() }
    };
    put(&CONTEXT_FEATURES, context, field(PARAM_FIELD_FEATURES, 1));
    put(&CONTEXT_REQUEST_SIZE, context, field(PARAM_FIELD_REQUEST_SIZE, 2));
}

/// `ucp_cleanup(context)`.
pub(crate) fn context_destroyed(context: Handle) {
    forget(&CONTEXT_FEATURES, context);
    forget(&CONTEXT_REQUEST_SIZE, context);
}

/// Whether the application keeps data of its own in the requests of `worker` (`ucp_params_t.request_size`), or
/// the worker is unknown: a handle made by the shim has no such space, so the shim must not hand one out.
pub(crate) fn requests_carry_app_data(worker: Handle) -> bool {
    let Some(context) = get(&WORKER_CONTEXT, worker) else { return true };
    get(&CONTEXT_REQUEST_SIZE, context as Handle).unwrap_or(0) != 0
}

/// `ucp_worker_create` made `worker` on `context`.
pub(crate) fn worker_created(worker: Handle, context: Handle) {
    put(&WORKER_CONTEXT, worker, context as u64);
}

/// `ucp_worker_destroy(worker)`.
pub(crate) fn worker_destroyed(worker: Handle) {
    forget(&WORKER_CONTEXT, worker);
}

/// Wakes `worker` if its context can be woken (else nothing: UCX would log an error for it).
pub(crate) fn signal(worker: Handle) {
    let Some(context) = get(&WORKER_CONTEXT, worker) else { return };
    let features = get(&CONTEXT_FEATURES, context as Handle).unwrap_or(0);
    if features & FEATURE_WAKEUP != 0 {
        // SAFETY: `worker` is a live worker (destroyed ones are forgotten first) of a context with wakeup.
        unsafe { super::real_worker_signal(worker) };
    }
}

/// A forked child.
pub(crate) fn forget_all() {
    for entry in CONTEXT_FEATURES.iter().chain(&CONTEXT_REQUEST_SIZE).chain(&WORKER_CONTEXT) {
        entry.key.store(std::ptr::null_mut(), Relaxed);
    }
}
