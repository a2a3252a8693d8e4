//! faultline as a drop-in for the seed UCX injector's release: the tarball `scripts/seed-release.sh` packs, the
//! fault-injection part of vLLM's NIXL accuracy script run as written against a real UCX program, and the seed
//! client's own subcommands under its name (`ucx-fault-client`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run_statuses, start, status};
use serde_json::Value;
use testkit::{Program, ShmDir};

const SEED_HOOKS: [&str; 4] = ["ucp_get_nbx", "ucp_put_nbx", "ucp_ep_flush_nbx", "ucp_request_check_status"];

/// Packs the release tarball into `dir` from the built artifacts; returns its path.
fn release_tarball(dir: &Path) -> PathBuf {
    let artifacts = testkit::artifacts();
    let target_dir = artifacts.ucx_fault_client.parent().and_then(Path::parent).expect("<target>/release/…");
    let output = Command::new(testkit::workspace_root().join("scripts/seed-release.sh"))
        .arg("--no-build")
        .arg(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("bash runs");
    let (stdout, stderr) = common::text(&output);
    assert!(output.status.success(), "seed-release.sh failed: {stderr}");
    PathBuf::from(stdout.trim())
}

/// `command` with neither tool's variables from the test's own environment.
fn clean_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("FAULTLINE_") || n.starts_with("UCX_FAULT_")) {
        command.env_remove(name);
    }
    command
}

/// Runs `ucx-fault-client args` (as built) against the processes in `shm`.
fn client(shm: &ShmDir, args: &[&str]) -> Output {
    clean_env(&mut Command::new(&testkit::artifacts().ucx_fault_client))
        .args(args)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .output()
        .expect("ucx-fault-client runs")
}

fn client_ok(shm: &ShmDir, args: &[&str]) -> String {
    let output = client(shm, args);
    let (stdout, stderr) = common::text(&output);
    assert_eq!(output.status.code(), Some(0), "ucx-fault-client {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
}

/// Kills a process the test did not start itself (the script's server) if it is still there at the end.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        if !ended(self.0) {
            // SAFETY: signalling a pid; at worst it names no process any more.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn the_release_tarball_is_laid_out_like_the_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = release_tarball(dir.path());
    let arch = if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" };
    let name = format!("ucx-fault-injector-linux-{arch}");
    assert_eq!(tarball, dir.path().join(format!("{name}.tar.gz")));
    let listing = Command::new("tar").arg("tzvf").arg(&tarball).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let mut entries: Vec<(String, String)> = listing
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words[0].to_string(), words[words.len() - 1].to_string())
        })
        .collect();
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    let paths: Vec<&str> = entries.iter().map(|(_, path)| path.as_str()).collect();
    assert_eq!(
        paths,
        [format!("{name}/"), format!("{name}/libucx_fault_injector.so"), format!("{name}/ucx-fault-client")],
        "{listing}"
    );
    assert!(entries.iter().all(|(mode, _)| mode.starts_with("drwx") || mode.starts_with("-rwx")), "{listing}");
}

