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

use std::time::Duration;

use super::agent::{self, node_command};
use super::arm::{self, LiveFailed};
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::ledger::{FaultKind, Stamp};
use super::scenario::{self, Timeline, Watch};
use super::xid_inject::{self, XidInjectRequest};
use super::ClusterError;
use crate::node::arm::Arming;

pub use super::scenario::{PodPlacement, Step};

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

/// The scenario's outcome (the shape both node-failure scenarios share).
pub type GpuFailure = scenario::NodeFailure;

/// Runs the scenario (see the module docs); `progress` hears each step as it happens.
pub async fn run(
    api: &KubeApi,
    exec: &impl PodExec,
    request: &GpuFailureRequest,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<GpuFailure, ClusterError> {
    let preset = crate::node::arm::cuda_preset(request.xid).map_err(|e| ClusterError::Usage(e.to_string()))?;
    let mut timeline = Timeline::start(progress);
    let agent = agent::find(api, &request.node).await?;
    let pods_before = scenario::placements(api, &request.namespace, Some(&request.node)).await?;
    timeline.step(format!("{} pod(s) of namespace {} on node {}", pods_before.len(), request.namespace, request.node));

    let stamp = Stamp::new(FaultKind::ArmedNode, request.ttl);
    let live = scenario::live_processes(&agent, exec, shm_proto::Kind::Cuda).await?.len();
    let failed = (live > 0).then(LiveFailed::default);
    let arming = Arming::Cuda { xid: request.xid };
    let armed = arm::arm_node_recording(api, exec, &request.node, arming, &stamp, failed.as_ref()).await?;
    timeline.step(format!(
        "node armed: CUDA shims started there fail as with XID {} (fault {})",
        request.xid, armed.fault_id
    ));

    if live > 0 {
        let code = preset.runtime.to_string();
        let fail: [&str; 6] = ["--kind", "cuda", "--json", "strategy", "X", "--error-codes"];
        let mut command = node_command(fail);
        command.push(code.clone());
        agent.run::<serde_json::Value>(exec, &command).await?;
        agent.run::<serde_json::Value>(exec, &node_command(["--kind", "cuda", "--json", "enable"])).await?;
        timeline.step(format!("{live} CUDA process(es) on the node now fail every call with code {code}"));
    } else {
        timeline.step("no shimmed CUDA process runs on the node yet".to_string());
    }

    let inject = XidInjectRequest {
        fault_id: Some(armed.fault_id.clone()),
        ..XidInjectRequest::new(&request.node, request.gpu, request.xid)
    };
    let injected = xid_inject::inject(api, exec, &inject, &mut |_| {}).await?;
    timeline.step(format!(
        "XID {} written to the kernel log of {} (GPU {}, PCI {}); Event {}",
        request.xid,
        request.node,
        request.gpu,
        injected.agent.pci,
        injected.event.unwrap_or_default()
    ));

    let watch = Watch { timeout: request.watch_timeout, interval: request.interval };
    let after = scenario::aftermath(api, &request.node, &request.namespace, &pods_before, watch, &mut timeline).await?;
    Ok(GpuFailure::new(armed.fault_id, &request.node, live, pods_before, after, timeline))
}
