//! The experiment file (YAML): what to target, which probes run throughout, and the phases — the actions applied at
//! each phase's start, how long it lasts, and what must hold over it. Read and checked whole before anything is done:
//! a bad file is refused naming its line, and changes nothing.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::bound::{Bound, Dur};
use crate::cluster::conditions::Condition;

/// An experiment, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Its name (the JUnit test suite's).
    pub name: String,
    /// The processes the process commands among the actions apply to.
    #[serde(default)]
    pub target: Target,
    /// Probes running from the first phase to the last.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// In order.
    pub phases: Vec<Phase>,
}

/// Which processes: local ones (`exe`, `pid`, `kind`) or a cluster's (`pod`, `selector`, `node`); nothing given
/// means every local shimmed process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Local processes whose executable is this.
    pub exe: Option<String>,
    /// This local process.
    pub pid: Option<u32>,
    /// Only this shim (`ucx` or `cuda`).
    pub kind: Option<String>,
    /// The processes of this pod (`namespace/name`), through the cluster's node agents.
    pub pod: Option<String>,
    /// Only this container of the pod.
    pub container: Option<String>,
    /// The processes of the pods with these labels (`key=value,…`), in `namespace`.
    pub selector: Option<String>,
    /// The namespace of `selector`.
    pub namespace: Option<String>,
    /// The processes of this node (with `pid`: that host pid).
    pub node: Option<String>,
}

impl Target {
    /// Whether the processes are a cluster's.
    pub fn in_cluster(&self) -> bool {
        self.pod.is_some() || self.selector.is_some() || self.node.is_some()
    }
}

/// A probe: one request every `interval`, each a success or not.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Referred to by the expectations.
    pub name: String,
    /// An HTTP request.
    pub http: HttpProbe,
}

/// An HTTP request and what counts as its success.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// `http://…` or `https://…`.
    pub url: String,
    /// `GET` unless told.
    #[serde(default = "get")]
    pub method: String,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub json: Option<serde_json::Value>,
    /// A text body.
    pub body: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time between two requests' starts (default 500ms).
    #[serde(default = "half_second")]
    pub interval: Dur,
    /// A request not answered within this is a failure (default 2s).
    #[serde(default = "two_seconds")]
    pub timeout: Dur,
    /// The statuses that count as success (default: any 2xx).
    pub ok_status: Option<Vec<u16>>,
}

fn get() -> String {
    "GET".to_string()
}

fn half_second() -> Dur {
    Dur(std::time::Duration::from_millis(500))
}

fn two_seconds() -> Dur {
    Dur(std::time::Duration::from_secs(2))
}

/// A phase: actions at its start, then `duration` of probing, then its expectations judged.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Its name (in progress lines and reports).
    pub name: String,
    /// faultline command lines, applied in order at the phase's start (process commands go to the target).
    #[serde(default)]
    pub actions: Vec<String>,
    /// How long the phase lasts.
    pub duration: Dur,
    /// What must hold over the phase.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One expectation, as written: one of its forms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The probe measured.
    pub probe: Option<String>,
    /// Successes over requests in the phase, in percent.
    pub success_rate: Option<Bound>,
    /// Latency percentiles of the answered requests.
    pub latency_p50: Option<Bound>,
    /// 90th percentile.
    pub latency_p90: Option<Bound>,
    /// 99th percentile.
    pub latency_p99: Option<Bound>,
    /// The slowest.
    pub latency_max: Option<Bound>,
    /// From the phase's start until the probe succeeds steadily (every later request in the phase succeeds).
    pub recovers_within: Option<Dur>,
    /// A counter of the target over the phase: `faults` or `calls`.
    pub target: Option<Counter>,
    /// The counter's bound.
    pub value: Option<Bound>,
    /// Active faults in the cluster's ledger (`faultline cluster faults -A`, by fault id) at the phase's end.
    pub cluster_faults: Option<Bound>,
    /// This node is cordoned `within` the phase's start.
    pub node_cordoned: Option<String>,
    /// Every pod of this selector (in `namespace`) is ready `within` the phase's start (off `off_node`, if given).
    pub pods_ready: Option<String>,
    /// The namespace of `pods_ready`.
    pub namespace: Option<String>,
    /// `pods_ready` counts only when none of the pods is on this node.
    pub off_node: Option<String>,
    /// A new Event with this reason (in the agent's namespace; faultline's XID Events: `FaultlineXid`) `within`.
    pub event: Option<String>,
    /// For `node_cordoned`, `pods_ready` and `event`: how long after the phase's start at most.
    pub within: Option<Dur>,
}

