//! `faultline node …`: what runs on a Kubernetes node as root (in the faultline-node agent pod).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use faultline::error::EXIT_OK;
use faultline::node::{self, arm, xid, NodeError, Nvl5Options, XidInjection};
use faultline::targets;
use shm_proto::Kind;

use super::signals::{self, register, FallenOffArgs, NicArgs, SxidArgs};
use super::{Cli, KindArg};

/// `faultline node …`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Write an NVIDIA XID line into the kernel log (/dev/kmsg), as the driver would, and confirm it landed.
    #[command(after_help = "The line: `kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=…, name=…, GPU has fallen off \
                            the bus. faultline-fault=<id>` (see deploy/README.md for why it starts with `kernel:`). \
                            --pid and --name set the pid= and name= fields. NVLink5 XIDs 144–150 get the driver's \
                            subcode line (`149, NETIR_LINK_EVT Fatal XC0 i0 Link 09 (0x… 0x… …)`), from the catalog \
                            or --subcode, --link, --intrinfo, --error-status. When the GPU's UUID is known (the \
                            driver, or --uuid), the driver's `NVRM: GPU at PCI:…: GPU-<uuid>` line is written \
                            first. Prints a JSON report.")]
    Xid(XidArgs),
    /// Write the NVIDIA driver's "GPU has fallen off the bus" message (no XID) into the kernel log, and confirm it.
    #[command(after_help = "One record, three lines: `NVRM: The NVIDIA GPU 0000:3b:00.0` / `NVRM: (PCI ID: \
                            10de:2330) installed in this system has` / `NVRM: fallen off the bus and is not \
                            responding to commands.` The PCI ID comes from sysfs or --pci-id. Prints a JSON report.")]
    FallenOff(FallenOffArgs),
    /// Write an NVSwitch SXid line into the kernel log, and confirm it landed.
    #[command(after_help = "The line: `nvidia-nvswitch<N>: SXid (PCI:<address>): <code>, Fatal|Non-fatal, Link \
                            <L> <text>`. Prints a JSON report.")]
    Sxid(SxidArgs),
    /// Write a NIC driver error (mlx5_core or EFA) into the kernel log, and confirm it landed.
    #[command(after_help = "The device's PCI address, driver and network interface come from /sys/class/infiniband \
                            and /sys/class/net (or --pci, --netdev). The fatal events (cmd-timeout, health-lost, \
                            unrecoverable, efa-admin-timeout, efa-queue-closed, efa-reset-failed, efa-not-ready) make \
                            NVSentinel recommend replacing the machine. Prints a JSON report.")]
    Nic(NicArgs),
    /// Arm this node: CUDA shims started here fail from their first call with an XID's codes (--xid), or with
    /// --kind ucx, UCX shims fail their endpoints with a code (node policy file).
    #[command(after_help = "Writes the node policy file (default /var/lib/faultline/cuda.policy; with --kind ucx \
                            /var/lib/faultline/ucx.policy: FAULTLINE_SITE=endpoint, probability 100 %, the code) \
                            that shims rolled out by `faultline cluster shim enable` read at start-up, so restarted \
                            pods fail again. Refused when another fault armed the node. Prints a JSON report.")]
    Arm(ArmArgs),
    /// Disarm this node: remove the node policy file of --kind (default cuda; only if --fault-id armed it, when
    /// given).
    Disarm(DisarmArgs),
    /// A long-lived session for the cluster side: JSON-line snapshots of every shimmed process on the node, and
    /// process commands read from standard input, each answered with its outcome.
    #[command(after_help = "Each standard-input line is {\"id\": …, \"args\": [\"--pid\", \"1234\", \"enable\"]}: \
                            the words of a process command (host pids). Ends when standard input closes.")]
    Watch(super::watch::WatchArgs),
    /// Any process command (ps, status, enable, probability, record, …): run across every container on the node;
    /// --pid takes host pids.
    #[command(external_subcommand)]
    Process(Vec<String>),
}

/// The XID line's options, the same for `faultline node xid` and `faultline cluster xid inject`.
#[derive(Debug, Args)]
pub struct XidLineArgs {
    /// The GPU's minor number (/dev/nvidiaN) on the node; its PCI address comes from
    /// /proc/driver/nvidia/gpus/*/information.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpu: u32,
    /// The GPU's PCI address, used when the node's driver cannot be asked (it must agree with the driver when it
    /// can).
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// The GPU's UUID (GPU-…), used when the node's driver cannot be asked: the driver's PCI → UUID line is
    /// written before the XID so that monitors name the GPU by UUID.
    #[arg(long, value_name = "GPU-UUID")]
    pub uuid: Option<String>,
    /// name= in the line: the process that hit the error (with --pid for pid=).
    #[arg(long, value_name = "PROCESS")]
    pub name: Option<String>,
    /// NVLink5 XIDs (144–150): the subcode word (e.g. NETIR_LINK_EVT; default: the catalog's).
    #[arg(long, value_name = "WORD")]
    pub subcode: Option<String>,
    /// NVLink5 XIDs (144–150): the link (default 0).
    #[arg(long, value_name = "N")]
    pub link: Option<u32>,
    /// NVLink5 XIDs (144–150): the IntrInfo register (0x… or decimal; default: the catalog's).
    #[arg(long, value_name = "VALUE", value_parser = register)]
    pub intrinfo: Option<u32>,
    /// NVLink5 XIDs (144–150): the Error Status register (0x… or decimal; default: the catalog's).
    #[arg(long, value_name = "VALUE", value_parser = register)]
    pub error_status: Option<u32>,
    /// Inject an XID outside the catalog.
    #[arg(long)]
    pub force: bool,
    /// Resolve and format the line, but write nothing (no Event either, from the cluster).
    #[arg(long)]
    pub dry_run: bool,
}

impl XidLineArgs {
    /// The NVLink5 options given.
    pub fn nvl5(&self) -> Nvl5Options {
        Nvl5Options {
            subcode: self.subcode.clone(),
            link: self.link,
            intrinfo: self.intrinfo,
            error_status: self.error_status,
        }
    }
}

/// The options of `faultline node xid`.
#[derive(Debug, Args)]
pub struct XidArgs {
    /// The XID number (see --list).
    #[arg(long, value_name = "N", required_unless_present = "list")]
    pub xid: Option<u32>,
    #[command(flatten)]
    pub line: XidLineArgs,
    /// List the XID catalog and exit.
    #[arg(long, conflicts_with_all = ["xid", "force", "dry_run"])]
    pub list: bool,
    #[command(flatten)]
    pub paths: super::signals::NodePaths,
}

/// The options of `faultline node arm`.
#[derive(Debug, Args)]
pub struct ArmArgs {
    /// The XID whose CUDA error codes processes will see (an XID with a CUDA shim preset; CUDA only, required).
    #[arg(long, value_name = "N")]
    pub xid: Option<u32>,
    /// With --kind ucx: the UCX status every endpoint fails with, by number or name (default
    /// UCS_ERR_ENDPOINT_TIMEOUT).
    #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
    pub code: Option<String>,
    /// The fault id to record in the file (faultline cluster passes its own).
    #[arg(long, value_name = "ID")]
    pub fault_id: Option<String>,
    /// When the fault ends (RFC 3339), noted in the file.
    #[arg(long, value_name = "TIME", hide = true)]
    pub expires_at: Option<String>,
    #[command(flatten)]
    pub files: PolicyFiles,
}

/// Where the node policy files are (hidden: a test's private files).
#[derive(Debug, Args)]
pub struct PolicyFiles {
    /// The CUDA policy file (the CUDA shims read the same `FAULTLINE_POLICY_FILE`).
    #[arg(long, value_name = "FILE", env = "FAULTLINE_POLICY_FILE", default_value = arm::POLICY_FILE, hide = true)]
    pub policy_file: PathBuf,
    /// The UCX policy file (the UCX shims read the same `FAULTLINE_UCX_POLICY_FILE`).
    #[arg(
        long,
        value_name = "FILE",
        env = "FAULTLINE_UCX_POLICY_FILE",
        default_value = arm::UCX_POLICY_FILE,
        hide = true
    )]
    pub ucx_policy_file: PathBuf,
}

impl PolicyFiles {
    /// The file of `kind`'s shims.
    fn of(&self, kind: Kind) -> PathBuf {
        match kind {
            Kind::Cuda => self.policy_file.clone(),
            Kind::Ucx => self.ucx_policy_file.clone(),
        }
    }
}

/// The options of `faultline node disarm`.
#[derive(Debug, Args)]
pub struct DisarmArgs {
    /// Only disarm if this fault armed the node.
    #[arg(long, value_name = "ID")]
    pub fault_id: Option<String>,
    #[command(flatten)]
    pub files: PolicyFiles,
}

/// The global options given before or after `node`.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// `--pid`.
    pub pids: Vec<u32>,
    /// `--kind`.
    pub kind: Option<KindArg>,
    /// `--json`.
    pub json: bool,
    /// `--read-only`.
    pub read_only: bool,
}

/// Runs `faultline node …`.
pub fn run(command: NodeCommand, globals: Globals) -> anyhow::Result<u8> {
    match command {
        NodeCommand::Xid(args) => xid_command(args, &globals),
        NodeCommand::FallenOff(args) => signals::fallen_off(args, &globals),
        NodeCommand::Sxid(args) => signals::sxid(args, &globals),
        NodeCommand::Nic(args) => signals::nic(args, &globals),
        NodeCommand::Arm(args) => arm_command(args, &globals),
        NodeCommand::Disarm(args) => disarm_command(args, &globals),
        NodeCommand::Watch(args) => {
            if !targets::running_as_root() {
                return Err(NodeError::NotRoot("watch".to_string()).into());
            }
            super::watch::run(args, globals)
        }
        NodeCommand::Process(args) => process_command(args, globals),
    }
}

fn arm_command(args: ArmArgs, globals: &Globals) -> anyhow::Result<u8> {
    if globals.read_only {
        return Err(faultline::Error::ReadOnly("arm the node").into());
    }
    let arming = match (arming_kind(globals), args.xid, args.code) {
        (Kind::Cuda, Some(xid), None) => arm::Arming::Cuda { xid },
        (Kind::Cuda, None, _) => {
            return Err(faultline::Error::usage("node arm: --xid is required (or --kind ucx [--code CODE])").into())
        }
        (Kind::Cuda, Some(_), Some(_)) => {
            return Err(faultline::Error::usage("node arm: --code applies to --kind ucx; CUDA takes --xid").into())
        }
        (Kind::Ucx, Some(_), _) => {
            return Err(faultline::Error::usage("node arm: --xid applies to the CUDA shim; UCX takes --code").into())
        }
        (Kind::Ucx, None, code) => {
            let code = code.as_deref().map(arm::parse_ucx_code).transpose()?.unwrap_or(arm::DEFAULT_UCX_CODE);
            arm::Arming::Ucx { code }
        }
    };
    let request = arm::ArmRequest {
        arming,
        fault_id: args.fault_id.unwrap_or_else(node::new_fault_id),
        expires_at: args.expires_at,
        path: args.files.of(arming.kind()),
    };
    let report = arm::arm(&request)?;
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(EXIT_OK)
}

fn disarm_command(args: DisarmArgs, globals: &Globals) -> anyhow::Result<u8> {
    if globals.read_only {
        return Err(faultline::Error::ReadOnly("disarm the node").into());
    }
    let kind = arming_kind(globals);
    let report = arm::disarm(kind, &args.files.of(kind), args.fault_id.as_deref())?;
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(EXIT_OK)
}

/// Whose policy file `arm` / `disarm` write: `--kind` (default cuda).
fn arming_kind(globals: &Globals) -> Kind {
    globals.kind.map_or(Kind::Cuda, Into::into)
}

fn xid_command(args: XidArgs, globals: &Globals) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    if args.list {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&serde_json::json!({ "xids": xid::catalog() }))?)?;
        return Ok(EXIT_OK);
    }
    if globals.read_only && !args.line.dry_run {
        return Err(faultline::Error::ReadOnly("write to the kernel log").into());
    }
    let pid = match globals.pids.as_slice() {
        [] => None,
        [pid] => Some(*pid),
        _ => {
            return Err(faultline::Error::usage("node xid: give --pid at most once (the pid= field of the line)").into())
        }
    };
    let nvl5 = args.line.nvl5();
    let request = XidInjection {
        pci: args.line.pci,
        uuid: args.line.uuid,
        nvl5,
        pid,
        process_name: args.line.name,
        force: args.line.force,
        dry_run: args.line.dry_run,
        fault_id: args.paths.fault_id,
        driver_dir: args.paths.nvidia_proc,
        kmsg: args.paths.kmsg,
        ..XidInjection::new(args.xid.unwrap_or_default(), args.line.gpu)
    };
    let report = node::inject_xid(&request)?;
    writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(EXIT_OK)
}

/// Subcommands that are not process commands (they do not act on shimmed processes).
pub(super) const NOT_PROCESS_COMMANDS: [&str; 6] =
    ["node", "cluster", "completions", "demo", "shim-path", "experiment"];

/// `faultline node <process command> …`: the ordinary command, re-parsed, with container discovery forced on.
fn process_command(args: Vec<String>, globals: Globals) -> anyhow::Result<u8> {
    let name = args.first().cloned().unwrap_or_default();
    let mut argv = vec!["faultline".to_string()];
    argv.extend(globals.pids.iter().flat_map(|pid| ["--pid".to_string(), pid.to_string()]));
    if let Some(kind) = globals.kind {
        argv.extend(["--kind".to_string(), format!("{kind:?}").to_lowercase()]);
    }
    argv.extend(globals.json.then(|| "--json".to_string()));
    argv.extend(globals.read_only.then(|| "--read-only".to_string()));
    argv.extend(args);
    if NOT_PROCESS_COMMANDS.contains(&name.as_str()) {
        return Err(faultline::Error::usage(format!(
            "`faultline node {name}`: only process commands (ps, status, enable, …), `xid`, `fallen-off`, `sxid`, \
             `nic`, `arm` and `disarm` run under `node`"
        ))
        .into());
    }
    let inner = Cli::try_parse_from(&argv).unwrap_or_else(|e| e.exit());
    if !targets::running_as_root() {
        return Err(NodeError::NotRoot(name).into());
    }
    targets::force_container_discovery();
    // The program's root (`main.rs`, the crate root of `faultline`, a module of `ucx-fault-client`).
    super::super::run(inner)
}
