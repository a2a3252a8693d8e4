//! What `faultline node …` does on a Kubernetes node, run as root (normally inside the `faultline-node` agent pod:
//! privileged, host PID namespace, `/dev/kmsg` and `/proc/driver/nvidia` mounted):
//!
//! - [`inject_xid`]: write one NVIDIA-style XID line into the kernel log, for the GPU named by its minor number
//!   ([`gpus`]), with the catalog's text ([`xid`]), and read the log back to confirm it landed ([`kmsg`]);
//! - [`arm`]: arm or disarm the node: the policy file every shimmed pod's CUDA shim reads at start-up;
//! - the process commands (`faultline node ps`, `faultline node status --pid <host pid>`, …) are the ordinary ones
//!   with container discovery forced on (see [`faultline_core::targets::force_container_discovery`]): segments are found
//!   through `/proc/<pid>/root/dev/shm` and named by host pid.
//!
//! # The line format
//!
//! The record written is `<3>kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off
//! the bus. faultline-fault=fl-…`. The leading `kernel: ` is deliberate:
//!
//! - NVSentinel's syslog monitor reads the journal's `MESSAGE` field and searches it with
//!   `NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)…` (unanchored).
//! - journald reads `/dev/kmsg`; for a record whose facility is not `kernel` — and a userspace write can never be
//!   facility `kernel` — it treats a leading `WORD:` as the syslog identifier and strips it from `MESSAGE`. A line
//!   that began `NVRM: Xid …` would be stored as `SYSLOG_IDENTIFIER=NVRM`, `MESSAGE=Xid (PCI…` and never match.
//! - With `kernel: ` in front, journald stores `SYSLOG_IDENTIFIER=kernel` and `MESSAGE=NVRM: Xid (PCI…)`: exactly
//!   the identifier and message of a line the driver printed. Readers of the raw log (`dmesg`, `/dev/kmsg`,
//!   rsyslog's imklog) see `kernel: NVRM: Xid (PCI…)`, which the unanchored pattern matches as well. (The seed's
//!   `NVRM: NVRM: Xid` also survives journald, but under the identifier `NVRM`, unlike the real driver.)
//! - The PCI address is printed as the driver does (`0000:3b:00`: 4-digit domain, no function); NVSentinel
//!   normalises both forms. `pid=` and `name=` default to the driver's `'<unknown>'` / `<unknown>`.
//! - The fault id at the end makes each injection findable (read-back, Kubernetes Event, cleanup).

pub mod arm;
pub mod gpus;
pub mod kmsg;
pub mod xid;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use faultline_core::error::{EXIT_FAILED, EXIT_USAGE};
use gpus::PciAddress;

/// The syslog identifier written in front of `NVRM:` (see the module docs).
pub const IDENTIFIER: &str = "kernel";

/// The syslog level of the record (`<3>`, error), as the seed's injector used.
pub const LEVEL: u8 = 3;

/// The marker in front of the fault id at the end of each line.
pub const FAULT_MARKER: &str = "faultline-fault=";

/// How long the read-back waits for the record.
const READ_BACK_PATIENCE: Duration = Duration::from_secs(5);

