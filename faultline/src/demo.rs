//! `faultline demo`: the dashboard on a built-in workload. It compiles the bundled UCX self-loop program (a small C
//! program doing real UCX put/get/tag/active-message/flush traffic to itself, in a loop), starts it with the UCX
//! shim preloaded, 5 % random faults enabled and recording on, opens the dashboard focused on it, and when the
//! dashboard exits stops the workload and removes its segment.
//!
//! `faultline demo --experiment` runs an experiment instead ([`serve`] and [`EXPERIMENT`]): the same program serves
//! HTTP (every request real UCX work through the shim, 503 when UCX fails), and the experiment probes it through a
//! baseline, a phase of faults and a recovery, judges each, and puts the program's strategy back.
//!
//! The program is built once into `$XDG_CACHE_HOME/faultline` (or `~/.cache/faultline`) and rebuilt when its
//! source changes; the shim is the one that came with the running `faultline` (`faultline shim-path ucx`), or
//! `FAULTLINE_UCX_SHIM`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use shm_proto::segment;
use shm_proto::Kind;

use crate::dashboard;
use crate::targets::Selection;

/// The workload's source, bundled into the binary.
pub const SOURCE: &str = include_str!("../../shim-ucx/tests/c/ucx_selfloop.c");
/// How the workload runs: forever, an iteration every 2 ms, all the UCP traffic kinds that need no extra setup.
pub const ARGS: [&str; 6] = ["--forever", "--interval-us", "2000", "--quiet", "--ops", "put,get,tag,am,flush"];
/// The Debian packages the build needs.
pub const PACKAGES: &str = "build-essential libucx-dev";

/// Builds and starts the workload, runs the dashboard on it, and stops the workload afterwards.
pub fn run(read_only: bool) -> anyhow::Result<()> {
    let shim = find_shim()?;
    let cache = cache_dir();
    let program = build(&cache)?;
    let mut workload = Workload::start(&program, &shim, &cache)?;
    workload.wait_for_segment()?;
    let pid = workload.child.id();
    let selection = Selection { pids: vec![pid], kind: None };
    dashboard::run(dashboard::Options {
        selection,
        read_only,
        bench: None,
        cluster: Default::default(),
        cluster_processes: false,
    })
}

/// The experiment `faultline demo --experiment` runs against the served workload (`{port}` and `{pid}` filled in).
pub const EXPERIMENT: &str = r#"name: demo-survives-ucx-faults
target: {pid: {pid}}
probes:
  - name: requests
    http: {url: "http://127.0.0.1:{port}/v1/completions", method: POST, json: {prompt: hello, max_tokens: 4},
           interval: 50ms, timeout: 10s, ok_status: [200]}
phases:
  - name: baseline
    duration: 3s
    expect: [{probe: requests, success_rate: ">= 99%"}]
  - name: faults
    actions: ["hooks ucp_put_nbx", "strategy random", "probability 50", "enable"]
    duration: 4s
    expect: [{probe: requests, success_rate: "<= 90%"}, {target: faults, value: "> 0"}]
  - name: recovery
    actions: ["disable"]
    duration: 3s
    expect: [{probe: requests, recovers_within: 2s}, {probe: requests, latency_p99: "<= 2s"}]
"#;

/// The demo's served workload: killed, reaped and its segment removed when dropped.
pub struct Served {
    workload: Workload,
    /// Where it listens (127.0.0.1).
    pub port: u16,
}

impl Served {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.workload.child.id()
    }

    /// [`EXPERIMENT`] for it, written into the cache directory; the file's path.
    pub fn experiment_file(&self) -> anyhow::Result<PathBuf> {
        let text = EXPERIMENT.replace("{port}", &self.port.to_string()).replace("{pid}", &self.pid().to_string());
        let path = cache_dir().join("demo-experiment.yaml");
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Builds the workload and starts it serving HTTP on a free port under the UCX shim, injection off.
pub fn serve() -> anyhow::Result<Served> {
    use std::io::BufRead;
    let shim = find_shim()?;
    let cache = cache_dir();
    let program = build(&cache)?;
    let args = ["--http", "0", "--quiet", "--ops", "put,get,flush"];
    let mut workload = Workload::spawn(&program, &args, &[], Stdio::piped(), &shim, &cache)?;
    workload.wait_for_segment()?;
    let stdout = workload.child.stdout.take().context("the workload's output")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => match line.strip_prefix("HTTP ").map(|p| p.trim().parse::<u16>()) {
                Some(Ok(port)) => break port,
                _ => continue,
            },
            _ => {
                let log = std::fs::read_to_string(&workload.log).unwrap_or_default();
                bail!("the demo workload stopped before it listened:\n{log}");
            }
        }
    };
    // Its output is not read any more: --quiet prints nothing per request.
    Ok(Served { workload, port })
}

