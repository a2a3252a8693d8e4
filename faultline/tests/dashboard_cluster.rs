//! The dashboard's cluster view (`v`) and its inject-XID and kernel-log signal dialogs, drawn with ratatui's `TestBackend` from fixture
//! Kubernetes objects summarised by the real `cluster::nodes::summarize`, fed to the model as the cluster worker
//! would (no cluster, no worker thread: the requests the view makes are read from its outbox). Review changed
//! snapshots with `cargo insta review`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use faultline::cluster::action::{ArmRequest, ClusterOutcome, ClusterProgress, PartitionRequest};
use faultline::cluster::faults::{Fault, Listing};
use faultline::cluster::faults::{Recovered, Which};
use faultline::cluster::ledger::FaultKind;
use faultline::cluster::nodes::{self, GpuNode};
use faultline::cluster::shim_rollout::Workload;
use faultline::cluster::signal_inject::{self, KernelSignal, SignalInjectRequest};
use faultline::cluster::xid_inject::{self, Progress, XidInjectRequest};
use faultline::cluster::ClusterError;
use faultline::dashboard::app::{update, Action, App, Overlay, View};
use faultline::dashboard::cluster::worker::Failure;
use faultline::dashboard::cluster::{ClusterEvent, ClusterRequest, WorkerRequest};
use faultline::dashboard::processes::sampler::{Snapshot, Update};
use faultline::dashboard::render::{self, theme::Theme};
use faultline::node::XidReport;
use k8s_openapi::api::core::v1::{
    Event, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodSpec, PodStatus, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 36;

fn node(name: &str, gpu_label: bool, ready: bool, cordoned: bool, gpus: u32, taints: &[(&str, &str, &str)]) -> Node {
    let mut labels = BTreeMap::new();
    if gpu_label {
        labels.insert(nodes::GPU_LABEL.0.to_string(), nodes::GPU_LABEL.1.to_string());
    }
    let taints = taints
        .iter()
        .map(|(key, value, effect)| Taint {
            key: key.to_string(),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: effect.to_string(),
            ..Taint::default()
        })
        .collect();
    let condition = NodeCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..NodeCondition::default()
    };
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec { unschedulable: Some(cordoned), taints: Some(taints), ..NodeSpec::default() }),
        status: Some(NodeStatus {
            capacity: Some(BTreeMap::from([(nodes::GPU_RESOURCE.to_string(), Quantity(gpus.to_string()))])),
            conditions: Some(vec![condition]),
            ..NodeStatus::default()
        }),
    }
}

fn agent_pod(name: &str, node: &str, phase: &str, ready: bool) -> Pod {
    let condition = PodCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..PodCondition::default()
    };
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        spec: Some(PodSpec { node_name: Some(node.into()), ..PodSpec::default() }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![condition]),
            ..PodStatus::default()
        }),
    }
}

/// The Event faultline records for an injection, built by the real `xid_inject::xid_event`.
fn xid_event(node: &Node, xid: u32, name: &str, severity: &str, gpu: u32, fault_id: &str, at: &str) -> Event {
    let report = XidReport {
        fault_id: fault_id.into(),
        xid,
        xid_name: name.into(),
        severity: severity.into(),
        gpu,
        pci: format!("0000:{:02x}:00.0", 0x3b + gpu),
        pci_source: "driver".into(),
        uuid: None,
        uuid_source: None,
        mapping_line: None,
        nvl5: None,
        line: String::new(),
        dry_run: false,
        confirmed: true,
        kmsg_seq: Some(1),
        kmsg_priority: Some(11),
    };
    xid_inject::xid_event(node, "faultline-system", &report, at.parse::<Timestamp>().expect("a timestamp"))
}

