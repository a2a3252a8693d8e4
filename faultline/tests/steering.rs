//! Each control command changes what a real UCX program observes on its next calls: the self-loop program runs
//! under the real shim, paused between phases, and is steered through the `faultline` binary.

mod common;

use common::{hook, on, run, run_statuses, start, status, DEFAULT_POOL};
use testkit::ShmDir;

#[test]
fn probability_enable_disable_and_toggle_decide_whether_the_next_calls_fail() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();

    on(&shm, pid, &["hooks", "put"]);
    on(&shm, pid, &["probability", "100"]);
    assert_eq!(run_statuses(&mut program, 5), vec![0; 5], "disabled by default: nothing fails");

    let line = on(&shm, pid, &["enable"]);
    assert!(line.contains("enabled, random 100%"), "{line}");
    let failed = run_statuses(&mut program, 6);
    assert!(failed.iter().all(|code| DEFAULT_POOL.contains(code)), "probability 100: every put fails: {failed:?}");

    on(&shm, pid, &["probability", "0"]);
    assert_eq!(run_statuses(&mut program, 5), vec![0; 5], "probability 0: no put fails");

    on(&shm, pid, &["probability", "100"]);
    on(&shm, pid, &["disable"]);
    assert_eq!(run_statuses(&mut program, 5), vec![0; 5], "disabled");

    let line = on(&shm, pid, &["toggle"]);
    assert!(line.contains(": enabled,"), "{line}");
    assert!(run_statuses(&mut program, 5).iter().all(|code| *code != 0), "toggled on");

    let line = on(&shm, pid, &["toggle"]);
    assert!(line.contains(": disabled,"), "{line}");
    assert_eq!(run_statuses(&mut program, 5), vec![0; 5], "toggled off");

    let state = status(&shm, pid);
    assert_eq!(state["probability_percent"], 100.0);
    assert_eq!(state["enabled"], false);
}

#[test]
fn a_pattern_fails_exactly_its_x_calls_with_the_pool_codes_in_order() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();

    on(&shm, pid, &["hooks", "put"]);
    on(&shm, pid, &["enable"]);
    let line = on(&shm, pid, &["strategy", "XOOOOXOO"]);
    assert!(line.contains("pattern XOOOOXOO (pos 0)"), "{line}");

    let calls = run(&mut program, 17);
    let failed: Vec<(String, i32)> =
        calls.iter().filter(|call| call.status != 0).map(|call| (call.n.clone(), call.status)).collect();
    let expected: Vec<(String, i32)> =
        [(1, -3), (6, -6), (9, -20), (14, -3), (17, -6)].iter().map(|&(n, code)| (n.to_string(), code)).collect();
    assert_eq!(failed, expected);

    // Codes by name; re-setting the same pattern starts it over at the next call.
    let line = on(&shm, pid, &["error-codes", "UCS_ERR_NO_MEMORY,UCS_ERR_BUSY"]);
    assert!(line.contains("pool UCS_ERR_NO_MEMORY(-4),UCS_ERR_BUSY(-15)"), "{line}");
    on(&shm, pid, &["strategy", "XOOOOXOO"]);
    let statuses = run_statuses(&mut program, 9);
    assert_eq!(statuses, vec![-4, 0, 0, 0, 0, -15, 0, 0, -4]);

    // A pattern and its pool in one command, the seed's spelling with negative numbers.
    on(&shm, pid, &["strategy", "OX", "--error-codes", "-25,-23"]);
    assert_eq!(run_statuses(&mut program, 6), vec![0, -25, 0, -23, 0, -25]);

    let state = status(&shm, pid);
    assert_eq!(state["mode"], "pattern");
    assert_eq!(state["pattern"], "OX");
    assert_eq!(state["position"], 6);
}

