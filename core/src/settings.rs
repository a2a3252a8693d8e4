//! `set`: several settings of a process changed at once. Every value is checked against the target before anything
//! is published, and the result is published as one change, so a bad value anywhere changes nothing and a reader
//! never sees half of the settings. Each field is one field of the strategy as `status` shows it, so a `status`
//! read beforehand can be given back exactly (what the Python package's `faults()` does on exit).

use shm_proto::config;
use shm_proto::layout::{DelayMode, Site};
use shm_proto::{Kind, Mode, Strategy};

use crate::actions::{check_replay_program, check_site, resolve_delay_mode};
use crate::error::Error;

/// The settings to change; `None` leaves a setting as it is. Values that mean the same for every target are parsed
/// when the settings are built; error codes and hooks are resolved per target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Inject faults at all.
    pub enabled: Option<bool>,
    /// Random, pattern or replay (the stored pattern / replay program is kept either way).
    pub mode: Option<Mode>,
    /// The stored X/O pattern; empty clears it (not in pattern mode). Given without a mode, it means pattern mode.
    pub pattern: Option<Vec<bool>>,
    /// Random mode's probability, in parts per million.
    pub probability_ppm: Option<u32>,
    /// The error pool, as typed.
    pub error_codes: Option<String>,
    /// The armed hooks, as typed (`all`, `none`, names or short names).
    pub hooks: Option<String>,
    /// Random mode's seed.
    pub seed: Option<u64>,
    /// Armed calls passed before the strategy starts.
    pub skip: Option<u64>,
    /// Faults after which injection stops (0: unlimited).
    pub limit: Option<u64>,
    /// Delay length in microseconds (0 turns the delay off).
    pub delay_us: Option<u32>,
    /// What the delay does.
    pub delay_mode: Option<DelayMode>,
    /// Whether a replay starts over after its last call.
    pub replay_loop: Option<bool>,
    /// Where injected faults surface (checked per target: the endpoint site is UCX's).
    pub site: Option<Site>,
}

impl Settings {
    /// Parses the settings as typed on the command line (each with the parser the single-setting command uses).
    pub fn parse(typed: &TypedSettings<'_>) -> Result<Settings, Error> {
        let switch = |what, text: Option<&str>| text.map(|t| config::parse_switch(what, t)).transpose();
        let count = |what, text: Option<&str>| text.map(|t| config::parse_count(what, t)).transpose();
        let pattern = match typed.pattern {
            None => None,
            Some(text) if text.trim().is_empty() => Some(Vec::new()),
            Some(text) => Some(config::parse_pattern(text)?),
        };
        let settings = Settings {
            enabled: switch("enabled", typed.enabled)?,
            mode: typed.mode.map(parse_mode).transpose()?,
            pattern,
            probability_ppm: typed.probability.map(config::parse_probability).transpose()?,
            error_codes: typed.error_codes.map(String::from),
            hooks: typed.hooks.map(String::from),
            seed: count("seed", typed.seed)?,
            skip: count("skip", typed.skip)?,
            limit: count("limit", typed.limit)?,
            delay_us: typed.delay.map(config::parse_delay_us).transpose()?,
            delay_mode: typed.delay_mode.map(config::parse_delay_mode).transpose()?,
            replay_loop: switch("replay loop", typed.replay_loop)?,
            site: typed.site.map(config::parse_site).transpose()?,
        };
        if settings == Settings::default() {
            return Err(Error::usage("set: give at least one setting (see `faultline set --help`)"));
        }
        Ok(settings)
    }

    /// Whether the settings start a new call sequence (pattern, replay, skip and limit count from the next armed
    /// call again).
    pub fn starts_sequence(&self) -> bool {
        self.mode.is_some()
            || self.pattern.is_some()
            || self.skip.is_some()
            || self.limit.is_some()
            || self.replay_loop.is_some()
    }

