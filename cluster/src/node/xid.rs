//! `faultline node xid`: the XID line, as the NVIDIA driver prints it, for the GPU named by its minor number, with
//! the catalogue's text — shm-proto's [`shm_proto::xid`] (names, mnemonics, kernel-log texts, severities, the CUDA
//! shim's presets, [`DEFAULT_XID`]), shared with the CUDA shim — plus the JSON form `--list` prints.
//!
//! - **Standard XIDs**: `NVRM: Xid (PCI:0000:3b:00): 79, pid=…, name=…, GPU has fallen off the bus.`
//! - **NVLink5 XIDs** (144–150, [`NVLINK5`]): the driver prints a subcode line instead of a text, without `pid=` /
//!   `name=`: `NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT Fatal XC0 i0 Link 09 (0x000001c6 0x00000000
//!   0x00000000 0x00000000 0x00000000 0x00000000)` — subcode, severity word, cross-contain and injected flags, the
//!   link, then IntrInfo, Error Status and four debug words. NVSentinel decodes IntrInfo and Error Status against
//!   NVIDIA's "XID 144-150 Decode" sheet; `--subcode`, `--link`, `--intrinfo`, `--error-status` override the
//!   catalogue's representative row ([`Nvl5`]).
//! - **The GPU's UUID**: NVSentinel names the GPU of an XID by UUID only after it saw the driver's mapping line
//!   `NVRM: GPU at PCI:0000:3b:00: GPU-<uuid>`. When the UUID is known (the driver's `information` file, or
//!   `--uuid`) that line is written first, as the driver does before its XID report.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::gpus::{self, PciAddress};
use super::signal::{self, Line};
use super::{checked_field, new_fault_id, resolve_pci, NodeError, LEVEL};

pub use shm_proto::xid::{lookup, Nvl5, Severity, XidInfo, CATALOG, DEFAULT_XID, NVLINK5, UNKNOWN_NAME};

/// One catalogue entry as `faultline node xid --list` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// The XID number.
    pub xid: u32,
    /// NVIDIA's mnemonic.
    pub mnemonic: &'static str,
    /// A short name, e.g. "GPU has fallen off the bus".
    pub name: &'static str,
    /// The text the driver prints after `pid=…, name=…, ` (for 144–150: the default subcode line's subcode).
    pub message: &'static str,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: &'static str,
}

impl From<&XidInfo> for CatalogEntry {
    fn from(info: &XidInfo) -> Self {
        CatalogEntry {
            xid: info.xid,
            mnemonic: info.mnemonic,
            name: info.name,
            message: info.message,
            severity: info.severity.name(),
        }
    }
}

/// The catalogue, for JSON.
pub fn catalog() -> Vec<CatalogEntry> {
    CATALOG.iter().map(CatalogEntry::from).collect()
}

/// The NVLink5 fields given on the command line (each `None`: the catalogue's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nvl5Options {
    /// `--subcode`, e.g. `NETIR_LINK_EVT`.
    pub subcode: Option<String>,
    /// `--link`.
    pub link: Option<u32>,
    /// `--intrinfo`.
    pub intrinfo: Option<u32>,
    /// `--error-status`.
    pub error_status: Option<u32>,
}

impl Nvl5Options {
    /// Whether any field was given.
    pub fn any(&self) -> bool {
        self.subcode.is_some() || self.link.is_some() || self.intrinfo.is_some() || self.error_status.is_some()
    }

