//! The `completion` fault site on CUDA: a faulted launch or `*Async` copy returns success and does not run; the
//! next synchronising call (stream / context / device / event synchronisation or query, a blocking copy) returns
//! the code, once; `cudaGetLastError` returns it once and `cudaPeekAtLastError` leaves it; an XID preset's code
//! is sticky (a dead GPU from the report on). Against the TEST DOUBLE of libcuda (`tests/c/test_double_libcuda.c`,
//! no GPU driver here), which counts the calls that reached it, and the real runtime from PyPI, whose every real
//! call answers 35 here (`cudaErrorInsufficientDriver`): the expectations that involve the real runtime are taken
//! from a run of the same calls with faults off, never assumed.

mod common;

use common::*;
use shm_proto::layout::Site;
use shm_proto::ring::RingCursor;
use shm_proto::{Access, SegmentMap};
use testkit::ShmDir;

/// The loop the driver program runs per iteration (see `tests/c/driver_calls.c`).
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

/// (linked build?, --resolve mode) of every way the program can reach the driver.
const PATHS: &[(bool, &str)] =
    &[(true, "link"), (true, "dlsym"), (true, "proc"), (true, "proc11"), (false, "dlsym"), (false, "proc")];

/// `CUDA_ERROR_LAUNCH_FAILED` / `cudaErrorLaunchFailure`: what a kernel that crashed reports.
const LAUNCH_FAILED: i32 = 719;

fn run_driver(shm: &ShmDir, linked: bool, args: &[&str], env: &[(&str, &str)]) -> Run {
    let program = if linked { driver_calls_linked() } else { driver_calls_dlopen() };
    let mut command = shimmed(shm, &program, args, env);
    command.env("LD_LIBRARY_PATH", test_double_dir());
    run(&mut command)
}

/// The statuses of the loop's calls, one row per iteration (the 7 set-up calls left out).
fn loop_rows(run: &Run) -> Vec<Vec<(String, i32)>> {
    run.seen()[7..].chunks(LOOP.len()).map(<[_]>::to_vec).collect()
}

/// One loop row: every call 0 except the given ones.
fn row(failed: &[(&str, i32)]) -> Vec<(String, i32)> {
    LOOP.iter().map(|f| (f.to_string(), failed.iter().find(|(g, _)| g == f).map_or(0, |(_, code)| *code))).collect()
}

fn launch_faults(site: &str) -> [(&'static str, String); 5] {
    [
        ("FAULTLINE_ENABLED", "1".into()),
        ("FAULTLINE_SITE", site.into()),
        ("FAULTLINE_HOOKS", "cuLaunchKernel".into()),
        ("FAULTLINE_STRATEGY", "X".into()),
        ("FAULTLINE_ERROR_CODES", LAUNCH_FAILED.to_string()),
    ]
}

fn env_refs<'a>(env: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_launch_faulted_at_completion_returns_0_never_runs_and_the_next_blocking_copy_reports_it_once() {
    for &(linked, mode) in PATHS {
        let shm = ShmDir::new();
        let env = launch_faults("completion");
        let mut env = env_refs(&env);
        env.push(("FAULTLINE_RECORD", "1"));
        let run = run_driver(&shm, linked, &["--resolve", mode, "--iterations", "3"], &env);
        let what = format!("linked={linked} {mode}");
        run.assert_ok();
        // The launch "succeeded"; the blocking DtoH copy after it waited for the crashed kernel and reports it;
        // the synchronisations after that have nothing left to report.
        assert_eq!(loop_rows(&run), vec![row(&[("cuMemcpyDtoH_v2", LAUNCH_FAILED)]); 3], "{what}: {}", run.text());
        let reached = run.double_calls();
        assert_eq!(reached.get("cuLaunchKernel"), None, "{what}: the faulted kernel never ran");
        assert_eq!(reached.get("cuMemcpyDtoH_v2"), Some(&3), "{what}: the reporting copy itself ran");
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cuLaunchKernel"), (3, 3), "{what}: the faults are the launches'");
        assert_eq!(totals(&map, "cuMemcpyDtoH_v2"), (3, 0), "{what}: reporting is not a fault of its own");
        let seg = map.segment();
        let names = seg.header.hook_names();
        let mut recorded = Vec::new();
        RingCursor::oldest(&seg.ring)
            .drain(&seg.ring, true, |r| recorded.push((names[r.hook as usize].clone(), r.code, r.site)));
        assert_eq!(recorded, vec![("cuLaunchKernel".to_string(), LAUNCH_FAILED, Some(Site::Completion)); 3], "{what}");
    }
}

