//! The CUDA shim against the real CUDA runtime from PyPI (`nvidia-cuda-runtime-cu12`): with no driver on the
//! machine every runtime call answers cudaErrorInsufficientDriver (35), a real answer the shim must pass through
//! untouched, and that no injected fault can be confused with. A C program (`tests/c/cudart_calls.c`) calls the
//! runtime, through `dlopen` + `dlsym` or linked, and prints what each call returned.

mod common;

use std::io::Write;

use common::*;
use shm_proto::ring::RingCursor;
use testkit::{Program, ShmDir};

const ALL_OPS: &str = "count,setdevice,getdevice,props,props_v1,malloc,mallocasync,free,memcpy,memcpyasync,memset,\
                       launch,devsync,streamsync,streamcreate,eventsync,meminfo,getlasterror,peeklasterror,\
                       streamquery,eventquery";

fn cudart_arg() -> String {
    cudart().to_str().unwrap().to_string()
}

/// Runs the dlopen build with `args` (plus `--cudart`) under the shim.
fn run_dlopen(shm: &ShmDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let cudart = cudart_arg();
    let mut all = vec!["--cudart", &cudart];
    all.extend_from_slice(args);
    run(&mut shimmed(shm, &cudart_calls_dlopen(), &all, env))
}

fn run_linked(shm: &ShmDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    run(&mut shimmed(shm, &cudart_calls_linked(), args, env))
}

/// Calls whose status is not the real runtime's 35, 1-based: what the shim injected.
fn injected(run: &Run) -> Vec<(usize, i32)> {
    run.calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status != INSUFFICIENT_DRIVER)
        .map(|(i, c)| (i + 1, c.status))
        .collect()
}

#[test]
fn disabled_the_real_runtimes_answer_comes_through_unchanged() {
    for linked in [false, true] {
        let shm = ShmDir::new();
        let args = ["--ops", ALL_OPS, "--iterations", "2"];
        let run = if linked { run_linked(&shm, &args, &[]) } else { run_dlopen(&shm, &args, &[]) };
        run.assert_ok();
        assert_eq!(run.calls.len(), 42);
        assert!(run.statuses().iter().all(|&s| s == INSUFFICIENT_DRIVER), "linked={linked}: {}", run.text());
        assert_eq!(run.count_of("cudaGetDeviceCount"), Some(-1), "the real runtime leaves the count alone on 35");
        let left: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "never enabled: the process removed its segment at exit: {left:?}");
    }
}

#[test]
fn xid_79_reports_no_device_a_count_of_0_and_fails_every_intercepted_call() {
    for linked in [false, true] {
        let shm = ShmDir::new();
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", "79")];
        let args = ["--ops", ALL_OPS];
        let run = if linked { run_linked(&shm, &args, &env) } else { run_dlopen(&shm, &args, &env) };
        run.assert_ok();
        let seen = run.seen();
        assert_eq!(seen[0], ("cudaGetDeviceCount".to_string(), 100), "linked={linked}");
        assert_eq!(run.count_of("cudaGetDeviceCount"), Some(0));
        for (function, status) in &seen {
            let expected = if function == "cudaMemGetInfo" { INSUFFICIENT_DRIVER } else { 100 };
            assert_eq!(*status, expected, "{function} (cudaMemGetInfo is not intercepted) linked={linked}");
        }
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cudaMalloc"), (1, 1));
        let strategy = map.segment().control.snapshot().unwrap();
        assert_eq!(strategy.pool, vec![100], "the preset's code is the pool the CLI shows");
        assert_eq!(strategy.probability_ppm, 1_000_000);
    }
}

#[test]
fn every_xid_preset_gives_its_code_and_only_no_device_zeroes_the_count() {
    for (xid, code) in [("48", 214), ("94", 214), ("95", 214), ("74", 220), ("119", 999), ("120", 999), ("43", 702)] {
        let shm = ShmDir::new();
        let run = run_dlopen(
            &shm,
            &["--ops", "count,malloc,launch,devsync"],
            &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", xid)],
        );
        run.assert_ok();
        assert_eq!(run.statuses(), vec![code; 4], "XID {xid}");
        assert_eq!(run.count_of("cudaGetDeviceCount"), Some(-1), "XID {xid}: outputs untouched");
    }
    // An unknown XID is reported and ignored: nothing is enabled to fail with.
    let shm = ShmDir::new();
    let run = run_dlopen(&shm, &["--ops", "malloc"], &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", "13")]);
    assert!(run.stderr().contains("FAULTLINE_XID=13: not an XID with a preset"), "{}", run.stderr());
    assert_eq!(run.statuses(), vec![INSUFFICIENT_DRIVER], "probability stays 0 without a preset");
}

#[test]
fn cuda_error_no_device_in_the_pool_also_reports_a_count_of_0() {
    let shm = ShmDir::new();
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "100"), ("FAULTLINE_ERROR_CODES", "NoDevice")];
    let run = run_dlopen(&shm, &["--ops", "count"], &env);
    assert_eq!(run.statuses(), vec![100]);
    assert_eq!(run.count_of("cudaGetDeviceCount"), Some(0));
}

