//! What the partition, shim and XID dialogs share: a list of rows (typed text, a number or catalog entry that is
//! typed or stepped with ←/→, a choice cycled with ←/→, a checkbox), the focus, "the first key replaces a proposed
//! value", and the confirmation step. Each dialog says what its rows are, how it looks ([`FormLook`]) and what
//! request a valid draft stands for; [`ClusterForm`]'s provided methods do the editing, so the keys behave the same
//! in all of them, and one renderer draws them. The recover and arm questions, which have no fields, are an
//! [`Ask`].

use crate::cluster::action::ClusterRequest;

/// How a row is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Typed into.
    Text,
    /// Typed into, or stepped with ←/→ (by 10 with Shift): a number, a catalog entry.
    Stepped,
    /// One of a few values, cycled with ←/→ or Space.
    Choice,
    /// On / off, flipped with Space or ←/→.
    Toggle,
}

/// One row as the dialog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormRow {
    /// The label.
    pub label: &'static str,
    /// The value as shown (`< worker-worker >`, `[x]`, the typed text).
    pub value: String,
    /// How it is edited.
    pub input: Input,
    /// `Ok(hint)`, or `Err(why the value is invalid)`.
    pub check: Result<String, String>,
}

/// The editing state every form has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormState {
    /// The focused row.
    pub cursor: usize,
    /// The focused row was typed into since it got its value (the first key replaces a proposed value).
    pub touched: bool,
    /// Enter was pressed on a valid draft: the dialog asks `y/n`.
    pub confirming: bool,
}

/// How a dialog looks: everything the shared renderer draws that is not a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormLook {
    /// The box's title.
    pub title: String,
    /// The line above the rows.
    pub intro: String,
    /// The box's width at most.
    pub width: u16,
    /// The label column's width.
    pub label_width: usize,
    /// The value column's width.
    pub value_width: usize,
    /// Which key hints show while editing (named from the bindings when drawn).
    pub hints: FormHints,
    /// What `y` does, in the confirmation's key hints (`go ahead`, `inject`).
    pub yes: &'static str,
    /// The line shown when the draft is valid.
    pub ready: &'static str,
    /// Added after the first error (`; Enter injects nothing`).
    pub error_suffix: &'static str,
    /// An invalid row's hint says only `✗ invalid` (the first error is spelled out below the rows).
    pub terse_row_errors: bool,
}

/// What ←/→ and Space do in a dialog, for its key hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormHints {
    /// They pick a choice; text rows are typed into.
    Choices,
    /// ←/→ step a number or a catalog entry by one; Space toggles.
    Steps,
}

impl FormLook {
    /// The partition and shim dialogs' look: wide, with the hint or the whole error of every row.
    pub fn wide(title: &str, intro: &str) -> FormLook {
        FormLook {
            title: title.to_string(),
            intro: intro.to_string(),
            width: 100,
            label_width: 16,
            value_width: 22,
            hints: FormHints::Choices,
            yes: "go ahead",
            ready: "✓ Enter shows what will be done and asks y/n.",
            error_suffix: "",
            terse_row_errors: false,
        }
    }
}

/// A cluster dialog with fields and a confirmation step.
pub trait ClusterForm {
    /// How the status line begins when nothing was done (`no partition`, `not injected`).
    const NOT_DONE: &'static str;
    /// What the status line says when the dialog is closed with Esc.
    const CLOSED: &'static str;
    /// How the dialog looks.
    fn look(&self) -> FormLook;
    /// The shared editing state.
    fn state(&self) -> &FormState;
    /// The shared editing state, to change.
    fn state_mut(&mut self) -> &mut FormState;
    /// The rows shown now (they can depend on the values: a mode shows its own options).
    fn rows(&self) -> Vec<FormRow>;
    /// The text of row `index`, if it is typed into.
    fn text_mut(&mut self, index: usize) -> Option<&mut String>;
    /// ←/→ on a choice or a checkbox (`delta` is ±1), or on a stepped row (`delta` as pressed) at row `index`.
    fn step_row(&mut self, index: usize, delta: i64);
    /// The request a valid draft stands for; `Err` says what is wrong first.
    fn request(&self) -> Result<ClusterRequest, String>;
    /// The confirmation question, ending `y/n`; `Err` as [`ClusterForm::request`].
    fn question(&self) -> Result<String, String>;

