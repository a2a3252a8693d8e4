//! The cluster's processes in the dashboard: what the cluster feed ([`crate::cluster::live`]) says of each node —
//! its processes' states and newest records, its session going down and coming back — kept beside the local
//! processes, with the same rows, rates, history and recording tail; and the user's jobs on them, turned into the
//! command words the node's agent runs (the same words `faultline` takes) and answered when the agent replies.
//!
//! A node whose session is down keeps its processes listed with their last values ("unreachable since …"); a job
//! on one of them is refused at once with that message. Nothing is sent twice: the feed answers a command whose
//! session dropped with "may or may not have been applied", which is shown as the job's failure.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::Value;
use shm_proto::{codes, Kind, Mode};

use super::sampler::{
    hook_rates, Detail, Job, Key, NodeId, NodeStatus, Outcome, ProcessRow, TailRecord, Window, HISTORY_LEN, TAIL_LEN,
};
use crate::cluster::live::FeedEvent;
use crate::request::{Options, Request};
use crate::state::ProcessState;

/// Rate samples of a remote process: its agent sends two snapshots a second, rates are over the last second.
const REMOTE_RATE_SPAN: usize = 2;

/// A command for a process on a cluster node, for the feed ([`crate::cluster::live::Feed::command`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOrder {
    /// The node.
    pub node: String,
    /// Answered as [`FeedEvent::Reply`] with this token.
    pub token: u64,
    /// The words after `faultline` (host pids).
    pub args: Vec<String>,
}

/// One process on a cluster node.
struct Entry {
    state: ProcessState,
    window: Window,
    armed_window: Window,
    hook_windows: Vec<Window>,
    history: VecDeque<(f64, f64)>,
    tail: VecDeque<TailRecord>,
    recorded: u64,
    missed: u64,
    row: ProcessRow,
}

/// A job waiting for the agents: the commands still to send, in order.
struct Pending {
    node: String,
    steps: VecDeque<Vec<String>>,
    what: String,
    whom: String,
    /// `record dump … -o FILE`: the text the agent printed is written here, on this machine.
    write_to: Option<PathBuf>,
}

/// The cluster nodes' processes and the jobs in flight on them.
#[derive(Default)]
pub struct Remotes {
    nodes: Vec<NodeStatus>,
    entries: BTreeMap<Key, Entry>,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    orders: Vec<RemoteOrder>,
    /// The feed's last failure to reach the API server, said once.
    feed_failure: Option<String>,
}

impl Remotes {
    /// The nodes heard of.
    pub fn nodes(&self) -> &[NodeStatus] {
        &self.nodes
    }

    /// Every remote process's row, in key order.
    pub fn rows(&self) -> impl Iterator<Item = &ProcessRow> {
        self.entries.values().map(|entry| &entry.row)
    }

    /// The commands to hand to the feed.
    pub fn take_orders(&mut self) -> Vec<RemoteOrder> {
        std::mem::take(&mut self.orders)
    }

    fn node_id(&mut self, name: &str) -> NodeId {
        let at = match self.nodes.iter().position(|node| node.name == name) {
            Some(at) => at,
            None => {
                self.nodes.push(NodeStatus { name: name.to_string(), down: None });
                self.nodes.len() - 1
            }
        };
        NodeId(u16::try_from(at + 1).unwrap_or(u16::MAX))
    }

    fn node_name(&self, node: NodeId) -> Option<&NodeStatus> {
        self.nodes.get(usize::from(node.0).checked_sub(1)?)
    }

