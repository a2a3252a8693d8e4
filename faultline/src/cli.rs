//! The command line: clap definitions, and their translation into library [`Request`]s. Values are kept as typed
//! here and parsed by the library (with `shm_proto`'s shared parsers), so the CLI, the seed's JSON objects and the
//! shims' environment accept and reject exactly the same things.
//!
//! The same program is also the seed UCX injector's client: run as `ucx-fault-client` (the second binary, or any
//! link of that name), it introduces itself so, lists the seed's subcommands, wants one, and acts on UCX processes
//! unless `--kind` says otherwise (see [`Cli::from_invocation`]).

pub mod cluster;
pub mod experiment;
pub mod node;
pub mod signals;
pub mod watch;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use faultline::actions::{Change, ReplaySource, Switch};
use faultline::recording::DumpFormat;
use faultline::settings::{Settings, TypedSettings};
use faultline::{compat, Error, Request};
use shm_proto::Kind;

const EXAMPLES: &str = "\
Examples:
  LD_PRELOAD=/path/to/libfaultline_ucx.so my_ucx_app &   start a program under the UCX shim
  faultline ps                                         list every shimmed process
  faultline enable                                     turn injection on everywhere
  faultline probability 12.5                           fail 12.5% of armed calls (random mode)
  faultline strategy XOOOOXOO --error-codes UCS_ERR_IO_ERROR,-20
  faultline --pid 1234 hooks put,get                   only ucp_put_nbx / ucp_get_nbx can fail in pid 1234
  faultline --kind ucx site completion                 faults surface at completion, not at the call
  faultline record on; faultline record dump pattern -o run.json
  faultline --pid 5678 replay --from-file run.json     replay exactly those faults in another process
  faultline send '{\"command\":\"set_probability\",\"probability\":25}'   the seed client's JSON commands

Without --pid, a command acts on every running process you can attach. Exit status: 0 done, 1 nothing to act on
or some processes failed (each is reported), 2 bad usage or value (nothing was changed).";

/// Steer the faults of processes running a faultline shim (LD_PRELOAD=libfaultline_ucx.so / libfaultline_cuda.so).
#[derive(Debug, Parser)]
#[command(name = "faultline", version, after_help = EXAMPLES, max_term_width = 120)]
pub struct Cli {
    /// Act on this process only (repeatable). Default: every running process you can attach.
    #[arg(long = "pid", value_name = "PID", global = true)]
    pub pids: Vec<u32>,

    /// Only processes running this shim.
    #[arg(long, value_enum, value_name = "KIND", global = true)]
    pub kind: Option<KindArg>,

    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Refuse anything that would change a process or remove a file (exit 2).
    #[arg(long, global = true)]
    pub read_only: bool,

    /// The kubeconfig context of the dashboard's cluster view and of `faultline cluster` (default: the current one).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,

    /// The dashboard lists the cluster's shimmed processes (every pod, through the node agents) beside the local
    /// ones from the start; without it they join once the cluster view (`v`) has connected.
    #[arg(long = "cluster")]
    pub cluster_processes: bool,

    /// The namespace of the faultline-node agent, as for `faultline cluster` (default: faultline-system).
    #[arg(long, value_name = "NAMESPACE")]
    pub agent_namespace: Option<String>,

    /// Measure the dashboard for `--bench-seconds` and write frame times and CPU use to this file (benchmarks).
    #[arg(long, value_name = "FILE", hide = true)]
    pub bench_report: Option<PathBuf>,

    /// How long `--bench-report` measures.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, hide = true)]
    pub bench_seconds: f64,

