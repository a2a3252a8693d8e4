//! Segment file names. A name says which shim made the file and which process it claims to belong to; it is a
//! claim only (anyone can create files in a shared directory), checked against the header and `/proc` before use.
//!
//! - `faultline.<kind>.<pid>`: a process in the initial pid namespace (the host);
//! - `faultline.<kind>.<pid>.<pidns>`: a process in pid namespace `<pidns>` (the namespace's inode). Containers of
//!   one pod share `/dev/shm` but not pids: two pid-1 processes get two names.
//! - either with `~<16 hex digits>` appended: the usual name was taken by a file this process could not replace
//!   (another user's, in a sticky directory), so the segment was published under a unique name instead.
//! - `faultline.<kind>.<pid>.<pidns>.<16 hex digits>.new`: a segment being built, under an unpredictable name
//!   (created `O_EXCL`, so nobody can pre-create it); discovery ignores it, cleaning removes it once its process
//!   is gone.

use crate::layout::Kind;
use crate::process::INIT_PID_NS;

/// File-name prefix of every segment.
pub const FILE_PREFIX: &str = "faultline.";
const BUILDING_SUFFIX: &str = ".new";

/// What a segment file's name claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameClaim {
    /// Which shim.
    pub kind: Kind,
    /// The pid in the process's own pid namespace.
    pub ns_pid: u32,
    /// That namespace's inode.
    pub pid_ns: u64,
    /// Whether this is a segment still being built (`.new`).
    pub building: bool,
}

/// The usual name of the segment of `kind` made by the process with pid `ns_pid` in pid namespace `pid_ns`.
pub fn file_name_in(kind: Kind, ns_pid: u32, pid_ns: u64) -> String {
    if pid_ns == INIT_PID_NS {
        format!("{FILE_PREFIX}{}.{ns_pid}", kind.name())
    } else {
        format!("{FILE_PREFIX}{}.{ns_pid}.{pid_ns}", kind.name())
    }
}

/// The usual name of the segment of `kind` made by the process with pid `pid` in *this* process's pid namespace.
pub fn file_name(kind: Kind, pid: u32) -> String {
    file_name_in(kind, pid, crate::process::own_pid_ns())
}

/// The name a segment is built under before it is published.
pub fn building_name(kind: Kind, ns_pid: u32, pid_ns: u64, nonce: u64) -> String {
    format!("{FILE_PREFIX}{}.{ns_pid}.{pid_ns}.{nonce:016x}{BUILDING_SUFFIX}", kind.name())
}

/// The name used when the usual one is taken by a file that cannot be replaced.
pub fn unique_name(usual: &str, nonce: u64) -> String {
    format!("{usual}~{nonce:016x}")
}

/// Parses a published segment's name (`None` for anything else, including segments being built).
pub fn parse_file_name(name: &str) -> Option<(Kind, u32)> {
    parse(name).filter(|claim| !claim.building).map(|claim| (claim.kind, claim.ns_pid))
}

/// Parses any name a segment file can have.
pub fn parse(name: &str) -> Option<NameClaim> {
    let rest = name.strip_prefix(FILE_PREFIX)?;
    if let Some(building) = rest.strip_suffix(BUILDING_SUFFIX) {
        let mut parts = building.split('.');
        let kind = Kind::from_name(parts.next()?)?;
        let ns_pid = number(parts.next()?)?;
        let pid_ns = number(parts.next()?)?;
        let nonce = parts.next()?;
        if nonce.len() != 16 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) || parts.next().is_some() {
            return None;
        }
        return Some(NameClaim { kind, ns_pid, pid_ns, building: true });
    }
    let rest = match rest.split_once('~') {
        Some((rest, nonce)) if nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit()) => rest,
        Some(_) => return None,
        None => rest,
    };
    let mut parts = rest.split('.');
    let kind = Kind::from_name(parts.next()?)?;
    let ns_pid = number(parts.next()?)?;
    let pid_ns = match parts.next() {
        None => INIT_PID_NS,
        Some(ns) => number(ns)?,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(NameClaim { kind, ns_pid, pid_ns, building: false })
}

/// A decimal number without sign, leading `+` or leading zeros (one spelling per number).
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// 64 unpredictable bits (`getrandom`, else the clock and pid mixed).
pub fn nonce() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for 8 bytes; GRND_NONBLOCK never waits for entropy.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    if got == 8 {
        return u64::from_ne_bytes(bytes);
    }
    let now = crate::clock::monotonic_ns() ^ u64::from(std::process::id()).rotate_left(32);
    crate::decide::Rng::for_thread(now, std::process::id()).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_namespaces_keep_them_apart() {
        assert_eq!(file_name_in(Kind::Ucx, 42, INIT_PID_NS), "faultline.ucx.42");
        assert_eq!(parse("faultline.ucx.42").map(|c| (c.ns_pid, c.pid_ns)), Some((42, INIT_PID_NS)));
        let a = file_name_in(Kind::Ucx, 1, 4_026_532_001);
        let b = file_name_in(Kind::Ucx, 1, 4_026_532_002);
        assert_ne!(a, b, "two pid-1 processes of two containers");
        assert_eq!(parse(&a).map(|c| c.pid_ns), Some(4_026_532_001));
        let building = building_name(Kind::Cuda, 7, 9, 0xabc);
        assert_eq!(parse(&building), Some(NameClaim { kind: Kind::Cuda, ns_pid: 7, pid_ns: 9, building: true }));
        assert_eq!(parse_file_name(&building), None, "discovery ignores segments being built");
        let unique = unique_name("faultline.ucx.42", 5);
        assert_eq!(parse_file_name(&unique), Some((Kind::Ucx, 42)));
        for bad in [
            "faultline.ucx.notapid",
            "faultline.ucx.042",
            "faultline.ucx.+42",
            "faultline.ucx.42.1.2",
            "faultline.ucx.42~zz",
            "faultline.nccl.1",
            "faultline.ucx.42.new",
            "faultline.ucx..1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