/// Why a node command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An XID outside the catalog without `--force`.
    #[error("{}", crate::action::draft::unknown_xid(*.0, crate::action::draft::Names::Flags))]
    UnknownXid(u32),
    /// A `--pci` value that is not a PCI address.
    #[error("`{0}` is not a PCI address (expected e.g. 0000:3b:00.0)")]
    BadPci(String),
    /// A `--name` or `--fault-id` that would break the line's format.
    #[error("{what} `{value}` cannot go into an XID line: use printable ASCII without commas, at most 64 characters")]
    BadField {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// No NVIDIA driver directory (and no `--pci` to fall back on).
    #[error(
        "cannot list GPUs in {}: {} (is the NVIDIA driver loaded, and /proc/driver/nvidia mounted into the \
         pod?); give the GPU's PCI address with --pci",
        .dir.display(), .cause
    )]
    NoDriver {
        /// The directory.
        dir: PathBuf,
        /// Why it could not be read.
        cause: std::io::Error,
    },
    /// The driver knows no GPU with that minor number.
    #[error("no GPU {gpu} in {} (GPUs there: {known:?}); give its PCI address with --pci", .dir.display())]
    NoSuchGpu {
        /// The minor asked for.
        gpu: u32,
        /// The minors present.
        known: Vec<u32>,
        /// The directory.
        dir: PathBuf,
    },
    /// An `information` file that does not parse.
    #[error("{}: {what}", .path.display())]
    BadInformation {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// `--pci` disagrees with what the driver says about `--gpu`.
    #[error("--pci {given} is not GPU {gpu}: the driver says GPU {gpu} is at {actual}; drop --pci or fix --gpu")]
    PciMismatch {
        /// The minor.
        gpu: u32,
        /// `--pci`.
        given: String,
        /// The driver's address.
        actual: String,
    },
    /// `/dev/kmsg` could not be opened, written or read.
    #[error("{}: cannot {action}: {cause}{}", .path.display(), root_hint(.cause))]
    Kmsg {
        /// `open for reading`, `write`, `read`.
        action: &'static str,
        /// The device.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The record was written but never showed up in the log.
    #[error("the XID line for fault {fault_id} was written to {} but did not appear in the kernel log{hint}", .path.display())]
    NotConfirmed {
        /// The fault id searched for.
        fault_id: String,
        /// The device.
        path: PathBuf,
        /// Why that may be.
        hint: String,
    },
    /// A process command under `faultline node` run by someone other than root.
    #[error(
        "`faultline node {0}` reaches processes in every container on the node and must run as root (it normally \
         runs in the faultline-node agent pod: `faultline cluster …` or kubectl exec)"
    )]
    NotRoot(String),
    /// An XID the CUDA shim has no preset for (arming a node, rolling a shim out with `--xid`).
    #[error("the CUDA shim has no preset for XID {xid} (it would ignore it); presets: XIDs {presets}")]
    NoCudaPreset {
        /// The XID.
        xid: u32,
        /// The XIDs that have one.
        presets: String,
    },
    /// The node is armed by another fault.
    #[error("this node is already armed by fault {fault_id} ({}); recover that fault first", .path.display())]
    ArmedByOther {
        /// The fault that armed it.
        fault_id: String,
        /// The policy file.
        path: PathBuf,
    },
    /// The node policy file could not be written, read or removed.
    #[error("{}: cannot {action}: {cause}", .path.display())]
    Policy {
        /// `write`, `read`, `remove`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

fn root_hint(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        " (writing and reading the kernel log needs root, or CAP_SYSLOG)"
    } else {
        ""
    }
}

impl NodeError {
    /// The exit status: 2 when the request itself was wrong (nothing was written), 1 when carrying it out failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::UnknownXid(_)
            | NodeError::BadPci(_)
            | NodeError::BadField { .. }
            | NodeError::NoDriver { .. }
            | NodeError::NoSuchGpu { .. }
            | NodeError::BadInformation { .. }
            | NodeError::PciMismatch { .. }
            | NodeError::NotRoot(_)
            | NodeError::NoCudaPreset { .. }
            | NodeError::ArmedByOther { .. } => EXIT_USAGE,
            NodeError::Kmsg { .. } | NodeError::NotConfirmed { .. } | NodeError::Policy { .. } => EXIT_FAILED,
        }
    }
}

/// What `faultline node xid` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidInjection {
    /// The XID number.
    pub xid: u32,
    /// The GPU's minor number (`/dev/nvidiaN`).
    pub gpu: u32,
    /// The GPU's PCI address, used when the driver cannot be asked (or to double-check it).
    pub pci: Option<String>,
    /// `pid=` in the line (the process that "hit" the error).
    pub pid: Option<u32>,
    /// `name=` in the line.
    pub process_name: Option<String>,
    /// Inject an XID outside the catalog.
    pub force: bool,
    /// Resolve and format, but write nothing.
    pub dry_run: bool,
    /// The fault id to put in the line (a new one when `None`).
    pub fault_id: Option<String>,
    /// The NVIDIA driver directory (normally [`gpus::DEFAULT_DRIVER_DIR`]).
    pub driver_dir: PathBuf,
    /// The kernel log device (normally [`kmsg::DEV_KMSG`]).
    pub kmsg: PathBuf,
}

