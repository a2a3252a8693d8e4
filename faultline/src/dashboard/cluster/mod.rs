//! The dashboard's cluster view (`v`): GPU nodes with their cordon state, taints and agent, the selected node's
//! recent XID events, the active faults with their countdown, a log of what the view did, and the dialogs that
//! act on the cluster.
//!
//! - this file: [`ClusterView`], the view's model, changed only by the UI thread (keys, and [`ClusterEvent`]s
//!   from the worker); what it wants done leaves as [`WorkerRequest`]s in [`ClusterView::outbox`];
//! - [`worker`]: the background thread that makes every Kubernetes call, through the cluster action layer
//!   ([`crate::cluster::action`]);
//! - [`xid_dialog`]: the inject-XID dialog's model;
//! - [`signal_dialog`]: the kernel-log signal dialog's model (GPU fallen off the bus, NVSwitch SXid, NIC error);
//! - [`form`]: what the partition and shim dialogs share, and the recover / arm questions;
//! - [`partition_dialog`], [`shim_dialog`]: the create-partition and shim-rollout dialogs' models.

pub mod form;
pub mod keys;
pub mod partition_dialog;
pub mod shim_dialog;
pub mod signal_dialog;
pub mod worker;
pub mod xid_dialog;

use std::collections::VecDeque;
use std::time::SystemTime;

pub use crate::cluster::action::ClusterRequest;
use crate::cluster::faults::Fault;
use crate::cluster::nodes::GpuNode;
use crate::cluster::xid_inject::XidInjectRequest;
use crate::output::plural;
pub use worker::{ClusterEvent, WorkerRequest};

/// Log lines kept (older ones are dropped).
pub const LOG_LEN: usize = 200;

/// How a log line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// A step.
    Info,
    /// Something finished well.
    Ok,
    /// Something failed.
    Error,
    /// A "still waiting" line: the next one replaces it.
    Waiting,
}

/// One line of the view's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// What happened.
    pub text: String,
    /// How to show it.
    pub kind: LogKind,
}

/// Which table the selection keys move in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Focus {
    /// The GPU nodes.
    #[default]
    Nodes,
    /// The active faults.
    Faults,
}

/// The cluster view's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    /// The worker was asked to connect (the view was opened at least once).
    pub opened: bool,
    /// The API server, once connected.
    pub server: Option<String>,
    /// The GPU nodes, as last listed.
    pub nodes: Vec<GpuNode>,
    /// When they were listed.
    pub listed_at: Option<SystemTime>,
    /// Why the last refresh failed (cleared by the next success).
    pub error: Option<String>,
    /// What the worker is doing now.
    pub busy: Option<String>,
    /// The selected node's name (kept across refreshes).
    pub selected: Option<String>,
    /// The kubeconfig context's namespace, once connected: the dialogs propose it.
    pub namespace: Option<String>,
    /// The fault ledger's objects, as last listed (all namespaces).
    pub faults: Vec<Fault>,
    /// What the last listing could not look at (e.g. Chaos Mesh not installed).
    pub fault_notes: Vec<String>,
    /// When the faults were listed.
    pub faults_listed_at: Option<SystemTime>,
    /// Why the last listing of the faults failed (cleared by the next success).
    pub faults_error: Option<String>,
    /// The selected fault row's key ([`fault_key`], kept across refreshes).
    pub selected_fault: Option<String>,
    /// Which table the selection keys move in.
    pub focus: Focus,
    /// What the view did, oldest first, at most [`LOG_LEN`].
    pub log: VecDeque<LogLine>,
    /// Requests for the worker.
    pub outbox: Vec<WorkerRequest>,
}

impl ClusterView {
    /// The view is shown: connect (the first time) and keep the nodes fresh.
    pub fn open(&mut self) {
        if !self.opened {
            self.opened = true;
            self.log(LogKind::Info, "connecting to the cluster (kubeconfig, like kubectl)…".to_string());
        }
        self.outbox.push(WorkerRequest::Watch(true));
    }

