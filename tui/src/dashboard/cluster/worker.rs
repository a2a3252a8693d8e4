//! The cluster view's worker thread: the only place the dashboard talks to Kubernetes. Every
//! [`crate::cluster::Session`] call blocks on the network, so none may run on the UI thread; the view sends
//! [`ClusterRequest`]s here and hears back through [`ClusterEvent`]s, the same way the sampler publishes snapshots.
//!
//! Nothing connects until the first request (the view opening), so the process view and the demo never need a
//! cluster. A failed connection is not cached: the next refresh tries again, so fixing the kubeconfig and pressing
//! `r` is enough. While the view is open the node list and the fault ledger are refreshed every [`REFRESH_EVERY`],
//! and after every action.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::jiff::Timestamp;

use super::partition_dialog::PartitionRequest;
use super::shim_dialog::ShimRequest;
use crate::cluster::arm::{self, ArmedNode};
use crate::cluster::faults::{self, Listing, Recovered, Which};
use crate::cluster::ledger::{FaultKind, Stamp};
use crate::cluster::network::{self, Created};
use crate::cluster::nodes::GpuNode;
use crate::cluster::shim::{self, Follow, ShimChange};
use crate::cluster::xid_inject::{Progress, XidInjectRequest, XidInjectResult};
use crate::cluster::{ClusterError, ConnectOptions, Session};

/// How often the open view lists the nodes again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// How long a shim rollout is followed before the worker moves on (the change stays, and is in the fault list):
/// long enough for a small Deployment, short enough not to stall the view's refreshes for minutes.
pub const SHIM_FOLLOW: Follow = Follow { timeout: Duration::from_secs(60), interval: Duration::from_secs(2) };

/// Arm a node: CUDA shims started there fail as with `xid` (see [`crate::cluster::arm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRequest {
    /// The node.
    pub node: String,
    /// The XID (one with a CUDA shim preset).
    pub xid: u32,
    /// How long the node stays armed; the reaper disarms it then.
    pub ttl: Duration,
}

/// What the view asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// The view opened (`true`: connect if needed, list the nodes now and every [`REFRESH_EVERY`]) or closed
    /// (`false`: stop refreshing).
    Watch(bool),
    /// List the nodes now.
    Refresh,
    /// Inject an XID (see [`crate::cluster::xid_inject::inject`]); the node list is refreshed afterwards.
    InjectXid(Box<XidInjectRequest>),
    /// Undo every object of this fault id, wherever it is (see [`faults::recover`]).
    Recover(String),
    /// Create a NetworkPolicy or a Chaos Mesh NetworkChaos.
    CreatePartition(Box<PartitionRequest>),
    /// Roll a shim into a workload, following the rollout for up to [`SHIM_FOLLOW`].
    EnableShim(Box<ShimRequest>),
    /// Arm a node.
    ArmNode(ArmRequest),
}

/// What the worker tells the view.
#[derive(Debug, Clone)]
pub enum ClusterEvent {
    /// The worker started something that may take a while (shown until its outcome arrives).
    Busy(String),
    /// A client was built for this API server.
    Connected {
        /// The API server's URL.
        server: String,
        /// The kubeconfig context's namespace: where the dialogs put workloads and partitions unless told.
        namespace: String,
    },
    /// The GPU nodes.
    Nodes {
        /// As [`crate::cluster::nodes::gpu_nodes`] returned them.
        nodes: Vec<GpuNode>,
        /// When they were listed.
        at: SystemTime,
    },
    /// Connecting or listing failed: the [`ClusterError`]'s message.
    RefreshFailed(String),
    /// A step of an injection in progress.
    XidProgress(Progress),
    /// An injection finished: its result, or the [`ClusterError`]'s message.
    XidDone(Result<Box<XidInjectResult>, String>),
    /// The fault ledger, listed in all namespaces right after the nodes.
    Faults {
        /// As [`faults::list`] returned it.
        listing: Listing,
        /// When it was listed.
        at: SystemTime,
    },
    /// Listing the ledger failed (the nodes may still have been listed): the [`ClusterError`]'s message.
    FaultsFailed(String),
    /// A step of a recovery, partition, shim rollout or arming, in words.
    ActionProgress(String),
    /// That action finished: what it did, or why it failed, in one line.
    ActionDone(Result<String, String>),
}

