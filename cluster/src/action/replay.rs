//! `faultline cluster replay --from-pod NS/NAME | --from-node N [--from-pid HOSTPID] …`: one process's recording
//! played by processes anywhere in the cluster. The source is found in the cluster's listing — alive or exited (the
//! sequence of a process that crashed is the one worth replaying), and exactly one —, its pattern dump is read
//! through its own node's agent session, turned into a replay program (each fault's code included), and the targets
//! get `replay --program …` through theirs (with `--site`, the site its faults surfaced at, unless given), validated
//! by their agents' process layer as locally.

use serde::Serialize;
use serde_json::Value;
use shm_proto::Kind;

use faultline_core::recording::{self, PatternDump, SiteTally};

use super::Cluster;
use crate::processes::{ClusterProcess, NodeReply, ProcessScope};
use crate::ClusterError;

/// A cross-node replay, its flags checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// Where the sequence comes from: exactly one process must match (alive or exited).
    pub from: ProcessScope,
    /// The source's shim, for a process that runs both.
    pub from_kind: Option<Kind>,
    /// The processes that play it.
    pub scope: ProcessScope,
    /// The replay command's own words (`replay`, `--loop`, `--kind K`); `--program …` is added when it is sent.
    pub args: Vec<String>,
}

/// The process a replayed sequence was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayedFrom {
    /// Its node.
    pub node: String,
    /// Its host pid there.
    pub pid: u32,
    /// `ucx` or `cuda`.
    pub kind: String,
    /// `namespace/name` of its pod, if known.
    pub pod: Option<String>,
    /// Whether it still runs.
    pub alive: bool,
    /// Calls in the sequence.
    pub calls: usize,
    /// Faults among them.
    pub faults: usize,
}

impl ReplayRequest {
    /// The source as the flags name it, for messages: `--from-pod dynamo/decode-0 --from-kind ucx`.
    pub fn describe_source(&self) -> String {
        let from = &self.from;
        let mut words = Vec::new();
        if let Some(pod) = &from.pod {
            let namespace = from.namespace.as_deref().map(|ns| format!("{ns}/")).unwrap_or_default();
            words.push(format!("--from-pod {namespace}{pod}"));
        }
        if let Some(container) = &from.container {
            words.push(format!("--from-container {container}"));
        }
        if let Some(node) = &from.node {
            words.push(format!("--from-node {node}"));
        }
        if let Some(pid) = from.pid {
            words.push(format!("--from-pid {pid}"));
        }
        if let Some(kind) = self.from_kind {
            words.push(format!("--from-kind {}", kind.name()));
        }
        words.join(" ")
    }
}

/// Carries out `request` on `cluster`: the source's program, then one `replay --program` per target node.
pub(super) fn replay(
    cluster: &dyn Cluster,
    request: &ReplayRequest,
    read_only: bool,
) -> Result<(ReplayedFrom, Vec<NodeReply>), ClusterError> {
    let listing = cluster.processes(&request.from)?;
    let source = one_source(request, &listing.processes, &listing.notes)?;
    let exact = ProcessScope { node: Some(source.node.clone()), pid: Some(source.pid), ..ProcessScope::default() };
    let dump = ["--kind", source.kind.as_str(), "record", "dump", "pattern"].map(String::from);
    let replies = cluster.process_command(&exact, &dump, read_only)?;
    let reply = replies.into_iter().next().map(|r| r.reply).unwrap_or(Value::Null);
    let (program, sites) = program_of(&source, &reply)?;
    let site = replay_site_words(&request.args, &sites, &format!("the recording of {}", label(&source)))
        .map_err(|e| ClusterError::Usage(e.to_string()))?;
    let from = ReplayedFrom {
        node: source.node.clone(),
        pid: source.pid,
        kind: source.kind.clone(),
        pod: pod_of(&source),
        alive: source.alive,
        calls: program.len(),
        faults: program.iter().filter(|&&code| code != 0).count(),
    };
    let mut words = request.args.clone();
    words.push("--program".to_string());
    words.push(shm_proto::config::format_replay_program(&program));
    words.extend(site);
    let replies = cluster.process_command(&request.scope, &words, read_only)?;
    Ok((from, replies))
}

