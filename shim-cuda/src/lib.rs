//! `libfaultline_cuda.so`: preloaded into a CUDA application, it intercepts CUDA runtime and driver calls and
//! makes them fail as the process's faultline segment says (kind `cuda`: same protocol, decision engine, CLI
//! and dashboard as the UCX shim).
//!
//! - [`api`]: every export, one thin [`cuda_hook!`] line each (runtime `cuda*`, driver `cu*`);
//! - [`intercept`]: device filter → dead-GPU state → decision engine, per call;
//! - [`asyncerr`]: the `completion` site: faults of asynchronous calls reported by the next synchronisation,
//!   and the runtime's last error;
//! - [`xid`]: XID presets (what the application sees per API) and the sticky dead-GPU state;
//! - [`device`]: `FAULTLINE_DEVICE` and the per-thread current device;
//! - [`policy`]: start-up settings: environment, node policy file, XID defaults;
//! - [`proc_address`]: `cuGetProcAddress` answers and `dlsym` handle lookups get slot wrappers;
//! - [`dlsym`]: the exported `dlsym` that makes handle lookups visible.
//!
//! The real functions come from `RTLD_NEXT` or any loaded `libcudart*` / `libcuda*` (e.g. a wheel's
//! `libcudart.so.12`); the shim never links either.
#![deny(unsafe_op_in_unsafe_fn)]

#[macro_use]
mod macros;

pub mod api;
mod asyncerr;
mod device;
mod dlsym;
mod intercept;
mod policy;
mod proc_address;
mod xid;

use shim_runtime::{Runtime, ShimSpec};

/// Libraries the real functions may live in (`RealFn` matches `libcudart.so.12`, `libcuda.so.1`, …).
const LIBRARIES: &[&str] = &["libcudart", "libcuda"];

hook_table! {
    // Runtime API (libcudart).
    GetDeviceCount => cudaGetDeviceCount,
    SetDevice => cudaSetDevice,
    GetDevice => cudaGetDevice,
    GetDeviceProperties => cudaGetDeviceProperties,
    GetDevicePropertiesV2 => cudaGetDeviceProperties_v2,
    Malloc => cudaMalloc,
    MallocAsync => cudaMallocAsync,
    Free => cudaFree,
    Memcpy => cudaMemcpy,
    MemcpyAsync => cudaMemcpyAsync,
    Memset => cudaMemset,
    LaunchKernel => cudaLaunchKernel,
    DeviceSynchronize => cudaDeviceSynchronize,
    StreamSynchronize => cudaStreamSynchronize,
    StreamCreate => cudaStreamCreate,
    EventSynchronize => cudaEventSynchronize,
    // Driver API (libcuda).
    Init => cuInit,
    DeviceGet => cuDeviceGet,
    DeviceGetCount => cuDeviceGetCount,
    DeviceGetAttribute => cuDeviceGetAttribute,
    DevicePrimaryCtxRetain => cuDevicePrimaryCtxRetain,
    CtxCreate => cuCtxCreate,
    CtxCreateV2 => cuCtxCreate_v2,
    CtxCreateV3 => cuCtxCreate_v3,
    CtxCreateV4 => cuCtxCreate_v4,
    CtxSetCurrent => cuCtxSetCurrent,
    CtxPushCurrentV2 => cuCtxPushCurrent_v2,
    CtxPopCurrentV2 => cuCtxPopCurrent_v2,
    CtxSynchronize => cuCtxSynchronize,
    MemAlloc => cuMemAlloc,
    MemAllocV2 => cuMemAlloc_v2,
    MemFree => cuMemFree,
    MemFreeV2 => cuMemFree_v2,
    DriverMemcpy => cuMemcpy,
    DriverMemcpyAsync => cuMemcpyAsync,
    MemcpyHtoD => cuMemcpyHtoD,
    MemcpyHtoDV2 => cuMemcpyHtoD_v2,
    MemcpyDtoH => cuMemcpyDtoH,
    MemcpyDtoHV2 => cuMemcpyDtoH_v2,
    MemcpyDtoD => cuMemcpyDtoD,
    MemcpyDtoDV2 => cuMemcpyDtoD_v2,
    MemcpyHtoDAsync => cuMemcpyHtoDAsync,
    MemcpyHtoDAsyncV2 => cuMemcpyHtoDAsync_v2,
    MemcpyDtoHAsync => cuMemcpyDtoHAsync,
    MemcpyDtoHAsyncV2 => cuMemcpyDtoHAsync_v2,
    MemcpyDtoDAsync => cuMemcpyDtoDAsync,
    MemcpyDtoDAsyncV2 => cuMemcpyDtoDAsync_v2,
    DriverLaunchKernel => cuLaunchKernel,
    DriverStreamSynchronize => cuStreamSynchronize,
    ModuleLoad => cuModuleLoad,
    ModuleLoadData => cuModuleLoadData,
    ModuleLoadDataEx => cuModuleLoadDataEx,
    ModuleLoadFatBinary => cuModuleLoadFatBinary,
    ModuleGetFunction => cuModuleGetFunction,
    GetProcAddress => cuGetProcAddress,
    GetProcAddressV2 => cuGetProcAddress_v2,
    // Appended with the completion site (ids above are published: they do not move).
    GetLastError => cudaGetLastError,
    PeekAtLastError => cudaPeekAtLastError,
    StreamQuery => cudaStreamQuery,
    EventQuery => cudaEventQuery,
    DriverStreamQuery => cuStreamQuery,
    DriverEventSynchronize => cuEventSynchronize,
    DriverEventQuery => cuEventQuery,
}

