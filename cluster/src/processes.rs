//! Every shimmed process in the cluster, through the node agents: one session per node (`faultline node watch` in
//! the agent pod, over the exec API — no port), its JSON-line snapshots read for listings and rates, and process
//! commands sent down it by host pid, each answered once.
//!
//! A process is placed in its pod by what its shim recorded (`FAULTLINE_POD_*`, set by the shim roll-out), or, where
//! only the pod UID from its cgroup is known, by the pod with that UID.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_core::state::ProcessState;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::{json, Value};

use super::agent;
use super::kube_api::{ExecSession, KubeApi, AGENT_CONTAINER};
use super::names::Labels;
use super::nodes;
use super::ClusterError;

/// How often the sessions opened for a listing snapshot (rates are measured over one interval).
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);

/// One node agent's `faultline node watch`.
pub struct NodeSession {
    node: String,
    pod: String,
    exec: ExecSession,
    next_id: u64,
}

impl NodeSession {
    /// Opens the session with the ready agent on `node`: a snapshot every `interval`, without records.
    pub async fn open(api: &KubeApi, node: &str, interval: Duration) -> Result<NodeSession, ClusterError> {
        Self::open_with_records(api, node, interval, 0).await
    }

    /// Opens the session with the ready agent on `node`: a snapshot every `interval`, each process with its newest
    /// `records` records.
    pub async fn open_with_records(
        api: &KubeApi,
        node: &str,
        interval: Duration,
        records: u64,
    ) -> Result<NodeSession, ClusterError> {
        let agent = agent::find(api, node).await?;
        let interval_ms = interval.as_millis().max(1).to_string();
        let records = records.to_string();
        let command =
            agent::node_command(["watch", "--interval-ms", interval_ms.as_str(), "--records", records.as_str()]);
        let exec = api.exec_session(&agent.pod, AGENT_CONTAINER, &command).await?;
        Ok(NodeSession { node: node.to_string(), pod: agent.pod, exec, next_id: 0 })
    }

    /// The node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The next message (a snapshot or a reply), as JSON. Cancel-safe (see [`ExecSession::next_line`]).
    pub async fn next_message(&mut self) -> Result<Value, ClusterError> {
        let line = self.exec.next_line().await.map_err(|e| self.failed(e.to_string()))?;
        let line = line.ok_or_else(|| self.failed("the session ended".to_string()))?;
        serde_json::from_str(&line).map_err(|e| ClusterError::AgentOutput {
            pod: self.pod.clone(),
            message: e.to_string(),
            stdout: line,
        })
    }

    fn failed(&self, why: String) -> ClusterError {
        ClusterError::AgentFailed {
            pod: self.pod.clone(),
            command: "faultline node watch".into(),
            exit_code: None,
            stderr: why,
        }
    }

    /// The next snapshot (replies are not expected here and are skipped).
    pub async fn snapshot(&mut self) -> Result<Value, ClusterError> {
        loop {
            let message = self.next_message().await?;
            if message["type"] == "snapshot" {
                return Ok(message);
            }
        }
    }

    /// Sends one process command (the words after `faultline`, host pids) without waiting: its reply comes among
    /// the messages, `{"type": "reply", "id": <the id returned>, …}`.
    pub async fn send(&mut self, args: &[String]) -> Result<u64, ClusterError> {
        self.next_id += 1;
        let id = self.next_id;
        let line = json!({"id": id, "args": args}).to_string();
        self.exec.send_line(&line).await.map_err(|e| self.failed(e.to_string()))?;
        Ok(id)
    }

    /// Sends one process command (the words after `faultline`, host pids) and waits for its reply.
    pub async fn command(&mut self, args: &[String]) -> Result<Value, ClusterError> {
        let id = self.send(args).await?;
        loop {
            let message = self.next_message().await?;
            if message["type"] == "reply" && message["id"] == id {
                return Ok(message);
            }
        }
    }

    /// Ends the session (the agent's command exits when its standard input closes).
    pub async fn close(self) {
        self.exec.close().await;
    }
}

/// Which processes of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessScope {
    /// Only this node's.
    pub node: Option<String>,
    /// Only pods of this namespace (`None`: every namespace).
    pub namespace: Option<String>,
    /// Only pods with these labels.
    pub selector: Option<Labels>,
    /// Only this pod (`namespace/name` given as the namespace and this).
    pub pod: Option<String>,
    /// Only this container.
    pub container: Option<String>,
    /// Only this host pid (with `node`).
    pub pid: Option<u32>,
}

