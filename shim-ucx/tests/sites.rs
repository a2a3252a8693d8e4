//! Where a fault surfaces (`FAULTLINE_SITE`), against Debian's real UCX: `tests/c/ucx_sites.c` posts each kind
//! of operation with its own callback and `user_data`, waits for it, and prints what it saw (the call's return,
//! every callback, `ucp_request_check_status`, the endpoints' error handlers, whether data landed). UCX's own
//! request leak check at `ucp_worker_destroy` ("was not returned to mpool") must stay quiet in every run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use shm_proto::layout::Site;
use shm_proto::ring::RingCursor;
use shm_proto::{Access, SegmentMap};
use testkit::ShmDir;

const SITES: &str = "shim-ucx/tests/c/ucx_sites.c";
const POOL: [i32; 4] = [-3, -6, -20, -80];
const POOL_TEXT: &str = "-3,-6,-20,-80";

fn program() -> PathBuf {
    testkit::c_program(SITES, &["-lucp", "-lucs"])
}

/// A finished run: its lines, stderr, and the segment it left.
struct Run {
    output: Output,
    lines: Vec<String>,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The lines starting with `word`, split into words.
    fn words(&self, word: &str) -> Vec<Vec<String>> {
        self.lines
            .iter()
            .filter(|l| l.split(' ').next() == Some(word))
            .map(|l| l.split(' ').map(String::from).collect())
            .collect()
    }

    fn assert_clean(&self) {
        assert!(
            self.output.status.success(),
            "exit {:?}\n{}\n{}",
            self.output.status,
            self.lines.join("\n"),
            self.stderr()
        );
        assert!(!self.stderr().contains("was not returned to mpool"), "a request leaked:\n{}", self.stderr());
        for bad in ["TIMEOUT", "REQ_MISMATCH", "ERROR"] {
            assert!(!self.lines.iter().any(|l| l.starts_with(bad)), "{bad}:\n{}", self.lines.join("\n"));
        }
        assert!(
            !self.lines.iter().any(|l| l.starts_with("DATA") && l.ends_with("mismatch")),
            "{}",
            self.lines.join("\n")
        );
    }
}

/// Runs the program with `args` (and `script` on stdin, if any) under the shim with `env`.
fn run(shm: &ShmDir, args: &[&str], script: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, &program(), args, env);
    // Error handling mode "peer" needs a transport that reports peer failures (UCX 1.13: not self / shared memory).
    command.env("UCX_TLS", "tcp").env("UCX_WARN_UNUSED_ENV_VARS", "n");
    command.stdin(if script.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the program starts");
    if let Some(script) = script {
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(script.as_bytes()).expect("the program reads its script");
    }
    let output = child.wait_with_output().expect("the program runs");
    let lines = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    Run { output, lines }
}

fn env<'a>(site: &'a str, hooks: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("FAULTLINE_ENABLED", "1"),
        ("FAULTLINE_SITE", site),
        ("FAULTLINE_HOOKS", hooks),
        ("FAULTLINE_STRATEGY", "X"),
        ("FAULTLINE_ERROR_CODES", POOL_TEXT),
        ("FAULTLINE_RECORD", "1"),
    ]
}

/// The one segment a finished run left in `shm`.
fn only_segment(shm: &ShmDir) -> SegmentMap {
    let found: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    SegmentMap::attach(&found[0], Access::ReadOnly, Default::default()).expect("segment readable")
}

/// `(calls, faults)` of `hook`, and the sites of its recorded faults.
fn counted(shm: &ShmDir, hook: &str) -> ((u64, u64), Vec<Option<Site>>) {
    let map = only_segment(shm);
    let seg = map.segment();
    let index = seg.header.hook_names().iter().position(|h| h == hook).unwrap_or_else(|| panic!("no hook {hook}"));
    let mut sites = Vec::new();
    RingCursor::oldest(&seg.ring).drain(&seg.ring, true, |record| {
        if usize::from(record.hook) == index && record.injected {
            sites.push(record.site);
        }
    });
    (seg.hook_totals(index), sites)
}

