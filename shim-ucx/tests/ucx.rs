//! The UCX shim against Debian's real UCX: a C program that talks to itself through UCP (`tests/c/`), run with
//! the shim preloaded; what it prints is compared with what the shim was told to do and with the segment's
//! counters and recording.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shm_proto::ring::RingCursor;
use shm_proto::{Access, SegmentMap};
use testkit::{calls, summaries, Call, Program, ShmDir};

const SELFLOOP: &str = "shim-ucx/tests/c/ucx_selfloop.c";
const UCX_LIBS: &[&str] = &["-lucp", "-lucs"];

fn selfloop() -> PathBuf {
    testkit::c_program(SELFLOOP, UCX_LIBS)
}

/// `program args` with the shim preloaded, its segment in `shm`, and `env` on top of a clean FAULTLINE_* slate.
fn shimmed(shm: &ShmDir, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, program, args, env);
    command.env("UCX_WARN_UNUSED_ENV_VARS", "n");
    command
}

struct Run {
    output: Output,
    calls: Vec<Call>,
    summary: BTreeMap<String, (u64, u64)>,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn failing_calls(&self) -> Vec<(usize, i32)> {
        self.calls.iter().enumerate().filter(|(_, c)| c.status != 0).map(|(i, c)| (i + 1, c.status)).collect()
    }
}

fn run_selfloop(shm: &ShmDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = shimmed(shm, &selfloop(), args, env).output().expect("the program runs");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    Run { calls: calls(&lines), summary: summaries(&lines), output }
}

fn assert_clean_exit(run: &Run) {
    assert!(run.output.status.success(), "exit {:?}\n{}", run.output.status, run.stderr());
    assert!(!run.stderr().contains("DATA_MISMATCH"), "{}", run.stderr());
}

/// The one segment a finished run left in `shm` (post-mortem), with its pid.
fn only_segment(shm: &ShmDir) -> (SegmentMap, u32) {
    let mut found: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let path = found.remove(0);
    let (_, pid) = shm_proto::segment::parse_file_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
    (SegmentMap::attach(&path, Access::ReadOnly, Default::default()).expect("segment readable"), pid)
}

fn hook_index(map: &SegmentMap, name: &str) -> usize {
    map.segment().header.hook_names().iter().position(|h| h == name).unwrap_or_else(|| panic!("no hook {name}"))
}

#[test]
fn disabled_every_call_succeeds_and_data_is_intact() {
    let shm = ShmDir::new();
    let run = run_selfloop(
        &shm,
        &["--ops", "put,get,tag,am,atomic,stream,flush,ep_create,mem_map,rkey", "--iterations", "5"],
        &[],
    );
    assert_clean_exit(&run);
    assert!(run.calls.len() > 50, "{} calls", run.calls.len());
    assert!(run.calls.iter().all(|c| c.status == 0), "{:?}", run.failing_calls());
    let left: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "never enabled: the process removed its segment at exit: {left:?}");
}

#[test]
fn pattern_faults_exactly_the_patterned_calls_with_codes_cycling_through_the_pool() {
    let shm = ShmDir::new();
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_STRATEGY", "XOOOOXOO"), ("FAULTLINE_HOOKS", "ucp_put_nbx")];
    let run = run_selfloop(&shm, &["--ops", "put", "--iterations", "80"], &env);
    assert_clean_exit(&run);
    assert_eq!(run.calls.len(), 80);
    let expected: Vec<(usize, i32)> =
        (1..=80).filter(|n| matches!((n - 1) % 8, 0 | 5)).zip([-3, -6, -20].into_iter().cycle()).collect();
    assert_eq!(&expected[..4], &[(1, -3), (6, -6), (9, -20), (14, -3)]);
    assert_eq!(run.failing_calls(), expected);
}

