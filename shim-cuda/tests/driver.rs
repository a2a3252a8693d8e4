//! The CUDA shim's driver-API side against a TEST DOUBLE of libcuda (`tests/c/test_double_libcuda.c`, built as
//! `libcuda.so.1` in a private directory; there is no GPU driver on the test machines). The double answers
//! CUDA_SUCCESS and counts every call, so a test sees both what the program got and whether the call reached
//! the "driver". A C program (`tests/c/driver_calls.c`) calls the driver API linked, through `dlsym` on a
//! `dlopen` handle, and through `cuGetProcAddress` (CUDA 12 and 11.3 signatures), as applications do.

mod common;

use common::*;
use shm_proto::ring::RingCursor;
use testkit::ShmDir;

/// The loop functions the program calls once per iteration and device (plus cuMemFree_v2 when allocated).
const LOOP: &[&str] = &[
    "cuCtxSetCurrent",
    "cuMemAlloc_v2",
    "cuMemcpyHtoD_v2",
    "cuLaunchKernel",
    "cuMemcpyDtoH_v2",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuStreamSynchronize",
    "cuStreamQuery",
    "cuCtxSynchronize",
    "cuMemFree_v2",
];

fn run_driver(shm: &ShmDir, linked: bool, args: &[&str], env: &[(&str, &str)]) -> Run {
    let program = if linked { driver_calls_linked() } else { driver_calls_dlopen() };
    let mut command = shimmed(shm, &program, args, env);
    command.env("LD_LIBRARY_PATH", test_double_dir());
    run(&mut command)
}

/// (linked build?, --resolve mode) of every way the program can reach the driver.
const PATHS: &[(bool, &str)] =
    &[(true, "link"), (true, "dlsym"), (true, "proc"), (true, "proc11"), (false, "dlsym"), (false, "proc")];

#[test]
fn disabled_every_resolution_path_reaches_the_test_double() {
    for &(linked, mode) in PATHS {
        let shm = ShmDir::new();
        let run = run_driver(&shm, linked, &["--resolve", mode, "--iterations", "3"], &[]);
        run.assert_ok();
        let what = format!("linked={linked} {mode}");
        assert_eq!(run.calls.len(), 7 + 3 * LOOP.len(), "{what}");
        assert!(run.statuses().iter().all(|&s| s == 0), "{what}: {}", run.text());
        assert_eq!(run.count_of("cuDeviceGetCount"), Some(2), "{what}");
        let reached = run.double_calls();
        for function in LOOP {
            assert_eq!(reached.get(*function), Some(&3), "{what}: {function} reached the double");
        }
        let lookups = reached.get("cuGetProcAddress_v2").or(reached.get("cuGetProcAddress")).copied();
        assert_eq!(lookups.is_some(), mode.starts_with("proc"), "{what}");
        let ctx = if mode.starts_with("proc") { "cuCtxCreate_v3" } else { "cuCtxCreate_v2" };
        assert_eq!(reached.get(ctx), Some(&1), "{what}: cuCtxCreate at CUDA 12.0 has the _v3 signature");
    }
}

#[test]
fn enabled_every_resolution_path_sees_the_faults_and_the_double_is_not_reached() {
    for &(linked, mode) in PATHS {
        let shm = ShmDir::new();
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", "79")];
        let run = run_driver(&shm, linked, &["--resolve", mode, "--iterations", "2"], &env);
        run.assert_ok();
        let what = format!("linked={linked} {mode}");
        assert!(run.statuses().iter().all(|&s| s == 100), "{what}: {}", run.text());
        assert_eq!(run.count_of("cuDeviceGetCount"), Some(0), "{what}: XID 79 leaves no device");
        let reached = run.double_calls();
        let unexpected: Vec<_> = reached.keys().filter(|k| !k.starts_with("cuGetProcAddress")).collect();
        assert!(unexpected.is_empty(), "{what}: reached the double: {unexpected:?}");
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cuMemAlloc_v2"), (2, 2), "{what}");
        assert_eq!(totals(&map, "cuInit"), (1, 1), "{what}");
    }
}

