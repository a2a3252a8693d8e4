//! The XID catalog: what faultline knows about each NVIDIA XID it injects — a short name, the text the driver
//! prints after the XID number (so the injected line reads like the real one), and how bad it is.
//!
//! The texts follow NVIDIA's "XID Errors" documentation and lines seen in real kernel logs; the severities follow
//! the seed fault-injection service (critical: the GPU is gone or its memory is corrupt, the node must be drained;
//! high: the GPU needs a reset; medium: contained, the workload may survive; low: usually the application's fault).

use serde::Serialize;

/// How serious an XID is for the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
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
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct XidInfo {
    /// The XID number.
    pub xid: u32,
    /// A short name, e.g. "GPU has fallen off the bus".
    pub name: &'static str,
    /// The text the driver prints after `pid=…, name=…, `.
    pub message: &'static str,
    /// How serious it is.
    pub severity: Severity,
}

const fn entry(xid: u32, name: &'static str, message: &'static str, severity: Severity) -> XidInfo {
    XidInfo { xid, name, message, severity }
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
    entry(43, "GPU stopped processing", "Ch 00000008, engmask 00000101", Severity::Low),
    entry(
        45,
        "Preemptive cleanup, due to previous errors",
        "Ch 00000010, engmask 00000101, intr 10000000",
        Severity::Low,
    ),
    entry(
        48,
        "Double bit ECC error",
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, \
         subpartition 0.",
        Severity::Critical,
    ),
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
    entry(
        74,
        "NVLink error",
        "NVLink: fatal error detected on link 0(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
        Severity::High,
    ),
    entry(79, "GPU has fallen off the bus", "GPU has fallen off the bus.", Severity::Critical),
    entry(92, "High single-bit ECC error rate", "High single-bit ECC error rate detected", Severity::Medium),
    entry(94, "Contained ECC error", "Contained: SM (0x1). RST: No, D-RST: No", Severity::Medium),
    entry(95, "Uncontained ECC error", "Uncontained: FBHUB. RST: Yes, D-RST: No", Severity::Critical),
    entry(
        119,
        "GSP RPC timeout",
        "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) \
         (0x20802a02 0x8).",
        Severity::High,
    ),
    entry(120, "GSP error", "GSP task exception: the GPU System Processor reported an error", Severity::High),
    entry(140, "Unrecovered ECC error", "An unrecovered ECC error was detected in GPU memory", Severity::Critical),
];

/// The catalog entry for `xid`, if faultline knows it.
pub fn lookup(xid: u32) -> Option<&'static XidInfo> {
    CATALOG.iter().find(|info| info.xid == xid)
}

/// What an XID outside the catalog (injected with `--force`) is called.
pub const UNKNOWN_NAME: &str = "XID outside the faultline catalog";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_has_every_xid_the_issue_names_once_and_in_order() {
        let wanted = [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120, 140];
        let xids: Vec<u32> = CATALOG.iter().map(|info| info.xid).collect();
        assert_eq!(xids, wanted);
        for info in CATALOG {
            assert!(!info.name.is_empty() && !info.message.is_empty(), "{info:?}");
            assert!(info.message.is_ascii() && !info.message.contains('\n'), "{info:?}");
        }
        assert_eq!(lookup(79).unwrap().severity, Severity::Critical);
        assert_eq!(lookup(7), None);
    }
}
