//! `libfaultline_ucx.so`: preloaded into a UCX application, it intercepts the UCP data path and setup calls and
//! makes them fail as the process's faultline segment says. Every export is a thin body over [`shim_runtime`]:
//! enter (count, decide, record), then either return the injected status or call the real function.
//!
//! - An injected `*_nbx` fault returns `UCS_STATUS_PTR(code)` without starting the operation, so its callback
//!   never runs; an injected `ucs_status_t` function returns the code and leaves its outputs untouched.
//! - `ucp_worker_progress` is never intercepted (called millions of times a second); `ucp_request_check_status` is
//!   intercepted but not armed by default (faulting it lies about in-flight requests).
//! - The real function comes from `RTLD_NEXT` or any loaded `libucp*` (wheel copies loaded `RTLD_LOCAL`); libucp
//!   is never linked. If none is loaded, a call fails with `UCS_ERR_NO_ELEM` instead of jumping to null.
//! - Start-up settings come from the environment overlaid by the node's UCX policy file ([`policy`],
//!   `FAULTLINE_UCX_POLICY_FILE`), read once by the constructor.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_uint, c_void};

use shim_runtime::{hook, Runtime, ShimSpec};
use shm_proto::node_policy::{self, Layered, UCX_POLICY_FILE_VAR};

// Under `cfg(test)` nothing is exported (unit tests do not interpose on themselves), so much is unused there.
#[cfg_attr(test, allow(dead_code))]
mod api;
#[cfg_attr(test, allow(dead_code))]
mod site;

/// `ucs_status_t`.
pub type Status = c_int;
/// `ucs_status_ptr_t`: a request pointer, or a status encoded as a pointer.
pub type StatusPtr = *mut c_void;
/// Any opaque UCP handle (`ucp_ep_h`, `ucp_worker_h`, …).
pub type Handle = *mut c_void;

/// `UCS_ERR_NO_ELEM`: what a call returns when the real function is nowhere to be found.
pub const UCS_ERR_NO_ELEM: Status = -12;

/// `UCS_STATUS_PTR(code)`.
#[inline(always)]
fn status_ptr(code: Status) -> StatusPtr {
    code as isize as StatusPtr
}

#[inline(always)]
fn status(code: Status) -> Status {
    code
}

const LIBUCP: &[&str] = &["libucp"];

shim_runtime::hook_table! {
    libraries: LIBUCP;
    GetNbx => "ucp_get_nbx",
    PutNbx => "ucp_put_nbx",
    TagSendNbx => "ucp_tag_send_nbx",
    TagSendSyncNbx => "ucp_tag_send_sync_nbx",
    TagRecvNbx => "ucp_tag_recv_nbx",
    AmSendNbx => "ucp_am_send_nbx",
    AmRecvDataNbx => "ucp_am_recv_data_nbx",
    StreamSendNbx => "ucp_stream_send_nbx",
    StreamRecvNbx => "ucp_stream_recv_nbx",
    AtomicOpNbx => "ucp_atomic_op_nbx",
    EpFlushNbx => "ucp_ep_flush_nbx",
    WorkerFlushNbx => "ucp_worker_flush_nbx",
    EpCloseNbx => "ucp_ep_close_nbx",
    EpCreate => "ucp_ep_create",
    MemMap => "ucp_mem_map",
    RkeyPack => "ucp_rkey_pack",
    EpRkeyUnpack => "ucp_ep_rkey_unpack",
    RequestCheckStatus => "ucp_request_check_status",
}

fn default_armed(hook: usize) -> bool {
    hook != Hook::RequestCheckStatus as usize && hook < HOOKS.len()
}

static SPEC: ShimSpec = ShimSpec { kind: shim_runtime::Kind::Ucx, hooks: HOOKS, default_armed };
static RUNTIME: Runtime = Runtime::new(&SPEC);

/// The library constructor: settings (environment + the node's UCX policy file, read once), the runtime's
/// segment, and the site tables' fork handler.
///
/// The policy file (`FAULTLINE_UCX_POLICY_FILE`) is how a node's NIC is "armed" (`faultline cluster nic-failure`):
/// the node agent writes it on the host, every UCX-shimmed pod points at it, and a process started while it says
/// `FAULTLINE_ENABLED=1` fails its endpoints from its first armed call, so a restarted pod fails again, as on a
/// dead NIC. Its values override the environment's; a missing file means "not armed" (see [`node_policy`]).
#[cfg_attr(test, allow(dead_code))]
fn start() {
    let env = |name: &str| std::env::var(name).ok();
    let settings = Layered::resolve(env, UCX_POLICY_FILE_VAR, |path| node_policy::read(path.as_ref()));
    RUNTIME.init_layered(&settings, env);
    // SAFETY: registering a child handler has no preconditions; the handler only resets process-local tables.
    unsafe { libc::pthread_atfork(None, None, Some(site::after_fork_in_child)) };
}

