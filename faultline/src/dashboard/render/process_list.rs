//! The process list: one row per segment (a process and its shim) with its state and rates; sortable, filtered,
//! dead processes dimmed but still selectable (post-mortem).

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::{fit, rate};
use crate::dashboard::app::{App, Pane};
use crate::dashboard::keys::{Context, Intent};
use crate::dashboard::processes::list::{placed, pod_label, SortColumn};
use crate::dashboard::processes::remote::unreachable;
use crate::dashboard::processes::sampler::ProcessRow;
use crate::output::escape_controls;

/// Width of each column but the executable's, which takes the rest.
fn fixed_width(column: SortColumn) -> Option<u16> {
    match column {
        SortColumn::Node => Some(10),
        SortColumn::Pod => Some(28),
        SortColumn::Pid => Some(8),
        SortColumn::Exe => None,
        SortColumn::Kind => Some(4),
        SortColumn::State => Some(5),
        SortColumn::Enabled => Some(6),
        SortColumn::Mode => Some(7),
        SortColumn::CallsPerS => Some(9),
        SortColumn::FaultsPerS => Some(9),
        SortColumn::FaultPercent => Some(7),
        SortColumn::Recording => Some(3),
    }
}

/// `(column, x, width)` of every column inside a list drawn in `area` (NODE and POD when `placed`).
pub fn columns(area: Rect, placed: bool) -> Vec<(SortColumn, u16, u16)> {
    let inner = area.width.saturating_sub(2);
    let fixed: u16 = SortColumn::shown(placed).filter_map(fixed_width).sum();
    let gaps = SortColumn::shown(placed).count() as u16;
    let exe = inner.saturating_sub(fixed + gaps).max(8);
    let mut x = area.x + 1;
    SortColumn::shown(placed)
        .map(|column| {
            let width = fixed_width(column).unwrap_or(exe);
            let at = (column, x, width);
            x += width + 1;
            at
        })
        .collect()
}

/// The column under screen column `x` of a list drawn in `area`.
pub fn column_at(area: Rect, placed: bool, x: u16) -> Option<SortColumn> {
    columns(area, placed).into_iter().find(|&(_, start, width)| x >= start && x <= start + width).map(|(c, _, _)| c)
}

fn right(column: SortColumn) -> bool {
    matches!(column, SortColumn::Pid | SortColumn::CallsPerS | SortColumn::FaultsPerS | SortColumn::FaultPercent)
}

fn cell(text: &str, width: u16, right_aligned: bool) -> String {
    let width = usize::from(width);
    let text = fit(text, width);
    if right_aligned {
        format!("{text:>width$} ")
    } else {
        format!("{text:<width$} ")
    }
}

fn values(row: &ProcessRow, placed: bool) -> Vec<String> {
    let on_off = |on: bool| if on { "on" } else { "off" }.to_string();
    let state = if row.problem.is_some() {
        "bad"
    } else if row.alive {
        "alive"
    } else {
        "dead"
    };
    // Escaped before it is fitted to the column, so the row keeps its alignment.
    let exe = match &row.problem {
        Some(problem) => escape_controls(problem).into_owned(),
        None if row.in_container => format!("{} (container)", escape_controls(&row.exe)),
        None => escape_controls(&row.exe).into_owned(),
    };
    let mut values = Vec::with_capacity(SortColumn::ALL.len());
    if placed {
        values.push(escape_controls(row.node.as_deref().unwrap_or("local")).into_owned());
        values.push(escape_controls(&pod_label(row)).into_owned());
    }
    values.extend([
        row.key.pid.to_string(),
        exe,
        row.key.kind.name().to_string(),
        state.to_string(),
        on_off(row.enabled),
        row.mode.name().to_string(),
        rate(row.calls_per_s),
        rate(row.faults_per_s),
        row.fault_percent().map_or_else(|| "-".to_string(), |p| format!("{p:.1}%")),
        on_off(row.recording),
    ]);
    values
}

/// Draws the list in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let rows = app.visible_rows();
    let placed = placed(&app.snapshot.rows);
    let mut title = format!(" Processes ({} shown) ", rows.len());
    // Nodes whose session is down: named while few, counted when many (the title has one line).
    let down: Vec<_> = app.snapshot.nodes.iter().filter_map(|node| Some((&node.name, node.down.as_ref()?.0))).collect();
    if down.len() > 2 {
        title.push_str(&format!("· {} nodes unreachable (their rows dimmed) ", down.len()));
    } else {
        for (name, since) in down {
            title.push_str(&format!("· {} {} ", escape_controls(name), unreachable(since)));
        }
    }
    let block = Block::bordered().title(title).border_style(theme.border(app.pane == Pane::List));
    let columns = columns(area, placed);
    let mut lines = Vec::new();
    let header: String = columns
        .iter()
        .map(|&(column, _, width)| {
            let mark = if column == app.list.sort { column.arrow(app.list.descending) } else { "" };
            cell(&format!("{}{mark}", column.title()), width, right(column))
        })
        .collect();
    lines.push(Line::styled(header, theme.header()));
    if rows.is_empty() {
        let message = if app.snapshot.rows.is_empty() {
            "No faultline processes yet. Start one with LD_PRELOAD=…/libfaultline_ucx.so <program>, or run `faultline demo`."
                .to_string()
        } else {
            format!("No process matches the filter ({} clears it).", app.keys.key_name(Context::Main, Intent::Back))
        };
        lines.push(Line::styled(message, theme.dim()));
    }
    let height = usize::from(area.height.saturating_sub(3));
    for row in rows.iter().skip(app.list.offset).take(height) {
        let text: String = values(row, placed)
            .iter()
            .zip(&columns)
            .map(|(value, &(column, _, width))| cell(value, width, right(column)))
            .collect();
        let mut style = Style::new();
        if !row.alive || row.unreachable_since.is_some() {
            style = style.patch(theme.dim());
        }
        if Some(row.key) == app.list.selected {
            style = style.patch(theme.selected());
        }
        let mut spans = vec![Span::styled(text, style)];
        if row.enabled && row.alive && row.unreachable_since.is_none() && Some(row.key) != app.list.selected {
            // Injection on: the mode column in the warning style, so armed processes stand out.
            spans = split_highlight(&spans[0].content, &columns, style, theme.warn());
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Re-styles the INJECT cell of a formatted row.
fn split_highlight(
    text: &str,
    columns: &[(SortColumn, u16, u16)],
    base: Style,
    highlight: Style,
) -> Vec<Span<'static>> {
    let Some(&(_, x, width)) = columns.iter().find(|(c, _, _)| *c == SortColumn::Enabled) else {
        return vec![Span::styled(text.to_string(), base)];
    };
    let start = usize::from(x.saturating_sub(columns[0].1));
    let chars: Vec<char> = text.chars().collect();
    let end = (start + usize::from(width)).min(chars.len());
    let start = start.min(end);
    vec![
        Span::styled(chars[..start].iter().collect::<String>(), base),
        Span::styled(chars[start..end].iter().collect::<String>(), base.patch(highlight)),
        Span::styled(chars[end..].iter().collect::<String>(), base),
    ]
}
