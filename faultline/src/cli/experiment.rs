//! `faultline experiment run FILE [--junit OUT.xml] [--json OUT.json]` and `faultline experiment validate FILE`:
//! the experiment engine (`faultline::experiment`) over the command line's own actions. An action is a faultline
//! command line: a process command (applied to the experiment's target, local or in the cluster) or a `cluster …`
//! command (its faults recovered through the ledger at the end). Exit 0: every expectation held; 1: one failed, or
//! the run was interrupted; 2: an invalid file or arguments, nothing done.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use faultline::actions::{self, Planned};
use faultline::cluster::action::{self, Access, ClusterRequest};
use faultline::cluster::conditions::{self, Condition};
use faultline::cluster::{ConnectOptions, Session};
use faultline::error::{EXIT_FAILED, EXIT_OK};
use faultline::experiment::run::{self, Actor};
use faultline::experiment::spec::{self, Target};
use faultline::experiment::verdict::Counters;
use faultline::state::ProcessState;
use faultline::targets::{self, Purpose};
use faultline::{output, Options, Selection};
use serde_json::Value;
use shm_proto::{Kind, Strategy};

use super::{Cli, Command};

/// `faultline experiment …`.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Run an experiment file: probes measure the service while each phase's actions inject faults; every
    /// expectation is judged; whatever was changed is undone at the end (also on Ctrl-C).
    Run {
        /// The experiment (YAML).
        file: PathBuf,
        /// Write a JUnit XML report here (one test case per expectation).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write the JSON report (the timeline, the probes per second, the verdicts) here.
        #[arg(long = "json-report", value_name = "FILE")]
        json_report: Option<PathBuf>,
    },
    /// Check an experiment file (syntax, probes, durations, bounds, every action's words) without running it.
    Validate {
        /// The experiment (YAML).
        file: PathBuf,
    },
}

/// Runs `faultline experiment …`; `cluster`: the kubeconfig context and agent namespace of its cluster actions and
/// conditions (`faultline --context C experiment run …`).
pub fn run(command: ExperimentCommand, cluster: ConnectOptions, read_only: bool) -> anyhow::Result<u8> {
    let file = match &command {
        ExperimentCommand::Run { file, .. } | ExperimentCommand::Validate { file } => file.clone(),
    };
    let text =
        std::fs::read_to_string(&file).map_err(|e| faultline::Error::usage(format!("{}: {e}", file.display())))?;
    let plan = spec::parse(&text, check_action)
        .map_err(|error| faultline::Error::usage(format!("{}: {error}", file.display())))?;
    let (junit, json_report) = match command {
        ExperimentCommand::Validate { .. } => {
            let phases = plan.experiment.phases.len();
            let checks: usize = plan.checks.iter().map(Vec::len).sum();
            println!("{}: valid ({phases} phase(s), {checks} expectation(s))", file.display());
            return Ok(EXIT_OK);
        }
        ExperimentCommand::Run { junit, json_report, .. } => (junit, json_report),
    };
    // The first Ctrl-C (or SIGTERM) ends the phase in progress and runs the clean-up; a second one while an action
    // is still running (a long `cluster gpu-failure` watch) exits at once, without it, status 1.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, i32::from(EXIT_FAILED), stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut actor = CliActor::new(plan.experiment.target.clone(), cluster, read_only);
    actor.needs_target = plan.needs_target();
    let report = run::run(&plan, &mut actor, &stop, &mut |line| eprintln!("faultline: {line}"));
    if let Some(path) = junit {
        faultline::recording::write_atomically(&path, &report.to_junit())?;
    }
    if let Some(path) = json_report {
        let text = format!("{}\n", serde_json::to_string_pretty(&report.to_json())?);
        faultline::recording::write_atomically(&path, &text)?;
    }
    let failed = report.verdicts.iter().filter(|v| !v.passed).count();
    let verdict = match (&report.interrupted, failed) {
        (Some(why), _) => format!("interrupted: {why}"),
        (None, 0) => format!("passed: {} expectation(s) held", report.verdicts.len()),
        (None, n) => format!("failed: {n} of {} expectation(s) did not hold", report.verdicts.len()),
    };
    println!("experiment {}: {verdict}", report.name);
    Ok(if report.passed() { EXIT_OK } else { EXIT_FAILED })
}

