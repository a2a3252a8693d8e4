//! The `faultline` tools next to hostile segment files and interrupted writers: no reader hangs or dies of a
//! signal, a segment is trusted only when its owner is the process's user, corrupt values are reported as such,
//! and a faultline killed mid-change never wedges a process.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{ok, start, status, text};
use shm_proto::control::Writer;
use shm_proto::{Access, Kind, SegmentMap};
use testkit::ShmDir;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `faultline args` and fails the test if it does not finish within the watchdog (a hang detector, not a
/// timing assertion) or if a signal ended it.
fn finishes(shm: &ShmDir, args: &[&str]) -> Output {
    let mut child = Command::new(&testkit::artifacts().faultline)
        .args(args)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + testkit::WATCHDOG;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline {args:?} hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.code().is_some(), "faultline {args:?} was killed by a signal: {:?}", output.status);
    output
}

#[test]
fn a_fifo_named_like_a_segment_hangs_nothing() {
    let shm = ShmDir::new();
    let mut live = start(&shm, "put");
    // A FIFO under the name a live process (this test) would have.
    let fifo = shm.path().join(shm_proto::segment::file_name(Kind::Ucx, std::process::id()));
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);

    let ps = finishes(&shm, &["ps"]);
    let (stdout, stderr) = text(&ps);
    assert_eq!(ps.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(&live.pid().to_string()), "the real process is still listed: {stdout}");
    assert!(format!("{stdout}{stderr}").contains("FIFO"), "the FIFO is skipped with a note: {stdout}{stderr}");
    for args in [&["status"][..], &["record", "dump", "records"], &["enable"], &["node", "ps"], &["clean"]] {
        finishes(&shm, args);
    }
    assert!(fifo.exists(), "a live pid's file is not cleaned");
    live.send("run 1");
    live.lines_until(|l| l == "DONE");
}

#[test]
fn a_segment_owned_by_another_user_does_not_pass_for_a_live_process() {
    assert!(is_root(), "this test chowns files and needs root (CI runs as root)");
    let shm = ShmDir::new();
    let real = start(&shm, "put");
    let bytes = fs::read(shm.segment("ucx", real.pid())).unwrap();
    // Another user forges a segment for this test process: its pid and its start time (anyone can read both).
    let me = std::process::id();
    let start_ticks = shm_proto::segment::start_time_ticks("self").unwrap();
    let forged = shm.segment("ucx", me);
    fs::write(&forged, &bytes).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&forged).unwrap();
    file.write_all_at(&me.to_le_bytes(), 24).unwrap();
    file.write_all_at(&start_ticks.to_le_bytes(), 32).unwrap();
    std::os::unix::fs::chown(&forged, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&forged, fs::Permissions::from_mode(0o600)).unwrap();

    let doc: serde_json::Value = serde_json::from_str(&ok(&shm, &["ps", "--json"])).unwrap();
    let row = doc["processes"].as_array().unwrap().iter().find(|r| r["pid"] == me).cloned().expect("listed");
    assert_eq!(row["state"], "dead", "a segment not owned by the process's user is not that process's: {row}");
    assert_eq!(status(&shm, real.pid())["alive"], true, "the real one is");
}

#[test]
fn control_block_values_out_of_range_are_reported_corrupt() {
    let shm = ShmDir::new();
    let real = start(&shm, "put");
    let bytes = fs::read(shm.segment("ucx", real.pid())).unwrap();
    let dead = testkit::dead_pid();
    let path = shm.segment("ucx", dead);
    fs::write(&path, &bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&dead.to_le_bytes(), 24).unwrap();
    let control = std::mem::offset_of!(shm_proto::layout::Segment, control) as u64;
    let probability = control + std::mem::offset_of!(shm_proto::layout::Control, probability_ppm) as u64;
    file.write_all_at(&u32::MAX.to_le_bytes(), probability).unwrap();

    let output = finishes(&shm, &["--pid", &dead.to_string(), "status"]);
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("429496"), "no garbage shown as a probability: {stdout}{stderr}");
    let ps = finishes(&shm, &["ps"]);
    assert!(!text(&ps).0.contains("429496"), "{}", text(&ps).0);
}