#[test]
fn an_async_copy_faulted_at_completion_is_reported_by_the_stream_synchronisation_after_it() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_SITE", "completion"),
        ("FAULTLINE_HOOKS", "cuMemcpyDtoHAsync_v2"),
        ("FAULTLINE_STRATEGY", "X"),
        ("FAULTLINE_ERROR_CODES", "214"),
    ];
    let run = run_driver(&shm, false, &["--resolve", "proc", "--iterations", "2"], &env);
    run.assert_ok();
    // DtoHAsync on the default stream: the stream synchronisation right after it reports.
    assert_eq!(loop_rows(&run), vec![row(&[("cuStreamSynchronize", 214)]); 2], "{}", run.text());
    assert_eq!(run.double_calls().get("cuMemcpyDtoHAsync_v2"), None, "the faulted copy never ran");
    assert_eq!(run.double_calls().get("cuStreamSynchronize"), Some(&2));
}

#[test]
fn post_is_unchanged_the_launch_fails_at_the_call() {
    for &(linked, mode) in &PATHS[..3] {
        let shm = ShmDir::new();
        let env = launch_faults("post");
        let run = run_driver(&shm, linked, &["--resolve", mode, "--iterations", "2"], &env_refs(&env));
        run.assert_ok();
        assert_eq!(loop_rows(&run), vec![row(&[("cuLaunchKernel", LAUNCH_FAILED)]); 2], "{mode}: {}", run.text());
        assert_eq!(run.double_calls().get("cuLaunchKernel"), None);
    }
}

#[test]
fn a_sticky_xid_code_kills_the_gpu_when_it_is_reported_not_at_the_launch() {
    for &(linked, mode) in &[(true, "link"), (false, "proc")] {
        let shm = ShmDir::new();
        let env = [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_XID", "79"),
            ("FAULTLINE_SITE", "completion"),
            ("FAULTLINE_HOOKS", "cuLaunchKernel,cuMemcpyDtoH_v2,cuStreamSynchronize,cuCtxSynchronize"),
            ("FAULTLINE_STRATEGY", "XOOO"),
        ];
        let run = run_driver(&shm, linked, &["--resolve", mode, "--iterations", "2"], &env);
        run.assert_ok();
        let armed_dead = [("cuMemcpyDtoH_v2", 100), ("cuStreamSynchronize", 100), ("cuCtxSynchronize", 100)];
        let mut second = armed_dead.to_vec();
        second.push(("cuLaunchKernel", 100));
        assert_eq!(
            loop_rows(&run),
            vec![row(&armed_dead), row(&second)],
            "{mode}: launch 0, the copy reports 100 and the GPU is dead from there (armed calls), the next launch \
             fails at the call: {}",
            run.text()
        );
        let reached = run.double_calls();
        assert_eq!(reached.get("cuLaunchKernel"), None, "{mode}");
        assert_eq!(reached.get("cuMemcpyDtoH_v2"), Some(&1), "{mode}: the reporting copy ran, later ones did not");
        let (map, _) = only_segment(&shm);
        assert_eq!(totals(&map, "cuLaunchKernel"), (2, 2), "{mode}");
        assert_eq!(totals(&map, "cuCtxSynchronize"), (2, 2), "{mode}: dead-GPU failures count as faults");
    }
}

// ---- The runtime (PyPI libcudart.so.12) -----------------------------------------------------------------------

fn run_cudart(shm: &ShmDir, linked: bool, ops: &str, env: &[(&str, &str)]) -> Run {
    let run = if linked {
        run(&mut shimmed(shm, &cudart_calls_linked(), &["--ops", ops], env))
    } else {
        let cudart = cudart().to_str().unwrap().to_string();
        run(&mut shimmed(shm, &cudart_calls_dlopen(), &["--cudart", &cudart, "--ops", ops], env))
    };
    run.assert_ok();
    run
}

/// What the real runtime answers to `ops` with faults off (the shim passing everything through).
fn real_answers(linked: bool, ops: &str) -> Vec<i32> {
    run_cudart(&ShmDir::new(), linked, ops, &[]).statuses()
}

