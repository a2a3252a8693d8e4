//! Drawing: one file per screen area, each a `render(frame, &App, area)` that only reads the model. This file lays
//! the screen out ([`layout`], also used to map mouse clicks) and draws the title and status lines.
//!
//! ```text
//! title ─────────────────────────────────────────────────────────────
//! process list (pid, executable, kind, state, inject, mode, rates, %, rec)
//! ┌ rates chart ─────────────────────┐┌ recording tail ─────────────┐
//! ├ strategy ─────┐┌ hooks ──────────┤│                             │
//! └───────────────┘└─────────────────┘└─────────────────────────────┘
//! status / key hints ────────────────────────────────────────────────
//! ```
//!
//! The cluster view (`v`) replaces all of it: [`cluster`].

pub mod cluster;
pub mod cluster_form;
pub mod dialogs;
pub mod editor;
pub mod help;
pub mod process_list;
pub mod process_view;
pub mod recording;
pub mod theme;
pub mod too_small;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, Overlay, View};
use super::keys::{Context, Intent};

/// The smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 80;
/// The smallest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 24;

/// Where each area of the main screen is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Title bar.
    pub title: Rect,
    /// Process list.
    pub list: Rect,
    /// Chart, strategy and hooks together.
    pub view: Rect,
    /// Rate chart.
    pub chart: Rect,
    /// Strategy.
    pub strategy: Rect,
    /// Per-hook table.
    pub hooks: Rect,
    /// Recording tail.
    pub recording: Rect,
    /// Status line.
    pub status: Rect,
}

/// Lays out the main screen in `area` for a list of `rows` processes: the list is as tall as its rows (at least 6
/// lines, at most 40 % of the screen), the process view and the recording tail take the rest.
pub fn layout(area: Rect, rows: usize) -> Areas {
    let most = (area.height.saturating_sub(2) * 2 / 5).max(6);
    let list_height = u16::try_from(rows.saturating_add(3)).unwrap_or(u16::MAX).clamp(6, most);
    let [title, list, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(list_height),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let [view, recording] = Layout::horizontal([Constraint::Fill(5), Constraint::Fill(4)]).areas(body);
    let (chart, strategy, hooks) = process_view::areas(view);
    Areas { title, list, view, chart, strategy, hooks, recording, status }
}

/// Draws the whole screen.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small::render(frame, app, area);
        return;
    }
    if app.view == View::Cluster {
        cluster::render(frame, app, area);
    } else {
        let areas = layout(area, app.visible_rows().len());
        title(frame, app, areas.title);
        process_list::render(frame, app, areas.list);
        process_view::render(frame, app, areas.view);
        recording::render(frame, app, areas.recording);
        status(frame, app, areas.status);
    }
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help(_) => help::render(frame, app, area),
        Overlay::Editor(_) => editor::render(frame, app, area),
        Overlay::Dump(_) | Overlay::Replay(_) => dialogs::render(frame, app, area),
        Overlay::Xid(_) | Overlay::Signal(_) | Overlay::Partition(_) | Overlay::Shim(_) | Overlay::Ask(_) => {
            cluster_form::render(frame, app, area)
        }
    }
}

fn title(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let rows = &app.snapshot.rows;
    let dead = rows.iter().filter(|r| !r.alive).count();
    let mut spans = vec![
        Span::styled(" faultline ", theme.title()),
        Span::raw(format!("│ {} process{} ({dead} dead) ", rows.len(), if rows.len() == 1 { "" } else { "es" })),
        Span::raw(format!("│ sort {} {} ", app.list.sort.title(), app.list.sort.arrow(app.list.descending))),
    ];
    if !app.list.filter.is_empty() {
        spans.push(Span::raw(format!("│ filter \"{}\" ", app.list.filter)));
    }
    if app.frozen {
        spans.push(Span::styled("│ FROZEN (f) ", theme.warn()));
    }
    if app.read_only {
        spans.push(Span::styled("│ READ-ONLY ", theme.warn()));
    }
    let help = format!(
        "{} help  {} quit ",
        app.keys.keys_of(Context::Main, Intent::Help),
        app.keys.key_name(Context::Main, Intent::Quit)
    );
    let used: usize = spans.iter().map(Span::width).sum();
    let gap = usize::from(area.width).saturating_sub(used + help.chars().count());
    spans.push(Span::raw(" ".repeat(gap)));
    spans.push(Span::styled(help, theme.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let line = if app.list.filtering {
        Line::from(vec![
            Span::styled("/", theme.header()),
            Span::raw(format!("{}▏", app.list.filter)),
            Span::styled(
                format!(
                    "  {} keep · {} clear",
                    app.keys.key_name(Context::Filter, Intent::Apply),
                    app.keys.key_name(Context::Filter, Intent::Back)
                ),
                theme.dim(),
            ),
        ])
    } else if let Some(status) = &app.status {
        // Messages can quote names read from segments (or a cluster): escaped like every such name.
        let text = crate::output::escape_controls(&status.text);
        Line::styled(format!(" {text}"), if status.error { theme.error() } else { theme.ok() })
    } else {
        let keys = &app.keys;
        let hint = |intent, what: &str| format!("{} {what}", keys.keys_of(Context::Main, intent));
        let hints = [
            hint(Intent::Edit, "edit"),
            hint(Intent::ToggleEnabled, "on/off"),
            hint(Intent::ToggleRecording, "record"),
            hint(Intent::Dump, "dump"),
            hint(Intent::Replay, "replay"),
            hint(Intent::Filter, "filter"),
            hint(Intent::SortNext, "sort"),
            hint(Intent::Freeze, "freeze"),
            format!("{} pane", keys.key_name(Context::Main, Intent::NextPane)),
            hint(Intent::SwitchView, "cluster"),
        ];
        Line::styled(format!(" {}", hints.join("  ")), theme.dim())
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate for a narrow column: `0.0`, `12.5`, `2,500`, `1.25M`.
pub fn rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1000.0 {
        thousands(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

/// `text` cut to `width` characters, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

/// A rectangle of at most `width` × `height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(area.x + (area.width - width) / 2, area.y + (area.height - height) / 2, width, height)
}

/// `HH:MM:SS.mmm` (UTC) of a wall-clock time in ns since the epoch.
pub fn clock(wall_ns: u64) -> String {
    let ms = wall_ns / 1_000_000;
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}.{:03}", (s / 3600) % 24, (s / 60) % 60, s % 60, ms % 1000)
}
