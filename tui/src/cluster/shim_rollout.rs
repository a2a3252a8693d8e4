//! Rolling a faultline shim into a workload's pods and back out (`faultline cluster shim enable|disable`), as pure
//! JSON: given the object as the API server returned it, compute the RFC 7386 JSON merge patch to send. No API
//! calls here ([`super::kube_api`] makes them).
//!
//! `enable` patches the pod template of a Deployment or StatefulSet (`spec.template`), or of one service of an
//! NVIDIA Dynamo DynamoGraphDeployment (see [`Workload::Dgd`]):
//!
//! - a `hostPath` volume (type `Directory`) of the node agent's [`LIBRARY_DIR`], mounted read-only at the same path
//!   in every app container (init containers are left alone);
//! - `LD_PRELOAD` = the existing value + `:` + the shim, or the shim alone; `FAULTLINE_ENABLED` (`0` with
//!   passthrough), and for CUDA `FAULTLINE_POLICY_FILE` ([`POLICY_FILE`], how a node is armed) and `FAULTLINE_XID`;
//! - node affinity merged into what is there: required `nodeSelectorTerms` are ORed, so the GPU-node requirement
//!   (and `--node`) is ANDed into every term; preferred terms and pod (anti-)affinity are not touched;
//! - the fault's ledger labels and annotations on the workload, and its fault-id label on the pods;
//! - the record ([`RECORD_ANNOTATION`]): the original value, or absence, of everything it changed.
//!
//! `disable` puts back exactly what the record holds, so enable then disable leaves the object as it was, byte for
//! byte. Changes made by others in between are kept, except on the paths faultline changed: those get their
//! original back (e.g. a required node affinity edited while shimmed returns to its pre-shim value). The record
//! names containers and list items (env, volumes, mounts) by name, not position, so reordering is harmless.
//!
//! One shim per pod template: a DynamoGraphDeployment may have several services shimmed, all under one fault
//! (the workload carries one fault-id label), each enabled and disabled on its own.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};
use shm_proto::Kind;

use super::kube_api::ObjectType;
use super::ledger::{Stamp, FAULT_ID_LABEL};
use super::ClusterError;
pub use crate::node::arm::{LIBRARY_DIR, POLICY_FILE};
use crate::node::xid;

/// The pod volume that carries [`LIBRARY_DIR`] from the host.
pub const VOLUME_NAME: &str = "faultline-lib";

/// Annotation on a shimmed workload: what `shim enable` changed and how to undo it (compact JSON).
pub const RECORD_ANNOTATION: &str = "faultline.dev/shim-original";

/// The node label of GPU nodes, where the node agent runs and installs the shims (deploy/daemonset.yaml).
pub const GPU_NODE_LABEL: (&str, &str) = ("nvidia.com/gpu.present", "true");

/// The format of [`RECORD_ANNOTATION`]; another one is refused rather than guessed at.
const RECORD_VERSION: u32 = 1;

/// The shim library's file name, e.g. `libfaultline_cuda.so`.
pub fn library_file(kind: Kind) -> String {
    format!("libfaultline_{}.so", kind.name())
}

/// Where pods find the shim library (the host's [`LIBRARY_DIR`], mounted at the same path).
pub fn library_path(kind: Kind) -> String {
    format!("{LIBRARY_DIR}/{}", library_file(kind))
}

/// The object whose pods get the shim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Workload {
    /// An `apps/v1` Deployment (pods from `spec.template`).
    Deployment(String),
    /// An `apps/v1` StatefulSet (pods from `spec.template`).
    StatefulSet(String),
    /// One service of an NVIDIA Dynamo `nvidia.com/v1alpha1` DynamoGraphDeployment. Its pods come from
    /// `spec.services.<service>`: `extraPodSpec` is a Kubernetes PodSpec (volumes, affinity, sidecar `containers`)
    /// plus `mainContainer`, merged by the operator over the main container it generates (named `main`); the main
    /// container's env is `spec.envs`, overridden by the service's `envs`, overridden by `mainContainer.env`, by
    /// name. Pod labels go in `extraPodMetadata.labels`.
    Dgd {
        /// The DynamoGraphDeployment.
        name: String,
        /// The key under `spec.services`, e.g. `VllmDecodeWorker`.
        service: String,
    },
}

impl Workload {
    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Workload::Deployment(name) | Workload::StatefulSet(name) | Workload::Dgd { name, .. } => name,
        }
    }

    /// The DynamoGraphDeployment service, if this is one.
    pub fn service(&self) -> Option<&str> {
        match self {
            Workload::Dgd { service, .. } => Some(service),
            _ => None,
        }
    }

    /// The API type to get and patch.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Workload::Deployment(_) => ObjectType::DEPLOYMENT,
            Workload::StatefulSet(_) => ObjectType::STATEFUL_SET,
            Workload::Dgd { .. } => ObjectType::DYNAMO_GRAPH_DEPLOYMENT,
        }
    }

    /// The path of the pod spec in the object, as a JSON pointer (RFC 6901): `/spec/template/spec`, or
    /// `/spec/services/<service>/extraPodSpec` (a partial pod spec, see [`Workload::Dgd`]).
    pub fn pod_spec_pointer(&self) -> String {
        pointer(&self.pod_spec_path())
    }

    /// The pod spec in `object`, if it has one.
    pub fn pod_spec<'a>(&self, object: &'a Value) -> Option<&'a Value> {
        lookup(object, &self.pod_spec_path())
    }

    fn pod_spec_path(&self) -> Vec<Seg> {
        match self {
            Workload::Deployment(_) | Workload::StatefulSet(_) => keys(&["spec", "template", "spec"]),
            Workload::Dgd { service, .. } => keys(&["spec", "services", service, "extraPodSpec"]),
        }
    }

    fn pod_labels_path(&self) -> Vec<Seg> {
        match self {
            Workload::Deployment(_) | Workload::StatefulSet(_) => keys(&["spec", "template", "metadata", "labels"]),
            Workload::Dgd { service, .. } => keys(&["spec", "services", service, "extraPodMetadata", "labels"]),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Dgd { name, service } => write!(f, "DynamoGraphDeployment {name} (service {service})"),
            other => write!(f, "{} {}", other.object_type().kind, other.name()),
        }
    }
}

/// What to roll out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimSpec {
    /// Which shim.
    pub kind: Kind,
    /// Load the shim with faults off (`FAULTLINE_ENABLED=0`): steer it later, or arm the node.
    pub passthrough: bool,
    /// CUDA only: the XID preset the shim fails with (`FAULTLINE_XID`).
    pub xid: Option<u32>,
    /// Pin the pods to this node (by name), on top of the GPU-node requirement.
    pub node: Option<String>,
    /// Only this container (default: every app container; init containers never).
    pub container: Option<String>,
}

impl ShimSpec {
    /// A shim of `kind` with faults on, no XID, no node, every container.
    pub fn new(kind: Kind) -> ShimSpec {
        ShimSpec { kind, passthrough: false, xid: None, node: None, container: None }
    }

