//! The shim in a real ucxx process: one `tag_send` between two endpoints of one worker (`tests/ucxx_tag.py`, the
//! low-level `ucxx._lib.libucxx` API) over the UCX of the libucx-cu12 wheel. ucxx wraps each UCX request in a C++
//! request object that its send callback completes; a callback run inside the posting call (before ucxx has taken
//! the request) leaves that request unreleased, which UCX reports at `ucp_worker_destroy` ("was not returned to
//! mpool", on stdout, where UCX logs by default): the script destroys its worker before it exits, with UCX's debug log
//! on to show that it did.
//!
//! Needs ucxx for the system `python3` (`pip install ucxx-cu12`: host memory only, no GPU or CUDA driver needed;
//! `scripts/install-deps.sh --test` installs it). Without it these tests fail and say so: they do not skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use shm_proto::layout::Site;
use shm_proto::ring::RingCursor;
use shm_proto::{Access, SegmentMap};
use testkit::ShmDir;

const SCRIPT: &str = "shim-ucx/tests/ucxx_tag.py";

/// The interpreter that has ucxx: `sys.executable` of the system `python3` (a launcher script must not run under
/// the preload itself).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys, numpy, ucxx._lib.libucxx; print(sys.executable)"])
            .env_remove("LD_PRELOAD")
            .output();
        match out {
            Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            Ok(out) => panic!(
                "ucxx is not importable by python3 ({}): {}\nRun scripts/install-deps.sh --test, which installs it \
                 (pip install ucxx-cu12).",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 3)
            ),
            Err(e) => panic!("cannot run python3 ({e}); run scripts/install-deps.sh --test, which sets up ucxx"),
        }
    })
}

struct Run {
    pid: u32,
    output: Output,
    result: Value,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// What to show when an assertion fails: the status, the result, the ends of stdout (UCX's log and the result
    /// line) and of stderr (the shim's log, Python's traceback).
    fn context(&self) -> String {
        format!(
            "status {}, result {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.output.status,
            self.result,
            tail(&String::from_utf8_lossy(&self.output.stdout), 10),
            tail(&self.stderr(), 15)
        )
    }
}

/// Runs the script under the shim, its third `tag_send` (after the wireup's two) faulted with UCS_ERR_IO_ERROR (-3)
/// at `site`; checks that the process got through, destroyed its worker, and that UCX found no leaked request.
fn run(shm: &ShmDir, site: &str) -> Run {
    let env = [
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_SITE", site),
        ("FAULTLINE_HOOKS", "ucp_tag_send_nbx"),
        ("FAULTLINE_PROBABILITY", "100"),
        ("FAULTLINE_SKIP", "2"), // the wireup's two sends
        ("FAULTLINE_ERROR_CODES", "-3"),
        ("FAULTLINE_RECORD", "1"),
    ];
    let script = testkit::workspace_root().join(SCRIPT);
    let script = script.to_str().expect("utf-8 path");
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, python(), &[script], &env);
    // The debug log shows the worker's destruction, where UCX checks for leaked requests.
    command.env("UCX_TLS", "tcp,self").env("UCX_LOG_LEVEL", "debug").env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python3 starts");
    let pid = child.id();
    let output = child.wait_with_output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let result = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or(Value::Null);
    let run = Run { pid, output, result };
    assert!(run.output.status.success(), "the ucxx process did not exit cleanly: {}", run.context());
    assert!(run.result.is_object(), "no JSON result line on stdout: {}", run.context());
    // UCX logs to stdout unless told otherwise; the shim to stderr.
    let log = format!("{stdout}{}", run.stderr());
    assert!(log.contains("destroy worker"), "the worker was not destroyed, so nothing was checked: {}", run.context());
    assert!(!log.contains("was not returned to mpool"), "a request leaked: {}", run.context());
    run
}

/// `(calls, faults)` of `ucp_tag_send_nbx` and the sites of its recorded faults, from process `pid`'s segment.
fn tag_send_faults(shm: &ShmDir, pid: u32) -> ((u64, u64), Vec<Option<Site>>) {
    let path = shm.segment("ucx", pid);
    let map = SegmentMap::attach(&path, Access::ReadOnly, Default::default())
        .unwrap_or_else(|e| panic!("attaching {} failed: {e:?}", path.display()));
    let seg = map.segment();
    let index = seg.header.hook_names().iter().position(|h| h == "ucp_tag_send_nbx").expect("hook listed");
    let mut sites = Vec::new();
    RingCursor::oldest(&seg.ring).drain(&seg.ring, true, |record| {
        if usize::from(record.hook) == index && record.injected {
            sites.push(record.site);
        }
    });
    (seg.hook_totals(index), sites)
}

/// `completion`: the message is really sent (the receiver gets it intact), the send's request is still pending
/// when `tag_send` returns (its callback did not run inside the call, though UCX completed the send there), and
/// once complete it raises ucxx's exception for UCS_ERR_IO_ERROR; nothing leaks. A shim that ran the callback
/// inside the call fails here twice: ucxx leaks that request ("was not returned to mpool") and takes the send for
/// one that failed at the call.
#[test]
fn ucxx_tag_send_faulted_at_completion_raises_the_code_from_its_request_and_leaks_nothing() {
    let shm = ShmDir::new();
    let run = run(&shm, "completion");
    let r = &run.result;
    assert_eq!(r["send"], "UCXXIOError", "{}", run.context());
    assert!(r["message"].as_str().is_some_and(|m| m.contains("Input/output error")), "{}", run.context());
    assert_eq!(r["completed_at_call"], false, "the request completed inside tag_send: {}", run.context());
    assert_eq!(r["received"], true, "the message was really sent: {}", run.context());
    assert_eq!(tag_send_faults(&shm, run.pid), ((3, 1), vec![Some(Site::Completion)]), "{}", run.context());
}

/// `post`, for comparison: `ucp_tag_send_nbx` answers the code at the call, ucxx completes the request there with
/// it and raises the same exception; nothing is sent.
#[test]
fn ucxx_tag_send_faulted_at_the_post_raises_the_code_at_once_and_sends_nothing() {
    let shm = ShmDir::new();
    let run = run(&shm, "post");
    let r = &run.result;
    assert_eq!(r["send"], "UCXXIOError", "{}", run.context());
    assert!(r["message"].as_str().is_some_and(|m| m.contains("Input/output error")), "{}", run.context());
    assert_eq!(r["completed_at_call"], true, "{}", run.context());
    assert_eq!(r["received"], Value::Null, "{}", run.context());
    assert_eq!(tag_send_faults(&shm, run.pid), ((3, 1), vec![Some(Site::Post)]), "{}", run.context());
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
