//! What every kernel-log writer shares: the record texts ([`Line`]: the `kernel: ` identifier in front, the fault
//! marker at the end), writing them one open per record and reading them back ([`write_confirmed`]), and the JSON
//! report of the signals other than the XID ([`SignalReport`]; `faultline cluster … inject` parses it back).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{kmsg, NodeError, FAULT_MARKER, IDENTIFIER};

/// How long the read-back waits for the records.
pub const READ_BACK_PATIENCE: Duration = Duration::from_secs(5);

/// One record to write: its syslog level and its text (without the `<level>` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Syslog level, 0–7 (what the driver's `printk` level is: 3 for `dev_err`, 6 for `dev_info`, …).
    pub level: u8,
    /// `kernel: <driver's text> faultline-fault=<id>`.
    pub text: String,
}

impl Line {
    /// The record for `message` (the driver's own text) at `level`: `kernel: ` in front (so journald stores it
    /// under the identifier a driver line has, see the module docs of [`super`]), the fault marker at the end.
    pub fn new(level: u8, message: &str, fault_id: &str) -> Line {
        Line { level, text: format!("{IDENTIFIER}: {message} {FAULT_MARKER}{fault_id}") }
    }
}

/// What came back from the kernel log for each line written, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// The records found.
    pub records: Vec<kmsg::Record>,
}

/// Writes `lines` into `kmsg` (each on a descriptor opened for it alone: the kernel rate-limits per open file) and
/// reads the log until every one of them is back, found by `fault_id`'s marker.
pub fn write_confirmed(kmsg_path: &Path, lines: &[Line], fault_id: &str) -> Result<ReadBack, NodeError> {
    let kmsg_error = |action, cause| NodeError::Kmsg { action, path: kmsg_path.to_path_buf(), cause };
    let mut reader = kmsg::Reader::open_at_end(kmsg_path).map_err(|e| kmsg_error("open for reading", e))?;
    for line in lines {
        kmsg::write_record(kmsg_path, line.level, &line.text).map_err(|e| kmsg_error("write", e))?;
    }
    let needle = format!("{FAULT_MARKER}{fault_id}");
    let records = reader.find_all(&needle, lines.len(), READ_BACK_PATIENCE).map_err(|e| kmsg_error("read", e))?;
    if records.len() >= lines.len() {
        return Ok(ReadBack { records });
    }
    let hint = match kmsg::devkmsg_setting().as_deref() {
        Some("off") => " (kernel.printk_devkmsg is `off`: the kernel drops userspace writes)".to_string(),
        Some(other) => format!(" (kernel.printk_devkmsg is `{other}`)"),
        None => String::new(),
    };
    Err(NodeError::NotConfirmed { fault_id: fault_id.to_string(), path: kmsg_path.to_path_buf(), hint })
}

/// The kernel-log signals other than the XID, as `faultline node <signal>` and the Events name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalKind {
    /// The NVIDIA driver's "GPU has fallen off the bus" message, without an XID.
    FallenOff,
    /// An NVSwitch SXid.
    Sxid,
    /// A NIC driver error (mlx5_core, EFA).
    Nic,
}

impl SignalKind {
    /// Every kind, in the order the dashboard offers them.
    pub const ALL: [SignalKind; 3] = [SignalKind::FallenOff, SignalKind::Sxid, SignalKind::Nic];

    /// `fallen-off`, `sxid`, `nic`: the `faultline node` / `faultline cluster` subcommand.
    pub fn command(self) -> &'static str {
        match self {
            SignalKind::FallenOff => "fallen-off",
            SignalKind::Sxid => "sxid",
            SignalKind::Nic => "nic",
        }
    }

    /// The kind a command names.
    pub fn parse(text: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|kind| kind.command() == text)
    }

    /// `GPU fallen off the bus`, `NVSwitch SXid`, `NIC driver error`.
    pub fn title(self) -> &'static str {
        match self {
            SignalKind::FallenOff => "GPU fallen off the bus",
            SignalKind::Sxid => "NVSwitch SXid",
            SignalKind::Nic => "NIC driver error",
        }
    }

    /// The NVSentinel syslog-health-monitor check that reads it.
    pub fn check(self) -> &'static str {
        match self {
            SignalKind::FallenOff => "SysLogsGPUFallenOff",
            SignalKind::Sxid => "SysLogsSXIDError",
            SignalKind::Nic => "SysLogsNICDriverError",
        }
    }
}

/// What `faultline node fallen-off|sxid|nic` did (printed as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalReport {
    /// The fault id in the line(s).
    pub fault_id: String,
    /// Which signal.
    pub signal: SignalKind,
    /// What was written, in words: `GPU 0 (PCI 0000:3b:00.0) fell off the bus`, `SXid 24007 (Fatal) on NVSwitch 0
    /// link 28`, `mlx5_core command timeout on mlx5_0`.
    pub summary: String,
    /// Whether the monitor treats it as fatal (the fatal NIC events recommend replacing the machine).
    pub fatal: bool,
    /// The monitor check that reads it, and for NIC events its pattern: `SysLogsNICDriverError/cmd_exec_timeout`.
    pub monitor: String,
    /// The device's full PCI address (`0000:3b:00.0`).
    pub pci: String,
    /// Where the address came from: `driver`, `sysfs` or `--pci`.
    pub pci_source: String,
    /// The signal's own fields (`gpu`, `pci_id`, `switch`, `sxid`, `link`, `event`, `netdev`, …), as text.
    pub details: BTreeMap<String, String>,
    /// The records' texts as written (without the level prefix), in order.
    pub lines: Vec<String>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Whether every record was read back from the kernel log.
    pub confirmed: bool,
    /// The kernel's sequence numbers of the records read back.
    pub kmsg_seqs: Vec<u64>,
    /// Their syslog priorities as read back (facility × 8 + level).
    pub kmsg_priorities: Vec<u32>,
}

impl SignalReport {
    /// A report of `lines`, not written yet.
    pub fn formatted(signal: SignalKind, fault_id: &str, lines: &[Line], dry_run: bool) -> SignalReport {
        SignalReport {
            fault_id: fault_id.to_string(),
            signal,
            summary: String::new(),
            fatal: false,
            monitor: signal.check().to_string(),
            pci: String::new(),
            pci_source: String::new(),
            details: BTreeMap::new(),
            lines: lines.iter().map(|line| line.text.clone()).collect(),
            dry_run,
            confirmed: false,
            kmsg_seqs: Vec::new(),
            kmsg_priorities: Vec::new(),
        }
    }

    /// Writes the report's lines (unless it is a dry run) and notes what came back.
    pub fn write(mut self, kmsg_path: &Path, lines: &[Line]) -> Result<SignalReport, NodeError> {
        if self.dry_run {
            return Ok(self);
        }
        let back = write_confirmed(kmsg_path, lines, &self.fault_id)?;
        self.confirmed = true;
        self.kmsg_seqs = back.records.iter().map(|r| r.seq).collect();
        self.kmsg_priorities = back.records.iter().map(|r| r.priority).collect();
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_carries_the_identifier_and_the_marker() {
        let line = Line::new(3, "mlx5_core 0000:65:00.0: boom", "fl-1");
        assert_eq!(line.text, "kernel: mlx5_core 0000:65:00.0: boom faultline-fault=fl-1");
        for kind in SignalKind::ALL {
            assert_eq!(SignalKind::parse(kind.command()), Some(kind));
        }
        assert_eq!(serde_json::to_value(SignalKind::FallenOff).unwrap(), "fallen-off");
    }
}
