//! The fault ledger against a local Kubernetes API emulator (PyPI `kmock`): partitions, Chaos Mesh objects, shim
//! rollouts and armed nodes are created, listed from the cluster by a fresh `faultline` process each time (nothing
//! is held in memory), recovered idempotently, and reaped exactly when expired. Arming and the GPU- and NIC-failure
//! scenarios run the agent's real `faultline node …` commands on this machine through the emulator's exec endpoint;
//! what NVSentinel and the node drainer would do is played by a thread acting on the emulator.

mod kmock;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use faultline::cluster::arm;
use faultline::cluster::faults::{self, Which};
use faultline::cluster::ledger::{FaultKind, Stamp};
use faultline::cluster::xid_inject::EVENT_REASON;
use faultline::cluster::ClusterError;
use faultline::node::{kmsg, FAULT_MARKER};
use k8s_openapi::jiff::Timestamp;
use kmock::{agent_pod, exec, node, Kmock};
use serde_json::{json, Value};
use testkit::{Program, ShmDir};

const APP_NAMESPACE: &str = "dynamo";

fn expect(output: &Output, code: i32) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

/// A `faultline` that failed (any non-zero status): its stdout and stderr.
fn failed(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

fn json_of(output: &Output) -> Value {
    let (stdout, _) = expect(output, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A Deployment as a user wrote it: an existing LD_PRELOAD, env, volumes, required node affinity with two terms,
/// preferred terms, pod anti-affinity, two containers and an init container.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "decode", "namespace": APP_NAMESPACE, "labels": {"app": "decode"},
                     "annotations": {"team": "serving"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "decode"}},
            "template": {
                "metadata": {"labels": {"app": "decode"}},
                "spec": {
                    "initContainers": [{"name": "fetch", "image": "busybox"}],
                    "containers": [
                        {"name": "worker", "image": "vllm", "env": [
                            {"name": "LD_PRELOAD", "value": "/opt/libtcmalloc.so"},
                            {"name": "MODEL", "value": "llama"}],
                         "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
                        {"name": "sidecar", "image": "envoy"}
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]},
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {"weight": 10, "preference": {"matchExpressions": [
                                    {"key": "ssd", "operator": "Exists"}]}}]},
                        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "decode"}}}]}
                    }
                }
            }
        }
    })
}

/// A StatefulSet with nothing but one container: no env, volumes, affinity or annotations to begin with.
fn stateful_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "prefill", "namespace": APP_NAMESPACE},
        "spec": {"serviceName": "prefill", "selector": {"matchLabels": {"app": "prefill"}},
                 "template": {"metadata": {"labels": {"app": "prefill"}},
                              "spec": {"containers": [{"name": "worker", "image": "vllm"}]}}}
    })
}

fn cluster(with_chaos_mesh: bool) -> Value {
    let mut gpu_a = node("gpu-a", true, 8, false, json!([]));
    gpu_a["body"]["spec"]["podCIDRs"] = json!(["10.244.1.0/24"]);
    let mut gpu_b = node("gpu-b", true, 8, false, json!([]));
    gpu_b["body"]["spec"]["podCIDRs"] = json!(["10.244.2.0/24"]);
    let mut resources = vec![
        "v1/events",
        "v1/configmaps",
        "networking.k8s.io/v1/networkpolicies",
        "apps/v1/deployments",
        "apps/v1/statefulsets",
    ];
    if with_chaos_mesh {
        resources.push("chaos-mesh.org/v1alpha1/networkchaos");
    }
    json!({
        "objects": [
            gpu_a, gpu_b, agent_pod("faultline-node-a", "gpu-a", true),
            {"resource": "apps/v1/deployments", "body": deployment()},
            {"resource": "apps/v1/statefulsets", "body": stateful_set()},
        ],
        "resources": resources,
    })
}

impl Kmock {
    fn get(&self, path: &str) -> Value {
        self.http("GET", path, None)
    }

    fn items(&self, path: &str) -> Vec<Value> {
        self.get(path)["items"].as_array().cloned().unwrap_or_default()
    }
}

const DEPLOYMENT_PATH: &str = "/apis/apps/v1/namespaces/dynamo/deployments/decode";
const STATEFUL_SET_PATH: &str = "/apis/apps/v1/namespaces/dynamo/statefulsets/prefill";
const POLICIES_PATH: &str = "/apis/networking.k8s.io/v1/namespaces/dynamo/networkpolicies";

fn fault_ids(listing: &Value) -> Vec<(String, String)> {
    listing["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fault_id"].as_str().unwrap().to_string(), f["kind"].as_str().unwrap_or("?").to_string()))
        .collect()
}

