//! Every shimmed process in the cluster, listed and steered through the node agent: two real-UCX programs "in" two
//! pods on node gpu-a (their identity from the variables the shim roll-out sets; one in its own pid and mount
//! namespaces with a private `/dev/shm`, as in a container), the emulator's exec endpoint
//! running the agent's `faultline node watch` on this machine, `faultline cluster ps` / `cluster <command>` as a user
//! runs them; and a recording replayed across nodes, each node's agent with its own segment directory.

mod common;
mod kmock;

use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{json, Value};
use testkit::{Program, ShmDir};

use kmock::{agent_pod, exec, node, Kmock, NAMESPACE};

fn pod(name: &str, app: &str) -> Value {
    pod_on(name, app, "gpu-a")
}

fn pod_on(name: &str, app: &str, node: &str) -> Value {
    json!({"resource": "v1/pods", "body": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "dynamo", "uid": format!("uid-{name}"), "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "worker", "image": "vllm"}]},
        "status": {"phase": "Running"}}})
}

fn pod_env(pod: &str) -> [(&str, &str); 3] {
    [("FAULTLINE_POD_NAMESPACE", "dynamo"), ("FAULTLINE_POD_NAME", pod), ("FAULTLINE_CONTAINER_NAME", "worker")]
}

fn start_in(shm: &ShmDir, pod: &str) -> Program {
    common::start_with_env(shm, "put", &pod_env(pod))
}

/// The tests of this file one at a time: an agent sees every container on this machine, so one test's
/// containerised program would also be a process of the other test's nodes.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    CLUSTER.lock().unwrap_or_else(PoisonError::into_inner)
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
    let _cluster = one_at_a_time();
    let shm = ShmDir::new();
    // decode-0 runs as in a container: the agent finds its segment through /proc/<pid>/root/dev/shm and names it
    // by its pid on the node.
    let mut decode = common::start_contained("put", &pod_env("decode-0"));
    let decode_pid = common::contained_host_pid(&decode);
    let namespace = |kind: &str, pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    for kind in ["pid", "mnt"] {
        assert_ne!(namespace(kind, &decode_pid.to_string()), namespace(kind, "self"), "its own {kind} namespace");
    }
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
    assert!(placed.contains(&("gpu-a".into(), "dynamo".into(), "decode-0".into(), decode_pid.into())), "{listing}");
    assert!(placed.contains(&("gpu-a".into(), "dynamo".into(), "prefill-0".into(), prefill.pid().into())), "{listing}");
    let (_, table, _) = run(&kmock, &["cluster", "ps", "-n", "dynamo"]);
    assert!(table.starts_with("NODE") && table.contains("decode-0") && table.contains("CALLS/S"), "{table}");

    // By pod: exactly that program sees X/O from its next calls; the other is untouched.
    ok_json(&kmock, &["cluster", "--json", "strategy", "XO", "--pod", "dynamo/decode-0"]);
    let enabled = ok_json(&kmock, &["cluster", "--json", "enable", "--pod", "dynamo/decode-0"]);
    assert_eq!(enabled["nodes"][0]["pids"], json!([decode_pid]), "{enabled}");
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
    let mut wanted = vec![u64::from(decode_pid), u64::from(prefill.pid())];
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

