//! The strategy editor (`e`): a draft of every setting of one process, validated as it is typed, turned into
//! [`Change`]s on apply, with its error-code [`Picker`] over the pool. Values are parsed with the same `shm_proto`
//! parsers as the CLI, so the editor accepts and rejects exactly what `faultline <command>` does; nothing here
//! touches a process — applying is a [`Job`] for the engine.

use crossterm::event::KeyEvent;
use shm_proto::config;
use shm_proto::layout::{DelayMode, Site, POOL_CAP};
use shm_proto::{codes, Kind, Mode};

use super::form::{cycle, step_count, Reply};
use super::picker::{Picker, PickerReply};
use super::sampler::{Detail, Job, Key};
use crate::actions::{Change, Switch};
use crate::dashboard::keys::{self, Context, Intent, KeyBindings};
use crate::request::Request;
use crate::targets::Selection;

/// One row of the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Injection on/off.
    Enabled,
    /// Random / pattern (/ replay when running one).
    Mode,
    /// Percent.
    Probability,
    /// X/O text.
    Pattern,
    /// The error pool (opens the picker).
    Pool,
    /// Random seed.
    Seed,
    /// Armed calls to pass first.
    Skip,
    /// Faults after which injection stops.
    Limit,
    /// Delay length.
    DelayUs,
    /// Delay action.
    DelayMode,
    /// Where faults surface.
    Site,
    /// Recording on/off.
    Recording,
    /// The selected process or every process of its kind.
    ApplyTo,
    /// Hook `i` armed.
    Hook(usize),
}

impl Field {
    /// The label shown left of the value.
    pub fn label(self) -> &'static str {
        match self {
            Field::Enabled => "Injection",
            Field::Mode => "Mode",
            Field::Probability => "Probability %",
            Field::Pattern => "Pattern",
            Field::Pool => "Error pool",
            Field::Seed => "Seed",
            Field::Skip => "Skip first",
            Field::Limit => "Limit faults",
            Field::DelayUs => "Delay µs",
            Field::DelayMode => "Delay mode",
            Field::Site => "Fault site",
            Field::Recording => "Recording",
            Field::ApplyTo => "Apply to",
            Field::Hook(_) => "Hook",
        }
    }

    /// Whether typing edits this field.
    pub fn is_text(self) -> bool {
        matches!(self, Field::Probability | Field::Pattern | Field::Seed | Field::Skip | Field::Limit | Field::DelayUs)
    }
}

/// Every setting, as the user is editing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Injection on.
    pub enabled: bool,
    /// The mode.
    pub mode: Mode,
    /// Percent, as typed.
    pub probability: String,
    /// X/O, as typed.
    pub pattern: String,
    /// Codes, in order.
    pub pool: Vec<i32>,
    /// As typed.
    pub seed: String,
    /// As typed.
    pub skip: String,
    /// As typed.
    pub limit: String,
    /// As typed.
    pub delay_us: String,
    /// The delay action.
    pub delay_mode: DelayMode,
    /// Where faults surface.
    pub site: Site,
    /// Recording on.
    pub recording: bool,
    /// Per hook.
    pub armed: Vec<bool>,
}

/// The strategy editor of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    /// The process edited.
    pub key: Key,
    /// `pid 1234 (ucx_selfloop, ucx)`.
    pub label: String,
    /// Its hook table.
    pub hook_names: Vec<String>,
    /// The settings when the editor opened.
    pub initial: Draft,
    /// The settings being edited.
    pub draft: Draft,
    /// The field with the cursor (index into [`Editor::fields`]).
    pub cursor: usize,
    /// Apply to every running process of the same kind instead of the selected one.
    pub apply_to_all: bool,
    /// The open error-code picker.
    pub picker: Option<Picker>,
}

fn mode_of(name: &str) -> Mode {
    match name {
        "pattern" => Mode::Pattern,
        "replay" => Mode::Replay,
        _ => Mode::Random,
    }
}

/// The sites a process of `kind` has, in the order the editor cycles through them (a CUDA process has no endpoints:
/// `shm_proto::config::check_site`).
pub fn sites_of(kind: Kind) -> Vec<Site> {
    Site::ALL.into_iter().filter(|&site| config::check_site(kind, site).is_ok()).collect()
}