impl XidInjection {
    /// Injection of `xid` on GPU `gpu` with the real paths and no options.
    pub fn new(xid: u32, gpu: u32) -> Self {
        XidInjection {
            xid,
            gpu,
            pci: None,
            pid: None,
            process_name: None,
            force: false,
            dry_run: false,
            fault_id: None,
            driver_dir: PathBuf::from(gpus::DEFAULT_DRIVER_DIR),
            kmsg: PathBuf::from(kmsg::DEV_KMSG),
        }
    }
}

/// What `faultline node xid` did (printed as JSON; `faultline cluster xid inject` parses it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct XidReport {
    /// The fault id in the line.
    pub fault_id: String,
    /// The XID.
    pub xid: u32,
    /// Its catalog name.
    pub xid_name: String,
    /// `low` … `critical`, or `unknown` for a forced XID.
    pub severity: String,
    /// The GPU minor.
    pub gpu: u32,
    /// The full PCI address (`0000:3b:00.0`).
    pub pci: String,
    /// `driver` (resolved from /proc/driver/nvidia) or `--pci`.
    pub pci_source: String,
    /// The record's text as written (without the `<3>` level prefix).
    pub line: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Whether the record was read back from the kernel log.
    pub confirmed: bool,
    /// The kernel's sequence number of the record.
    pub kmsg_seq: Option<u64>,
    /// The record's syslog priority as read back (facility × 8 + level; 11 for a userspace `<3>`).
    pub kmsg_priority: Option<u32>,
}

/// Carries out `request`: resolve the PCI address, format the line, write it, read it back.
pub fn inject_xid(request: &XidInjection) -> Result<XidReport, NodeError> {
    let info = xid::lookup(request.xid);
    if info.is_none() && !request.force {
        return Err(NodeError::UnknownXid(request.xid));
    }
    let process_name = request.process_name.as_deref().map(|n| checked_field("--name", n)).transpose()?;
    let fault_id = match &request.fault_id {
        Some(id) => checked_field("--fault-id", id)?.to_string(),
        None => new_fault_id(),
    };
    let (pci, pci_source) = resolve_pci(&request.driver_dir, request.gpu, request.pci.as_deref())?;
    let line = xid_line(request.xid, &pci, request.pid, process_name, &fault_id);
    let mut report = XidReport {
        fault_id: fault_id.clone(),
        xid: request.xid,
        xid_name: info.map_or(xid::UNKNOWN_NAME, |i| i.name).to_string(),
        severity: info.map_or("unknown", |i| i.severity.name()).to_string(),
        gpu: request.gpu,
        pci: pci.to_string(),
        pci_source: pci_source.to_string(),
        line: line.clone(),
        dry_run: request.dry_run,
        confirmed: false,
        kmsg_seq: None,
        kmsg_priority: None,
    };
    if request.dry_run {
        return Ok(report);
    }
    let kmsg_error = |action, cause| NodeError::Kmsg { action, path: request.kmsg.clone(), cause };
    let mut reader = kmsg::Reader::open_at_end(&request.kmsg).map_err(|e| kmsg_error("open for reading", e))?;
    kmsg::write_record(&request.kmsg, LEVEL, &line).map_err(|e| kmsg_error("write", e))?;
    let needle = format!("{FAULT_MARKER}{fault_id}");
    match reader.find(&needle, READ_BACK_PATIENCE).map_err(|e| kmsg_error("read", e))? {
        Some(record) => {
            report.confirmed = true;
            report.kmsg_seq = Some(record.seq);
            report.kmsg_priority = Some(record.priority);
            Ok(report)
        }
        None => {
            let hint = match kmsg::devkmsg_setting().as_deref() {
                Some("off") => " (kernel.printk_devkmsg is `off`: the kernel drops userspace writes)".to_string(),
                Some(other) => format!(" (kernel.printk_devkmsg is `{other}`)"),
                None => String::new(),
            };
            Err(NodeError::NotConfirmed { fault_id, path: request.kmsg.clone(), hint })
        }
    }
}

