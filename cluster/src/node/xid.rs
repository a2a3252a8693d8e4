//! The XID catalogue as the tool uses it: shm-proto's [`shm_proto::xid`] (names, kernel-log texts, severities,
//! the CUDA shim's presets, [`DEFAULT_XID`]), shared with the CUDA shim, plus the JSON form `faultline node xid
//! --list` prints.

use serde::Serialize;

pub use shm_proto::xid::{lookup, Severity, XidInfo, CATALOG, DEFAULT_XID, UNKNOWN_NAME};

/// One catalogue entry as `faultline node xid --list` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// The XID number.
    pub xid: u32,
    /// A short name, e.g. "GPU has fallen off the bus".
    pub name: &'static str,
    /// The text the driver prints after `pid=…, name=…, `.
    pub message: &'static str,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: &'static str,
}

impl From<&XidInfo> for CatalogEntry {
    fn from(info: &XidInfo) -> Self {
        CatalogEntry { xid: info.xid, name: info.name, message: info.message, severity: info.severity.name() }
    }
}

/// The catalogue, for JSON.
pub fn catalog() -> Vec<CatalogEntry> {
    CATALOG.iter().map(CatalogEntry::from).collect()
}

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

    #[test]
    fn the_json_form_has_the_entry_fields_and_a_lower_case_severity() {
        let json = serde_json::to_value(catalog()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), CATALOG.len());
        assert_eq!(
            json[12],
            serde_json::json!({"xid": 79, "name": "GPU has fallen off the bus",
                               "message": "GPU has fallen off the bus.", "severity": "critical"})
        );
    }
}
