//! The shim in a real NIXL process: DRAM READs and WRITEs between two NIXL agents (`tests/nixl_transfer.py`) over the
//! UCX copy that the NIXL wheel bundles and opens RTLD_LOCAL (`nixl_cu12.libs/libucp-<hash>.so`), where
//! `dlsym(RTLD_NEXT)` finds nothing and the shim must find the real functions through `dl_iterate_phdr`.
//!
//! Each fault site as NIXL sees it. NIXL's Python API never hands back "ERR": its bindings raise for every error
//! status, so a failed transfer is an exception from `transfer()` (the post, which also progresses the worker once)
//! or from `check_xfer_state()`; the script reports it as `"<call>:<exception>"`.
//!
//! Needs NIXL for the system `python3` (`pip install numpy; pip install --no-deps nixl nixl-cu12`; no GPU). Without it
//! these tests fail and say so: they do not skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use shm_proto::layout::Site;
use shm_proto::ring::RingCursor;
use shm_proto::{Access, SegmentMap};
use testkit::ShmDir;

const SCRIPT: &str = "shim-ucx/tests/nixl_transfer.py";

/// The interpreter that has NIXL: `sys.executable` of the system `python3`, so that a launcher script (pyenv's
/// shims are bash) does not run under the preload itself.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys, numpy, nixl._api; print(sys.executable)"])
            .env_remove("LD_PRELOAD")
            .output();
        match out {
            Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            Ok(out) => panic!(
                "NIXL is not importable by python3 ({}): {}\nRun the test command from README.md, which installs it \
                 (pip install numpy && pip install --no-deps nixl nixl-cu12).",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 3)
            ),
            Err(e) => panic!("cannot run python3 ({e}); run the test command from README.md, which sets up NIXL"),
        }
    })
}

/// One run of the script with `vars` on top of a clean environment (no inherited preload or FAULTLINE_*).
struct Run {
    pid: u32,
    output: Output,
    result: Value,
}

impl Run {
    fn field(&self, name: &str) -> &Value {
        &self.result[name]
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// What to show when an assertion fails.
    fn context(&self) -> String {
        format!(
            "status {}, result {}\n--- stderr (tail) ---\n{}",
            self.output.status,
            self.result,
            tail(&self.stderr(), 15)
        )
    }
}

fn run(preload: Option<&Path>, vars: &[(&str, &str)]) -> Run {
    run_with(preload, &[], vars)
}

/// [`run`] with arguments for the script (`--op write`, `--transfers N`, `--size BYTES`).
fn run_with(preload: Option<&Path>, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(python());
    cmd.arg(testkit::workspace_root().join(SCRIPT)).args(args).stdin(Stdio::null()).env_remove("LD_PRELOAD");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FAULTLINE_") {
            cmd.env_remove(name);
        }
    }
    // TCP with peer-failure handling (shared memory alone fails in NIXL); see the script for UCX_MODULES.
    cmd.env("UCX_TLS", "tcp,self").env("UCX_MODULES", "^efa").env("NIXL_LOG_LEVEL", "WARN");
    if let Some(shim) = preload {
        cmd.env("LD_PRELOAD", shim);
    }
    cmd.envs(vars.iter().copied());
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python3 starts");
    let pid = child.id();
    let output = child.wait_with_output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or("");
    let result = serde_json::from_str(last).unwrap_or(Value::Null);
    let run = Run { pid, output, result };
    assert!(
        run.output.status.success(),
        "the NIXL process did not exit cleanly (a signal or a nonzero exit is a crash or a timeout): {}",
        run.context()
    );
    assert!(run.result.is_object(), "no JSON result line on stdout ({stdout:?}): {}", run.context());
    run
}

fn assert_intact(run: &Run) {
    assert_eq!(run.field("result"), "ok", "the READ failed: {}", run.context());
    assert_eq!(run.field("intact"), true, "the READ completed but the data differs: {}", run.context());
}

