//! The one entry point for everything faultline does to processes: a [`Request`] (built from the command line, a
//! seed JSON object, or the dashboard) is carried out by [`execute`] on the selected targets and answered with
//! a [`Report`] of plain values, which `output` renders as text or JSON.
//!
//! Changes happen in two passes: every target's next state is planned (and validated) first, and only if all plans
//! succeed is anything published — so bad input changes nothing anywhere.

use std::path::PathBuf;

use serde::Serialize;
use shm_proto::segment;

use crate::actions::{self, Change};
use crate::aggregate::{self, Aggregate};
use crate::error::Error;
use crate::recording::{self, DumpFormat};
use crate::state::{self, ProcessState, PsRow};
use crate::targets::{self, Purpose, Selection, Target, Unusable};

/// Something a user asked faultline to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// List every segment.
    Ps,
    /// Show each target's state and hooks.
    Status,
    /// Change each target.
    Change(Change),
    /// Print (or write) each target's recording.
    Dump {
        /// Which format.
        format: DumpFormat,
        /// Only the last N records.
        count: Option<u64>,
        /// Write to this file instead of standard output (one target only).
        output: Option<PathBuf>,
    },
    /// Remove the segments of dead processes.
    Clean,
    /// The seed client's `aggregate-stats`: totals and a table by process.
    AggregateStats {
        /// Add a table by intercepted function.
        detailed: bool,
        /// Add a table of the recorded calls by transfer size.
        by_size: bool,
    },
}

/// How a request is carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Refuse every request that changes something.
    pub read_only: bool,
}

/// A target the request could not be carried out on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Its pid.
    pub pid: u32,
    /// Its kind.
    pub kind: &'static str,
    /// `pid 1234 (exe, ucx)`.
    pub target: String,
    /// What went wrong.
    pub error: String,
}

impl Failure {
    fn new(target: &Target, error: String) -> Self {
        Failure { pid: target.pid(), kind: target.kind().name(), target: target.label(), error }
    }
}

/// A segment file `clean` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The dead process.
    pub pid: u32,
    /// Its kind.
    pub kind: &'static str,
    /// The file.
    pub path: String,
}

/// What a request did.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// `ps`.
    Ps {
        /// One row per segment.
        rows: Vec<PsRow>,
    },
    /// `status`, or a change: each target's resulting state.
    States {
        /// Whether the request changed something (else it only read).
        changed: bool,
        /// Targets read (or changed and read back).
        processes: Vec<ProcessState>,
        /// Targets that failed.
        failures: Vec<Failure>,
        /// Segments skipped by a broadcast.
        unusable: Vec<Unusable>,
    },
    /// `record dump`.
    Dumped {
        /// One JSON document per target.
        dumps: Vec<serde_json::Value>,
        /// The file written instead of printing, if any.
        written_to: Option<PathBuf>,
        /// Segments skipped by a broadcast.
        unusable: Vec<Unusable>,
    },
    /// `clean`.
    Cleaned {
        /// The files removed.
        removed: Vec<Removed>,
    },
    /// `aggregate-stats`.
    Aggregated {
        /// The totals and tables.
        aggregate: Aggregate,
        /// Targets that could not be read.
        failures: Vec<Failure>,
        /// Segments skipped by a broadcast.
        unusable: Vec<Unusable>,
    },
}

impl Report {
    /// Whether some target failed (exit status 1).
    pub fn has_failures(&self) -> bool {
        matches!(self, Report::States { failures, .. } | Report::Aggregated { failures, .. } if !failures.is_empty())
    }

    /// The exit status of a command that produced this report: 1 if some target failed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.has_failures() {
            crate::error::EXIT_FAILED
        } else {
            crate::error::EXIT_OK
        }
    }
}

/// Carries out `request` on the processes `selection` names.
pub fn execute(request: &Request, selection: &Selection, options: Options) -> Result<Report, Error> {
    match request {
        Request::Ps => ps(selection),
        Request::Status => status(selection),
        Request::AggregateStats { detailed, by_size } => aggregate_stats(selection, *detailed, *by_size),
        Request::Change(change) => {
            if options.read_only {
                return Err(Error::ReadOnly(change.describe()));
            }
            change_all(change, selection)
        }
        Request::Dump { format, count, output } => dump(selection, *format, *count, output.as_ref()),
        Request::Clean => {
            if options.read_only {
                return Err(Error::ReadOnly("remove segments"));
            }
            clean(selection)
        }
    }
}

