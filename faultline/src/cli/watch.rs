//! `faultline node watch`: the node agent's long-lived session, one per node, for the cluster side (one exec
//! WebSocket per node, not one per process or per refresh).
//!
//! Standard output is JSON lines:
//! - `{"type":"snapshot","seq":N,"processes":[…],"unusable":[…]}` every `--interval-ms`: every shimmed process on
//!   the node (host pids, every container), each as `faultline status --json` shows it (identity and pod, kind,
//!   state, strategy, per-hook counters) with its newest `--records` records (`records`, and the recording's
//!   `recorded` and `missed` totals);
//! - `{"type":"reply","id":…,"exit":0|1|2,"report":{…},"text":"…"}` (or `"error":"…"`) for each command read: the
//!   `--json` report and the text the command prints.
//!
//! Standard input takes one command per line, `{"id": <any JSON>, "args": ["--pid", "1234", "probability", "50"]}`:
//! the words of an ordinary process command (host pids), validated and executed exactly as `faultline node <args>`
//! would, its report the `--json` one. The session ends when standard input closes (the operator went away) or
//! standard output does.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use faultline::error::{EXIT_OK, EXIT_USAGE};
use faultline::recording;
use faultline::state::ProcessState;
use faultline::targets::{self, Purpose, Target, Unusable};
use faultline::{output, Options, Selection};
use serde_json::{json, Value};
use shm_proto::segment;
use shm_proto::Kind;

use super::node::{Globals, NOT_PROCESS_COMMANDS};
use super::Cli;

/// The options of `faultline node watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// How often a snapshot is printed.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub interval_ms: u64,
    /// The newest records of each process in every snapshot (0: none).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub records: u64,
}

/// Runs the session until standard input or standard output closes.
pub fn run(args: WatchArgs, globals: Globals) -> anyhow::Result<u8> {
    if args.interval_ms == 0 {
        return Err(faultline::Error::usage("--interval-ms must be at least 1").into());
    }
    let interval = Duration::from_millis(args.interval_ms);
    targets::force_container_discovery();
    let (lines, inbox) = mpsc::channel::<String>();
    std::thread::Builder::new().name("faultline-watch-stdin".into()).spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
        // Dropping the sender tells the session its operator went away.
    })?;
    let mut stdout = std::io::stdout().lock();
    let mut seq: u64 = 0;
    let mut survey = Survey::default();
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            let line = snapshot(seq, args.records, &globals, &mut survey);
            if !emit(&mut stdout, &line) {
                return Ok(EXIT_OK);
            }
            seq += 1;
            // A slow snapshot is not caught up with: the next one comes a whole interval later.
            next = (next + interval).max(now + interval / 2);
        }
        match inbox.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => {
                if !emit(&mut stdout, &reply(&line, &globals)) {
                    return Ok(EXIT_OK);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(EXIT_OK),
        }
    }
}

/// Writes one JSON line; `false` once standard output is gone.
fn emit(stdout: &mut impl Write, value: &Value) -> bool {
    writeln!(stdout, "{value}").and_then(|()| stdout.flush()).is_ok()
}

/// How many snapshots apart the segment directories (and every container's) are scanned again: new processes show
/// within this many intervals; in between, the attached segments are only read, which keeps the session cheap.
const DISCOVER_EVERY: u64 = 4;

/// The segments the session keeps attached (read-only) from one snapshot to the next, as the dashboard does.
#[derive(Default)]
struct Survey {
    targets: BTreeMap<PathBuf, Target>,
    unusable: Vec<Unusable>,
}

impl Survey {
    /// Scans the directories: attaches new segments, forgets removed files, re-attaches a segment whose file was
    /// truncated under it or whose dead process's pid was reused.
    fn discover(&mut self, kind: Option<Kind>) {
        let found = targets::discover();
        let present: HashSet<&PathBuf> = found.iter().map(|f| &f.path).collect();
        self.targets.retain(|path, _| present.contains(path));
        self.unusable.clear();
        for found in found.iter().filter(|f| kind.is_none_or(|k| k == f.kind)) {
            let stale = self.targets.get(&found.path).is_none_or(|t| t.map.truncations_survived() > 0 || !t.alive);
            if !stale {
                continue;
            }
            match targets::attach(found, Purpose::Survey) {
                Ok(target) => {
                    self.targets.insert(found.path.clone(), target);
                }
                Err(error) => {
                    self.targets.remove(&found.path);
                    self.unusable.push(Unusable::new(found, &error));
                }
            }
        }
    }