    /// Checks the spec on its own (the XID has a CUDA shim preset, the node name is one), as `enable_patch` does
    /// first: lets a form show the error while it is typed.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if let Some(code) = self.xid {
            if self.kind != Kind::Cuda {
                return Err(ClusterError::Usage("--xid applies to the CUDA shim only (--kind cuda)".into()));
            }
            if let Err(no_preset) = crate::node::arm::cuda_preset(code) {
                let unknown = if xid::lookup(code).is_none() {
                    format!("XID {code} is not in faultline's catalog (`faultline node xid --list`); ")
                } else {
                    String::new()
                };
                return Err(ClusterError::Usage(format!("{unknown}{no_preset}")));
            }
        }
        if let Some(node) = &self.node {
            if !is_dns_subdomain(node) {
                return Err(ClusterError::Usage(format!(
                    "invalid --node {node:?}: a node name is lower-case letters, digits, '-' and '.' (at most 253)"
                )));
            }
        }
        Ok(())
    }

    fn env(&self, preload: String) -> Vec<(&'static str, String)> {
        let mut env =
            vec![("LD_PRELOAD", preload), ("FAULTLINE_ENABLED", if self.passthrough { "0" } else { "1" }.to_string())];
        if self.kind == Kind::Cuda {
            env.push(("FAULTLINE_POLICY_FILE", POLICY_FILE.to_string()));
            if let Some(code) = self.xid {
                env.push(("FAULTLINE_XID", code.to_string()));
            }
        }
        env
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// A shim found on a workload (for listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShimInfo {
    /// The fault it belongs to.
    pub fault_id: String,
    /// The DynamoGraphDeployment service (`None` for a Deployment or StatefulSet).
    pub service: Option<String>,
    /// Which shim.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// Loaded with faults off.
    pub passthrough: bool,
    /// The XID preset.
    pub xid: Option<u32>,
    /// The node the pods are pinned to.
    pub node: Option<String>,
    /// The containers that preload it.
    pub containers: Vec<String>,
}

fn kind_name<S: Serializer>(kind: &Kind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.name())
}

/// The merge patch that shims `workload`'s pods (see the module documentation for what changes).
///
/// Refused (usage errors, nothing to send) when: `object` is not `workload`; the pod template is already shimmed
/// (the error names the fault), or another service of the DynamoGraphDeployment is shimmed by another fault; an
/// app container's `LD_PRELOAD` comes from `valueFrom` (its value cannot be appended to), is set twice, or already
/// names the shim; a volume named [`VOLUME_NAME`] or a mount at [`LIBRARY_DIR`] is already there; `spec` is
/// invalid (`--xid` with UCX, an XID without a CUDA shim preset, a bad node name, an unknown container).
///
/// Not visible in the spec, so not appended to: an `LD_PRELOAD` set by the image or by `envFrom` (the container's
/// `env` entry overrides both).
pub fn enable_patch(
    object: &Value,
    workload: &Workload,
    spec: &ShimSpec,
    stamp: &Stamp,
) -> Result<Value, ClusterError> {
    spec.validate()?;
    check_object(object, workload)?;
    let existing = read_record(object, workload)?;
    if let Some(existing) = &existing {
        if let Some(entry) = existing.entry(workload.service()) {
            return Err(ClusterError::Usage(format!(
                "{workload} is already shimmed ({}, fault {}); `faultline cluster shim disable` it first",
                entry.kind, existing.fault_id
            )));
        }
        if existing.fault_id != stamp.fault_id {
            let services: Vec<&str> = existing.shims.iter().filter_map(|e| e.service.as_deref()).collect();
            return Err(ClusterError::Usage(format!(
                "{} {} is already shimmed by fault {} (service {}): one fault per workload; disable that first, or \
                 shim this service under the same fault",
                workload.object_type().kind,
                workload.name(),
                existing.fault_id,
                services.join(", ")
            )));
        }
    }
    let targets = targets(object, workload, spec.container.as_deref())?;
    let pod_spec = workload.pod_spec_path();

    // Everything is checked on the original before anything is edited: a refusal leaves nothing half-done.
    let mut preloads = Vec::with_capacity(targets.len());
    for target in &targets {
        check_duplicates(object, workload, target, spec)?;
        preloads.push(appended_preload(object, workload, target, spec)?);
        if let Some(mounts) = lookup(object, &join(&target.path, &["volumeMounts"])).and_then(Value::as_array) {
            if mounts.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(LIBRARY_DIR)) {
                return Err(ClusterError::Usage(format!(
                    "{workload}: container {} already mounts something at {LIBRARY_DIR}",
                    target.name
                )));
            }
        }
    }
    if lookup(object, &join(&pod_spec, &["volumes"]))
        .and_then(Value::as_array)
        .is_some_and(|volumes| volumes.iter().any(|v| v.get("name").and_then(Value::as_str) == Some(VOLUME_NAME)))
    {
        return Err(ClusterError::Usage(format!(
            "{workload} already has a volume named {VOLUME_NAME} (a shim added by hand?); remove it first"
        )));
    }

    let mut shimmed = object.clone();
    let mut edit = Editor::new(&mut shimmed, workload);

    let volumes = join(&pod_spec, &["volumes"]);
    edit.ensure(&volumes, json!([]))?;
    edit.set(
        &named(&volumes, VOLUME_NAME),
        json!({ "name": VOLUME_NAME, "hostPath": { "path": LIBRARY_DIR, "type": "Directory" } }),
    );
    for (target, preload) in targets.iter().zip(preloads) {
        edit.ensure(&target.path, json!({}))?;
        let mounts = join(&target.path, &["volumeMounts"]);
        edit.ensure(&mounts, json!([]))?;
        edit.set(
            &named(&mounts, VOLUME_NAME),
            json!({ "name": VOLUME_NAME, "mountPath": LIBRARY_DIR, "readOnly": true }),
        );
        let env = join(&target.path, &["env"]);
        edit.ensure(&env, json!([]))?;
        for (name, value) in spec.env(preload) {
            edit.set(&named(&env, name), json!({ "name": name, "value": value }));
        }
    }

    let affinity = join(&pod_spec, &["affinity"]);
    let node_affinity = join(&affinity, &["nodeAffinity"]);
    let required_path = join(&node_affinity, &["requiredDuringSchedulingIgnoredDuringExecution"]);
    let required = required_affinity(lookup(object, &required_path), spec.node.as_deref(), workload)?;
    edit.ensure(&affinity, json!({}))?;
    edit.ensure(&node_affinity, json!({}))?;
    edit.set(&required_path, required);

    let pod_labels = workload.pod_labels_path();
    edit.ensure(&pod_labels, json!({}))?;
    edit.set(&join(&pod_labels, &[FAULT_ID_LABEL]), json!(stamp.fault_id));
    let changes = edit.take();

    // The workload's own ledger entry is written once per fault, by the first shimmed pod template.
    let mut record = match existing {
        Some(existing) => existing,
        None => {
            for (field, entries) in [("labels", stamp.labels()), ("annotations", stamp.annotations())] {
                let map = keys(&["metadata", field]);
                edit.ensure(&map, json!({}))?;
                for (key, value) in entries {
                    edit.set(&join(&map, &[&key]), json!(value));
                }
            }
            Record { version: RECORD_VERSION, fault_id: stamp.fault_id.clone(), meta: edit.take(), shims: Vec::new() }
        }
    };
    record.shims.push(Entry {
        service: workload.service().map(str::to_string),
        kind: spec.kind.name().to_string(),
        passthrough: spec.passthrough,
        xid: spec.xid,
        node: spec.node.clone(),
        containers: targets.iter().map(|t| t.name.clone()).collect(),
        changes,
    });
    write_record(&mut shimmed, &record);
    Ok(merge_patch_diff(object, &shimmed))
}

