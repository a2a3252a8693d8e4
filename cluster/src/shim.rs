//! `faultline cluster shim enable|disable`: fetch the workload, compute the merge patch ([`super::shim_rollout`]),
//! apply it, and follow the rollout until the new pods are up (or a timeout), reporting progress.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::kube_api::{KubeApi, ObjectType};
use super::ledger::{FaultKind, Stamp};
use super::shim_rollout::{self, ShimSpec, Workload};
use super::ClusterError;

/// What a shim action did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShimChange {
    /// The fault id (enable: the new one; disable: the one undone).
    pub fault_id: Option<String>,
    /// The workload, in words.
    pub workload: String,
    /// Its namespace.
    pub namespace: String,
    /// Whether anything was patched (disable of an unshimmed workload patches nothing).
    pub changed: bool,
    /// The rollout's end state, if it was followed.
    pub rollout: Option<RolloutState>,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutState {
    /// Whether every replica runs the new pod template.
    pub done: bool,
    /// In words, e.g. `2/3 updated, 1/3 available`.
    pub text: String,
}

/// The rollout state of a Deployment or StatefulSet as its status says (pure); `None` for types without a
/// standard rollout status (a DynamoGraphDeployment: its operator rolls the pods out).
pub fn rollout_state(object_type: ObjectType, object: &Value) -> Option<RolloutState> {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let status = &object["status"];
    let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = int(&object["metadata"]["generation"]);
    let observed = int(&status["observedGeneration"]);
    let updated = int(&status["updatedReplicas"]);
    let replicas = int(&status["replicas"]);
    let (ready, ready_word) = match object_type {
        ObjectType::DEPLOYMENT => (int(&status["availableReplicas"]), "available"),
        ObjectType::STATEFUL_SET => (int(&status["readyReplicas"]), "ready"),
        _ => return None,
    };
    let revisions_match = object_type != ObjectType::STATEFUL_SET
        || status["updateRevision"].is_null()
        || status["currentRevision"] == status["updateRevision"];
    let done = generation > 0
        && observed >= generation
        && updated == wanted
        && replicas == wanted
        && ready == wanted
        && revisions_match;
    let text = if observed < generation || generation == 0 {
        "waiting for the controller to see the change".to_string()
    } else {
        format!("{updated}/{wanted} updated, {ready}/{wanted} {ready_word}, {replicas} running")
    };
    Some(RolloutState { done, text })
}

/// How to follow a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follow {
    /// Give up after this long (the change stays; it is in the ledger).
    pub timeout: Duration,
    /// Look this often.
    pub interval: Duration,
}

