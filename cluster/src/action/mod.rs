//! The one action layer for the cluster, the twin of [`faultline_core::request`] for processes. Every front end — `faultline
//! cluster …`, the dashboard's worker, and later experiments and Python — builds a [`ClusterRequest`] (from a
//! [`draft`] when the user typed it), and hands it to [`execute`]:
//!
//! 1. [`Access::allows`] decides `--read-only`, here and nowhere else;
//! 2. the request is carried out through a [`Cluster`] (the real [`crate::Session`], or a test double);
//! 3. its steps arrive as [`ClusterProgress`] and its result as a [`ClusterOutcome`], each `Display`ed once, so the
//!    CLI and the dashboard say the same thing in the same words.

mod backend;
pub mod draft;
mod outcome;
mod replay;

use std::fmt;
use std::time::Duration;

pub use backend::Cluster;
pub use outcome::ClusterOutcome;
pub use replay::{replay_site_words, ReplayRequest, ReplayedFrom};

use super::faults::{Recovered, Which};
use super::gpu_failure::{GpuFailureRequest, Step};
use super::nic_failure::NicFailureRequest;
use super::partition::{self, ChaosSpec, PartitionSpec};
use super::processes::ProcessScope;
use super::shim::Follow;
use super::shim_rollout::{ShimSpec, Workload};
use super::signal_inject::{self, SignalInjectRequest};
use super::xid_inject::{self, XidInjectRequest};
use super::ClusterError;

/// A partition to create, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionRequest {
    /// A NetworkPolicy (its `pod_cidrs` empty: they are read from the nodes when it is created).
    Policy {
        /// What it cuts.
        spec: PartitionSpec,
        /// How long it lasts.
        ttl: Duration,
    },
    /// A Chaos Mesh NetworkChaos (its `duration` is the ttl).
    Chaos {
        /// What it does.
        spec: ChaosSpec,
        /// How long it lasts.
        ttl: Duration,
    },
}

impl PartitionRequest {
    /// How long the fault lasts.
    pub fn ttl(&self) -> Duration {
        match self {
            PartitionRequest::Policy { ttl, .. } | PartitionRequest::Chaos { ttl, .. } => *ttl,
        }
    }

    /// Where the object goes.
    pub fn namespace(&self) -> &str {
        match self {
            PartitionRequest::Policy { spec, .. } => &spec.namespace,
            PartitionRequest::Chaos { spec, .. } => &spec.namespace,
        }
    }

    /// `NetworkPolicy` or `NetworkChaos`.
    pub fn object_kind(&self) -> &'static str {
        match self {
            PartitionRequest::Policy { .. } => "NetworkPolicy",
            PartitionRequest::Chaos { .. } => partition::NETWORK_CHAOS_KIND,
        }
    }
}

/// A workload, and how long to follow its rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimTarget {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload.
    pub workload: Workload,
    /// How long to follow the rollout (`None`: do not wait for it).
    pub follow: Option<Follow>,
}

/// A shim rollout, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimRequest {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload.
    pub workload: Workload,
    /// What goes in.
    pub spec: ShimSpec,
    /// How long; the reaper restores the workload then.
    pub ttl: Duration,
    /// How long to follow the rollout (`None`: do not wait for it).
    pub follow: Option<Follow>,
}

/// Arm a node: CUDA shims started there fail as with `xid` (see [`crate::arm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRequest {
    /// The node.
    pub node: String,
    /// The XID (one with a CUDA shim preset).
    pub xid: u32,
    /// How long the node stays armed; the reaper disarms it then.
    pub ttl: Duration,
}

/// Everything faultline does to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// List the GPU nodes.
    ListNodes,
    /// List the fault ledger (`None`: every namespace).
    ListFaults {
        /// Where to look.
        namespace: Option<String>,
    },
    /// Write an XID into a node's kernel log (see [`crate::xid_inject::inject`]).
    InjectXid(Box<XidInjectRequest>),
    /// Write another kernel-log signal (GPU fallen off the bus, SXid, NIC driver error) into a node's kernel log
    /// (see [`crate::signal_inject::inject`]).
    InjectSignal(Box<SignalInjectRequest>),
    /// Create a NetworkPolicy or a Chaos Mesh NetworkChaos.
    CreatePartition(Box<PartitionRequest>),
    /// Roll a shim into a workload.
    EnableShim(Box<ShimRequest>),
    /// Restore a shimmed workload exactly as it was.
    DisableShim(Box<ShimTarget>),
    /// Arm a node.
    ArmNode(ArmRequest),
    /// Disarm a node armed by faultline (recovers the arming fault).
    DisarmNode {
        /// The node.
        node: String,
    },
    /// Undo faults (see [`crate::faults::recover`]); `None`: every namespace.
    Recover {
        /// Where to look.
        namespace: Option<String>,
        /// Which faults.
        which: Which,
    },
    /// The GPU-failure scenario (see [`crate::gpu_failure`]).
    GpuFailure(Box<GpuFailureRequest>),
    /// The NIC-failure scenario, the RDMA twin of the GPU failure (see [`crate::nic_failure`]).
    NicFailure(Box<NicFailureRequest>),
    /// List the cluster's shimmed processes (see [`crate::processes::list`]).
    ListProcesses(Box<ProcessScope>),
    /// A process command (its words, e.g. `["strategy", "XO"]`) for the cluster's processes in scope; the agents'
    /// process layer validates it and decides `--read-only` for it, as locally.
    ProcessCommand {
        /// Which processes.
        scope: Box<ProcessScope>,
        /// The command's words.
        args: Vec<String>,
    },
    /// One process's recording, read through its node's agent, replayed by the processes in scope (see
    /// [`ReplayRequest`]); the agents' process layer validates the program and decides `--read-only`.
    Replay(Box<ReplayRequest>),
}

