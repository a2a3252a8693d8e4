//! The dashboard's model: everything the screen shows ([`App`]) and the one function that changes it
//! ([`update`]), fed with [`Action`]s — key presses, mouse events, resizes, and the engine's snapshots and job
//! outcomes. Changes to processes leave as [`Command`]s in [`App::outbox`]; the run loop hands them to the engine,
//! which carries them out through `crate::request::execute`. The cluster view's state is [`App::cluster`]; its
//! requests leave through [`ClusterView::take_requests`] for the cluster worker.
//!
//! A key goes to whatever has the focus: an open dialog (the process dialogs answer with a [`Reply`]), the filter
//! being typed, or the view shown. The handlers live with what they handle: the process view's in
//! `processes/` (`keys`, and `on_key` / `on_intent` of the list, the editor and each dialog), the cluster view's in
//! `cluster/keys.rs`. This file dispatches, keeps the process list's selection and the detail panes in step, and
//! handles the mouse.

use std::sync::Arc;

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use k8s_openapi::jiff::Timestamp;
use ratatui::layout::{Position, Rect};

use super::cluster::form::Ask;
use super::cluster::partition_dialog::PartitionDialog;
use super::cluster::shim_dialog::ShimDialog;
use super::cluster::signal_dialog::SignalDialog;
use super::cluster::xid_dialog::XidDialog;
use super::cluster::{ClusterEvent, ClusterView, Focus};
use super::keys::{self, Context, Intent, KeyBindings};
use super::processes::dump::DumpDialog;
use super::processes::editor::Editor;
use super::processes::form::Reply;
use super::processes::list::{placed, Moved, ProcessList};
use super::processes::remote::RemoteOrder;
use super::processes::replay::ReplayDialog;
use super::processes::sampler::{Command, Job, ProcessRow, Snapshot, Update};
use super::render::{self, theme::Theme};

/// The panes Tab moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The process list.
    List,
    /// The rate chart.
    Chart,
    /// The strategy in force.
    Strategy,
    /// The per-hook table.
    Hooks,
    /// The recording tail.
    Recording,
}

impl Pane {
    const ORDER: [Pane; 5] = [Pane::List, Pane::Chart, Pane::Strategy, Pane::Hooks, Pane::Recording];

    /// The pane `delta` steps after this one, wrapping.
    pub fn step(self, delta: isize) -> Pane {
        let at = Self::ORDER.iter().position(|p| *p == self).unwrap_or(0) as isize;
        Self::ORDER[(at + delta).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

/// What the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Shimmed processes on this machine.
    Processes,
    /// GPU nodes of the Kubernetes cluster.
    Cluster,
}

/// What is drawn over the main screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Nothing.
    None,
    /// The key help, scrolled by this many lines.
    Help(u16),
    /// The strategy editor.
    Editor(Box<Editor>),
    /// Dump the recording.
    Dump(DumpDialog),
    /// Replay the recording.
    Replay(ReplayDialog),
    /// Inject an XID on a cluster node.
    Xid(Box<XidDialog>),
    /// Write another kernel-log signal on a cluster node.
    Signal(Box<SignalDialog>),
    /// Create a network partition.
    Partition(Box<PartitionDialog>),
    /// Roll a shim into a workload.
    Shim(Box<ShimDialog>),
    /// A yes/no question about a cluster action (recover a fault, arm a node).
    Ask(Box<Ask>),
}

/// The status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// What to say.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
}

/// Everything that can happen to the dashboard.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// A click or wheel turn.
    Mouse(MouseEvent),
    /// The terminal's new size.
    Resize(u16, u16),
    /// From the engine.
    Engine(Update),
    /// From the cluster worker.
    Cluster(ClusterEvent),
}

/// The dashboard's state.
pub struct App {
    /// The snapshot on screen.
    pub snapshot: Arc<Snapshot>,
    /// The newest snapshot (differs from `snapshot` while frozen).
    pub latest: Arc<Snapshot>,
    /// `f`: the screen keeps showing `snapshot`.
    pub frozen: bool,
    /// The pane with keyboard focus.
    pub pane: Pane,
    /// A dialog or the help.
    pub overlay: Overlay,
    /// The process list: filter, sort, selection.
    pub list: ProcessList,
    /// The status line.
    pub status: Option<Status>,
    /// `--read-only`.
    pub read_only: bool,
    /// Colours or not.
    pub theme: Theme,
    /// Key bindings.
    pub keys: KeyBindings,
    /// The terminal size.
    pub size: (u16, u16),
    /// Tail records hidden below the view (0 follows the newest).
    pub tail_scroll: usize,
    /// First visible hook row.
    pub hooks_scroll: usize,
    /// Leave the run loop.
    pub quit: bool,
    /// Commands for the engine.
    pub outbox: Vec<Command>,
    /// Commands for processes on cluster nodes, for the cluster feed.
    pub remote_outbox: Vec<RemoteOrder>,
    /// Processes or cluster.
    pub view: View,
    /// The cluster view.
    pub cluster: ClusterView,
    /// The clock the fault countdowns are computed with at render time (tests fix it).
    pub clock: fn() -> Timestamp,
}