/// The one process of the listing (narrowed to `from_kind`) the sequence comes from.
fn one_source(
    request: &ReplayRequest,
    processes: &[ClusterProcess],
    notes: &[String],
) -> Result<ClusterProcess, ClusterError> {
    let wanted = request.from_kind.map(Kind::name);
    let matching: Vec<&ClusterProcess> =
        processes.iter().filter(|p| wanted.is_none_or(|kind| p.kind == kind)).collect();
    let what = request.describe_source();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] if !notes.is_empty() => Err(ClusterError::NoProcesses(format!(
            "no shimmed process matches {what} on the nodes reached ({}); `faultline cluster ps` lists them",
            notes.join("; ")
        ))),
        [] => Err(ClusterError::Usage(format!(
            "no shimmed process matches {what} (alive or exited); `faultline cluster ps` lists them"
        ))),
        many => {
            let each: Vec<String> = many.iter().map(|p| label(p)).collect();
            Err(ClusterError::Usage(format!(
                "{what} matches {} processes ({}); a replay plays one process's recording: narrow it with \
                 --from-container, --from-kind, or --from-node N --from-pid HOSTPID",
                many.len(),
                each.join("; ")
            )))
        }
    }
}

/// `namespace/name`, when the process's pod is known.
fn pod_of(process: &ClusterProcess) -> Option<String> {
    let pod = process.pod.as_ref()?;
    Some(match &process.namespace {
        Some(namespace) => format!("{namespace}/{pod}"),
        None => pod.clone(),
    })
}

/// `pid 4242 on node gpu-a (ucx, dynamo/decode-0, exited)`.
fn label(process: &ClusterProcess) -> String {
    let mut about = vec![process.kind.clone()];
    about.extend(pod_of(process));
    if !process.alive {
        about.push("exited".to_string());
    }
    format!("pid {} on node {} ({})", process.pid, process.node, about.join(", "))
}

/// The words that make a replay of faults recorded at `sites` play them where they surfaced: `--site S` when they
/// share one, none when `words` (the replay command's) give `--site` already or nothing was injected. A recording
/// that mixes sites is refused unless `words` choose one; `what` names the recording.
pub fn replay_site_words(
    words: &[String],
    sites: &SiteTally,
    what: &str,
) -> Result<Vec<String>, faultline_core::Error> {
    let given = words.iter().any(|word| word == "--site" || word.starts_with("--site="));
    if given {
        return Ok(Vec::new());
    }
    let site = sites.site_to_replay(None, what)?;
    Ok(site.map(|site| vec!["--site".to_string(), site.name().to_string()]).unwrap_or_default())
}

