//! The cluster view's worker thread: the only place the dashboard talks to Kubernetes, and only through
//! [`crate::cluster::action::execute`]. Every call blocks on the network, so none may run on the UI thread; the view
//! sends [`WorkerRequest`]s here and hears back through [`ClusterEvent`]s, the same way the sampler publishes
//! snapshots.
//!
//! Nothing connects until the first request (the view opening), so the process view and the demo never need a
//! cluster. A failed connection is not cached: the next refresh tries again, so fixing the kubeconfig and pressing
//! `r` is enough. While the view is open the node list and the fault ledger are refreshed every [`REFRESH_EVERY`],
//! and after every action.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::cluster::action::{self, Access, Cluster, ClusterOutcome, ClusterProgress, ClusterRequest};
use crate::cluster::faults::Listing;
use crate::cluster::nodes::GpuNode;
use crate::cluster::{ClusterError, ConnectOptions, Session};

/// How often the open view lists the nodes again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What the view asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerRequest {
    /// The view opened (`true`: connect if needed, list the nodes now and every [`REFRESH_EVERY`]) or closed
    /// (`false`: stop refreshing).
    Watch(bool),
    /// List the nodes now.
    Refresh,
    /// Carry out a cluster request; the node list and the ledger are refreshed afterwards.
    Act(ClusterRequest),
}

/// Why a request failed, as the status line says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How the failure of this kind of request begins ([`ClusterRequest::not_done`]).
    pub not_done: &'static str,
    /// The [`ClusterError`]'s message.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.not_done, self.message)
    }
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
    /// The fault ledger, listed in all namespaces right after the nodes.
    Faults {
        /// As [`crate::cluster::faults::list`] returned it.
        listing: Listing,
        /// When it was listed.
        at: SystemTime,
    },
    /// Listing the ledger failed (the nodes may still have been listed): the [`ClusterError`]'s message.
    FaultsFailed(String),
    /// A step of a request in progress.
    Progress(ClusterProgress),
    /// A request finished: what it did, or why it failed.
    Done(Result<Box<ClusterOutcome>, Failure>),
}

/// Builds a cluster client; called on the worker thread, again after each failure.
pub type Connector = Box<dyn FnMut() -> Result<Box<dyn Cluster>, ClusterError> + Send>;

/// Connects a [`Session`] with `options` (the kubeconfig's current context unless told otherwise).
pub fn session_connector(options: ConnectOptions) -> Connector {
    Box::new(move || Session::connect(&options).map(|session| Box::new(session) as Box<dyn Cluster>))
}

/// How the worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How often the open view is refreshed.
    pub refresh_every: Duration,
    /// `--read-only`: refuse every change (the view refuses first; [`action::execute`] refuses again).
    pub read_only: bool,
}

/// The running worker. Dropping it lets the thread end after its current call; it is not joined, because that
/// call may be a minutes-long watch for a cordon and quitting must not wait for it.
pub struct Worker {
    requests: Sender<WorkerRequest>,
}

