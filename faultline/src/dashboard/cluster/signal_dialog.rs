//! The kernel-log signal dialog's model: the signals other than the XID that NVSentinel's syslog monitor reads — a
//! GPU fallen off the bus, an NVSwitch SXid, a NIC driver error — with each one's own rows, and a watch for the
//! cordon, on the cluster dialogs' form framework ([`ClusterForm`]). Its draft is a [`SignalDraft`], checked as
//! `faultline cluster fallen-off|sxid|nic inject` checks its flags; Enter asks for confirmation and only `y` turns
//! it into a request. Nothing here talks to the cluster.

use std::time::Duration;

use super::form::{checkbox, choice, cycle, ClusterForm, FormHints, FormLook, FormRow, FormState, Input};
use super::xid_dialog::{agent_line, watch_choice, watch_row, WATCH_CHOICES};
use crate::cluster::action::draft::{Names, SignalDraft};
use crate::cluster::action::ClusterRequest;
use crate::cluster::nodes::GpuNode;
use crate::cluster::signal_inject::{KernelSignal, SignalInjectRequest};
use crate::node::nic::check_device_name;
use crate::node::sxid::{GENERIC_TEXT, KNOWN};
use crate::node::xid::MAX_LINK;
use crate::node::{NicEvent, SignalKind};

/// The fields, in order (each signal shows its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalField {
    /// Which signal.
    Signal,
    /// Fallen off: the GPU's minor number.
    Gpu,
    /// SXid: the switch.
    Switch,
    /// SXid: the code.
    Sxid,
    /// SXid: the link.
    Link,
    /// SXid: fatal or not.
    Fatal,
    /// NIC: the RDMA device or network interface.
    Device,
    /// NIC: the event.
    Event,
    /// Follow the node until it is cordoned.
    Watch,
}

impl SignalField {
    /// The field's label.
    pub fn label(self) -> &'static str {
        match self {
            SignalField::Signal => "Signal",
            SignalField::Gpu => "GPU",
            SignalField::Switch => "NVSwitch",
            SignalField::Sxid => "SXid",
            SignalField::Link => "Link",
            SignalField::Fatal => "Fatal",
            SignalField::Device => "Device",
            SignalField::Event => "Event",
            SignalField::Watch => "Watch cordon",
        }
    }
}

/// Write a kernel-log signal on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalDialog {
    /// The node, as listed when the dialog opened.
    pub node: GpuNode,
    /// Index into [`SignalKind::ALL`].
    pub kind: usize,
    /// GPU minor, as typed.
    pub gpu: String,
    /// NVSwitch instance, as typed.
    pub switch: String,
    /// SXid, as typed.
    pub sxid: String,
    /// Link, as typed.
    pub link: String,
    /// `Fatal` instead of `Non-fatal`.
    pub fatal: bool,
    /// RDMA device or network interface, as typed.
    pub device: String,
    /// Index into [`NicEvent::ALL`].
    pub event: usize,
    /// Index into [`WATCH_CHOICES`].
    pub watch: usize,
    /// Focus, typing, confirmation.
    pub form: FormState,
}

impl SignalDialog {
    /// A dialog for `node`: GPU 0 falling off the bus, no watch; SXid 24007 (fatal) on link 0 of switch 0 and
    /// `cmd-timeout` on `mlx5_0` proposed for the other signals.
    pub fn new(node: &GpuNode) -> SignalDialog {
        SignalDialog {
            node: node.clone(),
            kind: 0,
            gpu: "0".to_string(),
            switch: "0".to_string(),
            sxid: "24007".to_string(),
            link: "0".to_string(),
            fatal: true,
            device: "mlx5_0".to_string(),
            event: 0,
            watch: 0,
            form: FormState::default(),
        }
    }

    /// The signal chosen.
    pub fn kind(&self) -> SignalKind {
        SignalKind::ALL[self.kind.min(SignalKind::ALL.len() - 1)]
    }

    /// The NIC event chosen.
    pub fn nic_event(&self) -> NicEvent {
        NicEvent::ALL[self.event.min(NicEvent::ALL.len() - 1)]
    }

