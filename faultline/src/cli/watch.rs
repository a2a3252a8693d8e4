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

use std::io::{BufRead, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use faultline::error::{EXIT_OK, EXIT_USAGE};
use faultline::recording;
use faultline::state::ProcessState;
use faultline::targets::{self, Purpose};
use faultline::{output, Options, Selection};
use serde_json::{json, Value};

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
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            let line = snapshot(seq, args.records, &globals);
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

/// Every shimmed process on the node, as `status --json` shows each, with its newest records.
fn snapshot(seq: u64, records: u64, globals: &Globals) -> Value {
    let selection = Selection { pids: Vec::new(), kind: globals.kind.map(Into::into) };
    let found = match targets::select(&selection, Purpose::Survey) {
        Ok(found) => found,
        Err(error) => return json!({"type": "snapshot", "seq": seq, "processes": [], "error": error.to_string()}),
    };
    let processes: Vec<Value> = found
        .targets
        .iter()
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
    json!({"type": "snapshot", "seq": seq, "processes": processes, "unusable": found.unusable})
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