    /// The first option given, by its flag (for "applies to 144–150 only").
    fn first_flag(&self) -> Option<&'static str> {
        [
            (self.subcode.is_some(), "--subcode"),
            (self.link.is_some(), "--link"),
            (self.intrinfo.is_some(), "--intrinfo"),
            (self.error_status.is_some(), "--error-status"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// The NVLink5 fields as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nvl5Fields {
    /// The subcode word.
    pub subcode: String,
    /// `Fatal` or `Nonfatal`.
    pub fatal: bool,
    /// The link.
    pub link: u32,
    /// IntrInfo.
    pub intrinfo: u32,
    /// Error Status.
    pub error_status: u32,
}

impl Nvl5Fields {
    /// The catalogue's defaults for `xid` with `options` on top; checks what was given.
    pub fn resolve(xid: u32, options: &Nvl5Options) -> Result<Option<Nvl5Fields>, NodeError> {
        let Some(defaults) = lookup(xid).and_then(XidInfo::nvlink5) else {
            return match options.first_flag() {
                Some(option) => Err(NodeError::NotNvlink5 { option, xid }),
                None => Ok(None),
            };
        };
        let subcode = match &options.subcode {
            Some(subcode) => check_subcode(subcode)?.to_string(),
            None => defaults.subcode.to_string(),
        };
        let link = options.link.unwrap_or(0);
        if link > MAX_LINK {
            return Err(NodeError::BadValue { what: "--link", value: link.to_string(), expected: "a link 0–63" });
        }
        Ok(Some(Nvl5Fields {
            subcode,
            fatal: defaults.fatal,
            link,
            intrinfo: options.intrinfo.unwrap_or(defaults.intrinfo),
            error_status: options.error_status.unwrap_or(defaults.error_status),
        }))
    }

    /// `RLW_REMAP Fatal XC0 i0 Link 10 (0x00000082 0x00000040 0x00000000 0x00000000 0x00000000 0x00000000)`.
    pub fn text(&self) -> String {
        format!(
            "{} {} XC0 i0 Link {:02} (0x{:08x} 0x{:08x} 0x00000000 0x00000000 0x00000000 0x00000000)",
            self.subcode,
            if self.fatal { "Fatal" } else { "Nonfatal" },
            self.link,
            self.intrinfo,
            self.error_status
        )
    }
}

/// The highest NVLink number `--link` takes (NVLink5 GPUs have 18; switches more).
pub const MAX_LINK: u32 = 63;

/// Checks a subcode word: letters, digits and `_`, at most 32 characters (NVSentinel reads it as `\w+`).
pub fn check_subcode(text: &str) -> Result<&str, NodeError> {
    let ok = !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(text).ok_or_else(|| NodeError::BadValue {
        what: "--subcode",
        value: text.to_string(),
        expected: "a subcode word (letters, digits and _, e.g. NETIR_LINK_EVT)",
    })
}

/// Parses a register value: `0x…` hexadecimal or decimal, 32 bits.
pub fn parse_register(what: &'static str, text: &str) -> Result<u32, NodeError> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| NodeError::BadValue {
        what,
        value: text.to_string(),
        expected: "a 32-bit register value (0x… or decimal)",
    })
}

