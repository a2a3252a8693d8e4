//! Who a process is, as `/proc` tells it: its pid namespace, its pid there, its start time and uids, and how a
//! (pid namespace, pid) pair found in a segment's name or a writer lock maps to a pid this tool can see.
//!
//! Everything here reads `/proc`; nothing is cached.

use std::fs;
use std::os::unix::fs::MetadataExt;

/// The inode of the initial pid namespace (`PROC_PID_INIT_INO`, fixed by the kernel since 3.8).
pub const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// The inode of `pid`'s pid namespace (`/proc/<pid>/ns/pid`); `pid` may be `"self"`.
pub fn pid_ns_of(pid: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/pid")).ok().map(|m| m.ino())
}

/// This process's pid namespace, or [`INIT_PID_NS`] where `/proc` cannot tell (no `/proc` mounted). Read each
/// time: a child forked after `unshare(CLONE_NEWPID)` is in another namespace than its parent was.
pub fn own_pid_ns() -> u64 {
    pid_ns_of("self").unwrap_or(INIT_PID_NS)
}

/// This process's start time (see [`start_time_ticks`]); read each time, as a forked child has its own.
pub fn own_start_ticks() -> u64 {
    start_time_ticks("self").unwrap_or(0)
}

/// Numeric field `field` (numbered as in proc(5), 3 or later) of `/proc/<pid>/stat`; `pid` may be `"self"`.
pub fn stat_field(pid: &str, field: usize) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(field.checked_sub(3)?)?.parse().ok()
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot); `None` if there is no such process.
pub fn start_time_ticks(pid: &str) -> Option<u64> {
    stat_field(pid, 22)
}

/// The `NSpid` line of `/proc/<pid>/status`: the pid in each nested namespace, outermost first.
pub fn ns_pids(pid: u32) -> Option<Vec<u32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().map(|p| p.parse().ok()).collect()
}

/// The effective and filesystem uids of `pid` (`Uid:` line of `/proc/<pid>/status`), as this tool's user
/// namespace sees them.
pub fn file_creating_uids(pid: u32) -> Option<[u32; 2]> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let uids: Vec<u32> = line.split_whitespace().filter_map(|u| u.parse().ok()).collect();
    Some([*uids.get(1)?, *uids.get(3)?])
}

/// Whether no process `pid` exists in this pid namespace.
pub fn pid_is_gone(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return true };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks for existence and permission; it sends nothing.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// One process as seen in `/proc`.
#[derive(Debug, Clone)]
pub struct ProcessEntry {
    /// Its pid here.
    pub pid: u32,
    /// Its pid namespace's inode.
    pub pid_ns: u64,
    /// Its pid in that namespace.
    pub ns_pid: u32,
    /// Its mount namespace's inode.
    pub mnt_ns: Option<u64>,
}

/// Every process this tool may inspect, with its pid namespace.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    entries: Vec<ProcessEntry>,
}

impl ProcessTable {
    /// Reads `/proc`.
    pub fn read() -> Self {
        let pids: Vec<u32> = fs::read_dir("/proc")
            .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        let entries = pids
            .into_iter()
            .filter_map(|pid| {
                let pid_ns = pid_ns_of(&pid.to_string())?;
                let ns_pid = *ns_pids(pid)?.last()?;
                let mnt_ns = fs::metadata(format!("/proc/{pid}/ns/mnt")).ok().map(|m| m.ino());
                Some(ProcessEntry { pid, pid_ns, ns_pid, mnt_ns })
            })
            .collect();
        ProcessTable { entries }
    }

    /// The processes read.
    pub fn entries(&self) -> &[ProcessEntry] {
        &self.entries
    }