#[test]
fn pattern_faults_exactly_the_patterned_calls_with_codes_cycling_through_the_pool() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "XOOOOXOO"),
        ("FAULTLINE_HOOKS", "cudaMalloc"),
        ("FAULTLINE_ERROR_CODES", "cudaErrorMemoryAllocation,cudaErrorECCUncorrectable,700"),
    ];
    let run = run_dlopen(&shm, &["--ops", "malloc,free", "--iterations", "40"], &env);
    run.assert_ok();
    let mallocs: Vec<i32> = run.calls.iter().filter(|c| c.function == "cudaMalloc").map(|c| c.status).collect();
    let expected: Vec<i32> = (0..40)
        .map(|n| if matches!(n % 8, 0 | 5) { [2, 214, 700][(n / 8 * 2 + usize::from(n % 8 == 5)) % 3] } else { 35 })
        .collect();
    assert_eq!(&expected[..10], &[2, 35, 35, 35, 35, 214, 35, 35, 700, 35]);
    assert_eq!(mallocs, expected);
    assert!(run.calls.iter().filter(|c| c.function == "cudaFree").all(|c| c.status == 35), "unarmed: untouched");
}

#[test]
fn random_faults_are_within_statistical_bounds_and_reproducible_from_the_seed() {
    let env = |seed| {
        [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_PROBABILITY", "30"),
            ("FAULTLINE_HOOKS", "cudaMalloc"),
            ("FAULTLINE_SEED", seed),
            ("FAULTLINE_ERROR_CODES", "2,214"),
        ]
    };
    let args = ["--ops", "malloc", "--iterations", "5000"];
    let shm = ShmDir::new();
    let first = run_dlopen(&shm, &args, &env("7"));
    first.assert_ok();
    let faults = injected(&first);
    // Binomial(5000, 0.3): mean 1500, sd ≈ 32.4; six sd either side.
    assert!((1306..=1694).contains(&faults.len()), "{} faults", faults.len());
    let per_code = [2, 214].map(|code| faults.iter().filter(|(_, c)| *c == code).count());
    assert!(per_code.iter().all(|&n| (600..=900).contains(&n)), "codes drawn uniformly: {per_code:?}");
    let again = run_dlopen(&ShmDir::new(), &args, &env("7"));
    assert_eq!(injected(&again), faults, "same seed, same faults");
    let other = run_dlopen(&ShmDir::new(), &args, &env("8"));
    assert_ne!(injected(&other), faults, "another seed, other faults");
}

#[test]
fn skip_and_limit_are_exact() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_PROBABILITY", "100"),
        ("FAULTLINE_HOOKS", "cudaMalloc"),
        ("FAULTLINE_SKIP", "5"),
        ("FAULTLINE_LIMIT", "3"),
        ("FAULTLINE_ERROR_CODES", "cudaErrorMemoryAllocation"),
    ];
    let run = run_dlopen(&shm, &["--ops", "malloc", "--iterations", "20"], &env);
    run.assert_ok();
    assert_eq!(injected(&run), vec![(6, 2), (7, 2), (8, 2)]);
}

