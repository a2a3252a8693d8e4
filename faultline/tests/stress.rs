//! Everything hostile at once, under a watchdog: 8 threads making UCX calls through the shim with recording on,
//! another process flipping the strategy 1,000 times, and a third truncating and restoring the segment and
//! killing `faultline` processes mid-change. The host never dies, no tool dies of a signal, and afterwards
//! `disable` and `enable` work. Bounded in iterations, not in time; nothing here asserts how long anything takes.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use testkit::{Program, ShmDir};

fn faultline(shm: &ShmDir) -> Command {
    let mut command = Command::new(&testkit::artifacts().faultline);
    command.env("FAULTLINE_SHM_DIR", shm.path()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

#[test]
fn the_host_and_the_tools_survive_everything_at_once() {
    let shm = ShmDir::new();
    let mut command = Command::new(common::selfloop_binary());
    command
        .args(["--forever", "--quiet", "--threads", "8", "--interval-us", "200", "--ops", "put,get,tag,flush"])
        .env("LD_PRELOAD", &testkit::artifacts().ucx_shim)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("FAULTLINE_ENABLED", "1")
        .env("FAULTLINE_RECORD", "1")
        .env("FAULTLINE_PROBABILITY", "10")
        .env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let host = Program::spawn(command);
    let pid = host.pid();
    let path = shm.segment("ucx", pid);
    testkit::wait_until("the shim creates its segment", || path.exists());
    let saved = fs::read(&path).unwrap();
    let pid_text = pid.to_string();

    // Another process flips the strategy 1,000 times.
    let flips = format!(
        "for i in $(seq 1000); do \"$0\" --pid {pid} strategy $(if [ $((i % 2)) = 0 ]; then echo XOOX; else echo random; fi) \
         >/dev/null 2>&1; r=$?; if [ $r -gt 128 ]; then echo \"SIGNAL $r\"; fi; done; echo FLIPPED"
    );
    let mut flipper = Command::new("sh");
    flipper.args(["-c", &flips, testkit::artifacts().faultline.to_str().unwrap()]);
    flipper.env("FAULTLINE_SHM_DIR", shm.path());
    let mut flipper = Program::spawn(flipper);

    // A third truncates and restores the segment, and kills faultline processes mid-change.
    let stop = Arc::new(AtomicBool::new(false));
    let saboteur = {
        let (path, stop, shm_path, saved) = (path.clone(), stop.clone(), shm.path().to_path_buf(), saved.clone());
        std::thread::spawn(move || {
            let mut signalled = Vec::new();
            let mut round = 0u64;
            while !stop.load(Ordering::Acquire) && round < 400 {
                round += 1;
                if round.is_multiple_of(4) {
                    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                    file.set_len(0).unwrap();
                    file.set_len(saved.len() as u64).unwrap();
                    file.write_all_at(&saved, 0).unwrap();
                }
                let mut child = Command::new(&testkit::artifacts().faultline)
                    .args(["--pid", &pid.to_string(), "probability", &format!("{}", round % 50)])
                    .env("FAULTLINE_SHM_DIR", &shm_path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                // Kill it at some point of its life: before, during or after its change.
                for _ in 0..(round % 7) {
                    std::thread::yield_now();
                }
                let signal = [libc::SIGKILL, libc::SIGINT, libc::SIGTERM][(round % 3) as usize];
                // SAFETY: signalling our own, not yet reaped child.
                unsafe { libc::kill(child.id() as i32, signal) };
                let status = child.wait().unwrap();
                // Blocked signals arrive after the change; a killed CLI is expected, a crashed one is not.
                if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
                    if ![libc::SIGKILL, libc::SIGINT, libc::SIGTERM].contains(&sig) {
                        signalled.push(sig);
                    }
                }
            }
            signalled
        })
    };

    // Meanwhile the read-only tools keep looking.
    let mut readers_signalled = Vec::new();
    while !flipper.seen.iter().any(|l| l == "FLIPPED") {
        for args in [&["ps"][..], &["--pid", &pid_text, "status"], &["--pid", &pid_text, "record", "dump", "records"]] {
            let status = faultline(&shm).args(args).status().unwrap();
            if status.code().is_none() {
                readers_signalled.push(format!("{args:?}: {status:?}"));
            }
        }
        if let Ok(line) = flipper_line(&mut flipper) {
            assert!(!line.starts_with("SIGNAL"), "a strategy flip died of a signal: {line}");
        }
    }
    stop.store(true, Ordering::Release);
    let crashed = saboteur.join().unwrap();
    assert!(crashed.is_empty(), "faultline died of signals {crashed:?}");
    assert!(readers_signalled.is_empty(), "{readers_signalled:?}");

    // The host is alive and steerable.
    // SAFETY: signal 0 checks existence only.
    assert_eq!(unsafe { libc::kill(pid as i32, 0) }, 0, "the host survived");
    fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(&saved, 0).unwrap();
    common::ok(&shm, &["--pid", &pid_text, "disable"]);
    assert_eq!(common::status(&shm, pid)["enabled"], false);
    common::ok(&shm, &["--pid", &pid_text, "enable"]);
    assert_eq!(common::status(&shm, pid)["enabled"], true);
    drop(host);
}

/// The flipper's next line, if it printed one (non-blocking: one line or none per call).
fn flipper_line(flipper: &mut Program) -> Result<String, ()> {
    flipper.try_line().ok_or(())
}
