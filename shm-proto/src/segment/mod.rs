//! Segment lifecycle: the shim creates `/dev/shm/faultline.<kind>.<pid>[.<pidns>]` (mode 0600, space reserved
//! before it is touched); tools discover segments, attach read-only or read-write after validating the file and
//! every header field, tell live processes from dead ones (pid namespace, pid, start time and owner), and bound or
//! clean up the dead.
//!
//! Segment files are hostile input: anyone may create files in a shared directory, and a segment's owner may
//! change or truncate it at any time. See `names` (what a name claims), `root` (container paths), `discover`
//! (finding and judging segments), `clean` (bounding the dead) and [`crate::guard`] (truncation under a mapping).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions, MmapRaw};

use crate::clock::TickSource;
use crate::control::{Holder, PublishError, ReadError, Strategy, Writer};
use crate::guard::{self, OnFault, Registration};
use crate::layout::{write_name, Kind, Segment, ABI_VERSION, MAGIC, MAX_HOOKS};
use crate::sync::Ordering::{Acquire, Relaxed, Release};

mod clean;
mod discover;
mod names;
pub mod root;

pub use crate::process::{ns_pids, start_time_ticks};
pub use clean::{clean_dead, keep_dead_limit, prune_dead, Pruned, DEFAULT_KEEP_DEAD};
pub use discover::{discover, is_alive, Found};
pub use names::{file_name, file_name_in, parse, parse_file_name, NameClaim, FILE_PREFIX};

/// Where segments live unless `FAULTLINE_SHM_DIR` says otherwise (tests, or systems without /dev/shm).
pub const DEFAULT_SHM_DIR: &str = "/dev/shm";

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
    /// Dropped first (see `Drop`): the fault handler forgets the range before it is unmapped.
    guard: Option<Registration>,
    backing: Backing,
    path: Option<PathBuf>,
    access: Access,
    /// The file's owner (ours for private memory).
    owner: u32,
    /// The file's identity, to tell whether `path` still names it.
    file_id: Option<(u64, u64)>,
    /// The creator keeps its file open, so that the fault handler can grow it back after a truncation.
    _file: Option<File>,
    /// The control block's sequence right after the creator initialised it.
    created_seq: u64,
}

impl Drop for SegmentMap {
    fn drop(&mut self) {
        self.guard.take();
    }
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
    /// The inode of the process's pid namespace ([`crate::process::own_pid_ns`]).
    pub pid_ns: u64,
    /// `/proc/self/stat` start time.
    pub start_time_ticks: u64,
    /// Executable name.
    pub exe_name: &'a str,
    /// The shim's hooks, in index order.
    pub hooks: &'a [&'a str],
    /// The hooks armed by default.
    pub default_arm_mask: [u64; MAX_HOOKS / 64],
    /// The Kubernetes pod the process runs in (empty outside Kubernetes).
    pub pod: &'a crate::pod::PodIdentity,
}

/// The directory segments live in.
pub fn shm_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_SHM_DIR").map_or_else(|| PathBuf::from(DEFAULT_SHM_DIR), PathBuf::from)
}