#[test]
fn counters_and_recording_equal_what_the_program_saw() {
    let shm = ShmDir::new();
    let hooks = "cudaMalloc,cudaMemcpy,cudaLaunchKernel,cudaDeviceSynchronize,cudaFree";
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_PROBABILITY", "25"),
        ("FAULTLINE_HOOKS", hooks),
        ("FAULTLINE_RECORD", "1"),
        ("FAULTLINE_SEED", "11"),
        ("FAULTLINE_ERROR_CODES", "2,214,700,719"),
    ];
    let run = run_dlopen(&shm, &["--ops", "malloc,memcpy,launch,devsync,free,meminfo", "--iterations", "300"], &env);
    run.assert_ok();
    let (map, pid) = only_segment(&shm);
    let seg = map.segment();
    assert!(!shm_proto::segment::is_alive(&map, pid), "read post-mortem");
    for hook in hooks.split(',') {
        let calls = run.calls.iter().filter(|c| c.function == hook).count() as u64;
        let faults = run.calls.iter().filter(|c| c.function == hook && c.status != 35).count() as u64;
        assert_eq!(totals(&map, hook), (calls, faults), "{hook}");
        assert!(faults > 0 && faults < calls, "{hook}: {faults} of {calls}");
    }
    assert_eq!(totals(&map, "cudaGetDeviceCount"), (0, 0));

    let mut recorded = Vec::new();
    let mut cursor = RingCursor::oldest(&seg.ring);
    cursor.drain(&seg.ring, true, |record| recorded.push(record));
    assert_eq!(cursor.missed, 0);
    let names = seg.header.hook_names();
    let from_ring: Vec<(String, i32)> = recorded.iter().map(|r| (names[r.hook as usize].clone(), r.code)).collect();
    let from_program: Vec<(String, i32)> = run
        .calls
        .iter()
        .filter(|c| c.function != "cudaMemGetInfo")
        .map(|c| (c.function.clone(), if c.status == 35 { 0 } else { c.status }))
        .collect();
    assert_eq!(from_ring, from_program, "the ring holds the exact sequence the program saw");
    assert!(recorded.iter().filter(|r| names[r.hook as usize] == "cudaMalloc").all(|r| r.size == 256));
    assert!(recorded.iter().filter(|r| names[r.hook as usize] == "cudaMemcpy").all(|r| r.size == 256));
}

#[test]
fn the_device_filter_faults_only_calls_on_that_device() {
    for device in ["0", "1"] {
        let shm = ShmDir::new();
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", "79"), ("FAULTLINE_DEVICE", "1")];
        let run = run_dlopen(&shm, &["--ops", "count,props,props_v1", "--device", device], &env);
        run.assert_ok();
        let props = if device == "1" { 100 } else { 35 };
        assert_eq!(run.statuses(), vec![35, props, props], "device {device}: a count names no device");
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cudaGetDeviceCount"), (0, 0), "calls outside the target are not counted");
    }
}

/// Sends `run K` and returns the CALL statuses of that run.
fn run_k(program: &mut Program, k: usize) -> Vec<i32> {
    program.send(&format!("run {k}"));
    let lines = program.lines_until(|l| l == "DONE");
    testkit::calls(&lines).iter().map(|c| c.status).collect()
}

fn faultline_ok(shm: &ShmDir, args: &[&str]) -> String {
    let out = testkit::faultline(shm, args);
    assert!(out.status.success(), "faultline {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_xid_gpu_stays_dead_until_faults_are_disabled_or_its_code_leaves_the_pool() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_XID", "79"),
        ("FAULTLINE_STRATEGY", "OOXO"),
        ("FAULTLINE_HOOKS", "cudaMalloc"),
        ("FAULTLINE_RECORD", "1"),
    ];
    let cudart = cudart_arg();
    let args = ["--cudart", cudart.as_str(), "--ops", "malloc", "--stdin"];
    let mut program = Program::spawn(shimmed(&shm, &cudart_calls_dlopen(), &args, &env));
    let pid = program.pid().to_string();
    // What the ring must hold: every call made while enabled, 0 for a pass.
    let mut expected_ring = Vec::new();
    let mut enabled_run = |program: &mut Program, k| {
        let statuses = run_k(program, k);
        expected_ring.extend(statuses.iter().map(|&s| if s == 35 { 0 } else { s }));
        statuses
    };
    assert_eq!(enabled_run(&mut program, 8), vec![35, 35, 100, 100, 100, 100, 100, 100], "dead after the first X");

    // Other settings change nothing: the GPU is still dead.
    faultline_ok(&shm, &["--pid", &pid, "probability", "0"]);
    faultline_ok(&shm, &["--pid", &pid, "skip", "1"]);
    assert_eq!(enabled_run(&mut program, 3), vec![100; 3]);
    faultline_ok(&shm, &["--pid", &pid, "skip", "0"]);

    // Disabled: the GPU is back. Enabled again: a new episode, the pattern starts over.
    faultline_ok(&shm, &["--pid", &pid, "disable"]);
    assert_eq!(run_k(&mut program, 2), vec![35; 2]);
    faultline_ok(&shm, &["--pid", &pid, "enable"]);
    assert_eq!(enabled_run(&mut program, 6), vec![35, 35, 100, 100, 100, 100]);

    // Other faults chosen: the dead state ends and the pattern decides alone.
    faultline_ok(&shm, &["--pid", &pid, "error-codes", "cudaErrorLaunchFailure"]);
    let statuses = enabled_run(&mut program, 8);
    assert_eq!(statuses.iter().filter(|&&s| s == 719).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 35).count(), 6, "{statuses:?}");

    // Every dead-GPU failure was counted and recorded as a fault.
    let (map, _) = only_segment(&shm);
    let faults = expected_ring.iter().filter(|&&c| c != 0).count() as u64;
    assert_eq!(totals(&map, "cudaMalloc"), (expected_ring.len() as u64, faults));
    let seg = map.segment();
    let mut codes = Vec::new();
    RingCursor::oldest(&seg.ring).drain(&seg.ring, true, |r| codes.push(r.code));
    assert_eq!(codes, expected_ring);
    assert!(program.finish().success());
}