/// Calls and faults per hook in the segment that process `pid` left in `shm`.
fn counters(shm: &ShmDir, pid: u32) -> BTreeMap<String, (u64, u64)> {
    let path = shm.segment("ucx", pid);
    let map = SegmentMap::attach(&path, Access::ReadOnly, Default::default())
        .unwrap_or_else(|e| panic!("attaching {} failed: {e:?}", path.display()));
    let seg = map.segment();
    seg.header.hook_names().into_iter().enumerate().map(|(i, name)| (name, seg.hook_totals(i))).collect()
}

fn get_nbx(shm: &ShmDir, pid: u32) -> (u64, u64) {
    hook_totals(shm, pid, "ucp_get_nbx")
}

/// `(calls, faults)` of one hook.
fn hook_totals(shm: &ShmDir, pid: u32, hook: &str) -> (u64, u64) {
    *counters(shm, pid).get(hook).unwrap_or_else(|| panic!("the shim's hook table lists {hook}"))
}

#[test]
fn nixl_read_without_preload() {
    assert_intact(&run(None, &[]));
}

#[test]
fn nixl_read_with_shim_loaded_but_disabled() {
    let shm = ShmDir::new();
    let dir = shm.path().to_str().expect("utf-8 temp dir");
    let run = run(Some(&testkit::artifacts().ucx_shim), &[("FAULTLINE_SHM_DIR", dir), ("FAULTLINE_LOG", "debug")]);
    assert_intact(&run);
    let stderr = run.stderr();
    assert!(stderr.contains("ucx shim ready"), "the shim was loaded: {}", run.context());
    // Never enabled, nothing recorded, nobody changed it: the process leaves no segment behind.
    assert!(stderr.contains("unused segment removed at exit"), "{}", run.context());
    assert!(!shm.segment("ucx", run.pid).exists());
}

#[test]
fn nixl_read_with_get_armed_at_zero_percent_passes_through() {
    let shm = ShmDir::new();
    let dir = shm.path().to_str().expect("utf-8 temp dir");
    let vars = [
        ("FAULTLINE_SHM_DIR", dir),
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "random"),
        ("FAULTLINE_PROBABILITY", "0"),
        ("FAULTLINE_HOOKS", "ucp_get_nbx"),
    ];
    let run = run(Some(&testkit::artifacts().ucx_shim), &vars);
    assert_intact(&run);
    let (calls, faults) = get_nbx(&shm, run.pid);
    assert!(calls > 0, "the READ did not go through the shim's ucp_get_nbx: {}", run.context());
    assert_eq!(faults, 0, "{}", run.context());
}

#[test]
fn nixl_read_fails_cleanly_when_get_is_faulted() {
    let shm = ShmDir::new();
    let dir = shm.path().to_str().expect("utf-8 temp dir");
    let vars = [
        ("FAULTLINE_SHM_DIR", dir),
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_STRATEGY", "random"),
        ("FAULTLINE_PROBABILITY", "100"),
        ("FAULTLINE_HOOKS", "ucp_get_nbx"),
        ("FAULTLINE_ERROR_CODES", "UCS_ERR_IO_ERROR"),
        ("FAULTLINE_LOG", "faults"),
    ];
    let run = run(Some(&testkit::artifacts().ucx_shim), &vars);
    assert_eq!(run.field("result"), "error", "NIXL did not report the injected fault: {}", run.context());
    assert!(
        run.stderr().contains("[FAULT] INJECTED: ucp_get_nbx UCS_ERR_IO_ERROR = -3"),
        "no fault log line for ucp_get_nbx: {}",
        run.context()
    );
    let (calls, faults) = get_nbx(&shm, run.pid);
    assert!(faults > 0 && faults <= calls, "ucp_get_nbx calls={calls} faults={faults}: {}", run.context());
}

/// The variables of an armed, recording shim: every call of `hook` faulted with UCS_ERR_IO_ERROR at `site`, unless
/// `extra` (appended, so it wins) says otherwise.
fn armed<'a>(dir: &'a str, site: &'a str, hook: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("FAULTLINE_SHM_DIR", dir),
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_SITE", site),
        ("FAULTLINE_STRATEGY", "random"),
        ("FAULTLINE_PROBABILITY", "100"),
        ("FAULTLINE_HOOKS", hook),
        ("FAULTLINE_ERROR_CODES", "UCS_ERR_IO_ERROR"),
        ("FAULTLINE_RECORD", "1"),
    ];
    vars.extend_from_slice(extra);
    vars
}

