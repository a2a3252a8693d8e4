//! Key bindings: one [`KeyBindings`] value (with [`Default`]) lists every key the dashboard understands, per
//! [`Context`], with its help text. Input handling looks keys up here, the `?` overlay is generated from the same
//! list, so the help always shows every key, and the key hints in footers and status lines name their keys from it
//! ([`KeyBindings::key_name`], [`KeyBindings::key_pair`], [`KeyBindings::keys_of`]), so they follow a rebinding.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCombo {
    /// The key.
    pub code: KeyCode,
    /// Ctrl / Alt / Shift. For characters Shift is part of the character (`G`), not a modifier.
    pub modifiers: KeyModifiers,
}

impl KeyCombo {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        KeyCombo { code, modifiers: KeyModifiers::NONE }
    }

    /// A character key.
    pub const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    /// Ctrl + a character.
    pub const fn ctrl(c: char) -> Self {
        KeyCombo { code: KeyCode::Char(c), modifiers: KeyModifiers::CONTROL }
    }

    /// Shift + a key.
    pub const fn shift(code: KeyCode) -> Self {
        KeyCombo { code, modifiers: KeyModifiers::SHIFT }
    }

    /// Whether `event` is this key. Shift is ignored for characters (the character carries it) and for Shift-Tab
    /// (terminals report it as `BackTab` with or without the modifier).
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let relevant = |modifiers: KeyModifiers, code: KeyCode| match code {
            KeyCode::Char(_) | KeyCode::BackTab => modifiers - KeyModifiers::SHIFT,
            _ => modifiers,
        };
        let event_code = match event.code {
            KeyCode::Char(c) if event.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            code => code,
        };
        self.code == event_code && relevant(self.modifiers, self.code) == relevant(event.modifiers, event_code)
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Where a key applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The main screen: process list and process view.
    Main,
    /// The cluster view: GPU nodes, their XID events, the cluster log.
    Cluster,
    /// Typing a filter after `/`.
    Filter,
    /// The dialogs: the strategy editor, dump and replay on the process side, XID, partition and shim on the cluster
    /// side.
    Form,
    /// The error-code picker of the editor.
    Picker,
    /// The confirmation step of a cluster action (XID, partition, shim, recover, arm).
    Confirm,
    /// This help.
    Help,
}

impl Context {
    /// Every context, in help order.
    pub const ALL: [Context; 7] = [
        Context::Main,
        Context::Cluster,
        Context::Form,
        Context::Confirm,
        Context::Picker,
        Context::Filter,
        Context::Help,
    ];

    /// The help section title.
    pub fn title(self) -> &'static str {
        match self {
            Context::Main => "Main screen",
            Context::Cluster => "Cluster view (v)",
            Context::Filter => "Filter (after /)",
            Context::Form => "Editor, dump, replay, XID, partition and shim dialogs",
            Context::Confirm => "Confirmation of a cluster action (y/n)",
            Context::Picker => "Error-code picker (Space on Error pool)",
            Context::Help => "This help",
        }
    }
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    /// Leave the dashboard.
    Quit,
    /// Open this help.
    Help,
    /// Next pane.
    NextPane,
    /// Previous pane.
    PrevPane,
    /// Move up / scroll up.
    Up,
    /// Move down / scroll down.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// To the top.
    Top,
    /// To the bottom.
    Bottom,
    /// Freeze / unfreeze the display.
    Freeze,
    /// Start typing a filter.
    Filter,
    /// Sort by the next column.
    SortNext,
    /// Reverse the sort.
    SortReverse,
    /// Open the strategy editor.
    Edit,
    /// Turn injection on / off.
    ToggleEnabled,
    /// Start / stop recording.
    ToggleRecording,
    /// Clear the recording.
    ClearRecording,
    /// Dump the recording to a file.
    Dump,
    /// Replay the recording.
    Replay,
    /// Back to the shim's defaults.
    Reset,
    /// Remove dead processes' segments.
    Clean,
    /// Clear the filter / the status line; close a dialog.
    Back,
    /// Process view ↔ cluster view.
    SwitchView,
    /// List the GPU nodes again now.
    Refresh,
    /// Open the inject-XID dialog on the selected node.
    InjectXid,
    /// Open the kernel-log signal dialog (fallen off, SXid, NIC) on the selected node.
    InjectSignal,
    /// Ask to recover the selected fault.
    RecoverFault,
    /// Open the create-partition dialog.
    CreatePartition,
    /// Open the shim-rollout dialog.
    RolloutShim,
    /// Ask to arm the selected node.
    ArmNode,
    /// Yes: go ahead.
    Yes,
    /// No: back to the dialog.
    No,
    /// Next field.
    NextField,
    /// Previous field.
    PrevField,
    /// −1 / previous choice.
    Decrease,
    /// +1 / next choice.
    Increase,
    /// −10.
    DecreaseMore,
    /// +10.
    IncreaseMore,
    /// Toggle a checkbox, cycle a choice, open the picker, pick a code.
    Toggle,
    /// Apply / confirm.
    Apply,
    /// Empty the field.
    ClearField,
    /// Delete the last character.
    DeleteChar,
}