#[test]
fn random_faults_are_within_statistical_bounds_and_reproducible_from_the_seed() {
    let shm = ShmDir::new();
    let env = |seed| {
        [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_PROBABILITY", "30"),
            ("FAULTLINE_HOOKS", "put"),
            ("FAULTLINE_SEED", seed),
        ]
    };
    let args = ["--ops", "put", "--iterations", "20000", "--size", "8"];
    let first = run_selfloop(&shm, &args, &env("7"));
    assert_clean_exit(&first);
    assert_eq!(first.calls.len(), 20_000);
    let failures = first.failing_calls();
    // Binomial(20000, 0.3): mean 6000, sd ≈ 64.8; six sd either side.
    assert!((5611..=6389).contains(&failures.len()), "{} failures", failures.len());
    let pool_counts = [-3, -6, -20].map(|code| failures.iter().filter(|(_, c)| *c == code).count());
    assert!(pool_counts.iter().all(|&n| (1700..=2300).contains(&n)), "codes drawn uniformly: {pool_counts:?}");

    let shm2 = ShmDir::new();
    let again = run_selfloop(&shm2, &args, &env("7"));
    assert_eq!(again.failing_calls(), failures, "same seed, same faults");
    let shm3 = ShmDir::new();
    let other = run_selfloop(&shm3, &args, &env("8"));
    assert_ne!(other.failing_calls(), failures, "another seed, other faults");
}

#[test]
fn skip_and_limit_are_exact() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_PROBABILITY", "100"),
        ("FAULTLINE_HOOKS", "put"),
        ("FAULTLINE_SKIP", "5"),
        ("FAULTLINE_LIMIT", "3"),
        ("FAULTLINE_ERROR_CODES", "UCS_ERR_TIMED_OUT"),
    ];
    let run = run_selfloop(&shm, &["--ops", "put", "--iterations", "20"], &env);
    assert_clean_exit(&run);
    assert_eq!(run.failing_calls(), vec![(6, -20), (7, -20), (8, -20)]);
}

#[test]
fn setup_call_faults_return_the_code_to_the_program() {
    // Setup makes one ucp_ep_create and one ucp_mem_map before the loop: skip those two armed calls.
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "X"),
        ("FAULTLINE_HOOKS", "ucp_ep_create,ucp_mem_map"),
        ("FAULTLINE_SKIP", "2"),
    ];
    let run = run_selfloop(&shm, &["--ops", "ep_create,mem_map", "--iterations", "3"], &env);
    assert_clean_exit(&run);
    let seen: Vec<(&str, i32)> = run.calls.iter().map(|c| (c.function.as_str(), c.status)).collect();
    assert_eq!(
        seen,
        vec![
            ("ucp_ep_create", -3),
            ("ucp_mem_map", -6),
            ("ucp_ep_create", -20),
            ("ucp_mem_map", -3),
            ("ucp_ep_create", -6),
            ("ucp_mem_map", -20)
        ],
        "a failed ucp_ep_create is not followed by ucp_ep_close_nbx"
    );

    // Without the skip, the program's own setup sees the injected status and stops cleanly.
    let shm = ShmDir::new();
    let run = run_selfloop(&shm, &["--ops", "put", "--iterations", "1"], &env[..3]);
    assert_eq!(run.output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&run.output.stdout).contains("SETUP ucp_ep_create -3"));
}

#[test]
fn counters_and_recording_equal_what_the_program_saw() {
    let shm = ShmDir::new();
    let hooks = "ucp_put_nbx,ucp_get_nbx,ucp_am_send_nbx,ucp_ep_flush_nbx,ucp_worker_flush_nbx";
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_PROBABILITY", "25"),
        ("FAULTLINE_HOOKS", hooks),
        ("FAULTLINE_RECORD", "1"),
        ("FAULTLINE_SEED", "11"),
    ];
    let run = run_selfloop(&shm, &["--ops", "put,get,am,flush", "--iterations", "300"], &env);
    assert!(run.output.status.success(), "{}", run.stderr());
    let (map, pid) = only_segment(&shm);
    let seg = map.segment();
    assert!(!shm_proto::segment::is_alive(&map, pid), "read post-mortem");

    for hook in hooks.split(',') {
        let (calls, failures) = run.summary[hook];
        assert_eq!(seg.hook_totals(hook_index(&map, hook)), (calls, failures), "{hook}");
        assert!(failures > 0 && failures < calls, "{hook}: {failures} of {calls}");
    }
    assert!(run.calls.iter().all(|c| [0, -3, -6, -20].contains(&c.status)), "every failure was an injected one");

    let mut recorded = Vec::new();
    let mut cursor = RingCursor::oldest(&seg.ring);
    cursor.drain(&seg.ring, true, |record| recorded.push(record));
    assert_eq!(cursor.missed, 0);
    let names = seg.header.hook_names();
    let from_ring: Vec<(String, i32)> = recorded.iter().map(|r| (names[r.hook as usize].clone(), r.code)).collect();
    let from_program: Vec<(String, i32)> = run.calls.iter().map(|c| (c.function.clone(), c.status)).collect();
    assert_eq!(from_ring, from_program, "the ring holds the exact sequence the program saw");
    assert!(recorded.windows(2).all(|w| w[0].sequence + 1 == w[1].sequence && w[0].time_ns <= w[1].time_ns));
    assert!(recorded.iter().all(|r| r.injected == (r.code != 0)));
    assert!(recorded.iter().filter(|r| names[r.hook as usize] == "ucp_put_nbx").all(|r| r.size == 64));
}