#[test]
fn a_partition_is_created_listed_by_a_fresh_process_and_recovered_idempotently() {
    let kmock = Kmock::start(&cluster(false));
    let created = json_of(&kmock.faultline(&[
        "cluster",
        "partition",
        "create",
        "-n",
        APP_NAMESPACE,
        "--selector",
        "app=decode",
        "--ttl",
        "10m",
        "--json",
    ]));
    let id = created["fault_id"].as_str().unwrap().to_string();
    let policies = kmock.items(POLICIES_PATH);
    assert_eq!(policies.len(), 1);
    let policy = &policies[0];
    assert_eq!(policy["metadata"]["labels"]["app.kubernetes.io/managed-by"], "faultline");
    assert_eq!(policy["metadata"]["labels"]["faultline.dev/fault-id"], id.as_str());
    assert!(policy["metadata"]["annotations"]["faultline.dev/expires-at"].is_string());
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], json!({"app": "decode"}));
    let cidrs = serde_json::to_string(&policy["spec"]).unwrap();
    assert!(cidrs.contains("10.244.1.0/24") && cidrs.contains("10.244.2.0/24"), "pod CIDRs excepted: {cidrs}");

    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-n", APP_NAMESPACE, "--json"]));
    assert_eq!(fault_ids(&listing), [(id.clone(), "partition".to_string())]);
    let (table, _) = expect(&kmock.faultline(&["cluster", "faults", "--all-namespaces"]), 0);
    assert!(table.contains(&id) && table.contains("NetworkPolicy/dynamo/") && table.contains("m"), "{table}");

    let (_, stderr) = expect(&kmock.faultline(&["cluster", "recover", &id]), 0);
    assert!(stderr.contains("deleted"), "{stderr}");
    assert!(kmock.items(POLICIES_PATH).is_empty());
    let (stdout, _) = expect(&kmock.faultline(&["cluster", "recover", &id]), 0);
    assert!(stdout.contains("already recovered"), "recovering twice is fine: {stdout}");
    let (_, stderr) = expect(&kmock.faultline(&["cluster", "recover", "fl-nothex"]), 2);
    assert!(stderr.contains("is not a fault id"), "{stderr}");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert_eq!(fault_ids(&listing), []);
}

#[test]
fn bad_partitions_are_refused_and_create_nothing() {
    let kmock = Kmock::start(&cluster(false));
    let create = |extra: &[&str]| {
        let mut args = vec!["cluster", "partition", "create", "-n", APP_NAMESPACE];
        args.extend_from_slice(extra);
        kmock.faultline(&args)
    };
    for (args, message) in [
        (&["--selector", "app"][..], "invalid label selector"),
        (&["--selector", "app=decode", "--preset", "frontend-worker"], "--to-selector"),
        (&["--selector", "app=decode", "--ttl", "forever"], "invalid --ttl"),
        (&["--selector", "app=decode", "--loss", "10"], "--loss needs --mode chaos-mesh"),
        (&["--selector", "app=decode", "--mode", "chaos-mesh"], "needs --action"),
    ] {
        let (_, stderr) = expect(&create(args), 2);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // Chaos Mesh is not installed in this cluster.
    let (_, stderr) =
        expect(&create(&["--selector", "app=decode", "--mode", "chaos-mesh", "--action", "loss", "--loss", "25"]), 2);
    assert!(stderr.contains("NetworkChaos") && stderr.contains("CustomResourceDefinition"), "{stderr}");
    assert!(kmock.items(POLICIES_PATH).is_empty());
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert_eq!(fault_ids(&listing), []);
    assert!(listing["notes"][0].as_str().unwrap().contains("NetworkChaos"), "{listing}");
}

#[test]
fn chaos_mesh_objects_round_trip() {
    let kmock = Kmock::start(&cluster(true));
    let created = json_of(&kmock.faultline(&[
        "cluster",
        "partition",
        "create",
        "-n",
        APP_NAMESPACE,
        "--selector",
        "app=decode",
        "--mode",
        "chaos-mesh",
        "--action",
        "delay",
        "--latency",
        "100ms",
        "--jitter",
        "10ms",
        "--to-selector",
        "app=prefill",
        "--direction",
        "both",
        "--ttl",
        "5m",
        "--json",
    ]));
    let id = created["fault_id"].as_str().unwrap().to_string();
    let path = "/apis/chaos-mesh.org/v1alpha1/namespaces/dynamo/networkchaos";
    let objects = kmock.items(path);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["spec"]["action"], "delay");
    assert_eq!(objects[0]["spec"]["direction"], "both");
    assert_eq!(objects[0]["spec"]["duration"], "300s");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert_eq!(fault_ids(&listing), [(id.clone(), "chaos".to_string())]);
    expect(&kmock.faultline(&["cluster", "recover", "--all", "-A"]), 0);
    assert!(kmock.items(path).is_empty());
    expect(&kmock.faultline(&["cluster", "recover", "--all", "-A"]), 0);
}

