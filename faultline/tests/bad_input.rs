//! Bad input gets a one-line error, exit status 2, and changes nothing: every case compares the target's
//! `status --json` before and after.

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use common::{fails, ok, on, start, status, text};
use shm_proto::layout::{ABI_VERSION, MAGIC};
use testkit::ShmDir;

/// Asserts `faultline args` exits 2 with one line `faultline: …` containing `message`.
fn refused(shm: &ShmDir, args: &[&str], message: &str) {
    let stderr = fails(shm, args, 2);
    assert!(stderr.contains(message), "faultline {args:?}: expected '{message}' in: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("faultline: "), "{stderr}");
}

/// Writes a fake segment: magic, `version`, kind ucx, `total_size`, padded to `len` bytes, mode 0600.
fn fake_segment(path: &Path, version: u32, total_size: u64, len: usize) {
    let mut bytes = vec![0u8; len];
    bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    bytes[12..16].copy_from_slice(&1u32.to_le_bytes());
    bytes[16..24].copy_from_slice(&total_size.to_le_bytes());
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    file.write_all(&bytes).unwrap();
}

#[test]
fn bad_values_are_refused_with_exit_2_and_change_nothing() {
    let shm = ShmDir::new();
    let program = start(&shm, "put");
    let pid = program.pid().to_string();
    on(&shm, program.pid(), &["strategy", "XOOX"]);
    let before = status(&shm, program.pid());

    let unknown_pid = std::process::id().to_string(); // this test process: alive, but not shimmed
    let cases: &[(&[&str], &str)] = &[
        (&["probability", "150"], "probability '150' is not a percentage between 0 and 100"),
        (&["probability", "-1"], "probability '-1' is not a percentage"),
        (&["probability", "ten"], "probability 'ten' is not a percentage"),
        (&["strategy", "XQX"], "pattern 'XQX': 'Q' at position 2 is neither X (fault) nor O (pass)"),
        (&["strategy", "XOX", "--error-codes", "-3,0"], "0 is not an error for ucx (it is UCS_OK)"),
        (&["error-codes", "0"], "0 is not an error for ucx (it is UCS_OK)"),
        (&["error-codes", "1"], "1 is not an error for ucx (it is UCS_INPROGRESS)"),
        (&["error-codes", "-3,7"], "7 is not an error for ucx"),
        (&["error-codes", "UCS_ERR_NOPE"], "unknown ucx status code 'UCS_ERR_NOPE'"),
        (&["error-codes", ""], "the error-code list is empty"),
        (&["hooks", "bogus"], "unknown hook 'bogus' (known: ucp_get_nbx"),
        (&["skip", "abc"], "skip 'abc' is not a whole number"),
        (&["limit", "-2"], "limit '-2' is not a whole number"),
        (&["seed", "0xZZ"], "seed '0xZZ' is not a whole number"),
        (&["delay", "5000000000"], "delay (µs) '5000000000' is longer than the cap of 60000000 µs (60 s) per fault"),
        (&["delay", "4260000000"], "delay (µs) '4260000000' is longer than the cap of 60000000 µs (60 s)"),
        (&["delay", "60000001", "--mode", "instead-of-fault"], "is longer than the cap of 60000000 µs"),
        (&["delay", "soon"], "delay (µs) 'soon' is not a whole number"),
        (&["probability", "0.00001"], "probability '0.00001' is finer than faultline's smallest step, 0.0001 %"),
        (&["record", "dump", "--count", "x"], "count 'x' is not a whole number"),
        (&["record", "dump", "pattern", "-o", "/"], "/: is a directory; name a file to write the dump to"),
        (&["record", "dump", "-o", "/tmp"], "/tmp: is a directory"),
        (&["record-toggle", "maybe"], "recording 'maybe' is not on/off"),
        (&["replay"], "nothing recorded to replay"),
        (&["replay", "--from-file", "/nonexistent/run.json"], "/nonexistent/run.json: No such file"),
        (&["replay", "--program", "0,abc"], "replay program '0,abc': 'abc' at call 2 is not a whole number"),
        (&["replay", "--program", "0,,-3"], "replay program '0,,-3': call 2 is empty"),
        (&["replay", "--program", ""], "replay program '': empty"),
        (&["replay", "--program", "0,UCS_ERR_IO_ERROR"], "names are not taken"),
        (&["replay", "--program", "0,5"], "5 is not an error for ucx"),
        (&["replay", "--program", "-3,-101"], "unknown ucx status code '-101'"),
        (&["--read-only", "enable"], "--read-only: refusing to enable fault injection"),
        (&["--read-only", "clean"], "--read-only: refusing to remove segments"),
        (&["--pid", &unknown_pid, "enable"], &format!("no faultline segment for pid {unknown_pid}")),
        (&["--pid", &unknown_pid, "status"], "(is the process running with LD_PRELOAD=…/libfaultline_ucx.so"),
        (&["--pid", &pid, "--pid", &unknown_pid, "probability", "50"], "no faultline segment for pid"),
        (&["--pid", &pid, "--kind", "cuda", "status"], &format!("no cuda faultline segment for pid {pid}")),
        (&["send", r#"{"command":"explode"}"#], "unknown command 'explode' (known: set_strategy, set_error_codes"),
        (&["send", r#"{"command":"set_probability","probability":150}"#], "is not a percentage"),
        (&["send", r#"{"command":"set_strategy","pattern":"XQX"}"#], "'Q' at position 2"),
        (&["send", r#"{"command":"set_error_codes","error_codes":[0]}"#], "0 is not an error for ucx"),
        (&["send", r#"{"command":"set_error_codes"}"#], "set_error_codes needs \"error_codes\""),
        (&["send", "not json"], "not a JSON command object"),
        (&["set"], "set: give at least one setting"),
        (&["set", "--enabled", "on", "--pattern", "XQ"], "'Q' at position 2"),
        (&["set", "--enabled", "on", "--hooks", "bogus"], "unknown hook 'bogus'"),
        (&["set", "--enabled", "on", "--probability", "50", "--error-codes", "0"], "0 is not an error for ucx"),
        (&["set", "--enabled", "yes please"], "enabled 'yes please' is not on/off"),
        (&["set", "--mode", "replay"], "set: replay mode needs a replay program"),
        (&["set", "--mode", "pattern", "--pattern", ""], "set: pattern mode needs a pattern"),
        (&["set", "--skip", "-1", "--enabled", "on"], "skip '-1' is not a whole number"),
        (
            &["send", r#"{"command":"set_probability","probability":"25"}"#],
            r#"set_probability: "probability" must be a number, not "25""#,
        ),
        (
            &["send", r#"{"command":"set_probability","probability":[30]}"#],
            r#""probability" must be a number, not [30]"#,
        ),
        (
            &["send", r#"{"command":"set_probability","probability":30,"pid":999}"#],
            r#"set_probability: unknown key "pid" (it takes "value", "probability"); choose processes with --pid"#,
        ),
        (&["send", r#"{"command":"enable","pid":999}"#], r#"enable: unknown key "pid""#),
        (&["send", r#"{"command":"toggle_recording","enabled":"on"}"#], r#""enabled" must be true or false"#),
        (&["send", r#"{"command":"set_probability","probability":0.00001}"#], "probability '0.00001' is finer"),
        (&["site", "sideways"], "fault site 'sideways' is not one of post, completion, endpoint"),
        (&["set", "--enabled", "on", "--site", "later"], "fault site 'later' is not one of post, completion"),
        (&["send", r#"{"command":"set_site","site":"nowhere"}"#], "fault site 'nowhere' is not one of"),
        (&["send", r#"{"command":"set_site"}"#], "set_site needs \"site\""),
        (&["replay", "--program", "-3", "--site", "soon"], "fault site 'soon' is not one of"),
    ];
    for (args, message) in cases {
        refused(&shm, args, message);
        assert_eq!(status(&shm, program.pid()), before, "faultline {args:?} changed nothing");
    }

    // Usage errors clap catches also exit 2 and change nothing.
    for args in [
        &["delay", "5", "--mode", "sideways"][..],
        &["--pid", "abc", "enable"],
        &["frobnicate"],
        &["set", "--mode", "chaos"],
        &["shim-path", "rdma"],
        &["replay", "--program", "0,-3", "--from-file", "run.json"],
        &["replay", "--program", "0,-3", "--from-pid", "1"],
    ] {
        fails(&shm, args, 2);
        assert_eq!(status(&shm, program.pid()), before);
    }

    // A replay file with bad contents.
    let files = tempfile::tempdir().unwrap();
    for (name, contents, message) in [
        (
            "codes.json",
            r#"{"pattern":"XO","error_codes":[],"fault_codes":[1],"total_calls":2}"#,
            "1 is not an error for ucx",
        ),
        (
            "mismatch.json",
            r#"{"pattern":"XOX","error_codes":[-3],"fault_codes":[-3],"total_calls":3}"#,
            "fault_codes has 1 codes but the pattern has 2 X",
        ),
        ("empty.json", r#"{"pattern":"","error_codes":[-3],"total_calls":0}"#, "the pattern is empty"),
        ("other.json", r#"{"records":[]}"#, "not a pattern dump"),
        ("site.json", r#"{"pattern":"XO","error_codes":[-3],"total_calls":2,"site":"callback"}"#, "'callback'"),
        (
            "sites.json",
            r#"{"pattern":"XOX","error_codes":[-3],"total_calls":3,"fault_sites":["post"]}"#,
            "fault_sites has 1 sites but the pattern has 2 X",
        ),
    ] {
        let path = files.path().join(name);
        std::fs::write(&path, contents).unwrap();
        refused(&shm, &["replay", "--from-file", path.to_str().unwrap()], message);
        assert_eq!(status(&shm, program.pid()), before);
    }

    // Replay files are read with a bound: a file too large for any pattern dump, or one without an end.
    let huge = files.path().join("huge.json");
    std::fs::File::create(&huge).unwrap().set_len(faultline::recording::MAX_PATTERN_FILE_BYTES + 1).unwrap();
    let too_large = format!("larger than {} bytes", faultline::recording::MAX_PATTERN_FILE_BYTES);
    for file in [huge.to_str().unwrap(), "/dev/zero"] {
        refused(&shm, &["replay", "--from-file", file], &too_large);
        assert_eq!(status(&shm, program.pid()), before);
    }
}

#[test]
fn io_errors_are_printed_once() {
    let shm = ShmDir::new();
    let program = start(&shm, "put");
    let pid = program.pid().to_string();
    let once = |stderr: &str, cause: &str| {
        assert_eq!(stderr.matches(cause).count(), 1, "the cause once: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    };
    // An error of faultline's own (the dump file cannot be written).
    let stderr = fails(&shm, &["--pid", &pid, "record", "dump", "-o", "/nonexistent/dir/run.json"], 1);
    assert!(stderr.starts_with("faultline: /nonexistent/dir/run.json: "), "{stderr}");
    once(&stderr, "No such file or directory");
    // An error of the segment layer (a segment file that is a symlink is not opened).
    let mine = std::process::id();
    std::os::unix::fs::symlink("/dev/null", shm.segment("ucx", mine)).unwrap();
    let stderr = fails(&shm, &["--pid", &mine.to_string(), "status"], 2);
    once(&stderr, "symbolic links");
}

#[test]
fn segments_of_another_abi_version_or_corrupt_ones_are_refused_when_named_and_skipped_when_broadcasting() {
    let shm = ShmDir::new();
    let program = start(&shm, "put");
    let pid = program.pid().to_string();
    let before = status(&shm, program.pid());

    // Fake segments named after live processes that run no shim: this test and its parent.
    let newer = std::process::id();
    let corrupt = std::os::unix::process::parent_id();
    fake_segment(&shm.segment("ucx", newer), ABI_VERSION + 1, shm_proto::segment::SEGMENT_SIZE as u64, 4096);
    fake_segment(&shm.segment("ucx", corrupt), ABI_VERSION, 12_345, 4096);
    let fake_bytes =
        || (std::fs::read(shm.segment("ucx", newer)).unwrap(), std::fs::read(shm.segment("ucx", corrupt)).unwrap());
    let fakes_before = fake_bytes();
    let (newer, corrupt) = (newer.to_string(), corrupt.to_string());
    let version_message =
        format!("segment ABI version {}, this faultline speaks version {ABI_VERSION}", ABI_VERSION + 1);
    let corrupt_message = "corrupt segment: header says 12345 bytes";

    for args in [&["--pid", &newer, "enable"][..], &["--pid", &newer, "status"], &["--pid", &newer, "record", "dump"]] {
        refused(&shm, args, &version_message);
    }
    for args in [&["--pid", &corrupt, "probability", "50"][..], &["--pid", &corrupt, "ps"]] {
        refused(&shm, args, corrupt_message);
    }
    refused(&shm, &["--pid", &pid, "--pid", &newer, "probability", "50"], &version_message);
    assert_eq!(status(&shm, program.pid()), before, "a bad segment among the targets: nothing changed");
    assert!(fake_bytes() == fakes_before, "the bad segments were not written");

    // ps lists them with the reason.
    let ps = ok(&shm, &["ps"]);
    assert!(ps.lines().any(|l| l.starts_with(&format!("{newer} ")) && l.contains("incompatible")), "{ps}");
    assert!(ps.lines().any(|l| l.starts_with(&format!("{corrupt} ")) && l.contains("corrupt")), "{ps}");

    // A broadcast changes the good process and notes each skipped segment.
    let output = testkit::faultline(&shm, &["probability", "50"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("pid {pid} (ucx_selfloop")), "{stdout}");
    assert!(stderr.contains(&format!("skipped pid {newer} (ucx, incompatible)")), "{stderr}");
    assert!(stderr.contains(&format!("skipped pid {corrupt} (ucx, corrupt)")), "{stderr}");
    assert_eq!(status(&shm, program.pid())["probability_ppm"], 500_000);

    // clean leaves files it cannot read alone.
    ok(&shm, &["clean"]);
    assert!(shm.segment("ucx", newer.parse().unwrap()).exists());
    assert!(shm.segment("ucx", corrupt.parse().unwrap()).exists());
}
