//! `faultline node fallen-off`: the NVIDIA driver's message for a GPU that stopped answering on PCI Express before
//! any XID could be reported — one `printk` with newlines inside, so one kernel-log record (the newlines come back
//! from `/dev/kmsg` as `\x0a`, and journald turns them into one journal entry with newlines):
//!
//! ```text
//! NVRM: The NVIDIA GPU 0000:3b:00.0
//! NVRM: (PCI ID: 10de:2330) installed in this system has
//! NVRM: fallen off the bus and is not responding to commands.
//! ```
//!
//! NVSentinel's `gpufallen` handler matches it across the newlines and ignores any message that contains `Xid`
//! (those are the XID handler's), so the text never does. The PCI vendor:device ID comes from sysfs
//! (`/sys/bus/pci/devices/<address>/vendor`, `device`) or `--pci-id`.

use std::path::{Path, PathBuf};

use super::gpus::{self, PciAddress};
use super::signal::{Line, SignalKind, SignalReport};
use super::{checked_field, kmsg, new_fault_id, resolve_pci, NodeError, LEVEL};

/// Where sysfs is (the PCI devices are under `bus/pci/devices`).
pub const DEFAULT_SYSFS: &str = "/sys";

/// What `faultline node fallen-off` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallenOffInjection {
    /// The GPU's minor number.
    pub gpu: u32,
    /// The GPU's PCI address, when the driver cannot be asked.
    pub pci: Option<String>,
    /// The PCI vendor:device ID (`10de:2330`), when sysfs cannot be asked.
    pub pci_id: Option<String>,
    /// Resolve and format, but write nothing.
    pub dry_run: bool,
    /// The fault id (a new one when `None`).
    pub fault_id: Option<String>,
    /// The NVIDIA driver directory.
    pub driver_dir: PathBuf,
    /// The sysfs root.
    pub sysfs: PathBuf,
    /// The kernel log device.
    pub kmsg: PathBuf,
}

impl FallenOffInjection {
    /// GPU `gpu` with the real paths and no options.
    pub fn new(gpu: u32) -> Self {
        FallenOffInjection {
            gpu,
            pci: None,
            pci_id: None,
            dry_run: false,
            fault_id: None,
            driver_dir: PathBuf::from(gpus::DEFAULT_DRIVER_DIR),
            sysfs: PathBuf::from(DEFAULT_SYSFS),
            kmsg: PathBuf::from(kmsg::DEV_KMSG),
        }
    }
}

/// Checks a PCI vendor:device ID (`10de:2330`, four hex digits each); returns it in lower case.
pub fn check_pci_id(text: &str) -> Result<String, NodeError> {
    let ok = text.split_once(':').is_some_and(|(vendor, device)| {
        [vendor, device].iter().all(|part| part.len() == 4 && part.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    ok.then(|| text.to_ascii_lowercase()).ok_or_else(|| NodeError::BadValue {
        what: "--pci-id",
        value: text.to_string(),
        expected: "a PCI vendor:device ID (e.g. 10de:2330)",
    })
}

/// The PCI vendor:device ID of the device at `pci`, from `<sysfs>/bus/pci/devices/<pci>/{vendor,device}`.
pub fn sysfs_pci_id(sysfs: &Path, pci: &PciAddress) -> Result<String, NodeError> {
    let dir = sysfs.join("bus/pci/devices").join(pci.to_string());
    let read = |name: &str| -> Result<String, String> {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
        let hex = text.trim().trim_start_matches("0x");
        let ok = hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| hex.to_ascii_lowercase()).ok_or_else(|| format!("{name} reads {:?}", text.trim()))
    };
    let no_id = |cause: String| NodeError::NoPciId { pci: pci.to_string(), path: dir.clone(), cause };
    Ok(format!("{}:{}", read("vendor").map_err(no_id)?, read("device").map_err(no_id)?))
}

/// The driver's message (three `NVRM:` lines joined by newlines).
pub fn fallen_off_message(pci: &PciAddress, pci_id: &str) -> String {
    format!(
        "NVRM: The NVIDIA GPU {pci}\nNVRM: (PCI ID: {pci_id}) installed in this system has\nNVRM: fallen off the bus and \
         is not responding to commands."
    )
}

/// Carries out `request`.
pub fn inject_fallen_off(request: &FallenOffInjection) -> Result<SignalReport, NodeError> {
    let given_id = request.pci_id.as_deref().map(check_pci_id).transpose()?;
    let fault_id = match &request.fault_id {
        Some(id) => checked_field("--fault-id", id)?.to_string(),
        None => new_fault_id(),
    };
    let (pci, pci_source) = resolve_pci(&request.driver_dir, request.gpu, request.pci.as_deref())?;
    let (pci_id, pci_id_source) = match given_id {
        Some(id) => (id, "--pci-id"),
        None => (sysfs_pci_id(&request.sysfs, &pci)?, "sysfs"),
    };
    let lines = [Line::new(LEVEL, &fallen_off_message(&pci, &pci_id), &fault_id)];
    let mut report = SignalReport::formatted(SignalKind::FallenOff, &fault_id, &lines, request.dry_run);
    report.summary = format!("GPU {} (PCI {pci}, ID {pci_id}) fell off the bus", request.gpu);
    report.fatal = true;
    report.pci = pci.to_string();
    report.pci_source = pci_source.to_string();
    report.details.extend([
        ("gpu".to_string(), request.gpu.to_string()),
        ("pci_id".to_string(), pci_id),
        ("pci_id_source".to_string(), pci_id_source.to_string()),
    ]);
    report.write(&request.kmsg, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_driver_s_three_lines_without_xid() {
        let pci = PciAddress::parse("0000:b3:00.0").unwrap();
        let message = fallen_off_message(&pci, "10de:26b5");
        assert_eq!(
            message.lines().collect::<Vec<_>>(),
            [
                "NVRM: The NVIDIA GPU 0000:b3:00.0",
                "NVRM: (PCI ID: 10de:26b5) installed in this system has",
                "NVRM: fallen off the bus and is not responding to commands."
            ]
        );
        assert!(!message.contains("Xid"));
    }

    #[test]
    fn pci_ids_are_four_hex_digits_each() {
        assert_eq!(check_pci_id("10DE:2330").unwrap(), "10de:2330");
        for bad in ["10de", "10de:233", "10de:2330:1", "g0de:2330", ""] {
            assert!(check_pci_id(bad).is_err(), "{bad}");
        }
    }
}