#[test]
fn shim_enable_then_disable_leaves_the_workloads_byte_for_byte_as_they_were() {
    let kmock = Kmock::start(&cluster(false));
    let original_deployment = kmock.get(DEPLOYMENT_PATH);
    let original_stateful_set = kmock.get(STATEFUL_SET_PATH);

    let enabled = json_of(&kmock.faultline(&[
        "cluster",
        "shim",
        "enable",
        "--kind",
        "cuda",
        "--deployment",
        "decode",
        "-n",
        APP_NAMESPACE,
        "--xid",
        "79",
        "--node",
        "gpu-a",
        "--no-wait",
        "--json",
    ]));
    let id = enabled["fault_id"].as_str().unwrap().to_string();
    let shimmed = kmock.get(DEPLOYMENT_PATH);
    let worker = &shimmed["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(String, String)> = worker["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().into(), e["value"].as_str().unwrap_or_default().into()))
        .collect();
    assert!(
        env.contains(&("LD_PRELOAD".into(), "/opt/libtcmalloc.so:/var/lib/faultline/libfaultline_cuda.so".into())),
        "{env:?}"
    );
    assert!(env.contains(&("FAULTLINE_XID".into(), "79".into())), "{env:?}");
    assert_eq!(shimmed["metadata"]["labels"]["faultline.dev/fault-id"], id.as_str());
    let terms = &shimmed["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms.as_array().unwrap().len(), 2, "still two ORed terms, each narrowed: {terms}");
    assert!(terms.to_string().contains("gpu-a") && terms.to_string().contains("\"a\""), "{terms}");
    let (_, stderr) = expect(
        &kmock.faultline(&[
            "cluster",
            "shim",
            "enable",
            "--kind",
            "cuda",
            "--deployment",
            "decode",
            "-n",
            APP_NAMESPACE,
            "--no-wait",
        ]),
        2,
    );
    assert!(stderr.contains(&id), "a second enable names the fault that holds it: {stderr}");

    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-n", APP_NAMESPACE, "--json"]));
    assert_eq!(fault_ids(&listing), [(id.clone(), "shim".to_string())]);

    expect(
        &kmock.faultline(&["cluster", "shim", "disable", "--deployment", "decode", "-n", APP_NAMESPACE, "--no-wait"]),
        0,
    );
    let restored = kmock.get(DEPLOYMENT_PATH);
    assert_eq!(restored, original_deployment);
    assert_eq!(serde_json::to_string(&restored).unwrap(), serde_json::to_string(&original_deployment).unwrap());
    let (stdout, _) = expect(
        &kmock.faultline(&["cluster", "shim", "disable", "--deployment", "decode", "-n", APP_NAMESPACE, "--no-wait"]),
        0,
    );
    assert!(stdout.contains("unchanged"), "{stdout}");

    // The bare StatefulSet, UCX shim, recovered through the ledger rather than `shim disable`.
    let enabled = json_of(&kmock.faultline(&[
        "cluster",
        "shim",
        "enable",
        "--kind",
        "ucx",
        "--statefulset",
        "prefill",
        "-n",
        APP_NAMESPACE,
        "--passthrough",
        "--no-wait",
        "--json",
    ]));
    let id = enabled["fault_id"].as_str().unwrap().to_string();
    assert_ne!(kmock.get(STATEFUL_SET_PATH), original_stateful_set);
    expect(&kmock.faultline(&["cluster", "recover", &id]), 0);
    let restored = kmock.get(STATEFUL_SET_PATH);
    assert_eq!(serde_json::to_string(&restored).unwrap(), serde_json::to_string(&original_stateful_set).unwrap());
}