    /// Without a command, faultline opens the dashboard (`--pid P` focuses it on one process).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The seed client's executable name.
pub const SEED_CLIENT_NAME: &str = "ucx-fault-client";

/// The seed client's own subcommands (hidden under the name `faultline`, listed under its own).
const SEED_SUBCOMMANDS: [&str; 6] =
    ["pattern", "aggregate-stats", "record-toggle", "record-dump", "record-dump-count", "record-clear"];

impl Cli {
    /// Parses the process's command line as `faultline`, or as the seed's `ucx-fault-client` when this binary is
    /// that one or was started under that name (exits with clap's message and status 2 on bad usage).
    pub fn from_invocation() -> Cli {
        let args: Vec<OsString> = std::env::args_os().collect();
        let invoked_as = args.first().and_then(|arg0| Path::new(arg0).file_name()).map(|name| name.to_os_string());
        let seed_client =
            env!("CARGO_BIN_NAME") == SEED_CLIENT_NAME || invoked_as.is_some_and(|name| name == SEED_CLIENT_NAME);
        if seed_client {
            Cli::seed_client_from(args).unwrap_or_else(|e| e.exit())
        } else {
            Cli::parse_from(args)
        }
    }

    /// Parses `args` as the seed's client: its name in help and errors, its subcommands listed, one required, and
    /// UCX processes only unless `--kind` is given.
    pub fn seed_client_from(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Cli, clap::Error> {
        let mut command = Cli::command()
            .name(SEED_CLIENT_NAME)
            .bin_name(SEED_CLIENT_NAME)
            .about(
                "The seed UCX fault injector's client, as faultline: steer the faults of processes running \
                    libucx_fault_injector.so (faultline's UCX shim)",
            )
            .subcommand_required(true)
            .arg_required_else_help(true);
        for name in SEED_SUBCOMMANDS {
            command = command.mut_subcommand(name, |subcommand| subcommand.hide(false));
        }
        let mut matches = command.try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
        cli.kind = cli.kind.or(Some(KindArg::Ucx));
        Ok(cli)
    }
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    // Variants stay undocumented so the help lists them compactly: [possible values: ucx, cuda].
    Ucx,
    Cuda,
}

impl KindArg {
    /// `ucx` or `cuda`.
    pub fn name(self) -> &'static str {
        Kind::from(self).name()
    }
}

impl From<KindArg> for Kind {
    fn from(kind: KindArg) -> Kind {
        match kind {
            KindArg::Ucx => Kind::Ucx,
            KindArg::Cuda => Kind::Cuda,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would only obscure the clap derive
pub enum Command {
    /// List every process with a faultline segment: pid, executable, kind, alive/dead, mode, calls, faults.
    Ps,
    /// Show the strategy in force and every hook's calls and faults.
    Status,
    /// Turn fault injection on.
    Enable,
    /// Turn fault injection off (calls pass straight through).
    Disable,
    /// Turn fault injection on where it is off and off where it is on.
    Toggle,
    /// Set the fault probability of random mode, in percent (decimals allowed: 0.5, 12.5).
    Probability {
        /// 0 to 100.
        #[arg(value_name = "PERCENT", allow_hyphen_values = true)]
        percent: String,
    },
    /// Choose random faults or an X/O pattern (X fails a call, O passes it; the pattern repeats).
    #[command(after_help = "XOOOOXOO fails armed calls 1, 6, 9, 14, 17, …; each X takes the next code of the pool.")]
    Strategy {
        /// `random` or a pattern such as XOOOOXOO.
        #[arg(value_name = "random|PATTERN")]
        strategy: String,
        /// Also set the error pool (as for `error-codes`).
        #[arg(long, value_name = "CODES", allow_hyphen_values = true)]
        error_codes: Option<String>,
    },
    /// Set the error codes injected faults return: numbers or names, comma-separated.
    #[command(after_help = "Examples: -3,-6,-20   UCS_ERR_IO_ERROR,UCS_ERR_TIMED_OUT   cudaErrorNoDevice")]
    ErrorCodes {
        /// Up to 32 codes; each must be an error of the process's API (not 0, not a positive UCX status).
        #[arg(value_name = "CODES", allow_hyphen_values = true)]
        codes: String,
    },
    /// Choose which intercepted functions can fail: names or short names (put, get, flush, …), all or none.
    Hooks {
        /// e.g. `put,get`, `ucp_tag_send_nbx`, `all`, `none`.
        #[arg(value_name = "HOOKS|all|none")]
        hooks: String,
    },
    /// Set the random-mode seed (a single-threaded run is reproducible).
    Seed {
        /// A whole number, decimal or 0x-hex.
        #[arg(value_name = "N", allow_hyphen_values = true)]
        seed: String,
    },
    /// Let the first N armed calls pass before the strategy starts.
    Skip {
        /// Armed calls to pass.
        #[arg(value_name = "N", allow_hyphen_values = true)]
        count: String,
    },
    /// Stop injecting after N faults (0: no limit).
    Limit {
        /// Faults to inject.
        #[arg(value_name = "N", allow_hyphen_values = true)]
        count: String,
    },
    /// Sleep before failing a call, or instead of failing it (0 turns the delay off).
    Delay {
        /// Microseconds.
        #[arg(value_name = "MICROSECONDS", allow_hyphen_values = true)]
        microseconds: String,
        /// before-fault: sleep, then fail; instead-of-fault: sleep, then pass the call (a slow call).
        #[arg(long, value_name = "MODE", value_parser = ["before-fault", "instead-of-fault", "off"])]
        mode: Option<String>,
    },
    /// Choose where injected faults surface: at the call (post), at its completion, or on the endpoint (UCX).
    #[command(after_help = "post (the default): the call returns the error and starts nothing. completion: the \
                            operation runs and its completion (callback, request status; for CUDA the next \
                            synchronising call) reports the error. endpoint (UCX only): the endpoint fails as a dead \
                            peer's does. At start-up: FAULTLINE_SITE.")]
    Site {
        /// post, completion or endpoint.
        #[arg(value_name = "post|completion|endpoint")]
        site: String,
    },
    /// Change several settings at once: every value is checked first, then all are published as one change.
    #[command(after_help = "Each option sets what `faultline status` shows under the same name, e.g. \
                            `faultline set --enabled on --mode pattern --pattern XOOX --hooks put --error-codes -3`. \
                            --mode switches the mode and keeps the stored pattern and replay program; --pattern \
                            without --mode means pattern mode, and --pattern '' clears the stored pattern.")]
    Set(SetArgs),
    /// Go back to the shim's defaults (disabled, random 0%, default pool and hooks, recording off); counters stay.
    Reset,
    /// Record armed calls into the process's flight recorder, dump it, or clear it.
    Record {
        #[command(subcommand)]
        action: RecordCommand,
    },
    /// Play an exact per-call sequence of passes and faults (codes included) from the next armed call.
    #[command(after_help = "Without --from-* or --program, each process replays its own recording. Replay enables \
                      injection and overrides the mode, skip and limit until another strategy is set. \
                      e.g. `faultline --pid 1234 replay --program 0,0,-3,0,-20`: calls 3 and 5 fail.")]
    Replay {
        /// Take the sequence from this process's recording (it may have exited).
        #[arg(long, value_name = "PID", conflicts_with_all = ["from_file", "program"])]
        from_pid: Option<u32>,
        /// Take the sequence from a pattern dump (`faultline record dump pattern -o FILE`, or the seed's format).
        #[arg(long, value_name = "FILE", conflicts_with = "program")]
        from_file: Option<PathBuf>,
        /// Play this sequence: one code per armed call, comma-separated; 0 passes the call, any other number fails
        /// it with that code (numbers only: a code's name depends on the process's kind). At most 65536 calls.
        #[arg(long, value_name = "CODES", allow_hyphen_values = true)]
        program: Option<String>,
        /// Replay the faults at this site (post, completion or endpoint) instead of the one they were recorded
        /// at; needed when the recording mixes sites. A --program keeps the process's site unless it is given.
        #[arg(long, value_name = "SITE")]
        site: Option<String>,
        /// Start over after the last call instead of passing everything.
        #[arg(long = "loop")]
        looping: bool,
    },
    /// Remove the segments of processes that have exited.
    Clean,
    /// Open the dashboard on a built-in demo workload: real UCX traffic, the shim preloaded, 5% faults.
    #[command(after_help = "Compiles a small UCX program (needs cc and libucx-dev), starts it with \
                            LD_PRELOAD=libfaultline_ucx.so, and stops it when the dashboard exits. With \
                            --experiment the program serves HTTP and an experiment runs against it instead: a \
                            baseline, a phase of faults, a recovery, each judged, the program put back after.")]
    Demo {
        /// Run an experiment against the workload (served over HTTP) instead of opening the dashboard.
        #[arg(long)]
        experiment: bool,
        /// With --experiment: write the JUnit XML report here.
        #[arg(long, value_name = "FILE", requires = "experiment")]
        junit: Option<PathBuf>,
    },
    /// Print the absolute path of the shim library that came with this faultline (beside it, or in its Python
    /// package), for LD_PRELOAD.
    #[command(after_help = "e.g. LD_PRELOAD=$(faultline shim-path ucx) vllm serve …")]
    ShimPath {
        /// Which shim.
        #[arg(value_enum)]
        kind: KindArg,
    },
    /// Print a shell completion script.
    #[command(after_help = "e.g. faultline completions bash > /etc/bash_completion.d/faultline")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run one of the seed client's JSON command objects, e.g. '{"command":"set_strategy","pattern":"XOX"}'.
    #[command(after_help = format!("Commands: {}", compat::SEED_COMMANDS.join(", ")))]
    Send {
        /// The JSON object.
        #[arg(value_name = "JSON")]
        object: String,
    },
    /// On a Kubernetes node, as root (the faultline-node agent pod): inject XIDs into the kernel log; run the
    /// process commands across every container (`faultline node ps`, `faultline node status --pid <host pid>`).
    #[command(after_help = "Process commands: every process command of `faultline --help` (ps, status, enable, \
                            probability, record, …), e.g. `faultline node ps`, `faultline node enable --pid 4242`; \
                            --pid takes host pids.")]
    Node {
        #[command(subcommand)]
        command: node::NodeCommand,
    },
    /// Against the Kubernetes API (current kubeconfig context, like kubectl): GPU nodes, XID injection.
    Cluster(cluster::ClusterArgs),
    /// Experiments with verdicts: inject faults in phases while probes measure the service; judge, report, and
    /// undo everything at the end.
    Experiment {
        #[command(subcommand)]
        command: experiment::ExperimentCommand,
    },
    /// Seed spelling of `record on|off|toggle` (no argument toggles).
    #[command(hide = true)]
    RecordToggle {
        /// on or off.
        state: Option<String>,
    },
    /// Seed spelling of `record dump`.
    #[command(hide = true)]
    RecordDump(DumpArgs),
    /// Seed spelling of `record dump records --count N`.
    #[command(hide = true)]
    RecordDumpCount {
        /// Records.
        count: String,
    },
    /// Seed spelling of `record clear`.
    #[command(hide = true)]
    RecordClear,
    /// Fail calls by an X/O pattern (X fails, O passes), keeping the error pool: seed spelling of `strategy <PATTERN>`.
    #[command(hide = true)]
    Pattern {
        /// e.g. XOOOOXOO.
        #[arg(value_name = "PATTERN")]
        pattern: String,
    },
    /// Totals over every process, and a table by process (the seed client's overview).
    #[command(hide = true)]
    AggregateStats {
        /// Add a table by intercepted function.
        #[arg(long)]
        detailed: bool,
        /// Add a table of the recorded calls by transfer size.
        #[arg(long)]
        group_by_size: bool,
    },
}

/// `record …`.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Start recording.
    On,
    /// Stop recording (what was recorded stays).
    Off,
    /// Start recording where it is off, stop it where it is on.
    Toggle,
    /// Print the recording as JSON (the seed's formats), or write it to a file.
    #[command(after_help = "Several processes: one JSON document each, in pid order. A dead process's recording is \
                            readable with --pid until `faultline clean` removes it.")]
    Dump(DumpArgs),
    /// Forget everything recorded so far.
    Clear,
}

/// The options of `set`: each one setting, as `status` names it; at least one.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Inject faults at all.
    #[arg(long, value_name = "on|off")]
    pub enabled: Option<String>,
    /// The mode (the stored pattern and replay program are kept).
    #[arg(long, value_name = "MODE", value_parser = ["random", "pattern", "replay"])]
    pub mode: Option<String>,
    /// The X/O pattern ('' clears it).
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Random mode's probability in percent (decimals allowed).
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub probability: Option<String>,
    /// The error pool: numbers or names, comma-separated.
    #[arg(long, value_name = "CODES", allow_hyphen_values = true)]
    pub error_codes: Option<String>,
    /// The armed hooks: names or short names, all or none.
    #[arg(long, value_name = "HOOKS|all|none")]
    pub hooks: Option<String>,
    /// Random mode's seed.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub seed: Option<String>,
    /// Armed calls to pass before the strategy starts.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub skip: Option<String>,
    /// Faults after which injection stops (0: no limit).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub limit: Option<String>,
    /// Delay length in microseconds (0 turns it off).
    #[arg(long, value_name = "MICROSECONDS", allow_hyphen_values = true)]
    pub delay: Option<String>,
    /// What the delay does.
    #[arg(long, value_name = "MODE", value_parser = ["before-fault", "instead-of-fault", "off"])]
    pub delay_mode: Option<String>,
    /// Whether a replay starts over after its last call.
    #[arg(long, value_name = "on|off")]
    pub replay_loop: Option<String>,
    /// Where injected faults surface: post, completion or endpoint (UCX only).
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
}

impl SetArgs {
    fn change(&self) -> Result<Change, Error> {
        let typed = TypedSettings {
            enabled: self.enabled.as_deref(),
            mode: self.mode.as_deref(),
            pattern: self.pattern.as_deref(),
            probability: self.probability.as_deref(),
            error_codes: self.error_codes.as_deref(),
            hooks: self.hooks.as_deref(),
            seed: self.seed.as_deref(),
            skip: self.skip.as_deref(),
            limit: self.limit.as_deref(),
            delay: self.delay.as_deref(),
            delay_mode: self.delay_mode.as_deref(),
            replay_loop: self.replay_loop.as_deref(),
            site: self.site.as_deref(),
        };
        Ok(Change::Settings(Settings::parse(&typed)?))
    }
}

/// The options of `record dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// summary: statistics; pattern: X/O and codes (for `replay --from-file`); records: every call.
    #[arg(value_enum, default_value = "summary")]
    pub format: DumpFormat,
    /// Only the last N records.
    #[arg(long, value_name = "N")]
    pub count: Option<String>,
    /// Write the JSON to FILE (replaced whole) instead of printing it; needs a single process.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl DumpArgs {
    fn request(self) -> Result<Request, Error> {
        let count = self.count.map(|n| shm_proto::config::parse_count("count", &n)).transpose()?;
        Ok(Request::Dump { format: self.format, count, output: self.output })
    }
}

