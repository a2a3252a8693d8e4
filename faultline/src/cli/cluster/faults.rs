//! `faultline cluster partition|shim|faults|recover|reap|gpu-failure`: the fault ledger's commands, each turned
//! into a [`ClusterRequest`] (through the action layer's drafts where the user typed a fault's settings).

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use faultline::cluster::action::draft::{check_workload, positive_seconds, Names, PartitionDraft, ShimDraft};
use faultline::cluster::action::{ArmRequest, ClusterRequest, ShimTarget};
use faultline::cluster::faults::{Listing, Which};
use faultline::cluster::gpu_failure::GpuFailureRequest;
use faultline::cluster::ledger::{self, parse_ttl};
use faultline::cluster::nic_failure::NicFailureRequest;
use faultline::cluster::partition::{ChaosAction, ChaosDirection, ChaosParams, Preset};
use faultline::cluster::shim::Follow;
use faultline::cluster::shim_rollout::{ShimSpec, Workload};
use faultline::cluster::ClusterError;
use k8s_openapi::jiff::Timestamp;

/// `faultline cluster partition …`.
#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Cut pods off the network: a NetworkPolicy (presets), or a Chaos Mesh NetworkChaos (partition, loss, delay,
    /// bandwidth). Removed by `faultline cluster recover <id>`, or by the reaper when --ttl has passed.
    #[command(after_help = "Presets: worker-worker (the selected pods lose each other, or --to-selector), \
                            frontend-worker (they lose the --to-selector pods), worker-nats (they lose NATS), \
                            custom (--to-selector, or everything). DNS and NATS stay reachable unless \
                            --block-dns / --block-nats. With --mode chaos-mesh: --action partition|loss|delay|\
                            bandwidth and its parameters; --to-selector is the target.")]
    Create(PartitionArgs),
}

/// How a partition is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionMode {
    /// A Kubernetes NetworkPolicy (any cluster whose network plugin enforces them).
    NetworkPolicy,
    /// A Chaos Mesh NetworkChaos (Chaos Mesh must be installed).
    ChaosMesh,
}

/// The options of `faultline cluster partition create`.
#[derive(Debug, Args)]
pub struct PartitionArgs {
    /// The pods to cut off: KEY=VALUE[,KEY=VALUE…] (their labels, as given).
    #[arg(long, value_name = "LABELS")]
    pub selector: String,
    /// What they lose (NetworkPolicy mode) [default: worker-worker].
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// Cut incoming connections (neither --ingress nor --egress: both).
    #[arg(long)]
    pub ingress: bool,
    /// Cut outgoing connections.
    #[arg(long)]
    pub egress: bool,
    /// Block NATS too.
    #[arg(long)]
    pub block_nats: bool,
    /// Block the cluster DNS too.
    #[arg(long)]
    pub block_dns: bool,
    /// The other side: KEY=VALUE[,…] (pods of the same namespace).
    #[arg(long, value_name = "LABELS")]
    pub to_selector: Option<String>,
    /// How long the fault lasts (90s, 10m, 2h, 1d); the reaper removes it then.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub ttl: String,
    /// NetworkPolicy or Chaos Mesh.
    #[arg(long, value_enum, default_value = "network-policy")]
    pub mode: PartitionMode,
    /// Chaos Mesh action: partition, loss, delay, bandwidth.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Chaos Mesh direction: to, from, both.
    #[arg(long, value_name = "DIRECTION")]
    pub direction: Option<String>,
    /// loss: percent of packets lost.
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<String>,
    /// loss, delay: correlation with the previous packet, percent.
    #[arg(long, value_name = "PERCENT")]
    pub correlation: Option<String>,
    /// delay: e.g. 100ms.
    #[arg(long, value_name = "DURATION")]
    pub latency: Option<String>,
    /// delay: e.g. 10ms.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// bandwidth: e.g. 1mbps.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// bandwidth: bytes queued.
    #[arg(long, value_name = "BYTES")]
    pub limit: Option<String>,
    /// bandwidth: bucket size in bytes.
    #[arg(long, value_name = "BYTES")]
    pub buffer: Option<String>,
    /// bandwidth: peak rate, bytes per second.
    #[arg(long, value_name = "BYTES")]
    pub peakrate: Option<String>,
    /// bandwidth: peak bucket size in bytes.
    #[arg(long, value_name = "BYTES")]
    pub minburst: Option<String>,
    /// The cluster's pod address ranges (default: the nodes' spec.podCIDRs); repeatable.
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidrs: Vec<String>,
}

