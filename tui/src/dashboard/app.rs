//! The dashboard's model: everything the screen shows ([`App`]) and the one function that changes it
//! ([`update`]), fed with [`Action`]s — key presses, mouse events, resizes, and the engine's snapshots and job
//! outcomes. Changes to processes leave as [`Command`]s in [`App::outbox`]; the run loop hands them to the engine,
//! which carries them out through `crate::request::execute`. The cluster view's state is [`App::cluster`]; its
//! requests leave through [`ClusterView::outbox`] for the cluster worker.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use k8s_openapi::jiff::Timestamp;
use ratatui::layout::{Position, Rect};

use super::cluster::form::{Ask, ClusterForm};
use super::cluster::partition_dialog::PartitionDialog;
use super::cluster::shim_dialog::ShimDialog;
use super::cluster::worker::{describe_request, ArmRequest};
use super::cluster::xid_dialog::XidDialog;
use super::cluster::{ClusterEvent, ClusterRequest, ClusterView, Focus};
use super::forms::{DumpDialog, Editor, ReplayDialog};
use super::keys::{self, Context, Intent, KeyBindings};
use super::render::{self, theme::Theme};
use super::sampler::{Command, Job, Key, ProcessRow, Snapshot, Update};
use crate::actions::{Change, Switch};
use crate::request::Request;
use crate::targets::Selection;

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

    fn step(self, delta: isize) -> Pane {
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
    /// Create a network partition.
    Partition(Box<PartitionDialog>),
    /// Roll a shim into a workload.
    Shim(Box<ShimDialog>),
    /// A yes/no question about a cluster action (recover a fault, arm a node).
    Ask(Box<Ask>),
}

/// The XID `a` arms the selected node with: the catalogue's default (79, the GPU falling off the bus).
pub const ARM_XID: u32 = shm_proto::xid::DEFAULT_XID;

/// How long `a` arms the node for (the CLI's default); the reaper disarms it then.
pub const ARM_TTL: Duration = Duration::from_secs(30 * 60);

/// The process list's columns, which it can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// Pid.
    Pid,
    /// Executable.
    Exe,
    /// Shim.
    Kind,
    /// Alive / dead.
    State,
    /// Injection on.
    Enabled,
    /// Mode.
    Mode,
    /// Calls per second.
    CallsPerS,
    /// Faults per second.
    FaultsPerS,
    /// Fault percentage.
    FaultPercent,
    /// Recording on.
    Recording,
}

impl SortColumn {
    /// In display order.
    pub const ALL: [SortColumn; 10] = [
        SortColumn::Pid,
        SortColumn::Exe,
        SortColumn::Kind,
        SortColumn::State,
        SortColumn::Enabled,
        SortColumn::Mode,
        SortColumn::CallsPerS,
        SortColumn::FaultsPerS,
        SortColumn::FaultPercent,
        SortColumn::Recording,
    ];