#[test]
fn four_threads_lose_no_counts_with_recording_on() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_PROBABILITY", "20"),
        ("FAULTLINE_HOOKS", "put,get"),
        ("FAULTLINE_RECORD", "1"),
    ];
    let run = run_selfloop(&shm, &["--ops", "put,get", "--iterations", "500", "--threads", "4", "--quiet"], &env);
    assert!(run.output.status.success(), "{}", run.stderr());
    let (map, _) = only_segment(&shm);
    for hook in ["ucp_put_nbx", "ucp_get_nbx"] {
        assert_eq!(run.summary[hook].0, 2000, "{hook}");
        assert_eq!(map.segment().hook_totals(hook_index(&map, hook)), run.summary[hook], "{hook}");
    }
    let seg = map.segment();
    let mut cursor = RingCursor::oldest(&seg.ring);
    let mut threads = std::collections::BTreeSet::new();
    cursor.drain(&seg.ring, true, |record| {
        threads.insert(record.thread);
    });
    assert_eq!(seg.ring.written(), 4000, "every armed call was recorded once");
    assert_eq!(threads.len(), 4, "records carry each caller's thread id");
}

#[test]
fn wheel_style_rtld_local_libucp_is_found_through_the_loaded_objects() {
    // The self-loop program as a library that the loader opens RTLD_LOCAL: its libucp is invisible to
    // dlsym(RTLD_NEXT), as with NIXL's and ucxx's bundled copies.
    let library = testkit::c_program(SELFLOOP, &["-shared", "-fPIC", "-Dmain=selfloop_main", "-lucp", "-lucs"]);
    let loader = testkit::c_program("shim-ucx/tests/c/dlopen_local.c", &["-ldl"]);
    let shm = ShmDir::new();
    let lib = library.to_str().unwrap();
    let clean = shimmed(&shm, &loader, &[lib, "--ops", "put,get,flush", "--iterations", "5"], &[]).output().unwrap();
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_STRATEGY", "XO"), ("FAULTLINE_HOOKS", "put")];
    let faulted = shimmed(&shm, &loader, &[lib, "--ops", "put", "--iterations", "4"], &env).output().unwrap();
    assert!(faulted.status.success(), "{}", String::from_utf8_lossy(&faulted.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&faulted.stdout).lines().map(String::from).collect();
    let statuses: Vec<i32> = calls(&lines).iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![-3, 0, -6, 0]);
}

#[test]
fn a_forked_child_gets_its_own_segment_with_the_parents_strategy() {
    let shm = ShmDir::new();
    let program = testkit::c_program("shim-ucx/tests/c/fork_child.c", &[]);
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "12.5")];
    let mut forked = Program::spawn(shimmed(&shm, &program, &[], &env));
    let line = forked.lines_until(|l| l.starts_with("PIDS ")).pop().unwrap();
    let pids: Vec<u32> = line.split_whitespace().skip(1).map(|p| p.parse().unwrap()).collect();
    for &pid in &pids {
        testkit::wait_until("both segments exist", || shm.segment("ucx", pid).exists());
        let map = SegmentMap::attach(&shm.segment("ucx", pid), Access::ReadOnly, Default::default()).unwrap();
        assert_eq!(map.segment().header.pid.load(std::sync::atomic::Ordering::Relaxed), pid);
        let strategy = map.segment().control.snapshot().unwrap();
        assert!(strategy.enabled);
        assert_eq!(strategy.probability_ppm, 125_000);
    }
    assert!(forked.finish().success());
}

