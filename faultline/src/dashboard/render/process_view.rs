//! The process view of the selected process: a live chart of calls/s and faults/s over the last five minutes, the
//! strategy in force in full, and the per-hook table. A dead process shows its last state (post-mortem).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph, Wrap};
use ratatui::Frame;
use shm_proto::config;

use super::{fit, rate, thousands};
use crate::dashboard::app::{App, Pane};
use crate::dashboard::processes::remote::unreachable;
use crate::dashboard::processes::sampler::{Detail, HISTORY_LEN, HISTORY_STEP_S};
use crate::output::escape_controls;
use crate::state::ProcessState;

/// Splits the view into chart (top), strategy (bottom left) and hooks (bottom right).
pub fn areas(view: Rect) -> (Rect, Rect, Rect) {
    let [chart, lower] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(view);
    let [strategy, hooks] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(lower);
    (chart, strategy, hooks)
}

/// The detail of the selected process, if the engine has sampled it.
pub fn detail(app: &App) -> Option<&Detail> {
    app.snapshot.detail.as_ref().filter(|d| Some(d.key) == app.list.selected)
}

/// Draws the view in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let (chart_area, strategy_area, hooks_area) = areas(area);
    let theme = app.theme;
    let block = |pane: Pane, title: String| Block::bordered().title(title).border_style(theme.border(app.pane == pane));
    let Some(detail) = detail(app) else {
        let message =
            if app.list.selected.is_some() { "Reading the process…" } else { "Select a process in the list." };
        for (pane, area, title) in [
            (Pane::Chart, chart_area, " Rates "),
            (Pane::Strategy, strategy_area, " Strategy "),
            (Pane::Hooks, hooks_area, " Hooks "),
        ] {
            frame.render_widget(
                Paragraph::new(Line::styled(message, theme.dim())).block(block(pane, title.into())),
                area,
            );
        }
        return;
    };
    chart(frame, app, detail, chart_area, block(Pane::Chart, chart_title(app, detail)));
    frame.render_widget(
        Paragraph::new(strategy_lines(app, &detail.state, strategy_area.width.saturating_sub(2)))
            .wrap(Wrap { trim: false })
            .block(block(Pane::Strategy, " Strategy ".into())),
        strategy_area,
    );
    hooks(frame, app, detail, hooks_area, block(Pane::Hooks, hooks_title(&detail.state)));
}

fn chart_title(app: &App, detail: &Detail) -> String {
    let (calls, faults) = detail.history.last().copied().unwrap_or_default();
    let state = &detail.state;
    // A cluster node's process: which node, and whether it is reachable.
    let node = match app.snapshot.nodes.get(usize::from(detail.key.node.0).wrapping_sub(1)) {
        Some(node) => match node.down {
            Some((since, _)) => format!(" on {} ({})", escape_controls(&node.name), unreachable(since)),
            None => format!(" on {}", escape_controls(&node.name)),
        },
        None => String::new(),
    };
    format!(
        " Rates of pid {}{node} ({}) · {} calls/s · {} faults/s{} ",
        state.pid,
        escape_controls(&state.exe),
        rate(calls),
        rate(faults),
        if state.alive { "" } else { " · exited (post-mortem)" }
    )
}