    /// The view is hidden: no more refreshes.
    pub fn close(&mut self) {
        if self.opened {
            self.outbox.push(WorkerRequest::Watch(false));
        }
    }

    /// `r`: list the nodes now.
    pub fn refresh(&mut self) {
        self.outbox.push(WorkerRequest::Refresh);
    }

    /// Sends a confirmed injection to the worker.
    pub fn inject(&mut self, request: XidInjectRequest) {
        let request = ClusterRequest::InjectXid(Box::new(request));
        let line = format!("{}…", request.busy());
        self.act(request, line);
    }

    /// Sends a confirmed request to the worker, logging `line` first.
    pub fn act(&mut self, request: ClusterRequest, line: String) {
        self.log(LogKind::Info, line);
        self.outbox.push(WorkerRequest::Act(request));
    }

    /// Tab: the other table.
    pub fn switch_focus(&mut self) {
        self.focus = match self.focus {
            Focus::Nodes => Focus::Faults,
            Focus::Faults => Focus::Nodes,
        };
    }

    /// The selected fault row.
    pub fn selected_fault(&self) -> Option<&Fault> {
        let key = self.selected_fault.as_deref()?;
        self.faults.iter().find(|fault| fault_key(fault) == key)
    }

    /// The selected fault's row.
    pub fn selected_fault_index(&self) -> Option<usize> {
        let key = self.selected_fault.as_deref()?;
        self.faults.iter().position(|fault| fault_key(fault) == key)
    }

    /// Moves the selection of the focused table by `delta` rows, clamped.
    pub fn move_focused(&mut self, delta: isize) {
        match self.focus {
            Focus::Nodes => self.move_selection(delta),
            Focus::Faults if !self.faults.is_empty() => {
                let at = self.selected_fault_index().unwrap_or(0) as isize;
                let next = at.saturating_add(delta).clamp(0, self.faults.len() as isize - 1) as usize;
                self.selected_fault = Some(fault_key(&self.faults[next]));
            }
            Focus::Faults => {}
        }
    }

    /// Selects fault row `index` if there is one.
    pub fn select_fault_index(&mut self, index: usize) {
        if let Some(fault) = self.faults.get(index) {
            self.selected_fault = Some(fault_key(fault));
        }
    }

    /// Takes the requests for the worker.
    pub fn take_requests(&mut self) -> Vec<WorkerRequest> {
        std::mem::take(&mut self.outbox)
    }

