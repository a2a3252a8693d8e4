//! Segment lifecycle: the shim creates `/dev/shm/faultline.<kind>.<pid>` (mode 0600); tools discover segments,
//! attach read-only or read-write after validating every header field, tell live processes from dead ones (pid plus
//! start time), and clean up the dead.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions, MmapRaw};

use crate::clock::TickSource;
use crate::control::Strategy;
use crate::layout::{write_name, Kind, Segment, ABI_VERSION, MAGIC, MAX_HOOKS};
use crate::sync::Ordering::{Acquire, Relaxed, Release};

/// Where segments live unless `FAULTLINE_SHM_DIR` says otherwise (tests, or systems without /dev/shm).
pub const DEFAULT_SHM_DIR: &str = "/dev/shm";
/// File-name prefix of every segment.
pub const FILE_PREFIX: &str = "faultline.";

/// The size every segment file has.
pub const SEGMENT_SIZE: usize = std::mem::size_of::<Segment>();

/// Why a segment could not be created or attached.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is shorter than a segment.
    #[error("{path}: truncated segment ({len} bytes, a faultline segment has {expected})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The segment size.
        expected: u64,
    },
    /// Not a faultline segment.
    #[error("{path}: not a faultline segment (bad magic {found:#018x})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What was there.
        found: u64,
    },
    /// Written by a faultline of another ABI version.
    #[error(
        "{path}: segment ABI version {found}, this faultline speaks version {expected}; use the matching faultline"
    )]
    VersionMismatch {
        /// The file.
        path: PathBuf,
        /// The segment's version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// A header field is out of range.
    #[error("{path}: corrupt segment: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which field and why.
        what: String,
    },
    /// The file cannot be opened: another user's segment (mode 0600).
    #[error("{path}: permission denied; the segment belongs to another user (run faultline as that user or as root)")]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// Read-write attach to a segment that belongs to another user.
    #[error(
        "{path}: owned by uid {owner}, not by you (uid {you}); faultline attaches read-write only to your own \
         processes' segments (run as that user, or read it with read-only commands)"
    )]
    NotOwner {
        /// The file.
        path: PathBuf,
        /// File owner.
        owner: u32,
        /// Our effective uid.
        you: u32,
    },
    /// Read-write attach to a segment whose permissions are not 0600.
    #[error("{path}: mode {mode:04o}, expected 0600; refusing to write a segment others could have changed")]
    BadMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl SegmentError {
    fn io(path: &Path, source: io::Error) -> Self {
        SegmentError::Io { path: path.to_path_buf(), source }
    }
}

/// How a segment is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Counters, ring and strategy can be read; nothing can be changed.
    ReadOnly,
    /// The strategy can be changed. Requires ownership and mode 0600 (unless [`AttachOptions::allow_foreign`]).
    ReadWrite,
}

/// Options for [`SegmentMap::attach`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Root on a node may write segments of containerised processes owned by other uids (still only mode 0600).
    pub allow_foreign: bool,
}

enum Backing {
    File(MmapRaw),
    Private(MmapMut),
}

/// A mapped, validated segment.
pub struct SegmentMap {
    backing: Backing,
    path: Option<PathBuf>,
    access: Access,
}

// SAFETY: the mapping is only ever accessed through `&Segment`, whose fields are all atomics.
unsafe impl Send for SegmentMap {}
// SAFETY: as above; shared access to atomics is thread-safe.
unsafe impl Sync for SegmentMap {}

/// What [`SegmentMap::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A shared file, visible to tools.
    Shared(PathBuf),
    /// No usable shared-memory directory: private memory, invisible to tools. Carries the reason.
    Private(String),
}

/// Identity written into a new segment.
pub struct Identity<'a> {
    /// Which shim.
    pub kind: Kind,
    /// The pid as the process sees it.
    pub pid: u32,
    /// `/proc/self/stat` start time.
    pub start_time_ticks: u64,
    /// Executable name.
    pub exe_name: &'a str,
    /// The shim's hooks, in index order.
    pub hooks: &'a [&'a str],
    /// The hooks armed by default.
    pub default_arm_mask: [u64; MAX_HOOKS / 64],
}

