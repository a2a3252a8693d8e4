//! Which processes a command acts on: discovery of segments, attaching them, liveness, and selection by `--pid` /
//! `--kind`.
//!
//! - Without `--pid`, changes and reads go to every *live* process whose segment this user can attach (the seed's
//!   broadcast); a segment that cannot be used (other ABI version, corrupt) is skipped with a note, and other
//!   users' segments are left out silently (`ps` lists them all).
//! - With `--pid`, every named pid must have a usable segment, or the whole command is refused (exit 2) before
//!   anything is touched. Reads also work on dead processes named this way (post-mortem); changes do not.

use std::path::{Path, PathBuf};

use shm_proto::segment::{self, Found};
use shm_proto::{Access, AttachOptions, Kind, Segment, SegmentError, SegmentMap};

use crate::error::Error;

/// Which processes a command is aimed at, as the user said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--pid` values; empty means every process.
    pub pids: Vec<u32>,
    /// `--kind`; `None` means both shims.
    pub kind: Option<Kind>,
}

impl Selection {
    /// Every process of every kind.
    pub fn everything() -> Self {
        Selection::default()
    }

    /// Whether no `--pid` narrows the selection.
    pub fn is_broadcast(&self) -> bool {
        self.pids.is_empty()
    }

    /// Whether `--kind` lets segments of `kind` through.
    pub fn wants_kind(&self, kind: Kind) -> bool {
        self.kind.is_none() || self.kind == Some(kind)
    }
}

/// What a command will do with its targets; decides how they are attached and whether dead ones count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `ps`: every segment, dead or alive, read-only; unusable ones are listed too.
    Survey,
    /// `status`, `record dump`: read-only; live processes, plus dead ones named by `--pid`.
    Read,
    /// Anything that writes a segment: read-write, live processes only.
    Change,
}

/// An attached, validated segment and what is known about its process.
pub struct Target {
    /// Where it was found.
    pub found: Found,
    /// The mapping.
    pub map: SegmentMap,
    /// Whether the process that created it is still running (same pid, same start time).
    pub alive: bool,
}

impl Target {
    /// The pid as seen from here.
    pub fn pid(&self) -> u32 {
        self.found.pid
    }

    /// Which shim created the segment.
    pub fn kind(&self) -> Kind {
        self.segment().kind()
    }

    /// The shared segment.
    pub fn segment(&self) -> &Segment {
        self.map.segment()
    }

    /// The executable name the shim wrote.
    pub fn exe(&self) -> String {
        self.segment().header.exe_name()
    }

    /// The Kubernetes pod the shim recorded (empty outside Kubernetes).
    pub fn pod(&self) -> shm_proto::pod::PodIdentity {
        self.segment().pod.read()
    }

    /// `pid 1234 (ucx_selfloop, ucx)`, with `, dead` / `, container` where they apply.
    pub fn label(&self) -> String {
        process_label(self.pid(), &self.exe(), self.kind().name(), self.alive, self.found.in_container)
    }
}

/// How messages name a process: `pid 1234 (ucx_selfloop, ucx)`, with `, dead` / `, container` where they apply.
/// The executable name comes from the segment, so its control characters are escaped.
pub fn process_label(pid: u32, exe: &str, kind: &str, alive: bool, in_container: bool) -> String {
    let dead = if alive { "" } else { ", dead" };
    let container = if in_container { ", container" } else { "" };
    format!("pid {pid} ({}, {kind}{dead}{container})", crate::output::escape_controls(exe))
}

/// A segment that was found but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unusable {
    /// The pid from the file name (mapped to this pid namespace where possible).
    pub pid: u32,
    /// The kind from the file name.
    #[serde(serialize_with = "serialize_kind")]
    pub kind: Kind,
    /// The file.
    pub path: PathBuf,
    /// `incompatible`, `corrupt`, `not yours`, `unsafe mode` or `unreadable` (see [`problem_of`]).
    pub problem: &'static str,
    /// The full reason.
    pub reason: String,
}

