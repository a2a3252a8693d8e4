//! The recording pane: a live tail of the selected process's flight recorder (sequence, time, hook, thread,
//! X/O, code name), newest at the bottom; scrolled back with the keys or the wheel.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use shm_proto::config;

use super::process_view::detail;
use super::{clock, fit, thousands};
use crate::dashboard::app::{App, Pane};
use crate::dashboard::keys::{Context, Intent};
use crate::output::escape_controls;

/// Draws the tail in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let keys = &app.keys;
    let Some(detail) = detail(app) else {
        let block = Block::bordered().title(" Recording ").border_style(theme.border(app.pane == Pane::Recording));
        frame.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    let recording = detail.state.recording;
    let title = format!(
        " Recording {} · {} recorded · {} overwritten{} ",
        if recording { "on" } else { "off" },
        thousands(detail.recorded),
        thousands(detail.missed),
        if app.tail_scroll > 0 { format!(" · {} newer below", app.tail_scroll) } else { String::new() }
    );
    let block = Block::bordered().title(title).border_style(theme.border(app.pane == Pane::Recording));
    let inner = usize::from(area.width.saturating_sub(2));
    let height = usize::from(area.height.saturating_sub(3));
    let seq_width = detail.tail.last().map_or(3, |r| r.sequence.to_string().len()).max(3);
    let hook_width = 13;
    let thread_width = 7;
    let fixed = seq_width + 1 + 12 + 1 + hook_width + 1 + thread_width + 1 + 3 + 1;
    let code_width = inner.saturating_sub(fixed).max(4);
    let mut lines = vec![Line::styled(
        format!(
            "{:>seq_width$} {:<12} {:<hook_width$} {:>thread_width$} {:<3} {}",
            "SEQ", "TIME (UTC)", "HOOK", "THREAD", "X/O", "CODE"
        ),
        theme.header(),
    )];
    if detail.tail.is_empty() {
        let hint = if recording {
            "Waiting for armed calls…".to_string()
        } else {
            format!(
                "Nothing recorded. {} starts recording; {} dumps, {} replays.",
                keys.keys_of(Context::Main, Intent::ToggleRecording),
                keys.keys_of(Context::Main, Intent::Dump),
                keys.keys_of(Context::Main, Intent::Replay)
            )
        };
        lines.push(Line::styled(hint, theme.dim()));
    }
    let end = detail.tail.len().saturating_sub(app.tail_scroll);
    let start = end.saturating_sub(height);
    for record in &detail.tail[start..end] {
        let (mark, code, style) = if record.injected {
            let code = match record.code_name {
                Some(name) => format!("{name} ({})", record.code),
                None => record.code.to_string(),
            };
            ("X", code, theme.fault())
        } else {
            ("O", "pass".to_string(), Style::new())
        };
        let text = format!(
            "{:>seq_width$} {:<12} {:<hook_width$} {:>thread_width$} ",
            record.sequence,
            clock(record.wall_ns),
            fit(&escape_controls(config::short_hook_name(&record.hook)), hook_width),
            record.thread,
        );
        lines.push(Line::from(vec![
            Span::raw(text),
            Span::styled(format!("{mark:<3} "), style),
            Span::styled(fit(&code, code_width), if record.injected { style } else { theme.dim() }),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
