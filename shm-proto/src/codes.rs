//! Status/error code tables for the injected APIs, and the parsing of user-given codes.
//!
//! This module owns the numeric ABI facts faultline relies on when it makes an intercepted call fail:
//! every `ucs_status_t` of UCX ([`UCX_STATUS`]), every `cudaError_t` of the CUDA runtime ([`CUDA_RUNTIME`])
//! and every `CUresult` of the CUDA driver API ([`CUDA_DRIVER`]), with their names and short descriptions.
//! It also owns each kind's default error pool ([`default_pool`]) and the rules for turning what a user
//! typed (a number or a name, alone or as a comma-separated list) into codes ([`parse_code`],
//! [`parse_code_list`]).
//!
//! Sources: UCX 1.13 `src/ucs/type/status.h` (values; no later code up to 1.18 could be confirmed) and
//! `src/ucs/type/status.c` (the `ucs_status_string` descriptions); CUDA 12.9 `driver_types.h`
//! (`cudaError_t`, descriptions are what `cudaGetErrorString` returns) and `cuda.h` (`CUresult`,
//! descriptions condensed from the header's documentation of each value).

use crate::layout::{Kind, POOL_CAP};

/// One named status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The numeric value, as the C API returns it.
    pub code: i32,
    /// The C enumerator name, e.g. `UCS_ERR_IO_ERROR`, `cudaErrorNoDevice`, `CUDA_ERROR_NO_DEVICE`.
    pub name: &'static str,
    /// A short human-readable description of the code.
    pub description: &'static str,
}

/// Builds a table entry; keeps the tables below one line per code.
const fn ci(code: i32, name: &'static str, description: &'static str) -> CodeInfo {
    CodeInfo { code, name, description }
}

/// Every `ucs_status_t` value of UCX (`ucs/type/status.h` of UCX 1.13), in header order: `UCS_OK`,
/// `UCS_INPROGRESS`, then the errors from -1 down to `UCS_ERR_LAST` (-100).
///
/// Descriptions are `ucs_status_string`'s; the range markers (`UCS_ERR_FIRST_*`, `UCS_ERR_LAST_*`,
/// `UCS_ERR_LAST`) have no string of their own in UCX ("Unknown error N"), so theirs are written here.
pub static UCX_STATUS: &[CodeInfo] = &[
    ci(0, "UCS_OK", "Success"),
    ci(1, "UCS_INPROGRESS", "Operation in progress"),
    ci(-1, "UCS_ERR_NO_MESSAGE", "No pending message"),
    ci(-2, "UCS_ERR_NO_RESOURCE", "No resources are available to initiate the operation"),
    ci(-3, "UCS_ERR_IO_ERROR", "Input/output error"),
    ci(-4, "UCS_ERR_NO_MEMORY", "Out of memory"),
    ci(-5, "UCS_ERR_INVALID_PARAM", "Invalid parameter"),
    ci(-6, "UCS_ERR_UNREACHABLE", "Destination is unreachable"),
    ci(-7, "UCS_ERR_INVALID_ADDR", "Address not valid"),
    ci(-8, "UCS_ERR_NOT_IMPLEMENTED", "Function not implemented"),
    ci(-9, "UCS_ERR_MESSAGE_TRUNCATED", "Message truncated"),
    ci(-10, "UCS_ERR_NO_PROGRESS", "No progress"),
    ci(-11, "UCS_ERR_BUFFER_TOO_SMALL", "Provided buffer is too small"),
    ci(-12, "UCS_ERR_NO_ELEM", "No such element"),
    ci(-13, "UCS_ERR_SOME_CONNECTS_FAILED", "Failed to connect some of the requested endpoints"),
    ci(-14, "UCS_ERR_NO_DEVICE", "No such device"),
    ci(-15, "UCS_ERR_BUSY", "Device is busy"),
    ci(-16, "UCS_ERR_CANCELED", "Request canceled"),
    ci(-17, "UCS_ERR_SHMEM_SEGMENT", "Shared memory error"),
    ci(-18, "UCS_ERR_ALREADY_EXISTS", "Element already exists"),
    ci(-19, "UCS_ERR_OUT_OF_RANGE", "Index out of range"),
    ci(-20, "UCS_ERR_TIMED_OUT", "Operation timed out"),
    ci(-21, "UCS_ERR_EXCEEDS_LIMIT", "User-defined limit was reached"),
    ci(-22, "UCS_ERR_UNSUPPORTED", "Unsupported operation"),
    ci(-23, "UCS_ERR_REJECTED", "Operation rejected by remote peer"),
    ci(-24, "UCS_ERR_NOT_CONNECTED", "Endpoint is not connected"),
    ci(-25, "UCS_ERR_CONNECTION_RESET", "Connection reset by remote peer"),
    ci(-40, "UCS_ERR_FIRST_LINK_FAILURE", "First link failure (start of the link failure range)"),
    ci(-59, "UCS_ERR_LAST_LINK_FAILURE", "Last link failure (end of the link failure range)"),
    ci(-60, "UCS_ERR_FIRST_ENDPOINT_FAILURE", "First endpoint failure (start of the endpoint failure range)"),
    ci(-80, "UCS_ERR_ENDPOINT_TIMEOUT", "Endpoint timeout"),
    ci(-89, "UCS_ERR_LAST_ENDPOINT_FAILURE", "Last endpoint failure (end of the endpoint failure range)"),
    ci(-100, "UCS_ERR_LAST", "Last error code (end of the UCX error range)"),
];