fn chart(frame: &mut Frame, app: &App, detail: &Detail, area: Rect, block: Block) {
    let theme = app.theme;
    let n = detail.history.len();
    let x_of = |i: usize| -((n - 1 - i) as f64) * HISTORY_STEP_S;
    let calls: Vec<(f64, f64)> = detail.history.iter().enumerate().map(|(i, &(c, _))| (x_of(i), c)).collect();
    let faults: Vec<(f64, f64)> = detail.history.iter().enumerate().map(|(i, &(_, f))| (x_of(i), f)).collect();
    let top = nice_ceiling(detail.history.iter().map(|&(c, _)| c).fold(0.0, f64::max) * 1.1);
    let span = HISTORY_LEN as f64 * HISTORY_STEP_S;
    let fault_marker = if theme.color { Marker::Braille } else { Marker::Dot };
    let datasets = vec![
        Dataset::default()
            .name("calls/s")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.calls())
            .data(&calls),
        Dataset::default()
            .name("faults/s")
            .marker(fault_marker)
            .graph_type(GraphType::Line)
            .style(theme.fault())
            .data(&faults),
    ];
    let minutes = (span / 60.0).round() as i64;
    let x_labels: Vec<Line> =
        vec![Line::raw(format!("-{minutes}m")), Line::raw(format!("-{}m", minutes as f64 / 2.0)), Line::raw("now")];
    let y_labels: Vec<Line> = [0.0, top / 2.0, top].iter().map(|v| Line::raw(rate(*v))).collect();
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(Axis::default().bounds([-span, 0.0]).labels(x_labels).style(theme.dim()))
        .y_axis(Axis::default().bounds([0.0, top]).labels(y_labels).style(theme.dim()))
        .legend_position(Some(LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)));
    frame.render_widget(chart, area);
}

/// The smallest 1/2/5·10^k at or above `value` (at least 1).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 1.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|&v| v >= value).unwrap_or(10.0 * magnitude)
}

fn label(text: &str) -> Span<'static> {
    Span::styled(format!("{text:<10}"), Style::new().add_modifier(ratatui::style::Modifier::BOLD))
}

fn strategy_lines(app: &App, s: &ProcessState, width: u16) -> Vec<Line<'static>> {
    let theme = app.theme;
    let on = |flag: bool, yes: &str, no: &str| {
        if flag {
            Span::styled(yes.to_string(), theme.warn())
        } else {
            Span::raw(no.to_string())
        }
    };
    let mut lines = vec![
        Line::from(vec![
            label("Process"),
            Span::raw(format!("{} {} ", escape_controls(&s.exe), s.kind)),
            if s.alive { Span::styled("alive", theme.ok()) } else { Span::styled("exited", theme.error()) },
        ]),
        Line::from(vec![
            label("Injection"),
            on(s.enabled, "enabled", "disabled"),
            Span::raw("   recording "),
            on(s.recording, "on", "off"),
        ]),
        Line::from(vec![label("Mode"), Span::raw(mode_text(s))]),
    ];
    if !s.pattern.is_empty() {
        lines.push(pattern_line(app, s, usize::from(width).saturating_sub(10)));
    }
    lines.extend([
        Line::from(vec![
            label("Prob."),
            Span::raw(format!("{}%", config::format_probability(s.probability_ppm))),
            Span::styled(if s.mode == "random" { "" } else { " (random mode only)" }, theme.dim()),
        ]),
        Line::from(vec![label("Seed"), Span::raw(format!("{:#x}", s.seed))]),
        Line::from(vec![label("Pool"), Span::raw(pool_text(s))]),
        Line::from(vec![
            label("Skip"),
            Span::raw(format!("{} calls   ", s.skip)),
            Span::styled("limit ", Style::new().add_modifier(ratatui::style::Modifier::BOLD)),
            Span::raw(if s.limit == 0 { "none".to_string() } else { format!("{} faults", s.limit) }),
        ]),
        Line::from(vec![
            label("Delay"),
            Span::raw(if s.delay_mode == "off" {
                "off".to_string()
            } else {
                format!("{}µs {}", s.delay_us, s.delay_mode)
            }),
        ]),
        Line::from(vec![label("Site"), Span::raw(s.site)]),
        Line::from(vec![label("Hooks"), Span::raw(format!("{}/{} armed", s.hooks_armed, s.hooks.len()))]),
        Line::from(vec![
            label("Calls"),
            Span::raw(format!("{} ({} armed)", thousands(s.calls), thousands(s.armed_calls))),
        ]),
        Line::from(vec![
            label("Faults"),
            Span::styled(thousands(s.faults), theme.fault()),
            Span::raw(format!(" = {:.1}% of armed calls", s.fault_percent)),
        ]),
    ]);
    lines
}