/// Per post `i` of `op`: its return, its callbacks' statuses (with `ud_ok`/`req_ok` checked), its CHECK status;
/// and whether a callback line came before the post's return.
struct Posts {
    returned: BTreeMap<u64, String>,
    callbacks: BTreeMap<u64, Vec<i32>>,
    checked: BTreeMap<u64, i32>,
    callback_before_return: bool,
}

fn posts(run: &Run, op: &str) -> Posts {
    let mut p = Posts {
        returned: BTreeMap::new(),
        callbacks: BTreeMap::new(),
        checked: BTreeMap::new(),
        callback_before_return: false,
    };
    for line in &run.lines {
        let w: Vec<&str> = line.split(' ').collect();
        if w.len() < 3 || w[1] != op {
            continue;
        }
        let i: u64 = w[2].parse().unwrap();
        match w[0] {
            "POST" => {
                p.returned.insert(i, w[3].trim_start_matches("ret=").to_string());
            }
            "CB" => {
                assert!(line.contains("ud_ok=1") && line.contains("req_ok=1"), "{line}");
                if !p.returned.contains_key(&i) {
                    p.callback_before_return = true;
                }
                p.callbacks.entry(i).or_default().push(w[3].trim_start_matches("status=").parse().unwrap());
            }
            "CHECK" => {
                p.checked.insert(i, w[3].parse().unwrap());
            }
            _ => {}
        }
    }
    p
}

/// The ops of the program, the hook each one's fault is injected into, and the name its posts are printed under.
const OPS: [(&str, &str, &str); 10] = [
    ("put", "ucp_put_nbx", "put"),
    ("get", "ucp_get_nbx", "get"),
    ("atomic", "ucp_atomic_op_nbx", "atomic"),
    ("tag_send", "ucp_tag_send_nbx", "tag_send"),
    ("tag_recv", "ucp_tag_recv_nbx", "tag_recv"),
    ("am_send", "ucp_am_send_nbx", "am_send"),
    ("am_rndv", "ucp_am_recv_data_nbx", "am_recv_data"),
    ("stream", "ucp_stream_send_nbx", "stream_send"),
    ("flush", "ucp_ep_flush_nbx", "flush"),
    ("worker_flush", "ucp_worker_flush_nbx", "worker_flush"),
];

/// `completion`: every faulted call returns a request (never an error at the call), its callback runs exactly
/// once with the pool's codes in order and the caller's own user data, never inside the call, and
/// `ucp_request_check_status` says the same. Every call is counted as a fault and recorded at its site.
fn completion_reports_the_code_once(args: &[&str]) {
    const N: usize = 8;
    let n = N.to_string();
    for (op, hook, printed) in OPS {
        let shm = ShmDir::new();
        let mut full: Vec<&str> = vec!["--n", &n, "--ops", op];
        full.extend_from_slice(args);
        let run = run(&shm, &full, None, &env("completion", hook));
        run.assert_clean();
        let p = posts(&run, printed);
        let no_callback = args.contains(&"--no-callback");
        let freed_in_callback = args.contains(&"--free-in-cb");
        assert_eq!(p.returned.len(), N, "{op} {args:?}: {:?}", run.lines);
        for i in 0..N as u64 {
            let want = POOL[i as usize % POOL.len()];
            let ret = &p.returned[&i];
            assert!(ret == "req", "{op} {args:?} post {i}: returned {ret}, not a request");
            if no_callback {
                assert!(!p.callbacks.contains_key(&i), "{op}: a callback nobody gave");
            } else {
                assert_eq!(p.callbacks.get(&i), Some(&vec![want]), "{op} {args:?} post {i}: callbacks");
            }
            if !freed_in_callback {
                assert_eq!(p.checked.get(&i), Some(&want), "{op} {args:?} post {i}: check_status");
            }
        }
        if !args.contains(&"--user-no-imm") {
            assert!(!p.callback_before_return, "{op} {args:?}: a callback ran inside the call that posted it");
        }
        let ((calls, faults), sites) = counted(&shm, hook);
        assert_eq!((calls, faults), (N as u64, N as u64), "{op} {args:?}: counters");
        assert_eq!(sites, vec![Some(Site::Completion); N], "{op} {args:?}: recorded sites");
    }
}

