//! The cluster's shimmed processes, live, for a long-running client (the dashboard): one `faultline node watch`
//! session per GPU node with a ready agent, kept open, its snapshots passed on as they come, and process commands
//! sent down it, each answered once.
//!
//! - A node's session that drops (agent restarted, API server hiccup, node gone) is reported ([`FeedEvent::Down`],
//!   "unreachable since …") and opened again with a growing delay ([`Backoff`]); the node's processes are not
//!   forgotten meanwhile — what the client shows of them is the client's business.
//! - **No command is applied twice.** A command is written to one session once and never again: if that session
//!   drops before the agent's reply, the command is answered "dropped before the agent answered" (it may or may
//!   not have been applied; `status` tells) instead of being sent down the next session. A command for a node
//!   whose session is down is refused at once.
//! - The GPU nodes are listed again every [`FeedSettings::rescan_every`]: sessions open on new nodes and close on
//!   nodes that went away; the pods are listed then too, to place processes known only by their pod UID.
//!
//! The feed runs on its own thread with its own runtime; [`Feed::spawn`] returns at once and dropping the [`Feed`]
//! stops it without waiting (a session in the middle of connecting must not hold a user who quits).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::kube_api::KubeApi;
use super::nodes;
use super::processes::{pod_with_uid, NodeSession};
use super::{ClusterError, ConnectOptions};

/// How the feed behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSettings {
    /// How often each agent sends a snapshot.
    pub interval: Duration,
    /// The newest records of each process in every snapshot.
    pub records: u64,
    /// How often the GPU nodes and pods are listed again.
    pub rescan_every: Duration,
    /// Delays between attempts to open a node's session again.
    pub backoff: Backoff,
}

impl Default for FeedSettings {
    fn default() -> FeedSettings {
        FeedSettings {
            interval: Duration::from_millis(500),
            records: 32,
            rescan_every: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// Exponential backoff: `first`, doubled after each failure, at most `max`; back to `first` once a session
/// delivered a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { first: Duration::from_millis(500), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// The delay after `failures` failures in a row (1 or more).
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        doubled.min(self.max)
    }
}

/// What the feed tells its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A client was built for the API server.
    Connected {
        /// Its URL.
        server: String,
    },
    /// Connecting or listing failed; everything is tried again after a rescan period.
    Failed(String),
    /// A node's snapshot: every shimmed process on it, each as `faultline status --json` shows it (host pid), placed
    /// in its pod (`namespace`, `pod`, `container`) where known, with its newest records under `records`.
    Snapshot {
        /// The node.
        node: String,
        /// The processes.
        processes: Vec<Value>,
    },
    /// A node's session is down (or could not be opened) since `since`; it is being opened again.
    Down {
        /// The node.
        node: String,
        /// When it went down (the first failure of this run of failures).
        since: SystemTime,
        /// Why, as the last failure said.
        why: String,
    },
    /// A node is no longer a GPU node of the cluster: forget its processes.
    Gone {
        /// The node.
        node: String,
    },
    /// The answer to [`Feed::command`] `token`: the agent's reply (`exit`, and `report` and `text`, or `error`), or
    /// why there is none.
    Reply {
        /// As given to [`Feed::command`].
        token: u64,
        /// The node it was for.
        node: String,
        /// The agent's reply, or why none came.
        reply: Result<Value, String>,
    },
}

/// Sends events to the client; `false` once the client is gone (the feed then stops).
pub type Publish = Box<dyn Fn(FeedEvent) -> bool + Send + Sync>;

enum Order {
    Command { node: String, token: u64, args: Vec<String> },
}

/// The running feed. Dropping it stops the thread without joining it.
pub struct Feed {
    orders: UnboundedSender<Order>,
}

impl Feed {
    /// Starts the feed: connects with `options` on its own thread and keeps every GPU node's session open.
    pub fn spawn(options: ConnectOptions, settings: FeedSettings, publish: Publish) -> Feed {
        let (orders, inbox) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new().name("faultline-cluster-feed".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    publish(FeedEvent::Failed(format!("cannot start a runtime: {error}")));
                    return;
                }
            };
            runtime.block_on(run(options, settings, publish, inbox));
        });
        if let Err(error) = spawned {
            // Nobody answers: orders are dropped with the channel, the client sees no nodes.
            eprintln!("faultline: cannot start the cluster feed: {error}");
        }
        Feed { orders }
    }

    /// Sends the process command `args` (the words after `faultline`: `--pid HOSTPID`, `--kind`, the command) to
    /// `node`'s agent. Its answer comes once, as [`FeedEvent::Reply`] with `token`.
    pub fn command(&self, node: &str, token: u64, args: Vec<String>) {
        let _ = self.orders.send(Order::Command { node: node.to_string(), token, args });
    }
}

