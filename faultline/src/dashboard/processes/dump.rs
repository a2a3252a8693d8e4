//! The dump dialog (`d`): write the selected process's recording to a file in one of the seed's formats (summary,
//! pattern, records), optionally only its last N records. The job is the CLI's `dump` request.

use crossterm::event::KeyEvent;
use shm_proto::config;

use super::form::{cycle, step_count, Reply};
use super::sampler::{Job, Key};
use crate::dashboard::keys::{self, Context, Intent, KeyBindings};
use crate::recording::DumpFormat;
use crate::request::Request;
use crate::targets::Selection;

/// Writes a process's recording to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpDialog {
    /// Whose recording.
    pub key: Key,
    /// Which format.
    pub format: DumpFormat,
    /// The file.
    pub path: String,
    /// The user typed the path (it no longer follows the format).
    pub path_edited: bool,
    /// Only the last N records (empty: all).
    pub count: String,
    /// 0 format, 1 file, 2 count.
    pub cursor: usize,
}

impl DumpDialog {
    /// Field labels, in order.
    pub const FIELDS: [&'static str; 3] = ["Format", "File", "Last N records"];

    /// A dialog for `key`'s recording.
    pub fn new(key: Key) -> DumpDialog {
        let mut dialog = DumpDialog {
            key,
            format: DumpFormat::Pattern,
            path: String::new(),
            path_edited: false,
            count: String::new(),
            cursor: 0,
        };
        dialog.path = dialog.default_path();
        dialog
    }

    fn default_path(&self) -> String {
        format!("faultline-{}-{}.json", self.key.pid, format_name(self.format))
    }

    /// Next / previous format, or ±1 on the count.
    pub fn step(&mut self, delta: i64) {
        match self.cursor {
            0 => {
                self.format =
                    cycle(&[DumpFormat::Summary, DumpFormat::Pattern, DumpFormat::Records], self.format, delta);
                if !self.path_edited {
                    self.path = self.default_path();
                }
            }
            2 => {
                self.count =
                    step_count(if self.count.is_empty() { "0" } else { &self.count }, delta).unwrap_or_default()
            }
            _ => {}
        }
    }

    /// Types into the file or count field.
    pub fn type_char(&mut self, c: char) {
        match self.cursor {
            1 => {
                self.path.push(c);
                self.path_edited = true;
            }
            2 => self.count.push(c),
            _ => {}
        }
    }

    /// Deletes from the file or count field.
    pub fn delete_char(&mut self) {
        match self.cursor {
            1 => {
                self.path.pop();
                self.path_edited = true;
            }
            2 => {
                self.count.pop();
            }
            _ => {}
        }
    }

    /// Empties the file or count field.
    pub fn clear_field(&mut self) {
        match self.cursor {
            1 => {
                self.path.clear();
                self.path_edited = true;
            }
            2 => self.count.clear(),
            _ => {}
        }
    }

    /// The dump job; `Err` if a field is invalid.
    pub fn job(&self) -> Result<Job, String> {
        if self.path.trim().is_empty() {
            return Err("File: give a file name".to_string());
        }
        let count = if self.count.trim().is_empty() {
            None
        } else {
            Some(config::parse_count("count", &self.count).map_err(|e| e.to_string())?)
        };
        Ok(Job::Requests {
            requests: vec![Request::Dump { format: self.format, count, output: Some(self.path.trim().into()) }],
            node: self.key.node,
            selection: Selection { pids: vec![self.key.pid], kind: Some(self.key.kind) },
            what: "dump".to_string(),
        })
    }

    /// Handles a key ([`Context::Form`]): ←→ change the format or the count by one, other keys type.
    pub fn on_key(&mut self, keys: &KeyBindings, event: &KeyEvent) -> Reply {
        let fields = Self::FIELDS.len();
        match keys.intent(Context::Form, event) {
            Some(Intent::NextField) => self.cursor = (self.cursor + 1) % fields,
            Some(Intent::PrevField) => self.cursor = (self.cursor + fields - 1) % fields,
            Some(Intent::Decrease | Intent::DecreaseMore) => self.step(-1),
            Some(Intent::Increase | Intent::IncreaseMore | Intent::Toggle) => self.step(1),
            Some(Intent::ClearField) => self.clear_field(),
            Some(Intent::DeleteChar) => self.delete_char(),
            Some(Intent::Back) => return Reply::Closed(None),
            Some(Intent::Apply) => {
                return match self.job() {
                    Ok(job) => Reply::Run(job, None),
                    Err(message) => Reply::Refused(format!("not written: {message}")),
                }
            }
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    self.type_char(c);
                }
            }
        }
        Reply::Open
    }
}

/// The name of a dump format, as the CLI spells it.
pub fn format_name(format: DumpFormat) -> &'static str {
    match format {
        DumpFormat::Summary => "summary",
        DumpFormat::Pattern => "pattern",
        DumpFormat::Records => "records",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_proto::Kind;

    #[test]
    fn the_dump_path_follows_the_format_until_typed() {
        let mut dialog = DumpDialog::new(Key::local(42, Kind::Ucx));
        assert_eq!(dialog.path, "faultline-42-pattern.json");
        dialog.step(1);
        assert_eq!(dialog.path, "faultline-42-records.json");
        dialog.cursor = 2;
        dialog.type_char('x');
        assert!(dialog.job().is_err());
    }
}
