//! The cluster view's keys: the view's own ([`Context::Cluster`]: move, refresh, open a dialog, ask to recover or
//! arm) and those of its dialogs — the inject-XID and kernel-log signal dialogs, the partition and shim dialogs ([`ClusterForm`]) with
//! their y/n confirmation ([`Context::Confirm`]), and the recover / arm questions ([`Ask`]). `--read-only` refuses
//! every cluster action here ([`Access::allows`] decides), before a dialog opens; the worker's `execute` refuses it
//! again.
//!
//! These are methods of [`App`]: a key here changes the overlay, the status line and the [`ClusterView`](super::ClusterView) together.

use std::time::Duration;

use crossterm::event::KeyEvent;

use super::form::{Ask, ClusterForm};
use super::partition_dialog::PartitionDialog;
use super::shim_dialog::ShimDialog;
use super::signal_dialog::SignalDialog;
use super::xid_dialog::XidDialog;
use super::{ClusterRequest, Focus};
use crate::cluster::action::{Access, ArmRequest, ClusterChange};
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::keys::{self, Context, Intent};

/// The XID `a` arms the selected node with: the catalogue's default (79, the GPU falling off the bus).
pub const ARM_XID: u32 = shm_proto::xid::DEFAULT_XID;

/// How long `a` arms the node for (the CLI's default); the reaper disarms it then.
pub const ARM_TTL: Duration = Duration::from_secs(30 * 60);

impl App {
    /// A key on the cluster view with no dialog open ([`Context::Cluster`]).
    pub(in crate::dashboard) fn on_cluster_key(&mut self, event: &KeyEvent) {
        let Some(intent) = self.keys.intent(Context::Cluster, event) else { return };
        match intent {
            Intent::Quit => self.quit = true,
            Intent::Help => self.overlay = Overlay::Help(0),
            Intent::SwitchView => self.switch_view(),
            Intent::NextPane => self.cluster.switch_focus(),
            Intent::Up => self.cluster.move_focused(-1),
            Intent::Down => self.cluster.move_focused(1),
            Intent::Top => self.cluster.move_focused(isize::MIN / 2),
            Intent::Bottom => self.cluster.move_focused(isize::MAX / 2),
            Intent::Refresh => {
                self.cluster.refresh();
                self.say("listing the GPU nodes and the faults…", false);
            }
            Intent::InjectXid => self.open_xid_dialog(),
            Intent::InjectSignal => self.open_signal_dialog(),
            Intent::RecoverFault => self.ask_recover(),
            Intent::ArmNode => self.ask_arm(),
            Intent::CreatePartition => self.open_partition_dialog(),
            Intent::RolloutShim => self.open_shim_dialog(),
            Intent::Back => self.status = None,
            _ => {}
        }
    }