    /// Takes in what the feed said (`now_s`: the sampler's clock). A reply that finishes a job gives its outcome.
    pub fn on_event(&mut self, event: FeedEvent, now_s: f64) -> Option<Outcome> {
        match event {
            FeedEvent::Snapshot { node, processes } => {
                self.snapshot(&node, &processes, now_s);
                None
            }
            FeedEvent::Down { node, since, why } => {
                let id = self.node_id(&node);
                if let Some(status) = self.nodes.get_mut(usize::from(id.0) - 1) {
                    status.down = Some((since, why));
                }
                for entry in self.entries.range_mut(node_range(id)).map(|(_, entry)| entry) {
                    entry.row.unreachable_since = Some(since);
                    entry.row.calls_per_s = 0.0;
                    entry.row.faults_per_s = 0.0;
                    entry.row.armed_calls_per_s = 0.0;
                    entry.row.armed_faults_per_s = 0.0;
                }
                None
            }
            FeedEvent::Gone { node } => {
                if let Some(at) = self.nodes.iter().position(|n| n.name == node) {
                    let id = NodeId(u16::try_from(at + 1).unwrap_or(u16::MAX));
                    self.entries.retain(|key, _| key.node != id);
                }
                None
            }
            FeedEvent::Reply { token, reply, .. } => self.reply(token, reply),
            FeedEvent::Connected { .. } => {
                self.feed_failure = None;
                None
            }
            // Said once, not at every retry: the list shows what is still known meanwhile.
            FeedEvent::Failed(why) if self.feed_failure.as_ref() != Some(&why) => {
                self.feed_failure = Some(why.clone());
                Some(Outcome { ok: false, message: format!("cluster processes: {why}") })
            }
            FeedEvent::Failed(_) => None,
        }
    }

    fn snapshot(&mut self, node: &str, processes: &[Value], now_s: f64) {
        let id = self.node_id(node);
        if let Some(status) = self.nodes.get_mut(usize::from(id.0) - 1) {
            status.down = None;
        }
        let mut seen = Vec::with_capacity(processes.len());
        for process in processes {
            let Ok(state) = ProcessState::from_json(process) else { continue };
            let Some(kind) = Kind::from_name(state.kind) else { continue };
            let key = Key { node: id, pid: state.pid, kind };
            seen.push(key);
            let entry = self.entries.entry(key).or_insert_with(|| Entry::new(key, node, &state));
            entry.update(state, process, now_s);
        }
        // A process the agent no longer lists (its segment was cleaned) goes.
        self.entries.retain(|key, _| key.node != id || seen.contains(key));
    }

    /// The focused remote process's detail.
    pub fn detail(&self, key: Key) -> Option<Detail> {
        self.entries.get(&key).map(|entry| entry.detail(key))
    }

    /// Queues `job` for the agents; `Err` is its outcome when it cannot be sent (node down, not a remote job, a
    /// change no command spells).
    pub fn submit(&mut self, job: &Job, options: Options) -> Result<(), Outcome> {
        let refuse = |message: String| Outcome { ok: false, message };
        let (node, pending) = match job {
            Job::Requests { requests, node, selection, what } => {
                let mut steps = VecDeque::new();
                let mut write_to = None;
                let target = target_words(selection.pids.first().copied(), selection.kind);
                for request in requests {
                    let mut words = target.clone();
                    match request {
                        Request::Change(change) => match change.words() {
                            Some(command) => words.extend(command),
                            None => return Err(refuse(format!("{what}: not possible on a cluster node's process"))),
                        },
                        Request::Dump { format, count, output } => {
                            words.extend(["record".to_string(), "dump".to_string(), format.name().to_string()]);
                            if let Some(count) = count {
                                words.extend(["--count".to_string(), count.to_string()]);
                            }
                            write_to.clone_from(output);
                        }
                        Request::Status => words.push("status".to_string()),
                        _ => return Err(refuse(format!("{what}: not possible on a cluster node's process"))),
                    }
                    steps.push_back(words);
                }
                let whom = match selection.pids.as_slice() {
                    [pid] => format!("pid {pid}"),
                    _ => "every process".to_string(),
                };
                (*node, Pending { node: String::new(), steps, what: what.clone(), whom, write_to })
            }
            Job::ReplayFrom { source, into, looping } => {
                let mut words = target_words(Some(*into), Some(source.kind));
                words.push("replay".to_string());
                if source.pid != *into {
                    words.extend(["--from-pid".to_string(), source.pid.to_string()]);
                }
                if *looping {
                    words.push("--loop".to_string());
                }
                let what = format!("replay pid {}'s recording", source.pid);
                let pending = Pending {
                    node: String::new(),
                    steps: VecDeque::from([words]),
                    what,
                    whom: format!("pid {into}"),
                    write_to: None,
                };
                (source.node, pending)
            }
        };
        let Some(status) = self.node_name(node) else {
            return Err(refuse(format!("{}: that node is not known (any more)", pending.what)));
        };
        if let Some((since, why)) = &status.down {
            return Err(refuse(format!("{}: node {} is {}: {why}", pending.what, status.name, unreachable(*since))));
        }
        let name = status.name.clone();
        let mut pending = Pending { node: name, ..pending };
        if options.read_only {
            for step in &mut pending.steps {
                step.insert(0, "--read-only".to_string());
            }
        }
        self.send_next(pending);
        Ok(())
    }