#[test]
fn reap_removes_exactly_the_expired_faults() {
    let kmock = Kmock::start(&cluster(false));
    let original_deployment = kmock.get(DEPLOYMENT_PATH);
    let create = |ttl: &str| {
        let created = json_of(&kmock.faultline(&[
            "cluster",
            "partition",
            "create",
            "-n",
            APP_NAMESPACE,
            "--selector",
            "app=decode",
            "--ttl",
            ttl,
            "--json",
        ]));
        created["fault_id"].as_str().unwrap().to_string()
    };
    let ending = create("10m");
    let lasting = create("2h");
    let shim = json_of(&kmock.faultline(&[
        "cluster",
        "shim",
        "enable",
        "--kind",
        "cuda",
        "--deployment",
        "decode",
        "-n",
        APP_NAMESPACE,
        "--no-wait",
        "--json",
    ]))["fault_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Time passes for two of them: their expiry is moved into the past, as the clock would.
    let past = json!({"metadata": {"annotations": {"faultline.dev/expires-at": "2020-01-01T00:00:00Z"}}});
    kmock.http("PATCH", &format!("{POLICIES_PATH}/faultline-{ending}"), Some(&past));
    kmock.http("PATCH", DEPLOYMENT_PATH, Some(&past));

    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    let expired: Vec<(&str, bool)> = listing["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fault_id"].as_str().unwrap(), f["expired"].as_bool().unwrap()))
        .collect();
    assert!(expired.contains(&(ending.as_str(), true)) && expired.contains(&(lasting.as_str(), false)), "{expired:?}");

    let reaped = json_of(&kmock.faultline(&["cluster", "reap", "--all-namespaces", "--json"]));
    let mut ids: Vec<&str> =
        reaped["recovered"].as_array().unwrap().iter().map(|r| r["fault_id"].as_str().unwrap()).collect();
    ids.sort();
    let mut wanted = vec![ending.as_str(), shim.as_str()];
    wanted.sort();
    assert_eq!(ids, wanted);
    let left: Vec<String> =
        kmock.items(POLICIES_PATH).iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(left, [format!("faultline-{lasting}")]);
    // The reaped shim restored everything, including the annotation that was moved (it was faultline's own).
    assert_eq!(kmock.get(DEPLOYMENT_PATH), original_deployment);
    let again = json_of(&kmock.faultline(&["cluster", "reap", "-A", "--json"]));
    assert_eq!(again["recovered"], json!([]));
}

#[test]
fn an_armed_node_is_in_the_ledger_and_recovering_disarms_it() {
    // The real exec path: the agent pod's `faultline node arm|disarm` run by the emulator's exec endpoint, with a
    // private policy file (the variable the CUDA shims read too).
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("cuda.policy");
    let mut spec = cluster(false);
    spec["exec"] = exec(&[("faultline-node-a", json!({"FAULTLINE_POLICY_FILE": policy}))]);
    let kmock = Kmock::start(&spec);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let api = runtime.block_on(async { kmock.api() });
    let exec = api.clone();
    let stamp = Stamp::new(FaultKind::ArmedNode, Some(std::time::Duration::from_secs(600)));

    let armed = runtime.block_on(arm::arm_node(&api, &exec, "gpu-a", 79, &stamp)).expect("armed");
    assert_eq!(armed.fault_id, stamp.fault_id);
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("FAULTLINE_ENABLED=1") && text.contains("FAULTLINE_XID=79"), "{text}");

    let other = Stamp::new(FaultKind::ArmedNode, None);
    let error = runtime.block_on(arm::arm_node(&api, &exec, "gpu-a", 48, &other)).unwrap_err();
    assert!(matches!(error, ClusterError::Usage(ref m) if m.contains(&stamp.fault_id)), "{error}");
    let error = runtime.block_on(arm::arm_node(&api, &exec, "gpu-b", 79, &other)).unwrap_err();
    assert!(matches!(error, ClusterError::NoAgentPod { .. }), "{error}");
    let error = runtime.block_on(arm::arm_node(&api, &exec, "gpu-a", 13, &other)).unwrap_err();
    assert!(error.to_string().contains("has no preset for XID 13"), "{error}");

    // Listed by the CLI, from the cluster.
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert_eq!(fault_ids(&listing), [(stamp.fault_id.clone(), "armed-node".to_string())]);
    assert!(listing["faults"][0]["summary"].as_str().unwrap().contains("node gpu-a armed"), "{listing}");

    let mut seen = Vec::new();
    let which = Which::Id(stamp.fault_id.clone());
    let done = runtime
        .block_on(faults::recover(&api, &exec, None, &which, Timestamp::now(), &mut |r| seen.push(r.outcome.clone())))
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(seen, ["node gpu-a disarmed"]);
    assert!(!policy.exists());
    let done = runtime.block_on(faults::recover(&api, &exec, None, &which, Timestamp::now(), &mut |_| {})).unwrap();
    assert!(done.is_empty(), "recovering twice does nothing");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert_eq!(fault_ids(&listing), []);
}

