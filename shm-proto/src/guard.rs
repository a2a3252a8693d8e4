//! Surviving a segment file that shrinks under its mapping.
//!
//! Anyone who can write a segment file (its owner, root) can truncate it; every access to a mapped page past the
//! new end of file is then `SIGBUS`, which would kill the shimmed application or the tool reading it. Each mapping
//! is registered here, and one process-wide `SIGBUS` handler repairs a fault that lies inside a registered
//! mapping, then returns so the access is retried:
//!
//! - [`OnFault::Regrow`] (the shim's own segment): the file is grown back to its size and its space reserved
//!   again (`ftruncate` + `fallocate` through the descriptor kept for this, after checking it is still the same
//!   file); the pages that were cut off read as zeros, which every reader rejects (no magic) and the shim reads as
//!   "injection off". If that is impossible, the mapping is replaced as below.
//! - [`OnFault::Detach`] (a tool's view): the mapping is replaced by private zero pages; validation of the next
//!   read fails cleanly ("corrupt"), and the next refresh attaches the file again if it is whole.
//!
//! A fault outside every registered mapping is passed on to the handler that was installed before (Rust's stack
//! overflow handler in the tools, the application's in a shimmed process), or to the default action, so nothing
//! else changes. An application that replaces the handler later without chaining to it loses the protection.

use std::cell::UnsafeCell;
use std::sync::Once;

use crate::sync::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// What the handler does about a fault inside a registered mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFault {
    /// Grow the file back through this descriptor (kept open by the caller as long as the registration).
    Regrow {
        /// The segment file's descriptor.
        fd: i32,
        /// Its device, to check the descriptor still refers to it.
        dev: u64,
        /// Its inode.
        ino: u64,
    },
    /// Replace the mapping with private zero pages.
    Detach,
}

const SLOTS: usize = 1024;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
    hits: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            fd: AtomicI32::new(-1),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

struct Previous(UnsafeCell<libc::sigaction>);
// SAFETY: written once, by `install` under `INSTALL`, before `PREVIOUS_READY` is set; only read after that.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new(
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL with an empty mask).
    unsafe { std::mem::zeroed() },
));
static PREVIOUS_READY: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
static REPORTED: AtomicBool = AtomicBool::new(false);

/// A registered mapping; dropping it unregisters (do that before unmapping).
#[derive(Debug)]
pub struct Registration(usize);

impl Drop for Registration {
    fn drop(&mut self) {
        let slot = &TABLE[self.0];
        slot.len.store(0, Ordering::Release);
        slot.fd.store(-1, Ordering::Release);
        slot.start.store(0, Ordering::Release);
    }
}

impl Registration {
    /// How many faults inside this mapping the handler repaired.
    pub fn repaired(&self) -> u64 {
        TABLE[self.0].hits.load(Ordering::Acquire)
    }
}

/// Registers `[start, start + len)` and installs the handler (once per process). `None` if every slot is taken
/// (the mapping then works unprotected).
pub fn protect(start: *const u8, len: usize, on_fault: OnFault) -> Option<Registration> {
    INSTALL.call_once(install);
    let start = start as usize;
    for (index, slot) in TABLE.iter().enumerate() {
        if slot.start.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            let (fd, dev, ino) = match on_fault {
                OnFault::Regrow { fd, dev, ino } => (fd, dev, ino),
                OnFault::Detach => (-1, 0, 0),
            };
            slot.dev.store(dev, Ordering::Relaxed);
            slot.ino.store(ino, Ordering::Relaxed);
            slot.fd.store(fd, Ordering::Relaxed);
            slot.hits.store(0, Ordering::Relaxed);
            slot.len.store(len, Ordering::Release);
            return Some(Registration(index));
        }
    }
    None
}

fn install() {
    // SAFETY: a zeroed sigaction is a valid starting value; every field we rely on is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: valid pointers to a fully initialised action and to the static that receives the previous one,
    // which nothing reads before PREVIOUS_READY.
    let installed = unsafe { libc::sigaction(libc::SIGBUS, &action, PREVIOUS.0.get()) } == 0;
    PREVIOUS_READY.store(installed, Ordering::Release);
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // Async-signal-safe only: atomics and raw system calls; no allocation, no locks.
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let (address, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    if code > 0 {
        for slot in &TABLE {
            let start = slot.start.load(Ordering::Acquire);
            let len = slot.len.load(Ordering::Acquire);
            if start != 0 && address >= start && address - start < len {
                repair(slot, start, len);
                return;
            }
        }
    }
    chain(signal, info, context);
}

fn repair(slot: &Slot, start: usize, len: usize) {
    slot.hits.fetch_add(1, Ordering::AcqRel);
    let fd = slot.fd.load(Ordering::Acquire);
    if fd >= 0 && regrow(fd, slot.dev.load(Ordering::Relaxed), slot.ino.load(Ordering::Relaxed), len) {
        report(b"faultline: the segment file was truncated under this process; grown back (its settings are lost)\n");
        return;
    }
    slot.fd.store(-1, Ordering::Release);
    // SAFETY: `[start, start + len)` is a live mapping registered by its owner, who unregisters before unmapping;
    // replacing it in place with private anonymous memory keeps every reference into it valid.
    let mapped = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        // Nothing else can be done: let the default action end the process rather than loop on the fault.
        reset_to_default();
        return;
    }
    report(b"faultline: the segment file was truncated under this process; detached from it (private memory)\n");
}

fn regrow(fd: i32, dev: u64, ino: u64, len: usize) -> bool {
    // SAFETY: a zeroed stat is a valid output buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only into `st`; a closed or reused descriptor is caught by the identity check.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_dev != dev || st.st_ino != ino {
        return false;
    }
    let len = len as libc::off_t;
    // SAFETY: plain system calls on a descriptor verified to be the segment file.
    unsafe { libc::ftruncate(fd, len) == 0 && libc::fallocate(fd, 0, 0, len) == 0 }
}

fn report(message: &[u8]) {
    if !REPORTED.swap(true, Ordering::AcqRel) {
        // SAFETY: write(2) on stderr with a valid buffer; async-signal-safe.
        let _ = unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    }
}

fn reset_to_default() {
    // SAFETY: restoring the default action with a zeroed (SIG_DFL, empty mask) sigaction.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
    }
}

fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = if PREVIOUS_READY.load(Ordering::Acquire) {
        // SAFETY: written once before PREVIOUS_READY was set, never again.
        unsafe { *PREVIOUS.0.get() }
    } else {
        // SAFETY: SIG_DFL with an empty mask.
        unsafe { std::mem::zeroed() }
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // The default action: a fault recurs when we return and ends the process as it would have without us; a
        // signal someone sent is raised again.
        reset_to_default();
        // SAFETY: `info` is valid (see on_sigbus).
        if unsafe { (*info).si_code } <= 0 {
            // SAFETY: raising a signal has no preconditions.
            unsafe { libc::raise(signal) };
        }
        return;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO handler installed by this process, called as the kernel would.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: a plain handler installed by this process, called as the kernel would.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}