/// Whether `words` are an action an experiment can take: a process command (checked as the command line checks it;
/// the target chooses the processes) or a `cluster` command.
fn check_action(words: &[String]) -> Result<(), String> {
    let cli = parse(words)?;
    if !cli.pids.is_empty() {
        return Err("--pid is not for actions: the experiment's target chooses the processes".into());
    }
    match cli.command {
        Some(Command::Cluster(_)) => Ok(()),
        Some(
            Command::Demo { .. }
            | Command::Node { .. }
            | Command::ShimPath { .. }
            | Command::Completions { .. }
            | Command::Experiment { .. }
            | Command::Clean,
        ) => Err(format!("`{}` is not an action an experiment can take", words[0])),
        Some(command) => command.request(cli.kind.map(Into::into)).map(|_| ()).map_err(|e| e.to_string()),
        None => Err("no command".into()),
    }
}

fn parse(words: &[String]) -> Result<Cli, String> {
    let argv = std::iter::once("faultline".to_string()).chain(words.iter().cloned());
    Cli::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
    })
}

/// The command line's actions: local processes through the process action layer (their strategies saved first and
/// put back exactly), the cluster through the cluster action layer (faults recovered by id, cluster processes' settings
/// put back with `set`).
struct CliActor {
    target: Target,
    /// Where the cluster is.
    connect: ConnectOptions,
    read_only: bool,
    /// Local target processes and the strategy each had before.
    local: Vec<(u32, Kind, Strategy)>,
    /// Cluster target processes (node, host pid, kind) and the words that put each back.
    remote: Vec<(String, u32, Vec<Vec<String>>)>,
    fault_ids: Vec<String>,
    /// Whether any action or check is about processes (else the target is not looked for).
    needs_target: bool,
    /// For the cluster conditions: connected at the first.
    session: Option<Session>,
    /// Events of each reason at the start of the phase waiting for one.
    event_baselines: BTreeMap<String, usize>,
}

impl CliActor {
    fn new(target: Target, connect: ConnectOptions, read_only: bool) -> CliActor {
        let (local, remote, fault_ids) = (Vec::new(), Vec::new(), Vec::new());
        let (session, event_baselines) = (None, BTreeMap::new());
        let needs_target = true;
        CliActor { target, connect, read_only, local, remote, fault_ids, needs_target, session, event_baselines }
    }

    /// The session the cluster conditions are read through.
    fn session(&mut self) -> Result<&Session, String> {
        if self.session.is_none() {
            let session = Session::connect(&self.connect).map_err(|e| e.to_string())?;
            self.session = Some(session);
        }
        self.session.as_ref().ok_or_else(|| "no session".to_string())
    }

    fn kind(&self) -> Option<Kind> {
        self.target.kind.as_deref().and_then(Kind::from_name)
    }

    /// The target's flags for `faultline cluster <command> …`.
    fn cluster_target(&self) -> Vec<String> {
        let t = &self.target;
        let mut words = Vec::new();
        let mut add = |flag: &str, value: &Option<String>| {
            if let Some(value) = value {
                words.extend([flag.to_string(), value.clone()]);
            }
        };
        add("--pod", &t.pod);
        add("--container", &t.container);
        add("-l", &t.selector);
        add("-n", &t.namespace);
        add("--node", &t.node);
        add("--kind", &t.kind);
        if let Some(pid) = t.pid {
            words.extend(["--pid".to_string(), pid.to_string()]);
        }
        words
    }

