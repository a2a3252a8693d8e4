//! `faultline`: attach to shimmed processes by pid and steer their faults. This file only parses the command line,
//! hands the request to the library, prints the report and maps errors to exit statuses. It is also the seed
//! injector's `ucx-fault-client` (`src/bin/ucx-fault-client.rs` builds this same file under that name).
#![forbid(unsafe_code)]

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory;
use faultline::error::{EXIT_FAILED, EXIT_OK};
use faultline::{dashboard, output, Options, Selection};

// `self`, not `crate`: this file is also a module of the `ucx-fault-client` binary.
use self::cli::{Cli, Command};

/// The program, under either name.
pub fn main() -> ExitCode {
    let cli = Cli::from_invocation();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) if is_broken_pipe(&error) => ExitCode::from(EXIT_OK),
        Err(error) => {
            let code = exit_code(&error);
            eprintln!("faultline: {}", printable(&message(&error)));
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let Some(command) = cli.command else {
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            let hint = "the dashboard needs a terminal; give a command instead (see faultline --help)";
            return Err(faultline::Error::usage(hint).into());
        }
        let bench = cli.bench_report.map(|report| dashboard::Bench { seconds: cli.bench_seconds, report });
        let selection = Selection { pids: cli.pids, kind: cli.kind.map(Into::into) };
        let cluster = faultline::cluster::ConnectOptions { context: cli.context, namespace: cli.agent_namespace };
        let cluster_processes = cli.cluster_processes;
        dashboard::run(dashboard::Options { selection, read_only: cli.read_only, bench, cluster, cluster_processes })?;
        return Ok(EXIT_OK);
    };
    if let Command::Demo { experiment, junit } = command {
        if !experiment {
            faultline::demo::run(cli.read_only)?;
            return Ok(EXIT_OK);
        }
        let served = faultline::demo::serve()?;
        eprintln!("faultline: the demo workload (pid {}) serves http://127.0.0.1:{}/", served.pid(), served.port);
        let file = served.experiment_file()?;
        let run = cli::experiment::ExperimentCommand::Run { file, junit, json_report: None };
        let cluster = faultline::cluster::ConnectOptions { context: cli.context, namespace: cli.agent_namespace };
        return cli::experiment::run(run, cluster, cli.read_only);
    }
    if let Command::Node { command } = command {
        let globals = cli::node::Globals { pids: cli.pids, kind: cli.kind, json: cli.json, read_only: cli.read_only };
        return cli::node::run(command, globals);
    }
    if let Command::Cluster(mut args) = command {
        // `faultline --context C cluster …` means `faultline cluster --context C …`, never the current context.
        args.context = args.context.or(cli.context);
        args.agent_namespace = args.agent_namespace.or(cli.agent_namespace);
        return cli::cluster::run(args, &cli.pids, cli.json, cli.read_only);
    }
    if let Command::Experiment { command } = command {
        let cluster = faultline::cluster::ConnectOptions { context: cli.context, namespace: cli.agent_namespace };
        return cli::experiment::run(command, cluster, cli.read_only);
    }
    if let Command::ShimPath { kind } = command {
        let path = faultline::shims::shim_path(kind.into())?;
        let text = path.to_str().ok_or_else(|| anyhow::anyhow!("the shim's path is not UTF-8: {}", path.display()))?;
        let line = if cli.json {
            serde_json::json!({ "kind": kind.name(), "path": text }).to_string()
        } else {
            text.to_string()
        };
        writeln!(io::stdout().lock(), "{line}")?;
        return Ok(EXIT_OK);
    }
    if let Command::Completions { shell } = command {
        clap_complete::generate(shell, &mut Cli::command(), "faultline", &mut io::stdout());
        return Ok(EXIT_OK);
    }
    let selection = Selection { pids: cli.pids, kind: cli.kind.map(Into::into) };
    let request = command.request(selection.kind)?;
    let report = faultline::execute(&request, &selection, Options { read_only: cli.read_only })?;
    let rendered = output::render(&report, cli.json);
    for note in &rendered.notes {
        eprintln!("faultline: {}", printable(note));
    }
    let mut stdout = io::stdout().lock();
    stdout.write_all(rendered.stdout.as_bytes())?;
    stdout.flush()?;
    Ok(report.exit_code())
}

/// The exit status for `error`: each action layer's errors say their own (2: nothing was changed).
fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(error) = error.downcast_ref::<faultline::Error>() {
        error.exit_code()
    } else if let Some(error) = error.downcast_ref::<faultline::cluster::ClusterError>() {
        error.exit_code()
    } else if let Some(error) = error.downcast_ref::<faultline::node::NodeError>() {
        error.exit_code()
    } else {
        EXIT_FAILED
    }
}

/// The error and its causes, each once. Most errors already say their cause (`path: No such file or directory`), and
/// some also return it as their `source()` (shm_proto's segment I/O error): a cause whose text is already in the
/// message is not repeated.
fn message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if message.contains(&cause) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause);
    }
    message
}

/// A message for standard error: it can quote names read from segments, so each line's control characters are
/// escaped (the line breaks of a multi-line message are kept).
fn printable(message: &str) -> String {
    message.split('\n').map(output::escape_controls).collect::<Vec<_>>().join("\n")
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