#[test]
fn a_pattern_on_driver_calls_is_exact_in_counters_recording_and_the_double() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "XO"),
        ("FAULTLINE_HOOKS", "cuMemcpyHtoD_v2,cuLaunchKernel"),
        ("FAULTLINE_ERROR_CODES", "CUDA_ERROR_ECC_UNCORRECTABLE,CUDA_ERROR_LAUNCH_FAILED"),
        ("FAULTLINE_RECORD", "1"),
    ];
    let run = run_driver(&shm, false, &["--resolve", "proc", "--iterations", "10"], &env);
    run.assert_ok();
    let armed: Vec<(String, i32)> =
        run.seen().into_iter().filter(|(f, _)| f == "cuMemcpyHtoD_v2" || f == "cuLaunchKernel").collect();
    assert_eq!(armed.len(), 20);
    // X O X O …: the first, third, … armed call fails, codes alternating: HtoD always gets X.
    for (i, (function, status)) in armed.iter().enumerate() {
        let expected = if i % 2 == 0 { [214, 719][(i / 2) % 2] } else { 0 };
        assert_eq!(*status, expected, "armed call {} ({function})", i + 1);
    }
    let reached = run.double_calls();
    assert_eq!(reached.get("cuMemcpyHtoD_v2"), None, "every HtoD was faulted: none reached the double");
    assert_eq!(reached.get("cuLaunchKernel"), Some(&10));
    let (map, _) = only_segment(&shm);
    assert_eq!(totals(&map, "cuMemcpyHtoD_v2"), (10, 10));
    assert_eq!(totals(&map, "cuLaunchKernel"), (10, 0));
    assert_eq!(totals(&map, "cuMemAlloc_v2"), (10, 0), "unarmed calls are counted too");
    let seg = map.segment();
    let names = seg.header.hook_names();
    let mut recorded = Vec::new();
    RingCursor::oldest(&seg.ring).drain(&seg.ring, true, |r| recorded.push((names[r.hook as usize].clone(), r.code)));
    assert_eq!(recorded, armed, "only armed calls are recorded, with exactly the codes the program saw");
}

#[test]
fn per_thread_default_stream_variants_are_intercepted_without_losing_their_semantics() {
    let shm = ShmDir::new();
    let run = run_driver(&shm, false, &["--resolve", "proc", "--ptds"], &[]);
    run.assert_ok();
    let reached = run.double_calls();
    assert_eq!(reached.get("cuLaunchKernel_ptsz"), Some(&1), "the wrapper forwards to the _ptsz variant");
    assert_eq!(reached.get("cuStreamSynchronize_ptsz"), Some(&1));
    assert_eq!(reached.get("cuLaunchKernel"), None);

    let shm = ShmDir::new();
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "100"), ("FAULTLINE_HOOKS", "cuLaunchKernel")];
    let run = run_driver(&shm, false, &["--resolve", "proc", "--ptds", "--iterations", "3"], &env);
    run.assert_ok();
    let launches: Vec<i32> = run.calls.iter().filter(|c| c.function == "cuLaunchKernel").map(|c| c.status).collect();
    assert_eq!(launches, vec![100; 3]);
    assert_eq!(run.double_calls().get("cuLaunchKernel_ptsz"), None);
    let (map, _) = only_segment(&shm);
    assert_eq!(totals(&map, "cuLaunchKernel"), (3, 3), "counted under the hook of its signature");
}

#[test]
fn cu_get_proc_address_answers_follow_the_requested_version() {
    let shm = ShmDir::new();
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "100"), ("FAULTLINE_HOOKS", "cuCtxCreate_v2")];
    let run = run_driver(&shm, false, &["--resolve", "proc", "--version", "4000"], &env);
    run.assert_ok();
    assert_eq!(run.seen()[4], ("cuCtxCreate_v2".to_string(), 100), "{}", run.text());
    let run = run_driver(&ShmDir::new(), false, &["--resolve", "proc", "--version", "12000"], &env);
    assert_eq!(run.seen()[4], ("cuCtxCreate_v3".to_string(), 0), "the v3 signature is another hook");
}