    /// Runs `faultline cluster <words>` in this process; the outcome as JSON.
    fn cluster(&mut self, words: &[String]) -> Result<(String, Value), String> {
        let cli = parse(words)?;
        let Some(Command::Cluster(mut args)) = cli.command else { return Err("not a cluster command".into()) };
        // The experiment's context and agent namespace, unless the action names its own.
        args.context = args.context.or_else(|| self.connect.context.clone());
        args.agent_namespace = args.agent_namespace.or_else(|| self.connect.namespace.clone());
        let (session, request) = super::cluster::prepare(args, &cli.pids).map_err(|e| e.to_string())?;
        let access = Access { read_only: self.read_only };
        let outcome = action::execute(&session, &request, access, &mut |_| {}).map_err(|e| e.to_string())?;
        let json = outcome.to_json();
        if !matches!(request, ClusterRequest::Recover { .. }) {
            collect_fault_ids(&json, &mut self.fault_ids);
        }
        if outcome.exit_code() != EXIT_OK {
            return Err(outcome.to_string().trim().to_string());
        }
        Ok((outcome.to_string().lines().next().unwrap_or_default().to_string(), json))
    }

    fn local_selection(&self) -> Selection {
        Selection { pids: self.local.iter().map(|(pid, _, _)| *pid).collect(), kind: self.kind() }
    }
}

impl Actor for CliActor {
    fn prepare(&mut self) -> Result<String, String> {
        if !self.needs_target {
            return Ok("none (cluster actions only)".to_string());
        }
        if self.target.in_cluster() {
            let mut words = vec!["cluster".to_string(), "--json".to_string(), "status".to_string()];
            words.extend(self.cluster_target());
            let (_, json) = self.cluster(&words)?;
            for node in json["nodes"].as_array().into_iter().flatten() {
                let name = node["node"].as_str().unwrap_or_default().to_string();
                for state in node["reply"]["report"]["processes"].as_array().into_iter().flatten() {
                    let Ok(state) = ProcessState::from_json(state) else { continue };
                    self.remote.push((name.clone(), state.pid, restoring_words(&state)));
                }
            }
            if self.remote.is_empty() {
                return Err("no running shimmed process in the cluster matches".into());
            }
            let listed: Vec<String> = self.remote.iter().map(|(node, pid, _)| format!("{node}/{pid}")).collect();
            return Ok(format!("{} cluster process(es): {}", listed.len(), listed.join(", ")));
        }
        let selection = Selection { pids: self.target.pid.into_iter().collect(), kind: self.kind() };
        let found = targets::select(&selection, Purpose::Read).map_err(|e| e.to_string())?;
        for target in found.targets.iter().filter(|t| t.alive) {
            if self.target.exe.as_ref().is_some_and(|exe| *exe != target.exe()) {
                continue;
            }
            let strategy = actions::current_strategy(target).map_err(|e| e.to_string())?;
            self.local.push((target.pid(), target.kind(), strategy));
        }
        if self.local.is_empty() {
            let what = self.target.exe.as_ref().map_or("".to_string(), |exe| format!(" named {exe}"));
            return Err(format!("no running shimmed process{what} found"));
        }
        let pids: Vec<String> = self.local.iter().map(|(pid, kind, _)| format!("{pid} ({})", kind.name())).collect();
        Ok(format!("pid {}", pids.join(", ")))
    }

