//! Requests whose completion the shim reports: the `completion` site, and the operations of an endpoint that is
//! failing (`endpoint` site).
//!
//! A faulted call really posts its operation, with a copy of the caller's param whose callback is one of the
//! shim's wrappers and whose `user_data` names a slot of [`TABLE`]. When UCX completes the request, the wrapper
//! hands the caller's callback the injected code instead of `UCS_OK` (a real error passes unchanged), with the
//! caller's own `user_data`; `ucp_request_check_status` and the other request queries answer the code too, once
//! the real operation is done. A call that completes inside the post (the shim asks UCX not to, but flushes and
//! stream receives may) gets a shim-made handle instead ("synthetic"), which never reaches UCX.
//!
//! A slot has two owners: the application, until it frees or releases the handle ([`APP`]), and the completion,
//! until the caller's callback was delivered or can no longer be ([`UCX`]). The last one to let go releases the
//! slot. No allocation and no lock anywhere; the passing path of a call never comes here.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use std::sync::atomic::{Ordering::Relaxed, Ordering::Release};

use super::index::{Bitmap, PtrIndex};
use super::param::{self, Substitute, View};
use super::{is_err, log_once, status_ptr, workers, Once, GATE, PENDING};
use crate::{Handle, Status, StatusPtr};

/// Requests the shim can follow at once; more faulted calls at a time fail at the call (logged once).
pub(crate) const SLOTS: usize = 2048;

/// `UCS_OK`, `UCS_INPROGRESS`.
pub(crate) const UCS_OK: Status = 0;
pub(crate) const UCS_INPROGRESS: Status = 1;

// Slot state bits.
/// The slot is taken.
const IN_USE: u32 = 1 << 0;
/// The application holds the handle.
const APP: u32 = 1 << 1;
/// The completion is still to run (UCX's call of the wrapper, or a delivery the shim queued).
const UCX: u32 = 1 << 2;
/// Inside the call that posts the operation.
const POSTING: u32 = 1 << 3;
/// The operation completed.
const DONE: u32 = 1 << 4;
/// No UCX request behind the handle.
const SYNTHETIC: u32 = 1 << 5;
/// The caller gave a callback.
const HAS_CB: u32 = 1 << 6;
/// The caller itself asked for `UCP_OP_ATTR_FLAG_NO_IMM_CMPL` (so UCX would call its callback inline).
const USER_NO_IMM: u32 = 1 << 7;
/// The handle is the caller's memory (`UCP_OP_ATTR_FIELD_REQUEST`).
const USER_REQUEST: u32 = 1 << 8;
/// Released with `ucp_request_release`: the callback still runs.
const KEEP_CB: u32 = 1 << 9;
/// A synthetic request completing when its endpoint's drain ends.
const WAITING: u32 = 1 << 10;

/// Which callback signature the caller's callback has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum CbKind {
    /// `ucp_send_nbx_callback_t` (sends, RMA, atomics, flushes).
    Send = 0,
    /// `ucp_tag_recv_nbx_callback_t`.
    TagRecv = 1,
    /// `ucp_stream_recv_nbx_callback_t`.
    StreamRecv = 2,
    /// `ucp_am_recv_data_nbx_callback_t`.
    AmRecv = 3,
}

impl CbKind {
    fn from_raw(raw: u32) -> CbKind {
        match raw {
            1 => CbKind::TagRecv,
            2 => CbKind::StreamRecv,
            3 => CbKind::AmRecv,
            _ => CbKind::Send,
        }
    }
}

/// `ucp_tag_recv_info_t`.
#[repr(C)]
struct TagRecvInfo {
    sender_tag: u64,
    length: usize,
}

type SendCb = unsafe extern "C" fn(*mut c_void, Status, *mut c_void);
type TagRecvCb = unsafe extern "C" fn(*mut c_void, Status, *const TagRecvInfo, *mut c_void);
type LengthCb = unsafe extern "C" fn(*mut c_void, Status, usize, *mut c_void);