/// The cluster calls the worker makes ([`Session`] in the dashboard; a double in tests).
pub trait ClusterBackend {
    /// The API server's URL.
    fn server(&self) -> String;
    /// The kubeconfig context's namespace.
    fn namespace(&self) -> String;
    /// [`Session::gpu_nodes`].
    fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError>;
    /// [`faults::list`] in all namespaces.
    fn faults(&self) -> Result<Listing, ClusterError>;
    /// [`faults::recover`] of one fault id, in all namespaces.
    fn recover(
        &self,
        fault_id: &str,
        progress: &mut (dyn FnMut(&Recovered) + Send),
    ) -> Result<Vec<Recovered>, ClusterError>;
    /// [`network::create_partition`] or [`network::create_chaos`] under a new fault id.
    fn create_partition(&self, request: &PartitionRequest) -> Result<Created, ClusterError>;
    /// [`shim::enable`] under a new fault id.
    fn enable_shim(
        &self,
        request: &ShimRequest,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError>;
    /// [`arm::arm_node`] under a new fault id.
    fn arm_node(&self, request: &ArmRequest) -> Result<ArmedNode, ClusterError>;
    /// [`Session::inject_xid`].
    fn inject_xid(
        &self,
        request: &XidInjectRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<XidInjectResult, ClusterError>;
}

impl ClusterBackend for Session {
    fn server(&self) -> String {
        self.api().server().to_string()
    }

    fn namespace(&self) -> String {
        self.api().context_namespace().to_string()
    }

    fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError> {
        Session::gpu_nodes(self)
    }

    fn inject_xid(
        &self,
        request: &XidInjectRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<XidInjectResult, ClusterError> {
        Session::inject_xid(self, request, progress)
    }

    fn faults(&self) -> Result<Listing, ClusterError> {
        self.block_on(faults::list(self.api(), None, Timestamp::now()))
    }

    fn recover(
        &self,
        fault_id: &str,
        progress: &mut (dyn FnMut(&Recovered) + Send),
    ) -> Result<Vec<Recovered>, ClusterError> {
        let which = Which::Id(fault_id.to_string());
        self.block_on(faults::recover(self.api(), self.api(), None, &which, Timestamp::now(), progress))
    }

    fn create_partition(&self, request: &PartitionRequest) -> Result<Created, ClusterError> {
        let stamp = Stamp::new(FaultKind::Partition, Some(request.ttl()));
        match request {
            PartitionRequest::Policy { spec, .. } => self.block_on(network::create_partition(self.api(), spec, &stamp)),
            PartitionRequest::Chaos { spec, .. } => self.block_on(network::create_chaos(self.api(), spec, &stamp)),
        }
    }

    fn enable_shim(
        &self,
        request: &ShimRequest,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError> {
        let stamp = Stamp::new(FaultKind::Shim, Some(request.ttl));
        let api = self.api();
        let ShimRequest { namespace, workload, spec, .. } = request;
        self.block_on(shim::enable(api, namespace, workload, spec, &stamp, Some(SHIM_FOLLOW), progress))
    }

    fn arm_node(&self, request: &ArmRequest) -> Result<ArmedNode, ClusterError> {
        let stamp = Stamp::new(FaultKind::ArmedNode, Some(request.ttl));
        self.block_on(arm::arm_node(self.api(), self.api(), &request.node, request.xid, &stamp))
    }
}

/// Builds a backend; called on the worker thread, again after each failure.
pub type Connector = Box<dyn FnMut() -> Result<Box<dyn ClusterBackend>, ClusterError> + Send>;

/// Connects a [`Session`] with `options` (the kubeconfig's current context unless told otherwise).
pub fn session_connector(options: ConnectOptions) -> Connector {
    Box::new(move || Session::connect(&options).map(|session| Box::new(session) as Box<dyn ClusterBackend>))
}

/// How the worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How often the open view is refreshed.
    pub refresh_every: Duration,
    /// `--read-only`: refuse every change (the view refuses first; this is the second lock).
    pub read_only: bool,
}

/// The running worker. Dropping it lets the thread end after its current call; it is not joined, because that
/// call may be a minutes-long watch for a cordon and quitting must not wait for it.
pub struct Worker {
    requests: Sender<ClusterRequest>,
}

impl Worker {
    /// Hands `request` to the thread.
    pub fn send(&self, request: ClusterRequest) {
        // A send fails only when the thread is gone, i.e. its publisher failed: the dashboard is closing.
        let _ = self.requests.send(request);
    }
}

/// Starts the worker; its events go to `publish`, wrapped by `wrap`.
pub fn spawn<T: Send + 'static>(
    connect: Connector,
    settings: WorkerSettings,
    publish: Sender<T>,
    wrap: fn(ClusterEvent) -> T,
) -> Worker {
    let (requests, inbox) = mpsc::channel();
    let report_to = publish.clone();
    let spawned = std::thread::Builder::new()
        .name("faultline-cluster".into())
        .spawn(move || WorkerState { connect, backend: None, settings, publish, wrap }.run(&inbox));
    if let Err(error) = spawned {
        // Nobody will answer the view's requests: say why where the view looks.
        let _ = report_to.send(wrap(ClusterEvent::RefreshFailed(format!("cannot start the cluster thread: {error}"))));
    }
    Worker { requests }
}

struct WorkerState<T> {
    connect: Connector,
    backend: Option<Box<dyn ClusterBackend>>,
    settings: WorkerSettings,
    publish: Sender<T>,
    wrap: fn(ClusterEvent) -> T,
}

/// The publisher is gone: the dashboard closed.
struct Closed;

impl<T: Send + 'static> WorkerState<T> {
    fn run(mut self, inbox: &Receiver<ClusterRequest>) {
        let mut watching = false;
        let mut next_refresh: Option<Instant> = None;
        loop {
            let first = match next_refresh.filter(|_| watching) {
                Some(at) => match inbox.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => ClusterRequest::Refresh,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match inbox.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                },
            };
            // Requests that piled up during a slow call are handled together, with one refresh for all.
            let batch: Vec<ClusterRequest> = std::iter::once(first).chain(inbox.try_iter()).collect();
            let mut refresh = false;
            for request in batch {
                let outcome = match request {
                    ClusterRequest::Watch(open) => {
                        watching = open;
                        refresh |= open;
                        Ok(())
                    }
                    ClusterRequest::Refresh => {
                        refresh = true;
                        Ok(())
                    }
                    ClusterRequest::InjectXid(request) => {
                        refresh = true;
                        self.inject_xid(&request)
                    }
                    other => {
                        refresh = true;
                        self.act(&other)
                    }
                };
                if outcome.is_err() {
                    return;
                }
            }
            if refresh {
                if self.refresh().is_err() {
                    return;
                }
                next_refresh = Some(Instant::now() + self.settings.refresh_every);
            }
        }
    }

