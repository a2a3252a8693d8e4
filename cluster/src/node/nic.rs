//! `faultline node nic`: the NIC driver errors NVSentinel's `nicdriver` handler reads, as mlx5_core (ConnectX,
//! InfiniBand / RoCE) and the AWS EFA driver print them — the command timeout that leaks a command resource, the
//! lost firmware heartbeat, the unrecoverable hardware error, TX/RX stalls, port-module events, and EFA's admin
//! queue and reset failures. The fatal ones (NVSentinel: `REPLACE_VM`) are marked [`NicEvent::fatal`].
//!
//! The device is named as an RDMA device (`mlx5_0`, `rdmap0s6`, `efa_0`; `/sys/class/infiniband`) or a network
//! interface (`eth0`; `/sys/class/net`); sysfs gives its PCI address, driver, and the other name. `--pci` and
//! `--netdev` stand in where sysfs cannot tell (a network interface in another network namespace is not in this
//! one's `/sys/class/net`). Lines are prefixed as the kernel prefixes them: `mlx5_core <address>:` (`dev_err`),
//! `mlx5_core <address> <netdev>:` (`netdev_err`), `infiniband <ibdev>:` (`ibdev_err`), `efa <address>:`.

use std::path::{Path, PathBuf};

use super::fallen::DEFAULT_SYSFS;
use super::gpus::PciAddress;
use super::signal::{Line, SignalKind, SignalReport};
use super::{checked_field, kmsg, new_fault_id, NodeError};

/// The drivers whose lines `faultline node nic` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicDriver {
    /// NVIDIA / Mellanox ConnectX.
    Mlx5,
    /// AWS Elastic Fabric Adapter.
    Efa,
}

impl NicDriver {
    /// The kernel driver's name (sysfs `driver` link, line prefix).
    pub fn name(self) -> &'static str {
        match self {
            NicDriver::Mlx5 => "mlx5_core",
            NicDriver::Efa => "efa",
        }
    }
}

/// One NIC driver error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NicEvent {
    /// mlx5: a firmware command timed out and leaked its resource.
    CmdTimeout,
    /// mlx5: the firmware heartbeat was missed too often.
    HealthLost,
    /// mlx5: health syndrome 0x8, unrecoverable hardware error.
    Unrecoverable,
    /// The kernel's TX watchdog on an mlx5 interface.
    NetdevWatchdog,
    /// mlx5: TX timeout detected.
    TxTimeout,
    /// mlx5: RX timeout on a channel.
    RxTimeout,
    /// mlx5: port module event, high temperature.
    HighTemp,
    /// mlx5: port module event, cable unplugged.
    CableUnplugged,
    /// EFA: an admin command got no completion.
    EfaAdminTimeout,
    /// EFA: the admin queue is closed.
    EfaQueueClosed,
    /// EFA: an admin command failed.
    EfaCmdFailed,
    /// EFA: a device reset did not complete.
    EfaResetFailed,
    /// EFA: the device was not ready at initialisation.
    EfaNotReady,
}

impl NicEvent {
    /// Every event, mlx5 first.
    pub const ALL: [NicEvent; 13] = [
        NicEvent::CmdTimeout,
        NicEvent::HealthLost,
        NicEvent::Unrecoverable,
        NicEvent::NetdevWatchdog,
        NicEvent::TxTimeout,
        NicEvent::RxTimeout,
        NicEvent::HighTemp,
        NicEvent::CableUnplugged,
        NicEvent::EfaAdminTimeout,
        NicEvent::EfaQueueClosed,
        NicEvent::EfaCmdFailed,
        NicEvent::EfaResetFailed,
        NicEvent::EfaNotReady,
    ];

