//! The kernel log through `/dev/kmsg`: writing one record, and reading records back to confirm it landed.
//!
//! - **Writing.** Each record is one `write(2)` on a descriptor opened for that record alone: the kernel
//!   rate-limits userspace writers per open file (`printk_devkmsg=ratelimit`: about ten records, then
//!   "callbacks suppressed"), so a writer that keeps its descriptor loses records. A userspace record always gets
//!   facility `user` (a `<3>` prefix comes back as priority 11); the kernel refuses to let userspace claim facility 0.
//! - **Reading.** A reader opens `/dev/kmsg` with `O_NONBLOCK`, seeks to the end *before* the write, and then reads
//!   one record per `read(2)` until `EAGAIN`; `EPIPE` means older records were overwritten while reading and the
//!   next read carries on with the oldest one still there.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kernel log device.
pub const DEV_KMSG: &str = "/dev/kmsg";

/// Where the kernel says whether userspace may write the log (`on`, `off`, `ratelimit`).
pub const DEVKMSG_SYSCTL: &str = "/proc/sys/kernel/printk_devkmsg";

/// One record read from `/dev/kmsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Syslog priority: facility × 8 + level.
    pub priority: u32,
    /// The kernel's sequence number.
    pub seq: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// The text (non-printable bytes escaped as `\xNN` by the kernel).
    pub text: String,
}

impl Record {
    /// Syslog facility (0 kernel, 1 user, …).
    pub fn facility(&self) -> u32 {
        self.priority >> 3
    }

    /// Syslog level (0 emergency … 7 debug).
    pub fn level(&self) -> u32 {
        self.priority & 7
    }
}

/// Parses one record as `read(2)` returns it: `pri,seq,ts,flags[,…];text\n[ KEY=value\n…]`.
pub fn parse_record(raw: &str) -> Option<Record> {
    let (prefix, rest) = raw.split_once(';')?;
    let mut fields = prefix.split(',');
    let priority = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let timestamp_us = fields.next()?.parse().ok()?;
    let text = rest.split('\n').next().unwrap_or_default().to_string();
    Some(Record { priority, seq, timestamp_us, text })
}

/// Writes `text` as one record with syslog `level` (0–7), on a descriptor opened for this record alone.
pub fn write_record(path: &Path, level: u8, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(format!("<{}>{text}\n", level & 7).as_bytes())
}

/// A non-blocking reader of the kernel log.
pub struct Reader {
    file: File,
    path: PathBuf,
}

impl Reader {
    /// Opens `path` and positions the reader after the newest record, so it sees only what is written later.
    pub fn open_at_end(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Reader { file, path: path.to_path_buf() })
    }

    /// The device read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record available now (possibly none).
    pub fn read_available(&mut self) -> io::Result<Vec<Record>> {
        let mut records = Vec::new();
        // A record is at most about 8 KiB with its dictionary; a smaller buffer makes read(2) fail with EINVAL.
        let mut buffer = vec![0_u8; 16 * 1024];
        loop {
            match self.file.read(&mut buffer) {
                Ok(0) => return Ok(records),
                Ok(n) => records.extend(parse_record(&String::from_utf8_lossy(&buffer[..n]))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(records),
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until a record whose text contains `needle` appears, or `patience` has passed (a written record is
    /// normally readable at once; the patience covers a busy log).
    pub fn find(&mut self, needle: &str, patience: Duration) -> io::Result<Option<Record>> {
        Ok(self.find_all(needle, 1, patience)?.into_iter().next())
    }

    /// Reads until `count` records whose text contains `needle` have appeared (in log order), or `patience` has
    /// passed; returns those seen (fewer than `count` when the patience ran out).
    pub fn find_all(&mut self, needle: &str, count: usize, patience: Duration) -> io::Result<Vec<Record>> {
        let deadline = Instant::now() + patience;
        let mut found = Vec::new();
        loop {
            found.extend(self.read_available()?.into_iter().filter(|r| r.text.contains(needle)));
            if found.len() >= count || Instant::now() >= deadline {
                return Ok(found);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A record's text as journald stores it: the kernel escapes every byte that is not printable (a newline inside a
/// record, a backslash) as `\xNN` on `/dev/kmsg`, and journald undoes that (`cunescape`). Anything that is not a
/// well-formed escape is kept as it is.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i..i + 4).filter(|e| e[0] == b'\\' && e[1] == b'x');
        match escape.and_then(|e| std::str::from_utf8(&e[2..]).ok()).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `printk_devkmsg` setting, if readable (`off` means userspace writes are silently dropped).
pub fn devkmsg_setting() -> Option<String> {
    std::fs::read_to_string(DEVKMSG_SYSCTL).ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_with_and_without_a_dictionary() {
        let record = parse_record("11,5121,912345678,-;kernel: NVRM: Xid (PCI:0000:3b:00): 79, x\n").unwrap();
        assert_eq!((record.priority, record.seq, record.timestamp_us), (11, 5121, 912_345_678));
        assert_eq!((record.facility(), record.level()), (1, 3));
        assert_eq!(record.text, "kernel: NVRM: Xid (PCI:0000:3b:00): 79, x");
        let record = parse_record("6,339,5140900,-,caller=T1;usb 1-1: new device\n SUBSYSTEM=usb\n").unwrap();
        assert_eq!(record.text, "usb 1-1: new device");
        assert_eq!(parse_record("garbage"), None);
    }

    #[test]
    fn escapes_are_undone_as_journald_does() {
        assert_eq!(unescape("a\\x0ab\\x5cc"), "a\nb\\c");
        assert_eq!(unescape("no escapes: \\xZZ \\x4"), "no escapes: \\xZZ \\x4");
        assert_eq!(unescape("GPU 0000:3b:00.0\\x0aNVRM: (PCI ID"), "GPU 0000:3b:00.0\nNVRM: (PCI ID");
    }
}
