//! Shared helpers of the `faultline` CLI integration tests: start the UCX self-loop program under the real shim in a
//! private segment directory, drive it phase by phase, and run the real `faultline` binary against it.
#![allow(dead_code)] // each test file uses a different subset

use std::process::{Command, Output};

use serde_json::Value;
use testkit::{Call, Program, ShmDir};

/// The self-loop C program, built once per test binary.
pub fn selfloop_binary() -> std::path::PathBuf {
    testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"])
}

/// Starts `ucx_selfloop --stdin --ops <ops>` under the UCX shim and waits until its setup is done (its segment
/// exists and it answered `run 0`), so every later call is a loop call.
pub fn start(shm: &ShmDir, ops: &str) -> Program {
    start_binary(shm, &selfloop_binary(), ops)
}

/// [`start`] with another copy of the self-loop program (a different executable name).
pub fn start_binary(shm: &ShmDir, binary: &std::path::Path, ops: &str) -> Program {
    start_with(shm, binary, ops, &[], Program::spawn)
}

/// [`start`] with `env` added.
pub fn start_with_env(shm: &ShmDir, ops: &str, env: &[(&str, &str)]) -> Program {
    start_with(shm, &selfloop_binary(), ops, env, Program::spawn)
}

/// [`start`], with the program's standard error collected (`Program::error_lines_until`).
pub fn start_capturing_stderr(shm: &ShmDir, ops: &str) -> Program {
    start_with(shm, &selfloop_binary(), ops, &[], Program::spawn_capturing_stderr)
}

fn start_with(
    shm: &ShmDir,
    binary: &std::path::Path,
    ops: &str,
    env: &[(&str, &str)],
    spawn: fn(Command) -> Program,
) -> Program {
    let mut command = Command::new(binary);
    command
        .args(["--stdin", "--ops", ops])
        .env("LD_PRELOAD", &testkit::artifacts().ucx_shim)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("UCX_WARN_UNUSED_ENV_VARS", "n")
        .envs(env.iter().copied());
    let mut program = spawn(command);
    let segment = shm.segment("ucx", program.pid());
    testkit::wait_until("the shim creates its segment", || segment.exists());
    program.send("run 0");
    program.lines_until(|line| line == "DONE");
    program
}

/// Starts `ucx_selfloop --stdin --ops <ops>` under the UCX shim, `env` added, as what a container is to the kernel:
/// pid 1 of new pid and mount namespaces with a private tmpfs on `/dev/shm` (where its segment goes), killed with
/// its `unshare` (needs root, as a node agent has). Waits until its setup is done; [`contained_host_pid`] says its
/// pid on this machine.
pub fn start_contained(ops: &str, env: &[(&str, &str)]) -> Program {
    assert!(faultline::targets::running_as_root(), "a test that creates namespaces needs root (CI runs as root)");
    // Only the program is preloaded, not unshare, sh or mount.
    let script = format!(
        "mount -t tmpfs -o mode=1777 faultline-test /dev/shm && exec env LD_PRELOAD={} {} --stdin --ops {ops}",
        testkit::artifacts().ucx_shim.display(),
        selfloop_binary().display()
    );
    let mut command = Command::new("unshare");
    command.args(["--pid", "--kill-child", "--mount", "--mount-proc", "--propagation", "private", "sh", "-c", &script]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    command.env("UCX_WARN_UNUSED_ENV_VARS", "n").envs(env.iter().copied());
    let mut program = Program::spawn(command);
    program.send("run 0");
    program.lines_until(|line| line == "DONE");
    program
}

/// The pid on this machine of the program [`start_contained`] started: the one child of its `unshare` (`sh`
/// became the program).
pub fn contained_host_pid(contained: &Program) -> u32 {
    let children = std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_pid(pid) == Some(contained.pid()))
        .collect::<Vec<_>>();
    match children.as_slice() {
        [pid] => *pid,
        other => panic!("unshare {} should have one child, has {other:?}", contained.pid()),
    }
}

/// The parent pid of `pid`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// Runs `iterations` loop iterations and returns the calls the program printed.
pub fn run(program: &mut Program, iterations: u32) -> Vec<Call> {
    program.send(&format!("run {iterations}"));
    testkit::calls(&program.lines_until(|line| line == "DONE"))
}

/// The statuses of `calls`, in order.
pub fn statuses(calls: &[Call]) -> Vec<i32> {
    calls.iter().map(|call| call.status).collect()
}

/// The statuses of `iterations` loop iterations.
pub fn run_statuses(program: &mut Program, iterations: u32) -> Vec<i32> {
    statuses(&run(program, iterations))
}

/// Standard output and error of a finished `faultline`.
pub fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs `faultline args`, asserts exit status 0, returns its standard output.
pub fn ok(shm: &ShmDir, args: &[&str]) -> String {
    let output = testkit::faultline(shm, args);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "faultline {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// Runs `faultline args`, asserts exit status `code`, returns its standard error.
pub fn fails(shm: &ShmDir, args: &[&str], code: i32) -> String {
    let output = testkit::faultline(shm, args);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(code), "faultline {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    stderr
}

/// `faultline --pid <pid> status --json`: the process's state.
pub fn status(shm: &ShmDir, pid: u32) -> Value {
    let stdout = ok(shm, &["--pid", &pid.to_string(), "status", "--json"]);
    let mut document: Value = serde_json::from_str(&stdout).expect("status --json is JSON");
    let processes = document["processes"].take();
    let [state]: [Value; 1] = serde_json::from_value(processes).expect("exactly one process");
    state
}

/// Runs `faultline --pid <pid> args…` and asserts success.
pub fn on(shm: &ShmDir, pid: u32, args: &[&str]) -> String {
    let mut all = vec!["--pid".to_string(), pid.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    ok(shm, &all)
}

/// The UCX shim's default error pool.
pub const DEFAULT_POOL: [i32; 3] = [-3, -6, -20];

/// The entry of hook `name` in a `status --json` state.
pub fn hook(state: &Value, name: &str) -> Value {
    state["hooks"].as_array().expect("hooks").iter().find(|h| h["name"] == name).expect("hook exists").clone()
}
