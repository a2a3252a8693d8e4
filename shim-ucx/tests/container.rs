//! A shimmed process in its own pid and mount namespaces (what a container is to the kernel): its segment lives
//! in its private `/dev/shm` under its namespaced pid, and discovery from the host finds it through
//! `/proc/<pid>/root/dev/shm` and maps it back to the host pid via `NSpid`.

use std::process::Command;

use shm_proto::segment::{self, Found};
use shm_proto::{Access, AttachOptions};
use testkit::Program;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn discovery_finds_a_containerised_process_and_maps_its_pid() {
    assert!(is_root(), "this test creates namespaces and needs root (CI runs as root)");
    let selfloop = testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"]);
    let shim = &testkit::artifacts().ucx_shim;
    // A new pid namespace (the program is its pid 1) and mount namespace with a private tmpfs on /dev/shm.
    let script = format!(
        "mount -t tmpfs -o mode=1777 faultline-test /dev/shm && exec env LD_PRELOAD={} FAULTLINE_ENABLED=1 \
         FAULTLINE_PROBABILITY=42 FAULTLINE_HOOKS=put {} --stdin --ops put",
        shim.display(),
        selfloop.display()
    );
    let mut command = Command::new("unshare");
    command.args(["--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private", "sh", "-c", &script]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    let mut contained = Program::spawn(command);
    contained.send("run 1");
    contained.lines_until(|line| line == "DONE");

    let find = || -> Option<Found> {
        segment::discover(true)
            .into_iter()
            .find(|f| f.in_container && f.ns_pid == 1 && f.path.to_string_lossy().contains("/proc/"))
    };
    let mut found = None;
    testkit::wait_until("the containerised segment is discovered", || {
        found = find().filter(|f| {
            std::fs::read_to_string(format!("/proc/{}/cmdline", f.pid)).is_ok_and(|c| c.contains("ucx_selfloop"))
        });
        found.is_some()
    });
    let found = found.expect("found");
    assert_ne!(found.pid, 1, "mapped to the host pid");
    assert_eq!(segment::ns_pids(found.pid).and_then(|p| p.last().copied()), Some(1));
    assert!(
        !std::path::Path::new(&format!("/dev/shm/faultline.ucx.{}", found.pid)).exists(),
        "not in the host's /dev/shm"
    );

    let map = found.attach(Access::ReadWrite, AttachOptions { allow_foreign: true }).expect("attach");
    let seg = map.segment();
    assert!(segment::is_alive(&map, found.pid), "liveness uses the host pid");
    assert_eq!(seg.control.snapshot().expect("stable").probability_ppm, 420_000);
    assert!(seg.header.exe_name().starts_with("ucx_selfloop"));
    drop(map);
    contained.send("quit");
    assert!(contained.finish().success());
}