#[repr(C, align(64))]
struct Slot {
    state: AtomicU32,
    /// The injected code.
    code: AtomicI32,
    /// What UCX completed the operation with.
    real: AtomicI32,
    kind: AtomicU32,
    /// The handle the application holds.
    handle: AtomicPtr<c_void>,
    worker: AtomicPtr<c_void>,
    callback: AtomicUsize,
    user_data: AtomicPtr<c_void>,
    tag: AtomicU64,
    length: AtomicU64,
    /// Thread that posted (deliveries for an unknown worker go to its next progress).
    poster: AtomicU32,
    /// Endpoint slot + 1 a [`WAITING`] request waits for.
    endpoint: AtomicU32,
    /// Next slot + 1 in the delivery stack.
    next: AtomicU32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU32::new(0),
            code: AtomicI32::new(0),
            real: AtomicI32::new(0),
            kind: AtomicU32::new(0),
            handle: AtomicPtr::new(std::ptr::null_mut()),
            worker: AtomicPtr::new(std::ptr::null_mut()),
            callback: AtomicUsize::new(0),
            user_data: AtomicPtr::new(std::ptr::null_mut()),
            tag: AtomicU64::new(0),
            length: AtomicU64::new(0),
            poster: AtomicU32::new(0),
            endpoint: AtomicU32::new(0),
            next: AtomicU32::new(0),
        }
    }

    /// What the application is told: the injected code replaces success only.
    fn reported(&self) -> Status {
        match self.real.load(Acquire) {
            UCS_OK => self.code.load(Relaxed),
            real => real,
        }
    }
}

/// The handle memory of synthetic requests (the application only compares and passes it back).
#[repr(C, align(64))]
struct Area([u8; 64]);

struct Table {
    slots: [Slot; SLOTS],
    used: Bitmap<{ SLOTS / 64 }>,
    index: PtrIndex<{ SLOTS * 4 }>,
    areas: [Area; SLOTS],
    /// Top of the delivery stack (slot + 1; 0: empty).
    queue: AtomicU32,
}

static TABLE: Table = Table {
    slots: [const { Slot::new() }; SLOTS],
    used: Bitmap::new(),
    index: PtrIndex::new(),
    areas: [const { Area([0; 64]) }; SLOTS],
    queue: AtomicU32::new(0),
};

static FULL: Once = Once::new();
static UNKNOWN_PARAM: Once = Once::new();
static FORCED_INLINE: Once = Once::new();
static INDEX_FULL: Once = Once::new();
static APP_REQUESTS: Once = Once::new();

thread_local! {
    /// The length a stream receive completed with inside its call (set by its hook just before the shim makes
    /// its request).
    static INLINE_LENGTH: Cell<usize> = const { Cell::new(0) };
    /// Depth of `ucp_worker_progress` calls and callbacks the shim runs on this thread: a faulted flush must not
    /// progress the worker from inside them (UCX forbids re-entering progress).
    static INSIDE_PROGRESS: Cell<u32> = const { Cell::new(0) };
}

/// A stream receive completed inside the call with `length` bytes.
pub(crate) fn note_inline_length(length: usize) {
    INLINE_LENGTH.with(|cell| cell.set(length));
}

/// Runs `f` marked as inside progress on this thread.
pub(crate) fn inside_progress<T>(f: impl FnOnce() -> T) -> T {
    INSIDE_PROGRESS.with(|depth| depth.set(depth.get() + 1));
    let result = f();
    INSIDE_PROGRESS.with(|depth| depth.set(depth.get().saturating_sub(1)));
    result
}

/// Whether this thread is inside progress (or a callback the shim runs).
pub(crate) fn in_progress() -> bool {
    INSIDE_PROGRESS.with(|depth| depth.get() > 0)
}

fn tid() -> u32 {
    // SAFETY: gettid has no preconditions (fault paths only).
    unsafe { libc::gettid() as u32 }
}

/// Takes a free slot.
fn alloc() -> Option<usize> {
    let idx = TABLE.used.take()?;
    GATE.fetch_add(1, Relaxed);
    Some(idx)
}

/// Gives slot `idx` back. Its handle must already be out of the index.
fn release(idx: usize) {
    let slot = &TABLE.slots[idx];
    slot.state.store(0, Release);
    slot.handle.store(std::ptr::null_mut(), Relaxed);
    TABLE.used.give(idx);
    GATE.fetch_sub(1, Relaxed);
}

/// The slot behind handle `handle`, if the shim follows it.
fn lookup(handle: *mut c_void) -> Option<usize> {
    let idx = usize::from(TABLE.index.get(handle)?);
    let slot = TABLE.slots.get(idx)?;
    (slot.handle.load(Acquire) == handle && slot.state.load(Acquire) & APP != 0).then_some(idx)
}

