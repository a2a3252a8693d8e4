//! What the CUDA shim's integration tests share: the real CUDA runtime from PyPI, the test-double driver, the
//! C workload programs, and running them under the shim with a private segment directory.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use shm_proto::{Access, SegmentMap};
use testkit::{calls, summaries, Call, ShmDir};

pub const CUDART_CALLS: &str = "shim-cuda/tests/c/cudart_calls.c";
pub const DRIVER_CALLS: &str = "shim-cuda/tests/c/driver_calls.c";
pub const TEST_DOUBLE: &str = "shim-cuda/tests/c/test_double_libcuda.c";

/// `cudaErrorInsufficientDriver`: the real runtime's answer to everything on a machine without a driver.
pub const INSUFFICIENT_DRIVER: i32 = 35;

/// The PyPI wheel's `libcudart.so.12` (`nvidia-cuda-runtime-cu12`). Fails the test with instructions when the
/// wheel is not installed: these tests never skip silently.
pub fn cudart() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let script = "import nvidia.cuda_runtime, os; print(list(nvidia.cuda_runtime.__path__)[0])";
        let output = Command::new(&python).args(["-c", script]).output();
        let dir = match output {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Ok(out) => panic!(
                "the CUDA runtime from PyPI is not installed ({python}: {}). Run the README's test command \
                 (scripts/test.sh), which installs it, or: {python} -m pip install nvidia-cuda-runtime-cu12",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("cannot run {python} ({e}); run the README's test command (scripts/test.sh)"),
        };
        let lib = Path::new(&dir).join("lib").join("libcudart.so.12");
        assert!(lib.exists(), "{} is missing; reinstall nvidia-cuda-runtime-cu12 (scripts/test.sh)", lib.display());
        lib
    })
}

/// The runtime workload, dlopening `--cudart PATH` and looking functions up in the handle.
pub fn cudart_calls_dlopen() -> PathBuf {
    testkit::c_program(CUDART_CALLS, &["-ldl"])
}

/// The runtime workload linked against the wheel's libcudart.
pub fn cudart_calls_linked() -> PathBuf {
    let lib = cudart();
    let dir = lib.parent().unwrap();
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    testkit::c_program(CUDART_CALLS, &["-DLINKED", lib.to_str().unwrap(), &rpath, "-ldl"])
}

/// The runtime workload linked against the wheel's static runtime (`libcudart_static.a`, what nvcc links by
/// default): no `cuda*` symbol is left to interpose, only the runtime's own driver lookups.
pub fn cudart_calls_static() -> PathBuf {
    let lib = cudart().with_file_name("libcudart_static.a");
    testkit::c_program(CUDART_CALLS, &["-DLINKED", lib.to_str().unwrap(), "-ldl", "-lpthread", "-lrt"])
}

/// The directory holding the test-double `libcuda.so.1` (built once per test process).
pub fn test_double_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = testkit::c_program(TEST_DOUBLE, &["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1"]);
        let dir = testkit::target_dir().join("testkit").join(format!("cuda-test-double.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&built, dir.join("libcuda.so.1")).unwrap();
        dir
    })
}

/// The driver workload, linked against the test double (so `--resolve link` works too).
pub fn driver_calls_linked() -> PathBuf {
    let dir = test_double_dir();
    let lib = dir.join("libcuda.so.1");
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    testkit::c_program(DRIVER_CALLS, &["-DLINKED", lib.to_str().unwrap(), &rpath, "-ldl"])
}

/// The driver workload that only dlopens `libcuda.so.1` (`RTLD_LOCAL`), found through `LD_LIBRARY_PATH`.
pub fn driver_calls_dlopen() -> PathBuf {
    testkit::c_program(DRIVER_CALLS, &["-ldl"])
}

/// `program args` with the CUDA shim preloaded, its segment in `shm`, the test double on the library path,
/// and `env` on top of a clean FAULTLINE_* slate.
pub fn shimmed(shm: &ShmDir, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    testkit::shimmed(&testkit::artifacts().cuda_shim, shm, program, args, env)
}

/// One finished run of a workload.
pub struct Run {
    pub output: Output,
    pub lines: Vec<String>,
    pub calls: Vec<Call>,
    pub summary: BTreeMap<String, (u64, u64)>,
}

impl Run {
    pub fn new(output: Output) -> Self {
        let lines: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
        Run { calls: calls(&lines), summary: summaries(&lines), lines, output }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts a clean exit and no data corruption.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.output.status.success(), "exit {:?}\n{}\n{}", self.output.status, self.stderr(), self.text());
        assert!(!self.stderr().contains("DATA_MISMATCH"), "{}", self.stderr());
        self
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Every call's status.
    pub fn statuses(&self) -> Vec<i32> {
        self.calls.iter().map(|c| c.status).collect()
    }

    /// (function, status) of every call.
    pub fn seen(&self) -> Vec<(String, i32)> {
        self.calls.iter().map(|c| (c.function.clone(), c.status)).collect()
    }

    /// `count=<c>` of the first CALL line of `function`.
    pub fn count_of(&self, function: &str) -> Option<i32> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("CALL ") && l.split_whitespace().nth(2) == Some(function))
            .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("count=")).and_then(|c| c.parse().ok()))
    }

    /// The test double's per-entry-point call counts (`DOUBLE <name> <calls>`).
    pub fn double_calls(&self) -> BTreeMap<String, u64> {
        self.lines
            .iter()
            .filter_map(|l| {
                let mut w = l.strip_prefix("DOUBLE ")?.split_whitespace();
                Some((w.next()?.to_string(), w.next()?.parse().ok()?))
            })
            .collect()
    }
}

pub fn run(command: &mut Command) -> Run {
    Run::new(command.output().expect("the program runs"))
}

/// The one segment a finished run left in `shm` (post-mortem), with its pid.
pub fn only_segment(shm: &ShmDir) -> (SegmentMap, u32) {
    let mut found: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().map(|e| e.path()).collect();
    found.retain(|p| p.file_name().unwrap().to_str().unwrap().starts_with("faultline."));
    assert_eq!(found.len(), 1, "{found:?}");
    let path = found.remove(0);
    let (_, pid) = shm_proto::segment::parse_file_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
    (SegmentMap::attach(&path, Access::ReadOnly, Default::default()).expect("segment readable"), pid)
}

pub fn hook_index(map: &SegmentMap, name: &str) -> usize {
    map.segment().header.hook_names().iter().position(|h| h == name).unwrap_or_else(|| panic!("no hook {name}"))
}

/// (calls, faults) of `hook` in the segment.
pub fn totals(map: &SegmentMap, hook: &str) -> (u64, u64) {
    map.segment().hook_totals(hook_index(map, hook))
}