/// `faultline cluster shim …`.
#[derive(Debug, Subcommand)]
pub enum ShimCommand {
    /// Roll a shim into a workload's pods: hostPath library, LD_PRELOAD appended, FAULTLINE_* env, GPU-node
    /// affinity merged; what changed is saved so `disable` restores the spec exactly.
    Enable(ShimEnableArgs),
    /// Restore a shimmed workload exactly as it was.
    Disable(ShimTargetArgs),
    /// Arm a node: CUDA shims started there fail from their first call with an XID's codes (restarted pods fail
    /// again).
    Arm(ArmArgs),
    /// Disarm a node armed by `shim arm`.
    Disarm(DisarmArgs),
}

/// Which workload.
#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "workload")]
pub struct WorkloadArgs {
    /// A Deployment.
    #[arg(long, value_name = "NAME", group = "workload")]
    pub deployment: Option<String>,
    /// A StatefulSet.
    #[arg(long, value_name = "NAME", group = "workload")]
    pub statefulset: Option<String>,
    /// A DynamoGraphDeployment (with --service).
    #[arg(long, value_name = "NAME", group = "workload", requires = "service")]
    pub dgd: Option<String>,
}

/// The workload and how to follow its rollout.
#[derive(Debug, Args)]
pub struct ShimTargetArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The DynamoGraphDeployment's service (a key of spec.services).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Do not wait for the rollout.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the rollout.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub wait_timeout: u64,
}

/// The options of `faultline cluster shim enable`.
#[derive(Debug, Args)]
pub struct ShimEnableArgs {
    /// Which shim.
    #[arg(long, value_enum)]
    pub kind: super::super::KindArg,
    #[command(flatten)]
    pub target: ShimTargetArgs,
    /// Load the shim with faults off (steer it later, or arm the node).
    #[arg(long)]
    pub passthrough: bool,
    /// CUDA: fail as with this XID (its preset's codes).
    #[arg(long, value_name = "N")]
    pub xid: Option<u32>,
    /// Pin the pods to this node.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Only this container (default: every app container).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// How long the fault lasts; the reaper restores the workload then.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub ttl: String,
}

/// The options of `faultline cluster shim arm`.
#[derive(Debug, Args)]
pub struct ArmArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
    /// The XID (one with a CUDA shim preset).
    #[arg(long, value_name = "N", default_value_t = shm_proto::xid::DEFAULT_XID)]
    pub xid: u32,
    /// How long the node stays armed; the reaper disarms it then.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub ttl: String,
}

/// The options of `faultline cluster shim disarm`.
#[derive(Debug, Args)]
pub struct DisarmArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
}

/// Where the ledger commands look.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Every namespace (default: --namespace, or the context's).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
}

/// The options of `faultline cluster recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The fault id (`faultline cluster faults` lists them).
    #[arg(value_name = "FAULT_ID", required_unless_present = "all", conflicts_with = "all")]
    pub fault_id: Option<String>,
    /// Every fault.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// The options of `faultline cluster gpu-failure`.
#[derive(Debug, Args)]
pub struct GpuFailureArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
    /// The GPU's minor number on that node.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpu: u32,
    /// The XID (one with a CUDA shim preset: 79, 48, 94, 95, 74, 119, 120, 43).
    #[arg(long, value_name = "N", default_value_t = shm_proto::xid::DEFAULT_XID)]
    pub xid: u32,
    /// How long the node stays armed, and how the scenario watches it.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

/// What both node-failure scenarios take: how long the node stays armed, and how they watch it.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// How long the node stays armed; the reaper disarms it then.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub ttl: String,
    /// How long to wait for the cordon, and then for the evictions.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub watch_timeout: u64,
    /// How often to look.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, hide = true)]
    pub interval: f64,
}

impl ScenarioArgs {
    /// The TTL, the watch timeout and the interval, checked.
    fn parsed(&self) -> anyhow::Result<(Duration, Duration, Duration)> {
        let Some(interval) = positive_seconds(self.interval) else {
            return Err(faultline::Error::usage("--interval must be a positive number of seconds").into());
        };
        Ok((ttl(&self.ttl)?, Duration::from_secs(self.watch_timeout), interval))
    }
}

