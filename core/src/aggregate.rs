//! `aggregate-stats`, the seed client's overview of every injected process: totals, a table by process and (with
//! `--detailed`) one by intercepted function; `--group-by-size` adds the recorded calls by transfer size. Built from
//! the same [`ProcessState`]s as `status`, and the flight recorder for sizes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::output::escape_controls;
use crate::recording::Recording;
use crate::state::{fault_percent, ProcessState};

/// Totals over the processes read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Processes read.
    pub processes: usize,
    /// Their intercepted calls (while injection was enabled).
    pub calls: u64,
    /// Their injected faults.
    pub faults: u64,
    /// `faults / calls` in percent (0 without calls).
    pub fault_percent: f64,
    /// One row per process, in pid order.
    pub by_process: Vec<ProcessTotals>,
    /// One row per intercepted function that was called (`--detailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_function: Option<Vec<FunctionTotals>>,
    /// Recorded calls by transfer size (`--group-by-size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_size: Option<Vec<SizeTotals>>,
}

/// One process's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessTotals {
    /// Its pid.
    pub pid: u32,
    /// Its shim.
    pub kind: &'static str,
    /// Its executable.
    pub exe: String,
    /// Calls of every hook.
    pub calls: u64,
    /// Faults injected.
    pub faults: u64,
    /// `faults / calls` in percent.
    pub fault_percent: f64,
    /// Whether it is recording.
    pub recording: bool,
}

/// One function's totals over every process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionTotals {
    /// The intercepted function.
    pub function: String,
    /// Its calls.
    pub calls: u64,
    /// Its share of all calls, in percent.
    pub percent_of_calls: f64,
    /// Its faults.
    pub faults: u64,
    /// `faults / calls` in percent.
    pub fault_percent: f64,
}

/// Recorded calls whose size argument falls in `min_bytes..=max_bytes` (a power-of-two bucket; 0 alone for calls
/// without a size).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeTotals {
    /// Smallest size of the bucket.
    pub min_bytes: u64,
    /// Largest size of the bucket.
    pub max_bytes: u64,
    /// Recorded calls.
    pub calls: u64,
    /// Of which injected.
    pub faults: u64,
    /// `faults / calls` in percent.
    pub fault_percent: f64,
}

fn percent(part: u64, whole: u64) -> f64 {
    fault_percent(part as f64, whole as f64).unwrap_or(0.0)
}

/// Sums `states`; `detailed` adds the table by function, `recordings` (one per process) the table by size.
pub fn aggregate(states: &[ProcessState], detailed: bool, recordings: Option<&[Recording]>) -> Aggregate {
    let calls: u64 = states.iter().map(|s| s.calls).sum();
    let faults: u64 = states.iter().map(|s| s.faults).sum();
    let mut by_process: Vec<ProcessTotals> = states
        .iter()
        .map(|s| ProcessTotals {
            pid: s.pid,
            kind: s.kind,
            exe: s.exe.clone(),
            calls: s.calls,
            faults: s.faults,
            fault_percent: percent(s.faults, s.calls),
            recording: s.recording,
        })
        .collect();
    by_process.sort_by_key(|p| (p.pid, p.kind));
    let by_function = detailed.then(|| {
        let mut functions: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for hook in states.iter().flat_map(|s| &s.hooks).filter(|h| h.calls > 0) {
            let entry = functions.entry(hook.name.as_str()).or_default();
            entry.0 += hook.calls;
            entry.1 += hook.faults;
        }
        functions
            .into_iter()
            .map(|(function, (hook_calls, hook_faults))| FunctionTotals {
                function: function.to_string(),
                calls: hook_calls,
                percent_of_calls: percent(hook_calls, calls),
                faults: hook_faults,
                fault_percent: percent(hook_faults, hook_calls),
            })
            .collect()
    });
    let by_size = recordings.map(|recordings| {
        let mut buckets: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for record in recordings.iter().flat_map(|r| &r.records) {
            let entry = buckets.entry(bucket_top(record.size)).or_default();
            entry.0 += 1;
            entry.1 += u64::from(record.injected);
        }
        buckets
            .into_iter()
            .map(|(top, (bucket_calls, bucket_faults))| SizeTotals {
                min_bytes: if top <= 1 { top } else { top / 2 + 1 },
                max_bytes: top,
                calls: bucket_calls,
                faults: bucket_faults,
                fault_percent: percent(bucket_faults, bucket_calls),
            })
            .collect()
    });
    Aggregate {
        processes: states.len(),
        calls,
        faults,
        fault_percent: percent(faults, calls),
        by_process,
        by_function,
        by_size,
    }
}

