//! Styles. With `NO_COLOR` set (to anything but the empty string) no colour is used at all: only bold, dim and
//! reverse video, which every terminal has, tell things apart.

use ratatui::style::{Color, Modifier, Style};

/// The dashboard's styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Use colours.
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set and not empty (<https://no-color.org>).
    pub fn from_env() -> Theme {
        Theme { color: !matches!(std::env::var_os("NO_COLOR"), Some(value) if !value.is_empty()) }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// The title bar.
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Column headers and labels.
    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Dead processes, hints.
    pub fn dim(self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    /// Injected faults.
    pub fn fault(self) -> Style {
        if self.color {
            self.fg(Color::Red)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    /// Passed calls.
    pub fn pass(self) -> Style {
        self.fg(Color::Green)
    }

    /// The calls line of the chart.
    pub fn calls(self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Errors in the status line and invalid fields.
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Success messages and valid fields.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Emphasis (injection on, recording on, frozen).
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// A pane's border: highlighted when it has the focus.
    pub fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }
}
