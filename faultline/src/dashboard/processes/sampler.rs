//! The dashboard's engine: a background thread that discovers and attaches segments, samples their counters, the
//! focused process's strategy and its recording ring, and publishes an immutable [`Snapshot`] every tick. It also
//! carries out the changes the user asks for — through [`crate::request::execute`], the one implementation of every
//! action — so the UI thread never touches shared memory and never blocks on it.
//!
//! Everything kept per process is bounded (rate windows, rate history, recording tail), so a snapshot, and the frame
//! drawn from it, cost the same after a minute or after a week.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use shm_proto::codes;
use shm_proto::ring::RingCursor;
use shm_proto::segment::{self, Found};
use shm_proto::sync::Ordering::Relaxed;
use shm_proto::{Kind, Mode};

use super::remote::{RemoteOrder, Remotes};
use crate::actions::{Change, ReplaySource};
use crate::cluster::live::FeedEvent;
use crate::request::{execute, Options, Report, Request};
use crate::state::{Pod, ProcessState};
use crate::targets::{self, Purpose, Selection, Target};

/// Sampling period: the dashboard's 10 Hz.
pub const TICK: Duration = Duration::from_millis(100);
/// Segment discovery runs every this many ticks (new processes appear within half a second).
pub const DISCOVER_EVERY: u64 = 5;
/// Liveness (`/proc/<pid>/stat`) is checked every this many ticks.
pub const LIVENESS_EVERY: u64 = 10;
/// Rates are computed over this many ticks (one second).
pub const RATE_WINDOW: usize = 10;
/// A rate-history point is taken every this many ticks (2 per second).
pub const HISTORY_EVERY: u64 = 5;
/// Rate-history points kept: five minutes.
pub const HISTORY_LEN: usize = 600;
/// Seconds between two history points.
pub const HISTORY_STEP_S: f64 = TICK.as_secs_f64() * HISTORY_EVERY as f64;
/// Recording records kept for the tail.
pub const TAIL_LEN: usize = 256;

/// Where a process runs: [`NodeId::LOCAL`] is this machine, any other the cluster node of that number
/// ([`Snapshot::nodes`] names it), reached through its agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u16);

impl NodeId {
    /// This machine.
    pub const LOCAL: NodeId = NodeId(0);

    /// Whether this is this machine.
    pub fn is_local(self) -> bool {
        self == NodeId::LOCAL
    }
}

/// Identifies one segment: a process and its shim, here or on a cluster node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Where (this machine first).
    pub node: NodeId,
    /// The pid as seen from here (on a cluster node: its host pid).
    pub pid: u32,
    /// Which shim.
    pub kind: Kind,
}

impl Key {
    /// A process on this machine.
    pub fn local(pid: u32, kind: Kind) -> Key {
        Key { node: NodeId::LOCAL, pid, kind }
    }
}

/// One line of the process list.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    /// Which segment.
    pub key: Key,
    /// Executable name (empty for an unusable segment).
    pub exe: String,
    /// Whether the process runs.
    pub alive: bool,
    /// Found in a container's `/dev/shm`.
    pub in_container: bool,
    /// Injection is on.
    pub enabled: bool,
    /// Random, pattern or replay.
    pub mode: Mode,
    /// Recording is on.
    pub recording: bool,
    /// Calls so far (while enabled).
    pub calls: u64,
    /// Faults so far.
    pub faults: u64,
    /// Calls per second over the last second.
    pub calls_per_s: f64,
    /// Faults per second over the last second.
    pub faults_per_s: f64,
    /// Calls per second of the armed hooks (those that can fail) over the last second.
    pub armed_calls_per_s: f64,
    /// Faults per second of the armed hooks over the last second.
    pub armed_faults_per_s: f64,
    /// Why the segment cannot be used (other ABI, corrupt, not yours), if so.
    pub problem: Option<String>,
    /// The Kubernetes pod, where its shim recorded one.
    pub pod: Option<Pod>,
    /// The cluster node it runs on (`None`: this machine).
    pub node: Option<String>,
    /// Its node's session is down since then: the row keeps its last known values.
    pub unreachable_since: Option<SystemTime>,
}