/// The sites of the faults recorded for `hook` in process `pid`'s segment.
fn recorded_sites(shm: &ShmDir, pid: u32, hook: &str) -> Vec<Option<Site>> {
    let path = shm.segment("ucx", pid);
    let map = SegmentMap::attach(&path, Access::ReadOnly, Default::default())
        .unwrap_or_else(|e| panic!("attaching {} failed: {e:?}", path.display()));
    let seg = map.segment();
    let index = seg.header.hook_names().iter().position(|h| h == hook).unwrap_or_else(|| panic!("no hook {hook}"));
    let mut sites = Vec::new();
    RingCursor::oldest(&seg.ring).drain(&seg.ring, true, |record| {
        if usize::from(record.hook) == index && record.injected {
            sites.push(record.site);
        }
    });
    sites
}

/// The script's `failures`: `"<call>:<kind>"` → count.
fn failures(run: &Run) -> BTreeMap<String, u64> {
    let object = run.field("failures").as_object().unwrap_or_else(|| panic!("no failures: {}", run.context()));
    object.iter().map(|(k, v)| (k.clone(), v.as_u64().expect("a count"))).collect()
}

fn count(run: &Run, name: &str) -> u64 {
    run.field(name).as_u64().unwrap_or_else(|| panic!("no count {name}: {}", run.context()))
}

/// `completion`: every WRITE is really posted and lands, and NIXL is told through the request's completion: an
/// exception from `check_xfer_state()` (or from `transfer()` when the put and its flush finish within the one
/// progress call NIXL makes right after posting: which one is a race, so only "at least one from check" is asked,
/// which ten transfers make certain in practice). The old shim (no sites) fails them at the call: nothing lands.
#[test]
fn nixl_write_with_put_faulted_at_completion_is_reported_by_check_xfer_state_after_the_data_landed() {
    const N: u64 = 10;
    let shm = ShmDir::new();
    let dir = shm.path().to_str().expect("utf-8 temp dir");
    let args = ["--op", "write", "--transfers", "10"];
    let run = run_with(Some(&testkit::artifacts().ucx_shim), &args, &armed(dir, "completion", "ucp_put_nbx", &[]));
    assert_eq!(count(&run, "failed"), N, "every WRITE fails: {}", run.context());
    let failures = failures(&run);
    let from_check = failures.get("check:nixlBackendError").copied().unwrap_or(0);
    let from_transfer = failures.get("transfer:nixlBackendError").copied().unwrap_or(0);
    assert_eq!(from_check + from_transfer, N, "NIXL_ERR_BACKEND, nothing else: {}", run.context());
    assert!(from_check > 0, "transfer() returned and check_xfer_state() raised, at least once: {}", run.context());
    assert_eq!(count(&run, "landed_at_error"), N, "the faulted puts were really posted: {}", run.context());
    assert_eq!(hook_totals(&shm, run.pid, "ucp_put_nbx"), (N, N), "{}", run.context());
    assert_eq!(recorded_sites(&shm, run.pid, "ucp_put_nbx"), vec![Some(Site::Completion); N as usize]);
    // NIXL itself leaks each request here: its status() drops a request that failed while the flush after it
    // succeeded (neither freed nor kept), so UCX warns "was not returned to mpool" at exit. Not asserted on.
}

