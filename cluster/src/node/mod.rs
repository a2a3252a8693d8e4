//! What `faultline node …` does on a Kubernetes node, run as root (normally inside the `faultline-node` agent pod:
//! privileged, host PID namespace, `/dev/kmsg` and `/proc/driver/nvidia` mounted):
//!
//! - the kernel-log writers, one per signal NVSentinel's syslog monitor reads, each of which formats the driver's
//!   own line, writes it one open per record and reads the log back to confirm it landed ([`signal`], [`kmsg`]):
//!   - [`inject_xid`]: an NVIDIA XID line for the GPU named by its minor number ([`gpus`]), with the catalogue's
//!     text or an NVLink5 subcode line, after the driver's PCI → UUID mapping line when the UUID is known ([`xid`]);
//!   - [`inject_fallen_off`]: the driver's "fallen off the bus" message without an XID ([`fallen`]);
//!   - [`inject_sxid`]: an NVSwitch SXid ([`sxid`]);
//!   - [`inject_nic`]: an mlx5_core or EFA driver error for an RDMA / network device ([`nic`]);
//! - [`arm`]: arm or disarm the node: the policy file every shimmed pod's CUDA shim reads at start-up;
//! - the process commands (`faultline node ps`, `faultline node status --pid <host pid>`, …) are the ordinary ones
//!   with container discovery forced on (see [`faultline_core::targets::force_container_discovery`]): segments are found
//!   through `/proc/<pid>/root/dev/shm` and named by host pid.
//!
//! # The line format
//!
//! Every record starts `kernel: ` and ends ` faultline-fault=<id>`; the XID line shows why. The record written is `<3>kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off
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
mod error;
pub mod fallen;
pub mod gpus;
pub mod kmsg;
pub mod nic;
pub mod signal;
pub mod sxid;
pub mod xid;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub use error::NodeError;
pub use fallen::{inject_fallen_off, FallenOffInjection};
use gpus::PciAddress;
pub use nic::{inject_nic, NicEvent, NicInjection};
pub use signal::{SignalKind, SignalReport};
pub use sxid::{inject_sxid, SxidInjection};
pub use xid::{inject_xid, xid_line, Nvl5Options, XidInjection, XidReport};

/// The syslog identifier written in front of `NVRM:` (see the module docs).
pub const IDENTIFIER: &str = "kernel";

/// The syslog level of the record (`<3>`, error), as the seed's injector used.
pub const LEVEL: u8 = 3;

/// The marker in front of the fault id at the end of each line.
pub const FAULT_MARKER: &str = "faultline-fault=";

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

/// What journald makes of a userspace kmsg record as `/dev/kmsg` returns it: `(SYSLOG_IDENTIFIER, MESSAGE)`.
/// Mirrors systemd's `dev_kmsg_record`: the identifier is parsed first (`syslog_parse_identifier`: leading
/// whitespace is skipped; if the first word ends in `:`, it, minus a `[pid]` suffix, is the identifier and is removed
/// together with one following space), then the message is unescaped ([`kmsg::unescape`]: a `\x0a` inside a record
/// becomes the newline the driver printed).
pub fn journald_view(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let word_len = trimmed.find([' ', '\t', '\n', '\r']).unwrap_or(trimmed.len());
    let word = &trimmed[..word_len];
    let Some(identifier) = word.strip_suffix(':').filter(|w| !w.is_empty()) else {
        return (None, kmsg::unescape(text));
    };
    let identifier = match identifier.strip_suffix(']').and_then(|w| w.rfind('[').map(|i| &w[..i])) {
        Some(without_pid) => without_pid,
        None => identifier,
    };
    let mut rest = &trimmed[word_len..];
    if rest.starts_with([' ', '\t', '\n', '\r']) {
        rest = &rest[1..];
    }
    (Some(identifier.to_string()), kmsg::unescape(rest))
}

/// A new fault id: `fl-` and 12 hex digits from the clock and the pid (unique enough to find one record).
pub fn new_fault_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("fl-{:012x}", mixed & 0xffff_ffff_ffff)
}

pub(crate) fn checked_field<'a>(what: &'static str, value: &'a str) -> Result<&'a str, NodeError> {
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
        assert_eq!(
            journald_view("kernel: NVRM: The NVIDIA GPU 0000:3b:00.0\\x0aNVRM: (PCI ID"),
            (Some("kernel".into()), "NVRM: The NVIDIA GPU 0000:3b:00.0\nNVRM: (PCI ID".into())
        );
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