/// What a faulted call is about.
pub(crate) struct Faulted {
    /// The injected code.
    pub code: Status,
    /// The worker the operation belongs to (null: not known).
    pub worker: Handle,
    /// The caller's callback's signature.
    pub kind: CbKind,
}

/// Fills slot `idx` for a faulted call with `view`'s callback and request.
fn fill(idx: usize, faulted: &Faulted, view: &View, extra: u32) -> &'static Slot {
    let slot = &TABLE.slots[idx];
    let mut state = IN_USE | APP | UCX | extra;
    if view.callback != 0 {
        state |= HAS_CB;
    }
    if view.mask & param::FLAG_NO_IMM_CMPL != 0 {
        state |= USER_NO_IMM;
    }
    if view.mask & param::FIELD_REQUEST != 0 {
        state |= USER_REQUEST;
    }
    slot.code.store(faulted.code, Relaxed);
    slot.real.store(UCS_OK, Relaxed);
    slot.kind.store(faulted.kind as u32, Relaxed);
    slot.handle.store(std::ptr::null_mut(), Relaxed);
    slot.worker.store(faulted.worker, Relaxed);
    slot.callback.store(view.callback, Relaxed);
    slot.user_data.store(view.user_data, Relaxed);
    slot.tag.store(0, Relaxed);
    slot.length.store(0, Relaxed);
    slot.poster.store(tid(), Relaxed);
    slot.endpoint.store(0, Relaxed);
    slot.state.store(state, Release);
    slot
}

/// The `completion` site: posts the operation for real with `post` (given the param to use) and returns a
/// request that reports `faulted.code` when it completes. Falls back to failing at the call where it cannot.
///
/// # Safety
/// `param` is the caller's param of the faulted call (null or readable as its mask says); `post` calls the real
/// function with the caller's other arguments.
pub(crate) unsafe fn complete_with_code(
    faulted: Faulted,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    // SAFETY: this function's contract.
    let view = unsafe { View::read(param) };
    if view.mask & param::FLAG_FORCE_IMM_CMPL != 0 {
        log_once(
            &FORCED_INLINE,
            "the call asked to complete inline (FORCE_IMM_CMPL): its fault is reported at the call",
        );
        return status_ptr(faulted.code);
    }
    let Some(len) = param::param_len(view.mask) else {
        log_once(
            &UNKNOWN_PARAM,
            "a request param with fields this shim does not know: its fault is reported at the call",
        );
        return status_ptr(faulted.code);
    };
    let Some(idx) = alloc() else {
        log_once(&FULL, "too many faulted requests in flight: further faults are reported at the call");
        return status_ptr(faulted.code);
    };
    let slot = fill(idx, &faulted, &view, POSTING);
    let wrapper = match faulted.kind {
        CbKind::Send => wrap_send as SendCb as usize,
        CbKind::TagRecv => wrap_tag_recv as TagRecvCb as usize,
        CbKind::StreamRecv | CbKind::AmRecv => wrap_length as LengthCb as usize,
    };
    // SAFETY: the caller's param, `len` bytes of which its mask promises (this function's contract).
    let substitute = unsafe { Substitute::new(param, len, wrapper, idx + 1) };
    let ret = post(substitute.as_ptr());
    slot.state.fetch_and(!POSTING, AcqRel);
    if is_err(ret) {
        // A real failure at the call beats the injected one; UCX made no request and calls no callback.
        release(idx);
        return ret;
    }
    if ret.is_null() {
        // Completed inside the call although asked not to (a flush with nothing to flush, a stream receive of
        // data already there): a shim-made request completes instead, unless the application keeps data of its
        // own in requests (a shim-made handle has no room for it; then the code comes at the call).
        if view.mask & param::FIELD_REQUEST == 0 && workers::requests_carry_app_data(faulted.worker) {
            log_once(&APP_REQUESTS, "requests carry application data (request_size) or the worker is unknown: an operation that completed at the call reports its fault there");
            release(idx);
            return status_ptr(faulted.code);
        }
        if faulted.kind == CbKind::StreamRecv {
            slot.length.store(INLINE_LENGTH.with(|cell| cell.replace(0)) as u64, Relaxed);
        }
        slot.state.fetch_or(SYNTHETIC | DONE, AcqRel);
        return publish_synthetic(idx, &view);
    }
    slot.handle.store(ret, Release);
    if !TABLE.index.insert(ret, idx as u16) {
        log_once(&INDEX_FULL, "a faulted request could not be indexed: its status queries answer as UCX does");
    }
    ret
}

