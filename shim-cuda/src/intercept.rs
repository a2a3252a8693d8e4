//! What an intercepted CUDA call does before the real function: the device filter, the dead-GPU state, then
//! the shared decision engine ([`shim_runtime::Runtime::enter`]); and what a faulted call does with its code
//! ([`faulted`]: fail now, or defer it to the next synchronisation).

use shim_runtime::Entered;
use shm_proto::layout::Site;

use crate::asyncerr::{self, Flow};
use crate::device::{self, Device};
use crate::xid::{self, Api};
use crate::RUNTIME;

/// Whether a call can go straight to the real function: faults off, GPU alive, and no after-call work
/// `needed`. Two relaxed loads of process-local state plus the runtime's check.
#[inline(always)]
pub fn pass_untouched(needed: bool) -> bool {
    !needed && !RUNTIME.enabled() && !xid::dead()
}

/// One intercepted call; keep it alive across the real call (it holds the reentrancy guard).
pub struct Call(Entered);

impl Call {
    /// Where this call's fault surfaces.
    #[inline]
    pub fn site(&self) -> Site {
        self.0.site()
    }

    /// Performs any delay, then returns the code (pool numbering) to inject instead of calling the real
    /// function, if any. What the call then does with it is [`faulted`]'s.
    #[inline]
    pub fn fault(&self) -> Option<i32> {
        self.0.fault()
    }
}

/// A call of `api` taking part in asynchronous errors as `flow` was faulted with `code` (pool numbering) at
/// `site`: `None` if the fault is deferred (an asynchronous call under `completion`: it returns success and
/// the next synchronisation reports the code, see [`asyncerr`]), else the code to fail the call with now. A
/// fault that surfaces now kills the GPU if it is the XID preset's, and a runtime call's becomes the thread's
/// last error (`cudaGetLastError`), as the runtime records a failing call's status. A deferred preset code
/// kills the GPU when it is reported, not at the launch.
#[cold]
#[inline(never)]
pub fn faulted(api: Api, flow: Flow, code: i32, site: Site) -> Option<i32> {
    if let Flow::Async(stream) = flow {
        if site != Site::Post && asyncerr::defer(device::context_device(), stream, code) {
            return None;
        }
    }
    xid::note_injected(RUNTIME.segment(), code);
    if api == Api::Runtime && !matches!(flow, Flow::LastError { .. }) {
        asyncerr::set_last_error(xid::code_for(api, code));
    }
    Some(code)
}

/// Enters an intercepted call of `hook` acting on `device`.
#[inline]
pub fn enter(hook: usize, size: u64, device: Device) -> Call {
    if !device::targeted(device) {
        return Call(RUNTIME.enter_exempt(hook));
    }
    if !RUNTIME.enabled() {
        if xid::dead() {
            xid::revive();
        }
        return Call(RUNTIME.enter_exempt(hook));
    }
    if xid::dead() {
        if let Some(code) = RUNTIME.segment().and_then(|segment| xid::dead_code(segment, hook)) {
            return Call(RUNTIME.enter_forced(hook, size, code, Site::Post));
        }
    }
    Call(RUNTIME.enter(hook, size))
}
