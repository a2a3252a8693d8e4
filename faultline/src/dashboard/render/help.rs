//! The `?` overlay: every key binding, generated from [`crate::dashboard::keys::KeyBindings`], so it always lists
//! every key the dashboard understands.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::keys::{Context, Intent, KeyBindings};

/// The help text, one line per binding, grouped by context.
pub fn lines(keys: &KeyBindings) -> Vec<(bool, String)> {
    let mut lines = Vec::new();
    for context in Context::ALL {
        if !lines.is_empty() {
            lines.push((false, String::new()));
        }
        lines.push((true, context.title().to_string()));
        for binding in keys.of(context) {
            let combos: Vec<String> = binding.keys.iter().map(ToString::to_string).collect();
            lines.push((false, format!("  {:<22} {}", combos.join(", "), binding.help)));
        }
    }
    lines.push((false, String::new()));
    lines.push((true, "Mouse".to_string()));
    lines.push((
        false,
        "  click                  select a process or node, sort by a column header, focus a pane".to_string(),
    ));
    lines.push((false, "  wheel                  scroll the pane under the pointer".to_string()));
    lines
}

/// Draws the help over `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Overlay::Help(scroll) = app.overlay else { return };
    let theme = app.theme;
    let all = lines(&app.keys);
    let popup = centered(area, 92, all.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let hints = format!(
        " {} scroll · {} close ",
        app.keys.key_pair(Context::Help, Intent::Up, Intent::Down),
        app.keys.keys_of(Context::Help, Intent::Back),
    );
    let block = Block::bordered().title(" Keys ").title_bottom(hints).border_style(theme.border(true));
    let visible = usize::from(popup.height.saturating_sub(2));
    let scroll = usize::from(scroll).min(all.len().saturating_sub(visible));
    let text: Vec<Line> = all
        .into_iter()
        .skip(scroll)
        .map(|(heading, text)| if heading { Line::styled(text, theme.header()) } else { Line::from(Span::raw(text)) })
        .collect();
    frame.render_widget(Paragraph::new(text).block(block), popup);
}
