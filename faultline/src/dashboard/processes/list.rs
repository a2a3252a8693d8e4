//! The process list's state: which rows show (the filter typed after `/`), in which order ([`SortColumn`], live
//! processes always first), which process is selected (kept valid as processes come and go; `--pid` selects its
//! process when it appears) and which rows are on screen. It changes only itself: when the selection moves it says so
//! ([`Moved`]) and the App refocuses the engine and the detail panes. Drawn by `render::process_list`.

use crossterm::event::KeyEvent;

use super::sampler::{Key, ProcessRow};
use crate::dashboard::keys::{self, Context, Intent, KeyBindings};

/// The process list's columns, which it can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// The cluster node (shown when the list holds cluster processes).
    Node,
    /// The pod (shown when a process has one).
    Pod,
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
    pub const ALL: [SortColumn; 12] = [
        SortColumn::Node,
        SortColumn::Pod,
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
            SortColumn::Node => "NODE",
            SortColumn::Pod => "POD",
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
        !matches!(
            self,
            SortColumn::Node
                | SortColumn::Pod
                | SortColumn::Pid
                | SortColumn::Exe
                | SortColumn::Kind
                | SortColumn::Mode
        )
    }

    /// The arrow the header shows: ▼ when the list runs high to low.
    pub fn arrow(self, reversed: bool) -> &'static str {
        if self.high_first() != reversed {
            "▼"
        } else {
            "▲"
        }
    }

    /// Whether the column is about where a process runs (shown only when some row runs in a pod or on a cluster
    /// node).
    pub fn is_placement(self) -> bool {
        matches!(self, SortColumn::Node | SortColumn::Pod)
    }

    /// The columns shown: the placement columns only when `placed` ([`placed`] of the rows).
    pub fn shown(placed: bool) -> impl Iterator<Item = SortColumn> {
        Self::ALL.into_iter().filter(move |column| placed || !column.is_placement())
    }

    fn next(self, placed: bool) -> SortColumn {
        let shown: Vec<SortColumn> = Self::shown(placed).collect();
        let at = shown.iter().position(|c| *c == self).unwrap_or(0);
        shown[(at + 1) % shown.len()]
    }

    fn compare(self, a: &ProcessRow, b: &ProcessRow) -> std::cmp::Ordering {
        let by_f64 = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        let primary = match self {
            SortColumn::Node => a.node.cmp(&b.node),
            SortColumn::Pod => pod_label(a).cmp(&pod_label(b)),
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

/// The selection moved to this process (or to none): the App scrolls the detail panes back and asks the engine to
/// sample it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Moved(pub Option<Key>);

/// The process list: filter, sort, selection and scroll position. Every method that needs the rows takes the
/// snapshot's (`rows`) and, to keep the selection on screen, the number of rows the list shows (`page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessList {
    /// The selected process.
    pub selected: Option<Key>,
    /// Select this pid when it shows up (`--pid`).
    pub wanted_pid: Option<u32>,
    /// First visible row.
    pub offset: usize,
    /// Sort column.
    pub sort: SortColumn,
    /// Reverse order.
    pub descending: bool,
    /// The filter.
    pub filter: String,
    /// Typing the filter.
    pub filtering: bool,
}

impl ProcessList {
    /// An empty list, sorted by pid, that selects `wanted_pid` when it appears.
    pub fn new(wanted_pid: Option<u32>) -> ProcessList {
        ProcessList {
            selected: None,
            wanted_pid,
            offset: 0,
            sort: SortColumn::Pid,
            descending: false,
            filter: String::new(),
            filtering: false,
        }
    }

    /// The rows the list shows: filtered, live processes first ([`crate::state::sort_live_first`]), sorted.
    pub fn visible<'a>(&self, rows: &'a [ProcessRow]) -> Vec<&'a ProcessRow> {
        let needle = self.filter.trim().to_ascii_lowercase();
        let mut rows: Vec<&ProcessRow> = rows.iter().filter(|row| matches_filter(row, &needle)).collect();
        crate::state::sort_live_first(
            &mut rows,
            |row| row.alive,
            |a, b| if self.descending { self.sort.compare(a, b).reverse() } else { self.sort.compare(a, b) },
        );
        rows
    }

    /// The selected row, whether the filter shows it or not.
    pub fn selected_row<'a>(&self, rows: &'a [ProcessRow]) -> Option<&'a ProcessRow> {
        let key = self.selected?;
        rows.iter().find(|row| row.key == key)
    }

    /// Selects `key` and scrolls it into view.
    pub fn select(&mut self, rows: &[ProcessRow], page: usize, key: Option<Key>) -> Option<Moved> {
        let moved = (self.selected != key).then_some(Moved(key));
        self.selected = key;
        self.ensure_visible(rows, page);
        moved
    }

    /// Keeps the selection valid (the `--pid` process once it shows, else the first visible row if the selected one
    /// vanished) and on screen.
    pub fn reselect(&mut self, rows: &[ProcessRow], page: usize) -> Option<Moved> {
        let visible: Vec<Key> = self.visible(rows).iter().map(|r| r.key).collect();
        if let Some(pid) = self.wanted_pid {
            if let Some(key) = visible.iter().find(|k| k.pid == pid) {
                self.wanted_pid = None;
                return self.select(rows, page, Some(*key));
            }
        }
        match self.selected {
            Some(key) if visible.contains(&key) => {
                self.ensure_visible(rows, page);
                None
            }
            _ => self.select(rows, page, visible.first().copied()),
        }
    }

    /// Scrolls so that the selected row is among the `page` rows shown, and no further than the last page.
    pub fn ensure_visible(&mut self, rows: &[ProcessRow], page: usize) {
        let Some(index) = self.selected_index(rows) else { return };
        if index < self.offset {
            self.offset = index;
        } else if index >= self.offset + page {
            self.offset = index + 1 - page;
        }
        let count = self.visible(rows).len();
        self.offset = self.offset.min(count.saturating_sub(page));
    }

    fn selected_index(&self, rows: &[ProcessRow]) -> Option<usize> {
        let key = self.selected?;
        self.visible(rows).iter().position(|row| row.key == key)
    }

    /// Moves the selection `delta` rows, stopping at the first and the last.
    pub fn move_by(&mut self, rows: &[ProcessRow], page: usize, delta: isize) -> Option<Moved> {
        let visible: Vec<Key> = self.visible(rows).iter().map(|r| r.key).collect();
        if visible.is_empty() {
            return None;
        }
        let at = self.selected_index(rows).unwrap_or(0) as isize;
        let next = (at + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.select(rows, page, Some(visible[next]))
    }

    /// Selects the `line`-th row shown (0 is the row under the header), if there is one.
    pub fn click(&mut self, rows: &[ProcessRow], page: usize, line: usize) -> Option<Moved> {
        let key = self.visible(rows).get(line + self.offset).map(|row| row.key);
        key.and_then(|key| self.select(rows, page, Some(key)))
    }

    /// A click on a column header: sorts by it, or reverses the sort if it already sorts by it.
    pub fn sort_by(&mut self, rows: &[ProcessRow], page: usize, column: SortColumn) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = false;
        }
        self.ensure_visible(rows, page);
    }

    /// Handles the list's own main-screen intents: start typing a filter, sort by the next column, reverse the
    /// sort. `false` for any other intent (the App handles it).
    pub fn on_intent(&mut self, intent: Intent, rows: &[ProcessRow], page: usize) -> bool {
        match intent {
            Intent::Filter => self.filtering = true,
            Intent::SortNext => {
                self.sort = self.sort.next(placed(rows));
                self.ensure_visible(rows, page);
            }
            Intent::SortReverse => {
                self.descending = !self.descending;
                self.ensure_visible(rows, page);
            }
            _ => return false,
        }
        true
    }

    /// Handles a key while the filter is typed ([`Context::Filter`]); other keys type. The list scrolls back to its
    /// top; the App then reselects, since the rows shown (and so the list's height) changed.
    pub fn on_filter_key(&mut self, keys: &KeyBindings, event: &KeyEvent) {
        match keys.intent(Context::Filter, event) {
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
        self.offset = 0;
    }
}

