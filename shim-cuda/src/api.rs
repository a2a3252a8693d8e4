//! Every function the CUDA shim exports, one thin [`cuda_hook!`] each: the C signature, which API numbering
//! its codes use, the argument recorded as its size, the device it acts on, how it takes part in asynchronous
//! errors (`flow`: launches and `*Async` copies enqueue, synchronisations and blocking copies report), and any
//! special action. All logic lives in [`crate::intercept`], [`crate::asyncerr`], [`crate::xid`],
//! [`crate::device`] and [`crate::proc_address`].
#![allow(missing_docs)] // each export is documented by the macro

use std::ffi::{c_char, c_int, c_uint, c_void};

use crate::asyncerr::{Flow, Scope};
use crate::device::Device;
use crate::xid::Api;
use crate::{Hook, REAL};

/// `cudaError_t`.
pub type CudaError = c_int;
/// `CUresult`.
pub type CuResult = c_int;
/// `cudaStream_t`, `cudaEvent_t`, `CUcontext`, `CUstream`, `CUmodule`, `CUfunction`: opaque handles.
pub type Handle = *mut c_void;
/// `CUdevice`: a device ordinal.
pub type CuDevice = c_int;
/// `CUdeviceptr` (`CUdeviceptr_v2`, 64-bit).
pub type CuDevicePtr = u64;
/// `CUdeviceptr_v1`: the 32-bit device pointer of the pre-3.2 (unsuffixed) driver functions.
pub type CuDevicePtrV1 = c_uint;

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

/// A count query failed with "no device": the real library reports a count of 0 then, so the injected fault
/// does too (XID 79, or `cudaErrorNoDevice` in the pool). Other injected codes leave the output untouched.
///
/// # Safety
/// `count` is the caller's output pointer: null or writable.
#[inline]
unsafe fn no_devices(count: *mut c_int, code: c_int) {
    if code == crate::xid::NO_DEVICE && !count.is_null() {
        // SAFETY: the caller passed a writable int for the count, as the API requires.
        unsafe { *count = 0 };
    }
}

// ---- Runtime API ---------------------------------------------------------------------------------------------

cuda_hook!(GetDeviceCount, fn cudaGetDeviceCount(count: *mut c_int) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::None,
    // SAFETY: `count` is the caller's output argument.
    on_fault = |code| unsafe { no_devices(count, code) });
cuda_hook!(SetDevice, fn cudaSetDevice(device: c_int) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Arg(device),
    after = |status| crate::device::selected(status, device), needed = crate::device::tracking());
cuda_hook!(GetDevice, fn cudaGetDevice(device: *mut c_int) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current);
cuda_hook!(GetDeviceProperties, fn cudaGetDeviceProperties(prop: *mut c_void, device: c_int) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Arg(device));
cuda_hook!(GetDevicePropertiesV2, fn cudaGetDeviceProperties_v2(prop: *mut c_void, device: c_int) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Arg(device));
cuda_hook!(Malloc, fn cudaMalloc(ptr: *mut *mut c_void, size: usize) -> CudaError,
    api = Api::Runtime, size = size, device = Device::Current);
cuda_hook!(MallocAsync, fn cudaMallocAsync(ptr: *mut *mut c_void, size: usize, stream: Handle) -> CudaError,
    api = Api::Runtime, size = size, device = Device::Current);