/// The merge patch that undoes [`enable_patch`] on `workload` (`None` when it is not shimmed: recovering twice is
/// harmless). Every saved path gets its original value back, or is removed where it had none, and maps or lists
/// that enable created are removed when nothing else was put in them since. For one service of a
/// DynamoGraphDeployment with other services still shimmed, the workload's ledger labels stay until the last.
///
/// An error only when the record annotation is not one faultline can read (edited by hand, or another version).
pub fn disable_patch(object: &Value, workload: &Workload) -> Result<Option<Value>, ClusterError> {
    check_object(object, workload)?;
    let Some(mut record) = read_record(object, workload)? else {
        return Ok(None);
    };
    let Some(at) = record.shims.iter().position(|e| e.service.as_deref() == workload.service()) else {
        return Ok(None);
    };
    let entry = record.shims.remove(at);
    let mut restored = object.clone();
    restore(&mut restored, &entry.changes);
    finish(&mut restored, &record);
    Ok(Some(merge_patch_diff(object, &restored)))
}

/// The merge patch that undoes every shim on `object` (all services of a DynamoGraphDeployment), whatever its kind:
/// for recovering a fault from the ledger. `None` when nothing is shimmed.
pub fn disable_all_patch(object: &Value) -> Result<Option<Value>, ClusterError> {
    let Some(mut record) = read_record(object, &"the object")? else {
        return Ok(None);
    };
    let mut restored = object.clone();
    for entry in record.shims.drain(..).rev() {
        restore(&mut restored, &entry.changes);
    }
    finish(&mut restored, &record);
    Ok(Some(merge_patch_diff(object, &restored)))
}

/// Rewrites the record without the entries already undone, or, with none left, removes it and undoes the
/// workload's ledger labels and annotations (the record first, so an annotations map that enable created empties).
fn finish(restored: &mut Value, record: &Record) {
    if record.shims.is_empty() {
        remove(restored, &keys(&["metadata", "annotations", RECORD_ANNOTATION]));
        restore(restored, &record.meta);
    } else {
        write_record(restored, record);
    }
}

/// The shim on `workload`, if any (`None` also when the record cannot be read: [`disable_patch`] says why).
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

/// The RFC 7386 JSON merge patch that turns `from` into `to`: changed keys of objects, recursively; `null` for
/// keys `to` lacks; lists and other values whole. A merge patch cannot set a value to `null` (it means "remove"),
/// so a `null` inside `to` comes out removed.
pub fn merge_patch_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => Value::Object(object_diff(from, to)),
        _ => to.clone(),
    }
}

fn object_diff(from: &Map<String, Value>, to: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in from.keys().filter(|key| !to.contains_key(*key)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, new) in to {
        match (from.get(key), new) {
            (Some(old), new) if old == new => {}
            (Some(Value::Object(old)), Value::Object(new)) => {
                patch.insert(key.clone(), Value::Object(object_diff(old, new)));
            }
            _ => {
                patch.insert(key.clone(), new.clone());
            }
        }
    }
    patch
}

fn check_object(object: &Value, workload: &Workload) -> Result<(), ClusterError> {
    let expected = workload.object_type();
    let kind = object.get("kind").and_then(Value::as_str);
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    if !object.is_object() || kind.is_some_and(|k| k != expected.kind) || name.is_some_and(|n| n != workload.name()) {
        return Err(ClusterError::Usage(format!(
            "expected {} {}, got {} {}",
            expected.kind,
            workload.name(),
            kind.unwrap_or("an object without a kind"),
            name.unwrap_or("")
        )));
    }
    Ok(())
}

/// An app container to shim: its name, its path, and (DynamoGraphDeployment main container) the env lists it
/// inherits from, nearest first.
struct Target {
    name: String,
    path: Vec<Seg>,
    inherited_env: Vec<Vec<Seg>>,
}

fn targets(object: &Value, workload: &Workload, only: Option<&str>) -> Result<Vec<Target>, ClusterError> {
    let pod_spec = workload.pod_spec_path();
    let mut all = Vec::new();
    if let Workload::Dgd { name, service } = workload {
        let services = object.pointer("/spec/services").and_then(Value::as_object);
        let Some(settings) = services.and_then(|s| s.get(service)) else {
            let known: Vec<&str> = services.map(|s| s.keys().map(String::as_str).collect()).unwrap_or_default();
            return Err(ClusterError::Usage(format!(
                "DynamoGraphDeployment {name} has no service {service} (services: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        if !settings.is_object() {
            return Err(ClusterError::Usage(format!("{workload}: spec.services.{service} is not an object")));
        }
        // The operator names the main container `main` unless mainContainer.name says otherwise.
        let main = join(&pod_spec, &["mainContainer"]);
        let main_name = lookup(object, &join(&main, &["name"])).and_then(Value::as_str).unwrap_or("main");
        all.push(Target {
            name: main_name.to_string(),
            path: main,
            inherited_env: vec![keys(&["spec", "services", service, "envs"]), keys(&["spec", "envs"])],
        });
    }
    let containers = join(&pod_spec, &["containers"]);
    match lookup(object, &containers) {
        None => {}
        Some(Value::Array(list)) => {
            for container in list {
                let name = container.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ClusterError::Usage(format!("{workload}: a container in {} has no name", pointer(&containers)))
                })?;
                all.push(Target { name: name.to_string(), path: named(&containers, name), inherited_env: Vec::new() });
            }
        }
        Some(_) => return Err(not_a(workload, &containers, "a list")),
    }
    if all.is_empty() {
        return Err(ClusterError::Usage(format!("{workload} has no containers at {}", pointer(&containers))));
    }
    match only {
        None => Ok(all),
        Some(wanted) => {
            let names: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
            let chosen: Vec<Target> = all.into_iter().filter(|t| t.name == wanted).collect();
            if chosen.is_empty() {
                return Err(ClusterError::Usage(format!(
                    "{workload} has no app container {wanted} (containers: {})",
                    names.join(", ")
                )));
            }
            Ok(chosen)
        }
    }
}

/// Refuses a container that sets a variable faultline sets more than once: Kubernetes takes the last, so editing
/// the first would not do what it says, and restoring by name would not be exact.
fn check_duplicates(object: &Value, workload: &Workload, target: &Target, spec: &ShimSpec) -> Result<(), ClusterError> {
    let Some(Value::Array(env)) = lookup(object, &join(&target.path, &["env"])) else {
        return Ok(());
    };
    for (name, _) in spec.env(String::new()) {
        let count = env.iter().filter(|e| has_name(e, name)).count();
        if count > 1 {
            return Err(ClusterError::Usage(format!(
                "{workload}: container {} sets {name} {count} times; leave one first",
                target.name
            )));
        }
    }
    Ok(())
}

/// The target's new `LD_PRELOAD`: the value it has now (its own env first, then what it inherits) with the shim
/// appended, so that libraries preloaded before keep their place in front.
fn appended_preload(
    object: &Value,
    workload: &Workload,
    target: &Target,
    spec: &ShimSpec,
) -> Result<String, ClusterError> {
    let library = library_path(spec.kind);
    let own = join(&target.path, &["env"]);
    let mut current = None;
    for list in std::iter::once(&own).chain(&target.inherited_env) {
        let entries: Vec<&Value> = match lookup(object, list) {
            Some(Value::Array(entries)) => entries.iter().filter(|e| has_name(e, "LD_PRELOAD")).collect(),
            Some(_) => return Err(not_a(workload, list, "a list")),
            None => Vec::new(),
        };
        // Kubernetes takes the last of duplicates; an inherited list may have them too.
        if entries.len() > 1 {
            return Err(ClusterError::Usage(format!(
                "{workload}: {} sets LD_PRELOAD {} times; leave one first",
                pointer(list),
                entries.len()
            )));
        }
        if let Some(entry) = entries.first() {
            if entry.get("valueFrom").is_some() {
                return Err(ClusterError::Usage(format!(
                    "{workload}: container {}'s LD_PRELOAD comes from valueFrom ({}), which faultline cannot append \
                     to; set it as a plain value first",
                    target.name,
                    pointer(list)
                )));
            }
            current = Some(entry.get("value").and_then(Value::as_str).unwrap_or("").to_string());
            break;
        }
    }
    let Some(current) = current.filter(|c| !c.trim().is_empty()) else {
        return Ok(library);
    };
    let wanted = library_file(spec.kind);
    // ld.so separates LD_PRELOAD entries by colons or spaces.
    if current.split([':', ' ', '\t']).any(|entry| entry.rsplit('/').next() == Some(wanted.as_str())) {
        return Err(ClusterError::Usage(format!(
            "{workload}: container {} already preloads {wanted} (LD_PRELOAD={current}); shimmed by hand?",
            target.name
        )));
    }
    Ok(format!("{current}:{library}"))
}

/// The required node affinity with the GPU-node requirement (and `node`) ANDed into every term. Terms are ORed, so
/// each one gets the expressions; an empty term matches no node, and stays so. No terms: one term of ours.
fn required_affinity(current: Option<&Value>, node: Option<&str>, workload: &Workload) -> Result<Value, ClusterError> {
    let gpu = json!({ "key": GPU_NODE_LABEL.0, "operator": "In", "values": [GPU_NODE_LABEL.1] });
    // metadata.name is the node's name itself; the kubernetes.io/hostname label need not be.
    let pinned = node.map(|node| json!({ "key": "metadata.name", "operator": "In", "values": [node] }));
    let mut required = match current {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(fields)) => fields.clone(),
        Some(_) => return Err(ClusterError::Usage(format!("{workload}: the required node affinity is not an object"))),
    };
    let Value::Array(terms) = required.entry("nodeSelectorTerms").or_insert_with(|| json!([])) else {
        return Err(ClusterError::Usage(format!("{workload}: nodeSelectorTerms is not a list")));
    };
    let ours = terms.is_empty();
    if ours {
        terms.push(json!({}));
    }
    for term in terms.iter_mut() {
        let Value::Object(term) = term else {
            return Err(ClusterError::Usage(format!("{workload}: a nodeSelectorTerm is not an object")));
        };
        let empty = |key: &str| term.get(key).and_then(Value::as_array).is_none_or(Vec::is_empty);
        if !ours && empty("matchExpressions") && empty("matchFields") {
            continue;
        }
        add_requirement(term, "matchExpressions", &gpu, workload)?;
        if let Some(pinned) = &pinned {
            add_requirement(term, "matchFields", pinned, workload)?;
        }
    }
    Ok(Value::Object(required))
}