    fn send_next(&mut self, mut pending: Pending) {
        if let Some(args) = pending.steps.pop_front() {
            self.next_token += 1;
            let token = self.next_token;
            self.orders.push(RemoteOrder { node: pending.node.clone(), token, args });
            self.pending.insert(token, pending);
        }
    }

    fn reply(&mut self, token: u64, reply: Result<Value, String>) -> Option<Outcome> {
        let pending = self.pending.remove(&token)?;
        let failed = |message: String| Some(Outcome { ok: false, message: format!("{}: {message}", pending.what) });
        let reply = match reply {
            Ok(reply) => reply,
            Err(why) => return failed(why),
        };
        if reply["exit"].as_u64() != Some(0) {
            let why = reply["error"].as_str().or_else(|| reply["text"].as_str()).unwrap_or("the agent refused");
            return failed(why.trim().to_string());
        }
        if !pending.steps.is_empty() {
            self.send_next(pending);
            return None;
        }
        if let Some(path) = &pending.write_to {
            let text = reply["text"].as_str().unwrap_or_default();
            return Some(match crate::recording::write_atomically(path, text) {
                Ok(()) => Outcome { ok: true, message: format!("wrote {}", path.display()) },
                Err(error) => Outcome { ok: false, message: format!("{}: {error}", pending.what) },
            });
        }
        Some(Outcome {
            ok: true,
            message: format!("{}: done on {} on node {}", pending.what, pending.whom, pending.node),
        })
    }
}

/// "unreachable since 12:04:05" (UTC, as the cluster view shows times).
pub fn unreachable(since: SystemTime) -> String {
    let at = k8s_openapi::jiff::Timestamp::try_from(since).map(|t| t.strftime("%H:%M:%S").to_string());
    format!("unreachable since {}", at.unwrap_or_default())
}

fn node_range(node: NodeId) -> std::ops::RangeInclusive<Key> {
    Key { node, pid: 0, kind: Kind::Ucx }..=Key { node, pid: u32::MAX, kind: Kind::Cuda }
}

/// `--kind K --pid P` (host pid), or every process of the kind on the node.
fn target_words(pid: Option<u32>, kind: Option<Kind>) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(kind) = kind {
        words.extend(["--kind".to_string(), kind.name().to_string()]);
    }
    if let Some(pid) = pid {
        words.extend(["--pid".to_string(), pid.to_string()]);
    }
    words
}

impl Entry {
    fn new(key: Key, node: &str, state: &ProcessState) -> Entry {
        let row = ProcessRow {
            key,
            exe: state.exe.clone(),
            alive: state.alive,
            in_container: state.in_container,
            enabled: state.enabled,
            mode: Mode::Random,
            recording: state.recording,
            calls: state.calls,
            faults: state.faults,
            calls_per_s: 0.0,
            faults_per_s: 0.0,
            armed_calls_per_s: 0.0,
            armed_faults_per_s: 0.0,
            problem: None,
            pod: state.pod.clone(),
            node: Some(node.to_string()),
            unreachable_since: None,
        };
        Entry {
            state: state.clone(),
            window: Window::spanning(REMOTE_RATE_SPAN),
            armed_window: Window::spanning(REMOTE_RATE_SPAN),
            hook_windows: Vec::new(),
            history: VecDeque::with_capacity(HISTORY_LEN),
            tail: VecDeque::new(),
            recorded: 0,
            missed: 0,
            row,
        }
    }