/// Keys for one intent in one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Where.
    pub context: Context,
    /// What.
    pub intent: Intent,
    /// Which keys.
    pub keys: Vec<KeyCombo>,
    /// For the help.
    pub help: &'static str,
}

/// Every key binding of the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBindings {
    /// In help order.
    pub bindings: Vec<Binding>,
}

impl Default for KeyBindings {
    fn default() -> Self {
        use Context::{Cluster, Confirm, Filter, Form, Help, Main, Picker};
        use KeyCode::{BackTab, Backspace, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};
        let c = KeyCombo::char;
        let p = KeyCombo::plain;
        let b = |context, intent, keys: &[KeyCombo], help| Binding { context, intent, keys: keys.to_vec(), help };
        KeyBindings {
            bindings: vec![
                b(Main, Intent::Quit, &[c('q'), KeyCombo::ctrl('c')], "quit (Ctrl-C quits from anywhere)"),
                b(Main, Intent::Help, &[c('?')], "this help"),
                b(Main, Intent::NextPane, &[p(Tab), c('l'), p(Right)], "next pane"),
                b(Main, Intent::PrevPane, &[p(BackTab), c('h'), p(Left)], "previous pane"),
                b(Main, Intent::Up, &[c('k'), p(Up)], "select the process above / scroll up"),
                b(Main, Intent::Down, &[c('j'), p(Down)], "select the process below / scroll down"),
                b(Main, Intent::PageUp, &[p(PageUp), KeyCombo::ctrl('b')], "a page up"),
                b(Main, Intent::PageDown, &[p(PageDown), KeyCombo::ctrl('f')], "a page down"),
                b(Main, Intent::Top, &[c('g'), p(Home)], "first process / oldest record"),
                b(Main, Intent::Bottom, &[c('G'), p(End)], "last process / follow the newest record"),
                b(Main, Intent::Filter, &[c('/')], "filter processes (pid, name, kind, state, mode)"),
                b(Main, Intent::SortNext, &[c('s')], "sort by the next column"),
                b(Main, Intent::SortReverse, &[c('S')], "reverse the sort"),
                b(Main, Intent::Freeze, &[c('f')], "freeze / unfreeze the display"),
                b(Main, Intent::Edit, &[c('e'), p(Enter)], "edit the selected process's strategy"),
                b(Main, Intent::ToggleEnabled, &[c('t')], "turn injection on / off"),
                b(Main, Intent::ToggleRecording, &[c('r')], "start / stop recording"),
                b(Main, Intent::ClearRecording, &[c('c')], "clear the recording"),
                b(Main, Intent::Dump, &[c('d')], "dump the recording to a file (summary, pattern, records)"),
                b(Main, Intent::Replay, &[c('p')], "replay the recording into this or another process"),
                b(Main, Intent::Reset, &[c('X')], "reset the process to the shim's defaults"),
                b(Main, Intent::Clean, &[c('C')], "remove the segments of exited processes"),
                b(Main, Intent::Back, &[p(Esc)], "clear the filter and the status line"),
                b(Main, Intent::SwitchView, &[c('v')], "cluster view: GPU nodes, XID events, inject an XID"),
                b(Cluster, Intent::Quit, &[c('q'), KeyCombo::ctrl('c')], "quit"),
                b(Cluster, Intent::Help, &[c('?')], "this help"),
                b(Cluster, Intent::SwitchView, &[c('v')], "back to the process view"),
                b(Cluster, Intent::NextPane, &[p(Tab)], "switch between the node and the fault tables"),
                b(Cluster, Intent::Up, &[c('k'), p(Up)], "select the node / fault above"),
                b(Cluster, Intent::Down, &[c('j'), p(Down)], "select the node / fault below"),
                b(Cluster, Intent::Top, &[c('g'), p(Home)], "first node / fault"),
                b(Cluster, Intent::Bottom, &[c('G'), p(End)], "last node / fault"),
                b(Cluster, Intent::Refresh, &[c('r')], "list nodes and faults again now (the view also refreshes)"),
                b(Cluster, Intent::InjectXid, &[c('x')], "inject an XID on the selected node (asks to confirm)"),
                b(
                    Cluster,
                    Intent::InjectSignal,
                    &[c('i')],
                    "fallen-off GPU, SXid, NIC error on the node (asks to confirm)",
                ),
                b(Cluster, Intent::RecoverFault, &[c('R')], "recover the selected fault (asks to confirm)"),
                b(Cluster, Intent::CreatePartition, &[c('p')], "create a network partition (asks to confirm)"),
                b(Cluster, Intent::RolloutShim, &[c('s')], "roll a CUDA/UCX shim into a workload (asks to confirm)"),
                b(Cluster, Intent::ArmNode, &[c('a')], "arm the selected node with XID 79 for 30m (asks to confirm)"),
                b(Cluster, Intent::Back, &[p(Esc)], "clear the status line"),
                b(Form, Intent::NextField, &[p(Down), p(Tab)], "next field"),
                b(Form, Intent::PrevField, &[p(Up), p(BackTab)], "previous field"),
                b(Form, Intent::Decrease, &[p(Left)], "−1 (numbers), previous choice, previous catalog XID"),
                b(Form, Intent::Increase, &[p(Right)], "+1 (numbers), next choice, next catalog XID"),
                b(Form, Intent::DecreaseMore, &[KeyCombo::shift(Left), p(PageDown)], "−10"),
                b(Form, Intent::IncreaseMore, &[KeyCombo::shift(Right), p(PageUp)], "+10"),
                b(Form, Intent::Toggle, &[c(' ')], "toggle a checkbox, cycle a choice, open the code picker"),
                b(Form, Intent::ClearField, &[KeyCombo::ctrl('u')], "empty the field"),
                b(Form, Intent::DeleteChar, &[p(Backspace)], "delete a character (other keys type)"),
                b(Form, Intent::Apply, &[p(Enter)], "apply (nothing changes if a field is invalid)"),
                b(Form, Intent::Back, &[p(Esc)], "cancel"),
                b(Confirm, Intent::Yes, &[c('y')], "yes: go ahead"),
                b(Confirm, Intent::No, &[c('n'), p(Esc)], "no: back to the dialog, nothing done"),
                b(Picker, Intent::Up, &[p(Up)], "previous code"),
                b(Picker, Intent::Down, &[p(Down)], "next code"),
                b(Picker, Intent::PageUp, &[p(PageUp)], "a page up"),
                b(Picker, Intent::PageDown, &[p(PageDown)], "a page down"),
                b(Picker, Intent::Toggle, &[c(' '), p(Enter)], "add the code to the pool / remove it"),
                b(Picker, Intent::DeleteChar, &[p(Backspace)], "delete a filter character (other keys type)"),
                b(Picker, Intent::Back, &[p(Esc), p(Tab)], "back to the editor"),
                b(Filter, Intent::Apply, &[p(Enter)], "keep the filter"),
                b(Filter, Intent::Back, &[p(Esc)], "clear the filter"),
                b(Filter, Intent::DeleteChar, &[p(Backspace)], "delete a character (other keys type)"),
                b(Help, Intent::Up, &[c('k'), p(Up)], "scroll up"),
                b(Help, Intent::Down, &[c('j'), p(Down)], "scroll down"),
                b(Help, Intent::Back, &[p(Esc), c('?'), c('q')], "close"),
            ],
        }
    }
}

