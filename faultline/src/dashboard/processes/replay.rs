//! The replay dialog (`p`): play the selected process's recording back, exactly, in this or another process, once or
//! in a loop. The job is carried out by the engine (`Job::ReplayFrom`).

use crossterm::event::KeyEvent;

use super::form::Reply;
use super::sampler::{Job, Key};
use crate::dashboard::keys::{self, Context, Intent, KeyBindings};

/// Replays a process's recording into it or another process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayDialog {
    /// Whose recording.
    pub source: Key,
    /// The pid that plays it, as typed.
    pub into: String,
    /// Loop instead of passing everything after the end.
    pub looping: bool,
    /// 0 into, 1 loop.
    pub cursor: usize,
}

impl ReplayDialog {
    /// Field labels, in order.
    pub const FIELDS: [&'static str; 2] = ["Into pid", "Loop"];

    /// A dialog replaying `source`'s recording into itself by default.
    pub fn new(source: Key) -> ReplayDialog {
        ReplayDialog { source, into: source.pid.to_string(), looping: false, cursor: 0 }
    }

    /// The replay job; `Err` if the pid is not a number.
    pub fn job(&self) -> Result<Job, String> {
        let into = self.into.trim().parse::<u32>().map_err(|_| format!("Into pid: '{}' is not a pid", self.into))?;
        Ok(Job::ReplayFrom { source: self.source, into, looping: self.looping })
    }

    /// Handles a key ([`Context::Form`]): on the pid other keys type, on the loop checkbox ←→ and Space flip it.
    pub fn on_key(&mut self, keys: &KeyBindings, event: &KeyEvent) -> Reply {
        match keys.intent(Context::Form, event) {
            Some(Intent::NextField | Intent::PrevField) => self.cursor = 1 - self.cursor.min(1),
            Some(Intent::Toggle | Intent::Increase | Intent::Decrease) if self.cursor == 1 => {
                self.looping = !self.looping;
            }
            Some(Intent::ClearField) if self.cursor == 0 => self.into.clear(),
            Some(Intent::DeleteChar) if self.cursor == 0 => {
                self.into.pop();
            }
            Some(Intent::Back) => return Reply::Closed(None),
            Some(Intent::Apply) => {
                return match self.job() {
                    Ok(job) => Reply::Run(job, None),
                    Err(message) => Reply::Refused(format!("not replayed: {message}")),
                }
            }
            _ => {
                if let (Some(c), 0) = (keys::typed_char(event), self.cursor) {
                    self.into.push(c);
                }
            }
        }
        Reply::Open
    }
}