fn ps(selection: &Selection) -> Result<Report, Error> {
    let found = targets::select(selection, Purpose::Survey)?;
    let mut rows: Vec<PsRow> = found.targets.iter().map(PsRow::of).collect();
    rows.extend(found.unusable.iter().map(PsRow::unusable));
    state::sort_live_first(&mut rows, PsRow::is_alive, |a, b| (a.pid, a.kind).cmp(&(b.pid, b.kind)));
    Ok(Report::Ps { rows })
}

fn status(selection: &Selection) -> Result<Report, Error> {
    let found = targets::select(selection, Purpose::Read)?;
    let mut processes = Vec::new();
    let mut failures = Vec::new();
    for target in &found.targets {
        match ProcessState::read(target) {
            Ok(state) => processes.push(state),
            Err(error) => failures.push(Failure::new(target, error.detail())),
        }
    }
    Ok(Report::States { changed: false, processes, failures, unusable: found.unusable })
}

fn aggregate_stats(selection: &Selection, detailed: bool, by_size: bool) -> Result<Report, Error> {
    let found = targets::select(selection, Purpose::Read)?;
    let mut states = Vec::new();
    let mut recordings = Vec::new();
    let mut failures = Vec::new();
    for target in &found.targets {
        match ProcessState::read(target) {
            Ok(state) => {
                states.push(state);
                if by_size {
                    recordings.push(recording::read(target));
                }
            }
            Err(error) => failures.push(Failure::new(target, error.detail())),
        }
    }
    let aggregate = aggregate::aggregate(&states, detailed, by_size.then_some(recordings.as_slice()));
    Ok(Report::Aggregated { aggregate, failures, unusable: found.unusable })
}

fn change_all(change: &Change, selection: &Selection) -> Result<Report, Error> {
    let found = targets::select(selection, Purpose::Change)?;
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    for target in &found.targets {
        match actions::plan(change, target) {
            Ok(plan) => plans.push((target, plan)),
            // Busy is about this process, not about the request: the others still get the change.
            Err(error @ Error::Inconsistent { .. }) => failures.push(Failure::new(target, error.detail())),
            Err(bad_request) => return Err(bad_request),
        }
    }
    let mut processes = Vec::new();
    for (target, plan) in plans {
        match actions::apply(&plan, target) {
            Ok(()) => match ProcessState::read(target) {
                Ok(state) => processes.push(state),
                Err(error) => {
                    failures.push(Failure::new(target, format!("changed, but cannot read it back: {}", error.detail())))
                }
            },
            Err(error) => failures.push(Failure::new(target, error.to_string())),
        }
    }
    Ok(Report::States { changed: true, processes, failures, unusable: found.unusable })
}

fn dump(
    selection: &Selection,
    format: DumpFormat,
    count: Option<u64>,
    output: Option<&PathBuf>,
) -> Result<Report, Error> {
    if let Some(path) = output {
        recording::check_output(path)?;
    }
    let found = targets::select(selection, Purpose::Read)?;
    if output.is_some() && found.targets.len() != 1 {
        return Err(Error::usage(format!(
            "-o writes the recording of one process, but {} match; choose one with --pid",
            found.targets.len()
        )));
    }
    let dumps =
        found.targets.iter().map(|target| recording::dump(target, format, count)).collect::<Result<Vec<_>, _>>()?;
    if let (Some(path), [document]) = (output, dumps.as_slice()) {
        recording::write_atomically(path, &format!("{}\n", pretty(document)))?;
    }
    Ok(Report::Dumped { dumps, written_to: output.cloned(), unusable: found.unusable })
}

/// A JSON value, indented.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn clean(selection: &Selection) -> Result<Report, Error> {
    let found: Vec<_> = targets::discover()
        .into_iter()
        .filter(|f| selection.wants_kind(f.kind))
        .filter(|f| selection.is_broadcast() || selection.pids.contains(&f.pid))
        .collect();
    if let Some(&pid) = selection.pids.iter().find(|&&pid| !found.iter().any(|f| f.pid == pid)) {
        return Err(Error::UnknownPid { pid, kind: selection.kind, dir: segment::shm_dir() });
    }
    let removed_paths = segment::clean_dead(&found);
    let removed = found
        .iter()
        .filter(|f| removed_paths.contains(&f.path))
        .map(|f| Removed { pid: f.pid, kind: f.kind.name(), path: f.path.display().to_string() })
        .collect();
    Ok(Report::Cleaned { removed })
}
