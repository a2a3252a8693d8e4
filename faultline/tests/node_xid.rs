//! `faultline node xid` against the real kernel log of this machine (root can write and read `/dev/kmsg` here):
//! the line lands, matches NVSentinel's XID pattern both as written and as journald stores it, survives 30 writes
//! in a row (the kernel rate-limits per open file), and bad requests write nothing. PCI resolution is tested
//! against a fixture copy of `/proc/driver/nvidia`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::node::{self, gpus, journald_view, kmsg};
use regex::Regex;
use serde_json::Value;

/// NVSentinel's XID pattern (syslog-health-monitor), as the issue quotes it.
const NVSENTINEL_XID: &str = r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)(?:, pid=(\d+))?(?:, name=([^,]+))?";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-driver-nvidia")
}

fn is_root() -> bool {
    faultline::targets::running_as_root()
}

fn faultline(args: &[&str]) -> Output {
    Command::new(&testkit::artifacts().faultline).args(args).output().expect("faultline runs")
}

fn ok_json(args: &[&str]) -> Value {
    let output = faultline(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "faultline {args:?}: {stderr}");
    serde_json::from_slice(&output.stdout).expect("node xid prints JSON")
}

fn fails(args: &[&str], code: i32) -> String {
    let output = faultline(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "faultline {args:?}: {stderr}");
    stderr
}

/// A reader of the real kernel log positioned at its end.
fn kernel_log() -> kmsg::Reader {
    assert!(is_root(), "this test writes and reads /dev/kmsg and needs root (CI runs as root)");
    kmsg::Reader::open_at_end(Path::new(kmsg::DEV_KMSG)).expect("/dev/kmsg is readable")
}

#[test]
fn the_line_lands_in_the_kernel_log_and_matches_nvsentinel_raw_and_through_journald() {
    let mut log = kernel_log();
    let report = ok_json(&[
        "node",
        "xid",
        "--xid",
        "79",
        "--gpu",
        "0",
        "--pci",
        "0000:3b:00.0",
        "--pid",
        "4242",
        "--name",
        "python3",
    ]);
    assert_eq!(report["confirmed"], true, "{report}");
    assert_eq!((report["xid"].as_u64(), report["severity"].as_str()), (Some(79), Some("critical")));
    assert_eq!((report["pci"].as_str(), report["pci_source"].as_str()), (Some("0000:3b:00.0"), Some("--pci")));
    let fault_id = report["fault_id"].as_str().unwrap().to_string();

    // Read it back ourselves, independently of the command's own confirmation.
    let record = log
        .find(&format!("{}{fault_id}", node::FAULT_MARKER), testkit::WATCHDOG)
        .unwrap()
        .expect("the record is in the kernel log");
    assert_eq!(record.text, report["line"].as_str().unwrap());
    assert_eq!(Some(u64::from(record.priority)), report["kmsg_priority"].as_u64());
    assert_eq!((record.facility(), record.level()), (1, 3), "a userspace <3> record: facility user, level err");

    let pattern = Regex::new(NVSENTINEL_XID).unwrap();
    let check = |text: &str| {
        let captures = pattern.captures(text).unwrap_or_else(|| panic!("NVSentinel's pattern misses {text:?}"));
        let groups: Vec<Option<&str>> = (1..=4).map(|i| captures.get(i).map(|m| m.as_str())).collect();
        assert_eq!(groups, [Some("0000:3b:00"), Some("79"), Some("4242"), Some("python3")], "{text}");
    };
    check(&record.text);
    // journald parses a non-kernel-facility kmsg record's leading `WORD:` as the syslog identifier and strips it.
    let (identifier, message) = journald_view(&record.text);
    assert_eq!(identifier.as_deref(), Some("kernel"), "stored under the identifier a driver line has");
    assert!(message.starts_with("NVRM: Xid (PCI:"), "{message}");
    check(&message);
    // Why the `kernel: ` prefix: a line starting with `NVRM:` would lose it to journald and no longer match.
    let naive = record.text.strip_prefix("kernel: ").unwrap();
    assert!(!pattern.is_match(&journald_view(naive).1), "a bare NVRM: line does not survive journald");
}

#[test]
fn thirty_writes_in_a_row_all_land() {
    let mut log = kernel_log();
    // Thirty separate commands, as a test script would run them.
    let mut ids = Vec::new();
    for i in 0..30 {
        let fault_id = format!("fl-burst-{}-{i}", std::process::id());
        let report = ok_json(&["node", "xid", "--xid", "48", "--pci", "0000:3b:00.0", "--fault-id", &fault_id]);
        assert_eq!(report["confirmed"], true);
        ids.push(fault_id);
    }
    // And thirty records from one process, as fast as it can write them (one open per record).
    for i in 0..30 {
        let fault_id = format!("fl-fast-{}-{i}", std::process::id());
        let line = format!("kernel: NVRM: Xid (PCI:0000:3b:00): 94, faultline burst {}{fault_id}", node::FAULT_MARKER);
        kmsg::write_record(Path::new(kmsg::DEV_KMSG), node::LEVEL, &line).unwrap();
        ids.push(fault_id);
    }
    let mut seen = Vec::new();
    testkit::wait_until("all 60 records are in the kernel log", || {
        seen.extend(log.read_available().unwrap().into_iter().map(|r| r.text));
        ids.iter().all(|id| seen.iter().any(|text| text.ends_with(&format!("{}{id}", node::FAULT_MARKER))))
    });
    assert!(!seen.iter().any(|text| text.contains("callbacks suppressed") && text.contains("faultline")), "{seen:?}");
}

