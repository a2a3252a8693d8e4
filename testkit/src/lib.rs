//! Test support shared by the shim and CLI integration tests (a dev-dependency only).
//!
//! - [`artifacts`]: the release shims and the `faultline` binary, and `ucx-fault-client` beside it (built once per
//!   test run, or taken from `FAULTLINE_UCX_SHIM` / `FAULTLINE_CUDA_SHIM` / `FAULTLINE_BIN`);
//! - [`c_program`]: compiles a C test program from `*/tests/c/` once per test run;
//! - [`ShmDir`]: a private segment directory per test (`FAULTLINE_SHM_DIR`), removed on drop, so tests never see
//!   each other's processes and leave nothing in `/dev/shm`;
//! - [`Program`]: a process under test with its stdout (and optionally stderr) lines collected, killed on drop;
//! - [`wait_until`]: polling with a generous watchdog instead of fixed sleeps.
#![deny(unsafe_op_in_unsafe_fn)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long any wait may take before a test fails (a watchdog, not a timing assertion).
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit lives in the workspace").to_path_buf()
}

/// Paths of the built artifacts.
pub struct Artifacts {
    /// `libfaultline_ucx.so`
    pub ucx_shim: PathBuf,
    /// `libfaultline_cuda.so`
    pub cuda_shim: PathBuf,
    /// `faultline`
    pub faultline: PathBuf,
    /// `ucx-fault-client`: the same program under the seed client's name, built beside `faultline`.
    pub ucx_fault_client: PathBuf,
}

/// Builds the release artifacts once per test process (or uses the paths given in the environment).
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let overridden = |var: &str| std::env::var_os(var).map(PathBuf::from);
        if let (Some(ucx_shim), Some(cuda_shim), Some(faultline)) =
            (overridden("FAULTLINE_UCX_SHIM"), overridden("FAULTLINE_CUDA_SHIM"), overridden("FAULTLINE_BIN"))
        {
            let ucx_fault_client = faultline.with_file_name("ucx-fault-client");
            return Artifacts { ucx_shim, cuda_shim, faultline, ucx_fault_client };
        }
        let root = workspace_root();
        let mut build = Command::new(env!("CARGO"));
        // The same feature set as `cargo build --release --workspace` (scripts/test.sh), so nothing is rebuilt ...
        build.args(["build", "--release", "--workspace"]).current_dir(&root);
        // ... and the same environment.
        without_package_cargo_variables(&mut build);
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the release artifacts failed");
        let release = target_dir().join("release");
        Artifacts {
            ucx_shim: release.join("libfaultline_ucx.so"),
            cuda_shim: release.join("libfaultline_cuda.so"),
            faultline: release.join("faultline"),
            ucx_fault_client: release.join("ucx-fault-client"),
        }
    })
}

/// Removes from `command`'s environment the variables cargo gives each test process for its package, for a command
/// that runs cargo on the workspace: build scripts that watch them (ring's watches CARGO_MANIFEST_DIR) would
/// otherwise rebuild half the release tree once per crate whose tests run.
pub fn without_package_cargo_variables(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if is_per_package_cargo_variable(&name) {
            command.env_remove(&name);
        }
    }
    command
}

