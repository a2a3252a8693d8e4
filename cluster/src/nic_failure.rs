//! `faultline cluster nic-failure`: the RDMA twin of [`crate::gpu_failure`] — a node's NIC dies, under one fault
//! id, with a live timeline:
//!
//! 1. arm the node's UCX shims: UCX processes started there from now on fail their endpoints with the code from
//!    their first armed call (the UCX node policy file; restarted pods fail again);
//! 2. fail the UCX processes already running there, through the agent, as the policy file fails new ones: the
//!    `endpoint` site (each endpoint fails as on a dead peer: its error handler runs, its operations fail until it
//!    is closed), every operation on an endpoint, the code;
//! 3. write the NIC driver's fatal line into the node's kernel log (the mlx5 `unrecoverable` hardware error, or
//!    EFA's closed admin queue for an EFA device; NVSentinel's `nicdriver` handler reads it) and record the Event;
//! 4. watch the node until it is cordoned, then until the pods of `--namespace` on it are evicted;
//! 5. report where those workloads' pods run now.
//!
//! Bad input changes nothing: the request is checked here, and the agent formats the NIC's line in a dry run (the
//! device known to the node's sysfs, its driver the event's) before the node is armed.
//!
//! `faultline cluster recover <id>` reverses it: the arming record remembers the live processes it failed and the
//! settings each had (site, hooks, strategy, pool, enabled), so disarming removes the policy file and puts them
//! back (the application's new endpoint then works; the kernel line stays in the log, the cordon is
//! NVSentinel's).

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_core::state::ProcessState;
use serde::Serialize;
use serde_json::Value;
use shm_proto::node_policy::{UCX_POLICY_HOOKS, UCX_POLICY_SITE};
use shm_proto::Kind;

use super::agent::{self, node_command};
use super::arm::{self, LiveFailed};
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::ledger::{FaultKind, Stamp};
use super::scenario::{self, Step, Timeline, Watch};
use super::signal_inject::{self, KernelSignal, SignalInjectRequest};
use super::ClusterError;
use crate::node::arm::{ucx_code_text, Arming, DEFAULT_UCX_CODE};
use crate::node::NicEvent;

/// What to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicFailureRequest {
    /// The node.
    pub node: String,
    /// The NIC: an RDMA device (`mlx5_0`, `rdmap0s6`) or a network interface.
    pub device: String,
    /// The kernel-log event (default: [`default_event`] of the device).
    pub event: Option<NicEvent>,
    /// The NIC's PCI address, when the node's sysfs cannot tell.
    pub pci: Option<String>,
    /// The UCX status the endpoints fail with (default [`DEFAULT_UCX_CODE`], `UCS_ERR_ENDPOINT_TIMEOUT`).
    pub code: i32,
    /// The namespace of the workloads to follow.
    pub namespace: String,
    /// How long the node stays armed (the reaper disarms it then).
    pub ttl: Option<Duration>,
    /// How long to wait for the cordon, and then for the evictions.
    pub watch_timeout: Duration,
    /// How often to look.
    pub interval: Duration,
}

impl NicFailureRequest {
    /// `device` of `node` failing with the defaults: its driver's fatal event, `UCS_ERR_ENDPOINT_TIMEOUT`, pods of
    /// `namespace` followed for five minutes, every two seconds.
    pub fn new(node: &str, device: &str, namespace: &str) -> Self {
        NicFailureRequest {
            node: node.to_string(),
            device: device.to_string(),
            event: None,
            pci: None,
            code: DEFAULT_UCX_CODE,
            namespace: namespace.to_string(),
            ttl: None,
            watch_timeout: Duration::from_secs(300),
            interval: super::DEFAULT_WATCH_INTERVAL,
        }
    }

    /// The kernel-log event written: the one given, else the device's driver's fatal one.
    pub fn event(&self) -> NicEvent {
        self.event.unwrap_or_else(|| default_event(&self.device))
    }

    /// The kernel signal written.
    pub fn signal(&self) -> KernelSignal {
        KernelSignal::Nic { device: self.device.clone(), event: self.event(), pci: self.pci.clone(), netdev: None }
    }