/// gpu-a: cordoned and tainted after two XIDs, agent ready. gpu-b: no agent pod. gpu-c: not ready, its agent
/// pending. cpu-1 has no GPU label and is not listed.
fn fixture_nodes() -> Vec<GpuNode> {
    let gpu_a = node(
        "gpu-a",
        true,
        true,
        true,
        8,
        &[("nvidia.com/gpu-health", "xid-79", "NoSchedule"), ("node.kubernetes.io/unschedulable", "", "NoSchedule")],
    );
    let gpu_b = node("gpu-b", true, true, false, 4, &[]);
    let gpu_c = node("gpu-c", true, false, false, 2, &[("node.kubernetes.io/unreachable", "", "NoExecute")]);
    let cpu = node("cpu-1", false, true, false, 0, &[]);
    let pods = [
        agent_pod("faultline-node-7xk2p", "gpu-a", "Running", true),
        agent_pod("faultline-node-q9v4d", "gpu-c", "Pending", false),
    ];
    let events = [
        xid_event(&gpu_a, 48, "Double bit ECC error", "critical", 3, "fl-0f3a9c21d7e4", "2026-01-02T03:04:05Z"),
        xid_event(&gpu_a, 79, "GPU has fallen off the bus", "critical", 0, "fl-5b1e77a0c3d2", "2026-01-02T03:10:00Z"),
    ];
    nodes::summarize(&[gpu_c, cpu, gpu_a, gpu_b], &pods, &events)
}

/// 2026-01-02 03:10:12 UTC.
fn listed_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_412)
}

fn app(read_only: bool) -> App {
    let mut app = App::new(read_only, None, Theme { color: false });
    update(&mut app, Action::Resize(WIDTH, HEIGHT));
    update(&mut app, Action::Engine(Update::Snapshot(Arc::new(Snapshot::default()))));
    app
}

fn press(app: &mut App, code: KeyCode) {
    update(app, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn worker_says(app: &mut App, event: ClusterEvent) {
    update(app, Action::Cluster(event));
}

/// The cluster view open, as the worker answers it: connected, three GPU nodes listed.
fn cluster_view(read_only: bool) -> App {
    let mut app = app(read_only);
    press(&mut app, KeyCode::Char('v'));
    assert_eq!(app.view, View::Cluster);
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Watch(true)], "opening connects");
    worker_says(&mut app, ClusterEvent::Busy("connecting to the cluster".into()));
    worker_says(
        &mut app,
        ClusterEvent::Connected { server: "https://10.0.0.1:6443/".into(), namespace: "dynamo".into() },
    );
    worker_says(&mut app, ClusterEvent::Nodes { nodes: fixture_nodes(), at: listed_at() });
    app
}

fn screen(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test terminal");
    terminal.draw(|frame| render::render(frame, app)).expect("draws");
    terminal
}

#[test]
fn the_process_view_never_asks_for_the_cluster() {
    let mut app = app(false);
    for key in ['j', 'k', 's', 'f', 'f', '?'] {
        press(&mut app, KeyCode::Char(key));
    }
    press(&mut app, KeyCode::Esc);
    assert!(app.cluster.take_requests().is_empty(), "no cluster request before the view opens");
    assert!(!app.cluster.opened);
    assert!(screen(&app).backend().to_string().contains("v cluster"), "the status line names the key");
}

#[test]
fn cluster_view_with_three_gpu_nodes() {
    let app = cluster_view(false);
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-a"));
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn keys_and_the_mouse_select_nodes_and_refresh() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-b"));
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-c"));
    press(&mut app, KeyCode::Up);
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-b"));
    let text = screen(&app).backend().to_string();
    assert!(text.contains("Recent XIDs on gpu-b") && text.contains("No XID injected here recently"), "{text}");

    // The node table's first row is under the title, the table's border and its header.
    let table = render::cluster::layout(app.area(), &app.cluster).nodes;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: table.x + 3,
        row: table.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    update(&mut app, Action::Mouse(click));
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-a"));
    let wheel = MouseEvent { kind: MouseEventKind::ScrollDown, ..click };
    update(&mut app, Action::Mouse(wheel));
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-b"));

    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Refresh]);
    // A refresh that finds the selected node gone selects the first one.
    let mut fewer = fixture_nodes();
    fewer.remove(1);
    worker_says(&mut app, ClusterEvent::Nodes { nodes: fewer, at: listed_at() });
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-a"));

    press(&mut app, KeyCode::Char('v'));
    assert_eq!(app.view, View::Processes);
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Watch(false)], "no refreshes while hidden");
}

