//! Bounding what dead processes leave behind. A dead process's segment stays readable for post-mortem, but every
//! shim and tool starting up keeps at most [`keep_dead_limit`] of them per directory (the newest), and removes
//! segments that were never finished (`*.new`) or are not valid segments, once the process their name claims is
//! gone. Segments of live processes, and of pid namespaces this process cannot see, are never touched.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{names, Found, SegmentError, SEGMENT_SIZE};
use crate::layout::{ABI_VERSION, MAGIC};
use crate::process::{self, Located, ProcessTable};

/// How many dead segments a directory keeps unless `FAULTLINE_KEEP_DEAD` says otherwise.
pub const DEFAULT_KEEP_DEAD: usize = 32;

/// `FAULTLINE_KEEP_DEAD` (a whole number ≥ 0), else [`DEFAULT_KEEP_DEAD`].
pub fn keep_dead_limit() -> usize {
    std::env::var("FAULTLINE_KEEP_DEAD").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_KEEP_DEAD)
}

/// What [`prune_dead`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Files removed.
    pub removed: Vec<PathBuf>,
}

/// The first bytes of a header, read with `pread` (no mapping, so a file shrinking meanwhile is harmless).
struct HeaderPrefix {
    valid: bool,
    pid: u32,
    pid_ns: u64,
    start_ticks: u64,
    created_ns: u64,
}

fn read_prefix(file: &File, len: u64) -> HeaderPrefix {
    let mut head = [0u8; 48];
    let mut ns = [0u8; 8];
    let read = file.read_exact_at(&mut head, 0).is_ok() && file.read_exact_at(&mut ns, PID_NS_OFFSET).is_ok();
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap_or_default());
    let valid = read
        && word(0) == MAGIC
        && half(8) == ABI_VERSION
        && word(16) == SEGMENT_SIZE as u64
        && len == SEGMENT_SIZE as u64;
    HeaderPrefix { valid, pid: half(24), pid_ns: u64::from_le_bytes(ns), start_ticks: word(32), created_ns: word(40) }
}

const PID_NS_OFFSET: u64 = std::mem::offset_of!(crate::layout::Header, pid_ns) as u64;

/// Where a file in the directory stands.
enum Verdict {
    /// Leave it: its process runs, or cannot be judged from here.
    Keep,
    /// A valid segment of a dead process, created at this time (ns since the epoch).
    Dead(u64),
    /// Left by a dead process, but no valid segment (never finished, other ABI, corrupt): remove.
    Debris,
}

fn judge(dir: &Path, name: &str, table: &mut Option<ProcessTable>) -> Verdict {
    let Some(claim) = names::parse(name) else { return Verdict::Keep };
    let located = if claim.pid_ns == process::own_pid_ns() {
        process::locate_with(claim.pid_ns, claim.ns_pid, ProcessTable::default)
    } else {
        table.get_or_insert_with(ProcessTable::read).locate(claim.pid_ns, claim.ns_pid)
    };
    if located == Located::Unknown {
        return Verdict::Keep;
    }
    let path = dir.join(name);
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&path);
    let Ok(file) = opened else {
        // A symlink, or unreadable: debris only if its claimed process is gone.
        return if located == Located::Gone { Verdict::Debris } else { Verdict::Keep };
    };
    let Ok(meta) = file.metadata() else { return Verdict::Keep };
    if claim.building || !meta.file_type().is_file() {
        return if located == Located::Gone { Verdict::Debris } else { Verdict::Keep };
    }
    let head = read_prefix(&file, meta.len());
    if !head.valid || head.pid != claim.ns_pid || head.pid_ns != claim.pid_ns {
        return if located == Located::Gone { Verdict::Debris } else { Verdict::Keep };
    }
    let alive = match located {
        Located::Running(pid) => process::is_creator(pid, head.pid, head.pid_ns, head.start_ticks, meta.uid()),
        _ => false,
    };
    if alive {
        Verdict::Keep
    } else {
        Verdict::Dead(head.created_ns)
    }
}

/// Keeps at most `keep` dead segments in `dir` (the most recently created), and removes unfinished or invalid
/// files whose process is gone. Failures to remove (another user's file in a sticky directory) are skipped.
pub fn prune_dead(dir: &Path, keep: usize) -> Pruned {
    let mut pruned = Pruned::default();
    let Ok(entries) = fs::read_dir(dir) else { return pruned };
    let mut table = None;
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !name.starts_with(names::FILE_PREFIX) {
            continue;
        }
        match judge(dir, &name, &mut table) {
            Verdict::Keep => {}
            Verdict::Dead(created) => dead.push((created, name)),
            Verdict::Debris => remove(dir, &name, &mut pruned),
        }
    }
    dead.sort_by(|a, b| b.cmp(a));
    for (_, name) in dead.into_iter().skip(keep) {
        remove(dir, &name, &mut pruned);
    }
    pruned
}

fn remove(dir: &Path, name: &str, pruned: &mut Pruned) {
    let path = dir.join(name);
    if fs::remove_file(&path).is_ok() {
        pruned.removed.push(path);
    }
}

/// `faultline clean`: removes the files of dead processes among `found` — valid segments, and files that are not
/// valid segments (corrupt, truncated, FIFOs…) once the process their name claims is gone — plus unfinished
/// (`*.new`) leftovers of dead processes in our shm directory. Returns what was removed.
pub fn clean_dead(found: &[Found]) -> Vec<PathBuf> {
    let mut removed: Vec<PathBuf> = found
        .iter()
        .filter(|f| match f.attach(super::Access::ReadOnly, super::AttachOptions::default()) {
            Ok(map) => !super::is_alive(&map, f.pid),
            Err(SegmentError::PermissionDenied { .. } | SegmentError::Io { .. }) => false,
            Err(_) => !f.running(),
        })
        .filter(|f| f.remove().is_ok())
        .map(|f| f.path.clone())
        .collect();
    let dir = super::shm_dir();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(claim) = name.to_str().and_then(names::parse) else { continue };
            let gone = process::locate_with(claim.pid_ns, claim.ns_pid, ProcessTable::read) == Located::Gone;
            if claim.building && gone && fs::remove_file(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}
