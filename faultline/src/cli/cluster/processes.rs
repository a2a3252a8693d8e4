//! `faultline cluster ps` and `faultline cluster <process command>`: the cluster's shimmed processes, reached
//! through the node agents' sessions, selected by pod, label selector, node or `--all`.

use std::path::Path;

use clap::{Args, Parser};
use faultline::cluster::action::{replay_site_words, ClusterRequest, ReplayRequest};
use faultline::cluster::names::Labels;
use faultline::cluster::processes::{ProcessListing, ProcessScope};
use shm_proto::Kind;

use super::super::node::NOT_PROCESS_COMMANDS;
use super::super::Cli;
use super::faults::Namespace;

/// The options of `faultline cluster ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only this node's processes.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Only processes in pods with these labels: KEY=VALUE[,…].
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Every namespace (default: --namespace, or the context's).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `faultline cluster ps`: processes outside any known pod are listed too unless a namespace or selector narrows.
pub fn ps(namespace: &Namespace, args: PsArgs) -> anyhow::Result<ClusterRequest> {
    let selector = args.selector.as_deref().map(str::parse::<Labels>).transpose()?;
    // A node's processes are all shown unless the namespace is asked for; a plain `ps` is the context's namespace.
    let namespace = if args.all_namespaces || (args.node.is_some() && namespace.given.is_none()) {
        None
    } else {
        Some(namespace.given.clone().unwrap_or_else(|| namespace.context.clone()))
    };
    let scope = ProcessScope { node: args.node, namespace, selector, ..ProcessScope::default() };
    Ok(ClusterRequest::ListProcesses(Box::new(scope)))
}

/// `faultline cluster <process command> …`: the target flags taken out, the command checked here exactly as the
/// local command is (same messages, exit 2, nothing sent), then sent to the agents. `replay` also takes its source
/// here: `--from-pod` / `--from-node` (one process's recording, read through its node's agent) or `--from-file` (read
/// on this machine), each sent on as `--program`.
pub fn command(namespace: &Namespace, words: Vec<String>) -> anyhow::Result<ClusterRequest> {
    let name = words.first().cloned().unwrap_or_default();
    if NOT_PROCESS_COMMANDS.contains(&name.as_str()) {
        return Err(usage(format!(
            "`faultline cluster {name}` is not a cluster command (see faultline cluster --help)"
        )));
    }
    let replay = name == "replay";
    let mut scope = ProcessScope::default();
    let mut from = ReplayFlags::default();
    let (mut all, mut all_namespaces, mut given_namespace) = (false, false, namespace.given.clone());
    let mut pod: Option<String> = None;
    let mut rest = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let mut value = |flag: &str| words.next().ok_or_else(|| usage(format!("{flag} needs a value")));
        match word.as_str() {
            "--pod" => pod = Some(value("--pod")?),
            "--container" => scope.container = Some(value("--container")?),
            "-l" | "--selector" => scope.selector = Some(value("--selector")?.parse::<Labels>()?),
            "--node" => scope.node = Some(value("--node")?),
            "--pid" => scope.pid = Some(parse_pid("--pid", &value("--pid")?)?),
            "-n" | "--namespace" => given_namespace = Some(value("--namespace")?),
            "-A" | "--all-namespaces" => all_namespaces = true,
            "--all" => all = true,
            "--from-pod" if replay => from.pod = Some(value("--from-pod")?),
            "--from-container" if replay => from.container = Some(value("--from-container")?),
            "--from-kind" if replay => from.kind = Some(value("--from-kind")?),
            "--from-node" if replay => from.node = Some(value("--from-node")?),
            "--from-pid" if replay => from.pid = Some(parse_pid("--from-pid", &value("--from-pid")?)?),
            "--from-file" if replay => from.file = Some(value("--from-file")?),
            _ => rest.push(word),
        }
    }
    from.check(&rest)?;
    if pod.is_none() && scope.selector.is_none() && scope.node.is_none() && !all {
        return Err(usage(
            "give the processes: --pod NS/NAME, -l SELECTOR, --node N [--pid HOSTPID], or --all (a cluster-wide \
             change must be asked for)"
                .to_string(),
        ));
    }
    if scope.pid.is_some() && scope.node.is_none() {
        return Err(usage("--pid takes a host pid: give --node too".to_string()));
    }
    if let Some(file) = &from.file {
        // A file on this machine: the agents get the program, not a path on their node.
        let (program, sites) = faultline::recording::replay_program_from_file(Path::new(file))?;
        let site = replay_site_words(&rest, &sites, file)?;
        rest.extend(["--program".to_string(), shm_proto::config::format_replay_program(&program)]);
        rest.extend(site);
    }
    // Checked as the local command is: the same parser, the same request.
    let mut argv = vec!["faultline".to_string()];
    argv.extend(rest.iter().cloned());
    let cli = Cli::try_parse_from(&argv).map_err(|e| usage(e.to_string().trim().to_string()))?;
    let command = cli.command.ok_or_else(|| usage("no command given".to_string()))?;
    command.request(cli.kind.map(Into::into))?;
    let context = Some(namespace.context.clone());
    if let Some(pod) = pod {
        (scope.namespace, scope.pod) = place_pod(&pod, given_namespace.clone().or(context.clone()));
    } else if !all_namespaces && (scope.selector.is_some() || given_namespace.is_some()) {
        scope.namespace = Some(given_namespace.clone().unwrap_or_else(|| namespace.context.clone()));
    }
    if !from.names_a_process() {
        return Ok(ClusterRequest::ProcessCommand { scope: Box::new(scope), args: rest });
    }
    let mut source =
        ProcessScope { node: from.node, container: from.container, pid: from.pid, ..ProcessScope::default() };
    if let Some(pod) = from.pod {
        (source.namespace, source.pod) = place_pod(&pod, given_namespace.or(context));
    }
    let from_kind = match from.kind {
        Some(kind) => Some(
            Kind::from_name(&kind).ok_or_else(|| usage(format!("--from-kind {kind:?} is not a shim: ucx or cuda")))?,
        ),
        None => None,
    };
    let request = ReplayRequest { from: source, from_kind, scope, args: rest };
    Ok(ClusterRequest::Replay(Box::new(request)))
}