#[test]
fn hooks_choose_which_functions_can_fail() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put,get");
    let pid = program.pid();
    on(&shm, pid, &["enable"]);
    on(&shm, pid, &["probability", "100"]);

    let by_function = |calls: &[testkit::Call], function: &str| -> Vec<i32> {
        calls.iter().filter(|call| call.function == function).map(|call| call.status).collect()
    };

    let line = on(&shm, pid, &["hooks", "get"]);
    assert!(line.contains("hooks 1/18 armed"), "{line}");
    let calls = run(&mut program, 4);
    assert_eq!(by_function(&calls, "ucp_put_nbx"), vec![0; 4]);
    assert!(by_function(&calls, "ucp_get_nbx").iter().all(|&code| code != 0), "{calls:?}");

    on(&shm, pid, &["hooks", "ucp_put_nbx"]);
    let calls = run(&mut program, 4);
    assert!(by_function(&calls, "ucp_put_nbx").iter().all(|&code| code != 0), "{calls:?}");
    assert_eq!(by_function(&calls, "ucp_get_nbx"), vec![0; 4]);

    on(&shm, pid, &["hooks", "none"]);
    assert_eq!(run_statuses(&mut program, 3), vec![0; 6]);

    let line = on(&shm, pid, &["hooks", "all"]);
    assert!(line.contains("hooks 18/18 armed"), "{line}");
    assert!(run_statuses(&mut program, 3).iter().all(|&code| code != 0));

    let get = hook(&status(&shm, pid), "ucp_get_nbx");
    assert_eq!(get["armed"], true);
    assert_eq!(get["calls"], 14, "every get while enabled is counted, armed or not");
}

#[test]
fn skip_and_limit_bound_the_faults_and_delay_can_replace_them() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();
    on(&shm, pid, &["hooks", "put"]);
    on(&shm, pid, &["enable"]);
    on(&shm, pid, &["strategy", "X", "--error-codes", "-3"]);
    on(&shm, pid, &["skip", "2"]);
    let line = on(&shm, pid, &["limit", "3"]);
    assert!(line.contains("skip 2, limit 3"), "{line}");
    assert_eq!(run_statuses(&mut program, 8), vec![0, 0, -3, -3, -3, 0, 0, 0]);

    // Setting limit again starts the sequence over: skip 2 more, then 3 more faults.
    on(&shm, pid, &["limit", "3"]);
    assert_eq!(run_statuses(&mut program, 6), vec![0, 0, -3, -3, -3, 0]);

    on(&shm, pid, &["skip", "0"]);
    on(&shm, pid, &["limit", "0"]);
    assert_eq!(run_statuses(&mut program, 3), vec![-3; 3]);

    // A delay "instead of fault" turns each fault into a slow call that succeeds.
    let line = on(&shm, pid, &["delay", "1", "--mode", "instead-of-fault"]);
    assert!(line.contains("delay 1µs instead-of-fault"), "{line}");
    assert_eq!(run_statuses(&mut program, 3), vec![0; 3]);
    let line = on(&shm, pid, &["delay", "0"]);
    assert!(line.contains("delay off"), "{line}");
    assert_eq!(run_statuses(&mut program, 3), vec![-3; 3]);
}

#[test]
fn reset_goes_back_to_the_defaults_and_status_shows_exactly_that() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid();
    let pristine = status(&shm, pid);

    for change in [
        vec!["enable"],
        vec!["strategy", "XO", "--error-codes", "UCS_ERR_TIMED_OUT"],
        vec!["probability", "12.5"],
        vec!["hooks", "put"],
        vec!["seed", "0x1234"],
        vec!["skip", "1"],
        vec!["limit", "7"],
        vec!["delay", "5"],
        vec!["record", "on"],
    ] {
        on(&shm, pid, &change);
    }
    run(&mut program, 4);
    let changed = status(&shm, pid);
    assert_eq!(changed["probability_ppm"], 125_000);
    assert_eq!(changed["seed"], 0x1234);
    assert_eq!(changed["delay_mode"], "before-fault");
    assert_eq!(hook(&changed, "ucp_put_nbx")["calls"], 4);

    let line = on(&shm, pid, &["reset"]);
    assert!(line.contains(": disabled, random 0%, pool UCS_ERR_IO_ERROR(-3),UCS_ERR_UNREACHABLE(-6),UCS_ERR_TIMED_OUT(-20), hooks 17/18 armed, skip 0, limit 0, delay off"), "{line}");
    let reset = status(&shm, pid);
    for field in [
        "enabled",
        "recording",
        "mode",
        "probability_ppm",
        "seed",
        "error_codes",
        "hooks_armed",
        "skip",
        "limit",
        "delay_us",
        "delay_mode",
        "replay_length",
    ] {
        assert_eq!(reset[field], pristine[field], "{field} is back to its default");
    }
    assert_eq!(hook(&reset, "ucp_put_nbx")["calls"], 4, "reset keeps the counters");
    assert_eq!(run_statuses(&mut program, 3), vec![0; 3]);
}