cuda_hook!(Free, fn cudaFree(ptr: *mut c_void) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current);
cuda_hook!(Memcpy, fn cudaMemcpy(dst: *mut c_void, src: *const c_void, count: usize, kind: c_int) -> CudaError,
    api = Api::Runtime, size = count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyAsync,
    fn cudaMemcpyAsync(dst: *mut c_void, src: *const c_void, count: usize, kind: c_int, stream: Handle) -> CudaError,
    api = Api::Runtime, size = count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(Memset, fn cudaMemset(ptr: *mut c_void, value: c_int, count: usize) -> CudaError,
    api = Api::Runtime, size = count, device = Device::Current);
cuda_hook!(LaunchKernel,
    fn cudaLaunchKernel(func: *const c_void, grid: Dim3, block: Dim3, args: *mut *mut c_void, shared_mem: usize,
                        stream: Handle) -> CudaError,
    api = Api::Runtime, size = shared_mem, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(DeviceSynchronize, fn cudaDeviceSynchronize() -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(StreamSynchronize, fn cudaStreamSynchronize(stream: Handle) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Stream(stream as usize)));
cuda_hook!(StreamCreate, fn cudaStreamCreate(stream: *mut Handle) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current);
cuda_hook!(EventSynchronize, fn cudaEventSynchronize(event: Handle) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(StreamQuery, fn cudaStreamQuery(stream: Handle) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Stream(stream as usize)));
cuda_hook!(EventQuery, fn cudaEventQuery(event: Handle) -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(GetLastError, fn cudaGetLastError() -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::LastError { consume: true });
cuda_hook!(PeekAtLastError, fn cudaPeekAtLastError() -> CudaError,
    api = Api::Runtime, size = 0, device = Device::Current, flow = Flow::LastError { consume: false });

// ---- Driver API: initialisation, devices, contexts -----------------------------------------------------------

cuda_hook!(Init, fn cuInit(flags: c_uint) -> CuResult,
    api = Api::Driver, size = 0, device = Device::None);
cuda_hook!(DeviceGet, fn cuDeviceGet(device: *mut CuDevice, ordinal: c_int) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(ordinal));
cuda_hook!(DeviceGetCount, fn cuDeviceGetCount(count: *mut c_int) -> CuResult,
    api = Api::Driver, size = 0, device = Device::None,
    // SAFETY: `count` is the caller's output argument.
    on_fault = |code| unsafe { no_devices(count, code) });
cuda_hook!(DeviceGetAttribute, fn cuDeviceGetAttribute(value: *mut c_int, attribute: c_int, dev: CuDevice) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev));
cuda_hook!(DevicePrimaryCtxRetain, fn cuDevicePrimaryCtxRetain(pctx: *mut Handle, dev: CuDevice) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev));
cuda_hook!(CtxCreate, fn cuCtxCreate(pctx: *mut Handle, flags: c_uint, dev: CuDevice) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev),
    after = |status| crate::device::selected(status, dev), needed = crate::device::tracking());
cuda_hook!(CtxCreateV2, fn cuCtxCreate_v2(pctx: *mut Handle, flags: c_uint, dev: CuDevice) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev),
    after = |status| crate::device::selected(status, dev), needed = crate::device::tracking());
cuda_hook!(CtxCreateV3,
    fn cuCtxCreate_v3(pctx: *mut Handle, params: *mut c_void, num_params: c_int, flags: c_uint, dev: CuDevice)
        -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev),
    after = |status| crate::device::selected(status, dev), needed = crate::device::tracking());
cuda_hook!(CtxCreateV4,
    fn cuCtxCreate_v4(pctx: *mut Handle, params: *mut c_void, flags: c_uint, dev: CuDevice) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Arg(dev),
    after = |status| crate::device::selected(status, dev), needed = crate::device::tracking());
