//! The node agent: finding the ready `faultline-node` pod on a node and running a `faultline node …` command in
//! it through [`PodExec`], with its JSON answer parsed. Every action that must happen on a node (XID lines, arming)
//! goes through here, so "no agent", "not ready", "failed" and "answered garbage" read the same everywhere.

use k8s_openapi::api::core::v1::Node;
use serde::de::DeserializeOwned;

use super::exec::{ExecTarget, PodExec};
use super::kube_api::{KubeApi, AGENT_CONTAINER};
use super::nodes::{self, is_gpu_node};
use super::ClusterError;

/// The agent pod on one node, ready to run commands.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The node (as fetched: its uid goes into Events).
    pub node: Node,
    /// The node's name.
    pub node_name: String,
    /// The agent pod's name.
    pub pod: String,
}

/// Finds the ready agent pod on `node` (after checking the node exists).
pub async fn find(api: &KubeApi, node: &str) -> Result<Agent, ClusterError> {
    let found = api.get_node(node).await?;
    let pods = api.list_agent_pods(Some(node)).await?;
    let Some(pod) = nodes::agent_pod_on(&pods, node) else {
        return Err(ClusterError::NoAgentPod {
            node: node.to_string(),
            namespace: api.namespace().to_string(),
            gpu_node: is_gpu_node(&found),
        });
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    if !nodes::pod_ready(pod) {
        return Err(ClusterError::AgentNotReady {
            node: node.to_string(),
            pod: pod_name,
            phase: nodes::pod_phase(pod),
        });
    }
    Ok(Agent { node: found, node_name: node.to_string(), pod: pod_name })
}

impl Agent {
    /// Runs `command` (a `faultline node …` command line) in the agent and parses its JSON output as `T`.
    pub async fn run<T: DeserializeOwned>(&self, exec: &impl PodExec, command: &[String]) -> Result<T, ClusterError> {
        let target = ExecTarget { pod: self.pod.clone(), container: AGENT_CONTAINER.to_string() };
        let output = exec.exec(&target, command).await?;
        if !output.success {
            return Err(ClusterError::AgentFailed {
                pod: self.pod.clone(),
                command: command.join(" "),
                exit_code: output.exit_code,
                stderr: output.stderr.trim().to_string(),
            });
        }
        serde_json::from_str(output.stdout.trim()).map_err(|e| ClusterError::AgentOutput {
            pod: self.pod.clone(),
            message: e.to_string(),
            stdout: output.stdout.clone(),
        })
    }
}

/// `faultline node <args…>` as a command line.
pub fn node_command<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ["faultline".to_string(), "node".to_string()].into_iter().chain(args.into_iter().map(Into::into)).collect()
}