/// A target counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counter {
    /// Faults injected.
    Faults,
    /// Calls intercepted.
    Calls,
}

/// What an expectation checks (exactly one per entry).
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The probe's success rate.
    SuccessRate(String, Bound),
    /// A latency percentile (0.5, 0.9, 0.99, 1.0) of the probe.
    Latency(String, f64, Bound),
    /// The probe recovers within.
    RecoversWithin(String, Dur),
    /// The target's counter over the phase.
    Counter(Counter, Bound),
    /// Active cluster faults at the phase's end.
    ClusterFaults(Bound),
    /// A cluster condition holds within this long of the phase's start (an Event's baseline is taken then).
    Within(Condition, Dur),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::SuccessRate(probe, bound) => write!(f, "{probe} success rate {bound}"),
            Check::Latency(probe, q, bound) => write!(f, "{probe} latency {} {bound}", quantile_name(*q)),
            Check::RecoversWithin(probe, within) => write!(f, "{probe} recovers within {within}"),
            Check::Counter(Counter::Faults, bound) => write!(f, "target faults {bound}"),
            Check::Counter(Counter::Calls, bound) => write!(f, "target calls {bound}"),
            Check::ClusterFaults(bound) => write!(f, "active cluster faults {bound}"),
            Check::Within(wait, within) => write!(f, "{wait} within {within}"),
        }
    }
}

/// `p50`, `p99`, `max`.
pub fn quantile_name(q: f64) -> String {
    if q >= 1.0 {
        "max".to_string()
    } else {
        format!("p{}", (q * 100.0).round())
    }
}

/// Why a file was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A checked experiment: the file's phases with their checks, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// As written.
    pub experiment: Experiment,
    /// Per phase, its checks in order.
    pub checks: Vec<Vec<Check>>,
    /// Per phase, its actions split into words.
    pub actions: Vec<Vec<Vec<String>>>,
}

impl Plan {
    /// Whether the experiment acts on or measures processes (a process command among its actions, or a target
    /// counter among its checks); one that only takes `cluster …` actions needs no target process.
    pub fn needs_target(&self) -> bool {
        let process_action = self.actions.iter().flatten().any(|words| words.first().is_none_or(|w| w != "cluster"));
        let counter = self.checks.iter().flatten().any(|check| matches!(check, Check::Counter(..)));
        process_action || counter || self.experiment.target != Target::default()
    }
}

