//! The command line itself: help, completions, no-target behaviour, and the seed's JSON objects doing exactly what
//! the corresponding subcommands do.

mod common;

use common::{fails, hook, ok, on, run, start, start_binary, start_with_env, status};
use std::process::Command;

use serde_json::Value;
use testkit::ShmDir;

#[test]
fn help_and_completions_read_like_a_cli() {
    let shm = ShmDir::new();
    let help = ok(&shm, &["--help"]);
    for expected in
        ["Usage: faultline [OPTIONS] [COMMAND]", "probability", "strategy", "record", "replay", "--pid <PID>"]
    {
        assert!(help.contains(expected), "--help mentions {expected}: {help}");
    }
    assert!(!help.contains("record-dump-count"), "the seed's spellings are hidden: {help}");
    let no_terminal = fails(&shm, &[], 2);
    assert!(no_terminal.contains("the dashboard needs a terminal"), "no command opens the dashboard: {no_terminal}");

    let record_help = ok(&shm, &["record", "--help"]);
    for expected in ["on", "off", "toggle", "dump", "clear"] {
        assert!(record_help.contains(expected), "{record_help}");
    }
    let replay_help = ok(&shm, &["replay", "--help"]);
    assert!(replay_help.contains("--program <CODES>") && replay_help.contains("numbers only"), "{replay_help}");
    let dump_help = ok(&shm, &["record", "dump", "--help"]);
    assert!(dump_help.contains("--count <N>") && dump_help.contains("-o, --output <FILE>"), "{dump_help}");

    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&shm, &["completions", shell]);
        assert!(script.contains("faultline") && script.contains("probability"), "{shell}: {script}");
    }
    fails(&shm, &["completions", "cmd.exe"], 2);
}

#[test]
fn without_processes_changes_and_reads_say_so_and_fail() {
    let shm = ShmDir::new();
    let dir = shm.path().display().to_string();
    for args in [&["enable"][..], &["probability", "50"], &["record", "on"], &["status"], &["record", "dump"]] {
        let stderr = fails(&shm, args, 1);
        assert!(stderr.contains(&format!("no running faultline processes found in {dir}")), "{args:?}: {stderr}");
    }
    assert!(fails(&shm, &["reset"], 1).contains("nothing changed"));
    // A bad value is reported as such even when nothing runs.
    fails(&shm, &["probability", "150"], 2);
    // Listing nothing is not an error.
    let ps: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    assert_eq!(ps["processes"], serde_json::json!([]));
    assert!(ok(&shm, &["clean"]).contains("nothing to clean"));
}

/// The strategy part of a `status --json` state (what a change can affect).
fn strategy(state: &Value) -> Value {
    let mut state = state.clone();
    let object = state.as_object_mut().unwrap();
    for identity in ["pid", "exe", "path", "alive", "in_container", "calls", "faults", "fault_percent", "position"] {
        object.remove(identity);
    }
    for hook in object["hooks"].as_array_mut().unwrap() {
        hook.as_object_mut().unwrap().retain(|key, _| key == "name" || key == "armed");
    }
    state
}

