//! The errors of the process action layer, each with the exit status the binary gives it (the cluster's and the
//! node agent's errors are in `faultline-cluster`, with theirs).
//!
//! Exit 2 means "you asked for something faultline cannot do" (a bad value, an unknown pid, a segment it must not
//! trust) and guarantees that nothing was changed; exit 1 means the request was fine but could not be carried out
//! (no processes to act on, a file that could not be written).

use std::path::PathBuf;

use shm_proto::codes::CodeError;
use shm_proto::config::ConfigError;
use shm_proto::{Kind, SegmentError};

/// Exit status: the request was carried out.
pub const EXIT_OK: u8 = 0;
/// Exit status: nothing to act on, or some targets failed (each is reported).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage or a bad value; nothing was changed.
pub const EXIT_USAGE: u8 = 2;

/// Why a request was refused or failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Arguments that do not fit together, or a value no shared parser covers.
    #[error("{0}")]
    Usage(String),
    /// A probability, pattern, hook list, number or switch that does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An error code that does not parse or is not an error for the target's kind.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// An explicit `--pid` with no segment.
    #[error(
        "no {}faultline segment for pid {pid} in {} (is the process running with LD_PRELOAD=…/{}?)",
        kind_prefix(.kind), .dir.display(), shim_library(.kind)
    )]
    UnknownPid {
        /// The pid asked for.
        pid: u32,
        /// The `--kind` filter, if any.
        kind: Option<Kind>,
        /// The segment directory searched.
        dir: PathBuf,
    },
    /// A segment that cannot be trusted or attached (other ABI version, corrupt, not yours).
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A change aimed explicitly at a process that has exited.
    #[error(
        "pid {pid} ({}) is not running any more: its segment can still be read (status, record dump) but changing \
         it has no effect; `faultline clean` removes it",
        .kind.name()
    )]
    NotRunning {
        /// The pid.
        pid: u32,
        /// Its shim.
        kind: Kind,
    },
    /// `--read-only` and a request that changes something.
    #[error("--read-only: refusing to {0}")]
    ReadOnly(&'static str),
    /// Nothing to act on.
    #[error("{0}")]
    NoTargets(String),
    /// A segment whose control block could not be read consistently.
    #[error(
        "{target}: its settings are being changed by another faultline right now (or one died mid-change); try again"
    )]
    Inconsistent {
        /// Which process.
        target: String,
    },
    /// A file faultline had to read or write.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong: part of the message, so not also the error's `source()` (it would be printed twice).
        cause: std::io::Error,
    },
}

impl Error {
    /// The exit status the binary gives this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NoTargets(_) | Error::Inconsistent { .. } | Error::Io { .. } => EXIT_FAILED,
            Error::Usage(_)
            | Error::Config(_)
            | Error::Code(_)
            | Error::UnknownPid { .. }
            | Error::Segment(_)
            | Error::NotRunning { .. }
            | Error::ReadOnly(_) => EXIT_USAGE,
        }
    }

    /// The message without the target it names, for per-target reports that print the target already.
    pub fn detail(&self) -> String {
        match self {
            Error::Inconsistent { .. } => BUSY_SETTINGS.to_string(),
            other => other.to_string(),
        }
    }

    /// A usage error with `message`.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
}

const BUSY_SETTINGS: &str =
    "its settings are being changed by another faultline right now (or one died mid-change); try again";

fn kind_prefix(kind: &Option<Kind>) -> String {
    kind.map(|k| format!("{} ", k.name())).unwrap_or_default()
}

fn shim_library(kind: &Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Ucx) => "libfaultline_ucx.so",
        Some(Kind::Cuda) => "libfaultline_cuda.so",
        None => "libfaultline_ucx.so or libfaultline_cuda.so",
    }
}
