//! Clocks: `CLOCK_MONOTONIC` for everything a reader compares across processes, and the cheaper tick source the
//! flight recorder stamps each call with.
//!
//! A vDSO `clock_gettime(CLOCK_MONOTONIC)` costs 25–50 ns on a virtual machine, more than the whole recording
//! budget of a call. Where the kernel itself builds `CLOCK_MONOTONIC` on the CPU's time-stamp counter (clocksource
//! `tsc`: invariant and synchronised across CPUs), the ring stores raw TSC ticks instead, one unserialised
//! `rdtsc`. The ring keeps two (ticks, ns) pairs: one taken when it was started, and a recent one the recording
//! shim refreshes whenever a record lies further past it than it lies past the start (and at least every 2³¹
//! ticks). A reader maps ticks to nanoseconds on the line through the two pairs: a record is never further from
//! the recent pair than the pairs are from each other, so the error stays within a few times the pairs' own
//! uncertainty (tens of ns), and the mapping is a function of the segment alone (two dumps of a quiet segment
//! agree to the nanosecond). Elsewhere (another architecture, another clocksource) the ring stores
//! `CLOCK_MONOTONIC` nanoseconds.

/// `CLOCK_MONOTONIC` in nanoseconds (vDSO, no system call on Linux).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// What a ring's timestamps count. Stored in the ring as `u64`; zero (a zeroed ring) is nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum TickSource {
    /// `CLOCK_MONOTONIC` nanoseconds.
    MonotonicNs = 0,
    /// The x86-64 time-stamp counter.
    Tsc = 1,
}

impl TickSource {
    /// Decodes a ring's clock field (unknown values read as nanoseconds).
    pub fn from_raw(raw: u64) -> Self {
        match raw {
            1 if cfg!(target_arch = "x86_64") => TickSource::Tsc,
            _ => TickSource::MonotonicNs,
        }
    }

    /// The cheapest source this machine can be trusted with: the TSC where the kernel uses it for
    /// `CLOCK_MONOTONIC`, else `CLOCK_MONOTONIC` itself.
    pub fn detect() -> Self {
        const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
        let kernel_uses_tsc = std::fs::read_to_string(CLOCKSOURCE).is_ok_and(|name| name.trim() == "tsc");
        if cfg!(target_arch = "x86_64") && kernel_uses_tsc {
            TickSource::Tsc
        } else {
            TickSource::MonotonicNs
        }
    }

    /// The current tick count.
    #[inline(always)]
    pub fn now(self) -> u64 {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: rdtsc has no preconditions (user space may execute it unless the kernel forbids it, which
            // Linux does not by default, and `detect` only picks the TSC where the kernel itself relies on it).
            TickSource::Tsc => unsafe { core::arch::x86_64::_rdtsc() },
            _ => monotonic_ns(),
        }
    }
}

/// One reading of a tick source against `CLOCK_MONOTONIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPair {
    /// The tick count.
    pub ticks: u64,
    /// `CLOCK_MONOTONIC` nanoseconds at the same moment, to within `uncertainty_ns`.
    pub ns: u64,
    /// Half the time the reading took (a preempted reading is wide; the tightest of a few is kept).
    pub uncertainty_ns: u64,
}

impl ClockPair {
    /// Reads `source` and `CLOCK_MONOTONIC` together: the tightest of a few brackets `ns, ticks, ns`.
    pub fn now(source: TickSource) -> Self {
        let mut best = ClockPair { ticks: 0, ns: 0, uncertainty_ns: u64::MAX };
        for _ in 0..5 {
            let before = monotonic_ns();
            let ticks = source.now();
            let after = monotonic_ns();
            let half = after.saturating_sub(before) / 2;
            if half < best.uncertainty_ns {
                best = ClockPair { ticks, ns: before + half, uncertainty_ns: half };
            }
        }
        if source == TickSource::MonotonicNs {
            best.ticks = best.ns; // the same clock: exact
            best.uncertainty_ns = 0;
        }
        best
    }
}