fn mode_text(s: &ProcessState) -> String {
    match s.mode {
        "pattern" => {
            let len = s.pattern.chars().count() as u64;
            if s.position < s.skip {
                format!("pattern, {len} positions; skipping {} more calls", s.skip - s.position)
            } else {
                let next = (s.position - s.skip) % len.max(1);
                format!("pattern, {len} positions; next call at position {} (call {})", next + 1, s.position + 1)
            }
        }
        "replay" => format!(
            "replay {} calls ({} faults) {}, at call {}",
            s.replay_length,
            s.replay_faults,
            if s.replay_loop { "looping" } else { "once" },
            s.position
        ),
        _ => format!("random {}%", config::format_probability(s.probability_ppm)),
    }
}

fn pool_text(s: &ProcessState) -> String {
    s.error_codes
        .iter()
        .map(|c| c.name.map_or_else(|| c.code.to_string(), |name| format!("{name}({})", c.code)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pattern around its cursor, the position of the next call highlighted.
fn pattern_line(app: &App, s: &ProcessState, width: usize) -> Line<'static> {
    let chars: Vec<char> = s.pattern.chars().collect();
    let len = chars.len().max(1);
    let active = s.mode == "pattern" && s.position >= s.skip;
    let cursor = if active { ((s.position - s.skip) % len as u64) as usize } else { usize::MAX };
    let width = width.max(8);
    let start = if chars.len() <= width || cursor == usize::MAX { 0 } else { cursor.saturating_sub(width / 2) };
    let end = (start + width).min(chars.len());
    let mut spans = vec![label("Pattern")];
    if start > 0 {
        spans.push(Span::styled("…", app.theme.dim()));
    }
    for (i, c) in chars.iter().enumerate().take(end).skip(start) {
        let style = if c == &'X' { app.theme.fault() } else { Style::new() };
        let style = if i == cursor { style.patch(app.theme.selected()) } else { style };
        spans.push(Span::styled(c.to_string(), style));
    }
    if end < chars.len() {
        spans.push(Span::styled("…", app.theme.dim()));
    }
    Line::from(spans)
}

fn hooks_title(s: &ProcessState) -> String {
    format!(" Hooks · {}/{} armed ", s.hooks_armed, s.hooks.len())
}

fn hooks(frame: &mut Frame, app: &App, detail: &Detail, area: Rect, block: Block) {
    let theme = app.theme;
    let inner = usize::from(area.width.saturating_sub(2));
    // ARM NAME CALLS FAULTS [CALLS/S FAULTS/S]; the name takes what is left, short names when full ones do not fit.
    let fixed = 3 + 1 + 1 + 9 + 1 + 8;
    let rates_width = 1 + 8 + 1 + 8;
    let show_rates = inner >= fixed + rates_width + 13;
    let name_width = inner.saturating_sub(fixed + if show_rates { rates_width } else { 0 }).max(6);
    let names: Vec<_> = detail.state.hooks.iter().map(|h| escape_controls(&h.name)).collect();
    let long_names = names.iter().all(|name| name.chars().count() <= name_width);
    let mut header = format!("ARM {:<name_width$} {:>9} {:>8}", "HOOK", "CALLS", "FAULTS");
    if show_rates {
        header.push_str(&format!(" {:>8} {:>8}", "CALLS/S", "FAULTS/S"));
    }
    let mut lines = vec![Line::styled(header, theme.header())];
    let height = usize::from(area.height.saturating_sub(3));
    for (i, (hook, name)) in detail.state.hooks.iter().zip(&names).enumerate().skip(app.hooks_scroll).take(height) {
        let name = if long_names { name } else { config::short_hook_name(name) };
        let mut text = format!(
            "{} {:<name_width$} {:>9} {:>8}",
            if hook.armed { "[x]" } else { "[ ]" },
            fit(name, name_width),
            fit(&thousands(hook.calls), 9),
            fit(&thousands(hook.faults), 8)
        );
        if show_rates {
            let r = detail.hook_rates.get(i).copied().unwrap_or_default();
            text.push_str(&format!(" {:>8} {:>8}", fit(&rate(r.calls_per_s), 8), fit(&rate(r.faults_per_s), 8)));
        }
        let style = if hook.armed { Style::new() } else { theme.dim() };
        lines.push(Line::styled(text, style));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
