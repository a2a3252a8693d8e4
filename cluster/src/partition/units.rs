//! The values Chaos Mesh parses, checked before they are sent: Go durations, bandwidth rates, byte counts and
//! percentages.

use std::time::Duration;

use crate::ClusterError;

/// A duration as Go writes it (Chaos Mesh parses `spec.duration` with `time.ParseDuration`).
pub(super) fn go_duration_text(duration: Duration) -> Result<String, ClusterError> {
    if duration.is_zero() {
        return Err(ClusterError::Usage("the fault's duration (--ttl) must be more than 0".into()));
    }
    Ok(if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}ns", duration.as_nanos())
    })
}

/// A percentage as Chaos Mesh takes it (a decimal string; a trailing `%` is dropped).
pub(super) fn percent(flag: &str, text: &str, zero_allowed: bool) -> Result<String, ClusterError> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim()).trim();
    let value: Option<f64> = number.parse().ok().filter(|v: &f64| v.is_finite());
    match value {
        Some(v) if (v > 0.0 || (zero_allowed && v == 0.0)) && v <= 100.0 => Ok(number.to_string()),
        _ => Err(ClusterError::Usage(format!(
            "invalid {flag} {text:?}: expected a percentage {} 0 to 100, e.g. 25 or 0.5",
            if zero_allowed { "from" } else { "above" }
        ))),
    }
}

/// A Go duration (`300ms`, `1.5s`, `1m30s`; units ns, us, µs, ms, s, m, h), as `time.ParseDuration` takes it.
pub(super) fn go_duration(flag: &str, text: &str, zero_allowed: bool) -> Result<String, ClusterError> {
    let text = text.trim();
    let nanos = go_duration_nanos(text);
    match nanos {
        Some(n) if n > 0.0 || zero_allowed => Ok(text.to_string()),
        _ => Err(ClusterError::Usage(format!(
            "invalid {flag} {text:?}: expected a {}duration with a unit such as 100ms, 1.5s or 10us (units ns, us, \
             ms, s, m, h)",
            if zero_allowed { "" } else { "positive " }
        ))),
    }
}

/// The nanoseconds in a Go duration without a sign, or `None` when it is not one.
pub(super) fn go_duration_nanos(text: &str) -> Option<f64> {
    if text == "0" {
        return Some(0.0);
    }
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = tail;
    }
    // time.ParseDuration overflows past about 292 years.
    (total <= i64::MAX as f64).then_some(total)
}

/// A bandwidth rate as Chaos Mesh takes it: a whole number and a unit (`bps` … `tbps`).
pub(super) fn bandwidth_rate(text: &str) -> Result<String, ClusterError> {
    let bad = || {
        ClusterError::Usage(format!(
            "invalid --rate {text:?}: expected a whole number of bytes per second with a unit bps, kbps, mbps, gbps or \
             tbps (1024-based), e.g. 1mbps"
        ))
    };
    let normalized = text.trim().to_ascii_lowercase();
    // Longest first: every unit ends in "bps".
    for (power, unit) in [(4, "tbps"), (3, "gbps"), (2, "mbps"), (1, "kbps"), (0, "bps")] {
        if let Some(number) = normalized.strip_suffix(unit) {
            let number = number.trim();
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let count: u64 = number.parse().map_err(|_| bad())?;
            let bytes = (0..power).try_fold(count, |n, _| n.checked_mul(1024)).ok_or_else(bad)?;
            if bytes == 0 {
                return Err(bad());
            }
            return Ok(format!("{count}{unit}"));
        }
    }
    Err(bad())
}

/// A byte count for `--limit` / `--buffer` (the CRD: int32, at least 1).
pub(super) fn parse_bytes(flag: &str, text: &str) -> Result<u32, ClusterError> {
    parse_count(flag, text, 1)
}

/// A whole number from `minimum` up to the CRD's int32 maximum.
pub(super) fn parse_count(flag: &str, text: &str, minimum: u32) -> Result<u32, ClusterError> {
    let count = text.trim().parse::<u64>().unwrap_or(u64::MAX);
    check_count(flag, count, minimum).map_err(|_| count_error(flag, text, minimum))
}

pub(super) fn check_count(flag: &str, count: u64, minimum: u32) -> Result<u32, ClusterError> {
    match u32::try_from(count) {
        Ok(n) if n >= minimum && i32::try_from(n).is_ok() => Ok(n),
        _ => Err(count_error(flag, &count.to_string(), minimum)),
    }
}

pub(super) fn count_error(flag: &str, text: &str, minimum: u32) -> ClusterError {
    ClusterError::Usage(format!(
        "invalid {flag} {text:?}: expected a whole number of bytes from {minimum} to {}",
        i32::MAX
    ))
}

/// `--peakrate` (the CRD: int64, at least 0).
pub(super) fn parse_peakrate(text: &str) -> Result<u64, ClusterError> {
    check_peakrate(text, text.trim().parse::<u64>().ok())
}

pub(super) fn check_peakrate(text: &str, peakrate: Option<u64>) -> Result<u64, ClusterError> {
    match peakrate {
        Some(n) if i64::try_from(n).is_ok() => Ok(n),
        _ => Err(ClusterError::Usage(format!(
            "invalid --peakrate {text:?}: expected a whole number of bytes per second up to {}",
            i64::MAX
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_chaos_mesh_parses_them() {
        for good in ["100ms", "1.5s", "1m30s", "10us", "10µs", "2h", "0.5ms", "1h2m3s4ms5us6ns", "3.s"] {
            assert!(go_duration_nanos(good).is_some_and(|n| n > 0.0), "{good}");
        }
        assert_eq!(go_duration_nanos("1m30s"), Some(90e9));
        assert_eq!(go_duration_nanos("0"), Some(0.0));
        for bad in ["", "100", "ms", "1d", "1.2.3s", ".s", "+5ms", "5ms ", "99999999999h"] {
            assert_eq!(go_duration_nanos(bad), None, "{bad}");
        }
        assert_eq!(go_duration_text(Duration::from_secs(600)).unwrap(), "600s");
        assert_eq!(go_duration_text(Duration::from_nanos(1_000_001)).unwrap(), "1000001ns");
    }
}
