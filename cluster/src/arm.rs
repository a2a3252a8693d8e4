//! `faultline cluster shim arm|disarm`: arm a node so that CUDA shims started there fail from their first call
//! (the node policy file, written by `faultline node arm` in the node's agent pod), and record it in the ledger;
//! `faultline cluster nic-failure` arms the node's UCX shims the same way (`faultline node arm --kind ucx`: they
//! fail their endpoints with a code).
//!
//! The ledger record is a ConfigMap `faultline-armed-<node>` (`faultline-armed-ucx-<node>` for UCX) in the agent's
//! namespace, stamped like every faultline object; it says which shims ([`KIND_KEY`]), so recovering disarms the
//! right file. Its fixed name makes "one arming per node and shim" atomic (a second `arm` gets 409 Conflict), and
//! the order of steps keeps the ledger complete: the record is created before the node is armed (and removed
//! again if arming fails), and removed only after the node is disarmed. When a scenario also failed the live
//! processes on the node, the record says so ([`LIVE_KEY`], and for UCX the settings each process had before,
//! [`LIVE_SETTINGS_KEY`]): disarming turns their faults off again (UCX: puts their settings back).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};
use shm_proto::Kind;

use super::agent::{self, node_command};
use super::exec::PodExec;
use super::kube_api::{KubeApi, ObjectType};
use super::ledger::{FaultKind, Stamp};
use super::scenario;
use super::ClusterError;
use crate::node::arm::{ArmReport, Arming};

/// The ConfigMap key naming the armed node.
pub const NODE_KEY: &str = "node";
/// The ConfigMap key holding the XID.
pub const XID_KEY: &str = "xid";
/// The ConfigMap key naming the armed shims, `cuda` or `ucx` (absent: `cuda`, as records before UCX arming).
pub const KIND_KEY: &str = "kind";
/// The ConfigMap key holding the UCX status (UCX arming).
pub const CODE_KEY: &str = "code";
/// The ConfigMap key saying the live processes of the armed kind on the node were failed too (disarming turns
/// them off).
pub const LIVE_KEY: &str = "live-processes-failed";
/// The ConfigMap key holding the `set` command that puts each live UCX process back as it was before it was
/// failed (its site, hooks, strategy, pool, enabled), a JSON object by host pid (disarming runs them).
pub const LIVE_SETTINGS_KEY: &str = "live-settings";

/// The ledger record's name for `node`'s CUDA arming.
pub fn record_name(node: &str) -> String {
    format!("faultline-armed-{node}")
}

/// The ledger record's name for `node` armed for `kind`'s shims.
pub fn record_name_of(node: &str, kind: Kind) -> String {
    match kind {
        Kind::Cuda => record_name(node),
        Kind::Ucx => format!("faultline-armed-ucx-{node}"),
    }
}

/// Which shims ledger record `record` (a ConfigMap from [`record`]) armed.
pub fn record_kind(record: &Value) -> Kind {
    record["data"][KIND_KEY].as_str().and_then(Kind::from_name).unwrap_or(Kind::Cuda)
}

/// What ledger record `record` armed the node with, in words (`faults`' summary).
pub fn record_summary(record: &Value) -> String {
    let node = record["data"][NODE_KEY].as_str().unwrap_or("?");
    match record_kind(record) {
        Kind::Cuda => format!(
            "node {node} armed: CUDA shims fail from start-up as with XID {}",
            record["data"][XID_KEY].as_str().unwrap_or("?")
        ),
        Kind::Ucx => {
            let code = record["data"][CODE_KEY].as_str().and_then(|c| c.parse().ok());
            let code = code.map_or("?".to_string(), crate::node::arm::ucx_code_text);
            format!("node {node} armed: UCX shims fail their endpoints from start-up with {code}")
        }
    }
}

/// The live processes a scenario failed on the node when it armed it (disarming turns their faults off again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFailed {
    /// Host pid → the words of the `set` command that puts it back (UCX; empty for CUDA, whose processes are
    /// disabled).
    pub restore: BTreeMap<u32, Vec<String>>,
}

impl LiveFailed {
    /// [`LIVE_SETTINGS_KEY`]'s value.
    pub fn settings_text(&self) -> String {
        serde_json::to_string(&self.restore).unwrap_or_default()
    }

    /// Reads [`LIVE_SETTINGS_KEY`]'s value (nothing, when it does not parse: those processes are disabled).
    pub fn parse_settings(text: &str) -> LiveFailed {
        LiveFailed { restore: serde_json::from_str(text).unwrap_or_default() }
    }
}

/// An armed node, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmedNode {
    /// The fault id.
    pub fault_id: String,
    /// The node.
    pub node: String,
    /// Which shims: `cuda` or `ucx`.
    pub kind: &'static str,
    /// The XID its CUDA shims fail with (CUDA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xid: Option<u32>,
    /// The UCX status its UCX shims fail their endpoints with (UCX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// When the reaper disarms it (RFC 3339; `None`: when recovered).
    pub expires_at: Option<String>,
    /// The agent pod that wrote the policy file.
    pub pod: String,
    /// The agent's report.
    pub agent: ArmReport,
}

