//! The kernel-log signals other than the XID, on the command line: the options each one's line takes (the same for
//! `faultline node <signal>` and `faultline cluster <signal> inject`), and `faultline node fallen-off|sxid|nic`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use faultline::error::EXIT_OK;
use faultline::node::fallen::DEFAULT_SYSFS;
use faultline::node::sxid::DEFAULT_NVSWITCH_DIR;
use faultline::node::xid::parse_register;
use faultline::node::{self, gpus, kmsg, FallenOffInjection, NicEvent, NicInjection, SxidInjection};

use super::node::Globals;

/// Parses `--intrinfo` / `--error-status`: `0x…` or decimal, 32 bits.
pub fn register(text: &str) -> Result<u32, String> {
    parse_register("the value", text).map_err(|e| e.to_string())
}

/// Parses `--event`.
pub fn nic_event(text: &str) -> Result<NicEvent, String> {
    NicEvent::parse(text).map_err(|e| e.to_string())
}

/// The options of the "fallen off the bus" message.
#[derive(Debug, Args)]
pub struct FallenOffLineArgs {
    /// The GPU's minor number (/dev/nvidiaN); its PCI address comes from /proc/driver/nvidia/gpus/*/information.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpu: u32,
    /// The GPU's PCI address, used when the node's driver cannot be asked.
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// The GPU's PCI vendor:device ID (e.g. 10de:2330), used when sysfs cannot be asked.
    #[arg(long, value_name = "VENDOR:DEVICE")]
    pub pci_id: Option<String>,
    /// Resolve and format the message, but write nothing (no Event either, from the cluster).
    #[arg(long)]
    pub dry_run: bool,
}

/// The options of an NVSwitch SXid line.
#[derive(Debug, Args)]
pub struct SxidLineArgs {
    /// The NVSwitch's device instance (nvidia-nvswitchN); its PCI address comes from
    /// /proc/driver/nvidia-nvswitch/devices (the Nth, in PCI order).
    #[arg(long = "switch", value_name = "N", default_value_t = 0)]
    pub switch: u32,
    /// The SXid (e.g. 24007, 12028, 20009, 28006).
    #[arg(long, value_name = "CODE")]
    pub sxid: u32,
    /// The NVLink port.
    #[arg(long, value_name = "L")]
    pub link: u32,
    /// `Fatal` instead of `Non-fatal`.
    #[arg(long)]
    pub fatal: bool,
    /// The text after the link (default: the driver's for the SXids faultline knows).
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// The switch's PCI address, used when the driver cannot be asked.
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// Resolve and format the line, but write nothing (no Event either, from the cluster).
    #[arg(long)]
    pub dry_run: bool,
}

/// The options of a NIC driver error.
#[derive(Debug, Args)]
pub struct NicLineArgs {
    /// The RDMA device (mlx5_0, rdmap0s6, efa_0) or network interface (eth0), as in /sys/class/infiniband or
    /// /sys/class/net.
    #[arg(long, value_name = "DEV")]
    pub device: String,
    /// What happens: cmd-timeout, health-lost, unrecoverable, netdev-watchdog, tx-timeout, rx-timeout, high-temp,
    /// cable-unplugged (mlx5_core); efa-admin-timeout, efa-queue-closed, efa-cmd-failed, efa-reset-failed,
    /// efa-not-ready (EFA).
    #[arg(long, value_name = "EVENT", value_parser = nic_event)]
    pub event: NicEvent,
    /// The device's PCI address, used when sysfs does not know the device.
    #[arg(long, value_name = "ADDRESS")]
    pub pci: Option<String>,
    /// The network interface the line names (netdev-watchdog, tx-timeout, rx-timeout), when sysfs does not know it.
    #[arg(long, value_name = "IFACE")]
    pub netdev: Option<String>,
    /// Resolve and format the line, but write nothing (no Event either, from the cluster).
    #[arg(long)]
    pub dry_run: bool,
}