impl ProcessRow {
    /// FAULT% over the last second ([`crate::state::fault_percent`], as `faultline ps` computes it over the whole
    /// run); `None` without armed calls.
    pub fn fault_percent(&self) -> Option<f64> {
        crate::state::fault_percent(self.armed_faults_per_s, self.armed_calls_per_s)
    }
}

/// One recorded call, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// 1-based position in the process's recording.
    pub sequence: u64,
    /// Wall-clock time, ns since the Unix epoch.
    pub wall_ns: u64,
    /// The intercepted function.
    pub hook: String,
    /// Kernel thread id.
    pub thread: u32,
    /// Whether faultline failed the call.
    pub injected: bool,
    /// The injected code (0 when passed).
    pub code: i32,
    /// Its name in the kind's table.
    pub code_name: Option<&'static str>,
}

/// Calls and faults per hook over the last second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HookRate {
    /// Calls per second.
    pub calls_per_s: f64,
    /// Faults per second.
    pub faults_per_s: f64,
}

/// Everything shown about the focused process.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Which segment.
    pub key: Key,
    /// Strategy, hooks, counters (the same values `faultline status` prints).
    pub state: ProcessState,
    /// Per hook, in table order.
    pub hook_rates: Vec<HookRate>,
    /// `(calls/s, faults/s)` every [`HISTORY_STEP_S`], oldest first, at most [`HISTORY_LEN`].
    pub history: Vec<(f64, f64)>,
    /// The newest recorded calls, oldest first, at most [`TAIL_LEN`].
    pub tail: Vec<TailRecord>,
    /// Records written since the last clear.
    pub recorded: u64,
    /// Records no longer in the ring (overwritten by newer ones).
    pub missed: u64,
}

/// A cluster node whose processes the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// Its session is down: since when, and why.
    pub down: Option<(SystemTime, String)>,
}

/// What the dashboard draws from: one consistent sample of every process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every segment, this machine's first, in (node, pid, kind) order.
    pub rows: Vec<ProcessRow>,
    /// The cluster nodes heard of ([`NodeId`] `n` is `nodes[n - 1]`).
    pub nodes: Vec<NodeStatus>,
    /// The focused process, if any and readable.
    pub detail: Option<Detail>,
    /// Ticks sampled so far.
    pub tick: u64,
}

/// A user's request, carried out by the engine thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Execute these requests in order on `selection`, stopping at the first error.
    Requests {
        /// What to do.
        requests: Vec<Request>,
        /// Where the processes are.
        node: NodeId,
        /// On whom (pids as seen there).
        selection: Selection,
        /// For the status line: `set the probability`.
        what: String,
    },
    /// Replay the recording of `source` into the process `into`.
    ReplayFrom {
        /// Whose recording.
        source: Key,
        /// Which process plays it.
        into: u32,
        /// Loop it.
        looping: bool,
    },
}

/// Messages to the engine thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sample this process in detail (strategy, hooks, history, ring tail).
    Focus(Option<Key>),
    /// Carry out a user's request.
    Run(Job),
    /// From the cluster feed: a node's processes, its session's state, a command's reply.
    Feed(FeedEvent),
    /// Stop the thread.
    Stop,
}

/// What a job did, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether it worked (for every target).
    pub ok: bool,
    /// One line.
    pub message: String,
}

/// What the engine thread publishes.
#[derive(Debug, Clone)]
pub enum Update {
    /// A new sample.
    Snapshot(Arc<Snapshot>),
    /// A job finished.
    Outcome(Outcome),
    /// Commands for processes on cluster nodes, for the cluster feed.
    Remote(Vec<RemoteOrder>),
}

/// Fixed-size history of `(time, calls, faults)` samples: rates over the last `span` intervals.
#[derive(Debug)]
pub(super) struct Window {
    samples: VecDeque<(f64, u64, u64)>,
    span: usize,
}

impl Default for Window {
    fn default() -> Window {
        Window::spanning(RATE_WINDOW)
    }
}

impl Window {
    /// Rates over the last `span` intervals between samples.
    pub(super) fn spanning(span: usize) -> Window {
        Window { samples: VecDeque::with_capacity(span + 1), span }
    }

    pub(super) fn push(&mut self, now_s: f64, calls: u64, faults: u64) {
        if self.samples.len() > self.span {
            self.samples.pop_front();
        }
        self.samples.push_back((now_s, calls, faults));
    }

