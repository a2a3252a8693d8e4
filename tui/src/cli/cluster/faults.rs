//! `faultline cluster partition|shim|faults|recover|reap`: the fault ledger's commands.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use faultline::cluster::exec::PodExec;
use faultline::cluster::faults::{self, Listing, Recovered, Which};
use faultline::cluster::gpu_failure::{self, GpuFailureRequest, Step};
use faultline::cluster::ledger::{self, FaultKind, Stamp};
use faultline::cluster::partition::{self, ChaosAction, ChaosDirection, ChaosParams, ChaosSpec, PartitionSpec, Preset};
use faultline::cluster::shim::{self, Follow, ShimChange};
use faultline::cluster::shim_rollout::{ShimSpec, Workload};
use faultline::cluster::{arm, network, ClusterError, KubeApi, Session};
use faultline::error::{EXIT_FAILED, EXIT_OK};
use k8s_openapi::jiff::Timestamp;

use super::print;

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
    /// What they lose (NetworkPolicy mode).
    #[arg(long, value_name = "PRESET", default_value = "worker-worker")]
    pub preset: String,
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

/// Runs a ledger command on `session` (`namespace`: `--namespace`).
pub struct Context<'a> {
    /// The connection.
    pub session: &'a Session,
    /// `--namespace`.
    pub namespace: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--read-only`.
    pub read_only: bool,
}

impl Context<'_> {
    fn api(&self) -> &KubeApi {
        self.session.api()
    }

    /// The namespace of workloads and partitions: `--namespace`, else the context's.
    fn namespace(&self) -> String {
        self.namespace.clone().unwrap_or_else(|| self.api().context_namespace().to_string())
    }

    fn scope(&self, scope: &ScopeArgs) -> Option<String> {
        (!scope.all_namespaces).then(|| self.namespace())
    }

    fn refuse_if_read_only(&self, what: &'static str) -> Result<(), faultline::Error> {
        if self.read_only {
            Err(faultline::Error::ReadOnly(what))
        } else {
            Ok(())
        }
    }
}

fn cluster(e: ClusterError) -> anyhow::Error {
    faultline::Error::from(e).into()
}

fn ttl(text: &str) -> anyhow::Result<Duration> {
    ledger::parse_ttl(text).map_err(cluster)
}

fn json_or(json: bool, value: &impl serde::Serialize, text: String) -> anyhow::Result<()> {
    if json {
        print(&format!("{}\n", serde_json::to_string_pretty(value)?))?;
    } else {
        print(&text)?;
    }
    Ok(())
}

fn say(line: &str) {
    eprintln!("faultline: {line}");
}

/// `faultline cluster partition create`.
pub fn partition(context: &Context<'_>, command: PartitionCommand) -> anyhow::Result<u8> {
    let PartitionCommand::Create(args) = command;
    context.refuse_if_read_only("create a partition")?;
    let namespace = context.namespace();
    let selector = partition::parse_selector(&args.selector).map_err(cluster)?;
    let to_selector = args.to_selector.as_deref().map(partition::parse_selector).transpose().map_err(cluster)?;
    let ttl = ttl(&args.ttl)?;
    let stamp = Stamp::new(FaultKind::Partition, Some(ttl));
    let api = context.api();
    let created = match args.mode {
        PartitionMode::NetworkPolicy => {
            if let Some(flag) = chaos_only_flag(&args) {
                return Err(faultline::Error::usage(format!("{flag} needs --mode chaos-mesh")).into());
            }
            let spec = PartitionSpec {
                namespace,
                selector,
                preset: Preset::parse(&args.preset).map_err(cluster)?,
                ingress: args.ingress,
                egress: args.egress,
                block_nats: args.block_nats,
                block_dns: args.block_dns,
                to_selector,
                pod_cidrs: args.pod_cidrs,
            };
            context.session.block_on(network::create_partition(api, &spec, &stamp)).map_err(cluster)?
        }
        PartitionMode::ChaosMesh => {
            if args.block_dns || args.block_nats || args.ingress || args.egress || args.preset != "worker-worker" {
                return Err(faultline::Error::usage(
                    "--preset, --ingress, --egress, --block-dns and --block-nats are NetworkPolicy options; with \
                     --mode chaos-mesh use --action, --direction and --to-selector",
                )
                .into());
            }
            let Some(action) = args.action.as_deref() else {
                return Err(faultline::Error::usage(format!(
                    "--mode chaos-mesh needs --action ({})",
                    ChaosAction::NAMES.join(", ")
                ))
                .into());
            };
            let params = ChaosParams {
                loss: args.loss,
                correlation: args.correlation,
                latency: args.latency,
                jitter: args.jitter,
                rate: args.rate,
                limit: args.limit,
                buffer: args.buffer,
                peakrate: args.peakrate,
                minburst: args.minburst,
            };
            let direction = match args.direction.as_deref() {
                Some(text) => ChaosDirection::parse(text).map_err(cluster)?,
                None => ChaosDirection::To,
            };
            let spec = ChaosSpec {
                namespace,
                selector,
                action: ChaosAction::from_params(action, &params).map_err(cluster)?,
                direction,
                target: to_selector,
                duration: Some(ttl),
            };
            context.session.block_on(network::create_chaos(api, &spec, &stamp)).map_err(cluster)?
        }
    };
    let text = format!(
        "created {} {}/{} (fault {}, until {})\n",
        created.kind,
        created.namespace,
        created.name,
        created.fault_id,
        created.expires_at.as_deref().unwrap_or("recovered")
    );
    json_or(context.json, &created, text)?;
    Ok(EXIT_OK)
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
    Ok(workload)
}

fn follow(args: &ShimTargetArgs) -> Option<Follow> {
    (!args.no_wait)
        .then(|| Follow { timeout: Duration::from_secs(args.wait_timeout), interval: Duration::from_secs(2) })
}

/// `faultline cluster shim …`.
pub fn shim(context: &Context<'_>, command: ShimCommand, exec: &impl PodExec) -> anyhow::Result<u8> {
    let api = context.api();
    match command {
        ShimCommand::Enable(args) => {
            context.refuse_if_read_only("roll a shim out")?;
            let workload = workload(&args.target)?;
            let spec = ShimSpec {
                kind: args.kind.into(),
                passthrough: args.passthrough,
                xid: args.xid,
                node: args.node,
                container: args.container,
            };
            let stamp = Stamp::new(FaultKind::Shim, Some(ttl(&args.ttl)?));
            let namespace = context.namespace();
            let change = context
                .session
                .block_on(shim::enable(api, &namespace, &workload, &spec, &stamp, follow(&args.target), &mut say))
                .map_err(cluster)?;
            finish_shim(context, &change)
        }
        ShimCommand::Disable(args) => {
            context.refuse_if_read_only("restore a workload")?;
            let workload = workload(&args)?;
            let namespace = context.namespace();
            let change = context
                .session
                .block_on(shim::disable(api, &namespace, &workload, follow(&args), &mut say))
                .map_err(cluster)?;
            finish_shim(context, &change)
        }
        ShimCommand::Arm(args) => {
            context.refuse_if_read_only("arm a node")?;
            let stamp = Stamp::new(FaultKind::ArmedNode, Some(ttl(&args.ttl)?));
            let armed =
                context.session.block_on(arm::arm_node(api, exec, &args.node, args.xid, &stamp)).map_err(cluster)?;
            let text = format!(
                "node {} armed: CUDA shims started there fail as with XID {} (fault {}, until {})\n",
                armed.node,
                armed.xid,
                armed.fault_id,
                stamp.expires_at.map_or("recovered".to_string(), |t| t.to_string())
            );
            json_or(context.json, &armed, text)?;
            Ok(EXIT_OK)
        }
        ShimCommand::Disarm(args) => {
            context.refuse_if_read_only("disarm a node")?;
            let Some(fault_id) = context.session.block_on(arm::armed_by(api, &args.node)).map_err(cluster)? else {
                let text = format!("node {} is not armed by faultline\n", args.node);
                json_or(context.json, &serde_json::json!({"node": args.node, "armed": false}), text)?;
                return Ok(EXIT_OK);
            };
            recover(
                context,
                &RecoverArgs { fault_id: Some(fault_id), all: false, scope: ScopeArgs { all_namespaces: true } },
                exec,
            )
        }
    }
}

fn finish_shim(context: &Context<'_>, change: &ShimChange) -> anyhow::Result<u8> {
    let mut text = match (&change.fault_id, change.changed) {
        (Some(id), true) => format!("{} in namespace {}: fault {id}\n", change.workload, change.namespace),
        _ => format!("{} in namespace {}: unchanged\n", change.workload, change.namespace),
    };
    let timed_out = change.rollout.as_ref().is_some_and(|r| !r.done);
    if let Some(rollout) = &change.rollout {
        text.push_str(&format!("rollout: {}{}\n", rollout.text, if rollout.done { ", done" } else { ", timed out" }));
    }
    json_or(context.json, change, text)?;
    Ok(if timed_out { EXIT_FAILED } else { EXIT_OK })
}

/// `faultline cluster faults`.
pub fn list(context: &Context<'_>, scope: &ScopeArgs) -> anyhow::Result<u8> {
    let namespace = context.scope(scope);
    let listing = context
        .session
        .block_on(faults::list(context.api(), namespace.as_deref(), Timestamp::now()))
        .map_err(cluster)?;
    json_or(context.json, &listing, render_listing(&listing, Timestamp::now()))?;
    Ok(EXIT_OK)
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
pub fn gpu_failure(context: &Context<'_>, args: &GpuFailureArgs, exec: &impl PodExec) -> anyhow::Result<u8> {
    context.refuse_if_read_only("simulate a GPU failure")?;
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        return Err(faultline::Error::usage("--interval must be a positive number of seconds").into());
    }
    let request = GpuFailureRequest {
        node: args.node.clone(),
        gpu: args.gpu,
        xid: args.xid,
        namespace: context.namespace(),
        ttl: Some(ttl(&args.ttl)?),
        watch_timeout: Duration::from_secs(args.watch_timeout),
        interval: Duration::from_secs_f64(args.interval),
    };
    let json = context.json;
    let mut timeline = |step: &Step| {
        if !json {
            say(&format!("[{:>4}s] {}", step.at_s, step.text));
        }
    };
    let outcome =
        context.session.block_on(gpu_failure::run(context.api(), exec, &request, &mut timeline)).map_err(cluster)?;
    let text = format!(
        "GPU failure on node {} (fault {}): cordoned {}, evicted {}; `faultline cluster recover {}` reverses it\n",
        outcome.node,
        outcome.fault_id,
        if outcome.cordoned { "yes" } else { "no" },
        if outcome.evicted { "yes" } else { "no" },
        outcome.fault_id
    );
    json_or(json, &outcome, text)?;
    Ok(if outcome.cordoned && outcome.evicted { EXIT_OK } else { EXIT_FAILED })
}

/// `faultline cluster recover`.
pub fn recover(context: &Context<'_>, args: &RecoverArgs, exec: &impl PodExec) -> anyhow::Result<u8> {
    context.refuse_if_read_only("recover faults")?;
    let which = match &args.fault_id {
        Some(id) => Which::Id(id.clone()),
        None => Which::All,
    };
    // A fault id is unique cluster-wide: look everywhere unless told where.
    let namespace =
        if matches!(which, Which::Id(_)) && context.namespace.is_none() { None } else { context.scope(&args.scope) };
    undo(context, namespace.as_deref(), &which, exec)
}

/// `faultline cluster reap`.
pub fn reap(context: &Context<'_>, scope: &ScopeArgs, exec: &impl PodExec) -> anyhow::Result<u8> {
    context.refuse_if_read_only("reap expired faults")?;
    let namespace = context.scope(scope);
    undo(context, namespace.as_deref(), &Which::Expired, exec)
}

fn undo(context: &Context<'_>, namespace: Option<&str>, which: &Which, exec: &impl PodExec) -> anyhow::Result<u8> {
    let mut report = |r: &Recovered| {
        if !context.json {
            say(&format!("{} {} {}: {}", r.fault_id, r.object_kind, place(r), r.outcome));
        }
    };
    let done = context
        .session
        .block_on(faults::recover(context.api(), exec, namespace, which, Timestamp::now(), &mut report))
        .map_err(cluster)?;
    let text = match (done.is_empty(), which) {
        (true, Which::Id(id)) => format!("nothing left of fault {id} (already recovered?)\n"),
        (true, _) => "nothing to recover\n".to_string(),
        (false, _) => format!("{} object(s) handled\n", done.len()),
    };
    json_or(context.json, &serde_json::json!({ "recovered": done }), text)?;
    Ok(EXIT_OK)
}

fn place(r: &Recovered) -> String {
    match &r.namespace {
        Some(ns) => format!("{ns}/{}", r.name),
        None => r.name.clone(),
    }
}