    /// Checks whether the attached processes still run.
    fn check_liveness(&mut self) {
        for target in self.targets.values_mut().filter(|t| t.alive) {
            target.alive = segment::is_alive(&target.map, target.pid());
        }
    }
}

/// Every shimmed process on the node, as `status --json` shows each, with its newest records.
fn snapshot(seq: u64, records: u64, globals: &Globals, survey: &mut Survey) -> Value {
    if seq.is_multiple_of(DISCOVER_EVERY) {
        survey.discover(globals.kind.map(Into::into));
    } else {
        survey.check_liveness();
    }
    let mut attached: Vec<&Target> = survey.targets.values().collect();
    attached.sort_by_key(|t| (t.pid(), t.kind()));
    let processes: Vec<Value> = attached
        .into_iter()
        .filter_map(|target| {
            let mut state = serde_json::to_value(ProcessState::read(target).ok()?).ok()?;
            if records > 0 {
                // Only the newest records are read: the session costs the same whatever the ring holds.
                let newest = recording::newest(target, records);
                let dump = recording::records(target, &newest, &newest.records);
                state["records"] = serde_json::to_value(&dump.records).unwrap_or(Value::Null);
                state["recorded"] = newest.recorded.into();
                state["missed"] = newest.missed.into();
            }
            Some(state)
        })
        .collect();
    json!({"type": "snapshot", "seq": seq, "processes": processes, "unusable": survey.unusable})
}

/// Runs one command line and says how it went.
fn reply(line: &str, globals: &Globals) -> Value {
    let parsed: Result<Value, _> = serde_json::from_str(line);
    let id = parsed.as_ref().ok().and_then(|v| v.get("id").cloned()).unwrap_or(Value::Null);
    let fail = |exit: u8, error: String| json!({"type": "reply", "id": id, "exit": exit, "error": error});
    let args: Vec<String> = match parsed.as_ref().ok().and_then(|v| v.get("args")).and_then(Value::as_array) {
        Some(words) if !words.is_empty() && words.iter().all(Value::is_string) => {
            words.iter().filter_map(|w| w.as_str().map(str::to_string)).collect()
        }
        _ => {
            let why = r#"a command is one JSON object per line: {"id": …, "args": ["--pid", "1234", "enable"]}"#;
            return fail(EXIT_USAGE, why.to_string());
        }
    };
    let command_word = args.iter().find(|word| !word.starts_with('-')).cloned().unwrap_or_default();
    if NOT_PROCESS_COMMANDS.contains(&command_word.as_str()) || command_word == "watch" {
        return fail(EXIT_USAGE, format!("`{command_word}`: only process commands (ps, status, enable, …) run here"));
    }
    let mut argv = vec!["faultline".to_string(), "--json".to_string()];
    argv.extend(globals.read_only.then(|| "--read-only".to_string()));
    argv.extend(args);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(error) => return fail(EXIT_USAGE, error.to_string().trim().to_string()),
    };
    let Some(command) = cli.command else { return fail(EXIT_USAGE, "no command given".to_string()) };
    let selection = Selection { pids: cli.pids, kind: cli.kind.map(Into::into) };
    let outcome = command
        .request(selection.kind)
        .and_then(|request| faultline::execute(&request, &selection, Options { read_only: cli.read_only }));
    match outcome {
        Ok(report) => {
            let rendered = output::render(&report, true);
            let text = output::render(&report, false).stdout;
            let exit = report.exit_code();
            let report: Value = serde_json::from_str(&rendered.stdout).unwrap_or(Value::String(rendered.stdout));
            json!({"type": "reply", "id": id, "exit": exit, "report": report, "text": text, "notes": rendered.notes})
        }
        Err(error) => fail(error.exit_code(), error.to_string()),
    }
}