    /// `(calls/s, faults/s)` between the oldest and newest sample.
    pub(super) fn rates(&self) -> (f64, f64) {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, c0, f0)), Some(&(t1, c1, f1))) if t1 > t0 => {
                let dt = t1 - t0;
                (c1.saturating_sub(c0) as f64 / dt, f1.saturating_sub(f0) as f64 / dt)
            }
            _ => (0.0, 0.0),
        }
    }
}

struct Entry {
    found: Found,
    target: Result<Target, String>,
    hook_names: Vec<String>,
    window: Window,
    armed_window: Window,
    hook_windows: Vec<Window>,
    history: VecDeque<(f64, f64)>,
    row: ProcessRow,
}

impl Entry {
    fn new(found: Found, target: Result<Target, String>) -> Entry {
        let key = Key::local(found.pid, found.kind);
        let (exe, alive, problem, hook_names) = match &target {
            Ok(t) => (t.exe(), t.alive, None, t.segment().header.hook_names()),
            Err(reason) => (String::new(), false, Some(reason.clone()), Vec::new()),
        };
        let hook_windows = hook_names.iter().map(|_| Window::default()).collect();
        let row = ProcessRow {
            key,
            exe,
            alive,
            in_container: found.in_container,
            enabled: false,
            mode: Mode::Random,
            recording: false,
            calls: 0,
            faults: 0,
            calls_per_s: 0.0,
            faults_per_s: 0.0,
            armed_calls_per_s: 0.0,
            armed_faults_per_s: 0.0,
            problem,
            pod: target.as_ref().ok().and_then(Pod::of),
            node: None,
            unreachable_since: None,
        };
        Entry {
            found,
            target,
            hook_names,
            window: Window::default(),
            armed_window: Window::default(),
            hook_windows,
            history: VecDeque::with_capacity(HISTORY_LEN),
            row,
        }
    }
}

/// The recording tail of the focused process.
struct Tail {
    key: Key,
    cursor: RingCursor,
    records: VecDeque<TailRecord>,
}

/// The sampling state, separate from the thread so tests can drive it tick by tick with their own clock.
pub struct Sampler {
    selection: Selection,
    entries: BTreeMap<Key, Entry>,
    focus: Option<Key>,
    tail: Option<Tail>,
    ticks: u64,
    wall_minus_monotonic_ns: i128,
    /// Discover segments and check liveness (off for tests that insert their own targets).
    live: bool,
    /// The cluster nodes' processes, from the cluster feed.
    remotes: Remotes,
}

impl Sampler {
    /// A sampler that shows the segments `selection` lets through (its pids are not a filter: the dashboard shows
    /// every process and focuses the first pid).
    pub fn new(selection: Selection) -> Sampler {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let wall_minus_monotonic_ns = i128::try_from(wall).unwrap_or(0) - i128::from(shm_proto::clock::monotonic_ns());
        Sampler {
            selection,
            entries: BTreeMap::new(),
            focus: None,
            tail: None,
            ticks: 0,
            wall_minus_monotonic_ns,
            live: true,
            remotes: Remotes::default(),
        }
    }

    /// A sampler that only samples the targets given to [`Sampler::insert`]: no discovery, no liveness checks
    /// (tests with segments of made-up pids).
    pub fn offline() -> Sampler {
        Sampler { live: false, ..Sampler::new(Selection::everything()) }
    }

    /// Uses this offset between the wall clock and `CLOCK_MONOTONIC` for record times (tests).
    pub fn set_clock_offset(&mut self, wall_minus_monotonic_ns: i128) {
        self.wall_minus_monotonic_ns = wall_minus_monotonic_ns;
    }

    /// Samples this process in detail from now on.
    pub fn set_focus(&mut self, focus: Option<Key>) {
        if self.focus != focus {
            self.focus = focus;
            self.tail = None;
        }
    }

    /// Adds an attached target (discovery does this; tests add their own).
    pub fn insert(&mut self, target: Target) {
        let key = Key::local(target.pid(), target.kind());
        let found = target.found.clone();
        self.entries.insert(key, Entry::new(found, Ok(target)));
    }