    /// The name `--event` takes.
    pub fn name(self) -> &'static str {
        match self {
            NicEvent::CmdTimeout => "cmd-timeout",
            NicEvent::HealthLost => "health-lost",
            NicEvent::Unrecoverable => "unrecoverable",
            NicEvent::NetdevWatchdog => "netdev-watchdog",
            NicEvent::TxTimeout => "tx-timeout",
            NicEvent::RxTimeout => "rx-timeout",
            NicEvent::HighTemp => "high-temp",
            NicEvent::CableUnplugged => "cable-unplugged",
            NicEvent::EfaAdminTimeout => "efa-admin-timeout",
            NicEvent::EfaQueueClosed => "efa-queue-closed",
            NicEvent::EfaCmdFailed => "efa-cmd-failed",
            NicEvent::EfaResetFailed => "efa-reset-failed",
            NicEvent::EfaNotReady => "efa-not-ready",
        }
    }

    /// The event `--event` names.
    pub fn parse(text: &str) -> Result<NicEvent, NodeError> {
        NicEvent::ALL.into_iter().find(|e| e.name() == text.trim()).ok_or_else(|| NodeError::BadValue {
            what: "--event",
            value: text.to_string(),
            expected: "a NIC event (cmd-timeout, health-lost, unrecoverable, netdev-watchdog, tx-timeout, \
                       rx-timeout, high-temp, cable-unplugged, efa-admin-timeout, efa-queue-closed, efa-cmd-failed, \
                       efa-reset-failed, efa-not-ready)",
        })
    }

    /// Whose line it is.
    pub fn driver(self) -> NicDriver {
        match self {
            NicEvent::EfaAdminTimeout
            | NicEvent::EfaQueueClosed
            | NicEvent::EfaCmdFailed
            | NicEvent::EfaResetFailed
            | NicEvent::EfaNotReady => NicDriver::Efa,
            _ => NicDriver::Mlx5,
        }
    }

    /// NVSentinel's pattern name (the event's error code).
    pub fn pattern(self) -> &'static str {
        match self {
            NicEvent::CmdTimeout => "cmd_exec_timeout",
            NicEvent::HealthLost => "health_poll_failed",
            NicEvent::Unrecoverable => "unrecoverable_err",
            NicEvent::NetdevWatchdog => "netdev_watchdog",
            NicEvent::TxTimeout => "mlx5_tx_timeout_detected",
            NicEvent::RxTimeout => "mlx5_rx_timeout_detected",
            NicEvent::HighTemp => "port_module_high_temp",
            NicEvent::CableUnplugged => "module_unplugged",
            NicEvent::EfaAdminTimeout => "efa_admin_cmd_timeout",
            NicEvent::EfaQueueClosed => "efa_admin_queue_closed",
            NicEvent::EfaCmdFailed => "efa_admin_cmd_failed",
            NicEvent::EfaResetFailed => "efa_device_reset_failed",
            NicEvent::EfaNotReady => "efa_device_not_ready",
        }
    }

    /// Whether NVSentinel treats it as fatal (and recommends replacing the machine).
    pub fn fatal(self) -> bool {
        matches!(
            self,
            NicEvent::CmdTimeout
                | NicEvent::HealthLost
                | NicEvent::Unrecoverable
                | NicEvent::EfaAdminTimeout
                | NicEvent::EfaQueueClosed
                | NicEvent::EfaResetFailed
                | NicEvent::EfaNotReady
        )
    }

    /// What it is, in words.
    pub fn title(self) -> &'static str {
        match self {
            NicEvent::CmdTimeout => "firmware command timeout",
            NicEvent::HealthLost => "firmware health poll lost",
            NicEvent::Unrecoverable => "unrecoverable hardware error",
            NicEvent::NetdevWatchdog => "transmit queue watchdog timeout",
            NicEvent::TxTimeout => "TX timeout",
            NicEvent::RxTimeout => "RX timeout",
            NicEvent::HighTemp => "port module high temperature",
            NicEvent::CableUnplugged => "cable unplugged",
            NicEvent::EfaAdminTimeout => "admin command timeout",
            NicEvent::EfaQueueClosed => "admin queue closed",
            NicEvent::EfaCmdFailed => "admin command failed",
            NicEvent::EfaResetFailed => "device reset failed",
            NicEvent::EfaNotReady => "device not ready",
        }
    }

    /// The `printk` level the driver uses: `netdev_crit` for the watchdog, `dev_info` for a plugged / unplugged
    /// module, errors otherwise.
    pub fn level(self) -> u8 {
        match self {
            NicEvent::NetdevWatchdog => 2,
            NicEvent::CableUnplugged => 6,
            _ => 3,
        }
    }

    /// Whether the line names the network interface.
    pub fn needs_netdev(self) -> bool {
        matches!(self, NicEvent::NetdevWatchdog | NicEvent::TxTimeout | NicEvent::RxTimeout)
    }

    /// The driver's message for `device`.
    pub fn message(self, device: &NicDevice) -> Result<String, NodeError> {
        let pci = device.pci;
        let netdev = || {
            device
                .netdev
                .clone()
                .ok_or_else(|| NodeError::NeedsNetdev { event: self.name(), device: device.name.clone() })
        };
        // ibdev_err() lines once the RDMA device is registered; dev_err() with the PCI address before that.
        let efa = match &device.ibdev {
            Some(ibdev) => format!("infiniband {ibdev}:"),
            None => format!("efa {pci}:"),
        };
        Ok(match self {
            NicEvent::CmdTimeout => format!(
                "mlx5_core {pci}: wait_func:1151:(pid 0): ACCESS_REG(0x805) timeout. Will cause a leak of a command \
                 resource"
            ),
            NicEvent::HealthLost => {
                format!("mlx5_core {pci}: poll_health:801:(pid 0): device's health compromised - reached miss count")
            }
            NicEvent::Unrecoverable => {
                format!("mlx5_core {pci}: print_health_info:431:(pid 0): synd 0x8: unrecoverable hardware error")
            }
            NicEvent::NetdevWatchdog => {
                format!("mlx5_core {pci} {}: NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out 5000 ms", netdev()?)
            }
            NicEvent::TxTimeout => format!("mlx5_core {pci} {}: TX timeout detected", netdev()?),
            NicEvent::RxTimeout => {
                format!("mlx5_core {pci} {}: RX timeout on channel: 0, ICOSQ: 0x1a4 RQ: 0x1a5, CQ: 0x7c9", netdev()?)
            }
            NicEvent::HighTemp => format!(
                "mlx5_core {pci}: port_module:1163:(pid 0): Port module event[error]: module 0, Cable error, High \
                 Temperature"
            ),
            NicEvent::CableUnplugged => format!("mlx5_core {pci}: Port module event: module 0, Cable unplugged"),
            NicEvent::EfaAdminTimeout => match &device.ibdev {
                Some(_) => format!(
                    "{efa} The device didn't send any completion for admin cmd CREATE_QP(6) status 0 (ctx \
                     0x000000001d2f9d31, sq producer: 12, sq consumer: 11, cq consumer: 11)"
                ),
                None => format!("{efa} Wait for completion (polling) timeout"),
            },
            NicEvent::EfaQueueClosed => format!("{efa} Admin queue is closed"),
            NicEvent::EfaCmdFailed => {
                format!("{efa} Failed to process command CREATE_QP (opcode 6) comp_status 1 err -22")
            }
            NicEvent::EfaResetFailed => format!("efa {pci}: Reset indication didn't turn on"),
            NicEvent::EfaNotReady => format!("efa {pci}: Device isn't ready, abort com init"),
        })
    }
}