    fn send(&self, event: ClusterEvent) -> Result<(), Closed> {
        self.publish.send((self.wrap)(event)).map_err(|_| Closed)
    }

    /// The backend, connecting first if there is none; `Err` carries the message to show.
    fn backend(&mut self) -> Result<Result<&dyn ClusterBackend, String>, Closed> {
        if self.backend.is_none() {
            self.send(ClusterEvent::Busy("connecting to the cluster".to_string()))?;
            match (self.connect)() {
                Ok(backend) => {
                    self.send(ClusterEvent::Connected { server: backend.server(), namespace: backend.namespace() })?;
                    self.backend = Some(backend);
                }
                Err(error) => return Ok(Err(error.to_string())),
            }
        }
        Ok(self.backend.as_deref().ok_or_else(|| "not connected".to_string()))
    }

    fn refresh(&mut self) -> Result<(), Closed> {
        let (publish, wrap) = (self.publish.clone(), self.wrap);
        let listed = match self.backend()? {
            Ok(backend) => {
                publish.send(wrap(ClusterEvent::Busy("listing GPU nodes".to_string()))).map_err(|_| Closed)?;
                backend.gpu_nodes().map_err(|e| e.to_string())
            }
            Err(message) => Err(message),
        };
        match listed {
            Ok(nodes) => self.send(ClusterEvent::Nodes { nodes, at: SystemTime::now() })?,
            Err(message) => return self.send(ClusterEvent::RefreshFailed(message)),
        }
        // The ledger second: a cluster without Chaos Mesh or without the RBAC for it still shows its nodes.
        let listed = match self.backend.as_deref() {
            Some(backend) => backend.faults().map_err(|e| e.to_string()),
            None => return Ok(()),
        };
        match listed {
            Ok(listing) => self.send(ClusterEvent::Faults { listing, at: SystemTime::now() }),
            Err(message) => self.send(ClusterEvent::FaultsFailed(message)),
        }
    }