/// A usage error (exit 2, nothing sent).
fn usage(message: String) -> anyhow::Error {
    anyhow::Error::from(faultline::Error::usage(message))
}

fn parse_pid(flag: &str, text: &str) -> anyhow::Result<u32> {
    text.parse().map_err(|_| usage(format!("{flag} {text:?} is not a pid")))
}

/// `NS/NAME`, or `NAME` in `namespace`: (namespace, name).
fn place_pod(pod: &str, namespace: Option<String>) -> (Option<String>, Option<String>) {
    match pod.split_once('/') {
        Some((ns, name)) => (Some(ns.to_string()), Some(name.to_string())),
        None => (namespace, Some(pod.to_string())),
    }
}

/// Where `faultline cluster replay` takes its sequence from, as typed.
#[derive(Debug, Default)]
struct ReplayFlags {
    pod: Option<String>,
    container: Option<String>,
    kind: Option<String>,
    node: Option<String>,
    pid: Option<u32>,
    file: Option<String>,
}

impl ReplayFlags {
    /// Whether the sequence comes from a process of the cluster.
    fn names_a_process(&self) -> bool {
        self.pod.is_some() || self.node.is_some()
    }

    /// The flags fit together, and with the command's other words (`rest`).
    fn check(&self, rest: &[String]) -> anyhow::Result<()> {
        if self.pid.is_some() && self.node.is_none() {
            return Err(usage(
                "--from-pid takes a host pid, and host pids are per node: give --from-node N too (`faultline \
                 cluster ps` shows each process's node and host pid)"
                    .to_string(),
            ));
        }
        if (self.container.is_some() || self.kind.is_some()) && !self.names_a_process() {
            return Err(usage(
                "--from-container and --from-kind narrow a source: give --from-pod NS/NAME or --from-node N"
                    .to_string(),
            ));
        }
        let program = rest.iter().any(|word| word == "--program" || word.starts_with("--program="));
        let sources = [self.names_a_process(), self.file.is_some(), program].into_iter().filter(|&s| s).count();
        if sources > 1 {
            return Err(usage(
                "give the sequence once: --from-pod / --from-node (a process's recording), --from-file or --program"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// The listing as a table.
pub fn render(listing: &ProcessListing) -> String {
    let mut out = String::new();
    if listing.processes.is_empty() {
        out.push_str("no shimmed processes\n");
    } else {
        let dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".to_string());
        let rows: Vec<[String; 12]> = listing
            .processes
            .iter()
            .map(|p| {
                [
                    p.node.clone(),
                    dash(&p.namespace),
                    dash(&p.pod),
                    dash(&p.container),
                    p.pid.to_string(),
                    p.kind.clone(),
                    faultline::output::escape_controls(&p.exe).into_owned(),
                    if p.alive { "alive" } else { "dead" }.to_string(),
                    if p.enabled { "on" } else { "off" }.to_string(),
                    p.mode.clone(),
                    format!("{:.0}", p.calls_per_s),
                    format!("{:.0}", p.faults_per_s),
                ]
            })
            .collect();
        let header = [
            "NODE",
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "PID",
            "KIND",
            "EXE",
            "STATE",
            "INJECT",
            "MODE",
            "CALLS/S",
            "FAULTS/S",
        ];
        out.push_str(&super::table(&header, &rows));
    }
    for note in &listing.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn parse(line: &str) -> anyhow::Result<ClusterRequest> {
        command(&Namespace { given: None, context: "default".into() }, words(line))
    }

    fn refused(line: &str, message: &str) {
        let error = parse(line).unwrap_err();
        let exit = error.downcast_ref::<faultline::Error>().map(faultline::Error::exit_code);
        assert_eq!(exit, Some(2), "{line}: {error}");
        assert!(error.to_string().contains(message), "{line}: {error}");
    }

    #[test]
    fn replay_takes_its_source_from_a_pod_or_a_node_and_host_pid() {
        let ClusterRequest::Replay(request) =
            parse("replay --from-pod dynamo/decode-0 --from-kind ucx --pod prefill-0 -n serving --loop").unwrap()
        else {
            panic!("a replay across the cluster")
        };
        assert_eq!(
            (request.from.namespace.as_deref(), request.from.pod.as_deref()),
            (Some("dynamo"), Some("decode-0"))
        );
        assert_eq!(request.from_kind, Some(Kind::Ucx));
        assert_eq!(
            (request.scope.namespace.as_deref(), request.scope.pod.as_deref()),
            (Some("serving"), Some("prefill-0"))
        );
        assert_eq!(request.args, ["replay", "--loop"]);
        assert_eq!(request.describe_source(), "--from-pod dynamo/decode-0 --from-kind ucx");

        let ClusterRequest::Replay(request) = parse("replay --from-node gpu-a --from-pid 42 --all").unwrap() else {
            panic!("a replay across the cluster")
        };
        assert_eq!((request.from.node.as_deref(), request.from.pid), (Some("gpu-a"), Some(42)));
        assert_eq!(request.from.namespace, None, "a node's process, whatever its pod");

        // Without a source from the cluster, the command goes as it is, a pod's namespace the context's.
        let ClusterRequest::ProcessCommand { scope, args } = parse("replay --pod decode-0").unwrap() else {
            panic!("a plain process command")
        };
        assert_eq!((scope.namespace.as_deref(), args), (Some("default"), vec!["replay".to_string()]));
    }

    #[test]
    fn replay_sources_that_do_not_fit_are_usage_errors() {
        refused("replay --from-pid 42 --pod decode-0", "host pids are per node: give --from-node N too");
        refused("replay --from-kind cuda --pod decode-0", "give --from-pod NS/NAME or --from-node N");
        refused("replay --from-pod a/b --program 0,-3 --pod decode-0", "give the sequence once");
        refused("replay --from-pod a/b --from-file run.json --pod decode-0", "give the sequence once");
        refused("replay --from-pod a/b --from-kind rdma --pod decode-0", "--from-kind \"rdma\" is not a shim");
        refused("replay --from-pod a/b --from-pid x --pod decode-0", "--from-pid \"x\" is not a pid");
        refused("replay --from-pod a/b --frobnicate --pod decode-0", "--frobnicate");
        refused("enable --from-pod a/b --pod decode-0", "--from-pod");
        refused("replay --from-file /nonexistent/run.json --pod decode-0", "/nonexistent/run.json");
    }

    #[test]
    fn a_replay_file_is_read_here_and_sent_as_a_program() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.json");
        std::fs::write(&file, r#"{"pattern":"OXX","error_codes":[-3],"fault_codes":[-3,-20],"total_calls":3}"#)
            .unwrap();
        let line = format!("replay --from-file {} --pod decode-0", file.display());
        let ClusterRequest::ProcessCommand { args, .. } = parse(&line).unwrap() else { panic!("a process command") };
        assert_eq!(args, ["replay", "--program", "0,-3,-20", "--site", "post"], "the seed's format: at post");

        let at_completion = r#"{"pattern":"XX","error_codes":[-3],"total_calls":2,"site":"completion"}"#;
        std::fs::write(&file, at_completion).unwrap();
        let ClusterRequest::ProcessCommand { args, .. } = parse(&line).unwrap() else { panic!("a process command") };
        assert_eq!(args, ["replay", "--program", "-3,-3", "--site", "completion"]);
        let chosen = format!("replay --site post --from-file {} --pod decode-0", file.display());
        let ClusterRequest::ProcessCommand { args, .. } = parse(&chosen).unwrap() else { panic!("a process command") };
        assert_eq!(args, ["replay", "--site", "post", "--program", "-3,-3"], "--site given wins");

        let mixed = r#"{"pattern":"XX","error_codes":[-3],"total_calls":2,"fault_sites":["post","completion"]}"#;
        std::fs::write(&file, mixed).unwrap();
        refused(&line, "the recording mixes fault sites (post 1, completion 1); choose one with --site");
    }
}