/// Every `cudaError_t` value of the CUDA 12.x runtime (`driver_types.h` of CUDA 12.9), in ascending order.
///
/// Descriptions are what `cudaGetErrorString` returns for each code.
pub static CUDA_RUNTIME: &[CodeInfo] = &[
    ci(0, "cudaSuccess", "no error"),
    ci(1, "cudaErrorInvalidValue", "invalid argument"),
    ci(2, "cudaErrorMemoryAllocation", "out of memory"),
    ci(3, "cudaErrorInitializationError", "initialization error"),
    ci(4, "cudaErrorCudartUnloading", "driver shutting down"),
    ci(5, "cudaErrorProfilerDisabled", "profiler disabled while using external profiling tool"),
    ci(6, "cudaErrorProfilerNotInitialized", "profiler not initialized: call cudaProfilerInitialize()"),
    ci(7, "cudaErrorProfilerAlreadyStarted", "profiler already started"),
    ci(8, "cudaErrorProfilerAlreadyStopped", "profiler already stopped"),
    ci(9, "cudaErrorInvalidConfiguration", "invalid configuration argument"),
    ci(12, "cudaErrorInvalidPitchValue", "invalid pitch argument"),
    ci(13, "cudaErrorInvalidSymbol", "invalid device symbol"),
    ci(16, "cudaErrorInvalidHostPointer", "invalid host pointer"),
    ci(17, "cudaErrorInvalidDevicePointer", "invalid device pointer"),
    ci(18, "cudaErrorInvalidTexture", "invalid texture reference"),
    ci(19, "cudaErrorInvalidTextureBinding", "texture is not bound to a pointer"),
    ci(20, "cudaErrorInvalidChannelDescriptor", "invalid channel descriptor"),
    ci(21, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"),
    ci(22, "cudaErrorAddressOfConstant", "invalid address of constant"),
    ci(23, "cudaErrorTextureFetchFailed", "fetch from texture failed"),
    ci(24, "cudaErrorTextureNotBound", "cannot fetch from a texture that is not bound"),
    ci(25, "cudaErrorSynchronizationError", "incorrect use of __syncthreads()"),
    ci(26, "cudaErrorInvalidFilterSetting", "linear filtering not supported for non-float type"),
    ci(27, "cudaErrorInvalidNormSetting", "read as normalized float not supported for data type"),
    ci(28, "cudaErrorMixedDeviceExecution", "device emulation mode and device execution mode cannot be mixed"),
    ci(31, "cudaErrorNotYetImplemented", "feature not yet implemented"),
    ci(32, "cudaErrorMemoryValueTooLarge", "memory size or pointer value too large to fit in 32 bit"),
    ci(34, "cudaErrorStubLibrary", "CUDA driver is a stub library"),
    ci(35, "cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version"),
    ci(36, "cudaErrorCallRequiresNewerDriver", "API call is not supported in the installed CUDA driver"),
    ci(37, "cudaErrorInvalidSurface", "invalid surface reference"),
    ci(43, "cudaErrorDuplicateVariableName", "duplicate global variable looked up by string name"),
    ci(44, "cudaErrorDuplicateTextureName", "duplicate texture looked up by string name"),
    ci(45, "cudaErrorDuplicateSurfaceName", "duplicate surface looked up by string name"),
    ci(46, "cudaErrorDevicesUnavailable", "CUDA-capable device(s) is/are busy or unavailable"),
    ci(49, "cudaErrorIncompatibleDriverContext", "incompatible driver context"),
    ci(52, "cudaErrorMissingConfiguration", "__global__ function call is not configured"),
    ci(53, "cudaErrorPriorLaunchFailure", "unspecified launch failure in prior launch"),
    ci(65, "cudaErrorLaunchMaxDepthExceeded", "launch would exceed maximum depth of nested launches"),
    ci(
        66,
        "cudaErrorLaunchFileScopedTex",
        "launch failed because kernel uses unsupported, file-scoped textures (texture objects are supported)",
    ),
    ci(
        67,
        "cudaErrorLaunchFileScopedSurf",
        "launch failed because kernel uses unsupported, file-scoped surfaces (surface objects are supported)",
    ),
    ci(
        68,
        "cudaErrorSyncDepthExceeded",
        "cudaDeviceSynchronize failed because caller's grid depth exceeds cudaLimitDevRuntimeSyncDepth",
    ),
    ci(
        69,
        "cudaErrorLaunchPendingCountExceeded",
        "launch failed because launch would exceed cudaLimitDevRuntimePendingLaunchCount",
    ),
    ci(98, "cudaErrorInvalidDeviceFunction", "invalid device function"),
    ci(100, "cudaErrorNoDevice", "no CUDA-capable device is detected"),
    ci(101, "cudaErrorInvalidDevice", "invalid device ordinal"),
    ci(102, "cudaErrorDeviceNotLicensed", "device doesn't have valid Grid license"),
    ci(103, "cudaErrorSoftwareValidityNotEstablished", "integrity checks failed"),
    ci(127, "cudaErrorStartupFailure", "startup failure in cuda runtime"),
    ci(200, "cudaErrorInvalidKernelImage", "device kernel image is invalid"),
    ci(201, "cudaErrorDeviceUninitialized", "invalid device context"),
    ci(205, "cudaErrorMapBufferObjectFailed", "mapping of buffer object failed"),
    ci(206, "cudaErrorUnmapBufferObjectFailed", "unmapping of buffer object failed"),
    ci(207, "cudaErrorArrayIsMapped", "array is mapped"),
    ci(208, "cudaErrorAlreadyMapped", "resource already mapped"),
    ci(209, "cudaErrorNoKernelImageForDevice", "no kernel image is available for execution on the device"),
    ci(210, "cudaErrorAlreadyAcquired", "resource already acquired"),
    ci(211, "cudaErrorNotMapped", "resource not mapped"),
    ci(212, "cudaErrorNotMappedAsArray", "resource not mapped as array"),
    ci(213, "cudaErrorNotMappedAsPointer", "resource not mapped as pointer"),
    ci(214, "cudaErrorECCUncorrectable", "uncorrectable ECC error encountered"),
    ci(215, "cudaErrorUnsupportedLimit", "limit is not supported on this architecture"),
    ci(216, "cudaErrorDeviceAlreadyInUse", "exclusive-thread device already in use by a different thread"),
    ci(217, "cudaErrorPeerAccessUnsupported", "peer access is not supported between these two devices"),
    ci(218, "cudaErrorInvalidPtx", "a PTX JIT compilation failed"),
    ci(219, "cudaErrorInvalidGraphicsContext", "invalid OpenGL or DirectX context"),
    ci(220, "cudaErrorNvlinkUncorrectable", "uncorrectable NVLink error detected during the execution"),
    ci(221, "cudaErrorJitCompilerNotFound", "PTX JIT compiler library not found"),
    ci(222, "cudaErrorUnsupportedPtxVersion", "the provided PTX was compiled with an unsupported toolchain."),
    ci(223, "cudaErrorJitCompilationDisabled", "PTX JIT compilation was disabled"),
    ci(224, "cudaErrorUnsupportedExecAffinity", "the provided execution affinity is not supported"),
    ci(225, "cudaErrorUnsupportedDevSideSync", "the provided PTX contains unsupported call to cudaDeviceSynchronize"),
    ci(226, "cudaErrorContained", "Invalid access of peer GPU memory over nvlink or a hardware error"),
    ci(300, "cudaErrorInvalidSource", "device kernel image is invalid"),
    ci(301, "cudaErrorFileNotFound", "file not found"),
    ci(302, "cudaErrorSharedObjectSymbolNotFound", "shared object symbol not found"),
    ci(303, "cudaErrorSharedObjectInitFailed", "shared object initialization failed"),
    ci(304, "cudaErrorOperatingSystem", "OS call failed or operation not supported on this OS"),
    ci(400, "cudaErrorInvalidResourceHandle", "invalid resource handle"),
    ci(401, "cudaErrorIllegalState", "the operation cannot be performed in the present state"),
    ci(402, "cudaErrorLossyQuery", "attempted introspection would be semantically lossy"),
    ci(500, "cudaErrorSymbolNotFound", "named symbol not found"),
    ci(600, "cudaErrorNotReady", "device not ready"),
    ci(700, "cudaErrorIllegalAddress", "an illegal memory access was encountered"),
    ci(701, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"),
    ci(702, "cudaErrorLaunchTimeout", "the launch timed out and was terminated"),
    ci(703, "cudaErrorLaunchIncompatibleTexturing", "launch uses incompatible texturing mode"),
    ci(704, "cudaErrorPeerAccessAlreadyEnabled", "peer access is already enabled"),
    ci(705, "cudaErrorPeerAccessNotEnabled", "peer access has not been enabled"),
    ci(708, "cudaErrorSetOnActiveProcess", "cannot set while device is active in this process"),
    ci(709, "cudaErrorContextIsDestroyed", "context is destroyed"),
    ci(710, "cudaErrorAssert", "device-side assert triggered"),
    ci(711, "cudaErrorTooManyPeers", "peer mapping resources exhausted"),
    ci(712, "cudaErrorHostMemoryAlreadyRegistered", "part or all of the requested memory range is already mapped"),
    ci(713, "cudaErrorHostMemoryNotRegistered", "pointer does not correspond to a registered memory region"),
    ci(714, "cudaErrorHardwareStackError", "hardware stack error"),
    ci(715, "cudaErrorIllegalInstruction", "an illegal instruction was encountered"),
    ci(716, "cudaErrorMisalignedAddress", "misaligned address"),
    ci(717, "cudaErrorInvalidAddressSpace", "operation not supported on global/shared address space"),
    ci(718, "cudaErrorInvalidPc", "invalid program counter"),
    ci(719, "cudaErrorLaunchFailure", "unspecified launch failure"),
    ci(720, "cudaErrorCooperativeLaunchTooLarge", "too many blocks in cooperative launch"),
    ci(721, "cudaErrorTensorMemoryLeak", "tensor memory not completely freed"),
    ci(800, "cudaErrorNotPermitted", "operation not permitted"),
    ci(801, "cudaErrorNotSupported", "operation not supported"),
    ci(802, "cudaErrorSystemNotReady", "system not yet initialized"),
    ci(803, "cudaErrorSystemDriverMismatch", "system has unsupported display driver / cuda driver combination"),
    ci(804, "cudaErrorCompatNotSupportedOnDevice", "forward compatibility was attempted on non supported HW"),
    ci(805, "cudaErrorMpsConnectionFailed", "MPS client failed to connect to the MPS control daemon or the MPS server"),
    ci(806, "cudaErrorMpsRpcFailure", "the remote procedural call between the MPS server and the MPS client failed"),
    ci(807, "cudaErrorMpsServerNotReady", "MPS server is not ready to accept new MPS client requests"),
    ci(
        808,
        "cudaErrorMpsMaxClientsReached",
        "the hardware resources required to create MPS client have been exhausted",
    ),
    ci(
        809,
        "cudaErrorMpsMaxConnectionsReached",
        "the hardware resources required to support device connections have been exhausted",
    ),
    ci(810, "cudaErrorMpsClientTerminated", "the MPS client has been terminated by the server"),
    ci(
        811,
        "cudaErrorCdpNotSupported",
        "is using CUDA Dynamic Parallelism, but the current configuration, like MPS, does not support it",
    ),
    ci(
        812,
        "cudaErrorCdpVersionMismatch",
        "unsupported interaction between different versions of CUDA Dynamic Parallelism",
    ),
    ci(900, "cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"),
    ci(901, "cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error during capture"),
    ci(902, "cudaErrorStreamCaptureMerge", "operation would result in a merge of separate capture sequences"),
    ci(903, "cudaErrorStreamCaptureUnmatched", "capture was not ended in the same stream as it began"),
    ci(904, "cudaErrorStreamCaptureUnjoined", "capturing stream has unjoined work"),
    ci(905, "cudaErrorStreamCaptureIsolation", "dependency created on uncaptured work in another stream"),
    ci(
        906,
        "cudaErrorStreamCaptureImplicit",
        "operation would make the legacy stream depend on a capturing blocking stream",
    ),
    ci(907, "cudaErrorCapturedEvent", "operation not permitted on an event last recorded in a capturing stream"),
    ci(
        908,
        "cudaErrorStreamCaptureWrongThread",
        "attempt to terminate a thread-local capture sequence from another thread",
    ),
    ci(909, "cudaErrorTimeout", "wait operation timed out"),
    ci(
        910,
        "cudaErrorGraphExecUpdateFailure",
        "the graph update was not performed because it included changes which violated constraints \
         specific to instantiated graph update",
    ),
    ci(911, "cudaErrorExternalDevice", "an async error has occured in external entity outside of CUDA"),
    ci(912, "cudaErrorInvalidClusterSize", "a kernel launch error has occurred due to cluster misconfiguration"),
    ci(
        913,
        "cudaErrorFunctionNotLoaded",
        "the function handle is not loaded when calling an API that requires a loaded function",
    ),
    ci(
        914,
        "cudaErrorInvalidResourceType",
        "one or more resources passed in are not valid resource types for the operation",
    ),
    ci(
        915,
        "cudaErrorInvalidResourceConfiguration",
        "one or more resources are insufficient or non-applicable for the operation",
    ),
    ci(999, "cudaErrorUnknown", "unknown error"),
    ci(10000, "cudaErrorApiFailureBase", "api failure base"),
];

/// Every `CUresult` value of the CUDA 12.x driver API (`cuda.h` of CUDA 12.9), in ascending order.
///
/// Descriptions are condensed from `cuda.h`'s documentation of each value.
pub static CUDA_DRIVER: &[CodeInfo] = &[
    ci(0, "CUDA_SUCCESS", "no errors"),
    ci(
        1,
        "CUDA_ERROR_INVALID_VALUE",
        "one or more of the parameters passed to the API call is not within an acceptable range of values",
    ),
    ci(
        2,
        "CUDA_ERROR_OUT_OF_MEMORY",
        "unable to allocate enough memory or other resources to perform the requested operation",
    ),
    ci(
        3,
        "CUDA_ERROR_NOT_INITIALIZED",
        "the CUDA driver has not been initialized with cuInit() or that initialization has failed",
    ),
    ci(4, "CUDA_ERROR_DEINITIALIZED", "the CUDA driver is in the process of shutting down"),
    ci(5, "CUDA_ERROR_PROFILER_DISABLED", "profiler is not initialized for this run"),
    ci(6, "CUDA_ERROR_PROFILER_NOT_INITIALIZED", "profiler not initialized (deprecated since CUDA 5.0)"),
    ci(7, "CUDA_ERROR_PROFILER_ALREADY_STARTED", "profiler already started (deprecated since CUDA 5.0)"),
    ci(8, "CUDA_ERROR_PROFILER_ALREADY_STOPPED", "profiler already stopped (deprecated since CUDA 5.0)"),
    ci(34, "CUDA_ERROR_STUB_LIBRARY", "the CUDA driver that the application has loaded is a stub library"),
    ci(46, "CUDA_ERROR_DEVICE_UNAVAILABLE", "requested CUDA device is unavailable at the current time"),
    ci(100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable devices were detected by the installed CUDA driver"),
    ci(
        101,
        "CUDA_ERROR_INVALID_DEVICE",
        "the device ordinal does not correspond to a valid CUDA device, or the action is invalid for that device",
    ),
    ci(102, "CUDA_ERROR_DEVICE_NOT_LICENSED", "the Grid license is not applied"),
    ci(200, "CUDA_ERROR_INVALID_IMAGE", "the device kernel image is invalid"),
    ci(201, "CUDA_ERROR_INVALID_CONTEXT", "no context is bound to the current thread, or the context is invalid"),
    ci(
        202,
        "CUDA_ERROR_CONTEXT_ALREADY_CURRENT",
        "the context was already the active context (deprecated since CUDA 3.2)",
    ),
    ci(205, "CUDA_ERROR_MAP_FAILED", "a map or register operation has failed"),
    ci(206, "CUDA_ERROR_UNMAP_FAILED", "an unmap or unregister operation has failed"),
    ci(207, "CUDA_ERROR_ARRAY_IS_MAPPED", "the specified array is currently mapped and thus cannot be destroyed"),
    ci(208, "CUDA_ERROR_ALREADY_MAPPED", "the resource is already mapped"),
    ci(209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "there is no kernel image available that is suitable for the device"),
    ci(210, "CUDA_ERROR_ALREADY_ACQUIRED", "a resource has already been acquired"),
    ci(211, "CUDA_ERROR_NOT_MAPPED", "a resource is not mapped"),
    ci(212, "CUDA_ERROR_NOT_MAPPED_AS_ARRAY", "a mapped resource is not available for access as an array"),
    ci(213, "CUDA_ERROR_NOT_MAPPED_AS_POINTER", "a mapped resource is not available for access as a pointer"),
    ci(214, "CUDA_ERROR_ECC_UNCORRECTABLE", "an uncorrectable ECC error was detected during execution"),
    ci(215, "CUDA_ERROR_UNSUPPORTED_LIMIT", "the CUlimit passed to the API call is not supported by the active device"),
    ci(
        216,
        "CUDA_ERROR_CONTEXT_ALREADY_IN_USE",
        "the CUcontext can only be bound to one CPU thread at a time and is already bound to another",
    ),
    ci(217, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", "peer access is not supported across the given devices"),
    ci(218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
    ci(219, "CUDA_ERROR_INVALID_GRAPHICS_CONTEXT", "an error with OpenGL or DirectX context"),
    ci(220, "CUDA_ERROR_NVLINK_UNCORRECTABLE", "an uncorrectable NVLink error was detected during the execution"),
    ci(221, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", "the PTX JIT compiler library was not found"),
    ci(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"),
    ci(223, "CUDA_ERROR_JIT_COMPILATION_DISABLED", "the PTX JIT compilation was disabled"),
    ci(
        224,
        "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY",
        "the CUexecAffinityType passed to the API call is not supported by the active device",
    ),
    ci(
        225,
        "CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC",
        "the code to be compiled by the PTX JIT contains unsupported call to cudaDeviceSynchronize",
    ),
    ci(
        226,
        "CUDA_ERROR_CONTAINED",
        "an exception occurred on the device that is now contained by the GPU's error containment capability",
    ),
    ci(300, "CUDA_ERROR_INVALID_SOURCE", "the device kernel source is invalid"),
    ci(301, "CUDA_ERROR_FILE_NOT_FOUND", "the file specified was not found"),
    ci(302, "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND", "a link to a shared object failed to resolve"),
    ci(303, "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", "initialization of a shared object failed"),
    ci(304, "CUDA_ERROR_OPERATING_SYSTEM", "an OS call failed"),
    ci(400, "CUDA_ERROR_INVALID_HANDLE", "a resource handle passed to the API call was not valid"),
    ci(
        401,
        "CUDA_ERROR_ILLEGAL_STATE",
        "a resource required by the API call is not in a valid state to perform the requested operation",
    ),
    ci(
        402,
        "CUDA_ERROR_LOSSY_QUERY",
        "an attempt was made to introspect an object in a way that would discard semantically important information",
    ),
    ci(500, "CUDA_ERROR_NOT_FOUND", "a named symbol was not found"),
    ci(600, "CUDA_ERROR_NOT_READY", "asynchronous operations issued previously have not completed yet"),
    ci(
        700,
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "while executing a kernel, the device encountered a load or store instruction on an invalid memory address",
    ),
    ci(
        701,
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        "a launch did not occur because it did not have appropriate resources",
    ),
    ci(702, "CUDA_ERROR_LAUNCH_TIMEOUT", "the device kernel took too long to execute"),
    ci(703, "CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING", "a kernel launch that uses an incompatible texturing mode"),
    ci(704, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED", "peer access to the context is already enabled"),
    ci(705, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", "peer access has not been enabled"),
    ci(
        708,
        "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
        "the primary context for the specified device has already been initialized",
    ),
    ci(
        709,
        "CUDA_ERROR_CONTEXT_IS_DESTROYED",
        "the current context has been destroyed, or is a primary context not yet initialized",
    ),
    ci(710, "CUDA_ERROR_ASSERT", "A device-side assert triggered during kernel execution"),
    ci(711, "CUDA_ERROR_TOO_MANY_PEERS", "the hardware resources required to enable peer access have been exhausted"),
    ci(
        712,
        "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
        "the memory range passed to cuMemHostRegister() has already been registered",
    ),
    ci(
        713,
        "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
        "the pointer passed to cuMemHostUnregister() does not correspond to any currently registered memory region",
    ),
    ci(714, "CUDA_ERROR_HARDWARE_STACK_ERROR", "while executing a kernel, the device encountered a stack error"),
    ci(
        715,
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        "while executing a kernel, the device encountered an illegal instruction",
    ),
    ci(
        716,
        "CUDA_ERROR_MISALIGNED_ADDRESS",
        "while executing a kernel, the device encountered a load or store on a misaligned memory address",
    ),
    ci(
        717,
        "CUDA_ERROR_INVALID_ADDRESS_SPACE",
        "while executing a kernel, the device used a memory address outside the allowed address spaces",
    ),
    ci(718, "CUDA_ERROR_INVALID_PC", "while executing a kernel, the device program counter wrapped its address space"),
    ci(719, "CUDA_ERROR_LAUNCH_FAILED", "an exception occurred on the device while executing a kernel"),
    ci(720, "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", "too many blocks per grid for a cooperative kernel launch"),
    ci(721, "CUDA_ERROR_TENSOR_MEMORY_LEAK", "a kernel using tensor memory exited without completely deallocating it"),
    ci(800, "CUDA_ERROR_NOT_PERMITTED", "the attempted operation is not permitted"),
    ci(801, "CUDA_ERROR_NOT_SUPPORTED", "the attempted operation is not supported on the current system or device"),
    ci(802, "CUDA_ERROR_SYSTEM_NOT_READY", "the system is not yet ready to start any CUDA work"),
    ci(
        803,
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        "there is a mismatch between the versions of the display driver and the CUDA driver",
    ),
    ci(
        804,
        "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        "forward compatibility is in use but the visible hardware does not support it",
    ),
    ci(
        805,
        "CUDA_ERROR_MPS_CONNECTION_FAILED",
        "the MPS client failed to connect to the MPS control daemon or the MPS server",
    ),
    ci(
        806,
        "CUDA_ERROR_MPS_RPC_FAILURE",
        "the remote procedural call between the MPS server and the MPS client failed",
    ),
    ci(807, "CUDA_ERROR_MPS_SERVER_NOT_READY", "the MPS server is not ready to accept new MPS client requests"),
    ci(
        808,
        "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED",
        "the hardware resources required to create MPS client have been exhausted",
    ),
    ci(
        809,
        "CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED",
        "the hardware resources required to support device connections have been exhausted",
    ),
    ci(810, "CUDA_ERROR_MPS_CLIENT_TERMINATED", "the MPS client has been terminated by the server"),
    ci(
        811,
        "CUDA_ERROR_CDP_NOT_SUPPORTED",
        "the module is using CUDA Dynamic Parallelism, but the current configuration, like MPS, does not support it",
    ),
    ci(
        812,
        "CUDA_ERROR_CDP_VERSION_MISMATCH",
        "a module contains an unsupported interaction between different versions of CUDA Dynamic Parallelism",
    ),
    ci(900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "the operation is not permitted when the stream is capturing"),
    ci(
        901,
        "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
        "the current capture sequence on the stream has been invalidated due to a previous error",
    ),
    ci(
        902,
        "CUDA_ERROR_STREAM_CAPTURE_MERGE",
        "the operation would have resulted in a merge of two independent capture sequences",
    ),
    ci(903, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED", "the capture was not initiated in this stream"),
    ci(
        904,
        "CUDA_ERROR_STREAM_CAPTURE_UNJOINED",
        "the capture sequence contains a fork that was not joined to the primary stream",
    ),
    ci(
        905,
        "CUDA_ERROR_STREAM_CAPTURE_ISOLATION",
        "a dependency would have been created which crosses the capture sequence boundary",
    ),
    ci(
        906,
        "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT",
        "a disallowed implicit dependency on a current capture sequence from cudaStreamLegacy",
    ),
    ci(
        907,
        "CUDA_ERROR_CAPTURED_EVENT",
        "the operation is not permitted on an event which was last recorded in a capturing stream",
    ),
    ci(
        908,
        "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD",
        "a non-relaxed stream capture sequence was ended in a different thread",
    ),
    ci(909, "CUDA_ERROR_TIMEOUT", "the timeout specified for the wait operation has lapsed"),
    ci(
        910,
        "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE",
        "the graph update was not performed because it violated constraints specific to instantiated graph update",
    ),
    ci(911, "CUDA_ERROR_EXTERNAL_DEVICE", "an async error has occurred in a device outside of CUDA"),
    ci(912, "CUDA_ERROR_INVALID_CLUSTER_SIZE", "a kernel launch error due to cluster misconfiguration"),
    ci(
        913,
        "CUDA_ERROR_FUNCTION_NOT_LOADED",
        "a function handle is not loaded when calling an API that requires a loaded function",
    ),
    ci(
        914,
        "CUDA_ERROR_INVALID_RESOURCE_TYPE",
        "one or more resources passed in are not valid resource types for the operation",
    ),
    ci(
        915,
        "CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION",
        "one or more resources are insufficient or non-applicable for the operation",
    ),
    ci(916, "CUDA_ERROR_KEY_ROTATION", "an error happened during the key rotation sequence"),
    ci(999, "CUDA_ERROR_UNKNOWN", "an unknown internal error has occurred"),
];

/// The lowest value of UCX's reserved error range (`UCS_ERR_LAST`); errors run from -1 down to it.
const UCX_ERR_LAST: i32 = -100;

/// Name prefixes a user may leave out, per table (tried after the full name).
const UCX_PREFIXES: &[&str] = &["UCS_ERR_", "UCS_"];
/// Prefixes of runtime names (`cudaErrorNoDevice` → `NoDevice`, `cudaSuccess` → `Success`).
const RUNTIME_PREFIXES: &[&str] = &["cudaError", "cuda"];
/// Prefixes of driver names (`CUDA_ERROR_NO_DEVICE` → `NO_DEVICE`, `CUDA_SUCCESS` → `SUCCESS`).
const DRIVER_PREFIXES: &[&str] = &["CUDA_ERROR_", "CUDA_"];

/// The kind as users and messages spell it.
fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Ucx => "ucx",
        Kind::Cuda => "cuda",
    }
}

/// The tables of a kind, in lookup order, each with the prefixes its names may be given without.
fn tables(kind: Kind) -> [(&'static [CodeInfo], &'static [&'static str]); 2] {
    match kind {
        Kind::Ucx => [(UCX_STATUS, UCX_PREFIXES), (&[], &[])],
        Kind::Cuda => [(CUDA_RUNTIME, RUNTIME_PREFIXES), (CUDA_DRIVER, DRIVER_PREFIXES)],
    }
}

/// The entry of `table` with this code.
fn find_code(table: &'static [CodeInfo], code: i32) -> Option<&'static CodeInfo> {
    table.iter().find(|info| info.code == code)
}

/// The spellings a name may be given in: the full name, then the name without each prefix it has.
fn name_forms<'a>(name: &'a str, prefixes: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
    std::iter::once(name).chain(prefixes.iter().filter_map(move |p| name.strip_prefix(p)).filter(|s| !s.is_empty()))
}

/// The entry named `text` (full or short form): an exact match anywhere wins over a case-insensitive one.
fn find_name(kind: Kind, text: &str) -> Option<&'static CodeInfo> {
    let tabs = tables(kind);
    for exact in [true, false] {
        for (table, prefixes) in tabs {
            let hit = table.iter().find(|info| {
                name_forms(info.name, prefixes).any(|f| if exact { f == text } else { f.eq_ignore_ascii_case(text) })
            });
            if hit.is_some() {
                return hit;
            }
        }
    }
    None
}

/// The kind's default error pool: UCX `[-3, -6, -20]` (`UCS_ERR_IO_ERROR`, `UCS_ERR_UNREACHABLE`,
/// `UCS_ERR_TIMED_OUT`); CUDA `[100]` (`cudaErrorNoDevice` / `CUDA_ERROR_NO_DEVICE`).
pub fn default_pool(kind: Kind) -> &'static [i32] {
    match kind {
        Kind::Ucx => &[-3, -6, -20],
        Kind::Cuda => &[100],
    }
}

/// Whether `code` is an error for that kind.
///
/// UCX: any value in UCX's reserved error range -100..=-1 (which holds every negative [`UCX_STATUS`] entry,
/// and also the unnamed codes of the link and endpoint failure ranges). CUDA: nonzero and listed in
/// [`CUDA_RUNTIME`] or [`CUDA_DRIVER`]. `UCS_OK`, `UCS_INPROGRESS`, `cudaSuccess` and `CUDA_SUCCESS` are not errors.
pub fn is_error(kind: Kind, code: i32) -> bool {
    match kind {
        Kind::Ucx => (UCX_ERR_LAST..=-1).contains(&code),
        Kind::Cuda => code != 0 && (find_code(CUDA_RUNTIME, code).is_some() || find_code(CUDA_DRIVER, code).is_some()),
    }
}

/// The best name for a code: UCX from [`UCX_STATUS`]; CUDA: the runtime name if [`CUDA_RUNTIME`] has the code,
/// else the driver name. `None` if the code is not in the kind's tables.
pub fn name_of(kind: Kind, code: i32) -> Option<&'static str> {
    tables(kind).into_iter().find_map(|(table, _)| find_code(table, code)).map(|info| info.name)
}

/// Every code that may be given for this kind, for pickers in a UI: UCX: the errors of [`UCX_STATUS`];
/// CUDA: the errors of [`CUDA_RUNTIME`], then those of [`CUDA_DRIVER`]. Success codes are left out.
pub fn error_codes(kind: Kind) -> impl Iterator<Item = &'static CodeInfo> {
    let [(first, _), (second, _)] = tables(kind);
    first.iter().chain(second).filter(move |info| is_error(kind, info.code))
}

/// Parses one code: a decimal integer (optionally negative; surrounding whitespace is ignored) or a name.
///
/// Names match exactly or case-insensitively, in full or without their prefix: for UCX `UCS_ERR_IO_ERROR`,
/// `io_error` or `IO_ERROR`; for CUDA `cudaErrorNoDevice` or `NoDevice` (runtime) and `CUDA_ERROR_NO_DEVICE` or
/// `NO_DEVICE` (driver). UCX accepts any number in its reserved error range -100..=-1, named or not; CUDA accepts
/// only numbers one of its tables lists. Non-errors give [`CodeError::NotAnError`], anything else that does not
/// match gives [`CodeError::Unknown`].
pub fn parse_code(kind: Kind, text: &str) -> Result<i32, CodeError> {
    let text = text.trim();
    let unknown = || CodeError::Unknown { kind: kind_str(kind), text: text.to_string() };
    let (code, name) = if let Ok(code) = text.parse::<i32>() {
        (code, name_of(kind, code))
    } else {
        let info = find_name(kind, text).ok_or_else(unknown)?;
        (info.code, Some(info.name))
    };
    if is_error(kind, code) {
        return Ok(code);
    }
    let not_error = match kind {
        // UCX: 0, UCS_INPROGRESS and any other non-negative value; below -100 is not a UCX status at all.
        Kind::Ucx => code >= 0,
        // CUDA: only the success code; unlisted numbers are unknown to the application.
        Kind::Cuda => code == 0,
    };
    if not_error {
        Err(CodeError::NotAnError { kind: kind_str(kind), code, name })
    } else {
        Err(unknown())
    }
}

/// Parses a comma-separated list of codes (`-3,-6,-20` or `UCS_ERR_IO_ERROR, UCS_ERR_TIMED_OUT`), each as
/// [`parse_code`] does. Blank items are skipped; 1..=[`POOL_CAP`] codes must remain. Duplicates are kept: they
/// weight the pool.
pub fn parse_code_list(kind: Kind, text: &str) -> Result<Vec<i32>, CodeError> {
    let items: Vec<&str> = text.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
    if items.is_empty() {
        return Err(CodeError::Empty);
    }
    if items.len() > POOL_CAP {
        return Err(CodeError::TooMany { given: items.len(), max: POOL_CAP });
    }
    items.into_iter().map(|item| parse_code(kind, item)).collect()
}

/// A code a user gave that cannot go into an error pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// A valid status of the kind that is not a failure, e.g. `UCS_OK`, `UCS_INPROGRESS`, `cudaSuccess`.
    #[error("{code} is not an error for {kind}{}", it_is(.name))]
    NotAnError {
        /// `ucx` or `cuda`.
        kind: &'static str,
        /// The code given (or that the name given stands for).
        code: i32,
        /// Its name, when it has one.
        name: Option<&'static str>,
    },
    /// Neither a known name nor a number the kind accepts.
    #[error("unknown {kind} status code '{text}' (give {})", example(kind))]
    Unknown {
        /// `ucx` or `cuda`.
        kind: &'static str,
        /// What was given (trimmed).
        text: String,
    },
    /// No codes at all.
    #[error("the error-code list is empty")]
    Empty,
    /// More codes than a pool holds.
    #[error("too many error codes: {given} given, at most {max}")]
    TooMany {
        /// How many were given.
        given: usize,
        /// [`POOL_CAP`].
        max: usize,
    },
}

/// The ` (it is NAME)` part of [`CodeError::NotAnError`]'s message.
fn it_is(name: &Option<&'static str>) -> String {
    name.map(|n| format!(" (it is {n})")).unwrap_or_default()
}

/// What to give instead, in [`CodeError::Unknown`]'s message.
fn example(kind: &str) -> &'static str {
    if kind == "ucx" {
        "a number like -3 or a name like UCS_ERR_IO_ERROR"
    } else {
        "a number like 100 or a name like cudaErrorNoDevice or CUDA_ERROR_NO_DEVICE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_tables() -> [(&'static str, &'static [CodeInfo]); 3] {
        [("UCX_STATUS", UCX_STATUS), ("CUDA_RUNTIME", CUDA_RUNTIME), ("CUDA_DRIVER", CUDA_DRIVER)]
    }

    fn code_named(table: &[CodeInfo], name: &str) -> Option<i32> {
        table.iter().find(|i| i.name == name).map(|i| i.code)
    }

    #[test]
    fn no_duplicate_codes_or_names_and_no_blank_fields() {
        for (label, table) in all_tables() {
            let codes: HashSet<i32> = table.iter().map(|i| i.code).collect();
            let names: HashSet<&str> = table.iter().map(|i| i.name).collect();
            assert_eq!(codes.len(), table.len(), "duplicate code in {label}");
            assert_eq!(names.len(), table.len(), "duplicate name in {label}");
            for info in table {
                assert!(!info.description.trim().is_empty(), "{label}: {} has no description", info.name);
                assert_eq!(info.name.trim(), info.name);
            }
        }
    }

    #[test]
    fn tables_are_sorted() {
        assert!(CUDA_RUNTIME.windows(2).all(|w| w[0].code < w[1].code), "CUDA_RUNTIME not ascending");
        assert!(CUDA_DRIVER.windows(2).all(|w| w[0].code < w[1].code), "CUDA_DRIVER not ascending");
        // UCX in header order: UCS_OK, UCS_INPROGRESS, then the errors descending.
        assert_eq!(UCX_STATUS[0].code, 0);
        assert_eq!(UCX_STATUS[1].code, 1);
        assert!(UCX_STATUS[2..].windows(2).all(|w| w[0].code > w[1].code), "UCX errors not descending");
    }

    #[test]
    fn table_sizes() {
        assert_eq!(UCX_STATUS.len(), 33);
        assert_eq!(CUDA_RUNTIME.len(), 134);
        assert_eq!(CUDA_DRIVER.len(), 100);
    }

    #[test]
    fn ucx_anchor_values() {
        let expect = [
            ("UCS_OK", 0),
            ("UCS_INPROGRESS", 1),
            ("UCS_ERR_NO_MESSAGE", -1),
            ("UCS_ERR_IO_ERROR", -3),
            ("UCS_ERR_UNREACHABLE", -6),
            ("UCS_ERR_TIMED_OUT", -20),
            ("UCS_ERR_NOT_CONNECTED", -24),
            ("UCS_ERR_CONNECTION_RESET", -25),
            ("UCS_ERR_FIRST_LINK_FAILURE", -40),
            ("UCS_ERR_LAST_LINK_FAILURE", -59),
            ("UCS_ERR_FIRST_ENDPOINT_FAILURE", -60),
            ("UCS_ERR_ENDPOINT_TIMEOUT", -80),
            ("UCS_ERR_LAST_ENDPOINT_FAILURE", -89),
            ("UCS_ERR_LAST", -100),
        ];
        for (name, code) in expect {
            assert_eq!(code_named(UCX_STATUS, name), Some(code), "{name}");
        }
        // -1..=-25 are all named.
        for code in -25..=-1 {
            assert!(find_code(UCX_STATUS, code).is_some(), "{code} missing");
        }
        assert_eq!(find_code(UCX_STATUS, -3).map(|i| i.description), Some("Input/output error"));
        assert_eq!(find_code(UCX_STATUS, -6).map(|i| i.description), Some("Destination is unreachable"));
        // Every negative entry lies in the reserved range, so is_error agrees with the table.
        for info in UCX_STATUS {
            assert_eq!(is_error(Kind::Ucx, info.code), info.code < 0, "{}", info.name);
        }
    }

    #[test]
    fn cuda_anchor_values() {
        let runtime = [
            ("cudaSuccess", 0),
            ("cudaErrorInvalidValue", 1),
            ("cudaErrorMemoryAllocation", 2),
            ("cudaErrorInitializationError", 3),
            ("cudaErrorInsufficientDriver", 35),
            ("cudaErrorNoDevice", 100),
            ("cudaErrorInvalidDevice", 101),
            ("cudaErrorECCUncorrectable", 214),
            ("cudaErrorNvlinkUncorrectable", 220),
            ("cudaErrorIllegalAddress", 700),
            ("cudaErrorLaunchTimeout", 702),
            ("cudaErrorLaunchFailure", 719),
            ("cudaErrorUnknown", 999),
            ("cudaErrorApiFailureBase", 10000),
        ];
        for (name, code) in runtime {
            assert_eq!(code_named(CUDA_RUNTIME, name), Some(code), "{name}");
        }
        let driver = [
            ("CUDA_SUCCESS", 0),
            ("CUDA_ERROR_INVALID_VALUE", 1),
            ("CUDA_ERROR_OUT_OF_MEMORY", 2),
            ("CUDA_ERROR_NOT_INITIALIZED", 3),
            ("CUDA_ERROR_NO_DEVICE", 100),
            ("CUDA_ERROR_ECC_UNCORRECTABLE", 214),
            ("CUDA_ERROR_NVLINK_UNCORRECTABLE", 220),
            ("CUDA_ERROR_ILLEGAL_ADDRESS", 700),
            ("CUDA_ERROR_LAUNCH_TIMEOUT", 702),
            ("CUDA_ERROR_LAUNCH_FAILED", 719),
            ("CUDA_ERROR_UNKNOWN", 999),
        ];
        for (name, code) in driver {
            assert_eq!(code_named(CUDA_DRIVER, name), Some(code), "{name}");
        }
        // Descriptions are cudaGetErrorString's.
        assert_eq!(find_code(CUDA_RUNTIME, 100).map(|i| i.description), Some("no CUDA-capable device is detected"));
        assert_eq!(
            find_code(CUDA_RUNTIME, 910).map(|i| i.description),
            Some(
                "the graph update was not performed because it included changes which violated constraints specific \
                 to instantiated graph update"
            )
        );
        // The pre-10.1 value of cudaErrorLaunchTimeout is gone: 6 is cudaErrorProfilerNotInitialized.
        assert_eq!(name_of(Kind::Cuda, 6), Some("cudaErrorProfilerNotInitialized"));
    }

    #[test]
    fn default_pools_are_errors() {
        assert_eq!(default_pool(Kind::Ucx), &[-3, -6, -20]);
        assert_eq!(default_pool(Kind::Cuda), &[100]);
        for kind in [Kind::Ucx, Kind::Cuda] {
            assert!(!default_pool(kind).is_empty() && default_pool(kind).len() <= POOL_CAP);
            assert!(default_pool(kind).iter().all(|&c| is_error(kind, c)));
        }
    }

    #[test]
    fn is_error_rules() {
        assert!(!is_error(Kind::Ucx, 0));
        assert!(!is_error(Kind::Ucx, 1));
        assert!(is_error(Kind::Ucx, -3));
        assert!(is_error(Kind::Ucx, -41), "unnamed link failure codes are errors");
        assert!(is_error(Kind::Ucx, -100));
        assert!(!is_error(Kind::Ucx, -101));
        assert!(!is_error(Kind::Cuda, 0));
        assert!(is_error(Kind::Cuda, 100));
        assert!(is_error(Kind::Cuda, 916), "driver-only code");
        assert!(is_error(Kind::Cuda, 10000), "runtime-only code");
        assert!(!is_error(Kind::Cuda, 10));
        assert!(!is_error(Kind::Cuda, -1));
    }

    #[test]
    fn name_of_values() {
        assert_eq!(name_of(Kind::Ucx, -3), Some("UCS_ERR_IO_ERROR"));
        assert_eq!(name_of(Kind::Ucx, 1), Some("UCS_INPROGRESS"));
        assert_eq!(name_of(Kind::Ucx, -41), None);
        assert_eq!(name_of(Kind::Cuda, 0), Some("cudaSuccess"));
        assert_eq!(name_of(Kind::Cuda, 100), Some("cudaErrorNoDevice"));
        assert_eq!(name_of(Kind::Cuda, 202), Some("CUDA_ERROR_CONTEXT_ALREADY_CURRENT"));
        assert_eq!(name_of(Kind::Cuda, 916), Some("CUDA_ERROR_KEY_ROTATION"));
        assert_eq!(name_of(Kind::Cuda, 12345), None);
    }

    #[test]
    fn error_codes_lists_errors_only() {
        let ucx: Vec<_> = error_codes(Kind::Ucx).collect();
        assert_eq!(ucx.len(), UCX_STATUS.len() - 2);
        assert!(ucx.iter().all(|i| i.code < 0));
        let cuda: Vec<_> = error_codes(Kind::Cuda).collect();
        assert_eq!(cuda.len(), CUDA_RUNTIME.len() + CUDA_DRIVER.len() - 2);
        assert!(cuda.iter().all(|i| i.code != 0));
        assert_eq!(cuda.first().map(|i| i.name), Some("cudaErrorInvalidValue"));
        assert_eq!(cuda.last().map(|i| i.name), Some("CUDA_ERROR_UNKNOWN"));
        // Every listed name parses back to its own code.
        for kind in [Kind::Ucx, Kind::Cuda] {
            for info in error_codes(kind) {
                assert_eq!(parse_code(kind, info.name), Ok(info.code), "{}", info.name);
            }
        }
    }

    #[test]
    fn parse_by_number() {
        assert_eq!(parse_code(Kind::Ucx, "-3"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "  -20\t"), Ok(-20));
        assert_eq!(parse_code(Kind::Ucx, "-41"), Ok(-41));
        assert_eq!(parse_code(Kind::Ucx, "-100"), Ok(-100));
        assert_eq!(parse_code(Kind::Cuda, "100"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, " 702 "), Ok(702));
        assert_eq!(parse_code(Kind::Cuda, "916"), Ok(916));
    }

    #[test]
    fn parse_by_name() {
        assert_eq!(parse_code(Kind::Ucx, "UCS_ERR_IO_ERROR"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "ucs_err_timed_out"), Ok(-20));
        assert_eq!(parse_code(Kind::Ucx, "IO_ERROR"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, "io_error"), Ok(-3));
        assert_eq!(parse_code(Kind::Ucx, " Unreachable "), Ok(-6));
        assert_eq!(parse_code(Kind::Ucx, "endpoint_timeout"), Ok(-80));
        assert_eq!(parse_code(Kind::Cuda, "cudaErrorNoDevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "NoDevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "nodevice"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "CUDAERRORLAUNCHTIMEOUT"), Ok(702));
        assert_eq!(parse_code(Kind::Cuda, "CUDA_ERROR_NO_DEVICE"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "NO_DEVICE"), Ok(100));
        assert_eq!(parse_code(Kind::Cuda, "nvlink_uncorrectable"), Ok(220));
        assert_eq!(parse_code(Kind::Cuda, "EccUncorrectable"), Ok(214));
        assert_eq!(parse_code(Kind::Cuda, "KEY_ROTATION"), Ok(916));
    }

    #[test]
    fn short_names_never_clash() {
        // A spelling that several entries of one kind answer to must mean the same code in all of them.
        for kind in [Kind::Ucx, Kind::Cuda] {
            let mut seen: Vec<(String, i32)> = Vec::new();
            for (table, prefixes) in tables(kind) {
                for info in table {
                    for form in name_forms(info.name, prefixes) {
                        let key = form.to_ascii_lowercase();
                        if let Some((_, code)) = seen.iter().find(|(k, _)| *k == key) {
                            assert_eq!(*code, info.code, "{form} is ambiguous");
                        }
                        seen.push((key, info.code));
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_non_errors() {
        let ucx_ok = CodeError::NotAnError { kind: "ucx", code: 0, name: Some("UCS_OK") };
        assert_eq!(parse_code(Kind::Ucx, "0"), Err(ucx_ok.clone()));
        assert_eq!(parse_code(Kind::Ucx, "UCS_OK"), Err(ucx_ok.clone()));
        assert_eq!(parse_code(Kind::Ucx, "ok"), Err(ucx_ok));
        let inprogress = CodeError::NotAnError { kind: "ucx", code: 1, name: Some("UCS_INPROGRESS") };
        assert_eq!(parse_code(Kind::Ucx, "1"), Err(inprogress.clone()));
        assert_eq!(parse_code(Kind::Ucx, "inprogress"), Err(inprogress));
        assert_eq!(parse_code(Kind::Ucx, "7"), Err(CodeError::NotAnError { kind: "ucx", code: 7, name: None }));
        let success = CodeError::NotAnError { kind: "cuda", code: 0, name: Some("cudaSuccess") };
        assert_eq!(parse_code(Kind::Cuda, "0"), Err(success.clone()));
        assert_eq!(parse_code(Kind::Cuda, "cudaSuccess"), Err(success));
        assert_eq!(
            parse_code(Kind::Cuda, "CUDA_SUCCESS"),
            Err(CodeError::NotAnError { kind: "cuda", code: 0, name: Some("CUDA_SUCCESS") })
        );
    }

    #[test]
    fn rejects_unknown() {
        let unknown = |kind: &'static str, text: &str| Err(CodeError::Unknown { kind, text: text.to_string() });
        assert_eq!(parse_code(Kind::Ucx, "FOO"), unknown("ucx", "FOO"));
        assert_eq!(parse_code(Kind::Ucx, " -101 "), unknown("ucx", "-101"));
        assert_eq!(parse_code(Kind::Ucx, "cudaErrorNoDevice"), unknown("ucx", "cudaErrorNoDevice"));
        assert_eq!(parse_code(Kind::Ucx, ""), unknown("ucx", ""));
        assert_eq!(parse_code(Kind::Ucx, "99999999999"), unknown("ucx", "99999999999"));
        assert_eq!(parse_code(Kind::Ucx, "ERR"), unknown("ucx", "ERR"));
        assert_eq!(parse_code(Kind::Cuda, "10"), unknown("cuda", "10"));
        assert_eq!(parse_code(Kind::Cuda, "-3"), unknown("cuda", "-3"));
        assert_eq!(parse_code(Kind::Cuda, "UCS_ERR_IO_ERROR"), unknown("cuda", "UCS_ERR_IO_ERROR"));
        assert_eq!(parse_code(Kind::Cuda, "cudaError"), unknown("cuda", "cudaError"));
        assert_eq!(parse_code(Kind::Cuda, "0x64"), unknown("cuda", "0x64"));
    }

    #[test]
    fn parse_lists() {
        assert_eq!(parse_code_list(Kind::Ucx, "-3,-6,-20"), Ok(vec![-3, -6, -20]));
        assert_eq!(parse_code_list(Kind::Ucx, "UCS_ERR_IO_ERROR, UCS_ERR_TIMED_OUT"), Ok(vec![-3, -20]));
        assert_eq!(parse_code_list(Kind::Ucx, "io_error, -3 ,IO_ERROR,"), Ok(vec![-3, -3, -3]));
        assert_eq!(parse_code_list(Kind::Cuda, "NoDevice, CUDA_ERROR_ECC_UNCORRECTABLE,220"), Ok(vec![100, 214, 220]));
        let max = vec!["-3"; POOL_CAP].join(",");
        assert_eq!(parse_code_list(Kind::Ucx, &max).map(|v| v.len()), Ok(POOL_CAP));
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(parse_code_list(Kind::Ucx, ""), Err(CodeError::Empty));
        assert_eq!(parse_code_list(Kind::Ucx, " , ,"), Err(CodeError::Empty));
        let forty = vec!["-3"; 40].join(",");
        assert_eq!(parse_code_list(Kind::Ucx, &forty), Err(CodeError::TooMany { given: 40, max: POOL_CAP }));
        assert_eq!(
            parse_code_list(Kind::Ucx, "-3,0"),
            Err(CodeError::NotAnError { kind: "ucx", code: 0, name: Some("UCS_OK") })
        );
        assert_eq!(
            parse_code_list(Kind::Cuda, "100,FOO"),
            Err(CodeError::Unknown { kind: "cuda", text: "FOO".to_string() })
        );
    }

    #[test]
    fn messages() {
        let msg = |r: Result<i32, CodeError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg(parse_code(Kind::Ucx, "0")), "0 is not an error for ucx (it is UCS_OK)");
        assert_eq!(msg(parse_code(Kind::Ucx, "1")), "1 is not an error for ucx (it is UCS_INPROGRESS)");
        assert_eq!(msg(parse_code(Kind::Ucx, "5")), "5 is not an error for ucx");
        assert_eq!(msg(parse_code(Kind::Cuda, "0")), "0 is not an error for cuda (it is cudaSuccess)");
        assert_eq!(
            msg(parse_code(Kind::Ucx, "FOO")),
            "unknown ucx status code 'FOO' (give a number like -3 or a name like UCS_ERR_IO_ERROR)"
        );
        assert!(
            msg(parse_code(Kind::Cuda, "FOO")).starts_with("unknown cuda status code 'FOO' (give a number like 100")
        );
        assert_eq!(CodeError::Empty.to_string(), "the error-code list is empty");
        assert_eq!(CodeError::TooMany { given: 40, max: 32 }.to_string(), "too many error codes: 40 given, at most 32");
    }
}