    /// A key in a cluster dialog or question; `overlay` was taken out of [`App::overlay`] and is put back unless
    /// the key closed it. Other overlays are the process side's, never passed here.
    pub(in crate::dashboard) fn on_cluster_dialog_key(&mut self, overlay: Overlay, event: &KeyEvent) {
        match overlay {
            Overlay::Xid(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), event) {
                    self.overlay = Overlay::Xid(dialog);
                }
            }
            Overlay::Signal(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), event) {
                    self.overlay = Overlay::Signal(dialog);
                }
            }
            Overlay::Partition(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), event) {
                    self.overlay = Overlay::Partition(dialog);
                }
            }
            Overlay::Shim(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), event) {
                    self.overlay = Overlay::Shim(dialog);
                }
            }
            Overlay::Ask(ask) => match self.keys.intent(Context::Confirm, event) {
                Some(Intent::Yes) => self.confirmed(ask.request),
                Some(Intent::No) => self.say("nothing done", false),
                _ => self.overlay = Overlay::Ask(ask),
            },
            other => self.overlay = other,
        }
    }

    /// Whether `--read-only` refuses `action` ([`Access::allows`] decides); says so if it does. Asked before a
    /// dialog opens and again when it is confirmed (the worker's `execute` asks a third time).
    fn refused(&mut self, action: ClusterChange) -> bool {
        match (Access { read_only: self.read_only }).allows(action) {
            Ok(()) => false,
            Err(refusal) => {
                self.say(refusal.to_string(), true);
                true
            }
        }
    }

    /// `y`: the request goes to the worker.
    fn confirmed(&mut self, request: ClusterRequest) {
        if request.action().is_some_and(|action| self.refused(action)) {
            return;
        }
        let started = format!("{}…", request.busy());
        self.say(started.clone(), false);
        self.cluster.act(request, started);
    }

    /// `R`: asks to recover the selected fault.
    fn ask_recover(&mut self) {
        if self.refused(ClusterChange::Recover) {
            return;
        }
        // Only from the fault table, where the selection is shown: R must never recover a fault not in view.
        let fault = self.cluster.selected_fault().filter(|_| self.cluster.focus == Focus::Faults);
        let Some(fault) = fault else {
            let tab = self.keys.keys_of(Context::Cluster, Intent::NextPane);
            let why = if self.cluster.focus == Focus::Faults { "no active fault" } else { "no fault selected" };
            self.say(format!("{why}: {tab} to the fault table and pick one"), true);
            return;
        };
        let id = fault.fault_id.clone();
        let objects = self.cluster.faults.iter().filter(|f| f.fault_id == id).count();
        let what = match objects {
            1 => format!("{} {}", fault.object_kind, fault.name),
            n => format!("its {n} objects"),
        };
        self.overlay = Overlay::Ask(Box::new(Ask {
            title: " Recover a fault ".to_string(),
            question: format!("Recover fault {id} ({what}: {})? y/n", fault.summary),
            request: ClusterRequest::recover_fault(&id),
        }));
    }

    /// `a`: asks to arm the selected node.
    fn ask_arm(&mut self) {
        if self.refused(ClusterChange::ArmNode) {
            return;
        }
        let Some(node) = self.cluster.selected_node().map(|n| n.name.clone()) else {
            self.say("no GPU node selected (the list is empty until the cluster answers)", true);
            return;
        };
        self.overlay = Overlay::Ask(Box::new(Ask {
            title: format!(" Arm node {node} "),
            question: format!(
                "Arm node {node}: CUDA shims started there fail from their first call as with XID {ARM_XID} \
                 (restarted pods fail again), until recovered or for {} min? y/n",
                ARM_TTL.as_secs() / 60
            ),
            request: ClusterRequest::ArmNode(ArmRequest { node: node.clone(), xid: ARM_XID, ttl: ARM_TTL }),
        }));
    }

    /// `p`: the create-partition dialog, in the context's namespace.
    fn open_partition_dialog(&mut self) {
        if !self.refused(ClusterChange::CreatePartition) {
            self.overlay = Overlay::Partition(Box::new(PartitionDialog::new(&self.workload_namespace())));
        }
    }

    /// `s`: the shim dialog; Pin would use the selected node.
    fn open_shim_dialog(&mut self) {
        if !self.refused(ClusterChange::EnableShim) {
            let node = self.cluster.selected_node().map(|n| n.name.clone());
            let dialog = ShimDialog::new(&self.workload_namespace(), node.as_deref());
            self.overlay = Overlay::Shim(Box::new(dialog));
        }
    }

    /// The namespace the dialogs propose: the context's, once connected.
    fn workload_namespace(&self) -> String {
        self.cluster.namespace.clone().unwrap_or_else(|| "default".to_string())
    }

    /// Handles a key in a cluster dialog (partition, shim, XID); `false` closes it.
    fn on_form_key<D: ClusterForm>(&mut self, dialog: &mut D, event: &KeyEvent) -> bool {
        if dialog.state().confirming {
            match self.keys.intent(Context::Confirm, event) {
                Some(Intent::Yes) => match dialog.request() {
                    Ok(request) => {
                        self.confirmed(request);
                        return false;
                    }
                    Err(message) => {
                        dialog.state_mut().confirming = false;
                        self.say(format!("{}: {message}", D::NOT_DONE), true);
                    }
                },
                Some(Intent::No) => dialog.state_mut().confirming = false,
                _ => {}
            }
            return true;
        }
        match self.keys.intent(Context::Form, event) {
            Some(Intent::NextField) => dialog.move_cursor(1),
            Some(Intent::PrevField) => dialog.move_cursor(-1),
            Some(Intent::Decrease) => dialog.step(-1),
            Some(Intent::Increase) => dialog.step(1),
            Some(Intent::DecreaseMore) => dialog.step(-10),
            Some(Intent::IncreaseMore) => dialog.step(10),
            Some(Intent::Toggle) if !dialog.is_typed_row() => dialog.toggle(),
            Some(Intent::ClearField) => dialog.clear_field(),
            Some(Intent::DeleteChar) => dialog.delete_char(),
            Some(Intent::Back) => {
                self.say(D::CLOSED, false);
                return false;
            }
            Some(Intent::Apply) => match dialog.question() {
                Ok(_) => dialog.state_mut().confirming = true,
                Err(message) => self.say(format!("{}: {message}", D::NOT_DONE), true),
            },
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    dialog.type_char(c);
                }
            }
        }
        true
    }

    /// `i`: the kernel-log signal dialog on the selected node.
    fn open_signal_dialog(&mut self) {
        if self.refused(ClusterChange::InjectSignal) {
            return;
        }
        match self.cluster.selected_node() {
            Some(node) => self.overlay = Overlay::Signal(Box::new(SignalDialog::new(node))),
            None => self.say("no GPU node selected (the list is empty until the cluster answers)", true),
        }
    }

    fn open_xid_dialog(&mut self) {
        if self.refused(ClusterChange::InjectXid) {
            return;
        }
        match self.cluster.selected_node() {
            Some(node) => self.overlay = Overlay::Xid(Box::new(XidDialog::new(node))),
            None => self.say("no GPU node selected (the list is empty until the cluster answers)", true),
        }
    }
}
