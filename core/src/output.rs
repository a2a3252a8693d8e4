//! Rendering a [`Report`] for people (one line per process, tables) or for scripts (`--json`). Recording dumps are
//! JSON either way, as the seed printed them. No colour is used, so `NO_COLOR` is always respected.
//!
//! Names read from a segment (executables, hooks) are hostile input: every text faultline prints or draws for people
//! passes them through [`escape_controls`]; JSON is left to serde's escaping.

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::json;

use crate::request::{pretty, Report};
use crate::state::{ProcessState, PsRow};
use crate::targets::Unusable;

/// What to print: the main output, and notes for standard error (each printed as `faultline: <note>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Standard output.
    pub stdout: String,
    /// Standard-error lines: skipped segments, failed targets, files written.
    pub notes: Vec<String>,
}

/// Renders `report` as text, or as JSON when `json`.
pub fn render(report: &Report, json: bool) -> Rendered {
    let mut rendered = Rendered::default();
    match report {
        Report::Ps { rows } => {
            rendered.stdout = if json { document(&json!({ "processes": rows })) } else { ps_table(rows) };
        }
        Report::States { changed, processes, failures, unusable } => {
            note_unusable(&mut rendered, unusable);
            rendered.notes.extend(failures.iter().map(|f| format!("{}: {}", f.target, f.error)));
            rendered.stdout = if json {
                document(&json!({ "processes": processes, "failures": failures, "skipped": unusable }))
            } else if *changed {
                processes.iter().map(|p| format!("{}\n", p.line())).collect()
            } else {
                processes.iter().map(status_text).collect::<Vec<_>>().join("\n")
            };
        }
        Report::Dumped { dumps, written_to, unusable } => {
            note_unusable(&mut rendered, unusable);
            match written_to {
                Some(path) => rendered.notes.push(format!("wrote {}", path.display())),
                None => rendered.stdout = dumps.iter().map(document).collect(),
            }
        }
        Report::Aggregated { aggregate, failures, unusable } => {
            note_unusable(&mut rendered, unusable);
            rendered.notes.extend(failures.iter().map(|f| format!("{}: {}", f.target, f.error)));
            rendered.stdout = if json {
                document(&json!({ "aggregate": aggregate, "failures": failures, "skipped": unusable }))
            } else {
                crate::aggregate::text(aggregate)
            };
        }
        Report::Cleaned { removed } => {
            rendered.stdout = if json {
                document(&json!({ "removed": removed }))
            } else if removed.is_empty() {
                "nothing to clean: no segments of dead processes\n".to_string()
            } else {
                removed.iter().map(|r| format!("removed {} (pid {}, {}, dead)\n", r.path, r.pid, r.kind)).collect()
            };
        }
    }
    rendered
}

/// `text` with every control character (`char::is_control`: C0, DEL and C1) written as an escape, `\x1b` or
/// `\u{9b}`, so a name read from a segment cannot recolour the terminal, move its cursor or forge table rows. The one
/// function every text output and the dashboard use for such names.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !c.is_control() {
            escaped.push(c);
        } else if c.is_ascii() {
            let _ = write!(escaped, "\\x{:02x}", u32::from(c)); // writing to a String cannot fail
        } else {
            let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(escaped)
}

fn document(value: &serde_json::Value) -> String {
    format!("{}\n", pretty(value))
}

fn note_unusable(rendered: &mut Rendered, unusable: &[Unusable]) {
    rendered.notes.extend(
        unusable.iter().map(|u| format!("skipped pid {} ({}, {}): {}", u.pid, u.kind.name(), u.problem, u.reason)),
    );
}

/// `status` for one process: the summary line, then every hook.
pub fn status_text(state: &ProcessState) -> String {
    let mut text = format!("{}\n", state.line());
    let names: Vec<Cow<'_, str>> = state.hooks.iter().map(|h| escape_controls(&h.name)).collect();
    let width = names.iter().map(|name| name.chars().count()).max().unwrap_or(4).max(4);
    text.push_str(&format!("  {:<width$}  {:<5}  {:>10}  {:>10}\n", "HOOK", "ARMED", "CALLS", "FAULTS"));
    for (hook, name) in state.hooks.iter().zip(&names) {
        text.push_str(&format!(
            "  {:<width$}  {:<5}  {:>10}  {:>10}\n",
            name,
            if hook.armed { "yes" } else { "no" },
            hook.calls,
            hook.faults
        ));
    }
    text
}

/// The `ps` table.
pub fn ps_table(rows: &[PsRow]) -> String {
    let header = ["PID", "EXE", "KIND", "STATE", "ENABLED", "MODE", "CALLS", "FAULTS", "FAULT%", "REC"];
    let yes_no = |value: Option<bool>| value.map_or("-".to_string(), |on| if on { "yes" } else { "no" }.to_string());
    let number = |value: Option<u64>| value.map_or("-".to_string(), |n| n.to_string());
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|row| {
            [
                row.pid.to_string(),
                row.exe.as_deref().map_or_else(|| "?".to_string(), |exe| escape_controls(exe).into_owned()),
                row.kind.to_string(),
                row.state.to_string(),
                yes_no(row.enabled),
                row.mode.unwrap_or("-").to_string(),
                number(row.calls),
                number(row.faults),
                row.fault_percent.map_or("-".to_string(), |p| format!("{p:.1}")),
                yes_no(row.recording),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(&header.map(String::from));
    for row in &cells {
        text.push_str(&line(row));
    }
    for row in rows.iter().filter(|row| row.reason.is_some()) {
        text.push_str(&format!("pid {}: {}\n", row.pid, escape_controls(row.reason.as_deref().unwrap_or_default())));
    }
    text
}

/// `"s"` unless `count` is one: `format!("{n} process{}", plural(n))`.
pub fn plural(count: impl TryInto<u64>) -> &'static str {
    if count.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_everything_else_kept() {
        assert!(matches!(escape_controls("ucx_selfloop"), Cow::Borrowed("ucx_selfloop")));
        assert_eq!(escape_controls("naïve ✓ \\x"), "naïve ✓ \\x");
        assert_eq!(escape_controls("a\u{1b}[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_controls("\t\n\r\u{7f}\u{0}"), "\\x09\\x0a\\x0d\\x7f\\x00");
        assert_eq!(escape_controls("\u{9b}2J\u{85}"), "\\u{9b}2J\\u{85}");
        assert!(!escape_controls("\u{1b}\u{9b}\u{7}").chars().any(char::is_control));
    }
}