    fn update(&mut self, state: ProcessState, process: &Value, now_s: f64) {
        if self.hook_windows.len() != state.hooks.len() {
            self.hook_windows = state.hooks.iter().map(|_| Window::spanning(REMOTE_RATE_SPAN)).collect();
        }
        for (window, hook) in self.hook_windows.iter_mut().zip(&state.hooks) {
            window.push(now_s, hook.calls, hook.faults);
        }
        self.window.push(now_s, state.calls, state.faults);
        self.armed_window.push(now_s, state.armed_calls, state.armed_faults);
        let (calls_per_s, faults_per_s) = self.window.rates();
        let (armed_calls_per_s, armed_faults_per_s) = self.armed_window.rates();
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back((calls_per_s, faults_per_s));
        let kind = self.row.key.kind;
        self.take_records(kind, process);
        let row = &mut self.row;
        row.exe.clone_from(&state.exe);
        row.alive = state.alive;
        row.in_container = state.in_container;
        row.enabled = state.enabled;
        row.recording = state.recording;
        row.mode = crate::settings::parse_mode(state.mode).unwrap_or(Mode::Random);
        row.calls = state.calls;
        row.faults = state.faults;
        row.calls_per_s = calls_per_s;
        row.faults_per_s = faults_per_s;
        row.armed_calls_per_s = armed_calls_per_s;
        row.armed_faults_per_s = armed_faults_per_s;
        row.pod.clone_from(&state.pod);
        row.unreachable_since = None;
        self.state = state;
    }

    /// Adds the snapshot's newest records to the tail (those not yet in it); a recording cleared since starts the
    /// tail over.
    fn take_records(&mut self, kind: Kind, process: &Value) {
        self.recorded = process["recorded"].as_u64().unwrap_or(self.recorded);
        self.missed = process["missed"].as_u64().unwrap_or(self.missed);
        let Some(records) = process["records"].as_array() else { return };
        let newest = records.last().and_then(|r| r["sequence"].as_u64());
        if self.recorded == 0 || newest.is_some_and(|n| self.tail.back().is_some_and(|r| r.sequence > n)) {
            // Cleared with nothing new, or a sequence that went back: what the tail shows is gone.
            self.tail.clear();
        } else if let Some(newest) = newest {
            // Records from before the last clear go (sequences continue across a clear).
            let cleared_below = newest.saturating_sub(self.recorded);
            while self.tail.front().is_some_and(|r| r.sequence <= cleared_below) {
                self.tail.pop_front();
            }
        }
        let after = self.tail.back().map_or(0, |r| r.sequence);
        for record in records {
            let Some(sequence) = record["sequence"].as_u64().filter(|s| *s > after) else { continue };
            let code = record["error_code"].as_i64().and_then(|c| i32::try_from(c).ok()).unwrap_or(0);
            if self.tail.len() == TAIL_LEN {
                self.tail.pop_front();
            }
            self.tail.push_back(TailRecord {
                sequence,
                wall_ns: record["timestamp_us"].as_u64().unwrap_or(0).saturating_mul(1000),
                hook: record["hook"].as_str().unwrap_or("?").to_string(),
                thread: record["thread"].as_u64().and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
                injected: record["fault_injected"].as_bool().unwrap_or(false),
                code,
                code_name: codes::name_of(kind, code),
            });
        }
    }

    fn detail(&self, key: Key) -> Detail {
        Detail {
            key,
            state: self.state.clone(),
            hook_rates: hook_rates(&self.hook_windows),
            history: self.history.iter().copied().collect(),
            tail: self.tail.iter().cloned().collect(),
            recorded: self.recorded,
            missed: self.missed,
        }
    }
}