impl ClusterRequest {
    /// Undo fault `id`, wherever it is (a fault id is unique cluster-wide).
    pub fn recover_fault(id: &str) -> ClusterRequest {
        ClusterRequest::Recover { namespace: None, which: Which::Id(id.to_string()) }
    }

    /// The change this request makes, `None` for a request that only reads (a list, a dry run).
    pub fn action(&self) -> Option<ClusterChange> {
        Some(match self {
            ClusterRequest::ListNodes | ClusterRequest::ListFaults { .. } | ClusterRequest::ListProcesses(_) => {
                return None
            }
            // The agents' process layer decides (`--read-only` is passed on to it).
            ClusterRequest::ProcessCommand { .. } | ClusterRequest::Replay(_) => return None,
            ClusterRequest::InjectXid(request) if request.dry_run => return None,
            ClusterRequest::InjectXid(_) => ClusterChange::InjectXid,
            ClusterRequest::InjectSignal(request) if request.dry_run => return None,
            ClusterRequest::InjectSignal(_) => ClusterChange::InjectSignal,
            ClusterRequest::CreatePartition(_) => ClusterChange::CreatePartition,
            ClusterRequest::EnableShim(_) => ClusterChange::EnableShim,
            ClusterRequest::DisableShim(_) => ClusterChange::DisableShim,
            ClusterRequest::ArmNode(_) => ClusterChange::ArmNode,
            ClusterRequest::DisarmNode { .. } => ClusterChange::DisarmNode,
            ClusterRequest::Recover { which: Which::Expired, .. } => ClusterChange::Reap,
            ClusterRequest::Recover { .. } => ClusterChange::Recover,
            ClusterRequest::GpuFailure(_) => ClusterChange::GpuFailure,
            ClusterRequest::NicFailure(_) => ClusterChange::NicFailure,
        })
    }

    /// What is being done while the request runs, e.g. `recovering fault fl-…`.
    pub fn busy(&self) -> String {
        match self {
            ClusterRequest::ListNodes => "listing GPU nodes".to_string(),
            ClusterRequest::ListFaults { .. } => "listing the faults".to_string(),
            ClusterRequest::InjectXid(r) => format!("injecting XID {} on GPU {} of node {}", r.xid, r.gpu, r.node),
            ClusterRequest::InjectSignal(r) => {
                format!("writing {} into the kernel log of node {}", r.signal.describe(), r.node)
            }
            ClusterRequest::CreatePartition(p) => format!("creating a {} in {}", p.object_kind(), p.namespace()),
            ClusterRequest::EnableShim(s) => format!("rolling the {} shim into {}", s.spec.kind.name(), s.workload),
            ClusterRequest::DisableShim(t) => format!("restoring {} in {}", t.workload, t.namespace),
            ClusterRequest::ArmNode(arm) => format!("arming node {} with XID {}", arm.node, arm.xid),
            ClusterRequest::DisarmNode { node } => format!("disarming node {node}"),
            ClusterRequest::Recover { which: Which::Id(id), .. } => format!("recovering fault {id}"),
            ClusterRequest::Recover { which: Which::All, .. } => "recovering every fault".to_string(),
            ClusterRequest::Recover { which: Which::Expired, .. } => "reaping expired faults".to_string(),
            ClusterRequest::GpuFailure(r) => format!("failing GPU {} of node {} with XID {}", r.gpu, r.node, r.xid),
            ClusterRequest::NicFailure(r) => format!(
                "failing NIC {} of node {} ({}; UCX endpoints fail with {})",
                r.device,
                r.node,
                r.event().name(),
                crate::node::arm::ucx_code_text(r.code)
            ),
            ClusterRequest::ListProcesses(_) => "listing the shimmed processes".to_string(),
            ClusterRequest::ProcessCommand { args, .. } => format!("sending `{}` to the processes", args.join(" ")),
            ClusterRequest::Replay(r) => format!("replaying the recording of {} in the processes", r.describe_source()),
        }
    }

