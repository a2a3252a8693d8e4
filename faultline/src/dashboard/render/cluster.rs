//! The cluster view (`v`): GPU nodes (ready, cordoned, GPUs, agent, taints), the active faults with the time
//! left (computed at render time from [`App::clock`]), the selected node's recent XID events, and the view's log;
//! connection and API errors in a box of their own above the nodes.
//!
//! ```text
//! title: server · when listed · what the worker is doing ─────────────
//! ┌ Cluster unreachable (only while the last refresh failed) ─────────┐
//! ┌ GPU nodes ─────────────────────────────────────────────────────────┐
//! ┌ Active faults ─────────────────────────────────────────────────────┐
//! ┌ Recent XIDs on <node> ─────────────────────────────────────────────┐
//! ┌ Log ───────────────────────────────────────────────────────────────┐
//! status / key hints ─────────────────────────────────────────────────
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::{clock, fit};
use crate::cluster::ledger;
use crate::cluster::nodes::{GpuNode, RECENT_XIDS};
use crate::dashboard::app::App;
use crate::dashboard::cluster::{ClusterView, Focus, LogKind};
use crate::dashboard::keys::{Context, Intent};
use crate::output::plural;

/// At most this many lines of an error are shown above the nodes (the log keeps the whole message).
const ERROR_LINES: usize = 4;

/// Where each area of the cluster view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterAreas {
    /// Title bar.
    pub title: Rect,
    /// The error box (zero height without an error).
    pub error: Rect,
    /// The node table.
    pub nodes: Rect,
    /// The fault table.
    pub faults: Rect,
    /// The selected node's XID events.
    pub xids: Rect,
    /// The log.
    pub log: Rect,
    /// Status line.
    pub status: Rect,
}

/// Lays the view out in `area`: the node table as tall as its rows (at least 5 lines, at most 40 % of the screen),
/// the fault table likewise (at least 4 lines, at most 30 %), the XID events as tall as [`RECENT_XIDS`], the log
/// takes the rest.
pub fn layout(area: Rect, view: &ClusterView) -> ClusterAreas {
    let error_height = match &view.error {
        Some(error) => wrap(error, usize::from(area.width.saturating_sub(2))).len().min(ERROR_LINES) as u16 + 2,
        None => 0,
    };
    let most = (area.height.saturating_sub(2) * 2 / 5).max(5);
    let nodes_height = u16::try_from(view.nodes.len().saturating_add(3)).unwrap_or(u16::MAX).clamp(5, most);
    let most_faults = (area.height.saturating_sub(2) * 3 / 10).max(4);
    let faults_height =
        u16::try_from(view.faults.len().max(1).saturating_add(3)).unwrap_or(u16::MAX).clamp(4, most_faults);
    let [title, error, nodes, faults, xids, log, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(error_height),
        Constraint::Length(nodes_height),
        Constraint::Length(faults_height),
        Constraint::Length(RECENT_XIDS as u16 + 3),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    ClusterAreas { title, error, nodes, faults, xids, log, status }
}

/// The first node row shown in a table of `height` rows, so that the selection is visible.
fn first_row(view: &ClusterView, height: usize) -> usize {
    view.selected_index().unwrap_or(0).saturating_sub(height.saturating_sub(1))
}

/// Rows of the node table (inside the border, under the header).
fn table_rows(table: Rect) -> usize {
    usize::from(table.height.saturating_sub(3))
}

/// The node row under `at` in the node table at `table`, if any.
pub fn row_at(table: Rect, view: &ClusterView, at: Position) -> Option<usize> {
    let first_y = table.y + 2;
    if !table.contains(at) || at.y < first_y || at.y + 1 >= table.y + table.height {
        return None;
    }
    let index = usize::from(at.y - first_y) + first_row(view, table_rows(table));
    (index < view.nodes.len()).then_some(index)
}

/// The first fault row shown in a table of `height` rows, so that the selection is visible.
fn first_fault_row(view: &ClusterView, height: usize) -> usize {
    view.selected_fault_index().unwrap_or(0).saturating_sub(height.saturating_sub(1))
}

/// The fault row under `at` in the fault table at `table`, if any.
pub fn fault_row_at(table: Rect, view: &ClusterView, at: Position) -> Option<usize> {
    let first_y = table.y + 2;
    if !table.contains(at) || at.y < first_y || at.y + 1 >= table.y + table.height {
        return None;
    }
    let index = usize::from(at.y - first_y) + first_fault_row(view, table_rows(table));
    (index < view.faults.len()).then_some(index)
}

/// Draws the whole cluster view in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let areas = layout(area, &app.cluster);
    title(frame, app, areas.title);
    if let Some(error) = &app.cluster.error {
        let theme = app.theme;
        let lines: Vec<Line> = wrap(error, usize::from(areas.error.width.saturating_sub(2)))
            .into_iter()
            .take(ERROR_LINES)
            .map(|line| Line::styled(line, theme.error()))
            .collect();
        let retry = app.keys.keys_of(Context::Cluster, Intent::Refresh);
        let block = Block::bordered()
            .title(" Cluster unreachable ")
            .title_bottom(format!(" {retry} retries · the process view (v) works without a cluster "))
            .border_style(theme.error());
        frame.render_widget(Paragraph::new(lines).block(block), areas.error);
    }
    nodes(frame, app, areas.nodes);
    faults(frame, app, areas.faults);
    xids(frame, app, areas.xids);
    log(frame, app, areas.log);
    status(frame, app, areas.status);
}

