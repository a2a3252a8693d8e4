//! Every change faultline can make to a process, once: [`Change`] says what the user asked for (values that do not
//! depend on the target already parsed), [`plan`] computes the target's next state without touching it (so every
//! target is validated before any is changed), and [`apply`] publishes it.
//!
//! A change is a read-modify-write of the whole [`Strategy`]: snapshot, modify, publish under the segment's writer
//! lock. Publishing a strategy that starts a new sequence (new mode, pattern, replay program, skip or limit, or
//! enabling) restarts the pattern / replay / skip / limit at the process's next armed call. Setting a strategy,
//! replay, skip or limit restarts it even when the value is unchanged: `strategy XOOOOXOO` always means "fail the
//! next armed call, then every fifth and eighth…", whatever ran before.

use shm_proto::codes;
use shm_proto::config::{self, StatsInterval};
use shm_proto::control::PublishError;
use shm_proto::control::ReadError;
use shm_proto::layout::{DelayMode, Site, REPLAY_CAP};
use shm_proto::{Kind, Mode, Strategy};

use crate::error::Error;
use crate::recording;
use crate::settings::Settings;
use crate::targets::Target;

/// On, off, or the opposite of what it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
    /// Flip it, per process.
    Toggle,
}

impl Switch {
    /// Parses `toggle` or any on/off spelling `shm_proto::config::parse_switch` accepts.
    pub fn parse(what: &'static str, text: &str) -> Result<Switch, Error> {
        if text.trim().eq_ignore_ascii_case("toggle") {
            return Ok(Switch::Toggle);
        }
        Ok(if config::parse_switch(what, text)? { Switch::On } else { Switch::Off })
    }

    /// The new value given the current one.
    pub fn resolve(self, current: bool) -> bool {
        match self {
            Switch::On => true,
            Switch::Off => false,
            Switch::Toggle => !current,
        }
    }
}

/// Where a replay program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySource {
    /// Each target's own recording (the seed's `replay`).
    OwnRecording,
    /// A program read beforehand (from another process's recording or a pattern file): per armed call, 0 passes and
    /// anything else is injected as that code.
    Program(Vec<i32>),
}

/// A change a user asked for. Values that mean the same for every target are parsed when the change is built;
/// error codes and hook names are resolved per target (they depend on its kind and hook table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `enable` / `disable` / `toggle`.
    Enabled(Switch),
    /// `probability <percent>`, in parts per million.
    Probability(u32),
    /// `strategy random|<pattern> [--error-codes LIST]`: `None` is random.
    Strategy {
        /// The X/O pattern, or `None` for random.
        pattern: Option<Vec<bool>>,
        /// A new error pool, as typed.
        error_codes: Option<String>,
    },
    /// `error-codes <list>`, as typed.
    ErrorCodes(String),
    /// `hooks <list|all|none>`, as typed.
    Hooks(String),
    /// The seed's `enable_hook` / `disable_hook`: arm (or disarm) these hooks, as typed, leaving the others as they
    /// are.
    ArmHooks {
        /// Hook names or aliases, `all` for every hook.
        hooks: String,
        /// Arm (else disarm).
        arm: bool,
    },
    /// The shim's periodic stats line on stderr (the seed's `set_stats_log_interval`). Not part of the strategy.
    StatsInterval(StatsInterval),
    /// `seed <n>`.
    Seed(u64),
    /// `skip <n>`.
    Skip(u64),
    /// `limit <n>`.
    Limit(u64),
    /// `delay <µs> [--mode …]`.
    Delay {
        /// Microseconds; 0 turns the delay off.
        us: u32,
        /// The mode asked for, if any.
        mode: Option<DelayMode>,
    },
    /// `site post|completion|endpoint`: where injected faults surface.
    Site(Site),
    /// `reset`: the shim's defaults (counters and the recording are kept).
    Reset,
    /// `record on|off|toggle`.
    Recording(Switch),
    /// `replay`: play an exact per-call program from the next armed call (enables injection).
    Replay {
        /// The program's origin.
        source: ReplaySource,
        /// Loop instead of passing every call after the end.
        looping: bool,
        /// The fault site to replay at. For a [`ReplaySource::Program`], what its recording said (or `--site`);
        /// `None` keeps the target's site. For [`ReplaySource::OwnRecording`], `--site`; `None` takes the site of
        /// each target's recording (refused where the recording mixes sites).
        site: Option<Site>,
    },
    /// `record clear`: forget what the ring holds.
    ClearRecording,
    /// `set`: several settings at once, published as one change.
    Settings(Settings),
}

impl Change {
    /// `probability <percent>`.
    pub fn probability(percent: &str) -> Result<Change, Error> {
        Ok(Change::Probability(config::parse_probability(percent)?))
    }