/// `$XDG_CACHE_HOME/faultline`, `~/.cache/faultline`, or a directory under the system's temporary directory.
pub fn cache_dir() -> PathBuf {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("faultline")
}

/// `libfaultline_ucx.so`: `FAULTLINE_UCX_SHIM`, or the one that came with the running executable.
pub fn find_shim() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_UCX_SHIM").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    crate::shims::shim_path(Kind::Ucx).map_err(|e| anyhow::anyhow!("{e}; or point FAULTLINE_UCX_SHIM at one"))
}

/// FNV-1a: a hash of the source that stays the same across Rust versions, for the cache file name.
fn source_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Compiles the workload into `cache` unless the binary for this source is there already.
pub fn build(cache: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    // One directory per source version, so the process is still called `ucx_selfloop` on screen.
    let dir = cache.join(format!("workload-{:016x}", source_hash(SOURCE)));
    let binary = dir.join("ucx_selfloop");
    if binary.is_file() {
        return Ok(binary);
    }
    if dir.exists() && !dir.is_dir() {
        // Not ours to keep (a leftover of something else by that name): the cache may be rebuilt at will.
        std::fs::remove_file(&dir).with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let source = dir.join("ucx_selfloop.c");
    std::fs::write(&source, SOURCE).with_context(|| format!("cannot write {}", source.display()))?;
    let building = dir.join(format!("ucx_selfloop.{}.tmp", std::process::id()));
    let output = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&building)
        .arg(&source)
        .args(["-lucp", "-lucs"])
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("faultline demo compiles a small UCX program but no C compiler (cc) was found: apt-get install {PACKAGES}")
        }
        Err(error) => return Err(error).context("cannot run cc"),
    };
    if !output.status.success() {
        let _ = std::fs::remove_file(&building);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("ucp/api/ucp.h") || stderr.contains("-lucp") || stderr.contains("-lucs") {
            format!("UCX's headers or libraries are missing: apt-get install {PACKAGES}\n")
        } else {
            String::new()
        };
        bail!("{hint}compiling the demo workload failed:\n{stderr}");
    }
    std::fs::rename(&building, &binary).with_context(|| format!("cannot write {}", binary.display()))?;
    Ok(binary)
}

/// The running workload: killed, reaped and its segment removed when dropped.
struct Workload {
    child: Child,
    log: PathBuf,
}

impl Workload {
    fn start(program: &Path, shim: &Path, cache: &Path) -> anyhow::Result<Workload> {
        let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "5"), ("FAULTLINE_RECORD", "1")];
        Workload::spawn(program, &ARGS, &env, Stdio::null(), shim, cache)
    }

    fn spawn(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stdout: Stdio,
        shim: &Path,
        cache: &Path,
    ) -> anyhow::Result<Workload> {
        let log = cache.join("demo-workload.log");
        let stderr = std::fs::File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .env("LD_PRELOAD", shim)
            .envs(env.iter().copied())
            .env("UCX_WARN_UNUSED_ENV_VARS", "n")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Workload { child, log })
    }

    fn segment(&self) -> PathBuf {
        segment::shm_dir().join(segment::file_name(Kind::Ucx, self.child.id()))
    }

    /// Waits until the shim has published the workload's segment.
    fn wait_for_segment(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = self.segment();
        while !path.exists() {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("the demo workload exited ({status}) before it started:\n{log}");
            }
            if Instant::now() > deadline {
                bail!(
                    "the demo workload (pid {}) has no segment {} after 30 s; its log is {}",
                    self.child.id(),
                    path.display(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.segment());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_name_follows_the_source() {
        assert_ne!(source_hash("a"), source_hash("b"));
        assert_eq!(source_hash(""), 0xcbf2_9ce4_8422_2325);
    }
}
