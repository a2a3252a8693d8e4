//! The fault ledger: the labels and annotations that make every object faultline creates or changes in a cluster
//! findable, attributable and expirable. The cluster is the record: `faultline cluster faults` lists faults from
//! these labels alone, so nothing is lost when the operator's machine or the dashboard goes away, and
//! `faultline cluster reap` (a CronJob in deploy/) removes what has expired.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{Span, SpanRelativeTo, Timestamp};
use serde::Serialize;

use super::ClusterError;

/// Label on everything faultline creates or changes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "faultline");

/// Label carrying the fault id (one fault may span several objects, e.g. the GPU-failure scenario).
pub const FAULT_ID_LABEL: &str = "faultline.dev/fault-id";

/// Label saying what kind of fault the object is part of ([`FaultKind`]).
pub const FAULT_KIND_LABEL: &str = "faultline.dev/fault-kind";

/// Annotation: when the fault ends (RFC 3339); `faultline cluster reap` removes it after that.
pub const EXPIRES_ANNOTATION: &str = "faultline.dev/expires-at";

/// Annotation: who created the fault (`user@host`).
pub const CREATED_BY_ANNOTATION: &str = "faultline.dev/created-by";

/// Annotation: when the fault was created (RFC 3339).
pub const CREATED_AT_ANNOTATION: &str = "faultline.dev/created-at";

/// Annotation on an injected XID's Event: the XID number (decimal), so readers need not parse the message.
pub const XID_ANNOTATION: &str = "faultline.dev/xid";

/// Annotation on an injected kernel-log signal's Event: `fallen-off`, `sxid` or `nic`.
pub const SIGNAL_ANNOTATION: &str = "faultline.dev/kernel-signal";

/// The label selector that finds everything faultline manages.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}

/// What a ledger entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A NetworkPolicy partition.
    Partition,
    /// A Chaos Mesh NetworkChaos.
    Chaos,
    /// A workload patched to preload a shim.
    Shim,
    /// A node whose CUDA shims fail from start-up (the node policy file).
    ArmedNode,
    /// An XID written into a node's kernel log (an Event; it cannot be undone, only expire).
    Xid,
    /// Another kernel-log signal (GPU fallen off the bus, SXid, NIC driver error; an Event, like an XID).
    KernelSignal,
}

impl FaultKind {
    /// Every kind, in listing order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Partition,
        FaultKind::Chaos,
        FaultKind::Shim,
        FaultKind::ArmedNode,
        FaultKind::Xid,
        FaultKind::KernelSignal,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Chaos => "chaos",
            FaultKind::Shim => "shim",
            FaultKind::ArmedNode => "armed-node",
            FaultKind::Xid => "xid",
            // Ten characters, like `armed-node`: the dashboard's KIND column.
            FaultKind::KernelSignal => "kernel-log",
        }
    }

    /// The kind a label value names.
    pub fn parse(value: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ledger entry one action writes on every object it creates or changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// The fault id (`fl-` and 12 hex digits).
    pub fault_id: String,
    /// What kind of fault.
    pub kind: FaultKind,
    /// `user@host` of whoever ran faultline.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it ends (`None`: until recovered).
    pub expires_at: Option<Timestamp>,
}

impl Stamp {
    /// A new fault of `kind`, created now by this user, ending after `ttl`.
    pub fn new(kind: FaultKind, ttl: Option<Duration>) -> Stamp {
        Stamp::at(kind, crate::node::new_fault_id(), Timestamp::now(), ttl, created_by())
    }

    /// A stamp with every field given (tests, and a scenario that shares one fault id across steps).
    pub fn at(kind: FaultKind, fault_id: String, now: Timestamp, ttl: Option<Duration>, created_by: String) -> Stamp {
        let expires_at = ttl.and_then(|ttl| now.checked_add(ttl).ok());
        Stamp { fault_id, kind, created_by, created_at: now, expires_at }
    }

    /// The same fault, as another kind of object (the GPU-failure scenario: one id, several objects).
    pub fn with_kind(&self, kind: FaultKind) -> Stamp {
        Stamp { kind, ..self.clone() }
    }

    /// The labels to put on an object.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (FAULT_ID_LABEL.to_string(), self.fault_id.clone()),
            (FAULT_KIND_LABEL.to_string(), self.kind.as_str().to_string()),
        ])
    }

    /// The annotations to put on an object.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::from([
            (CREATED_BY_ANNOTATION.to_string(), self.created_by.clone()),
            (CREATED_AT_ANNOTATION.to_string(), self.created_at.to_string()),
        ]);
        if let Some(expires) = self.expires_at {
            annotations.insert(EXPIRES_ANNOTATION.to_string(), expires.to_string());
        }
        annotations
    }

    /// Adds the labels and annotations to `meta` (keeping what is there).
    pub fn apply(&self, meta: &mut ObjectMeta) {
        meta.labels.get_or_insert_with(BTreeMap::new).extend(self.labels());
        meta.annotations.get_or_insert_with(BTreeMap::new).extend(self.annotations());
    }
}

/// A ledger entry read back from an object's labels and annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The fault id.
    pub fault_id: String,
    /// The kind (`None` when the label is missing or unknown, e.g. written by another version).
    pub kind: Option<FaultKind>,
    /// Who.
    pub created_by: Option<String>,
    /// When.
    pub created_at: Option<Timestamp>,
    /// When it ends.
    pub expires_at: Option<Timestamp>,
}

