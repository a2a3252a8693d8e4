//! The fault ledger, read back from the cluster: `faultline cluster faults` lists every object faultline created
//! or changed (by the labels [`ledger::Stamp`] puts on them — nothing is kept on the operator's machine),
//! `faultline cluster recover <id>|--all` undoes them, and `faultline cluster reap` undoes exactly those whose
//! expiry has passed (deploy/ runs it every minute, so faults end even if the operator's machine dies).
//!
//! Undoing is idempotent: a partition or chaos object already gone, a workload already restored, a node already
//! disarmed all count as recovered. An XID or another kernel-log signal cannot be taken back: its Event is listed as
//! history and expires on its own (NVSentinel's cordon, if any, is the cluster's own reaction and stays).

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::arm;
use super::exec::PodExec;
use super::kube_api::{KubeApi, ObjectType};
use super::ledger::{self, Entry, FaultKind};
use super::shim_rollout;
use super::ClusterError;
use super::{signal_inject, xid_inject};

/// The object types that carry ledger entries, in listing order.
pub const LEDGER_TYPES: [ObjectType; 6] = [
    ObjectType::NETWORK_POLICY,
    ObjectType::NETWORK_CHAOS,
    ObjectType::DEPLOYMENT,
    ObjectType::STATEFUL_SET,
    ObjectType::DYNAMO_GRAPH_DEPLOYMENT,
    ObjectType::CONFIG_MAP,
];

/// One object of one fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// The fault id.
    pub fault_id: String,
    /// What kind of fault (`None`: a label this version does not know).
    pub kind: Option<FaultKind>,
    /// The object's kind (`NetworkPolicy`, `Deployment`, `ConfigMap`, `Event`, …).
    pub object_kind: String,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// What it does, in words.
    pub summary: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: Option<String>,
    /// When it ends.
    pub expires_at: Option<String>,
    /// Whether it has ended (and `reap` will undo it).
    pub expired: bool,
    /// The object as listed.
    #[serde(skip)]
    pub object: Value,
}

/// What `faults` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Listing {
    /// Every ledger object, oldest first.
    pub faults: Vec<Fault>,
    /// What could not be looked at, and why (e.g. Chaos Mesh not installed).
    pub notes: Vec<String>,
}

/// Lists the ledger in `namespace` (all namespaces when `None`; armed nodes and XID events are always listed from
/// the agent's namespace).
pub async fn list(api: &KubeApi, namespace: Option<&str>, now: Timestamp) -> Result<Listing, ClusterError> {
    let mut listing = Listing::default();
    for object_type in LEDGER_TYPES {
        let place = if object_type == ObjectType::CONFIG_MAP { Some(api.namespace()) } else { namespace };
        let objects = match api.list_managed(object_type, place).await {
            Ok(objects) => objects,
            Err(ClusterError::MissingCrd { kind, group, .. }) => {
                listing.notes.push(format!("{kind} ({group}) is not installed: none listed"));
                continue;
            }
            Err(other) => return Err(other),
        };
        for object in objects {
            let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                serde_json::from_value(object["metadata"].clone()).unwrap_or_default();
            let Some(entry) = Entry::read(&meta) else { continue };
            let summary = summarize(object_type, &object);
            listing.faults.push(fault(&entry, object_type.kind, &meta, summary, object, now));
        }
    }
    for reason in [xid_inject::EVENT_REASON, signal_inject::EVENT_REASON] {
        for event in api.list_events(reason).await? {
            let Some(entry) = Entry::read(&event.metadata) else { continue };
            let summary = event.message.clone().unwrap_or_default();
            let object = serde_json::to_value(&event).unwrap_or_default();
            listing.faults.push(fault(&entry, "Event", &event.metadata, summary, object, now));
        }
    }
    listing.faults.sort_by(|a, b| (&a.created_at, &a.fault_id).cmp(&(&b.created_at, &b.fault_id)));
    Ok(listing)
}

fn fault(
    entry: &Entry,
    object_kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    summary: String,
    object: Value,
    now: Timestamp,
) -> Fault {
    Fault {
        fault_id: entry.fault_id.clone(),
        kind: entry.kind,
        object_kind: object_kind.to_string(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
        summary,
        created_by: entry.created_by.clone(),
        created_at: entry.created_at.map(|t| t.to_string()),
        expires_at: entry.expires_at.map(|t| t.to_string()),
        expired: entry.expired(now),
        object,
    }
}

fn summarize(object_type: ObjectType, object: &Value) -> String {
    let labels = |selector: &Value| -> String {
        selector
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>())
            .unwrap_or_default()
            .join(",")
    };
    match object_type {
        ObjectType::NETWORK_POLICY => {
            let types: Vec<&str> = object["spec"]["policyTypes"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("partition of pods {} ({})", labels(&object["spec"]["podSelector"]["matchLabels"]), types.join("+"))
        }
        ObjectType::NETWORK_CHAOS => format!(
            "Chaos Mesh {} of pods {} ({})",
            object["spec"]["action"].as_str().unwrap_or("?"),
            labels(&object["spec"]["selector"]["labelSelectors"]),
            object["spec"]["direction"].as_str().unwrap_or("to"),
        ),
        ObjectType::CONFIG_MAP => arm::record_summary(object),
        _ => {
            let shims: Vec<String> = shim_rollout::shims(object)
                .iter()
                .map(|shim| {
                    let mut text = format!("{} shim", shim.kind.name());
                    if let Some(service) = &shim.service {
                        text.push_str(&format!(" in service {service}"));
                    }
                    text.push_str(if shim.passthrough { ", passthrough" } else { ", faults on" });
                    if let Some(xid) = shim.xid {
                        text.push_str(&format!(", XID {xid}"));
                    }
                    if let Some(node) = &shim.node {
                        text.push_str(&format!(", pinned to node {node}"));
                    }
                    text
                })
                .collect();
            if shims.is_empty() {
                "labelled by faultline, but no shim record (edited by hand?)".to_string()
            } else {
                shims.join("; ")
            }
        }
    }
}

/// Which faults to undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// Every object of this fault id.
    Id(String),
    /// Everything.
    All,
    /// Everything whose expiry has passed.
    Expired,
}

