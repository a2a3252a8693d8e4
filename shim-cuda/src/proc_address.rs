//! Intercepting functions the application never calls by their exported name: `cuGetProcAddress` (how the
//! CUDA runtime reaches every driver function) and `dlsym` on a libcuda / libcudart handle (`ctypes`, the
//! runtime loading the driver, Triton).
//!
//! The real function such a lookup returns may differ from the exported symbol (a per-thread-default-stream
//! `_ptsz` variant, an internal entry point, a second copy of the library), so the shim hands back a *slot
//! wrapper*: one of [`SLOTS`] unexported twins of the hook that forwards to exactly the pointer that was looked
//! up, after the same interception as the export. A hook's slots are claimed per distinct real pointer (a
//! lock-free compare-exchange, cold: lookups happen at start-up); when all are taken, further pointers are
//! handed out unwrapped (uninterrupted, uninjected) and that is reported once.
//!
//! Which hook (and so which C signature) a `cuGetProcAddress(symbol, version, flags)` answer has: the name of
//! the exported symbol at that address when `dladdr` knows it (`cuMemcpyHtoD_v2_ptds` → `cuMemcpyHtoD_v2`),
//! otherwise the newest ABI version of `symbol` introduced at or before `version` ([`VERSIONS`], from CUDA
//! 12.9's `cudaTypedefs.h`: `cuMemAlloc` at 3020 or later is `cuMemAlloc_v2`, `cuCtxCreate` at 11040 is
//! `cuCtxCreate_v3`). An answer whose ABI the shim does not know is left alone.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};

use crate::{Hook, HOOKS, WRAPPERS};

/// Slot wrappers per hook.
pub const SLOTS: usize = 8;

/// A slot wrapper's address (a `static` of function pointers of different types).
#[derive(Debug, Clone, Copy)]
pub struct Wrapper(pub *const ());

// SAFETY: the pointer is the address of a function, immutable and valid for the library's lifetime.
unsafe impl Sync for Wrapper {}

static SLOT_REAL: [[AtomicPtr<c_void>; SLOTS]; HOOKS.len()] =
    [const { [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS] }; HOOKS.len()];
static SLOTS_EXHAUSTED: AtomicBool = AtomicBool::new(false);

/// The real function slot `slot` of `hook` forwards to (null until claimed, which never happens before its
/// wrapper is handed out).
#[inline(always)]
pub fn slot_real(hook: usize, slot: usize) -> *mut c_void {
    SLOT_REAL[hook][slot].load(Acquire)
}

/// The slot wrapper of `hook` that forwards to `real`, claiming a slot for it if needed; `None` if all slots
/// hold other functions.
#[cold]
pub fn wrapper_for(hook: usize, real: *mut c_void) -> Option<*mut c_void> {
    if real.is_null() || hook >= HOOKS.len() {
        return None;
    }
    for (slot, cell) in SLOT_REAL[hook].iter().enumerate() {
        let held = match cell.compare_exchange(std::ptr::null_mut(), real, AcqRel, Acquire) {
            Ok(_) => real,
            Err(held) => held,
        };
        if held == real {
            return Some(WRAPPERS[hook][slot].0 as *mut c_void);
        }
    }
    if !SLOTS_EXHAUSTED.swap(true, Relaxed) {
        shim_runtime::log!(
            "{}: more than {SLOTS} distinct real functions looked up; further ones are not intercepted",
            HOOKS[hook]
        );
    }
    None
}

