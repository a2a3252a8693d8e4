//! Cluster-wide live processes: what they cost the dashboard, and how fast a change reaches a pod's process.
//!
//!     cargo bench -p faultline --bench cluster            # both parts
//!     cargo bench -p faultline --bench cluster -- render  # only the frame times
//!
//! - **render**: the dashboard with 50 nodes × 20 processes (simulated agent sessions: each node's snapshot, as
//!   `faultline node watch` sends it, fed to the dashboard's engine twice a second) — the engine's work per node
//!   snapshot and per tick, and the time to draw one 160×50 frame (ratatui's `TestBackend`: layout, widgets and the
//!   buffer, without the terminal's escape sequences). Budget: a frame in ≤ 10 ms.
//! - **latency**: one real shimmed UCX program "in" a pod, reached through the local API emulator's exec endpoint
//!   (`faultline/tests/kmock_server.py`, PyPI kmock), with the real agent session (`faultline node watch`) and the
//!   dashboard's cluster feed. Each change is a new probability; the time is from handing the command to the feed
//!   until the program's segment holds the new value. Budget: ≤ 1 s at the 99th percentile. Skipped, with a note,
//!   where kmock is not installed.
//!
//! Results and the machine they came from: faultline/benches/CLUSTER.md. Not a test: it never fails on a budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::cluster::live::{Feed, FeedEvent, FeedSettings};
use faultline::dashboard::app::{update, Action, App};
use faultline::dashboard::processes::sampler::{Key, NodeId, Sampler, Update};
use faultline::dashboard::render::{self, theme::Theme};
use faultline::state::ProcessState;
use faultline::targets::{self, Purpose, Selection, Target};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::{json, Value};
use shm_proto::segment::{self, Found, Identity};
use shm_proto::sync::Ordering::Relaxed;
use shm_proto::{Kind, SegmentMap, Strategy};

const NODES: u32 = 50;
const PER_NODE: u32 = 20;
const FRAMES: usize = 300;
const CHANGES: usize = 200;

fn main() {
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if wants("render") {
        render_bench();
    }
    if wants("latency") {
        latency_bench();
    }
}

/// `p50 / p99 / max` of `samples` in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    format!("p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n = {})", at(0.5), at(0.99), at(1.0), samples.len())
}

/// A made-up process's segment in private memory, as the dashboard's snapshot tests make them.
fn made_up_target(pid: u32) -> Target {
    let hooks = ["ucp_get_nbx", "ucp_put_nbx", "ucp_tag_send_nbx", "ucp_ep_flush_nbx", "ucp_worker_flush_nbx"];
    let strategy = Strategy::defaults(shm_proto::codes::default_pool(Kind::Ucx), |_| true);
    let pod = shm_proto::pod::PodIdentity::default();
    let identity = Identity {
        kind: Kind::Ucx,
        pid,
        pid_ns: shm_proto::process::own_pid_ns(),
        start_time_ticks: 1,
        exe_name: "vllm",
        hooks: &hooks,
        default_arm_mask: [(1 << hooks.len()) - 1, 0],
        pod: &pod,
    };
    let (map, _private) = SegmentMap::create(&identity, &strategy).expect("segment created");
    Target { found: Found::local(segment::file_name(Kind::Ucx, pid).into(), Kind::Ucx, pid), map, alive: true }
}

/// One node's snapshot: `PER_NODE` processes in as many pods, counters growing with `round`.
fn node_snapshot(template: &Value, node: u32, round: u64) -> FeedEvent {
    let processes = (0..PER_NODE)
        .map(|i| {
            let mut state = template.clone();
            state["pid"] = (10_000 + i).into();
            state["namespace"] = "dynamo".into();
            state["pod"] = format!("decode-{node}-{i}").into();
            state["container"] = "worker".into();
            state["calls"] = (round * 1000 * u64::from(i + 1)).into();
            state["faults"] = (round * 50 * u64::from(i + 1)).into();
            state
        })
        .collect();
    FeedEvent::Snapshot { node: format!("gpu-{node:02}"), processes }
}

fn render_bench() {
    // Private segments only: nothing is written to /dev/shm.
    std::env::set_var("FAULTLINE_SHM_DIR", "/nonexistent/faultline-cluster-bench");
    let target = made_up_target(4242);
    target.segment().stripes[0].hooks[1].calls.store(12_345, Relaxed);
    let mut template = serde_json::to_value(ProcessState::read(&target).expect("state")).expect("json");
    template["records"] = json!([]);
    let mut sampler = Sampler::offline();
    let focus = Key { node: NodeId(1), pid: 10_000, kind: Kind::Ucx };
    sampler.set_focus(Some(focus));
    let mut feed_times = Vec::new();
    for round in 0..4u64 {
        for node in 0..NODES {
            let event = node_snapshot(&template, node, round);
            let started = Instant::now();
            sampler.on_feed(event, Duration::from_millis(500 * round));
            feed_times.push(started.elapsed());
        }
    }
    let mut tick_times = Vec::new();
    let mut snapshot = None;
    for tick in 0..50u64 {
        let started = Instant::now();
        let sampled = sampler.tick(Duration::from_millis(2000 + 100 * tick));
        tick_times.push(started.elapsed());
        snapshot = Some(sampled);
    }
    let snapshot = snapshot.expect("ticked");
    assert_eq!(snapshot.rows.len(), (NODES * PER_NODE) as usize);
    let mut app = App::new(false, None, Theme { color: true });
    update(&mut app, Action::Resize(160, 50));
    update(&mut app, Action::Engine(Update::Snapshot(Arc::new(snapshot))));
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("test terminal");
    let mut frames = Vec::new();
    for _ in 0..FRAMES {
        let started = Instant::now();
        terminal.draw(|frame| render::render(frame, &app)).expect("draws");
        frames.push(started.elapsed());
    }
    println!("render: {NODES} nodes × {PER_NODE} processes, 160×50");
    println!("  engine, one node's snapshot taken in: {}", percentiles(feed_times));
    println!("  engine, one tick (every row, the focused detail): {}", percentiles(tick_times));
    println!("  one frame drawn: {}", percentiles(frames));
}