impl SegmentMap {
    /// A mapping of `backing`, owned by `meta`'s owner (a file's) or by us (private memory); no path, no guard yet.
    fn new(backing: Backing, access: Access, meta: Option<&fs::Metadata>) -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let owner = meta.map_or_else(|| unsafe { libc::geteuid() }, |m| m.uid());
        SegmentMap {
            guard: None,
            backing,
            path: None,
            access,
            owner,
            file_id: meta.map(|m| (m.dev(), m.ino())),
            _file: None,
            created_seq: 0,
        }
    }

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

    /// The uid that owns the file (for liveness: a process's segment is owned by the process's user).
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// How many faults inside this mapping (the file was truncated under it) were repaired.
    pub fn truncations_survived(&self) -> u64 {
        self.guard.as_ref().map_or(0, Registration::repaired)
    }

    /// Creates this process's segment (the shim's side). Dead segments beyond the directory's bound are removed
    /// first ([`prune_dead`]). The file is built under an unpredictable name with its space reserved
    /// (`posix_fallocate`: a full tmpfs is an error here, never a `SIGBUS` later), then renamed into place,
    /// replacing a stale file of a dead process with the same pid (or of this process before an `exec`). If no
    /// shared file can be made, for whatever reason, the segment is private memory (the reason is returned to be
    /// said once).
    pub fn create(identity: &Identity<'_>, strategy: &Strategy) -> Result<(SegmentMap, Created), SegmentError> {
        let dir = shm_dir();
        let _ = prune_dead(&dir, keep_dead_limit());
        let usual = names::file_name_in(identity.kind, identity.pid, identity.pid_ns);
        let path = dir.join(&usual);
        let nonce = names::nonce();
        let building = dir.join(names::building_name(identity.kind, identity.pid, identity.pid_ns, nonce));
        let shared = create_file(&building).and_then(|(file, raw)| {
            let meta = file.metadata()?;
            let on_fault =
                OnFault::Regrow { fd: std::os::fd::AsRawFd::as_raw_fd(&file), dev: meta.dev(), ino: meta.ino() };
            let mut map = SegmentMap::new(Backing::File(raw), Access::ReadWrite, Some(&meta));
            map._file = Some(file);
            // Guarded from the first store: the file can be truncated even while it is being built.
            map.guard = guard::protect(map.segment() as *const Segment as *const u8, SEGMENT_SIZE, on_fault);
            map.initialise(identity, strategy);
            let published = match fs::rename(&building, &path) {
                Ok(()) => path.clone(),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES | libc::EISDIR)) => {
                    // The usual name is taken by a file we may not replace: publish under a unique one.
                    let unique = dir.join(names::unique_name(&usual, nonce));
                    fs::rename(&building, &unique)?;
                    unique
                }
                Err(e) => return Err(e),
            };
            map.path = Some(published);
            Ok(map)
        });
        match shared {
            Ok(map) => {
                let path = map.path.clone().unwrap_or(path);
                Ok((map, Created::Shared(path)))
            }
            Err(err) => {
                let _ = fs::remove_file(&building);
                let reason = format!(
                    "cannot create {}: {err}; using private memory, tools cannot see this process",
                    path.display()
                );
                let anon = MmapMut::map_anon(SEGMENT_SIZE).map_err(|e| SegmentError::io(&path, e))?;
                let mut map = SegmentMap::new(Backing::Private(anon), Access::ReadWrite, None);
                map.initialise(identity, strategy);
                Ok((map, Created::Private(reason)))
            }
        }
    }

    /// At the normal exit of the process that created it: removes the segment file if nothing ever happened to
    /// it worth a post-mortem (no tool changed the strategy since creation, and it never had faults or recording
    /// on), and if its path still names this very file. Returns whether it removed it.
    pub fn remove_if_unused(&self) -> bool {
        let (Some(path), Some(id)) = (&self.path, self.file_id) else { return false };
        let seg = self.segment();
        let unchanged = seg.control.lock.sequence() == self.created_seq;
        let quiet = seg.control.enabled.load(Relaxed) == 0 && seg.control.recording.load(Relaxed) == 0;
        let same_file = fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == id);
        unchanged && quiet && same_file && fs::remove_file(path).is_ok()
    }

    fn initialise(&mut self, id: &Identity<'_>, strategy: &Strategy) {
        let seg = self.segment();
        let h = &seg.header;
        h.abi_version.store(ABI_VERSION, Relaxed);
        h.kind.store(id.kind as u32, Relaxed);
        h.total_size.store(SEGMENT_SIZE as u64, Relaxed);
        h.pid.store(id.pid, Relaxed);
        h.pid_ns.store(id.pid_ns, Relaxed);
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
        seg.pod.write(id.pod);
        // Nobody else can have the lock yet: the file was just created by us, without magic.
        let _ = seg.control.publish(&seg.cursor, &seg.journal, strategy, |_| true);
        seg.ring.start_clock(TickSource::detect());
        h.magic.store(MAGIC, Release);
        self.created_seq = seg.control.lock.sequence();
    }

    /// Attaches the segment file at `path` (never following a symlink there), validating it first.
    pub fn attach(path: &Path, access: Access, options: AttachOptions) -> Result<SegmentMap, SegmentError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        Self::attach_file(file, path, access, options)
    }

    /// Attaches an opened segment file (opened non-blocking: a FIFO must not hang us), validating that it is a
    /// regular file of exactly a segment's size, its permissions for a read-write attach, and every header field,
    /// before mapping it. `path` names it in errors.
    pub fn attach_file(
        file: File,
        path: &Path,
        access: Access,
        options: AttachOptions,
    ) -> Result<SegmentMap, SegmentError> {
        let meta = file.metadata().map_err(|e| SegmentError::io(path, e))?;
        let file_type = meta.file_type();
        if !file_type.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let what = if file_type.is_fifo() {
                "a FIFO"
            } else if file_type.is_dir() {
                "a directory"
            } else if file_type.is_socket() {
                "a socket"
            } else if file_type.is_char_device() || file_type.is_block_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(SegmentError::Corrupt {
                path: path.into(),
                what: format!("{what}, not a segment file; skipped"),
            });
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
        let mut mmap = MmapOptions::new();
        mmap.len(SEGMENT_SIZE);
        let raw = match access {
            Access::ReadOnly => mmap.map_raw_read_only(&file),
            Access::ReadWrite => mmap.map_raw(&file),
        }
        .map_err(|e| SegmentError::io(path, e))?;
        let mut map = SegmentMap::new(Backing::File(raw), access, Some(&meta));
        map.path = Some(path.into());
        map.guard = guard::protect(map.segment() as *const Segment as *const u8, SEGMENT_SIZE, OnFault::Detach);
        // The file may have been truncated between the checks above and the mapping; the first access then
        // detaches (see `guard`) and the checks below fail cleanly.
        if map.segment().header.magic.load(Acquire) != MAGIC {
            return Err(SegmentError::Truncated { path: path.into(), len: 0, expected: SEGMENT_SIZE as u64 });
        }
        let hooks = map.segment().header.hook_count.load(Acquire);
        if hooks as usize > MAX_HOOKS {
            return Err(SegmentError::Corrupt { path: path.into(), what: format!("hook count {hooks} > {MAX_HOOKS}") });
        }
        Ok(map)
    }
}