impl Command {
    /// The library request this command stands for (`kind` narrows `replay --from-pid`). Not for `completions`,
    /// which the binary handles itself.
    pub fn request(self, kind: Option<Kind>) -> Result<Request, Error> {
        let change = match self {
            Command::Ps => return Ok(Request::Ps),
            Command::Status => return Ok(Request::Status),
            Command::Clean => return Ok(Request::Clean),
            Command::AggregateStats { detailed, group_by_size } => {
                return Ok(Request::AggregateStats { detailed, by_size: group_by_size })
            }
            Command::Send { object } => return compat::parse_seed_command(&object),
            Command::Record { action: RecordCommand::Dump(dump) } | Command::RecordDump(dump) => return dump.request(),
            Command::RecordDumpCount { count } => {
                return DumpArgs { format: DumpFormat::Records, count: Some(count), output: None }.request()
            }
            Command::Completions { .. } | Command::Demo { .. } | Command::ShimPath { .. } => {
                return Err(Error::usage("completions, shim-path and the demo are run by the binary"))
            }
            Command::Node { .. } | Command::Cluster(_) | Command::Experiment { .. } => {
                return Err(Error::usage("node, cluster and experiment commands are run by the binary"))
            }
            Command::Enable => Change::Enabled(Switch::On),
            Command::Disable => Change::Enabled(Switch::Off),
            Command::Toggle => Change::Enabled(Switch::Toggle),
            Command::Probability { percent } => Change::probability(&percent)?,
            Command::Strategy { strategy, error_codes } => Change::strategy(&strategy, error_codes.as_deref())?,
            Command::Pattern { pattern } => Change::pattern(&pattern)?,
            Command::ErrorCodes { codes } => Change::ErrorCodes(codes),
            Command::Hooks { hooks } => Change::Hooks(hooks),
            Command::Seed { seed } => Change::seed(&seed)?,
            Command::Skip { count } => Change::skip(&count)?,
            Command::Limit { count } => Change::limit(&count)?,
            Command::Delay { microseconds, mode } => Change::delay(&microseconds, mode.as_deref())?,
            Command::Site { site } => Change::site(&site)?,
            Command::Set(args) => args.change()?,
            Command::Reset => Change::Reset,
            Command::Record { action: RecordCommand::On } => Change::Recording(Switch::On),
            Command::Record { action: RecordCommand::Off } => Change::Recording(Switch::Off),
            Command::Record { action: RecordCommand::Toggle } => Change::Recording(Switch::Toggle),
            Command::Record { action: RecordCommand::Clear } | Command::RecordClear => Change::ClearRecording,
            Command::RecordToggle { state: None } => Change::Recording(Switch::Toggle),
            Command::RecordToggle { state: Some(state) } => Change::recording(&state)?,
            Command::Replay { from_pid, from_file, program, site, looping } => {
                let site = site.as_deref().map(shm_proto::config::parse_site).transpose()?;
                let (source, site) = match (from_pid, from_file, program) {
                    (Some(pid), _, _) => ReplaySource::from_pid(pid, kind, site)?,
                    (None, Some(file), _) => ReplaySource::from_file(&file, site)?,
                    (None, None, Some(program)) => (ReplaySource::program(&program)?, site),
                    (None, None, None) => (ReplaySource::OwnRecording, site),
                };
                Change::Replay { source, looping, site }
            }
        };
        Ok(Request::Change(change))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_words_of_a_change_parse_back_to_it() {
        // What the dashboard sends a cluster node's agent for a change is the command line that makes it.
        use shm_proto::layout::{DelayMode, Site};
        let changes = [
            Change::Enabled(Switch::On),
            Change::Enabled(Switch::Off),
            Change::Enabled(Switch::Toggle),
            Change::Probability(125_000),
            Change::Probability(1),
            Change::Probability(1_000_000),
            Change::Probability(0),
            Change::Strategy { pattern: Some(vec![true, false, false, true]), error_codes: None },
            Change::Strategy { pattern: None, error_codes: Some("-3,UCS_ERR_TIMED_OUT".into()) },
            Change::ErrorCodes("-3,-6".into()),
            Change::Hooks("put,get".into()),
            Change::Seed(u64::MAX),
            Change::Skip(7),
            Change::Limit(0),
            Change::Delay { us: 500, mode: Some(DelayMode::BeforeFault) },
            Change::Delay { us: 0, mode: None },
            Change::Site(Site::Post),
            Change::Site(Site::Completion),
            Change::Site(Site::Endpoint),
            Change::Reset,
            Change::Recording(Switch::On),
            Change::Recording(Switch::Toggle),
            Change::ClearRecording,
            Change::Replay { source: ReplaySource::OwnRecording, looping: true, site: None },
            Change::Replay { source: ReplaySource::OwnRecording, looping: false, site: Some(Site::Completion) },
            Change::Replay { source: ReplaySource::Program(vec![0, -3, 0, 0, -20]), looping: false, site: None },
            Change::Replay { source: ReplaySource::Program(vec![-3]), looping: true, site: Some(Site::Endpoint) },
        ];
        for change in changes {
            let words = change.words().expect("a command spells it");
            let cli = Cli::try_parse_from(std::iter::once("faultline".to_string()).chain(words.iter().cloned()))
                .unwrap_or_else(|e| panic!("{words:?}: {e}"));
            let request = cli.command.expect("a command").request(Some(Kind::Ucx)).expect("valid");
            assert_eq!(request, Request::Change(change), "{words:?}");
        }
    }

    #[test]
    fn global_flags_do_not_shadow_subcommand_arguments() {
        let cli = Cli::try_parse_from(["faultline", "send", r#"{"command":"status"}"#, "--json"]).unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Some(Command::Send { .. })));
        let cli = Cli::try_parse_from(["faultline", "error-codes", "-3,-6,-20", "--pid", "7"]).unwrap();
        assert_eq!(cli.pids, vec![7]);
        assert!(matches!(cli.command, Some(Command::ErrorCodes { codes }) if codes == "-3,-6,-20"));
    }

    #[test]
    fn replay_takes_a_typed_program() {
        let request = |args: &[&str]| {
            let cli = Cli::try_parse_from(["faultline", "replay"].iter().chain(args)).unwrap();
            cli.command.unwrap().request(None)
        };
        let program = |codes: Vec<i32>| {
            Request::Change(Change::Replay { source: ReplaySource::Program(codes), looping: false, site: None })
        };
        assert_eq!(request(&["--program", "-3,0,-20"]).unwrap(), program(vec![-3, 0, -20]));
        assert_eq!(request(&["--program=0, 100"]).unwrap(), program(vec![0, 100]), "checked per kind when planned");
        let error = request(&["--program", "0,x"]).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        let at_completion = Change::Replay {
            source: ReplaySource::Program(vec![0, -3]),
            looping: false,
            site: Some(shm_proto::layout::Site::Completion),
        };
        assert_eq!(request(&["--program", "0,-3", "--site", "completion"]).unwrap(), Request::Change(at_completion));
        let error = request(&["--program", "0,-3", "--site", "callback"]).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        assert!(error.to_string().contains("fault site 'callback' is not one of post, completion, endpoint"));
        let both = Cli::try_parse_from(["faultline", "replay", "--program", "0", "--from-file", "f"]).unwrap_err();
        assert_eq!(both.exit_code(), 2);
    }

    #[test]
    fn the_seed_client_spellings_parse_under_its_name() {
        let seed = |args: &[&str]| Cli::seed_client_from([SEED_CLIENT_NAME].iter().chain(args)).unwrap();
        let cli = seed(&["error-codes", "--", "-3,-6"]);
        assert!(matches!(cli.command, Some(Command::ErrorCodes { codes }) if codes == "-3,-6"));
        assert_eq!(cli.kind, Some(KindArg::Ucx), "the seed client steers UCX processes");
        assert!(
            matches!(seed(&["pattern", "XOOOOXOO"]).command, Some(Command::Pattern { pattern }) if pattern == "XOOOOXOO")
        );
        assert!(matches!(
            seed(&["aggregate-stats", "--detailed"]).command,
            Some(Command::AggregateStats { detailed: true, group_by_size: false })
        ));
        assert!(
            matches!(seed(&["probability", "50"]).command, Some(Command::Probability { percent }) if percent == "50")
        );
        assert!(
            matches!(seed(&["record-toggle", "true"]).command, Some(Command::RecordToggle { state: Some(s) }) if s == "true")
        );
        assert_eq!(seed(&["--kind", "cuda", "status"]).kind, Some(KindArg::Cuda));

        let help = Cli::seed_client_from([SEED_CLIENT_NAME, "--help"]).unwrap_err().to_string();
        assert!(help.contains("Usage: ucx-fault-client"), "{help}");
        assert!(help.contains("aggregate-stats") && help.contains("record-dump-count"), "{help}");
        let missing = Cli::seed_client_from([SEED_CLIENT_NAME]).unwrap_err();
        assert_eq!(missing.exit_code(), 2, "a subcommand is required, as with the seed");
        assert!(Cli::try_parse_from(["faultline", "pattern", "XO"]).is_ok(), "the same program under either name");
    }
}
