//! The UCX shim started the seed injector's way: its `UCX_FAULT_*` variables honoured (its defaults included), a
//! `FAULTLINE_*` setting winning over its seed spelling, invalid values arming nothing, and the periodic stats line
//! (`FAULTLINE_STATS_INTERVAL` or the seed's `UCX_FAULT_STATS_LOG_INTERVAL`), off unless asked. Real UCX programs.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use shm_proto::ring::{Record, RingCursor};
use shm_proto::{Access, SegmentMap};
use testkit::{calls, Call, Program, ShmDir};

fn selfloop() -> PathBuf {
    testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"])
}

/// The self-loop program under the shim, with `env` on a slate clean of both tools' variables.
fn shimmed(shm: &ShmDir, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, &selfloop(), args, &[]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("UCX_FAULT_")) {
        command.env_remove(name);
    }
    command.env("UCX_WARN_UNUSED_ENV_VARS", "n").envs(env.iter().copied());
    command
}

struct Run {
    pid: u32,
    output: Output,
    calls: Vec<Call>,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn statuses(&self) -> Vec<i32> {
        self.calls.iter().map(|c| c.status).collect()
    }

    fn stats_lines(&self) -> Vec<String> {
        self.stderr().lines().filter(|line| line.contains("[STATS]")).map(String::from).collect()
    }
}

