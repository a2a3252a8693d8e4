//! The strategy editor overlay: every setting of the selected process as a field, each validated as it is typed
//! (the parser's message beside it), changed fields marked `*`; and the error-code picker over it.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;
use shm_proto::layout::DelayMode;
use shm_proto::{codes, Mode};

use super::{centered, fit};
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::keys::{Context, Intent};
use crate::dashboard::processes::editor::{Editor, Field};
use crate::dashboard::processes::picker::Picker;
use crate::output::escape_controls;

/// Draws the editor (and its picker) over `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Overlay::Editor(editor) = &app.overlay else { return };
    let fields = editor.fields();
    let popup = centered(area, 96, fields.len() as u16 + 7);
    frame.render_widget(Clear, popup);
    let theme = app.theme;
    let keys = &app.keys;
    let apply = keys.key_name(Context::Form, Intent::Apply);
    let hints = format!(
        " {apply} apply · {} cancel · {} field · {} ±1 · {} ±10 · {} toggle/pick ",
        keys.key_name(Context::Form, Intent::Back),
        keys.key_pair(Context::Form, Intent::PrevField, Intent::NextField),
        keys.key_pair(Context::Form, Intent::Decrease, Intent::Increase),
        keys.key_pair(Context::Form, Intent::DecreaseMore, Intent::IncreaseMore),
        keys.key_name(Context::Form, Intent::Toggle),
    );
    let block = Block::bordered()
        .title(format!(" Edit {} ", editor.label))
        .title_bottom(hints)
        .border_style(theme.border(true));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let rows = usize::from(inner.height.saturating_sub(2)).max(1);
    let offset = editor.cursor.saturating_sub(rows - 1);
    let mut lines = Vec::new();
    let target = if editor.apply_to_all {
        format!("every running {} process", editor.key.kind.name())
    } else {
        format!("pid {} only", editor.key.pid)
    };
    lines.push(Line::styled(
        format!(" Changes go to {target}; every change shows in the process's next calls."),
        theme.dim(),
    ));
    let width = usize::from(inner.width);
    let focused_error = editor.check(editor.field()).err().map(|error| (editor.field(), error));
    lines.push(match (focused_error.or_else(|| editor.first_error()), editor.changes()) {
        (Some((field, error)), _) => {
            Line::styled(fit(&format!(" ✗ {}: {error}; {apply} changes nothing", field.label()), width), theme.error())
        }
        (None, Ok(changes)) if changes.is_empty() => Line::styled(" No change yet.", theme.dim()),
        (None, Ok(changes)) => Line::styled(format!(" ✓ {apply} applies {} change(s).", changes.len()), theme.ok()),
        (None, Err(error)) => Line::styled(fit(&format!(" ✗ {error}"), width), theme.error()),
    });
    let value_width = width.saturating_sub(20 + 2 + 26);
    for (index, field) in fields.iter().enumerate().skip(offset).take(rows) {
        lines.push(field_line(app, editor, *field, index == editor.cursor, value_width));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    if let Some(picker) = &editor.picker {
        render_picker(frame, app, editor, picker, area);
    }
}

fn check(on: bool) -> String {
    format!("[{}] {}", if on { "x" } else { " " }, if on { "on" } else { "off" })
}

fn choice(text: &str) -> String {
    format!("< {text} >")
}

