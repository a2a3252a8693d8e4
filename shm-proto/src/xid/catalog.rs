//! The catalogue's entries, one per XID NVIDIA lists for current data-centre GPUs (A100, H100, B100, GB200) in
//! "Analyzing Xid Errors with the Xid Catalog" (docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html):
//! its mnemonic, its description (our short name; the entries faultline had before keep their own wording), and
//! the severity its "Resolution Bucket (Immediate Action)" implies (RESTART_APP on an engine: medium; IGNORE or an
//! application-side bucket: low; RESET_GPU, CHECK_MECHANICALS and the NVLink workflows: high; RESTART_BM /
//! RESTART_VM, and uncorrectable memory: critical). XIDs the catalogue marks "Unused" are left out.
//!
//! The message is what the driver prints after the XID number. Where a real line is known it is used (the older
//! entries; 32 and 154 as NVIDIA and NVSentinel quote them); elsewhere the description stands in. The NVLink5 XIDs
//! 144–150 carry no fixed message: [`Nvl5`] holds the subcode, severity word and registers of a representative row
//! of the catalogue's "XID 144-150 Decode" sheet, and the line is built from them (see `faultline node xid`).

use super::Severity::{Critical, High, Low, Medium};
use super::{Nvl5, Severity, XidInfo};

const fn entry(
    xid: u32,
    mnemonic: &'static str,
    name: &'static str,
    message: &'static str,
    severity: Severity,
) -> XidInfo {
    XidInfo { xid, mnemonic, name, message, severity, cuda: None, nvl5: None }
}

/// An entry whose kernel-log text is its description.
const fn described(xid: u32, mnemonic: &'static str, name: &'static str, severity: Severity) -> XidInfo {
    entry(xid, mnemonic, name, name, severity)
}

/// An NVLink5 entry (144–150): the line is built from `nvl5`.
const fn nvlink5(xid: u32, mnemonic: &'static str, name: &'static str, severity: Severity, nvl5: Nvl5) -> XidInfo {
    XidInfo { nvl5: Some(nvl5), ..entry(xid, mnemonic, name, name, severity) }
}

const fn nvl5(subcode: &'static str, fatal: bool, intrinfo: u32, error_status: u32) -> Nvl5 {
    Nvl5 { subcode, fatal, intrinfo, error_status }
}

