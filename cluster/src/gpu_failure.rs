//! `faultline cluster gpu-failure`: the GPU fault simulation of the seed's fault-injection service as one action,
//! under one fault id, with a live timeline:
//!
//! 1. arm the node: CUDA shims started there from now on fail as with the XID (restarted pods fail again);
//! 2. fail the CUDA processes already running there (every call, with the XID's CUDA code), through the agent;
//! 3. inject the XID into the node's kernel log (NVSentinel's syslog monitor sees it) and record the Event;
//! 4. watch the node until it is cordoned, then until the pods of `--namespace` on it are evicted;
//! 5. report where those workloads' pods run now.
//!
//! `faultline cluster recover <id>` reverses it: the arming record remembers that live processes were failed, so
//! disarming also turns their faults off (the XID line stays in the kernel log; the cordon is NVSentinel's).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::agent::{self, node_command};
use super::arm;
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::ledger::{FaultKind, Stamp};
use super::xid_inject::{self, XidInjectRequest};
use super::ClusterError;

/// What to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuFailureRequest {
    /// The node.
    pub node: String,
    /// The GPU's minor number.
    pub gpu: u32,
    /// The XID (one with a CUDA shim preset).
    pub xid: u32,
    /// The namespace of the workloads to follow.
    pub namespace: String,
    /// How long the node stays armed (the reaper disarms it then).
    pub ttl: Option<Duration>,
    /// How long to wait for the cordon, and then for the evictions.
    pub watch_timeout: Duration,
    /// How often to look.
    pub interval: Duration,
}

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

/// The scenario's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuFailure {
    /// The fault id (`faultline cluster recover` it).
    pub fault_id: String,
    /// The node.
    pub node: String,
    /// CUDA processes failed on the node.
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

/// The answer of `faultline node --kind cuda ps --json`.
#[derive(Debug, Deserialize)]
struct ProcessList {
    processes: Vec<serde_json::Value>,
}

/// Runs the scenario (see the module docs); `progress` hears each step as it happens.
pub async fn run(
    api: &KubeApi,
    exec: &impl PodExec,
    request: &GpuFailureRequest,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<GpuFailure, ClusterError> {
    let preset = crate::node::arm::cuda_preset(request.xid).map_err(|e| ClusterError::Usage(e.to_string()))?;
    let started = Instant::now();
    let mut timeline = Vec::new();
    let mut step = |text: String| {
        let step = Step { at_s: started.elapsed().as_secs(), text };
        progress(&step);
        timeline.push(step);
    };
    let agent = agent::find(api, &request.node).await?;
    let pods_before = placements(&api.list_pods(Some(&request.namespace), Some(&request.node)).await?);
    step(format!("{} pod(s) of namespace {} on node {}", pods_before.len(), request.namespace, request.node));

    let stamp = Stamp::new(FaultKind::ArmedNode, request.ttl);
    let list: ProcessList = agent.run(exec, &node_command(["--kind", "cuda", "--json", "ps"])).await?;
    let live = list.processes.iter().filter(|p| p["alive"].as_bool().unwrap_or(true)).count();
    let armed = arm::arm_node_recording(api, exec, &request.node, request.xid, &stamp, live > 0).await?;
    step(format!("node armed: CUDA shims started there fail as with XID {} (fault {})", request.xid, armed.fault_id));

    if live > 0 {
        let code = preset.runtime.to_string();
        let fail: [&str; 6] = ["--kind", "cuda", "--json", "strategy", "X", "--error-codes"];
        let mut command = node_command(fail);
        command.push(code.clone());
        agent.run::<serde_json::Value>(exec, &command).await?;
        agent.run::<serde_json::Value>(exec, &node_command(["--kind", "cuda", "--json", "enable"])).await?;
        step(format!("{live} CUDA process(es) on the node now fail every call with code {code}"));
    } else {
        step("no shimmed CUDA process runs on the node yet".to_string());
    }

    let inject = XidInjectRequest {
        fault_id: Some(armed.fault_id.clone()),
        ..XidInjectRequest::new(&request.node, request.gpu, request.xid)
    };
    let injected = xid_inject::inject(api, exec, &inject, &mut |_| {}).await?;
    step(format!(
        "XID {} written to the kernel log of {} (GPU {}, PCI {}); Event {}",
        request.xid,
        request.node,
        request.gpu,
        injected.agent.pci,
        injected.event.unwrap_or_default()
    ));

    let watched =
        xid_inject::watch_cordon(api, &request.node, request.watch_timeout, request.interval, &mut |_| {}).await?;
    let cordoned = watched.cordoned;
    if cordoned {
        step(format!("node cordoned after {:.0}s", watched.waited_s));
    } else {
        step(format!("node not cordoned within {}s (is NVSentinel running?)", request.watch_timeout.as_secs()));
    }

    let mut evicted = pods_before.is_empty();
    if cordoned && !evicted {
        let deadline = Instant::now() + request.watch_timeout;
        loop {
            let left = api.list_pods(Some(&request.namespace), Some(&request.node)).await?;
            let remaining =
                pods_before.iter().filter(|p| left.iter().any(|l| l.metadata.name.as_deref() == Some(&p.pod))).count();
            if remaining == 0 {
                evicted = true;
                step(format!("all {} pod(s) left the node", pods_before.len()));
                break;
            }
            if Instant::now() >= deadline {
                step(format!("{remaining} pod(s) still on the node after {}s", request.watch_timeout.as_secs()));
                break;
            }
            tokio::time::sleep(request.interval).await;
        }
    }
    let pods_after = placements(&api.list_pods(Some(&request.namespace), None).await?);
    let elsewhere = pods_after.iter().filter(|p| p.node.as_deref() != Some(&request.node)).count();
    step(format!("{elsewhere} pod(s) of namespace {} run on other nodes now", request.namespace));
    Ok(GpuFailure {
        fault_id: armed.fault_id,
        node: request.node.clone(),
        processes_failed: live,
        cordoned,
        pods_before,
        evicted,
        pods_after,
        timeline,
    })
}

fn placements(pods: &[Pod]) -> Vec<PodPlacement> {
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