impl Worker {
    /// Hands `request` to the thread.
    pub fn send(&self, request: WorkerRequest) {
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
        .spawn(move || WorkerState { connect, cluster: None, settings, publish, wrap }.run(&inbox));
    if let Err(error) = spawned {
        // Nobody will answer the view's requests: say why where the view looks.
        let _ = report_to.send(wrap(ClusterEvent::RefreshFailed(format!("cannot start the cluster thread: {error}"))));
    }
    Worker { requests }
}

struct WorkerState<T> {
    connect: Connector,
    cluster: Option<Box<dyn Cluster>>,
    settings: WorkerSettings,
    publish: Sender<T>,
    wrap: fn(ClusterEvent) -> T,
}

/// The publisher is gone: the dashboard closed.
struct Closed;

impl<T: Send + 'static> WorkerState<T> {
    fn run(mut self, inbox: &Receiver<WorkerRequest>) {
        let mut watching = false;
        let mut next_refresh: Option<Instant> = None;
        loop {
            let first = match next_refresh.filter(|_| watching) {
                Some(at) => match inbox.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => WorkerRequest::Refresh,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match inbox.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                },
            };
            // Requests that piled up during a slow call are handled together, with one refresh for all.
            let batch: Vec<WorkerRequest> = std::iter::once(first).chain(inbox.try_iter()).collect();
            let mut refresh = false;
            for request in batch {
                let outcome = match request {
                    WorkerRequest::Watch(open) => {
                        watching = open;
                        refresh |= open;
                        Ok(())
                    }
                    WorkerRequest::Refresh => {
                        refresh = true;
                        Ok(())
                    }
                    WorkerRequest::Act(request) => {
                        refresh = true;
                        self.act(&request)
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

    fn access(&self) -> Access {
        Access { read_only: self.settings.read_only }
    }

    /// The cluster, connecting first if there is none; `Err` carries the message to show.
    fn cluster(&mut self) -> Result<Result<&dyn Cluster, String>, Closed> {
        if self.cluster.is_none() {
            self.send(ClusterEvent::Busy("connecting to the cluster".to_string()))?;
            match (self.connect)() {
                Ok(cluster) => {
                    self.send(ClusterEvent::Connected { server: cluster.server(), namespace: cluster.namespace() })?;
                    self.cluster = Some(cluster);
                }
                Err(error) => return Ok(Err(error.to_string())),
            }
        }
        Ok(self.cluster.as_deref().ok_or_else(|| "not connected".to_string()))
    }

    /// A listing: no steps, its error as a message.
    fn list(&self, request: &ClusterRequest) -> Result<ClusterOutcome, String> {
        let Some(cluster) = self.cluster.as_deref() else { return Err("not connected".to_string()) };
        action::execute(cluster, request, self.access(), &mut |_| {}).map_err(|e| e.to_string())
    }

    fn refresh(&mut self) -> Result<(), Closed> {
        if let Err(message) = self.cluster()? {
            return self.send(ClusterEvent::RefreshFailed(message));
        }
        self.send(ClusterEvent::Busy(ClusterRequest::ListNodes.busy()))?;
        match self.list(&ClusterRequest::ListNodes) {
            Ok(ClusterOutcome::Nodes(nodes)) => self.send(ClusterEvent::Nodes { nodes, at: SystemTime::now() })?,
            Ok(_) => {}
            Err(message) => return self.send(ClusterEvent::RefreshFailed(message)),
        }
        // The ledger second: a cluster without Chaos Mesh or without the RBAC for it still shows its nodes.
        match self.list(&ClusterRequest::ListFaults { namespace: None }) {
            Ok(ClusterOutcome::Faults(listing)) => self.send(ClusterEvent::Faults { listing, at: SystemTime::now() }),
            Ok(_) => Ok(()),
            Err(message) => self.send(ClusterEvent::FaultsFailed(message)),
        }
    }

    /// Carries out `request` through [`action::execute`], its steps reported as [`ClusterEvent::Progress`] and its
    /// end as [`ClusterEvent::Done`].
    fn act(&mut self, request: &ClusterRequest) -> Result<(), Closed> {
        let failure = |message: String| Failure { not_done: request.not_done(), message };
        // Refused before connecting: --read-only needs no cluster to say no.
        if let Some(refused) = request.action().and_then(|action| self.access().allows(action).err()) {
            return self.send(ClusterEvent::Done(Err(failure(refused.to_string()))));
        }
        let (publish, wrap, access) = (self.publish.clone(), self.wrap, self.access());
        let outcome = match self.cluster()? {
            Ok(cluster) => {
                publish.send(wrap(ClusterEvent::Busy(request.busy()))).map_err(|_| Closed)?;
                let steps = publish.clone();
                // Once started, a request runs to its end even if the dashboard closes; its steps go nowhere then.
                let mut progress = move |step: ClusterProgress| {
                    let _ = steps.send(wrap(ClusterEvent::Progress(step)));
                };
                action::execute(cluster, request, access, &mut progress).map(Box::new).map_err(|e| e.to_string())
            }
            Err(message) => Err(message),
        };
        self.send(ClusterEvent::Done(outcome.map_err(failure)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::cluster::action::{ArmRequest, PartitionRequest, ShimRequest, ShimTarget};
    use crate::cluster::arm::ArmedNode;
    use crate::cluster::faults::{Recovered, Which};
    use crate::cluster::gpu_failure::{GpuFailure, GpuFailureRequest, Step};
    use crate::cluster::network::Created;
    use crate::cluster::nic_failure::{NicFailure, NicFailureRequest};
    use crate::cluster::processes::{NodeReply, ProcessListing, ProcessScope};
    use crate::cluster::shim::{self, ShimChange};
    use crate::cluster::signal_inject::{SignalInjectRequest, SignalInjectResult};
    use crate::cluster::xid_inject::{Progress, WatchOutcome, XidInjectRequest, XidInjectResult};
    use crate::dashboard::cluster::shim_dialog::SHIM_FOLLOW;
    use crate::node::XidReport;

    /// A cluster of one node that counts its calls; an injection reports one step and succeeds.
    struct Fake {
        lists: Arc<AtomicUsize>,
    }

    impl Cluster for Fake {
        fn server(&self) -> String {
            "https://fake:6443".to_string()
        }

        fn namespace(&self) -> String {
            "dynamo".to_string()
        }

        fn faults(&self, _: Option<&str>) -> Result<Listing, ClusterError> {
            Ok(Listing { faults: vec![], notes: vec!["NetworkChaos (chaos-mesh.org) is not installed".into()] })
        }

        fn recover(
            &self,
            _: Option<&str>,
            which: &Which,
            progress: &mut (dyn FnMut(&Recovered) + Send),
        ) -> Result<Vec<Recovered>, ClusterError> {
            let Which::Id(fault_id) = which else { return Ok(vec![]) };
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

        fn inject_signal(
            &self,
            request: &SignalInjectRequest,
            _: &mut (dyn FnMut(&crate::cluster::signal_inject::Progress) + Send),
        ) -> Result<SignalInjectResult, ClusterError> {
            Err(ClusterError::Usage(format!("no agent on {}", request.node)))
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

        fn disable_shim(
            &self,
            target: &ShimTarget,
            _: &mut (dyn FnMut(&str) + Send),
        ) -> Result<ShimChange, ClusterError> {
            Err(ClusterError::Usage(format!("{} is not shimmed here", target.workload)))
        }

        fn armed_by(&self, _: &str) -> Result<Option<String>, ClusterError> {
            Ok(None)
        }

        fn gpu_failure(
            &self,
            request: &GpuFailureRequest,
            _: &mut (dyn FnMut(&Step) + Send),
        ) -> Result<GpuFailure, ClusterError> {
            Err(ClusterError::Usage(format!("no GPU failure on {}", request.node)))
        }

        fn nic_failure(
            &self,
            request: &NicFailureRequest,
            _: &mut (dyn FnMut(&Step) + Send),
        ) -> Result<NicFailure, ClusterError> {
            Err(ClusterError::Usage(format!("no NIC failure on {}", request.node)))
        }

        fn processes(&self, _: &ProcessScope) -> Result<ProcessListing, ClusterError> {
            Ok(ProcessListing::default())
        }

        fn process_command(&self, _: &ProcessScope, _: &[String], _: bool) -> Result<Vec<NodeReply>, ClusterError> {
            Err(ClusterError::NoProcesses("no processes here".into()))
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
                uuid: None,
                uuid_source: None,
                mapping_line: None,
                nvl5: None,
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
            Ok(Box::new(Fake { lists: counter.clone() }) as Box<dyn Cluster>)
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
        worker.send(WorkerRequest::Watch(true));
        let failed = wait_for(&events, "failure", |e| matches!(e, ClusterEvent::RefreshFailed(_)));
        let ClusterEvent::RefreshFailed(message) = failed else { unreachable!() };
        assert_eq!(message, "cannot configure a Kubernetes client: attempt 1 fails");
        worker.send(WorkerRequest::Refresh);
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
        worker.send(WorkerRequest::Watch(true));
        for _ in 0..5 {
            wait_for(&events, "a periodic refresh", is_nodes);
        }
        worker.send(WorkerRequest::Watch(false));
        // Each injection is followed by exactly one refresh; with the view closed, nothing else lists the nodes.
        let mut counts = Vec::new();
        for gpu in [1, 2] {
            let request = ClusterRequest::InjectXid(Box::new(XidInjectRequest::new("gpu-a", gpu, 79)));
            worker.send(WorkerRequest::Act(request));
            wait_for(
                &events,
                "the injection",
                |e| matches!(e, ClusterEvent::Done(Ok(o)) if matches!(&**o, ClusterOutcome::Xid(r) if r.fault_id == format!("fl-{gpu}"))),
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
        worker.send(WorkerRequest::Act(ClusterRequest::InjectXid(Box::new(request.clone()))));
        let step = wait_for(&events, "a step", |e| matches!(e, ClusterEvent::Progress(_)));
        assert!(
            matches!(step, ClusterEvent::Progress(ClusterProgress::Xid(Progress::Agent { pod })) if pod == "faultline-node-a")
        );
        let done = wait_for(&events, "the result", |e| matches!(e, ClusterEvent::Done(_)));
        assert!(
            matches!(done, ClusterEvent::Done(Ok(o)) if matches!(&*o, ClusterOutcome::Xid(r) if r.watch.as_ref().is_some_and(|w| w.cordoned)))
        );

        let (worker, events, _) = start(0, WorkerSettings { read_only: true, ..SLOW });
        worker.send(WorkerRequest::Act(ClusterRequest::InjectXid(Box::new(request))));
        let done = wait_for(&events, "the refusal", |e| matches!(e, ClusterEvent::Done(_)));
        assert!(matches!(&done, ClusterEvent::Done(Err(f)) if f.message == "--read-only: refusing to inject an XID"));
        let ClusterEvent::Done(Err(failure)) = done else { unreachable!() };
        assert_eq!(failure.to_string(), "XID not injected: --read-only: refusing to inject an XID");
    }

    #[test]
    fn the_real_session_reports_a_missing_context_as_the_cluster_error() {
        let context = "faultline-test-no-such-context";
        let connect = session_connector(ConnectOptions { context: Some(context.into()), namespace: None });
        let (publish, events) = mpsc::channel();
        let worker = spawn(connect, SLOW, publish, |event| event);
        worker.send(WorkerRequest::Watch(true));
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
        worker.send(WorkerRequest::Act(ClusterRequest::recover_fault("fl-0123456789ab")));
        let busy = wait_for(&events, "busy", |e| matches!(e, ClusterEvent::Busy(b) if b.starts_with("recovering")));
        assert!(matches!(busy, ClusterEvent::Busy(b) if b == "recovering fault fl-0123456789ab"));
        let step = wait_for(&events, "a step", |e| matches!(e, ClusterEvent::Progress(_)));
        assert!(
            matches!(&step, ClusterEvent::Progress(l) if l.to_string() == "fl-0123456789ab NetworkPolicy dynamo/faultline-fl-0123456789ab: deleted"),
            "{step:?}"
        );
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::Done(_)));
        assert!(
            matches!(&done, ClusterEvent::Done(Ok(o)) if o.to_string() == "fault fl-0123456789ab recovered: 1 object handled")
        );
        wait_for(&events, "the nodes", is_nodes);
        let faults = wait_for(&events, "the faults", |e| matches!(e, ClusterEvent::Faults { .. }));
        assert!(matches!(faults, ClusterEvent::Faults { listing, .. } if listing.notes.len() == 1));

        let shim = ShimRequest {
            namespace: "dynamo".into(),
            workload: crate::cluster::shim_rollout::Workload::Deployment("vllm".into()),
            spec: crate::cluster::shim_rollout::ShimSpec::new(shm_proto::Kind::Cuda),
            ttl: Duration::from_secs(60),
            follow: Some(SHIM_FOLLOW),
        };
        worker.send(WorkerRequest::Act(ClusterRequest::EnableShim(Box::new(shim))));
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::Done(_)));
        assert!(
            matches!(&done, ClusterEvent::Done(Ok(o)) if o.to_string() == "cuda shim in Deployment vllm (namespace dynamo): fault fl-00000000000a; rollout 0/1 updated, not finished after 60 s (it goes on)"),
            "{done:?}"
        );
        worker.send(WorkerRequest::Act(ClusterRequest::ArmNode(ArmRequest {
            node: "gpu-a".into(),
            xid: 79,
            ttl: Duration::from_secs(60),
        })));
        let done = wait_for(&events, "the outcome", |e| matches!(e, ClusterEvent::Done(_)));
        assert!(matches!(&done, ClusterEvent::Done(Err(f)) if f.message == "node gpu-a has no agent"), "{done:?}");
    }

    #[test]
    fn read_only_refuses_every_action() {
        let (worker, events, _) = start(0, WorkerSettings { read_only: true, ..SLOW });
        let requests = [
            (ClusterRequest::recover_fault("fl-0123456789ab"), "recover faults"),
            (
                ClusterRequest::ArmNode(ArmRequest { node: "gpu-a".into(), xid: 79, ttl: Duration::from_secs(60) }),
                "arm a node",
            ),
        ];
        for (request, verb) in requests {
            worker.send(WorkerRequest::Act(request));
            let done = wait_for(&events, "the refusal", |e| matches!(e, ClusterEvent::Done(_)));
            let expected = format!("--read-only: refusing to {verb}");
            assert!(matches!(&done, ClusterEvent::Done(Err(f)) if f.message == expected), "{done:?}");
        }
    }
}
