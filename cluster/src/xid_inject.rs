//! `faultline cluster xid inject`: run `faultline node xid …` in the node agent's pod through the exec API,
//! record a Kubernetes Event on the Node (reason [`EVENT_REASON`]), and optionally follow the node until it is
//! cordoned (NVSentinel's reaction to a fatal XID) or a timeout passes.
//!
//! Order matters for "bad input changes nothing": the XID is checked against the catalog, the node fetched and
//! its agent pod found before anything is written; the Event is recorded only after the agent confirmed that the
//! line landed in the kernel log (a dry run records none).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Serialize;

use super::agent;
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::ledger::{self, FaultKind, Stamp};
use super::nodes;
use super::{ClusterError, DEFAULT_WATCH_INTERVAL};
use crate::node::{self, xid, Nvl5Options, XidReport};

/// The Event reason of an injected XID.
pub const EVENT_REASON: &str = "FaultlineXidInjected";

/// How long an XID Event is kept (the API server's default event TTL).
pub const EVENT_TTL: Duration = Duration::from_secs(3600);

/// What to inject where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidInjectRequest {
    /// The node.
    pub node: String,
    /// GPU minor number on that node.
    pub gpu: u32,
    /// The XID.
    pub xid: u32,
    /// The GPU's PCI address, when the driver cannot tell.
    pub pci: Option<String>,
    /// The GPU's UUID, when the driver cannot tell (the driver's PCI → UUID line is written first).
    pub uuid: Option<String>,
    /// The NVLink5 fields (XIDs 144–150).
    pub nvl5: Nvl5Options,
    /// `pid=` in the line.
    pub pid: Option<u32>,
    /// `name=` in the line.
    pub process_name: Option<String>,
    /// Allow an XID outside the catalog.
    pub force: bool,
    /// Ask the agent to format the line without writing it (no Event either).
    pub dry_run: bool,
    /// Follow the node until it is cordoned, for at most this long.
    pub watch: Option<Duration>,
    /// How often to look at the node while watching (default [`DEFAULT_WATCH_INTERVAL`]).
    pub watch_interval: Option<Duration>,
    /// The fault id (default: a new one; the GPU-failure scenario shares its own across steps).
    pub fault_id: Option<String>,
}

impl XidInjectRequest {
    /// Injection of `xid` on GPU `gpu` of `node`, no options.
    pub fn new(node: &str, gpu: u32, xid: u32) -> Self {
        XidInjectRequest {
            node: node.to_string(),
            gpu,
            xid,
            pci: None,
            uuid: None,
            nvl5: Nvl5Options::default(),
            pid: None,
            process_name: None,
            force: false,
            dry_run: false,
            watch: None,
            watch_interval: None,
            fault_id: None,
        }
    }
}

/// What happened, step by step (for progress lines or a dashboard log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The agent pod that will run the command.
    Agent {
        /// Pod name.
        pod: String,
    },
    /// The agent wrote (or, dry run, formatted) the line.
    Injected {
        /// The agent's report.
        report: Box<XidReport>,
    },
    /// The Event was recorded.
    EventRecorded {
        /// Its name.
        name: String,
    },
    /// Still waiting for the cordon.
    Waiting {
        /// Since the injection.
        elapsed: Duration,
        /// The node's taints now.
        taints: Vec<String>,
    },
    /// The node is cordoned.
    Cordoned {
        /// After how long.
        elapsed: Duration,
    },
}

/// The outcome of `--watch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchOutcome {
    /// Whether the node was cordoned before the timeout.
    pub cordoned: bool,
    /// Seconds waited.
    pub waited_s: f64,
    /// The node's taints at the end.
    pub taints: Vec<String>,
}

/// What an injection into a node's kernel log did (`R`: the agent's own report of the line it wrote).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Injected<R> {
    /// The fault id (in the kernel log line and on the Event).
    pub fault_id: String,
    /// The node.
    pub node: String,
    /// The agent pod that wrote the line.
    pub pod: String,
    /// The agent's own report (`faultline node xid|fallen-off|sxid|nic` JSON).
    pub agent: R,
    /// The Event's name (none for a dry run).
    pub event: Option<String>,
    /// The watch's outcome, with `--watch`.
    pub watch: Option<WatchOutcome>,
}

