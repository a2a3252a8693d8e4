//! The undo record in [`RECORD_ANNOTATION`]: its format, the editor that fills it while enable edits the object,
//! replaying it backwards, and the shims it lists.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use shm_proto::Kind;

use super::json_path::{keys, lookup, pointer, put, remove, Seg};
use super::workload::{not_a, ShimInfo, Workload};
use super::RECORD_ANNOTATION;
use crate::ClusterError;

/// The format of [`RECORD_ANNOTATION`]; another one is refused rather than guessed at.
pub(super) const RECORD_VERSION: u32 = 1;

/// The shim on `workload`, if any (`None` also when the record cannot be read: [`disable_patch`](super::disable_patch)
/// says why).
pub fn shimmed(object: &Value, workload: &Workload) -> Option<ShimInfo> {
    let record = read_record(object, workload).ok()??;
    record.entry(workload.service()).and_then(|entry| entry.info(&record.fault_id))
}

/// Every shim on `object` (several for a DynamoGraphDeployment with several services shimmed).
pub fn shims(object: &Value) -> Vec<ShimInfo> {
    match read_record(object, &"the object") {
        Ok(Some(record)) => record.shims.iter().filter_map(|e| e.info(&record.fault_id)).collect(),
        _ => Vec::new(),
    }
}

/// [`RECORD_ANNOTATION`]'s content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Record {
    pub(super) version: u32,
    pub(super) fault_id: String,
    /// The workload's ledger labels and annotations.
    pub(super) meta: Vec<Change>,
    /// One per shimmed pod template.
    pub(super) shims: Vec<Entry>,
}

impl Record {
    pub(super) fn entry(&self, service: Option<&str>) -> Option<&Entry> {
        self.shims.iter().find(|e| e.service.as_deref() == service)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) service: Option<String>,
    pub(super) kind: String,
    pub(super) passthrough: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) xid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) node: Option<String>,
    pub(super) containers: Vec<String>,
    pub(super) changes: Vec<Change>,
}

impl Entry {
    fn info(&self, fault_id: &str) -> Option<ShimInfo> {
        Some(ShimInfo {
            fault_id: fault_id.to_string(),
            service: self.service.clone(),
            kind: Kind::from_name(&self.kind)?,
            passthrough: self.passthrough,
            xid: self.xid,
            node: self.node.clone(),
            containers: self.containers.clone(),
        })
    }
}

/// One changed path: `was` its original value (absent: it had none), or `created` (a map or list enable made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Change {
    path: Vec<Seg>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    was: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    created: bool,
}

/// `"was": null` is a value (the key held null), not an absence.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The record on `object` (`what` names it in messages).
pub(super) fn read_record(object: &Value, what: &dyn fmt::Display) -> Result<Option<Record>, ClusterError> {
    let Some(text) = object.pointer(&format!("/metadata/annotations/{}", RECORD_ANNOTATION.replace('/', "~1"))) else {
        return Ok(None);
    };
    let unreadable = |why: String| {
        ClusterError::Usage(format!(
            "{what}: annotation {RECORD_ANNOTATION} is not a shim record this faultline can read ({why}); restore \
             the pod template by hand and remove the annotation"
        ))
    };
    let text = text.as_str().ok_or_else(|| unreadable("not a string".into()))?;
    let record: Record = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
    if record.version != RECORD_VERSION {
        return Err(unreadable(format!("version {}, expected {RECORD_VERSION}", record.version)));
    }
    Ok(Some(record))
}

pub(super) fn write_record(object: &mut Value, record: &Record) {
    let text = serde_json::to_string(record).unwrap_or_default();
    put(object, &keys(&["metadata", "annotations", RECORD_ANNOTATION]), json!(text));
}

/// Undoes `changes`, last first.
pub(super) fn restore(root: &mut Value, changes: &[Change]) {
    for change in changes.iter().rev() {
        if change.created {
            let empty = lookup(root, &change.path).is_some_and(|v| match v {
                Value::Object(map) => map.is_empty(),
                Value::Array(list) => list.is_empty(),
                _ => false,
            });
            if empty {
                remove(root, &change.path);
            }
        } else if let Some(was) = &change.was {
            put(root, &change.path, was.clone());
        } else {
            remove(root, &change.path);
        }
    }
}

