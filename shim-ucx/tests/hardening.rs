//! The shim next to hostile neighbours and in pods (the brief's threat model): a full or shrinking `/dev/shm`
//! never kills the host, dead segments are bounded, containers sharing `/dev/shm` get segments of their own, a
//! symlinked `/dev/shm` in a container is resolved inside it, names cannot be squatted, and an invalid setting
//! never widens what can fail. Namespace cases use real `unshare` mount/pid namespaces (CI runs as root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::{Program, ShmDir};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn selfloop() -> PathBuf {
    testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"])
}

fn shim() -> &'static Path {
    &testkit::artifacts().ucx_shim
}

/// `sh -c script` in new mount (and, with `pid`, pid) namespaces, with no `FAULTLINE_*` from our environment.
fn in_namespaces(pid: bool, script: &str) -> Command {
    let mut command = Command::new("unshare");
    command.args(["--mount", "--propagation", "private"]);
    if pid {
        command.args(["--pid", "--fork", "--mount-proc"]);
    }
    command.args(["sh", "-c", script]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    command
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn segments_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.retain(|n| n.starts_with("faultline."));
    names.sort();
    names
}

fn faultline(shm: &ShmDir, args: &[&str]) -> Output {
    testkit::faultline(shm, args)
}

#[test]
fn a_full_shm_directory_means_private_memory_never_a_bus_error() {
    assert!(is_root(), "this test mounts a small tmpfs in a mount namespace and needs root (CI runs as root)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let shim = shim().display();
    // 1 MiB, 800 KiB of it taken: no room for a segment.
    let script = format!(
        "mount -t tmpfs -o size=1m faultline-test {d} && dd if=/dev/zero of={d}/fill bs=1k count=800 2>/dev/null \
         && LD_PRELOAD={shim} FAULTLINE_SHM_DIR={d} FAULTLINE_ENABLED=1 /bin/echo hello"
    );
    let output = in_namespaces(false, &script).output().expect("unshare runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "the host must survive: {:?}\n{stderr}", output.status);
    assert_eq!(stdout, "hello\n");
    assert!(stderr.contains("private memory"), "said once: {stderr}");
    assert_eq!(stderr.matches("private memory").count(), 1, "{stderr}");

    // A fork-heavy workload in a directory with room for only a few segments: every child lives.
    let script = format!(
        "mount -t tmpfs -o size=4m faultline-test {d} && for i in $(seq 40); do \
         LD_PRELOAD={shim} FAULTLINE_SHM_DIR={d} FAULTLINE_ENABLED=1 /bin/true 2>/dev/null || echo \"CHILD $i DIED $?\"; \
         done; echo END"
    );
    let output = in_namespaces(false, &script).output().expect("unshare runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "END\n", "no child may die: {stdout}");
}

#[test]
fn dead_segments_are_bounded_and_unused_ones_leave_nothing() {
    let shm = ShmDir::new();
    let run = |env: &[(&str, &str)]| {
        let status =
            testkit::shimmed(shim(), &shm, Path::new("/bin/true"), &[], env).stderr(Stdio::null()).status().unwrap();
        assert!(status.success());
    };
    run(&[]);
    assert_eq!(segments_in(shm.path()), Vec::<String>::new(), "a process that never used faults leaves nothing");

    for _ in 0..6 {
        run(&[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_KEEP_DEAD", "3")]);
    }
    let left = segments_in(shm.path());
    assert!(left.len() <= 4, "3 dead kept by each start-up, plus the last one: {left:?}");
    assert!(left.len() >= 3, "post-mortem stays: {left:?}");

    // A tool starting up applies the same bound.
    let output = Command::new(&testkit::artifacts().faultline)
        .args(["ps"])
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("FAULTLINE_KEEP_DEAD", "2")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(segments_in(shm.path()).len(), 2, "{:?}", segments_in(shm.path()));

    // Leftovers of dead processes are removed by `clean`; a live process's odd file is not.
    let dead = testkit::dead_pid();
    let ns = shm_proto::process::own_pid_ns();
    let unfinished = format!("faultline.ucx.{dead}.{ns}.00112233aabbccdd.new");
    let corrupt_dead = shm_proto::segment::file_name(shm_proto::Kind::Ucx, dead);
    let corrupt_live = shm_proto::segment::file_name(shm_proto::Kind::Cuda, std::process::id());
    for name in [&unfinished, &corrupt_dead, &corrupt_live] {
        fs::write(shm.path().join(name), b"not a segment").unwrap();
    }
    let output = faultline(&shm, &["clean"]);
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(segments_in(shm.path()), vec![corrupt_live.clone()], "only the live process's file stays");
}

#[test]
fn truncating_the_segment_under_a_running_process_does_not_kill_it() {
    let shm = ShmDir::new();
    let command = testkit::shimmed(
        shim(),
        &shm,
        &selfloop(),
        &["--stdin", "--quiet", "--ops", "put,get,flush"],
        &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "20"), ("FAULTLINE_RECORD", "1")],
    );
    let mut program = Program::spawn(command);
    let path = shm.segment("ucx", program.pid());
    testkit::wait_until("the segment exists", || path.exists());
    program.send("run 10");
    program.lines_until(|l| l == "DONE");
    let saved = fs::read(&path).unwrap();

    // Cut it off, let the process run into the missing pages, restore it, many times.
    for round in 0..50 {
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(if round % 2 == 0 { 0 } else { 4096 }).unwrap();
        program.send("run 5");
        program.lines_until(|l| l == "DONE");
        fs::write(&path, &saved).unwrap();
        program.send("run 5");
        program.lines_until(|l| l == "DONE");
    }
    let ps = faultline(&shm, &["--pid", &program.pid().to_string(), "status", "--json"]);
    assert_eq!(ps.status.code(), Some(0), "the restored segment is whole again: {}", text(&ps).1);
    assert!(program.finish().success(), "the host lived through every truncation");
}

#[test]
fn containers_sharing_shm_get_segments_of_their_own_mapped_to_host_pids() {
    assert!(is_root(), "this test creates pid namespaces and needs root (CI runs as root)");
    let shm = ShmDir::new();
    let start = || {
        let script = format!(
            "exec env LD_PRELOAD={} FAULTLINE_SHM_DIR={} FAULTLINE_ENABLED=1 FAULTLINE_HOOKS=put {} --stdin --ops put",
            shim().display(),
            shm.path().display(),
            selfloop().display()
        );
        let mut program = Program::spawn(in_namespaces(true, &script));
        program.send("run 1");
        program.lines_until(|l| l == "DONE");
        program
    };
    let (mut a, mut b) = (start(), start());
    let names = segments_in(shm.path());
    assert_eq!(names.len(), 2, "two pid-1 processes, two segments: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("faultline.ucx.1.")), "{names:?}");

    let ps = faultline(&shm, &["ps", "--json"]);
    let (stdout, stderr) = text(&ps);
    assert_eq!(ps.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = doc["processes"].as_array().expect("processes");
    let host_pids: Vec<u32> = rows.iter().map(|r| r["pid"].as_u64().unwrap() as u32).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows.iter().all(|r| r["state"] == "alive"), "{stdout}");
    for pid in &host_pids {
        assert_ne!(*pid, 1, "mapped to the host pid");
        let nspid = shm_proto::segment::ns_pids(*pid).unwrap();
        assert_eq!(nspid.last(), Some(&1), "pid {pid} is a container's pid 1");
    }
    assert_ne!(host_pids[0], host_pids[1]);

    let clean = faultline(&shm, &["clean"]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!(segments_in(shm.path()).len(), 2, "clean removes neither live segment");

    // Each is steered on its own.
    let first = host_pids[0].to_string();
    let set = faultline(&shm, &["--pid", &first, "probability", "7"]);
    assert_eq!(set.status.code(), Some(0), "{}", text(&set).1);
    let status = faultline(&shm, &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&text(&status).0).unwrap();
    for row in doc["processes"].as_array().unwrap() {
        let expected = if row["pid"].as_u64() == Some(u64::from(host_pids[0])) { 7.0 } else { 0.0 };
        assert_eq!(row["probability_percent"].as_f64(), Some(expected), "{row}");
    }
    a.send("quit");
    b.send("quit");
    assert!(a.finish().success() && b.finish().success());
}

#[test]
fn a_symlinked_shm_in_a_container_is_resolved_inside_the_container() {
    assert!(is_root(), "this test creates namespaces and needs root (CI runs as root)");
    // A live host process whose segment sits in a host directory.
    let host = ShmDir::new();
    let mut victim = Program::spawn(testkit::shimmed(
        shim(),
        &host,
        &selfloop(),
        &["--stdin", "--ops", "put"],
        &[("FAULTLINE_ENABLED", "1")],
    ));
    let victim_name = shm_proto::segment::file_name(shm_proto::Kind::Ucx, victim.pid());
    let victim_segment = host.path().join(&victim_name);
    testkit::wait_until("the host segment exists", || victim_segment.exists());

    // A container whose /dev/shm is a symlink to that host path, which does not exist inside the container
    // (its /dev is a tmpfs of its own).
    let script =
        format!("mount -t tmpfs none /dev && ln -s {} /dev/shm && echo READY && exec cat", host.path().display());
    let mut container = Program::spawn(in_namespaces(true, &script));
    container.lines_until(|l| l == "READY");

    // Discovery looks into every container as root; the link must be resolved inside the container, where it
    // leads nowhere, never to the host directory.
    let found = shm_proto::segment::discover(true);
    let through_a_container: Vec<_> =
        found.iter().filter(|f| f.in_container && f.path.ends_with(&victim_name)).collect();
    assert!(
        through_a_container.is_empty(),
        "a host file was reached through a container's symlink: {through_a_container:?}"
    );

    // Neither does root's node-wide view; and its clean leaves the live segment alone.
    let empty = ShmDir::new();
    let ps = faultline(&empty, &["node", "ps", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&text(&ps).0).expect("node ps --json");
    let leaked: Vec<&serde_json::Value> = doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|r| r["in_container"] == true && r["path"].as_str().is_some_and(|p| p.ends_with(&victim_name)))
        .collect();
    assert!(leaked.is_empty(), "node ps reached a host file through a container's symlink: {leaked:?}");
    let clean = faultline(&empty, &["node", "clean"]);
    let (stdout, stderr) = text(&clean);
    assert_eq!(clean.status.code(), Some(0), "{stdout}{stderr}");
    assert!(victim_segment.exists(), "{stdout}");
    victim.send("run 1");
    victim.lines_until(|l| l == "DONE");
    drop(container);
}

#[test]
fn squatted_names_do_not_hide_a_process() {
    assert!(is_root(), "this test runs the shimmed process as another user and needs root (CI runs as root)");
    let shm = ShmDir::new();
    fs::set_permissions(shm.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    // The other user needs to reach the shim and the program wherever this checkout lives.
    let bin = tempfile::tempdir().unwrap();
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (shim_copy, program_copy) = (bin.path().join("libfaultline_ucx.so"), bin.path().join("ucx_selfloop"));
    fs::copy(shim(), &shim_copy).unwrap();
    fs::copy(selfloop(), &program_copy).unwrap();
    // The process waits for a line before it execs the shimmed program, so its pid is known in advance.
    let mut command = Command::new("setpriv");
    command.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c"]);
    command.arg(format!(
        "read go; exec env LD_PRELOAD={} FAULTLINE_SHM_DIR={} FAULTLINE_ENABLED=1 {} --stdin --ops put",
        shim_copy.display(),
        shm.path().display(),
        program_copy.display()
    ));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    let mut program = Program::spawn(command);
    let pid = program.pid();
    // Another user (root here) plants the old predictable build name and the usual name, in a sticky directory.
    let usual = shm_proto::segment::file_name(shm_proto::Kind::Ucx, pid);
    fs::write(shm.path().join(format!("{usual}.new")), b"squatter").unwrap();
    fs::write(shm.path().join(&usual), b"squatter").unwrap();
    program.send("go");
    program.send("run 1");
    program.lines_until(|l| l == "DONE");
    let published: Vec<String> =
        segments_in(shm.path()).into_iter().filter(|n| n.starts_with(&format!("{usual}~"))).collect();
    assert_eq!(published.len(), 1, "published under a unique name: {:?}", segments_in(shm.path()));
    let ps = faultline(&shm, &["--pid", &pid.to_string(), "status", "--json"]);
    assert_eq!(ps.status.code(), Some(0), "visible to tools: {}", text(&ps).1);
    program.send("quit");
    assert!(program.finish().success());
}

#[test]
fn an_invalid_hook_list_arms_nothing() {
    let shm = ShmDir::new();
    let output = testkit::shimmed(
        shim(),
        &shm,
        &selfloop(),
        &["--ops", "put,get", "--iterations", "50"],
        &[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "100"), ("FAULTLINE_HOOKS", "put,bogus")],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let calls = testkit::calls(&stdout.lines().map(str::to_owned).collect::<Vec<_>>());
    assert!(calls.len() >= 100);
    assert!(calls.iter().all(|c| c.status == 0), "a typo in the hook list must not make calls fail");
    assert_eq!(stderr.matches("no hook is armed").count(), 1, "said once: {stderr}");
}
