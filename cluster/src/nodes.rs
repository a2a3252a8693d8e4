//! GPU nodes as faultline shows them: cordon state, taints, GPU count, whether the node agent is ready there, and
//! the XIDs faultline injected recently. [`summarize`] is pure (objects in, rows out) so the dashboard and tests
//! can use it on any snapshot; [`gpu_nodes`] fetches the snapshot.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use serde::Serialize;

use super::kube_api::KubeApi;
use super::ledger;
use super::xid_inject::EVENT_REASON;
use super::ClusterError;

/// The label the NVIDIA GPU operator / feature discovery puts on GPU nodes (the agent's nodeSelector).
pub const GPU_LABEL: (&str, &str) = ("nvidia.com/gpu.present", "true");

/// The extended resource that counts a node's GPUs.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// How many recent XID events each node keeps in a summary.
pub const RECENT_XIDS: usize = 5;

/// One GPU node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuNode {
    /// Node name.
    pub name: String,
    /// The `Ready` condition (`None` when the node reports none).
    pub ready: Option<bool>,
    /// `spec.unschedulable` (kubectl cordon, or NVSentinel's quarantine).
    pub cordoned: bool,
    /// Taints as `key=value:Effect`.
    pub taints: Vec<String>,
    /// `nvidia.com/gpu` capacity.
    pub gpus: Option<u32>,
    /// The node agent on this node, if any.
    pub agent: Option<AgentPod>,
    /// The most recent XIDs faultline injected here, newest first.
    pub recent_xids: Vec<XidEvent>,
}

/// The node agent's pod on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentPod {
    /// Pod name.
    pub name: String,
    /// `Pending`, `Running`, …
    pub phase: String,
    /// The pod's `Ready` condition.
    pub ready: bool,
}

/// An XID injection recorded as a Kubernetes Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XidEvent {
    /// The node.
    pub node: String,
    /// The fault id (label on the Event).
    pub fault_id: Option<String>,
    /// The XID (annotation on the Event; from the message for Events without it).
    pub xid: Option<u32>,
    /// The Event's message.
    pub message: String,
    /// When (RFC 3339), if the Event says.
    pub time: Option<String>,
}

/// Fetches GPU nodes, agent pods and XID events, and summarises them.
pub async fn gpu_nodes(api: &KubeApi) -> Result<Vec<GpuNode>, ClusterError> {
    let nodes = api.list_nodes(GPU_LABEL.0, GPU_LABEL.1).await?;
    let pods = api.list_agent_pods(None).await?;
    let events = api.list_events(EVENT_REASON).await?;
    Ok(summarize(&nodes, &pods, &events))
}

/// Summarises `nodes` (GPU nodes only), with their agent pods from `pods` and XID events from `events`.
pub fn summarize(nodes: &[Node], pods: &[Pod], events: &[Event]) -> Vec<GpuNode> {
    let xid_events = xid_events(events);
    let mut rows: Vec<GpuNode> = nodes
        .iter()
        .filter(|node| is_gpu_node(node))
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let spec = node.spec.as_ref();
            let status = node.status.as_ref();
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map(|c| c.status == "True");
            let gpus = status
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get(GPU_RESOURCE))
                .and_then(|q| q.0.parse().ok());
            let agent = agent_pod_on(pods, &name).map(|pod| AgentPod {
                name: pod.metadata.name.clone().unwrap_or_default(),
                phase: pod_phase(pod),
                ready: pod_ready(pod),
            });
            let recent_xids = xid_events.get(&name).cloned().unwrap_or_default();
            GpuNode {
                ready,
                cordoned: spec.and_then(|s| s.unschedulable).unwrap_or(false),
                taints: taints(node),
                gpus,
                agent,
                recent_xids,
                name,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// Whether `node` carries the GPU label.
pub fn is_gpu_node(node: &Node) -> bool {
    node.metadata.labels.as_ref().and_then(|l| l.get(GPU_LABEL.0)).is_some_and(|v| v == GPU_LABEL.1)
}

/// The agent pod scheduled on `node` (a running one first).
pub fn agent_pod_on<'a>(pods: &'a [Pod], node: &str) -> Option<&'a Pod> {
    let mut on_node: Vec<&Pod> =
        pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)).collect();
    on_node.sort_by_key(|p| (!pod_ready(p), p.metadata.deletion_timestamp.is_some()));
    on_node.first().copied()
}