impl Editor {
    /// An editor holding `detail`'s current settings.
    pub fn open(detail: &Detail) -> Editor {
        let s = &detail.state;
        let draft = Draft {
            enabled: s.enabled,
            mode: mode_of(s.mode),
            probability: config::format_probability(s.probability_ppm),
            pattern: s.pattern.clone(),
            pool: s.error_codes.iter().map(|c| c.code).collect(),
            seed: format!("{:#x}", s.seed),
            skip: s.skip.to_string(),
            limit: s.limit.to_string(),
            delay_us: s.delay_us.to_string(),
            delay_mode: config::parse_delay_mode(s.delay_mode).unwrap_or(DelayMode::Off),
            site: Site::from_name(s.site).unwrap_or(Site::Post),
            recording: s.recording,
            armed: s.hooks.iter().map(|h| h.armed).collect(),
        };
        Editor {
            key: detail.key,
            label: s.label(),
            hook_names: s.hooks.iter().map(|h| h.name.clone()).collect(),
            initial: draft.clone(),
            draft,
            cursor: 0,
            apply_to_all: false,
            picker: None,
        }
    }

    /// The rows, in order.
    pub fn fields(&self) -> Vec<Field> {
        let mut fields = vec![
            Field::Enabled,
            Field::Mode,
            Field::Probability,
            Field::Pattern,
            Field::Pool,
            Field::Seed,
            Field::Skip,
            Field::Limit,
            Field::DelayUs,
            Field::DelayMode,
            Field::Site,
            Field::Recording,
            Field::ApplyTo,
        ];
        fields.extend((0..self.hook_names.len()).map(Field::Hook));
        fields
    }

    /// The field with the cursor.
    pub fn field(&self) -> Field {
        let fields = self.fields();
        fields.get(self.cursor).copied().unwrap_or(Field::Enabled)
    }

    /// Moves the cursor by `delta` fields, wrapping.
    pub fn move_cursor(&mut self, delta: isize) {
        let count = self.fields().len() as isize;
        self.cursor = (self.cursor as isize + delta).rem_euclid(count.max(1)) as usize;
    }

    /// Puts the cursor on `field`.
    pub fn focus(&mut self, field: Field) {
        if let Some(index) = self.fields().iter().position(|f| *f == field) {
            self.cursor = index;
        }
    }

    fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        let d = &mut self.draft;
        match field {
            Field::Probability => Some(&mut d.probability),
            Field::Pattern => Some(&mut d.pattern),
            Field::Seed => Some(&mut d.seed),
            Field::Skip => Some(&mut d.skip),
            Field::Limit => Some(&mut d.limit),
            Field::DelayUs => Some(&mut d.delay_us),
            _ => None,
        }
    }

    /// Types `c` into the field with the cursor (typing a pattern selects pattern mode).
    pub fn type_char(&mut self, c: char) {
        let field = self.field();
        if field == Field::Pattern && self.draft.mode != Mode::Pattern {
            self.draft.mode = Mode::Pattern;
        }
        if let Some(text) = self.text_mut(field) {
            text.push(c);
        }
    }

    /// Deletes the last character of the field with the cursor.
    pub fn delete_char(&mut self) {
        let field = self.field();
        if let Some(text) = self.text_mut(field) {
            text.pop();
        }
    }

    /// Empties the field with the cursor.
    pub fn clear_field(&mut self) {
        let field = self.field();
        if let Some(text) = self.text_mut(field) {
            text.clear();
        }
    }

    /// ±`delta` on a number (probability in percent points), or the next / previous choice.
    pub fn step(&mut self, delta: i64) {
        let field = self.field();
        let d = &mut self.draft;
        match field {
            Field::Probability => {
                let ppm = i64::from(config::parse_probability(&d.probability).unwrap_or(0));
                let next = (ppm + delta * 10_000).clamp(0, 1_000_000);
                d.probability = config::format_probability(next as u32);
            }
            Field::Seed | Field::Skip | Field::Limit | Field::DelayUs => {
                if let Some(text) = self.text_mut(field) {
                    if let Some(next) = step_count(text, delta) {
                        *text = next;
                    }
                }
            }
            Field::Mode => {
                let mut modes = vec![Mode::Random, Mode::Pattern];
                if self.initial.mode == Mode::Replay {
                    modes.push(Mode::Replay);
                }
                d.mode = cycle(&modes, d.mode, delta);
            }
            Field::DelayMode => {
                let modes = [DelayMode::Off, DelayMode::BeforeFault, DelayMode::InsteadOfFault];
                d.delay_mode = cycle(&modes, d.delay_mode, delta);
            }
            Field::Site => d.site = cycle(&sites_of(self.key.kind), d.site, delta),
            Field::Enabled | Field::Recording | Field::ApplyTo | Field::Hook(_) => self.toggle(),
            Field::Pattern | Field::Pool => {}
        }
    }

    /// Space: flips a checkbox, cycles a choice, opens the picker on the pool.
    pub fn toggle(&mut self) {
        let field = self.field();
        let d = &mut self.draft;
        match field {
            Field::Enabled => d.enabled = !d.enabled,
            Field::Recording => d.recording = !d.recording,
            Field::ApplyTo => self.apply_to_all = !self.apply_to_all,
            Field::Hook(i) => {
                if let Some(armed) = d.armed.get_mut(i) {
                    *armed = !*armed;
                }
            }
            Field::Mode | Field::DelayMode | Field::Site => self.step(1),
            Field::Pool => self.picker = Some(Picker::new(self.key.kind)),
            _ => {}
        }
    }

    /// Adds `code` to the pool, or removes it if it is there.
    pub fn toggle_code(&mut self, code: i32) -> Result<(), String> {
        let pool = &mut self.draft.pool;
        if pool.contains(&code) {
            pool.retain(|&c| c != code);
        } else if pool.len() >= POOL_CAP {
            return Err(format!("the error pool holds at most {POOL_CAP} codes"));
        } else {
            pool.push(code);
        }
        Ok(())
    }

    /// The validity of `field` as typed: `Err` with the parser's message, or `Ok` with a hint.
    pub fn check(&self, field: Field) -> Result<String, String> {
        let d = &self.draft;
        let shown = |r: Result<String, config::ConfigError>| r.map_err(|e| e.to_string());
        match field {
            Field::Probability => shown(config::parse_probability(&d.probability).map(|_| String::new())),
            Field::Pattern if d.mode != Mode::Pattern && d.pattern == self.initial.pattern => Ok(String::new()),
            Field::Pattern => shown(
                config::parse_pattern(&d.pattern)
                    .map(|p| format!("{} positions, {} X", p.len(), p.iter().filter(|&&x| x).count())),
            ),
            Field::Seed => shown(config::parse_count("seed", &d.seed).map(|_| String::new())),
            Field::Skip => shown(config::parse_count("skip", &d.skip).map(|_| String::new())),
            Field::Limit => shown(config::parse_count("limit", &d.limit).map(|n| {
                if n == 0 {
                    "no limit".to_string()
                } else {
                    String::new()
                }
            })),
            Field::DelayUs => shown(config::parse_delay_us(&d.delay_us).map(|_| String::new())),
            Field::Pool if d.pool.is_empty() => Err("empty: pick at least one code (Space)".to_string()),
            Field::Hook(_) if !d.armed.iter().any(|&a| a) => Ok("no hook is armed: nothing can fail".to_string()),
            _ => Ok(String::new()),
        }
    }

    /// The first invalid field and its message.
    pub fn first_error(&self) -> Option<(Field, String)> {
        self.fields().into_iter().find_map(|f| self.check(f).err().map(|e| (f, e)))
    }

    /// The changes that turn the process's settings into the draft, in an order where each is valid on its own;
    /// `Err` (and no change at all) if any field is invalid.
    pub fn changes(&self) -> Result<Vec<Change>, String> {
        if let Some((field, message)) = self.first_error() {
            return Err(format!("{}: {message}", field.label()));
        }
        let (d, i) = (&self.draft, &self.initial);
        let kind = self.key.kind;
        let mut changes = Vec::new();
        let error = |e: crate::Error| e.to_string();
        if d.pool != i.pool {
            let list = d.pool.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            codes::parse_code_list(kind, &list).map_err(|e| e.to_string())?;
            changes.push(Change::ErrorCodes(list));
        }
        if d.armed != i.armed {
            let names: Vec<&str> =
                self.hook_names.iter().zip(&d.armed).filter(|(_, &a)| a).map(|(n, _)| n.as_str()).collect();
            let list = if names.is_empty() { "none".to_string() } else { names.join(",") };
            config::parse_hooks(&self.hook_names, &list).map_err(|e| e.to_string())?;
            changes.push(Change::Hooks(list));
        }
        if d.seed != i.seed {
            changes.push(Change::seed(&d.seed).map_err(error)?);
        }
        if d.probability != i.probability {
            changes.push(Change::probability(&d.probability).map_err(error)?);
        }
        if d.delay_us != i.delay_us || d.delay_mode != i.delay_mode {
            changes.push(Change::delay(&d.delay_us, Some(d.delay_mode.name())).map_err(error)?);
        }
        if d.site != i.site {
            changes.push(Change::Site(d.site));
        }
        if d.skip != i.skip {
            changes.push(Change::skip(&d.skip).map_err(error)?);
        }
        if d.limit != i.limit {
            changes.push(Change::limit(&d.limit).map_err(error)?);
        }
        let mode_changed = d.mode != i.mode;
        match d.mode {
            Mode::Pattern if mode_changed || d.pattern != i.pattern => {
                changes.push(Change::strategy(&d.pattern, None).map_err(error)?);
            }
            Mode::Random if mode_changed => changes.push(Change::strategy("random", None).map_err(error)?),
            _ => {}
        }
        if d.enabled != i.enabled {
            changes.push(Change::Enabled(if d.enabled { Switch::On } else { Switch::Off }));
        }
        if d.recording != i.recording {
            changes.push(Change::Recording(if d.recording { Switch::On } else { Switch::Off }));
        }
        Ok(changes)
    }

    /// The processes a change goes to.
    pub fn selection(&self) -> Selection {
        let pids = if self.apply_to_all { Vec::new() } else { vec![self.key.pid] };
        Selection { pids, kind: Some(self.key.kind) }
    }

    /// The job that applies the draft.
    pub fn job(&self) -> Result<Job, String> {
        let changes = self.changes()?;
        if changes.is_empty() {
            return Err("nothing to apply: no setting was changed".to_string());
        }
        let what = changes.iter().map(Change::describe).collect::<Vec<_>>().join(", ");
        Ok(Job::Requests {
            requests: changes.into_iter().map(Request::Change).collect(),
            node: self.key.node,
            selection: self.selection(),
            what,
        })
    }

    /// Handles a key: in the picker while it is open ([`Context::Picker`]), else [`Context::Form`], where other keys
    /// type into a text field.
    pub fn on_key(&mut self, keys: &KeyBindings, event: &KeyEvent) -> Reply {
        if let Some(picker) = &mut self.picker {
            match picker.on_key(keys, event) {
                PickerReply::Open => {}
                PickerReply::Close => self.picker = None,
                PickerReply::Pick(code) => {
                    if let Err(message) = self.toggle_code(code) {
                        return Reply::Refused(message);
                    }
                }
            }
            return Reply::Open;
        }
        match keys.intent(Context::Form, event) {
            Some(Intent::NextField) => self.move_cursor(1),
            Some(Intent::PrevField) => self.move_cursor(-1),
            Some(Intent::Decrease) => self.step(-1),
            Some(Intent::Increase) => self.step(1),
            Some(Intent::DecreaseMore) => self.step(-10),
            Some(Intent::IncreaseMore) => self.step(10),
            Some(Intent::Toggle) => self.toggle(),
            Some(Intent::ClearField) => self.clear_field(),
            Some(Intent::DeleteChar) => self.delete_char(),
            Some(Intent::Back) => return Reply::Closed(Some("editor closed; nothing changed".to_string())),
            Some(Intent::Apply) => {
                return match self.job() {
                    Ok(job) => {
                        let target = if self.apply_to_all { "every process" } else { &self.label };
                        Reply::Run(job, Some(format!("applying to {target}…")))
                    }
                    Err(message) => Reply::Refused(format!("not applied: {message}")),
                }
            }
            _ => {
                if let Some(c) = keys::typed_char(event) {
                    if self.field().is_text() {
                        self.type_char(c);
                    }
                }
            }
        }
        Reply::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CodeState, HookState, ProcessState};

    fn detail() -> Detail {
        let hooks = ["ucp_get_nbx", "ucp_put_nbx", "ucp_request_check_status"];
        let state = ProcessState {
            pid: 42,
            kind: "ucx",
            exe: "app".into(),
            pod: None,
            alive: true,
            in_container: false,
            path: String::new(),
            enabled: true,
            recording: false,
            mode: "random",
            probability_percent: 5.0,
            probability_ppm: 50_000,
            seed: 7,
            pattern: String::new(),
            position: 0,
            error_codes: vec![CodeState { code: -3, name: Some("UCS_ERR_IO_ERROR") }],
            hooks_armed: 2,
            hooks: hooks
                .iter()
                .enumerate()
                .map(|(i, n)| HookState { name: n.to_string(), armed: i < 2, calls: 0, faults: 0 })
                .collect(),
            skip: 0,
            limit: 0,
            delay_us: 0,
            delay_mode: "off",
            site: "post",
            replay_length: 0,
            replay_faults: 0,
            replay_loop: false,
            calls: 0,
            faults: 0,
            armed_calls: 0,
            armed_faults: 0,
            fault_percent: 0.0,
        };
        Detail {
            key: Key::local(42, Kind::Ucx),
            state,
            hook_rates: vec![],
            history: vec![],
            tail: vec![],
            recorded: 0,
            missed: 0,
        }
    }

    #[test]
    fn arrows_step_the_probability_and_typing_replaces_it() {
        let mut editor = Editor::open(&detail());
        editor.focus(Field::Probability);
        editor.step(1);
        assert_eq!(editor.draft.probability, "6");
        editor.step(10);
        editor.step(100);
        assert_eq!(editor.draft.probability, "100");
        editor.clear_field();
        "12.5".chars().for_each(|c| editor.type_char(c));
        assert_eq!(editor.changes().unwrap(), vec![Change::Probability(125_000)]);
    }

    #[test]
    fn an_invalid_field_blocks_every_change() {
        let mut editor = Editor::open(&detail());
        editor.focus(Field::Probability);
        editor.clear_field();
        editor.type_char('9');
        editor.focus(Field::Pattern);
        "XQ".chars().for_each(|c| editor.type_char(c));
        assert_eq!(editor.draft.mode, Mode::Pattern, "typing a pattern selects pattern mode");
        let error = editor.changes().unwrap_err();
        assert!(error.contains("'Q' at position 2"), "{error}");
        editor.delete_char();
        editor.type_char('O');
        assert_eq!(
            editor.changes().unwrap(),
            vec![Change::Probability(90_000), Change::Strategy { pattern: Some(vec![true, false]), error_codes: None }]
        );
    }

    #[test]
    fn the_editor_caps_the_delay_with_the_clis_parser() {
        let mut editor = Editor::open(&detail());
        editor.focus(Field::DelayUs);
        editor.clear_field();
        "60000001".chars().for_each(|c| editor.type_char(c));
        let error = editor.check(Field::DelayUs).unwrap_err();
        assert!(error.contains("the cap of 60000000 µs (60 s)"), "{error}");
        assert!(editor.changes().unwrap_err().contains("the cap of 60000000 µs"));
        editor.delete_char();
        assert!(editor.changes().is_ok(), "6000000 µs is fine");
    }

    #[test]
    fn the_site_cycles_through_the_kinds_sites_and_becomes_its_change() {
        let mut editor = Editor::open(&detail());
        editor.focus(Field::Site);
        assert_eq!(editor.draft.site, Site::Post);
        editor.toggle();
        assert_eq!(editor.draft.site, Site::Completion);
        editor.step(1);
        assert_eq!(editor.draft.site, Site::Endpoint, "a UCX process has endpoints");
        assert_eq!(editor.changes().unwrap(), vec![Change::Site(Site::Endpoint)]);
        editor.step(1);
        assert_eq!(editor.draft.site, Site::Post, "and round again");
        assert_eq!(editor.changes().unwrap(), vec![], "back where it was: no change");

        let mut cuda = detail();
        cuda.key = Key::local(42, Kind::Cuda);
        cuda.state.kind = "cuda";
        let mut editor = Editor::open(&cuda);
        editor.focus(Field::Site);
        editor.step(1);
        editor.step(1);
        assert_eq!(editor.draft.site, Site::Post, "a CUDA process has no endpoint site");
        editor.step(-1);
        assert_eq!(editor.changes().unwrap(), vec![Change::Site(Site::Completion)]);
    }

    #[test]
    fn pool_hooks_and_switches_become_their_changes() {
        let mut editor = Editor::open(&detail());
        editor.toggle_code(-20).unwrap();
        editor.toggle_code(-3).unwrap();
        editor.focus(Field::Hook(0));
        editor.toggle();
        editor.focus(Field::Recording);
        editor.toggle();
        editor.focus(Field::Enabled);
        editor.toggle();
        assert_eq!(
            editor.changes().unwrap(),
            vec![
                Change::ErrorCodes("-20".into()),
                Change::Hooks("ucp_put_nbx".into()),
                Change::Enabled(Switch::Off),
                Change::Recording(Switch::On)
            ]
        );
        editor.toggle_code(-20).unwrap();
        assert!(editor.changes().unwrap_err().contains("Error pool"));
        assert_eq!(editor.selection(), Selection { pids: vec![42], kind: Some(Kind::Ucx) });
        editor.apply_to_all = true;
        assert_eq!(editor.selection(), Selection { pids: vec![], kind: Some(Kind::Ucx) });
    }
}
