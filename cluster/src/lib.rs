//! `faultline-cluster`: cluster faults through the Kubernetes API (kube-rs on a small tokio runtime), with the
//! current kubeconfig context like kubectl, and the node agent's side of them ([`node`]). Every front end reaches
//! the cluster through one action layer, [`action`]: a [`action::ClusterRequest`] carried out by
//! [`action::execute`].
//!
//! - [`action`]: the one action layer: requests, `execute`, outcomes and progress (each `Display`ed once), drafts
//!   (what a user typed, checked once), `--read-only` ([`action::Access`]);
//! - [`kube_api`]: the one module that makes Kubernetes API calls; each call declares the RBAC rule it needs
//!   ([`kube_api::KubeApi::CALLS`]), and a test holds `deploy/rbac.yaml` to exactly that list;
//! - [`agent`]: the ready node-agent pod on a node, and `faultline node …` commands run in it;
//! - [`arm`]: arm/disarm a node (the policy file CUDA or UCX shims read at start-up), recorded as a ledger ConfigMap;
//! - [`exec`]: the [`exec::PodExec`] trait (running a command in the node agent's pod), its kube implementation
//!   and a scripted test double;
//! - [`faults`]: the ledger read back from the cluster: list, recover, reap;
//! - [`gpu_failure`]: the GPU-failure scenario: arm, fail live processes, inject the XID, watch cordon and evictions;
//! - [`nic_failure`]: its RDMA twin: arm the UCX shims, fail live UCX processes at the endpoint, write the NIC's
//!   fatal kernel line, watch cordon and evictions;
//! - [`scenario`]: what the two scenarios share: the timeline, pods on the node, live processes, the aftermath;
//! - [`ledger`]: the labels and annotations on everything faultline creates or changes (fault id, kind, expiry,
//!   who/when): the cluster itself is the record of active faults;
//! - [`names`]: Kubernetes names, labels and selectors, checked once for every front end;
//! - [`network`]: `partition create`: NetworkPolicy or Chaos Mesh NetworkChaos, created stamped;
//! - [`nodes`]: GPU nodes, their agent pods, cordon state, taints, GPU counts and recent XID events;
//! - [`processes`]: every shimmed process in the cluster, through one `faultline node watch` session per node;
//! - [`partition`]: network partitions as objects: NetworkPolicy presets and Chaos Mesh NetworkChaos (pure builders);
//! - [`shim`]: `shim enable|disable`: patch the workload, follow the rollout;
//! - [`shim_rollout`]: the merge patches that roll a shim into a workload's pods and restore them exactly;
//! - [`xid_inject`]: `faultline cluster xid inject`: exec `faultline node xid …` in the node's agent pod, record a
//!   Kubernetes Event on the Node, and optionally watch the node until it is cordoned;
//! - [`signal_inject`]: `faultline cluster fallen-off|sxid|nic inject`: the other kernel-log signals, the same way;
//! - [`node`]: what runs on a node as root in the agent pod: XID lines and the other kernel-log signals (GPU fallen
//!   off the bus, NVSwitch SXid, NIC driver errors) into the kernel log, arming (the node
//!   policy file), process commands across the node's containers;
//! - [`Session`]: a blocking façade (runtime + API), the real [`action::Cluster`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
pub mod agent;
pub mod arm;
pub mod conditions;
pub mod exec;
pub mod faults;
pub mod gpu_failure;
pub mod kube_api;
pub mod ledger;
pub mod live;
pub mod names;
pub mod network;
pub mod nic_failure;
pub mod node;
pub mod nodes;
pub mod partition;
pub mod processes;
pub mod scenario;
pub mod shim;
pub mod shim_rollout;
pub mod signal_inject;
pub mod xid_inject;

use std::time::Duration;

use faultline_core::error::{EXIT_FAILED, EXIT_USAGE};
pub use kube_api::{ConnectOptions, KubeApi};

/// Where `deploy/` installs the node agent (and where its Events go).
pub const DEFAULT_NAMESPACE: &str = "faultline-system";