fn add_requirement(
    term: &mut Map<String, Value>,
    field: &str,
    requirement: &Value,
    workload: &Workload,
) -> Result<(), ClusterError> {
    match term.entry(field).or_insert_with(|| json!([])) {
        Value::Array(list) => {
            if !list.contains(requirement) {
                list.push(requirement.clone());
            }
            Ok(())
        }
        _ => Err(ClusterError::Usage(format!("{workload}: a nodeSelectorTerm's {field} is not a list"))),
    }
}

fn not_a(workload: &Workload, path: &[Seg], what: &str) -> ClusterError {
    ClusterError::Usage(format!("{workload}: {} is not {what}; faultline leaves such a spec alone", pointer(path)))
}

// ---- The record ----

/// [`RECORD_ANNOTATION`]'s content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    version: u32,
    fault_id: String,
    /// The workload's ledger labels and annotations.
    meta: Vec<Change>,
    /// One per shimmed pod template.
    shims: Vec<Entry>,
}

impl Record {
    fn entry(&self, service: Option<&str>) -> Option<&Entry> {
        self.shims.iter().find(|e| e.service.as_deref() == service)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    kind: String,
    passthrough: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    containers: Vec<String>,
    changes: Vec<Change>,
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
struct Change {
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

/// A path step: an object key, or the list item with that `name` (containers, env, volumes, mounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Seg {
    Key(String),
    Named { name: String },
}

fn keys(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|k| Seg::Key(k.to_string())).collect()
}

fn join(path: &[Seg], more: &[&str]) -> Vec<Seg> {
    let mut joined = path.to_vec();
    joined.extend(keys(more));
    joined
}

fn named(list: &[Seg], name: &str) -> Vec<Seg> {
    let mut path = list.to_vec();
    path.push(Seg::Named { name: name.to_string() });
    path
}

/// A JSON pointer for messages (`/spec/template/spec/containers/worker/env`: list items by name).
fn pointer(path: &[Seg]) -> String {
    path.iter()
        .map(|seg| match seg {
            Seg::Key(key) | Seg::Named { name: key } => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
        })
        .collect()
}

/// The record on `object` (`what` names it in messages).
fn read_record(object: &Value, what: &dyn fmt::Display) -> Result<Option<Record>, ClusterError> {
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

fn write_record(object: &mut Value, record: &Record) {
    let text = serde_json::to_string(record).unwrap_or_default();
    put(object, &keys(&["metadata", "annotations", RECORD_ANNOTATION]), json!(text));
}

// ---- Paths in a JSON value ----

fn child<'a>(value: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match seg {
        Seg::Key(key) => value.as_object()?.get(key),
        Seg::Named { name } => value.as_array()?.iter().find(|item| has_name(item, name)),
    }
}

fn child_mut<'a>(value: &'a mut Value, seg: &Seg) -> Option<&'a mut Value> {
    match seg {
        Seg::Key(key) => value.as_object_mut()?.get_mut(key),
        Seg::Named { name } => value.as_array_mut()?.iter_mut().find(|item| has_name(item, name)),
    }
}

fn has_name(item: &Value, name: &str) -> bool {
    item.get("name").and_then(Value::as_str) == Some(name)
}

fn lookup<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, child)
}

fn lookup_mut<'a>(root: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, child_mut)
}

/// Sets `path` (an item: replaced where it is, or appended), making missing objects and lists on the way; a path
/// through a list item that is gone is skipped (its container was removed since: nothing to restore into).
fn put(root: &mut Value, path: &[Seg], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut at = root;
    for (i, seg) in parents.iter().enumerate() {
        let empty = match path[i + 1] {
            Seg::Key(_) => json!({}),
            Seg::Named { .. } => json!([]),
        };
        at = match seg {
            Seg::Key(key) => {
                let Some(map) = at.as_object_mut() else { return };
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = empty;
                }
                slot
            }
            Seg::Named { .. } => match child_mut(at, seg) {
                Some(item) => item,
                None => return,
            },
        };
    }
    match last {
        Seg::Key(key) => {
            if let Some(map) = at.as_object_mut() {
                map.insert(key.clone(), value);
            }
        }
        Seg::Named { name } => {
            if let Some(list) = at.as_array_mut() {
                match list.iter_mut().find(|item| has_name(item, name)) {
                    Some(item) => *item = value,
                    None => list.push(value),
                }
            }
        }
    }
}

/// Removes `path`, keeping the order of what remains (like the API server, and unlike `Map::remove`).
fn remove(root: &mut Value, path: &[Seg]) {
    let Some((last, parents)) = path.split_last() else { return };
    let Some(parent) = lookup_mut(root, parents) else { return };
    match (last, parent) {
        (Seg::Key(key), Value::Object(map)) => {
            map.shift_remove(key);
        }
        (Seg::Named { name }, Value::Array(list)) => list.retain(|item| !has_name(item, name)),
        _ => {}
    }
}