/// Maps one ring's ticks to `CLOCK_MONOTONIC` nanoseconds: the line through two [`ClockPair`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickScale {
    source: TickSource,
    start: ClockPair,
    recent: ClockPair,
}

impl TickScale {
    /// The identity: timestamps already are nanoseconds.
    pub const NANOSECONDS: TickScale = {
        let zero = ClockPair { ticks: 0, ns: 0, uncertainty_ns: 0 };
        TickScale { source: TickSource::MonotonicNs, start: zero, recent: zero }
    };

    /// The scale through `start` and a later `recent` pair of `source`.
    pub fn new(source: TickSource, start: ClockPair, recent: ClockPair) -> Self {
        match source {
            TickSource::MonotonicNs => Self::NANOSECONDS,
            TickSource::Tsc => TickScale { source, start, recent },
        }
    }

    /// `CLOCK_MONOTONIC` nanoseconds of a timestamp taken from this scale's source.
    pub fn to_ns(&self, ticks: u64) -> u64 {
        if self.source == TickSource::MonotonicNs {
            return ticks;
        }
        let span_ticks = self.recent.ticks.saturating_sub(self.start.ticks);
        let span_ns = self.recent.ns.saturating_sub(self.start.ns);
        if span_ticks == 0 {
            return self.start.ns;
        }
        let since_start = u128::from(ticks.saturating_sub(self.start.ticks));
        let ns = since_start * u128::from(span_ns) / u128::from(span_ticks);
        self.start.ns.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(ticks: u64, ns: u64) -> ClockPair {
        ClockPair { ticks, ns, uncertainty_ns: 0 }
    }

    #[test]
    fn nanoseconds_map_to_themselves() {
        assert_eq!(TickScale::NANOSECONDS.to_ns(12_345), 12_345);
        assert_eq!(TickScale::new(TickSource::MonotonicNs, pair(7, 9), pair(8, 10)).to_ns(12_345), 12_345);
    }

    #[test]
    fn ticks_map_linearly_through_the_two_pairs() {
        // 3 ticks per nanosecond, started at tick 3,000 = 1,000 ns, recent pair at tick 30,000 = 10,000 ns.
        let scale = TickScale::new(TickSource::Tsc, pair(3_000, 1_000), pair(30_000, 10_000));
        assert_eq!(scale.to_ns(3_000), 1_000);
        assert_eq!(scale.to_ns(15_000), 5_000);
        assert_eq!(scale.to_ns(30_000), 10_000);
        assert_eq!(scale.to_ns(60_000), 20_000, "records after the recent pair extrapolate on the same line");
        assert_eq!(scale.to_ns(0), 1_000, "a timestamp before the start clamps to it");
    }

    /// On this machine's own source: a tick read between two `CLOCK_MONOTONIC` readings maps between them, up to
    /// the two pairs' stated uncertainty and NTP's rate adjustment (at most 500 ppm of the span).
    #[test]
    fn the_detected_source_agrees_with_monotonic_time() {
        let source = TickSource::detect();
        let start = ClockPair::now(source);
        let wait_until = |ns| {
            while monotonic_ns() < ns {
                std::hint::spin_loop();
            }
        };
        wait_until(start.ns + 1_000_000);
        let before = monotonic_ns();
        let ticks = source.now();
        let after = monotonic_ns();
        wait_until(after + 1_000_000);
        let recent = ClockPair::now(source);
        let mapped = TickScale::new(source, start, recent).to_ns(ticks);
        let slack = start.uncertainty_ns + recent.uncertainty_ns + (recent.ns - start.ns) / 2000 + 1;
        assert!(
            before.saturating_sub(slack) <= mapped && mapped <= after + slack,
            "{source:?}: {mapped} not within [{before}, {after}] ± {slack}"
        );
    }
}