    fn apply(&mut self, words: &[String]) -> Result<String, String> {
        if words.first().is_some_and(|w| w == "cluster") {
            return self.cluster(words).map(|(line, _)| line);
        }
        if self.target.in_cluster() {
            let mut cluster_words = vec!["cluster".to_string()];
            cluster_words.extend(words.iter().cloned());
            cluster_words.extend(self.cluster_target());
            return self.cluster(&cluster_words).map(|(line, _)| line);
        }
        let cli = parse(words)?;
        let command = cli.command.ok_or("no command")?;
        let selection = self.local_selection();
        let request = command.request(selection.kind).map_err(|e| e.to_string())?;
        let report = faultline::execute(&request, &selection, Options { read_only: self.read_only })
            .map_err(|e| e.to_string())?;
        let text = output::render(&report, false).stdout;
        if report.exit_code() != EXIT_OK {
            return Err(text.trim().to_string());
        }
        Ok(match (&request, &report) {
            // A change says to whom it was done (the action's words say what).
            (faultline::Request::Change(_), faultline::Report::States { processes, .. }) => {
                let pids: Vec<String> = processes.iter().map(|p| p.pid.to_string()).collect();
                format!("done on pid {}", pids.join(", "))
            }
            _ => text.lines().next().unwrap_or("done").to_string(),
        })
    }

    fn counters(&mut self) -> Option<Counters> {
        if !self.needs_target {
            return None;
        }
        if self.target.in_cluster() {
            let mut words = vec!["cluster".to_string(), "--json".to_string(), "status".to_string()];
            words.extend(self.cluster_target());
            let (_, json) = self.cluster(&words).ok()?;
            let mut counters = Counters::default();
            for node in json["nodes"].as_array()? {
                for state in node["reply"]["report"]["processes"].as_array().into_iter().flatten() {
                    counters.calls += state["calls"].as_u64().unwrap_or(0);
                    counters.faults += state["faults"].as_u64().unwrap_or(0);
                }
            }
            return Some(counters);
        }
        let found = targets::select(&self.local_selection(), Purpose::Read).ok()?;
        let mut counters = Counters::default();
        for target in &found.targets {
            let state = ProcessState::read(target).ok()?;
            counters.calls += state.calls;
            counters.faults += state.faults;
        }
        Some(counters)
    }

    fn restore(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for (pid, kind, strategy) in std::mem::take(&mut self.local) {
            let selection = Selection { pids: vec![pid], kind: Some(kind) };
            let restored = targets::select(&selection, Purpose::Change).map_err(|e| e.to_string()).and_then(|found| {
                let target = found.targets.first().ok_or("gone")?;
                let planned = Planned::Publish { strategy: strategy.clone(), restart: true };
                actions::apply(&planned, target).map_err(|e| e.to_string())
            });
            lines.push(match restored {
                Ok(()) => format!("pid {pid}: the strategy it had before is back"),
                Err(why) => format!("pid {pid}: NOT restored: {why}"),
            });
        }
        for (node, pid, steps) in std::mem::take(&mut self.remote) {
            let mut result = Ok(());
            for step in steps {
                let mut words = vec!["cluster".to_string()];
                words.extend(step);
                words.extend(["--node".to_string(), node.clone(), "--pid".to_string(), pid.to_string()]);
                if let Err(why) = self.cluster(&words) {
                    result = Err(why);
                    break;
                }
            }
            lines.push(match result {
                Ok(()) => format!("node {node} pid {pid}: the settings it had before are back"),
                Err(why) => format!("node {node} pid {pid}: NOT restored: {why}"),
            });
        }
        let ids = self.fault_ids.clone();
        for id in ids {
            let words = ["cluster".to_string(), "recover".to_string(), id.clone()];
            lines.push(match self.cluster(&words) {
                Ok(_) => format!("cluster fault {id}: recovered"),
                Err(why) => format!("cluster fault {id}: NOT recovered: {why}"),
            });
        }
        lines
    }

    fn fault_ids(&self) -> Vec<String> {
        self.fault_ids.clone()
    }

    fn condition(&mut self, condition: &Condition, first: bool) -> Result<bool, String> {
        let mut condition = condition.clone();
        if let Condition::Event { reason, baseline } = &mut condition {
            if first || !self.event_baselines.contains_key(reason.as_str()) {
                let session = self.session()?;
                let count = session.block_on(conditions::count_events(session.api(), reason));
                self.event_baselines.insert(reason.clone(), count.map_err(|e| e.to_string())?);
            }
            *baseline = self.event_baselines.get(reason.as_str()).copied().unwrap_or(0);
        }
        let session = self.session()?;
        session.block_on(conditions::holds(session.api(), &condition)).map_err(|e| e.to_string())
    }

