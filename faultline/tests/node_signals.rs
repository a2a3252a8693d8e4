//! Every kernel-log signal NVSentinel's syslog monitor reads, written by `faultline node …` through this machine's
//! real `/dev/kmsg` (root can write and read it here), read back, and matched with NVSentinel's own regular
//! expressions — on the record as `/dev/kmsg` returns it and on the `MESSAGE` journald makes of it (identifier
//! stripped, escapes undone). GPUs come from the `/proc/driver/nvidia` fixture, NVSwitches from the
//! `/proc/driver/nvidia-nvswitch` fixture, NICs and PCI IDs from a sysfs tree each test builds in a temporary
//! directory (removed when the test ends).

use std::path::Path;
use std::process::{Command, Output};

use faultline::node::{journald_view, kmsg, NicEvent, FAULT_MARKER};
use regex::Regex;
use serde_json::Value;

mod sysfs;

use sysfs::fake_sysfs;

/// The patterns, copied from NVIDIA/NVSentinel's Go source (health-monitors/syslog-health-monitor), as test data.
mod nvsentinel {
    /// `pkg/patterns/xid.go`, `XIDPattern` (the standard XID line; `pkg/xid/parser/csv.go` uses it; read from a
    /// fork's copy of that file, as the stored snapshot of NVIDIA's repository lacks it).
    pub const XID: &str =
        r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)(?:, pid=(\d+))?(?:, name=([^,]+))?(?:, Ch ([0-9a-fA-F]+))?";
    /// `pkg/xid/parser/csv.go`, `reXidNVL5Pattern` (XIDs 144–150 with subcode and IntrInfo).
    pub const XID_NVL5: &str = concat!(
        r"NVRM: Xid \(PCI:([^)]+)\): (\d+)(?:, pid=[^,]*)?(?:, name=[^,]*)?, ",
        r"(\w+)\s+(\w+)\s+(\w+)\s+(\w+)\s+Link\s+(-?\d+)\s+\((0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)"
    );
    /// `pkg/xid/types.go`, `reNvrmMap` (the driver's PCI → GPU UUID line).
    pub const NVRM_MAP: &str = r"NVRM: GPU at PCI:([0-9a-fA-F:.]+): (GPU-[0-9a-fA-F-]+)";
    /// `pkg/gpufallen/types.go`, `reGPUFallenPattern`.
    pub const GPU_FALLEN: &str =
        r"(?s)NVRM: The NVIDIA GPU ([0-9a-fA-F:.]+).*?fallen off the bus and is not responding to commands";
    /// `pkg/gpufallen/types.go`, `rePCIIDPattern`.
    pub const PCI_ID: &str = r"PCI ID: ([0-9a-fA-F:]+)";
    /// `pkg/common/common.go`, `XIDPattern`: a message with it belongs to the XID handler, not `gpufallen`.
    pub const HAS_XID: &str = r"\bXid\b";
    /// `pkg/sxid/types.go`, `reSXIDPattern`.
    pub const SXID: &str =
        r"nvidia-nvswitch(\d+): SXid \(PCI:([0-9a-fA-F:.]+)\): (\d+), (Fatal|Non-fatal), Link (\d+) (.+)";
    /// `pkg/nicdriver/config.go`, `efaPrefix`.
    const EFA: &str = r"\b(efa [0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-9a-fA-F]|infiniband (rdmap|efa_)\S*):";
    /// `pkg/nicdriver/bdf.go`, `reBDF`.
    pub const BDF: &str = r"\b([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-9a-fA-F])\b";
    /// `pkg/nicdriver/bdf.go`, `reIBDevice`.
    pub const IB_DEVICE: &str = r"\binfiniband ([A-Za-z0-9_.-]+):";

    /// `pkg/nicdriver/config.go`, `patternDefinitions`: (name, regular expression, fatal) of the single-line
    /// patterns this issue names.
    pub fn nic() -> Vec<(&'static str, String, bool)> {
        let efa = |rest: &str| format!("{EFA}{rest}");
        vec![
            ("cmd_exec_timeout", r"mlx5_core.*timeout\. Will cause a leak of a command resource".into(), true),
            ("health_poll_failed", r"mlx5_core.*device's health compromised.*reached miss count".into(), true),
            ("unrecoverable_err", r"mlx5_core.*unrecoverable hardware error".into(), true),
            (
                "netdev_watchdog",
                r"(NETDEV WATCHDOG.*mlx5_core|mlx5_core.*NETDEV WATCHDOG).*transmit queue.*timed out".into(),
                false,
            ),
            ("mlx5_tx_timeout_detected", r"mlx5_core.*TX timeout detected".into(), false),
            ("mlx5_rx_timeout_detected", r"mlx5_core.*RX timeout on channel".into(), false),
            ("port_module_high_temp", r"mlx5_core.*Port module event.*High Temperature".into(), false),
            ("module_unplugged", r"mlx5_core.*Port module event.*Cable unplugged".into(), false),
            (
                "efa_admin_cmd_timeout",
                efa(r".*(Wait for completion \(polling\) timeout|The device didn't send any completion for admin cmd)"),
                true,
            ),
            ("efa_admin_queue_closed", efa(r".*Admin queue is closed"), true),
            ("efa_admin_cmd_failed", efa(r".*Failed to (process|submit) command"), false),
            (
                "efa_device_reset_failed",
                efa(r".*(Reset indication didn't turn (on|off)|Device isn't ready, can't reset device)"),
                true,
            ),
            ("efa_device_not_ready", efa(r".*Device isn't ready, abort com init"), true),
        ]
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("NVSentinel's pattern compiles as a Rust regex")
}