#[test]
fn cluster_view_shows_a_connection_error_and_stays_usable() {
    let mut app = app(false);
    press(&mut app, KeyCode::Char('v'));
    let error = ClusterError::Config {
        context: None,
        message: "failed to infer config: in-cluster: (failed to read an incluster environment variable: \
                  environment variable not found), kubeconfig: (failed to read kubeconfig from \
                  '\"/home/me/.kube/config\"': No such file or directory (os error 2))"
            .into(),
    };
    worker_says(&mut app, ClusterEvent::Busy("connecting to the cluster".into()));
    worker_says(&mut app, ClusterEvent::RefreshFailed(error.to_string()));
    insta::assert_snapshot!(screen(&app).backend());

    // The keys still work: x has no node to act on, r retries, v goes back.
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, Overlay::None);
    assert!(app.status.as_ref().is_some_and(|s| s.error && s.text.starts_with("no GPU node selected")));
    app.cluster.take_requests();
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Refresh]);
    worker_says(&mut app, ClusterEvent::Nodes { nodes: fixture_nodes(), at: listed_at() });
    assert_eq!(app.cluster.error, None, "a working refresh clears the error");
    press(&mut app, KeyCode::Char('v'));
    assert_eq!(app.view, View::Processes);
}

#[test]
fn xid_dialog() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('x'));
    assert!(matches!(&app.overlay, Overlay::Xid(dialog) if dialog.node.name == "gpu-a"), "{:?}", app.status);
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn xid_dialog_names_the_typed_xid_and_refuses_an_unknown_one_without_force() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('x'));
    press(&mut app, KeyCode::Down);
    for c in "200".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let text = screen(&app).backend().to_string();
    assert!(text.contains("XID 200 is not in faultline's catalog"), "{text}");
    press(&mut app, KeyCode::Enter);
    let Overlay::Xid(dialog) = &app.overlay else { panic!("the dialog stays open") };
    assert!(!dialog.form.confirming, "an invalid draft asks nothing");
    assert!(app.status.as_ref().is_some_and(|s| s.error && s.text.starts_with("not injected: XID: XID 200")));

    // Force on (Space on the third field): the question says so.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    let text = screen(&app).backend().to_string();
    assert!(text.contains("Inject XID 200 (XID outside the faultline catalog, forced) on GPU 0 of node gpu-a? y/n"));

    // Back to the catalog with ←: the name follows.
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Left);
    let text = screen(&app).backend().to_string();
    assert!(text.contains("161") && text.contains("Channel Retirement Failure · medium"), "{text}");
    assert!(app.cluster.take_requests().is_empty(), "nothing sent without y");
}

#[test]
fn xid_dialog_confirmation() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('x'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app).backend());

    // Enter again is not a yes (a double press must not inject); y is.
    press(&mut app, KeyCode::Enter);
    assert!(app.cluster.take_requests().is_empty());
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.overlay, Overlay::None);
    let expected = XidInjectRequest { watch: Some(Duration::from_secs(300)), ..XidInjectRequest::new("gpu-a", 0, 79) };
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Act(ClusterRequest::InjectXid(Box::new(expected)))]);

    // The worker's steps and result land in the log and the status line.
    worker_says(
        &mut app,
        ClusterEvent::Progress(ClusterProgress::Xid(Progress::Agent { pod: "faultline-node-7xk2p".into() })),
    );
    worker_says(
        &mut app,
        ClusterEvent::Progress(ClusterProgress::Xid(Progress::Cordoned { elapsed: Duration::from_secs(12) })),
    );
    worker_says(
        &mut app,
        ClusterEvent::Done(Err(Failure {
            not_done: "XID not injected",
            message: "cannot create events in faultline-system: boom (HTTP 500)".into(),
        })),
    );
    let status = app.status.clone().expect("a status line");
    assert!(
        status.error && status.text == "XID not injected: cannot create events in faultline-system: boom (HTTP 500)"
    );
    let text = screen(&app).backend().to_string();
    assert!(text.contains("running `faultline node xid` in agent pod faultline-node-7xk2p"), "{text}");
    assert!(text.contains("node cordoned after 12.0 s"), "{text}");
}

