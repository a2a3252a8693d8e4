//! Recording, dumps, exact replay (into a fresh process, from a file or another process's ring) and post-mortem
//! reading of a killed process, through the real shim and the `faultline` binary.

mod common;

use common::{fails, ok, on, run, run_statuses, start, start_with_env, status, statuses};
use serde_json::Value;
use testkit::ShmDir;

/// Sets up a random run at 30 % on the puts of `pid`, recording.
fn record_random_run(shm: &ShmDir, pid: u32) {
    for change in
        [&["hooks", "put"][..], &["enable"], &["strategy", "random"], &["probability", "30"], &["record", "on"]]
    {
        on(shm, pid, change);
    }
}

fn assert_mixed(statuses: &[i32]) {
    assert!(
        statuses.contains(&0) && statuses.iter().any(|&s| s != 0),
        "a run with both passes and faults: {statuses:?}"
    );
}

#[test]
fn a_recorded_random_run_replays_identically_in_a_fresh_process() {
    let shm = ShmDir::new();
    let files = tempfile::tempdir().unwrap();
    let mut original = start(&shm, "put");
    record_random_run(&shm, original.pid());
    let recorded = run_statuses(&mut original, 40);
    assert_mixed(&recorded);

    // The seed's spelling, written to a file.
    let file = files.path().join("run.json");
    let file_arg = file.to_str().unwrap();
    let stdout = on(&shm, original.pid(), &["record-dump", "pattern", "-o", file_arg]);
    assert!(stdout.is_empty(), "-o writes the file, not standard output: {stdout}");
    let pattern: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let expected_pattern: String = recorded.iter().map(|&s| if s == 0 { 'O' } else { 'X' }).collect();
    assert_eq!(pattern["pattern"], expected_pattern.as_str());
    assert_eq!(pattern["total_calls"], 40);
    let fault_codes: Vec<i64> = recorded.iter().filter(|&&s| s != 0).map(|&s| i64::from(s)).collect();
    assert_eq!(pattern["fault_codes"], serde_json::json!(fault_codes));
    assert!(pattern["error_codes"].as_array().unwrap().iter().all(|c| fault_codes.contains(&c.as_i64().unwrap())));

    // A fresh process plays exactly that sequence, codes included, then passes everything.
    let mut fresh = start(&shm, "put");
    let line = on(&shm, fresh.pid(), &["replay", "--from-file", file_arg]);
    assert!(line.contains(": enabled, replay 40 calls"), "{line}");
    assert_eq!(run_statuses(&mut fresh, 40), recorded);
    assert_eq!(run_statuses(&mut fresh, 5), vec![0; 5], "a replay without --loop passes every later call");

    // The same straight from the original's ring, looping.
    let line = on(&shm, fresh.pid(), &["replay", "--from-pid", &original.pid().to_string(), "--loop"]);
    assert!(line.contains("replay 40 calls") && line.contains("looping (pos 0)"), "{line}");
    let twice = run_statuses(&mut fresh, 80);
    assert_eq!(twice[..40], recorded[..]);
    assert_eq!(twice[40..], recorded[..]);
}

#[test]
fn a_typed_program_plays_exactly_its_codes() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    // A program starting with a negative code needs no `=`.
    let line = on(&shm, program.pid(), &["replay", "--program", "-6,0,-3,0,-20"]);
    assert!(line.contains(": enabled, replay 5 calls"), "{line}");
    assert_eq!(run_statuses(&mut program, 7), [-6, 0, -3, 0, -20, 0, 0], "then every call passes");
    on(&shm, program.pid(), &["replay", "--program", "0, -20", "--loop"]);
    assert_eq!(run_statuses(&mut program, 4), [0, -20, 0, -20]);
}