fn latency_bench() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_kmock = std::process::Command::new(&python).args(["-c", "import kmock"]).output();
    if !has_kmock.is_ok_and(|o| o.status.success()) {
        println!("latency: skipped (PyPI kmock is not installed: scripts/install-deps.sh --test installs it)");
        return;
    }
    let shm = testkit::ShmDir::new();
    let artifacts = testkit::artifacts();
    let selfloop = testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"]);
    let mut command = std::process::Command::new(selfloop);
    command
        .args(["--stdin", "--quiet", "--ops", "put"])
        .env("LD_PRELOAD", &artifacts.ucx_shim)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("FAULTLINE_POD_NAMESPACE", "dynamo")
        .env("FAULTLINE_POD_NAME", "decode-0")
        .env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let program = testkit::Program::spawn(command);
    let pid = program.pid();
    testkit::wait_until("the shim creates its segment", || shm.segment("ucx", pid).exists());

    let spec = json!({
        "objects": [
            {"resource": "v1/nodes", "body": {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "gpu-a", "uid": "uid-gpu-a", "labels": {"nvidia.com/gpu.present": "true"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}},
            {"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "faultline-node-a", "namespace": "faultline-system",
                             "labels": {"app.kubernetes.io/name": "faultline-node"}},
                "spec": {"nodeName": "gpu-a", "containers": [{"name": "agent", "image": "faultline"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}},
        ],
        "resources": ["v1/events"],
        "exec": {"faultline-system/faultline-node-a":
            {"faultline": artifacts.faultline, "env": {"FAULTLINE_SHM_DIR": shm.path()}}},
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kmock_server.py");
    let mut server = testkit::Program::spawn({
        let mut command = std::process::Command::new(&python);
        command.arg(script);
        command
    });
    server.send(&spec.to_string());
    let port = server.lines_until(|l| l.starts_with("PORT ")).last().cloned().unwrap_or_default();
    let port = port.trim_start_matches("PORT ");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\ncurrent-context: kmock\n\
             users:\n- name: tester\n  user: {{}}\n"
        ),
    )
    .expect("kubeconfig");
    std::env::set_var("KUBECONFIG", &kubeconfig);

    let (events, inbox) = std::sync::mpsc::channel();
    let feed = Feed::spawn(Default::default(), FeedSettings::default(), Box::new(move |e| events.send(e).is_ok()));
    let listed = |event: &FeedEvent| matches!(event, FeedEvent::Snapshot { processes, .. } if !processes.is_empty());
    while !listed(&inbox.recv_timeout(Duration::from_secs(60)).expect("the agent's first snapshot")) {}

    let selection = Selection { pids: vec![pid], kind: Some(Kind::Ucx) };
    std::env::set_var("FAULTLINE_SHM_DIR", shm.path());
    let found = targets::select(&selection, Purpose::Read).expect("the program's segment");
    let target = found.targets.into_iter().next().expect("the program's segment");
    let mut applied = Vec::new();
    let mut answered = Vec::new();
    for change in 0..CHANGES {
        let ppm = 1_000 + (change as u32 % 900) * 1_000;
        let args =
            ["--pid".to_string(), pid.to_string(), "probability".into(), shm_proto::config::format_probability(ppm)];
        let started = Instant::now();
        feed.command("gpu-a", change as u64, args.to_vec());
        while ProcessState::read(&target).ok().map(|s| s.probability_ppm) != Some(ppm) {
            assert!(started.elapsed() < Duration::from_secs(30), "change {change} never arrived");
            std::thread::sleep(Duration::from_micros(200));
        }
        applied.push(started.elapsed());
        loop {
            match inbox.recv_timeout(Duration::from_secs(30)).expect("the reply") {
                FeedEvent::Reply { token, reply, .. } if token == change as u64 => {
                    assert_eq!(reply.as_ref().ok().and_then(|r| r["exit"].as_u64()), Some(0), "{reply:?}");
                    break;
                }
                _ => {}
            }
        }
        answered.push(started.elapsed());
    }
    println!("latency: {CHANGES} probability changes through the feed, exec endpoint and agent session");
    println!("  in the program's segment after: {}", percentiles(applied));
    println!("  the agent's reply back after: {}", percentiles(answered));
    drop(feed);
    drop(server);
    drop(program);
}
