//! `faultline node sxid`: an NVSwitch SXid as the `nvidia-nvswitch` driver prints it,
//! `nvidia-nvswitch<N>: SXid (PCI:0000:c3:00.0): 24007, Fatal, Link 28 sourcetrack timeout error (First)`.
//!
//! Switch `N` is the driver's device instance; the driver registers its switches in PCI order, each under
//! `/proc/driver/nvidia-nvswitch/devices/<address>/`, so switch `N` is the `N`th address there (or `--pci`).
//! `nvidia-nvswitch3:` looks like a syslog identifier to journald, which is why the record starts `kernel: ` like
//! every other (see [`super`]). NVSentinel's SXid handler then maps (switch PCI address, link) to a GPU through the
//! node's NVLink topology; on a node without NVSwitches it logs that it could not and raises no event.

use std::path::{Path, PathBuf};

use super::gpus::PciAddress;
use super::signal::{Line, SignalKind, SignalReport};
use super::xid::MAX_LINK;
use super::{checked_field, kmsg, new_fault_id, NodeError, LEVEL};

/// Where the NVSwitch driver publishes its switches.
pub const DEFAULT_NVSWITCH_DIR: &str = "/proc/driver/nvidia-nvswitch";

/// The text after `Link <n>` for SXids seen in real logs (NVSentinel's tests quote them); others get
/// [`GENERIC_TEXT`].
pub const KNOWN: &[(u32, &str)] = &[
    (12028, "egress non-posted PRIV error (First)"),
    (20009, "RX Short Error Rate"),
    (24007, "sourcetrack timeout error (First)"),
    (28006, "MC TS crumbstore MCTO (First)"),
];

/// The text after `Link <n>` for an SXid not in [`KNOWN`] (without `--message`).
pub const GENERIC_TEXT: &str = "NVSwitch error (First)";

/// What `faultline node sxid` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SxidInjection {
    /// The switch's device instance (`nvidia-nvswitch<N>`).
    pub switch: u32,
    /// The SXid.
    pub sxid: u32,
    /// The NVLink port.
    pub link: u32,
    /// `Fatal` instead of `Non-fatal`.
    pub fatal: bool,
    /// The text after the link (default: [`KNOWN`] or [`GENERIC_TEXT`]).
    pub message: Option<String>,
    /// The switch's PCI address, when the driver cannot be asked.
    pub pci: Option<String>,
    /// Resolve and format, but write nothing.
    pub dry_run: bool,
    /// The fault id (a new one when `None`).
    pub fault_id: Option<String>,
    /// The NVSwitch driver's /proc directory.
    pub nvswitch_dir: PathBuf,
    /// The kernel log device.
    pub kmsg: PathBuf,
}

impl SxidInjection {
    /// SXid `sxid` on link `link` of switch `switch`, non-fatal, real paths.
    pub fn new(switch: u32, sxid: u32, link: u32) -> Self {
        SxidInjection {
            switch,
            sxid,
            link,
            fatal: false,
            message: None,
            pci: None,
            dry_run: false,
            fault_id: None,
            nvswitch_dir: PathBuf::from(DEFAULT_NVSWITCH_DIR),
            kmsg: PathBuf::from(kmsg::DEV_KMSG),
        }
    }
}

/// The switches' PCI addresses under `nvswitch_dir`, in PCI order (switch 0 first).
pub fn switches(nvswitch_dir: &Path) -> Result<Vec<PciAddress>, NodeError> {
    let dir = nvswitch_dir.join("devices");
    let entries = std::fs::read_dir(&dir).map_err(|cause| NodeError::NoNvswitchDriver { dir: dir.clone(), cause })?;
    let mut found: Vec<PciAddress> =
        entries.flatten().filter_map(|e| PciAddress::parse(&e.file_name().to_string_lossy()).ok()).collect();
    found.sort_by_key(|a| (a.domain, a.bus, a.device, a.function));
    Ok(found)
}