/// Undoes `changes`, last first.
fn restore(root: &mut Value, changes: &[Change]) {
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
struct Editor<'a> {
    root: &'a mut Value,
    workload: &'a Workload,
    changes: Vec<Change>,
}

impl<'a> Editor<'a> {
    fn new(root: &'a mut Value, workload: &'a Workload) -> Editor<'a> {
        Editor { root, workload, changes: Vec::new() }
    }

    fn take(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Makes `path` an object or list (as `empty` is), creating what is missing on the way.
    fn ensure(&mut self, path: &[Seg], empty: Value) -> Result<(), ClusterError> {
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
    fn set(&mut self, path: &[Seg], value: Value) {
        let was = lookup(self.root, path).cloned();
        self.changes.push(Change { path: path.to_vec(), was, created: false });
        put(self.root, path, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ledger::{FaultKind, CREATED_BY_ANNOTATION, EXPIRES_ANNOTATION, FAULT_KIND_LABEL, MANAGED_BY};

    const FAULT: &str = "fl-0123456789ab";
    const CUDA: &str = "/var/lib/faultline/libfaultline_cuda.so";

    /// RFC 7386 section 2, as written there: what the API server (and the emulator) do with our patches.
    fn merge(target: &Value, patch: &Value) -> Value {
        let Value::Object(patch) = patch else { return patch.clone() };
        let mut target = match target {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        for (name, value) in patch {
            if value.is_null() {
                // Keeps the order of the rest, as Go and Python maps serialised by the servers do.
                target.shift_remove(name);
            } else {
                let merged = merge(target.get(name).unwrap_or(&Value::Null), value);
                target.insert(name.clone(), merged);
            }
        }
        Value::Object(target)
    }

    fn stamp(fault_id: &str) -> Stamp {
        let now = "2026-11-22T10:00:00Z".parse().unwrap();
        Stamp::at(FaultKind::Shim, fault_id.into(), now, Some(std::time::Duration::from_secs(3600)), "alice@lab".into())
    }

    fn cuda(xid: Option<u32>) -> ShimSpec {
        ShimSpec { xid, ..ShimSpec::new(Kind::Cuda) }
    }

    /// Two required terms, preferred terms and pod anti-affinity.
    fn affinity() -> Value {
        json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                    { "matchExpressions": [{ "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"] }] },
                    { "matchExpressions": [
                        { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p5.48xlarge"] }
                    ] }
                ] },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    { "weight": 10, "preference": { "matchExpressions": [
                        { "key": "gpu-type", "operator": "In", "values": ["h100"] }
                    ] } }
                ]
            },
            "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [
                { "weight": 100, "podAffinityTerm": {
                    "labelSelector": { "matchLabels": { "app": "vllm" } },
                    "topologyKey": "kubernetes.io/hostname"
                } }
            ] }
        })
    }

    fn pod_template() -> Value {
        json!({
            "metadata": { "labels": { "app": "vllm" } },
            "spec": {
                "initContainers": [
                    { "name": "fetch", "image": "busybox", "env": [{ "name": "LD_PRELOAD", "value": "/init.so" }] }
                ],
                "containers": [
                    {
                        "name": "worker",
                        "image": "vllm:1",
                        "env": [
                            { "name": "LD_PRELOAD", "value": "/usr/lib/libjemalloc.so.2" },
                            { "name": "MODEL", "value": "llama" }
                        ],
                        "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }]
                    },
                    { "name": "metrics", "image": "exporter:2", "env": [{ "name": "PORT", "value": "9400" }] }
                ],
                "volumes": [{ "name": "cache", "emptyDir": {} }],
                "affinity": affinity(),
                "nodeSelector": { "pool": "gpu" }
            }
        })
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "vllm",
                "namespace": "serving",
                "labels": { "app": "vllm", "app.kubernetes.io/managed-by": "Helm" },
                "annotations": { "deployment.kubernetes.io/revision": "3" }
            },
            "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "vllm" } }, "template": pod_template() },
            "status": { "replicas": 2 }
        })
    }

    fn statefulset() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": { "name": "vllm", "namespace": "serving", "labels": { "app": "vllm" } },
            "spec": {
                "serviceName": "vllm",
                "replicas": 2,
                "selector": { "matchLabels": { "app": "vllm" } },
                "template": pod_template()
            }
        })
    }

    /// The shape of ai-dynamo/dynamo's v1alpha1 types: services map, `envs` (graph-wide and per service),
    /// `extraPodMetadata`, `extraPodSpec` (a PodSpec inline, plus `mainContainer`).
    fn dgd() -> Value {
        json!({
            "apiVersion": "nvidia.com/v1alpha1",
            "kind": "DynamoGraphDeployment",
            "metadata": { "name": "disagg", "namespace": "dynamo" },
            "spec": {
                "backendFramework": "vllm",
                "envs": [{ "name": "HF_HOME", "value": "/models" }],
                "services": {
                    "Frontend": {
                        "componentType": "frontend",
                        "replicas": 1,
                        "extraPodSpec": { "mainContainer": { "image": "dynamo:1" } }
                    },
                    "VllmDecodeWorker": {
                        "componentType": "worker",
                        "replicas": 2,
                        "envs": [{ "name": "LD_PRELOAD", "value": "/opt/lib/libtcmalloc.so" }],
                        "resources": { "limits": { "gpu": "1" } },
                        "extraPodMetadata": { "labels": { "team": "serving" } },
                        "extraPodSpec": {
                            "initContainers": [{ "name": "warm", "image": "busybox" }],
                            "containers": [
                                { "name": "sidecar", "image": "exporter:2", "env": [{ "name": "PORT", "value": "9400" }] }
                            ],
                            "volumes": [{ "name": "cache", "emptyDir": {} }],
                            "affinity": affinity(),
                            "mainContainer": {
                                "image": "vllm-runtime:1",
                                "command": ["python3"],
                                "args": ["-m", "dynamo.vllm"],
                                "env": [{ "name": "MODEL", "value": "llama" }],
                                "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }]
                            }
                        }
                    },
                    "VllmPrefillWorker": {
                        "componentType": "worker",
                        "extraPodSpec": { "mainContainer": {
                            "image": "vllm-runtime:1",
                            "env": [{ "name": "LD_PRELOAD", "value": "/opt/lib/libtcmalloc.so" }]
                        } }
                    }
                }
            }
        })
    }

    fn decode() -> Workload {
        Workload::Dgd { name: "disagg".into(), service: "VllmDecodeWorker".into() }
    }

    fn enabled(object: &Value, workload: &Workload, spec: &ShimSpec) -> Value {
        merge(object, &enable_patch(object, workload, spec, &stamp(FAULT)).expect("enable"))
    }

    /// enable, then disable: the original, byte for byte.
    fn assert_round_trip(original: &Value, workload: &Workload, spec: &ShimSpec) {
        let patched = enabled(original, workload, spec);
        assert_ne!(&patched, original, "enable changed nothing");
        let patch = disable_patch(&patched, workload).unwrap().expect("shimmed");
        let restored = merge(&patched, &patch);
        assert_eq!(&restored, original);
        assert_eq!(restored.to_string(), original.to_string(), "byte for byte");
        assert_eq!(disable_patch(&restored, workload).unwrap(), None, "disable again: nothing to do");
    }

    fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
        container["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str()
    }

    fn usage(result: Result<Value, ClusterError>) -> String {
        match result {
            Err(ClusterError::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    fn gpu_requirement() -> Value {
        json!({ "key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"] })
    }

    #[test]
    fn enable_on_a_deployment_changes_what_it_says_and_nothing_else() {
        let original = deployment();
        let spec = ShimSpec { node: Some("gpu-node-3".into()), ..cuda(Some(79)) };
        let patch = enable_patch(&original, &Workload::Deployment("vllm".into()), &spec, &stamp(FAULT)).unwrap();
        assert!(patch.get("status").is_none() && patch.pointer("/spec/replicas").is_none(), "{patch}");
        assert!(patch.pointer("/spec/template/spec/initContainers").is_none(), "init containers untouched");
        let patched = merge(&original, &patch);
        let pod = &patched["spec"]["template"]["spec"];

        assert_eq!(
            pod["volumes"],
            json!([
                { "name": "cache", "emptyDir": {} },
                { "name": "faultline-lib", "hostPath": { "path": "/var/lib/faultline", "type": "Directory" } }
            ])
        );
        let worker = &pod["containers"][0];
        assert_eq!(worker["env"][0]["name"], "LD_PRELOAD", "changed where it was");
        assert_eq!(env(worker, "LD_PRELOAD"), Some(format!("/usr/lib/libjemalloc.so.2:{CUDA}").as_str()));
        assert_eq!(env(worker, "MODEL"), Some("llama"));
        assert_eq!(env(worker, "FAULTLINE_ENABLED"), Some("1"));
        assert_eq!(env(worker, "FAULTLINE_POLICY_FILE"), Some("/var/lib/faultline/cuda.policy"));
        assert_eq!(env(worker, "FAULTLINE_XID"), Some("79"));
        assert_eq!(
            worker["volumeMounts"],
            json!([
                { "name": "cache", "mountPath": "/cache" },
                { "name": "faultline-lib", "mountPath": "/var/lib/faultline", "readOnly": true }
            ])
        );
        let metrics = &pod["containers"][1];
        assert_eq!(env(metrics, "LD_PRELOAD"), Some(CUDA), "no LD_PRELOAD before: the shim alone");
        assert_eq!(env(metrics, "PORT"), Some("9400"));
        assert_eq!(metrics["volumeMounts"][0]["mountPath"], "/var/lib/faultline");
        assert_eq!(pod["initContainers"], original["spec"]["template"]["spec"]["initContainers"]);

        let required = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        let pinned = json!({ "key": "metadata.name", "operator": "In", "values": ["gpu-node-3"] });
        let terms = required["nodeSelectorTerms"].as_array().unwrap();
        assert_eq!(terms.len(), 2, "terms are ORed: none added");
        for (term, theirs) in terms.iter().zip(["topology.kubernetes.io/zone", "node.kubernetes.io/instance-type"]) {
            let expressions = term["matchExpressions"].as_array().unwrap();
            assert_eq!(expressions.len(), 2);
            assert_eq!(expressions[0]["key"], theirs);
            assert_eq!(expressions[1], gpu_requirement());
            assert_eq!(term["matchFields"], json!([pinned]));
        }
        let before = affinity();
        let after = &pod["affinity"];
        assert_eq!(
            after["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
            before["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        );
        assert_eq!(after["podAntiAffinity"], before["podAntiAffinity"]);
        assert_eq!(pod["nodeSelector"], json!({ "pool": "gpu" }));

        let labels = &patched["metadata"]["labels"];
        assert_eq!(labels["app"], "vllm");
        assert_eq!(labels[MANAGED_BY.0], "faultline", "Helm's label is saved and comes back on disable");
        assert_eq!(labels[FAULT_ID_LABEL], FAULT);
        assert_eq!(labels[FAULT_KIND_LABEL], "shim");
        let annotations = &patched["metadata"]["annotations"];
        assert_eq!(annotations["deployment.kubernetes.io/revision"], "3");
        assert_eq!(annotations[CREATED_BY_ANNOTATION], "alice@lab");
        assert_eq!(annotations[EXPIRES_ANNOTATION], "2026-11-22T11:00:00Z");
        assert!(annotations[RECORD_ANNOTATION].is_string());
        assert_eq!(
            patched["spec"]["template"]["metadata"]["labels"],
            json!({ "app": "vllm", FAULT_ID_LABEL: FAULT }),
            "only the fault id on pods: they are findable, not listed as faults"
        );
        assert_eq!(patched["status"], original["status"]);

        let info = super::shimmed(&patched, &Workload::Deployment("vllm".into())).unwrap();
        assert_eq!(
            info,
            ShimInfo {
                fault_id: FAULT.into(),
                service: None,
                kind: Kind::Cuda,
                passthrough: false,
                xid: Some(79),
                node: Some("gpu-node-3".into()),
                containers: vec!["worker".into(), "metrics".into()],
            }
        );
        assert_eq!(shims(&patched), vec![info]);
        assert_eq!(shimmed(&original, &Workload::Deployment("vllm".into())), None);
    }

    #[test]
    fn enable_then_disable_restores_every_workload_byte_for_byte() {
        let node = ShimSpec { node: Some("gpu-node-3".into()), ..cuda(Some(48)) };
        assert_round_trip(&deployment(), &Workload::Deployment("vllm".into()), &node);
        assert_round_trip(&deployment(), &Workload::Deployment("vllm".into()), &ShimSpec::new(Kind::Ucx));
        assert_round_trip(&statefulset(), &Workload::StatefulSet("vllm".into()), &node);
        assert_round_trip(&dgd(), &decode(), &node);
        let prefill = Workload::Dgd { name: "disagg".into(), service: "VllmPrefillWorker".into() };
        assert_round_trip(&dgd(), &prefill, &cuda(None));
        let frontend = Workload::Dgd { name: "disagg".into(), service: "Frontend".into() };
        assert_round_trip(&dgd(), &frontend, &ShimSpec::new(Kind::Ucx));
    }

    #[test]
    fn a_bare_workload_round_trips_and_gets_one_term_of_ours() {
        let bare = json!({
            "kind": "Deployment",
            "metadata": { "name": "bare" },
            "spec": { "template": { "spec": { "containers": [{ "name": "app", "image": "app:1" }] } } }
        });
        let workload = Workload::Deployment("bare".into());
        let spec = ShimSpec { node: Some("n1".into()), ..cuda(None) };
        let patched = enabled(&bare, &workload, &spec);
        let pod = &patched["spec"]["template"]["spec"];
        assert_eq!(
            pod["affinity"],
            json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [{
                "matchExpressions": [gpu_requirement()],
                "matchFields": [{ "key": "metadata.name", "operator": "In", "values": ["n1"] }]
            }] } } })
        );
        assert_eq!(env(&pod["containers"][0], "LD_PRELOAD"), Some(CUDA));
        assert_eq!(env(&pod["containers"][0], "FAULTLINE_XID"), None, "no --xid, no preset");
        assert_eq!(patched["spec"]["template"]["metadata"]["labels"][FAULT_ID_LABEL], FAULT);
        assert_round_trip(&bare, &workload, &spec);

        // A DynamoGraphDeployment service with nothing but a name: extraPodSpec and mainContainer are made.
        let graph = json!({ "kind": "DynamoGraphDeployment", "metadata": { "name": "g" }, "spec": { "services": {
            "Worker": { "replicas": 1 }
        } } });
        let worker = Workload::Dgd { name: "g".into(), service: "Worker".into() };
        let patched = enabled(&graph, &worker, &cuda(None));
        let main = &patched["spec"]["services"]["Worker"]["extraPodSpec"]["mainContainer"];
        assert_eq!(env(main, "LD_PRELOAD"), Some(CUDA));
        assert_eq!(patched["spec"]["services"]["Worker"]["extraPodMetadata"]["labels"][FAULT_ID_LABEL], FAULT);
        assert_round_trip(&graph, &worker, &cuda(None));
    }

    #[test]
    fn a_dgd_service_is_shimmed_through_extra_pod_spec_with_its_inherited_ld_preload() {
        let original = dgd();
        let patched = enabled(&original, &decode(), &ShimSpec { node: Some("n1".into()), ..cuda(Some(79)) });
        let service = &patched["spec"]["services"]["VllmDecodeWorker"];
        let main = &service["extraPodSpec"]["mainContainer"];
        // The service's envs set LD_PRELOAD; mainContainer.env overrides it by name, so it carries both.
        assert_eq!(env(main, "LD_PRELOAD"), Some(format!("/opt/lib/libtcmalloc.so:{CUDA}").as_str()));
        assert_eq!(env(main, "MODEL"), Some("llama"));
        assert_eq!(env(main, "FAULTLINE_XID"), Some("79"));
        assert_eq!(service["envs"], original["spec"]["services"]["VllmDecodeWorker"]["envs"], "left as it was");
        assert_eq!(main["volumeMounts"][1]["mountPath"], "/var/lib/faultline");
        let sidecar = &service["extraPodSpec"]["containers"][0];
        assert_eq!(env(sidecar, "LD_PRELOAD"), Some(CUDA), "sidecars inherit no envs");
        assert_eq!(service["extraPodSpec"]["initContainers"], json!([{ "name": "warm", "image": "busybox" }]));
        assert_eq!(service["extraPodSpec"]["volumes"][1]["name"], VOLUME_NAME);
        let terms = &service["extraPodSpec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(terms.as_array().unwrap().len(), 2);
        assert!(terms.as_array().unwrap().iter().all(|t| t["matchExpressions"][1] == gpu_requirement()));
        assert_eq!(service["extraPodMetadata"]["labels"], json!({ "team": "serving", FAULT_ID_LABEL: FAULT }));
        assert_eq!(patched["spec"]["services"]["Frontend"], original["spec"]["services"]["Frontend"]);
        assert_eq!(patched["metadata"]["labels"][FAULT_ID_LABEL], FAULT);
        let info = super::shimmed(&patched, &decode()).unwrap();
        assert_eq!(info.service.as_deref(), Some("VllmDecodeWorker"));
        assert_eq!(info.containers, ["main", "sidecar"]);
    }

    #[test]
    fn several_services_of_a_dgd_share_one_fault_and_come_off_one_by_one() {
        let original = dgd();
        let prefill = Workload::Dgd { name: "disagg".into(), service: "VllmPrefillWorker".into() };
        let one = enabled(&original, &decode(), &cuda(None));
        let other_fault = enable_patch(&one, &prefill, &cuda(None), &stamp("fl-ffffffffffff"));
        let message = usage(other_fault);
        assert!(message.contains(FAULT) && message.contains("VllmDecodeWorker"), "{message}");

        let both = merge(&one, &enable_patch(&one, &prefill, &ShimSpec::new(Kind::Ucx), &stamp(FAULT)).unwrap());
        let listed: Vec<(Option<String>, Kind)> = shims(&both).into_iter().map(|s| (s.service, s.kind)).collect();
        assert_eq!(
            listed,
            [(Some("VllmDecodeWorker".to_string()), Kind::Cuda), (Some("VllmPrefillWorker".to_string()), Kind::Ucx)]
        );

        let decode_off = merge(&both, &disable_patch(&both, &decode()).unwrap().unwrap());
        assert_eq!(
            decode_off["spec"]["services"]["VllmDecodeWorker"],
            original["spec"]["services"]["VllmDecodeWorker"]
        );
        assert_eq!(decode_off["metadata"]["labels"][FAULT_ID_LABEL], FAULT, "still shimmed: still in the ledger");
        assert_eq!(shimmed(&decode_off, &decode()), None);
        assert!(shimmed(&decode_off, &prefill).is_some());
        let all_off = merge(&decode_off, &disable_patch(&decode_off, &prefill).unwrap().unwrap());
        assert_eq!(all_off.to_string(), original.to_string());

        // Recovery by fault: everything at once.
        let recovered = merge(&both, &disable_all_patch(&both).unwrap().unwrap());
        assert_eq!(recovered.to_string(), original.to_string());
        assert_eq!(disable_all_patch(&recovered).unwrap(), None);
    }

    #[test]
    fn passthrough_and_ucx() {
        let workload = Workload::Deployment("vllm".into());
        let quiet = enabled(&deployment(), &workload, &ShimSpec { passthrough: true, ..cuda(Some(79)) });
        let worker = &quiet["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(env(worker, "FAULTLINE_ENABLED"), Some("0"));
        assert_eq!(env(worker, "FAULTLINE_XID"), Some("79"), "the preset is ready for when faults are enabled");
        assert!(shimmed(&quiet, &workload).unwrap().passthrough);

        let ucx = enabled(&deployment(), &workload, &ShimSpec::new(Kind::Ucx));
        let worker = &ucx["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(env(worker, "LD_PRELOAD"), Some("/usr/lib/libjemalloc.so.2:/var/lib/faultline/libfaultline_ucx.so"));
        assert_eq!(env(worker, "FAULTLINE_ENABLED"), Some("1"));
        assert_eq!(env(worker, "FAULTLINE_POLICY_FILE"), None, "the node policy file is the CUDA shim's");
        assert_eq!(env(worker, "FAULTLINE_XID"), None);
        assert_eq!(shimmed(&ucx, &workload).unwrap().kind, Kind::Ucx);
    }

    #[test]
    fn one_container_only() {
        let workload = Workload::Deployment("vllm".into());
        let spec = ShimSpec { container: Some("worker".into()), ..cuda(None) };
        let patched = enabled(&deployment(), &workload, &spec);
        let containers = &patched["spec"]["template"]["spec"]["containers"];
        assert!(env(&containers[0], "LD_PRELOAD").unwrap().ends_with(CUDA));
        assert_eq!(containers[1], deployment()["spec"]["template"]["spec"]["containers"][1]);
        assert_round_trip(&deployment(), &workload, &spec);
        let spec = ShimSpec { container: Some("fetch".into()), ..cuda(None) };
        let message = usage(enable_patch(&deployment(), &workload, &spec, &stamp(FAULT)));
        assert!(message.contains("no app container fetch (containers: worker, metrics)"), "{message}");
    }

    #[test]
    fn changes_made_by_others_while_shimmed_are_kept() {
        let workload = Workload::Deployment("vllm".into());
        let mut patched = enabled(&deployment(), &workload, &cuda(None));
        let worker = &mut patched["spec"]["template"]["spec"]["containers"][0];
        worker["image"] = json!("vllm:2");
        worker["env"].as_array_mut().unwrap().push(json!({ "name": "NEW", "value": "1" }));
        // Keys added after the ones enable created: removing those must not reorder these.
        let metrics = &mut patched["spec"]["template"]["spec"]["containers"][1];
        metrics["resources"] = json!({});
        metrics["ports"] = json!([]);
        patched["spec"]["replicas"] = json!(5);
        let restored = merge(&patched, &disable_patch(&patched, &workload).unwrap().unwrap());
        let worker = &restored["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(worker["image"], "vllm:2");
        assert_eq!(
            worker["env"],
            json!([
                { "name": "LD_PRELOAD", "value": "/usr/lib/libjemalloc.so.2" },
                { "name": "MODEL", "value": "llama" },
                { "name": "NEW", "value": "1" }
            ])
        );
        assert_eq!(restored["spec"]["replicas"], 5);
        assert_eq!(
            restored["spec"]["template"]["spec"]["containers"][1].to_string(),
            r#"{"name":"metrics","image":"exporter:2","env":[{"name":"PORT","value":"9400"}],"resources":{},"ports":[]}"#
        );
        assert_eq!(restored["spec"]["template"]["spec"]["affinity"], affinity());
        assert_eq!(restored["metadata"], deployment()["metadata"]);
    }

    #[test]
    fn refusals() {
        let workload = Workload::Deployment("vllm".into());
        let stamp = stamp(FAULT);

        let mut from_secret = deployment();
        from_secret["spec"]["template"]["spec"]["containers"][1]["env"] =
            json!([{ "name": "LD_PRELOAD", "valueFrom": { "configMapKeyRef": { "name": "c", "key": "k" } } }]);
        let message = usage(enable_patch(&from_secret, &workload, &cuda(None), &stamp));
        assert!(message.contains("metrics") && message.contains("valueFrom"), "{message}");

        let mut inherited = dgd();
        inherited["spec"]["services"]["VllmDecodeWorker"]["envs"] =
            json!([{ "name": "LD_PRELOAD", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } }]);
        let message = usage(enable_patch(&inherited, &decode(), &cuda(None), &stamp));
        assert!(message.contains("valueFrom") && message.contains("/envs"), "{message}");

        let patched = enabled(&deployment(), &workload, &cuda(None));
        let message = usage(enable_patch(&patched, &workload, &ShimSpec::new(Kind::Ucx), &stamp));
        assert!(message.contains("already shimmed") && message.contains(FAULT), "{message}");

        let mut by_hand = deployment();
        by_hand["spec"]["template"]["spec"]["containers"][1]["env"] =
            json!([{ "name": "LD_PRELOAD", "value": "/x.so /opt/libfaultline_cuda.so" }]);
        let message = usage(enable_patch(&by_hand, &workload, &cuda(None), &stamp));
        assert!(message.contains("already preloads libfaultline_cuda.so"), "{message}");
        assert!(enable_patch(&by_hand, &workload, &ShimSpec::new(Kind::Ucx), &stamp).is_ok(), "another shim");

        let mut twice = deployment();
        twice["spec"]["template"]["spec"]["containers"][1]["env"] =
            json!([{ "name": "FAULTLINE_ENABLED", "value": "0" }, { "name": "FAULTLINE_ENABLED", "value": "1" }]);
        let message = usage(enable_patch(&twice, &workload, &cuda(None), &stamp));
        assert!(message.contains("FAULTLINE_ENABLED 2 times"), "{message}");

        let mut volume = deployment();
        volume["spec"]["template"]["spec"]["volumes"][0]["name"] = json!(VOLUME_NAME);
        assert!(usage(enable_patch(&volume, &workload, &cuda(None), &stamp)).contains("already has a volume"));

        let message = usage(enable_patch(
            &deployment(),
            &workload,
            &ShimSpec { xid: Some(79), ..ShimSpec::new(Kind::Ucx) },
            &stamp,
        ));
        assert!(message.contains("--xid applies to the CUDA shim only"), "{message}");
        let message = usage(enable_patch(&deployment(), &workload, &cuda(Some(1234)), &stamp));
        assert!(message.contains("XID 1234 is not in faultline's catalog"), "{message}");
        let message = usage(enable_patch(&deployment(), &workload, &cuda(Some(13)), &stamp));
        assert!(message.contains("no preset for XID 13") && message.contains("43, 48, 74, 79"), "{message}");
        for bad in ["", "Node_1", "-n", "a".repeat(254).as_str()] {
            let spec = ShimSpec { node: Some(bad.to_string()), ..cuda(None) };
            assert!(usage(enable_patch(&deployment(), &workload, &spec, &stamp)).contains("invalid --node"), "{bad}");
        }

        let missing = Workload::Dgd { name: "disagg".into(), service: "Planner".into() };
        let message = usage(enable_patch(&dgd(), &missing, &cuda(None), &stamp));
        assert!(
            message.contains("has no service Planner (services: Frontend, VllmDecodeWorker, VllmPrefillWorker)"),
            "{message}"
        );
        let message = usage(enable_patch(&statefulset(), &workload, &cuda(None), &stamp));
        assert!(message.contains("expected Deployment vllm, got StatefulSet vllm"), "{message}");
        let no_containers = json!({ "kind": "Deployment", "metadata": { "name": "vllm" }, "spec": {} });
        assert!(usage(enable_patch(&no_containers, &workload, &cuda(None), &stamp)).contains("has no containers"));
        let mut odd = deployment();
        odd["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"] = json!("zone-a");
        assert!(usage(enable_patch(&odd, &workload, &cuda(None), &stamp)).contains("nodeSelectorTerms is not a list"));
    }

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
    fn empty_terms_stay_empty_and_requirements_are_not_repeated() {
        let mut original = deployment();
        let required = &mut original["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"];
        // An empty term matches no node; with ours in it, it would match every GPU node.
        required["nodeSelectorTerms"] = json!([{}, { "matchExpressions": [gpu_requirement()] }]);
        let workload = Workload::Deployment("vllm".into());
        let patched = enabled(&original, &workload, &cuda(None));
        assert_eq!(
            patched["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({ "nodeSelectorTerms": [{}, { "matchExpressions": [gpu_requirement()] }] })
        );
        assert_round_trip(&original, &workload, &cuda(None));
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

    #[test]
    fn merge_patch_diff_and_the_reference_merge_agree_with_rfc_7386() {
        // RFC 7386 appendix A, a selection.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ] {
            assert_eq!(merge(&target, &patch), result, "{target} + {patch}");
        }
        let from = json!({ "a": 1, "b": { "c": [1, 2], "d": "x", "e": { "f": 1 } }, "g": 3 });
        let to = json!({ "a": 1, "b": { "c": [1], "e": { "f": 1 }, "h": {} }, "i": [] });
        let patch = merge_patch_diff(&from, &to);
        assert_eq!(patch, json!({ "g": null, "b": { "d": null, "c": [1], "h": {} }, "i": [] }));
        assert_eq!(merge(&from, &patch), to);
        assert_eq!(merge_patch_diff(&from, &from), json!({}));
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(Workload::Deployment("d".into()).pod_spec_pointer(), "/spec/template/spec");
        assert_eq!(decode().pod_spec_pointer(), "/spec/services/VllmDecodeWorker/extraPodSpec");
        assert_eq!(decode().object_type(), ObjectType::DYNAMO_GRAPH_DEPLOYMENT);
        assert_eq!(Workload::StatefulSet("s".into()).object_type(), ObjectType::STATEFUL_SET);
        assert_eq!(decode().pod_spec(&dgd()).unwrap()["mainContainer"]["image"], "vllm-runtime:1");
        assert_eq!(decode().to_string(), "DynamoGraphDeployment disagg (service VllmDecodeWorker)");
        assert_eq!(Workload::StatefulSet("s".into()).to_string(), "StatefulSet s");
        assert_eq!(library_path(Kind::Ucx), "/var/lib/faultline/libfaultline_ucx.so");
        assert!(POLICY_FILE.starts_with(LIBRARY_DIR), "the mount carries the policy file too");
        for preset in shm_proto::codes::XID_PRESETS {
            assert!(xid::lookup(preset.xid).is_some(), "preset XID {} is in the catalog", preset.xid);
        }
    }
}
