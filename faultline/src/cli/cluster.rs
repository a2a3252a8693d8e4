//! `faultline cluster …`: actions through the Kubernetes API, with the current kubeconfig context like kubectl.

pub mod faults;
pub mod processes;

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use faultline::cluster::action::draft::{positive_seconds, Names, SignalDraft, XidDraft};
use faultline::cluster::action::{self, Access, ClusterOutcome, ClusterProgress, ClusterRequest};
use faultline::cluster::faults::Which;
use faultline::cluster::nodes::GpuNode;
use faultline::cluster::signal_inject::{KernelSignal, SignalInjectRequest};
use faultline::cluster::xid_inject::XidInjectRequest;
use faultline::cluster::{ConnectOptions, Session};
use k8s_openapi::jiff::Timestamp;

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
    /// The NVIDIA driver's "GPU has fallen off the bus" message (no XID) in a node's kernel log.
    FallenOff {
        #[command(subcommand)]
        command: SignalCommand<FallenOffInject>,
    },
    /// NVSwitch SXid lines in a node's kernel log.
    Sxid {
        #[command(subcommand)]
        command: SignalCommand<SxidInject>,
    },
    /// NIC driver errors (mlx5_core, EFA) in a node's kernel log.
    Nic {
        #[command(subcommand)]
        command: SignalCommand<NicInject>,
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
    /// Simulate a dead NIC end to end, the RDMA twin of gpu-failure: arm the node's UCX shims, fail its live UCX
    /// processes at the endpoint site (error handler, every later operation fails until the endpoint is closed),
    /// write the NIC's fatal kernel-log line, watch the cordon and the evictions, report where the pods went.
    /// `faultline cluster recover <id>` reverses it.
    NicFailure(faults::NicFailureArgs),
    /// Every shimmed process in the cluster, through the node agents: NODE, NAMESPACE, POD, CONTAINER, PID (host),
    /// KIND, EXE, STATE, INJECT, MODE, CALLS/S, FAULTS/S.
    Ps(processes::PsArgs),
    /// Any process command (enable, strategy, probability, record, …) for processes in the cluster:
    /// `faultline cluster <command> … (--pod NS/NAME [--container C] | -l SELECTOR [-n NS] | --node N [--pid HOSTPID]
    /// | --all)`. `replay` plays one process's recording, from any node: `--from-pod NS/NAME [--from-container C]
    /// [--from-kind K]` or `--from-node N --from-pid HOSTPID` (or `--from-file` on this machine, or `--program`).
    #[command(external_subcommand)]
    Process(Vec<String>),
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
    /// The XID (`faultline node xid --list` shows the catalog).
    #[arg(long, value_name = "N")]
    pub xid: u32,
    #[command(flatten)]
    pub line: super::node::XidLineArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `faultline cluster fallen-off|sxid|nic …`.
#[derive(Debug, Subcommand)]
pub enum SignalCommand<T: Args> {
    /// Write the line into a node's kernel log through its faultline-node agent pod, and record an Event.
    #[command(after_help = "Runs `faultline node <signal> …` in the agent pod on --node (Kubernetes exec API), \
                            records a Warning Event (reason FaultlineKernelSignalInjected) on the Node, and with \
                            --watch follows the node until it is cordoned or --watch-timeout passes (exit 1).")]
    Inject(T),
}

/// Following the node until it is cordoned, for every kernel-log injection.
#[derive(Debug, Args)]
pub struct WatchArgs {
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

impl WatchArgs {
    /// (how long to watch, if at all; how often to look).
    fn parse(&self) -> anyhow::Result<(Option<Duration>, Duration)> {
        let Some(interval) = positive_seconds(self.watch_interval) else {
            return Err(faultline::Error::usage("--watch-interval must be a positive number of seconds").into());
        };
        Ok((self.watch.then(|| Duration::from_secs(self.watch_timeout)), interval))
    }
}

/// What every `faultline cluster <signal> inject` takes besides the line's own options.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `faultline cluster fallen-off inject`.
#[derive(Debug, Args)]
pub struct FallenOffInject {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub line: super::signals::FallenOffLineArgs,
}

/// `faultline cluster sxid inject`.
#[derive(Debug, Args)]
pub struct SxidInject {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub line: super::signals::SxidLineArgs,
}

/// `faultline cluster nic inject`.
#[derive(Debug, Args)]
pub struct NicInject {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub line: super::signals::NicLineArgs,
}

/// Runs `faultline cluster …`: the arguments become one [`ClusterRequest`], carried out by the action layer's
/// [`action::execute`] (which refuses changes under `--read-only`); its steps go to stderr, its outcome to stdout.
/// `pids` is the global `--pid` (the pid= field of an XID line), `json` the global `--json`.
pub fn run(args: ClusterArgs, pids: &[u32], json: bool, read_only: bool) -> anyhow::Result<u8> {
    let (session, request) = prepare(args, pids)?;
    let mut progress = |step: ClusterProgress| eprintln!("faultline: {step}");
    let outcome = action::execute(&session, &request, Access { read_only }, &mut progress)?;
    print(&render(&outcome, json)?)?;
    Ok(outcome.exit_code())
}

/// The session and the request `faultline cluster …` stands for, checked; nothing is sent yet (an experiment's
/// cluster actions go through here too).
pub fn prepare(args: ClusterArgs, pids: &[u32]) -> anyhow::Result<(Session, ClusterRequest)> {
    let options = ConnectOptions { context: args.context, namespace: args.agent_namespace };
    // Loading the kubeconfig makes no API call: nothing reaches the cluster before the request is checked.
    let session = Session::connect(&options)?;
    let namespace = faults::Namespace { given: args.namespace, context: session.api().context_namespace().to_string() };
    let request = match args.command {
        ClusterCommand::Nodes => ClusterRequest::ListNodes,
        ClusterCommand::Xid { command: XidCommand::Inject(inject) } => xid_request(inject, pids)?,
        ClusterCommand::FallenOff { command: SignalCommand::Inject(inject) } => {
            let line = inject.line;
            let signal = KernelSignal::FallenOff { gpu: line.gpu, pci: line.pci, pci_id: line.pci_id };
            signal_request(&inject.target, signal, line.dry_run)?
        }
        ClusterCommand::Sxid { command: SignalCommand::Inject(inject) } => {
            let line = inject.line;
            let signal = KernelSignal::Sxid {
                switch: line.switch,
                sxid: line.sxid,
                link: line.link,
                fatal: line.fatal,
                message: line.message,
                pci: line.pci,
            };
            signal_request(&inject.target, signal, line.dry_run)?
        }
        ClusterCommand::Nic { command: SignalCommand::Inject(inject) } => {
            let line = inject.line;
            let signal =
                KernelSignal::Nic { device: line.device, event: line.event, pci: line.pci, netdev: line.netdev };
            signal_request(&inject.target, signal, line.dry_run)?
        }
        ClusterCommand::Partition { command } => faults::partition(&namespace, command)?,
        ClusterCommand::Shim { command } => faults::shim(&namespace, command)?,
        ClusterCommand::Faults(scope) => ClusterRequest::ListFaults { namespace: namespace.scope(&scope) },
        ClusterCommand::Recover(recover) => faults::recover(&namespace, &recover),
        ClusterCommand::Reap(scope) => {
            ClusterRequest::Recover { namespace: namespace.scope(&scope), which: Which::Expired }
        }
        ClusterCommand::GpuFailure(gpu_failure) => faults::gpu_failure(&namespace, &gpu_failure)?,
        ClusterCommand::NicFailure(nic_failure) => faults::nic_failure(&namespace, &nic_failure)?,
        ClusterCommand::Ps(ps) => processes::ps(&namespace, ps)?,
        ClusterCommand::Process(words) => processes::command(&namespace, words)?,
    };
    Ok((session, request))
}

fn xid_request(inject: InjectArgs, pids: &[u32]) -> anyhow::Result<ClusterRequest> {
    let pid = match pids {
        [] => None,
        [pid] => Some(*pid),
        _ => return Err(faultline::Error::usage("give --pid at most once (the pid= field of the line)").into()),
    };
    let (watch, watch_interval) = inject.watch.parse()?;
    let nvl5 = inject.line.nvl5();
    let draft = XidDraft {
        request: XidInjectRequest {
            pci: inject.line.pci,
            uuid: inject.line.uuid,
            nvl5,
            pid,
            process_name: inject.line.name,
            force: inject.line.force,
            dry_run: inject.line.dry_run,
            watch,
            watch_interval: Some(watch_interval),
            ..XidInjectRequest::new(&inject.node, inject.line.gpu, inject.xid)
        },
    };
    let request = draft.parse(Names::Flags)?;
    Ok(ClusterRequest::InjectXid(Box::new(request)))
}

fn signal_request(target: &TargetArgs, signal: KernelSignal, dry_run: bool) -> anyhow::Result<ClusterRequest> {
    let (watch, watch_interval) = target.watch.parse()?;
    let draft = SignalDraft {
        request: SignalInjectRequest {
            dry_run,
            watch,
            watch_interval: Some(watch_interval),
            ..SignalInjectRequest::new(&target.node, signal)
        },
    };
    Ok(ClusterRequest::InjectSignal(Box::new(draft.parse(Names::Flags)?)))
}

/// The outcome as stdout shows it: `--json`, the node and fault tables, or its one line.
fn render(outcome: &ClusterOutcome, json: bool) -> serde_json::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&outcome.to_json())?));
    }
    Ok(match outcome {
        ClusterOutcome::Nodes(nodes) => render_nodes(nodes),
        ClusterOutcome::Faults(listing) => faults::render_listing(listing, Timestamp::now()),
        ClusterOutcome::Processes(listing) => processes::render(listing),
        other => format!("{other}\n"),
    })
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

fn render_nodes(nodes: &[GpuNode]) -> String {
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