/// The options of `faultline cluster nic-failure`.
#[derive(Debug, Args)]
pub struct NicFailureArgs {
    /// The node.
    #[arg(long, value_name = "NODE")]
    pub node: String,
    /// The NIC: an RDMA device (mlx5_0, rdmap0s6, efa_0) or network interface, as in the node's
    /// /sys/class/infiniband or /sys/class/net.
    #[arg(long, value_name = "DEV")]
    pub device: String,
    /// The UCX status every endpoint fails with, by number or name (UCS_ERR_CONNECTION_RESET is -25).
    #[arg(long, value_name = "CODE", default_value = "UCS_ERR_ENDPOINT_TIMEOUT", allow_hyphen_values = true)]
    pub code: String,
    /// The fatal kernel-log event (default: unrecoverable for mlx5, efa-queue-closed for an EFA device).
    #[arg(long, value_name = "EVENT", value_parser = super::super::signals::nic_event)]
    pub event: Option<faultline::node::NicEvent>,
    /// The NIC's PCI address, when the node's sysfs does not know the device.
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// How long the node stays armed, and how the scenario watches it.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

/// The namespace of workloads and partitions: `--namespace`, else the kubeconfig context's (as kubectl).
pub struct Namespace {
    /// `--namespace`.
    pub given: Option<String>,
    /// The context's namespace.
    pub context: String,
}

impl Namespace {
    fn get(&self) -> String {
        self.given.clone().unwrap_or_else(|| self.context.clone())
    }

    /// Where a ledger command looks: `None` with `-A`.
    pub fn scope(&self, scope: &ScopeArgs) -> Option<String> {
        (!scope.all_namespaces).then(|| self.get())
    }
}

/// `faultline cluster partition create`: the flags as a [`PartitionDraft`].
pub fn partition(namespace: &Namespace, command: PartitionCommand) -> anyhow::Result<ClusterRequest> {
    let PartitionCommand::Create(args) = command;
    let chaos = args.mode == PartitionMode::ChaosMesh;
    if chaos {
        if args.block_dns || args.block_nats || args.ingress || args.egress || args.preset.is_some() {
            return Err(faultline::Error::usage(
                "--preset, --ingress, --egress, --block-dns and --block-nats are NetworkPolicy options; with \
                 --mode chaos-mesh use --action, --direction and --to-selector",
            )
            .into());
        }
        if args.action.is_none() {
            return Err(faultline::Error::usage(format!(
                "--mode chaos-mesh needs --action ({})",
                ChaosAction::NAMES.join(", ")
            ))
            .into());
        }
    } else if let Some(flag) = chaos_only_flag(&args) {
        return Err(faultline::Error::usage(format!("{flag} needs --mode chaos-mesh")).into());
    }
    let draft = PartitionDraft {
        chaos,
        namespace: namespace.get(),
        selector: args.selector,
        to_selector: args.to_selector.unwrap_or_default(),
        ttl: args.ttl,
        preset: args.preset.as_deref().map(Preset::parse).transpose().map_err(cluster)?.unwrap_or_default(),
        ingress: args.ingress,
        egress: args.egress,
        block_nats: args.block_nats,
        block_dns: args.block_dns,
        pod_cidrs: args.pod_cidrs,
        action: args.action.unwrap_or_default(),
        direction: args
            .direction
            .as_deref()
            .map(ChaosDirection::parse)
            .transpose()
            .map_err(cluster)?
            .unwrap_or_default(),
        params: ChaosParams {
            loss: args.loss,
            correlation: args.correlation,
            latency: args.latency,
            jitter: args.jitter,
            rate: args.rate,
            limit: args.limit,
            buffer: args.buffer,
            peakrate: args.peakrate,
            minburst: args.minburst,
        },
    };
    let request = draft.parse(Names::Flags).map_err(cluster)?;
    Ok(ClusterRequest::CreatePartition(Box::new(request)))
}

fn chaos_only_flag(args: &PartitionArgs) -> Option<&'static str> {
    [
        ("--action", args.action.is_some()),
        ("--direction", args.direction.is_some()),
        ("--loss", args.loss.is_some()),
        ("--correlation", args.correlation.is_some()),
        ("--latency", args.latency.is_some()),
        ("--jitter", args.jitter.is_some()),
        ("--rate", args.rate.is_some()),
        ("--limit", args.limit.is_some()),
        ("--buffer", args.buffer.is_some()),
        ("--peakrate", args.peakrate.is_some()),
        ("--minburst", args.minburst.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, given)| given.then_some(flag))
}

fn workload(args: &ShimTargetArgs) -> anyhow::Result<Workload> {
    let w = &args.workload;
    let workload = match (&w.deployment, &w.statefulset, &w.dgd) {
        (Some(name), _, _) => Workload::Deployment(name.clone()),
        (_, Some(name), _) => Workload::StatefulSet(name.clone()),
        (_, _, Some(name)) => {
            let service = args.service.clone().unwrap_or_default();
            Workload::Dgd { name: name.clone(), service }
        }
        _ => return Err(faultline::Error::usage("give --deployment, --statefulset or --dgd").into()),
    };
    if args.service.is_some() && w.dgd.is_none() {
        return Err(faultline::Error::usage("--service goes with --dgd").into());
    }
    check_workload(&workload).map_err(cluster)?;
    Ok(workload)
}