    /// The segment of `key`, if attached (tests write counters and records through it, as a shim would).
    pub fn segment(&self, key: Key) -> Option<&shm_proto::Segment> {
        self.entries.get(&key).and_then(|entry| entry.target.as_ref().ok()).map(Target::segment)
    }

    /// Scans the segment directory: attaches new segments (read-only), forgets removed files, and re-attaches a
    /// dead process's file when a new process with the same pid replaced it.
    pub fn discover(&mut self) {
        let found = targets::discover();
        let present: std::collections::HashSet<&PathBuf> = found.iter().map(|f| &f.path).collect();
        self.entries.retain(|_, entry| present.contains(&entry.found.path));
        for f in found.iter().filter(|f| self.selection.wants_kind(f.kind)) {
            let key = Key::local(f.pid, f.kind);
            let stale = match self.entries.get(&key) {
                None => true,
                Some(Entry { target: Err(_), .. }) => true,
                // A view detached by a truncation (see shm_proto::guard) reads zeros: attach the file afresh.
                Some(Entry { target: Ok(t), .. }) => t.map.truncations_survived() > 0 || (!t.alive && replaced(t)),
            };
            if stale {
                let target = targets::attach(f, Purpose::Survey).map_err(|e| e.to_string());
                self.entries.insert(key, Entry::new(f.clone(), target));
            }
        }
    }

    /// One tick: discovery and liveness when due, counters of every process, detail of the focused one.
    pub fn tick(&mut self, now: Duration) -> Snapshot {
        if self.live && self.ticks.is_multiple_of(DISCOVER_EVERY) {
            self.discover();
        }
        let check_liveness = self.live && self.ticks.is_multiple_of(LIVENESS_EVERY);
        let take_history = self.ticks.is_multiple_of(HISTORY_EVERY);
        self.ticks += 1;
        let now_s = now.as_secs_f64();
        for entry in self.entries.values_mut() {
            let Ok(target) = &mut entry.target else { continue };
            if check_liveness && target.alive {
                target.alive = segment::is_alive(&target.map, target.pid());
            }
            sample_counters(entry, now_s);
            if take_history {
                if entry.history.len() == HISTORY_LEN {
                    entry.history.pop_front();
                }
                entry.history.push_back((entry.row.calls_per_s, entry.row.faults_per_s));
            }
        }
        let detail = match self.focus {
            Some(key) if !key.node.is_local() => self.remotes.detail(key),
            _ => self.detail(),
        };
        let rows = self.entries.values().map(|e| e.row.clone()).chain(self.remotes.rows().cloned()).collect();
        Snapshot { rows, nodes: self.remotes.nodes().to_vec(), detail, tick: self.ticks }
    }

    /// Takes in what the cluster feed said (`now`: since the sampler started); a reply that finishes a job gives
    /// its outcome.
    pub fn on_feed(&mut self, event: FeedEvent, now: Duration) -> Option<Outcome> {
        self.remotes.on_event(event, now.as_secs_f64())
    }

    /// The commands for processes on cluster nodes that jobs produced, for the cluster feed.
    pub fn take_remote_orders(&mut self) -> Vec<RemoteOrder> {
        self.remotes.take_orders()
    }

    fn detail(&mut self) -> Option<Detail> {
        let key = self.focus?;
        let entry = self.entries.get(&key)?;
        let Ok(target) = &entry.target else { return None };
        let state = ProcessState::read(target).ok()?;
        let tail = match &mut self.tail {
            Some(tail) if tail.key == key => tail,
            slot => {
                slot.insert(Tail { key, cursor: RingCursor::oldest(&target.segment().ring), records: VecDeque::new() })
            }
        };
        let ring = &target.segment().ring;
        // Only the newest TAIL_LEN records matter: skip older ones instead of reading the whole ring.
        tail.cursor.skip_to_newest(ring, TAIL_LEN as u64);
        let head = ring.written();
        let kind = key.kind;
        let offset = self.wall_minus_monotonic_ns;
        let names = &entry.hook_names;
        let records = &mut tail.records;
        tail.cursor.drain(ring, !target.alive, |r| {
            if records.len() == TAIL_LEN {
                records.pop_front();
            }
            records.push_back(TailRecord {
                sequence: r.sequence,
                wall_ns: u64::try_from(i128::from(r.time_ns) + offset).unwrap_or(0),
                hook: names.get(usize::from(r.hook)).cloned().unwrap_or_else(|| format!("hook#{}", r.hook)),
                thread: r.thread,
                injected: r.injected,
                code: r.code,
                code_name: codes::name_of(kind, r.code),
            });
        });
        // A cleared ring starts over: drop what the tail showed from before the clear.
        let cleared = ring.cleared_below();
        while records.front().is_some_and(|r| r.sequence <= cleared) {
            records.pop_front();
        }
        let recorded = head.saturating_sub(cleared);
        let missed = ring.overwritten().min(recorded);
        Some(Detail {
            key,
            hook_rates: hook_rates(&entry.hook_windows),
            history: entry.history.iter().copied().collect(),
            tail: records.iter().cloned().collect(),
            recorded,
            missed,
            state,
        })
    }