    /// The fields the chosen signal shows.
    pub fn fields(&self) -> &'static [SignalField] {
        use SignalField::{Device, Event, Fatal, Gpu, Link, Signal, Switch, Sxid, Watch};
        match self.kind() {
            SignalKind::FallenOff => &[Signal, Gpu, Watch],
            SignalKind::Sxid => &[Signal, Switch, Sxid, Link, Fatal, Watch],
            SignalKind::Nic => &[Signal, Device, Event, Watch],
        }
    }

    /// The watch timeout chosen.
    pub fn watch_timeout(&self) -> Option<Duration> {
        watch_choice(self.watch)
    }

    /// `Ok(hint)` or `Err(why the field is invalid)`.
    pub fn check(&self, field: SignalField) -> Result<String, String> {
        match field {
            SignalField::Signal => Ok(format!("read by NVSentinel's {}", self.kind().check())),
            SignalField::Gpu => {
                let gpu = parse_number("GPU", &self.gpu)?;
                Ok(match self.node.gpus {
                    Some(count) if count > 0 && gpu >= count => format!("⚠ the node reports {count} GPUs"),
                    _ => "address and PCI ID from the node's driver".to_string(),
                })
            }
            SignalField::Switch => {
                parse_number("NVSwitch", &self.switch).map(|n| format!("nvidia-nvswitch{n}, in PCI order"))
            }
            SignalField::Sxid => {
                let code = parse_number("SXid", &self.sxid)?;
                Ok(match KNOWN.iter().find(|(known, _)| *known == code) {
                    Some((_, text)) => (*text).to_string(),
                    None => format!("no text known: `{GENERIC_TEXT}`"),
                })
            }
            SignalField::Link => match parse_number("link", &self.link)? {
                link if link > MAX_LINK => Err(format!("{link} is not a link 0–{MAX_LINK}")),
                _ => Ok("the NVLink port".to_string()),
            },
            SignalField::Fatal => {
                Ok(if self.fatal { "Fatal (NVSentinel: contact support)" } else { "Non-fatal" }.to_string())
            }
            SignalField::Device => match check_device_name("Device", self.device.trim()) {
                Ok(_) => Ok("an RDMA device or network interface on the node".to_string()),
                Err(error) => Err(error.to_string()),
            },
            SignalField::Event => {
                let event = self.nic_event();
                let fatal = if event.fatal() { "fatal" } else { "non-fatal" };
                Ok(format!("{}: {} · {fatal}", event.driver().name(), event.title()))
            }
            SignalField::Watch => Ok(match self.watch_timeout() {
                Some(timeout) => format!("follow the node up to {} s until it is cordoned", timeout.as_secs()),
                None => "do not wait for the cordon".to_string(),
            }),
        }
    }

    /// The signal the rows stand for (numbers parsed; names checked by the draft).
    fn signal(&self) -> Result<KernelSignal, String> {
        Ok(match self.kind() {
            SignalKind::FallenOff => {
                KernelSignal::FallenOff { gpu: parse_number("GPU", &self.gpu)?, pci: None, pci_id: None }
            }
            SignalKind::Sxid => KernelSignal::Sxid {
                switch: parse_number("NVSwitch", &self.switch)?,
                sxid: parse_number("SXid", &self.sxid)?,
                link: parse_number("link", &self.link)?,
                fatal: self.fatal,
                message: None,
                pci: None,
            },
            SignalKind::Nic => KernelSignal::Nic {
                device: self.device.trim().to_string(),
                event: self.nic_event(),
                pci: None,
                netdev: None,
            },
        })
    }

    /// The request the draft stands for; `Err` names the first invalid field.
    pub fn inject_request(&self) -> Result<SignalInjectRequest, String> {
        if let Some((label, error)) = self.first_error() {
            return Err(format!("{label}: {error}"));
        }
        let draft = SignalDraft {
            request: SignalInjectRequest {
                watch: self.watch_timeout(),
                ..SignalInjectRequest::new(&self.node.name, self.signal()?)
            },
        };
        draft.parse(Names::Labels).map_err(|e| e.to_string())
    }
}

impl ClusterForm for SignalDialog {
    const NOT_DONE: &'static str = "nothing written";
    const CLOSED: &'static str = "kernel-log signal dialog closed; nothing written";