/// A synthetic request for a faulted call whose endpoint is still draining: it completes with `faulted.code` when
/// the drain ends (see [`complete_waiting`]). `None` if there is no room.
///
/// # Safety
/// As [`complete_with_code`]'s `param`.
pub(crate) unsafe fn waiting(faulted: Faulted, param: *const c_void, endpoint: usize) -> Option<StatusPtr> {
    // SAFETY: this function's contract.
    let view = unsafe { View::read(param) };
    let idx = alloc()?;
    let slot = fill(idx, &faulted, &view, SYNTHETIC | WAITING);
    slot.endpoint.store(endpoint as u32 + 1, Release);
    Some(publish_synthetic(idx, &view))
}

/// Makes slot `idx` a synthetic request the application can hold, and arranges its callback.
fn publish_synthetic(idx: usize, view: &View) -> StatusPtr {
    let slot = &TABLE.slots[idx];
    let handle = if view.mask & param::FIELD_REQUEST != 0 && !view.request.is_null() {
        view.request
    } else {
        TABLE.areas[idx].0.as_ptr().cast_mut().cast()
    };
    slot.handle.store(handle, Release);
    if !TABLE.index.insert(handle, idx as u16) {
        log_once(&INDEX_FULL, "a faulted request could not be indexed: its fault is reported at the call");
        let code = slot.code.load(Relaxed);
        release(idx);
        return status_ptr(code);
    }
    let state = slot.state.load(Acquire);
    if state & WAITING == 0 {
        completed(idx, state);
    }
    handle
}

/// Slot `idx` (state `state`, synthetic) is done: its callback is delivered now if the caller asked for inline
/// completion, else by the worker's next progress; without a callback the completion is over.
fn completed(idx: usize, state: u32) {
    if state & HAS_CB == 0 {
        finish(idx);
    } else if state & USER_NO_IMM != 0 && !in_progress() {
        deliver(idx);
    } else {
        enqueue(idx);
    }
}

/// Completes every request waiting for endpoint slot `endpoint`'s drain.
pub(crate) fn complete_waiting(endpoint: usize) {
    for (idx, slot) in TABLE.slots.iter().enumerate() {
        let state = slot.state.load(Acquire);
        if state & WAITING != 0 && slot.endpoint.load(Acquire) == endpoint as u32 + 1 {
            let before = slot.state.fetch_and(!WAITING, AcqRel);
            if before & WAITING != 0 {
                slot.state.fetch_or(DONE, AcqRel);
                enqueue_or_finish(idx, before);
            }
        }
    }
}

fn enqueue_or_finish(idx: usize, state: u32) {
    if state & HAS_CB == 0 {
        finish(idx);
    } else {
        enqueue(idx);
    }
}

/// The completion's part is over: the last owner releases the slot.
fn finish(idx: usize) {
    let before = TABLE.slots[idx].state.fetch_and(!UCX, AcqRel);
    if before & UCX != 0 && before & APP == 0 {
        release(idx);
    }
}

/// Calls the caller's callback of slot `idx` with the reported status, unless the application gave the handle
/// up (UCX does not call the callback of a freed request), then finishes.
fn deliver(idx: usize) {
    let slot = &TABLE.slots[idx];
    let state = slot.state.load(Acquire);
    if state & (APP | KEEP_CB) != 0 && state & HAS_CB != 0 {
        let handle = slot.handle.load(Acquire);
        let status = slot.reported();
        let user_data = slot.user_data.load(Relaxed);
        let callback = slot.callback.load(Relaxed) as *mut c_void;
        let length = slot.length.load(Relaxed) as usize;
        inside_progress(|| match CbKind::from_raw(slot.kind.load(Relaxed)) {
            CbKind::Send => {
                // SAFETY: the caller gave this callback for a send-type call (`Send` kind), so it has
                // `ucp_send_nbx_callback_t`'s signature; the arguments are what UCX would pass.
                unsafe { shim_runtime::fn_at::<SendCb>(callback)(handle, status, user_data) }
            }
            CbKind::TagRecv => {
                let info = TagRecvInfo { sender_tag: slot.tag.load(Relaxed), length };
                // SAFETY: as above, `ucp_tag_recv_nbx_callback_t`; `info` lives across the call.
                unsafe { shim_runtime::fn_at::<TagRecvCb>(callback)(handle, status, &info, user_data) }
            }
            CbKind::StreamRecv | CbKind::AmRecv => {
                // SAFETY: as above, the stream / AM receive callbacks share this signature.
                unsafe { shim_runtime::fn_at::<LengthCb>(callback)(handle, status, length, user_data) }
            }
        });
    }
    finish(idx);
}

