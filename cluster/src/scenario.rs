//! What the node-failure scenarios (`gpu-failure`, `nic-failure`) share: the live timeline, the pods of the
//! workloads' namespace on the node, the live shimmed processes there, and the aftermath — the cordon, the
//! evictions, and where the pods run afterwards.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::Value;
use shm_proto::Kind;

use super::agent::{node_command, Agent};
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::{xid_inject, ClusterError};

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Seconds since the start.
    pub at_s: u64,
    /// What happened.
    pub text: String,
}

/// Where a pod ran before and runs after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodPlacement {
    /// The pod.
    pub pod: String,
    /// Its node.
    pub node: Option<String>,
    /// Its phase.
    pub phase: Option<String>,
}

/// A scenario's steps as they happen: each is told to `progress` at once and kept.
pub struct Timeline<'p> {
    started: Instant,
    steps: Vec<Step>,
    progress: &'p mut (dyn FnMut(&Step) + Send),
}

impl<'p> Timeline<'p> {
    /// A timeline starting now.
    pub fn start(progress: &'p mut (dyn FnMut(&Step) + Send)) -> Self {
        Timeline { started: Instant::now(), steps: Vec::new(), progress }
    }

    /// Records a step.
    pub fn step(&mut self, text: String) {
        let step = Step { at_s: self.started.elapsed().as_secs(), text };
        (self.progress)(&step);
        self.steps.push(step);
    }

    /// The steps so far.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

/// The pods of `namespace` on `node` (every node: `None`), sorted by name.
pub async fn placements(api: &KubeApi, namespace: &str, node: Option<&str>) -> Result<Vec<PodPlacement>, ClusterError> {
    Ok(placements_of(&api.list_pods(Some(namespace), node).await?))
}

fn placements_of(pods: &[Pod]) -> Vec<PodPlacement> {
    let mut placements: Vec<PodPlacement> = pods
        .iter()
        .map(|p| PodPlacement {
            pod: p.metadata.name.clone().unwrap_or_default(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            phase: p.status.as_ref().and_then(|s| s.phase.clone()),
        })
        .collect();
    placements.sort_by(|a, b| a.pod.cmp(&b.pod));
    placements
}

/// The live `kind` processes on the agent's node, as `faultline node --kind K --json status` describes them (host
/// pids; empty when none runs).
pub async fn live_processes(agent: &Agent, exec: &impl PodExec, kind: Kind) -> Result<Vec<Value>, ClusterError> {
    let listed: Value = agent.run(exec, &node_command(["--kind", kind.name(), "--json", "ps"])).await?;
    let pids = alive_pids(&listed);
    if pids.is_empty() {
        return Ok(Vec::new());
    }
    let mut command = node_command(pid_flags(&pids));
    command.extend(["--kind", kind.name(), "--json", "status"].map(String::from));
    let status: Value = agent.run(exec, &command).await?;
    Ok(status["processes"].as_array().cloned().unwrap_or_default())
}

/// The host pids of the live processes in `faultline node ps --json`'s answer.
pub fn alive_pids(listed: &Value) -> Vec<u64> {
    listed["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["state"].as_str().is_none_or(|state| state == "alive"))
        .filter_map(|p| p["pid"].as_u64())
        .collect()
}

/// `--pid P` for each of `pids`.
pub fn pid_flags(pids: &[u64]) -> Vec<String> {
    pids.iter().flat_map(|pid| ["--pid".to_string(), pid.to_string()]).collect()
}

/// What a node-failure scenario did: `gpu-failure`'s whole outcome, and `nic-failure`'s with the NIC's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFailure {
    /// The fault id (`faultline cluster recover` it).
    pub fault_id: String,
    /// The node.
    pub node: String,
    /// Shimmed processes failed on the node.
    pub processes_failed: usize,
    /// Whether the node was cordoned in time.
    pub cordoned: bool,
    /// Pods of the namespace on the node at the start.
    pub pods_before: Vec<PodPlacement>,
    /// Whether they all left the node in time.
    pub evicted: bool,
    /// Pods of the namespace at the end.
    pub pods_after: Vec<PodPlacement>,
    /// Everything that happened, in order.
    pub timeline: Vec<Step>,
}

impl NodeFailure {
    /// The outcome of fault `fault_id` on `node`, which failed `processes_failed` live processes, from the pods
    /// there at the start, what happened after, and the timeline.
    pub fn new(
        fault_id: String,
        node: &str,
        processes_failed: usize,
        pods_before: Vec<PodPlacement>,
        after: Aftermath,
        timeline: Timeline<'_>,
    ) -> Self {
        NodeFailure {
            fault_id,
            node: node.to_string(),
            processes_failed,
            cordoned: after.cordoned,
            pods_before,
            evicted: after.evicted,
            pods_after: after.pods_after,
            timeline: timeline.into_steps(),
        }
    }
}

/// What happened after the node's failure was signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aftermath {
    /// Whether the node was cordoned in time.
    pub cordoned: bool,
    /// Whether the pods of `pods_before` all left the node in time.
    pub evicted: bool,
    /// Pods of the namespace at the end.
    pub pods_after: Vec<PodPlacement>,
}

/// How long and how often to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// How long to wait for the cordon, and then for the evictions.
    pub timeout: Duration,
    /// How often to look.
    pub interval: Duration,
}

/// Watches `node` until it is cordoned, then until `pods_before` (of `namespace`) left it, and reports where the
/// namespace's pods run then; each finding is a step of `timeline`.
pub async fn aftermath(
    api: &KubeApi,
    node: &str,
    namespace: &str,
    pods_before: &[PodPlacement],
    watch: Watch,
    timeline: &mut Timeline<'_>,
) -> Result<Aftermath, ClusterError> {
    let watched = xid_inject::watch_cordon(api, node, watch.timeout, watch.interval, &mut |_| {}).await?;
    let cordoned = watched.cordoned;
    if cordoned {
        timeline.step(format!("node cordoned after {:.0}s", watched.waited_s));
    } else {
        timeline.step(format!("node not cordoned within {}s (is NVSentinel running?)", watch.timeout.as_secs()));
    }

    let mut evicted = pods_before.is_empty();
    if cordoned && !evicted {
        let deadline = Instant::now() + watch.timeout;
        loop {
            let left = api.list_pods(Some(namespace), Some(node)).await?;
            let remaining =
                pods_before.iter().filter(|p| left.iter().any(|l| l.metadata.name.as_deref() == Some(&p.pod))).count();
            if remaining == 0 {
                evicted = true;
                timeline.step(format!("all {} pod(s) left the node", pods_before.len()));
                break;
            }
            if Instant::now() >= deadline {
                timeline.step(format!("{remaining} pod(s) still on the node after {}s", watch.timeout.as_secs()));
                break;
            }
            tokio::time::sleep(watch.interval).await;
        }
    }
    let pods_after = placements(api, namespace, None).await?;
    let elsewhere = pods_after.iter().filter(|p| p.node.as_deref() != Some(node)).count();
    timeline.step(format!("{elsewhere} pod(s) of namespace {namespace} run on other nodes now"));
    Ok(Aftermath { cordoned, evicted, pods_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_processes_are_taken_and_named_by_pid() {
        let listed = serde_json::json!({"processes": [
            {"pid": 41, "state": "alive"}, {"pid": 42, "state": "dead"}, {"pid": 43}, {"state": "alive"}]});
        assert_eq!(alive_pids(&listed), [41, 43]);
        assert!(alive_pids(&serde_json::json!({})).is_empty());
        assert_eq!(pid_flags(&[41, 43]), ["--pid", "41", "--pid", "43"]);
    }
}
