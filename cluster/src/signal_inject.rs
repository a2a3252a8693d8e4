//! `faultline cluster fallen-off|sxid|nic inject`: the kernel-log signals other than the XID, the way
//! [`crate::xid_inject`] does the XID — run `faultline node <signal> …` in the node agent's pod through the exec
//! API, record a Kubernetes Event on the Node (reason [`EVENT_REASON`], the signal in [`ledger::SIGNAL_ANNOTATION`],
//! stamped by the ledger), and optionally follow the node until it is cordoned.
//!
//! Bad input changes nothing: the request is checked ([`KernelSignal::check`]) and the agent found before anything
//! is written, and the Event is recorded only after the agent confirmed that its line(s) landed (a dry run records
//! none).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node};

use super::agent;
use super::exec::PodExec;
use super::kube_api::KubeApi;
use super::ledger::{self, FaultKind, Stamp};
use super::xid_inject::{self, EVENT_TTL};
use super::{ClusterError, DEFAULT_WATCH_INTERVAL};
use crate::node::nic::check_device_name;
use crate::node::xid::MAX_LINK;
use crate::node::{self, fallen, gpus::PciAddress, NicEvent, NodeError, SignalKind, SignalReport};

/// The Event reason of an injected kernel-log signal.
pub const EVENT_REASON: &str = "FaultlineKernelSignalInjected";

/// Which signal, with its own fields (the options of `faultline node <signal>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSignal {
    /// The driver's "fallen off the bus" message.
    FallenOff {
        /// The GPU's minor number.
        gpu: u32,
        /// Its PCI address, when the driver cannot tell.
        pci: Option<String>,
        /// Its PCI vendor:device ID, when sysfs cannot tell.
        pci_id: Option<String>,
    },
    /// An NVSwitch SXid.
    Sxid {
        /// The switch's device instance.
        switch: u32,
        /// The SXid.
        sxid: u32,
        /// The link.
        link: u32,
        /// `Fatal` instead of `Non-fatal`.
        fatal: bool,
        /// The text after the link, when not the default.
        message: Option<String>,
        /// The switch's PCI address, when the driver cannot tell.
        pci: Option<String>,
    },
    /// A NIC driver error.
    Nic {
        /// The RDMA device or network interface.
        device: String,
        /// What happens.
        event: NicEvent,
        /// Its PCI address, when sysfs cannot tell.
        pci: Option<String>,
        /// Its network interface, when sysfs cannot tell.
        netdev: Option<String>,
    },
}

impl KernelSignal {
    /// Which kind.
    pub fn kind(&self) -> SignalKind {
        match self {
            KernelSignal::FallenOff { .. } => SignalKind::FallenOff,
            KernelSignal::Sxid { .. } => SignalKind::Sxid,
            KernelSignal::Nic { .. } => SignalKind::Nic,
        }
    }

    /// What it does, in words: `GPU 0 falling off the bus`, `SXid 24007 (Fatal) on link 28 of NVSwitch 0`,
    /// `cmd-timeout on mlx5_0`.
    pub fn describe(&self) -> String {
        match self {
            KernelSignal::FallenOff { gpu, .. } => format!("GPU {gpu} falling off the bus"),
            KernelSignal::Sxid { switch, sxid, link, fatal, .. } => format!(
                "SXid {sxid} ({}) on link {link} of NVSwitch {switch}",
                if *fatal { "Fatal" } else { "Non-fatal" }
            ),
            KernelSignal::Nic { device, event, .. } => format!("{} on {device}", event.name()),
        }
    }

    /// Checks what can be checked without the node (its driver and sysfs are the agent's to ask): addresses, IDs,
    /// names, ranges. The same checks the agent makes, so a typo is refused before anything reaches the cluster.
    pub fn check(&self) -> Result<(), NodeError> {
        let pci = |pci: &Option<String>| pci.as_deref().map(PciAddress::parse).transpose().map(drop);
        match self {
            KernelSignal::FallenOff { pci: address, pci_id, .. } => {
                pci(address)?;
                pci_id.as_deref().map(fallen::check_pci_id).transpose().map(drop)
            }
            KernelSignal::Sxid { link, message, pci: address, .. } => {
                if *link > MAX_LINK {
                    return Err(NodeError::BadValue {
                        what: "--link",
                        value: link.to_string(),
                        expected: "a link 0–63",
                    });
                }
                message.as_deref().map(|m| node::checked_field("--message", m)).transpose()?;
                pci(address)
            }
            KernelSignal::Nic { device, pci: address, netdev, .. } => {
                check_device_name("--device", device)?;
                netdev.as_deref().map(|n| check_device_name("--netdev", n)).transpose()?;
                pci(address)
            }
        }
    }