    /// The seed's `pattern <X/O>` (`set_pattern`): pattern mode with this pattern, the pool unchanged.
    pub fn pattern(pattern: &str) -> Result<Change, Error> {
        Ok(Change::Strategy { pattern: Some(config::parse_pattern(pattern)?), error_codes: None })
    }

    /// `strategy random|<X/O pattern>`, optionally with a new error pool.
    pub fn strategy(strategy: &str, error_codes: Option<&str>) -> Result<Change, Error> {
        Ok(Change::Strategy { pattern: config::parse_strategy(strategy)?, error_codes: error_codes.map(String::from) })
    }

    /// `seed <n>`.
    pub fn seed(seed: &str) -> Result<Change, Error> {
        Ok(Change::Seed(config::parse_count("seed", seed)?))
    }

    /// `skip <n>`.
    pub fn skip(count: &str) -> Result<Change, Error> {
        Ok(Change::Skip(config::parse_count("skip", count)?))
    }

    /// `limit <n>`.
    pub fn limit(count: &str) -> Result<Change, Error> {
        Ok(Change::Limit(config::parse_count("limit", count)?))
    }

    /// `delay <µs> [--mode off|before-fault|instead-of-fault]`.
    pub fn delay(us: &str, mode: Option<&str>) -> Result<Change, Error> {
        let mode = mode.map(config::parse_delay_mode).transpose()?;
        Ok(Change::Delay { us: config::parse_delay_us(us)?, mode })
    }

    /// `site post|completion|endpoint`.
    pub fn site(site: &str) -> Result<Change, Error> {
        Ok(Change::Site(config::parse_site(site)?))
    }

    /// `record on|off|toggle`.
    pub fn recording(switch: &str) -> Result<Change, Error> {
        Ok(Change::Recording(Switch::parse("recording", switch)?))
    }

    /// Whether the change (re)starts the call sequence: pattern, replay, skip and limit count from the next armed
    /// call again.
    pub fn starts_sequence(&self) -> bool {
        match self {
            Change::Strategy { .. } | Change::Replay { .. } | Change::Skip(_) | Change::Limit(_) => true,
            Change::Settings(settings) => settings.starts_sequence(),
            _ => false,
        }
    }

    /// The words of the `faultline` process command that makes this change (`["probability", "12.5"]`), for a
    /// process reached through another machine's agent (`faultline node watch` takes command words); `None` for
    /// the changes no single command spells (`set`'s several settings at once, the stats line interval).
    /// Parsing the words gives this change back (the dashboard's tests check every variant).
    pub fn words(&self) -> Option<Vec<String>> {
        let switch = |switch: &Switch| match switch {
            Switch::On => "on",
            Switch::Off => "off",
            Switch::Toggle => "toggle",
        };
        let words: Vec<String> = match self {
            Change::Enabled(Switch::On) => vec!["enable".into()],
            Change::Enabled(Switch::Off) => vec!["disable".into()],
            Change::Enabled(Switch::Toggle) => vec!["toggle".into()],
            Change::Probability(ppm) => vec!["probability".into(), config::format_probability(*ppm)],
            Change::Strategy { pattern, error_codes } => {
                let strategy = match pattern {
                    None => "random".to_string(),
                    Some(pattern) => pattern.iter().map(|&x| if x { 'X' } else { 'O' }).collect(),
                };
                let mut words = vec!["strategy".to_string(), strategy];
                if let Some(codes) = error_codes {
                    words.extend(["--error-codes".to_string(), codes.clone()]);
                }
                words
            }
            Change::ErrorCodes(codes) => vec!["error-codes".into(), codes.clone()],
            Change::Hooks(hooks) => vec!["hooks".into(), hooks.clone()],
            Change::Seed(seed) => vec!["seed".into(), seed.to_string()],
            Change::Skip(skip) => vec!["skip".into(), skip.to_string()],
            Change::Limit(limit) => vec!["limit".into(), limit.to_string()],
            Change::Delay { us, mode } => {
                let mut words = vec!["delay".to_string(), us.to_string()];
                if let Some(mode) = mode {
                    words.extend(["--mode".to_string(), mode.name().to_string()]);
                }
                words
            }
            Change::Site(site) => vec!["site".into(), site.name().into()],
            Change::Reset => vec!["reset".into()],
            Change::Recording(state) => vec!["record".into(), switch(state).into()],
            Change::ClearRecording => vec!["record".into(), "clear".into()],
            Change::Replay { source, looping, site } => {
                let mut words = vec!["replay".to_string()];
                if let ReplaySource::Program(program) = source {
                    words.extend(["--program".to_string(), config::format_replay_program(program)]);
                }
                if let Some(site) = site {
                    words.extend(["--site".to_string(), site.name().to_string()]);
                }
                if *looping {
                    words.push("--loop".into());
                }
                words
            }
            Change::ArmHooks { .. } | Change::StatsInterval(_) | Change::Settings(_) => return None,
        };
        Some(words)
    }