    /// The column header.
    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Pid => "PID",
            SortColumn::Exe => "EXECUTABLE",
            SortColumn::Kind => "KIND",
            SortColumn::State => "STATE",
            SortColumn::Enabled => "INJECT",
            SortColumn::Mode => "MODE",
            SortColumn::CallsPerS => "CALLS/S",
            SortColumn::FaultsPerS => "FAULTS/S",
            SortColumn::FaultPercent => "FAULT%",
            SortColumn::Recording => "REC",
        }
    }

    /// Whether the column sorts high to low before `S` reverses it (rates and switches: busiest / on first).
    pub fn high_first(self) -> bool {
        !matches!(self, SortColumn::Pid | SortColumn::Exe | SortColumn::Kind | SortColumn::Mode)
    }

    /// The arrow the header shows: ▼ when the list runs high to low.
    pub fn arrow(self, reversed: bool) -> &'static str {
        if self.high_first() != reversed {
            "▼"
        } else {
            "▲"
        }
    }

    fn next(self) -> SortColumn {
        let at = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(at + 1) % Self::ALL.len()]
    }

    fn compare(self, a: &ProcessRow, b: &ProcessRow) -> std::cmp::Ordering {
        let by_f64 = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        let primary = match self {
            SortColumn::Pid => a.key.cmp(&b.key),
            SortColumn::Exe => a.exe.cmp(&b.exe),
            SortColumn::Kind => a.key.kind.cmp(&b.key.kind),
            SortColumn::State => b.alive.cmp(&a.alive),
            SortColumn::Enabled => b.enabled.cmp(&a.enabled),
            SortColumn::Mode => a.mode.name().cmp(b.mode.name()),
            SortColumn::CallsPerS => by_f64(b.calls_per_s, a.calls_per_s),
            SortColumn::FaultsPerS => by_f64(b.faults_per_s, a.faults_per_s),
            SortColumn::FaultPercent => by_f64(b.fault_percent().unwrap_or(-1.0), a.fault_percent().unwrap_or(-1.0)),
            SortColumn::Recording => b.recording.cmp(&a.recording),
        };
        primary.then(a.key.cmp(&b.key))
    }
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
    /// The selected process.
    pub selected: Option<Key>,
    /// Select this pid when it shows up (`--pid`).
    pub wanted_pid: Option<u32>,
    /// First visible row of the list.
    pub list_offset: usize,
    /// Sort column.
    pub sort: SortColumn,
    /// Reverse order.
    pub descending: bool,
    /// The list filter.
    pub filter: String,
    /// Typing the filter.
    pub filtering: bool,
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
            selected: None,
            wanted_pid,
            list_offset: 0,
            sort: SortColumn::Pid,
            descending: false,
            filter: String::new(),
            filtering: false,
            status: None,
            read_only,
            theme,
            keys: KeyBindings::default(),
            size: (80, 24),
            tail_scroll: 0,
            hooks_scroll: 0,
            quit: false,
            outbox: Vec::new(),
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

    /// The rows the list shows: filtered, live processes first ([`crate::state::sort_live_first`]), sorted.
    pub fn visible_rows(&self) -> Vec<&ProcessRow> {
        let needle = self.filter.trim().to_ascii_lowercase();
        let mut rows: Vec<&ProcessRow> = self.snapshot.rows.iter().filter(|row| matches_filter(row, &needle)).collect();
        crate::state::sort_live_first(
            &mut rows,
            |row| row.alive,
            |a, b| if self.descending { self.sort.compare(a, b).reverse() } else { self.sort.compare(a, b) },
        );
        rows
    }

    /// The selected row, if visible.
    pub fn selected_row(&self) -> Option<&ProcessRow> {
        let key = self.selected?;
        self.snapshot.rows.iter().find(|row| row.key == key)
    }

    /// Takes the commands for the engine.
    pub fn take_outbox(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.outbox)
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status { text: text.into(), error });
    }

    fn select(&mut self, key: Option<Key>) {
        if self.selected != key {
            self.selected = key;
            self.tail_scroll = 0;
            self.hooks_scroll = 0;
            self.outbox.push(Command::Focus(key));
        }
        self.ensure_visible();
    }

    /// Keeps the selection valid (the first visible row if it vanished) and on screen.
    fn reselect(&mut self) {
        let visible: Vec<Key> = self.visible_rows().iter().map(|r| r.key).collect();
        if let Some(pid) = self.wanted_pid {
            if let Some(key) = visible.iter().find(|k| k.pid == pid) {
                self.wanted_pid = None;
                self.select(Some(*key));
                return;
            }
        }
        match self.selected {
            Some(key) if visible.contains(&key) => self.ensure_visible(),
            _ => self.select(visible.first().copied()),
        }
    }

    fn list_height(&self) -> usize {
        usize::from(self.areas().list.height.saturating_sub(3)).max(1)
    }

    fn ensure_visible(&mut self) {
        let Some(index) = self.selected_index() else { return };
        let height = self.list_height();
        if index < self.list_offset {
            self.list_offset = index;
        } else if index >= self.list_offset + height {
            self.list_offset = index + 1 - height;
        }
        let rows = self.visible_rows().len();
        self.list_offset = self.list_offset.min(rows.saturating_sub(height));
    }

    fn selected_index(&self) -> Option<usize> {
        let key = self.selected?;
        self.visible_rows().iter().position(|row| row.key == key)
    }

    fn move_selection(&mut self, delta: isize) {
        let visible: Vec<Key> = self.visible_rows().iter().map(|r| r.key).collect();
        if visible.is_empty() {
            return;
        }
        let at = self.selected_index().unwrap_or(0) as isize;
        let next = (at + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.select(Some(visible[next]));
    }

    fn scroll(&mut self, delta: isize) {
        match self.pane {
            Pane::Recording => {
                let len = self.snapshot.detail.as_ref().map_or(0, |d| d.tail.len());
                self.tail_scroll = (self.tail_scroll as isize - delta).clamp(0, len as isize) as usize;
            }
            Pane::Hooks => {
                let len = self.snapshot.detail.as_ref().map_or(0, |d| d.state.hooks.len());
                self.hooks_scroll = (self.hooks_scroll as isize + delta).clamp(0, len as isize) as usize;
            }
            _ => self.move_selection(delta),
        }
    }

    fn jump_to_end(&mut self, bottom: bool) {
        match self.pane {
            Pane::Recording => {
                self.tail_scroll = if bottom { 0 } else { self.snapshot.detail.as_ref().map_or(0, |d| d.tail.len()) };
            }
            Pane::Hooks => self.hooks_scroll = if bottom { usize::MAX / 2 } else { 0 },
            _ => self.move_selection(if bottom { isize::MAX / 2 } else { isize::MIN / 2 }),
        }
        if self.pane == Pane::Hooks {
            let len = self.snapshot.detail.as_ref().map_or(0, |d| d.state.hooks.len());
            self.hooks_scroll = self.hooks_scroll.min(len);
        }
    }

    /// A job on the selected process.
    fn on_selected(&mut self, change: Change) {
        let Some(key) = self.selected else {
            self.say("no process selected", true);
            return;
        };
        let what = change.describe().to_string();
        self.run(Job::Requests {
            requests: vec![Request::Change(change)],
            selection: Selection { pids: vec![key.pid], kind: Some(key.kind) },
            what,
        });
    }

    fn run(&mut self, job: Job) {
        self.outbox.push(Command::Run(job));
    }

    fn open_editor(&mut self) {
        let Some(row) = self.selected_row() else {
            self.say("no process selected", true);
            return;
        };
        let key = row.key;
        if self.read_only {
            let message = crate::Error::ReadOnly("open the editor").to_string();
            self.say(message, true);
            return;
        }
        if !row.alive {
            let message = crate::Error::NotRunning { pid: key.pid, kind: key.kind }.to_string();
            self.say(message, true);
            return;
        }
        match self.snapshot.detail.as_ref().filter(|d| d.key == key) {
            Some(detail) => self.overlay = Overlay::Editor(Box::new(Editor::open(detail))),
            None => self.say(format!("still reading pid {}; try again in a moment", key.pid), true),
        }
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
            Overlay::None if self.filtering => self.on_filter_key(&event),
            Overlay::None => self.on_main_key(&event),
            Overlay::Help(scroll) => {
                self.overlay = match self.keys.intent(Context::Help, &event) {
                    Some(Intent::Up) => Overlay::Help(scroll.saturating_sub(1)),
                    Some(Intent::Down) => Overlay::Help(scroll.saturating_add(1)),
                    Some(Intent::Back) => Overlay::None,
                    _ => Overlay::Help(scroll),
                }
            }
            Overlay::Editor(mut editor) => {
                if self.on_editor_key(&mut editor, &event) {
                    self.overlay = Overlay::Editor(editor);
                }
            }
            Overlay::Dump(mut dialog) => {
                if self.on_dump_key(&mut dialog, &event) {
                    self.overlay = Overlay::Dump(dialog);
                }
            }
            Overlay::Replay(mut dialog) => {
                if self.on_replay_key(&mut dialog, &event) {
                    self.overlay = Overlay::Replay(dialog);
                }
            }
            Overlay::Xid(mut dialog) => {
                if self.on_xid_key(&mut dialog, &event) {
                    self.overlay = Overlay::Xid(dialog);
                }
            }
            Overlay::Partition(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), &event) {
                    self.overlay = Overlay::Partition(dialog);
                }
            }
            Overlay::Shim(mut dialog) => {
                if self.on_form_key(dialog.as_mut(), &event) {
                    self.overlay = Overlay::Shim(dialog);
                }
            }
            Overlay::Ask(ask) => match self.keys.intent(Context::Confirm, &event) {
                Some(Intent::Yes) => self.confirmed(ask.request, ask.started),
                Some(Intent::No) => self.say("nothing done", false),
                _ => self.overlay = Overlay::Ask(ask),
            },
        }
    }

    /// `--read-only` refuses to `verb` here, before any dialog opens (the worker refuses it again).
    fn refused(&mut self, verb: &'static str) -> bool {
        if self.read_only {
            self.say(crate::Error::ReadOnly(verb).to_string(), true);
        }
        self.read_only
    }

    /// `y`: the request goes to the worker.
    fn confirmed(&mut self, request: ClusterRequest, started: String) {
        // Checked again: a dialog only opens without --read-only, but a second lock costs nothing.
        if let Some((verb, _)) = describe_request(&request) {
            if self.refused(verb) {
                return;
            }
        }
        self.say(started.clone(), false);
        self.cluster.act(request, started);
    }

    /// `R`: asks to recover the selected fault.
    fn ask_recover(&mut self) {
        if self.refused("recover faults") {
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
            request: ClusterRequest::Recover(id.clone()),
            started: format!("recovering fault {id}…"),
        }));
    }

    /// `a`: asks to arm the selected node.
    fn ask_arm(&mut self) {
        if self.refused("arm a node") {
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
            started: format!("arming node {node} with XID {ARM_XID}…"),
        }));
    }

    /// `p`: the create-partition dialog, in the context's namespace.
    fn open_partition_dialog(&mut self) {
        if !self.refused("create a partition") {
            self.overlay = Overlay::Partition(Box::new(PartitionDialog::new(&self.workload_namespace())));
        }
    }

    /// `s`: the shim dialog; Pin would use the selected node.
    fn open_shim_dialog(&mut self) {
        if !self.refused("roll a shim out") {
            let node = self.cluster.selected_node().map(|n| n.name.clone());
            let dialog = ShimDialog::new(&self.workload_namespace(), node.as_deref());
            self.overlay = Overlay::Shim(Box::new(dialog));
        }
    }

    /// The namespace the dialogs propose: the context's, once connected.
    fn workload_namespace(&self) -> String {
        self.cluster.namespace.clone().unwrap_or_else(|| "default".to_string())
    }

    /// Handles a key in the partition or shim dialog; `false` closes it.
    fn on_form_key<D: ClusterForm>(&mut self, dialog: &mut D, event: &KeyEvent) -> bool {
        if dialog.state().confirming {
            match self.keys.intent(Context::Confirm, event) {
                Some(Intent::Yes) => match dialog.request() {
                    Ok(request) => {
                        let started =
                            describe_request(&request).map(|(_, busy)| format!("{busy}…")).unwrap_or_default();
                        self.confirmed(request, started);
                        return false;
                    }
                    Err(message) => {
                        dialog.state_mut().confirming = false;
                        self.say(format!("no {}: {message}", D::NOUN), true);
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
            Some(Intent::Decrease | Intent::DecreaseMore) => dialog.step(-1),
            Some(Intent::Increase | Intent::IncreaseMore) => dialog.step(1),
            Some(Intent::Toggle)
                if dialog
                    .rows()
                    .get(dialog.state().cursor)
                    .is_some_and(|row| row.input != super::cluster::form::Input::Text) =>
            {
                dialog.toggle();
            }
            Some(Intent::ClearField) => dialog.clear_field(),
            Some(Intent::DeleteChar) => dialog.delete_char(),
            Some(Intent::Back) => {
                self.say(format!("dialog closed; no {}", D::NOUN), false);
                return false;
            }
            Some(Intent::Apply) => match dialog.question() {
                Ok(_) => dialog.state_mut().confirming = true,
                Err(message) => self.say(format!("no {}: {message}", D::NOUN), true),
            },
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    dialog.type_char(c);
                }
            }
        }
        true
    }

    /// `v`: processes ↔ cluster. The cluster worker is asked to connect only now, never at start-up.
    fn switch_view(&mut self) {
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

    fn on_cluster_key(&mut self, event: &KeyEvent) {
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
            Intent::RecoverFault => self.ask_recover(),
            Intent::ArmNode => self.ask_arm(),
            Intent::CreatePartition => self.open_partition_dialog(),
            Intent::RolloutShim => self.open_shim_dialog(),
            Intent::Back => self.status = None,
            _ => {}
        }
    }

    fn open_xid_dialog(&mut self) {
        if self.read_only {
            let message = crate::Error::ReadOnly("inject an XID").to_string();
            self.say(message, true);
            return;
        }
        match self.cluster.selected_node() {
            Some(node) => self.overlay = Overlay::Xid(Box::new(XidDialog::new(node))),
            None => self.say("no GPU node selected (the list is empty until the cluster answers)", true),
        }
    }

    /// Handles a key in the XID dialog; `false` closes it.
    fn on_xid_key(&mut self, dialog: &mut XidDialog, event: &KeyEvent) -> bool {
        if dialog.confirming {
            match self.keys.intent(Context::Confirm, event) {
                Some(Intent::Yes) => match dialog.request() {
                    // Checked again: the dialog can only have been opened without --read-only, but a second lock
                    // costs nothing.
                    Ok(_) if self.read_only => {
                        self.say(crate::Error::ReadOnly("inject an XID").to_string(), true);
                        return false;
                    }
                    Ok(request) => {
                        self.say(
                            format!("injecting XID {} on GPU {} of node {}…", request.xid, request.gpu, request.node),
                            false,
                        );
                        self.cluster.inject(request);
                        return false;
                    }
                    Err(message) => {
                        dialog.confirming = false;
                        self.say(format!("not injected: {message}"), true);
                    }
                },
                Some(Intent::No) => dialog.confirming = false,
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
            Some(Intent::Toggle) => dialog.toggle(),
            Some(Intent::ClearField) => dialog.clear_field(),
            Some(Intent::DeleteChar) => dialog.delete_char(),
            Some(Intent::Back) => {
                self.say("XID dialog closed; nothing injected", false);
                return false;
            }
            Some(Intent::Apply) => match dialog.question() {
                Ok(_) => dialog.confirming = true,
                Err(message) => self.say(format!("not injected: {message}"), true),
            },
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    dialog.type_char(c);
                }
            }
        }
        true
    }

    fn on_filter_key(&mut self, event: &KeyEvent) {
        match self.keys.intent(Context::Filter, event) {
            Some(Intent::Apply) => self.filtering = false,
            Some(Intent::Back) => {
                self.filtering = false;
                self.filter.clear();
            }
            Some(Intent::DeleteChar) => {
                self.filter.pop();
            }
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    self.filter.push(c);
                }
            }
        }
        self.list_offset = 0;
        self.reselect();
    }

    fn on_main_key(&mut self, event: &KeyEvent) {
        let Some(intent) = self.keys.intent(Context::Main, event) else { return };
        let page = self.list_height() as isize;
        match intent {
            Intent::Quit => self.quit = true,
            Intent::Help => self.overlay = Overlay::Help(0),
            Intent::NextPane => self.pane = self.pane.step(1),
            Intent::PrevPane => self.pane = self.pane.step(-1),
            Intent::Up => self.scroll(-1),
            Intent::Down => self.scroll(1),
            Intent::PageUp => self.scroll(-page),
            Intent::PageDown => self.scroll(page),
            Intent::Top => self.jump_to_end(false),
            Intent::Bottom => self.jump_to_end(true),
            Intent::Filter => self.filtering = true,
            Intent::SortNext => {
                self.sort = self.sort.next();
                self.ensure_visible();
            }
            Intent::SortReverse => {
                self.descending = !self.descending;
                self.ensure_visible();
            }
            Intent::Freeze => {
                self.frozen = !self.frozen;
                if !self.frozen {
                    self.snapshot = self.latest.clone();
                    self.reselect();
                }
            }
            Intent::Edit => self.open_editor(),
            Intent::ToggleEnabled => self.on_selected(Change::Enabled(Switch::Toggle)),
            Intent::ToggleRecording => self.on_selected(Change::Recording(Switch::Toggle)),
            Intent::ClearRecording => self.on_selected(Change::ClearRecording),
            Intent::Reset => self.on_selected(Change::Reset),
            Intent::Dump => match self.selected {
                Some(key) => self.overlay = Overlay::Dump(DumpDialog::new(key)),
                None => self.say("no process selected", true),
            },
            Intent::Replay => match self.selected {
                Some(key) => self.overlay = Overlay::Replay(ReplayDialog::new(key)),
                None => self.say("no process selected", true),
            },
            Intent::Clean => self.run(Job::Requests {
                requests: vec![Request::Clean],
                selection: Selection::everything(),
                what: "clean".into(),
            }),
            Intent::Back => {
                self.filter.clear();
                self.status = None;
                self.reselect();
            }
            Intent::SwitchView => self.switch_view(),
            _ => {}
        }
    }

    /// Handles a key in the editor; `false` closes it.
    fn on_editor_key(&mut self, editor: &mut Editor, event: &KeyEvent) -> bool {
        if let Some(picker) = &mut editor.picker {
            match self.keys.intent(Context::Picker, event) {
                Some(Intent::Up) => picker.move_cursor(-1),
                Some(Intent::Down) => picker.move_cursor(1),
                Some(Intent::PageUp) => picker.move_cursor(-10),
                Some(Intent::PageDown) => picker.move_cursor(10),
                Some(Intent::DeleteChar) => picker.delete_char(),
                Some(Intent::Back) => editor.picker = None,
                Some(Intent::Toggle) => {
                    if let Some(code) = picker.current() {
                        if let Err(message) = editor.toggle_code(code.code) {
                            self.say(message, true);
                        }
                    }
                }
                _ => {
                    if let Some(c) = keys::typed_char(event) {
                        picker.type_char(c);
                    }
                }
            }
            return true;
        }
        match self.keys.intent(Context::Form, event) {
            Some(Intent::NextField) => editor.move_cursor(1),
            Some(Intent::PrevField) => editor.move_cursor(-1),
            Some(Intent::Decrease) => editor.step(-1),
            Some(Intent::Increase) => editor.step(1),
            Some(Intent::DecreaseMore) => editor.step(-10),
            Some(Intent::IncreaseMore) => editor.step(10),
            Some(Intent::Toggle) => editor.toggle(),
            Some(Intent::ClearField) => editor.clear_field(),
            Some(Intent::DeleteChar) => editor.delete_char(),
            Some(Intent::Back) => {
                self.say("editor closed; nothing changed", false);
                return false;
            }
            Some(Intent::Apply) => match editor.job() {
                Ok(job) => {
                    self.say(
                        format!("applying to {}…", if editor.apply_to_all { "every process" } else { &editor.label }),
                        false,
                    );
                    self.run(job);
                    return false;
                }
                Err(message) => self.say(format!("not applied: {message}"), true),
            },
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    if editor.field().is_text() {
                        editor.type_char(c);
                    }
                }
            }
        }
        true
    }

    fn on_dump_key(&mut self, dialog: &mut DumpDialog, event: &KeyEvent) -> bool {
        let fields = DumpDialog::FIELDS.len();
        match self.keys.intent(Context::Form, event) {
            Some(Intent::NextField) => dialog.cursor = (dialog.cursor + 1) % fields,
            Some(Intent::PrevField) => dialog.cursor = (dialog.cursor + fields - 1) % fields,
            Some(Intent::Decrease | Intent::DecreaseMore) => dialog.step(-1),
            Some(Intent::Increase | Intent::IncreaseMore | Intent::Toggle) => dialog.step(1),
            Some(Intent::ClearField) => dialog.clear_field(),
            Some(Intent::DeleteChar) => dialog.delete_char(),
            Some(Intent::Back) => return false,
            Some(Intent::Apply) => match dialog.job() {
                Ok(job) => {
                    self.run(job);
                    return false;
                }
                Err(message) => self.say(format!("not written: {message}"), true),
            },
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    dialog.type_char(c);
                }
            }
        }
        true
    }

    fn on_replay_key(&mut self, dialog: &mut ReplayDialog, event: &KeyEvent) -> bool {
        match self.keys.intent(Context::Form, event) {
            Some(Intent::NextField | Intent::PrevField) => dialog.cursor = 1 - dialog.cursor.min(1),
            Some(Intent::Toggle | Intent::Increase | Intent::Decrease) if dialog.cursor == 1 => {
                dialog.looping = !dialog.looping;
            }
            Some(Intent::ClearField) if dialog.cursor == 0 => dialog.into.clear(),
            Some(Intent::DeleteChar) if dialog.cursor == 0 => {
                dialog.into.pop();
            }
            Some(Intent::Back) => return false,
            Some(Intent::Apply) => match dialog.job() {
                Ok(job) => {
                    self.run(job);
                    return false;
                }
                Err(message) => self.say(format!("not replayed: {message}"), true),
            },
            _ => {
                if let (Some(c), 0) = (keys::typed_char(event), dialog.cursor) {
                    dialog.into.push(c);
                }
            }
        }
        true
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
        if at.y == header {
            if let Some(column) = render::process_list::column_at(list, at.x) {
                if self.sort == column {
                    self.descending = !self.descending;
                } else {
                    self.sort = column;
                    self.descending = false;
                }
                self.ensure_visible();
            }
        } else if at.y > header && at.y + 1 < list.y + list.height {
            let index = usize::from(at.y - header - 1) + self.list_offset;
            let key = self.visible_rows().get(index).map(|row| row.key);
            if key.is_some() {
                self.select(key);
            }
        }
    }
}

fn matches_filter(row: &ProcessRow, needle: &str) -> bool {
    needle.is_empty()
        || row.key.pid.to_string().contains(needle)
        || row.exe.to_ascii_lowercase().contains(needle)
        || row.key.kind.name().contains(needle)
        || (if row.alive { "alive" } else { "dead" }).contains(needle)
        || row.mode.name().contains(needle)
}

/// Applies `action` to `app`.
pub fn update(app: &mut App, action: Action) {
    match action {
        Action::Engine(Update::Snapshot(snapshot)) => app.on_snapshot(snapshot),
        Action::Engine(Update::Outcome(outcome)) => app.say(outcome.message, !outcome.ok),
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