    fn look(&self) -> FormLook {
        FormLook {
            title: format!(" Write a kernel-log signal on node {} ", self.node.name),
            intro: agent_line(&self.node),
            width: 96,
            label_width: 14,
            value_width: 22,
            hints: FormHints::Steps,
            yes: "write",
            ready: "✓ Enter asks for confirmation before anything is written.",
            error_suffix: "; Enter writes nothing",
            terse_row_errors: true,
        }
    }

    fn state(&self) -> &FormState {
        &self.form
    }

    fn state_mut(&mut self) -> &mut FormState {
        &mut self.form
    }

    fn rows(&self) -> Vec<FormRow> {
        self.fields()
            .iter()
            .map(|&field| {
                let (value, input) = match field {
                    SignalField::Signal => (choice(short_title(self.kind())), Input::Choice),
                    SignalField::Gpu => (self.gpu.clone(), Input::Stepped),
                    SignalField::Switch => (self.switch.clone(), Input::Stepped),
                    SignalField::Sxid => (self.sxid.clone(), Input::Stepped),
                    SignalField::Link => (self.link.clone(), Input::Stepped),
                    SignalField::Fatal => (checkbox(self.fatal), Input::Toggle),
                    SignalField::Device => (self.device.clone(), Input::Text),
                    SignalField::Event => (choice(self.nic_event().name()), Input::Choice),
                    SignalField::Watch => watch_row(self.watch),
                };
                FormRow { label: field.label(), value, input, check: self.check(field) }
            })
            .collect()
    }

    fn text_mut(&mut self, index: usize) -> Option<&mut String> {
        match self.fields().get(index)? {
            SignalField::Gpu => Some(&mut self.gpu),
            SignalField::Switch => Some(&mut self.switch),
            SignalField::Sxid => Some(&mut self.sxid),
            SignalField::Link => Some(&mut self.link),
            SignalField::Device => Some(&mut self.device),
            SignalField::Signal | SignalField::Fatal | SignalField::Event | SignalField::Watch => None,
        }
    }

    /// Numbers ± `delta`; the SXid to the previous / next one faultline knows; choices cycle; Fatal flips.
    fn step_row(&mut self, index: usize, delta: i64) {
        let Some(field) = self.fields().get(index) else { return };
        let step = |text: &mut String, max: i64| {
            let current = text.trim().parse::<i64>().unwrap_or(0);
            *text = (current + delta).clamp(0, max).to_string();
        };
        match field {
            SignalField::Signal => self.kind = cycle(self.kind, delta, SignalKind::ALL.len()),
            SignalField::Gpu => step(&mut self.gpu, i64::from(u32::MAX)),
            SignalField::Switch => step(&mut self.switch, i64::from(u32::MAX)),
            SignalField::Link => step(&mut self.link, i64::from(MAX_LINK)),
            SignalField::Sxid => {
                let current = self.sxid.trim().parse::<u32>().ok();
                let next = if delta > 0 {
                    KNOWN.iter().find(|(code, _)| current.is_none_or(|c| *code > c)).or(KNOWN.last())
                } else {
                    KNOWN.iter().rev().find(|(code, _)| current.is_none_or(|c| *code < c)).or(KNOWN.first())
                };
                if let Some((code, _)) = next {
                    self.sxid = code.to_string();
                }
            }
            SignalField::Fatal => self.fatal = !self.fatal,
            SignalField::Device => {}
            SignalField::Event => self.event = cycle(self.event, delta, NicEvent::ALL.len()),
            SignalField::Watch => self.watch = cycle(self.watch, delta, WATCH_CHOICES.len()),
        }
    }

    fn request(&self) -> Result<ClusterRequest, String> {
        self.inject_request().map(|request| ClusterRequest::InjectSignal(Box::new(request)))
    }