    /// A recovery, partition, shim rollout or arming: refused under `--read-only`, else run with its steps and
    /// outcome reported as [`ClusterEvent::ActionProgress`] / [`ClusterEvent::ActionDone`].
    fn act(&mut self, request: &ClusterRequest) -> Result<(), Closed> {
        let Some((verb, busy)) = describe_request(request) else { return Ok(()) };
        if self.settings.read_only {
            return self.send(ClusterEvent::ActionDone(Err(crate::Error::ReadOnly(verb).to_string())));
        }
        let (publish, wrap) = (self.publish.clone(), self.wrap);
        let outcome = match self.backend()? {
            Ok(backend) => {
                publish.send(wrap(ClusterEvent::Busy(busy))).map_err(|_| Closed)?;
                let steps = publish.clone();
                // As for injections: once started, an action runs to its end even if the dashboard closes.
                let mut say = move |line: String| {
                    let _ = steps.send(wrap(ClusterEvent::ActionProgress(line)));
                };
                run_action(backend, request, &mut say)
            }
            Err(message) => Err(message),
        };
        self.send(ClusterEvent::ActionDone(outcome))
    }

    fn inject_xid(&mut self, request: &XidInjectRequest) -> Result<(), Closed> {
        if self.settings.read_only {
            let message = crate::Error::ReadOnly("inject an XID").to_string();
            return self.send(ClusterEvent::XidDone(Err(message)));
        }
        let (publish, wrap) = (self.publish.clone(), self.wrap);
        let result = match self.backend()? {
            Ok(backend) => {
                let busy = format!("injecting XID {} on GPU {} of {}", request.xid, request.gpu, request.node);
                publish.send(wrap(ClusterEvent::Busy(busy))).map_err(|_| Closed)?;
                let steps = publish.clone();
                // A closed dashboard cannot stop the injection half-way; its remaining steps go nowhere.
                let mut progress = move |step: &Progress| {
                    let _ = steps.send(wrap(ClusterEvent::XidProgress(step.clone())));
                };
                backend.inject_xid(request, &mut progress).map(Box::new).map_err(|e| e.to_string())
            }
            Err(message) => Err(message),
        };
        self.send(ClusterEvent::XidDone(result))
    }
}

