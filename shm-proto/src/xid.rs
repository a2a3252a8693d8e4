//! The XID catalogue, shared by the `faultline` tool (which writes XID lines into kernel logs, arms nodes and rolls
//! shims out) and the CUDA shim (which fails calls as a GPU with that XID would): one entry per NVIDIA XID
//! faultline knows — a short name, the text the driver prints after the XID number (so an injected line reads like
//! the real one), how bad it is, and, for the XIDs a process can notice from the CUDA APIs, the codes the CUDA
//! shim's preset returns.
//!
//! The texts follow NVIDIA's "XID Errors" documentation and lines seen in real kernel logs; the severities follow
//! the seed fault-injection service (critical: the GPU is gone or its memory is corrupt, the node must be drained;
//! high: the GPU needs a reset; medium: contained, the workload may survive; low: usually the application's fault).
//! Why each preset code: see the CUDA shim's README (XID table).

/// The XID every command and dialog that takes one starts from: 79, "GPU has fallen off the bus".
pub const DEFAULT_XID: u32 = 79;

/// How serious an XID is for the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Usually an application bug; the GPU is fine.
    Low,
    /// Contained; the workload may survive.
    Medium,
    /// The GPU needs a reset.
    High,
    /// The GPU is lost or its memory corrupt: cordon and drain.
    Critical,
}

impl Severity {
    /// `low`, `medium`, `high` or `critical`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What an application sees from the CUDA APIs when its GPU has an XID: the CUDA shim's preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaPreset {
    /// The `cudaError_t` runtime calls return (also the pool code the segment shows).
    pub runtime: i32,
    /// The `CUresult` driver calls return.
    pub driver: i32,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidInfo {
    /// The XID number.
    pub xid: u32,
    /// A short name, e.g. "GPU has fallen off the bus".
    pub name: &'static str,
    /// The text the driver prints after `pid=…, name=…, `.
    pub message: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// The CUDA shim's preset (`FAULTLINE_XID`, the node policy file), for XIDs a process notices through CUDA.
    pub cuda: Option<CudaPreset>,
}

/// An XID with a CUDA shim preset: what the shim and the tools that arm nodes or roll shims out accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The XID.
    pub xid: u32,
    /// Its catalogue name.
    pub name: &'static str,
    /// The `cudaError_t` runtime calls return (also the pool code the segment shows).
    pub runtime: i32,
    /// The `CUresult` driver calls return.
    pub driver: i32,
}

impl XidInfo {
    /// The entry's CUDA shim preset, if it has one.
    pub const fn preset(&self) -> Option<Preset> {
        match self.cuda {
            Some(CudaPreset { runtime, driver }) => Some(Preset { xid: self.xid, name: self.name, runtime, driver }),
            None => None,
        }
    }

    const fn with_cuda(self, runtime: i32, driver: i32) -> XidInfo {
        XidInfo { cuda: Some(CudaPreset { runtime, driver }), ..self }
    }
}

const fn entry(xid: u32, name: &'static str, message: &'static str, severity: Severity) -> XidInfo {
    XidInfo { xid, name, message, severity, cuda: None }
}