shim_runtime::constructor!(init = start, runtime = RUNTIME);

/// A data hook on an endpoint (`ep = …`) or a worker (`worker = …`): faults surface at the process's site
/// ([`site::ep_op`] / [`site::worker_op`], or `$via`), given a `post` that makes the real call with another param;
/// the gate answers first for failed endpoints and reused request memory.
macro_rules! data_hook {
    ($id:ident, fn $name:ident($($arg:ident: $ty:ty),*) -> StatusPtr, $on:ident = $target:ident,
     param = $param:ident, size = $size:expr, kind = $kind:ident $(, via = $via:path)?) => {
        hook!($id, fn $name($($arg: $ty),*) -> StatusPtr, size = $size,
            fail = status_ptr, missing = UCS_ERR_NO_ELEM,
            fault = |code, site, real| {
                let post = |$param: *const c_void| {
                    if real.is_null() {
                        return status_ptr(UCS_ERR_NO_ELEM);
                    }
                    // SAFETY: the real function (not null), the caller's arguments with the shim's param.
                    unsafe { forward(real, $($arg),*) }
                };
                // SAFETY: the caller's endpoint or worker and param; `post` is the real call.
                unsafe { data_hook!(@via $on $($via)?)(code, site, $target, site::requests::CbKind::$kind, $param, post) }
            },
            // SAFETY: the caller's arguments, as given to the real function.
            gate = site::gated() => unsafe { data_hook!(@gate $on, $id, $target, $size, $kind, $param) });
    };
    (@via ep) => { site::ep_op };
    (@via worker) => { site::worker_op };
    (@via $on:ident $via:path) => { $via };
    (@gate ep, $id:ident, $ep:ident, $size:expr, $kind:ident, $param:ident) => {
        site::ep_gate(Hook::$id, $ep, $size as u64, site::requests::CbKind::$kind, $param)
    };
    (@gate worker, $id:ident, $worker:ident, $size:expr, $kind:ident, $param:ident) => { site::worker_gate($param) };
}