/// The largest size of `size`'s bucket: 0, 1, 2, 4, 8, …
fn bucket_top(size: u64) -> u64 {
    if size == 0 {
        0
    } else {
        size.checked_next_power_of_two().unwrap_or(u64::MAX)
    }
}

/// The text the seed client printed, as plain tables.
pub fn text(aggregate: &Aggregate) -> String {
    let mut text = format!(
        "AGGREGATE STATISTICS\nprocesses {}\ncalls     {}\nfaults    {} ({:.2}%)\n\nBY PROCESS\n",
        aggregate.processes, aggregate.calls, aggregate.faults, aggregate.fault_percent
    );
    let rows: Vec<Vec<String>> = aggregate
        .by_process
        .iter()
        .map(|p| {
            vec![
                p.pid.to_string(),
                escape_controls(&p.exe).into_owned(),
                p.kind.to_string(),
                p.calls.to_string(),
                p.faults.to_string(),
                format!("{:.2}", p.fault_percent),
                if p.recording { "on" } else { "off" }.to_string(),
            ]
        })
        .collect();
    text.push_str(&table(&["PID", "EXE", "KIND", "CALLS", "FAULTS", "FAULT%", "RECORDING"], &rows));
    if let Some(functions) = &aggregate.by_function {
        let rows: Vec<Vec<String>> = functions
            .iter()
            .map(|f| {
                vec![
                    escape_controls(&f.function).into_owned(),
                    f.calls.to_string(),
                    format!("{:.1}", f.percent_of_calls),
                    f.faults.to_string(),
                    format!("{:.2}", f.fault_percent),
                ]
            })
            .collect();
        text.push_str("\nBY FUNCTION\n");
        text.push_str(&table(&["FUNCTION", "CALLS", "% OF CALLS", "FAULTS", "FAULT%"], &rows));
    }
    if let Some(sizes) = &aggregate.by_size {
        let rows: Vec<Vec<String>> = sizes
            .iter()
            .map(|s| {
                vec![
                    format!("{}-{}", s.min_bytes, s.max_bytes),
                    s.calls.to_string(),
                    s.faults.to_string(),
                    format!("{:.2}", s.fault_percent),
                ]
            })
            .collect();
        text.push_str("\nBY TRANSFER SIZE (recorded calls)\n");
        if rows.is_empty() {
            text.push_str("nothing recorded (turn recording on with `record-toggle on`)\n");
        } else {
            text.push_str(&table(&["BYTES", "CALLS", "FAULTS", "FAULT%"], &rows));
        }
    }
    text
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(cell, &width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(&mut header.iter().copied());
    for row in rows {
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_into_power_of_two_buckets() {
        assert_eq!([0, 1, 2, 3, 4, 5, 64, 65].map(bucket_top), [0, 1, 2, 4, 4, 8, 64, 128]);
        assert_eq!(bucket_top(u64::MAX), u64::MAX);
    }

    #[test]
    fn tables_align_their_columns() {
        let text = table(&["A", "LONG"], &[vec!["wide cell".into(), "1".into()]]);
        assert_eq!(text, "A          LONG\nwide cell  1\n");
    }
}
