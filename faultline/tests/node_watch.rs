//! `faultline node watch`, the agent's session for the cluster side: JSON-line snapshots of every shimmed process on
//! the node (with its pod and newest records), and process commands from standard input, each answered — driven
//! here against a real UCX program under the real shim.

mod common;

use std::process::Command;

use serde_json::Value;
use testkit::{Program, ShmDir};

fn watch(shm: &ShmDir, extra: &[&str]) -> Program {
    let mut command = Command::new(&testkit::artifacts().faultline);
    command
        .args(["node", "watch", "--interval-ms", "100", "--records", "4"])
        .args(extra)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("NO_COLOR", "1");
    Program::spawn(command)
}

/// The next line that is a JSON object of `kind` and satisfies `wanted`.
fn next(session: &mut Program, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let lines = session.lines_until(|line| {
        serde_json::from_str::<Value>(line).is_ok_and(|value| value["type"] == kind && wanted(&value))
    });
    serde_json::from_str(lines.last().expect("a line")).expect("JSON")
}

fn process(snapshot: &Value, pid: u32) -> Option<Value> {
    snapshot["processes"].as_array()?.iter().find(|p| p["pid"] == pid).cloned()
}

#[test]
fn snapshots_stream_and_commands_are_answered_once_each() {
    assert!(faultline::targets::running_as_root(), "the node agent runs as root");
    let shm = ShmDir::new();
    let mut program = common::start_with_env(
        &shm,
        "put",
        &[
            ("FAULTLINE_POD_NAMESPACE", "dynamo"),
            ("FAULTLINE_POD_NAME", "decode-0"),
            ("FAULTLINE_CONTAINER_NAME", "worker"),
        ],
    );
    let pid = program.pid();
    let mut session = watch(&shm, &[]);

    let first = next(&mut session, "snapshot", |s| process(s, pid).is_some());
    let shown = process(&first, pid).unwrap();
    assert_eq!(
        (&shown["namespace"], &shown["pod"], &shown["container"]),
        (&"dynamo".into(), &"decode-0".into(), &"worker".into())
    );
    assert_eq!(shown["enabled"], false);

    // Commands by host pid, answered with their report; the program sees the change from its next calls.
    let pid_text = pid.to_string();
    for (id, words) in [(1, vec!["strategy", "XO"]), (2, vec!["enable"])] {
        let mut args = vec!["--pid", pid_text.as_str()];
        args.extend(words);
        session.send(&serde_json::json!({"id": id, "args": args}).to_string());
        let reply = next(&mut session, "reply", |r| r["id"] == id);
        assert_eq!(reply["exit"], 0, "{reply}");
        assert_eq!(reply["report"]["processes"][0]["pid"], pid, "{reply}");
    }
    let faulted = |statuses: Vec<i32>| statuses.iter().map(|s| *s != 0).collect::<Vec<_>>();
    assert_eq!(faulted(common::run_statuses(&mut program, 4)), [true, false, true, false], "X O X O on ucp_put_nbx");

    // A bad value and a command that is not a process command: exit 2, nothing changed.
    session.send(r#"{"id": "bad", "args": ["probability", "200"]}"#);
    let reply = next(&mut session, "reply", |r| r["id"] == "bad");
    assert_eq!(reply["exit"], 2, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("'200'"), "{reply}");
    session.send(r#"{"id": "node", "args": ["cluster", "nodes"]}"#);
    assert_eq!(next(&mut session, "reply", |r| r["id"] == "node")["exit"], 2);
    session.send("not json");
    assert_eq!(next(&mut session, "reply", |r| r["id"].is_null())["exit"], 2);

    // Snapshots go on and show the state in force, the faults counted and the newest records.
    session.send(&serde_json::json!({"id": 3, "args": ["--pid", pid_text, "record", "on"]}).to_string());
    assert_eq!(next(&mut session, "reply", |r| r["id"] == 3)["exit"], 0);
    assert_eq!(faulted(common::run_statuses(&mut program, 2)), [true, false]);
    let later = next(&mut session, "snapshot", |s| {
        process(s, pid).is_some_and(|p| p["records"].as_array().is_some_and(|r| !r.is_empty()))
    });
    let shown = process(&later, pid).unwrap();
    assert_eq!((&shown["enabled"], &shown["mode"], &shown["pattern"]), (&true.into(), &"pattern".into(), &"XO".into()));
    assert!(later["seq"].as_u64().unwrap() > first["seq"].as_u64().unwrap());

    // The operator goes away: the session ends cleanly.
    assert!(session.finish().success());
}

#[test]
fn the_session_refuses_a_bad_interval_and_read_only_refuses_changes() {
    let shm = ShmDir::new();
    let output = testkit::faultline(&shm, &["node", "watch", "--interval-ms", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let mut session = watch(&shm, &["--read-only"]);
    next(&mut session, "snapshot", |_| true);
    session.send(r#"{"id": 1, "args": ["enable"]}"#);
    let reply = next(&mut session, "reply", |r| r["id"] == 1);
    assert_eq!(reply["exit"], 2, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("--read-only"), "{reply}");
    assert!(session.finish().success());
}
