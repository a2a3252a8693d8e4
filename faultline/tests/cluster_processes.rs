//! Every shimmed process in the cluster, listed and steered through the node agent: two real-UCX programs "in" two
//! pods on node gpu-a (their identity from the variables the shim roll-out sets), the emulator's exec endpoint
//! running the agent's `faultline node watch` on this machine, `faultline cluster ps` / `cluster <command>` as a user
//! runs them.

mod common;
mod kmock;

use serde_json::{json, Value};
use testkit::{Program, ShmDir};

use kmock::{agent_pod, exec, node, Kmock, NAMESPACE};

fn pod(name: &str, app: &str) -> Value {
    json!({"resource": "v1/pods", "body": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "dynamo", "uid": format!("uid-{name}"), "labels": {"app": app}},
        "spec": {"nodeName": "gpu-a", "containers": [{"name": "worker", "image": "vllm"}]},
        "status": {"phase": "Running"}}})
}

fn start_in(shm: &ShmDir, pod: &str) -> Program {
    let env =
        [("FAULTLINE_POD_NAMESPACE", "dynamo"), ("FAULTLINE_POD_NAME", pod), ("FAULTLINE_CONTAINER_NAME", "worker")];
    common::start_with_env(shm, "put", &env)
}

fn run(kmock: &Kmock, args: &[&str]) -> (i32, String, String) {
    let output = kmock.faultline(args);
    let (stdout, stderr) = common::text(&output);
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

fn ok_json(kmock: &Kmock, args: &[&str]) -> Value {
    let (code, stdout, stderr) = run(kmock, args);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn faulted(program: &mut Program, calls: u32) -> Vec<bool> {
    common::run_statuses(program, calls).iter().map(|s| *s != 0).collect()
}

#[test]
fn the_cluster_lists_and_steers_each_pods_processes_through_the_agent() {
    assert!(faultline::targets::running_as_root(), "the node agent runs as root");
    let shm = ShmDir::new();
    let mut decode = start_in(&shm, "decode-0");
    let mut prefill = start_in(&shm, "prefill-0");
    let spec = json!({
        "objects": [
            node("gpu-a", true, 8, false, json!([])),
            agent_pod("faultline-node-a", "gpu-a", true),
            pod("decode-0", "decode"),
            pod("prefill-0", "prefill"),
        ],
        "resources": ["v1/events"],
        "exec": exec(&[("faultline-node-a", json!({"FAULTLINE_SHM_DIR": shm.path()}))]),
    });
    let kmock = Kmock::start(&spec);

    // Listed with their node, namespace, pod and container.
    let listing = ok_json(&kmock, &["cluster", "ps", "-A", "--json"]);
    let rows = listing["processes"].as_array().unwrap();
    let placed: Vec<(Value, Value, Value, Value)> =
        rows.iter().map(|r| (r["node"].clone(), r["namespace"].clone(), r["pod"].clone(), r["pid"].clone())).collect();
    assert!(placed.contains(&("gpu-a".into(), "dynamo".into(), "decode-0".into(), decode.pid().into())), "{listing}");
    assert!(placed.contains(&("gpu-a".into(), "dynamo".into(), "prefill-0".into(), prefill.pid().into())), "{listing}");
    let (_, table, _) = run(&kmock, &["cluster", "ps", "-n", "dynamo"]);
    assert!(table.starts_with("NODE") && table.contains("decode-0") && table.contains("CALLS/S"), "{table}");

    // By pod: exactly that program sees X/O from its next calls; the other is untouched.
    ok_json(&kmock, &["cluster", "--json", "strategy", "XO", "--pod", "dynamo/decode-0"]);
    let enabled = ok_json(&kmock, &["cluster", "--json", "enable", "--pod", "dynamo/decode-0"]);
    assert_eq!(enabled["nodes"][0]["pids"], json!([decode.pid()]), "{enabled}");
    assert_eq!(faulted(&mut decode, 4), [true, false, true, false]);
    assert_eq!(faulted(&mut prefill, 4), [false; 4]);

    // By label selector: the prefill pod only.
    ok_json(&kmock, &["cluster", "--json", "strategy", "X", "-l", "app=prefill", "-n", "dynamo"]);
    ok_json(&kmock, &["cluster", "--json", "enable", "-l", "app=prefill", "-n", "dynamo"]);
    assert_eq!(faulted(&mut prefill, 2), [true, true]);

    // --all reaches both; no target is a usage error and changes nothing.
    let (code, _, stderr) = run(&kmock, &["cluster", "disable"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--all"), "{stderr}");
    assert_eq!(faulted(&mut prefill, 1), [true], "nothing changed");
    // A bad value is refused here, before anything is sent, with the local command's message.
    let (code, _, stderr) = run(&kmock, &["cluster", "probability", "200", "--all"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'200'"), "{stderr}");
    let disabled = ok_json(&kmock, &["cluster", "--json", "disable", "--all"]);
    let mut pids: Vec<u64> =
        disabled["nodes"][0]["pids"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    pids.sort_unstable();
    let mut wanted = vec![u64::from(decode.pid()), u64::from(prefill.pid())];
    wanted.sort_unstable();
    assert_eq!(pids, wanted, "{disabled}");
    assert_eq!(faulted(&mut decode, 2), [false, false]);
    assert_eq!(faulted(&mut prefill, 2), [false, false]);

    // --read-only: the agents' process layer refuses the change.
    let (code, _, stderr) = run(&kmock, &["--read-only", "cluster", "enable", "--all"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(faulted(&mut decode, 1), [false]);
    assert_eq!(kmock.events().len(), 0, "process commands record no Events");
    let _ = NAMESPACE;
}