impl ArmedNode {
    /// What processes started on the node will see, e.g. `CUDA shims started there fail as with XID 79`.
    pub fn describe(&self) -> String {
        let arming = match (self.xid, self.code) {
            (_, Some(code)) => Arming::Ucx { code },
            (xid, None) => Arming::Cuda { xid: xid.unwrap_or_default() },
        };
        let shims = if arming.kind() == Kind::Ucx { "UCX" } else { "CUDA" };
        format!("{shims} shims started there {}", arming.describe())
    }
}

/// The ledger record (a ConfigMap) of `node` armed with `arming` under `stamp`; `live`: the live processes the
/// caller failed too.
pub fn record(node: &str, arming: Arming, namespace: &str, stamp: &Stamp, live: Option<&LiveFailed>) -> Value {
    let mut data = BTreeMap::from([(NODE_KEY, node.to_string())]);
    match arming {
        Arming::Cuda { xid } => {
            data.insert(XID_KEY, xid.to_string());
        }
        Arming::Ucx { code } => {
            data.insert(KIND_KEY, Kind::Ucx.name().to_string());
            data.insert(CODE_KEY, code.to_string());
        }
    }
    if let Some(live) = live {
        data.insert(LIVE_KEY, "true".to_string());
        if !live.restore.is_empty() {
            data.insert(LIVE_SETTINGS_KEY, live.settings_text());
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name_of(node, arming.kind()),
            "namespace": namespace,
            "labels": stamp.labels(),
            "annotations": stamp.annotations(),
        },
        "data": data,
    })
}

/// Arms `node`'s CUDA shims with `xid` (see the module docs) under `stamp`'s fault id.
pub async fn arm_node(
    api: &KubeApi,
    exec: &impl PodExec,
    node: &str,
    xid: u32,
    stamp: &Stamp,
) -> Result<ArmedNode, ClusterError> {
    arm_node_recording(api, exec, node, Arming::Cuda { xid }, stamp, None).await
}

/// Arms `node`'s shims with `arming`, recording the live processes the caller also fails there (`live`), so
/// that disarming turns their faults off again.
pub async fn arm_node_recording(
    api: &KubeApi,
    exec: &impl PodExec,
    node: &str,
    arming: Arming,
    stamp: &Stamp,
    live: Option<&LiveFailed>,
) -> Result<ArmedNode, ClusterError> {
    arming.check().map_err(|e| ClusterError::Usage(e.to_string()))?;
    let kind = arming.kind();
    let stamp = stamp.with_kind(FaultKind::ArmedNode);
    let agent = agent::find(api, node).await?;
    let namespace = api.namespace().to_string();
    match api.create(ObjectType::CONFIG_MAP, &namespace, &record(node, arming, &namespace, &stamp, live)).await {
        Ok(_) => {}
        Err(ClusterError::Api { code: 409, .. }) => {
            let holder = armed_by(api, node, kind).await?.unwrap_or_else(|| "another fault".to_string());
            return Err(ClusterError::Usage(format!(
                "node {node}'s {} shims are already armed by {holder}; `faultline cluster recover {holder}` disarms \
                 them",
                kind.name()
            )));
        }
        Err(other) => return Err(other),
    }
    let mut command = node_command(["--kind", kind.name(), "arm"]);
    match arming {
        Arming::Cuda { xid } => command.extend(["--xid".to_string(), xid.to_string()]),
        Arming::Ucx { code } => command.extend(["--code".to_string(), code.to_string()]),
    }
    command.extend(["--fault-id".to_string(), stamp.fault_id.clone()]);
    if let Some(expires) = stamp.expires_at {
        command.extend(["--expires-at".to_string(), expires.to_string()]);
    }
    match agent.run::<ArmReport>(exec, &command).await {
        Ok(report) => Ok(ArmedNode {
            expires_at: stamp.expires_at.map(|t| t.to_string()),
            fault_id: stamp.fault_id,
            node: node.to_string(),
            kind: kind.name(),
            xid: match arming {
                Arming::Cuda { xid } => Some(xid),
                Arming::Ucx { .. } => None,
            },
            code: match arming {
                Arming::Ucx { code } => Some(code),
                Arming::Cuda { .. } => None,
            },
            pod: agent.pod,
            agent: report,
        }),
        Err(error) => {
            // Not armed: the record must not claim it is (best effort; a leftover record is reaped harmlessly).
            let _ = api.delete(ObjectType::CONFIG_MAP, &namespace, &record_name_of(node, kind)).await;
            Err(error)
        }
    }
}

