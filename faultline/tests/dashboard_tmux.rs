//! End to end, as a person would use it: the real `faultline` dashboard runs in tmux (keys typed with `send-keys`,
//! the screen read with `capture-pane`) against a real UCX program running under the real shim. Selecting the
//! process and setting probability 50 in the editor makes the program's own failure count rise; pattern `XO` with
//! recording on shows alternating X/O rows in the tail; `q` gives the shell back its terminal.

use std::path::Path;
use std::process::{Command, Output};

use testkit::{Program, ShmDir};

mod common;
mod kmock;

/// A tmux server of our own (its socket in a temporary directory), killed on drop.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A 160×50 session running `sh` with `env` set.
    fn start(env: &[(&str, &std::path::Path)]) -> Tmux {
        let tmux = Tmux { dir: tempfile::Builder::new().prefix("faultline-tmux.").tempdir().expect("temp dir") };
        let mut command = tmux.command();
        command.args(["-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "160", "-y", "50"]);
        for (name, value) in env {
            command.arg("-e").arg(format!("{name}={}", value.display()));
        }
        command.arg("sh");
        let output = command.output().expect("tmux runs");
        assert!(output.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&output.stderr));
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(self.dir.path().join("socket")).env_remove("TMUX");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.command().args(args).output().expect("tmux runs");
        assert!(output.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Presses keys by tmux name (`Enter`, `Down`, `C-u`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend(keys);
        self.run(&args);
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// The screen, as text.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned()
    }

    /// A tmux format variable of the pane (`alternate_on`, `mouse_any_flag`, …).
    fn pane_flag(&self, name: &str) -> String {
        let format = format!("#{{{name}}}");
        String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "main", &format]).stdout).trim().to_string()
    }

    /// Waits until the screen satisfies `condition`; returns that screen. A timeout prints the last screen.
    fn wait_for(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        /// Prints the last screen if the wait panics (timed out).
        struct ShowOnPanic(String);
        impl Drop for ShowOnPanic {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    eprintln!("the last screen:\n{}", self.0);
                }
            }
        }
        let mut last = ShowOnPanic(String::new());
        testkit::wait_until(what, || {
            last.0 = self.screen();
            condition(&last.0)
        });
        std::mem::take(&mut last.0)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

/// The self-loop program under the UCX shim, injection enabled at 0 %, driven through stdin.
fn start_program(shm: &ShmDir) -> Program {
    let binary = testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"]);
    let mut command = Command::new(binary);
    command
        .args(["--stdin", "--quiet", "--ops", "put,get,flush"])
        .env("LD_PRELOAD", &testkit::artifacts().ucx_shim)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("FAULTLINE_ENABLED", "1")
        .env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let mut program = Program::spawn(command);
    let segment = shm.segment("ucx", program.pid());
    testkit::wait_until("the shim creates its segment", || segment.exists());
    program.send("run 0");
    program.lines_until(|line| line == "DONE");
    program
}