#[test]
fn pci_addresses_resolve_from_the_driver_s_proc_tree() {
    let gpus = gpus::list(&fixture()).unwrap();
    let summary: Vec<(u32, &str)> = gpus.iter().map(|g| (g.minor, g.pci.as_str())).collect();
    assert_eq!(summary, [(0, "0000:3b:00.0"), (1, "0000:1a:00.0"), (7, "0000:d8:00.0")]);
    assert_eq!(gpus[1].model.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(gpus[1].uuid.as_deref(), Some("GPU-3f5a6e2c-0000-4000-8000-000000000001"));
    assert_eq!(gpus::resolve(&fixture(), 7).unwrap().pci, "0000:d8:00.0");

    let proc = fixture().display().to_string();
    let dry = |gpu: &str, extra: &[&str]| {
        let mut args = vec!["node", "xid", "--xid", "79", "--gpu", gpu, "--nvidia-proc", &proc, "--dry-run"];
        args.extend(extra);
        faultline(&args)
    };
    let report: Value = serde_json::from_slice(&dry("1", &[]).stdout).unwrap();
    assert_eq!((report["pci"].as_str(), report["pci_source"].as_str()), (Some("0000:1a:00.0"), Some("driver")));
    assert!(report["line"].as_str().unwrap().contains("NVRM: Xid (PCI:0000:1a:00): 79, "), "{report}");
    // --pci that agrees with the driver is fine; one that disagrees is refused.
    assert_eq!(dry("0", &["--pci", "00000000:3B:00.0"]).status.code(), Some(0));
    let mismatch = dry("0", &["--pci", "0000:1a:00.0"]);
    assert_eq!(mismatch.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("the driver says GPU 0 is at 0000:3b:00.0"));
    // An unknown GPU names the ones there are.
    let missing = dry("5", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no GPU 5 in"), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("[0, 1, 7]"), "{missing:?}");
    // No driver at all: --pci is the fallback, and without it the error says so.
    let nowhere = "/nonexistent/proc/driver/nvidia";
    let stderr = fails(&["node", "xid", "--xid", "79", "--nvidia-proc", nowhere, "--dry-run"], 2);
    assert!(stderr.contains("give the GPU's PCI address with --pci"), "{stderr}");
    let report = ok_json(&["node", "xid", "--xid", "79", "--nvidia-proc", nowhere, "--pci", "3b:00.0", "--dry-run"]);
    assert_eq!(report["pci"], "0000:3b:00.0");
}

#[test]
fn a_dry_run_writes_nothing() {
    let mut log = kernel_log();
    let fault_id = format!("fl-dry-{}", std::process::id());
    let report =
        ok_json(&["node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--fault-id", &fault_id, "--dry-run"]);
    assert_eq!((report["dry_run"].as_bool(), report["confirmed"].as_bool()), (Some(true), Some(false)));
    // A marker written after the dry run bounds the search: everything before it has been read.
    let marker = format!("fl-dry-marker-{}", std::process::id());
    ok_json(&["node", "xid", "--xid", "13", "--pci", "0000:3b:00.0", "--fault-id", &marker]);
    let mut seen = Vec::new();
    testkit::wait_until("the marker record is read", || {
        seen.extend(log.read_available().unwrap().into_iter().map(|r| r.text));
        seen.iter().any(|text| text.contains(&marker))
    });
    assert!(!seen.iter().any(|text| text.contains(&fault_id)), "the dry run wrote to the kernel log: {seen:?}");
}

#[test]
fn bad_requests_are_refused_with_exit_2_and_write_nothing() {
    let mut log = kernel_log();
    let id = |case: &str| format!("fl-bad-{case}-{}", std::process::id());
    let stderr = fails(&["node", "xid", "--xid", "7", "--pci", "0000:3b:00.0", "--fault-id", &id("unknown")], 2);
    assert!(stderr.contains("XID 7 is not in faultline's catalog") && stderr.contains("--force"), "{stderr}");
    let stderr =
        fails(&["node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--name", "a,b", "--fault-id", &id("name")], 2);
    assert!(stderr.contains("--name `a,b`"), "{stderr}");
    let stderr = fails(&["node", "xid", "--xid", "79", "--pci", "3b:0g.0", "--fault-id", &id("pci")], 2);
    assert!(stderr.contains("`3b:0g.0` is not a PCI address"), "{stderr}");
    fails(&["node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--pid", "1", "--pid", "2"], 2);
    fails(&["--read-only", "node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--fault-id", &id("ro")], 2);

    // --force accepts an XID outside the catalog.
    let forced = id("forced");
    let report = ok_json(&["node", "xid", "--xid", "7", "--pci", "0000:3b:00.0", "--force", "--fault-id", &forced]);
    assert_eq!((report["severity"].as_str(), report["confirmed"].as_bool()), (Some("unknown"), Some(true)));

    let mut seen = Vec::new();
    testkit::wait_until("the forced record is read", || {
        seen.extend(log.read_available().unwrap().into_iter().map(|r| r.text));
        seen.iter().any(|text| text.contains(&forced))
    });
    for case in ["unknown", "name", "pci", "ro"] {
        assert!(!seen.iter().any(|text| text.contains(&id(case))), "{case} wrote to the kernel log");
    }
}

#[test]
fn the_catalog_lists_every_xid_with_name_text_and_severity() {
    let catalog = ok_json(&["node", "xid", "--list"]);
    let xids = catalog["xids"].as_array().unwrap();
    let numbers: Vec<u64> = xids.iter().map(|x| x["xid"].as_u64().unwrap()).collect();
    for wanted in [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120, 140] {
        assert!(numbers.contains(&wanted), "{wanted} missing");
    }
    assert!(xids.iter().all(|x| x["name"].is_string() && x["message"].is_string() && x["severity"].is_string()));
}