    /// How a failure of this request begins, e.g. `XID not injected`.
    pub fn not_done(&self) -> &'static str {
        match self {
            ClusterRequest::InjectXid(_) => "XID not injected",
            ClusterRequest::InjectSignal(_) => "nothing written",
            _ => "failed",
        }
    }
}

/// A kind of change to the cluster: what `--read-only` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterChange {
    /// `xid inject` (not a dry run).
    InjectXid,
    /// `fallen-off|sxid|nic inject` (not a dry run).
    InjectSignal,
    /// `partition create`.
    CreatePartition,
    /// `shim enable`.
    EnableShim,
    /// `shim disable`.
    DisableShim,
    /// `shim arm`.
    ArmNode,
    /// `shim disarm`.
    DisarmNode,
    /// `recover`.
    Recover,
    /// `reap`.
    Reap,
    /// `gpu-failure`.
    GpuFailure,
    /// `nic-failure`.
    NicFailure,
}

impl ClusterChange {
    /// What is refused, as in `--read-only: refusing to <verb>`.
    pub fn verb(self) -> &'static str {
        match self {
            ClusterChange::InjectXid => "inject an XID",
            ClusterChange::InjectSignal => "write to a node's kernel log",
            ClusterChange::CreatePartition => "create a partition",
            ClusterChange::EnableShim => "roll a shim out",
            ClusterChange::DisableShim => "restore a workload",
            ClusterChange::ArmNode => "arm a node",
            ClusterChange::DisarmNode => "disarm a node",
            ClusterChange::Recover => "recover faults",
            ClusterChange::Reap => "reap expired faults",
            ClusterChange::GpuFailure => "simulate a GPU failure",
            ClusterChange::NicFailure => "simulate a NIC failure",
        }
    }
}

/// What the user allowed: `--read-only` or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// `--read-only`: refuse every change.
    pub read_only: bool,
}

impl Access {
    /// Whether `action` may run: the one place `--read-only` is decided (front ends ask it before opening a dialog,
    /// [`execute`] before every change).
    pub fn allows(self, action: ClusterChange) -> Result<(), ClusterError> {
        if self.read_only {
            Err(ClusterError::ReadOnly(action.verb()))
        } else {
            Ok(())
        }
    }
}

/// A step of a request in progress.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterProgress {
    /// A step of an XID injection.
    Xid(xid_inject::Progress),
    /// A step of another kernel-log signal's injection.
    Signal(signal_inject::Progress),
    /// One object of a recovery was handled.
    Recovered(Recovered),
    /// A step of a shim rollout, in words.
    Rollout(String),
    /// A step of the GPU- or NIC-failure scenario.
    Step(Step),
}

impl ClusterProgress {
    /// A waiting line, replaced by the next step rather than kept (the dashboard's log).
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            ClusterProgress::Xid(xid_inject::Progress::Waiting { .. })
                | ClusterProgress::Signal(signal_inject::Progress::Watch(xid_inject::Progress::Waiting { .. }))
        )
    }
}

impl fmt::Display for ClusterProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use xid_inject::Progress;
        match self {
            ClusterProgress::Signal(signal_inject::Progress::Agent { pod, command }) => {
                write!(f, "running `faultline node {command}` in agent pod {pod}")
            }
            ClusterProgress::Signal(signal_inject::Progress::Injected { report }) => {
                let lines = report.lines.iter().map(|line| line.replace('\n', "\\n")).collect::<Vec<_>>().join(" / ");
                match report.dry_run {
                    true => write!(f, "dry run, nothing written: {lines}"),
                    false => write!(f, "written to the node's kernel log: {lines}"),
                }
            }
            ClusterProgress::Signal(signal_inject::Progress::EventRecorded { name }) => {
                ClusterProgress::Xid(Progress::EventRecorded { name: name.clone() }).fmt(f)
            }
            ClusterProgress::Signal(signal_inject::Progress::Watch(step)) => ClusterProgress::Xid(step.clone()).fmt(f),
            ClusterProgress::Xid(Progress::Agent { pod }) => {
                write!(f, "running `faultline node xid` in agent pod {pod}")
            }
            ClusterProgress::Xid(Progress::Injected { report }) if report.dry_run => {
                write!(f, "dry run, nothing written: {}", report.line)
            }
            ClusterProgress::Xid(Progress::Injected { report }) => {
                write!(f, "written to the node's kernel log: {}", report.line)
            }
            ClusterProgress::Xid(Progress::EventRecorded { name }) => write!(f, "recorded Event {name} on the node"),
            ClusterProgress::Xid(Progress::Waiting { elapsed, taints }) => write!(
                f,
                "waiting for the node to be cordoned… {} s (taints: {})",
                elapsed.as_secs(),
                if taints.is_empty() { "none".to_string() } else { taints.join(", ") }
            ),
            ClusterProgress::Xid(Progress::Cordoned { elapsed }) => {
                write!(f, "node cordoned after {}", outcome::seconds(*elapsed))
            }
            ClusterProgress::Recovered(r) => {
                let place = match &r.namespace {
                    Some(namespace) => format!("{namespace}/{}", r.name),
                    None => r.name.clone(),
                };
                write!(f, "{} {} {place}: {}", r.fault_id, r.object_kind, r.outcome)
            }
            ClusterProgress::Rollout(line) => f.write_str(line),
            ClusterProgress::Step(step) => write!(f, "[{:>4}s] {}", step.at_s, step.text),
        }
    }
}