#[test]
fn each_seed_json_object_does_what_its_subcommand_does() {
    let shm = ShmDir::new();
    let by_command = start(&shm, "put");
    let by_json = start(&shm, "put");
    let pairs: &[(&[&str], &str)] = &[
        (&["toggle"], r#"{"command":"toggle"}"#),
        (
            &["strategy", "XOX", "--error-codes", "-4,-15"],
            r#"{"command":"set_strategy","pattern":"XOX","error_codes":[-4,-15]}"#,
        ),
        (&["strategy", "XOOOOXOO"], r#"{"command":"set_strategy","pattern":"XOOOOXOO"}"#),
        (&["error-codes", "-3,-6,-20,-25"], r#"{"command":"set_error_codes","error_codes":[-3,-6,-20,-25]}"#),
        (
            &["error-codes", "UCS_ERR_IO_ERROR,UCS_ERR_TIMED_OUT"],
            r#"{"command":"set_error_codes","error_codes":"UCS_ERR_IO_ERROR,UCS_ERR_TIMED_OUT"}"#,
        ),
        (&["strategy", "random"], r#"{"command":"set_strategy","pattern":"random"}"#),
        (&["probability", "12.5"], r#"{"command":"set_probability","probability":12.5}"#),
        (&["record", "on"], r#"{"command":"toggle_recording","enabled":true}"#),
        (&["record", "toggle"], r#"{"command":"toggle_recording"}"#),
        (&["disable"], r#"{"command":"disable"}"#),
        (&["enable"], r#"{"command":"enable"}"#),
        (&["site", "completion"], r#"{"command":"set_site","site":"completion"}"#),
        (&["site", "endpoint"], r#"{"command":"set_site","site":"endpoint"}"#),
        (&["reset"], r#"{"command":"reset"}"#),
    ];
    for (command, json) in pairs {
        let said = on(&shm, by_command.pid(), command);
        let sent = on(&shm, by_json.pid(), &["send", json]);
        let pid_free = |line: &str, pid: u32| line.replace(&format!("pid {pid} "), "pid P ");
        assert_eq!(pid_free(&said, by_command.pid()), pid_free(&sent, by_json.pid()), "{command:?} vs {json}");
        assert_eq!(
            strategy(&status(&shm, by_command.pid())),
            strategy(&status(&shm, by_json.pid())),
            "{command:?} vs {json}"
        );
    }
    let sent_status = on(&shm, by_json.pid(), &["send", r#"{"command":"status"}"#]);
    let said_status = on(&shm, by_json.pid(), &["status"]);
    assert_eq!(sent_status, said_status);
}

#[test]
fn set_does_in_one_change_what_the_single_setting_commands_do() {
    let shm = ShmDir::new();
    let one_by_one = start(&shm, "put");
    let at_once = start(&shm, "put");
    let commands: &[&[&str]] = &[
        &["enable"],
        &["strategy", "XOOX", "--error-codes", "-20,UCS_ERR_IO_ERROR"],
        &["hooks", "put,get"],
        &["probability", "7.5"],
        &["seed", "0x2a"],
        &["skip", "2"],
        &["limit", "5"],
        &["delay", "100", "--mode", "instead-of-fault"],
    ];
    for command in commands {
        on(&shm, one_by_one.pid(), command);
    }
    let set = [
        "set",
        "--enabled=on",
        "--pattern=XOOX",
        "--error-codes=-20,UCS_ERR_IO_ERROR",
        "--hooks=put,get",
        "--probability=7.5",
        "--seed=0x2a",
        "--skip=2",
        "--limit=5",
        "--delay=100",
        "--delay-mode=instead-of-fault",
    ];
    on(&shm, at_once.pid(), &set);
    assert_eq!(strategy(&status(&shm, one_by_one.pid())), strategy(&status(&shm, at_once.pid())));

    // --mode switches and keeps the stored pattern; --pattern '' clears it where the mode allows.
    let random = on(&shm, at_once.pid(), &["--json", "set", "--mode", "random"]);
    let random: Value = serde_json::from_str(&random).unwrap();
    assert_eq!(
        (&random["processes"][0]["mode"], &random["processes"][0]["pattern"]),
        (&"random".into(), &"XOOX".into())
    );
    on(&shm, at_once.pid(), &["set", "--pattern="]);
    assert_eq!(status(&shm, at_once.pid())["pattern"], "");
}

#[test]
fn the_fault_site_is_set_by_its_command_by_set_by_seed_json_and_at_start_up() {
    let shm = ShmDir::new();
    let program = start(&shm, "put");
    let pid = program.pid();
    assert_eq!(status(&shm, pid)["site"], "post", "the default");

    let line = on(&shm, pid, &["site", "completion"]);
    assert!(line.contains(", site completion, "), "{line}");
    assert_eq!(status(&shm, pid)["site"], "completion");
    let json: Value = serde_json::from_str(&on(&shm, pid, &["--json", "set", "--site", "endpoint"])).unwrap();
    assert_eq!(json["processes"][0]["site"], "endpoint");
    assert_eq!(status(&shm, pid)["site"], "endpoint");
    on(&shm, pid, &["send", r#"{"command":"set_site","site":"post"}"#]);
    assert_eq!(status(&shm, pid)["site"], "post");

    // The site changes nothing else: a pattern in force keeps its position.
    on(&shm, pid, &["strategy", "XOOO"]);
    let before = status(&shm, pid);
    on(&shm, pid, &["site", "completion"]);
    let mut after = status(&shm, pid);
    assert_eq!(after["site"], "completion");
    after["site"] = "post".into();
    assert_eq!(after, before, "only the site changed");
    on(&shm, pid, &["reset"]);
    assert_eq!(status(&shm, pid)["site"], "post", "reset goes back to the default");

    let started = start_with_env(&shm, "put", &[("FAULTLINE_SITE", "completion")]);
    assert_eq!(status(&shm, started.pid())["site"], "completion", "FAULTLINE_SITE at start-up");
}

#[test]
fn shim_path_prints_the_shim_that_came_with_the_binary() {
    let shm = ShmDir::new();
    for kind in ["ucx", "cuda"] {
        let printed = ok(&shm, &["shim-path", kind]);
        let path = std::path::Path::new(printed.trim_end());
        assert!(path.is_absolute() && path.is_file(), "{printed}");
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), format!("libfaultline_{kind}.so"));
        let json: Value = serde_json::from_str(&ok(&shm, &["--json", "shim-path", kind])).unwrap();
        assert_eq!(json, serde_json::json!({ "kind": kind, "path": printed.trim_end() }));
    }
    for args in [&["shim-path"][..], &["shim-path", "rdma"], &["node", "shim-path", "ucx"]] {
        fails(&shm, args, 2);
    }

    // The same binary with no shim beside it and no Python package around it: exit 1, saying where it looked.
    let alone = tempfile::tempdir_in(testkit::target_dir()).unwrap();
    let bin = alone.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let faultline = bin.join("faultline");
    if std::fs::hard_link(&testkit::artifacts().faultline, &faultline).is_err() {
        std::fs::copy(&testkit::artifacts().faultline, &faultline).unwrap();
    }
    let output = Command::new(&faultline).args(["shim-path", "ucx"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no libfaultline_ucx.so beside this faultline or in its Python package"), "{stderr}");
    assert!(stderr.contains(&bin.display().to_string()), "{stderr}");
}

#[test]
fn control_characters_in_executable_names_are_escaped_in_text_output() {
    let shm = ShmDir::new();
    // A program whose file name recolours the terminal, starts a forged row and clears the screen (C1 CSI).
    let evil = "evil\u{1b}[31m\n999 forged\u{9b}2J";
    let escaped = "evil\\x1b[31m\\x0a999 forged\\u{9b}2J";
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join(evil);
    std::fs::copy(common::selfloop_binary(), &binary).unwrap();
    let program = start_binary(&shm, &binary, "put");
    let pid = program.pid().to_string();
    // Any control character but the line breaks that end output lines.
    let raw = |text: &str| text.chars().any(|c| c.is_control() && c != '\n');

    let ps = ok(&shm, &["ps"]);
    assert!(!raw(&ps), "no raw control character: {ps:?}");
    assert_eq!(ps.lines().count(), 2, "the header and one row, no forged row: {ps}");
    assert!(ps.lines().nth(1).unwrap().contains(escaped), "{ps}");
    let text = ok(&shm, &["--pid", &pid, "status"]);
    assert!(!raw(&text), "{text:?}");
    assert!(text.starts_with(&format!("pid {pid} ({escaped}, ucx)")), "{text}");
    let changed = ok(&shm, &["--pid", &pid, "enable"]);
    assert!(!raw(&changed) && changed.contains(escaped), "{changed:?}");

    // JSON keeps the name as it is (serde escapes what JSON requires).
    let json: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    assert_eq!(json["processes"][0]["exe"], evil);
    assert_eq!(status(&shm, program.pid())["exe"], evil);
}

#[test]
fn fault_percent_is_faults_over_armed_calls_in_ps_and_status() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put,get");
    let pid = program.pid();
    // Only put can fail, every other armed call; get (and the request polling) are called as often, unarmed.
    for change in [&["hooks", "put"][..], &["strategy", "XO"], &["enable"]] {
        on(&shm, pid, change);
    }
    run(&mut program, 20);
    let state = status(&shm, pid);
    assert_eq!(
        (hook(&state, "ucp_put_nbx")["calls"].as_u64(), hook(&state, "ucp_put_nbx")["faults"].as_u64()),
        (Some(20), Some(10))
    );
    assert_eq!(hook(&state, "ucp_get_nbx")["calls"], 20, "an unarmed hook with as many calls");
    assert_eq!(state["armed_calls"], 20);
    assert_eq!(state["fault_percent"], 50.0, "10 faults of 20 armed calls, not of {} calls", state["calls"]);

    let ps: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    assert_eq!(ps["processes"][0]["fault_percent"], 50.0);
    let table = ok(&shm, &["ps"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let column = header.iter().position(|h| *h == "FAULT%").unwrap();
    assert_eq!(row[column], "50.0", "{table}");
    let text = on(&shm, pid, &["status"]);
    assert!(text.lines().next().unwrap().ends_with(" faults 10 (50.0% of armed calls)"), "{text}");
}

#[test]
fn ps_lists_live_processes_before_dead_ones() {
    let shm = ShmDir::new();
    let program = start(&shm, "put");
    let live = program.pid();
    // Segments of exited processes with lower pids: copies of the live one's under pids whose processes started at
    // another time (or do not exist), which is what a dead process's segment looks like.
    let dead: Vec<u32> = (2..=25).collect();
    for &pid in &dead {
        let copy = shm.segment("ucx", pid);
        std::fs::copy(shm.segment("ucx", live), &copy).unwrap();
        // The header names the pid its file name claims (a file whose header disagrees is debris, and cleaned).
        let file = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &pid.to_le_bytes(), 24).unwrap();
    }

    let table = ok(&shm, &["ps"]);
    let states: Vec<(u32, &str)> = table
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[0].parse().unwrap(), cells[3])
        })
        .collect();
    assert_eq!(states[0], (live, "alive"), "{table}");
    assert_eq!(states[1..].iter().map(|&(pid, _)| pid).collect::<Vec<_>>(), dead, "then the dead, by pid: {table}");
    assert!(states[1..].iter().all(|&(_, state)| state == "dead"), "{table}");

    let json: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    let pids: Vec<u64> = json["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids[0], u64::from(live));
    assert_eq!(pids[1..], dead.iter().map(|&pid| u64::from(pid)).collect::<Vec<_>>()[..]);
}