/// `endpoint`: the faulted put's endpoint fails like a dead peer; NIXL's error handler marks the connection
/// disconnected, the transfer fails with nixlRemoteDisconnectError, and so does every later one (at the post), though
/// only one fault is injected. The process lives on.
#[test]
fn nixl_write_with_put_faulted_at_the_endpoint_fails_as_a_disconnected_peer() {
    let shm = ShmDir::new();
    let dir = shm.path().to_str().expect("utf-8 temp dir");
    let args = ["--op", "write", "--transfers", "3"];
    let vars = armed(dir, "endpoint", "ucp_put_nbx", &[("FAULTLINE_LIMIT", "1")]);
    let run = run_with(Some(&testkit::artifacts().ucx_shim), &args, &vars);
    assert_eq!(count(&run, "failed"), 3, "{}", run.context());
    let failures = failures(&run);
    let disconnected = failures.get("check:nixlRemoteDisconnectError").copied().unwrap_or(0)
        + failures.get("transfer:nixlRemoteDisconnectError").copied().unwrap_or(0);
    assert_eq!(disconnected, 3, "every failure is NIXL_ERR_REMOTE_DISCONNECT: {}", run.context());
    assert!(
        failures.get("transfer:nixlRemoteDisconnectError") >= Some(&2),
        "later WRITEs fail at the post: {}",
        run.context()
    );
    // NIXL posts nothing on a connection its error handler marked failed: the one put, faulted.
    assert_eq!(hook_totals(&shm, run.pid, "ucp_put_nbx"), (1, 1), "{}", run.context());
    assert_eq!(recorded_sites(&shm, run.pid, "ucp_put_nbx"), vec![Some(Site::Endpoint)], "{}", run.context());
}

/// The corruption: 100 WRITEs from one reused buffer, some of their flushes (`ucp_ep_flush_nbx`, 7 %)
/// faulted; on a failure the source is overwritten with the next pattern at once. In every site, no transfer NIXL
/// reports DONE may hold other bytes than its source held when it was posted, and no failure may be reported
/// while the WRITE's bytes are still in flight (the source could not be reused safely then). The old shim
/// reported a faulted flush at once, with the puts before it still on the wire: on this loopback no DONE transfer
/// came out corrupt (one TCP stream per endpoint: the next WRITE's put lands after the stale one and its flush waits
/// for both), but most failures were told with their put in flight (2 to 5 of 9 had landed), which is what breaks
/// a reused source.
#[test]
fn nixl_writes_with_faulted_flushes_never_report_done_for_corrupt_data_in_every_site() {
    const N: u64 = 100;
    for (site, recorded) in [("post", Site::Post), ("completion", Site::Completion), ("endpoint", Site::Endpoint)] {
        let shm = ShmDir::new();
        let dir = shm.path().to_str().expect("utf-8 temp dir");
        let args = ["--op", "write", "--transfers", "100", "--size", "1048576"];
        let vars = armed(dir, site, "ucp_ep_flush_nbx", &[("FAULTLINE_PROBABILITY", "7")]);
        let run = run_with(Some(&testkit::artifacts().ucx_shim), &args, &vars);
        assert_eq!(run.field("result"), "ok", "{site}: {}", run.context());
        assert_eq!(count(&run, "corrupt"), 0, "{site}: DONE with corrupt data: {}", run.context());
        let failed = count(&run, "failed");
        assert!(failed > 0 && count(&run, "done") > 0, "{site}: the faults hit some transfers: {}", run.context());
        let failures = failures(&run);
        if site == "endpoint" {
            // The first faulted flush kills the endpoint: that WRITE had landed, every later one fails at the post.
            let first = count(&run, "first_failure_at");
            assert_eq!(failed, N - first, "{site}: every WRITE after the first failure fails: {}", run.context());
            assert!(failures.keys().all(|k| k.ends_with(":nixlRemoteDisconnectError")), "{site}: {}", run.context());
            assert_eq!(
                count(&run, "landed_at_error"),
                1,
                "{site}: the flush failed before the put landed: {}",
                run.context()
            );
        } else {
            assert!(failures.keys().all(|k| k.ends_with(":nixlBackendError")), "{site}: {}", run.context());
            assert_eq!(
                count(&run, "landed_at_error"),
                failed,
                "{site}: a failure told with a put in flight: {}",
                run.context()
            );
        }
        let (_, faults) = hook_totals(&shm, run.pid, "ucp_ep_flush_nbx");
        let sites = recorded_sites(&shm, run.pid, "ucp_ep_flush_nbx");
        assert!(faults > 0 && sites == vec![Some(recorded); faults as usize], "{site}: {sites:?}: {}", run.context());
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