    /// What the change does, for messages (`--read-only: refusing to …`, the dashboard's status line).
    pub fn describe(&self) -> &'static str {
        match self {
            Change::Enabled(Switch::On) => "enable fault injection",
            Change::Enabled(Switch::Off) => "disable fault injection",
            Change::Enabled(Switch::Toggle) => "toggle fault injection",
            Change::Probability(_) => "set the probability",
            Change::Strategy { .. } => "set the strategy",
            Change::ErrorCodes(_) => "set the error codes",
            Change::Hooks(_) => "set the armed hooks",
            Change::ArmHooks { arm: true, .. } => "arm hooks",
            Change::ArmHooks { arm: false, .. } => "disarm hooks",
            Change::StatsInterval(_) => "set the stats line interval",
            Change::Seed(_) => "set the seed",
            Change::Skip(_) => "set skip",
            Change::Limit(_) => "set limit",
            Change::Delay { .. } => "set the delay",
            Change::Site(Site::Post) => "set the fault site to post",
            Change::Site(Site::Completion) => "set the fault site to completion",
            Change::Site(Site::Endpoint) => "set the fault site to endpoint",
            Change::Reset => "reset",
            Change::Recording(_) => "switch recording",
            Change::Replay { .. } => "start a replay",
            Change::ClearRecording => "clear the recording",
            Change::Settings(_) => "change the settings",
        }
    }
}

/// What [`apply`] will do to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Publish this strategy.
    Publish {
        /// The next strategy.
        strategy: Strategy,
        /// Restart the sequence even if the sequence settings are unchanged.
        restart: bool,
    },
    /// Clear the recording ring.
    ClearRecording,
    /// Store the stats line interval (the control block's `stats_interval` word, outside the strategy).
    StatsInterval(StatsInterval),
}

/// The strategy a target has now, read consistently.
pub fn current_strategy(target: &Target) -> Result<Strategy, Error> {
    target.segment().read_strategy().map_err(|error| match error {
        ReadError::Busy => Error::Inconsistent { target: target.label() },
        ReadError::Corrupt(what) => Error::Segment(shm_proto::SegmentError::Corrupt {
            path: target.found.path.clone(),
            what: format!("{what} (pid {})", target.pid()),
        }),
    })
}

/// Computes what `change` does to `target`, validating every value against the target's kind and hook table.
/// Changes nothing.
pub fn plan(change: &Change, target: &Target) -> Result<Planned, Error> {
    let kind = target.kind();
    let current = current_strategy(target)?;
    let mut next = current.clone();
    match change {
        Change::Enabled(switch) => next.enabled = switch.resolve(current.enabled),
        Change::Probability(ppm) => next.probability_ppm = *ppm,
        Change::Strategy { pattern, error_codes } => {
            match pattern {
                None => next.mode = Mode::Random,
                Some(pattern) => {
                    next.mode = Mode::Pattern;
                    next.pattern.clone_from(pattern);
                }
            }
            if let Some(list) = error_codes {
                next.pool = codes::parse_code_list(kind, list)?;
            }
        }
        Change::ErrorCodes(list) => next.pool = codes::parse_code_list(kind, list)?,
        Change::Hooks(list) => next.arm_mask = config::parse_hooks(&target.segment().header.hook_names(), list)?,
        Change::ArmHooks { hooks, arm } => {
            let mask = config::parse_hooks(&target.segment().header.hook_names(), hooks)?;
            for (word, bits) in next.arm_mask.iter_mut().zip(mask) {
                *word = if *arm { *word | bits } else { *word & !bits };
            }
        }
        Change::StatsInterval(interval) => return Ok(Planned::StatsInterval(*interval)),
        Change::Seed(seed) => next.seed = *seed,
        Change::Skip(skip) => next.skip = *skip,
        Change::Limit(limit) => next.limit = *limit,
        Change::Delay { us, mode } => {
            next.delay_us = *us;
            next.delay_mode = resolve_delay_mode(*us, *mode, current.delay_mode);
        }
        Change::Site(site) => next.site = check_site(kind, *site)?,
        Change::Reset => next = target.segment().default_strategy(),
        Change::Recording(switch) => next.recording = switch.resolve(current.recording),
        Change::Replay { source, looping, site } => {
            let site = match source {
                ReplaySource::OwnRecording => {
                    let own = recording::read(target);
                    next.replay = recording::replay_program(&own, &target.label())?;
                    recording::SiteTally::of(&own.records).site_to_replay(*site, &target.label())?
                }
                ReplaySource::Program(program) => {
                    next.replay.clone_from(program);
                    *site
                }
            };
            check_replay_program(kind, &next.replay)?;
            if let Some(site) = site {
                next.site = check_site(kind, site)?;
            }
            next.mode = Mode::Replay;
            next.replay_loop = *looping;
            next.enabled = true;
        }
        Change::ClearRecording => return Ok(Planned::ClearRecording),
        Change::Settings(settings) => {
            next = settings.apply_to(&current, kind, &target.segment().header.hook_names())?
        }
    }
    let restart = change.starts_sequence();
    Ok(Planned::Publish { strategy: next, restart })
}