impl App {
    /// A dashboard with nothing sampled yet.
    pub fn new(read_only: bool, wanted_pid: Option<u32>, theme: Theme) -> App {
        let empty = Arc::new(Snapshot::default());
        App {
            snapshot: empty.clone(),
            latest: empty,
            frozen: false,
            pane: Pane::List,
            overlay: Overlay::None,
            list: ProcessList::new(wanted_pid),
            status: None,
            read_only,
            theme,
            keys: KeyBindings::default(),
            size: (80, 24),
            tail_scroll: 0,
            hooks_scroll: 0,
            quit: false,
            outbox: Vec::new(),
            remote_outbox: Vec::new(),
            view: View::Processes,
            cluster: ClusterView::default(),
            clock: Timestamp::now,
        }
    }

    /// The whole screen.
    pub fn area(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Where everything is on the main screen.
    pub fn areas(&self) -> render::Areas {
        render::layout(self.area(), self.visible_rows().len())
    }

    /// The rows the list shows: filtered, live processes first, sorted ([`ProcessList::visible`]).
    pub fn visible_rows(&self) -> Vec<&ProcessRow> {
        self.list.visible(&self.snapshot.rows)
    }

    /// The selected row, if visible.
    pub fn selected_row(&self) -> Option<&ProcessRow> {
        self.list.selected_row(&self.snapshot.rows)
    }

    /// Takes the commands for the engine.
    pub fn take_outbox(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.outbox)
    }

    /// Takes the commands for the cluster feed.
    pub fn take_remote_orders(&mut self) -> Vec<RemoteOrder> {
        std::mem::take(&mut self.remote_outbox)
    }

