//! `pip install faultline` as a user gets it: the wheel is built from this tree by `scripts/wheel.sh --unstripped`
//! (which reuses the release build of `cargo build --release --workspace`, so nothing is compiled again), installed
//! into a fresh venv in a temporary directory outside the repository, and checked there by the pytest suite of
//! `python/tests/`, copied beside the venv with the UCX test program. The suite imports nothing from the repository:
//! the executable, both shims and the pytest plugin are found where pip put them (its tests say what each checks:
//! the wheel's contents and tag, `faultline --version` and `shim-path`, the `shimmed` fixture on a real UCX program,
//! `faults()` making every put fail with the pool's codes and restoring the strategy, a NIXL transfer failing under
//! the fixture and succeeding after it, the CUDA shim failing the PyPI CUDA runtime's calls, bad arguments refused
//! with exit status 2 and nothing changed).
//!
//! Needs maturin on PATH and, for the system `python3`, pytest (with pytest-asyncio, which kmock's pytest plugin
//! imports), mypy, NIXL, numpy and the CUDA runtime (`nvidia-cuda-runtime-cu12`): `scripts/install-deps.sh --test`.
//! The venv sees them through `--system-site-packages`; without them this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUITE: &str = "python/tests";
const SELFLOOP: &str = "shim-ucx/tests/c/ucx_selfloop.c";

/// The interpreter with the test dependencies: `sys.executable` of the system `python3` (not a launcher script).
fn base_python() -> PathBuf {
    let probe =
        "import sys, pytest, pytest_asyncio, mypy, numpy, nixl._api, nvidia.cuda_runtime; print(sys.executable)";
    let output = Command::new("python3").args(["-c", probe]).env_remove("LD_PRELOAD").output();
    match output {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        Ok(out) => panic!(
            "python3 lacks what the wheel's suite needs ({}): {}\nRun scripts/install-deps.sh --test (pytest, \
             pytest-asyncio, mypy, NIXL, numpy, nvidia-cuda-runtime-cu12).",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run python3 ({e}); run scripts/install-deps.sh --test"),
    }
}

fn check(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the wheel into `out` with scripts/wheel.sh and returns its path.
fn build_wheel(out: &Path) -> PathBuf {
    testkit::artifacts(); // the release build the wheel reuses
    let mut wheel_sh = Command::new(testkit::workspace_root().join("scripts/wheel.sh"));
    wheel_sh.args(["--unstripped", "--out"]).arg(out).current_dir(testkit::workspace_root());
    testkit::without_package_cargo_variables(&mut wheel_sh);
    check("scripts/wheel.sh", &wheel_sh.output().expect("scripts/wheel.sh runs (is maturin installed?)"));
    let wheels: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("the wheel directory exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "one wheel expected in {}: {wheels:?}", out.display());
    wheels.into_iter().next().unwrap()
}

/// Copies the suite's files into `dir`, with the UCX test program beside them.
fn copy_suite(dir: &Path) {
    std::fs::create_dir_all(dir).expect("suite dir");
    for entry in std::fs::read_dir(testkit::workspace_root().join(SUITE)).expect("python/tests exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_some_and(|ext| ext == "py") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).expect("copy a suite file");
        }
    }
    let selfloop = testkit::c_program(SELFLOOP, &["-lucp", "-lucs"]);
    std::fs::copy(selfloop, dir.join("ucx_selfloop")).expect("copy the UCX test program");
    // The local Kubernetes API (kmock with its exec endpoint) the cluster tests run against.
    let kmock = testkit::workspace_root().join("faultline/tests/kmock_server.py");
    std::fs::copy(kmock, dir.join("kmock_server.py")).expect("copy the API emulator");
}

/// The private segment directories `shimmed` makes (a leftover means a fixture did not clean up).
fn fixture_segment_dirs() -> Vec<PathBuf> {
    std::fs::read_dir("/dev/shm")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("faultline-pytest.")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_wheel_installs_into_a_fresh_venv_and_its_pytest_suite_passes_there() {
    let python = base_python();
    let work = tempfile::Builder::new().prefix("faultline-wheel.").tempdir().expect("temp dir");
    assert!(!work.path().starts_with(testkit::workspace_root()), "the venv must live outside the repository");
    let wheel = build_wheel(&work.path().join("wheels"));

    let venv = work.path().join("venv");
    let create = Command::new(&python)
        .args(["-m", "venv", "--system-site-packages", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("python3 -m venv runs");
    check("creating the venv", &create);
    let install = Command::new(&python)
        .args(["-m", "pip", "--disable-pip-version-check", "--python"])
        .arg(venv.join("bin/python"))
        .args(["install", "--no-deps", "--no-index"])
        .arg(&wheel)
        .output()
        .expect("pip runs");
    check("pip install of the wheel", &install);

    let suite = work.path().join("suite");
    copy_suite(&suite);
    let before = fixture_segment_dirs();
    let mut pytest = Command::new(venv.join("bin/python"));
    pytest
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "--basetemp"])
        .arg(work.path().join("pytest"))
        .current_dir(&suite);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let foreign = ["LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS", "VIRTUAL_ENV"].contains(&&*name);
        if foreign || name.starts_with("FAULTLINE_") {
            pytest.env_remove(&name);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    pytest
        .env("PATH", std::env::join_paths(paths).expect("PATH joins"))
        .env("VIRTUAL_ENV", &venv)
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("FAULTLINE_WHEEL", &wheel);
    let output = pytest.output().expect("pytest runs");
    check("the wheel's pytest suite", &output);
    println!("{}", String::from_utf8_lossy(&output.stdout).trim_end().lines().last().unwrap_or_default());
    let left: Vec<PathBuf> = fixture_segment_dirs().into_iter().filter(|dir| !before.contains(dir)).collect();
    assert!(left.is_empty(), "the shimmed fixture left segment directories behind: {left:?}");
}