/// vLLM's `tests/v1/kv_connector/nixl_integration/run_accuracy_test.sh --enable-fault-injection`, its
/// fault-injection part: install the release, start the decode server with `UCX_FAULT_DEBUG=1 RUST_LOG=info
/// LD_PRELOAD=$UCX_FAULT_INJECTOR_LIB`, then `$UCX_FAULT_CLIENT probability $FAULT_RATE; toggle; status`.
#[cfg(target_arch = "x86_64")] // the script downloads the amd64 tarball
#[test]
fn the_vllm_accuracy_script_fault_injection_part_runs_as_written_against_a_ucx_program() {
    let shm = ShmDir::new();
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("release");
    release_tarball(&release);
    let serve_log = work.path().join("serve.log");
    let serve =
        format!("{} --forever --ops put,get,flush --quiet --interval-us 100", common::selfloop_binary().display());
    let script = testkit::workspace_root().join("faultline/tests/fixtures/seed/run_accuracy_test_fault_injection.sh");
    let mut command = Command::new("bash");
    clean_env(&mut command)
        .arg(script)
        .env("GIT_ROOT", work.path())
        .env("RELEASE_DIR", &release)
        .env("SERVE", serve)
        .env("SERVE_LOG", &serve_log)
        .env("FAULT_RATE", "50")
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("UCX_WARN_UNUSED_ENV_VARS", "n");
    // Its `set -x` trace goes to the captured stderr.
    let mut script = Program::spawn_capturing_stderr(command);
    let lines = script.lines_until(|line| line == "FAULTS CONFIGURED");
    let pid: u32 = lines
        .iter()
        .find_map(|line| line.strip_prefix("SERVER_PID="))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the script names its server: {lines:?}"));
    let _reaper = Reaper(pid);

    // `status` exited 0 (the script runs under `set -e`) and showed the server (its line comes last, after those of
    // `probability` and `toggle`) with the rate just set, enabled.
    let shown = lines.iter().rev().find(|line| line.starts_with(&format!("pid {pid} "))).expect("status shows it");
    assert!(shown.contains(": enabled, random 50%,") && shown.contains("hooks 4/18 armed"), "{shown}");

    // Faults at about 50 % of the calls of the seed's hooks, which are the ones armed (UCX_FAULT_DEBUG=1 made the
    // server a process configured the seed's way).
    testkit::wait_until("the server made 4000 armed calls", || status(&shm, pid)["armed_calls"].as_u64() >= Some(4000));
    let state = status(&shm, pid);
    let armed: Vec<&str> = state["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["armed"] == true)
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(armed, SEED_HOOKS);
    let calls = state["armed_calls"].as_u64().unwrap() as f64;
    let faults = state["armed_faults"].as_u64().unwrap() as f64;
    // Binomial(n, 0.5): six standard deviations either side.
    let bound = 6.0 * (calls * 0.25).sqrt();
    assert!((faults - calls / 2.0).abs() <= bound, "{faults} faults in {calls} armed calls");

    // The installed client's `status` shows them.
    let installed = work.path().join(".ucx-fault-injector/ucx-fault-client");
    let output = clean_env(&mut Command::new(installed)).arg("status").env("FAULTLINE_SHM_DIR", shm.path()).output();
    let output = output.unwrap();
    let (stdout, stderr) = common::text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let line = stdout.lines().find(|line| line.starts_with(&format!("pid {pid} "))).expect("the server's line");
    let shown_faults: u64 = line
        .split(" faults ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("faults in {line}"));
    assert!(shown_faults > 0, "{line}");
    let log = std::fs::read_to_string(&serve_log).unwrap();
    assert!(log.contains("[FAULT] INJECTED: ucp_"), "UCX_FAULT_DEBUG logs the faults: {log}");

    // The accuracy test is over: the script exits and its trap stops the server.
    script.send("");
    assert!(script.finish().success());
    testkit::wait_until("the server has stopped", || ended(pid));
}

#[test]
fn the_seed_clients_subcommands_work_under_its_name() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();

    client_ok(&shm, &["toggle"]);
    client_ok(&shm, &["error-codes", "--", "-3,-6"]);
    client_ok(&shm, &["pattern", "XOO"]);
    let state = status(&shm, pid);
    assert_eq!((state["enabled"].as_bool(), state["mode"].as_str()), (Some(true), Some("pattern")));
    client_ok(&shm, &["record-toggle", "true"]);
    assert_eq!(run_statuses(&mut program, 6), vec![-3, 0, 0, -6, 0, 0]);

    let records: Value = serde_json::from_str(&client_ok(&shm, &["record-dump-count", "2"])).unwrap();
    assert_eq!(records["total_count"], 2);
    assert_eq!(records["records"][1]["function_name"], "ucp_put_nbx");
    assert_eq!(records["records"][1]["transfer_size"], 64);
    let summary: Value = serde_json::from_str(&client_ok(&shm, &["record-dump", "summary"])).unwrap();
    assert_eq!((summary["faults_injected"].as_u64(), summary["pattern"].as_str()), (Some(2), Some("XOOXOO")));

    // aggregate-stats: totals and the table by process; --detailed adds functions, --group-by-size sizes.
    let text = client_ok(&shm, &["aggregate-stats"]);
    let row = text.lines().find(|line| line.starts_with(&format!("{pid} "))).unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("ucx_selfloop") && row.contains(" on"), "{row}");
    assert!(!text.contains("BY FUNCTION"), "{text}");
    let detailed = client_ok(&shm, &["aggregate-stats", "--detailed"]);
    assert!(detailed.contains("BY FUNCTION") && detailed.contains("ucp_put_nbx"), "{detailed}");
    let json: Value =
        serde_json::from_str(&client_ok(&shm, &["--json", "aggregate-stats", "--detailed", "--group-by-size"]))
            .unwrap();
    let aggregate = &json["aggregate"];
    let state = status(&shm, pid);
    assert_eq!(aggregate["processes"], 1);
    assert_eq!((&aggregate["calls"], &aggregate["faults"]), (&state["calls"], &state["faults"]));
    let put = aggregate["by_function"].as_array().unwrap().iter().find(|f| f["function"] == "ucp_put_nbx").unwrap();
    assert_eq!(put["calls"], common::hook(&state, "ucp_put_nbx")["calls"]);
    assert_eq!(
        aggregate["by_size"],
        serde_json::json!([
            {"min_bytes": 33, "max_bytes": 64, "calls": 6, "faults": 2, "fault_percent": 2.0 * 100.0 / 6.0}
        ])
    );

    client_ok(&shm, &["probability", "50"]);
    assert_eq!(status(&shm, pid)["probability_ppm"], 500_000);
    client_ok(&shm, &["reset"]);
    assert_eq!(status(&shm, pid)["enabled"], false);

    let help = client_ok(&shm, &["--help"]);
    assert!(help.contains("Usage: ucx-fault-client") && help.contains("aggregate-stats"), "{help}");
    assert_eq!(client(&shm, &[]).status.code(), Some(2), "a subcommand is needed, as with the seed");
}