/// Whether any row runs in a pod or on a cluster node (the list then shows NODE and POD).
pub fn placed(rows: &[ProcessRow]) -> bool {
    rows.iter().any(|row| row.node.is_some() || row.pod.is_some())
}

/// `namespace/pod` (and `:container` where known), or "" outside Kubernetes.
pub fn pod_label(row: &ProcessRow) -> String {
    match &row.pod {
        Some(pod) if !pod.pod.is_empty() => {
            let container = if pod.container.is_empty() { String::new() } else { format!(":{}", pod.container) };
            format!("{}/{}{container}", pod.namespace, pod.pod)
        }
        Some(pod) if !pod.pod_uid.is_empty() => format!("uid {}", pod.pod_uid),
        _ => String::new(),
    }
}

/// The filter matches the pid, executable, kind, state, mode, node, namespace, pod or container.
fn matches_filter(row: &ProcessRow, needle: &str) -> bool {
    needle.is_empty()
        || row.node.as_deref().is_some_and(|node| node.to_ascii_lowercase().contains(needle))
        || pod_label(row).to_ascii_lowercase().contains(needle)
        || row.key.pid.to_string().contains(needle)
        || row.exe.to_ascii_lowercase().contains(needle)
        || row.key.kind.name().contains(needle)
        || (if row.alive { "alive" } else { "dead" }).contains(needle)
        || row.mode.name().contains(needle)
}