fn nvidia_proc() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-driver-nvidia").display().to_string()
}

fn nvswitch_proc() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-driver-nvidia-nvswitch").display().to_string()
}

fn faultline(args: &[&str]) -> Output {
    Command::new(&testkit::artifacts().faultline).args(args).output().expect("faultline runs")
}

fn ok_json(args: &[&str]) -> Value {
    let output = faultline(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "faultline {args:?}: {stderr}");
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn fails(args: &[&str], code: i32) -> String {
    let output = faultline(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "faultline {args:?}: {stderr}");
    stderr
}

/// A reader of the real kernel log positioned at its end.
fn kernel_log() -> kmsg::Reader {
    assert!(faultline::targets::running_as_root(), "this test writes and reads /dev/kmsg and needs root");
    kmsg::Reader::open_at_end(Path::new(kmsg::DEV_KMSG)).expect("/dev/kmsg is readable")
}

/// The records carrying `fault_id`, read back ourselves (independently of the command's own confirmation).
fn records(log: &mut kmsg::Reader, fault_id: &str, count: usize) -> Vec<kmsg::Record> {
    let needle = format!("{FAULT_MARKER}{fault_id}");
    let found = log.find_all(&needle, count, testkit::WATCHDOG).expect("the kernel log reads");
    assert_eq!(found.len(), count, "{count} record(s) of {fault_id}: {found:?}");
    found
}

/// Both forms a monitor may read: the raw record, and journald's MESSAGE (stored under the identifier `kernel`).
fn both_forms(record: &kmsg::Record) -> [String; 2] {
    let (identifier, message) = journald_view(&record.text);
    assert_eq!(identifier.as_deref(), Some("kernel"), "stored under a driver line's identifier: {}", record.text);
    [record.text.clone(), message]
}

fn path(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

#[test]
fn the_uuid_line_comes_first_and_every_nvlink5_xid_matches_nvsentinel_s_nvl5_pattern() {
    let mut log = kernel_log();
    let proc = nvidia_proc();
    let standard = re(nvsentinel::XID);
    let nvl5 = re(nvsentinel::XID_NVL5);
    let map = re(nvsentinel::NVRM_MAP);
    for xid in 144..=150 {
        let xid_text = xid.to_string();
        let args = ["node", "xid", "--xid", &xid_text, "--gpu", "1", "--nvidia-proc", &proc, "--link", "9"];
        let report = ok_json(&args);
        assert_eq!((report["confirmed"].as_bool(), report["uuid_source"].as_str()), (Some(true), Some("driver")));
        let fault_id = report["fault_id"].as_str().unwrap();
        let [mapping, line] = <[kmsg::Record; 2]>::try_from(records(&mut log, fault_id, 2)).unwrap();
        assert!(mapping.seq < line.seq, "the mapping line is written first");
        assert_eq!(line.text, report["line"].as_str().unwrap());
        assert_eq!(mapping.text, report["mapping_line"].as_str().unwrap());
        for (map_text, xid_line) in both_forms(&mapping).into_iter().zip(both_forms(&line)) {
            let m = map.captures(&map_text).unwrap_or_else(|| panic!("reNvrmMap misses {map_text:?}"));
            assert_eq!(&m[2], "GPU-3f5a6e2c-0000-4000-8000-000000000001");
            let n = nvl5.captures(&xid_line).unwrap_or_else(|| panic!("reXidNVL5Pattern misses {xid_line:?}"));
            assert_eq!((&n[1], &n[2], &n[7]), ("0000:1a:00", xid_text.as_str(), "09"), "{xid_line}");
            assert_eq!(&n[3], report["nvl5"]["subcode"].as_str().unwrap());
            assert!(["Fatal", "Nonfatal"].contains(&&n[4]) && (&n[5], &n[6]) == ("XC0", "i0"), "{xid_line}");
            assert_eq!(
                u32::from_str_radix(&n[8][2..], 16).unwrap(),
                report["nvl5"]["intrinfo"].as_u64().unwrap() as u32
            );
            // NVSentinel keys its PCI → UUID map by the address without the function: the XID's address.
            assert_eq!(m[1].split('.').next(), Some(&n[1]));
            // The standard pattern sees the XID too (its number and address); the NVL5 one is tried first.
            assert_eq!(&standard.captures(&xid_line).unwrap()[2], xid_text.as_str());
        }
    }
    // Given fields: subcode, link, registers.
    let report = ok_json(&[
        "node",
        "xid",
        "--xid",
        "145",
        "--pci",
        "0000:3b:00.0",
        "--nvidia-proc",
        "/nonexistent",
        "--subcode",
        "RLW_SRC_TRACK",
        "--link",
        "17",
        "--intrinfo",
        "0x00000082",
        "--error-status",
        "64",
        "--uuid",
        "GPU-3f5a6e2c-0000-4000-8000-00000000abcd",
    ]);
    let line = report["line"].as_str().unwrap();
    assert!(line.contains("145, RLW_SRC_TRACK Fatal XC0 i0 Link 17 (0x00000082 0x00000040 0x00000000"), "{line}");
    assert_eq!(report["uuid_source"], "--uuid");
    let fault_id = report["fault_id"].as_str().unwrap();
    let found = records(&mut log, fault_id, 2);
    assert!(map.is_match(&found[0].text) && nvl5.is_match(&found[1].text));
}

#[test]
fn every_catalogue_xid_formats_a_line_nvsentinel_parses() {
    let proc = nvidia_proc();
    let catalog = ok_json(&["node", "xid", "--list"]);
    let standard = re(nvsentinel::XID);
    let nvl5 = re(nvsentinel::XID_NVL5);
    for entry in catalog["xids"].as_array().unwrap() {
        let xid = entry["xid"].as_u64().unwrap().to_string();
        assert!(entry["mnemonic"].as_str().is_some_and(|m| !m.is_empty()), "{entry}");
        let report = ok_json(&["node", "xid", "--xid", &xid, "--nvidia-proc", &proc, "--dry-run"]);
        let (_, message) = journald_view(report["line"].as_str().unwrap());
        let captures = standard.captures(&message).unwrap_or_else(|| panic!("XIDPattern misses {message:?}"));
        assert_eq!((&captures[1], &captures[2]), ("0000:3b:00", xid.as_str()));
        let nvlink5 = (144..=150).contains(&entry["xid"].as_u64().unwrap());
        assert_eq!(nvl5.is_match(&message), nvlink5, "only 144–150 are subcode lines: {message}");
        assert_eq!(report["uuid"], "GPU-3f5a6e2c-0000-4000-8000-000000000000", "the fixture's GPU 0");
    }
}

#[test]
fn the_fallen_off_message_is_one_record_that_matches_gpufallen_and_never_says_xid() {
    let mut log = kernel_log();
    let sysfs = fake_sysfs();
    let proc = nvidia_proc();
    let report = ok_json(&["node", "fallen-off", "--gpu", "1", "--nvidia-proc", &proc, "--sysfs", &path(&sysfs)]);
    assert_eq!((report["signal"].as_str(), report["fatal"].as_bool()), (Some("fallen-off"), Some(true)));
    assert_eq!(
        (report["pci"].as_str(), report["details"]["pci_id"].as_str()),
        (Some("0000:1a:00.0"), Some("10de:2330"))
    );
    assert_eq!(report["details"]["pci_id_source"], "sysfs");
    let fault_id = report["fault_id"].as_str().unwrap();
    let [record] = <[kmsg::Record; 1]>::try_from(records(&mut log, fault_id, 1)).unwrap();
    assert!(record.text.contains("0000:1a:00.0\\x0aNVRM: (PCI ID: 10de:2330)"), "one record, newlines escaped");
    assert_eq!((record.facility(), record.level()), (1, 3));
    let fallen = re(nvsentinel::GPU_FALLEN);
    let [raw, message] = both_forms(&record);
    assert_eq!(message.lines().count(), 3, "journald stores one entry with newlines: {message:?}");
    for text in [&raw, &message] {
        let captures = fallen.captures(text).unwrap_or_else(|| panic!("reGPUFallenPattern misses {text:?}"));
        assert_eq!(&captures[1], "0000:1a:00.0");
        assert_eq!(&re(nvsentinel::PCI_ID).captures(text).unwrap()[1], "10de:2330");
        assert!(!re(nvsentinel::HAS_XID).is_match(text) && !text.contains("Xid"), "{text}");
        assert!(!re(nvsentinel::XID).is_match(text));
    }
    // --pci-id stands in for sysfs; without either the error says what to give.
    let report = ok_json(&[
        "node",
        "fallen-off",
        "--pci",
        "0000:b3:00.0",
        "--pci-id",
        "10DE:26B5",
        "--nvidia-proc",
        "/x",
        "--dry-run",
    ]);
    assert!(report["lines"][0]
        .as_str()
        .unwrap()
        .contains("NVRM: The NVIDIA GPU 0000:b3:00.0\nNVRM: (PCI ID: 10de:26b5)"));
    let stderr = fails(&["node", "fallen-off", "--nvidia-proc", &proc, "--sysfs", "/nonexistent", "--dry-run"], 2);
    assert!(stderr.contains("cannot read the PCI ID of 0000:3b:00.0") && stderr.contains("--pci-id"), "{stderr}");
}

#[test]
fn sxids_match_nvsentinel_s_pattern_with_the_switch_s_address() {
    let mut log = kernel_log();
    let proc = nvswitch_proc();
    let sxid = re(nvsentinel::SXID);
    let cases: [(&[&str], [&str; 6]); 2] = [
        (
            &["--switch", "2", "--sxid", "24007", "--link", "28", "--fatal"],
            ["2", "0000:c3:00.0", "24007", "Fatal", "28", "sourcetrack timeout error (First)"],
        ),
        (
            &["--switch", "0", "--sxid", "20009", "--link", "4"],
            ["0", "0000:05:00.0", "20009", "Non-fatal", "04", "RX Short Error Rate"],
        ),
    ];
    for (options, wanted) in cases {
        let mut args = vec!["node", "sxid", "--nvswitch-proc", &proc];
        args.extend(options);
        let report = ok_json(&args);
        assert_eq!(report["pci_source"], "driver");
        let fault_id = report["fault_id"].as_str().unwrap();
        let [record] = <[kmsg::Record; 1]>::try_from(records(&mut log, fault_id, 1)).unwrap();
        for text in both_forms(&record) {
            let captures = sxid.captures(&text).unwrap_or_else(|| panic!("reSXIDPattern misses {text:?}"));
            let groups: Vec<&str> = (1..=6).map(|i| captures.get(i).unwrap().as_str()).collect();
            assert_eq!(groups[..5], wanted[..5], "{text}");
            assert!(groups[5].starts_with(wanted[5]), "{text}");
        }
    }
    let stderr = fails(&["node", "sxid", "--nvswitch-proc", &proc, "--switch", "3", "--sxid", "1", "--link", "1"], 2);
    assert!(stderr.contains("no NVSwitch 3") && stderr.contains("0000:c3:00.0"), "{stderr}");
    let stderr = fails(
        &["node", "sxid", "--nvswitch-proc", &proc, "--sxid", "1", "--link", "1", "--pci", "0000:06:00.0", "--dry-run"],
        2,
    );
    assert!(stderr.contains("--pci 0000:06:00.0 is not NVSwitch 0: it is at 0000:05:00.0"), "{stderr}");
    let report = ok_json(&[
        "node",
        "sxid",
        "--nvswitch-proc",
        "/x",
        "--sxid",
        "1",
        "--link",
        "1",
        "--pci",
        "6:00.0",
        "--dry-run",
    ]);
    assert_eq!((report["pci"].as_str(), report["pci_source"].as_str()), (Some("0000:06:00.0"), Some("--pci")));
}

#[test]
fn every_nic_event_matches_its_own_nvsentinel_pattern_and_names_the_device() {
    let mut log = kernel_log();
    let sysfs = fake_sysfs();
    let patterns: Vec<(&str, Regex, bool)> =
        nvsentinel::nic().into_iter().map(|(name, pattern, fatal)| (name, re(&pattern), fatal)).collect();
    assert_eq!(patterns.len(), NicEvent::ALL.len());
    for event in NicEvent::ALL {
        let device = if event.name().starts_with("efa-") { "rdmap0s6" } else { "mlx5_0" };
        let report = ok_json(&["node", "nic", "--device", device, "--event", event.name(), "--sysfs", &path(&sysfs)]);
        assert_eq!(report["monitor"].as_str().unwrap(), format!("SysLogsNICDriverError/{}", event.pattern()));
        let fault_id = report["fault_id"].as_str().unwrap();
        let [record] = <[kmsg::Record; 1]>::try_from(records(&mut log, fault_id, 1)).unwrap();
        assert_eq!((record.facility(), record.level()), (1, u32::from(event.level())), "{}", event.name());
        for text in both_forms(&record) {
            let matching: Vec<&str> =
                patterns.iter().filter(|(_, pattern, _)| pattern.is_match(&text)).map(|(name, ..)| *name).collect();
            assert_eq!(matching, [event.pattern()], "exactly its own pattern: {text}");
            let fatal = patterns.iter().find(|(name, ..)| *name == event.pattern()).unwrap().2;
            assert_eq!((fatal, report["fatal"].as_bool()), (event.fatal(), Some(event.fatal())), "{text}");
            // The entity NVSentinel attaches: the PCI address (resolved through sysfs), or the RDMA device.
            let bdf = re(nvsentinel::BDF).captures(&text).map(|c| c[1].to_string());
            let ib = re(nvsentinel::IB_DEVICE).captures(&text).map(|c| c[1].to_string());
            match device {
                "mlx5_0" => assert_eq!(bdf.as_deref(), Some("0000:65:00.0"), "{text}"),
                _ => assert!(ib.as_deref() == Some("rdmap0s6") || bdf.as_deref() == Some("0000:00:06.0"), "{text}"),
            }
            if event.needs_netdev() {
                assert!(text.contains("mlx5_core 0000:65:00.0 eth2: "), "the interface sysfs names: {text}");
            }
        }
    }
}

#[test]
fn nic_devices_resolve_from_sysfs_or_the_flags_and_wrong_requests_write_nothing() {
    let mut log = kernel_log();
    let sysfs = fake_sysfs();
    let root = path(&sysfs);
    let nic = |extra: &[&str]| {
        let mut args = vec!["node", "nic", "--sysfs", &root];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| faultline(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The network interface names the same port.
    let output = run(nic(&["--device", "eth2", "--event", "tx-timeout", "--dry-run"]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["pci"].as_str(), report["details"]["ibdev"].as_str()), (Some("0000:65:00.0"), Some("mlx5_0")));
    assert_eq!(report["details"]["driver"], "mlx5_core");
    // Unknown to sysfs: --pci and --netdev stand in.
    let output = run(nic(&[
        "--device",
        "mlx5_7",
        "--event",
        "rx-timeout",
        "--pci",
        "0000:81:00.1",
        "--netdev",
        "ib7",
        "--dry-run",
    ]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["lines"][0].as_str().unwrap().contains("mlx5_core 0000:81:00.1 ib7: RX timeout on channel"));

    let id = |case: &str| format!("fl-nic-{case}-{}", std::process::id());
    let refuse = |case: &str, extra: &[&str]| {
        let mut args = nic(extra);
        args.extend(["--fault-id".to_string(), id(case)]);
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{case}: {output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refuse("driver", &["--device", "mlx5_0", "--event", "efa-queue-closed"]);
    assert!(stderr.contains("mlx5_0 is driven by mlx5_core, but efa-queue-closed is a efa event"), "{stderr}");
    assert!(stderr.contains("cmd-timeout, health-lost"), "{stderr}");
    let stderr = refuse("unknown", &["--device", "mlx5_9", "--event", "cmd-timeout"]);
    assert!(stderr.contains("no RDMA or network device `mlx5_9`") && stderr.contains("--pci"), "{stderr}");
    let stderr = refuse("virtual", &["--device", "veth9", "--event", "cmd-timeout"]);
    assert!(stderr.contains("veth9 is not a PCI device (a virtual interface?)"), "{stderr}");
    let stderr = refuse("netdev", &["--device", "rdmap0s6", "--event", "tx-timeout"]);
    assert!(stderr.contains("is driven by efa"), "{stderr}");
    let stderr = refuse("mismatch", &["--device", "mlx5_0", "--event", "cmd-timeout", "--pci", "0000:65:00.1"]);
    assert!(stderr.contains("--pci 0000:65:00.1 is not mlx5_0: it is at 0000:65:00.0"), "{stderr}");
    let output = run(nic(&["--device", "mlx5_0", "--event", "fire"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("a NIC event (cmd-timeout"), "{output:?}");

    // A marker written after the refusals bounds the search: none of them reached the kernel log.
    let marker = id("marker");
    let args = nic(&["--device", "mlx5_0", "--event", "cable-unplugged", "--fault-id", &marker]);
    assert_eq!(run(args).status.code(), Some(0));
    let mut seen = Vec::new();
    testkit::wait_until("the marker record is read", || {
        seen.extend(log.read_available().unwrap().into_iter().map(|r| r.text));
        seen.iter().any(|text| text.contains(&marker))
    });
    for case in ["driver", "unknown", "virtual", "netdev", "mismatch"] {
        assert!(!seen.iter().any(|text| text.contains(&id(case))), "{case} wrote to the kernel log");
    }
}

#[test]
fn dry_runs_and_bad_xid_options_write_nothing() {
    let mut log = kernel_log();
    let proc = nvidia_proc();
    let sysfs = fake_sysfs();
    let id = |case: &str| format!("fl-sig-{case}-{}", std::process::id());
    let dry_fallen = id("dry-fallen");
    ok_json(&[
        "node",
        "fallen-off",
        "--nvidia-proc",
        &proc,
        "--sysfs",
        &path(&sysfs),
        "--dry-run",
        "--fault-id",
        &dry_fallen,
    ]);
    let dry_sxid = id("dry-sxid");
    let nvswitch = nvswitch_proc();
    ok_json(&[
        "node",
        "sxid",
        "--nvswitch-proc",
        &nvswitch,
        "--sxid",
        "1",
        "--link",
        "2",
        "--dry-run",
        "--fault-id",
        &dry_sxid,
    ]);
    let stderr =
        fails(&["node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--subcode", "X", "--fault-id", &id("sub")], 2);
    assert!(stderr.contains("--subcode applies to the NVLink5 XIDs 144–150 only, not to XID 79"), "{stderr}");
    let stderr = fails(
        &["node", "xid", "--xid", "79", "--pci", "0000:3b:00.0", "--uuid", "GPU-1", "--fault-id", &id("uuid")],
        2,
    );
    assert!(stderr.contains("--uuid `GPU-1` is not a GPU UUID"), "{stderr}");
    let other = "GPU-3f5a6e2c-0000-4000-8000-0000000000ff";
    let stderr = fails(
        &["node", "xid", "--xid", "79", "--nvidia-proc", &proc, "--uuid", other, "--fault-id", &id("mismatch")],
        2,
    );
    assert!(stderr.contains("the driver says GPU 0 is GPU-3f5a6e2c-0000-4000-8000-000000000000"), "{stderr}");
    let stderr = fails(&["node", "xid", "--xid", "149", "--pci", "0000:3b:00.0", "--intrinfo", "0xzz"], 2);
    assert!(stderr.contains("a 32-bit register value"), "{stderr}");
    fails(
        &[
            "--read-only",
            "node",
            "sxid",
            "--nvswitch-proc",
            &nvswitch,
            "--sxid",
            "1",
            "--link",
            "2",
            "--fault-id",
            &id("ro"),
        ],
        2,
    );

    let marker = id("marker");
    ok_json(&["node", "xid", "--xid", "13", "--pci", "0000:3b:00.0", "--nvidia-proc", "/x", "--fault-id", &marker]);
    let mut seen = Vec::new();
    testkit::wait_until("the marker record is read", || {
        seen.extend(log.read_available().unwrap().into_iter().map(|r| r.text));
        seen.iter().any(|text| text.contains(&marker))
    });
    for case in ["dry-fallen", "dry-sxid", "sub", "uuid", "mismatch", "ro"] {
        assert!(!seen.iter().any(|text| text.contains(&id(case))), "{case} wrote to the kernel log");
    }
}
