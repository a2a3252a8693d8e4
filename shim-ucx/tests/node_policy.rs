//! The UCX node policy file (`FAULTLINE_UCX_POLICY_FILE`, written by `faultline node arm --kind ucx`): a process
//! started while it is armed fails its endpoints from its first armed call, as on a dead NIC, and a missing file is
//! a node that is not armed. `tests/c/ucx_sites.c` against Debian's real UCX prints what the application sees.

use std::io::Write;
use std::process::{Output, Stdio};

use shm_proto::node_policy;
use testkit::ShmDir;

/// Runs `ucx_sites --stdin` with `script` under the shim, the policy file `policy` named and nothing else
/// configured (no `FAULTLINE_ENABLED`): what it printed, and how it ended.
fn run_with_policy(shm: &ShmDir, policy: &std::path::Path, script: &str) -> (Vec<String>, Output) {
    let program = testkit::c_program("shim-ucx/tests/c/ucx_sites.c", &["-lucp", "-lucs"]);
    let file = policy.to_str().unwrap();
    let env = [(node_policy::UCX_POLICY_FILE_VAR, file), ("FAULTLINE_RECORD", "1")];
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, &program, &["--stdin"], &env);
    // Peer error handling needs a transport that reports peer failures (UCX 1.13: not self / shared memory).
    command.env("UCX_TLS", "tcp").env("UCX_WARN_UNUSED_ENV_VARS", "n");
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the program starts");
    child.stdin.take().expect("piped").write_all(script.as_bytes()).expect("the program reads its script");
    let output = child.wait_with_output().expect("the program runs");
    let lines = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    (lines, output)
}

const SCRIPT: &str = "put A\nprogress\nput A\nget A\nclose A force\ncreate A\nput A\nprogress\nquit\n";

#[test]
fn an_armed_node_fails_a_new_process_at_the_endpoint_from_its_first_call() {
    let shm = ShmDir::new();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("ucx.policy");
    std::fs::write(&policy, node_policy::render_ucx(-80, "fl-000000000042", None)).unwrap();
    let (lines, output) = run_with_policy(&shm, &policy, SCRIPT);
    let text = lines.join("\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}\n{stderr}");
    // Its endpoints were created failing, as an unreachable peer's: the first put fails with the node's code (at
    // the call, or through its request), each endpoint's error handler runs once, and every later operation on A
    // fails at the call.
    let fails = |i: u32| {
        let (post, cb) = (format!("POST put {i} ret=err:-80"), format!("CB put {i} status=-80 "));
        lines.iter().position(|l| *l == post || l.starts_with(&cb))
    };
    assert!(fails(0).is_some(), "the first armed call fails:\n{text}");
    let close = lines.iter().position(|l| l == "CLOSE A 0").unwrap_or_else(|| panic!("A closes:\n{text}"));
    let handlers = |ep: &str, range: std::ops::Range<usize>| {
        lines[range].iter().filter(|l| l.starts_with(&format!("EPERR {ep} -80 count=1"))).count()
    };
    assert_eq!(handlers("A", 0..close), 1, "A's handler runs exactly once:\n{text}");
    assert_eq!(handlers("B", 0..lines.len()), 1, "B was created failing too:\n{text}");
    for (op, i) in [("put", 1), ("get", 0)] {
        assert!(text.contains(&format!("POST {op} {i} ret=err:-80")), "{op} {i} on the failed endpoint:\n{text}");
    }
    // A new endpoint fails too while the node is armed: a restarted pod cannot reach its peers.
    assert!(text.contains("CREATE A 0"), "{text}");
    assert!(fails(2).is_some_and(|at| at > close), "the new endpoint fails:\n{text}");
    assert_eq!(handlers("A", close..lines.len()), 1, "{text}");
    assert!(!stderr.contains("was not returned to mpool"), "a request leaked:\n{stderr}");
    // The shim's own account: started enabled, at the endpoint site, with the node's code.
    let found: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let map = shm_proto::SegmentMap::attach(&found[0], shm_proto::Access::ReadOnly, Default::default()).unwrap();
    let strategy = map.segment().control.snapshot().expect("a consistent strategy");
    assert!(strategy.enabled, "enabled by the policy file alone");
    assert_eq!(strategy.site, shm_proto::layout::Site::Endpoint);
    assert_eq!(strategy.pool, [-80]);
    let hooks = map.segment().header.hook_names();
    let armed: Vec<&str> =
        hooks.iter().enumerate().filter(|(i, _)| strategy.is_armed(*i)).map(|(_, h)| h.as_str()).collect();
    assert_eq!(armed.join(","), node_policy::UCX_POLICY_HOOKS, "closing an endpoint and mapping memory still work");
}

#[test]
fn without_the_file_the_process_is_not_armed() {
    let shm = ShmDir::new();
    let dir = tempfile::tempdir().unwrap();
    let (lines, output) = run_with_policy(&shm, &dir.path().join("ucx.policy"), SCRIPT);
    let text = lines.join("\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}\n{stderr}");
    assert!(!text.contains("err:") && !text.contains("EPERR"), "nothing fails:\n{text}");
    assert!(text.contains("DATA get 0 ok"), "{text}");
    assert!(!stderr.contains("faultline"), "a missing file is said nowhere: {stderr}");
}
