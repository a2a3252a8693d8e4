//! The XID catalogue, shared by the `faultline` tool (which writes XID lines into kernel logs, arms nodes and rolls
//! shims out) and the CUDA shim (which fails calls as a GPU with that XID would): one entry per NVIDIA XID
//! faultline knows ([`CATALOG`], in `catalog.rs`: NVIDIA's mnemonic, a short name, the text the driver prints after the XID number (so an injected line reads like
//! the real one), how bad it is, and, for the XIDs a process can notice from the CUDA APIs, the codes the CUDA
//! shim's preset returns.
//!
//! The texts follow NVIDIA's "XID Errors" documentation and lines seen in real kernel logs; the severities follow
//! the catalogue's resolution buckets as the seed fault-injection service graded them (critical: the GPU is gone or its memory is corrupt, the node must be drained;
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

/// The XIDs NVLink5 GPUs (B100, GB200) report with a subcode, link and registers instead of a fixed text.
pub const NVLINK5: std::ops::RangeInclusive<u32> = 144..=150;

/// What the driver prints after an NVLink5 XID's number (`<subcode> <Fatal|Nonfatal> XC0 i0 Link <n> (<intrinfo>
/// <error status> 0x… ×4)`, NVIDIA's "XID 144-150 Decode"): the defaults of one representative decode row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nvl5 {
    /// The NVLink sub-unit, e.g. `RLW_REMAP`, `NETIR_LINK_EVT`.
    pub subcode: &'static str,
    /// `Fatal` (true) or `Nonfatal` in the line.
    pub fatal: bool,
    /// The first register (IntrInfo), which encodes the subcode and the recovery action.
    pub intrinfo: u32,
    /// The second register (Error Status).
    pub error_status: u32,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidInfo {
    /// The XID number.
    pub xid: u32,
    /// NVIDIA's mnemonic, e.g. `ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS`.
    pub mnemonic: &'static str,
    /// A short name, e.g. "GPU has fallen off the bus".
    pub name: &'static str,
    /// The text the driver prints after `pid=…, name=…, `.
    pub message: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// The CUDA shim's preset (`FAULTLINE_XID`, the node policy file), for XIDs a process notices through CUDA.
    pub cuda: Option<CudaPreset>,
    /// For the NVLink5 XIDs ([`NVLINK5`]): the subcode line's defaults.
    pub nvl5: Option<Nvl5>,
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

    /// The NVLink5 subcode line's defaults, for XIDs 144–150.
    pub const fn nvlink5(&self) -> Option<Nvl5> {
        self.nvl5
    }

    pub(crate) const fn with_cuda(self, runtime: i32, driver: i32) -> XidInfo {
        XidInfo { cuda: Some(CudaPreset { runtime, driver }), ..self }
    }
}

mod catalog;

pub use catalog::CATALOG;

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
        let xids: Vec<u32> = CATALOG.iter().map(|info| info.xid).collect();
        assert!(xids.windows(2).all(|w| w[0] < w[1]), "ascending, each once: {xids:?}");
        for wanted in [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120, 140] {
            assert!(xids.contains(&wanted), "XID {wanted} is still there");
        }
        for info in CATALOG {
            assert!(!info.name.is_empty() && !info.message.is_empty(), "{info:?}");
            assert!(info.message.is_ascii() && !info.message.contains('\n'), "{info:?}");
            let mnemonic_ok = info.mnemonic.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            assert!(mnemonic_ok && !info.mnemonic.is_empty(), "{info:?}");
            assert_eq!(index_of(info.xid).map(|i| CATALOG[i].xid), Some(info.xid));
        }
        assert_eq!(lookup(79).unwrap().severity, Severity::Critical);
        assert_eq!(lookup(79).unwrap().mnemonic, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS");
        assert_eq!(lookup(7), None, "unused in NVIDIA's catalogue");
        assert_eq!(index_of(7), None);
    }

    #[test]
    fn the_nvlink5_xids_and_only_they_have_subcode_defaults() {
        for info in CATALOG {
            assert_eq!(info.nvlink5().is_some(), NVLINK5.contains(&info.xid), "{info:?}");
        }
        for xid in NVLINK5 {
            let info = lookup(xid).expect("144–150 are in the catalogue");
            let nvl5 = info.nvlink5().unwrap();
            assert!(info.mnemonic.starts_with("NVLINK_") && info.name.starts_with("NVLINK: "), "{info:?}");
            assert!(!nvl5.subcode.is_empty() && nvl5.subcode.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
        assert_eq!(lookup(145).unwrap().nvlink5().map(|n| (n.subcode, n.intrinfo)), Some(("RLW_REMAP", 0x82)));
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