cuda_hook!(CtxSetCurrent, fn cuCtxSetCurrent(ctx: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current,
    after = |status| crate::device::context_changed(status), needed = crate::device::tracking());
cuda_hook!(CtxPushCurrentV2, fn cuCtxPushCurrent_v2(ctx: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current,
    after = |status| crate::device::context_changed(status), needed = crate::device::tracking());
cuda_hook!(CtxPopCurrentV2, fn cuCtxPopCurrent_v2(pctx: *mut Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current,
    after = |status| crate::device::context_changed(status), needed = crate::device::tracking());
cuda_hook!(CtxSynchronize, fn cuCtxSynchronize() -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));

// ---- Driver API: memory --------------------------------------------------------------------------------------

cuda_hook!(MemAlloc, fn cuMemAlloc(dptr: *mut CuDevicePtrV1, bytesize: c_uint) -> CuResult,
    api = Api::Driver, size = bytesize, device = Device::Current);
cuda_hook!(MemAllocV2, fn cuMemAlloc_v2(dptr: *mut CuDevicePtr, bytesize: usize) -> CuResult,
    api = Api::Driver, size = bytesize, device = Device::Current);
cuda_hook!(MemFree, fn cuMemFree(dptr: CuDevicePtrV1) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(MemFreeV2, fn cuMemFree_v2(dptr: CuDevicePtr) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(DriverMemcpy, fn cuMemcpy(dst: CuDevicePtr, src: CuDevicePtr, byte_count: usize) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(DriverMemcpyAsync,
    fn cuMemcpyAsync(dst: CuDevicePtr, src: CuDevicePtr, byte_count: usize, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyHtoD, fn cuMemcpyHtoD(dst: CuDevicePtrV1, src: *const c_void, byte_count: c_uint) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyHtoDV2, fn cuMemcpyHtoD_v2(dst: CuDevicePtr, src: *const c_void, byte_count: usize) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyDtoH, fn cuMemcpyDtoH(dst: *mut c_void, src: CuDevicePtrV1, byte_count: c_uint) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyDtoHV2, fn cuMemcpyDtoH_v2(dst: *mut c_void, src: CuDevicePtr, byte_count: usize) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyDtoD, fn cuMemcpyDtoD(dst: CuDevicePtrV1, src: CuDevicePtrV1, byte_count: c_uint) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyDtoDV2, fn cuMemcpyDtoD_v2(dst: CuDevicePtr, src: CuDevicePtr, byte_count: usize) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(MemcpyHtoDAsync,
    fn cuMemcpyHtoDAsync(dst: CuDevicePtrV1, src: *const c_void, byte_count: c_uint, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyHtoDAsyncV2,
    fn cuMemcpyHtoDAsync_v2(dst: CuDevicePtr, src: *const c_void, byte_count: usize, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyDtoHAsync,
    fn cuMemcpyDtoHAsync(dst: *mut c_void, src: CuDevicePtrV1, byte_count: c_uint, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyDtoHAsyncV2,
    fn cuMemcpyDtoHAsync_v2(dst: *mut c_void, src: CuDevicePtr, byte_count: usize, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyDtoDAsync,
    fn cuMemcpyDtoDAsync(dst: CuDevicePtrV1, src: CuDevicePtrV1, byte_count: c_uint, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(MemcpyDtoDAsyncV2,
    fn cuMemcpyDtoDAsync_v2(dst: CuDevicePtr, src: CuDevicePtr, byte_count: usize, stream: Handle) -> CuResult,
    api = Api::Driver, size = byte_count, device = Device::Current, flow = Flow::Async(stream as usize));

// ---- Driver API: launches, streams, modules ------------------------------------------------------------------

cuda_hook!(DriverLaunchKernel,
    fn cuLaunchKernel(f: Handle, grid_x: c_uint, grid_y: c_uint, grid_z: c_uint, block_x: c_uint, block_y: c_uint,
                      block_z: c_uint, shared_mem_bytes: c_uint, stream: Handle, kernel_params: *mut *mut c_void,
                      extra: *mut *mut c_void) -> CuResult,
    api = Api::Driver, size = shared_mem_bytes, device = Device::Current, flow = Flow::Async(stream as usize));
cuda_hook!(DriverStreamSynchronize, fn cuStreamSynchronize(stream: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Stream(stream as usize)));
cuda_hook!(DriverStreamQuery, fn cuStreamQuery(stream: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Stream(stream as usize)));
cuda_hook!(DriverEventSynchronize, fn cuEventSynchronize(event: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(DriverEventQuery, fn cuEventQuery(event: Handle) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current, flow = Flow::Sync(Scope::Device));
cuda_hook!(ModuleLoad, fn cuModuleLoad(module: *mut Handle, fname: *const c_char) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(ModuleLoadData, fn cuModuleLoadData(module: *mut Handle, image: *const c_void) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(ModuleLoadDataEx,
    fn cuModuleLoadDataEx(module: *mut Handle, image: *const c_void, num_options: c_uint, options: *mut c_int,
                          option_values: *mut *mut c_void) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(ModuleLoadFatBinary, fn cuModuleLoadFatBinary(module: *mut Handle, fat_cubin: *const c_void) -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);
cuda_hook!(ModuleGetFunction, fn cuModuleGetFunction(function: *mut Handle, module: Handle, name: *const c_char)
        -> CuResult,
    api = Api::Driver, size = 0, device = Device::Current);

// ---- Driver API: symbol lookup -------------------------------------------------------------------------------

cuda_hook!(GetProcAddress,
    fn cuGetProcAddress(symbol: *const c_char, pfn: *mut *mut c_void, cuda_version: c_int, flags: u64) -> CuResult,
    api = Api::Driver, size = 0, device = Device::None,
    // SAFETY: the arguments the real lookup just accepted.
    after = |status| unsafe { crate::proc_address::after_lookup(status, symbol, pfn, cuda_version) }, needed = true);
cuda_hook!(GetProcAddressV2,
    fn cuGetProcAddress_v2(symbol: *const c_char, pfn: *mut *mut c_void, cuda_version: c_int, flags: u64,
                           symbol_status: *mut c_int) -> CuResult,
    api = Api::Driver, size = 0, device = Device::None,
    // SAFETY: the arguments the real lookup just accepted.
    after = |status| unsafe { crate::proc_address::after_lookup(status, symbol, pfn, cuda_version) }, needed = true);