fn field_line(app: &App, editor: &Editor, field: Field, focused: bool, value_width: usize) -> Line<'static> {
    let theme = app.theme;
    let d = &editor.draft;
    let i = &editor.initial;
    let text = |s: &str| {
        let shown: String = if s.chars().count() + 1 > value_width {
            let skip = s.chars().count() + 2 - value_width.max(2);
            format!("…{}", s.chars().skip(skip).collect::<String>())
        } else {
            s.to_string()
        };
        if focused {
            format!("{shown}▏")
        } else {
            shown
        }
    };
    let (value, dirty) = match field {
        Field::Enabled => (check(d.enabled), d.enabled != i.enabled),
        Field::Mode => (choice(d.mode.name()), d.mode != i.mode),
        Field::Probability => (text(&d.probability), d.probability != i.probability),
        Field::Pattern => {
            (text(&d.pattern), d.pattern != i.pattern || (d.mode == Mode::Pattern && i.mode != Mode::Pattern))
        }
        Field::Pool => {
            let names: Vec<String> = d
                .pool
                .iter()
                .map(|&c| codes::name_of(editor.key.kind, c).map_or_else(|| c.to_string(), |n| format!("{n}({c})")))
                .collect();
            (names.join(", "), d.pool != i.pool)
        }
        Field::Seed => (text(&d.seed), d.seed != i.seed),
        Field::Skip => (text(&d.skip), d.skip != i.skip),
        Field::Limit => (text(&d.limit), d.limit != i.limit),
        Field::DelayUs => (text(&d.delay_us), d.delay_us != i.delay_us),
        Field::DelayMode => (choice(delay_name(d.delay_mode)), d.delay_mode != i.delay_mode),
        Field::Site => (choice(d.site.name()), d.site != i.site),
        Field::Recording => (check(d.recording), d.recording != i.recording),
        Field::ApplyTo => (
            choice(if editor.apply_to_all { "every running process of this kind" } else { "this process" }),
            editor.apply_to_all,
        ),
        Field::Hook(h) => {
            let armed = d.armed.get(h).copied().unwrap_or(false);
            let name = editor.hook_names.get(h).map_or_else(String::new, |n| escape_controls(n).into_owned());
            (format!("[{}] {name}", if armed { "x" } else { " " }), i.armed.get(h) != d.armed.get(h))
        }
    };
    let label = match field {
        Field::Hook(0) => "Armed hooks",
        Field::Hook(_) => "",
        other => other.label(),
    };
    let (hint, hint_style) = match editor.check(field) {
        Ok(hint) => (hint, theme.dim()),
        Err(_) => ("✗ invalid".to_string(), theme.error()),
    };
    let marker = if dirty { "*" } else { " " };
    let value_style = if focused { theme.selected() } else { Style::new() };
    Line::from(vec![
        Span::styled(format!("{}{marker}", if focused { "▶" } else { " " }), theme.warn()),
        Span::styled(format!("{label:<18} "), theme.header()),
        Span::styled(fit(&value, value_width.max(8)), value_style),
        Span::raw("  "),
        Span::styled(hint, hint_style),
    ])
}

fn delay_name(mode: DelayMode) -> &'static str {
    mode.name()
}

fn render_picker(frame: &mut Frame, app: &App, editor: &Editor, picker: &Picker, area: Rect) {
    let theme = app.theme;
    let popup = centered(area, 90, area.height.saturating_sub(4).min(30));
    frame.render_widget(Clear, popup);
    let keys = &app.keys;
    let hints = format!(
        " {} add or remove · {} move · {} back ",
        keys.keys_of(Context::Picker, Intent::Toggle),
        keys.key_pair(Context::Picker, Intent::Up, Intent::Down),
        keys.key_name(Context::Picker, Intent::Back),
    );
    let block = Block::bordered()
        .title(format!(" Error pool: {} codes (type to filter) ", editor.key.kind.name()))
        .title_bottom(hints)
        .border_style(theme.border(true));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let visible = picker.visible();
    let rows = usize::from(inner.height.saturating_sub(3)).max(1);
    let offset = picker.cursor.saturating_sub(rows - 1);
    let width = usize::from(inner.width);
    let mut lines = vec![
        Line::from(vec![Span::styled("Filter: ", theme.header()), Span::raw(format!("{}▏", picker.filter))]),
        Line::styled(
            fit(
                &format!(
                    "Pool ({}): {}",
                    editor.draft.pool.len(),
                    editor.draft.pool.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
                ),
                width,
            ),
            theme.dim(),
        ),
    ];
    if visible.is_empty() {
        lines.push(Line::styled("No code matches the filter.", theme.dim()));
    }
    for (index, info) in visible.iter().enumerate().skip(offset).take(rows) {
        let picked = editor.draft.pool.contains(&info.code);
        let text =
            format!("[{}] {:<32} {:>5}  {}", if picked { "x" } else { " " }, info.name, info.code, info.description);
        let style = if index == picker.cursor { theme.selected() } else { Style::new() };
        lines.push(Line::styled(fit(&text, width), style));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