    /// Puts `text` on the status line, as an error or not.
    pub(super) fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status { text: text.into(), error });
    }

    /// Hands `job` to the engine.
    pub(super) fn run(&mut self, job: Job) {
        self.outbox.push(Command::Run(job));
    }

    /// How many processes the list shows at once.
    pub(super) fn list_height(&self) -> usize {
        usize::from(self.areas().list.height.saturating_sub(3)).max(1)
    }

    /// Keeps the list's selection valid and on screen ([`ProcessList::reselect`]).
    pub(super) fn reselect(&mut self) {
        let page = self.list_height();
        let moved = self.list.reselect(&self.snapshot.rows, page);
        self.refocus(moved);
    }

    /// After the selection moved: the detail panes start from the top and the engine samples the new process.
    pub(super) fn refocus(&mut self, moved: Option<Moved>) {
        if let Some(Moved(key)) = moved {
            self.tail_scroll = 0;
            self.hooks_scroll = 0;
            self.outbox.push(Command::Focus(key));
        }
    }

    fn ensure_visible(&mut self) {
        let page = self.list_height();
        self.list.ensure_visible(&self.snapshot.rows, page);
    }

    fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.latest = snapshot;
        if !self.frozen {
            self.snapshot = self.latest.clone();
        }
        self.reselect();
    }

    fn on_key(&mut self, event: KeyEvent) {
        if keys::is_interrupt(&event) {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::None if self.view == View::Cluster => self.on_cluster_key(&event),
            Overlay::None if self.list.filtering => {
                self.list.on_filter_key(&self.keys, &event);
                self.reselect();
            }
            Overlay::None => self.on_main_key(&event),
            Overlay::Help(scroll) => self.on_help_key(scroll, &event),
            Overlay::Editor(mut editor) => {
                let reply = editor.on_key(&self.keys, &event);
                self.follow(reply, Overlay::Editor(editor));
            }
            Overlay::Dump(mut dialog) => {
                let reply = dialog.on_key(&self.keys, &event);
                self.follow(reply, Overlay::Dump(dialog));
            }
            Overlay::Replay(mut dialog) => {
                let reply = dialog.on_key(&self.keys, &event);
                self.follow(reply, Overlay::Replay(dialog));
            }
            cluster @ (Overlay::Xid(_)
            | Overlay::Signal(_)
            | Overlay::Partition(_)
            | Overlay::Shim(_)
            | Overlay::Ask(_)) => {
                self.on_cluster_dialog_key(cluster, &event);
            }
        }
    }

    fn on_help_key(&mut self, scroll: u16, event: &KeyEvent) {
        self.overlay = match self.keys.intent(Context::Help, event) {
            Some(Intent::Up) => Overlay::Help(scroll.saturating_sub(1)),
            Some(Intent::Down) => Overlay::Help(scroll.saturating_add(1)),
            Some(Intent::Back) => Overlay::None,
            _ => Overlay::Help(scroll),
        }
    }

    /// Does what a process dialog's [`Reply`] asks; `dialog` is put back over the screen while it stays open.
    fn follow(&mut self, reply: Reply, dialog: Overlay) {
        match reply {
            Reply::Open => self.overlay = dialog,
            Reply::Refused(message) => {
                self.say(message, true);
                self.overlay = dialog;
            }
            Reply::Closed(message) => {
                if let Some(message) = message {
                    self.say(message, false);
                }
            }
            Reply::Run(job, message) => {
                if let Some(message) = message {
                    self.say(message, false);
                }
                self.run(job);
            }
        }
    }

    /// `v`: processes ↔ cluster. The cluster worker is asked to connect only now, never at start-up.
    pub(super) fn switch_view(&mut self) {
        self.status = None;
        self.view = match self.view {
            View::Processes => {
                self.cluster.open();
                View::Cluster
            }
            View::Cluster => {
                self.cluster.close();
                View::Processes
            }
        };
    }

    fn on_mouse(&mut self, event: MouseEvent) {
        if self.overlay != Overlay::None {
            return;
        }
        if self.view == View::Cluster {
            self.on_cluster_mouse(event);
            return;
        }
        let areas = self.areas();
        let at = Position::new(event.column, event.row);
        let pane = [
            (areas.list, Pane::List),
            (areas.chart, Pane::Chart),
            (areas.strategy, Pane::Strategy),
            (areas.hooks, Pane::Hooks),
            (areas.recording, Pane::Recording),
        ]
        .into_iter()
        .find(|(area, _)| area.contains(at))
        .map(|(_, pane)| pane);
        let Some(pane) = pane else { return };
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.pane = pane;
                if pane == Pane::List {
                    self.click_list(areas.list, at);
                }
            }
            MouseEventKind::ScrollDown => {
                self.pane = pane;
                self.scroll(if pane == Pane::Recording { 3 } else { 1 });
            }
            MouseEventKind::ScrollUp => {
                self.pane = pane;
                self.scroll(if pane == Pane::Recording { -3 } else { -1 });
            }
            _ => {}
        }
    }

    /// A click on a node row selects it; the wheel moves the selection.
    fn on_cluster_mouse(&mut self, event: MouseEvent) {
        let areas = render::cluster::layout(self.area(), &self.cluster);
        let at = Position::new(event.column, event.row);
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(index) = render::cluster::row_at(areas.nodes, &self.cluster, at) {
                    self.cluster.focus = Focus::Nodes;
                    self.cluster.select_index(index);
                } else if let Some(index) = render::cluster::fault_row_at(areas.faults, &self.cluster, at) {
                    self.cluster.focus = Focus::Faults;
                    self.cluster.select_fault_index(index);
                }
            }
            MouseEventKind::ScrollDown => self.cluster.move_focused(1),
            MouseEventKind::ScrollUp => self.cluster.move_focused(-1),
            _ => {}
        }
    }

    fn click_list(&mut self, list: Rect, at: Position) {
        let header = list.y + 1;
        let page = self.list_height();
        if at.y == header {
            if let Some(column) = render::process_list::column_at(list, placed(&self.snapshot.rows), at.x) {
                self.list.sort_by(&self.snapshot.rows, page, column);
            }
        } else if at.y > header && at.y + 1 < list.y + list.height {
            let moved = self.list.click(&self.snapshot.rows, page, usize::from(at.y - header - 1));
            self.refocus(moved);
        }
    }
}

/// Applies `action` to `app`.
pub fn update(app: &mut App, action: Action) {
    match action {
        Action::Engine(Update::Snapshot(snapshot)) => app.on_snapshot(snapshot),
        Action::Engine(Update::Outcome(outcome)) => app.say(outcome.message, !outcome.ok),
        Action::Engine(Update::Remote(orders)) => app.remote_outbox.extend(orders),
        Action::Cluster(event) => {
            if let Some((text, error)) = app.cluster.on_event(event) {
                app.say(text, error);
            }
        }
        Action::Resize(width, height) => {
            app.size = (width, height);
            app.ensure_visible();
        }
        Action::Key(event) => app.on_key(event),
        Action::Mouse(event) => app.on_mouse(event),
    }
}