#[test]
fn read_only_refuses_the_xid_dialog() {
    let mut app = cluster_view(true);
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, Overlay::None);
    let status = app.status.clone().expect("a status line");
    assert!(status.error && status.text == "--read-only: refusing to inject an XID", "{status:?}");
    assert!(app.cluster.take_requests().is_empty());
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn xid_dialog_nvlink5_rows() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('x'));
    press(&mut app, KeyCode::Down);
    for c in "149".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Down);
    for c in "NETIR_LINK_DOWN".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Right);
    insta::assert_snapshot!(screen(&app).backend());
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    let requests = app.cluster.take_requests();
    let [WorkerRequest::Act(ClusterRequest::InjectXid(request))] = requests.as_slice() else {
        panic!("an XID injection: {requests:?}")
    };
    assert_eq!(
        (request.xid, request.nvl5.subcode.as_deref(), request.nvl5.link),
        (149, Some("NETIR_LINK_DOWN"), Some(1))
    );
}

#[test]
fn signal_dialog_nic() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('i'));
    assert!(matches!(&app.overlay, Overlay::Signal(dialog) if dialog.node.name == "gpu-a"), "{:?}", app.status);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Right);
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn signal_dialog_confirmation() {
    let mut app = cluster_view(false);
    press(&mut app, KeyCode::Char('i'));
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app).backend());
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.overlay, Overlay::None);
    let expected = SignalInjectRequest::new("gpu-a", KernelSignal::FallenOff { gpu: 0, pci: None, pci_id: None });
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Act(ClusterRequest::InjectSignal(Box::new(expected)))]);
    worker_says(
        &mut app,
        ClusterEvent::Progress(ClusterProgress::Signal(signal_inject::Progress::Agent {
            pod: "faultline-node-7xk2p".into(),
            command: "fallen-off",
        })),
    );
    worker_says(
        &mut app,
        ClusterEvent::Done(Err(Failure {
            not_done: "nothing written",
            message: "pod faultline-node-7xk2p: no GPU 0".into(),
        })),
    );
    let status = app.status.clone().expect("a status line");
    assert!(status.error && status.text == "nothing written: pod faultline-node-7xk2p: no GPU 0", "{status:?}");
    let text = screen(&app).backend().to_string();
    assert!(text.contains("running `faultline node fallen-off` in agent pod faultline-node-7xk2p"), "{text}");
}

#[test]
fn read_only_refuses_the_signal_dialog() {
    let mut app = cluster_view(true);
    press(&mut app, KeyCode::Char('i'));
    assert_eq!(app.overlay, Overlay::None);
    let status = app.status.clone().expect("a status line");
    assert!(status.error && status.text == "--read-only: refusing to write to a node's kernel log", "{status:?}");
    assert!(app.cluster.take_requests().is_empty());
}

/// The clock of the fault countdowns: 2026-01-02 03:10:12 UTC, as `listed_at`.
fn fixed_now() -> Timestamp {
    "2026-01-02T03:10:12Z".parse().expect("a timestamp")
}

fn fault(id: &str, kind: FaultKind, object_kind: &str, name: &str, summary: &str, expires_at: Option<&str>) -> Fault {
    Fault {
        fault_id: id.into(),
        kind: Some(kind),
        object_kind: object_kind.into(),
        namespace: (object_kind != "Event").then(|| "dynamo".to_string()),
        name: name.into(),
        summary: summary.into(),
        created_by: Some("me@laptop".into()),
        created_at: Some("2026-01-02T03:00:00Z".into()),
        expires_at: expires_at.map(str::to_string),
        expired: expires_at.is_some_and(|at| at.parse::<Timestamp>().is_ok_and(|t| t <= fixed_now())),
        object: serde_json::Value::Null,
    }
}

