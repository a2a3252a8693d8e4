//! The message shown instead of the dashboard when the terminal is smaller than it can draw in.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{MIN_HEIGHT, MIN_WIDTH};
use crate::dashboard::app::App;

/// Draws the message in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let lines = vec![
        Line::styled("Terminal too small", app.theme.error()),
        Line::raw(format!("{}×{}: faultline needs at least {MIN_WIDTH}×{MIN_HEIGHT}.", area.width, area.height)),
        Line::raw("Enlarge the window, or press q to quit."),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let text_area = Rect::new(area.x, area.y + top, area.width, area.height - top);
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }), text_area);
}