/// The variables cargo sets for one package's build scripts, binaries and tests (not its configuration).
fn is_per_package_cargo_variable(name: &str) -> bool {
    const EXACT: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Compiles `source` (relative to the workspace root) with `cc` and `args` (flags and libraries; `-shared` makes
/// a `.so`), once per test process and argument list.
pub fn c_program(source: &str, args: &[&str]) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let key = format!("{source} {}", args.join(" "));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let src = workspace_root().join(source);
    let out_dir = target_dir().join("testkit");
    std::fs::create_dir_all(&out_dir).expect("target dir is writable");
    let stem = src.file_stem().expect("a file").to_string_lossy().into_owned();
    // One binary per test process: parallel test binaries must not write the same file.
    let variant = built.len();
    let suffix = if args.contains(&"-shared") { ".so" } else { "" };
    let out = out_dir.join(format!("{stem}.{}.{variant}{suffix}", std::process::id()));
    let output = Command::new("cc")
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(args)
        .output()
        .expect("cc runs");
    assert!(output.status.success(), "compiling {source} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    built.insert(key, out.clone());
    out
}

/// A private segment directory, removed (with everything in it) on drop.
pub struct ShmDir {
    dir: tempfile::TempDir,
}

impl ShmDir {
    /// A new empty directory on tmpfs where available.
    pub fn new() -> Self {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        ShmDir { dir: tempfile::Builder::new().prefix("faultline-test.").tempdir_in(base).expect("temp dir") }
    }

    /// Its path (pass as `FAULTLINE_SHM_DIR`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The segment file a process of `kind` with `pid` (in our pid namespace) creates here.
    pub fn segment(&self, kind: &str, pid: u32) -> PathBuf {
        let kind = shm_proto::Kind::from_name(kind).unwrap_or_else(|| panic!("no segment kind {kind}"));
        self.path().join(shm_proto::segment::file_name(kind, pid))
    }
}

impl Default for ShmDir {
    fn default() -> Self {
        Self::new()
    }
}

/// `program args` with `shim` preloaded, its segment in `shm`, and `env` on top of a clean `FAULTLINE_*` slate.
pub fn shimmed(shim: &Path, shm: &ShmDir, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FAULTLINE_")) {
        command.env_remove(name);
    }
    command.env("LD_PRELOAD", shim).env("FAULTLINE_SHM_DIR", shm.path()).envs(env.iter().copied());
    command
}

/// A running program whose stdout lines are collected; killed and reaped on drop.
pub struct Program {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    errors: Option<Receiver<String>>,
    /// Every stdout line so far.
    pub seen: Vec<String>,
    /// Every stderr line so far (with [`Program::spawn_capturing_stderr`]).
    pub seen_errors: Vec<String>,
}

/// Sends each line `reader` gives to a new channel, from a thread of its own.
fn line_channel(reader: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Program {
    /// Starts `command` with piped stdin/stdout (stderr inherited, so failures show in test output).
    pub fn spawn(command: Command) -> Self {
        Self::start(command, false)
    }

    /// Like [`Program::spawn`], with stderr collected too (see [`Program::error_lines_until`]).
    pub fn spawn_capturing_stderr(command: Command) -> Self {
        Self::start(command, true)
    }

    fn start(mut command: Command, capture_stderr: bool) -> Self {
        let stderr = if capture_stderr { Stdio::piped() } else { Stdio::inherit() };
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = command.spawn().expect("program starts");
        let lines = line_channel(child.stdout.take().expect("piped"));
        let errors = child.stderr.take().map(line_channel);
        let stdin = child.stdin.take();
        Program { child, stdin, lines, errors, seen: Vec::new(), seen_errors: Vec::new() }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).expect("program reads stdin");
    }

    /// Collects lines until one satisfies `done` (returned lines include it). Panics after [`WATCHDOG`].
    pub fn lines_until(&mut self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WATCHDOG;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let finished = done(&line);
                    got.push(line);
                    if finished {
                        return got;
                    }
                }
                Err(e) => panic!("program {} gave no expected line ({e}); last lines: {:?}", self.pid(), last(&got)),
            }
        }
    }

    /// Collects stderr lines until one satisfies `done` (returned lines include it). Panics after [`WATCHDOG`], or if
    /// stderr is not captured.
    pub fn error_lines_until(&mut self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let pid = self.pid();
        let errors = self.errors.as_ref().expect("started with spawn_capturing_stderr");
        let deadline = Instant::now() + WATCHDOG;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match errors.recv_timeout(left) {
                Ok(line) => {
                    self.seen_errors.push(line.clone());
                    let finished = done(&line);
                    got.push(line);
                    if finished {
                        return got;
                    }
                }
                Err(e) => panic!("program {pid} wrote no expected stderr line ({e}); last lines: {:?}", last(&got)),
            }
        }
    }

    /// The next line if one has arrived (never waits); it is also added to [`Program::seen`].
    pub fn try_line(&mut self) -> Option<String> {
        let line = self.lines.try_recv().ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Kills it with `signal` and reaps it.
    pub fn kill(&mut self, signal: i32) {
        // SAFETY: signalling our own child by pid; it has not been reaped yet, so the pid is still ours.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for a clean exit.
    pub fn finish(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        let status = self.child.wait().expect("wait works");
        for line in self.lines.try_iter() {
            self.seen.push(line);
        }
        status
    }
}

fn last(lines: &[String]) -> &[String] {
    &lines[lines.len().saturating_sub(5)..]
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pid that certainly belongs to no process now: a child we started and reaped.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("true runs");
    let pid = child.id();
    child.wait().expect("reaped");
    pid
}

/// Polls `condition` until it holds; panics after [`WATCHDOG`] with `what`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kubernetes-validate` (PyPI), the manifest validator the tests use; a clear failure if it is not installed.
pub fn kubernetes_validate() -> Command {
    let probe = Command::new("kubernetes-validate").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "kubernetes-validate (PyPI) is missing: run `scripts/install-deps.sh --test` (the README's test command)"
    );
    Command::new("kubernetes-validate")
}

/// Runs `faultline` with `args`, its segment directory set to `shm`.
pub fn faultline(shm: &ShmDir, args: &[&str]) -> Output {
    Command::new(&artifacts().faultline)
        .args(args)
        .env("FAULTLINE_SHM_DIR", shm.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("faultline runs")
}

/// One `CALL` line of the C test programs: `CALL <n> <function> <status>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The counter as printed (`7` or `2:7` with threads).
    pub n: String,
    /// The function called.
    pub function: String,
    /// What it returned.
    pub status: i32,
}

/// Parses the `CALL` lines among `lines`.
pub fn calls(lines: &[String]) -> Vec<Call> {
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("CALL ")?.split_whitespace();
            Some(Call {
                n: words.next()?.to_string(),
                function: words.next()?.to_string(),
                status: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Parses `SUMMARY <function> calls=<c> failures=<f>` lines into function → (calls, failures).
pub fn summaries(lines: &[String]) -> BTreeMap<String, (u64, u64)> {
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("SUMMARY ")?.split_whitespace();
            let function = words.next()?.to_string();
            let calls = words.next()?.strip_prefix("calls=")?.parse().ok()?;
            let failures = words.next()?.strip_prefix("failures=")?.parse().ok()?;
            Some((function, (calls, failures)))
        })
        .collect()
}
