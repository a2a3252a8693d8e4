//! A local Kubernetes API emulator for the cluster tests: PyPI `kmock`, started by each test from
//! `tests/kmock_server.py` on a free loopback port, with a kubeconfig pointing at it, and fixture objects. Pods
//! given an [`exec`] entry run exec'd commands on this machine over the API server's WebSocket channel protocol,
//! so cluster code takes its real exec path.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};

use faultline::cluster::KubeApi;
use serde_json::{json, Value};
use testkit::Program;

pub const NAMESPACE: &str = "faultline-system";

/// A running kmock and a kubeconfig pointing at it; both go away on drop.
pub struct Kmock {
    server: Program,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Kmock {
    pub fn start(spec: &Value) -> Kmock {
        Kmock::start_with_current_context(spec, "kmock")
    }

    /// [`Kmock::start`] with the kubeconfig's current context set to `current` (`kmock`, or `nowhere`: port 1, to
    /// prove a `--context kmock` is obeyed).
    pub fn start_with_current_context(spec: &Value, current: &str) -> Kmock {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kmock_server.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let probe = Command::new(&python).args(["-c", "import kmock"]).output().expect("python3 runs");
        assert!(
            probe.status.success(),
            "PyPI kmock is missing: run `scripts/install-deps.sh --test` (the README's test command installs it)"
        );
        let mut command = Command::new(python);
        command.arg(script);
        let mut server = Program::spawn(command);
        server.send(&spec.to_string());
        let lines = server.lines_until(|line| line.starts_with("PORT "));
        let port = lines.last().unwrap().trim_start_matches("PORT ").parse().expect("a port");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             - name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n\
             - name: kmock\n  context:\n    cluster: kmock\n    user: tester\n\
             - name: nowhere\n  context:\n    cluster: nowhere\n    user: tester\n\
             current-context: {current}\nusers:\n- name: tester\n  user: {{}}\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("kubeconfig written");
        Kmock { server, port, dir }
    }

    /// Kills what the exec endpoint runs whose command line holds `word` (an agent killed mid-session); how many.
    pub fn kill_exec(&self, word: &str) -> usize {
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // The parent pid is the second field after the parenthesised command.
            let parent =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if parent == Some(self.server.pid()) && words.contains(&word.as_bytes()) {
                // SAFETY: kill(2) on a pid we just read; a process that already exited makes it fail harmlessly.
                if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                    killed += 1;
                }
            }
        }
        killed
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn faultline(&self, args: &[&str]) -> Output {
        Command::new(&testkit::artifacts().faultline)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("NO_COLOR", "1")
            .output()
            .expect("faultline runs")
    }

    pub fn api(&self) -> KubeApi {
        let url = format!("http://127.0.0.1:{}", self.port);
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).expect("client");
        KubeApi::from_client(client, NAMESPACE, &url)
    }

    /// A raw HTTP request to the emulator (what another actor in the cluster, e.g. NVSentinel, would do).
    pub fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        http(self.port, method, path, body)
    }

    pub fn events(&self) -> Vec<Value> {
        let list = self.http("GET", &format!("/api/v1/namespaces/{NAMESPACE}/events"), None);
        list["items"].as_array().cloned().unwrap_or_default()
    }
}

/// A merge patch sent to the emulator on `port` from anywhere (a thread playing NVSentinel).
pub fn patch(port: u16, path: &str, body: &Value) -> Value {
    http(port, "PATCH", path, Some(body))
}

/// A raw HTTP request to the emulator on `port`.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("kmock listens");
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/merge-patch+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

impl Drop for Kmock {
    fn drop(&mut self) {
        self.server.kill(libc::SIGTERM);
    }
}

pub fn node(name: &str, gpu: bool, gpus: u32, cordoned: bool, taints: Value) -> Value {
    let labels = if gpu { json!({"nvidia.com/gpu.present": "true"}) } else { json!({"kubernetes.io/os": "linux"}) };
    json!({"resource": "v1/nodes", "body": {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"unschedulable": cordoned, "taints": taints},
        "status": {"capacity": {"nvidia.com/gpu": gpus.to_string(), "cpu": "96"},
                   "conditions": [{"type": "Ready", "status": "True"}]}}})
}

/// The spec's `exec` entries: each agent pod (in [`NAMESPACE`]) runs what is exec'd in it on this machine, with
/// `faultline` meaning the binary under test and `env` added, as the node agent would run it.
pub fn exec(pods: &[(&str, Value)]) -> Value {
    let faultline = testkit::artifacts().faultline.clone();
    let entries =
        pods.iter().map(|(pod, env)| (format!("{NAMESPACE}/{pod}"), json!({"faultline": faultline, "env": env})));
    Value::Object(entries.collect())
}

pub fn agent_pod(name: &str, node: &str, ready: bool) -> Value {
    let phase = if ready { "Running" } else { "Pending" };
    json!({"resource": "v1/pods", "body": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "faultline-node"}},
        "spec": {"nodeName": node, "containers": [{"name": "agent", "image": "faultline"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}})
}