/// What `--read-only` refuses for `request` (`refusing to …`), and what the worker is doing while it runs; `None`
/// for the requests that are not actions.
pub fn describe_request(request: &ClusterRequest) -> Option<(&'static str, String)> {
    Some(match request {
        ClusterRequest::Recover(id) => ("recover faults", format!("recovering fault {id}")),
        ClusterRequest::CreatePartition(partition) => {
            ("create a partition", format!("creating a {} in {}", partition.object_kind(), partition.namespace()))
        }
        ClusterRequest::EnableShim(shim) => {
            ("roll a shim out", format!("rolling the {} shim into {}", shim.spec.kind.name(), shim.workload))
        }
        ClusterRequest::ArmNode(arm) => ("arm a node", format!("arming node {} with XID {}", arm.node, arm.xid)),
        ClusterRequest::Watch(_) | ClusterRequest::Refresh | ClusterRequest::InjectXid(_) => return None,
    })
}

/// Runs an action on `backend`; its steps go to `say`, its outcome is one line.
fn run_action(
    backend: &dyn ClusterBackend,
    request: &ClusterRequest,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<String, String> {
    match request {
        ClusterRequest::Recover(id) => {
            let mut each = |r: &Recovered| say(describe_recovered(r));
            let done = backend.recover(id, &mut each).map_err(|e| e.to_string())?;
            Ok(if done.is_empty() {
                format!("nothing left of fault {id} (already recovered?)")
            } else {
                format!("fault {id} recovered: {} object{} handled", done.len(), crate::output::plural(done.len()))
            })
        }
        ClusterRequest::CreatePartition(partition) => {
            let created = backend.create_partition(partition).map_err(|e| e.to_string())?;
            Ok(format!(
                "created {} {}/{} (fault {}, until {})",
                created.kind,
                created.namespace,
                created.name,
                created.fault_id,
                created.expires_at.as_deref().unwrap_or("recovered")
            ))
        }
        ClusterRequest::EnableShim(shim) => {
            let mut each = |line: &str| say(line.to_string());
            let change = backend.enable_shim(shim, &mut each).map_err(|e| e.to_string())?;
            let mut text = format!(
                "{} shim in {} (namespace {}): fault {}",
                shim.spec.kind.name(),
                change.workload,
                change.namespace,
                change.fault_id.as_deref().unwrap_or("-")
            );
            if let Some(rollout) = &change.rollout {
                let state = if rollout.done {
                    "done".to_string()
                } else {
                    format!("not finished after {} s (it goes on)", SHIM_FOLLOW.timeout.as_secs())
                };
                text.push_str(&format!("; rollout {}, {state}", rollout.text));
            }
            Ok(text)
        }
        ClusterRequest::ArmNode(request) => {
            let armed = backend.arm_node(request).map_err(|e| e.to_string())?;
            Ok(format!(
                "node {} armed: CUDA shims started there fail as with XID {} (fault {})",
                armed.node, armed.xid, armed.fault_id
            ))
        }
        ClusterRequest::Watch(_) | ClusterRequest::Refresh | ClusterRequest::InjectXid(_) => Ok(String::new()),
    }
}

/// One log line for one object of a recovery.
pub fn describe_recovered(recovered: &Recovered) -> String {
    let place = match &recovered.namespace {
        Some(namespace) => format!("{namespace}/{}", recovered.name),
        None => recovered.name.clone(),
    };
    format!("{} {} {place}: {}", recovered.fault_id, recovered.object_kind, recovered.outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::cluster::xid_inject::WatchOutcome;
    use crate::node::XidReport;

    /// A cluster of one node that counts its calls; an injection reports one step and succeeds.
    struct Fake {
        lists: Arc<AtomicUsize>,
    }

    impl ClusterBackend for Fake {
        fn server(&self) -> String {
            "https://fake:6443".to_string()
        }

        fn namespace(&self) -> String {
            "dynamo".to_string()
        }

        fn faults(&self) -> Result<Listing, ClusterError> {
            Ok(Listing { faults: vec![], notes: vec!["NetworkChaos (chaos-mesh.org) is not installed".into()] })
        }

        fn recover(
            &self,
            fault_id: &str,
            progress: &mut (dyn FnMut(&Recovered) + Send),
        ) -> Result<Vec<Recovered>, ClusterError> {
            let recovered = Recovered {
                fault_id: fault_id.to_string(),
                object_kind: "NetworkPolicy".into(),
                namespace: Some("dynamo".into()),
                name: format!("faultline-{fault_id}"),
                outcome: "deleted".into(),
            };
            progress(&recovered);
            Ok(vec![recovered])
        }

        fn create_partition(&self, request: &PartitionRequest) -> Result<Created, ClusterError> {
            Err(ClusterError::Usage(format!("no {} here", request.object_kind())))
        }

        fn enable_shim(
            &self,
            request: &ShimRequest,
            progress: &mut (dyn FnMut(&str) + Send),
        ) -> Result<ShimChange, ClusterError> {
            progress(&format!("patched {}", request.workload));
            Ok(ShimChange {
                fault_id: Some("fl-00000000000a".into()),
                workload: request.workload.to_string(),
                namespace: request.namespace.clone(),
                changed: true,
                rollout: Some(shim::RolloutState { done: false, text: "0/1 updated".into() }),
            })
        }

        fn arm_node(&self, request: &ArmRequest) -> Result<ArmedNode, ClusterError> {
            Err(ClusterError::Usage(format!("node {} has no agent", request.node)))
        }

        fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            Ok(vec![GpuNode {
                name: "gpu-a".into(),
                ready: Some(true),
                cordoned: false,
                taints: vec![],
                gpus: Some(8),
                agent: None,
                recent_xids: vec![],
            }])
        }

        fn inject_xid(
            &self,
            request: &XidInjectRequest,
            progress: &mut (dyn FnMut(&Progress) + Send),
        ) -> Result<XidInjectResult, ClusterError> {
            progress(&Progress::Agent { pod: "faultline-node-a".into() });
            let agent = XidReport {
                fault_id: format!("fl-{}", request.gpu),
                xid: request.xid,
                xid_name: "GPU has fallen off the bus".into(),
                severity: "critical".into(),
                gpu: request.gpu,
                pci: "0000:3b:00.0".into(),
                pci_source: "driver".into(),
                line: String::new(),
                dry_run: false,
                confirmed: true,
                kmsg_seq: None,
                kmsg_priority: None,
            };
            let watch = request.watch.map(|_| WatchOutcome { cordoned: true, waited_s: 1.0, taints: vec![] });
            Ok(XidInjectResult {
                fault_id: agent.fault_id.clone(),
                node: request.node.clone(),
                pod: "faultline-node-a".into(),
                agent,
                event: None,
                watch,
            })
        }
    }

    /// A worker over [`Fake`] whose first `failures` connections fail; returns the list counter too.
    fn start(failures: usize, settings: WorkerSettings) -> (Worker, Receiver<ClusterEvent>, Arc<AtomicUsize>) {
        let lists = Arc::new(AtomicUsize::new(0));
        let counter = lists.clone();
        let mut attempts = 0;
        let connect: Connector = Box::new(move || {
            attempts += 1;
            if attempts <= failures {
                return Err(ClusterError::Config { context: None, message: format!("attempt {attempts} fails") });
            }
            Ok(Box::new(Fake { lists: counter.clone() }) as Box<dyn ClusterBackend>)
        });
        let (publish, events) = mpsc::channel();
        (spawn(connect, settings, publish, |event| event), events, lists)
    }

    /// The next event that `wanted` accepts (a watchdog, not a timing assumption: it only fires on a hang).
    fn wait_for(events: &Receiver<ClusterEvent>, what: &str, wanted: impl Fn(&ClusterEvent) -> bool) -> ClusterEvent {
        loop {
            match events.recv_timeout(Duration::from_secs(60)) {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => {}
                Err(error) => panic!("no {what}: {error}"),
            }
        }
    }

    fn is_nodes(event: &ClusterEvent) -> bool {
        matches!(event, ClusterEvent::Nodes { .. })
    }

    const SLOW: WorkerSettings = WorkerSettings { refresh_every: Duration::from_secs(3600), read_only: false };

    #[test]
    fn a_failed_connection_is_shown_and_retried_at_the_next_refresh() {
        let (worker, events, _) = start(1, SLOW);
        worker.send(ClusterRequest::Watch(true));
        let failed = wait_for(&events, "failure", |e| matches!(e, ClusterEvent::RefreshFailed(_)));
        let ClusterEvent::RefreshFailed(message) = failed else { unreachable!() };
        assert_eq!(message, "cannot configure a Kubernetes client: attempt 1 fails");
        worker.send(ClusterRequest::Refresh);
        let connected = wait_for(&events, "connection", |e| matches!(e, ClusterEvent::Connected { .. }));
        assert!(
            matches!(connected, ClusterEvent::Connected { server, namespace } if server == "https://fake:6443" && namespace == "dynamo")
        );
        let ClusterEvent::Nodes { nodes, .. } = wait_for(&events, "nodes", is_nodes) else { unreachable!() };
        assert_eq!(nodes.len(), 1);
    }

    #[test]
    fn the_open_view_refreshes_on_its_own_and_the_closed_one_does_not() {
        // A zero period: while watching, the worker lists the nodes again as soon as it is idle.
        let (worker, events, lists) = start(0, WorkerSettings { refresh_every: Duration::ZERO, read_only: false });
        worker.send(ClusterRequest::Watch(true));
        for _ in 0..5 {
            wait_for(&events, "a periodic refresh", is_nodes);
        }
        worker.send(ClusterRequest::Watch(false));
        // Each injection is followed by exactly one refresh; with the view closed, nothing else lists the nodes.
        let mut counts = Vec::new();
        for gpu in [1, 2] {
            worker.send(ClusterRequest::InjectXid(Box::new(XidInjectRequest::new("gpu-a", gpu, 79))));
            wait_for(
                &events,
                "the injection",
                |e| matches!(e, ClusterEvent::XidDone(Ok(r)) if r.fault_id == format!("fl-{gpu}")),
            );
            wait_for(&events, "the refresh after it", is_nodes);
            counts.push(lists.load(Ordering::SeqCst));
        }
        assert_eq!(counts[1], counts[0] + 1, "no refresh but the injection's");
    }

    #[test]
    fn injections_report_their_steps_and_read_only_refuses_them() {
        let (worker, events, _) = start(0, SLOW);
        let request =
            XidInjectRequest { watch: Some(Duration::from_secs(60)), ..XidInjectRequest::new("gpu-a", 0, 79) };
        worker.send(ClusterRequest::InjectXid(Box::new(request.clone())));
        let step = wait_for(&events, "a step", |e| matches!(e, ClusterEvent::XidProgress(_)));
        assert!(matches!(step, ClusterEvent::XidProgress(Progress::Agent { pod }) if pod == "faultline-node-a"));
        let done = wait_for(&events, "the result", |e| matches!(e, ClusterEvent::XidDone(_)));
        assert!(matches!(done, ClusterEvent::XidDone(Ok(r)) if r.watch.as_ref().is_some_and(|w| w.cordoned)));

        let (worker, events, _) = start(0, WorkerSettings { read_only: true, ..SLOW });
        worker.send(ClusterRequest::InjectXid(Box::new(request)));
        let done = wait_for(&events, "the refusal", |e| matches!(e, ClusterEvent::XidDone(_)));
        assert!(matches!(done, ClusterEvent::XidDone(Err(m)) if m == "--read-only: refusing to inject an XID"));
    }

    #[test]
    fn the_real_session_reports_a_missing_context_as_the_cluster_error() {
        let context = "faultline-test-no-such-context";
        let connect = session_connector(ConnectOptions { context: Some(context.into()), namespace: None });
        let (publish, events) = mpsc::channel();
        let worker = spawn(connect, SLOW, publish, |event| event);
        worker.send(ClusterRequest::Watch(true));
        let failed = wait_for(&events, "failure", |e| matches!(e, ClusterEvent::RefreshFailed(_)));
        let ClusterEvent::RefreshFailed(message) = failed else { unreachable!() };
        assert!(
            message.starts_with(&format!("cannot configure a Kubernetes client for context {context}")),
            "{message}"
        );
    }

    #[test]
    fn actions_report_each_step_and_their_outcome_then_the_ledger_is_listed_again() {
        let (worker, events, _) = start(0, SLOW);
        worker.send(ClusterRequest::Recover("fl-0123456789ab".into()));
        let busy = wait_for(&events, "busy", |e| matches!(e, ClusterEvent::Busy(b) if b.starts_with("recovering")));
        assert!(matches!(busy, ClusterEvent::Busy(b) if b == "recovering fault fl-0123456789ab"));
        let step = wait_for(&events, "a step", |e| matches!(e, ClusterEvent::ActionProgress(_)));
        assert!(
            matches!(&step, ClusterEvent::ActionProgress(l) if l == "fl-0123456789ab NetworkPolicy dynamo/faultline-fl-0123456789ab: deleted"),
            "{step:?}"
        );
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::ActionDone(_)));
        assert!(
            matches!(&done, ClusterEvent::ActionDone(Ok(t)) if t == "fault fl-0123456789ab recovered: 1 object handled")
        );
        wait_for(&events, "the nodes", is_nodes);
        let faults = wait_for(&events, "the faults", |e| matches!(e, ClusterEvent::Faults { .. }));
        assert!(matches!(faults, ClusterEvent::Faults { listing, .. } if listing.notes.len() == 1));

        let shim = ShimRequest {
            namespace: "dynamo".into(),
            workload: crate::cluster::shim_rollout::Workload::Deployment("vllm".into()),
            spec: crate::cluster::shim_rollout::ShimSpec::new(shm_proto::Kind::Cuda),
            ttl: Duration::from_secs(60),
        };
        worker.send(ClusterRequest::EnableShim(Box::new(shim)));
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::ActionDone(_)));
        assert!(
            matches!(&done, ClusterEvent::ActionDone(Ok(t)) if t == "cuda shim in Deployment vllm (namespace dynamo): fault fl-00000000000a; rollout 0/1 updated, not finished after 60 s (it goes on)"),
            "{done:?}"
        );
        worker.send(ClusterRequest::ArmNode(ArmRequest {
            node: "gpu-a".into(),
            xid: 79,
            ttl: Duration::from_secs(60),
        }));
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::ActionDone(_)));
        assert!(matches!(&done, ClusterEvent::ActionDone(Err(m)) if m == "node gpu-a has no agent"), "{done:?}");
    }

    #[test]
    fn read_only_refuses_every_action() {
        let (worker, events, _) = start(0, WorkerSettings { read_only: true, ..SLOW });
        let requests = [
            (ClusterRequest::Recover("fl-0123456789ab".into()), "recover faults"),
            (
                ClusterRequest::ArmNode(ArmRequest { node: "gpu-a".into(), xid: 79, ttl: Duration::from_secs(60) }),
                "arm a node",
            ),
        ];
        for (request, verb) in requests {
            worker.send(request);
            let done = wait_for(&events, "the refusal", |e| matches!(e, ClusterEvent::ActionDone(_)));
            let expected = format!("--read-only: refusing to {verb}");
            assert!(matches!(&done, ClusterEvent::ActionDone(Err(m)) if *m == expected), "{done:?}");
        }
    }
}