fn follow(args: &ShimTargetArgs) -> Option<Follow> {
    (!args.no_wait)
        .then(|| Follow { timeout: Duration::from_secs(args.wait_timeout), interval: Duration::from_secs(2) })
}

/// `faultline cluster shim …`.
pub fn shim(namespace: &Namespace, command: ShimCommand) -> anyhow::Result<ClusterRequest> {
    Ok(match command {
        ShimCommand::Enable(args) => {
            let draft = ShimDraft {
                namespace: namespace.get(),
                workload: workload(&args.target)?,
                spec: ShimSpec {
                    kind: args.kind.into(),
                    passthrough: args.passthrough,
                    xid: args.xid,
                    node: args.node,
                    container: args.container,
                },
                ttl: args.ttl,
                follow: follow(&args.target),
            };
            ClusterRequest::EnableShim(Box::new(draft.parse(Names::Flags).map_err(cluster)?))
        }
        ShimCommand::Disable(args) => ClusterRequest::DisableShim(Box::new(ShimTarget {
            namespace: namespace.get(),
            workload: workload(&args)?,
            follow: follow(&args),
        })),
        ShimCommand::Arm(args) => {
            ClusterRequest::ArmNode(ArmRequest { node: args.node, xid: args.xid, ttl: ttl(&args.ttl)? })
        }
        ShimCommand::Disarm(args) => ClusterRequest::DisarmNode { node: args.node },
    })
}

fn cluster(e: ClusterError) -> anyhow::Error {
    e.into()
}

fn ttl(text: &str) -> anyhow::Result<Duration> {
    parse_ttl(text, Names::Flags.ttl()).map_err(cluster)
}

/// The ledger as a table.
pub fn render_listing(listing: &Listing, now: Timestamp) -> String {
    let mut out = String::new();
    if listing.faults.is_empty() {
        out.push_str("no faults\n");
    } else {
        let rows: Vec<[String; 5]> = listing
            .faults
            .iter()
            .map(|f| {
                let place = match &f.namespace {
                    Some(ns) => format!("{}/{}/{}", f.object_kind, ns, f.name),
                    None => format!("{}/{}", f.object_kind, f.name),
                };
                [
                    f.fault_id.clone(),
                    f.kind.map_or("?".to_string(), |k| k.to_string()),
                    ledger::remaining(f.expires_at.as_deref(), now),
                    place,
                    f.summary.clone(),
                ]
            })
            .collect();
        out.push_str(&super::table(&["FAULT", "KIND", "ENDS IN", "OBJECT", "WHAT"], &rows));
    }
    for note in &listing.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// `faultline cluster gpu-failure`.
pub fn gpu_failure(namespace: &Namespace, args: &GpuFailureArgs) -> anyhow::Result<ClusterRequest> {
    let (ttl, watch_timeout, interval) = args.scenario.parsed()?;
    Ok(ClusterRequest::GpuFailure(Box::new(GpuFailureRequest {
        node: args.node.clone(),
        gpu: args.gpu,
        xid: args.xid,
        namespace: namespace.get(),
        ttl: Some(ttl),
        watch_timeout,
        interval,
    })))
}

/// `faultline cluster nic-failure`.
pub fn nic_failure(namespace: &Namespace, args: &NicFailureArgs) -> anyhow::Result<ClusterRequest> {
    let (ttl, watch_timeout, interval) = args.scenario.parsed()?;
    let code = faultline::node::arm::parse_ucx_code(&args.code)?;
    let request = NicFailureRequest {
        event: args.event,
        pci: args.pci.clone(),
        code,
        ttl: Some(ttl),
        watch_timeout,
        interval,
        ..NicFailureRequest::new(&args.node, &args.device, &namespace.get())
    };
    request.check()?;
    Ok(ClusterRequest::NicFailure(Box::new(request)))
}

/// `faultline cluster recover`.
pub fn recover(namespace: &Namespace, args: &RecoverArgs) -> ClusterRequest {
    let which = match &args.fault_id {
        Some(id) => Which::Id(id.clone()),
        None => Which::All,
    };
    // A fault id is unique cluster-wide: look everywhere unless told where.
    let namespace =
        if matches!(which, Which::Id(_)) && namespace.given.is_none() { None } else { namespace.scope(&args.scope) };
    ClusterRequest::Recover { namespace, which }
}