    /// `current` with these settings applied, checked against a target of `kind` with `hook_names`.
    pub fn apply_to(&self, current: &Strategy, kind: Kind, hook_names: &[String]) -> Result<Strategy, Error> {
        let mut next = current.clone();
        if let Some(enabled) = self.enabled {
            next.enabled = enabled;
        }
        if let Some(pattern) = &self.pattern {
            next.pattern.clone_from(pattern);
            if self.mode.is_none() && !pattern.is_empty() {
                next.mode = Mode::Pattern;
            }
        }
        if let Some(mode) = self.mode {
            next.mode = mode;
        }
        match next.mode {
            Mode::Pattern if next.pattern.is_empty() => {
                return Err(Error::usage("set: pattern mode needs a pattern (--pattern XOOX…)"));
            }
            Mode::Replay if next.replay.is_empty() => {
                return Err(Error::usage("set: replay mode needs a replay program: load one with `faultline replay`"));
            }
            Mode::Replay => check_replay_program(kind, &next.replay)?,
            Mode::Random | Mode::Pattern => {}
        }
        if let Some(ppm) = self.probability_ppm {
            next.probability_ppm = ppm;
        }
        if let Some(list) = &self.error_codes {
            next.pool = shm_proto::codes::parse_code_list(kind, list)?;
        }
        if let Some(list) = &self.hooks {
            next.arm_mask = config::parse_hooks(hook_names, list)?;
        }
        next.seed = self.seed.unwrap_or(next.seed);
        next.skip = self.skip.unwrap_or(next.skip);
        next.limit = self.limit.unwrap_or(next.limit);
        next.replay_loop = self.replay_loop.unwrap_or(next.replay_loop);
        if self.delay_us.is_some() || self.delay_mode.is_some() {
            next.delay_us = self.delay_us.unwrap_or(current.delay_us);
            next.delay_mode = resolve_delay_mode(next.delay_us, self.delay_mode, current.delay_mode);
        }
        if let Some(site) = self.site {
            next.site = check_site(kind, site)?;
        }
        Ok(next)
    }
}

/// The settings as typed, before parsing (each `None` when not given).
#[derive(Debug, Clone, Copy, Default)]
pub struct TypedSettings<'a> {
    /// `on` / `off`.
    pub enabled: Option<&'a str>,
    /// `random`, `pattern` or `replay`.
    pub mode: Option<&'a str>,
    /// X/O, or empty to clear.
    pub pattern: Option<&'a str>,
    /// Percent.
    pub probability: Option<&'a str>,
    /// Codes.
    pub error_codes: Option<&'a str>,
    /// Hooks.
    pub hooks: Option<&'a str>,
    /// A whole number.
    pub seed: Option<&'a str>,
    /// A whole number.
    pub skip: Option<&'a str>,
    /// A whole number.
    pub limit: Option<&'a str>,
    /// Microseconds.
    pub delay: Option<&'a str>,
    /// `off`, `before-fault` or `instead-of-fault`.
    pub delay_mode: Option<&'a str>,
    /// `on` / `off`.
    pub replay_loop: Option<&'a str>,
    /// `post`, `completion` or `endpoint`.
    pub site: Option<&'a str>,
}