/// A NIC as sysfs (or the command line) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicDevice {
    /// The name given with `--device`.
    pub name: String,
    /// The RDMA device (`mlx5_0`, `rdmap0s6`), if known.
    pub ibdev: Option<String>,
    /// The network interface, if known.
    pub netdev: Option<String>,
    /// The PCI function.
    pub pci: PciAddress,
    /// `sysfs` or `--pci`.
    pub pci_source: &'static str,
    /// The driver bound to it (sysfs), if known.
    pub driver: Option<String>,
}

/// Checks an RDMA or network device name (letters, digits, `_`, `.`, `-`; at most 32 characters).
pub fn check_device_name(what: &'static str, text: &str) -> Result<String, NodeError> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && !text.starts_with('.')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then(|| text.to_string()).ok_or_else(|| NodeError::BadValue {
        what,
        value: text.to_string(),
        expected: "a device name (e.g. mlx5_0, rdmap0s6, eth0)",
    })
}

/// Finds `name` under `<sysfs>/class/infiniband` or `<sysfs>/class/net`, with `pci` and `netdev` as fallbacks (or
/// checks: `--pci` must agree with sysfs).
pub fn resolve_device(
    sysfs: &Path,
    name: &str,
    pci: Option<&str>,
    netdev: Option<&str>,
) -> Result<NicDevice, NodeError> {
    let name = check_device_name("--device", name)?;
    let netdev = netdev.map(|n| check_device_name("--netdev", n)).transpose()?;
    let given = pci.map(PciAddress::parse).transpose()?;
    let ib_class = sysfs.join("class/infiniband");
    let net_class = sysfs.join("class/net");
    let (is_ib, class_dir) = if ib_class.join(&name).exists() {
        (true, ib_class.join(&name))
    } else if net_class.join(&name).exists() {
        (false, net_class.join(&name))
    } else {
        let Some(pci) = given else {
            return Err(NodeError::NoSuchNic { device: name, ib_dir: ib_class, net_dir: net_class });
        };
        let ibdev = (netdev.as_deref() != Some(name.as_str())).then(|| name.clone());
        return Ok(NicDevice { name, ibdev, netdev, pci, pci_source: "--pci", driver: None });
    };
    let pci_dir = std::fs::canonicalize(class_dir.join("device")).ok();
    let found = pci_dir.as_ref().and_then(|d| PciAddress::parse(&d.file_name()?.to_string_lossy()).ok());
    let Some(found) = found else {
        return match given {
            Some(pci) => Ok(NicDevice {
                ibdev: is_ib.then(|| name.clone()),
                netdev: netdev.or_else(|| (!is_ib).then(|| name.clone())),
                name,
                pci,
                pci_source: "--pci",
                driver: None,
            }),
            None => Err(NodeError::NotPci { device: name }),
        };
    };
    if let Some(given) = given.filter(|g| g.to_string() != found.to_string()) {
        return Err(NodeError::DeviceMismatch { device: name, given: given.to_string(), actual: found.to_string() });
    }
    let pci_dir = pci_dir.unwrap_or_default();
    let first_entry = |sub: &str| {
        let mut names: Vec<String> = std::fs::read_dir(pci_dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.into_iter().next()
    };
    let driver = std::fs::read_link(pci_dir.join("driver"))
        .ok()
        .and_then(|link| link.file_name().map(|n| n.to_string_lossy().into_owned()));
    let (ibdev, netdev) = if is_ib {
        (Some(name.clone()), netdev.or_else(|| first_entry("net")))
    } else {
        (first_entry("infiniband"), netdev.or_else(|| Some(name.clone())))
    };
    Ok(NicDevice { name, ibdev, netdev, pci: found, pci_source: "sysfs", driver })
}

/// What `faultline node nic` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInjection {
    /// The RDMA device or network interface.
    pub device: String,
    /// What happens to it.
    pub event: NicEvent,
    /// Its PCI address, when sysfs cannot tell.
    pub pci: Option<String>,
    /// Its network interface, when sysfs cannot tell.
    pub netdev: Option<String>,
    /// Resolve and format, but write nothing.
    pub dry_run: bool,
    /// The fault id (a new one when `None`).
    pub fault_id: Option<String>,
    /// The sysfs root.
    pub sysfs: PathBuf,
    /// The kernel log device.
    pub kmsg: PathBuf,
}