    /// The confirmation question, e.g. `Write cmd-timeout on mlx5_0 into the kernel log of node gpu-a (read by
    /// SysLogsNICDriverError, fatal)? y/n`.
    fn question(&self) -> Result<String, String> {
        let request = self.inject_request()?;
        let fatal = match &request.signal {
            KernelSignal::FallenOff { .. } => true,
            KernelSignal::Sxid { fatal, .. } => *fatal,
            KernelSignal::Nic { event, .. } => event.fatal(),
        };
        let watch = match request.watch {
            Some(timeout) => format!(", then watch up to {} s for the cordon", timeout.as_secs()),
            None => String::new(),
        };
        Ok(format!(
            "Write {} into the kernel log of node {} (read by {}{}){watch}? y/n",
            request.signal.describe(),
            request.node,
            request.signal.kind().check(),
            if fatal { ", fatal" } else { "" }
        ))
    }
}

/// The Signal row's value: short enough for its column.
fn short_title(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::FallenOff => "GPU fallen off",
        SignalKind::Sxid => "NVSwitch SXid",
        SignalKind::Nic => "NIC error",
    }
}

fn parse_number(what: &str, text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("give the {what} number"));
    }
    text.parse().map_err(|_| format!("'{text}' is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> GpuNode {
        GpuNode {
            name: "gpu-a".into(),
            ready: Some(true),
            cordoned: false,
            taints: vec![],
            gpus: Some(8),
            agent: None,
            recent_xids: vec![],
        }
    }

    #[test]
    fn each_signal_shows_its_own_rows_and_asks_before_writing() {
        let mut dialog = SignalDialog::new(&node());
        let labels = |d: &SignalDialog| d.rows().iter().map(|r| r.label).collect::<Vec<_>>();
        assert_eq!(labels(&dialog), ["Signal", "GPU", "Watch cordon"]);
        assert_eq!(
            dialog.question().unwrap(),
            "Write GPU 0 falling off the bus into the kernel log of node gpu-a (read by SysLogsGPUFallenOff, fatal)? y/n"
        );
        dialog.step(1);
        assert_eq!(labels(&dialog), ["Signal", "NVSwitch", "SXid", "Link", "Fatal", "Watch cordon"]);
        assert_eq!(dialog.check(SignalField::Sxid).unwrap(), "sourcetrack timeout error (First)");
        dialog.form.cursor = 2;
        dialog.step(1);
        assert_eq!(dialog.sxid, "28006", "→ goes to the next SXid faultline knows");
        dialog.link = "64".into();
        assert_eq!(dialog.inject_request().unwrap_err(), "Link: 64 is not a link 0–63");
        dialog.link = "28".into();
        assert!(dialog.question().unwrap().starts_with("Write SXid 28006 (Fatal) on link 28 of NVSwitch 0 into"));

        dialog.form.cursor = 0;
        dialog.step(1);
        assert_eq!(labels(&dialog), ["Signal", "Device", "Event", "Watch cordon"]);
        assert_eq!(dialog.check(SignalField::Event).unwrap(), "mlx5_core: firmware command timeout · fatal");
        dialog.form.cursor = 2;
        dialog.step(-1);
        assert_eq!(dialog.nic_event(), NicEvent::EfaNotReady, "← wraps to the last event");
        dialog.device = "rdmap0s6".into();
        dialog.watch = 3;
        let ClusterRequest::InjectSignal(request) = dialog.request().unwrap() else { panic!("a signal") };
        assert_eq!(request.watch, Some(Duration::from_secs(300)));
        assert_eq!(
            request.signal,
            KernelSignal::Nic { device: "rdmap0s6".into(), event: NicEvent::EfaNotReady, pci: None, netdev: None }
        );
        dialog.device = "a/b".into();
        assert!(dialog.inject_request().unwrap_err().starts_with("Device: Device `a/b` is not a device name"));
    }

    #[test]
    fn typing_goes_to_the_focused_text_row_only() {
        let mut dialog = SignalDialog::new(&node());
        dialog.type_char('x');
        assert_eq!(dialog.kind(), SignalKind::FallenOff, "the Signal row is a choice");
        dialog.move_cursor(1);
        dialog.type_char('3');
        assert_eq!(dialog.gpu, "3");
        assert!(dialog.check(SignalField::Gpu).is_ok());
        dialog.gpu = "9".into();
        assert_eq!(dialog.check(SignalField::Gpu).unwrap(), "⚠ the node reports 8 GPUs");
    }
}