    /// Carries out `job`: at once on this machine; a job on a cluster node's process is handed to its agent
    /// ([`Sampler::take_remote_orders`]) and its outcome comes with the agent's reply (`None` until then).
    pub fn run(&mut self, job: &Job, options: Options) -> Option<Outcome> {
        let node = match job {
            Job::Requests { node, .. } => *node,
            Job::ReplayFrom { source, .. } => source.node,
        };
        if !node.is_local() {
            return self.remotes.submit(job, options).err();
        }
        Some(self.run_here(job, options))
    }

    fn run_here(&mut self, job: &Job, options: Options) -> Outcome {
        match job {
            Job::Requests { requests, selection, what, .. } => run_requests(requests, selection, what, options),
            Job::ReplayFrom { source, into, looping } => {
                let change =
                    if source.pid == *into {
                        Ok(Change::Replay { source: ReplaySource::OwnRecording, looping: *looping, site: None })
                    } else {
                        ReplaySource::from_pid(source.pid, Some(source.kind), None)
                            .map(|(source, site)| Change::Replay { source, looping: *looping, site })
                    };
                match change {
                    Ok(change) => run_requests(
                        &[Request::Change(change)],
                        &Selection { pids: vec![*into], kind: Some(source.kind) },
                        &format!("replay pid {}'s recording", source.pid),
                        options,
                    ),
                    Err(error) => Outcome { ok: false, message: error.to_string() },
                }
            }
        }
    }
}

/// Each hook's rates over its window.
pub(super) fn hook_rates(windows: &[Window]) -> Vec<HookRate> {
    windows
        .iter()
        .map(|w| {
            let (calls_per_s, faults_per_s) = w.rates();
            HookRate { calls_per_s, faults_per_s }
        })
        .collect()
}

/// Whether the file of a dead target now holds another process's segment (the pid was reused).
fn replaced(target: &Target) -> bool {
    targets::attach(&target.found, Purpose::Survey).is_ok_and(|fresh| {
        fresh.segment().header.start_time_ticks.load(Relaxed) != target.segment().header.start_time_ticks.load(Relaxed)
    })
}

fn sample_counters(entry: &mut Entry, now_s: f64) {
    let Ok(target) = &entry.target else { return };
    let segment = target.segment();
    let control = &segment.control;
    let (mut calls, mut faults, mut armed_calls, mut armed_faults) = (0, 0, 0, 0);
    for (index, window) in entry.hook_windows.iter_mut().enumerate() {
        let (c, f) = segment.hook_totals(index);
        calls += c;
        faults += f;
        if control.arm_mask[index / 64].load(Relaxed) & (1 << (index % 64)) != 0 {
            armed_calls += c;
            armed_faults += f;
        }
        window.push(now_s, c, f);
    }
    entry.window.push(now_s, calls, faults);
    entry.armed_window.push(now_s, armed_calls, armed_faults);
    let (calls_per_s, faults_per_s) = entry.window.rates();
    let (armed_calls_per_s, armed_faults_per_s) = entry.armed_window.rates();
    let row = &mut entry.row;
    row.alive = target.alive;
    row.enabled = control.enabled.load(Relaxed) != 0;
    row.recording = control.recording.load(Relaxed) != 0;
    row.mode = Mode::from_raw(control.mode.load(Relaxed));
    row.calls = calls;
    row.faults = faults;
    row.calls_per_s = calls_per_s;
    row.faults_per_s = faults_per_s;
    row.armed_calls_per_s = armed_calls_per_s;
    row.armed_faults_per_s = armed_faults_per_s;
}