/// ABI versions of each symbol a driver hook intercepts: (CUDA version that introduced it, hook), oldest first.
pub static VERSIONS: &[(&str, &[(c_int, Hook)])] = &[
    ("cuInit", &[(2000, Hook::Init)]),
    ("cuDeviceGet", &[(2000, Hook::DeviceGet)]),
    ("cuDeviceGetCount", &[(2000, Hook::DeviceGetCount)]),
    ("cuDeviceGetAttribute", &[(2000, Hook::DeviceGetAttribute)]),
    ("cuDevicePrimaryCtxRetain", &[(7000, Hook::DevicePrimaryCtxRetain)]),
    (
        "cuCtxCreate",
        &[(2000, Hook::CtxCreate), (3020, Hook::CtxCreateV2), (11040, Hook::CtxCreateV3), (12050, Hook::CtxCreateV4)],
    ),
    ("cuCtxSetCurrent", &[(4000, Hook::CtxSetCurrent)]),
    ("cuCtxPushCurrent", &[(4000, Hook::CtxPushCurrentV2)]),
    ("cuCtxPopCurrent", &[(4000, Hook::CtxPopCurrentV2)]),
    ("cuCtxSynchronize", &[(2000, Hook::CtxSynchronize)]),
    ("cuMemAlloc", &[(2000, Hook::MemAlloc), (3020, Hook::MemAllocV2)]),
    ("cuMemFree", &[(2000, Hook::MemFree), (3020, Hook::MemFreeV2)]),
    ("cuMemcpy", &[(4000, Hook::DriverMemcpy)]),
    ("cuMemcpyAsync", &[(4000, Hook::DriverMemcpyAsync)]),
    ("cuMemcpyHtoD", &[(2000, Hook::MemcpyHtoD), (3020, Hook::MemcpyHtoDV2)]),
    ("cuMemcpyDtoH", &[(2000, Hook::MemcpyDtoH), (3020, Hook::MemcpyDtoHV2)]),
    ("cuMemcpyDtoD", &[(2000, Hook::MemcpyDtoD), (3020, Hook::MemcpyDtoDV2)]),
    ("cuMemcpyHtoDAsync", &[(2000, Hook::MemcpyHtoDAsync), (3020, Hook::MemcpyHtoDAsyncV2)]),
    ("cuMemcpyDtoHAsync", &[(2000, Hook::MemcpyDtoHAsync), (3020, Hook::MemcpyDtoHAsyncV2)]),
    ("cuMemcpyDtoDAsync", &[(3000, Hook::MemcpyDtoDAsync), (3020, Hook::MemcpyDtoDAsyncV2)]),
    ("cuLaunchKernel", &[(4000, Hook::DriverLaunchKernel)]),
    ("cuStreamSynchronize", &[(2000, Hook::DriverStreamSynchronize)]),
    ("cuStreamQuery", &[(2000, Hook::DriverStreamQuery)]),
    ("cuEventSynchronize", &[(2000, Hook::DriverEventSynchronize)]),
    ("cuEventQuery", &[(2000, Hook::DriverEventQuery)]),
    ("cuModuleLoad", &[(2000, Hook::ModuleLoad)]),
    ("cuModuleLoadData", &[(2000, Hook::ModuleLoadData)]),
    ("cuModuleLoadDataEx", &[(2010, Hook::ModuleLoadDataEx)]),
    ("cuModuleLoadFatBinary", &[(2000, Hook::ModuleLoadFatBinary)]),
    ("cuModuleGetFunction", &[(2000, Hook::ModuleGetFunction)]),
    ("cuGetProcAddress", &[(11030, Hook::GetProcAddress), (12000, Hook::GetProcAddressV2)]),
];

/// The hook whose signature `cuGetProcAddress(symbol, …, version, …)`'s answer `found` has.
pub fn hook_for_lookup(symbol: &[u8], version: c_int, found: *mut c_void) -> Option<Hook> {
    let (_, variants) = VERSIONS.iter().find(|(name, _)| name.as_bytes() == symbol)?;
    if let Some(exported) = exported_name(found) {
        let base = strip_stream_suffix(exported.to_bytes());
        if let Some((_, hook)) = variants.iter().find(|(_, hook)| HOOKS[*hook as usize].as_bytes() == base) {
            return Some(*hook);
        }
    }
    variants.iter().rev().find(|(since, _)| *since <= version).map(|(_, hook)| *hook)
}

/// The hook an exported function named `name` is, if the shim intercepts it.
pub fn hook_named(name: &[u8]) -> Option<usize> {
    if !name.starts_with(b"cu") {
        return None;
    }
    HOOKS.iter().position(|hook| hook.as_bytes() == name)
}

/// `cuMemcpyHtoD_v2_ptds` → `cuMemcpyHtoD_v2`: the per-thread-default-stream variants share the signature.
fn strip_stream_suffix(name: &[u8]) -> &[u8] {
    name.strip_suffix(b"_ptds").or_else(|| name.strip_suffix(b"_ptsz")).unwrap_or(name)
}

/// The name of the exported symbol that starts exactly at `address`, if any.
fn exported_name(address: *mut c_void) -> Option<&'static CStr> {
    let info = dladdr(address)?;
    if info.dli_saddr != address || info.dli_sname.is_null() {
        return None;
    }
    // SAFETY: dladdr's symbol name is a NUL-terminated string in the object's string table, which stays mapped
    // while the object is loaded (the name is only compared, right away).
    Some(unsafe { CStr::from_ptr(info.dli_sname) })
}

/// `dladdr(address)`.
pub fn dladdr(address: *const c_void) -> Option<libc::Dl_info> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: `info` is a valid, writable Dl_info; dladdr accepts any address and reports 0 if it knows none.
    (unsafe { libc::dladdr(address, &mut info) } != 0).then_some(info)
}

/// Whether `address` lies in a loaded object whose file name is `prefix` followed by `.` or `-` (as
/// `RealFn` matches libraries: `libcuda.so.1`, `libcudart.so.12`, `libcudart-<hash>.so.12`).
pub fn in_library(address: *const c_void, prefix: &str) -> bool {
    let Some(info) = dladdr(address) else { return false };
    if info.dli_fname.is_null() {
        return false;
    }
    // SAFETY: dli_fname is the NUL-terminated path of a loaded object, owned by the dynamic linker.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    let file = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    file.strip_prefix(prefix.as_bytes()).is_some_and(|rest| matches!(rest.first(), Some(b'.' | b'-')))
}

/// Whether `address` lies in this library (the shim's own lookups and wrappers are never re-wrapped).
pub fn in_this_library(address: *const c_void) -> bool {
    static BASE: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let mut base = BASE.load(Relaxed);
    if base.is_null() {
        let Some(info) = dladdr(in_this_library as *const c_void) else { return false };
        base = info.dli_fbase;
        BASE.store(base, Relaxed);
    }
    dladdr(address).is_some_and(|info| info.dli_fbase == base)
}

