//! The merge patches of `shim enable` and `shim disable`: checking the workload, editing a copy of it while the
//! undo record notes what changed, and diffing the result against the original.

use serde_json::{json, Map, Value};

use super::json_path::{has_name, join, keys, lookup, named, pointer, remove, Seg};
use super::merge_patch::merge_patch_diff;
use super::record::{read_record, restore, write_record, Editor, Entry, Record, RECORD_VERSION};
use super::workload::{not_a, ShimSpec, Workload};
use super::{library_file, library_path, GPU_NODE_LABEL, LIBRARY_DIR, RECORD_ANNOTATION, VOLUME_NAME};
use crate::ledger::{Stamp, FAULT_ID_LABEL};
use crate::ClusterError;

/// The merge patch that shims `workload`'s pods (see the [`shim_rollout`](super) module documentation for what
/// changes).
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
        for (name, entry) in spec.env(preload, &target.name) {
            edit.set(&named(&env, name), entry);
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
    for (name, _) in spec.env(String::new(), &target.name) {
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

#[cfg(test)]
mod tests {
    use shm_proto::Kind;

    use super::*;
    use crate::ledger::{CREATED_BY_ANNOTATION, EXPIRES_ANNOTATION, FAULT_KIND_LABEL, MANAGED_BY};
    use crate::shim_rollout::fixtures::{
        affinity, cuda, decode, deployment, dgd, enabled, merge, stamp, statefulset, FAULT,
    };
    use crate::shim_rollout::{shimmed, shims, ShimInfo};

    const CUDA: &str = "/var/lib/faultline/libfaultline_cuda.so";

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
        // The pod identity the shim records: the downward API for namespace and pod, the container by name.
        let entry = |name: &str| worker["env"].as_array().unwrap().iter().find(|e| e["name"] == name).cloned();
        assert_eq!(
            entry("FAULTLINE_POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name",
            "{worker}"
        );
        assert_eq!(
            entry("FAULTLINE_POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        assert_eq!(env(worker, "FAULTLINE_CONTAINER_NAME"), Some("worker"));
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

        let info = shimmed(&patched, &Workload::Deployment("vllm".into())).unwrap();
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
        let info = shimmed(&patched, &decode()).unwrap();
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
        assert_eq!(env(worker, "FAULTLINE_POLICY_FILE"), None, "that node policy file is the CUDA shim's");
        assert_eq!(env(worker, "FAULTLINE_UCX_POLICY_FILE"), Some("/var/lib/faultline/ucx.policy"), "this one UCX's");
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
}
