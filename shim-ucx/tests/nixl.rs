//! The shim in a real NIXL process: one DRAM READ between two NIXL agents (`tests/nixl_transfer.py`) over the UCX copy
//! that the NIXL wheel bundles and opens RTLD_LOCAL (`nixl_cu12.libs/libucp-<hash>.so`), where `dlsym(RTLD_NEXT)`
//! finds nothing and the shim must find the real functions through `dl_iterate_phdr`.
//!
//! Needs NIXL for the system `python3` (`pip install numpy; pip install --no-deps nixl nixl-cu12`; no GPU). Without it
//! these tests fail and say so: they do not skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
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
    let mut cmd = Command::new(python());
    cmd.arg(testkit::workspace_root().join(SCRIPT)).stdin(Stdio::null()).env_remove("LD_PRELOAD");
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
    *counters(shm, pid).get("ucp_get_nbx").expect("the shim's hook table lists ucp_get_nbx")
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

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
