//! A shimmed process knows its Kubernetes pod: the shim records namespace, pod and container from
//! `FAULTLINE_POD_NAMESPACE` / `FAULTLINE_POD_NAME` / `FAULTLINE_CONTAINER_NAME` (what the shim roll-out sets with the
//! downward API), and the pod UID from its cgroup (the kubelet's `kubepods…pod<uid>` directory), in its segment;
//! `ps` and `status` show them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::{Program, ShmDir};

const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn json(shm: &ShmDir, args: &[&str]) -> Value {
    serde_json::from_str(&common::ok(shm, args)).expect("JSON")
}

/// Starts the self-loop program under the UCX shim with `env`, through `sh` when `cgroup` is given (the shell moves
/// itself into that cgroup, then execs the program with the shim preloaded).
fn start(shm: &ShmDir, env: &[(&str, &str)], cgroup: Option<&Path>) -> Program {
    let program = common::selfloop_binary();
    let mut command = match cgroup {
        Some(dir) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", r#"echo $$ > "$CGROUP/cgroup.procs" && LD_PRELOAD="$SHIM" exec "$0" "$@""#])
                .arg(&program)
                .env("CGROUP", dir)
                .env("SHIM", &testkit::artifacts().ucx_shim);
            sh
        }
        None => {
            let mut direct = Command::new(&program);
            direct.env("LD_PRELOAD", &testkit::artifacts().ucx_shim);
            direct
        }
    };
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    command
        .args(["--stdin", "--ops", "put"])
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("UCX_WARN_UNUSED_ENV_VARS", "n")
        .envs(env.iter().copied());
    let mut program = Program::spawn(command);
    let segment = shm.segment("ucx", program.pid());
    testkit::wait_until("the shim creates its segment", || segment.exists());
    program.send("run 0");
    program.lines_until(|line| line == "DONE");
    program
}

fn row(ps: &Value, pid: u32) -> Value {
    ps["processes"].as_array().unwrap().iter().find(|row| row["pid"] == pid).cloned().expect("listed")
}

#[test]
fn the_pod_named_in_the_environment_is_recorded_and_shown() {
    let shm = ShmDir::new();
    let env = [
        ("FAULTLINE_POD_NAMESPACE", "dynamo"),
        ("FAULTLINE_POD_NAME", "decode-0"),
        ("FAULTLINE_CONTAINER_NAME", "worker"),
    ];
    let in_pod = start(&shm, &env, None);
    let outside = start(&shm, &[("FAULTLINE_POD_NAME", "Not A Name\u{1b}[2J")], None);

    let ps = json(&shm, &["--json", "ps"]);
    let row_in = row(&ps, in_pod.pid());
    assert_eq!(
        (&row_in["namespace"], &row_in["pod"], &row_in["container"]),
        (&Value::from("dynamo"), &Value::from("decode-0"), &Value::from("worker")),
        "{row_in}"
    );
    let row_out = row(&ps, outside.pid());
    for field in ["namespace", "pod", "container", "pod_uid"] {
        assert!(row_out.get(field).is_none(), "no pod, and a name that is not one is not recorded: {row_out}");
    }
    let status = json(&shm, &["--json", "--pid", &in_pod.pid().to_string(), "status"]);
    let process = &status["processes"][0];
    assert_eq!((&process["pod"], &process["container"]), (&Value::from("decode-0"), &Value::from("worker")));
}

/// A kubelet-style pod cgroup in a writable hierarchy of this machine, removed on drop.
struct PodCgroup {
    dirs: Vec<PathBuf>,
}

impl PodCgroup {
    fn create() -> PodCgroup {
        let roots = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"];
        for root in roots.map(Path::new) {
            let kubepods = root.join("faultline-test-kubepods");
            let burstable = kubepods.join("burstable");
            let pod = burstable.join(format!("pod{UID}"));
            if std::fs::create_dir_all(&pod).is_ok() && pod.join("cgroup.procs").exists() {
                return PodCgroup { dirs: vec![pod, burstable, kubepods] };
            }
            let _ = std::fs::remove_dir(&pod);
            let _ = std::fs::remove_dir(&burstable);
            let _ = std::fs::remove_dir(&kubepods);
        }
        panic!("no writable cgroup hierarchy under /sys/fs/cgroup (these tests run as root)");
    }

    fn pod_dir(&self) -> &Path {
        &self.dirs[0]
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn the_pod_uid_comes_from_the_cgroup_the_kubelet_made() {
    assert!(faultline::targets::running_as_root(), "moving a process into a cgroup needs root");
    let shm = ShmDir::new();
    let cgroup = PodCgroup::create();
    let program = start(&shm, &[], Some(cgroup.pod_dir()));
    let ps = json(&shm, &["--json", "ps"]);
    let found = row(&ps, program.pid());
    assert_eq!(found["pod_uid"], UID, "{found}");
    assert!(found.get("pod").is_none(), "no name given: the cluster side maps the UID to its pod");
    // The program ends (Program's drop) before the cgroup is removed (declared first, dropped last).
    drop(program);
}