/// Resolves GPU `gpu`'s PCI address from the driver, falling back to `pci`; both given must agree.
pub fn resolve_pci(driver_dir: &Path, gpu: u32, pci: Option<&str>) -> Result<(PciAddress, &'static str), NodeError> {
    let given = pci.map(PciAddress::parse).transpose()?;
    match (gpus::resolve(driver_dir, gpu), given) {
        (Ok(found), Some(given)) => {
            let actual = PciAddress::parse(&found.pci)?;
            if actual.xid_form() != given.xid_form() {
                return Err(NodeError::PciMismatch { gpu, given: given.to_string(), actual: actual.to_string() });
            }
            Ok((actual, "driver"))
        }
        (Ok(found), None) => Ok((PciAddress::parse(&found.pci)?, "driver")),
        (Err(_), Some(given)) => Ok((given, "--pci")),
        (Err(error), None) => Err(error),
    }
}

/// The record text (without the level prefix): `kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=…, name=…, <text>
/// faultline-fault=<id>`.
pub fn xid_line(xid: u32, pci: &PciAddress, pid: Option<u32>, process_name: Option<&str>, fault_id: &str) -> String {
    let pid = pid.map_or_else(|| "'<unknown>'".to_string(), |p| p.to_string());
    let name = process_name.unwrap_or("<unknown>");
    let message = xid::lookup(xid).map_or("Xid injected by faultline", |info| info.message);
    format!(
        "{IDENTIFIER}: NVRM: Xid (PCI:{}): {xid}, pid={pid}, name={name}, {message} {FAULT_MARKER}{fault_id}",
        pci.xid_form()
    )
}

/// What journald makes of a userspace kmsg record: `(SYSLOG_IDENTIFIER, MESSAGE)`. Mirrors systemd's
/// `syslog_parse_identifier`: leading whitespace is skipped; if the first word ends in `:`, it (minus a `[pid]`
/// suffix) is the identifier and is removed together with one following space.
pub fn journald_view(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let word_len = trimmed.find([' ', '\t', '\n', '\r']).unwrap_or(trimmed.len());
    let word = &trimmed[..word_len];
    let Some(identifier) = word.strip_suffix(':').filter(|w| !w.is_empty()) else {
        return (None, text.to_string());
    };
    let identifier = match identifier.strip_suffix(']').and_then(|w| w.rfind('[').map(|i| &w[..i])) {
        Some(without_pid) => without_pid,
        None => identifier,
    };
    let mut rest = &trimmed[word_len..];
    if rest.starts_with([' ', '\t', '\n', '\r']) {
        rest = &rest[1..];
    }
    (Some(identifier.to_string()), rest.to_string())
}

/// A new fault id: `fl-` and 12 hex digits from the clock and the pid (unique enough to find one record).
pub fn new_fault_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("fl-{:012x}", mixed & 0xffff_ffff_ffff)
}

fn checked_field<'a>(what: &'static str, value: &'a str) -> Result<&'a str, NodeError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !value.contains(',')
        && value.trim() == value;
    if ok {
        Ok(value)
    } else {
        Err(NodeError::BadField { what, value: value.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_strips_a_leading_identifier_like_systemd_does() {
        assert_eq!(
            journald_view("NVRM: Xid (PCI:0000:3b:00): 79"),
            (Some("NVRM".into()), "Xid (PCI:0000:3b:00): 79".into())
        );
        assert_eq!(journald_view("kernel: NVRM: Xid"), (Some("kernel".into()), "NVRM: Xid".into()));
        assert_eq!(journald_view("sshd[42]: hello"), (Some("sshd".into()), "hello".into()));
        assert_eq!(journald_view("no identifier here"), (None, "no identifier here".into()));
    }

    #[test]
    fn the_line_reads_like_the_driver_s() {
        let pci = PciAddress::parse("0000:3b:00.0").unwrap();
        let line = xid_line(79, &pci, Some(1234), Some("python3"), "fl-1");
        assert_eq!(
            line,
            "kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus. \
             faultline-fault=fl-1"
        );
        let line = xid_line(79, &pci, None, None, "fl-2");
        assert!(line.contains("79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."), "{line}");
    }

    #[test]
    fn fields_that_would_break_the_line_are_refused() {
        for bad in ["a,b", "", "tab\there", "new\nline", " lead", "ü"] {
            assert!(checked_field("--name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(checked_field("--name", "nvc:[driver]").unwrap(), "nvc:[driver]");
        assert!(new_fault_id().starts_with("fl-"));
    }
}