/// One shimmed process of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterProcess {
    /// Its node.
    pub node: String,
    /// Its pod's namespace, if known.
    pub namespace: Option<String>,
    /// Its pod, if known.
    pub pod: Option<String>,
    /// Its container, if known.
    pub container: Option<String>,
    /// The pid on the node (host pid namespace).
    pub pid: u32,
    /// `ucx` or `cuda`.
    pub kind: String,
    /// The executable.
    pub exe: String,
    /// Whether it runs.
    pub alive: bool,
    /// Injection on.
    pub enabled: bool,
    /// `random`, `pattern` or `replay`.
    pub mode: String,
    /// Where injected faults surface: `post`, `completion` or `endpoint` (`post` for an agent older than sites).
    pub site: String,
    /// Calls while enabled.
    pub calls: u64,
    /// Faults injected.
    pub faults: u64,
    /// Calls per second over the listing's interval.
    pub calls_per_s: f64,
    /// Faults per second over the listing's interval.
    pub faults_per_s: f64,
}

/// The cluster's shimmed processes, and what could not be reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessListing {
    /// In node, namespace, pod, pid order.
    pub processes: Vec<ClusterProcess>,
    /// Nodes whose agent could not be reached, and why.
    pub notes: Vec<String>,
}

/// Lists the processes `scope` selects: one session per GPU node with a ready agent, two snapshots for rates.
pub async fn list(api: &KubeApi, scope: &ProcessScope) -> Result<ProcessListing, ClusterError> {
    let mut listing = ProcessListing::default();
    let sessions = open_all(api, scope, &mut listing.notes).await?;
    let pods = pods_of(api, scope).await?;
    for (mut session, first) in sessions {
        let started = Instant::now();
        let second = session.snapshot().await;
        let elapsed = started.elapsed().as_secs_f64().max(1e-3);
        let node = session.node().to_string();
        session.close().await;
        let later = second.as_ref().unwrap_or(&first);
        for process in later["processes"].as_array().into_iter().flatten() {
            let Some(mut row) = place(process, node.clone(), &pods) else { continue };
            if !scope.selects(&row, &pods) {
                continue;
            }
            let before = find(&first, row.pid);
            let rate = |field: &str, now: u64| {
                let then = before.as_ref().and_then(|p| p[field].as_u64()).unwrap_or(now);
                now.saturating_sub(then) as f64 / elapsed
            };
            row.calls_per_s = rate("calls", row.calls);
            row.faults_per_s = rate("faults", row.faults);
            listing.processes.push(row);
        }
    }
    listing
        .processes
        .sort_by(|a, b| (&a.node, &a.namespace, &a.pod, a.pid).cmp(&(&b.node, &b.namespace, &b.pod, b.pid)));
    Ok(listing)
}

/// One node's answer to a process command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReply {
    /// The node.
    pub node: String,
    /// The processes it was sent to (host pids).
    pub pids: Vec<u32>,
    /// The agent's reply: `exit`, and `report` or `error`.
    pub reply: Value,
}