/// After a real `cuGetProcAddress[_v2](symbol, pfn, version, …)` returned `status`: replaces a found driver
/// function the shim intercepts with its slot wrapper.
///
/// # Safety
/// `symbol` and `pfn` are the arguments the real call just accepted (null or valid).
pub unsafe fn after_lookup(status: c_int, symbol: *const c_char, pfn: *mut *mut c_void, version: c_int) {
    if status != 0 || symbol.is_null() || pfn.is_null() {
        return;
    }
    // SAFETY: the driver accepted `pfn` as a writable `void **` and filled it in.
    let found = unsafe { *pfn };
    if found.is_null() || in_this_library(found) {
        return;
    }
    // SAFETY: `symbol` is the NUL-terminated name the driver just looked up.
    let name = unsafe { CStr::from_ptr(symbol) }.to_bytes();
    if let Some(wrapper) = hook_for_lookup(name, version, found).and_then(|hook| wrapper_for(hook as usize, found)) {
        // SAFETY: as above: `pfn` is writable.
        unsafe { *pfn = wrapper };
    }
}

/// What `dlsym(handle, symbol)` returns when the real `dlsym` found `found`: the slot wrapper if `symbol` is a
/// hook and `found` lies in the library that hook belongs to (libcudart for `cuda*`, libcuda for `cu*`).
pub fn after_dlsym(symbol: &CStr, found: *mut c_void) -> *mut c_void {
    let name = symbol.to_bytes();
    let Some(hook) = hook_named(name) else { return found };
    let library = if name.starts_with(b"cuda") { "libcudart" } else { "libcuda" };
    if !in_library(found, library) {
        return found;
    }
    wrapper_for(hook, found).unwrap_or(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_versioned_variant_is_a_hook_of_that_name() {
        for (name, variants) in VERSIONS {
            assert!(variants.windows(2).all(|w| w[0].0 < w[1].0), "{name}: oldest first");
            for (_, hook) in *variants {
                assert!(HOOKS[*hook as usize].starts_with(name), "{name}: {:?}", hook);
            }
        }
        let driver_hooks = HOOKS.iter().filter(|h| !h.starts_with("cuda")).count();
        let versioned: usize = VERSIONS.iter().map(|(_, v)| v.len()).sum();
        assert_eq!(versioned, driver_hooks, "every driver hook can be looked up");
    }

    #[test]
    fn lookups_pick_the_abi_of_the_requested_version() {
        let pick = |symbol: &str, version| hook_for_lookup(symbol.as_bytes(), version, std::ptr::null_mut());
        assert_eq!(pick("cuMemAlloc", 12000), Some(Hook::MemAllocV2));
        assert_eq!(pick("cuMemAlloc", 3020), Some(Hook::MemAllocV2));
        assert_eq!(pick("cuMemAlloc", 2000), Some(Hook::MemAlloc));
        assert_eq!(pick("cuCtxCreate", 3020), Some(Hook::CtxCreateV2));
        assert_eq!(pick("cuCtxCreate", 12000), Some(Hook::CtxCreateV3));
        assert_eq!(pick("cuCtxCreate", 12090), Some(Hook::CtxCreateV4));
        assert_eq!(pick("cuMemcpyHtoD", 7000), Some(Hook::MemcpyHtoDV2), "the _ptds variant has the v2 ABI");
        assert_eq!(pick("cuCtxPushCurrent", 2000), None, "the v1 ABI is not intercepted");
        assert_eq!(pick("cuGetProcAddress", 12000), Some(Hook::GetProcAddressV2));
        assert_eq!(pick("cuGetProcAddress", 11030), Some(Hook::GetProcAddress));
        assert_eq!(pick("cuMemAllocPitch", 12000), None);
        assert_eq!(strip_stream_suffix(b"cuLaunchKernel_ptsz"), b"cuLaunchKernel");
        assert_eq!(hook_named(b"cudaMalloc"), Some(Hook::Malloc as usize));
        assert_eq!(hook_named(b"cuMemAlloc_v2"), Some(Hook::MemAllocV2 as usize));
        assert_eq!(hook_named(b"malloc"), None);
    }

    #[test]
    fn a_real_function_keeps_its_slot_and_slots_run_out_cleanly() {
        let hook = Hook::ModuleLoadFatBinary as usize;
        let fake = |n: usize| (0x1000 + n * 16) as *mut c_void;
        let first = wrapper_for(hook, fake(0)).unwrap();
        assert_eq!(wrapper_for(hook, fake(0)), Some(first), "the same real function, the same wrapper");
        assert_eq!(slot_real(hook, 0), fake(0));
        let others: Vec<_> = (1..SLOTS).map(|n| wrapper_for(hook, fake(n)).unwrap()).collect();
        assert!(!others.contains(&first));
        assert_eq!(wrapper_for(hook, fake(SLOTS)), None, "all slots taken: handed out unwrapped");
        assert_eq!(wrapper_for(hook, fake(3)), Some(others[2]));
    }
}