/// Carries out `request` on `cluster` if `access` allows it; its steps go to `progress`.
pub fn execute(
    cluster: &dyn Cluster,
    request: &ClusterRequest,
    access: Access,
    progress: &mut (dyn FnMut(ClusterProgress) + Send),
) -> Result<ClusterOutcome, ClusterError> {
    if let Some(action) = request.action() {
        access.allows(action)?;
    }
    Ok(match request {
        ClusterRequest::ListNodes => ClusterOutcome::Nodes(cluster.gpu_nodes()?),
        ClusterRequest::ListFaults { namespace } => ClusterOutcome::Faults(cluster.faults(namespace.as_deref())?),
        ClusterRequest::InjectXid(request) => {
            let mut each = |step: &xid_inject::Progress| progress(ClusterProgress::Xid(step.clone()));
            ClusterOutcome::Xid(Box::new(cluster.inject_xid(request, &mut each)?))
        }
        ClusterRequest::InjectSignal(request) => {
            let mut each = |step: &signal_inject::Progress| progress(ClusterProgress::Signal(step.clone()));
            ClusterOutcome::Signal(Box::new(cluster.inject_signal(request, &mut each)?))
        }
        ClusterRequest::CreatePartition(request) => ClusterOutcome::Partition(cluster.create_partition(request)?),
        ClusterRequest::EnableShim(request) => {
            let mut each = |line: &str| progress(ClusterProgress::Rollout(line.to_string()));
            let change = cluster.enable_shim(request, &mut each)?;
            ClusterOutcome::Shim { kind: Some(request.spec.kind), change, follow: request.follow }
        }
        ClusterRequest::DisableShim(target) => {
            let mut each = |line: &str| progress(ClusterProgress::Rollout(line.to_string()));
            let change = cluster.disable_shim(target, &mut each)?;
            ClusterOutcome::Shim { kind: None, change, follow: target.follow }
        }
        ClusterRequest::ArmNode(request) => ClusterOutcome::Armed(cluster.arm_node(request)?),
        ClusterRequest::DisarmNode { node } => match cluster.armed_by(node)? {
            None => ClusterOutcome::NotArmed { node: node.clone() },
            Some(fault_id) => {
                let which = Which::Id(fault_id);
                let mut each = |r: &Recovered| progress(ClusterProgress::Recovered(r.clone()));
                let objects = cluster.recover(None, &which, &mut each)?;
                ClusterOutcome::Recovered { which, objects }
            }
        },
        ClusterRequest::Recover { namespace, which } => {
            let mut each = |r: &Recovered| progress(ClusterProgress::Recovered(r.clone()));
            let objects = cluster.recover(namespace.as_deref(), which, &mut each)?;
            ClusterOutcome::Recovered { which: which.clone(), objects }
        }
        ClusterRequest::GpuFailure(request) => {
            let mut each = |step: &Step| progress(ClusterProgress::Step(step.clone()));
            ClusterOutcome::GpuFailure(Box::new(cluster.gpu_failure(request, &mut each)?))
        }
        ClusterRequest::NicFailure(request) => {
            let mut each = |step: &Step| progress(ClusterProgress::Step(step.clone()));
            ClusterOutcome::NicFailure(Box::new(cluster.nic_failure(request, &mut each)?))
        }
        ClusterRequest::ListProcesses(scope) => ClusterOutcome::Processes(cluster.processes(scope)?),
        ClusterRequest::ProcessCommand { scope, args } => {
            ClusterOutcome::ProcessReplies(cluster.process_command(scope, args, access.read_only)?)
        }
        ClusterRequest::Replay(request) => {
            let (from, replies) = replay::replay(cluster, request, access.read_only)?;
            ClusterOutcome::Replayed { from, replies }
        }
    })
}