/// Why a cluster action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig / context / in-cluster configuration.
    #[error("cannot configure a Kubernetes client{}: {message}", context_suffix(.context))]
    Config {
        /// `--context`, if given.
        context: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The API server could not be reached, or answered something that is not Kubernetes.
    #[error("cannot {action} ({server}): {message}")]
    Transport {
        /// What faultline tried, e.g. `list nodes`.
        action: String,
        /// The API server.
        server: String,
        /// The cause.
        message: String,
    },
    /// RBAC said no.
    #[error(
        "forbidden: you may not {action} ({message}); bind the faultline-operator roles from deploy/rbac.yaml to \
         your user or group"
    )]
    Forbidden {
        /// What faultline tried, e.g. `list nodes` or `create events in faultline-system`.
        action: String,
        /// The API server's message.
        message: String,
    },
    /// Any other API error.
    #[error("cannot {action}: {message} (HTTP {code})")]
    Api {
        /// What faultline tried.
        action: String,
        /// HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// `--node` names no node.
    #[error("node {node} not found (`faultline cluster nodes` lists the GPU nodes)")]
    NodeNotFound {
        /// The name given.
        node: String,
    },
    /// No node agent pod runs on the node.
    #[error(
        "no faultline-node agent pod on node {node} in namespace {namespace}{}; install it with \
         `kubectl apply -k deploy/` (it runs on nodes labelled nvidia.com/gpu.present=true)",
        if *.gpu_node { "" } else { " (the node is not labelled nvidia.com/gpu.present=true)" }
    )]
    NoAgentPod {
        /// The node.
        node: String,
        /// Where faultline looked.
        namespace: String,
        /// Whether the node carries the GPU label.
        gpu_node: bool,
    },
    /// The agent pod exists but cannot run commands yet.
    #[error("the faultline-node agent pod {pod} on node {node} is not ready (phase {phase}); try again when it is")]
    AgentNotReady {
        /// The node.
        node: String,
        /// The pod.
        pod: String,
        /// Its phase.
        phase: String,
    },
    /// The command in the agent pod failed.
    #[error("`{command}` failed in pod {pod}{}: {stderr}", exit_suffix(.exit_code))]
    AgentFailed {
        /// The pod.
        pod: String,
        /// The command line.
        command: String,
        /// Its exit status, if the API reported one.
        exit_code: Option<i32>,
        /// What it printed on standard error.
        stderr: String,
    },
    /// The agent's answer could not be understood.
    #[error("pod {pod} answered something that is not faultline's JSON report ({message}): {stdout}")]
    AgentOutput {
        /// The pod.
        pod: String,
        /// The parse error.
        message: String,
        /// What it printed.
        stdout: String,
    },
    /// A custom resource whose CustomResourceDefinition is not installed (Chaos Mesh, NVIDIA Dynamo).
    #[error("the cluster does not serve {kind} ({group}): is its CustomResourceDefinition installed? ({message})")]
    MissingCrd {
        /// The kind, e.g. `NetworkChaos`.
        kind: &'static str,
        /// Its API group.
        group: &'static str,
        /// The API server's message.
        message: String,
    },
    /// A request that cannot be valid (checked before anything is sent).
    #[error("{0}")]
    Usage(String),
    /// A cluster-wide process command found nothing to act on.
    #[error("{0}")]
    NoProcesses(String),
    /// A node agent's answer to a process command that a later step depends on (the recording a replay plays):
    /// refused, with the agent's message and exit status, or not understood.
    #[error("node {node}: {message}")]
    NodeAnswer {
        /// The node.
        node: String,
        /// The exit status the agent gave (1 when its answer was not understood).
        exit: u8,
        /// What went wrong.
        message: String,
    },
    /// `--read-only` refused a change (see [`action::Access::allows`]).
    #[error("--read-only: refusing to {0}")]
    ReadOnly(&'static str),
}

fn context_suffix(context: &Option<String>) -> String {
    context.as_ref().map(|c| format!(" for context {c}")).unwrap_or_default()
}

fn exit_suffix(code: &Option<i32>) -> String {
    code.map(|c| format!(" (exit status {c})")).unwrap_or_default()
}

impl ClusterError {
    /// The exit status: 2 when the request was wrong and nothing was changed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClusterError::Config { .. }
            | ClusterError::NodeNotFound { .. }
            | ClusterError::MissingCrd { .. }
            | ClusterError::Usage(_)
            | ClusterError::ReadOnly(_) => EXIT_USAGE,
            ClusterError::AgentFailed { exit_code: Some(2), .. } => EXIT_USAGE,
            ClusterError::NodeAnswer { exit: 2, .. } => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}

/// A connected client on its own single-threaded runtime, for callers that are not async (the CLI, or the
/// dashboard's background worker thread: never call it from the UI thread, every method blocks on the network).
pub struct Session {
    runtime: tokio::runtime::Runtime,
    api: KubeApi,
}

impl Session {
    /// Loads the kubeconfig (or the in-cluster configuration) and builds a client.
    pub fn connect(options: &ConnectOptions) -> Result<Session, ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
            ClusterError::Config { context: options.context.clone(), message: format!("cannot start a runtime: {e}") }
        })?;
        let api = runtime.block_on(KubeApi::connect(options))?;
        Ok(Session { runtime, api })
    }

    /// The API (for async callers that bring their own runtime).
    pub fn api(&self) -> &KubeApi {
        &self.api
    }

    /// Runs `future` to completion on the session's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// How often `--watch` polls the node, unless told otherwise.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);
