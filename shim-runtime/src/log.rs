//! Rate-limited diagnostics on stderr, formatted on the stack (no allocation) and written with one `write(2)`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// At most this many lines per second, then silence until the next second.
const LINES_PER_SECOND: u64 = 20;

static WINDOW: AtomicU64 = AtomicU64::new(0);
static LINES_IN_WINDOW: AtomicU64 = AtomicU64::new(0);

struct StackBuf {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Writes `faultline: <message>\n` to stderr unless the rate limit is exhausted.
pub fn line(args: std::fmt::Arguments<'_>) {
    let second = shm_proto::clock::monotonic_ns() / 1_000_000_000;
    if WINDOW.swap(second, Relaxed) != second {
        LINES_IN_WINDOW.store(0, Relaxed);
    }
    if LINES_IN_WINDOW.fetch_add(1, Relaxed) >= LINES_PER_SECOND {
        return;
    }
    let mut buf = StackBuf { bytes: [0; 512], len: 0 };
    let _ = write!(buf, "faultline[{}]: ", std::process::id());
    let _ = buf.write_fmt(args);
    if buf.len == buf.bytes.len() {
        buf.len -= 1;
    }
    buf.bytes[buf.len] = b'\n';
    // SAFETY: the pointer and length describe initialised bytes of `buf`; fd 2 may be closed, which write reports.
    unsafe { libc::write(2, buf.bytes.as_ptr().cast(), buf.len + 1) };
}

/// `log!("...", args)`: a rate-limited diagnostic line.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}