impl<R> Injected<R> {
    /// Whether `--watch` was asked for and timed out.
    pub fn watch_timed_out(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| !w.cordoned)
    }
}

/// What `inject` did.
pub type XidInjectResult = Injected<XidReport>;

/// Checks what the agent would refuse without asking the node: the NVLink5 fields (144–150 only), the UUID.
pub fn check_line(request: &XidInjectRequest) -> Result<(), node::NodeError> {
    xid::Nvl5Fields::resolve(request.xid, &request.nvl5)?;
    request.uuid.as_deref().map(xid::check_uuid).transpose()?;
    Ok(())
}

/// The command run in the agent pod.
pub fn agent_command(request: &XidInjectRequest, fault_id: &str) -> Vec<String> {
    let mut command = agent::node_command(["xid", "--xid"]);
    command.push(request.xid.to_string());
    command.extend(["--gpu".to_string(), request.gpu.to_string(), "--fault-id".to_string(), fault_id.to_string()]);
    if let Some(pci) = &request.pci {
        command.extend(["--pci".to_string(), pci.clone()]);
    }
    if let Some(uuid) = &request.uuid {
        command.extend(["--uuid".to_string(), uuid.clone()]);
    }
    let nvl5 = &request.nvl5;
    if let Some(subcode) = &nvl5.subcode {
        command.extend(["--subcode".to_string(), subcode.clone()]);
    }
    let registers = [("--link", nvl5.link), ("--intrinfo", nvl5.intrinfo), ("--error-status", nvl5.error_status)];
    for (flag, value) in registers {
        if let Some(value) = value {
            command.extend([flag.to_string(), value.to_string()]);
        }
    }
    if let Some(pid) = request.pid {
        command.extend(["--pid".to_string(), pid.to_string()]);
    }
    if let Some(name) = &request.process_name {
        command.extend(["--name".to_string(), name.clone()]);
    }
    if request.force {
        command.push("--force".to_string());
    }
    if request.dry_run {
        command.push("--dry-run".to_string());
    }
    command
}