    /// Where the process with pid `ns_pid` in pid namespace `pid_ns` (not ours) stands, as this table sees it.
    fn locate_elsewhere(&self, pid_ns: u64, ns_pid: u32) -> Located {
        if let Some(entry) = self.entries.iter().find(|e| e.pid_ns == pid_ns && e.ns_pid == ns_pid) {
            return Located::Running(entry.pid);
        }
        // The initial namespace sees every process: a namespace none of them is in no longer exists.
        if own_pid_ns() == INIT_PID_NS || self.entries.iter().any(|e| e.pid_ns == pid_ns) {
            Located::Gone
        } else {
            Located::Unknown
        }
    }
}

/// Locates processes by (pid namespace, pid), reading `/proc` at most once and only for a namespace not ours.
#[derive(Debug, Default)]
pub struct Locator {
    table: Option<ProcessTable>,
}

impl Locator {
    /// A locator that has read nothing yet.
    pub fn new() -> Self {
        Locator::default()
    }

    /// The process table (read now if it was not yet).
    pub fn table(&mut self) -> &ProcessTable {
        self.table.get_or_insert_with(ProcessTable::read)
    }

    /// Where the process with pid `ns_pid` in pid namespace `pid_ns` stands from here.
    pub fn locate(&mut self, pid_ns: u64, ns_pid: u32) -> Located {
        if pid_ns == own_pid_ns() {
            return if pid_is_gone(ns_pid) { Located::Gone } else { Located::Running(ns_pid) };
        }
        self.table().locate_elsewhere(pid_ns, ns_pid)
    }
}

/// A (pid namespace, pid) pair, as seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// A running process with this pid here.
    Running(u32),
    /// No such process runs: the namespace is ours or visible from here, and it has no process with that pid.
    Gone,
    /// The namespace is not visible from here (a sibling container's): whether it runs cannot be told.
    Unknown,
}

/// Where one process stands from here (see [`Locator`] for many).
pub fn locate(pid_ns: u64, ns_pid: u32) -> Located {
    Locator::new().locate(pid_ns, ns_pid)
}

/// Whether the process `pid` (as seen here) is the one that created a segment whose header says it was
/// `header_pid` in pid namespace `header_pid_ns`, started at `start_ticks`, and whose file `owner` owns: same
/// namespace and pid there, same start time, and the file's owner is the process's effective or filesystem uid
/// (anyone can read start times; only the process's own user can create its file).
pub fn is_creator(pid: u32, header_pid: u32, header_pid_ns: u64, start_ticks: u64, owner: u32) -> bool {
    let same_start = start_time_ticks(&pid.to_string()) == Some(start_ticks);
    let same_pid = ns_pids(pid).and_then(|p| p.last().copied()) == Some(header_pid);
    let same_ns = pid_ns_of(&pid.to_string()) == Some(header_pid_ns);
    let owned = file_creating_uids(pid).is_some_and(|uids| uids.contains(&owner));
    same_start && same_pid && same_ns && owned
}

/// Whether the process that was `(pid_ns, ns_pid)` and started at `start_ticks` has certainly ended (a writer lock
/// whose holder is gone may be taken over). Unknown namespaces count as alive.
pub fn certainly_ended(pid_ns: u64, ns_pid: u32, start_ticks: u64) -> bool {
    match locate(pid_ns, ns_pid) {
        Located::Gone => true,
        Located::Running(pid) => {
            start_ticks != 0 && start_time_ticks(&pid.to_string()).is_some_and(|s| s != start_ticks)
        }
        Located::Unknown => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_locates_itself_and_a_reaped_child_is_gone() {
        let me = std::process::id();
        assert_eq!(locate(own_pid_ns(), me), Located::Running(me));
        assert!(!certainly_ended(own_pid_ns(), me, own_start_ticks()));
        assert!(certainly_ended(own_pid_ns(), me, own_start_ticks() + 1), "same pid, other start: a new process");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(certainly_ended(own_pid_ns(), pid, 0));
    }

    #[test]
    fn uids_of_this_process() {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(file_creating_uids(std::process::id()).map(|u| u[0]), Some(euid));
    }
}