fn workload_pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": APP_NAMESPACE, "labels": {"app": "decode"}},
           "spec": {"nodeName": node, "containers": [{"name": "worker", "image": "vllm"}]},
           "status": {"phase": "Running"}})
}

#[test]
fn gpu_failure_runs_its_steps_in_order_and_recover_cleans_up() {
    assert!(faultline::targets::running_as_root(), "the agent writes the XID into /dev/kmsg: needs root");
    // A live CUDA process on gpu-a: any program preloading the CUDA shim has a segment from its start.
    let shm = ShmDir::new();
    let mut sleeper = Command::new("sleep");
    sleeper.arg("600").env("LD_PRELOAD", &testkit::artifacts().cuda_shim).env("FAULTLINE_SHM_DIR", shm.path());
    let cuda = Program::spawn(sleeper);
    let segment = shm.segment("cuda", cuda.pid());
    testkit::wait_until("the CUDA shim creates its segment", || segment.exists());

    // The real exec path: every `faultline node …` of the scenario (ps, arm, strategy, enable, xid; then disarm,
    // ps, disable) run by the emulator's exec endpoint over the WebSocket channel protocol, the agent pointed at a
    // private policy file, the segment directory and the fixture driver tree; the XID goes to the real kernel log.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("cuda.policy");
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-driver-nvidia");
    let mut spec = cluster(false);
    spec["objects"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": "v1/pods", "body": workload_pod("decode-1", "gpu-a")}));
    let agent_env =
        json!({"FAULTLINE_POLICY_FILE": policy, "FAULTLINE_SHM_DIR": shm.path(), "FAULTLINE_NVIDIA_PROC": fixtures});
    spec["exec"] = exec(&[("faultline-node-a", agent_env)]);
    let kmock = Kmock::start(&spec);
    let _monitor = Monitor::start(kmock.port, EVENT_REASON);
    let mut log = kmsg::Reader::open_at_end(Path::new(kmsg::DEV_KMSG)).expect("/dev/kmsg is readable");

    let output = kmock.faultline(&[
        "cluster",
        "gpu-failure",
        "--node",
        "gpu-a",
        "--gpu",
        "0",
        "--xid",
        "79",
        "-n",
        APP_NAMESPACE,
        "--ttl",
        "10m",
        "--watch-timeout",
        &testkit::WATCHDOG.as_secs().to_string(),
        "--interval",
        "0.05",
        "--json",
    ]);
    let outcome = json_of(&output);
    assert_eq!((outcome["cordoned"].as_bool(), outcome["evicted"].as_bool()), (Some(true), Some(true)), "{outcome}");
    assert_eq!(outcome["processes_failed"], 1, "{outcome}");
    assert_eq!(outcome["pods_after"], json!([{"pod": "decode-2", "node": "gpu-b", "phase": "Running"}]));
    let steps: Vec<&str> =
        outcome["timeline"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
    let order = [
        "pod(s) of namespace",
        "node armed",
        "now fail every call",
        "XID 79 written",
        "node cordoned",
        "left the node",
        "run on other nodes",
    ];
    assert_eq!(steps.len(), order.len(), "{steps:?}");
    for (step, wanted) in steps.iter().zip(order) {
        assert!(step.contains(wanted), "{step:?} should say {wanted:?}: {steps:?}");
    }

    // What the agent did, seen where it landed: the node is armed, the live process fails every call with the
    // XID's CUDA code, and the driver's line is in the kernel log under the fault id.
    let fault_id = outcome["fault_id"].as_str().unwrap().to_string();
    // The driver's PCI → UUID line, then the XID, both for GPU 0 of the fixture driver tree.
    let lines = log.find_all(&format!("{FAULT_MARKER}{fault_id}"), 2, testkit::WATCHDOG).unwrap();
    let texts: Vec<&str> = lines.iter().map(|record| record.text.as_str()).collect();
    assert!(texts.len() == 2 && texts[0].contains("NVRM: GPU at PCI:0000:3b:00: GPU-"), "{texts:?}");
    assert!(texts[1].contains("NVRM: Xid (PCI:0000:3b:00): 79,"), "{texts:?}");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("FAULTLINE_XID=79") && text.contains(&fault_id), "{text}");
    let code = faultline::node::arm::cuda_preset(79).unwrap().runtime;
    let state = cuda_state(&shm, cuda.pid());
    assert_eq!((state["enabled"].as_bool(), state["mode"].as_str()), (Some(true), Some("pattern")), "{state}");
    let pool: Vec<&Value> = state["error_codes"].as_array().unwrap().iter().map(|c| &c["code"]).collect();
    assert_eq!((state["pattern"].as_str(), pool), (Some("X"), vec![&json!(code)]), "{state}");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    let kinds = fault_ids(&listing);
    assert!(kinds.contains(&(fault_id.clone(), "armed-node".into())), "{kinds:?}");
    assert!(kinds.contains(&(fault_id.clone(), "xid".into())), "one fault id for every step: {kinds:?}");

    // Recovering disarms the node and turns the live process's faults off, again through the agent.
    let recovered = json_of(&kmock.faultline(&["cluster", "recover", &fault_id, "--json"]));
    assert!(!recovered["recovered"].as_array().unwrap().is_empty(), "{recovered}");
    assert!(!policy.exists(), "disarmed");
    assert_eq!(cuda_state(&shm, cuda.pid())["enabled"], false);
    let records = kmock.items("/api/v1/namespaces/faultline-system/configmaps");
    assert!(records.is_empty(), "the arming record is gone: {records:?}");
}

/// `ucx_sites --stdin` (real UCX over TCP, two endpoints to itself with error handlers) under the UCX shim, as in
/// pod `pod` on gpu-a: its segment in `shm`, the node's UCX policy file `policy` named as the shim roll-out names it,
/// faults off and its site `completion` to begin with (so that putting its settings back shows). Waits for its
/// segment.
fn start_ucx_program(shm: &ShmDir, policy: &Path, pod: &str) -> Program {
    let program = testkit::c_program("shim-ucx/tests/c/ucx_sites.c", &["-lucp", "-lucs"]);
    let env = [
        ("FAULTLINE_UCX_POLICY_FILE", policy.to_str().unwrap()),
        ("FAULTLINE_SITE", "completion"),
        ("FAULTLINE_POD_NAMESPACE", APP_NAMESPACE),
        ("FAULTLINE_POD_NAME", pod),
        ("FAULTLINE_CONTAINER_NAME", "worker"),
    ];
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, &program, &["--stdin"], &env);
    // Peer error handling needs a transport that reports peer failures (UCX 1.13: not self / shared memory).
    command.env("UCX_TLS", "tcp").env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let program = Program::spawn(command);
    let segment = shm.segment("ucx", program.pid());
    testkit::wait_until("the UCX shim creates its segment", || segment.exists());
    program
}