impl Unusable {
    /// `found`, which could not be attached for `error`.
    pub fn new(found: &Found, error: &SegmentError) -> Self {
        Unusable {
            pid: found.pid,
            kind: found.kind,
            path: found.path.clone(),
            problem: problem_of(error),
            reason: error.to_string(),
        }
    }
}

fn serialize_kind<S: serde::Serializer>(kind: &Kind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.name())
}

/// The processes a command acts on, plus the segments it had to leave out.
pub struct Targets {
    /// Attached segments, in pid order.
    pub targets: Vec<Target>,
    /// Segments that were found but could not be used (broadcast only: with `--pid` they are an error).
    pub unusable: Vec<Unusable>,
}

/// A short classification of why a segment cannot be used.
pub fn problem_of(error: &SegmentError) -> &'static str {
    match error {
        SegmentError::VersionMismatch { .. } => "incompatible",
        SegmentError::BadMagic { .. } | SegmentError::Corrupt { .. } | SegmentError::Truncated { .. } => "corrupt",
        SegmentError::NotOwner { .. } | SegmentError::PermissionDenied { .. } => NOT_YOURS,
        SegmentError::BadMode { .. } => "unsafe mode",
        SegmentError::Io { .. } => "unreadable",
    }
}

/// The problem of another user's segment: listed by `ps`, silently left out of broadcasts (the broadcast goes to
/// every process *you* can attach).
const NOT_YOURS: &str = "not yours";

/// Whether discovery also looks into other mount namespaces (`/proc/*/root/dev/shm`): only as root (others could
/// not read them anyway), and only when `FAULTLINE_SHM_DIR` does not point faultline at one specific directory.
pub fn include_containers() -> bool {
    FORCE_CONTAINERS.load(std::sync::atomic::Ordering::Relaxed)
        || (std::env::var_os("FAULTLINE_SHM_DIR").is_none() && running_as_root())
}

static FORCE_CONTAINERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, discovery also looks into every container, even when `FAULTLINE_SHM_DIR` names a directory
/// (`faultline node …`: the node-wide view, run as root on a node).
pub fn force_container_discovery() {
    FORCE_CONTAINERS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether faultline runs with effective uid 0.
pub fn running_as_root() -> bool {
    effective_uid() == Some(0)
}

/// The effective uid, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    shm_proto::process::file_creating_uids(std::process::id()).map(|[effective, _]| effective)
}

/// Every segment file faultline can see (see [`include_containers`]). The first discovery of a run also bounds
/// the dead segments of our shm directory, as every shim does at start-up ([`segment::prune_dead`]).
pub fn discover() -> Vec<Found> {
    static PRUNED: std::sync::Once = std::sync::Once::new();
    PRUNED.call_once(|| {
        segment::prune_dead(&segment::shm_dir(), segment::keep_dead_limit());
    });
    segment::discover(include_containers())
}

/// Attaches one found segment for `purpose` and checks whether its process still runs.
pub fn attach(found: &Found, purpose: Purpose) -> Result<Target, SegmentError> {
    let access = if purpose == Purpose::Change { Access::ReadWrite } else { Access::ReadOnly };
    // Root on a node may steer containerised processes owned by other uids (still only mode-0600 files).
    let options = AttachOptions { allow_foreign: effective_uid() == Some(0) };
    let map = found.attach(access, options)?;
    let alive = segment::is_alive(&map, found.pid);
    if alive && map.segment().interrupted_writer().is_some() {
        repair(found, &map, options);
    }
    Ok(Target { found: found.clone(), map, alive })
}

/// A faultline that died mid-change (killed between taking the writer lock and finishing) leaves the process
/// with injection paused: whoever attaches it next and may write it republishes the last consistent settings.
fn repair(found: &Found, map: &SegmentMap, options: AttachOptions) {
    let writable = match map.access() {
        Access::ReadWrite => None,
        Access::ReadOnly => match found.attach(Access::ReadWrite, options) {
            Ok(writable) => Some(writable),
            Err(_) => return,
        },
    };
    // Silent on purpose: this runs under the dashboard's screen too; the settings in force show the result.
    let _ = writable.as_ref().unwrap_or(map).segment().repair();
}