#[test]
fn a_recording_on_one_node_replays_exactly_on_another() {
    assert!(faultline::targets::running_as_root(), "the node agent runs as root");
    let _cluster = one_at_a_time();
    // Two nodes: each agent sees only its own segment directory (the machine's containers aside).
    let (shm_a, shm_b) = (ShmDir::new(), ShmDir::new());
    let mut decode = start_in(&shm_a, "decode-0");
    let mut prefill = start_in(&shm_b, "prefill-0");
    let spec = json!({
        "objects": [
            node("gpu-a", true, 8, false, json!([])),
            node("gpu-b", true, 8, false, json!([])),
            agent_pod("faultline-node-a", "gpu-a", true),
            agent_pod("faultline-node-b", "gpu-b", true),
            pod_on("decode-0", "decode", "gpu-a"),
            pod_on("prefill-0", "prefill", "gpu-b"),
        ],
        "resources": ["v1/events"],
        "exec": exec(&[
            ("faultline-node-a", json!({"FAULTLINE_SHM_DIR": shm_a.path()})),
            ("faultline-node-b", json!({"FAULTLINE_SHM_DIR": shm_b.path()})),
        ]),
    });
    let kmock = Kmock::start(&spec);

    // A recorded run on gpu-a: some calls fail, with two different codes.
    let decode_pod = ["--pod", "dynamo/decode-0"];
    for change in [
        &["record", "on"][..],
        &["strategy", "XOOXXOOX", "--error-codes", "UCS_ERR_IO_ERROR,UCS_ERR_TIMED_OUT"],
        &["enable"],
    ] {
        ok_json(&kmock, &[&["cluster", "--json"][..], change, &decode_pod].concat());
    }
    let recorded = common::run_statuses(&mut decode, 12);
    assert!(recorded.contains(&0) && recorded.contains(&-3) && recorded.contains(&-20), "{recorded:?}");

    // Replayed on gpu-b: the recording read through gpu-a's agent, the program sent through gpu-b's.
    let replayed =
        ok_json(&kmock, &["cluster", "--json", "replay", "--from-pod", "dynamo/decode-0", "--pod", "dynamo/prefill-0"]);
    assert_eq!(
        (&replayed["from"]["node"], &replayed["from"]["pid"], &replayed["from"]["calls"]),
        (&json!("gpu-a"), &json!(decode.pid()), &json!(12)),
        "{replayed}"
    );
    assert_eq!(
        (&replayed["nodes"][0]["node"], &replayed["nodes"][0]["pids"]),
        (&json!("gpu-b"), &json!([prefill.pid()])),
        "{replayed}"
    );
    assert_eq!(common::run_statuses(&mut prefill, 12), recorded, "the same calls fail, with the same codes");
    assert_eq!(common::run_statuses(&mut prefill, 2), [0, 0], "then every call passes");

    // By node and host pid, looping; the text output names the source.
    let (code, text, stderr) = run(
        &kmock,
        &[
            "cluster",
            "replay",
            "--from-node",
            "gpu-a",
            "--from-pid",
            &decode.pid().to_string(),
            "--pod",
            "dynamo/prefill-0",
            "--loop",
        ],
    );
    assert_eq!(code, 0, "{text}{stderr}");
    let faults = recorded.iter().filter(|&&status| status != 0).count();
    let source = format!(
        "replaying 12 calls ({faults} faults) recorded by pid {} (ucx, dynamo/decode-0) on node gpu-a",
        decode.pid()
    );
    assert!(text.starts_with(&source) && text.contains("node gpu-b"), "{text}");
    assert_eq!(common::run_statuses(&mut prefill, 24), [recorded.clone(), recorded.clone()].concat());

    // The recording of a process that has exited (the run worth replaying after a crash) is read as well.
    let decode_pid = decode.pid();
    decode.send("quit");
    assert!(decode.finish().success());
    let replayed =
        ok_json(&kmock, &["cluster", "--json", "replay", "--from-pod", "dynamo/decode-0", "--pod", "dynamo/prefill-0"]);
    assert_eq!((&replayed["from"]["pid"], &replayed["from"]["alive"]), (&json!(decode_pid), &json!(false)));
    assert_eq!(common::run_statuses(&mut prefill, 12), recorded);

    // Refusals, each with exit 2 and nothing sent: a host pid without its node, a source that matches nothing, a
    // process that recorded nothing.
    ok_json(&kmock, &["cluster", "--json", "disable", "--pod", "dynamo/prefill-0"]);
    let refusals: [(&[&str], &str); 3] = [
        (&["--from-pid", "1234"], "give --from-node N too"),
        (&["--from-pod", "dynamo/nobody-0"], "no shimmed process matches --from-pod dynamo/nobody-0"),
        (&["--from-pod", "dynamo/prefill-0"], "nothing recorded to replay"),
    ];
    for (from, message) in refusals {
        let (code, _, stderr) =
            run(&kmock, &[&["cluster", "replay"][..], from, &["--pod", "dynamo/prefill-0"]].concat());
        assert_eq!(code, 2, "{from:?}: {stderr}");
        assert!(stderr.contains(message), "{from:?}: {stderr}");
        assert_eq!(faulted(&mut prefill, 2), [false, false], "{from:?} changed nothing");
    }
}
