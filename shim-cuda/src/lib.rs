//! `libfaultline_cuda.so`: preloaded into a CUDA application, it intercepts CUDA runtime calls and makes them fail
//! as the process's faultline segment says (kind `cuda`, same protocol, CLI and dashboard as the UCX shim).
//!
//! This covers the runtime API hooks; the driver API, `cuGetProcAddress` and the XID presets are not here yet.
//! The real functions come from `RTLD_NEXT` or any loaded `libcudart*` (e.g. a wheel's `libcudart.so.12`).
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_void};

use shim_runtime::{hook, Runtime, ShimSpec};

/// `cudaError_t`.
pub type CudaError = c_int;
/// `cudaStream_t`, `cudaEvent_t`: opaque handles.
pub type Handle = *mut c_void;

/// `cudaErrorSymbolNotFound`: what a call returns when the real function is nowhere to be found.
pub const CUDA_ERROR_SYMBOL_NOT_FOUND: CudaError = 500;

/// `dim3`, passed by value to `cudaLaunchKernel`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Dim3 {
    /// x
    pub x: u32,
    /// y
    pub y: u32,
    /// z
    pub z: u32,
}

const LIBCUDART: &[&str] = &["libcudart"];

shim_runtime::hook_table! {
    libraries: LIBCUDART;
    GetDeviceCount => "cudaGetDeviceCount",
    SetDevice => "cudaSetDevice",
    GetDevice => "cudaGetDevice",
    GetDeviceProperties => "cudaGetDeviceProperties",
    GetDevicePropertiesV2 => "cudaGetDeviceProperties_v2",
    Malloc => "cudaMalloc",
    MallocAsync => "cudaMallocAsync",
    Free => "cudaFree",
    Memcpy => "cudaMemcpy",
    MemcpyAsync => "cudaMemcpyAsync",
    Memset => "cudaMemset",
    LaunchKernel => "cudaLaunchKernel",
    DeviceSynchronize => "cudaDeviceSynchronize",
    StreamSynchronize => "cudaStreamSynchronize",
    StreamCreate => "cudaStreamCreate",
    EventSynchronize => "cudaEventSynchronize",
}

fn default_armed(hook: usize) -> bool {
    hook < HOOKS.len()
}

static SPEC: ShimSpec = ShimSpec { kind: shim_runtime::Kind::Cuda, hooks: HOOKS, default_armed };
static RUNTIME: Runtime = Runtime::new(&SPEC);
shim_runtime::constructor!(RUNTIME);

#[inline(always)]
fn error(code: CudaError) -> CudaError {
    code
}

hook!(GetDeviceCount, fn cudaGetDeviceCount(count: *mut c_int) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(SetDevice, fn cudaSetDevice(device: c_int) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(GetDevice, fn cudaGetDevice(device: *mut c_int) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(GetDeviceProperties, fn cudaGetDeviceProperties(prop: *mut c_void, device: c_int) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(GetDevicePropertiesV2, fn cudaGetDeviceProperties_v2(prop: *mut c_void, device: c_int) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(Malloc, fn cudaMalloc(ptr: *mut *mut c_void, size: usize) -> CudaError, size = size, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(MallocAsync, fn cudaMallocAsync(ptr: *mut *mut c_void, size: usize, stream: Handle) -> CudaError, size = size, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(Free, fn cudaFree(ptr: *mut c_void) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(Memcpy, fn cudaMemcpy(dst: *mut c_void, src: *const c_void, count: usize, kind: c_int) -> CudaError, size = count, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(MemcpyAsync, fn cudaMemcpyAsync(dst: *mut c_void, src: *const c_void, count: usize, kind: c_int, stream: Handle) -> CudaError, size = count, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(Memset, fn cudaMemset(ptr: *mut c_void, value: c_int, count: usize) -> CudaError, size = count, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(LaunchKernel, fn cudaLaunchKernel(func: *const c_void, grid: Dim3, block: Dim3, args: *mut *mut c_void, shared_mem: usize, stream: Handle) -> CudaError, size = shared_mem, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(DeviceSynchronize, fn cudaDeviceSynchronize() -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(StreamSynchronize, fn cudaStreamSynchronize(stream: Handle) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(StreamCreate, fn cudaStreamCreate(stream: *mut Handle) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
hook!(EventSynchronize, fn cudaEventSynchronize(event: Handle) -> CudaError, size = 0, fail = error, missing = CUDA_ERROR_SYMBOL_NOT_FOUND);
