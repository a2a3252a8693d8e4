//! The strategy editor's error-code picker (Space on "Error pool"): the kind's table of codes, filtered by name,
//! number or description as it is typed; the editor adds or removes the code picked.

use crossterm::event::KeyEvent;
use shm_proto::codes::{self, CodeInfo};
use shm_proto::Kind;

use crate::dashboard::keys::{self, Context, Intent, KeyBindings};

/// Picks error codes by name from the kind's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// Which table.
    pub kind: Kind,
    /// Typed filter (name, number or description).
    pub filter: String,
    /// Index into [`Picker::visible`].
    pub cursor: usize,
}

/// What the editor does after the picker handled a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum PickerReply {
    /// The picker stays open.
    Open,
    /// Back to the editor.
    Close,
    /// Add this code to the pool, or remove it (the picker stays open).
    Pick(i32),
}

impl Picker {
    /// A picker over `kind`'s error codes.
    pub fn new(kind: Kind) -> Picker {
        Picker { kind, filter: String::new(), cursor: 0 }
    }

    /// The codes matching the filter.
    pub fn visible(&self) -> Vec<&'static CodeInfo> {
        let needle = self.filter.to_ascii_lowercase();
        codes::error_codes(self.kind)
            .filter(|info| {
                needle.is_empty()
                    || info.name.to_ascii_lowercase().contains(&needle)
                    || info.code.to_string() == needle
                    || info.description.to_ascii_lowercase().contains(&needle)
            })
            .collect()
    }

    /// The code under the cursor.
    pub fn current(&self) -> Option<&'static CodeInfo> {
        self.visible().get(self.cursor).copied()
    }

    /// Moves the cursor, clamped.
    pub fn move_cursor(&mut self, delta: isize) {
        let count = self.visible().len();
        self.cursor = (self.cursor as isize + delta).clamp(0, count.saturating_sub(1) as isize) as usize;
    }

    /// Types into the filter.
    pub fn type_char(&mut self, c: char) {
        self.filter.push(c);
        self.cursor = 0;
    }

    /// Deletes from the filter.
    pub fn delete_char(&mut self) {
        self.filter.pop();
        self.cursor = 0;
    }

    /// Handles a key ([`Context::Picker`]); other keys type into the filter.
    pub fn on_key(&mut self, keys: &KeyBindings, event: &KeyEvent) -> PickerReply {
        match keys.intent(Context::Picker, event) {
            Some(Intent::Up) => self.move_cursor(-1),
            Some(Intent::Down) => self.move_cursor(1),
            Some(Intent::PageUp) => self.move_cursor(-10),
            Some(Intent::PageDown) => self.move_cursor(10),
            Some(Intent::DeleteChar) => self.delete_char(),
            Some(Intent::Back) => return PickerReply::Close,
            Some(Intent::Toggle) => {
                if let Some(code) = self.current() {
                    return PickerReply::Pick(code.code);
                }
            }
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    self.type_char(c);
                }
            }
        }
        PickerReply::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_filters_by_name_number_and_description() {
        let mut picker = Picker::new(Kind::Ucx);
        "timed".chars().for_each(|c| picker.type_char(c));
        assert_eq!(picker.current().map(|c| c.name), Some("UCS_ERR_TIMED_OUT"));
        picker.filter = "-6".into();
        assert_eq!(picker.current().map(|c| c.name), Some("UCS_ERR_UNREACHABLE"));
        picker.move_cursor(100);
        assert_eq!(picker.cursor, 0);
    }
}