#[test]
fn completion_reports_each_code_once_through_the_callers_callback_and_check_status() {
    completion_reports_the_code_once(&[]);
}

#[test]
fn completion_works_with_caller_provided_requests_and_without_a_callback() {
    completion_reports_the_code_once(&["--user-requests"]);
    completion_reports_the_code_once(&["--no-callback"]);
}

#[test]
fn completion_survives_a_free_inside_the_callback_and_an_asked_for_inline_completion() {
    completion_reports_the_code_once(&["--free-in-cb"]);
    completion_reports_the_code_once(&["--user-no-imm", "--user-requests"]);
}

#[test]
fn a_cancelled_receive_reports_the_cancellation_not_the_code() {
    let shm = ShmDir::new();
    let run = run(&shm, &["--n", "3", "--ops", "cancel_recv"], None, &env("completion", "ucp_tag_recv_nbx"));
    run.assert_clean();
    let p = posts(&run, "cancel_recv");
    assert_eq!(p.callbacks.values().cloned().collect::<Vec<_>>(), vec![vec![-16]; 3], "UCS_ERR_CANCELED, once each");
    assert_eq!(p.checked.values().copied().collect::<Vec<_>>(), vec![-16; 3]);
}

#[test]
fn the_endpoint_site_fails_one_endpoint_as_a_dead_peer_does() {
    let shm = ShmDir::new();
    // The second put on A is faulted (pattern OX, once); then A is used, B is used, A is closed and re-created.
    let script = "put A\nput A\nput B\nget B\nprogress\nput A\nflush A\nget A\nput B\nget B\nclose A force\ncreate A\nput A\nget A\nquit\n";
    let mut env = env("endpoint", "ucp_put_nbx");
    env.extend([("FAULTLINE_STRATEGY", "OX"), ("FAULTLINE_LIMIT", "1"), ("FAULTLINE_ERROR_CODES", "-3")]);
    let run = run(&shm, &["--stdin"], Some(script), &env);
    run.assert_clean();
    let text = run.lines.join("\n");
    // The faulted put gets a request whose callback reports the code, then A's handler runs once, from progress.
    let cb = run.lines.iter().position(|l| l.starts_with("CB put 1 status=-3")).expect(&text);
    let handler = run.words("EPERR");
    assert_eq!(handler.len(), 1, "the handler runs exactly once:\n{text}");
    assert_eq!(&handler[0][1..4], ["A", "-3", "count=1"], "{text}");
    assert!(handler[0].contains(&"in_progress=1".to_string()) && handler[0].contains(&"ep_ok=1".to_string()), "{text}");
    let eperr = run.lines.iter().position(|l| l.starts_with("EPERR")).unwrap();
    assert!(cb < eperr, "the failed operation completes before the handler, as UCX orders them:\n{text}");
    // Later operations on A fail at the call, the flush and a get included; B keeps working, data intact.
    for (op, i) in [("put", 3), ("flush", 0), ("get", 1)] {
        assert!(text.contains(&format!("POST {op} {i} ret=err:-3")), "{op} {i} on the failed endpoint:\n{text}");
    }
    for (op, i) in [("get", 0), ("get", 2)] {
        assert!(text.contains(&format!("DATA {op} {i} ok")), "{op} {i} on B:\n{text}");
    }
    assert!(!text.contains("POST put 2 ret=err") && !text.contains("POST put 4 ret=err"), "B is untouched:\n{text}");
    // A force close works, and a new endpoint to the same peer is healthy.
    assert!(text.contains("CLOSE A 0") && text.contains("CREATE A 0"), "{text}");
    assert!(text.contains("DATA get 3 ok"), "the re-created endpoint works:\n{text}");
    assert!(!text.contains("POST put 5 ret=err"), "{text}");
    // The shim counted the later operations on A as faults at the endpoint site.
    let ((_, faults), sites) = counted(&shm, "ucp_put_nbx");
    assert_eq!(faults, 2, "the faulted put and the put on the failed endpoint");
    assert_eq!(sites, vec![Some(Site::Endpoint); 2]);
}