/// A node's running task.
struct NodeTask {
    commands: UnboundedSender<(u64, Vec<String>)>,
    handle: tokio::task::JoinHandle<()>,
}

/// Shared by the node tasks: the pods, to place processes known only by their pod UID.
type Pods = std::sync::Arc<std::sync::RwLock<Vec<Pod>>>;

async fn run(options: ConnectOptions, settings: FeedSettings, publish: Publish, mut inbox: UnboundedReceiver<Order>) {
    let publish = std::sync::Arc::new(publish);
    let pods: Pods = Pods::default();
    let mut api: Option<KubeApi> = None;
    let mut tasks: BTreeMap<String, NodeTask> = BTreeMap::new();
    let mut rescan = tokio::time::interval(settings.rescan_every);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rescan.tick() => {
                if !scan(&options, &settings, &publish, &pods, &mut api, &mut tasks).await {
                    break;
                }
            }
            order = inbox.recv() => match order {
                None => break, // the Feed was dropped
                Some(Order::Command { node, token, args }) => match tasks.get(&node) {
                    Some(task) => {
                        if task.commands.send((token, args)).is_err() {
                            let why = format!("node {node}'s session is closing");
                            if !publish(FeedEvent::Reply { token, node, reply: Err(why) }) {
                                break;
                            }
                        }
                    }
                    None => {
                        let why = format!("node {node} is not a GPU node with a faultline agent (any more)");
                        if !publish(FeedEvent::Reply { token, node, reply: Err(why) }) {
                            break;
                        }
                    }
                },
            },
        }
    }
    for task in tasks.into_values() {
        task.handle.abort();
    }
}

/// Connects if needed, lists the GPU nodes and pods, starts and stops node tasks. `false` once the client is gone.
async fn scan(
    options: &ConnectOptions,
    settings: &FeedSettings,
    publish: &std::sync::Arc<Publish>,
    pods: &Pods,
    api: &mut Option<KubeApi>,
    tasks: &mut BTreeMap<String, NodeTask>,
) -> bool {
    if api.is_none() {
        match KubeApi::connect(options).await {
            Ok(connected) => {
                if !publish(FeedEvent::Connected { server: connected.server().to_string() }) {
                    return false;
                }
                *api = Some(connected);
            }
            Err(error) => return publish(FeedEvent::Failed(error.to_string())),
        }
    }
    let Some(api) = api.as_ref() else { return true };
    // Only what the sessions need: the GPU nodes' names (not their agents and XID Events, as the node view lists).
    let gpu_nodes = async {
        let (label, value) = nodes::GPU_LABEL;
        let listed = api.list_nodes(label, value).await?;
        Ok::<_, ClusterError>(listed.into_iter().filter_map(|node| node.metadata.name).collect::<Vec<String>>())
    };
    let listed = async { Ok::<_, ClusterError>((gpu_nodes.await?, api.list_pods(None, None).await?)) };
    let (gpu_nodes, listed_pods) = match listed.await {
        Ok(found) => found,
        // The sessions keep running; the nodes are listed again next time.
        Err(error) => return publish(FeedEvent::Failed(error.to_string())),
    };
    if let Ok(mut shared) = pods.write() {
        *shared = listed_pods;
    }
    let names = gpu_nodes;
    let gone: Vec<String> = tasks.keys().filter(|name| !names.contains(name)).cloned().collect();
    for node in gone {
        if let Some(task) = tasks.remove(&node) {
            task.handle.abort();
        }
        if !publish(FeedEvent::Gone { node }) {
            return false;
        }
    }
    for node in names {
        if tasks.contains_key(&node) {
            continue;
        }
        let (commands, orders) = mpsc::unbounded_channel();
        let context = NodeContext {
            api: api.clone(),
            node: node.clone(),
            settings: *settings,
            publish: publish.clone(),
            pods: pods.clone(),
        };
        let handle = tokio::spawn(context.run(orders));
        tasks.insert(node, NodeTask { commands, handle });
    }
    true
}

struct NodeContext {
    api: KubeApi,
    node: String,
    settings: FeedSettings,
    publish: std::sync::Arc<Publish>,
    pods: Pods,
}

/// The client went away: stop.
struct Gone;

