//! Finding segment files — in our shm directory and, for root on a node, in every container's — and mapping each
//! to the process it belongs to, exactly: a name carries the pid namespace and the pid there, and `/proc` says
//! which process here that is. A segment whose namespace this tool cannot see (a sibling container's, sharing
//! our `/dev/shm`) is left out: it can be neither judged nor steered from here.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{names, root, shm_dir, Access, AttachOptions, SegmentError, SegmentMap, DEFAULT_SHM_DIR};
use crate::layout::Kind;
use crate::process::{self, Located, Locator};
use crate::sync::Ordering::Relaxed;

/// A segment file found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file (for messages; containers' files are opened through `root`, see [`Found::open`]).
    pub path: PathBuf,
    /// From its name.
    pub kind: Kind,
    /// The pid in the process's own namespace (from the file name).
    pub ns_pid: u32,
    /// The inode of that pid namespace (from the file name).
    pub pid_ns: u64,
    /// The pid as this tool sees it in `/proc` if the process runs, else `ns_pid`.
    pub pid: u32,
    /// Found through `/proc/<pid>/root/dev/shm` (a container) rather than our own shm directory.
    pub in_container: bool,
    /// The container root and the path below it, for files found in a container.
    below_root: Option<(PathBuf, PathBuf)>,
}

impl Found {
    /// A file in our own shm directory of process `pid` of this pid namespace (for tools and tests that know
    /// which file they mean).
    pub fn local(path: PathBuf, kind: Kind, pid: u32) -> Self {
        Found { path, kind, ns_pid: pid, pid_ns: process::own_pid_ns(), pid, in_container: false, below_root: None }
    }

    /// Opens the file non-blocking and without following symlinks (inside a container: resolved within its
    /// root); `write` for read-write.
    pub fn open(&self, write: bool) -> io::Result<File> {
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        match &self.below_root {
            Some((root, rel)) => root::open_below(root, rel, access | libc::O_NONBLOCK).map(File::from),
            None => OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
                .open(&self.path),
        }
    }

    /// Attaches it (see [`SegmentMap::attach_file`]).
    pub fn attach(&self, access: Access, options: AttachOptions) -> Result<SegmentMap, SegmentError> {
        let file = self.open(access == Access::ReadWrite).map_err(|e| super::open_error(&self.path, e))?;
        SegmentMap::attach_file(file, &self.path, access, options)
    }

    /// Removes the file, never following a symlink.
    pub fn remove(&self) -> io::Result<()> {
        match &self.below_root {
            Some((root, rel)) => root::remove_below(root, rel),
            None => fs::remove_file(&self.path),
        }
    }

    /// Whether the process it names runs (as far as `/proc` shows; [`is_alive`] also checks it made the file).
    pub fn running(&self) -> bool {
        process::locate(self.pid_ns, self.ns_pid) != Located::Gone
    }
}

/// Every segment file in our shm directory and, if `include_containers` (needs privilege), in the shm directory
/// of every other mount namespace reachable through `/proc/*/root`.
pub fn discover(include_containers: bool) -> Vec<Found> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let mut table = Locator::new();
    if let Ok(entries) = fs::read_dir(shm_dir()) {
        scan(entries, &mut seen, &mut table, &mut found, &|name| (shm_dir().join(name), None));
    }
    if include_containers {
        let own_mnt = fs::metadata("/proc/self/ns/mnt").ok().map(|m| m.ino());
        let mut roots = Vec::new();
        let mut scanned = HashSet::new();
        for entry in table.table().entries() {
            if entry.mnt_ns.is_some() && entry.mnt_ns != own_mnt && scanned.insert(entry.mnt_ns) {
                roots.push(PathBuf::from(format!("/proc/{}/root", entry.pid)));
            }
        }
        for root in roots {
            let Ok(rel) = root::resolve(&root, Path::new(DEFAULT_SHM_DIR)) else { continue };
            let Ok(dir) = root::open_below(&root, &rel, libc::O_RDONLY | libc::O_DIRECTORY) else { continue };
            let Ok(entries) = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else { continue };
            scan(entries, &mut seen, &mut table, &mut found, &|name| {
                (root.join(&rel).join(name), Some((root.clone(), rel.join(name))))
            });
        }
    }
    found.sort_by_key(|f| (f.pid, f.kind));
    found
}

type Placed = (PathBuf, Option<(PathBuf, PathBuf)>);

fn scan(
    entries: fs::ReadDir,
    seen: &mut HashSet<(u64, u64)>,
    table: &mut Locator,
    found: &mut Vec<Found>,
    place: &dyn Fn(&std::ffi::OsStr) -> Placed,
) {
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(claim) = name.to_str().and_then(names::parse).filter(|c| !c.building) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let pid = match table.locate(claim.pid_ns, claim.ns_pid) {
            Located::Running(pid) => pid,
            Located::Gone => claim.ns_pid,
            Located::Unknown => continue,
        };
        let (path, below_root) = place(&name);
        found.push(Found {
            path,
            kind: claim.kind,
            ns_pid: claim.ns_pid,
            pid_ns: claim.pid_ns,
            pid,
            in_container: below_root.is_some(),
            below_root,
        });
    }
}

/// Whether the process that created the segment in `map`, seen as `pid` from here, is still running: the same
/// pid namespace and pid there, the same start time, and the file owned by that process's user.
pub fn is_alive(map: &SegmentMap, pid: u32) -> bool {
    let h = &map.segment().header;
    process::is_creator(pid, h.pid.load(Relaxed), h.pid_ns.load(Relaxed), h.start_time_ticks.load(Relaxed), map.owner())
}