/// Switch `switch`'s PCI address from the driver, falling back to `pci`; both given must agree.
pub fn resolve_switch(
    nvswitch_dir: &Path,
    switch: u32,
    pci: Option<&str>,
) -> Result<(PciAddress, &'static str), NodeError> {
    let given = pci.map(PciAddress::parse).transpose()?;
    let listed = switches(nvswitch_dir);
    let found = match &listed {
        Ok(list) => list.get(switch as usize).copied(),
        Err(_) => None,
    };
    match (found, given, listed) {
        (Some(actual), Some(given), _) if actual.to_string() != given.to_string() => Err(NodeError::DeviceMismatch {
            device: format!("NVSwitch {switch}"),
            given: given.to_string(),
            actual: actual.to_string(),
        }),
        (Some(actual), _, _) => Ok((actual, "driver")),
        (None, Some(given), _) => Ok((given, "--pci")),
        (None, None, Ok(list)) => Err(NodeError::NoSuchSwitch {
            switch,
            known: list.iter().map(ToString::to_string).collect(),
            dir: nvswitch_dir.join("devices"),
        }),
        (None, None, Err(error)) => Err(error),
    }
}

/// The driver's line: `nvidia-nvswitch3: SXid (PCI:0000:c3:00.0): 24007, Fatal, Link 28 <text>`.
pub fn sxid_message(switch: u32, pci: &PciAddress, sxid: u32, fatal: bool, link: u32, text: &str) -> String {
    let severity = if fatal { "Fatal" } else { "Non-fatal" };
    format!("nvidia-nvswitch{switch}: SXid (PCI:{pci}): {sxid}, {severity}, Link {link:02} {text}")
}

/// Carries out `request`.
pub fn inject_sxid(request: &SxidInjection) -> Result<SignalReport, NodeError> {
    if request.link > MAX_LINK {
        return Err(NodeError::BadValue { what: "--link", value: request.link.to_string(), expected: "a link 0–63" });
    }
    let text = match &request.message {
        Some(text) => checked_field("--message", text)?,
        None => KNOWN.iter().find(|(code, _)| *code == request.sxid).map_or(GENERIC_TEXT, |(_, text)| text),
    };
    let fault_id = match &request.fault_id {
        Some(id) => checked_field("--fault-id", id)?.to_string(),
        None => new_fault_id(),
    };
    let (pci, pci_source) = resolve_switch(&request.nvswitch_dir, request.switch, request.pci.as_deref())?;
    let message = sxid_message(request.switch, &pci, request.sxid, request.fatal, request.link, text);
    let lines = [Line::new(LEVEL, &message, &fault_id)];
    let mut report = SignalReport::formatted(SignalKind::Sxid, &fault_id, &lines, request.dry_run);
    let severity = if request.fatal { "Fatal" } else { "Non-fatal" };
    report.summary = format!("SXid {} ({severity}) on NVSwitch {} link {}", request.sxid, request.switch, request.link);
    report.fatal = request.fatal;
    report.pci = pci.to_string();
    report.pci_source = pci_source.to_string();
    report.details.extend([
        ("switch".to_string(), request.switch.to_string()),
        ("sxid".to_string(), request.sxid.to_string()),
        ("link".to_string(), request.link.to_string()),
    ]);
    report.write(&request.kmsg, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_like_the_driver_s() {
        let pci = PciAddress::parse("0000:c3:00.0").unwrap();
        assert_eq!(
            sxid_message(0, &pci, 24007, true, 28, "sourcetrack timeout error (First)"),
            "nvidia-nvswitch0: SXid (PCI:0000:c3:00.0): 24007, Fatal, Link 28 sourcetrack timeout error (First)"
        );
        assert!(sxid_message(3, &pci, 20009, false, 4, "x").contains(": 20009, Non-fatal, Link 04 x"));
    }
}