/// Parses `random`, `pattern` or `replay`.
pub fn parse_mode(text: &str) -> Result<Mode, Error> {
    [Mode::Random, Mode::Pattern, Mode::Replay]
        .into_iter()
        .find(|mode| mode.name().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| Error::usage(format!("mode must be random, pattern or replay, not '{}'", text.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks() -> Vec<String> {
        ["ucp_get_nbx", "ucp_put_nbx", "ucp_ep_flush_nbx"].map(String::from).to_vec()
    }

    fn defaults() -> Strategy {
        Strategy::defaults(&[-3, -6, -20], |hook| hook < 3)
    }

    fn parse(typed: TypedSettings<'_>) -> Settings {
        Settings::parse(&typed).expect("valid settings")
    }

    #[test]
    fn every_setting_is_applied_in_one_strategy() {
        let settings = parse(TypedSettings {
            enabled: Some("on"),
            pattern: Some("XOOX"),
            probability: Some("12.5"),
            error_codes: Some("UCS_ERR_TIMED_OUT,-3"),
            hooks: Some("put"),
            seed: Some("0x10"),
            skip: Some("2"),
            limit: Some("7"),
            delay: Some("500"),
            delay_mode: Some("instead-of-fault"),
            replay_loop: Some("on"),
            site: Some("endpoint"),
            ..TypedSettings::default()
        });
        let next = settings.apply_to(&defaults(), Kind::Ucx, &hooks()).unwrap();
        assert!(next.enabled);
        assert_eq!(next.mode, Mode::Pattern, "a pattern without a mode means pattern mode");
        assert_eq!(next.pattern, vec![true, false, false, true]);
        assert_eq!(next.probability_ppm, 125_000);
        assert_eq!(next.pool, vec![-20, -3]);
        assert!(next.is_armed(1) && !next.is_armed(0) && !next.is_armed(2));
        assert_eq!((next.seed, next.skip, next.limit), (16, 2, 7));
        assert_eq!((next.delay_us, next.delay_mode), (500, DelayMode::InsteadOfFault));
        assert!(next.replay_loop);
        assert_eq!(next.site, Site::Endpoint);
        assert!(settings.starts_sequence());
    }

    #[test]
    fn the_site_is_checked_against_the_targets_kind() {
        let completion = parse(TypedSettings { site: Some("Completion"), ..TypedSettings::default() });
        assert_eq!(completion.apply_to(&defaults(), Kind::Cuda, &hooks()).unwrap().site, Site::Completion);
        assert!(!completion.starts_sequence(), "the site does not restart a pattern");
        let endpoint = parse(TypedSettings { site: Some("endpoint"), ..TypedSettings::default() });
        let error = endpoint.apply_to(&defaults(), Kind::Cuda, &hooks()).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        assert!(error.to_string().contains("UCX-only") && error.to_string().contains("--kind ucx"), "{error}");
    }

    #[test]
    fn the_mode_switches_without_losing_the_stored_pattern_and_an_empty_pattern_clears_it() {
        let mut current = defaults();
        current.pattern = vec![true];
        current.mode = Mode::Pattern;
        let random = parse(TypedSettings { mode: Some("random"), ..TypedSettings::default() });
        let next = random.apply_to(&current, Kind::Ucx, &hooks()).unwrap();
        assert_eq!((next.mode, next.pattern.clone()), (Mode::Random, vec![true]));
        let cleared = parse(TypedSettings { mode: Some("random"), pattern: Some(""), ..TypedSettings::default() });
        assert!(cleared.apply_to(&current, Kind::Ucx, &hooks()).unwrap().pattern.is_empty());
        let no_pattern = parse(TypedSettings { pattern: Some(""), ..TypedSettings::default() });
        assert!(no_pattern.apply_to(&current, Kind::Ucx, &hooks()).is_err(), "pattern mode with no pattern");
    }

    #[test]
    fn replay_mode_needs_a_stored_program() {
        let replay = parse(TypedSettings { mode: Some("replay"), ..TypedSettings::default() });
        let error = replay.apply_to(&defaults(), Kind::Ucx, &hooks()).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        let mut current = defaults();
        current.replay = vec![0, -3];
        assert_eq!(replay.apply_to(&current, Kind::Ucx, &hooks()).unwrap().mode, Mode::Replay);
    }

    #[test]
    fn bad_values_are_refused_before_anything_is_applied() {
        for typed in [
            TypedSettings { enabled: Some("maybe"), ..TypedSettings::default() },
            TypedSettings { mode: Some("chaos"), ..TypedSettings::default() },
            TypedSettings { pattern: Some("XQ"), ..TypedSettings::default() },
            TypedSettings { probability: Some("101"), ..TypedSettings::default() },
            TypedSettings { skip: Some("-1"), ..TypedSettings::default() },
            TypedSettings { delay_mode: Some("sometimes"), ..TypedSettings::default() },
            TypedSettings { site: Some("callback"), ..TypedSettings::default() },
            TypedSettings::default(),
        ] {
            let error = Settings::parse(&typed).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::EXIT_USAGE, "{typed:?}: {error}");
        }
        let per_target = [
            TypedSettings { error_codes: Some("0"), ..TypedSettings::default() },
            TypedSettings { hooks: Some("no_such_hook"), ..TypedSettings::default() },
        ];
        for typed in per_target {
            let error = parse(typed).apply_to(&defaults(), Kind::Ucx, &hooks()).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::EXIT_USAGE, "{typed:?}: {error}");
        }
    }

    #[test]
    fn a_delay_mode_alone_keeps_the_length_and_a_zero_delay_is_off() {
        let mut current = defaults();
        current.delay_us = 300;
        current.delay_mode = DelayMode::BeforeFault;
        let mode = parse(TypedSettings { delay_mode: Some("instead-of-fault"), ..TypedSettings::default() });
        let next = mode.apply_to(&current, Kind::Ucx, &hooks()).unwrap();
        assert_eq!((next.delay_us, next.delay_mode), (300, DelayMode::InsteadOfFault));
        let off =
            parse(TypedSettings { delay: Some("0"), delay_mode: Some("before-fault"), ..TypedSettings::default() });
        assert_eq!(off.apply_to(&current, Kind::Ucx, &hooks()).unwrap().delay_mode, DelayMode::Off);
        assert!(!mode.starts_sequence());
    }
}
