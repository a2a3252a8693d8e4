//! The cluster view's worker thread: the only place the dashboard talks to Kubernetes. Every
//! [`crate::cluster::Session`] call blocks on the network, so none may run on the UI thread; the view sends
//! [`ClusterRequest`]s here and hears back through [`ClusterEvent`]s, the same way the sampler publishes snapshots.
//!
//! Nothing connects until the first request (the view opening), so the process view and the demo never need a
//! cluster. A failed connection is not cached: the next refresh tries again, so fixing the kubeconfig and pressing
//! `r` is enough. While the view is open the node list is refreshed every [`REFRESH_EVERY`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::cluster::nodes::GpuNode;
use crate::cluster::xid_inject::{Progress, XidInjectRequest, XidInjectResult};
use crate::cluster::{ClusterError, ConnectOptions, Session};

/// How often the open view lists the nodes again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What the view asks of the worker. Cluster actions to come (fault list, partitions, shims, recovery) are new
/// variants here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// The view opened (`true`: connect if needed, list the nodes now and every [`REFRESH_EVERY`]) or closed
    /// (`false`: stop refreshing).
    Watch(bool),
    /// List the nodes now.
    Refresh,
    /// Inject an XID (see [`crate::cluster::xid_inject::inject`]); the node list is refreshed afterwards.
    InjectXid(Box<XidInjectRequest>),
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
}

/// The cluster calls the worker makes ([`Session`] in the dashboard; a double in tests).
pub trait ClusterBackend {
    /// The API server's URL.
    fn server(&self) -> String;
    /// [`Session::gpu_nodes`].
    fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError>;
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
                    self.send(ClusterEvent::Connected { server: backend.server() })?;
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
            Ok(nodes) => self.send(ClusterEvent::Nodes { nodes, at: SystemTime::now() }),
            Err(message) => self.send(ClusterEvent::RefreshFailed(message)),
        }
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
        assert!(matches!(connected, ClusterEvent::Connected { server } if server == "https://fake:6443"));
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
}