#[test]
fn a_faultline_killed_mid_change_never_wedges_the_process() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put");
    let pid = program.pid().to_string();
    ok(&shm, &["--pid", &pid, "enable"]);
    ok(&shm, &["--pid", &pid, "probability", "100"]);
    assert!(common::run_statuses(&mut program, 5).iter().all(|&s| s != 0));

    // A writer dies half-way through disabling it (the CLI got SIGKILL there).
    let map = SegmentMap::attach(&shm.segment("ucx", program.pid()), Access::ReadWrite, Default::default()).unwrap();
    let seg = map.segment();
    let mut next = seg.read_strategy().unwrap();
    next.enabled = false;
    next.probability_ppm = 0;
    let dead = Writer { pid: testkit::dead_pid(), pid_ns: shm_proto::process::own_pid_ns(), start_ticks: 1 };
    seg.control.publish_killed_midway(&seg.journal, &next, &dead);
    assert_eq!(seg.control.snapshot(), None, "wedged, as a killed writer leaves it");

    // Reading shows the last complete settings and puts them back in force.
    let state = status(&shm, program.pid());
    assert_eq!((state["enabled"].clone(), state["probability_ppm"].clone()), (true.into(), 1_000_000.into()));
    assert!(seg.control.snapshot().is_some(), "repaired by the reader");
    assert!(common::run_statuses(&mut program, 5).iter().all(|&s| s != 0), "injection works again");
    // Changes work again, every time.
    seg.control.publish_killed_midway(&seg.journal, &next, &dead);
    ok(&shm, &["--pid", &pid, "disable"]);
    assert_eq!(common::run_statuses(&mut program, 5), vec![0; 5]);
    ok(&shm, &["--pid", &pid, "enable"]);
    assert!(common::run_statuses(&mut program, 5).iter().all(|&s| s != 0));
}

#[test]
fn readers_survive_a_segment_whose_size_flaps() {
    let shm = ShmDir::new();
    let mut program = start(&shm, "put,get");
    let pid = program.pid().to_string();
    ok(&shm, &["--pid", &pid, "enable"]);
    ok(&shm, &["--pid", &pid, "record", "on"]);
    let path = shm.segment("ucx", program.pid());
    let saved = fs::read(&path).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flapper = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut flaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                file.set_len(0).unwrap();
                file.set_len(saved.len() as u64).unwrap();
                file.write_all_at(&saved, 0).unwrap();
                flaps += 1;
            }
            flaps
        })
    };
    for _ in 0..15 {
        for args in [&["ps"][..], &["status"], &["--pid", &pid, "record", "dump", "records"], &["node", "ps"]] {
            finishes(&shm, args);
        }
        program.send("run 2");
        program.lines_until(|l| l == "DONE");
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    assert!(flapper.join().unwrap() > 0);
}

mod fuzz {
    use faultline::targets::{self, Purpose};
    use faultline::{recording, state};
    use proptest::prelude::*;
    use shm_proto::layout::{ABI_VERSION, MAGIC};
    use shm_proto::segment::{Found, SEGMENT_SIZE};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// What the tools build from a segment — the process state (`ps`, `status`, the dashboard's rows), the
        /// recording and every dump format — on random contents behind a valid-looking header: an error at
        /// worst, never a panic.
        #[test]
        fn the_tools_survive_random_segment_contents(seed: u64, density in 1u64..64) {
            let mut bytes = vec![0u8; SEGMENT_SIZE];
            let mut state_ = seed;
            for (i, b) in bytes.iter_mut().enumerate() {
                state_ = state_.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if (i as u64 ^ state_).is_multiple_of(density) {
                    *b = (state_ >> 56) as u8;
                }
            }
            bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
            bytes[8..12].copy_from_slice(&ABI_VERSION.to_le_bytes());
            bytes[12..16].copy_from_slice(&1u32.to_le_bytes());
            bytes[16..24].copy_from_slice(&(SEGMENT_SIZE as u64).to_le_bytes());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("faultline.ucx.1");
            std::fs::write(&path, &bytes).unwrap();
            let found = Found::local(path, shm_proto::Kind::Ucx, 1);
            if let Ok(target) = targets::attach(&found, Purpose::Read) {
                let _ = state::ProcessState::read(&target).map(|s| (s.line(), s.mode_text(), s.pool_text()));
                let _ = state::PsRow::of(&target);
                let recording = recording::read(&target);
                for format in ["pattern", "summary", "records"] {
                    let format = recording::DumpFormat::parse(format).unwrap();
                    let _ = recording::dump(&target, format, Some(100));
                }
                let _ = recording::replay_program(&recording, "fuzz");
            }
        }
    }
}