/// Finds and attaches the targets of a command. Errors (exit 2) for an explicit `--pid` without a usable segment,
/// or a change aimed at a dead one; errors (exit 1) when a broadcast finds nothing to act on.
pub fn select(selection: &Selection, purpose: Purpose) -> Result<Targets, Error> {
    select_from(&discover(), selection, purpose)
}

/// [`select`] over an already discovered list of segments.
pub fn select_from(found: &[Found], selection: &Selection, purpose: Purpose) -> Result<Targets, Error> {
    let candidates: Vec<&Found> = found.iter().filter(|f| selection.wants_kind(f.kind)).collect();
    let mut targets = Vec::new();
    let mut unusable = Vec::new();
    if selection.is_broadcast() {
        let mut dead = 0;
        for found in candidates {
            match attach(found, purpose) {
                Ok(target) if target.alive || purpose == Purpose::Survey => targets.push(target),
                Ok(_dead) => dead += 1,
                Err(error) if purpose != Purpose::Survey && problem_of(&error) == NOT_YOURS => {}
                Err(error) => unusable.push(Unusable::new(found, &error)),
            }
        }
        if targets.is_empty() && purpose != Purpose::Survey {
            return Err(Error::NoTargets(no_targets_message(selection, purpose, dead, &unusable)));
        }
    } else {
        let mut pids = selection.pids.clone();
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            let mine: Vec<&&Found> = candidates.iter().filter(|f| f.pid == pid).collect();
            if mine.is_empty() {
                return Err(Error::UnknownPid { pid, kind: selection.kind, dir: segment::shm_dir() });
            }
            // Anyone can create a file claiming a pid: where several claim it, the usable ones count and the
            // others are noted; only if none is usable is the first problem the answer.
            let attached: Vec<(&Found, Result<Target, SegmentError>)> =
                mine.iter().map(|found| (**found, attach(found, purpose))).collect();
            let usable = attached.iter().any(|(_, result)| result.is_ok());
            let running = attached.iter().any(|(_, result)| result.as_ref().is_ok_and(|t| t.alive));
            for (found, result) in attached {
                match result {
                    Ok(target) if purpose == Purpose::Change && !target.alive && running => {
                        let what = format!("claims pid {pid}, but its process did not create it");
                        unusable.push(Unusable::new(found, &SegmentError::Corrupt { path: found.path.clone(), what }));
                    }
                    Ok(target) => {
                        if purpose == Purpose::Change && !target.alive {
                            return Err(Error::NotRunning { pid, kind: target.kind() });
                        }
                        targets.push(target);
                    }
                    Err(error) if usable => unusable.push(Unusable::new(found, &error)),
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(Targets { targets, unusable })
}

fn no_targets_message(selection: &Selection, purpose: Purpose, dead: usize, unusable: &[Unusable]) -> String {
    let kind = selection.kind.map(|k| format!("{} ", k.name())).unwrap_or_default();
    let mut message = format!("no running {kind}faultline processes found in {}", describe_dir(&segment::shm_dir()));
    if dead > 0 {
        message.push_str(&format!(
            " ({dead} exited process(es) left segments: read them with --pid, remove them with `faultline clean`)"
        ));
    }
    if !unusable.is_empty() {
        let reasons: Vec<String> = unusable.iter().map(|u| u.reason.clone()).collect();
        message.push_str(&format!(" ({} unusable: {})", unusable.len(), reasons.join("; ")));
    }
    if purpose == Purpose::Change {
        message.push_str("; nothing changed");
    }
    message
}

fn describe_dir(dir: &Path) -> String {
    if include_containers() {
        format!("{} or any container", dir.display())
    } else {
        dir.display().to_string()
    }
}