/// Shims `workload` in `namespace` (`stamp` names the fault) and follows the rollout when `follow` is given.
pub async fn enable(
    api: &KubeApi,
    namespace: &str,
    workload: &Workload,
    spec: &ShimSpec,
    stamp: &Stamp,
    follow: Option<Follow>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<ShimChange, ClusterError> {
    let stamp = stamp.with_kind(FaultKind::Shim);
    let object = fetch(api, namespace, workload).await?;
    let patch = guarded(shim_rollout::enable_patch(&object, workload, spec, &stamp)?, &object);
    api.patch(workload.object_type(), namespace, workload.name(), &patch).await?;
    progress(&format!("patched {workload} in namespace {namespace} (fault {})", stamp.fault_id));
    let rollout = follow_rollout(api, namespace, workload, follow, progress).await?;
    Ok(ShimChange {
        fault_id: Some(stamp.fault_id),
        workload: workload.to_string(),
        namespace: namespace.to_string(),
        changed: true,
        rollout,
    })
}

/// Restores `workload` exactly as it was before `enable` (idempotent) and follows the rollout.
pub async fn disable(
    api: &KubeApi,
    namespace: &str,
    workload: &Workload,
    follow: Option<Follow>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<ShimChange, ClusterError> {
    let object = fetch(api, namespace, workload).await?;
    let fault_id = shim_rollout::shimmed(&object, workload).map(|s| s.fault_id);
    let Some(patch) = shim_rollout::disable_patch(&object, workload)? else {
        progress(&format!("{workload} in namespace {namespace} is not shimmed: nothing to restore"));
        return Ok(ShimChange {
            fault_id,
            workload: workload.to_string(),
            namespace: namespace.to_string(),
            changed: false,
            rollout: None,
        });
    };
    let patch = guarded(patch, &object);
    api.patch(workload.object_type(), namespace, workload.name(), &patch).await?;
    progress(&format!("restored {workload} in namespace {namespace}"));
    let rollout = follow_rollout(api, namespace, workload, follow, progress).await?;
    Ok(ShimChange {
        fault_id,
        workload: workload.to_string(),
        namespace: namespace.to_string(),
        changed: true,
        rollout,
    })
}

/// Adds the object's `resourceVersion` to `patch`, so the API server refuses it (409 Conflict) when someone changed
/// the workload between our read and our write: the patch replaces whole lists (containers, volumes), which
/// would otherwise drop their change.
fn guarded(mut patch: Value, object: &Value) -> Value {
    if let (Some(version), Some(map)) = (object["metadata"]["resourceVersion"].as_str(), patch.as_object_mut()) {
        let metadata = map.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("resourceVersion".to_string(), Value::String(version.to_string()));
        }
    }
    patch
}

async fn fetch(api: &KubeApi, namespace: &str, workload: &Workload) -> Result<Value, ClusterError> {
    let object_type = workload.object_type();
    api.get(object_type, namespace, workload.name()).await?.ok_or_else(|| {
        let crd = if object_type.is_custom() { " (or its CustomResourceDefinition is not installed)" } else { "" };
        ClusterError::Usage(format!("{} {} not found in namespace {namespace}{crd}", object_type.kind, workload.name()))
    })
}

async fn follow_rollout(
    api: &KubeApi,
    namespace: &str,
    workload: &Workload,
    follow: Option<Follow>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Option<RolloutState>, ClusterError> {
    let Some(follow) = follow else { return Ok(None) };
    let object_type = workload.object_type();
    let started = Instant::now();
    let mut last_text = String::new();
    loop {
        let object = fetch(api, namespace, workload).await?;
        let Some(state) = rollout_state(object_type, &object) else {
            progress(&format!("{workload}: its operator rolls the pods out; not followed"));
            return Ok(None);
        };
        if state.text != last_text {
            progress(&format!("rollout of {workload}: {}", state.text));
            last_text = state.text.clone();
        }
        if state.done || started.elapsed() >= follow.timeout {
            return Ok(Some(state));
        }
        tokio::time::sleep(follow.interval.min(follow.timeout.saturating_sub(started.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_deployment_is_rolled_out_when_every_replica_is_updated_and_available() {
        let mut object = json!({
            "metadata": {"generation": 4},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
        });
        let state = rollout_state(ObjectType::DEPLOYMENT, &object).unwrap();
        assert!(!state.done, "the controller has not seen generation 4 yet");
        object["status"] =
            json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 3});
        let state = rollout_state(ObjectType::DEPLOYMENT, &object).unwrap();
        assert_eq!((state.done, state.text.as_str()), (false, "2/3 updated, 3/3 available, 4 running"));
        object["status"] =
            json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        assert!(rollout_state(ObjectType::DEPLOYMENT, &object).unwrap().done);
    }

    #[test]
    fn a_stateful_set_also_needs_its_revisions_to_match() {
        let object = json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                       "currentRevision": "a", "updateRevision": "b"},
        });
        assert!(!rollout_state(ObjectType::STATEFUL_SET, &object).unwrap().done);
        assert_eq!(rollout_state(ObjectType::DYNAMO_GRAPH_DEPLOYMENT, &object), None);
    }
}