    /// The `faultline node …` arguments after the subcommand.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: String| args.extend([flag.to_string(), value]);
        match self {
            KernelSignal::FallenOff { gpu, pci, pci_id } => {
                push("--gpu", gpu.to_string());
                pci.iter().for_each(|p| push("--pci", p.clone()));
                pci_id.iter().for_each(|p| push("--pci-id", p.clone()));
            }
            KernelSignal::Sxid { switch, sxid, link, fatal, message, pci } => {
                push("--switch", switch.to_string());
                push("--sxid", sxid.to_string());
                push("--link", link.to_string());
                message.iter().for_each(|m| push("--message", m.clone()));
                pci.iter().for_each(|p| push("--pci", p.clone()));
                if *fatal {
                    args.push("--fatal".to_string());
                }
            }
            KernelSignal::Nic { device, event, pci, netdev } => {
                push("--device", device.clone());
                push("--event", event.name().to_string());
                pci.iter().for_each(|p| push("--pci", p.clone()));
                netdev.iter().for_each(|n| push("--netdev", n.clone()));
            }
        }
        args
    }
}

/// What to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalInjectRequest {
    /// The node.
    pub node: String,
    /// The signal.
    pub signal: KernelSignal,
    /// Ask the agent to format the line without writing it (no Event either).
    pub dry_run: bool,
    /// Follow the node until it is cordoned, for at most this long.
    pub watch: Option<Duration>,
    /// How often to look at the node while watching (default [`DEFAULT_WATCH_INTERVAL`]).
    pub watch_interval: Option<Duration>,
    /// The fault id (default: a new one).
    pub fault_id: Option<String>,
}

impl SignalInjectRequest {
    /// `signal` on `node`, no options.
    pub fn new(node: &str, signal: KernelSignal) -> Self {
        SignalInjectRequest {
            node: node.to_string(),
            signal,
            dry_run: false,
            watch: None,
            watch_interval: None,
            fault_id: None,
        }
    }
}

/// What happened, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The agent pod that will run the command.
    Agent {
        /// Pod name.
        pod: String,
        /// `fallen-off`, `sxid` or `nic`.
        command: &'static str,
    },
    /// The agent wrote (or, dry run, formatted) the line(s).
    Injected {
        /// The agent's report.
        report: Box<SignalReport>,
    },
    /// The Event was recorded.
    EventRecorded {
        /// Its name.
        name: String,
    },
    /// A step of the watch for the cordon (`Waiting` or `Cordoned`).
    Watch(xid_inject::Progress),
}

/// What `inject` did.
pub type SignalInjectResult = xid_inject::Injected<SignalReport>;

/// The command run in the agent pod.
pub fn agent_command(request: &SignalInjectRequest, fault_id: &str) -> Vec<String> {
    let mut command = agent::node_command([request.signal.kind().command()]);
    command.extend(request.signal.args());
    command.extend(["--fault-id".to_string(), fault_id.to_string()]);
    if request.dry_run {
        command.push("--dry-run".to_string());
    }
    command
}

