//! The dump and replay dialogs: write the selected process's recording to a file in one of the seed's formats, or
//! play it back, exactly, in this or another process.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::keys::{Context, Intent};
use crate::dashboard::processes::dump::{format_name, DumpDialog};
use crate::dashboard::processes::replay::ReplayDialog;

/// Draws the open dialog over `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    // (label, value, typed into)
    let (title, intro, rows, cursor): (String, String, Vec<(&str, String, bool)>, usize) = match &app.overlay {
        Overlay::Dump(dialog) => (
            format!(" Dump the recording of pid {} ", dialog.key.pid),
            "summary: statistics · pattern: X/O and codes (for replay) · records: every call".to_string(),
            vec![
                (DumpDialog::FIELDS[0], format!("< {} >", format_name(dialog.format)), false),
                (DumpDialog::FIELDS[1], dialog.path.clone(), true),
                (DumpDialog::FIELDS[2], dialog.count.clone(), true),
            ],
            dialog.cursor,
        ),
        Overlay::Replay(dialog) => (
            format!(" Replay the recording of pid {} ", dialog.source.pid),
            "Plays each recorded call's pass/fault, codes included, from the target's next armed call.".to_string(),
            vec![
                (ReplayDialog::FIELDS[0], dialog.into.clone(), true),
                (ReplayDialog::FIELDS[1], format!("[{}]", if dialog.looping { "x" } else { " " }), false),
            ],
            dialog.cursor,
        ),
        _ => return,
    };
    let popup = centered(area, 90, rows.len() as u16 + 5);
    frame.render_widget(Clear, popup);
    let keys = &app.keys;
    let hints = format!(
        " {} confirm · {} cancel · {} field · {} choice ",
        keys.key_name(Context::Form, Intent::Apply),
        keys.key_name(Context::Form, Intent::Back),
        keys.key_pair(Context::Form, Intent::PrevField, Intent::NextField),
        keys.key_pair(Context::Form, Intent::Decrease, Intent::Increase),
    );
    let block = Block::bordered().title(title).title_bottom(hints).border_style(theme.border(true));
    let mut lines = vec![Line::styled(intro, theme.dim()), Line::raw("")];
    for (index, (label, value, text)) in rows.into_iter().enumerate() {
        let focused = index == cursor;
        let value = if focused && text { format!("{value}▏") } else { value };
        lines.push(Line::from(vec![
            Span::styled(if focused { "▶ " } else { "  " }, theme.warn()),
            Span::styled(format!("{label:<16}"), theme.header()),
            Span::styled(value, if focused { theme.selected() } else { Style::new() }),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use shm_proto::Kind;

    use super::*;
    use crate::dashboard::keys::KeyCombo;
    use crate::dashboard::processes::sampler::Key;
    use crate::dashboard::render::theme::Theme;

    fn footer(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 20)).expect("test terminal");
        terminal.draw(|frame| render(frame, app, frame.area())).expect("drawn");
        let buffer = terminal.backend().buffer();
        let rows = (0..buffer.area.height).map(|y| {
            (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>().trim().to_string()
        });
        rows.filter(|row| row.contains("cancel")).collect()
    }

    #[test]
    fn the_footer_names_the_bound_keys() {
        let mut app = App::new(false, None, Theme { color: false });
        app.overlay = Overlay::Dump(DumpDialog::new(Key::local(7, Kind::Ucx)));
        assert!(footer(&app).contains("Enter confirm · Esc cancel · ↑↓ field · ←→ choice"), "{}", footer(&app));
        for binding in &mut app.keys.bindings {
            match (binding.context, binding.intent) {
                (Context::Form, Intent::Apply) => binding.keys = vec![KeyCombo::ctrl('s')],
                (Context::Form, Intent::Back) => binding.keys = vec![KeyCombo::char('q')],
                (Context::Form, Intent::Decrease) => binding.keys = vec![KeyCombo::plain(KeyCode::Home)],
                _ => {}
            }
        }
        assert!(footer(&app).contains("Ctrl-S confirm · q cancel · ↑↓ field · Home/→ choice"), "{}", footer(&app));
    }
}