/// Checks a GPU UUID as the driver prints it: `GPU-` and 8-4-4-4-12 hexadecimal digits.
pub fn check_uuid(text: &str) -> Result<&str, NodeError> {
    let groups: Vec<&str> = text.strip_prefix("GPU-").unwrap_or_default().split('-').collect();
    let lengths = groups.iter().map(|g| g.len()).collect::<Vec<_>>();
    let hex = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    (lengths == [8, 4, 4, 4, 12] && hex).then_some(text).ok_or_else(|| NodeError::BadValue {
        what: "--uuid",
        value: text.to_string(),
        expected: "a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    })
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
    /// The GPU's UUID, used when the driver cannot be asked (or to double-check it).
    pub uuid: Option<String>,
    /// `pid=` in the line (the process that "hit" the error).
    pub pid: Option<u32>,
    /// `name=` in the line.
    pub process_name: Option<String>,
    /// The NVLink5 fields (XIDs 144–150 only).
    pub nvl5: Nvl5Options,
    /// Inject an XID outside the catalog.
    pub force: bool,
    /// Resolve and format, but write nothing.
    pub dry_run: bool,
    /// The fault id to put in the line (a new one when `None`).
    pub fault_id: Option<String>,
    /// The NVIDIA driver directory (normally [`gpus::DEFAULT_DRIVER_DIR`]).
    pub driver_dir: PathBuf,
    /// The kernel log device (normally [`super::kmsg::DEV_KMSG`]).
    pub kmsg: PathBuf,
}

impl XidInjection {
    /// Injection of `xid` on GPU `gpu` with the real paths and no options.
    pub fn new(xid: u32, gpu: u32) -> Self {
        XidInjection {
            xid,
            gpu,
            pci: None,
            uuid: None,
            pid: None,
            process_name: None,
            nvl5: Nvl5Options::default(),
            force: false,
            dry_run: false,
            fault_id: None,
            driver_dir: PathBuf::from(gpus::DEFAULT_DRIVER_DIR),
            kmsg: PathBuf::from(super::kmsg::DEV_KMSG),
        }
    }
}

/// What `faultline node xid` did (printed as JSON; `faultline cluster xid inject` parses it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The GPU's UUID, when known (then the mapping line was written first).
    #[serde(default)]
    pub uuid: Option<String>,
    /// `driver` or `--uuid`, when the UUID is known.
    #[serde(default)]
    pub uuid_source: Option<String>,
    /// The mapping line `kernel: NVRM: GPU at PCI:…: GPU-<uuid> …`, when written.
    #[serde(default)]
    pub mapping_line: Option<String>,
    /// The NVLink5 fields, for XIDs 144–150.
    #[serde(default)]
    pub nvl5: Option<Nvl5Fields>,
    /// The XID record's text as written (without the `<3>` level prefix).
    pub line: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Whether the record(s) were read back from the kernel log.
    pub confirmed: bool,
    /// The kernel's sequence number of the XID record.
    pub kmsg_seq: Option<u64>,
    /// The XID record's syslog priority as read back (facility × 8 + level; 11 for a userspace `<3>`).
    pub kmsg_priority: Option<u32>,
}

/// Carries out `request`: resolve the PCI address and UUID, format the line(s), write them, read them back.
pub fn inject_xid(request: &XidInjection) -> Result<XidReport, NodeError> {
    let info = lookup(request.xid);
    if info.is_none() && !request.force {
        return Err(NodeError::UnknownXid(request.xid));
    }
    let nvl5 = Nvl5Fields::resolve(request.xid, &request.nvl5)?;
    let process_name = request.process_name.as_deref().map(|n| checked_field("--name", n)).transpose()?;
    let given_uuid = request.uuid.as_deref().map(check_uuid).transpose()?;
    let fault_id = match &request.fault_id {
        Some(id) => checked_field("--fault-id", id)?.to_string(),
        None => new_fault_id(),
    };
    let (pci, pci_source) = resolve_pci(&request.driver_dir, request.gpu, request.pci.as_deref())?;
    let driver_uuid = gpus::resolve(&request.driver_dir, request.gpu).ok().and_then(|gpu| gpu.uuid);
    let (uuid, uuid_source) = match (driver_uuid, given_uuid) {
        (Some(actual), Some(given)) if !actual.eq_ignore_ascii_case(given) => {
            return Err(NodeError::UuidMismatch { gpu: request.gpu, given: given.to_string(), actual });
        }
        (Some(actual), _) => (Some(actual), Some("driver")),
        (None, Some(given)) => (Some(given.to_string()), Some("--uuid")),
        (None, None) => (None, None),
    };
    let detail = match &nvl5 {
        Some(fields) => fields.text(),
        None => info.map_or("Xid injected by faultline", |i| i.message).to_string(),
    };
    let show_process = nvl5.is_none() || request.pid.is_some() || process_name.is_some();
    let process = show_process.then_some((request.pid, process_name));
    let line = Line::new(LEVEL, &xid_message(request.xid, &pci, process, &detail), &fault_id);
    let mapping = uuid.as_deref().map(|uuid| Line::new(LEVEL, &mapping_message(&pci, uuid), &fault_id));
    let mut report = XidReport {
        fault_id: fault_id.clone(),
        xid: request.xid,
        xid_name: info.map_or(UNKNOWN_NAME, |i| i.name).to_string(),
        severity: info.map_or("unknown", |i| i.severity.name()).to_string(),
        gpu: request.gpu,
        pci: pci.to_string(),
        pci_source: pci_source.to_string(),
        uuid,
        uuid_source: uuid_source.map(str::to_string),
        mapping_line: mapping.as_ref().map(|m| m.text.clone()),
        nvl5,
        line: line.text.clone(),
        dry_run: request.dry_run,
        confirmed: false,
        kmsg_seq: None,
        kmsg_priority: None,
    };
    if request.dry_run {
        return Ok(report);
    }
    let lines: Vec<Line> = mapping.into_iter().chain([line]).collect();
    let back = signal::write_confirmed(&request.kmsg, &lines, &fault_id)?;
    let xid_record = back.records.iter().find(|r| r.text.contains("NVRM: Xid "));
    report.confirmed = true;
    report.kmsg_seq = xid_record.map(|r| r.seq);
    report.kmsg_priority = xid_record.map(|r| r.priority);
    Ok(report)
}

/// The driver's XID message: `NVRM: Xid (PCI:0000:3b:00): 79, pid=…, name=…, <detail>`; `process` is `None` for
/// a line without `pid=` / `name=` (the NVLink5 subcode lines).
pub fn xid_message(xid: u32, pci: &PciAddress, process: Option<(Option<u32>, Option<&str>)>, detail: &str) -> String {
    let prefix = format!("NVRM: Xid (PCI:{}): {xid}", pci.xid_form());
    match process {
        Some((pid, name)) => {
            let pid = pid.map_or_else(|| "'<unknown>'".to_string(), |p| p.to_string());
            format!("{prefix}, pid={pid}, name={}, {detail}", name.unwrap_or("<unknown>"))
        }
        None => format!("{prefix}, {detail}"),
    }
}

/// The driver's PCI → UUID line: `NVRM: GPU at PCI:0000:3b:00: GPU-<uuid>`.
pub fn mapping_message(pci: &PciAddress, uuid: &str) -> String {
    format!("NVRM: GPU at PCI:{}: {uuid}", pci.xid_form())
}

/// The record text (without the level prefix) of a standard XID: `kernel: NVRM: Xid (PCI:0000:3b:00): 79,
/// pid=…, name=…, <text> faultline-fault=<id>`.
pub fn xid_line(xid: u32, pci: &PciAddress, pid: Option<u32>, process_name: Option<&str>, fault_id: &str) -> String {
    let message = lookup(xid).map_or("Xid injected by faultline", |info| info.message);
    Line::new(LEVEL, &xid_message(xid, pci, Some((pid, process_name)), message), fault_id).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_has_every_xid_the_issues_name_once_and_in_order() {
        let xids: Vec<u32> = CATALOG.iter().map(|info| info.xid).collect();
        assert!(xids.windows(2).all(|w| w[0] < w[1]), "{xids:?}");
        for wanted in [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120, 140, 144, 150] {
            assert!(xids.contains(&wanted), "{wanted}");
        }
        assert_eq!(lookup(79).unwrap().severity, Severity::Critical);
        assert_eq!(lookup(7), None);
    }

    #[test]
    fn the_json_form_has_the_entry_fields_and_a_lower_case_severity() {
        let json = serde_json::to_value(catalog()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), CATALOG.len());
        let at = CATALOG.iter().position(|info| info.xid == 79).unwrap();
        assert_eq!(
            json[at],
            serde_json::json!({"xid": 79, "mnemonic": "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS",
                               "name": "GPU has fallen off the bus", "message": "GPU has fallen off the bus.",
                               "severity": "critical"})
        );
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
        assert_eq!(mapping_message(&pci, "GPU-1"), "NVRM: GPU at PCI:0000:3b:00: GPU-1");
    }

    #[test]
    fn nvlink5_fields_default_from_the_catalogue_and_apply_to_144_to_150_only() {
        let fields = Nvl5Fields::resolve(149, &Nvl5Options::default()).unwrap().unwrap();
        assert_eq!(
            fields.text(),
            "NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x000001c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)"
        );
        let given = Nvl5Options {
            subcode: Some("RLW_REMAP".into()),
            link: Some(10),
            intrinfo: Some(0x82),
            error_status: Some(0x40),
        };
        let fields = Nvl5Fields::resolve(147, &given).unwrap().unwrap();
        assert!(fields.text().starts_with("RLW_REMAP Nonfatal XC0 i0 Link 10 (0x00000082 0x00000040 "));
        assert!(Nvl5Fields::resolve(79, &Nvl5Options::default()).unwrap().is_none());
        let error = Nvl5Fields::resolve(79, &given).unwrap_err();
        assert_eq!(error.to_string(), "--subcode applies to the NVLink5 XIDs 144–150 only, not to XID 79");
        let far = Nvl5Options { link: Some(64), ..Nvl5Options::default() };
        assert!(Nvl5Fields::resolve(145, &far).is_err());
        assert!(check_subcode("NETIR LINK").is_err() && check_subcode("").is_err());
    }

    #[test]
    fn registers_and_uuids_parse_in_the_driver_s_spelling() {
        assert_eq!(parse_register("--intrinfo", "0x025525c6").unwrap(), 0x0255_25c6);
        assert_eq!(parse_register("--intrinfo", "130").unwrap(), 130);
        assert!(parse_register("--intrinfo", "0x1_0000_0000").is_err());
        assert!(parse_register("--intrinfo", "-1").is_err());
        assert!(check_uuid("GPU-3f5a6e2c-0000-4000-8000-000000000001").is_ok());
        for bad in ["3f5a6e2c-0000-4000-8000-000000000001", "GPU-3f5a6e2c", "GPU-zf5a6e2c-0000-4000-8000-000000000001"]
        {
            assert!(check_uuid(bad).is_err(), "{bad}");
        }
    }
}