/// A partition with 9m48s left, a shim with 1h…, an armed node (ConfigMap) already expired, an XID Event
/// without expiry.
fn fixture_listing() -> Listing {
    Listing {
        faults: vec![
            fault(
                "fl-1a2b3c4d5e6f",
                FaultKind::Partition,
                "NetworkPolicy",
                "faultline-fl-1a2b3c4d5e6f",
                "partition of pods app=worker (Ingress+Egress)",
                Some("2026-01-02T03:20:00Z"),
            ),
            fault(
                "fl-2b3c4d5e6f70",
                FaultKind::Shim,
                "Deployment",
                "vllm-worker",
                "cuda shim, faults on, XID 79, pinned to node gpu-a",
                Some("2026-01-02T04:15:12Z"),
            ),
            fault(
                "fl-3c4d5e6f7081",
                FaultKind::ArmedNode,
                "ConfigMap",
                "faultline-armed-gpu-b",
                "node gpu-b armed: CUDA shims fail from start-up as with XID 79",
                Some("2026-01-02T03:10:00Z"),
            ),
            fault(
                "fl-5b1e77a0c3d2",
                FaultKind::Xid,
                "Event",
                "gpu-a.fl-5b1e77a0c3d2",
                "XID 79 (GPU has fallen off the bus, critical) injected on GPU 0",
                None,
            ),
        ],
        notes: vec!["NetworkChaos (chaos-mesh.org) is not installed: none listed".into()],
    }
}

/// The cluster view with the fixture faults listed and the clock fixed.
fn view_with_faults(read_only: bool) -> App {
    let mut app = cluster_view(read_only);
    app.clock = fixed_now;
    worker_says(&mut app, ClusterEvent::Faults { listing: fixture_listing(), at: listed_at() });
    app
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn faults_table_with_countdown() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.cluster.selected_fault().map(|f| f.name.as_str()), Some("vllm-worker"));
    assert_eq!(app.cluster.selected.as_deref(), Some("gpu-a"), "the node selection stays");
    insta::assert_snapshot!(screen(&app).backend());
    // The countdown is computed when drawn: a later clock shows less time left.
    app.clock = || "2026-01-02T03:19:59Z".parse().expect("a timestamp");
    let text = screen(&app).backend().to_string();
    assert!(text.contains("fl-1a2b3c4d5e6f partition  1s "), "{text}");
}

#[test]
fn recover_confirmation() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('R'));
    assert!(app.status.as_ref().is_some_and(|s| s.error && s.text.starts_with("no fault selected")));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('R'));
    assert!(
        matches!(&app.overlay, Overlay::Ask(ask) if ask.request == ClusterRequest::recover_fault("fl-1a2b3c4d5e6f"))
    );
    insta::assert_snapshot!(screen(&app).backend());

    // n: nothing sent; R and y: the worker is asked, and its lines land in the log.
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.overlay, Overlay::None);
    assert!(app.cluster.take_requests().is_empty());
    press(&mut app, KeyCode::Char('R'));
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.cluster.take_requests(), vec![WorkerRequest::Act(ClusterRequest::recover_fault("fl-1a2b3c4d5e6f"))]);
    let recovered = Recovered {
        fault_id: "fl-1a2b3c4d5e6f".into(),
        object_kind: "NetworkPolicy".into(),
        namespace: Some("dynamo".into()),
        name: "faultline-fl-1a2b3c4d5e6f".into(),
        outcome: "deleted".into(),
    };
    worker_says(&mut app, ClusterEvent::Progress(ClusterProgress::Recovered(recovered.clone())));
    let outcome = ClusterOutcome::Recovered { which: Which::Id("fl-1a2b3c4d5e6f".into()), objects: vec![recovered] };
    assert_eq!(outcome.to_string(), "fault fl-1a2b3c4d5e6f recovered: 1 object handled");
    worker_says(&mut app, ClusterEvent::Done(Ok(Box::new(outcome))));
    let mut left = fixture_listing();
    left.faults.remove(0);
    worker_says(&mut app, ClusterEvent::Faults { listing: left, at: listed_at() });
    let text = screen(&app).backend().to_string();
    assert!(text.contains("dynamo/faultline-fl-1a2b3c4d5e6f: deleted"), "{text}");
    assert!(!text.contains("fl-1a2b3c4d5e6f partition"), "the table refreshed: {text}");
    assert_eq!(app.cluster.selected_fault().map(|f| f.fault_id.as_str()), Some("fl-2b3c4d5e6f70"));
}