/// Queues slot `idx`'s callback for its worker's next progress.
fn enqueue(idx: usize) {
    PENDING.fetch_add(1, AcqRel);
    push(idx);
    workers::signal(TABLE.slots[idx].worker.load(Relaxed));
}

/// Puts slot `idx` on top of the delivery stack (a Treiber push; the stack is only ever emptied whole, so the
/// CAS cannot succeed on a recycled top by mistake).
fn push(idx: usize) {
    let slot = &TABLE.slots[idx];
    let mut head = TABLE.queue.load(Acquire);
    loop {
        slot.next.store(head, Relaxed);
        match TABLE.queue.compare_exchange_weak(head, idx as u32 + 1, AcqRel, Acquire) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
}

/// Delivers the queued callbacks of `worker` (and those of unknown worker posted by this thread), oldest first.
/// Returns how many ran.
pub(crate) fn deliver_queued(worker: Handle) -> u32 {
    let mut top = TABLE.queue.swap(0, AcqRel);
    let mut taken = [0u16; SLOTS];
    let mut count = 0;
    while top != 0 && count < SLOTS {
        let idx = top as usize - 1;
        taken[count] = idx as u16;
        count += 1;
        top = TABLE.slots[idx].next.load(Relaxed);
    }
    let me = tid();
    let mut delivered = 0;
    // Oldest first: the stack holds the newest on top.
    for &idx in taken[..count].iter().rev() {
        let idx = usize::from(idx);
        let slot = &TABLE.slots[idx];
        let owner = slot.worker.load(Relaxed);
        if owner == worker || (owner.is_null() && slot.poster.load(Relaxed) == me) {
            PENDING.fetch_sub(1, AcqRel);
            deliver(idx);
            delivered += 1;
        } else {
            // Someone else's: back on the stack, for their worker's progress.
            push(idx);
        }
    }
    delivered
}

/// Whether a callback is queued for `worker` (so `ucp_worker_arm` must not let the application sleep).
pub(crate) fn queued_for(worker: Handle) -> bool {
    let mut top = TABLE.queue.load(Acquire);
    let mut steps = 0;
    while top != 0 && steps < SLOTS {
        let slot = &TABLE.slots[top as usize - 1];
        let owner = slot.worker.load(Relaxed);
        if owner == worker || owner.is_null() {
            return true;
        }
        top = slot.next.load(Relaxed);
        steps += 1;
    }
    false
}

/// The wrappers UCX calls when a faulted operation completes; `user_data` is the slot + 1.
fn on_complete(user_data: *mut c_void, request: *mut c_void, status: Status, tag: u64, length: usize) {
    let Some(idx) = (user_data as usize).checked_sub(1).filter(|idx| *idx < SLOTS) else { return };
    let slot = &TABLE.slots[idx];
    if slot.state.load(Acquire) & UCX == 0 {
        return; // forgotten with its worker
    }
    slot.real.store(status, Release);
    slot.tag.store(tag, Relaxed);
    slot.length.store(length as u64, Relaxed);
    if slot.handle.load(Acquire).is_null() {
        slot.handle.store(request, Release);
    }
    let state = slot.state.fetch_or(DONE, AcqRel);
    if state & HAS_CB == 0 {
        finish(idx);
    } else if state & POSTING != 0 && state & USER_NO_IMM == 0 {
        // Inside the post call only because the shim asked for a request: the caller's callback runs from the
        // next progress, as it would have for a request that completes later (never inside the call).
        enqueue(idx);
    } else {
        deliver(idx);
    }
}

unsafe extern "C" fn wrap_send(request: *mut c_void, status: Status, user_data: *mut c_void) {
    on_complete(user_data, request, status, 0, 0);
}

unsafe extern "C" fn wrap_tag_recv(
    request: *mut c_void,
    status: Status,
    info: *const TagRecvInfo,
    user_data: *mut c_void,
) {
    // SAFETY: UCX passes the request's receive info (or null, read as empty).
    let (tag, length) = unsafe { info.as_ref() }.map_or((0, 0), |info| (info.sender_tag, info.length));
    on_complete(user_data, request, status, tag, length);
}

unsafe extern "C" fn wrap_length(request: *mut c_void, status: Status, length: usize, user_data: *mut c_void) {
    on_complete(user_data, request, status, 0, length);
}

/// `ucp_request_check_status` and the like, for a followed handle: `Some(status)` (the real status, with success
/// replaced by the code), or `None` for a handle the shim does not follow. `real` asks UCX.
pub(crate) fn status_of(handle: *mut c_void, real: impl FnOnce() -> Status) -> Option<Status> {
    let idx = lookup(handle)?;
    let slot = &TABLE.slots[idx];
    let state = slot.state.load(Acquire);
    if state & SYNTHETIC != 0 {
        return Some(if state & WAITING != 0 { UCS_INPROGRESS } else { slot.code.load(Relaxed) });
    }
    Some(match real() {
        UCS_OK => slot.code.load(Relaxed),
        other => other,
    })
}

/// Whether `handle` is a shim-made request (which must never reach UCX).
pub(crate) fn is_synthetic(handle: *mut c_void) -> Option<bool> {
    lookup(handle).map(|idx| TABLE.slots[idx].state.load(Acquire) & SYNTHETIC != 0)
}

/// The stored receive length of a followed handle.
pub(crate) fn length_of(handle: *mut c_void) -> Option<usize> {
    lookup(handle).map(|idx| TABLE.slots[idx].length.load(Relaxed) as usize)
}

/// `ucp_request_free` (`keep_callback`: `ucp_request_release`) of a followed handle: the application lets go;
/// `real` frees the UCX request (not called for a synthetic one). False for a handle the shim does not follow.
pub(crate) fn free(handle: *mut c_void, keep_callback: bool, real: impl FnOnce()) -> bool {
    let Some(idx) = lookup(handle) else { return false };
    let slot = &TABLE.slots[idx];
    if keep_callback {
        slot.state.fetch_or(KEEP_CB, AcqRel);
    }
    let before = slot.state.fetch_and(!APP, AcqRel);
    TABLE.index.remove(handle);
    if before & SYNTHETIC == 0 {
        real();
        // UCX calls no callback of a request freed before it completed: if the wrapper has not run by now (the
        // worker lock orders it against the free), it never will.
        if before & UCX != 0 && !keep_callback && slot.state.load(Acquire) & DONE == 0 {
            finish(idx);
            return true;
        }
    }
    // A queued callback of a handle freed before it ran is dropped by its delivery, which then releases the slot.
    if before & UCX == 0 {
        release(idx);
    }
    true
}

/// A new post with the same caller-provided request memory: the earlier request it held is over.
pub(crate) fn retire_reused(view: &View) {
    if view.mask & param::FIELD_REQUEST == 0 {
        return;
    }
    let Some(idx) = lookup(view.request) else { return };
    let slot = &TABLE.slots[idx];
    if slot.state.load(Acquire) & (USER_REQUEST | DONE) == USER_REQUEST | DONE {
        let before = slot.state.fetch_and(!APP, AcqRel);
        TABLE.index.remove(view.request);
        if before & UCX == 0 {
            release(idx);
        }
    }
}

/// `ucp_worker_destroy`: the worker's requests are gone with it, without callbacks.
pub(crate) fn forget_worker(worker: Handle) {
    let mine = |slot: &Slot| slot.state.load(Acquire) & IN_USE != 0 && slot.worker.load(Relaxed) == worker;
    for slot in TABLE.slots.iter().filter(|slot| mine(slot)) {
        let before = slot.state.fetch_and(!(APP | HAS_CB | KEEP_CB), AcqRel);
        if before & APP != 0 {
            TABLE.index.remove(slot.handle.load(Relaxed));
        }
    }
    // Queued ones: their deliveries now only finish (and release).
    deliver_queued(worker);
    for (idx, slot) in TABLE.slots.iter().enumerate().filter(|(_, slot)| mine(slot)) {
        // In flight at UCX, or waiting for a drain: nothing will complete them any more.
        if slot.state.fetch_and(!(UCX | WAITING), AcqRel) & IN_USE != 0 {
            release(idx);
        }
    }
}

/// A forked child: none of the parent's requests are its own.
pub(crate) fn forget_all() {
    TABLE.index.clear();
    TABLE.queue.store(0, Relaxed);
    for (idx, slot) in TABLE.slots.iter().enumerate() {
        if slot.state.swap(0, Relaxed) != 0 {
            TABLE.used.give(idx);
        }
    }
}