/// What was done to one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovered {
    /// The fault.
    pub fault_id: String,
    /// The object's kind.
    pub object_kind: String,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// What happened: `deleted`, `restored`, `disarmed`, `already gone`, `cannot be undone` ….
    pub outcome: String,
}

/// Undoes the faults `which` selects (see the module docs); `progress` hears about each object as it is done.
/// An id that names nothing left is not an error (recovering twice is fine: the answer is empty); an id that
/// cannot be a fault id is (exit 2).
pub async fn recover(
    api: &KubeApi,
    exec: &impl PodExec,
    namespace: Option<&str>,
    which: &Which,
    now: Timestamp,
    progress: &mut (dyn FnMut(&Recovered) + Send),
) -> Result<Vec<Recovered>, ClusterError> {
    let listing = list(api, namespace, now).await?;
    let chosen: Vec<&Fault> = listing
        .faults
        .iter()
        .filter(|f| match which {
            Which::Id(id) => &f.fault_id == id,
            Which::All => true,
            Which::Expired => f.expired,
        })
        .collect();
    if let Which::Id(id) = which {
        check_fault_id(id)?;
    }
    let mut done = Vec::new();
    for fault in chosen {
        let outcome = undo(api, exec, fault).await?;
        let recovered = Recovered {
            fault_id: fault.fault_id.clone(),
            object_kind: fault.object_kind.clone(),
            namespace: fault.namespace.clone(),
            name: fault.name.clone(),
            outcome,
        };
        progress(&recovered);
        done.push(recovered);
    }
    Ok(done)
}

async fn undo(api: &KubeApi, exec: &impl PodExec, fault: &Fault) -> Result<String, ClusterError> {
    let namespace = fault.namespace.as_deref().unwrap_or_default();
    let object_type = LEDGER_TYPES.into_iter().find(|t| t.kind == fault.object_kind);
    let gone = |deleted: bool| if deleted { "deleted" } else { "already gone" }.to_string();
    match object_type {
        Some(t @ (ObjectType::NETWORK_POLICY | ObjectType::NETWORK_CHAOS)) => {
            Ok(gone(api.delete(t, namespace, &fault.name).await?))
        }
        Some(ObjectType::CONFIG_MAP) => {
            let disarmed = arm::disarm_node(api, exec, &fault.object).await?;
            Ok(match disarmed.agent {
                Some(report) if report.armed => format!(
                    "record removed; node {} stays armed by fault {}",
                    disarmed.node,
                    report.fault_id.unwrap_or_default()
                ),
                Some(_) => format!("node {} disarmed", disarmed.node),
                None => format!("node {} is gone; record removed", disarmed.node),
            })
        }
        Some(t) => {
            // A shimmed workload: restore what faultline changed, from the object as it is now.
            let Some(current) = api.get(t, namespace, &fault.name).await? else {
                return Ok("already gone".to_string());
            };
            match shim_rollout::disable_all_patch(&current)? {
                Some(patch) => {
                    api.patch(t, namespace, &fault.name, &patch).await?;
                    Ok("restored".to_string())
                }
                None => Ok("already restored".to_string()),
            }
        }
        None if fault.kind == Some(FaultKind::KernelSignal) => {
            Ok("cannot be undone (a kernel-log line stays in the log); the Event expires on its own".to_string())
        }
        None => Ok("cannot be undone (an XID line stays in the kernel log); the Event expires on its own".to_string()),
    }
}

/// Checks that `id` looks like a fault id (`fl-` and 12 hex digits), so a typo is not taken for "already
/// recovered".
pub fn check_fault_id(id: &str) -> Result<(), ClusterError> {
    let hex = id.strip_prefix("fl-").unwrap_or_default();
    if hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ClusterError::Usage(format!(
            "{id:?} is not a fault id (fl- and 12 hex digits; `faultline cluster faults -A` lists them)"
        )))
    }
}

/// The ledger's selector, for people: `kubectl get … -l` this.
pub fn selector() -> String {
    ledger::managed_selector()
}