fn title(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let view = &app.cluster;
    let mut spans = vec![
        Span::styled(" faultline ", theme.title()),
        Span::raw("│ cluster "),
        Span::raw(format!("│ {} ", view.server.as_deref().unwrap_or("not connected"))),
    ];
    if let Some(at) = view.listed_at {
        spans.push(Span::raw(format!("│ listed {} UTC ", hms(at))));
    }
    if let Some(busy) = &view.busy {
        spans.push(Span::styled(format!("│ {busy}… "), theme.warn()));
    }
    if app.read_only {
        spans.push(Span::styled("│ READ-ONLY ", theme.warn()));
    }
    let keys = &app.keys;
    let help = format!(
        "{} processes  {} help  {} quit ",
        keys.keys_of(Context::Cluster, Intent::SwitchView),
        keys.keys_of(Context::Cluster, Intent::Help),
        keys.keys_of(Context::Cluster, Intent::Quit).split('/').next().unwrap_or("q")
    );
    let used: usize = spans.iter().map(Span::width).sum();
    let gap = usize::from(area.width).saturating_sub(used + help.chars().count());
    spans.push(Span::raw(" ".repeat(gap)));
    spans.push(Span::styled(help, theme.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `HH:MM:SS` (UTC).
fn hms(at: SystemTime) -> String {
    let ns = at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    clock(ns).chars().take(8).collect()
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

/// The agent column: `ready`, the pod's phase (`pending`), `not ready` for a running pod that is not, or `none`.
fn agent_text(node: &GpuNode) -> String {
    match &node.agent {
        None => "none".to_string(),
        Some(agent) if agent.ready => "ready".to_string(),
        Some(agent) if agent.phase == "Running" => "not ready".to_string(),
        Some(agent) => agent.phase.to_lowercase(),
    }
}

fn nodes(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let view = &app.cluster;
    let cordoned = view.nodes.iter().filter(|n| n.cordoned).count();
    let not_ready = view.nodes.iter().filter(|n| n.ready != Some(true)).count();
    let title = if view.listed_at.is_some() {
        format!(" GPU nodes ({}) · {cordoned} cordoned · {not_ready} not ready ", view.nodes.len())
    } else {
        " GPU nodes ".to_string()
    };
    let block = Block::bordered().title(title).border_style(theme.border(view.focus == Focus::Nodes));
    let inner = usize::from(area.width.saturating_sub(2));
    // NODE READY CORDONED GPUS AGENT TAINTS; the name as wide as the longest (within reason), taints take the rest.
    let fixed = 1 + 5 + 1 + 8 + 1 + 4 + 1 + 9 + 1;
    let longest = view.nodes.iter().map(|n| n.name.chars().count()).max().unwrap_or(0);
    let name_width = longest.clamp(4, 32).min(inner.saturating_sub(fixed + 6)).max(4);
    let taints_width = inner.saturating_sub(name_width + fixed);
    let mut lines = vec![Line::styled(
        format!("{:<name_width$} {:<5} {:<8} {:>4} {:<9} {}", "NODE", "READY", "CORDONED", "GPUS", "AGENT", "TAINTS"),
        theme.header(),
    )];
    if view.nodes.is_empty() {
        let hint = match (&view.error, view.listed_at) {
            (Some(_), _) => "No nodes listed: the cluster did not answer (see above).",
            (None, Some(_)) => "No GPU nodes: none is labelled nvidia.com/gpu.present=true.",
            (None, None) => "Waiting for the cluster…",
        };
        lines.push(Line::styled(hint, theme.dim()));
    }
    let height = table_rows(area);
    let first = first_row(view, height);
    for (index, node) in view.nodes.iter().enumerate().skip(first).take(height) {
        let selected = view.selected_index() == Some(index) && view.focus == Focus::Nodes;
        let ready = node.ready.map_or("?", yes_no);
        let agent = agent_text(node);
        let taints = if node.taints.is_empty() { "-".to_string() } else { node.taints.join(", ") };
        let gpus = node.gpus.map_or("?".to_string(), |g| g.to_string());
        let cells = [
            (format!("{:<name_width$} ", fit(&node.name, name_width)), Style::new()),
            (format!("{ready:<5} "), if node.ready == Some(true) { Style::new() } else { theme.error() }),
            (format!("{:<8} ", yes_no(node.cordoned)), if node.cordoned { theme.warn() } else { Style::new() }),
            (format!("{gpus:>4} "), Style::new()),
            (format!("{agent:<9} "), if agent == "ready" { Style::new() } else { theme.error() }),
            (fit(&taints, taints_width), if node.taints.is_empty() { theme.dim() } else { Style::new() }),
        ];
        let spans: Vec<Span> = cells
            .into_iter()
            .map(|(text, style)| Span::styled(text, if selected { style.patch(theme.selected()) } else { style }))
            .collect();
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn faults(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let view = &app.cluster;
    let now = (app.clock)();
    let focused = view.focus == Focus::Faults;
    let ids = {
        let mut ids: Vec<&str> = view.faults.iter().map(|f| f.fault_id.as_str()).collect();
        ids.dedup();
        ids.len()
    };
    let title = match view.faults_listed_at {
        Some(_) => format!(" Active faults ({ids}) · {} object{} ", view.faults.len(), plural(view.faults.len())),
        None => " Active faults ".to_string(),
    };
    let keys = &app.keys;
    let mut block = Block::bordered().title(title).border_style(theme.border(focused));
    if let Some(note) = view.fault_notes.first() {
        block = block.title_bottom(Line::styled(format!(" note: {note} "), theme.dim()));
    } else if !focused {
        let tab = keys.keys_of(Context::Cluster, Intent::NextPane);
        block = block.title_bottom(Line::styled(format!(" {tab} selects a fault "), theme.dim()));
    }
    let inner = usize::from(area.width.saturating_sub(2));
    let (id_width, kind_width, ends_width) = (15, 10, 8);
    let object_width = view
        .faults
        .iter()
        .map(|f| object_text(f).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 40)
        .min(inner.saturating_sub(id_width + kind_width + ends_width + 4 + 10));
    let what_width = inner.saturating_sub(id_width + kind_width + ends_width + object_width + 4);
    let mut lines = vec![Line::styled(
        format!(
            "{:<id_width$} {:<kind_width$} {:<ends_width$} {:<object_width$} {}",
            "FAULT", "KIND", "ENDS IN", "OBJECT", "WHAT"
        ),
        theme.header(),
    )];
    if view.faults.is_empty() {
        let hint = match (&view.faults_error, view.faults_listed_at) {
            (Some(error), _) => format!("Cannot list the faults: {error}"),
            (None, Some(_)) => format!(
                "No active faults ({} partition, {} shim, {} arm, {} XID).",
                keys.keys_of(Context::Cluster, Intent::CreatePartition),
                keys.keys_of(Context::Cluster, Intent::RolloutShim),
                keys.keys_of(Context::Cluster, Intent::ArmNode),
                keys.keys_of(Context::Cluster, Intent::InjectXid)
            ),
            (None, None) => "Waiting for the cluster…".to_string(),
        };
        let style = if view.faults_error.is_some() { theme.error() } else { theme.dim() };
        lines.push(Line::styled(fit(&hint, inner), style));
    }
    let height = table_rows(area);
    let first = first_fault_row(view, height);
    for (index, fault) in view.faults.iter().enumerate().skip(first).take(height) {
        let selected = focused && view.selected_fault_index() == Some(index);
        let ends = ledger::remaining(fault.expires_at.as_deref(), now);
        let ends_style = if ends == "expired" { theme.warn() } else { Style::new() };
        let kind = fault.kind.map_or("?".to_string(), |k| k.to_string());
        let cells = [
            (format!("{:<id_width$} ", fit(&fault.fault_id, id_width)), Style::new()),
            (format!("{:<kind_width$} ", fit(&kind, kind_width)), theme.fault()),
            (format!("{:<ends_width$} ", fit(&ends, ends_width)), ends_style),
            (format!("{:<object_width$} ", fit(&object_text(fault), object_width)), Style::new()),
            (fit(&fault.summary, what_width), theme.dim()),
        ];
        let spans: Vec<Span> = cells
            .into_iter()
            .map(|(text, style)| Span::styled(text, if selected { style.patch(theme.selected()) } else { style }))
            .collect();
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `Kind/namespace/name` (or `Kind/name` for cluster-wide objects).
fn object_text(fault: &crate::cluster::faults::Fault) -> String {
    match &fault.namespace {
        Some(namespace) => format!("{}/{namespace}/{}", fault.object_kind, fault.name),
        None => format!("{}/{}", fault.object_kind, fault.name),
    }
}

fn xids(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let Some(node) = app.cluster.selected_node() else {
        let block = Block::bordered().title(" Recent XIDs ");
        frame.render_widget(Paragraph::new(Line::styled("No node selected.", theme.dim())).block(block), area);
        return;
    };
    let block = Block::bordered().title(format!(" Recent XIDs on {} (newest first) ", node.name));
    let inner = usize::from(area.width.saturating_sub(2));
    let fault_width = node.recent_xids.iter().filter_map(|x| x.fault_id.as_ref()).map(|f| f.len()).max().unwrap_or(0);
    let fault_width = fault_width.clamp(5, 24);
    let time_width = 20;
    let message_width = inner.saturating_sub(time_width + 1 + 4 + 1 + fault_width + 1);
    let mut lines = vec![Line::styled(
        format!("{:<time_width$} {:>4} {:<fault_width$} {}", "TIME (UTC)", "XID", "FAULT", "MESSAGE"),
        theme.header(),
    )];
    if node.recent_xids.is_empty() {
        let inject = app.keys.keys_of(Context::Cluster, Intent::InjectXid);
        lines.push(Line::styled(format!("No XID injected here recently ({inject} injects one)."), theme.dim()));
    }
    for event in &node.recent_xids {
        let xid = event.xid.map_or("?".to_string(), |x| x.to_string());
        // faultline's messages end with the node and the fault id, both in columns of their own.
        let suffix = format!(" of node {} by faultline", node.name);
        let message = event.message.split(&suffix).next().unwrap_or(&event.message);
        let time = event.time.as_deref().unwrap_or("-");
        lines.push(Line::from(vec![
            Span::raw(format!("{:<time_width$} ", fit(time, time_width))),
            Span::styled(format!("{xid:>4} "), theme.fault()),
            Span::raw(format!("{:<fault_width$} ", fit(event.fault_id.as_deref().unwrap_or("-"), fault_width))),
            Span::raw(fit(message, message_width)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn log(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let block = Block::bordered().title(" Log ");
    let width = usize::from(area.width.saturating_sub(2));
    let height = usize::from(area.height.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for entry in &app.cluster.log {
        let style = match entry.kind {
            LogKind::Info => Style::new(),
            LogKind::Waiting => theme.dim(),
            LogKind::Ok => theme.ok(),
            LogKind::Error => theme.error(),
        };
        lines.extend(wrap(&entry.text, width).into_iter().map(|line| Line::styled(line, style)));
    }
    let skip = lines.len().saturating_sub(height);
    frame.render_widget(Paragraph::new(lines.split_off(skip)).block(block), area);
}

fn status(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let line = if let Some(status) = &app.status {
        // Messages can quote names read from segments (or a cluster): escaped like every such name.
        let text = crate::output::escape_controls(&status.text);
        Line::styled(format!(" {text}"), if status.error { theme.error() } else { theme.ok() })
    } else {
        let keys = &app.keys;
        let hint = |intent, what: &str| format!("{} {what}", keys.keys_of(Context::Cluster, intent));
        let hints = [
            hint(Intent::InjectXid, "XID"),
            hint(Intent::InjectSignal, "signal"),
            hint(Intent::CreatePartition, "partition"),
            hint(Intent::RolloutShim, "shim"),
            hint(Intent::ArmNode, "arm"),
            hint(Intent::RecoverFault, "recover"),
            hint(Intent::NextPane, "nodes/faults"),
            hint(Intent::Refresh, "refresh"),
            hint(Intent::SwitchView, "processes"),
        ];
        Line::styled(format!(" {}", hints.join("  ")), theme.dim())
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// `text` in lines of at most `width` characters, broken between words where possible.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let used = line.chars().count();
            let needed = word.chars().count() + usize::from(used > 0);
            if used + needed <= width {
                if used > 0 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line is cut.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_between_words_and_cuts_long_words() {
        assert_eq!(wrap("cannot list nodes here", 10), ["cannot", "list nodes", "here"]);
        assert_eq!(wrap("abcdefghijkl x", 5), ["abcde", "fghij", "kl x"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