/// Sends the process command `args` (its words, without pids) to every process `scope` selects, one command per
/// node (`--pid` for each of its processes there): the running ones, or with a host pid given, that process even
/// if it exited (as locally, its segment can still be read; the agent refuses a change to it). `read_only` is
/// passed on: the agent's process layer refuses changes. Nothing selected is an error (exit 1), as for a local
/// broadcast that finds nothing.
pub async fn command(
    api: &KubeApi,
    scope: &ProcessScope,
    args: &[String],
    read_only: bool,
) -> Result<Vec<NodeReply>, ClusterError> {
    let mut notes = Vec::new();
    let sessions = open_all(api, scope, &mut notes).await?;
    let pods = pods_of(api, scope).await?;
    let mut replies = Vec::new();
    let mut reached = false;
    for (mut session, snapshot) in sessions {
        let pids: Vec<u32> = snapshot["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|process| place(process, session.node().to_string(), &pods))
            .filter(|row| (row.alive || scope.pid.is_some()) && scope.selects(row, &pods))
            .map(|row| row.pid)
            .collect();
        if pids.is_empty() {
            session.close().await;
            continue;
        }
        reached = true;
        let mut words: Vec<String> = read_only.then(|| "--read-only".to_string()).into_iter().collect();
        words.extend(pids.iter().flat_map(|pid| ["--pid".to_string(), pid.to_string()]));
        words.extend(args.iter().cloned());
        let reply = session.command(&words).await;
        let node = session.node().to_string();
        session.close().await;
        replies.push(NodeReply { node, pids, reply: reply? });
    }
    if !reached {
        let unreachable = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
        return Err(ClusterError::NoProcesses(format!(
            "no running shimmed process in the cluster matches{unreachable}; `faultline cluster ps` lists them"
        )));
    }
    Ok(replies)
}

/// Opens a session on every GPU node in scope with a ready agent, each with its first snapshot; the others are
/// noted.
async fn open_all(
    api: &KubeApi,
    scope: &ProcessScope,
    notes: &mut Vec<String>,
) -> Result<Vec<(NodeSession, Value)>, ClusterError> {
    let names: Vec<String> = match &scope.node {
        Some(node) => {
            api.get_node(node).await?;
            vec![node.clone()]
        }
        None => nodes::gpu_nodes(api).await?.into_iter().map(|n| n.name).collect(),
    };
    let mut sessions = Vec::new();
    for name in names {
        match NodeSession::open(api, &name, SNAPSHOT_INTERVAL).await {
            Ok(mut session) => match session.snapshot().await {
                Ok(first) => sessions.push((session, tag(first, &name))),
                Err(error) => {
                    notes.push(format!("node {name}: {error}"));
                    session.close().await;
                }
            },
            Err(error @ (ClusterError::NoAgentPod { .. } | ClusterError::AgentNotReady { .. })) => {
                notes.push(format!("node {name}: {error}"));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(sessions)
}

/// Marks every process of a snapshot with its node.
fn tag(mut snapshot: Value, node: &str) -> Value {
    if let Some(processes) = snapshot["processes"].as_array_mut() {
        for process in processes {
            process["node"] = node.into();
        }
    }
    snapshot
}

/// The pods the scope's namespace holds (for labels, and to place processes known only by pod UID).
async fn pods_of(api: &KubeApi, scope: &ProcessScope) -> Result<Vec<Pod>, ClusterError> {
    api.list_pods(scope.namespace.as_deref(), scope.node.as_deref()).await
}

fn find(snapshot: &Value, pid: u32) -> Option<Value> {
    snapshot["processes"].as_array()?.iter().find(|p| p["pid"] == pid).cloned()
}

/// The pod with this UID (what a process's cgroup names), if listed.
pub fn pod_with_uid<'a>(pods: &'a [Pod], uid: &str) -> Option<&'a Pod> {
    (!uid.is_empty()).then(|| pods.iter().find(|p| p.metadata.uid.as_deref() == Some(uid))).flatten()
}

/// A snapshot's process (its `status --json` state, read back with [`ProcessState::from_json`]) as a row, placed in
/// its pod: by what its shim recorded, else by the pod with its cgroup's pod UID.
fn place(process: &Value, fallback_node: String, pods: &[Pod]) -> Option<ClusterProcess> {
    let state = ProcessState::from_json(process).ok()?;
    let known = |text: &str| (!text.is_empty()).then(|| text.to_string());
    let recorded = state.pod.clone().unwrap_or_default();
    let (mut namespace, mut pod) = (known(&recorded.namespace), known(&recorded.pod));
    if pod.is_none() {
        if let Some(found) = pod_with_uid(pods, &recorded.pod_uid) {
            namespace = found.metadata.namespace.clone();
            pod = found.metadata.name.clone();
        }
    }
    Some(ClusterProcess {
        node: process["node"].as_str().filter(|n| !n.is_empty()).map_or(fallback_node, str::to_string),
        namespace,
        pod,
        container: known(&recorded.container),
        pid: state.pid,
        kind: state.kind.to_string(),
        exe: state.exe,
        alive: state.alive,
        enabled: state.enabled,
        mode: state.mode.to_string(),
        site: state.site.to_string(),
        calls: state.calls,
        faults: state.faults,
        calls_per_s: 0.0,
        faults_per_s: 0.0,
    })
}

impl ProcessScope {
    /// Whether `row` is in scope (`pods`: the namespace's pods, for labels).
    pub fn selects(&self, row: &ClusterProcess, pods: &[Pod]) -> bool {
        let same = |wanted: &Option<String>, have: &Option<String>| wanted.is_none() || wanted == have;
        if !same(&self.namespace, &row.namespace) || !same(&self.pod, &row.pod) {
            return false;
        }
        if !same(&self.container, &row.container) || self.pid.is_some_and(|pid| pid != row.pid) {
            return false;
        }
        match &self.selector {
            None => true,
            Some(selector) => pods.iter().any(|pod| {
                pod.metadata.name == row.pod
                    && pod.metadata.namespace == row.namespace
                    && labels_match(selector, pod.metadata.labels.as_ref())
            }),
        }
    }
}

fn labels_match(selector: &Labels, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector.iter().all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
}
