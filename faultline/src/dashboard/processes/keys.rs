//! The process view's main-screen keys ([`Context::Main`]): panes, scrolling, freeze, the changes made to the
//! selected process in one key (injection, recording, reset, clean), and opening the editor and the dump / replay
//! dialogs. The list's own intents (filter, sort) go to [`ProcessList::on_intent`](super::list::ProcessList).
//!
//! These are methods of [`App`]: a key here moves between panes that the App lays out and sends jobs through its
//! outbox. Keys inside a dialog are the dialog's own (`on_key` of [`Editor`], [`DumpDialog`], [`ReplayDialog`]).

use crossterm::event::KeyEvent;

use super::dump::DumpDialog;
use super::editor::Editor;
use super::replay::ReplayDialog;
use super::sampler::{Job, NodeId};
use crate::actions::{Change, Switch};
use crate::dashboard::app::{App, Overlay, Pane};
use crate::dashboard::keys::{Context, Intent};
use crate::request::Request;
use crate::targets::Selection;

impl App {
    /// A key on the process view with no dialog open and no filter being typed.
    pub(in crate::dashboard) fn on_main_key(&mut self, event: &KeyEvent) {
        let Some(intent) = self.keys.intent(Context::Main, event) else { return };
        let page = self.list_height();
        if self.list.on_intent(intent, &self.snapshot.rows, page) {
            return;
        }
        let page = page as isize;
        match intent {
            Intent::Quit => self.quit = true,
            Intent::Help => self.overlay = Overlay::Help(0),
            Intent::NextPane => self.pane = self.pane.step(1),
            Intent::PrevPane => self.pane = self.pane.step(-1),
            Intent::Up => self.scroll(-1),
            Intent::Down => self.scroll(1),
            Intent::PageUp => self.scroll(-page),
            Intent::PageDown => self.scroll(page),
            Intent::Top => self.jump_to_end(false),
            Intent::Bottom => self.jump_to_end(true),
            Intent::Freeze => {
                self.frozen = !self.frozen;
                if !self.frozen {
                    self.snapshot = self.latest.clone();
                    self.reselect();
                }
            }
            Intent::Edit => self.open_editor(),
            Intent::ToggleEnabled => self.on_selected(Change::Enabled(Switch::Toggle)),
            Intent::ToggleRecording => self.on_selected(Change::Recording(Switch::Toggle)),
            Intent::ClearRecording => self.on_selected(Change::ClearRecording),
            Intent::Reset => self.on_selected(Change::Reset),
            Intent::Dump => match self.list.selected {
                Some(key) => self.overlay = Overlay::Dump(DumpDialog::new(key)),
                None => self.say("no process selected", true),
            },
            Intent::Replay => match self.list.selected {
                Some(key) => self.overlay = Overlay::Replay(ReplayDialog::new(key)),
                None => self.say("no process selected", true),
            },
            Intent::Clean => self.run(Job::Requests {
                requests: vec![Request::Clean],
                node: NodeId::LOCAL,
                selection: Selection::everything(),
                what: "clean".into(),
            }),
            Intent::Back => {
                self.list.filter.clear();
                self.status = None;
                self.reselect();
            }
            Intent::SwitchView => self.switch_view(),
            _ => {}
        }
    }

    /// Scrolls the focused pane: the recording tail and the hook table scroll, elsewhere the selection moves.
    pub(in crate::dashboard) fn scroll(&mut self, delta: isize) {
        match self.pane {
            Pane::Recording => {
                let len = self.snapshot.detail.as_ref().map_or(0, |d| d.tail.len());
                self.tail_scroll = (self.tail_scroll as isize - delta).clamp(0, len as isize) as usize;
            }
            Pane::Hooks => {
                let len = self.snapshot.detail.as_ref().map_or(0, |d| d.state.hooks.len());
                self.hooks_scroll = (self.hooks_scroll as isize + delta).clamp(0, len as isize) as usize;
            }
            _ => {
                let page = self.list_height();
                let moved = self.list.move_by(&self.snapshot.rows, page, delta);
                self.refocus(moved);
            }
        }
    }

    fn jump_to_end(&mut self, bottom: bool) {
        match self.pane {
            Pane::Recording => {
                self.tail_scroll = if bottom { 0 } else { self.snapshot.detail.as_ref().map_or(0, |d| d.tail.len()) };
            }
            Pane::Hooks => self.hooks_scroll = if bottom { usize::MAX / 2 } else { 0 },
            _ => {
                let page = self.list_height();
                let moved =
                    self.list.move_by(&self.snapshot.rows, page, if bottom { isize::MAX / 2 } else { isize::MIN / 2 });
                self.refocus(moved);
            }
        }
        if self.pane == Pane::Hooks {
            let len = self.snapshot.detail.as_ref().map_or(0, |d| d.state.hooks.len());
            self.hooks_scroll = self.hooks_scroll.min(len);
        }
    }

    /// A job on the selected process.
    fn on_selected(&mut self, change: Change) {
        let Some(key) = self.list.selected else {
            self.say("no process selected", true);
            return;
        };
        let what = change.describe().to_string();
        self.run(Job::Requests {
            requests: vec![Request::Change(change)],
            node: key.node,
            selection: Selection { pids: vec![key.pid], kind: Some(key.kind) },
            what,
        });
    }

    fn open_editor(&mut self) {
        let Some(row) = self.selected_row() else {
            self.say("no process selected", true);
            return;
        };
        let key = row.key;
        if self.read_only {
            let message = crate::Error::ReadOnly("open the editor").to_string();
            self.say(message, true);
            return;
        }
        if !row.alive {
            let message = crate::Error::NotRunning { pid: key.pid, kind: key.kind }.to_string();
            self.say(message, true);
            return;
        }
        match self.snapshot.detail.as_ref().filter(|d| d.key == key) {
            Some(detail) => self.overlay = Overlay::Editor(Box::new(Editor::open(detail))),
            None => self.say(format!("still reading pid {}; try again in a moment", key.pid), true),
        }
    }
}