fn completion_on(hooks: &str, code: &str) -> [(&'static str, String); 5] {
    [
        ("FAULTLINE_ENABLED", "1".into()),
        ("FAULTLINE_SITE", "completion".into()),
        ("FAULTLINE_HOOKS", hooks.into()),
        ("FAULTLINE_PROBABILITY", "100".into()),
        ("FAULTLINE_ERROR_CODES", code.into()),
    ]
}

#[test]
fn runtime_a_launch_faulted_at_completion_is_reported_by_the_next_sync_then_once_by_get_last_error() {
    for linked in [false, true] {
        // What the real runtime's cudaGetLastError answers after a real cudaStreamSynchronize (35 here: no
        // driver; 0 on a working GPU): the answer once the injected error has been returned.
        let real = real_answers(linked, "streamsync,getlasterror");
        assert_ne!(real[1], 700);
        let env = completion_on("cudaLaunchKernel", "700");
        let run = run_cudart(&ShmDir::new(), linked, "launch,streamsync,getlasterror,getlasterror", &env_refs(&env));
        assert_eq!(run.statuses(), vec![0, 700, 700, real[1]], "linked={linked}: {}", run.text());

        // cudaPeekAtLastError sees the pending error and leaves it; cudaGetLastError consumes it, so the stream
        // synchronisation after it has nothing left to report and answers what the real runtime answers.
        let real = real_answers(linked, "streamsync");
        let ops = "launch,peeklasterror,peeklasterror,getlasterror,streamsync";
        let run = run_cudart(&ShmDir::new(), linked, ops, &env_refs(&env));
        assert_eq!(run.statuses(), vec![0, 700, 700, 700, real[0]], "linked={linked}: {}", run.text());
    }
}

#[test]
fn runtime_blocking_copies_queries_and_device_syncs_report_async_copy_faults() {
    for linked in [false, true] {
        let env = completion_on("cudaMemcpyAsync", "cudaErrorIllegalAddress");
        for (ops, reporter) in [
            ("memcpyasync,memcpy,devsync", 1),
            ("memcpyasync,streamquery,devsync", 1),
            ("memcpyasync,eventquery,streamsync", 1),
            ("memcpyasync,devsync,eventsync", 1),
        ] {
            let mut expected = real_answers(linked, ops);
            expected[0] = 0;
            expected[reporter] = 700;
            let run = run_cudart(&ShmDir::new(), linked, ops, &env_refs(&env));
            assert_eq!(run.statuses(), expected, "linked={linked} {ops}: {}", run.text());
        }
    }
}

#[test]
fn runtime_an_injected_failure_at_the_call_is_the_threads_last_error_once() {
    for linked in [false, true] {
        let real = real_answers(linked, "getlasterror");
        let env = [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_HOOKS", "cudaMalloc"),
            ("FAULTLINE_PROBABILITY", "100"),
            ("FAULTLINE_ERROR_CODES", "cudaErrorMemoryAllocation"),
        ];
        let run = run_cudart(&ShmDir::new(), linked, "malloc,peeklasterror,getlasterror,getlasterror", &env);
        assert_eq!(run.statuses(), vec![2, 2, 2, real[0]], "linked={linked}: {}", run.text());
    }
}

#[test]
fn runtime_a_sticky_xid_code_deferred_at_completion_stays_in_get_last_error() {
    for linked in [false, true] {
        let env = [
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_XID", "79"),
            ("FAULTLINE_SITE", "completion"),
            ("FAULTLINE_HOOKS", "cudaLaunchKernel,cudaStreamSynchronize"),
        ];
        let ops = "launch,getlasterror,streamsync,getlasterror,peeklasterror,launch";
        let run = run_cudart(&ShmDir::new(), linked, ops, &env);
        // The launch succeeds; cudaGetLastError reports the GPU's error, which is sticky: every later call fails.
        assert_eq!(run.statuses(), vec![0, 100, 100, 100, 100, 100], "linked={linked}: {}", run.text());
    }
}

/// Sends `command` (`run K` or `ops LIST`) and returns the CALL statuses it printed.
fn send(program: &mut testkit::Program, command: &str) -> Vec<i32> {
    program.send(command);
    let lines = program.lines_until(|l| l == "DONE");
    testkit::calls(&lines).iter().map(|c| c.status).collect()
}

#[test]
fn runtime_a_pending_error_is_reported_even_after_faults_were_disabled() {
    let real = real_answers(false, "streamsync,getlasterror,streamsync");
    let shm = ShmDir::new();
    let env = completion_on("cudaLaunchKernel", "700");
    let cudart = cudart().to_str().unwrap().to_string();
    let args = ["--cudart", cudart.as_str(), "--ops", "launch", "--stdin"];
    let mut program = testkit::Program::spawn(shimmed(&shm, &cudart_calls_dlopen(), &args, &env_refs(&env)));
    assert_eq!(send(&mut program, "run 1"), vec![0]);

    // Faults off (as `faultline disable` publishes it): the kernel already failed, so the next sync still says so.
    let segment = SegmentMap::attach(&shm.segment("cuda", program.pid()), Access::ReadWrite, Default::default())
        .expect("the live segment");
    let mut strategy = segment.segment().control.snapshot().expect("a settled strategy");
    strategy.enabled = false;
    segment.segment().publish(&strategy).expect("published");
    assert!(send(&mut program, "ops streamsync,getlasterror,streamsync").is_empty());
    assert_eq!(send(&mut program, "run 1"), vec![700, 700, real[2]]);
    assert!(program.finish().success());
}