impl KeyBindings {
    /// What `event` asks for in `context`.
    pub fn intent(&self, context: Context, event: &KeyEvent) -> Option<Intent> {
        self.bindings
            .iter()
            .filter(|b| b.context == context)
            .find(|b| b.keys.iter().any(|k| k.matches(event)))
            .map(|b| b.intent)
    }

    /// The bindings of `context`, in help order.
    pub fn of(&self, context: Context) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.context == context)
    }

    /// Keys bound twice in the same context (a configuration error).
    pub fn duplicates(&self) -> Vec<(Context, KeyCombo)> {
        let mut seen: Vec<(Context, KeyCombo)> = Vec::new();
        let mut duplicates = Vec::new();
        for binding in &self.bindings {
            for key in &binding.keys {
                if seen.contains(&(binding.context, *key)) {
                    duplicates.push((binding.context, *key));
                } else {
                    seen.push((binding.context, *key));
                }
            }
        }
        duplicates
    }

    /// The keys of `intent` in `context`, joined for display (`e/Enter`).
    pub fn keys_of(&self, context: Context, intent: Intent) -> String {
        self.of(context)
            .filter(|b| b.intent == intent)
            .flat_map(|b| b.keys.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The one key a hint names for `intent` in `context` (`Enter` in "Enter apply"): the first key bound to it that
    /// is not a character — arrows, Enter, Esc, Tab… work in every dialog, where characters type text — else the
    /// first key; `unbound` if there is none. Footers and status lines spell their keys with this (or
    /// [`KeyBindings::key_pair`], or [`KeyBindings::keys_of`] for every key), never by hand, so a rebound key shows
    /// in its hints.
    pub fn key_name(&self, context: Context, intent: Intent) -> String {
        self.hint_key(context, intent).map_or_else(|| "unbound".to_string(), |key| key.to_string())
    }

    /// The keys a hint names for two intents that go back and forth (previous / next field, −1 / +1): run together
    /// when both are arrows with the same modifiers (`↑↓`, `Shift-←→`), else `back/forth` as [`KeyBindings::key_name`]
    /// names them.
    pub fn key_pair(&self, context: Context, back: Intent, forth: Intent) -> String {
        let is_arrow = |code| matches!(code, KeyCode::Up | KeyCode::Down | KeyCode::Left | KeyCode::Right);
        match (self.hint_key(context, back), self.hint_key(context, forth)) {
            (Some(b), Some(f)) if b.modifiers == f.modifiers && is_arrow(b.code) && is_arrow(f.code) => {
                format!("{b}{}", KeyCombo::plain(f.code))
            }
            _ => format!("{}/{}", self.key_name(context, back), self.key_name(context, forth)),
        }
    }

    fn hint_key(&self, context: Context, intent: Intent) -> Option<KeyCombo> {
        let keys: Vec<KeyCombo> =
            self.of(context).filter(|b| b.intent == intent).flat_map(|b| b.keys.clone()).collect();
        keys.iter().find(|key| !matches!(key.code, KeyCode::Char(_))).or(keys.first()).copied()
    }
}

/// Ctrl-C: quits from every context.
pub fn is_interrupt(event: &KeyEvent) -> bool {
    KeyCombo::ctrl('c').matches(event)
}

/// The character a key types into a text field, if it is one.
pub fn typed_char(event: &KeyEvent) -> Option<char> {
    match event.code {
        KeyCode::Char(c) if !event.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn no_key_is_bound_twice_in_a_context() {
        assert_eq!(KeyBindings::default().duplicates(), vec![]);
    }

    #[test]
    fn every_context_has_keys_and_help() {
        let keys = KeyBindings::default();
        for context in Context::ALL {
            assert!(keys.of(context).count() > 0, "{context:?}");
        }
        assert!(keys.bindings.iter().all(|b| !b.help.is_empty() && !b.keys.is_empty()));
    }

    #[test]
    fn lookups_follow_the_context_and_normalise_shift() {
        let keys = KeyBindings::default();
        assert_eq!(keys.intent(Context::Main, &key(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Intent::Bottom));
        assert_eq!(keys.intent(Context::Main, &key(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Intent::PrevPane));
        assert_eq!(keys.intent(Context::Main, &key(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Intent::Quit));
        assert_eq!(keys.intent(Context::Form, &key(KeyCode::Left, KeyModifiers::SHIFT)), Some(Intent::DecreaseMore));
        assert_eq!(keys.intent(Context::Form, &key(KeyCode::Left, KeyModifiers::NONE)), Some(Intent::Decrease));
        assert_eq!(keys.intent(Context::Form, &key(KeyCode::Char('q'), KeyModifiers::NONE)), None, "q types");
        assert!(is_interrupt(&key(KeyCode::Char('C'), KeyModifiers::CONTROL | KeyModifiers::SHIFT)));
        assert_eq!(keys.keys_of(Context::Main, Intent::Edit), "e/Enter");
    }

    #[test]
    fn hints_name_the_bound_keys_and_follow_a_rebinding() {
        let mut keys = KeyBindings::default();
        assert_eq!(keys.key_name(Context::Form, Intent::Apply), "Enter");
        assert_eq!(keys.key_name(Context::Form, Intent::Toggle), "Space");
        assert_eq!(keys.key_name(Context::Main, Intent::Quit), "q", "characters only: the first");
        assert_eq!(keys.key_name(Context::Help, Intent::Up), "↑", "a named key before a character");
        assert_eq!(keys.key_pair(Context::Form, Intent::PrevField, Intent::NextField), "↑↓");
        assert_eq!(keys.key_pair(Context::Form, Intent::DecreaseMore, Intent::IncreaseMore), "Shift-←→");
        assert_eq!(keys.key_pair(Context::Help, Intent::Up, Intent::Down), "↑↓");
        for binding in &mut keys.bindings {
            match (binding.context, binding.intent) {
                (Context::Form, Intent::Apply) => binding.keys = vec![KeyCombo::ctrl('s')],
                (Context::Form, Intent::NextField) => binding.keys = vec![KeyCombo::plain(KeyCode::Tab)],
                (Context::Filter, Intent::Back) => binding.keys.clear(),
                _ => {}
            }
        }
        assert_eq!(keys.key_name(Context::Form, Intent::Apply), "Ctrl-S");
        assert_eq!(keys.key_pair(Context::Form, Intent::PrevField, Intent::NextField), "↑/Tab");
        assert_eq!(keys.key_name(Context::Filter, Intent::Back), "unbound");
    }

    #[test]
    fn the_arm_help_names_the_xid_the_key_arms_with() {
        let keys = KeyBindings::default();
        let arm = keys.of(Context::Cluster).find(|b| b.intent == Intent::ArmNode).expect("bound");
        let xid = crate::dashboard::cluster::keys::ARM_XID;
        assert!(arm.help.contains(&format!("XID {xid} ")), "{}", arm.help);
    }
}