    /// Checks what can be checked before anything reaches the cluster: the code is a UCX error, the device a name
    /// (and the address one), the event a fatal one the monitor acts on.
    pub fn check(&self) -> Result<(), ClusterError> {
        let usage = |e: crate::node::NodeError| ClusterError::Usage(e.to_string());
        Arming::Ucx { code: self.code }.check().map_err(usage)?;
        self.signal().check().map_err(usage)?;
        let event = self.event();
        if !event.fatal() {
            return Err(ClusterError::Usage(format!(
                "--event {} is not fatal: NVSentinel would not cordon the node; a NIC failure takes a fatal one \
                 (unrecoverable, health-lost, cmd-timeout, efa-queue-closed, efa-admin-timeout, efa-reset-failed, \
                 efa-not-ready)",
                event.name()
            )));
        }
        if event.needs_netdev() {
            return Err(ClusterError::Usage(format!("--event {} names a network interface", event.name())));
        }
        Ok(())
    }
}

/// The fatal event of `device`'s driver, told by its name: EFA devices (`efa_0`, `rdmap0s6`) lose their admin
/// queue, anything else is an mlx5 port with an unrecoverable hardware error (the agent refuses an event of the
/// other driver, as sysfs knows better: give `--event` then).
pub fn default_event(device: &str) -> NicEvent {
    if device.starts_with("efa") || device.starts_with("rdmap") {
        NicEvent::EfaQueueClosed
    } else {
        NicEvent::Unrecoverable
    }
}

/// The scenario's outcome: what every node-failure scenario reports, and the NIC's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicFailure {
    /// The fault, the node, the processes failed, the cordon, the evictions and the timeline.
    #[serde(flatten)]
    pub failure: scenario::NodeFailure,
    /// The NIC.
    pub device: String,
    /// The kernel-log event written.
    pub event: &'static str,
    /// The UCX status the endpoints fail with.
    pub code: i32,
}

/// The words that fail the live UCX processes `pids` as the UCX node policy fails new ones: the endpoint site, the
/// operations on endpoints, every call, with `code`.
pub fn fail_command(pids: &[u64], code: i32) -> Vec<String> {
    let mut command = node_command(scenario::pid_flags(pids));
    let set = ["--kind", "ucx", "--json", "set", "--site", UCX_POLICY_SITE, "--mode", "random", "--probability", "100"];
    command.extend(set.map(String::from));
    command.extend(["--error-codes".to_string(), code.to_string(), "--hooks".to_string(), UCX_POLICY_HOOKS.into()]);
    command.extend(["--enabled".to_string(), "on".to_string()]);
    command
}

/// The `set` command that puts each live process back, by host pid, from `faultline node status --json`'s
/// processes (one that does not read as a process state is left out: it is disabled on recovery).
fn restoring_sets(processes: &[Value]) -> BTreeMap<u32, Vec<String>> {
    processes
        .iter()
        .filter_map(|p| {
            let state = ProcessState::from_json(p).ok()?;
            Some((state.pid, state.restoring_set()))
        })
        .collect()
}

