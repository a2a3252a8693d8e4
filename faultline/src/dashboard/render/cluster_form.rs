//! The cluster dialogs — partition, shim, XID — over the cluster view (their rows with a hint or the error of each,
//! the first error or the confirmation question below, as each dialog's [`FormLook`](crate::dashboard::cluster::form::FormLook) says), and the plain y/n box
//! of the recover and arm questions.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::cluster::wrap;
use super::{centered, fit};
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::cluster::form::{ClusterForm, FormHints, Input};
use crate::dashboard::keys::{Context, Intent};

/// Draws the open partition or shim dialog, or the open question, over `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    match &app.overlay {
        Overlay::Partition(dialog) => form(frame, app, area, dialog.as_ref()),
        Overlay::Shim(dialog) => form(frame, app, area, dialog.as_ref()),
        Overlay::Xid(dialog) => form(frame, app, area, dialog.as_ref()),
        Overlay::Signal(dialog) => form(frame, app, area, dialog.as_ref()),
        Overlay::Ask(ask) => {
            let theme = app.theme;
            let popup_width = 90.min(area.width);
            let width = usize::from(popup_width.saturating_sub(3));
            let lines: Vec<Line> =
                wrap(&ask.question, width).into_iter().map(|l| Line::styled(format!(" {l}"), theme.warn())).collect();
            let popup = centered(area, popup_width, lines.len() as u16 + 2);
            frame.render_widget(Clear, popup);
            let block = Block::bordered()
                .title(ask.title.clone())
                .title_bottom(confirm_hints(app, "go ahead", "no, nothing done"))
                .border_style(theme.warn());
            frame.render_widget(Paragraph::new(lines).block(block), popup);
        }
        _ => {}
    }
}

fn confirm_hints(app: &App, yes: &str, no: &str) -> String {
    let keys = &app.keys;
    format!(
        " {} {yes} · {} {no} ",
        keys.keys_of(Context::Confirm, Intent::Yes),
        keys.keys_of(Context::Confirm, Intent::No)
    )
}

/// The key hints while a dialog is edited, named from the bindings.
fn edit_hints(app: &App, hints: FormHints) -> String {
    let keys = &app.keys;
    let apply = keys.key_name(Context::Form, Intent::Apply);
    let back = keys.key_name(Context::Form, Intent::Back);
    let fields = keys.key_pair(Context::Form, Intent::PrevField, Intent::NextField);
    let steps = keys.key_pair(Context::Form, Intent::Decrease, Intent::Increase);
    let toggle = keys.key_name(Context::Form, Intent::Toggle);
    match hints {
        FormHints::Choices => {
            format!(" {apply} confirm · {back} cancel · {fields} field · {steps}/{toggle} choice · type into text ")
        }
        FormHints::Steps => {
            format!(" {apply} confirm · {back} cancel · {fields} field · {steps} ±1 / catalog · {toggle} toggle ")
        }
    }
}

fn form<D: ClusterForm>(frame: &mut Frame, app: &App, area: Rect, dialog: &D) {
    let theme = app.theme;
    let look = dialog.look();
    let state = dialog.state();
    let popup_width = look.width.min(area.width);
    let width = usize::from(popup_width.saturating_sub(2));
    let outcome: Vec<(String, Style)> = match (state.confirming, dialog.question()) {
        (true, Ok(question)) => {
            wrap(&question, width.saturating_sub(1)).into_iter().map(|l| (l, theme.warn())).collect()
        }
        (_, Err(error)) => wrap(&format!("✗ {error}{}", look.error_suffix), width.saturating_sub(1))
            .into_iter()
            .map(|l| (l, theme.error()))
            .collect(),
        (false, Ok(_)) => vec![(look.ready.to_string(), theme.ok())],
    };
    let rows = dialog.rows();
    let popup = centered(area, popup_width, rows.len() as u16 + outcome.len() as u16 + 5);
    frame.render_widget(Clear, popup);
    let hints =
        if state.confirming { confirm_hints(app, look.yes, "back to the dialog") } else { edit_hints(app, look.hints) };
    let block = Block::bordered().title(look.title).title_bottom(hints).border_style(if state.confirming {
        theme.warn()
    } else {
        theme.border(true)
    });
    let mut lines = vec![Line::styled(fit(&look.intro, width), theme.dim()), Line::raw("")];
    let (label_width, value_width) = (look.label_width, look.value_width);
    let hint_width = width.saturating_sub(2 + label_width + value_width + 1);
    for (index, row) in rows.into_iter().enumerate() {
        let focused = index == state.cursor && !state.confirming;
        let typed = matches!(row.input, Input::Text | Input::Stepped);
        let value = if focused && typed { format!("{}▏", row.value) } else { row.value };
        let (hint, hint_style) = match row.check {
            Ok(hint) => (hint, theme.dim()),
            Err(_) if look.terse_row_errors => ("✗ invalid".to_string(), theme.error()),
            Err(error) => (format!("✗ {error}"), theme.error()),
        };
        lines.push(Line::from(vec![
            Span::styled(if focused { "▶ " } else { "  " }, theme.warn()),
            Span::styled(format!("{:<label_width$}", row.label), theme.header()),
            Span::styled(
                format!("{:<value_width$}", fit(&value, value_width)),
                if focused { theme.selected() } else { Style::new() },
            ),
            Span::raw(" "),
            Span::styled(fit(&hint, hint_width), hint_style),
        ]));
    }
    lines.push(Line::raw(""));
    lines.extend(outcome.into_iter().map(|(text, style)| Line::styled(format!(" {text}"), style)));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::dashboard::keys::KeyCombo;
    use crate::dashboard::render::theme::Theme;

    #[test]
    fn the_dialog_hints_name_the_bound_keys() {
        let mut app = App::new(false, None, Theme { color: false });
        let choices = edit_hints(&app, FormHints::Choices);
        assert_eq!(choices, " Enter confirm · Esc cancel · ↑↓ field · ←→/Space choice · type into text ");
        for binding in &mut app.keys.bindings {
            match (binding.context, binding.intent) {
                (Context::Form, Intent::Apply) => binding.keys = vec![KeyCombo::ctrl('s')],
                (Context::Form, Intent::Increase) => binding.keys = vec![KeyCombo::plain(KeyCode::End)],
                _ => {}
            }
        }
        assert_eq!(
            edit_hints(&app, FormHints::Steps),
            " Ctrl-S confirm · Esc cancel · ↑↓ field · ←/End ±1 / catalog · Space toggle "
        );
    }
}
