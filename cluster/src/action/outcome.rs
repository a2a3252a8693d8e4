//! [`ClusterOutcome`]: what a [`super::ClusterRequest`] did, said once (`Display`, one line), as JSON, and as an
//! exit status.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};
use shm_proto::Kind;

use crate::arm::ArmedNode;
use crate::faults::{Listing, Recovered, Which};
use crate::gpu_failure::GpuFailure;
use crate::network::Created;
use crate::nic_failure::NicFailure;
use crate::nodes::GpuNode;
use crate::shim::{Follow, ShimChange};
use crate::signal_inject::SignalInjectResult;
use crate::xid_inject::WatchOutcome;
use crate::xid_inject::XidInjectResult;
use faultline_core::error::{EXIT_FAILED, EXIT_OK};
use faultline_core::output::plural;

use super::ReplayedFrom;
use crate::processes::{NodeReply, ProcessListing};

/// What a request did.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterOutcome {
    /// The GPU nodes.
    Nodes(Vec<GpuNode>),
    /// The fault ledger.
    Faults(Listing),
    /// An XID was injected (or formatted, in a dry run).
    Xid(Box<XidInjectResult>),
    /// Another kernel-log signal was written (or formatted, in a dry run).
    Signal(Box<SignalInjectResult>),
    /// A partition was created.
    Partition(Created),
    /// A shim was rolled in (`kind` given) or a workload restored (`kind` is `None`).
    Shim {
        /// The shim rolled in; `None` for a restore.
        kind: Option<Kind>,
        /// What changed.
        change: ShimChange,
        /// How long the rollout was followed.
        follow: Option<Follow>,
    },
    /// A node was armed.
    Armed(ArmedNode),
    /// `shim disarm` of a node faultline did not arm.
    NotArmed {
        /// The node.
        node: String,
    },
    /// Faults were undone (recover, reap, disarm).
    Recovered {
        /// Which were asked for.
        which: Which,
        /// Every object handled.
        objects: Vec<Recovered>,
    },
    /// The GPU-failure scenario ran.
    GpuFailure(Box<GpuFailure>),
    /// The NIC-failure scenario ran.
    NicFailure(Box<NicFailure>),
    /// The cluster's shimmed processes.
    Processes(ProcessListing),
    /// Each node's answer to a process command.
    ProcessReplies(Vec<NodeReply>),
    /// One process's recording replayed: where it came from, and each target node's answer.
    Replayed {
        /// The source.
        from: ReplayedFrom,
        /// Each node's answer to `replay --program …`.
        replies: Vec<NodeReply>,
    },
}

impl ClusterOutcome {
    /// Whether the request ran but did not get where it was asked to: a watch that saw no cordon, a rollout
    /// still going when the wait ended, a GPU failure whose node was not cordoned or drained.
    pub fn failed(&self) -> bool {
        match self {
            ClusterOutcome::Xid(result) => result.watch_timed_out(),
            ClusterOutcome::Signal(result) => result.watch_timed_out(),
            ClusterOutcome::Shim { change, .. } => change.rollout.as_ref().is_some_and(|r| !r.done),
            ClusterOutcome::GpuFailure(outcome) => !(outcome.cordoned && outcome.evicted),
            ClusterOutcome::NicFailure(outcome) => !(outcome.failure.cordoned && outcome.failure.evicted),
            ClusterOutcome::ProcessReplies(replies) | ClusterOutcome::Replayed { replies, .. } => {
                replies.iter().any(|r| r.reply["exit"] != 0)
            }
            _ => false,
        }
    }

