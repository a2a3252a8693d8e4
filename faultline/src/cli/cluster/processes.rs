//! `faultline cluster ps` and `faultline cluster <process command>`: the cluster's shimmed processes, reached
//! through the node agents' sessions, selected by pod, label selector, node or `--all`.

use clap::{Args, Parser};
use faultline::cluster::action::ClusterRequest;
use faultline::cluster::names::Labels;
use faultline::cluster::processes::{ProcessListing, ProcessScope};

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
/// local command is (same messages, exit 2, nothing sent), then sent to the agents.
pub fn command(namespace: &Namespace, words: Vec<String>) -> anyhow::Result<ClusterRequest> {
    let usage = |message: String| anyhow::Error::from(faultline::Error::usage(message));
    let name = words.first().cloned().unwrap_or_default();
    if NOT_PROCESS_COMMANDS.contains(&name.as_str()) {
        return Err(usage(format!(
            "`faultline cluster {name}` is not a cluster command (see faultline cluster --help)"
        )));
    }
    let mut scope = ProcessScope::default();
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
            "--pid" => {
                let pid = value("--pid")?;
                scope.pid = Some(pid.parse().map_err(|_| usage(format!("--pid {pid:?} is not a pid")))?);
            }
            "-n" | "--namespace" => given_namespace = Some(value("--namespace")?),
            "-A" | "--all-namespaces" => all_namespaces = true,
            "--all" => all = true,
            _ => rest.push(word),
        }
    }
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
    // Checked as the local command is: the same parser, the same request.
    let mut argv = vec!["faultline".to_string()];
    argv.extend(rest.iter().cloned());
    let cli = Cli::try_parse_from(&argv).map_err(|e| usage(e.to_string().trim().to_string()))?;
    let command = cli.command.ok_or_else(|| usage("no command given".to_string()))?;
    command.request(cli.kind.map(Into::into))?;
    if let Some(pod) = pod {
        let (ns, name) = match pod.split_once('/') {
            Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
            None => (None, pod),
        };
        scope.namespace = ns.or_else(|| given_namespace.clone()).or_else(|| Some(namespace.context.clone()));
        scope.pod = Some(name);
    } else if !all_namespaces && (scope.selector.is_some() || given_namespace.is_some()) {
        scope.namespace = Some(given_namespace.unwrap_or_else(|| namespace.context.clone()));
    }
    Ok(ClusterRequest::ProcessCommand { scope: Box::new(scope), args: rest })
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