    /// Moves the focus, wrapping.
    fn move_cursor(&mut self, delta: isize) {
        let len = self.rows().len().max(1) as isize;
        let state = self.state_mut();
        state.cursor = (state.cursor as isize + delta).rem_euclid(len) as usize;
        state.touched = false;
    }

    /// Typing into a text row (the first key replaces the proposed value); other rows ignore it.
    fn type_char(&mut self, c: char) {
        let (cursor, touched) = (self.state().cursor, self.state().touched);
        if let Some(text) = self.text_mut(cursor) {
            if !touched {
                text.clear();
            }
            text.push(c);
            self.state_mut().touched = true;
        }
    }

    /// Backspace.
    fn delete_char(&mut self) {
        let cursor = self.state().cursor;
        if let Some(text) = self.text_mut(cursor) {
            text.pop();
        }
        self.state_mut().touched = true;
    }

    /// Ctrl-U.
    fn clear_field(&mut self) {
        let cursor = self.state().cursor;
        if let Some(text) = self.text_mut(cursor) {
            text.clear();
        }
        self.state_mut().touched = true;
    }

    /// ←/→: the next / previous choice (Shift means the same), a checkbox flips, a stepped row moves by `delta`.
    fn step(&mut self, delta: i64) {
        let cursor = self.state().cursor;
        match self.rows().get(cursor).map(|row| row.input) {
            Some(Input::Stepped) => self.step_row(cursor, delta),
            Some(Input::Choice | Input::Toggle) => self.step_row(cursor, delta.signum()),
            Some(Input::Text) | None => {}
        }
        // A mode change can remove rows: keep the focus on one.
        let len = self.rows().len();
        let state = self.state_mut();
        state.cursor = state.cursor.min(len.saturating_sub(1));
        state.touched = false;
    }

    /// Space: flips a checkbox, cycles a choice; typed rows ignore it.
    fn toggle(&mut self) {
        let cursor = self.state().cursor;
        if self.rows().get(cursor).is_some_and(|row| matches!(row.input, Input::Choice | Input::Toggle)) {
            self.step(1);
        }
    }

    /// Whether the focused row takes typed text (Space is a character there, not a toggle).
    fn is_typed_row(&self) -> bool {
        self.rows().get(self.state().cursor).is_some_and(|row| row.input == Input::Text)
    }

    /// The first invalid row's label and why.
    fn first_error(&self) -> Option<(&'static str, String)> {
        self.rows().into_iter().find_map(|row| row.check.err().map(|error| (row.label, error)))
    }
}

/// `[x]` / `[ ]`.
pub fn checkbox(on: bool) -> String {
    format!("[{}]", if on { "x" } else { " " })
}

/// `< value >`.
pub fn choice(value: &str) -> String {
    format!("< {value} >")
}

/// The index after `at` moved by `delta` among `len` choices, wrapping.
pub fn cycle(at: usize, delta: i64, len: usize) -> usize {
    (at as i64 + delta).rem_euclid(len.max(1) as i64) as usize
}

/// A yes/no question with nothing to fill in: recover a fault, arm a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The box's title.
    pub title: String,
    /// The question, ending `y/n`.
    pub question: String,
    /// What `y` sends to the worker (the status line says its [`ClusterRequest::busy`]).
    pub request: ClusterRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_wraps_both_ways() {
        assert_eq!(cycle(0, -1, 4), 3);
        assert_eq!(cycle(3, 1, 4), 0);
        assert_eq!(cycle(1, 1, 4), 2);
        assert_eq!(cycle(0, 1, 0), 0, "no choices: stays");
    }
}
