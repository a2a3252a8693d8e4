//! Conditions of the cluster an experiment waits for (`node_cordoned`, `pods_ready`, `event`): each read through
//! [`KubeApi`], true or not now. The experiment polls them through a phase and keeps the first time each held.

use super::kube_api::KubeApi;
use super::names::Labels;
use super::nodes;
use super::ClusterError;

/// A state of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The node is cordoned (`spec.unschedulable`: kubectl cordon, or the health monitor's quarantine).
    NodeCordoned(String),
    /// Every pod with these labels in the namespace is Ready, there is at least one, and none is on `avoid_node`
    /// (the workload came back elsewhere).
    PodsReady {
        /// Where.
        namespace: String,
        /// Which pods.
        selector: Labels,
        /// Not on this node.
        avoid_node: Option<String>,
    },
    /// More Events with this reason (in the agent's namespace) than there were at `baseline`.
    Event {
        /// The Event's reason (faultline's XID Events: `FaultlineXid`).
        reason: String,
        /// How many there were when the wait began.
        baseline: usize,
    },
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::NodeCordoned(node) => write!(f, "node {node} cordoned"),
            Condition::PodsReady { namespace, selector, avoid_node: None } => {
                write!(f, "pods {selector} in {namespace} ready")
            }
            Condition::PodsReady { namespace, selector, avoid_node: Some(node) } => {
                write!(f, "pods {selector} in {namespace} ready off node {node}")
            }
            Condition::Event { reason, .. } => write!(f, "an Event {reason}"),
        }
    }
}

/// Whether `condition` holds now.
pub async fn holds(api: &KubeApi, condition: &Condition) -> Result<bool, ClusterError> {
    match condition {
        Condition::NodeCordoned(node) => {
            let node = api.get_node(node).await?;
            Ok(node.spec.and_then(|spec| spec.unschedulable).unwrap_or(false))
        }
        Condition::PodsReady { namespace, selector, avoid_node } => {
            let pods = api.list_pods(Some(namespace), None).await?;
            let selected: Vec<_> = pods
                .iter()
                .filter(|pod| {
                    let labels = pod.metadata.labels.as_ref();
                    selector.iter().all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
                })
                .collect();
            let off_node = |pod: &&k8s_openapi::api::core::v1::Pod| {
                let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
                avoid_node.as_deref().is_none_or(|avoid| on != Some(avoid))
            };
            Ok(!selected.is_empty() && selected.iter().all(|pod| nodes::pod_ready(pod) && off_node(pod)))
        }
        Condition::Event { reason, baseline } => Ok(count_events(api, reason).await? > *baseline),
    }
}

/// How many Events with `reason` the agent's namespace holds.
pub async fn count_events(api: &KubeApi, reason: &str) -> Result<usize, ClusterError> {
    Ok(api.list_events(reason).await?.len())
}