    fn cluster_faults(&mut self) -> Option<usize> {
        let words = ["cluster".to_string(), "faults".to_string(), "-A".to_string()];
        let (_, json) = self.cluster(&words).ok()?;
        let mut ids: Vec<&str> = json["faults"].as_array()?.iter().filter_map(|f| f["fault_id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids.len())
    }
}

/// Every `fault_id` in an outcome's JSON.
fn collect_fault_ids(json: &Value, ids: &mut Vec<String>) {
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    ("fault_id", Some(id)) if !id.is_empty() && !ids.iter().any(|known| known == id) => {
                        ids.push(id.to_string());
                    }
                    _ => collect_fault_ids(value, ids),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_fault_ids(item, ids)),
        _ => {}
    }
}

/// The commands that put a process back to `state` (a cluster process: its settings through `set`, and its
/// recording switch).
fn restoring_words(state: &ProcessState) -> Vec<Vec<String>> {
    let recording = if state.recording { "on" } else { "off" };
    vec![state.restoring_set(), vec!["record".to_string(), recording.to_string()]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn actions_are_process_or_cluster_commands_checked_as_the_command_line_checks_them() {
        for good in ["enable", "probability 50", "hooks ucp_put_nbx", "strategy XO", "cluster nodes", "record on"] {
            assert_eq!(check_action(&words(good)), Ok(()), "{good}");
        }
        let refused = |text: &str| check_action(&words(text)).unwrap_err();
        assert!(refused("enabel").contains("unrecognized subcommand 'enabel'"), "{}", refused("enabel"));
        assert!(refused("probability 200").contains("200"), "{}", refused("probability 200"));
        assert!(refused("--pid 4 enable").contains("the experiment's target chooses"));
        assert!(refused("demo").contains("not an action"));
        assert!(refused("clean").contains("not an action"));
    }

    #[test]
    fn a_cluster_process_is_restored_with_its_site() {
        let state = serde_json::json!({
            "pid": 4242, "kind": "ucx", "exe": "app", "alive": true, "in_container": true, "path": "/dev/shm/x",
            "enabled": true, "recording": true, "mode": "random", "probability_percent": 5.0,
            "probability_ppm": 50_000, "seed": 7, "pattern": "", "position": 0,
            "error_codes": [{"code": -3, "name": "UCS_ERR_IO_ERROR"}], "hooks_armed": 1,
            "hooks": [{"name": "ucp_put_nbx", "armed": true, "calls": 0, "faults": 0}],
            "skip": 0, "limit": 0, "delay_us": 0, "delay_mode": "off", "site": "completion",
            "replay_length": 0, "replay_faults": 0, "replay_loop": false,
            "calls": 0, "faults": 0, "armed_calls": 0, "armed_faults": 0, "fault_percent": 0.0
        });
        let steps = restoring_words(&ProcessState::from_json(&state).unwrap());
        let set = Cli::try_parse_from(std::iter::once("faultline".to_string()).chain(steps[0].iter().cloned()))
            .unwrap()
            .command
            .unwrap()
            .request(None)
            .unwrap();
        let faultline::Request::Change(faultline::actions::Change::Settings(settings)) = set else { panic!("{set:?}") };
        assert_eq!(settings.site, Some(shm_proto::layout::Site::Completion), "{steps:?}");
    }

    #[test]
    fn fault_ids_are_found_anywhere_in_an_outcome() {
        let json = serde_json::json!({"created": {"fault_id": "fl-1"}, "objects": [{"fault_id": "fl-2"}, {"fault_id": "fl-1"}]});
        let mut ids = Vec::new();
        collect_fault_ids(&json, &mut ids);
        assert_eq!(ids, ["fl-1", "fl-2"]);
    }
}