#[test]
fn partition_dialog_valid() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('p'));
    let Overlay::Partition(dialog) = &app.overlay else { panic!("the partition dialog: {:?}", app.status) };
    assert_eq!(dialog.namespace, "dynamo", "the context's namespace");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "app=worker");
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "app=frontend");
    for _ in 0..4 {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Char(' '));
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn partition_dialog_invalid_shows_the_error() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "app=worker,tier");
    press(&mut app, KeyCode::Enter);
    let Overlay::Partition(dialog) = &app.overlay else { panic!("stays open") };
    assert!(!dialog.form.confirming, "an invalid draft asks nothing");
    assert!(app.status.as_ref().is_some_and(|s| s.error && s.text.starts_with("no partition: Selector: invalid")));
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn partition_dialog_chaos_mode() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "app=worker");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    // Action: partition → loss.
    press(&mut app, KeyCode::Right);
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn partition_dialog_confirmation() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "app=worker");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "90s");
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app).backend());

    press(&mut app, KeyCode::Enter);
    assert!(app.cluster.take_requests().is_empty(), "Enter is not a yes");
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.overlay, Overlay::None);
    let requests = app.cluster.take_requests();
    let [WorkerRequest::Act(ClusterRequest::CreatePartition(request))] = requests.as_slice() else {
        panic!("{requests:?}")
    };
    let PartitionRequest::Policy { spec, ttl } = request.as_ref() else { panic!("a NetworkPolicy: {request:?}") };
    assert_eq!((spec.namespace.as_str(), *ttl), ("dynamo", Duration::from_secs(90)));
    assert_eq!(spec.selector.get("app").map(String::as_str), Some("worker"));
}

#[test]
fn shim_dialog() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('s'));
    let Overlay::Shim(dialog) = &app.overlay else { panic!("the shim dialog: {:?}", app.status) };
    assert_eq!(dialog.node.as_deref(), Some("gpu-a"), "the selected node");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "vllm-worker");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "13");
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn shim_dialog_confirmation() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    type_text(&mut app, "vllm-worker");
    for _ in 0..3 {
        press(&mut app, KeyCode::Down);
    }
    type_text(&mut app, "79");
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app).backend());

    press(&mut app, KeyCode::Char('y'));
    let requests = app.cluster.take_requests();
    let [WorkerRequest::Act(ClusterRequest::EnableShim(request))] = requests.as_slice() else { panic!("{requests:?}") };
    assert_eq!(request.workload, Workload::Deployment("vllm-worker".into()));
    assert_eq!((request.spec.xid, request.spec.node.as_deref()), (Some(79), Some("gpu-a")));
    assert!(app.status.as_ref().is_some_and(|s| !s.error && s.text.starts_with("rolling the cuda shim into")));
}

#[test]
fn arming_the_selected_node_asks_first() {
    let mut app = view_with_faults(false);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('a'));
    let text = screen(&app).backend().to_string();
    assert!(text.contains("Arm node gpu-b: CUDA shims started there fail"), "{text}");
    press(&mut app, KeyCode::Esc);
    assert!(app.cluster.take_requests().is_empty());
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        app.cluster.take_requests(),
        vec![WorkerRequest::Act(ClusterRequest::ArmNode(ArmRequest {
            node: "gpu-b".into(),
            xid: 79,
            ttl: Duration::from_secs(1800)
        }))]
    );
}

#[test]
fn read_only_refuses_every_cluster_action() {
    let mut app = view_with_faults(true);
    press(&mut app, KeyCode::Tab);
    for (key, verb) in
        [('p', "create a partition"), ('s', "roll a shim out"), ('a', "arm a node"), ('R', "recover faults")]
    {
        press(&mut app, KeyCode::Char(key));
        assert_eq!(app.overlay, Overlay::None, "{key}");
        let status = app.status.clone().expect("a status line");
        assert!(status.error && status.text == format!("--read-only: refusing to {verb}"), "{status:?}");
    }
    assert!(app.cluster.take_requests().is_empty());
}