fn run(shm: &ShmDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let child = shimmed(shm, args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program runs");
    let pid = child.id();
    let output = child.wait_with_output().expect("the program runs");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    Run { pid, calls: calls(&lines), output }
}

fn assert_ran(run: &Run) {
    assert!(run.output.status.success(), "exit {:?}\n{}", run.output.status, run.stderr());
}

/// The segment a finished run left in `shm`, read post-mortem.
fn only_segment(shm: &ShmDir) -> SegmentMap {
    let found: Vec<PathBuf> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    SegmentMap::attach(&found[0], Access::ReadOnly, Default::default()).expect("segment readable")
}

fn recorded(map: &SegmentMap) -> Vec<Record> {
    let ring = &map.segment().ring;
    let mut records = Vec::new();
    let mut cursor = RingCursor::oldest(ring);
    cursor.drain(ring, true, |record| records.push(record));
    assert_eq!(cursor.missed, 0);
    records
}

const SEED_HOOKS: [&str; 4] = ["ucp_get_nbx", "ucp_put_nbx", "ucp_ep_flush_nbx", "ucp_request_check_status"];

#[test]
fn the_seed_pattern_start_up_faults_calls_1_6_9_14_of_the_seed_hooks_from_the_first_call() {
    let shm = ShmDir::new();
    // Recording is faultline's own addition here: it shows every armed call in order; the strategy is the seed's.
    let env = [
        ("UCX_FAULT_ENABLED", "1"),
        ("UCX_FAULT_STRATEGY", "pattern"),
        ("UCX_FAULT_PATTERN", "XOOOOXOO"),
        ("FAULTLINE_RECORD", "1"),
    ];
    let run = run(&shm, &["--ops", "put,get,tag,flush", "--iterations", "40"], &env);
    // The program's setup (ucp_ep_create, ucp_mem_map, ucp_rkey_pack, …) is not among the seed's hooks: it passes.
    assert_ran(&run);
    assert_eq!(run.calls[0].function, "ucp_put_nbx");
    assert_eq!(run.calls[0].status, -3, "the very first armed call, the first loop call, fails");

    let map = only_segment(&shm);
    let names = map.segment().header.hook_names();
    let records = recorded(&map);
    let hooks: std::collections::BTreeSet<&str> = records.iter().map(|r| names[r.hook as usize].as_str()).collect();
    assert!(hooks.iter().all(|hook| SEED_HOOKS.contains(hook)), "only the seed's hooks are armed: {hooks:?}");
    assert!(hooks.contains("ucp_put_nbx") && hooks.contains("ucp_get_nbx") && hooks.contains("ucp_ep_flush_nbx"));
    let armed_calls: u64 =
        SEED_HOOKS.iter().map(|hook| map.segment().hook_totals(names.iter().position(|n| n == hook).unwrap()).0).sum();
    assert_eq!(records.len() as u64, armed_calls, "every call of a seed hook is an armed, recorded call");
    assert!(records.len() > 160, "{} armed calls", records.len());

    let faulted: Vec<(usize, i32)> =
        records.iter().enumerate().filter(|(_, r)| r.injected).map(|(i, r)| (i + 1, r.code)).collect();
    let expected: Vec<(usize, i32)> =
        (1..=records.len()).filter(|n| matches!((n - 1) % 8, 0 | 5)).zip([-3, -6, -20].into_iter().cycle()).collect();
    assert_eq!(&faulted[..4], &[(1, -3), (6, -6), (9, -20), (14, -3)]);
    assert_eq!(faulted, expected, "XOOOOXOO over the seed's hooks, codes cycling through the seed's pool");

    // The shim's own count: the program's view of a tag send also fails when a (seed-armed) check_status poll of
    // its request is faulted, which happens whenever UCX does not complete the send inline.
    let tag_send = names.iter().position(|n| n == "ucp_tag_send_nbx").unwrap();
    let (tag_calls, tag_faults) = map.segment().hook_totals(tag_send);
    assert_eq!(tag_faults, 0, "ucp_tag_send_nbx is not a seed hook: never faulted ({tag_calls} calls)");
}

#[test]
fn the_seed_probability_and_codes_are_read_in_its_units() {
    let shm = ShmDir::new();
    let env = [
        ("UCX_FAULT_ENABLED", "true"),
        ("UCX_FAULT_STRATEGY", "random"),
        ("UCX_FAULT_PROBABILITY", "100.0"),
        ("UCX_FAULT_ERROR_CODES", "-6"),
        ("UCX_FAULT_HOOKS", "ucp_put_nbx"),
    ];
    let run = run(&shm, &["--ops", "put,get", "--iterations", "10"], &env);
    assert_ran(&run);
    let statuses: Vec<(String, i32)> = run.calls.iter().map(|c| (c.function.clone(), c.status)).collect();
    for (function, status) in statuses {
        let expected = if function == "ucp_put_nbx" { -6 } else { 0 };
        assert_eq!(status, expected, "{function}");
    }
}

#[test]
fn a_faultline_setting_wins_over_its_seed_spelling() {
    let shm = ShmDir::new();
    let env = [
        ("UCX_FAULT_ENABLED", "1"),
        ("UCX_FAULT_STRATEGY", "pattern"),
        ("UCX_FAULT_PATTERN", "XOOOOXOO"),
        ("UCX_FAULT_HOOKS", "all"),
        ("FAULTLINE_STRATEGY", "OX"),
        ("FAULTLINE_HOOKS", "put"),
    ];
    let run = run(&shm, &["--ops", "put,get", "--iterations", "6"], &env);
    assert_ran(&run);
    assert!(!run.stderr().contains("faultline"), "no warning: {}", run.stderr());
    assert_eq!(run.statuses(), vec![0, 0, -3, 0, 0, 0, -6, 0, 0, 0, -20, 0], "put: OX; get: unarmed");
}

#[test]
fn an_invalid_seed_value_arms_nothing_and_is_reported_once() {
    for (bad, reported) in [
        (("UCX_FAULT_HOOKS", "put,bogus"), "UCX_FAULT_HOOKS=put,bogus: unknown hook 'bogus'"),
        (("UCX_FAULT_STRATEGY", "pattern"), "UCX_FAULT_STRATEGY=pattern: UCX_FAULT_PATTERN is not set"),
    ] {
        let shm = ShmDir::new();
        let env = [("UCX_FAULT_ENABLED", "1"), ("UCX_FAULT_PROBABILITY", "100"), bad];
        let run = run(&shm, &["--ops", "put,get,flush", "--iterations", "5"], &env);
        assert_ran(&run);
        let stderr = run.stderr();
        assert_eq!(stderr.matches(reported).count(), 1, "{stderr}");
        assert_eq!(stderr.matches("no hook is armed").count(), 1, "{stderr}");
        assert!(run.statuses().iter().all(|&s| s == 0), "{bad:?}: nothing fails");
    }
}

#[test]
fn the_stats_line_is_off_by_default_and_written_when_asked() {
    let args = ["--ops", "put", "--iterations", "50"];
    let faulting = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "50"), ("FAULTLINE_HOOKS", "put")];
    let shm = ShmDir::new();
    let quiet = run(&shm, &args, &faulting);
    assert_ran(&quiet);
    assert_eq!(quiet.stats_lines(), Vec::<String>::new());

    // The same run asking for a line every second: the first one is due at the first call.
    let shm = ShmDir::new();
    let mut env = faulting.to_vec();
    env.push(("FAULTLINE_STATS_INTERVAL", "1"));
    let asked = run(&shm, &args, &env);
    assert_ran(&asked);
    let lines = asked.stats_lines();
    assert!(!lines.is_empty(), "{}", asked.stderr());
    let line = &lines[0];
    assert!(line.starts_with(&format!("faultline[{}]: [STATS] ", asked.pid)), "{line}");
    // The first call is the program's setup ucp_ep_create: `[STATS] 1 calls, 0 faults (0.00%); ep_create 0/1`.
    assert!(line.contains(" calls, ") && line.contains(" faults (") && line.contains("%); ep_create 0/1"), "{line}");
}