/// The fault id holding the arming record of `node`'s `kind` shims, if any.
pub async fn armed_by(api: &KubeApi, node: &str, kind: Kind) -> Result<Option<String>, ClusterError> {
    let records = api.list_managed(ObjectType::CONFIG_MAP, Some(api.namespace())).await?;
    Ok(records
        .iter()
        .find(|r| r["data"][NODE_KEY] == node && record_kind(r) == kind)
        .and_then(|r| r["metadata"]["labels"][super::ledger::FAULT_ID_LABEL].as_str().map(str::to_string)))
}

/// Turns off the faults of the live `kind` processes on the agent's node (UCX: puts back the settings `live`
/// recorded, and disables the others).
async fn turn_off_live(
    agent: &agent::Agent,
    exec: &impl PodExec,
    kind: Kind,
    live: &LiveFailed,
) -> Result<(), ClusterError> {
    // Only if there is anything left to turn off: `disable` with no process is an error.
    let listed: Value = agent.run(exec, &node_command(["--kind", kind.name(), "--json", "ps"])).await?;
    let processes = listed["processes"].as_array().cloned().unwrap_or_default();
    if kind == Kind::Cuda {
        if !processes.is_empty() {
            agent.run::<Value>(exec, &node_command(["--kind", "cuda", "--json", "disable"])).await?;
        }
        return Ok(());
    }
    let mut alive = scenario::alive_pids(&listed);
    for (pid, words) in &live.restore {
        let Some(at) = alive.iter().position(|p| *p == u64::from(*pid)) else { continue };
        alive.remove(at);
        let mut command = node_command(scenario::pid_flags(&[u64::from(*pid)]));
        command.extend(["--kind", "ucx", "--json"].map(String::from));
        command.extend(words.iter().cloned());
        agent.run::<Value>(exec, &command).await?;
    }
    // Started after the node was armed: their faults came from the policy file.
    if !alive.is_empty() {
        let mut command = node_command(scenario::pid_flags(&alive));
        command.extend(["--kind", "ucx", "--json", "disable"].map(String::from));
        agent.run::<Value>(exec, &command).await?;
    }
    Ok(())
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
    let kind = record_kind(record);
    let agent = match agent::find(api, &node).await {
        Ok(agent) => {
            let command = node_command(["--kind", kind.name(), "disarm", "--fault-id", fault_id]);
            let report = agent.run::<ArmReport>(exec, &command).await?;
            if record["data"][LIVE_KEY] == "true" {
                let live = LiveFailed::parse_settings(record["data"][LIVE_SETTINGS_KEY].as_str().unwrap_or_default());
                turn_off_live(&agent, exec, kind, &live).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ucx_record_says_its_kind_code_and_the_settings_to_put_back() {
        let stamp = Stamp::new(FaultKind::ArmedNode, None);
        let set = |site: &str| vec!["set".to_string(), "--site".to_string(), site.to_string()];
        let live = LiveFailed { restore: BTreeMap::from([(41, set("post")), (42, set("completion"))]) };
        let ucx = record("gpu-a", Arming::Ucx { code: -80 }, "faultline-system", &stamp, Some(&live));
        assert_eq!(ucx["metadata"]["name"], "faultline-armed-ucx-gpu-a");
        assert_eq!(ucx["data"][KIND_KEY], "ucx");
        assert_eq!(ucx["data"][CODE_KEY], "-80");
        assert_eq!(ucx["data"][LIVE_KEY], "true");
        let text = ucx["data"][LIVE_SETTINGS_KEY].as_str().unwrap();
        assert_eq!(text, r#"{"41":["set","--site","post"],"42":["set","--site","completion"]}"#);
        assert_eq!(LiveFailed::parse_settings(text), live);
        assert_eq!(LiveFailed::parse_settings("not json"), LiveFailed::default());
        assert_eq!(record_kind(&ucx), Kind::Ucx);
        assert_eq!(
            record_summary(&ucx),
            "node gpu-a armed: UCX shims fail their endpoints from start-up with -80 (UCS_ERR_ENDPOINT_TIMEOUT)"
        );

        let cuda = record("gpu-a", Arming::Cuda { xid: 79 }, "faultline-system", &stamp, None);
        assert_eq!(cuda["metadata"]["name"], "faultline-armed-gpu-a");
        assert_eq!((cuda["data"].get(KIND_KEY), cuda["data"].get(LIVE_KEY)), (None, None));
        assert_eq!(record_kind(&cuda), Kind::Cuda, "records from before UCX arming are CUDA's");
        assert_eq!(record_summary(&cuda), "node gpu-a armed: CUDA shims fail from start-up as with XID 79");
        let failed =
            record("gpu-a", Arming::Cuda { xid: 79 }, "faultline-system", &stamp, Some(&LiveFailed::default()));
        assert_eq!((failed["data"][LIVE_KEY].as_str(), failed["data"].get(LIVE_SETTINGS_KEY)), (Some("true"), None));
    }
}