/// Writes the signal (see the module docs); `progress` hears about each step.
pub async fn inject(
    api: &KubeApi,
    exec: &impl PodExec,
    request: &SignalInjectRequest,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<SignalInjectResult, ClusterError> {
    request.signal.check().map_err(|e| ClusterError::Usage(e.to_string()))?;
    let agent = agent::find(api, &request.node).await?;
    progress(&Progress::Agent { pod: agent.pod.clone(), command: request.signal.kind().command() });

    let fault_id = request.fault_id.clone().unwrap_or_else(node::new_fault_id);
    let report: SignalReport = agent.run(exec, &agent_command(request, &fault_id)).await?;
    progress(&Progress::Injected { report: Box::new(report.clone()) });

    let event = if request.dry_run {
        None
    } else {
        let event = signal_event(&agent.node, api.namespace(), &report, k8s_openapi::jiff::Timestamp::now());
        let created = api.create_event(&event).await?;
        let name = created.metadata.name.or(event.metadata.name).unwrap_or_default();
        progress(&Progress::EventRecorded { name: name.clone() });
        Some(name)
    };

    let watch = match (request.watch, request.dry_run) {
        (Some(timeout), false) => {
            let interval = request.watch_interval.unwrap_or(DEFAULT_WATCH_INTERVAL);
            let mut each = |step: &xid_inject::Progress| progress(&Progress::Watch(step.clone()));
            Some(xid_inject::watch_cordon(api, &request.node, timeout, interval, &mut each).await?)
        }
        _ => None,
    };
    Ok(SignalInjectResult { fault_id, node: request.node.clone(), pod: agent.pod, agent: report, event, watch })
}

/// The Event recording `report` on `node` (in `namespace`, the agent's), its signal in
/// [`ledger::SIGNAL_ANNOTATION`].
pub fn signal_event(node: &Node, namespace: &str, report: &SignalReport, now: k8s_openapi::jiff::Timestamp) -> Event {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let stamp = Stamp::at(FaultKind::KernelSignal, report.fault_id.clone(), now, Some(EVENT_TTL), ledger::created_by());
    let message = format!(
        "{}: {} ({}{}), written into the kernel log of node {node_name} by faultline, fault {}",
        report.signal.title(),
        report.summary,
        report.monitor,
        if report.fatal { ", fatal" } else { "" },
        report.fault_id
    );
    let annotation = (ledger::SIGNAL_ANNOTATION, report.signal.command().to_string());
    xid_inject::node_event(node, namespace, &stamp, annotation, EVENT_REASON, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_command_carries_every_option() {
        let sxid = KernelSignal::Sxid {
            switch: 2,
            sxid: 24007,
            link: 28,
            fatal: true,
            message: None,
            pci: Some("0000:c3:00.0".into()),
        };
        let request = SignalInjectRequest { dry_run: true, ..SignalInjectRequest::new("gpu-a", sxid) };
        assert_eq!(
            agent_command(&request, "fl-1").join(" "),
            "faultline node sxid --switch 2 --sxid 24007 --link 28 --pci 0000:c3:00.0 --fatal --fault-id fl-1 --dry-run"
        );
        let nic = KernelSignal::Nic { device: "mlx5_0".into(), event: NicEvent::CmdTimeout, pci: None, netdev: None };
        assert_eq!(
            agent_command(&SignalInjectRequest::new("gpu-a", nic), "fl-2").join(" "),
            "faultline node nic --device mlx5_0 --event cmd-timeout --fault-id fl-2"
        );
        let fallen = KernelSignal::FallenOff { gpu: 1, pci: None, pci_id: Some("10de:2330".into()) };
        assert_eq!(
            agent_command(&SignalInjectRequest::new("gpu-a", fallen), "fl-3").join(" "),
            "faultline node fallen-off --gpu 1 --pci-id 10de:2330 --fault-id fl-3"
        );
    }

    #[test]
    fn what_the_node_would_refuse_is_refused_before() {
        let nic = |device: &str| KernelSignal::Nic {
            device: device.into(),
            event: NicEvent::TxTimeout,
            pci: None,
            netdev: None,
        };
        assert!(nic("mlx5_0").check().is_ok());
        assert!(nic("../x").check().is_err());
        let fallen = KernelSignal::FallenOff { gpu: 0, pci: Some("3b:0g.0".into()), pci_id: None };
        assert!(fallen.check().unwrap_err().to_string().contains("is not a PCI address"));
        let far = KernelSignal::Sxid { switch: 0, sxid: 1, link: 99, fatal: false, message: None, pci: None };
        assert!(far.check().is_err());
        assert_eq!(far.describe(), "SXid 1 (Non-fatal) on link 99 of NVSwitch 0");
    }
}