#[test]
fn a_faulted_flush_is_told_only_after_the_operations_before_it_landed_in_every_site() {
    for site in ["post", "completion", "endpoint"] {
        let shm = ShmDir::new();
        let run =
            run(&shm, &["--stdin"], Some("putflush A 16 4096\nput B\nget B\nquit\n"), &env(site, "ucp_ep_flush_nbx"));
        run.assert_clean();
        let text = run.lines.join("\n");
        let flush = run.words("POST").into_iter().find(|w| w[1] == "flush").expect(&text);
        if site == "post" {
            // The error comes at the call: by then every put must have landed.
            assert_eq!(flush[3], "ret=err:-3", "{text}");
            assert!(text.contains("LANDED 16/16"), "{site}: puts still in flight when the flush failed:\n{text}");
        } else {
            // The application is told through the flush's completion, which comes after the puts'.
            assert_eq!(flush[3], "ret=req", "{text}");
            let cb = run.lines.iter().position(|l| l.starts_with("CB flush 0 status=-3")).expect(&text);
            let last_put = run.lines.iter().rposition(|l| l.starts_with("CB put") && l.contains("status=0")).unwrap();
            assert!(last_put < cb, "{site}: a put completed after the flush reported its failure:\n{text}");
        }
        assert!(text.contains("LANDED_AFTER 16/16"), "{text}");
        assert!(text.contains("DATA get 0 ok"), "{site}: B works:\n{text}");
    }
}

#[test]
fn without_faults_every_operation_completes_untouched() {
    let shm = ShmDir::new();
    let ops = OPS.iter().map(|(op, _, _)| *op).collect::<Vec<_>>().join(",");
    let run = run(&shm, &["--n", "3", "--ops", &ops], None, &[("FAULTLINE_SITE", "completion")]);
    run.assert_clean();
    assert!(run.words("CB").iter().all(|w| w[3] == "status=0"), "{}", run.lines.join("\n"));
    assert!(run.words("POST").iter().all(|w| !w[3].starts_with("ret=err")), "{}", run.lines.join("\n"));
}

#[test]
fn an_active_message_receive_faulted_at_the_call_gives_the_message_back() {
    // `ucp_am_recv_data_nbx` takes the descriptor over: failing it at the call used to keep the message in UCX,
    // so the rendezvous sender waited for ever (the program's 10 s bound) and UCX reported both leaked at exit.
    let shm = ShmDir::new();
    let run = run(&shm, &["--n", "2", "--ops", "am_rndv"], None, &env("post", "ucp_am_recv_data_nbx"));
    run.assert_clean();
    let receives = posts(&run, "am_recv_data");
    assert_eq!(receives.returned.values().cloned().collect::<Vec<_>>(), ["err:-3", "err:-6"], "{:?}", run.lines);
    let sends = posts(&run, "am_rndv");
    assert_eq!(sends.callbacks.values().cloned().collect::<Vec<_>>(), [vec![0], vec![0]], "the senders complete");
}