/// The pod's phase, `Unknown` when it has none yet.
pub fn pod_phase(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".to_string())
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's taints as `key=value:Effect` (`key:Effect` without a value).
pub fn taints(node: &Node) -> Vec<String> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    taints
        .into_iter()
        .flatten()
        .map(|t| match &t.value {
            Some(value) if !value.is_empty() => format!("{}={value}:{}", t.key, t.effect),
            _ => format!("{}:{}", t.key, t.effect),
        })
        .collect()
}

/// faultline's XID events per node, newest first, at most [`RECENT_XIDS`] each.
pub fn xid_events(events: &[Event]) -> BTreeMap<String, Vec<XidEvent>> {
    let mut by_node: BTreeMap<String, Vec<XidEvent>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.reason.as_deref() == Some(EVENT_REASON)) {
        if event.involved_object.kind.as_deref() != Some("Node") {
            continue;
        }
        let Some(node) = event.involved_object.name.clone() else { continue };
        let time = event.last_timestamp.as_ref().or(event.first_timestamp.as_ref()).map(|t| t.0.to_string());
        let fault_id = event.metadata.labels.as_ref().and_then(|l| l.get(ledger::FAULT_ID_LABEL)).cloned();
        let message = event.message.clone().unwrap_or_default();
        let annotated = event.metadata.annotations.as_ref().and_then(|a| a.get(ledger::XID_ANNOTATION));
        let xid = match annotated {
            Some(value) => value.trim().parse().ok(),
            None => xid_of_message(&message),
        };
        by_node.entry(node.clone()).or_default().push(XidEvent { node, fault_id, xid, message, time });
    }
    for list in by_node.values_mut() {
        // RFC 3339 UTC timestamps sort as text.
        list.sort_by(|a, b| b.time.cmp(&a.time));
        list.truncate(RECENT_XIDS);
    }
    by_node
}

/// The XID number in the message of one of faultline's XID Events (it starts `XID <n> (`): how Events recorded
/// before [`ledger::XID_ANNOTATION`] existed are read.
pub fn xid_of_message(message: &str) -> Option<u32> {
    let rest = message.strip_prefix("XID ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn event(name: &str, annotations: &[(&str, &str)], message: &str) -> Event {
        let annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Event {
            metadata: ObjectMeta { name: Some(name.into()), annotations: Some(annotations), ..ObjectMeta::default() },
            involved_object: ObjectReference {
                kind: Some("Node".into()),
                name: Some("gpu-a".into()),
                ..ObjectReference::default()
            },
            reason: Some(EVENT_REASON.into()),
            message: Some(message.into()),
            ..Event::default()
        }
    }

    #[test]
    fn the_xid_number_comes_from_the_event_message() {
        assert_eq!(xid_of_message("XID 79 (GPU has fallen off the bus, critical) injected on GPU 0"), Some(79));
        assert_eq!(xid_of_message("something else"), None);
    }

    #[test]
    fn the_xid_annotation_wins_and_the_message_is_the_fallback() {
        let events = [
            event("annotated", &[(ledger::XID_ANNOTATION, "48")], "XID 79 (GPU has fallen off the bus, critical)"),
            event("older", &[], "XID 94 (Contained ECC error, medium) injected on GPU 1"),
            event("odd", &[(ledger::XID_ANNOTATION, "forty-eight")], "XID 79 (GPU has fallen off the bus)"),
            event("neither", &[], "something else"),
        ];
        let by_node = xid_events(&events);
        let xids: Vec<Option<u32>> = by_node["gpu-a"].iter().map(|e| e.xid).collect();
        assert_eq!(xids, [Some(48), Some(94), None, None], "an unreadable annotation is not overridden");
    }
}
