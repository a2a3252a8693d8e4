//! `faultline cluster …`: actions through the Kubernetes API, with the current kubeconfig context like kubectl.

pub mod faults;

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use faultline::cluster::nodes::GpuNode;
use faultline::cluster::xid_inject::{Progress, XidInjectRequest, XidInjectResult};
use faultline::cluster::{ConnectOptions, Session};
use faultline::error::{EXIT_FAILED, EXIT_OK};

/// `faultline cluster …`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "CONTEXT", global = true)]
    pub context: Option<String>,
    /// The namespace of workloads, partitions and faults (default: the context's namespace, as kubectl).
    #[arg(long, short = 'n', value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// The namespace of the faultline-node agent and of faultline's records (default: faultline-system).
    #[arg(long, value_name = "NAMESPACE", global = true)]
    pub agent_namespace: Option<String>,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List GPU nodes: ready, cordoned, taints, GPU count, whether the faultline-node agent is ready, recent XIDs.
    Nodes,
    /// XID faults on GPU nodes.
    Xid {
        #[command(subcommand)]
        command: XidCommand,
    },
    /// Network partitions (NetworkPolicy, or Chaos Mesh NetworkChaos).
    Partition {
        #[command(subcommand)]
        command: faults::PartitionCommand,
    },
    /// Roll a shim into workloads (and out again exactly); arm and disarm nodes.
    Shim {
        #[command(subcommand)]
        command: faults::ShimCommand,
    },
    /// List every active fault from the cluster itself (partitions, chaos, shimmed workloads, armed nodes, XIDs).
    Faults(faults::ScopeArgs),
    /// Undo one fault, or all of them (idempotent).
    Recover(faults::RecoverArgs),
    /// Undo every fault whose --ttl has passed (deploy/ runs this every minute).
    Reap(faults::ScopeArgs),
    /// Simulate a dead GPU end to end: arm the node, fail its live CUDA processes, inject the XID, watch the cordon
    /// and the evictions, report where the pods went. `faultline cluster recover <id>` reverses it.
    GpuFailure(faults::GpuFailureArgs),
}

/// `faultline cluster xid …`.
#[derive(Debug, Subcommand)]
pub enum XidCommand {
    /// Write an XID line into a node's kernel log through its faultline-node agent pod, and record an Event.
    #[command(after_help = "Runs `faultline node xid …` in the agent pod on --node (Kubernetes exec API), records \
                            a Warning Event (reason FaultlineXidInjected) on the Node, and with --watch follows \
                            the node until it is cordoned (NVSentinel) or --watch-timeout passes (exit 1).")]
    Inject(InjectArgs),
}

/// The options of `faultline cluster xid inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
    /// The GPU's minor number on that node.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpu: u32,
    /// The XID (`faultline node xid --list` shows the catalog).
    #[arg(long, value_name = "N")]
    pub xid: u32,
    /// The GPU's PCI address, when the node's driver cannot tell.
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// name= in the line (with --pid for pid=).
    #[arg(long, value_name = "PROCESS")]
    pub name: Option<String>,
    /// Inject an XID outside the catalog.
    #[arg(long)]
    pub force: bool,
    /// Let the agent format the line without writing it; no Event.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the node until it is cordoned.
    #[arg(long)]
    pub watch: bool,
    /// How long --watch waits for the cordon.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub watch_timeout: u64,
    /// How often --watch looks at the node.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, hide = true)]
    pub watch_interval: f64,
}