/// Runs the scenario (see the module docs); `progress` hears each step as it happens.
pub async fn run(
    api: &KubeApi,
    exec: &impl PodExec,
    request: &NicFailureRequest,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<NicFailure, ClusterError> {
    request.check()?;
    let code = ucx_code_text(request.code);
    let mut timeline = Timeline::start(progress);
    let agent = agent::find(api, &request.node).await?;
    let pods_before = scenario::placements(api, &request.namespace, Some(&request.node)).await?;
    timeline.step(format!("{} pod(s) of namespace {} on node {}", pods_before.len(), request.namespace, request.node));

    // The node's sysfs knows the device, and its driver is the event's: asked with a dry run (no line, no Event),
    // before anything changes.
    let check = SignalInjectRequest { dry_run: true, ..SignalInjectRequest::new(&request.node, request.signal()) };
    signal_inject::inject(api, exec, &check, &mut |_| {}).await?;

    let stamp = Stamp::new(FaultKind::ArmedNode, request.ttl);
    let live = scenario::live_processes(&agent, exec, Kind::Ucx).await?;
    let restore = restoring_sets(&live);
    let pids: Vec<u64> = live.iter().filter_map(|p| p["pid"].as_u64()).collect();
    let failed = (!pids.is_empty()).then_some(LiveFailed { restore });
    let arming = Arming::Ucx { code: request.code };
    let armed = arm::arm_node_recording(api, exec, &request.node, arming, &stamp, failed.as_ref()).await?;
    timeline.step(format!(
        "node armed: UCX shims started there fail their endpoints with {code} (fault {})",
        armed.fault_id
    ));

    if pids.is_empty() {
        timeline.step("no shimmed UCX process runs on the node yet".to_string());
    } else {
        agent.run::<Value>(exec, &fail_command(&pids, request.code)).await?;
        timeline.step(format!(
            "{} UCX process(es) on the node now fail their endpoints with {code}, every call",
            pids.len()
        ));
    }

    let inject = SignalInjectRequest {
        fault_id: Some(armed.fault_id.clone()),
        ..SignalInjectRequest::new(&request.node, request.signal())
    };
    let injected = signal_inject::inject(api, exec, &inject, &mut |_| {}).await?;
    timeline.step(format!(
        "{} written to the kernel log of {} ({}, PCI {}); Event {}",
        request.event().name(),
        request.node,
        injected.agent.summary,
        injected.agent.pci,
        injected.event.unwrap_or_default()
    ));

    let watch = Watch { timeout: request.watch_timeout, interval: request.interval };
    let after = scenario::aftermath(api, &request.node, &request.namespace, &pods_before, watch, &mut timeline).await?;
    Ok(NicFailure {
        failure: scenario::NodeFailure::new(armed.fault_id, &request.node, pids.len(), pods_before, after, timeline),
        device: request.device.clone(),
        event: request.event().name(),
        code: request.code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_chooses_its_drivers_fatal_event_unless_told() {
        assert_eq!(default_event("mlx5_0"), NicEvent::Unrecoverable);
        assert_eq!(default_event("eth2"), NicEvent::Unrecoverable);
        assert_eq!(default_event("rdmap0s6"), NicEvent::EfaQueueClosed);
        assert_eq!(default_event("efa_0"), NicEvent::EfaQueueClosed);
        let told =
            NicFailureRequest { event: Some(NicEvent::HealthLost), ..NicFailureRequest::new("n", "mlx5_0", "d") };
        assert_eq!(told.event(), NicEvent::HealthLost);
        assert!(told.check().is_ok());
    }

    #[test]
    fn bad_input_is_refused_before_the_cluster() {
        let base = NicFailureRequest::new("gpu-a", "mlx5_0", "dynamo");
        assert!(base.check().is_ok());
        for (request, says) in [
            (NicFailureRequest { code: 0, ..base.clone() }, "a UCX error status"),
            (NicFailureRequest { code: 4, ..base.clone() }, "a UCX error status"),
            (NicFailureRequest { device: "../x".into(), ..base.clone() }, "a device name"),
            (NicFailureRequest { event: Some(NicEvent::CableUnplugged), ..base.clone() }, "is not fatal"),
            (NicFailureRequest { pci: Some("zz".into()), ..base.clone() }, "is not a PCI address"),
        ] {
            let error = request.check().unwrap_err();
            assert!(matches!(error, ClusterError::Usage(_)), "{error:?}");
            assert!(error.to_string().contains(says), "{error} should say {says:?}");
        }
    }

    #[test]
    fn live_processes_fail_at_the_endpoint_every_call_with_the_code() {
        assert_eq!(
            fail_command(&[41, 42], -25).join(" "),
            format!(
                "faultline node --pid 41 --pid 42 --kind ucx --json set --site endpoint --mode random --probability \
                 100 --error-codes -25 --hooks {UCX_POLICY_HOOKS} --enabled on"
            )
        );
        assert!(restoring_sets(&[serde_json::json!({"pid": 42})]).is_empty(), "not a process state: left out");
    }
}
