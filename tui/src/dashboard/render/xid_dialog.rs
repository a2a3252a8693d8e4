//! The inject-XID dialog over the cluster view: the node's agent and GPUs, the fields with the catalog's name and
//! severity of the XID as it is typed, and, after Enter, the `y/n` question in place of the key hints.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::cluster::wrap;
use super::{centered, fit};
use crate::dashboard::app::{App, Overlay};
use crate::dashboard::cluster::xid_dialog::{XidDialog, XidField, WATCH_CHOICES};
use crate::dashboard::keys::{Context, Intent};

/// Draws the dialog over `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Overlay::Xid(dialog) = &app.overlay else { return };
    let theme = app.theme;
    let popup_width = 96.min(area.width);
    let width = usize::from(popup_width.saturating_sub(2));
    let outcome: Vec<(String, Style)> = match (dialog.confirming, dialog.question()) {
        (true, Ok(question)) => {
            wrap(&question, width.saturating_sub(1)).into_iter().map(|l| (l, theme.warn())).collect()
        }
        (_, Err(error)) => wrap(&format!("✗ {error}; Enter injects nothing"), width.saturating_sub(1))
            .into_iter()
            .map(|l| (l, theme.error()))
            .collect(),
        (false, Ok(_)) => vec![("✓ Enter asks for confirmation before anything is injected.".to_string(), theme.ok())],
    };
    let popup = centered(area, popup_width, XidField::ALL.len() as u16 + outcome.len() as u16 + 5);
    frame.render_widget(Clear, popup);
    let keys = &app.keys;
    let hints = if dialog.confirming {
        format!(
            " {} inject · {} back to the dialog ",
            keys.keys_of(Context::Confirm, Intent::Yes),
            keys.keys_of(Context::Confirm, Intent::No)
        )
    } else {
        " Enter confirm · Esc cancel · ↑↓ field · ←→ ±1 / catalog · Space toggle ".to_string()
    };
    let block = Block::bordered()
        .title(format!(" Inject an XID on node {} ", dialog.node.name))
        .title_bottom(hints)
        .border_style(if dialog.confirming { theme.warn() } else { theme.border(true) });
    let mut lines = vec![Line::styled(fit(&node_line(dialog), width), theme.dim()), Line::raw("")];
    let value_width = 14;
    let hint_width = width.saturating_sub(2 + 14 + value_width + 1);
    for (index, field) in XidField::ALL.into_iter().enumerate() {
        let focused = index == dialog.cursor && !dialog.confirming;
        let value = match field {
            XidField::Gpu => dialog.gpu.clone(),
            XidField::Xid => dialog.xid.clone(),
            XidField::Force => format!("[{}]", if dialog.force { "x" } else { " " }),
            XidField::Watch => match WATCH_CHOICES.get(dialog.watch).copied().flatten() {
                Some(seconds) => format!("< {seconds} s >"),
                None => "< off >".to_string(),
            },
        };
        let typed = matches!(field, XidField::Gpu | XidField::Xid);
        let value = if focused && typed { format!("{value}▏") } else { value };
        let (hint, hint_style) = match dialog.check(field) {
            Ok(hint) => (hint, theme.dim()),
            Err(_) => ("✗ invalid".to_string(), theme.error()),
        };
        lines.push(Line::from(vec![
            Span::styled(if focused { "▶ " } else { "  " }, theme.warn()),
            Span::styled(format!("{:<14}", field.label()), theme.header()),
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

/// What the dialog says about the node: its agent (the injection runs there), GPUs and cordon.
fn node_line(dialog: &XidDialog) -> String {
    let node = &dialog.node;
    let agent = match &node.agent {
        Some(agent) if agent.ready => format!("agent pod {} ready", agent.name),
        Some(agent) => format!("agent pod {} not ready ({}): the injection will fail", agent.name, agent.phase),
        None => "no faultline-node agent pod here: the injection will fail".to_string(),
    };
    let gpus = node.gpus.map_or("GPU count unknown".to_string(), |g| format!("{g} GPUs"));
    format!("{agent} · {gpus} · {}", if node.cordoned { "cordoned" } else { "not cordoned" })
}
