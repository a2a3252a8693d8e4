//! Without `--pid` a command reaches every running shimmed process (the seed's broadcast); `--pid` and `--kind`
//! narrow it.

mod common;

use common::{fails, ok, run_statuses, start, status};
use serde_json::Value;
use testkit::ShmDir;

#[test]
fn one_command_reaches_every_process_and_pid_reaches_one() {
    let shm = ShmDir::new();
    let mut programs: Vec<_> = (0..3).map(|_| start(&shm, "put")).collect();
    let pids: Vec<u32> = programs.iter().map(|p| p.pid()).collect();

    let ps: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    let listed: Vec<u64> = ps["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    let mut expected: Vec<u64> = pids.iter().map(|&p| u64::from(p)).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);

    ok(&shm, &["enable"]);
    ok(&shm, &["hooks", "put"]);
    let stdout = ok(&shm, &["probability", "100"]);
    assert_eq!(stdout.lines().count(), 3, "one line per process: {stdout}");
    for pid in &pids {
        // The test build names the program ucx_selfloop.<test pid>.
        let line = stdout.lines().find(|line| line.starts_with(&format!("pid {pid} (ucx_selfloop"))).expect(&stdout);
        assert!(line.contains(", ucx): enabled, random 100%"), "{line}");
    }
    for program in &mut programs {
        assert!(run_statuses(program, 3).iter().all(|&s| s != 0), "pid {} fails every put", program.pid());
    }

    let stdout = ok(&shm, &["--pid", &pids[1].to_string(), "probability", "0"]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(run_statuses(&mut programs[1], 3), vec![0; 3]);
    assert!(run_statuses(&mut programs[0], 3).iter().all(|&s| s != 0));
    assert!(run_statuses(&mut programs[2], 3).iter().all(|&s| s != 0));
    assert_eq!(status(&shm, pids[0])["probability_ppm"], 1_000_000);
    assert_eq!(status(&shm, pids[1])["probability_ppm"], 0);

    // Repeated --pid, and JSON results.
    let changed: Value = serde_json::from_str(&ok(
        &shm,
        &["--pid", &pids[0].to_string(), "--pid", &pids[2].to_string(), "disable", "--json"],
    ))
    .unwrap();
    let disabled: Vec<u64> =
        changed["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(disabled.len(), 2);
    assert!(disabled.contains(&u64::from(pids[0])) && disabled.contains(&u64::from(pids[2])));
    assert_eq!(changed["failures"], serde_json::json!([]));
    assert_eq!(run_statuses(&mut programs[0], 2), vec![0; 2]);
    assert_eq!(status(&shm, pids[1])["enabled"], true);

    // A dump to one file needs one process.
    let stderr = fails(&shm, &["record", "dump", "-o", "unused.json"], 2);
    assert!(stderr.contains("-o writes the recording of one process, but 3 match"), "{stderr}");
    assert!(!std::path::Path::new("unused.json").exists());

    // --kind narrows: there is no CUDA process here.
    let stderr = fails(&shm, &["--kind", "cuda", "enable"], 1);
    assert!(stderr.contains("no running cuda faultline processes"), "{stderr}");
    let statuses: Value = serde_json::from_str(&ok(&shm, &["--kind", "ucx", "status", "--json"])).unwrap();
    assert_eq!(statuses["processes"].as_array().unwrap().len(), 3);
}

#[test]
fn a_process_another_writer_is_changing_is_reported_and_the_others_still_change() {
    let shm = ShmDir::new();
    let busy = start(&shm, "put");
    let free = start(&shm, "put");
    let segment = shm.segment("ucx", busy.pid());
    let map = shm_proto::SegmentMap::attach(&segment, shm_proto::Access::ReadWrite, Default::default()).unwrap();
    // This test process plays a faultline in the middle of a change.
    let writing = map.segment().control.lock.try_lock(std::process::id(), 1, |_| false).expect("lock is free");

    let output = testkit::faultline(&shm, &["probability", "50"]);
    let (stdout, stderr) = common::text(&output);
    assert_eq!(output.status.code(), Some(1), "partial failure: {stdout}{stderr}");
    assert!(stdout.starts_with(&format!("pid {} (", free.pid())) && stdout.lines().count() == 1, "{stdout}");
    assert!(
        stderr.contains(&format!("pid {} (", busy.pid()))
            && stderr.contains(&format!("another faultline (pid {}) is changing this process", std::process::id())),
        "{stderr}"
    );
    // Reading never waits for a writer: it shows the last complete settings.
    assert_eq!(status(&shm, busy.pid())["probability_ppm"], 0);

    drop(writing);
    assert_eq!(status(&shm, free.pid())["probability_ppm"], 500_000);
    assert_eq!(status(&shm, busy.pid())["probability_ppm"], 0, "the busy process was left alone");
}

#[test]
fn values_are_checked_against_every_targets_kind_before_anything_changes() {
    let shm = ShmDir::new();
    let ucx = start(&shm, "put");
    // Any program preloading the CUDA shim gets a cuda segment at load.
    let mut sleeper = std::process::Command::new("sleep");
    sleeper.arg("600").env("LD_PRELOAD", &testkit::artifacts().cuda_shim).env("FAULTLINE_SHM_DIR", shm.path());
    let cuda = testkit::Program::spawn(sleeper);
    let cuda_segment = shm.segment("cuda", cuda.pid());
    testkit::wait_until("the CUDA shim creates its segment", || cuda_segment.exists());
    let before = (status(&shm, ucx.pid()), status(&shm, cuda.pid()));

    let stderr = fails(&shm, &["error-codes", "-3"], 2);
    assert!(stderr.contains("unknown cuda status code '-3'"), "{stderr}");
    let stderr = fails(&shm, &["hooks", "put"], 2);
    assert!(stderr.contains("unknown hook 'put' (known: cudaGetDeviceCount"), "{stderr}");
    assert_eq!((status(&shm, ucx.pid()), status(&shm, cuda.pid())), before, "the UCX process was not changed either");

    ok(&shm, &["--kind", "ucx", "error-codes", "UCS_ERR_CANCELED"]);
    let line = ok(&shm, &["--kind", "cuda", "error-codes", "cudaErrorECCUncorrectable"]);
    assert!(line.contains("(sleep, cuda)") && line.contains("pool cudaErrorECCUncorrectable(214)"), "{line}");
    assert_eq!(status(&shm, ucx.pid())["error_codes"], serde_json::json!([{"code": -16, "name": "UCS_ERR_CANCELED"}]));

    // The endpoint site is UCX's: with a CUDA process among the targets, nobody's site changes.
    let before = (status(&shm, ucx.pid()), status(&shm, cuda.pid()));
    let stderr = fails(&shm, &["site", "endpoint"], 2);
    assert!(
        stderr.contains("the endpoint site is UCX-only (a CUDA process has no endpoints); use completion, or choose UCX processes with --kind ucx"),
        "{stderr}"
    );
    fails(&shm, &["set", "--site", "endpoint", "--probability", "50"], 2);
    fails(&shm, &["--pid", &cuda.pid().to_string(), "replay", "--program", "0", "--site", "endpoint"], 2);
    assert_eq!((status(&shm, ucx.pid()), status(&shm, cuda.pid())), before, "neither process was changed");
    ok(&shm, &["--kind", "ucx", "site", "endpoint"]);
    ok(&shm, &["site", "completion"]);
    assert_eq!(status(&shm, ucx.pid())["site"], "completion");
    assert_eq!(status(&shm, cuda.pid())["site"], "completion", "a CUDA process has the completion site");
    ok(&shm, &["--kind", "ucx", "site", "endpoint"]);
    assert_eq!(
        (status(&shm, ucx.pid())["site"].clone(), status(&shm, cuda.pid())["site"].clone()),
        ("endpoint".into(), "completion".into())
    );

    let ps: Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    let kinds: Vec<&str> = ps["processes"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"ucx") && kinds.contains(&"cuda"), "{kinds:?}");
}