/// The directory segments live in.
pub fn shm_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_SHM_DIR").map_or_else(|| PathBuf::from(DEFAULT_SHM_DIR), PathBuf::from)
}

/// `faultline.<kind>.<pid>`
pub fn file_name(kind: Kind, pid: u32) -> String {
    format!("{FILE_PREFIX}{}.{pid}", kind.name())
}

/// Parses `faultline.<kind>.<pid>`.
pub fn parse_file_name(name: &str) -> Option<(Kind, u32)> {
    let rest = name.strip_prefix(FILE_PREFIX)?;
    let (kind, pid) = rest.split_once('.')?;
    Some((Kind::from_name(kind)?, pid.parse().ok()?))
}

impl SegmentMap {
    /// The segment.
    pub fn segment(&self) -> &Segment {
        let ptr = match &self.backing {
            Backing::File(map) => map.as_ptr(),
            Backing::Private(map) => map.as_ptr(),
        };
        // SAFETY: the mapping is SEGMENT_SIZE bytes, page-aligned (so aligned for Segment), lives as long as self,
        // and Segment is ShmSafe: every bit pattern is valid and all access goes through atomics.
        unsafe { &*ptr.cast::<Segment>() }
    }

    /// The file, unless private.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How it was attached.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Creates this process's segment (the shim's side), replacing a stale file a dead process with the same pid
    /// (or this process before an `exec`) left behind; a rename publishes it complete. Falls back to private memory if no shared file can be made.
    pub fn create(identity: &Identity<'_>, strategy: &Strategy) -> Result<(SegmentMap, Created), SegmentError> {
        let dir = shm_dir();
        let path = dir.join(file_name(identity.kind, identity.pid));
        // Built under a name discovery ignores, then renamed: readers never see a half-initialised segment.
        let building = dir.join(format!("{}.new", file_name(identity.kind, identity.pid)));
        let shared = create_file(&building).and_then(|raw| {
            let map = SegmentMap { backing: Backing::File(raw), path: Some(path.clone()), access: Access::ReadWrite };
            map.initialise(identity, strategy);
            fs::rename(&building, &path).map(|()| map)
        });
        match shared {
            Ok(map) => Ok((map, Created::Shared(path))),
            Err(err) => {
                let _ = fs::remove_file(&building);
                let reason = format!(
                    "cannot create {}: {err}; using private memory, tools cannot see this process",
                    path.display()
                );
                let anon = MmapMut::map_anon(SEGMENT_SIZE).map_err(|e| SegmentError::io(&path, e))?;
                let map = SegmentMap { backing: Backing::Private(anon), path: None, access: Access::ReadWrite };
                map.initialise(identity, strategy);
                Ok((map, Created::Private(reason)))
            }
        }
    }