/// Every hook is armed by default except the `cuGetProcAddress` pair (failing a symbol lookup is not something
/// a failing GPU does, and it breaks the runtime's initialisation in ways no real fault would) and the
/// last-error pair (they report errors other calls had; failing them by themselves is not a GPU fault).
fn default_armed(hook: usize) -> bool {
    const UNARMED: [Hook; 4] =
        [Hook::GetProcAddress, Hook::GetProcAddressV2, Hook::GetLastError, Hook::PeekAtLastError];
    hook < HOOKS.len() && !UNARMED.iter().any(|&h| h as usize == hook)
}

static SPEC: ShimSpec = ShimSpec { kind: shim_runtime::Kind::Cuda, hooks: HOOKS, default_armed };
static RUNTIME: Runtime = Runtime::new(&SPEC);
shim_runtime::constructor!(init = crate::init, runtime = RUNTIME);

/// The library constructor: settings (environment + policy file, read once), XID preset, device target, the
/// runtime's segment, and the real `dlsym`.
#[cold]
#[cfg_attr(test, allow(dead_code))] // run by the constructor, which unit tests leave out
fn init() {
    let env = |name: &str| std::env::var(name).ok();
    let settings = policy::resolve(env, |path| shm_proto::node_policy::read(path.as_ref()));
    xid::activate(settings.xid);
    device::set_target(settings.device);
    RUNTIME.init_layered(&settings.layered, env);
    dlsym::resolve();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_ids_match_the_published_names() {
        assert_eq!(HOOKS.len(), REAL.len());
        assert_eq!(HOOKS[0], "cudaGetDeviceCount", "listed first in messages");
        assert_eq!(HOOKS[Hook::MemAllocV2 as usize], "cuMemAlloc_v2");
        assert_eq!(HOOKS[Hook::GetProcAddressV2 as usize], "cuGetProcAddress_v2");
        assert_eq!(Hook::GetProcAddressV2 as usize, 55, "published ids never move: new hooks are appended");
        assert_eq!(
            HOOKS[56..],
            [
                "cudaGetLastError",
                "cudaPeekAtLastError",
                "cudaStreamQuery",
                "cudaEventQuery",
                "cuStreamQuery",
                "cuEventSynchronize",
                "cuEventQuery"
            ]
        );
        assert!(REAL.iter().zip(HOOKS).all(|(real, name)| real.name() == *name));
        assert!(HOOKS.len() <= shm_proto::layout::MAX_HOOKS);
        assert!(HOOKS.iter().all(|h| h.len() < shm_proto::layout::HOOK_NAME_LEN));
    }

    #[test]
    fn everything_but_symbol_lookup_and_the_last_error_is_armed_by_default() {
        let unarmed: Vec<_> = (0..HOOKS.len()).filter(|&h| !default_armed(h)).map(|h| HOOKS[h]).collect();
        assert_eq!(unarmed, ["cuGetProcAddress", "cuGetProcAddress_v2", "cudaGetLastError", "cudaPeekAtLastError"]);
    }

    #[test]
    fn every_hook_has_distinct_slot_wrappers() {
        let mut all: Vec<*const ()> = WRAPPERS.iter().flat_map(|w| w.iter().map(|w| w.0)).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), HOOKS.len() * proc_address::SLOTS);
    }
}
