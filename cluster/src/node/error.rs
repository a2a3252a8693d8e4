//! [`NodeError`]: why a `faultline node …` command was refused (exit 2: nothing was written) or failed (exit 1).

use std::path::PathBuf;

use faultline_core::error::{EXIT_FAILED, EXIT_USAGE};

/// Why a node command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An XID outside the catalog without `--force`.
    #[error("{}", crate::action::draft::unknown_xid(*.0, crate::action::draft::Names::Flags))]
    UnknownXid(u32),
    /// A `--pci` value that is not a PCI address.
    #[error("`{0}` is not a PCI address (expected e.g. 0000:3b:00.0)")]
    BadPci(String),
    /// A `--name` or `--fault-id` that would break the line's format.
    #[error(
        "{what} `{value}` cannot go into a kernel-log line: use printable ASCII without commas, at most 64 characters"
    )]
    BadField {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// No NVIDIA driver directory (and no `--pci` to fall back on).
    #[error(
        "cannot list GPUs in {}: {} (is the NVIDIA driver loaded, and /proc/driver/nvidia mounted into the \
         pod?); give the GPU's PCI address with --pci",
        .dir.display(), .cause
    )]
    NoDriver {
        /// The directory.
        dir: PathBuf,
        /// Why it could not be read.
        cause: std::io::Error,
    },
    /// The driver knows no GPU with that minor number.
    #[error("no GPU {gpu} in {} (GPUs there: {known:?}); give its PCI address with --pci", .dir.display())]
    NoSuchGpu {
        /// The minor asked for.
        gpu: u32,
        /// The minors present.
        known: Vec<u32>,
        /// The directory.
        dir: PathBuf,
    },
    /// An `information` file that does not parse.
    #[error("{}: {what}", .path.display())]
    BadInformation {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// `--pci` disagrees with what the driver says about `--gpu`.
    #[error("--pci {given} is not GPU {gpu}: the driver says GPU {gpu} is at {actual}; drop --pci or fix --gpu")]
    PciMismatch {
        /// The minor.
        gpu: u32,
        /// `--pci`.
        given: String,
        /// The driver's address.
        actual: String,
    },
    /// `/dev/kmsg` could not be opened, written or read.
    #[error("{}: cannot {action}: {cause}{}", .path.display(), root_hint(.cause))]
    Kmsg {
        /// `open for reading`, `write`, `read`.
        action: &'static str,
        /// The device.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A value that does not fit its option (a UUID, a PCI ID, a register, a subcode, a device name).
    #[error("{what} `{value}` is not {expected}")]
    BadValue {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// An option that only applies to other XIDs (`--subcode` … on an XID outside 144–150).
    #[error("{option} applies to the NVLink5 XIDs 144–150 only, not to XID {xid}")]
    NotNvlink5 {
        /// The option.
        option: &'static str,
        /// The XID asked for.
        xid: u32,
    },
    /// `--uuid` disagrees with the driver.
    #[error("--uuid {given} is not GPU {gpu}: the driver says GPU {gpu} is {actual}; drop --uuid or fix --gpu")]
    UuidMismatch {
        /// The minor.
        gpu: u32,
        /// `--uuid`.
        given: String,
        /// The driver's UUID.
        actual: String,
    },
    /// No PCI vendor:device ID for a GPU (sysfs has none, `--pci-id` not given).
    #[error("cannot read the PCI ID of {pci} from {}: {cause}; give it with --pci-id (e.g. 10de:2330)", .path.display())]
    NoPciId {
        /// The device's address.
        pci: String,
        /// Where it was looked for.
        path: PathBuf,
        /// Why it could not be read.
        cause: String,
    },
    /// The NVSwitch driver's directory is missing (and no `--pci`).
    #[error(
        "cannot list NVSwitches in {}: {cause} (is the nvidia-nvswitch driver loaded, and /proc/driver mounted?); \
         give the switch's PCI address with --pci",
        .dir.display()
    )]
    NoNvswitchDriver {
        /// The directory.
        dir: PathBuf,
        /// Why it could not be read.
        cause: std::io::Error,
    },
    /// The driver knows no NVSwitch with that number.
    #[error("no NVSwitch {switch} in {} (switches there, in order: {known:?}); give its PCI address with --pci", .dir.display())]
    NoSuchSwitch {
        /// The number asked for.
        switch: u32,
        /// The PCI addresses present, in order.
        known: Vec<String>,
        /// The directory.
        dir: PathBuf,
    },
    /// `--pci` disagrees with what the driver or sysfs says about the device.
    #[error("--pci {given} is not {device}: it is at {actual}; drop --pci or fix the device")]
    DeviceMismatch {
        /// The device, in words (`NVSwitch 3`, `mlx5_0`).
        device: String,
        /// `--pci`.
        given: String,
        /// Where it is.
        actual: String,
    },
    /// An RDMA or network device sysfs does not know (and no `--pci`).
    #[error(
        "no RDMA or network device `{device}` in {} or {}; give its PCI address with --pci (and --netdev for \
         the events that name one)",
        .ib_dir.display(), .net_dir.display()
    )]
    NoSuchNic {
        /// The device asked for.
        device: String,
        /// The RDMA class directory.
        ib_dir: PathBuf,
        /// The network class directory.
        net_dir: PathBuf,
    },
    /// A network interface without a PCI device behind it (a veth, a bridge).
    #[error(
        "{device} is not a PCI device (a virtual interface?): name the RDMA device or the physical port, or give \
         its PCI address with --pci"
    )]
    NotPci {
        /// The device asked for.
        device: String,
    },
    /// The device is driven by another driver than the one whose line was asked for.
    #[error("{device} is driven by {driver}, but {event} is a {wants} event; pick one of its events: {events}")]
    WrongDriver {
        /// The device.
        device: String,
        /// Its driver.
        driver: String,
        /// The event.
        event: &'static str,
        /// The driver the event belongs to.
        wants: &'static str,
        /// That driver's events.
        events: String,
    },
    /// An event whose line names the network interface, for a device with none known.
    #[error("{event} names the network interface, and {device} has none in sysfs: give it with --netdev")]
    NeedsNetdev {
        /// The event.
        event: &'static str,
        /// The device.
        device: String,
    },
    /// The record was written but never showed up in the log.
    #[error("the kernel-log line(s) for fault {fault_id} were written to {} but did not appear in the kernel log{hint}", .path.display())]
    NotConfirmed {
        /// The fault id searched for.
        fault_id: String,
        /// The device.
        path: PathBuf,
        /// Why that may be.
        hint: String,
    },
    /// A process command under `faultline node` run by someone other than root.
    #[error(
        "`faultline node {0}` reaches processes in every container on the node and must run as root (it normally \
         runs in the faultline-node agent pod: `faultline cluster …` or kubectl exec)"
    )]
    NotRoot(String),
    /// An XID the CUDA shim has no preset for (arming a node, rolling a shim out with `--xid`).
    #[error("the CUDA shim has no preset for XID {xid} (it would ignore it); presets: XIDs {presets}")]
    NoCudaPreset {
        /// The XID.
        xid: u32,
        /// The XIDs that have one.
        presets: String,
    },
    /// The node is armed by another fault.
    #[error("this node is already armed by fault {fault_id} ({}); recover that fault first", .path.display())]
    ArmedByOther {
        /// The fault that armed it.
        fault_id: String,
        /// The policy file.
        path: PathBuf,
    },
    /// The node policy file could not be written, read or removed.
    #[error("{}: cannot {action}: {cause}", .path.display())]
    Policy {
        /// `write`, `read`, `remove`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

fn root_hint(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        " (writing and reading the kernel log needs root, or CAP_SYSLOG)"
    } else {
        ""
    }
}

impl NodeError {
    /// The exit status: 2 when the request itself was wrong (nothing was written), 1 when carrying it out failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::UnknownXid(_)
            | NodeError::BadPci(_)
            | NodeError::BadField { .. }
            | NodeError::NoDriver { .. }
            | NodeError::NoSuchGpu { .. }
            | NodeError::BadInformation { .. }
            | NodeError::PciMismatch { .. }
            | NodeError::BadValue { .. }
            | NodeError::NotNvlink5 { .. }
            | NodeError::UuidMismatch { .. }
            | NodeError::NoPciId { .. }
            | NodeError::NoNvswitchDriver { .. }
            | NodeError::NoSuchSwitch { .. }
            | NodeError::DeviceMismatch { .. }
            | NodeError::NoSuchNic { .. }
            | NodeError::NotPci { .. }
            | NodeError::WrongDriver { .. }
            | NodeError::NeedsNetdev { .. }
            | NodeError::NotRoot(_)
            | NodeError::NoCudaPreset { .. }
            | NodeError::ArmedByOther { .. } => EXIT_USAGE,
            NodeError::Kmsg { .. } | NodeError::NotConfirmed { .. } | NodeError::Policy { .. } => EXIT_FAILED,
        }
    }
}