/// Injects the XID (see the module docs); `progress` hears about each step.
pub async fn inject(
    api: &KubeApi,
    exec: &impl PodExec,
    request: &XidInjectRequest,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<XidInjectResult, ClusterError> {
    if xid::lookup(request.xid).is_none() && !request.force {
        return Err(ClusterError::Usage(node::NodeError::UnknownXid(request.xid).to_string()));
    }
    check_line(request).map_err(|e| ClusterError::Usage(e.to_string()))?;
    let agent = agent::find(api, &request.node).await?;
    progress(&Progress::Agent { pod: agent.pod.clone() });

    let fault_id = request.fault_id.clone().unwrap_or_else(node::new_fault_id);
    let command = agent_command(request, &fault_id);
    let report: XidReport = agent.run(exec, &command).await?;
    progress(&Progress::Injected { report: Box::new(report.clone()) });

    let event = if request.dry_run {
        None
    } else {
        let event = xid_event(&agent.node, api.namespace(), &report, k8s_openapi::jiff::Timestamp::now());
        let created = api.create_event(&event).await?;
        let name = created.metadata.name.or(event.metadata.name).unwrap_or_default();
        progress(&Progress::EventRecorded { name: name.clone() });
        Some(name)
    };

    let watch = match (request.watch, request.dry_run) {
        (Some(timeout), false) => {
            let interval = request.watch_interval.unwrap_or(DEFAULT_WATCH_INTERVAL);
            Some(watch_cordon(api, &request.node, timeout, interval, progress).await?)
        }
        _ => None,
    };
    Ok(XidInjectResult { fault_id, node: request.node.clone(), pod: agent.pod, agent: report, event, watch })
}

/// Polls `node` every `interval` until it is cordoned or `timeout` has passed (only `get` on nodes: no watch
/// permission needed).
pub async fn watch_cordon(
    api: &KubeApi,
    node: &str,
    timeout: Duration,
    interval: Duration,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<WatchOutcome, ClusterError> {
    let start = Instant::now();
    loop {
        let current = api.get_node(node).await?;
        let taints = nodes::taints(&current);
        let elapsed = start.elapsed();
        if current.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
            progress(&Progress::Cordoned { elapsed });
            return Ok(WatchOutcome { cordoned: true, waited_s: elapsed.as_secs_f64(), taints });
        }
        if elapsed >= timeout {
            return Ok(WatchOutcome { cordoned: false, waited_s: elapsed.as_secs_f64(), taints });
        }
        progress(&Progress::Waiting { elapsed, taints });
        tokio::time::sleep(interval.min(timeout.saturating_sub(elapsed))).await;
    }
}

/// The Warning Event on the Node for `report` (named `<node>.<fault id>`, stamped for the ledger, the XID in the
/// `faultline.dev/xid` annotation).
pub fn xid_event(node: &Node, namespace: &str, report: &XidReport, now: k8s_openapi::jiff::Timestamp) -> Event {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    // Events expire on their own (the API server's event TTL); the stamp says when, for the ledger.
    let stamp = Stamp::at(FaultKind::Xid, report.fault_id.clone(), now, Some(EVENT_TTL), ledger::created_by());
    let message = format!(
        "XID {} ({}, {}) injected on GPU {} (PCI {}) of node {node_name} by faultline, fault {}",
        report.xid, report.xid_name, report.severity, report.gpu, report.pci, report.fault_id
    );
    node_event(node, namespace, &stamp, (ledger::XID_ANNOTATION, report.xid.to_string()), EVENT_REASON, message)
}

/// A Warning Event from faultline on `node`, stamped by `stamp`, with one more annotation, `reason` and `message`:
/// what every kernel-log writer records (XIDs here, the other signals in `signal_inject`).
pub fn node_event(
    node: &Node,
    namespace: &str,
    stamp: &Stamp,
    (key, value): (&str, String),
    reason: &str,
    message: String,
) -> Event {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let now = stamp.created_at;
    let mut annotations = stamp.annotations();
    annotations.insert(key.to_string(), value);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{node_name}.{}", stamp.fault_id)),
            namespace: Some(namespace.to_string()),
            labels: Some(stamp.labels()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Node".to_string()),
            name: Some(node_name.clone()),
            uid: node.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some("Warning".to_string()),
        source: Some(EventSource { component: Some("faultline".to_string()), host: None }),
        reporting_component: Some("faultline".to_string()),
        reporting_instance: Some(node_name),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvlink5_fields_and_the_uuid_go_to_the_agent() {
        let request = XidInjectRequest {
            uuid: Some("GPU-3f5a6e2c-0000-4000-8000-000000000001".into()),
            nvl5: Nvl5Options {
                subcode: Some("RLW_REMAP".into()),
                link: Some(3),
                intrinfo: Some(130),
                error_status: None,
            },
            ..XidInjectRequest::new("gpu-a", 0, 145)
        };
        assert!(check_line(&request).is_ok());
        assert_eq!(
            agent_command(&request, "fl-1").join(" "),
            "faultline node xid --xid 145 --gpu 0 --fault-id fl-1 --uuid GPU-3f5a6e2c-0000-4000-8000-000000000001 \
             --subcode RLW_REMAP --link 3 --intrinfo 130"
        );
        let wrong = XidInjectRequest { nvl5: request.nvl5.clone(), ..XidInjectRequest::new("gpu-a", 0, 79) };
        assert!(check_line(&wrong).unwrap_err().to_string().contains("144–150 only"));
    }

    #[test]
    fn the_agent_command_carries_every_option() {
        let request = XidInjectRequest {
            pci: Some("0000:3b:00.0".into()),
            pid: Some(7),
            process_name: Some("python3".into()),
            force: true,
            dry_run: true,
            ..XidInjectRequest::new("gpu-a", 2, 140)
        };
        assert_eq!(
            agent_command(&request, "fl-1").join(" "),
            "faultline node xid --xid 140 --gpu 2 --fault-id fl-1 --pci 0000:3b:00.0 --pid 7 --name python3 \
             --force --dry-run"
        );
        assert_eq!(
            agent_command(&XidInjectRequest::new("gpu-a", 0, 79), "fl-2").join(" "),
            "faultline node xid --xid 79 --gpu 0 --fault-id fl-2"
        );
    }
}