impl Entry {
    /// The entry on an object with `meta`, if faultline manages it.
    pub fn read(meta: &ObjectMeta) -> Option<Entry> {
        let labels = meta.labels.as_ref()?;
        if labels.get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1) {
            return None;
        }
        let fault_id = labels.get(FAULT_ID_LABEL)?.clone();
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        let time = |key: &str| annotation(key).and_then(|t| t.parse::<Timestamp>().ok());
        Some(Entry {
            fault_id,
            kind: labels.get(FAULT_KIND_LABEL).and_then(|k| FaultKind::parse(k)),
            created_by: annotation(CREATED_BY_ANNOTATION),
            created_at: time(CREATED_AT_ANNOTATION),
            expires_at: time(EXPIRES_ANNOTATION),
        })
    }

    /// Whether the fault has ended by `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// `user@host` of whoever runs faultline (in the reaper CronJob: the pod's name).
pub fn created_by() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// Parses a ttl (`90s`, `10m`, `2h`, `1d`, `1h30m`, or plain seconds) with jiff's friendly duration format: a whole
/// number of seconds, more than none and at most 30 days. `name` is how the front end calls the field (`--ttl`, or
/// the dialog's `TTL`).
pub fn parse_ttl(text: &str, name: &str) -> Result<Duration, ClusterError> {
    let bad = || {
        ClusterError::Usage(format!(
            "invalid {name} {text:?}: expected a positive duration such as 90s, 10m, 2h or 1d (at most 30d)"
        ))
    };
    let trimmed = text.trim();
    let seconds = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed.parse::<u64>().map_err(|_| bad())?
    } else {
        let span: Span = trimmed.parse().map_err(|_| bad())?;
        let duration = span.to_duration(SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
        if duration.is_negative() || duration.subsec_nanos() != 0 {
            return Err(bad());
        }
        duration.as_secs().unsigned_abs()
    };
    if seconds == 0 || seconds > 30 * 86_400 {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

/// Time left from `now` until `expires_at` (RFC 3339), as `1h05m`, `9m58s`, `42s`, `expired`, or `-` (no expiry,
/// or one that does not parse): the ENDS IN column of `faultline cluster faults` and of the dashboard.
pub fn remaining(expires_at: Option<&str>, now: Timestamp) -> String {
    let Some(at) = expires_at.and_then(|t| t.parse::<Timestamp>().ok()) else {
        return "-".to_string();
    };
    let seconds = at.as_second() - now.as_second();
    if seconds <= 0 {
        return "expired".to_string();
    }
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ttl: Option<Duration>) -> Stamp {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        Stamp::at(FaultKind::Partition, "fl-0123456789ab".into(), now, ttl, "alice@laptop".into())
    }

    #[test]
    fn a_stamp_reads_back_as_the_same_entry() {
        let stamp = stamp(Some(Duration::from_secs(600)));
        let mut meta = ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), "worker".to_string())])),
            ..ObjectMeta::default()
        };
        stamp.apply(&mut meta);
        assert_eq!(meta.labels.as_ref().unwrap()["app"], "worker", "existing labels are kept");
        let entry = Entry::read(&meta).expect("a managed object");
        assert_eq!(entry.fault_id, "fl-0123456789ab");
        assert_eq!(entry.kind, Some(FaultKind::Partition));
        assert_eq!(entry.created_by.as_deref(), Some("alice@laptop"));
        assert_eq!(entry.expires_at.unwrap().to_string(), "2026-11-22T10:10:00Z");
        assert!(!entry.expired("2026-11-22T10:09:59Z".parse().unwrap()));
        assert!(entry.expired("2026-11-22T10:10:00Z".parse().unwrap()));
    }

    #[test]
    fn without_a_ttl_nothing_expires_and_unmanaged_objects_are_not_entries() {
        let mut meta = ObjectMeta::default();
        stamp(None).apply(&mut meta);
        let entry = Entry::read(&meta).unwrap();
        assert!(!entry.expired("2100-01-01T00:00:00Z".parse().unwrap()));
        assert!(!meta.annotations.unwrap().contains_key(EXPIRES_ANNOTATION));
        assert_eq!(Entry::read(&ObjectMeta::default()), None);
    }

    #[test]
    fn ttls() {
        let ttl = |text| parse_ttl(text, "--ttl");
        assert_eq!(ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(ttl("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(ttl("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(ttl("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(ttl("45").unwrap(), Duration::from_secs(45));
        assert_eq!(ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(ttl("1.5h").unwrap(), Duration::from_secs(5400), "jiff's fractions of a larger unit");
        for bad in ["", "0", "0m", "-5m", "10x", "m", "1.5s", "31d", "99999999999999999999"] {
            let error = ttl(bad).unwrap_err().to_string();
            assert!(error.contains("invalid --ttl"), "{bad}: {error}");
        }
        assert!(parse_ttl("0s", "TTL").unwrap_err().to_string().starts_with("invalid TTL \"0s\""));
    }

    #[test]
    fn remaining_counts_down_to_expired() {
        let now: Timestamp = "2026-01-02T03:00:00Z".parse().unwrap();
        let at = |t: &str| remaining(Some(t), now);
        assert_eq!(at("2026-01-02T04:05:09Z"), "1h05m");
        assert_eq!(at("2026-01-02T03:09:58Z"), "9m58s");
        assert_eq!(at("2026-01-02T03:00:42Z"), "42s");
        assert_eq!(at("2026-01-02T03:00:00Z"), "expired");
        assert_eq!(at("2026-01-01T00:00:00Z"), "expired");
        assert_eq!(remaining(None, now), "-");
        assert_eq!(at("tomorrow"), "-");
    }
}