/// A tmux session whose shell runs the dashboard on `shm` (then prints its exit status), once it lists `pid`.
fn open_dashboard(shm: &ShmDir, pid: &str) -> Tmux {
    let faultline = &testkit::artifacts().faultline;
    let tmux = Tmux::start(&[("FAULTLINE_SHM_DIR", shm.path()), ("NO_COLOR", std::path::Path::new("1"))]);
    tmux.wait_for("the shell prompt", |s| !s.trim().is_empty());
    tmux.type_text(&format!("{}; echo FAULTLINE-EXIT=$?", faultline.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dashboard lists the program", |s| s.contains(pid) && s.contains("ucx_selfloop"));
    tmux
}

/// Runs `iterations` iterations; returns the program's cumulative failures over every function.
fn run_and_count_failures(program: &mut Program, iterations: u32) -> u64 {
    program.send(&format!("run {iterations}"));
    let lines = program.lines_until(|line| line == "DONE");
    testkit::summaries(&lines).values().map(|&(_, failures)| failures).sum()
}

/// `(sequence, injected)` of every recording-tail row on the screen, in screen order.
fn tail_rows(screen: &str) -> Vec<(u64, bool)> {
    let mut rows = Vec::new();
    for line in screen.lines() {
        for pane in line.split('│') {
            let words: Vec<&str> = pane.split_whitespace().collect();
            // SEQ TIME HOOK THREAD X/O CODE…
            if let [seq, time, _hook, thread, mark, ..] = words.as_slice() {
                let is_time = time.len() == 12 && time.as_bytes()[2] == b':' && time.as_bytes()[8] == b'.';
                if is_time && thread.parse::<u32>().is_ok() && (*mark == "X" || *mark == "O") {
                    if let Ok(seq) = seq.parse() {
                        rows.push((seq, *mark == "X"));
                    }
                }
            }
        }
    }
    rows
}

#[test]
fn the_dashboard_steers_a_real_ucx_program_and_gives_the_terminal_back() {
    let shm = ShmDir::new();
    let mut program = start_program(&shm);
    let pid = program.pid().to_string();
    assert_eq!(run_and_count_failures(&mut program, 100), 0, "enabled at 0 %: nothing fails yet");

    let tmux = open_dashboard(&shm, &pid);
    assert_eq!(tmux.pane_flag("alternate_on"), "1", "the dashboard draws on the alternate screen");

    // Select the process (filter by its pid), wait for its detail, open the editor, probability 50, apply.
    tmux.type_text(&format!("/{pid}"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the process is selected", |s| {
        s.contains("Processes (1 shown)") && s.contains(&format!("Rates of pid {pid}"))
    });
    tmux.keys(&["e"]);
    tmux.wait_for("the editor opens", |s| s.contains(&format!("Edit pid {pid}")));
    tmux.keys(&["Down", "Down", "C-u"]);
    tmux.type_text("50");
    tmux.wait_for("the probability field shows 50", |s| s.contains("Probability %      50"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the change is applied", |s| s.contains(&format!("set the probability: done on pid {pid}")));
    tmux.wait_for("the strategy pane shows it", |s| s.contains("random 50%"));
    let failures = run_and_count_failures(&mut program, 100);
    assert!(failures > 0, "probability 50: the program's own failure count rises (got {failures})");

    // Pattern XO and recording on: the tail shows alternating X/O rows.
    tmux.keys(&["e", "Down", "Down", "Down"]);
    tmux.type_text("XO");
    tmux.wait_for("the pattern is typed and valid", |s| s.contains("XO▏") && s.contains("2 positions, 1 X"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("pattern mode is in force", |s| s.contains("pattern, 2 positions"));
    tmux.keys(&["r"]);
    tmux.wait_for("recording is on", |s| s.contains("Recording on"));
    run_and_count_failures(&mut program, 20);
    let screen = tmux.wait_for("the tail shows the recorded calls", |s| tail_rows(s).len() >= 20);
    let rows = tail_rows(&screen);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "consecutive records: {rows:?}\n{screen}");
        assert_ne!(pair[1].1, pair[0].1, "X and O alternate: {rows:?}\n{screen}");
    }

    // q: the shell gets its terminal back (main screen, no mouse reporting, cooked mode, visible cursor).
    tmux.keys(&["q"]);
    tmux.wait_for("faultline exits with status 0", |s| s.contains("FAULTLINE-EXIT=0"));
    assert_eq!(tmux.pane_flag("alternate_on"), "0", "back on the main screen");
    assert_eq!(tmux.pane_flag("mouse_any_flag"), "0", "mouse reporting off");
    assert_eq!(tmux.pane_flag("cursor_flag"), "1", "cursor visible");
    tmux.type_text("stty -a | grep -q -w -- -icanon && echo RAW-MODE || echo COOKED-MODE");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("stty answers", |s| s.contains("RAW-MODE\n") || s.contains("COOKED-MODE\n"));
    assert!(screen.contains("COOKED-MODE\n") && !screen.contains("RAW-MODE\n"), "{screen}");
}

#[test]
fn the_dashboard_lives_through_a_fifo_and_a_flapping_segment_and_still_quits() {
    let shm = ShmDir::new();
    let mut program = start_program(&shm);
    let pid = program.pid().to_string();
    // A FIFO under the name a live process (this test) would have: opening it must not block discovery.
    let fifo = shm.path().join(shm_proto::segment::file_name(shm_proto::Kind::Ucx, std::process::id()));
    let fifo_name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo_name.as_ptr(), 0o600) }, 0);

    let tmux = open_dashboard(&shm, &pid);

    // The segment's owner flaps its size while the dashboard samples it.
    let path = shm.segment("ucx", program.pid());
    let saved = std::fs::read(&path).unwrap();
    for _ in 0..300 {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &saved, 0).unwrap();
    }
    run_and_count_failures(&mut program, 10);
    tmux.wait_for("the dashboard still shows the live program", |s| s.contains(&pid) && s.contains("alive"));
    tmux.keys(&["q"]);
    tmux.wait_for("faultline exits with status 0", |s| s.contains("FAULTLINE-EXIT=0"));
}

