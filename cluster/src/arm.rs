//! `faultline cluster shim arm|disarm`: arm a node so that CUDA shims started there fail from their first call
//! (the node policy file, written by `faultline node arm` in the node's agent pod), and record it in the ledger.
//!
//! The ledger record is a ConfigMap `faultline-armed-<node>` in the agent's namespace, stamped like every
//! faultline object. Its fixed name makes "one arming per node" atomic (a second `arm` gets 409 Conflict), and
//! the order of steps keeps the ledger complete: the record is created before the node is armed (and removed
//! again if arming fails), and removed only after the node is disarmed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::agent::{self, node_command};
use super::exec::PodExec;
use super::kube_api::{KubeApi, ObjectType};
use super::ledger::{FaultKind, Stamp};
use super::ClusterError;
use crate::node::arm::ArmReport;

/// The ConfigMap key naming the armed node.
pub const NODE_KEY: &str = "node";
/// The ConfigMap key holding the XID.
pub const XID_KEY: &str = "xid";
/// The ConfigMap key saying the live CUDA processes on the node were failed too (disarming turns them off).
pub const LIVE_KEY: &str = "live-processes-failed";

/// The ledger record's name for `node`.
pub fn record_name(node: &str) -> String {
    format!("faultline-armed-{node}")
}

/// An armed node, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmedNode {
    /// The fault id.
    pub fault_id: String,
    /// The node.
    pub node: String,
    /// The XID its CUDA shims fail with.
    pub xid: u32,
    /// When the reaper disarms it (RFC 3339; `None`: when recovered).
    pub expires_at: Option<String>,
    /// The agent pod that wrote the policy file.
    pub pod: String,
    /// The agent's report.
    pub agent: ArmReport,
}

/// The ledger record (a ConfigMap) of `node` armed with `xid` under `stamp`.
pub fn record(node: &str, xid: u32, namespace: &str, stamp: &Stamp, live: bool) -> Value {
    let mut data = BTreeMap::from([(NODE_KEY, node.to_string()), (XID_KEY, xid.to_string())]);
    if live {
        data.insert(LIVE_KEY, "true".to_string());
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name(node),
            "namespace": namespace,
            "labels": stamp.labels(),
            "annotations": stamp.annotations(),
        },
        "data": data,
    })
}

/// Arms `node` with `xid` (see the module docs) under `stamp`'s fault id.
pub async fn arm_node(
    api: &KubeApi,
    exec: &impl PodExec,
    node: &str,
    xid: u32,
    stamp: &Stamp,
) -> Result<ArmedNode, ClusterError> {
    arm_node_recording(api, exec, node, xid, stamp, false).await
}

/// [`arm_node`], recording whether the caller also fails the node's live CUDA processes (`live`), so that
/// disarming turns their faults off again.
pub async fn arm_node_recording(
    api: &KubeApi,
    exec: &impl PodExec,
    node: &str,
    xid: u32,
    stamp: &Stamp,
    live: bool,
) -> Result<ArmedNode, ClusterError> {
    crate::node::arm::cuda_preset(xid).map_err(|e| ClusterError::Usage(e.to_string()))?;
    let stamp = stamp.with_kind(FaultKind::ArmedNode);
    let agent = agent::find(api, node).await?;
    let namespace = api.namespace().to_string();
    match api.create(ObjectType::CONFIG_MAP, &namespace, &record(node, xid, &namespace, &stamp, live)).await {
        Ok(_) => {}
        Err(ClusterError::Api { code: 409, .. }) => {
            let holder = armed_by(api, node).await?.unwrap_or_else(|| "another fault".to_string());
            return Err(ClusterError::Usage(format!(
                "node {node} is already armed by {holder}; `faultline cluster recover {holder}` disarms it"
            )));
        }
        Err(other) => return Err(other),
    }
    let mut command = node_command(["arm", "--xid"]);
    command.extend([xid.to_string(), "--fault-id".to_string(), stamp.fault_id.clone()]);
    if let Some(expires) = stamp.expires_at {
        command.extend(["--expires-at".to_string(), expires.to_string()]);
    }
    match agent.run::<ArmReport>(exec, &command).await {
        Ok(report) => Ok(ArmedNode {
            expires_at: stamp.expires_at.map(|t| t.to_string()),
            fault_id: stamp.fault_id,
            node: node.to_string(),
            xid,
            pod: agent.pod,
            agent: report,
        }),
        Err(error) => {
            // Not armed: the record must not claim it is (best effort; a leftover record is reaped harmlessly).
            let _ = api.delete(ObjectType::CONFIG_MAP, &namespace, &record_name(node)).await;
            Err(error)
        }
    }
}

/// The fault id holding `node`'s arming record, if any.
pub async fn armed_by(api: &KubeApi, node: &str) -> Result<Option<String>, ClusterError> {
    let records = api.list_managed(ObjectType::CONFIG_MAP, Some(api.namespace())).await?;
    Ok(records
        .iter()
        .find(|r| r["data"][NODE_KEY] == node)
        .and_then(|r| r["metadata"]["labels"][super::ledger::FAULT_ID_LABEL].as_str().map(str::to_string)))
}

/// What disarming did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disarmed {
    /// The node.
    pub node: String,
    /// The agent's report (`None` when the node no longer exists: nothing left to disarm).
    pub agent: Option<ArmReport>,
    /// Whether the ledger record was still there.
    pub record_removed: bool,
}

/// Disarms the node of ledger record `record` (a ConfigMap from [`record`]) and removes the record. Idempotent.
pub async fn disarm_node(api: &KubeApi, exec: &impl PodExec, record: &Value) -> Result<Disarmed, ClusterError> {
    let node = record["data"][NODE_KEY].as_str().unwrap_or_default().to_string();
    let fault_id = record["metadata"]["labels"][super::ledger::FAULT_ID_LABEL].as_str().unwrap_or_default();
    let name = record["metadata"]["name"].as_str().unwrap_or_default();
    let agent = match agent::find(api, &node).await {
        Ok(agent) => {
            let command = node_command(["disarm", "--fault-id", fault_id]);
            let report = agent.run::<ArmReport>(exec, &command).await?;
            if record["data"][LIVE_KEY] == "true" {
                // Only if there is anything left to turn off: `disable` with no process is an error.
                let listed: Value = agent.run(exec, &node_command(["--kind", "cuda", "--json", "ps"])).await?;
                if listed["processes"].as_array().is_some_and(|p| !p.is_empty()) {
                    agent.run::<Value>(exec, &node_command(["--kind", "cuda", "--json", "disable"])).await?;
                }
            }
            Some(report)
        }
        // A node that is gone has no policy file left to remove.
        Err(ClusterError::NodeNotFound { .. }) => None,
        Err(other) => return Err(other),
    };
    let record_removed = api.delete(ObjectType::CONFIG_MAP, api.namespace(), name).await?;
    Ok(Disarmed { node, agent, record_removed })
}
