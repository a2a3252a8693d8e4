//! `FAULTLINE_DEVICE`: fault only the calls that act on one device ordinal, tracking each thread's current
//! device through `cudaSetDevice` and the context calls.
//!
//! A call's device is its device argument where it has one (`cudaSetDevice`, `cudaGetDeviceProperties`,
//! `cuDeviceGet`, `cuDeviceGetAttribute`, `cuCtxCreate*`, `cuDevicePrimaryCtxRetain`), else the calling
//! thread's current device (0 until the thread selects another, as in CUDA). Calls that name no device
//! (`cudaGetDeviceCount`, `cuInit`, `cuDeviceGetCount`, `cuGetProcAddress*`) are not faulted while a device is
//! targeted. Calls outside the target pass through uncounted, as if not intercepted (see
//! `Runtime::enter_exempt`). Tracking only runs while a device is targeted; without `FAULTLINE_DEVICE` it costs
//! nothing.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use shim_runtime::RealFn;

/// The device a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// Names no device (counts, initialisation, symbol lookup).
    None,
    /// The calling thread's current device.
    Current,
    /// This ordinal (the call's argument).
    Arg(c_int),
}

/// The targeted ordinal; -1: every device.
static TARGET: AtomicI32 = AtomicI32::new(-1);

thread_local! {
    static CURRENT: Cell<c_int> = const { Cell::new(0) };
}

static CTX_GET_DEVICE: RealFn = RealFn::new(shim_runtime::cstr(b"cuCtxGetDevice\0"), &["libcuda"]);

/// Targets `ordinal` (start-up only).
pub fn set_target(ordinal: Option<c_int>) {
    TARGET.store(ordinal.unwrap_or(-1), Relaxed);
}

/// Whether a device is targeted (so current devices are tracked).
#[inline(always)]
pub fn tracking() -> bool {
    TARGET.load(Relaxed) >= 0
}

/// The calling thread's current device, as far as the shim has seen.
pub fn current() -> c_int {
    CURRENT.try_with(Cell::get).unwrap_or(0)
}

/// Whether a call acting on `device` may be faulted.
#[inline]
pub fn targeted(device: Device) -> bool {
    let target = TARGET.load(Relaxed);
    target < 0
        || match device {
            Device::None => false,
            Device::Current => current() == target,
            Device::Arg(ordinal) => ordinal == target,
        }
}

/// After `cudaSetDevice(ordinal)` / `cuCtxCreate*(…, ordinal)` returned `status`.
#[inline]
pub fn selected(status: c_int, ordinal: c_int) {
    if status == 0 && tracking() {
        let _ = CURRENT.try_with(|c| c.set(ordinal));
    }
}

/// After a call that changed the thread's current context (`cuCtxSetCurrent`, `cuCtxPushCurrent_v2`,
/// `cuCtxPopCurrent_v2`) returned `status`: asks the driver which device the now-current context is on.
/// With no current context the thread keeps its last device.
#[inline]
pub fn context_changed(status: c_int) {
    if status != 0 || !tracking() {
        return;
    }
    let ordinal = context_device();
    if ordinal >= 0 {
        let _ = CURRENT.try_with(|c| c.set(ordinal));
    }
}

/// The device of the calling thread's current context, asked of the driver's `cuCtxGetDevice` (the runtime
/// makes its device's primary context current, so this is the runtime's current device too); -1 if there is
/// no driver, no current context, or the driver says no. Slow paths only (a call into the driver).
#[cold]
pub fn context_device() -> c_int {
    let get_device = CTX_GET_DEVICE.get();
    if get_device.is_null() {
        return -1;
    }
    type CtxGetDevice = unsafe extern "C" fn(*mut c_int) -> c_int;
    let mut ordinal: c_int = -1;
    // SAFETY: `get_device` is the driver's `cuCtxGetDevice(CUdevice *)` (not null; CUdevice is an int, so
    // `CtxGetDevice` mirrors it); `ordinal` is a valid, writable int. The shim does not intercept it, so this
    // does not re-enter a hook.
    let status = unsafe { shim_runtime::fn_at::<CtxGetDevice>(get_device)(&mut ordinal) };
    if status == 0 && ordinal >= 0 {
        ordinal
    } else {
        -1
    }
}