/// Reads `text` and checks it whole; `check_action` says whether an action's words are a valid command (nothing
/// is done). Errors name the line.
pub fn parse(text: &str, check_action: impl Fn(&[String]) -> Result<(), String>) -> Result<Plan, SpecError> {
    let experiment: Experiment = serde_norway::from_str(text).map_err(|error| {
        let message = error.to_string().split(" at line ").next().unwrap_or_default().to_string();
        // A value refused by its own parser is reported at its mapping's first line: find the value's own line.
        let mut line = error.location().map(|l| l.line());
        if let (Some(from), Some(value)) = (line, message.split('"').nth(1).filter(|v| !v.is_empty())) {
            let found = text.lines().enumerate().skip(from - 1).find(|(_, l)| l.contains(value)).map(|(i, _)| i + 1);
            line = found.or(line);
        }
        SpecError { line, message }
    })?;
    let at = |needle: &str| -> Option<usize> { line_of(text, needle) };
    let fail = |needle: &str, message: String| SpecError { line: at(needle), message };
    if experiment.phases.is_empty() {
        return Err(SpecError { line: at("phases"), message: "an experiment needs at least one phase".into() });
    }
    let target = &experiment.target;
    if target.in_cluster() && target.exe.is_some() {
        return Err(fail(
            "exe:",
            "target: `exe` is for local processes; give pod, selector or node for a cluster".into(),
        ));
    }
    if target.pid.is_some() && (target.pod.is_some() || target.selector.is_some()) {
        return Err(fail("pid:", "target: `pid` goes with `node` (a host pid) or alone (a local process)".into()));
    }
    if let Some(kind) = &target.kind {
        if shm_proto::Kind::from_name(kind).is_none() {
            return Err(fail("kind:", format!("target: kind {kind:?} is not ucx or cuda")));
        }
    }
    let mut names = std::collections::HashSet::new();
    for probe in &experiment.probes {
        if !names.insert(probe.name.as_str()) {
            return Err(fail(&format!("name: {}", probe.name), format!("probe {:?} is defined twice", probe.name)));
        }
        let url = &probe.http.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail(url, format!("probe {}: url {url:?} is not http:// or https://", probe.name)));
        }
        if probe.http.json.is_some() && probe.http.body.is_some() {
            return Err(fail(&probe.name, format!("probe {}: give json or body, not both", probe.name)));
        }
        if probe.http.interval.0.is_zero() {
            return Err(fail("interval", format!("probe {}: the interval must be more than 0", probe.name)));
        }
    }
    let mut checks = Vec::new();
    let mut actions = Vec::new();
    for phase in &experiment.phases {
        let mut words_of_phase = Vec::new();
        for action in &phase.actions {
            let words: Vec<String> = action.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                return Err(fail(&phase.name, format!("phase {}: an empty action", phase.name)));
            }
            check_action(&words)
                .map_err(|why| fail(action, format!("phase {}: action {action:?}: {why}", phase.name)))?;
            words_of_phase.push(words);
        }
        actions.push(words_of_phase);
        let mut phase_checks = Vec::new();
        for expect in &phase.expect {
            phase_checks.push(check_of(expect, &names).map_err(|why| {
                let needle = expect.probe.as_deref().map_or("target:".to_string(), |p| format!("probe: {p}"));
                fail(&needle, format!("phase {}: {why}", phase.name))
            })?);
        }
        checks.push(phase_checks);
    }
    Ok(Plan { experiment, checks, actions })
}

/// The first line holding `needle` as a whole word (`probe: completion` is not in `probe: completions`).
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.lines()
        .position(|line| line.match_indices(needle).any(|(at, _)| !line[at + needle.len()..].starts_with(word)))
        .map(|i| i + 1)
}