/// The delay mode after setting the delay to `us` microseconds, with `asked` if one was given: 0 is off; otherwise
/// the mode asked for, else the one in force, else before-fault.
pub fn resolve_delay_mode(us: u32, asked: Option<DelayMode>, current: DelayMode) -> DelayMode {
    match (us, asked) {
        (0, _) => DelayMode::Off,
        (_, Some(mode)) => mode,
        (_, None) if current != DelayMode::Off => current,
        (_, None) => DelayMode::BeforeFault,
    }
}

/// `site` if processes of `kind` have it; a usage error (nothing changed) where they do not: the endpoint site on a
/// CUDA process.
pub fn check_site(kind: Kind, site: Site) -> Result<Site, Error> {
    config::check_site(kind, site).map_err(|_| {
        Error::usage(format!(
            "the {} site is UCX-only (a {} process has no endpoints); use completion, or choose UCX processes with \
             --kind ucx",
            site.name(),
            kind.name().to_uppercase()
        ))
    })?;
    Ok(site)
}

/// Checks a replay program against a kind: 1 to [`REPLAY_CAP`] calls, every nonzero entry an error of that kind.
pub fn check_replay_program(kind: Kind, program: &[i32]) -> Result<(), Error> {
    if program.is_empty() {
        return Err(Error::usage("the replay program is empty: nothing was recorded"));
    }
    if program.len() > REPLAY_CAP {
        return Err(Error::usage(format!(
            "the replay program has {} calls; a process holds at most {REPLAY_CAP}",
            program.len()
        )));
    }
    for &code in program.iter().filter(|&&code| code != 0) {
        if !codes::is_error(kind, code) {
            // parse_code explains why (not an error for this kind / unknown code) in the shared wording.
            codes::parse_code(kind, &code.to_string())?;
        }
    }
    Ok(())
}

/// Carries out a planned change.
pub fn apply(planned: &Planned, target: &Target) -> Result<(), PublishError> {
    let segment = target.segment();
    match planned {
        Planned::Publish { strategy, restart: true } => segment.publish_and_restart(strategy),
        Planned::Publish { strategy, restart: false } => segment.publish(strategy),
        Planned::ClearRecording => {
            segment.ring.clear();
            Ok(())
        }
        Planned::StatsInterval(interval) => {
            segment.control.stats_interval.store(interval.to_raw(), shm_proto::sync::Ordering::Relaxed);
            Ok(())
        }
    }
}

impl ReplaySource {
    /// The recording of process `pid` (alive or dead), narrowed to `kind` when it has both shims, and the site to
    /// replay it at: `site` (`replay --site`) if given, else the one its faults surfaced at (a recording that mixes
    /// sites is refused without `site`).
    pub fn from_pid(pid: u32, kind: Option<Kind>, site: Option<Site>) -> Result<(ReplaySource, Option<Site>), Error> {
        let selection = crate::targets::Selection { pids: vec![pid], kind };
        let found = crate::targets::select(&selection, crate::targets::Purpose::Read)?;
        match found.targets.as_slice() {
            [source] => {
                let label = source.label();
                let recorded = recording::read(source);
                let site = recording::SiteTally::of(&recorded.records).site_to_replay(site, &label)?;
                Ok((ReplaySource::Program(recording::replay_program(&recorded, &label)?), site))
            }
            _ => Err(Error::usage(format!("pid {pid} has a ucx and a cuda segment; choose one with --kind"))),
        }
    }

    /// A program as typed (`replay --program 0,0,-3`, see [`config::parse_replay_program`]); each nonzero code is
    /// checked against each target's kind when the change is planned.
    pub fn program(text: &str) -> Result<ReplaySource, Error> {
        Ok(ReplaySource::Program(config::parse_replay_program(text)?))
    }

    /// A pattern-format JSON file (see [`recording::replay_program_from_file`]), and the site to replay it at, as
    /// for [`ReplaySource::from_pid`] (a file without sites is a recording at `post`).
    pub fn from_file(path: &std::path::Path, site: Option<Site>) -> Result<(ReplaySource, Option<Site>), Error> {
        let (program, sites) = recording::replay_program_from_file(path)?;
        let site = sites.site_to_replay(site, &path.display().to_string())?;
        Ok((ReplaySource::Program(program), site))
    }
}