#[test]
fn the_site_is_read_per_fault_so_faultline_site_switches_a_live_process() {
    let shm = ShmDir::new();
    let mut command = testkit::shimmed(
        &testkit::artifacts().ucx_shim,
        &shm,
        &program(),
        &["--stdin"],
        &[
            ("FAULTLINE_ENABLED", "1"),
            ("FAULTLINE_HOOKS", "ucp_put_nbx"),
            ("FAULTLINE_STRATEGY", "X"),
            ("FAULTLINE_ERROR_CODES", "-3"),
        ],
    );
    command.env("UCX_TLS", "tcp").env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let mut program = testkit::Program::spawn(command);
    let pid = program.pid().to_string();
    let segment = shm.segment("ucx", program.pid());
    testkit::wait_until("the program's segment", || segment.exists());
    let step = |program: &mut testkit::Program, site: &str, line: &str| {
        let out = testkit::faultline(&shm, &["--pid", &pid, "site", site]);
        assert!(out.status.success(), "faultline site {site}: {}", String::from_utf8_lossy(&out.stderr));
        program.send(line);
        program.lines_until(|l| l == "DONE")
    };
    let post = step(&mut program, "post", "put A");
    assert!(post.iter().any(|l| l == "POST put 0 ret=err:-3"), "{post:?}");
    let completion = step(&mut program, "completion", "put A");
    assert!(completion.iter().any(|l| l == "POST put 1 ret=req"), "{completion:?}");
    assert!(completion.iter().any(|l| l.starts_with("CB put 1 status=-3 ")), "{completion:?}");
    let endpoint = step(&mut program, "endpoint", "put B\nprogress");
    // With nothing in flight on B the drain ends at once: the put fails at the call (else its request does).
    assert!(
        endpoint.iter().any(|l| l == "POST put 2 ret=err:-3" || l.starts_with("CB put 2 status=-3 ")),
        "{endpoint:?}"
    );
    let more = program.lines_until(|l| l == "DONE");
    let handlers: Vec<_> = endpoint.iter().chain(&more).filter(|l| l.starts_with("EPERR")).collect();
    assert_eq!(handlers.len(), 1, "{endpoint:?} {more:?}");
    assert!(handlers[0].starts_with("EPERR B -3 count=1"), "{handlers:?}");
    let status = testkit::faultline(&shm, &["--pid", &pid, "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json");
    assert_eq!(status["processes"][0]["site"], "endpoint", "{status}");
    program.send("quit");
    assert!(program.finish().success());
}

#[test]
fn the_other_request_queries_report_the_code_too() {
    // ucp_request_query (ucxx asks it of every request) and ucp_tag_recv_request_test answer as check_status does,
    // for real requests and for the shim's own (a flush with nothing to flush completes at the call).
    let shm = ShmDir::new();
    let hooks = "ucp_tag_recv_nbx,ucp_ep_flush_nbx,ucp_put_nbx";
    let run = run(&shm, &["--n", "4", "--ops", "tag_recv,flush,put", "--queries"], None, &env("completion", hooks));
    run.assert_clean();
    let checks = run.words("CHECK");
    let queries = run.words("QUERY");
    for check in &checks {
        let query = queries.iter().find(|q| q[1..3] == check[1..3]).expect("a QUERY after each CHECK");
        assert_eq!((query[3].as_str(), &query[4]), ("0", &check[3]), "{check:?} {query:?}");
    }
    // Every faulted op has its CHECK (its request); the unfaulted sends only when they did not complete inline.
    let faulted: Vec<&Vec<String>> = checks.iter().filter(|c| c[1] != "tag_send").collect();
    assert_eq!(faulted.len(), 4 * 3, "{:?}", run.lines);
    assert!(faulted.iter().all(|c| c[3] != "0"), "every faulted op reports its code: {faulted:?}");
    let tests = run.words("TEST");
    assert_eq!(tests.len(), 4, "{:?}", run.lines);
    for test in &tests {
        let check = checks.iter().find(|c| c[1..3] == test[1..3]).unwrap();
        assert_eq!(test[3], check[3], "{test:?}");
    }
}