/// Every XID faultline injects without `--force`, in ascending order.
pub const CATALOG: &[XidInfo] = &[
    entry(
        13,
        "Graphics engine exception",
        "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
        Severity::Low,
    ),
    entry(
        31,
        "GPU memory page fault",
        "Ch 00000010, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f3a_b0000000. \
         Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
        Severity::Low,
    ),
    // cudaErrorLaunchTimeout / CUDA_ERROR_LAUNCH_TIMEOUT (702, the value since CUDA 10.1).
    entry(43, "GPU stopped processing", "Ch 00000008, engmask 00000101", Severity::Low).with_cuda(702, 702),
    entry(
        45,
        "Preemptive cleanup, due to previous errors",
        "Ch 00000010, engmask 00000101, intr 10000000",
        Severity::Low,
    ),
    // cudaErrorECCUncorrectable / CUDA_ERROR_ECC_UNCORRECTABLE.
    entry(
        48,
        "Double bit ECC error",
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, \
         subpartition 0.",
        Severity::Critical,
    )
    .with_cuda(214, 214),
    entry(
        61,
        "Internal micro-controller breakpoint/warning",
        "Internal micro-controller breakpoint/warning",
        Severity::High,
    ),
    entry(62, "Internal micro-controller halt", "Internal micro-controller halt", Severity::High),
    entry(
        63,
        "ECC page retirement or row remapping recording event",
        "Row Remapper: New row (0x0000000000a1b2c0) is marked for remapping, reset gpu to activate.",
        Severity::Medium,
    ),
    entry(
        64,
        "ECC page retirement or row remapper recording failure",
        "Row Remapper Error: row (0x0000000000a1b2c0) could not be remapped",
        Severity::High,
    ),
    entry(68, "NVDEC0 exception", "NVDEC0: exception, class 0000c9b0, method 00000400", Severity::Medium),
    entry(
        69,
        "Graphics engine class error",
        "Class Error: ChId 0010, Class 0000c7c0, Offset 00000000, Data 00000000, ErrorCode 00000004",
        Severity::Medium,
    ),
    // cudaErrorNvlinkUncorrectable / CUDA_ERROR_NVLINK_UNCORRECTABLE.
    entry(
        74,
        "NVLink error",
        "NVLink: fatal error detected on link 0(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
        Severity::High,
    )
    .with_cuda(220, 220),
    // cudaErrorNoDevice / CUDA_ERROR_NO_DEVICE.
    entry(79, "GPU has fallen off the bus", "GPU has fallen off the bus.", Severity::Critical).with_cuda(100, 100),
    entry(92, "High single-bit ECC error rate", "High single-bit ECC error rate detected", Severity::Medium),
    entry(94, "Contained ECC error", "Contained: SM (0x1). RST: No, D-RST: No", Severity::Medium).with_cuda(214, 214),
    entry(95, "Uncontained ECC error", "Uncontained: FBHUB. RST: Yes, D-RST: No", Severity::Critical)
        .with_cuda(214, 214),
    // cudaErrorUnknown / CUDA_ERROR_UNKNOWN.
    entry(
        119,
        "GSP RPC timeout",
        "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) \
         (0x20802a02 0x8).",
        Severity::High,
    )
    .with_cuda(999, 999),
    entry(120, "GSP error", "GSP task exception: the GPU System Processor reported an error", Severity::High)
        .with_cuda(999, 999),
    entry(140, "Unrecovered ECC error", "An unrecovered ECC error was detected in GPU memory", Severity::Critical),
];

/// What an XID outside the catalogue (injected with `--force`) is called.
pub const UNKNOWN_NAME: &str = "XID outside the faultline catalog";

/// The catalogue entry for `xid`, if faultline knows it.
pub fn lookup(xid: u32) -> Option<&'static XidInfo> {
    CATALOG.iter().find(|info| info.xid == xid)
}

/// The catalogue index of `xid`'s entry (for holding an entry in an atomic), if faultline knows it.
pub fn index_of(xid: u32) -> Option<usize> {
    CATALOG.iter().position(|info| info.xid == xid)
}

/// The CUDA shim's preset for `xid`, if there is one.
pub fn preset(xid: u32) -> Option<Preset> {
    lookup(xid).and_then(XidInfo::preset)
}

/// Every preset, in catalogue (ascending XID) order.
pub fn presets() -> impl Iterator<Item = Preset> {
    CATALOG.iter().filter_map(XidInfo::preset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_xid_once_in_ascending_order() {
        let wanted = [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120, 140];
        let xids: Vec<u32> = CATALOG.iter().map(|info| info.xid).collect();
        assert_eq!(xids, wanted);
        for info in CATALOG {
            assert!(!info.name.is_empty() && !info.message.is_empty(), "{info:?}");
            assert!(info.message.is_ascii() && !info.message.contains('\n'), "{info:?}");
            assert_eq!(index_of(info.xid).map(|i| CATALOG[i].xid), Some(info.xid));
        }
        assert_eq!(lookup(79).unwrap().severity, Severity::Critical);
        assert_eq!(lookup(7), None);
        assert_eq!(index_of(7), None);
    }

    #[test]
    fn presets_are_the_entries_with_cuda_codes() {
        let xids: Vec<u32> = presets().map(|p| p.xid).collect();
        assert_eq!(xids, [43, 48, 74, 79, 94, 95, 119, 120]);
        assert_eq!(preset(79), Some(Preset { xid: 79, name: "GPU has fallen off the bus", runtime: 100, driver: 100 }));
        assert_eq!(preset(43).map(|p| (p.runtime, p.driver)), Some((702, 702)));
        assert_eq!(preset(13), None, "in the catalogue, no preset");
        assert_eq!(preset(7), None, "not in the catalogue");
    }

    #[test]
    fn the_default_xid_has_a_preset() {
        let info = lookup(DEFAULT_XID).expect("in the catalogue");
        assert_eq!(info.name, "GPU has fallen off the bus");
        assert!(preset(DEFAULT_XID).is_some(), "arming a node with the default must work");
    }

    #[test]
    fn severity_names_and_order() {
        let all = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
        assert_eq!(all.map(Severity::name), ["low", "medium", "high", "critical"]);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }
}