    /// The selected node.
    pub fn selected_node(&self) -> Option<&GpuNode> {
        let name = self.selected.as_deref()?;
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The selected node's row.
    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_deref()?;
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Moves the selection by `delta` rows, clamped.
    pub fn move_selection(&mut self, delta: isize) {
        if self.nodes.is_empty() {
            return;
        }
        let at = self.selected_index().unwrap_or(0) as isize;
        let next = at.saturating_add(delta).clamp(0, self.nodes.len() as isize - 1) as usize;
        self.selected = Some(self.nodes[next].name.clone());
    }

    /// Selects row `index` if there is one.
    pub fn select_index(&mut self, index: usize) {
        if let Some(node) = self.nodes.get(index) {
            self.selected = Some(node.name.clone());
        }
    }

    /// Applies a worker event; returns a line for the status bar when the user should hear about it at once
    /// (`(text, is_error)`).
    pub fn on_event(&mut self, event: ClusterEvent) -> Option<(String, bool)> {
        match event {
            ClusterEvent::Busy(what) => {
                self.busy = Some(what);
                None
            }
            ClusterEvent::Connected { server, namespace } => {
                self.log(LogKind::Info, format!("connected to {server} (namespace {namespace})"));
                self.server = Some(server);
                self.namespace = Some(namespace);
                None
            }
            ClusterEvent::Faults { listing, at } => {
                if self.faults_error.take().is_some() {
                    self.log(LogKind::Ok, "listed the faults again".to_string());
                }
                self.faults = listing.faults;
                self.fault_notes = listing.notes;
                self.faults_listed_at = Some(at);
                if self.selected_fault_index().is_none() {
                    self.selected_fault = self.faults.first().map(fault_key);
                }
                None
            }
            ClusterEvent::FaultsFailed(message) => {
                if self.faults_error.as_deref() != Some(message.as_str()) {
                    self.log(LogKind::Error, format!("cannot list the faults: {message}"));
                }
                self.faults_error = Some(message);
                None
            }
            ClusterEvent::Progress(step) => {
                let kind = if step.is_waiting() { LogKind::Waiting } else { LogKind::Info };
                self.log(kind, step.to_string());
                None
            }
            ClusterEvent::Done(done) => {
                self.busy = None;
                let (text, failed) = match done {
                    Ok(outcome) => (outcome.to_string(), outcome.failed()),
                    Err(failure) => (failure.to_string(), true),
                };
                self.log(if failed { LogKind::Error } else { LogKind::Ok }, text.clone());
                Some((text, failed))
            }
            ClusterEvent::Nodes { nodes, at } => {
                self.busy = None;
                if self.error.take().is_some() {
                    self.log(LogKind::Ok, format!("listed {} GPU node{} again", nodes.len(), plural(nodes.len())));
                }
                self.nodes = nodes;
                self.listed_at = Some(at);
                if self.selected_index().is_none() {
                    self.selected = self.nodes.first().map(|node| node.name.clone());
                }
                None
            }
            ClusterEvent::RefreshFailed(message) => {
                self.busy = None;
                // Logged once per outage, not at every refresh.
                if self.error.as_deref() != Some(message.as_str()) {
                    self.log(LogKind::Error, message.clone());
                }
                self.error = Some(message);
                None
            }
        }
    }

    fn log(&mut self, kind: LogKind, text: String) {
        if self.log.back().is_some_and(|last| last.kind == LogKind::Waiting) {
            self.log.pop_back();
        }
        self.log.push_back(LogLine { text, kind });
        while self.log.len() > LOG_LEN {
            self.log.pop_front();
        }
    }
}

/// What identifies a fault row across refreshes: one fault id can have several objects.
pub fn fault_key(fault: &Fault) -> String {
    format!("{}/{}/{}/{}", fault.fault_id, fault.object_kind, fault.namespace.as_deref().unwrap_or(""), fault.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::cluster::action::{ClusterOutcome, ClusterProgress};
    use crate::cluster::xid_inject::{Progress, WatchOutcome, XidInjectResult};
    use crate::node::XidReport;

    fn node(name: &str) -> GpuNode {
        GpuNode {
            name: name.into(),
            ready: Some(true),
            cordoned: false,
            taints: vec![],
            gpus: Some(8),
            agent: None,
            recent_xids: vec![],
        }
    }

    fn nodes(names: &[&str]) -> ClusterEvent {
        ClusterEvent::Nodes { nodes: names.iter().map(|n| node(n)).collect(), at: SystemTime::UNIX_EPOCH }
    }

    #[test]
    fn opening_connects_once_and_closing_stops_the_refreshes() {
        let mut view = ClusterView::default();
        view.close();
        assert!(view.take_requests().is_empty(), "never opened: nothing to stop");
        view.open();
        view.refresh();
        view.close();
        view.open();
        assert_eq!(
            view.take_requests(),
            vec![
                WorkerRequest::Watch(true),
                WorkerRequest::Refresh,
                WorkerRequest::Watch(false),
                WorkerRequest::Watch(true)
            ]
        );
        assert_eq!(view.log.len(), 1, "{:?}", view.log);
    }

    #[test]
    fn the_selection_follows_the_node_across_refreshes() {
        let mut view = ClusterView::default();
        view.on_event(nodes(&["gpu-a", "gpu-b", "gpu-c"]));
        assert_eq!(view.selected.as_deref(), Some("gpu-a"));
        view.move_selection(5);
        assert_eq!(view.selected.as_deref(), Some("gpu-c"));
        view.on_event(nodes(&["gpu-0", "gpu-c"]));
        assert_eq!(view.selected_index(), Some(1), "gpu-c kept although it moved");
        view.on_event(nodes(&["gpu-0"]));
        assert_eq!(view.selected.as_deref(), Some("gpu-0"), "gone: the first node");
        view.move_selection(-3);
        assert_eq!(view.selected.as_deref(), Some("gpu-0"));
    }

    #[test]
    fn errors_are_kept_until_a_refresh_works_and_logged_once() {
        let mut view = ClusterView::default();
        view.on_event(ClusterEvent::Busy("listing GPU nodes".into()));
        assert!(view.busy.is_some());
        for _ in 0..3 {
            view.on_event(ClusterEvent::RefreshFailed("cannot list nodes (https://k): refused".into()));
        }
        assert_eq!(view.busy, None);
        assert_eq!(view.error.as_deref(), Some("cannot list nodes (https://k): refused"));
        assert_eq!(view.log.iter().filter(|l| l.kind == LogKind::Error).count(), 1);
        view.on_event(nodes(&["gpu-a"]));
        assert_eq!(view.error, None);
        assert_eq!(view.log.back().map(|l| l.text.as_str()), Some("listed 1 GPU node again"));
    }

    #[test]
    fn progress_lines_replace_the_waiting_line_and_the_result_reaches_the_status_bar() {
        let mut view = ClusterView::default();
        view.inject(XidInjectRequest::new("gpu-a", 1, 79));
        assert!(
            matches!(view.take_requests().as_slice(), [WorkerRequest::Act(ClusterRequest::InjectXid(r))] if r.gpu == 1)
        );
        view.on_event(ClusterEvent::Progress(ClusterProgress::Xid(Progress::Agent { pod: "faultline-node-a".into() })));
        for elapsed in [2, 4, 6] {
            let waiting = Progress::Waiting { elapsed: Duration::from_secs(elapsed), taints: vec![] };
            view.on_event(ClusterEvent::Progress(ClusterProgress::Xid(waiting)));
        }
        let texts: Vec<&str> = view.log.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(texts[2], "waiting for the node to be cordoned… 6 s (taints: none)");
        let report = XidReport {
            fault_id: "fl-1".into(),
            xid: 79,
            xid_name: "GPU has fallen off the bus".into(),
            severity: "critical".into(),
            gpu: 1,
            pci: "0000:3b:00.0".into(),
            pci_source: "driver".into(),
            uuid: None,
            uuid_source: None,
            mapping_line: None,
            nvl5: None,
            line: String::new(),
            dry_run: false,
            confirmed: true,
            kmsg_seq: Some(7),
            kmsg_priority: Some(11),
        };
        let result = XidInjectResult {
            fault_id: "fl-1".into(),
            node: "gpu-a".into(),
            pod: "faultline-node-a".into(),
            agent: report,
            event: Some("gpu-a.fl-1".into()),
            watch: Some(WatchOutcome { cordoned: false, waited_s: 300.0, taints: vec![] }),
        };
        let said = view
            .on_event(ClusterEvent::Done(Ok(Box::new(ClusterOutcome::Xid(Box::new(result))))))
            .expect("a status line");
        assert_eq!(
            said.0,
            "XID 79 (GPU has fallen off the bus) injected on GPU 1 (PCI 0000:3b:00.0) of node gpu-a: fault fl-1; not \
             cordoned within 300.0 s (is NVSentinel running on the node?)"
        );
        assert!(said.1, "a watch that timed out is a failure");
        assert_eq!(view.log.len(), 3, "the result replaced the waiting line");
    }
}