#[test]
fn the_stats_line_repeats_at_the_interval_and_the_seeds_counts_calls() {
    for (asked, calls_apart) in [(("FAULTLINE_STATS_INTERVAL", "1"), 0), (("UCX_FAULT_STATS_LOG_INTERVAL", "500"), 500)]
    {
        let shm = ShmDir::new();
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "10"), ("FAULTLINE_HOOKS", "put"), asked];
        let mut program = Program::spawn_capturing_stderr(shimmed(
            &shm,
            &["--ops", "put", "--forever", "--interval-us", "200", "--quiet"],
            &env,
        ));
        let mut counts = Vec::new();
        while counts.len() < 3 {
            let line = program.error_lines_until(|line| line.contains("[STATS]")).pop().unwrap();
            if line.contains("; put ") || line.contains(", put ") {
                counts.push(stats_calls(&line));
            }
        }
        assert!(counts.windows(2).all(|w| w[1] >= w[0] + calls_apart), "{asked:?}: {counts:?}");
        program.kill(libc::SIGTERM);
    }
}

#[test]
fn the_stats_line_is_rate_limited_to_one_a_second() {
    // The seed's interval of 1 call would be a line per call; faultline writes at most one a second.
    let shm = ShmDir::new();
    let env = [
        ("UCX_FAULT_ENABLED", "1"),
        ("UCX_FAULT_PROBABILITY", "10"),
        ("UCX_FAULT_HOOKS", "put"),
        ("UCX_FAULT_STATS_LOG_INTERVAL", "1"),
    ];
    let started = Instant::now();
    let run = run(&shm, &["--ops", "put", "--iterations", "20000", "--quiet"], &env);
    let elapsed_s = started.elapsed().as_secs();
    assert_ran(&run);
    let lines = run.stats_lines().len() as u64;
    assert!(lines >= 1 && lines <= elapsed_s + 1, "{lines} stats lines in {elapsed_s} s (20000 calls)");
}

/// `N` of `[STATS] N calls, …`.
fn stats_calls(line: &str) -> u64 {
    let after = line.split("[STATS] ").nth(1).unwrap_or_else(|| panic!("not a stats line: {line}"));
    after.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no call count: {line}"))
}