/// Runs `faultline cluster …`; `pids` is the global `--pid` (the pid= field), `json` the global `--json`.
pub fn run(args: ClusterArgs, pids: &[u32], json: bool, read_only: bool) -> anyhow::Result<u8> {
    let options = ConnectOptions { context: args.context, namespace: args.agent_namespace };
    let namespace = args.namespace.clone();
    let ledger = move |session| faults::Context { session, namespace: namespace.clone(), json, read_only };
    match args.command {
        ClusterCommand::Partition { command } => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::partition(&ledger(&session), command)
        }
        ClusterCommand::Shim { command } => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::shim(&ledger(&session), command, session.api())
        }
        ClusterCommand::Faults(scope) => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::list(&ledger(&session), &scope)
        }
        ClusterCommand::Recover(recover) => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::recover(&ledger(&session), &recover, session.api())
        }
        ClusterCommand::GpuFailure(gpu_failure) => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::gpu_failure(&ledger(&session), &gpu_failure, session.api())
        }
        ClusterCommand::Reap(scope) => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            faults::reap(&ledger(&session), &scope, session.api())
        }
        ClusterCommand::Nodes => {
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            let nodes = session.gpu_nodes().map_err(faultline::Error::from)?;
            print(&render_nodes(&nodes, json))?;
            Ok(EXIT_OK)
        }
        ClusterCommand::Xid { command: XidCommand::Inject(inject) } => {
            if read_only && !inject.dry_run {
                return Err(faultline::Error::ReadOnly("inject an XID").into());
            }
            let pid = match pids {
                [] => None,
                [pid] => Some(*pid),
                _ => return Err(faultline::Error::usage("give --pid at most once (the pid= field of the line)").into()),
            };
            if !(inject.watch_interval > 0.0 && inject.watch_interval.is_finite()) {
                return Err(faultline::Error::usage("--watch-interval must be a positive number of seconds").into());
            }
            let request = XidInjectRequest {
                pci: inject.pci,
                pid,
                process_name: inject.name,
                force: inject.force,
                dry_run: inject.dry_run,
                watch: inject.watch.then(|| Duration::from_secs(inject.watch_timeout)),
                watch_interval: Some(Duration::from_secs_f64(inject.watch_interval)),
                ..XidInjectRequest::new(&inject.node, inject.gpu, inject.xid)
            };
            let session = Session::connect(&options).map_err(faultline::Error::from)?;
            let result = session.inject_xid(&request, &mut report_progress).map_err(faultline::Error::from)?;
            print(&render_injection(&result, json))?;
            if result.watch_timed_out() {
                eprintln!(
                    "faultline: node {} was not cordoned within {}s (is NVSentinel running on it?)",
                    result.node, inject.watch_timeout
                );
                return Ok(EXIT_FAILED);
            }
            Ok(EXIT_OK)
        }
    }
}

fn report_progress(progress: &Progress) {
    let line = match progress {
        Progress::Agent { pod } => format!("running `faultline node xid` in agent pod {pod}"),
        Progress::Injected { report } if report.dry_run => format!("dry run, nothing written: {}", report.line),
        Progress::Injected { report } => {
            format!("kernel log record {} on the node: {}", report.kmsg_seq.unwrap_or_default(), report.line)
        }
        Progress::EventRecorded { name } => format!("recorded Event {name} on the node"),
        Progress::Waiting { elapsed, taints } => {
            format!("waiting for the node to be cordoned… {}s (taints: {})", elapsed.as_secs(), list(taints))
        }
        Progress::Cordoned { elapsed } => format!("node cordoned after {:.1}s", elapsed.as_secs_f64()),
    };
    eprintln!("faultline: {line}");
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

pub(crate) fn print(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn render_nodes(nodes: &[GpuNode], json: bool) -> String {
    if json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes })).unwrap_or_default()
        );
    }
    if nodes.is_empty() {
        return "no GPU nodes (none is labelled nvidia.com/gpu.present=true)\n".to_string();
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let rows: Vec<[String; 7]> = nodes
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.ready.map_or("?", yes_no).to_string(),
                yes_no(n.cordoned).to_string(),
                n.gpus.map_or("?".to_string(), |g| g.to_string()),
                n.agent.as_ref().map_or("none".to_string(), |a| {
                    if a.ready {
                        "ready".to_string()
                    } else {
                        a.phase.to_lowercase()
                    }
                }),
                list(&n.taints),
                n.recent_xids.first().map_or("-".to_string(), |x| x.message.clone()),
            ]
        })
        .collect();
    table(&["NODE", "READY", "CORDONED", "GPUS", "AGENT", "TAINTS", "LAST XID"], &rows)
}

/// Left-aligned columns two spaces apart, with a header row.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn render_injection(result: &XidInjectResult, json: bool) -> String {
    if json {
        return format!("{}\n", serde_json::to_string_pretty(result).unwrap_or_default());
    }
    let agent = &result.agent;
    let mut out = format!(
        "XID {} ({}, {}) {} on node {} GPU {} (PCI {}), fault {}\n",
        agent.xid,
        agent.xid_name,
        agent.severity,
        if agent.dry_run { "formatted (dry run, nothing written)" } else { "injected" },
        result.node,
        agent.gpu,
        agent.pci,
        result.fault_id
    );
    if let Some(event) = &result.event {
        out.push_str(&format!("Event: {event}\n"));
    }
    if let Some(watch) = &result.watch {
        out.push_str(&format!(
            "cordoned: {} after {:.1}s (taints: {})\n",
            if watch.cordoned { "yes" } else { "no" },
            watch.waited_s,
            list(&watch.taints)
        ));
    }
    out
}