/// Edits an object and records, for each path it sets or creates, what was there first.
pub(super) struct Editor<'a> {
    root: &'a mut Value,
    workload: &'a Workload,
    changes: Vec<Change>,
}

impl<'a> Editor<'a> {
    pub(super) fn new(root: &'a mut Value, workload: &'a Workload) -> Editor<'a> {
        Editor { root, workload, changes: Vec::new() }
    }

    pub(super) fn take(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Makes `path` an object or list (as `empty` is), creating what is missing on the way.
    pub(super) fn ensure(&mut self, path: &[Seg], empty: Value) -> Result<(), ClusterError> {
        for depth in 1..=path.len() {
            let here = &path[..depth];
            let wanted = match path.get(depth) {
                Some(Seg::Key(_)) => json!({}),
                Some(Seg::Named { .. }) => json!([]),
                None => empty.clone(),
            };
            match lookup(self.root, here) {
                Some(Value::Null) => self.set(here, wanted),
                Some(value) if std::mem::discriminant(value) == std::mem::discriminant(&wanted) => {}
                Some(_) => {
                    return Err(not_a(self.workload, here, if wanted.is_array() { "a list" } else { "an object" }))
                }
                None => {
                    if matches!(here.last(), Some(Seg::Named { .. })) {
                        // Items are only ever set whole (`set`), never made up on the way.
                        return Err(ClusterError::Usage(format!("{}: {} is missing", self.workload, pointer(here))));
                    }
                    put(self.root, here, wanted);
                    self.changes.push(Change { path: here.to_vec(), was: None, created: true });
                }
            }
        }
        Ok(())
    }

    /// Sets `path` (its parent exists), recording what it held (undone last first, so setting a path twice is
    /// still undone to its first value).
    pub(super) fn set(&mut self, path: &[Seg], value: Value) {
        let was = lookup(self.root, path).cloned();
        self.changes.push(Change { path: path.to_vec(), was, created: false });
        put(self.root, path, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim_rollout::fixtures::{cuda, decode, deployment, dgd, enabled, stamp, statefulset, FAULT};
    use crate::shim_rollout::{disable_all_patch, disable_patch, enable_patch};

    #[test]
    fn disable_on_what_is_not_shimmed_is_none_and_a_damaged_record_is_an_error() {
        assert_eq!(disable_patch(&deployment(), &Workload::Deployment("vllm".into())).unwrap(), None);
        assert_eq!(disable_patch(&dgd(), &decode()).unwrap(), None);
        assert_eq!(disable_all_patch(&statefulset()).unwrap(), None);
        let patched = enabled(&dgd(), &decode(), &cuda(None));
        let frontend = Workload::Dgd { name: "disagg".into(), service: "Frontend".into() };
        assert_eq!(disable_patch(&patched, &frontend).unwrap(), None, "another service");

        let mut damaged = patched.clone();
        damaged["metadata"]["annotations"][RECORD_ANNOTATION] = json!("{\"version\":1");
        let Err(ClusterError::Usage(message)) = disable_patch(&damaged, &decode()) else { panic!("not refused") };
        assert!(message.contains(RECORD_ANNOTATION) && message.contains("by hand"), "{message}");
        assert_eq!(shimmed(&damaged, &decode()), None);
        let mut future = patched;
        let text = future["metadata"]["annotations"][RECORD_ANNOTATION]
            .as_str()
            .unwrap()
            .replace("\"version\":1", "\"version\":9");
        future["metadata"]["annotations"][RECORD_ANNOTATION] = json!(text);
        assert!(disable_patch(&future, &decode()).is_err());
    }

    #[test]
    fn the_record_is_compact_json_and_the_patch_is_minimal() {
        let workload = Workload::Deployment("vllm".into());
        let patch = enable_patch(&deployment(), &workload, &cuda(None), &stamp(FAULT)).unwrap();
        let record = patch["metadata"]["annotations"][RECORD_ANNOTATION].as_str().unwrap();
        let parsed: Value = serde_json::from_str(record).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), record, "compact");
        assert_eq!(parsed["faultId"], FAULT);
        let spec_keys: Vec<&String> = patch["spec"]["template"]["spec"].as_object().unwrap().keys().collect();
        assert_eq!(spec_keys, ["containers", "volumes", "affinity"]);
        assert_eq!(
            patch["spec"]["template"]["spec"]["affinity"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["nodeAffinity"],
            "pod anti-affinity not even sent"
        );
    }
}