#[test]
fn the_cli_steers_a_cuda_process_with_no_cuda_specific_code() {
    let shm = ShmDir::new();
    let cudart = cudart_arg();
    let args = ["--cudart", cudart.as_str(), "--ops", "count,malloc", "--stdin"];
    let mut program = Program::spawn(shimmed(&shm, &cudart_calls_dlopen(), &args, &[]));
    testkit::wait_until("the shim creates its segment", || shm.segment("cuda", program.pid()).exists());
    assert_eq!(run_k(&mut program, 2), vec![35; 4]);

    let line = faultline_ok(&shm, &["--kind", "cuda", "probability", "100"]);
    assert!(line.contains("cuda"), "{line}");
    faultline_ok(&shm, &["--kind", "cuda", "enable"]);
    program.send("run 1");
    let lines = program.lines_until(|l| l == "DONE");
    assert!(lines.iter().any(|l| l == "CALL 5 cudaGetDeviceCount 100 count=0"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "CALL 6 cudaMalloc 100"), "{lines:?}");

    faultline_ok(&shm, &["--kind", "cuda", "error-codes", "cudaErrorECCUncorrectable"]);
    assert_eq!(run_k(&mut program, 1), vec![214, 214]);
    faultline_ok(&shm, &["--kind", "cuda", "hooks", "cudaMalloc"]);
    assert_eq!(run_k(&mut program, 1), vec![35, 214]);

    let status: serde_json::Value =
        serde_json::from_str(&faultline_ok(&shm, &["--kind", "cuda", "status", "--json"])).unwrap();
    let text = status.to_string();
    assert!(text.contains("cudaErrorECCUncorrectable") && text.contains("cuMemAlloc_v2"), "{text}");

    faultline_ok(&shm, &["--kind", "cuda", "disable"]);
    assert_eq!(run_k(&mut program, 1), vec![35, 35]);
    assert!(program.finish().success());
}

#[test]
fn a_policy_file_arms_every_new_process_from_its_first_call() {
    let shm = ShmDir::new();
    let policy = shm.path().join("cuda.policy");
    let policy_path = policy.to_str().unwrap();
    // No file at the path: the node is not armed, calls pass through.
    let env = [("FAULTLINE_POLICY_FILE", policy_path), ("FAULTLINE_ENABLED", "0")];
    let run = run_dlopen(&shm, &["--ops", "count,malloc"], &env);
    run.assert_ok();
    assert_eq!(run.statuses(), vec![35, 35]);
    assert!(run.stderr().is_empty(), "a missing policy file is silent: {}", run.stderr());

    let mut file = std::fs::File::create(&policy).unwrap();
    writeln!(file, "# armed by faultline\nenabled = 1\nxid = 79").unwrap();
    drop(file);
    for _restart in 0..2 {
        let run = run_dlopen(&shm, &["--ops", "count,malloc"], &env);
        run.assert_ok();
        assert_eq!(run.statuses(), vec![100, 100], "the pod's FAULTLINE_ENABLED=0 loses to the node's policy");
        assert_eq!(run.count_of("cudaGetDeviceCount"), Some(0));
    }

    std::fs::write(&policy, "enabled=1\nxid=79\nbogus=3\n").unwrap();
    let run = run_dlopen(&shm, &["--ops", "malloc"], &env);
    assert_eq!(run.statuses(), vec![100]);
    assert!(run.stderr().contains("line 3: 'bogus' is not a setting"), "{}", run.stderr());

    std::fs::remove_file(&policy).unwrap();
    let run = run_dlopen(&shm, &["--ops", "malloc"], &env);
    assert_eq!(run.statuses(), vec![35], "disarmed: the next process passes through");
}