    fn initialise(&self, id: &Identity<'_>, strategy: &Strategy) {
        let seg = self.segment();
        let h = &seg.header;
        h.abi_version.store(ABI_VERSION, Relaxed);
        h.kind.store(id.kind as u32, Relaxed);
        h.total_size.store(SEGMENT_SIZE as u64, Relaxed);
        h.pid.store(id.pid, Relaxed);
        h.start_time_ticks.store(id.start_time_ticks, Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        h.created_unix_ns.store(now.as_nanos() as u64, Relaxed);
        write_name(&h.exe_name, id.exe_name);
        let hooks = &id.hooks[..id.hooks.len().min(MAX_HOOKS)];
        for (slot, name) in h.hook_names.iter().zip(hooks) {
            write_name(slot, name);
        }
        h.hook_count.store(hooks.len() as u32, Relaxed);
        for (word, default) in h.default_arm_mask.iter().zip(id.default_arm_mask) {
            word.store(default, Relaxed);
        }
        // Nobody else can have the lock yet: the file was just created by us, without magic.
        let _ = seg.control.publish(&seg.cursor, strategy, id.pid, |_| true);
        seg.ring.start_clock(TickSource::detect());
        h.magic.store(MAGIC, Release);
    }

    /// Attaches the segment file at `path`, validating magic, version, kind and sizes first.
    pub fn attach(path: &Path, access: Access, options: AttachOptions) -> Result<SegmentMap, SegmentError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => SegmentError::PermissionDenied { path: path.into() },
                _ => SegmentError::io(path, e),
            })?;
        let meta = file.metadata().map_err(|e| SegmentError::io(path, e))?;
        if !meta.file_type().is_file() {
            return Err(SegmentError::Corrupt { path: path.into(), what: "not a regular file".into() });
        }
        if access == Access::ReadWrite {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let you = unsafe { libc::geteuid() };
            if meta.uid() != you && !options.allow_foreign {
                return Err(SegmentError::NotOwner { path: path.into(), owner: meta.uid(), you });
            }
            if meta.mode() & 0o7777 != 0o600 {
                return Err(SegmentError::BadMode { path: path.into(), mode: meta.mode() & 0o7777 });
            }
        }
        validate_header(path, &file, meta.len())?;
        let mut options = MmapOptions::new();
        options.len(SEGMENT_SIZE);
        let raw = match access {
            Access::ReadOnly => options.map_raw_read_only(&file),
            Access::ReadWrite => options.map_raw(&file),
        }
        .map_err(|e| SegmentError::io(path, e))?;
        let map = SegmentMap { backing: Backing::File(raw), path: Some(path.into()), access };
        let hooks = map.segment().header.hook_count.load(Acquire);
        if hooks as usize > MAX_HOOKS {
            return Err(SegmentError::Corrupt { path: path.into(), what: format!("hook count {hooks} > {MAX_HOOKS}") });
        }
        Ok(map)
    }
}

fn create_file(path: &Path) -> io::Result<MmapRaw> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let file: File = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Our pid is ours: whatever is there was left by a dead process that had it (or by us before exec).
            fs::remove_file(path)?;
            open()?
        }
        other => other?,
    };
    file.set_len(SEGMENT_SIZE as u64)?;
    MmapOptions::new().len(SEGMENT_SIZE).map_raw(&file)
}

/// Checks the first bytes of a file before mapping it.
fn validate_header(path: &Path, file: &File, len: u64) -> Result<(), SegmentError> {
    use std::os::unix::fs::FileExt;
    let expected = SEGMENT_SIZE as u64;
    let mut head = [0u8; 24];
    if len < head.len() as u64 {
        return Err(SegmentError::Truncated { path: path.into(), len, expected });
    }
    file.read_exact_at(&mut head, 0).map_err(|e| SegmentError::io(path, e))?;
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap_or_default());
    let magic = word(0);
    if magic != MAGIC {
        return Err(SegmentError::BadMagic { path: path.into(), found: magic });
    }
    let version = half(8);
    if version != ABI_VERSION {
        return Err(SegmentError::VersionMismatch { path: path.into(), found: version, expected: ABI_VERSION });
    }
    let kind = half(12);
    if Kind::from_raw(kind).is_none() {
        return Err(SegmentError::Corrupt { path: path.into(), what: format!("unknown kind {kind}") });
    }
    let total = word(16);
    if total != expected {
        return Err(SegmentError::Corrupt {
            path: path.into(),
            what: format!("header says {total} bytes, ABI {ABI_VERSION} segments are {expected}"),
        });
    }
    if len < expected {
        return Err(SegmentError::Truncated { path: path.into(), len, expected });
    }
    if len > expected {
        return Err(SegmentError::Corrupt {
            path: path.into(),
            what: format!("file is {len} bytes, expected {expected}"),
        });
    }
    Ok(())
}

/// A segment file found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// From its name.
    pub kind: Kind,
    /// The pid in the process's own namespace (from the file name).
    pub ns_pid: u32,
    /// The pid as this tool sees it in `/proc`, if the process could be mapped (else `ns_pid` for local files).
    pub pid: u32,
    /// Found through `/proc/<pid>/root/dev/shm` (a container) rather than our own shm directory.
    pub in_container: bool,
}