    /// The exit status of a command that ended with this outcome.
    pub fn exit_code(&self) -> u8 {
        if let ClusterOutcome::ProcessReplies(replies) | ClusterOutcome::Replayed { replies, .. } = self {
            // As locally: the worst of the nodes' statuses (2 for a refused request, 1 for failed processes).
            return replies.iter().filter_map(|r| r.reply["exit"].as_u64()).max().map_or(EXIT_OK, |e| e.min(255) as u8);
        }
        if self.failed() {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// The outcome as `--json` prints it.
    pub fn to_json(&self) -> Value {
        let value: serde_json::Result<Value> = match self {
            ClusterOutcome::Nodes(nodes) => Ok(json!({ "nodes": nodes })),
            ClusterOutcome::Faults(listing) => serde_json::to_value(listing),
            ClusterOutcome::Xid(result) => serde_json::to_value(result),
            ClusterOutcome::Signal(result) => serde_json::to_value(result),
            ClusterOutcome::Partition(created) => serde_json::to_value(created),
            ClusterOutcome::Shim { change, .. } => serde_json::to_value(change),
            ClusterOutcome::Armed(armed) => serde_json::to_value(armed),
            ClusterOutcome::NotArmed { node } => Ok(json!({ "node": node, "armed": false })),
            ClusterOutcome::Recovered { objects, .. } => Ok(json!({ "recovered": objects })),
            ClusterOutcome::GpuFailure(outcome) => serde_json::to_value(outcome),
            ClusterOutcome::NicFailure(outcome) => serde_json::to_value(outcome),
            ClusterOutcome::Processes(listing) => serde_json::to_value(listing),
            ClusterOutcome::ProcessReplies(replies) => Ok(json!({ "nodes": replies })),
            ClusterOutcome::Replayed { from, replies } => Ok(json!({ "from": from, "nodes": replies })),
        };
        // These types hold strings, numbers and maps with string keys only: serialising them cannot fail.
        value.unwrap_or_else(|error| json!({ "error": error.to_string() }))
    }
}

/// `12.5 s`.
pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `; cordoned after 12.5 s`, or why not, after an injection that watched the node.
fn write_watch(f: &mut fmt::Formatter<'_>, watch: Option<&WatchOutcome>) -> fmt::Result {
    let Some(watch) = watch else { return Ok(()) };
    let waited = seconds(Duration::from_secs_f64(watch.waited_s.max(0.0)));
    if watch.cordoned {
        write!(f, "; cordoned after {waited}")
    } else {
        write!(f, "; not cordoned within {waited} (is NVSentinel running on the node?)")
    }
}

/// Each node's answer to a process command: `node gpu-a (pid 1, 2):` and what its agent said.
fn write_replies(f: &mut fmt::Formatter<'_>, replies: &[NodeReply]) -> fmt::Result {
    for (index, reply) in replies.iter().enumerate() {
        let said = match reply.reply["error"].as_str() {
            Some(error) => error.to_string(),
            None => reply.reply["text"].as_str().unwrap_or_default().trim_end().to_string(),
        };
        let pids: Vec<String> = reply.pids.iter().map(u32::to_string).collect();
        let separator = if index == 0 { "" } else { "\n" };
        write!(f, "{separator}node {} (pid {}):\n{said}", reply.node, pids.join(", "))?;
    }
    Ok(())
}

impl fmt::Display for ClusterOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterOutcome::Nodes(nodes) => write!(f, "{} GPU node{}", nodes.len(), plural(nodes.len())),
            ClusterOutcome::Faults(listing) => {
                write!(f, "{} fault object{}", listing.faults.len(), plural(listing.faults.len()))
            }
            ClusterOutcome::Xid(result) => {
                let agent = &result.agent;
                let done = if agent.dry_run { "formatted (dry run, nothing written)" } else { "injected" };
                write!(
                    f,
                    "XID {} ({}) {done} on GPU {} (PCI {}) of node {}: fault {}",
                    agent.xid, agent.xid_name, agent.gpu, agent.pci, result.node, result.fault_id
                )?;
                write_watch(f, result.watch.as_ref())
            }
            ClusterOutcome::Signal(result) => {
                let agent = &result.agent;
                let done = if agent.dry_run { "formatted (dry run, nothing written)" } else { "written" };
                write!(
                    f,
                    "{}: {} {done} into the kernel log of node {} (read by {}{}): fault {}",
                    agent.signal.title(),
                    agent.summary,
                    result.node,
                    agent.monitor,
                    if agent.fatal { ", fatal" } else { "" },
                    result.fault_id
                )?;
                write_watch(f, result.watch.as_ref())
            }
            ClusterOutcome::Partition(created) => write!(
                f,
                "created {} {}/{} (fault {}, until {})",
                created.kind,
                created.namespace,
                created.name,
                created.fault_id,
                created.expires_at.as_deref().unwrap_or("recovered")
            ),
            ClusterOutcome::Shim { kind, change, follow } => {
                let id = change.fault_id.as_deref().unwrap_or("-");
                match (kind, change.changed) {
                    (Some(kind), true) => write!(
                        f,
                        "{} shim in {} (namespace {}): fault {id}",
                        kind.name(),
                        change.workload,
                        change.namespace
                    )?,
                    (None, true) => {
                        write!(f, "{} (namespace {}) restored: fault {id}", change.workload, change.namespace)?
                    }
                    (_, false) => write!(f, "{} (namespace {}): unchanged", change.workload, change.namespace)?,
                }
                match (&change.rollout, follow) {
                    (Some(rollout), _) if rollout.done => write!(f, "; rollout {}, done", rollout.text),
                    (Some(rollout), Some(follow)) => write!(
                        f,
                        "; rollout {}, not finished after {} s (it goes on)",
                        rollout.text,
                        follow.timeout.as_secs()
                    ),
                    (Some(rollout), None) => write!(f, "; rollout {}", rollout.text),
                    (None, _) => Ok(()),
                }
            }
            ClusterOutcome::Armed(armed) => write!(
                f,
                "node {} armed: {} (fault {}, until {})",
                armed.node,
                armed.describe(),
                armed.fault_id,
                armed.expires_at.as_deref().unwrap_or("recovered")
            ),
            ClusterOutcome::NotArmed { node } => write!(f, "node {node} is not armed by faultline"),
            ClusterOutcome::Recovered { which, objects } => match (which, objects.len()) {
                (Which::Id(id), 0) => write!(f, "nothing left of fault {id} (already recovered?)"),
                (Which::Id(id), n) => write!(f, "fault {id} recovered: {n} object{} handled", plural(n)),
                (_, 0) => f.write_str("nothing to recover"),
                (_, n) => write!(f, "{n} object{} handled", plural(n)),
            },
            ClusterOutcome::Processes(listing) => {
                write!(f, "shimmed processes: {}", listing.processes.len())
            }
            ClusterOutcome::ProcessReplies(replies) => write_replies(f, replies),
            ClusterOutcome::Replayed { from, replies } => {
                let pod = from.pod.as_deref().map(|pod| format!(", {pod}")).unwrap_or_default();
                let exited = if from.alive { "" } else { ", exited" };
                writeln!(
                    f,
                    "replaying {} call{} ({} fault{}) recorded by pid {} ({}{pod}{exited}) on node {}",
                    from.calls,
                    plural(from.calls),
                    from.faults,
                    plural(from.faults),
                    from.pid,
                    from.kind,
                    from.node
                )?;
                write_replies(f, replies)
            }
            ClusterOutcome::GpuFailure(outcome) => write!(
                f,
                "GPU failure on node {} (fault {}): cordoned {}, evicted {}; `faultline cluster recover {}` reverses \
                 it",
                outcome.node,
                outcome.fault_id,
                if outcome.cordoned { "yes" } else { "no" },
                if outcome.evicted { "yes" } else { "no" },
                outcome.fault_id
            ),
            ClusterOutcome::NicFailure(outcome) => write!(
                f,
                "NIC failure of {} on node {} (fault {}): {} UCX process(es) failed at the endpoint, cordoned {}, \
                 evicted {}; `faultline cluster recover {}` reverses it",
                outcome.device,
                outcome.failure.node,
                outcome.failure.fault_id,
                outcome.failure.processes_failed,
                if outcome.failure.cordoned { "yes" } else { "no" },
                if outcome.failure.evicted { "yes" } else { "no" },
                outcome.failure.fault_id
            ),
        }
    }
}