impl NicInjection {
    /// `event` on `device`, real paths, no options.
    pub fn new(device: &str, event: NicEvent) -> Self {
        NicInjection {
            device: device.to_string(),
            event,
            pci: None,
            netdev: None,
            dry_run: false,
            fault_id: None,
            sysfs: PathBuf::from(DEFAULT_SYSFS),
            kmsg: PathBuf::from(kmsg::DEV_KMSG),
        }
    }
}

/// Carries out `request`.
pub fn inject_nic(request: &NicInjection) -> Result<SignalReport, NodeError> {
    let fault_id = match &request.fault_id {
        Some(id) => checked_field("--fault-id", id)?.to_string(),
        None => new_fault_id(),
    };
    let device = resolve_device(&request.sysfs, &request.device, request.pci.as_deref(), request.netdev.as_deref())?;
    let event = request.event;
    let wants = event.driver().name();
    if let Some(driver) = device.driver.as_deref().filter(|d| *d != wants) {
        let same_driver: Vec<&str> = match NicEvent::ALL.into_iter().find(|e| e.driver().name() == driver) {
            Some(_) => NicEvent::ALL.into_iter().filter(|e| e.driver().name() == driver).map(NicEvent::name).collect(),
            None => vec!["none (faultline writes mlx5_core and efa lines)"],
        };
        return Err(NodeError::WrongDriver {
            device: device.name.clone(),
            driver: driver.to_string(),
            event: event.name(),
            wants,
            events: same_driver.join(", "),
        });
    }
    let lines = [Line::new(event.level(), &event.message(&device)?, &fault_id)];
    let mut report = SignalReport::formatted(SignalKind::Nic, &fault_id, &lines, request.dry_run);
    report.summary = format!("{wants} {} on {}", event.title(), device.name);
    report.fatal = event.fatal();
    report.monitor = format!("{}/{}", SignalKind::Nic.check(), event.pattern());
    report.pci = device.pci.to_string();
    report.pci_source = device.pci_source.to_string();
    report.details.extend([
        ("device".to_string(), device.name.clone()),
        ("event".to_string(), event.name().to_string()),
        ("driver".to_string(), device.driver.clone().unwrap_or_else(|| format!("{wants} (assumed)"))),
    ]);
    report.details.extend(device.ibdev.clone().map(|ib| ("ibdev".to_string(), ib)));
    report.details.extend(device.netdev.clone().map(|net| ("netdev".to_string(), net)));
    report.write(&request.kmsg, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(ibdev: Option<&str>, netdev: Option<&str>) -> NicDevice {
        NicDevice {
            name: "mlx5_0".into(),
            ibdev: ibdev.map(str::to_string),
            netdev: netdev.map(str::to_string),
            pci: PciAddress::parse("0000:65:00.0").unwrap(),
            pci_source: "--pci",
            driver: None,
        }
    }

    #[test]
    fn every_event_has_a_name_a_pattern_and_a_line() {
        let full = device(Some("rdmap0s6"), Some("eth0"));
        for event in NicEvent::ALL {
            assert_eq!(NicEvent::parse(event.name()).unwrap(), event);
            let message = event.message(&full).unwrap();
            let prefix = match event.driver() {
                NicDriver::Mlx5 => "mlx5_core 0000:65:00.0",
                NicDriver::Efa => "",
            };
            assert!(message.starts_with(prefix) && !message.contains('\n'), "{message}");
        }
        assert!(NicEvent::parse("fire").unwrap_err().to_string().contains("cmd-timeout, health-lost"));
        let fatal: Vec<&str> = NicEvent::ALL.into_iter().filter(|e| e.fatal()).map(NicEvent::name).collect();
        assert_eq!(
            fatal,
            [
                "cmd-timeout",
                "health-lost",
                "unrecoverable",
                "efa-admin-timeout",
                "efa-queue-closed",
                "efa-reset-failed",
                "efa-not-ready"
            ]
        );
    }

    #[test]
    fn the_watchdog_needs_a_netdev_and_efa_falls_back_to_the_pci_prefix() {
        let bare = device(None, None);
        assert!(matches!(NicEvent::NetdevWatchdog.message(&bare), Err(NodeError::NeedsNetdev { .. })));
        assert_eq!(
            NicEvent::EfaQueueClosed.message(&bare).unwrap(),
            "efa 0000:65:00.0: Admin queue is closed",
            "before the RDMA device is registered"
        );
        assert_eq!(
            NicEvent::EfaQueueClosed.message(&device(Some("rdmap0s6"), None)).unwrap(),
            "infiniband rdmap0s6: Admin queue is closed"
        );
        assert!(check_device_name("--device", "mlx5_0").is_ok());
        assert!(check_device_name("--device", "../etc").is_err());
    }
}