fn run_requests(requests: &[Request], selection: &Selection, what: &str, options: Options) -> Outcome {
    let mut changed = 0;
    for request in requests {
        match execute(request, selection, options) {
            Ok(report) => {
                if let Some(failure) = report_failure(&report) {
                    return Outcome { ok: false, message: failure };
                }
                match report {
                    Report::States { processes, .. } => changed = changed.max(processes.len()),
                    Report::Dumped { written_to: Some(path), .. } => {
                        return Outcome { ok: true, message: format!("wrote {}", path.display()) };
                    }
                    Report::Cleaned { removed } => {
                        return Outcome { ok: true, message: format!("removed {} dead segment(s)", removed.len()) };
                    }
                    _ => {}
                }
            }
            Err(error) => return Outcome { ok: false, message: error.to_string() },
        }
    }
    let whom = match selection.pids.as_slice() {
        [pid] => format!("pid {pid}"),
        _ => format!("{changed} process(es)"),
    };
    Outcome { ok: true, message: format!("{what}: done on {whom}") }
}

fn report_failure(report: &Report) -> Option<String> {
    match report {
        Report::States { failures, .. } if !failures.is_empty() => {
            Some(failures.iter().map(|f| format!("{}: {}", f.target, f.error)).collect::<Vec<_>>().join("; "))
        }
        _ => None,
    }
}

/// The running engine thread.
pub struct Engine {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Sends a command (ignored once the thread has stopped).
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Where the cluster feed sends its events: straight to the engine, as [`Command::Feed`].
    pub fn feed_sink(&self) -> crate::cluster::live::Publish {
        let commands = self.commands.clone();
        Box::new(move |event| commands.send(Command::Feed(event)).is_ok())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the engine: samples every [`TICK`] and sends each snapshot, and each job's outcome, through `publish`
/// (converted by `wrap`, so the UI can merge it with its input events).
pub fn spawn<T: Send + 'static>(
    mut sampler: Sampler,
    options: Options,
    publish: Sender<T>,
    wrap: fn(Update) -> T,
) -> Engine {
    let (commands, inbox) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("faultline-sampler".into())
        .spawn(move || engine_loop(&mut sampler, options, &inbox, &publish, wrap))
        .ok();
    Engine { commands, thread }
}

/// Sends a job's outcome, if it has one yet, and the commands for the cluster feed; `false` once the UI is gone.
fn publish_outcome<T>(
    sampler: &mut Sampler,
    outcome: Option<Outcome>,
    publish: &Sender<T>,
    wrap: fn(Update) -> T,
) -> bool {
    let orders = sampler.take_remote_orders();
    if !orders.is_empty() && publish.send(wrap(Update::Remote(orders))).is_err() {
        return false;
    }
    outcome.is_none_or(|outcome| publish.send(wrap(Update::Outcome(outcome))).is_ok())
}

fn engine_loop<T>(
    sampler: &mut Sampler,
    options: Options,
    inbox: &Receiver<Command>,
    publish: &Sender<T>,
    wrap: fn(Update) -> T,
) {
    let start = Instant::now();
    let mut next_tick = start;
    loop {
        let now = Instant::now();
        if now >= next_tick {
            let snapshot = sampler.tick(now - start);
            if publish.send(wrap(Update::Snapshot(Arc::new(snapshot)))).is_err() {
                return;
            }
            next_tick += TICK;
            if next_tick < now {
                next_tick = now + TICK; // fell behind (suspended?): do not burst
            }
        }
        match inbox.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(Command::Focus(focus)) => {
                sampler.set_focus(focus);
                next_tick = Instant::now(); // show the new focus at once
            }
            Ok(Command::Run(job)) => {
                let outcome = sampler.run(&job, options);
                if !publish_outcome(sampler, outcome, publish, wrap) {
                    return;
                }
                next_tick = Instant::now(); // show the change at once
            }
            Ok(Command::Feed(event)) => {
                let outcome = sampler.on_feed(event, start.elapsed());
                if !publish_outcome(sampler, outcome, publish, wrap) {
                    return;
                }
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