/// The options every `faultline node <signal>` has besides its line's: the fault id and the paths it reads.
#[derive(Debug, Args)]
pub struct NodePaths {
    /// The fault id to put in the line (faultline cluster passes its own).
    #[arg(long, value_name = "ID", hide = true)]
    pub fault_id: Option<String>,
    /// The NVIDIA driver's /proc directory (`FAULTLINE_NVIDIA_PROC` in the agent's environment: a test's fixture).
    #[arg(
        long,
        value_name = "DIR",
        env = "FAULTLINE_NVIDIA_PROC",
        default_value = gpus::DEFAULT_DRIVER_DIR,
        hide = true
    )]
    pub nvidia_proc: PathBuf,
    /// The NVSwitch driver's /proc directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_NVSWITCH_DIR, hide = true)]
    pub nvswitch_proc: PathBuf,
    /// The sysfs root (bus/pci/devices, class/infiniband, class/net).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SYSFS, hide = true)]
    pub sysfs: PathBuf,
    /// The kernel log device.
    #[arg(long, value_name = "DEVICE", default_value = kmsg::DEV_KMSG, hide = true)]
    pub kmsg: PathBuf,
}

/// `faultline node fallen-off`.
#[derive(Debug, Args)]
pub struct FallenOffArgs {
    #[command(flatten)]
    pub line: FallenOffLineArgs,
    #[command(flatten)]
    pub paths: NodePaths,
}

/// `faultline node sxid`.
#[derive(Debug, Args)]
pub struct SxidArgs {
    #[command(flatten)]
    pub line: SxidLineArgs,
    #[command(flatten)]
    pub paths: NodePaths,
}

/// `faultline node nic`.
#[derive(Debug, Args)]
pub struct NicArgs {
    #[command(flatten)]
    pub line: NicLineArgs,
    #[command(flatten)]
    pub paths: NodePaths,
}

fn refuse_read_only(globals: &Globals, dry_run: bool) -> anyhow::Result<()> {
    if globals.read_only && !dry_run {
        return Err(faultline::Error::ReadOnly("write to the kernel log").into());
    }
    Ok(())
}

fn print(report: &node::SignalReport) -> anyhow::Result<u8> {
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(report)?)?;
    Ok(EXIT_OK)
}

/// Runs `faultline node fallen-off`.
pub fn fallen_off(args: FallenOffArgs, globals: &Globals) -> anyhow::Result<u8> {
    refuse_read_only(globals, args.line.dry_run)?;
    let request = FallenOffInjection {
        pci: args.line.pci,
        pci_id: args.line.pci_id,
        dry_run: args.line.dry_run,
        fault_id: args.paths.fault_id,
        driver_dir: args.paths.nvidia_proc,
        sysfs: args.paths.sysfs,
        kmsg: args.paths.kmsg,
        ..FallenOffInjection::new(args.line.gpu)
    };
    print(&node::inject_fallen_off(&request)?)
}

/// Runs `faultline node sxid`.
pub fn sxid(args: SxidArgs, globals: &Globals) -> anyhow::Result<u8> {
    refuse_read_only(globals, args.line.dry_run)?;
    let request = SxidInjection {
        fatal: args.line.fatal,
        message: args.line.message,
        pci: args.line.pci,
        dry_run: args.line.dry_run,
        fault_id: args.paths.fault_id,
        nvswitch_dir: args.paths.nvswitch_proc,
        kmsg: args.paths.kmsg,
        ..SxidInjection::new(args.line.switch, args.line.sxid, args.line.link)
    };
    print(&node::inject_sxid(&request)?)
}

/// Runs `faultline node nic`.
pub fn nic(args: NicArgs, globals: &Globals) -> anyhow::Result<u8> {
    refuse_read_only(globals, args.line.dry_run)?;
    let request = NicInjection {
        pci: args.line.pci,
        netdev: args.line.netdev,
        dry_run: args.line.dry_run,
        fault_id: args.paths.fault_id,
        sysfs: args.paths.sysfs,
        kmsg: args.paths.kmsg,
        ..NicInjection::new(&args.line.device, args.line.event)
    };
    print(&node::inject_nic(&request)?)
}
