//! Bounding what dead processes leave behind. A dead process's segment stays readable for post-mortem, but every
//! shim and tool starting up keeps at most [`keep_dead_limit`] of them per directory (the newest), and removes
//! segments that were never finished (`*.new`) or are not valid segments, once the process their name claims is
//! gone. Segments of live processes, and of pid namespaces this process cannot see, are never touched.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{names, Found, SegmentError};
use crate::process::{self, Located, Locator};

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

/// What pruning needs of a valid segment's header, read with `pread` (no mapping, so a file shrinking meanwhile
/// is harmless).
struct HeaderFacts {
    pid: u32,
    pid_ns: u64,
    start_ticks: u64,
    created_ns: u64,
}

/// The facts of a file that passes the attach-time header checks ([`super::validate_header`]), else `None`.
fn read_facts(path: &Path, file: &File, len: u64) -> Option<HeaderFacts> {
    use crate::layout::Header;
    use std::mem::offset_of;
    super::validate_header(path, file, len).ok()?;
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        file.read_exact_at(&mut bytes, at as u64).ok().map(|()| u64::from_le_bytes(bytes))
    };
    Some(HeaderFacts {
        pid: word(offset_of!(Header, pid))? as u32,
        pid_ns: word(offset_of!(Header, pid_ns))?,
        start_ticks: word(offset_of!(Header, start_time_ticks))?,
        created_ns: word(offset_of!(Header, created_unix_ns))?,
    })
}

/// Where a file in the directory stands.
enum Verdict {
    /// Leave it: its process runs, or cannot be judged from here.
    Keep,
    /// A valid segment of a dead process, created at this time (ns since the epoch).
    Dead(u64),
    /// Left by a dead process, but no valid segment (never finished, other ABI, corrupt): remove.
    Debris,
}

fn judge(dir: &Path, name: &str, locator: &mut Locator) -> Verdict {
    let Some(claim) = names::parse(name) else { return Verdict::Keep };
    let located = locator.locate(claim.pid_ns, claim.ns_pid);
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
    let Some(head) = read_facts(&path, &file, meta.len()).filter(|h| h.pid == claim.ns_pid && h.pid_ns == claim.pid_ns)
    else {
        return if located == Located::Gone { Verdict::Debris } else { Verdict::Keep };
    };
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
    let mut locator = Locator::new();
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !name.starts_with(names::FILE_PREFIX) {
            continue;
        }
        match judge(dir, &name, &mut locator) {
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
            let gone = process::locate(claim.pid_ns, claim.ns_pid) == Located::Gone;
            if claim.building && gone && fs::remove_file(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}