data_hook!(GetNbx, fn ucp_get_nbx(ep: Handle, buffer: *mut c_void, count: usize, remote_addr: u64, rkey: Handle, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
data_hook!(PutNbx, fn ucp_put_nbx(ep: Handle, buffer: *const c_void, count: usize, remote_addr: u64, rkey: Handle, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
data_hook!(TagSendNbx, fn ucp_tag_send_nbx(ep: Handle, buffer: *const c_void, count: usize, tag: u64, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
data_hook!(TagSendSyncNbx, fn ucp_tag_send_sync_nbx(ep: Handle, buffer: *const c_void, count: usize, tag: u64, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
data_hook!(TagRecvNbx, fn ucp_tag_recv_nbx(worker: Handle, buffer: *mut c_void, count: usize, tag: u64, tag_mask: u64, param: *const c_void) -> StatusPtr, worker = worker, param = param, size = count, kind = TagRecv);
data_hook!(AmSendNbx, fn ucp_am_send_nbx(ep: Handle, id: c_uint, header: *const c_void, header_length: usize, buffer: *const c_void, count: usize, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
hook!(AmRecvDataNbx, fn ucp_am_recv_data_nbx(worker: Handle, data_desc: *mut c_void, buffer: *mut c_void, count: usize, param: *const c_void) -> StatusPtr, size = count, fail = status_ptr, missing = UCS_ERR_NO_ELEM,
    fault = |code, site, real| {
        let post = |param: *const c_void| {
            if real.is_null() {
                return status_ptr(UCS_ERR_NO_ELEM);
            }
            // SAFETY: the real function (not null), the caller's arguments with the shim's param.
            unsafe { forward(real, worker, data_desc, buffer, count, param) }
        };
        // SAFETY: the caller's worker, descriptor and param; `post` is the real call.
        unsafe { site::am_recv_data(code, site, worker, data_desc, param, post) }
    },
    // SAFETY: the caller's param, as given to the real function.
    gate = site::gated() => unsafe { site::worker_gate(param) });
data_hook!(StreamSendNbx, fn ucp_stream_send_nbx(ep: Handle, buffer: *const c_void, count: usize, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
hook!(StreamRecvNbx, fn ucp_stream_recv_nbx(ep: Handle, buffer: *mut c_void, count: usize, length: *mut usize, param: *const c_void) -> StatusPtr, size = count, fail = status_ptr, missing = UCS_ERR_NO_ELEM,
    fault = |code, site, real| {
        let post = |param: *const c_void| {
            if real.is_null() {
                return status_ptr(UCS_ERR_NO_ELEM);
            }
            // SAFETY: the real function (not null), the caller's arguments with the shim's param.
            let ret = unsafe { forward(real, ep, buffer, count, length, param) };
            if ret.is_null() && !length.is_null() {
                // Received at the call: the length UCX wrote is what the callback will be given.
                // SAFETY: the caller's length output, just written by UCX.
                site::requests::note_inline_length(unsafe { *length });
            }
            ret
        };
        // SAFETY: the caller's endpoint and param; `post` is the real call.
        unsafe { site::ep_op(code, site, ep, site::requests::CbKind::StreamRecv, param, post) }
    },
    // SAFETY: the caller's param, as given to the real function.
    gate = site::gated() => unsafe { site::ep_gate(Hook::StreamRecvNbx, ep, count as u64, site::requests::CbKind::StreamRecv, param) });
data_hook!(AtomicOpNbx, fn ucp_atomic_op_nbx(ep: Handle, opcode: c_int, buffer: *const c_void, count: usize, remote_addr: u64, rkey: Handle, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = count, kind = Send);
data_hook!(EpFlushNbx, fn ucp_ep_flush_nbx(ep: Handle, param: *const c_void) -> StatusPtr, ep = ep, param = param, size = 0, kind = Send, via = site_ep_flush);
data_hook!(WorkerFlushNbx, fn ucp_worker_flush_nbx(worker: Handle, param: *const c_void) -> StatusPtr, worker = worker, param = param, size = 0, kind = Send, via = site_worker_flush);
hook!(MemMap, fn ucp_mem_map(context: Handle, params: *const c_void, memh_p: *mut Handle) -> Status, size = 0, fail = status, missing = UCS_ERR_NO_ELEM);
hook!(RkeyPack, fn ucp_rkey_pack(context: Handle, memh: Handle, rkey_buffer_p: *mut *mut c_void, size_p: *mut usize) -> Status, size = 0, fail = status, missing = UCS_ERR_NO_ELEM);
hook!(EpRkeyUnpack, fn ucp_ep_rkey_unpack(ep: Handle, rkey_buffer: *const c_void, rkey_p: *mut Handle) -> Status, size = 0, fail = status, missing = UCS_ERR_NO_ELEM);
hook!(RequestCheckStatus, fn ucp_request_check_status(request: *mut c_void) -> Status, size = 0, fail = status, missing = UCS_ERR_NO_ELEM,
    // SAFETY: the caller's request; `api::real_check_status` asks UCX about a real one.
    gate = site::gated() => site::requests::status_of(request, || unsafe { api::real_check_status(request) }));

/// `ucp_worker_flush_nbx`'s site: [`site::worker_flush`] (the same shape as [`site::worker_op`]).
///
/// # Safety
/// As [`site::worker_flush`].
unsafe fn site_worker_flush(
    code: Status,
    site: shm_proto::layout::Site,
    worker: Handle,
    _kind: site::requests::CbKind,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    // SAFETY: this function's contract.
    unsafe { site::worker_flush(code, site, worker, param, post) }
}

/// `ucp_ep_flush_nbx`'s site: [`site::ep_flush`] (the same shape as [`site::ep_op`]).
///
/// # Safety
/// As [`site::ep_flush`].
unsafe fn site_ep_flush(
    code: Status,
    site: shm_proto::layout::Site,
    ep: Handle,
    _kind: site::requests::CbKind,
    param: *const c_void,
    post: impl FnOnce(*const c_void) -> StatusPtr,
) -> StatusPtr {
    // SAFETY: this function's contract.
    unsafe { site::ep_flush(code, site, ep, param, post) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_ids_match_the_published_names() {
        assert_eq!(HOOKS.len(), REAL.len());
        assert_eq!(HOOKS[Hook::PutNbx as usize], "ucp_put_nbx");
        assert_eq!(HOOKS[Hook::RequestCheckStatus as usize], "ucp_request_check_status");
        assert!(REAL.iter().zip(HOOKS).all(|(real, name)| real.name() == *name));
        assert!(!HOOKS.contains(&"ucp_worker_progress"));
    }

    #[test]
    fn everything_but_request_check_status_is_armed_by_default() {
        let armed: Vec<_> = (0..HOOKS.len()).filter(|&h| default_armed(h)).collect();
        assert_eq!(armed.len(), HOOKS.len() - 1);
        assert!(!default_armed(Hook::RequestCheckStatus as usize));
    }
}