/// Every segment file in our shm directory and, if `include_containers` (needs privilege), in the shm directory
/// of every other mount namespace reachable through `/proc/*/root`.
pub fn discover(include_containers: bool) -> Vec<Found> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut scan = |dir: &Path, in_container: bool, pid_of: &dyn Fn(u32) -> Option<u32>| {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((kind, ns_pid)) = name.to_str().and_then(parse_file_name) else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            let pid = pid_of(ns_pid).unwrap_or(ns_pid);
            found.push(Found { path: entry.path(), kind, ns_pid, pid, in_container });
        }
    };
    scan(&shm_dir(), false, &|_| None);
    if include_containers {
        let processes = process_table();
        let own_mnt = fs::read_link("/proc/self/ns/mnt").ok();
        let mut scanned = std::collections::HashSet::new();
        for process in &processes {
            if Some(&process.mnt_ns) == own_mnt.as_ref() || !scanned.insert(&process.mnt_ns) {
                continue;
            }
            // A segment's name carries the pid its process has in its own (innermost) pid namespace; the host pid
            // is the process in this mount namespace with that innermost pid.
            let pid_of = |ns_pid: u32| {
                processes.iter().find(|p| p.mnt_ns == process.mnt_ns && p.innermost_pid == ns_pid).map(|p| p.pid)
            };
            let dir = PathBuf::from(format!("/proc/{}/root{DEFAULT_SHM_DIR}", process.pid));
            scan(&dir, true, &pid_of);
        }
    }
    found.sort_by_key(|f| (f.pid, f.kind));
    found
}

struct ProcessEntry {
    pid: u32,
    mnt_ns: PathBuf,
    innermost_pid: u32,
}

/// Every process we may inspect: host pid, mount namespace, pid in its innermost pid namespace.
fn process_table() -> Vec<ProcessEntry> {
    proc_pids()
        .into_iter()
        .filter_map(|pid| {
            let mnt_ns = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
            let innermost_pid = *ns_pids(pid)?.last()?;
            Some(ProcessEntry { pid, mnt_ns, innermost_pid })
        })
        .collect()
}

fn proc_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// The `NSpid` line of `/proc/<pid>/status`: the pid in each nested namespace, outermost first.
pub fn ns_pids(pid: u32) -> Option<Vec<u32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().map(|p| p.parse().ok()).collect()
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot); `None` if there is no such process.
pub fn start_time_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that created `segment`, seen as `pid` from here, is still running (same pid, same start).
pub fn is_alive(segment: &Segment, pid: u32) -> bool {
    start_time_ticks(&pid.to_string()) == Some(segment.header.start_time_ticks.load(Relaxed))
}

/// Whether no process `pid` exists any more (used to break a dead writer's lock).
pub fn pid_is_dead(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return true };
    // SAFETY: signal 0 only checks for existence and permission; it sends nothing.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

impl Segment {
    /// The strategy `reset` returns to: the built-in defaults of this segment's kind and shim.
    pub fn default_strategy(&self) -> Strategy {
        let kind = Kind::from_raw(self.header.kind.load(Relaxed)).unwrap_or(Kind::Ucx);
        let mask: Vec<u64> = self.header.default_arm_mask.iter().map(|w| w.load(Relaxed)).collect();
        Strategy::defaults(crate::codes::default_pool(kind), |hook| mask[hook / 64] & (1 << (hook % 64)) != 0)
    }

    /// The segment's kind (validated on attach).
    pub fn kind(&self) -> Kind {
        Kind::from_raw(self.header.kind.load(Relaxed)).unwrap_or(Kind::Ucx)
    }
}

/// Removes the files of dead processes among `found`; returns what was removed. Unreadable or foreign-version
/// files are left alone (they may belong to another faultline).
pub fn clean_dead(found: &[Found]) -> Vec<PathBuf> {
    found
        .iter()
        .filter(|f| {
            SegmentMap::attach(&f.path, Access::ReadOnly, AttachOptions::default())
                .is_ok_and(|map| !is_alive(map.segment(), f.pid))
        })
        .filter(|f| fs::remove_file(&f.path).is_ok())
        .map(|f| f.path.clone())
        .collect()
}