#[test]
fn the_seed_json_commands_record_dump_and_replay_a_run() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();
    for command in [
        r#"{"command": "toggle"}"#,
        r#"{"command": "set_strategy", "pattern": "random", "error_codes": [-3, -6, -20]}"#,
        r#"{"command": "set_probability", "probability": 30}"#,
        r#"{"command": "toggle_recording", "enabled": true}"#,
    ] {
        on(&shm, pid, &["send", command]);
    }
    let recorded = run_statuses(&mut program, 30);
    assert_mixed(&recorded);

    let pattern: Value =
        serde_json::from_str(&on(&shm, pid, &["send", r#"{"command": "dump_recording", "format": "pattern"}"#]))
            .unwrap();
    let expected_pattern: String = recorded.iter().map(|&s| if s == 0 { 'O' } else { 'X' }).collect();
    assert_eq!(pattern["pattern"], expected_pattern.as_str());
    assert!(pattern.get("site").is_none() && pattern.get("fault_sites").is_none(), "post: the seed's shape");

    let summary: Value = serde_json::from_str(&on(&shm, pid, &["send", r#"{"command": "dump_recording"}"#])).unwrap();
    let faults = recorded.iter().filter(|&&s| s != 0).count();
    assert_eq!(summary["recording_enabled"], true);
    assert_eq!(summary["total_calls"], 30);
    assert_eq!(summary["pattern_length"], 30);
    assert_eq!(summary["fault_count"], faults);
    assert_eq!(summary["hooks"]["ucp_put_nbx"]["faults"], faults);
    for code in summary["unique_error_codes"].as_array().unwrap() {
        assert!(recorded.contains(&code.as_str().unwrap().parse::<i32>().unwrap()), "codes are strings: {code}");
    }

    // The seed's replay: the process replays its own recording.
    on(&shm, pid, &["send", r#"{"command": "toggle_recording", "enabled": false}"#]);
    on(&shm, pid, &["send", r#"{"command": "replay_recording"}"#]);
    assert_eq!(run_statuses(&mut program, 30), recorded);

    let records: Value = serde_json::from_str(&on(
        &shm,
        pid,
        &["send", r#"{"command": "dump_recording", "format": "records", "count": 3}"#],
    ))
    .unwrap();
    assert_eq!(records["total_count"], 3);
    let last: Vec<i64> =
        records["records"].as_array().unwrap().iter().map(|r| r["error_code"].as_i64().unwrap()).collect();
    assert_eq!(last, recorded[27..].iter().map(|&s| i64::from(s)).collect::<Vec<_>>());
    assert_eq!(records["records"][2]["sequence"], 30);
    assert_eq!(records["records"][2]["hook"], "ucp_put_nbx");

    on(&shm, pid, &["send", r#"{"command": "clear_recording"}"#]);
    let summary: Value = serde_json::from_str(&on(&shm, pid, &["record-dump", "summary"])).unwrap();
    assert_eq!(summary["total_calls"], 0);
    assert_eq!(summary["recording_enabled"], false);
}

#[test]
fn the_seed_record_spellings_match_the_record_subcommands() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();
    on(&shm, pid, &["enable"]);
    on(&shm, pid, &["strategy", "XOO"]);

    assert_eq!(status(&shm, pid)["recording"], false);
    on(&shm, pid, &["record-toggle", "on"]);
    assert_eq!(status(&shm, pid)["recording"], true);
    on(&shm, pid, &["record-toggle"]);
    assert_eq!(status(&shm, pid)["recording"], false);
    on(&shm, pid, &["record", "toggle"]);
    assert_eq!(status(&shm, pid)["recording"], true);

    let recorded = run_statuses(&mut program, 6);
    let seed: Value = serde_json::from_str(&on(&shm, pid, &["record-dump-count", "4"])).unwrap();
    let ours: Value = serde_json::from_str(&on(&shm, pid, &["record", "dump", "records", "--count", "4"])).unwrap();
    assert_eq!(seed["total_count"], 4);
    let without_wall_clock = |dump: &Value| {
        let mut records = dump["records"].clone();
        for record in records.as_array_mut().unwrap() {
            record.as_object_mut().unwrap().remove("timestamp_us"); // derived per dump: may differ by 1 µs
        }
        records
    };
    assert_eq!(without_wall_clock(&seed), without_wall_clock(&ours));
    assert_eq!(seed["records"][0]["error_code"], recorded[2]);

    on(&shm, pid, &["record-clear"]);
    let summary: Value = serde_json::from_str(&on(&shm, pid, &["record", "dump"])).unwrap();
    assert_eq!(summary["total_calls"], 0);
    run(&mut program, 2);
    let summary: Value = serde_json::from_str(&on(&shm, pid, &["record", "dump", "summary"])).unwrap();
    assert_eq!(summary["total_calls"], 2, "recording goes on after a clear");
}

#[test]
fn a_killed_process_can_still_be_read_and_clean_removes_it() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();
    let pid_arg = pid.to_string();
    record_random_run(&shm, pid);
    let calls = run(&mut program, 12);
    let recorded = statuses(&calls);
    program.kill(libc::SIGKILL);

    let ps = ok(&shm, &["ps"]);
    assert!(ps.lines().any(|line| line.starts_with(&pid_arg) && line.contains(" dead ")), "{ps}");

    let records: Value = serde_json::from_str(&ok(&shm, &["record", "dump", "records", "--pid", &pid_arg])).unwrap();
    assert_eq!(records["total_count"], 12);
    assert_eq!(records["missed"], 0);
    let codes: Vec<i64> =
        records["records"].as_array().unwrap().iter().map(|r| r["error_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, recorded.iter().map(|&s| i64::from(s)).collect::<Vec<_>>());
    let dead = status(&shm, pid);
    assert_eq!(dead["alive"], false);
    assert_eq!(dead["recording"], true);

    // Changes: the broadcast finds nobody; an explicit pid is refused.
    let stderr = fails(&shm, &["enable"], 1);
    assert!(stderr.contains("no running faultline processes"), "{stderr}");
    let stderr = fails(&shm, &["--pid", &pid_arg, "enable"], 2);
    assert!(stderr.contains("is not running any more"), "{stderr}");

    let cleaned: Value = serde_json::from_str(&ok(&shm, &["clean", "--json"])).unwrap();
    assert_eq!(cleaned["removed"][0]["pid"], pid);
    assert!(!shm.segment("ucx", pid).exists());
    assert!(ok(&shm, &["clean"]).contains("nothing to clean"));
    let stderr = fails(&shm, &["--pid", &pid_arg, "record", "dump", "records"], 2);
    assert!(stderr.contains(&format!("no faultline segment for pid {pid}")), "{stderr}");
}

/// Sets `pid` up to fail every other armed put, recording.
fn record_every_other_put(shm: &ShmDir, pid: u32) {
    for change in [&["hooks", "put"][..], &["strategy", "XO"], &["enable"], &["record", "on"]] {
        on(shm, pid, change);
    }
}

/// `faultline --pid <pid> record dump <format>`, parsed.
fn dump(shm: &ShmDir, pid: u32, format: &str) -> Value {
    serde_json::from_str(&on(shm, pid, &["record", "dump", format])).unwrap()
}

#[test]
fn faults_recorded_at_completion_say_so_and_their_replay_restores_the_site() {
    let shm = ShmDir::new();
    let files = tempfile::tempdir().unwrap();
    let mut original = start_with_env(&shm, "put", &[("FAULTLINE_SITE", "completion")]);
    let pid = original.pid();
    record_every_other_put(&shm, pid);
    run(&mut original, 6);

    let records = dump(&shm, pid, "records");
    let sites: Vec<&Value> = records["records"].as_array().unwrap().iter().map(|r| &r["site"]).collect();
    let expected = ["completion", "null", "completion", "null", "completion", "null"];
    assert_eq!(sites.iter().map(|s| s.as_str().unwrap_or("null")).collect::<Vec<_>>(), expected, "{records}");
    let summary = dump(&shm, pid, "summary");
    assert_eq!(summary["faults_by_site"], serde_json::json!({"completion": 3}), "{summary}");

    let file = files.path().join("run.json");
    on(&shm, pid, &["record", "dump", "pattern", "-o", file.to_str().unwrap()]);
    let pattern: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!((&pattern["pattern"], &pattern["site"]), (&"XOXOXO".into(), &"completion".into()), "{pattern}");
    assert!(pattern.get("fault_sites").is_none(), "{pattern}");

    // A process at post replays the faults where they were recorded, from the file or from the ring.
    let fresh = start(&shm, "put");
    on(&shm, fresh.pid(), &["replay", "--from-file", file.to_str().unwrap()]);
    let replaying = status(&shm, fresh.pid());
    assert_eq!(
        (&replaying["mode"], &replaying["replay_faults"], &replaying["site"]),
        (&"replay".into(), &3.into(), &"completion".into())
    );
    on(&shm, fresh.pid(), &["site", "post"]);
    on(&shm, fresh.pid(), &["replay", "--from-pid", &pid.to_string()]);
    assert_eq!(status(&shm, fresh.pid())["site"], "completion");
    on(&shm, fresh.pid(), &["replay", "--from-pid", &pid.to_string(), "--site", "post"]);
    assert_eq!(status(&shm, fresh.pid())["site"], "post", "--site replays elsewhere");
    // A program has no site: the process keeps its own unless --site is given.
    on(&shm, fresh.pid(), &["replay", "--program", "-3,0"]);
    assert_eq!(status(&shm, fresh.pid())["site"], "post");
    on(&shm, fresh.pid(), &["replay", "--program", "-3,0", "--site", "completion"]);
    assert_eq!(status(&shm, fresh.pid())["site"], "completion");
}

#[test]
fn a_recording_that_mixes_sites_is_replayed_only_at_a_site_chosen_with_site() {
    let shm = ShmDir::new();
    let files = tempfile::tempdir().unwrap();
    let mut original = start(&shm, "put");
    let pid = original.pid();
    record_every_other_put(&shm, pid);
    run(&mut original, 2);
    on(&shm, pid, &["site", "completion"]);
    run(&mut original, 4);

    let pattern = dump(&shm, pid, "pattern");
    assert_eq!(pattern["pattern"], "XOXOXO");
    assert_eq!(pattern["fault_sites"], serde_json::json!(["post", "completion", "completion"]), "{pattern}");
    assert!(pattern.get("site").is_none(), "{pattern}");
    assert_eq!(dump(&shm, pid, "summary")["faults_by_site"], serde_json::json!({"post": 1, "completion": 2}));
    let file = files.path().join("mixed.json");
    on(&shm, pid, &["record", "dump", "pattern", "-o", file.to_str().unwrap()]);

    // Refused, changing nothing, from the process's own ring, another's, or the file.
    let mixed = "the recording mixes fault sites (post 1, completion 2); choose one with --site";
    let other = start(&shm, "put");
    for (target, args) in [
        (pid, vec!["replay".to_string()]),
        (other.pid(), vec!["replay".to_string(), "--from-pid".to_string(), pid.to_string()]),
        (other.pid(), vec!["replay".to_string(), "--from-file".to_string(), file.display().to_string()]),
    ] {
        let before = status(&shm, target);
        let mut all = vec!["--pid".to_string(), target.to_string()];
        all.extend(args.iter().cloned());
        let stderr = fails(&shm, &all.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert!(stderr.contains(mixed), "{args:?}: {stderr}");
        assert_eq!(status(&shm, target), before, "{args:?} changed nothing");
    }

    on(&shm, pid, &["replay", "--site", "post"]);
    let replaying = status(&shm, pid);
    assert_eq!((&replaying["mode"], &replaying["site"]), (&"replay".into(), &"post".into()));
    on(&shm, other.pid(), &["replay", "--from-file", file.to_str().unwrap(), "--site", "completion"]);
    assert_eq!(status(&shm, other.pid())["site"], "completion");
}