/// Sends `commands` (one per line) to a `ucx_sites --stdin` program; the lines it printed until the last `DONE`.
fn ucx_commands(program: &mut Program, commands: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for command in commands {
        program.send(command);
        lines.extend(program.lines_until(|line| line == "DONE"));
    }
    lines
}

/// Whether `lines` say that put number `i` failed with `code`: at the call, or through its request.
fn put_failed(lines: &[String], i: u32, code: i32) -> bool {
    let (post, cb) = (format!("POST put {i} ret=err:{code}"), format!("CB put {i} status={code} "));
    lines.iter().any(|l| *l == post || l.starts_with(&cb))
}

#[test]
fn nic_failure_fails_the_nodes_ucx_endpoints_writes_the_nic_line_and_recover_puts_everything_back() {
    assert!(faultline::targets::running_as_root(), "the agent writes the NIC's line into /dev/kmsg: needs root");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("ucx.policy");
    // A real-UCX program in pod decode-1 on gpu-a, its endpoints healthy before the failure.
    let shm = ShmDir::new();
    let mut decode = start_ucx_program(&shm, &policy, "decode-1");
    let before = ucx_commands(&mut decode, &["put A", "get A"]);
    assert!(before.iter().any(|l| l.starts_with("CB put 0 status=0 ")), "{before:?}");
    assert!(before.iter().any(|l| l == "DATA get 0 ok"), "{before:?}");

    // The real exec path: every `faultline node …` of the scenario (ps, status, arm --kind ucx, set, nic; then
    // disarm, ps, set) run by the emulator's exec endpoint, the agent pointed at the private policy file and
    // segment directory; the NIC's line goes to the real kernel log (the device's address given: this machine has
    // no ConnectX in its sysfs).
    let mut spec = cluster(false);
    spec["objects"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": "v1/pods", "body": workload_pod("decode-1", "gpu-a")}));
    let agent_env = json!({"FAULTLINE_UCX_POLICY_FILE": policy, "FAULTLINE_SHM_DIR": shm.path()});
    spec["exec"] = exec(&[("faultline-node-a", agent_env)]);
    let kmock = Kmock::start(&spec);
    let _monitor = Monitor::start(kmock.port, faultline::cluster::signal_inject::EVENT_REASON);
    let mut log = kmsg::Reader::open_at_end(Path::new(kmsg::DEV_KMSG)).expect("/dev/kmsg is readable");

    // Bad input is refused before anything reaches the node: a code that is not a UCX error, a NIC event the
    // monitor would not cordon for.
    for (bad, says) in [(["--code", "3"], "a UCX error status"), (["--event", "cable-unplugged"], "is not fatal")] {
        let mut args = vec!["cluster", "nic-failure", "--node", "gpu-a", "--device", "mlx5_0"];
        args.extend(bad);
        let (_, stderr) = expect(&kmock.faultline(&args), 2);
        assert!(stderr.contains(says), "{stderr}");
    }
    // A device the node does not know (no ConnectX in this machine's sysfs, and no --pci) is found out by the
    // agent before anything changes.
    let unknown = kmock.faultline(&["cluster", "nic-failure", "--node", "gpu-a", "--device", "mlx5_0", "-n", "dynamo"]);
    let (_, stderr) = failed(&unknown);
    assert!(stderr.contains("mlx5_0"), "{stderr}");
    assert!(!policy.exists() && kmock.items("/api/v1/namespaces/faultline-system/configmaps").is_empty());
    assert!(kmock.items(&format!("/api/v1/namespaces/{}/events", kmock::NAMESPACE)).is_empty(), "no Event");

    let output = kmock.faultline(&[
        "cluster",
        "nic-failure",
        "--node",
        "gpu-a",
        "--device",
        "mlx5_0",
        "--pci",
        "0000:65:00.0",
        "-n",
        APP_NAMESPACE,
        "--ttl",
        "10m",
        "--watch-timeout",
        &testkit::WATCHDOG.as_secs().to_string(),
        "--interval",
        "0.05",
        "--json",
    ]);
    let outcome = json_of(&output);
    assert_eq!((outcome["cordoned"].as_bool(), outcome["evicted"].as_bool()), (Some(true), Some(true)), "{outcome}");
    assert_eq!((outcome["processes_failed"].as_u64(), outcome["code"].as_i64()), (Some(1), Some(-80)), "{outcome}");
    assert_eq!((outcome["device"].as_str(), outcome["event"].as_str()), (Some("mlx5_0"), Some("unrecoverable")));
    assert_eq!(outcome["pods_after"], json!([{"pod": "decode-2", "node": "gpu-b", "phase": "Running"}]));
    let steps: Vec<&str> =
        outcome["timeline"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
    let order = [
        "pod(s) of namespace",
        "node armed: UCX shims started there fail their endpoints with -80 (UCS_ERR_ENDPOINT_TIMEOUT)",
        "1 UCX process(es) on the node now fail their endpoints",
        "unrecoverable written to the kernel log of gpu-a",
        "node cordoned",
        "left the node",
        "run on other nodes",
    ];
    assert_eq!(steps.len(), order.len(), "{steps:?}");
    for (step, wanted) in steps.iter().zip(order) {
        assert!(step.contains(wanted), "{step:?} should say {wanted:?}: {steps:?}");
    }

    // The NIC's fatal line landed in the kernel log under the fault id, as mlx5_core prints it.
    let fault_id = outcome["fault_id"].as_str().unwrap().to_string();
    let lines = log.find_all(&format!("{FAULT_MARKER}{fault_id}"), 1, testkit::WATCHDOG).unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].text.contains("mlx5_core 0000:65:00.0: print_health_info")
            && lines[0].text.contains("unrecoverable hardware error"),
        "{lines:?}"
    );
    // The node's UCX shims are armed.
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("FAULTLINE_SITE=endpoint") && text.contains("FAULTLINE_ERROR_CODES=-80"), "{text}");
    assert!(text.contains(&fault_id), "{text}");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    let kinds = fault_ids(&listing);
    assert!(kinds.contains(&(fault_id.clone(), "armed-node".into())), "{kinds:?}");
    assert!(kinds.contains(&(fault_id.clone(), "kernel-signal".into())), "one fault id for every step: {kinds:?}");
    assert!(listing.to_string().contains("UCX shims fail their endpoints from start-up with -80"), "{listing}");

    // The program in the pod sees its endpoint fail as a dead peer's: the operation fails with the code, the error
    // handler runs once from progress, and every later operation on the endpoint fails at the call.
    let failing = ucx_commands(&mut decode, &["put A", "progress", "put A"]);
    assert!(put_failed(&failing, 1, -80), "{failing:?}");
    let handlers: Vec<&String> = failing.iter().filter(|l| l.starts_with("EPERR A")).collect();
    assert_eq!(handlers.len(), 1, "{failing:?}");
    assert!(handlers[0].starts_with("EPERR A -80 count=1"), "{failing:?}");
    assert!(failing.iter().any(|l| l == "POST put 2 ret=err:-80"), "{failing:?}");
    // A pod restarted on the node fails from its first call: it reads the policy file at start-up.
    let mut restarted = start_ucx_program(&shm, &policy, "decode-1");
    let first = ucx_commands(&mut restarted, &["put A", "progress"]);
    assert!(put_failed(&first, 0, -80), "{first:?}");

    // Recovering removes the policy file and the record, puts the failed program's settings back (faults off, its
    // own site) and turns the restarted one's off; then the program's new endpoint works.
    let recovered = json_of(&kmock.faultline(&["cluster", "recover", &fault_id, "--json"]));
    assert!(!recovered["recovered"].as_array().unwrap().is_empty(), "{recovered}");
    assert!(!policy.exists(), "disarmed");
    let records = kmock.items("/api/v1/namespaces/faultline-system/configmaps");
    assert!(records.is_empty(), "the arming record is gone: {records:?}");
    let listing = json_of(&kmock.faultline(&["cluster", "faults", "-A", "--json"]));
    assert!(fault_ids(&listing).iter().all(|(id, kind)| id != &fault_id || kind == "kernel-signal"), "{listing}");
    let state = ucx_state(&shm, decode.pid());
    assert_eq!((state["enabled"].as_bool(), state["site"].as_str()), (Some(false), Some("completion")), "{state}");
    assert_eq!(state["hooks_armed"], 17, "its own hooks again, every one but ucp_request_check_status: {state}");
    assert_eq!(ucx_state(&shm, restarted.pid())["enabled"], false);
    let again = ucx_commands(&mut decode, &["close A force", "create A", "put A", "get A"]);
    assert!(again.iter().any(|l| l == "CLOSE A 0") && again.iter().any(|l| l == "CREATE A 0"), "{again:?}");
    assert!(again.iter().any(|l| l.starts_with("CB put 3 status=0 ")), "the new endpoint works: {again:?}");
    assert!(again.iter().any(|l| l.starts_with("DATA get") && l.ends_with(" ok")), "{again:?}");
    for program in [decode, restarted] {
        let mut program = program;
        program.send("quit");
        assert!(program.finish().success());
    }
}

