//! `faultline node <process command>`: on a node, the ordinary process commands reach shimmed processes inside
//! containers through `/proc/<pid>/root/dev/shm` and name them by host pid. The "container" here is what a
//! container is to the kernel: the UCX self-loop program under the real shim in its own pid and mount namespaces,
//! with a private tmpfs on `/dev/shm` (needs root, as a node agent has).

mod common;

use std::process::{Command, Output};

use serde_json::Value;
use testkit::ShmDir;

fn faultline(shm: &ShmDir, args: &[&str]) -> Output {
    testkit::faultline(shm, args)
}

fn ok_json(shm: &ShmDir, args: &[&str]) -> Value {
    let output = faultline(shm, args);
    let (stdout, stderr) = common::text(&output);
    assert_eq!(output.status.code(), Some(0), "faultline {args:?}\n{stdout}\n{stderr}");
    serde_json::from_str(&stdout).expect("JSON")
}

#[test]
fn node_commands_reach_a_containerised_process_by_host_pid() {
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "37"), ("FAULTLINE_HOOKS", "put")];
    let mut contained = common::start_contained("put", &env);
    // FAULTLINE_SHM_DIR points at an empty directory: without `node`, nothing is found there.
    let shm = ShmDir::new();
    let plain = ok_json(&shm, &["ps", "--json"]);
    assert_eq!(plain["processes"], serde_json::json!([]), "plain ps looks only in FAULTLINE_SHM_DIR");

    let mut host_pid = None;
    testkit::wait_until("`faultline node ps` lists the containerised process", || {
        let ps = ok_json(&shm, &["node", "ps", "--json"]);
        host_pid = ps["processes"].as_array().unwrap().iter().find_map(|row| {
            let pid = row["pid"].as_u64()? as u32;
            (row["in_container"] == true && common::parent_pid(pid) == Some(contained.pid())).then_some(pid)
        });
        host_pid.is_some()
    });
    let host_pid = host_pid.unwrap();
    assert_ne!(host_pid, 1, "named by its host pid, not its namespaced pid 1");
    let pid = host_pid.to_string();

    let status = ok_json(&shm, &["node", "status", "--pid", &pid, "--json"]);
    let state = &status["processes"][0];
    assert_eq!((state["pid"].as_u64(), state["in_container"].as_bool()), (Some(u64::from(host_pid)), Some(true)));
    assert_eq!(state["probability_percent"].as_f64(), Some(37.0), "{state}");

    // A change through `node` lands in the container's segment: every armed put now fails.
    ok_json(&shm, &["node", "probability", "100", "--pid", &pid, "--json"]);
    let statuses = common::run_statuses(&mut contained, 5);
    assert!(!statuses.is_empty() && statuses.iter().all(|&s| s != 0), "{statuses:?}");
    // Global flags before `node` work too.
    let status = ok_json(&shm, &["--pid", &pid, "--json", "node", "status"]);
    assert_eq!(status["processes"][0]["probability_percent"].as_f64(), Some(100.0));

    contained.send("quit");
    assert!(contained.finish().success());
}

#[test]
fn node_refuses_what_is_not_a_process_command_and_non_root_users() {
    let shm = ShmDir::new();
    for args in [&["node", "demo"][..], &["node", "cluster", "nodes"], &["node", "completions", "bash"]] {
        let output = faultline(&shm, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(common::text(&output).1.contains("only process commands"), "{args:?}");
    }
    let output = faultline(&shm, &["node", "probability", "150"]);
    assert_eq!(output.status.code(), Some(2), "bad values are still refused");

    // As an unprivileged user (util-linux setpriv), the node-wide view is refused with a reason.
    let output = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&testkit::artifacts().faultline)
        .args(["node", "ps"])
        .env("FAULTLINE_SHM_DIR", shm.path())
        .output()
        .expect("setpriv runs");
    let (_, stderr) = common::text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("must run as root"), "{stderr}");
}