fn open_error(path: &Path, e: io::Error) -> SegmentError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => SegmentError::PermissionDenied { path: path.into() },
        _ => SegmentError::io(path, e),
    }
}

/// Creates `path` (which must not exist: its name is unpredictable), reserves a segment's space and maps it.
fn create_file(path: &Path) -> io::Result<(File, MmapRaw)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let len = libc::off_t::try_from(SEGMENT_SIZE).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: a plain system call on the descriptor we own; it returns an errno value instead of setting errno.
    let reserved = unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, len) };
    if reserved != 0 {
        return Err(io::Error::from_raw_os_error(reserved));
    }
    let raw = MmapOptions::new().len(SEGMENT_SIZE).map_raw(&file)?;
    Ok((file, raw))
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

    /// The strategy, consistent and range-checked (see [`crate::control::Control::read`]).
    pub fn read_strategy(&self) -> Result<Strategy, ReadError> {
        self.control.read(&self.journal)
    }

    /// Publishes `next` as this process; a writer lock held by a process that has ended is taken over.
    pub fn publish(&self, next: &Strategy) -> Result<(), PublishError> {
        self.control.publish_as(&self.cursor, &self.journal, next, false, &Writer::this_process(), Holder::has_ended)
    }

    /// Like [`Segment::publish`], always starting a new sequence.
    pub fn publish_and_restart(&self, next: &Strategy) -> Result<(), PublishError> {
        self.control.publish_as(&self.cursor, &self.journal, next, true, &Writer::this_process(), Holder::has_ended)
    }

    /// If a writer died mid-change, takes its lock over and republishes the last consistent state (as this
    /// process). `Ok(true)` if it repaired something.
    pub fn repair(&self) -> Result<bool, PublishError> {
        self.control.repair(&self.journal, &Writer::this_process(), Holder::has_ended)
    }

    /// The pid of a writer that left a change half-done and has ended (injection is paused until someone repairs
    /// it, see [`Segment::repair`]); `None` if no change is stuck.
    pub fn interrupted_writer(&self) -> Option<u32> {
        let seq = self.control.lock.sequence();
        let held = self.control.lock.holder();
        if seq & 1 == 0 {
            return None;
        }
        let holder = self.journal.holder(held);
        (held == 0 || holder.has_ended()).then_some(holder.pid)
    }
}