/// The replay program of the source's answer to `record dump pattern`, and its faults' sites.
fn program_of(source: &ClusterProcess, reply: &Value) -> Result<(Vec<i32>, SiteTally), ClusterError> {
    let node = source.node.clone();
    let exit = reply["exit"].as_u64().unwrap_or(1);
    if exit != 0 {
        let said = reply["error"].as_str().or_else(|| reply["text"].as_str()).unwrap_or("no answer");
        let message = format!("reading the recording of {}: {}", label(source), said.trim());
        return Err(ClusterError::NodeAnswer { node, exit: u8::try_from(exit).unwrap_or(1), message });
    }
    let dump: PatternDump = serde_json::from_value(reply["report"].clone()).map_err(|e| ClusterError::NodeAnswer {
        node,
        exit: 1,
        message: format!("the recording of {} is not a pattern dump ({e})", label(source)),
    })?;
    if dump.pattern.trim().is_empty() {
        let pod = pod_of(source)
            .map_or_else(|| format!("--node {} --pid {}", source.node, source.pid), |pod| format!("--pod {pod}"));
        return Err(ClusterError::Usage(format!(
            "{}: nothing recorded to replay (turn recording on with `faultline cluster record on {pod}`, then run)",
            label(source)
        )));
    }
    let bad = |e: faultline_core::Error| ClusterError::Usage(format!("the recording of {}: {e}", label(source)));
    let program = recording::replay_program_from_pattern(&dump).map_err(bad)?;
    Ok((program, SiteTally::of_pattern(&dump).map_err(bad)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn process(node: &str, pid: u32, kind: &str, alive: bool) -> ClusterProcess {
        ClusterProcess {
            node: node.into(),
            namespace: Some("dynamo".into()),
            pod: Some("decode-0".into()),
            container: Some("worker".into()),
            pid,
            kind: kind.into(),
            exe: "python3".into(),
            alive,
            enabled: false,
            mode: "random".into(),
            site: "post".into(),
            calls: 0,
            faults: 0,
            calls_per_s: 0.0,
            faults_per_s: 0.0,
        }
    }

    fn request(from_kind: Option<Kind>) -> ReplayRequest {
        let from =
            ProcessScope { namespace: Some("dynamo".into()), pod: Some("decode-0".into()), ..ProcessScope::default() };
        ReplayRequest { from, from_kind, scope: ProcessScope::default(), args: vec!["replay".into()] }
    }

    #[test]
    fn exactly_one_source_process_is_taken() {
        let both = [process("gpu-a", 7, "ucx", true), process("gpu-a", 7, "cuda", true)];
        let error = one_source(&request(None), &both, &[]).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.exit_code(), 2, "{message}");
        assert!(message.starts_with("--from-pod dynamo/decode-0 matches 2 processes"), "{message}");
        assert!(message.contains("pid 7 on node gpu-a (cuda, dynamo/decode-0)") && message.contains("--from-kind"));
        assert_eq!(one_source(&request(Some(Kind::Cuda)), &both, &[]).unwrap().kind, "cuda");

        let exited = [process("gpu-b", 9, "ucx", false)];
        assert_eq!(one_source(&request(None), &exited, &[]).unwrap().pid, 9, "an exited process's recording counts");

        let none = one_source(&request(None), &[], &[]).unwrap_err();
        assert_eq!(none.exit_code(), 2, "as locally for a pid with no segment: {none}");
        let unreached = one_source(&request(None), &[], &["node gpu-c: no agent".into()]).unwrap_err();
        assert_eq!(unreached.exit_code(), 1, "a node could not be looked at: {unreached}");
        assert!(unreached.to_string().contains("node gpu-c: no agent"), "{unreached}");
    }

    #[test]
    fn the_pattern_dump_becomes_the_program_with_its_codes() {
        let source = process("gpu-a", 7, "ucx", true);
        let dump = json!({"pattern": "OXOX", "error_codes": [-3, -20], "fault_codes": [-20, -3], "total_calls": 4});
        let reply = json!({"type": "reply", "exit": 0, "report": dump});
        assert_eq!(program_of(&source, &reply).unwrap().0, [0, -20, 0, -3]);

        let empty = json!({"exit": 0, "report": {"pattern": "", "error_codes": [-3], "total_calls": 0}});
        let error = program_of(&source, &empty).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("nothing recorded to replay") && error.to_string().contains("--pod"));

        let refused = json!({"exit": 2, "error": "no faultline segment for pid 7"});
        let error = program_of(&source, &refused).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("node gpu-a") && error.to_string().contains("no faultline segment"));
        let odd = json!({"exit": 0, "report": "two documents"});
        assert_eq!(program_of(&source, &odd).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn the_replay_is_sent_at_the_site_the_faults_surfaced_at() {
        let source = process("gpu-a", 7, "ucx", true);
        let words = |args: &[&str], dump: Value| {
            let (_, sites) = program_of(&source, &json!({"exit": 0, "report": dump})).unwrap();
            replay_site_words(&args.iter().map(|w| w.to_string()).collect::<Vec<_>>(), &sites, "the recording")
        };
        let post = json!({"pattern": "OX", "error_codes": [-3], "total_calls": 2});
        assert_eq!(words(&["replay"], post).unwrap(), ["--site", "post"], "a dump without sites is at post");
        let completion = json!({"pattern": "XX", "error_codes": [-3], "total_calls": 2, "site": "completion"});
        assert_eq!(words(&["replay"], completion.clone()).unwrap(), ["--site", "completion"]);
        assert!(words(&["replay", "--site=post"], completion).unwrap().is_empty(), "--site given wins");
        let mixed = json!({"pattern": "XX", "error_codes": [-3], "total_calls": 2,
            "fault_sites": ["post", "completion"]});
        let error = words(&["replay"], mixed.clone()).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("mixes fault sites (post 1, completion 1); choose one with --site"));
        assert!(words(&["replay", "--site", "completion"], mixed).unwrap().is_empty());
        let nothing_injected = json!({"pattern": "OO", "error_codes": [-3], "total_calls": 2});
        assert!(words(&["replay"], nothing_injected).unwrap().is_empty());
    }
}
