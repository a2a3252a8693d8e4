//! `faultline cluster …` against a local Kubernetes API emulator (PyPI `kmock`, started by each test from
//! `tests/kmock_server.py` on a free loopback port): GPU node listing, Event creation, error paths (no agent pod,
//! node not found, forbidden, unreachable, unknown context). The emulator's exec endpoint runs the agent's
//! `faultline node xid` for real; where a test needs NVSentinel's cordon the moment the XID lands, the `PodExec`
//! test double runs the same real command on this machine and plays the monitor's part (a canned cordon), so the
//! chain down to the kernel log is real there too except the exec transport.

use std::io::{Read, Write};
use std::net::TcpStream;

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::cluster::exec::{ExecOutput, ScriptedExec};
use faultline::cluster::xid_inject::{self, Progress, XidInjectRequest, EVENT_REASON};
use faultline::cluster::{nodes, ClusterError};
use serde_json::{json, Value};

mod kmock;

use kmock::{agent_pod, exec, node, Kmock, NAMESPACE};

/// gpu-a: 8 GPUs, agent ready. gpu-b: cordoned and tainted, agent pending. gpu-c: no agent. cpu-1: no GPU label
/// (kmock ignores label selectors, so faultline must filter it out itself). A stray pod of another app on gpu-c.
fn cluster(forbidden: &[&str]) -> Value {
    let quarantine = json!([{"key": "nvidia.com/gpu-health", "value": "xid-79", "effect": "NoSchedule"}]);
    let stray = json!({"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"nodeName": "gpu-c"}, "status": {"phase": "Running"}}});
    let old_xid = json!({"resource": "v1/events", "body": {"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "gpu-a.fl-000000000001", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "faultline", "faultline.dev/fault-id": "fl-000000000001"}},
        "involvedObject": {"kind": "Node", "name": "gpu-a", "apiVersion": "v1"},
        "reason": EVENT_REASON, "message": "XID 48 (Double bit ECC error, critical) injected on GPU 3",
        "lastTimestamp": "2026-01-02T03:04:05Z", "type": "Warning"}});
    json!({
        "objects": [
            node("gpu-a", true, 8, false, json!([])),
            node("gpu-b", true, 4, true, quarantine),
            node("gpu-c", true, 2, false, json!([])),
            node("cpu-1", false, 0, false, json!([])),
            agent_pod("faultline-node-a", "gpu-a", true),
            agent_pod("faultline-node-b", "gpu-b", false),
            stray,
            old_xid,
        ],
        "resources": ["v1/events"],
        "forbidden": forbidden,
    })
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn expect(output: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = text(output);
    assert_eq!(output.status.code(), Some(code), "stdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

#[test]
fn nodes_lists_gpu_nodes_with_agent_cordon_taints_gpus_and_recent_xids() {
    let kmock = Kmock::start(&cluster(&[]));
    let (stdout, _) = expect(&kmock.faultline(&["cluster", "nodes", "--json"]), 0);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let nodes = document["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gpu-a", "gpu-b", "gpu-c"], "cpu-1 has no GPU label");
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    assert_eq!((a["gpus"].as_u64(), a["cordoned"].as_bool(), a["ready"].as_bool()), (Some(8), Some(false), Some(true)));
    assert_eq!(a["agent"], json!({"name": "faultline-node-a", "phase": "Running", "ready": true}));
    assert_eq!(a["recent_xids"][0]["fault_id"], "fl-000000000001");
    assert_eq!(a["recent_xids"][0]["xid"], 48, "an Event without the XID annotation: read from its message");
    assert_eq!((b["cordoned"].as_bool(), b["agent"]["ready"].as_bool()), (Some(true), Some(false)));
    assert_eq!(b["taints"], json!(["nvidia.com/gpu-health=xid-79:NoSchedule"]));
    assert_eq!(c["agent"], Value::Null, "the stray pod on gpu-c is not an agent");

    let (table, _) = expect(&kmock.faultline(&["cluster", "nodes"]), 0);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NODE") && lines[0].contains("CORDONED") && lines[0].contains("LAST XID"), "{table}");
    assert!(lines[1].starts_with("gpu-a") && lines[1].contains("ready") && lines[1].contains("XID 48"), "{table}");
    assert!(lines[2].starts_with("gpu-b") && lines[2].contains("pending"), "{table}");
    assert!(lines[3].starts_with("gpu-c") && lines[3].contains("none"), "{table}");
}

#[test]
fn xid_inject_refuses_clearly_before_changing_anything() {
    let kmock = Kmock::start(&cluster(&[]));
    let inject = |node: &str, xid: &str| kmock.faultline(&["cluster", "xid", "inject", "--node", node, "--xid", xid]);

    let (_, stderr) = expect(&inject("ghost", "79"), 2);
    assert!(stderr.contains("node ghost not found"), "{stderr}");
    let (_, stderr) = expect(&inject("gpu-c", "79"), 1);
    assert!(stderr.contains("no faultline-node agent pod on node gpu-c in namespace faultline-system"), "{stderr}");
    assert!(stderr.contains("kubectl apply -k deploy/"), "{stderr}");
    let (_, stderr) = expect(&inject("cpu-1", "79"), 1);
    assert!(stderr.contains("not labelled nvidia.com/gpu.present=true"), "{stderr}");
    let (_, stderr) = expect(&inject("gpu-b", "79"), 1);
    assert!(stderr.contains("faultline-node-b on node gpu-b is not ready (phase Pending)"), "{stderr}");
    let (_, stderr) = expect(&inject("gpu-a", "7"), 2);
    assert!(stderr.contains("XID 7 is not in faultline's catalog"), "{stderr}");
    let (_, stderr) =
        expect(&kmock.faultline(&["--read-only", "cluster", "xid", "inject", "--node", "gpu-a", "--xid", "79"]), 2);
    assert!(stderr.contains("--read-only"), "{stderr}");
    // A namespace without the agent.
    let (_, stderr) = expect(
        &kmock.faultline(&[
            "cluster",
            "--agent-namespace",
            "elsewhere",
            "xid",
            "inject",
            "--node",
            "gpu-a",
            "--xid",
            "79",
        ]),
        1,
    );
    assert!(stderr.contains("no faultline-node agent pod on node gpu-a in namespace elsewhere"), "{stderr}");
    assert_eq!(kmock.events().len(), 1, "nothing but the seeded event");
}

#[test]
fn forbidden_unreachable_and_unknown_contexts_are_reported_as_such() {
    let kmock = Kmock::start(&cluster(&["get /api/v1/nodes", "get /api/v1/nodes/gpu-a"]));
    let (_, stderr) = expect(&kmock.faultline(&["cluster", "nodes"]), 1);
    assert!(stderr.contains("forbidden: you may not list nodes"), "{stderr}");
    assert!(stderr.contains("deploy/rbac.yaml"), "{stderr}");
    let (_, stderr) = expect(&kmock.faultline(&["cluster", "xid", "inject", "--node", "gpu-a", "--xid", "79"]), 1);
    assert!(stderr.contains("forbidden: you may not get node gpu-a"), "{stderr}");

    let (_, stderr) = expect(&kmock.faultline(&["cluster", "--context", "nowhere", "nodes"]), 1);
    assert!(stderr.contains("cannot list nodes (http://127.0.0.1:1/)"), "{stderr}");
    let (_, stderr) = expect(&kmock.faultline(&["cluster", "--context", "staging", "nodes"]), 2);
    assert!(stderr.contains("no context staging in the kubeconfig"), "{stderr}");
}

#[test]
fn exec_against_the_emulator_fails_with_a_clear_message() {
    // This agent pod answers no exec: the real exec path gets an error that names the pod, not a hang or a panic.
    let kmock = Kmock::start(&cluster(&[]));
    let (_, stderr) = expect(&kmock.faultline(&["cluster", "xid", "inject", "--node", "gpu-a", "--xid", "79"]), 1);
    assert!(stderr.contains("exec into pod faultline-node-a in namespace faultline-system"), "{stderr}");
    assert_eq!(kmock.events().len(), 1, "no Event without an injection");
}

/// An exec double that runs the command it is given on this machine (the agent's `faultline`, for real), then plays
/// NVSentinel's part: the canned cordon a real exec cannot give.
fn local_agent_and_monitor(port: u16) -> ScriptedExec {
    ScriptedExec::new(move |target, command| {
        assert_eq!((target.pod.as_str(), target.container.as_str()), ("faultline-node-a", "agent"));
        assert_eq!(&command[..3], ["faultline", "node", "xid"]);
        let output = Command::new(&testkit::artifacts().faultline).args(&command[1..]).output().expect("runs");
        // NVSentinel's part: cordon and taint the node once the XID is in the log.
        let patch = json!({"spec": {"unschedulable": true,
            "taints": [{"key": "nvidia.com/gpu-health", "value": "xid", "effect": "NoSchedule"}]}});
        std::thread::spawn(move || {
            let kmock = KmockClient { port };
            kmock.patch("/api/v1/nodes/gpu-a", &patch);
        });
        Ok(ExecOutput::from(output))
    })
}

struct KmockClient {
    port: u16,
}

impl KmockClient {
    fn patch(&self, path: &str, body: &Value) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let body = body.to_string();
        write!(
            stream,
            "PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/merge-patch+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn inject_runs_the_agent_records_an_event_on_the_node_and_watches_the_cordon() {
    assert!(faultline::targets::running_as_root(), "the double runs `faultline node xid` for real: needs root");
    let kmock = Kmock::start(&cluster(&[]));
    let runtime = runtime();
    let api = runtime.block_on(async { kmock.api() });
    let exec = local_agent_and_monitor(kmock.port);
    let request = XidInjectRequest {
        pci: Some("0000:3b:00.0".into()),
        pid: Some(4242),
        process_name: Some("python3".into()),
        watch: Some(testkit::WATCHDOG),
        watch_interval: Some(Duration::from_millis(50)),
        ..XidInjectRequest::new("gpu-a", 0, 79)
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut progress = move |p: &Progress| log.lock().unwrap().push(p.clone());
    let result = runtime.block_on(xid_inject::inject(&api, &exec, &request, &mut progress)).expect("injected");

    // The agent ran once with the fault id that ended up everywhere.
    let calls = exec.calls();
    assert_eq!(calls.len(), 1);
    let command = &calls[0].1;
    let id_at = command.iter().position(|a| a == "--fault-id").unwrap();
    assert_eq!(command[id_at + 1], result.fault_id);
    for pair in [["--xid", "79"], ["--gpu", "0"], ["--pci", "0000:3b:00.0"], ["--pid", "4242"], ["--name", "python3"]] {
        assert!(command.windows(2).any(|w| w == pair), "{pair:?} in {command:?}");
    }
    assert!(result.agent.confirmed && result.agent.line.contains("NVRM: Xid (PCI:0000:3b:00): 79, pid=4242"));
    assert_eq!(result.agent.fault_id, result.fault_id);

    // The Event is on the Node, in the agent's namespace, labelled and readable back.
    let events = kmock.events();
    let event = events.iter().find(|e| e["metadata"]["name"] == result.event.clone().unwrap()).expect("Event");
    assert_eq!(event["reason"], EVENT_REASON);
    assert_eq!(event["type"], "Warning");
    assert_eq!(
        event["involvedObject"],
        json!({"apiVersion": "v1", "kind": "Node", "name": "gpu-a", "uid": "uid-gpu-a"})
    );
    assert_eq!(event["metadata"]["labels"]["app.kubernetes.io/managed-by"], "faultline");
    assert_eq!(event["metadata"]["labels"]["faultline.dev/fault-id"], result.fault_id.as_str());
    assert!(event["metadata"]["annotations"]["faultline.dev/expires-at"].is_string());
    assert_eq!(event["metadata"]["annotations"]["faultline.dev/xid"], "79");
    let message = event["message"].as_str().unwrap();
    for part in ["XID 79", "GPU 0", "PCI 0000:3b:00.0", result.fault_id.as_str()] {
        assert!(message.contains(part), "{part} in {message}");
    }

    // The watch saw the cordon, and the node list now shows it with the new XID first.
    let watch = result.watch.clone().unwrap();
    assert!(watch.cordoned, "{watch:?}");
    assert_eq!(watch.taints, ["nvidia.com/gpu-health=xid:NoSchedule"]);
    let steps = seen.lock().unwrap().clone();
    assert!(matches!(steps.first(), Some(Progress::Agent { pod }) if pod == "faultline-node-a"), "{steps:?}");
    assert!(steps.iter().any(|s| matches!(s, Progress::EventRecorded { .. })), "{steps:?}");
    assert!(matches!(steps.last(), Some(Progress::Cordoned { .. })), "{steps:?}");
    let rows = runtime.block_on(nodes::gpu_nodes(&api)).unwrap();
    let a = rows.iter().find(|n| n.name == "gpu-a").unwrap();
    assert!(a.cordoned);
    assert_eq!(a.recent_xids[0].fault_id.as_deref(), Some(result.fault_id.as_str()));
    assert_eq!(a.recent_xids[0].xid, Some(79));
}

#[test]
fn the_watch_times_out_dry_runs_record_nothing_and_agent_failures_surface() {
    assert!(faultline::targets::running_as_root(), "the agent's `faultline node xid` writes /dev/kmsg: needs root");
    // The real exec path: the API's WebSocket channel protocol, the command run by the emulator's exec endpoint.
    let mut spec = cluster(&[]);
    spec["exec"] = exec(&[("faultline-node-a", json!({}))]);
    let kmock = Kmock::start(&spec);
    let runtime = runtime();
    let api = runtime.block_on(async { kmock.api() });
    let mut ignore = |_: &Progress| {};

    let request = XidInjectRequest {
        pci: Some("0000:3b:00.0".into()),
        watch: Some(Duration::from_millis(300)),
        watch_interval: Some(Duration::from_millis(50)),
        ..XidInjectRequest::new("gpu-a", 0, 94)
    };
    let result = runtime.block_on(xid_inject::inject(&api, &api, &request, &mut ignore)).unwrap();
    assert!(result.watch_timed_out(), "{result:?}");
    assert_eq!(kmock.events().len(), 2, "the seeded one and this one");

    let dry =
        XidInjectRequest { pci: Some("0000:3b:00.0".into()), dry_run: true, ..XidInjectRequest::new("gpu-a", 0, 79) };
    let result = runtime.block_on(xid_inject::inject(&api, &api, &dry, &mut ignore)).unwrap();
    assert!(result.agent.dry_run && !result.agent.confirmed && result.event.is_none());
    assert_eq!(kmock.events().len(), 2, "a dry run records no Event");

    // The agent's own refusal (no driver, no --pci) comes back with its message and exit status.
    let error = runtime
        .block_on(xid_inject::inject(&api, &api, &XidInjectRequest::new("gpu-a", 0, 79), &mut ignore))
        .unwrap_err();
    assert!(matches!(&error, ClusterError::AgentFailed { exit_code: Some(2), .. }), "{error:?}");
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("give the GPU's PCI address with --pci"), "{error}");
    assert_eq!(kmock.events().len(), 2, "no Event for a failed injection");

    // The same agent through the command line: `cluster xid inject` execs `faultline node xid` in the pod.
    let dry = kmock.faultline(&[
        "cluster",
        "xid",
        "inject",
        "--node",
        "gpu-a",
        "--xid",
        "79",
        "--pci",
        "0000:3b:00.0",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", String::from_utf8_lossy(&dry.stderr));
    let report: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!((report["agent"]["xid"].as_u64(), report["agent"]["dry_run"].as_bool()), (Some(79), Some(true)));
    assert!(report["agent"]["line"].as_str().unwrap().contains("NVRM: Xid (PCI:0000:3b:00): 79"), "{report}");
    assert_eq!(kmock.events().len(), 2, "still no Event");
}