impl NodeContext {
    /// Keeps the node's session open until the client goes away (or the task is aborted).
    async fn run(self, mut orders: UnboundedReceiver<(u64, Vec<String>)>) {
        let mut failures: u32 = 0;
        let mut down_since: Option<SystemTime> = None;
        loop {
            let why = match NodeSession::open_with_records(
                &self.api,
                &self.node,
                self.settings.interval,
                self.settings.records,
            )
            .await
            {
                Ok(session) => match self.serve(session, &mut orders, &mut failures, &mut down_since).await {
                    Ok(why) => why,
                    Err(Gone) => return,
                },
                Err(error) => error.to_string(),
            };
            failures = failures.saturating_add(1);
            let since = *down_since.get_or_insert_with(SystemTime::now);
            if !(self.publish)(FeedEvent::Down { node: self.node.clone(), since, why: why.clone() }) {
                return;
            }
            // Commands that come while the session is down are refused at once, not kept for later.
            let wait = tokio::time::sleep(self.settings.backoff.delay(failures));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    order = orders.recv() => match order {
                        None => return,
                        Some((token, _)) => {
                            let since = k8s_openapi::jiff::Timestamp::try_from(since).map(|t| t.to_string()).unwrap_or_default();
                            let reply = Err(format!("node {} is unreachable since {since}: {why}", self.node));
                            if !(self.publish)(FeedEvent::Reply { token, node: self.node.clone(), reply }) {
                                return;
                            }
                        }
                    },
                }
            }
        }
    }

    /// Passes the session's snapshots on and its commands down until it drops; says why it dropped.
    async fn serve(
        &self,
        mut session: NodeSession,
        orders: &mut UnboundedReceiver<(u64, Vec<String>)>,
        failures: &mut u32,
        down_since: &mut Option<SystemTime>,
    ) -> Result<String, Gone> {
        // The agent's ids of the commands sent down this session, and the client's tokens for them.
        let mut in_flight: HashMap<u64, u64> = HashMap::new();
        let why = loop {
            tokio::select! {
                message = session.next_message() => match message {
                    Ok(message) if message["type"] == "snapshot" => {
                        *failures = 0;
                        *down_since = None;
                        let processes = self.placed(message);
                        if !(self.publish)(FeedEvent::Snapshot { node: self.node.clone(), processes }) {
                            session.close().await;
                            return Err(Gone);
                        }
                    }
                    Ok(message) if message["type"] == "reply" => {
                        let token = message["id"].as_u64().and_then(|id| in_flight.remove(&id));
                        if let Some(token) = token {
                            let reply = FeedEvent::Reply { token, node: self.node.clone(), reply: Ok(message) };
                            if !(self.publish)(reply) {
                                session.close().await;
                                return Err(Gone);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => break error.to_string(),
                },
                order = orders.recv() => match order {
                    None => {
                        session.close().await;
                        return Err(Gone);
                    }
                    Some((token, args)) => match session.send(&args).await {
                        Ok(id) => {
                            in_flight.insert(id, token);
                        }
                        Err(error) => {
                            // Not written: safe to say so plainly (nothing was applied).
                            let reply = Err(format!("not sent to node {}: {error}", self.node));
                            if !(self.publish)(FeedEvent::Reply { token, node: self.node.clone(), reply }) {
                                return Err(Gone);
                            }
                            break error.to_string();
                        }
                    },
                },
            }
        };
        session.close().await;
        // Written, never answered: it may have been applied, so it is not sent again.
        for token in in_flight.into_values() {
            let reply = Err(format!(
                "node {}'s session dropped before the agent answered ({why}); the command may or may not have been \
                 applied and is not sent again: check with status",
                self.node
            ));
            if !(self.publish)(FeedEvent::Reply { token, node: self.node.clone(), reply }) {
                return Err(Gone);
            }
        }
        Ok(why)
    }

    /// A snapshot's processes, each placed in its pod (by the pod UID where only that is known).
    fn placed(&self, mut snapshot: Value) -> Vec<Value> {
        let Some(processes) = snapshot.get_mut("processes").and_then(Value::as_array_mut) else { return Vec::new() };
        let pods = self.pods.read().ok();
        for process in processes.iter_mut() {
            let known = process["pod"].as_str().is_some_and(|pod| !pod.is_empty());
            let uid = process["pod_uid"].as_str().unwrap_or_default();
            let found = pods.as_ref().filter(|_| !known).and_then(|pods| pod_with_uid(pods, uid));
            if let Some(pod) = found {
                process["namespace"] = pod.metadata.namespace.clone().unwrap_or_default().into();
                process["pod"] = pod.metadata.name.clone().unwrap_or_default().into();
            }
        }
        std::mem::take(processes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let backoff = Backoff { first: Duration::from_millis(500), max: Duration::from_secs(10) };
        let delays: Vec<u128> = (1..=7).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
    }
}
