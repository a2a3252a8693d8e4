//! What an intercepted CUDA call does before the real function: the device filter, the dead-GPU state, then
//! the shared decision engine ([`shim_runtime::Runtime::enter`]).

use shim_runtime::Entered;
use shm_proto::layout::Site;

use crate::device::{self, Device};
use crate::{xid, RUNTIME};

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
    /// function, if any. An injected XID preset code kills the GPU.
    #[inline]
    pub fn fault(&self) -> Option<i32> {
        let code = self.0.fault()?;
        xid::note_injected(RUNTIME.segment(), code);
        Some(code)
    }
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