/// `faultline --pid <pid> status --json` of a UCX process in `shm`.
fn ucx_state(shm: &ShmDir, pid: u32) -> Value {
    let output = testkit::faultline(shm, &["--pid", &pid.to_string(), "status", "--json"]);
    json_of(&output)["processes"][0].clone()
}

/// `faultline --pid <pid> status --json` of a CUDA process in `shm`.
fn cuda_state(shm: &ShmDir, pid: u32) -> Value {
    let output = testkit::faultline(shm, &["--pid", &pid.to_string(), "status", "--json"]);
    json_of(&output)["processes"][0].clone()
}

/// NVSentinel's and the node drainer's part, played from outside as they would: once the kernel-log Event
/// (`reason`: the XID's, or another signal's) is on the node, cordon gpu-a and evict decode-1, whose replacement
/// starts on gpu-b. Stops when dropped.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(port: u16, reason: &'static str) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let events = format!("/api/v1/namespaces/{}/events", kmock::NAMESPACE);
            let signal_event = || {
                let list = kmock::http(port, "GET", &events, None);
                list["items"].as_array().is_some_and(|items| items.iter().any(|e| e["reason"] == reason))
            };
            testkit::wait_until("the kernel-log signal's Event", || stopped.load(Ordering::SeqCst) || signal_event());
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let client = KmockHttp { port };
            client.send("PATCH", "/api/v1/nodes/gpu-a", &json!({"spec": {"unschedulable": true}}));
            client.send("DELETE", "/api/v1/namespaces/dynamo/pods/decode-1", &json!({}));
            client.send("POST", "/api/v1/namespaces/dynamo/pods", &workload_pod("decode-2", "gpu-b"));
        });
        Monitor { stop, thread: Some(thread) }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Raw requests to the emulator from another actor in the cluster.
struct KmockHttp {
    port: u16,
}

impl KmockHttp {
    fn send(&self, method: &str, path: &str, body: &Value) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("kmock listens");
        let body = body.to_string();
        let content_type = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 2"), "{method} {path}: {response}");
    }
}