#[test]
fn the_cluster_view_lists_real_api_nodes_and_shows_a_failed_injection() {
    use serde_json::json;
    let gpu_node = json!({"resource": "v1/nodes", "body": {"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "gpu-a", "uid": "uid-gpu-a", "labels": {"nvidia.com/gpu.present": "true"}},
        "spec": {"unschedulable": true,
                 "taints": [{"key": "nvidia.com/gpu-health", "value": "xid-79", "effect": "NoSchedule"}]},
        "status": {"capacity": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}}});
    let agent = json!({"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "faultline-node-a", "namespace": "faultline-system",
                     "labels": {"app.kubernetes.io/name": "faultline-node"}},
        "spec": {"nodeName": "gpu-a", "containers": [{"name": "agent", "image": "faultline"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}});
    // The current context points nowhere: the dashboard must use --context kmock.
    let spec = json!({"objects": [gpu_node, agent], "resources": ["v1/events"]});
    let kmock = kmock::Kmock::start_with_current_context(&spec, "nowhere");
    let shm = ShmDir::new();
    let kubeconfig = kmock.kubeconfig();
    let tmux = Tmux::start(&[
        ("FAULTLINE_SHM_DIR", shm.path()),
        ("KUBECONFIG", &kubeconfig),
        ("NO_COLOR", std::path::Path::new("1")),
    ]);
    tmux.wait_for("the shell prompt", |s| !s.trim().is_empty());
    // The current context points nowhere: only `--context kmock` reaches the emulator.
    let faultline = &testkit::artifacts().faultline;
    tmux.type_text(&format!("{} --context kmock; echo FAULTLINE-EXIT=$?", faultline.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the process view, without a cluster", |s| s.contains("0 processes") && s.contains("v cluster"));

    tmux.keys(&["v"]);
    let screen = tmux.wait_for("the node from the API", |s| s.contains("GPU nodes (1) · 1 cordoned"));
    assert!(screen.contains("gpu-a") && screen.contains("nvidia.com/gpu-health=xid-79:NoSchedule"), "{screen}");
    assert!(screen.contains("connected to http://127.0.0.1:"), "{screen}");

    // kmock has no exec endpoint: the injection fails after the confirmation, and the view says why.
    tmux.keys(&["x"]);
    tmux.wait_for("the dialog", |s| {
        s.contains("Inject an XID on node gpu-a") && s.contains("agent pod faultline-node-a")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the question", |s| s.contains("on GPU 0 of node gpu-a? y/n"));
    tmux.keys(&["y"]);
    tmux.wait_for("the failure in the log", |s| s.contains("XID not injected:"));

    // The view stays usable: back to the processes, and q quits cleanly. Once the view connected, the process list
    // looks for the cluster's processes too: this agent answers no exec, so its node is unreachable.
    tmux.keys(&["v"]);
    tmux.wait_for("the process view again", |s| s.contains("0 processes"));
    tmux.wait_for("the cluster's processes are looked for", |s| s.contains("gpu-a unreachable since"));
    tmux.keys(&["q"]);
    tmux.wait_for("faultline exits with status 0", |s| s.contains("FAULTLINE-EXIT=0"));
}

/// Two real-UCX programs "in" two pods on node gpu-a, reached through the emulator's exec endpoint (the agent's
/// `faultline node watch` runs for real): `faultline --cluster` lists them with their node and pods and live rates,
/// the editor changes one, an agent killed mid-session marks the node unreachable (rows kept, actions refused) until
/// it is back, and `q` quits at once while the session is being re-established.
#[test]
fn the_dashboard_lists_and_steers_the_clusters_processes_and_lives_through_an_agent_restart() {
    use serde_json::json;
    assert!(faultline::targets::running_as_root(), "the node agent runs as root");
    let shm = ShmDir::new();
    let start_in = |pod: &str| {
        let env = [
            ("FAULTLINE_POD_NAMESPACE", "dynamo"),
            ("FAULTLINE_POD_NAME", pod),
            ("FAULTLINE_CONTAINER_NAME", "worker"),
        ];
        common::start_with_env(&shm, "put", &env)
    };
    let mut decode = start_in("decode-0");
    let mut prefill = start_in("prefill-0");
    let pod = |name: &str| {
        json!({"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "dynamo", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "gpu-a", "containers": [{"name": "worker", "image": "vllm"}]},
            "status": {"phase": "Running"}}})
    };
    let spec = json!({
        "objects": [
            kmock::node("gpu-a", true, 8, false, json!([])),
            kmock::agent_pod("faultline-node-a", "gpu-a", true),
            pod("decode-0"),
            pod("prefill-0"),
        ],
        "resources": ["v1/events"],
        "exec": kmock::exec(&[("faultline-node-a", json!({"FAULTLINE_SHM_DIR": shm.path()}))]),
    });
    let kmock = kmock::Kmock::start(&spec);
    let agent_ready = |ready: bool| {
        let status = if ready { "True" } else { "False" };
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": status}]}});
        kmock::patch(kmock.port, &format!("/api/v1/namespaces/{}/pods/faultline-node-a", kmock::NAMESPACE), &patch);
    };

    // The dashboard's own machine has no shimmed process: every row comes from the cluster.
    let here = ShmDir::new();
    let kubeconfig = kmock.kubeconfig();
    let tmux =
        Tmux::start(&[("FAULTLINE_SHM_DIR", here.path()), ("KUBECONFIG", &kubeconfig), ("NO_COLOR", Path::new("1"))]);
    tmux.wait_for("the shell prompt", |s| !s.trim().is_empty());
    tmux.type_text(&format!("{} --cluster; echo FAULTLINE-EXIT=$?", testkit::artifacts().faultline.display()));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("both pods' processes, with their node", |s| {
        s.contains("dynamo/decode-0:worker") && s.contains("dynamo/prefill-0:worker ")
    });
    assert!(screen.contains("NODE") && screen.contains("POD") && screen.contains("gpu-a"), "{screen}");

    // Select decode-0: its live rates come from the agent's snapshots while it makes calls.
    let pid = decode.pid().to_string();
    tmux.type_text("/decode-0");
    tmux.keys(&["Enter"]);
    tmux.wait_for("decode-0 is selected", |s| {
        s.contains("Processes (1 shown)") && s.contains(&format!("Rates of pid {pid} on gpu-a"))
    });
    let mut busy = String::new();
    testkit::wait_until("the chart title shows decode-0's calls per second", || {
        common::run_statuses(&mut decode, 50);
        busy = tmux.screen();
        busy.lines().any(|l| l.contains(&format!("Rates of pid {pid} on gpu-a")) && !l.contains("· 0 calls/s"))
    });

    // The editor changes it: probability 100 and injection on, through the agent.
    tmux.keys(&["e"]);
    tmux.wait_for("the editor opens", |s| s.contains(&format!("Edit pid {pid}")));
    tmux.keys(&["Down", "Down", "C-u"]);
    tmux.type_text("100");
    tmux.wait_for("the probability field shows 100", |s| s.contains("Probability %      100"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the agent applied it", |s| {
        s.contains(&format!("set the probability: done on pid {pid} on node gpu-a"))
    });
    tmux.keys(&["t"]);
    tmux.wait_for("injection is on", |s| {
        s.contains(&format!("toggle fault injection: done on pid {pid} on node gpu-a"))
    });
    let faulted = |program: &mut Program| common::run_statuses(program, 3).iter().map(|s| *s != 0).collect::<Vec<_>>();
    assert_eq!(faulted(&mut decode), [true; 3], "decode-0 fails every call");
    assert_eq!(faulted(&mut prefill), [false; 3], "prefill-0 is untouched");
    tmux.wait_for("the strategy pane shows it", |s| s.contains("random 100%"));

    // The agent is killed mid-session and its pod is not ready for a while: the node is unreachable, its rows stay.
    agent_ready(false);
    testkit::wait_until("the agent's session is killed", || kmock.kill_exec("watch") > 0);
    let screen = tmux.wait_for("the node is marked unreachable", |s| s.contains("gpu-a unreachable since"));
    assert!(screen.contains(&format!("Rates of pid {pid} on gpu-a (unreachable since")), "{screen}");
    tmux.keys(&["t"]);
    tmux.wait_for("an action on it is refused, saying why", |s| {
        s.contains("toggle fault injection: node gpu-a is unreachable since")
    });
    assert_eq!(faulted(&mut decode), [true; 3], "nothing was applied meanwhile");

    // The agent is back: the session is re-established and the rows are live again.
    agent_ready(true);
    tmux.wait_for("the node is reachable again", |s| {
        !s.contains("gpu-a unreachable since") && s.contains(&format!("Rates of pid {pid} on gpu-a (ucx"))
    });
    tmux.keys(&["t"]);
    tmux.wait_for("actions work again", |s| {
        s.contains(&format!("toggle fault injection: done on pid {pid} on node gpu-a"))
    });
    assert_eq!(faulted(&mut decode), [false; 3], "toggled off, once");

    // q quits at once even while the session is being re-established.
    agent_ready(false);
    testkit::wait_until("the agent's session is killed again", || kmock.kill_exec("watch") > 0);
    tmux.wait_for("the node is unreachable again", |s| s.contains("gpu-a unreachable since"));
    tmux.keys(&["q"]);
    tmux.wait_for("faultline exits with status 0", |s| s.contains("FAULTLINE-EXIT=0"));
}