#[test]
fn the_device_filter_follows_context_switches() {
    for (linked, mode) in [(true, "link"), (false, "proc")] {
        let shm = ShmDir::new();
        let env = [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_PROBABILITY", "100"),
            ("FAULTLINE_DEVICE", "1"),
            ("FAULTLINE_HOOKS", "cuMemAlloc_v2,cuLaunchKernel,cuDeviceGetAttribute"),
        ];
        let run = run_driver(&shm, linked, &["--resolve", mode, "--devices", "0,1", "--iterations", "2"], &env);
        run.assert_ok();
        let lines: Vec<&String> = run
            .lines
            .iter()
            .filter(|l| ["cuMemAlloc_v2", "cuLaunchKernel", "cuDeviceGetAttribute"].iter().any(|f| l.contains(f)))
            .filter(|l| l.starts_with("CALL"))
            .collect();
        for line in &lines {
            let failed = line.split_whitespace().nth(3) != Some("0");
            assert_eq!(failed, line.ends_with("dev=1"), "{mode}: {line}");
        }
        assert_eq!(lines.len(), 2 + 2 * 2 * 2, "{mode}");
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cuMemAlloc_v2"), (2, 2), "{mode}: device 0's calls pass uncounted");
    }
}

#[test]
fn the_real_cuda_runtime_over_the_double_is_intercepted_through_its_own_driver_lookups() {
    // The wheel's libcudart dlopens libcuda.so.1 (the double) and resolves every driver function through
    // cuGetProcAddress: the shim sees those lookups only through its dlsym, and wraps what they return.
    let cudart = cudart().to_str().unwrap().to_string();
    let args = ["--cudart", cudart.as_str(), "--ops", "meminfo"];
    let with_double = |shm: &ShmDir, env: &[(&str, &str)]| {
        let mut command = shimmed(shm, &cudart_calls_dlopen(), &args, env);
        command.env("LD_LIBRARY_PATH", test_double_dir());
        run(&mut command)
    };
    let shm = ShmDir::new();
    let watched = with_double(&shm, &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_HOOKS", "none")]);
    watched.assert_ok();
    let (map, _) = only_segment(&shm);
    let (lookups, _) = totals(&map, "cuGetProcAddress_v2");
    assert!(lookups > 100, "the runtime's driver lookups went through the shim: {lookups}");
    assert_eq!(totals(&map, "cuInit"), (1, 0), "the runtime called cuInit through the shim's wrapper");

    // A fault injected into the runtime's own cuInit reaches the application as the runtime's error for it.
    for (xid, code) in [("79", 100), ("48", 214)] {
        let shm = ShmDir::new();
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", xid), ("FAULTLINE_HOOKS", "cuInit")];
        let run = with_double(&shm, &env);
        run.assert_ok();
        assert_eq!(run.statuses(), vec![code], "XID {xid}: cudaMemGetInfo");
    }
}

#[test]
fn a_statically_linked_runtime_is_reached_through_its_driver_lookups() {
    // nvcc links libcudart_static.a by default: the program's cuda* calls never go through a symbol the shim
    // can interpose, but the runtime inside still looks the driver up through dlsym and cuGetProcAddress.
    let program = cudart_calls_static();
    let args = ["--ops", "count,malloc,meminfo"];
    let with_double = |shm: &ShmDir, env: &[(&str, &str)]| {
        let mut command = shimmed(shm, &program, &args, env);
        command.env("LD_LIBRARY_PATH", test_double_dir());
        run(&mut command)
    };
    let clean = with_double(&ShmDir::new(), &[]);
    clean.assert_ok();
    assert!(clean.statuses().iter().all(|&s| s != 100), "{}", clean.text());
    let shm = ShmDir::new();
    let faulted = with_double(&shm, &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_XID", "79")]);
    faulted.assert_ok();
    assert_eq!(faulted.statuses(), vec![100; 3], "the runtime reports the driver's injected NO_DEVICE");
    let (map, _) = only_segment(&shm);
    assert_eq!(totals(&map, "cudaMalloc"), (0, 0), "no runtime symbol was interposed");
    assert!(totals(&map, "cuInit").1 >= 1, "the runtime's cuInit was faulted");
}