/// Every XID faultline injects without `--force`, in ascending order.
pub const CATALOG: &[XidInfo] = &[
    described(8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "GPU stopped processing (idle timeout)", Low),
    described(11, "ROBUST_CHANNEL_GR_ERROR_MISSING_HW", "Invalid or corrupted push buffer stream", Low),
    entry(
        13,
        "ROBUST_CHANNEL_GR_EXCEPTION",
        "Graphics engine exception",
        "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
        Low,
    ),
    described(25, "ROBUST_CHANNEL_GR_ILLEGAL_NOTIFY", "Invalid or illegal push buffer stream", Low),
    entry(
        31,
        "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT",
        "GPU memory page fault",
        "Ch 00000010, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f3a_b0000000. \
         Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
        Low,
    ),
    entry(
        32,
        "ROBUST_CHANNEL_PBDMA_ERROR",
        "Invalid or corrupted push buffer stream (PBDMA)",
        "Channel ID 0000000d intr0 00040000",
        Low,
    ),
    described(37, "ROBUST_CHANNEL_FECS_ERR_UNIMP_FIRMWARE_METHOD", "Driver firmware error (unimplemented method)", Low),
    described(38, "ROBUST_CHANNEL_FECS_ERR_WATCHDOG_TIMEOUT", "Driver firmware error (watchdog timeout)", Low),
    described(39, "ROBUST_CHANNEL_CE0_ERROR", "Copy Engine Exception (CE0)", Medium),
    described(40, "ROBUST_CHANNEL_CE1_ERROR", "Copy Engine Exception (CE1)", Medium),
    described(41, "ROBUST_CHANNEL_CE2_ERROR", "Copy Engine Exception (CE2)", Medium),
    // cudaErrorLaunchTimeout / CUDA_ERROR_LAUNCH_TIMEOUT (702, the value since CUDA 10.1).
    entry(
        43,
        "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR",
        "GPU stopped processing",
        "Ch 00000008, engmask 00000101",
        Low,
    )
    .with_cuda(702, 702),
    described(44, "ROBUST_CHANNEL_GR_FAULT_DURING_CTXSW", "Graphics Engine fault during context switch", Low),
    entry(
        45,
        "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL",
        "Preemptive cleanup, due to previous errors",
        "Ch 00000010, engmask 00000101, intr 10000000",
        Low,
    ),
    described(46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", "GPU stopped processing (GPU timeout)", High),
    // cudaErrorECCUncorrectable / CUDA_ERROR_ECC_UNCORRECTABLE.
    entry(
        48,
        "ROBUST_CHANNEL_GPU_ECC_DBE",
        "Double bit ECC error",
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, \
         subpartition 0.",
        Critical,
    )
    .with_cuda(214, 214),
    described(54, "SILENT_RUNNING_PWR_REDUCED_CLOCKING", "Auxiliary power is not connected to the GPU board", High),
    described(60, "ROBUST_CHANNEL_SEC2_ERROR", "Video processor exception", Medium),
    entry(
        61,
        "PMU_BREAKPOINT",
        "Internal micro-controller breakpoint/warning",
        "Internal micro-controller breakpoint/warning",
        High,
    ),
    entry(62, "PMU_HALT_ERROR", "Internal micro-controller halt", "Internal micro-controller halt", High),
    entry(
        63,
        "INFOROM_DRAM_RETIREMENT_EVENT",
        "ECC page retirement or row remapping recording event",
        "Row Remapper: New row (0x0000000000a1b2c0) is marked for remapping, reset gpu to activate.",
        Medium,
    ),
    entry(
        64,
        "INFOROM_DRAM_RETIREMENT_FAILURE",
        "ECC page retirement or row remapper recording failure",
        "Row Remapper Error: row (0x0000000000a1b2c0) could not be remapped",
        High,
    ),
    described(66, "ROBUST_CHANNEL_FECS_ERR_REG_ACCESS_VIOLATION", "Illegal access by driver (register)", Low),
    described(67, "ROBUST_CHANNEL_FECS_ERR_VERIF_VIOLATION", "Illegal access by driver (verification)", Low),
    entry(
        68,
        "ROBUST_CHANNEL_NVDEC0_ERROR",
        "NVDEC0 exception",
        "NVDEC0: exception, class 0000c9b0, method 00000400",
        Medium,
    ),
    entry(
        69,
        "ROBUST_CHANNEL_GR_CLASS_ERROR",
        "Graphics engine class error",
        "Class Error: ChId 0010, Class 0000c7c0, Offset 00000000, Data 00000000, ErrorCode 00000004",
        Medium,
    ),
    described(70, "ROBUST_CHANNEL_CE3_ERROR", "CE3: Unknown Error", Medium),
    described(71, "ROBUST_CHANNEL_CE4_ERROR", "CE4: Unknown Error", Medium),
    described(72, "ROBUST_CHANNEL_CE5_ERROR", "CE5: Unknown Error", Medium),
    // cudaErrorNvlinkUncorrectable / CUDA_ERROR_NVLINK_UNCORRECTABLE.
    entry(
        74,
        "NVLINK_ERROR",
        "NVLink error",
        "NVLink: fatal error detected on link 0(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
        High,
    )
    .with_cuda(220, 220),
    described(75, "ROBUST_CHANNEL_CE6_ERROR", "CE6: Unknown Error", Medium),
    described(76, "ROBUST_CHANNEL_CE7_ERROR", "CE7: Unknown Error", Medium),
    described(77, "ROBUST_CHANNEL_CE8_ERROR", "CE8: Unknown Error", Medium),
    described(78, "VGPU_START_ERROR", "vGPU Start Error", Medium),
    // cudaErrorNoDevice / CUDA_ERROR_NO_DEVICE.
    entry(
        79,
        "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS",
        "GPU has fallen off the bus",
        "GPU has fallen off the bus.",
        Critical,
    )
    .with_cuda(100, 100),
    described(80, "PBDMA_PUSHBUFFER_CRC_MISMATCH", "Corrupted data sent to GPU", Low),
    described(82, "ROBUST_CHANNEL_NVJPG0_ERROR", "NVJPG0 Error", Medium),
    described(83, "ROBUST_CHANNEL_NVDEC1_ERROR", "NVDEC1 Error", Medium),
    described(84, "ROBUST_CHANNEL_NVDEC2_ERROR", "NVDEC2 Error", Medium),
    described(85, "ROBUST_CHANNEL_CE9_ERROR", "CE9: Unknown Error", Medium),
    described(86, "ROBUST_CHANNEL_OFA0_ERROR", "OFA Exception", Medium),
    described(88, "ROBUST_CHANNEL_NVDEC3_ERROR", "NVDEC3 Error", Medium),
    described(89, "ROBUST_CHANNEL_NVDEC4_ERROR", "NVDEC4 Error", Medium),
    entry(
        92,
        "EXCESSIVE_SBE_INTERRUPTS",
        "High single-bit ECC error rate",
        "High single-bit ECC error rate detected",
        Medium,
    ),
    described(93, "INFOROM_ERASE_LIMIT_EXCEEDED", "Non-fatal violation of provisioned InfoROM wear limit", Low),
    entry(
        94,
        "ROBUST_CHANNEL_CONTAINED_ERROR",
        "Contained ECC error",
        "Contained: SM (0x1). RST: No, D-RST: No",
        Medium,
    )
    .with_cuda(214, 214),
    entry(
        95,
        "ROBUST_CHANNEL_UNCONTAINED_ERROR",
        "Uncontained ECC error",
        "Uncontained: FBHUB. RST: Yes, D-RST: No",
        Critical,
    )
    .with_cuda(214, 214),
    described(96, "ROBUST_CHANNEL_NVDEC5_ERROR", "NVDEC5 Error", Medium),
    described(97, "ROBUST_CHANNEL_NVDEC6_ERROR", "NVDEC6 Error", Medium),
    described(98, "ROBUST_CHANNEL_NVDEC7_ERROR", "NVDEC7 Error", Medium),
    described(99, "ROBUST_CHANNEL_NVJPG1_ERROR", "NVJPG1 Error", Medium),
    described(100, "ROBUST_CHANNEL_NVJPG2_ERROR", "NVJPG2 Error", Medium),
    described(101, "ROBUST_CHANNEL_NVJPG3_ERROR", "NVJPG3 Error", Medium),
    described(102, "ROBUST_CHANNEL_NVJPG4_ERROR", "NVJPG4 Error", Medium),
    described(103, "ROBUST_CHANNEL_NVJPG5_ERROR", "NVJPG5 Error", Medium),
    described(104, "ROBUST_CHANNEL_NVJPG6_ERROR", "NVJPG6 Error", Medium),
    described(105, "ROBUST_CHANNEL_NVJPG7_ERROR", "NVJPG7 Error", Medium),
    described(106, "SMBPBI_TEST_MESSAGE", "SMBPBI Test Message", Low),
    described(107, "SMBPBI_TEST_MESSAGE_SILENT", "SMBPBI Test Message Silent", Low),
    described(109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "Context Switch Timeout Error", High),
    described(110, "SEC_FAULT_ERROR", "Security Fault Error", High),
    // cudaErrorUnknown / CUDA_ERROR_UNKNOWN.
    entry(
        119,
        "GSP_RPC_TIMEOUT",
        "GSP RPC timeout",
        "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) \
         (0x20802a02 0x8).",
        High,
    )
    .with_cuda(999, 999),
    entry(120, "GSP_ERROR", "GSP error", "GSP task exception: the GPU System Processor reported an error", High)
        .with_cuda(999, 999),
    described(121, "C2C_ERROR", "C2C Error", Low),
    described(126, "ROBUST_CHANNEL_CE10_ERROR", "CE10: Unknown Error", Medium),
    described(127, "ROBUST_CHANNEL_CE11_ERROR", "CE11: Unknown Error", Medium),
    described(128, "ROBUST_CHANNEL_CE12_ERROR", "CE12: Unknown Error", Medium),
    described(129, "ROBUST_CHANNEL_CE13_ERROR", "CE13: Unknown Error", Medium),
    described(130, "ROBUST_CHANNEL_CE14_ERROR", "CE14: Unknown Error", Medium),
    described(131, "ROBUST_CHANNEL_CE15_ERROR", "CE15: Unknown Error", Medium),
    described(132, "ROBUST_CHANNEL_CE16_ERROR", "CE16: Unknown Error", Medium),
    described(133, "ROBUST_CHANNEL_CE17_ERROR", "CE17: Unknown Error", Medium),
    described(134, "ROBUST_CHANNEL_CE18_ERROR", "CE18: Unknown Error", Medium),
    described(135, "ROBUST_CHANNEL_CE19_ERROR", "CE19: Unknown Error", Medium),
    described(136, "ALI_TRAINING_FAIL", "Link Training Failed", High),
    described(137, "NVLINK_PRIV_ERR", "NVLink Privilege Error", Low),
    described(139, "ROBUST_CHANNEL_OFA1_ERROR", "OFA1 Error", Medium),
    entry(
        140,
        "UNRECOVERABLE_ECC_ERROR_ESCAPE",
        "Unrecovered ECC error",
        "An unrecovered ECC error was detected in GPU memory",
        Critical,
    ),
    described(141, "ROBUST_CHANNEL_FAST_PATH_ERROR", "CUDA Fast Path Error", Low),
    described(142, "ROBUST_CHANNEL_NVENC3_ERROR", "NVENC3 Error", Medium),
    described(143, "GPU_INIT_ERROR", "GPU Initialization Error", High),
    nvlink5(144, "NVLINK_SAW_ERROR", "NVLINK: SAW Error", High, nvl5("SAW_MVB", true, 0x21, 0x2)),
    nvlink5(145, "NVLINK_RLW_ERROR", "NVLINK: RLW Error", High, nvl5("RLW_REMAP", true, 0x82, 0x40)),
    nvlink5(146, "NVLINK_TLW_ERROR", "NVLINK: TLW Error", High, nvl5("TLW_CTRL", true, 0x123, 0x4)),
    nvlink5(147, "NVLINK_TREX_ERROR", "NVLINK: TREX Error", Medium, nvl5("TREX", false, 0x184, 0x1)),
    nvlink5(
        148,
        "NVLINK_NVLPW_CTRL_ERROR",
        "NVLINK: NVLPW_CTRL Error",
        Medium,
        nvl5("NVLPW_CTRL", false, 0x5, 0x8000_0000),
    ),
    nvlink5(149, "NVLINK_NETIR_ERROR", "NVLINK: NETIR Error", High, nvl5("NETIR_LINK_EVT", true, 0x1c6, 0x0)),
    nvlink5(150, "NVLINK_MSE_ERROR", "NVLINK: MSE Error", High, nvl5("MSE_WATCHDOG", true, 0x0, 0x0)),
    described(151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR", "Key rotation Error", Critical),
    entry(
        154,
        "GPU_RECOVERY_ACTION_CHANGED",
        "GPU Recovery Action Changed",
        "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
        High,
    ),
    described(155, "NVLINK_SW_DEFINED_ERROR", "NVLINK: SW Defined Error", High),
    described(156, "RESOURCE_RETIREMENT_EVENT", "Resource Retirement Event", High),
    described(157, "RESOURCE_RETIREMENT_FAILURE", "Resource Retirement Failure", Medium),
    described(158, "GPU_FATAL_TIMEOUT", "GPU Fatal Timeout", High),
    described(159, "ROBUST_CHANNEL_CHI_NON_DATA_ERROR", "CHI Non-Data Error", Medium),
    described(160, "CHANNEL_RETIREMENT_EVENT", "Channel Retirement Event", Low),
    described(161, "CHANNEL_RETIREMENT_FAILURE", "Channel Retirement Failure", Medium),
];