fn check_of(expect: &Expect, probes: &std::collections::HashSet<&str>) -> Result<Check, String> {
    let mut forms = Vec::new();
    if let Some(probe) = &expect.probe {
        if !probes.contains(probe.as_str()) {
            return Err(format!("unknown probe {probe:?} (the probes are: {})", {
                let mut known: Vec<&&str> = probes.iter().collect();
                known.sort();
                known.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            }));
        }
        let latency = [
            (0.5, expect.latency_p50),
            (0.9, expect.latency_p90),
            (0.99, expect.latency_p99),
            (1.0, expect.latency_max),
        ];
        if let Some(bound) = expect.success_rate {
            forms.push(Check::SuccessRate(probe.clone(), bound));
        }
        for (q, bound) in latency {
            if let Some(bound) = bound {
                if bound.unit != super::bound::Unit::Seconds {
                    return Err(format!("latency bound {bound} needs a time unit (e.g. <= 500ms)"));
                }
                forms.push(Check::Latency(probe.clone(), q, bound));
            }
        }
        if let Some(within) = expect.recovers_within {
            forms.push(Check::RecoversWithin(probe.clone(), within));
        }
        if let Some(Check::SuccessRate(_, bound)) = forms.first() {
            if bound.unit != super::bound::Unit::Percent {
                return Err(format!("success_rate bound {bound} needs a percentage (e.g. >= 99%)"));
            }
        }
    }
    if let Some(counter) = expect.target {
        let bound = expect.value.ok_or("a target counter needs a value bound (e.g. value: \"> 0\")")?;
        forms.push(Check::Counter(counter, bound));
    }
    if let Some(bound) = expect.cluster_faults {
        forms.push(Check::ClusterFaults(bound));
    }
    let mut waits = Vec::new();
    if let Some(node) = &expect.node_cordoned {
        waits.push(Condition::NodeCordoned(node.clone()));
    }
    if let Some(selector) = &expect.pods_ready {
        let selector = selector.parse::<crate::cluster::names::Labels>().map_err(|e| e.to_string())?;
        let namespace = expect.namespace.clone().ok_or("pods_ready needs the pods' namespace")?;
        waits.push(Condition::PodsReady { namespace, selector, avoid_node: expect.off_node.clone() });
    }
    if let Some(reason) = &expect.event {
        waits.push(Condition::Event { reason: reason.clone(), baseline: 0 });
    }
    for wait in waits {
        let within = expect.within.ok_or_else(|| format!("{wait}: give `within` (e.g. within: 60s)"))?;
        forms.push(Check::Within(wait, within));
    }
    match forms.len() {
        1 => Ok(forms.remove(0)),
        0 => Err("an expectation needs a probe with success_rate, latency_*, or recovers_within, or a target \
                  counter with a value, cluster_faults, or node_cordoned / pods_ready / event with within"
            .to_string()),
        _ => Err("one check per expectation: write each as its own list item".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"name: decode-survives-ucx-faults
target: {exe: ucx_server}
probes:
  - name: completions
    http:
      url: http://127.0.0.1:8000/v1/completions
      method: POST
      json: {model: m, prompt: hello, max_tokens: 4}
      interval: 100ms
      timeout: 2s
      ok_status: [200]
phases:
  - name: baseline
    duration: 3s
    expect: [{probe: completions, success_rate: ">= 99%"}]
  - name: faults
    actions: ["hooks ucp_put_nbx", "strategy random", "probability 50", "enable"]
    duration: 4s
    expect: [{probe: completions, success_rate: "<= 90%"}, {target: faults, value: "> 0"}]
  - name: recovery
    actions: ["disable"]
    duration: 4s
    expect: [{probe: completions, recovers_within: 2s}]
"#;

    fn known_words(words: &[String]) -> Result<(), String> {
        let known = ["hooks", "strategy", "probability", "enable", "disable"];
        if known.contains(&words[0].as_str()) {
            Ok(())
        } else {
            Err(format!("unknown command {:?}", words[0]))
        }
    }

    #[test]
    fn the_example_of_the_issue_reads_into_phases_and_checks() {
        let plan = parse(EXAMPLE, known_words).unwrap();
        assert_eq!(plan.experiment.target.exe.as_deref(), Some("ucx_server"));
        let probe = &plan.experiment.probes[0].http;
        assert_eq!((probe.method.as_str(), probe.interval.0.as_millis()), ("POST", 100));
        assert_eq!(probe.json.as_ref().unwrap()["max_tokens"], 4);
        assert_eq!(plan.actions[1][2], ["probability", "50"]);
        assert_eq!(plan.checks[1].len(), 2);
        assert_eq!(plan.checks[1][1].to_string(), "target faults > 0");
        assert_eq!(plan.checks[2][0].to_string(), "completions recovers within 2s");
    }

    #[test]
    fn bad_files_are_refused_naming_the_line() {
        let cases = [
            (EXAMPLE.replace("probe: completions, recovers", "probe: completion, recovers"), 23, "unknown probe"),
            (
                EXAMPLE.replace(
                    "duration: 4s\n    expect: [{probe: completions, recovers",
                    "duration: soon\n    expect: [{probe: completions, recovers",
                ),
                22,
                "not a duration",
            ),
            (EXAMPLE.replace("\"disable\"", "\"disabel\""), 21, "unknown command \"disabel\""),
            (EXAMPLE.replace("success_rate: \">= 99%\"", "success_rate: \"99%\""), 15, "is not a bound"),
            (EXAMPLE.replace("method: POST", "methd: POST"), 7, "unknown field `methd`"),
            (EXAMPLE.replace("ok_status: [200]", "ok_status: [200]\n      retries: 3"), 12, "unknown field `retries`"),
        ];
        for (text, line, message) in cases {
            let error = parse(&text, known_words).unwrap_err();
            assert_eq!(error.line, Some(line), "{error}");
            assert!(error.message.contains(message), "{error}");
        }
        let two = EXAMPLE.replace(
            "{probe: completions, recovers_within: 2s}",
            "{probe: completions, recovers_within: 2s, success_rate: \">= 1%\"}",
        );
        assert!(parse(&two, known_words).unwrap_err().message.contains("one check per expectation"));
    }
}
