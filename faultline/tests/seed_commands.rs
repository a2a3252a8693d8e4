//! Every command object of the seed injector's v0.3.5 (`ipc/commands.rs`), with the field names its client sends,
//! through `faultline send`, each checked for its effect on a live UCX program; and bad objects refused with exit
//! status 2, changing nothing.

mod common;

use common::{fails, hook, on, run_statuses, start_capturing_stderr, status};
use serde_json::Value;
use shm_proto::config::StatsInterval;
use shm_proto::sync::Ordering::Relaxed;
use shm_proto::{Access, SegmentMap};
use testkit::ShmDir;

/// The process's stats interval, read from its segment (it is no part of `status`).
fn stats_interval(shm: &ShmDir, pid: u32) -> StatsInterval {
    let map = SegmentMap::attach(&shm.segment("ucx", pid), Access::ReadOnly, Default::default()).unwrap();
    StatsInterval::from_raw(map.segment().control.stats_interval.load(Relaxed))
}

fn armed(state: &Value, name: &str) -> bool {
    hook(state, name)["armed"].as_bool().unwrap()
}

fn pool(state: &Value) -> Vec<i64> {
    state["error_codes"].as_array().unwrap().iter().map(|c| c["code"].as_i64().unwrap()).collect()
}

#[test]
fn every_seed_command_object_takes_effect_on_a_live_process() {
    let shm = ShmDir::new();
    let mut program = start_capturing_stderr(&shm, "put,get");
    let pid = program.pid();
    let send = |object: &str| on(&shm, pid, &["send", object]);
    let document = |object: &str| -> Value { serde_json::from_str(&send(object)).unwrap() };

    // toggle
    assert_eq!(status(&shm, pid)["enabled"], false);
    send(r#"{"command":"toggle"}"#);
    assert_eq!(status(&shm, pid)["enabled"], true);

    // set_probability {value}: percent, as the seed's client sends it (a float)
    send(r#"{"command":"set_probability","value":100.0}"#);
    assert_eq!(status(&shm, pid)["probability_ppm"], 1_000_000);
    assert!(run_statuses(&mut program, 2).iter().all(|s| [-3, -6, -20].contains(s)), "every armed call fails");

    // set_error_codes {pattern}: the client's comma-separated list; and the README's {error_codes}
    send(r#"{"command":"set_error_codes","pattern":"-6"}"#);
    assert_eq!(pool(&status(&shm, pid)), vec![-6]);
    assert_eq!(run_statuses(&mut program, 1), vec![-6, -6]);
    send(r#"{"command":"set_error_codes","error_codes":[-20]}"#);
    assert_eq!(run_statuses(&mut program, 1), vec![-20, -20]);

    // set_strategy {pattern, error_codes}: a pattern over the armed calls (put, get, put, get, …)
    send(r#"{"command":"set_strategy","pattern":"XO","error_codes":[-3,-6]}"#);
    assert_eq!(run_statuses(&mut program, 2), vec![-3, 0, -6, 0]);

    // set_pattern {pattern}: pattern mode again from the next call, the pool kept
    send(r#"{"command":"set_pattern","pattern":"OX"}"#);
    assert_eq!(status(&shm, pid)["mode"], "pattern");
    assert_eq!(run_statuses(&mut program, 2), vec![0, -3, 0, -6]);

    // disable_hook / enable_hook {hook_name}: one hook, the others unchanged
    send(r#"{"command":"disable_hook","hook_name":"ucp_get_nbx"}"#);
    let state = status(&shm, pid);
    assert!(!armed(&state, "ucp_get_nbx") && armed(&state, "ucp_put_nbx"));
    // The pattern goes on over the puts alone (armed calls 5 and 6: O, then the third X, -3).
    assert_eq!(run_statuses(&mut program, 2), vec![0, 0, -3, 0]);
    send(r#"{"command":"enable_hook","hook_name":"ucp_request_check_status"}"#);
    let state = status(&shm, pid);
    assert!(armed(&state, "ucp_request_check_status") && !armed(&state, "ucp_get_nbx"));
    send(r#"{"command":"disable_hook","hook_name":"all"}"#);
    assert_eq!(status(&shm, pid)["hooks_armed"], 0);
    assert_eq!(run_statuses(&mut program, 1), vec![0, 0]);
    send(r#"{"command":"enable_hook","hook_name":"all"}"#);
    assert_eq!(status(&shm, pid)["hooks_armed"], 18);
    send(r#"{"command":"disable_hook","hook_name":"all"}"#);
    send(r#"{"command":"enable_hook","hook_name":"ucp_put_nbx"}"#);
    send(r#"{"command":"enable_hook","hook_name":"ucp_get_nbx"}"#);
    assert_eq!(status(&shm, pid)["hooks_armed"], 2);

    // set_stats_log_interval {stats_log_interval}: the process writes its stats line on stderr
    assert_eq!(stats_interval(&shm, pid), StatsInterval::Off);
    send(r#"{"command":"set_stats_log_interval","stats_log_interval":1}"#);
    assert_eq!(stats_interval(&shm, pid), StatsInterval::Calls(1));
    program.send("run 1");
    let line = program.error_lines_until(|line| line.contains("[STATS]")).pop().unwrap();
    assert!(line.starts_with(&format!("faultline[{pid}]: [STATS] ")), "{line}");
    program.lines_until(|line| line == "DONE");
    send(r#"{"command":"set_stats_log_interval","stats_log_interval":0}"#);
    assert_eq!(stats_interval(&shm, pid), StatsInterval::Off);

    // toggle_recording {recording_enabled}: sets it (twice true stays true), never toggles
    send(r#"{"command":"set_strategy","pattern":"XOO"}"#);
    send(r#"{"command":"toggle_recording","recording_enabled":true}"#);
    send(r#"{"command":"toggle_recording","recording_enabled":true}"#);
    assert_eq!(status(&shm, pid)["recording"], true);
    let recorded = run_statuses(&mut program, 3);
    assert_eq!(recorded, vec![-3, 0, 0, -6, 0, 0]);

    // dump_recording {export_format, value}: the three formats, v0.3.5's fields included
    let records = document(r#"{"command":"dump_recording","export_format":"records","value":4.0}"#);
    assert_eq!(records["total_count"], 4);
    let last = &records["records"][3];
    assert_eq!((last["function_name"].as_str(), last["transfer_size"].as_u64()), (Some("ucp_get_nbx"), Some(64)));
    let summary = document(r#"{"command":"dump_recording","export_format":"summary"}"#);
    assert_eq!(summary["faults_injected"], 2);
    assert_eq!(summary["pattern"], "XOOXOO");
    assert_eq!(summary["error_codes_used"], serde_json::json!([-3, -6]));
    assert_eq!(summary["buffer_wrapped"], false);
    let pattern = document(r#"{"command":"dump_recording","export_format":"pattern"}"#);
    assert_eq!(pattern["pattern"], "XOOXOO");
    assert_eq!(pattern["error_codes"], serde_json::json!([-3, -6]));

    // replay_recording: the process plays its own recording from the next armed call
    send(r#"{"command":"toggle_recording","recording_enabled":false}"#);
    assert_eq!(status(&shm, pid)["recording"], false);
    send(r#"{"command":"set_strategy","pattern":"random"}"#);
    send(r#"{"command":"replay_recording"}"#);
    assert_eq!(status(&shm, pid)["mode"], "replay");
    assert_eq!(run_statuses(&mut program, 3), recorded);

    // clear_recording
    send(r#"{"command":"clear_recording"}"#);
    assert_eq!(document(r#"{"command":"dump_recording"}"#)["total_calls"], 0);

    // status and stats: the state with its counters
    for object in [r#"{"command":"status"}"#, r#"{"command":"stats"}"#] {
        let sent: Value = serde_json::from_str(&on(&shm, pid, &["--json", "send", object])).unwrap();
        let state = &sent["processes"][0];
        assert_eq!(state["pid"], pid);
        assert!(hook(state, "ucp_put_nbx")["calls"].as_u64().unwrap() > 0, "{object}: {state}");
        assert!(state["faults"].as_u64().unwrap() > 0, "{object}: {state}");
    }

    // reset: the shim's defaults
    send(r#"{"command":"reset"}"#);
    let state = status(&shm, pid);
    assert_eq!((state["enabled"].as_bool(), state["mode"].as_str()), (Some(false), Some("random")));
    assert_eq!(pool(&state), vec![-3, -6, -20]);
    assert_eq!(state["hooks_armed"], 17);
    assert_eq!(run_statuses(&mut program, 1), vec![0, 0]);
}

#[test]
fn a_wrong_type_or_an_unknown_field_exits_2_and_changes_nothing() {
    let shm = ShmDir::new();
    let mut program = start_capturing_stderr(&shm, "put");
    let pid = program.pid();
    on(&shm, pid, &["send", r#"{"command":"toggle"}"#]);
    on(&shm, pid, &["send", r#"{"command":"set_pattern","pattern":"XO"}"#]);
    on(&shm, pid, &["send", r#"{"command":"toggle_recording","recording_enabled":true}"#]);
    run_statuses(&mut program, 4);
    let before = status(&shm, pid);
    let recorded = records_without_wall_clock(&on(&shm, pid, &["record", "dump", "records"]));
    for (object, message) in [
        (r#"{"command":"set_probability","value":"50"}"#, r#""value" must be a number, not "50""#),
        (r#"{"command":"set_probability","value":50,"probability":50}"#, r#"give "value" or "probability""#),
        (r#"{"command":"set_error_codes","pattern":[-3]}"#, r#""pattern" must be a string"#),
        (r#"{"command":"set_error_codes","pattern":"-3,zero"}"#, "zero"),
        (r#"{"command":"set_pattern","pattern":"XQX"}"#, "'Q' at position 2"),
        (r#"{"command":"set_pattern"}"#, r#"set_pattern needs "pattern""#),
        (
            r#"{"command":"toggle_recording","recording_enabled":"false"}"#,
            r#""recording_enabled" must be true or false"#,
        ),
        (r#"{"command":"dump_recording","export_format":7}"#, r#""export_format" must be a string, not 7"#),
        (r#"{"command":"dump_recording","value":-1}"#, r#""value" must be a whole number ≥ 0, not -1"#),
        (r#"{"command":"enable_hook","hook_name":"ucp_teleport"}"#, "unknown hook 'ucp_teleport'"),
        (r#"{"command":"disable_hook","hook_name":["all"]}"#, r#""hook_name" must be a string"#),
        (r#"{"command":"set_stats_log_interval","stats_log_interval":-64}"#, r#""stats_log_interval" must be a whole"#),
        (r#"{"command":"set_stats_log_interval","stats_log_interval":64,"interval":1}"#, r#"unknown key "interval""#),
        (r#"{"command":"toggle","value":1}"#, r#"toggle: unknown key "value" (it takes no other key)"#),
        (r#"{"command":"reset","hook_name":"all"}"#, r#"reset: unknown key "hook_name""#),
        (r#"{"command":"set_strategy","pattern":"random","probability":5}"#, r#"unknown key "probability""#),
        (r#"{"command":"stats","pid":1}"#, "choose processes with --pid"),
        (r#"{"command":"teleport"}"#, "unknown command 'teleport'"),
    ] {
        let stderr = fails(&shm, &["--pid", &pid.to_string(), "send", object], 2);
        assert!(stderr.contains(message), "{object}: {stderr}");
        assert_eq!(status(&shm, pid), before, "{object} changed nothing");
        assert_eq!(stats_interval(&shm, pid), StatsInterval::Off, "{object}");
    }
    let after = records_without_wall_clock(&on(&shm, pid, &["record", "dump", "records"]));
    assert_eq!(after, recorded, "nor the recording");
}

/// A records dump without its wall-clock times: they are derived from the ring's ticks at each read, so two reads of
/// the same record can differ by a microsecond (the records themselves, their order and monotonic times, cannot).
fn records_without_wall_clock(dump: &str) -> serde_json::Value {
    let mut dump: serde_json::Value = serde_json::from_str(dump).expect("JSON");
    for record in dump["records"].as_array_mut().into_iter().flatten() {
        record.as_object_mut().map(|r| r.remove("timestamp_us"));
    }
    dump
}