#[test]
fn without_shared_memory_the_shim_warns_once_and_still_injects() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_SHM_DIR", "/nonexistent/faultline"),
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "XO"),
        ("FAULTLINE_HOOKS", "put"),
    ];
    let run = run_selfloop(&shm, &["--ops", "put", "--iterations", "4"], &env);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert_eq!(run.stderr().matches("using private memory").count(), 1, "{}", run.stderr());
    assert_eq!(run.calls.iter().map(|c| c.status).collect::<Vec<_>>(), vec![-3, 0, -6, 0]);
}

#[test]
fn an_invalid_environment_value_is_reported_once_and_ignored() {
    let shm = ShmDir::new();
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "150"), ("FAULTLINE_HOOKS", "put")];
    let run = run_selfloop(&shm, &["--ops", "put", "--iterations", "10"], &env);
    assert_clean_exit(&run);
    let stderr = run.stderr();
    assert_eq!(stderr.matches("FAULTLINE_PROBABILITY=150").count(), 1, "{stderr}");
    assert!(stderr.contains("not a percentage between 0 and 100"), "{stderr}");
    assert!(run.calls.iter().all(|c| c.status == 0), "the bad value was ignored: probability stays 0");
}

/// Whether some socket listens on TCP `port` (from /proc/net/tcp{,6}, without connecting to it).
fn listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).unwrap_or_default().lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && fields[3] == "0A"
                && fields[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
        })
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// ucx_perftest server and client on loopback, both under the shim. Returns the client's process and its report
/// file; the server is returned too so the caller decides how the pair ends.
fn perftest(
    shm: &ShmDir,
    test: &str,
    client_env: &[(&str, &str)],
) -> (std::process::Child, std::process::Child, PathBuf) {
    let port = free_port().to_string();
    let args = ["-t", test, "-n", "2000", "-p", &port];
    let report = |name: &str| std::fs::File::create(shm.path().join(name)).unwrap();
    let server = shimmed(shm, Path::new("ucx_perftest"), &args, &[("UCX_TLS", "tcp")])
        .stdout(report("server.txt"))
        .stderr(report("server.err"))
        .spawn()
        .expect("ucx_perftest (ucx-utils) is installed");
    testkit::wait_until("the perftest server listens", || listening(port.parse().unwrap()));
    let mut client_args = vec!["127.0.0.1"];
    client_args.extend_from_slice(&args);
    let mut env = vec![("UCX_TLS", "tcp")];
    env.extend_from_slice(client_env);
    let client_report = shm.path().join("client.txt");
    let client = shimmed(shm, Path::new("ucx_perftest"), &client_args, &env)
        .stdout(std::fs::File::create(&client_report).unwrap())
        .stderr(report("client.err"))
        .spawn()
        .unwrap();
    (client, server, client_report)
}

fn faults_of(shm: &ShmDir, pid: u32, hook: &str) -> u64 {
    SegmentMap::attach(&shm.segment("ucx", pid), Access::ReadOnly, Default::default())
        .map(|map| map.segment().hook_totals(hook_index(&map, hook)).1)
        .unwrap_or(0)
}

#[test]
fn ucx_perftest_completes_when_disabled_and_its_calls_fail_when_faulted() {
    for (test, hook) in [("tag_lat", "ucp_tag_send_nbx"), ("ucp_put_bw", "ucp_put_nbx")] {
        let shm = ShmDir::new();
        let (mut client, mut server, report) = perftest(&shm, test, &[]);
        assert!(client.wait().unwrap().success(), "{test}: client");
        assert!(server.wait().unwrap().success(), "{test}: server");
        let out = std::fs::read_to_string(&report).unwrap();
        assert!(out.contains("Final:"), "{test} completed: {out}");

        // perftest has no error path between client and server: once a client operation fails, the two wait on
        // each other. So: wait until the injected failures are counted, check no result came out, stop both.
        let shm = ShmDir::new();
        let faulted = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "100"), ("FAULTLINE_HOOKS", hook)];
        let (mut client, mut server, report) = perftest(&shm, test, &faulted);
        let pid = client.id();
        testkit::wait_until("perftest's calls are faulted", || faults_of(&shm, pid, hook) > 0);
        for process in [&mut client, &mut server] {
            let _ = process.kill();
            let _ = process.wait();
        }
        let out = std::fs::read_to_string(&report).unwrap();
        assert!(!out.contains("Final:"), "{test}: no result from a faulted run: {out}");
    }
}
