//! Parsing what users type — probabilities, X/O patterns, hook lists, switches — shared by the shims' start-up
//! environment (`FAULTLINE_*`, and the seed injector's `UCX_FAULT_*` through [`crate::seed_env`]) and the
//! `faultline` tool, so both accept and reject exactly the same things.

use crate::codes::{self, CodeError};
use crate::control::Strategy;
use crate::layout::{DelayMode, Kind, Mode, Site, MAX_HOOKS, PATTERN_CAP, REPLAY_CAP};

/// A value a user gave that faultline cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Probability not a number in 0–100.
    #[error("probability '{0}' is not a percentage between 0 and 100 (decimals allowed, e.g. 12.5)")]
    Probability(String),
    /// Probability with a nonzero fifth decimal: finer than one part per million.
    #[error("probability '{0}' is finer than faultline's smallest step, 0.0001 % (at most 4 decimals)")]
    ProbabilityStep(String),
    /// A delay longer than [`MAX_DELAY_US`].
    #[error("delay (µs) '{0}' is longer than the cap of {max} µs (60 s) per fault", max = MAX_DELAY_US)]
    DelayTooLong(String),
    /// Pattern with other letters, empty or too long.
    #[error("pattern '{text}': {why}")]
    Pattern {
        /// What was given (shortened).
        text: String,
        /// What is wrong.
        why: String,
    },
    /// A replay program with an item that is not a whole number, empty or too long.
    #[error("replay program '{text}': {why}")]
    ReplayProgram {
        /// What was given (shortened).
        text: String,
        /// What is wrong.
        why: String,
    },
    /// A hook name that matches nothing.
    #[error("unknown hook '{name}' (known: {known})")]
    UnknownHook {
        /// What was given.
        name: String,
        /// The segment's hooks.
        known: String,
    },
    /// Not a number where one is needed.
    #[error("{what} '{text}' is not a whole number ≥ 0")]
    Number {
        /// Which setting.
        what: &'static str,
        /// What was given.
        text: String,
    },
    /// Not 0/1/on/off/true/false.
    #[error("{what} '{text}' is not on/off (1/0)")]
    Switch {
        /// Which setting.
        what: &'static str,
        /// What was given.
        text: String,
    },
    /// Not one of a setting's names.
    #[error("{what} '{text}' is not one of {choices}")]
    Choice {
        /// Which setting.
        what: &'static str,
        /// The names it takes.
        choices: &'static str,
        /// What was given.
        text: String,
    },
    /// A site the process's shim does not have.
    #[error("the {site} site is UCX-only: a {kind} process has no endpoints (use completion)")]
    SiteForKind {
        /// The site given.
        site: &'static str,
        /// The process's kind.
        kind: &'static str,
    },
    /// A code list problem.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Unknown log level.
    #[error("log level '{0}' is not off, faults or debug")]
    LogLevel(String),
    /// A seed variable the seed itself would not take as given (see [`crate::seed_env`]).
    #[error("{0}")]
    Seed(String),
    /// Not a stats interval.
    #[error("stats interval '{0}' is not off, a number of seconds (10, 10s) or of calls (1000calls), below 2^31")]
    StatsInterval(String),
}

/// Parses a percentage (`30`, `12.5`, `0.0001`, optionally with `%`) into parts per million.
pub fn parse_probability(text: &str) -> Result<u32, ConfigError> {
    let bad = || ConfigError::Probability(text.to_string());
    let t = text.trim().trim_end_matches('%').trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let finer_than_a_step = frac.len() > 4 && frac[4..].bytes().any(|b| b != b'0');
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let frac_ppm: u64 = format!("{:0<4}", &frac[..frac.len().min(4)]).parse().map_err(|_| bad())?;
    let ppm = whole.checked_mul(10_000).and_then(|w| w.checked_add(frac_ppm)).ok_or_else(bad)?;
    if ppm > 1_000_000 || ppm == 1_000_000 && finer_than_a_step {
        return Err(bad());
    }
    if finer_than_a_step {
        return Err(ConfigError::ProbabilityStep(text.to_string()));
    }
    Ok(ppm as u32)
}

/// Formats parts per million as the shortest percentage (`12.5`, `100`, `0.0001`).
pub fn format_probability(ppm: u32) -> String {
    let whole = ppm / 10_000;
    let frac = ppm % 10_000;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:04}").trim_end_matches('0'))
    }
}

/// `text` as an error message quotes it: its first 40 bytes and `…` when longer.
fn shortened(text: &str) -> String {
    if text.len() > 40 {
        format!("{}…", &text[..text.floor_char_boundary(40)])
    } else {
        text.to_string()
    }
}

/// Parses an X/O pattern (`X`/`x` fault, `O`/`o` pass), 1 to 65,536 positions.
pub fn parse_pattern(text: &str) -> Result<Vec<bool>, ConfigError> {
    let shown = shortened(text);
    let err = |why: String| ConfigError::Pattern { text: shown.clone(), why };
    let text = text.trim();
    if text.is_empty() {
        return Err(err("empty; use X for fault and O for pass, e.g. XOOOOXOO".into()));
    }
    let mut pattern = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            'X' | 'x' => pattern.push(true),
            'O' | 'o' => pattern.push(false),
            other => return Err(err(format!("'{other}' at position {} is neither X (fault) nor O (pass)", i + 1))),
        }
    }
    if pattern.len() > PATTERN_CAP {
        return Err(err(format!("{} positions, at most {PATTERN_CAP}", pattern.len())));
    }
    Ok(pattern)
}

/// Parses a replay program as typed: comma-separated codes, one per armed call, `0` to pass the call and any other
/// integer to inject it as that code; 1 to [`REPLAY_CAP`] calls, whitespace around items ignored. Numbers only (a
/// code's name depends on the process's kind, known only once a target is chosen, where each nonzero code is also
/// checked against that kind).
pub fn parse_replay_program(text: &str) -> Result<Vec<i32>, ConfigError> {
    let shown = shortened(text);
    let err = |why: String| ConfigError::ReplayProgram { text: shown.clone(), why };
    if text.trim().is_empty() {
        return Err(err("empty; give one code per call, 0 to pass it, e.g. 0,0,-3,0".into()));
    }
    let mut program = Vec::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        if program.len() == REPLAY_CAP {
            let calls = text.split(',').count();
            return Err(err(format!("{calls} calls, at most {REPLAY_CAP}")));
        }
        if item.is_empty() {
            return Err(err(format!("call {} is empty (0 passes a call)", i + 1)));
        }
        let code = item.parse::<i32>().map_err(|_| {
            err(format!(
                "'{}' at call {} is not a whole number (0 passes the call, any other number is the code \
                 injected; names are not taken, they depend on the process's kind)",
                shortened(item),
                i + 1
            ))
        })?;
        program.push(code);
    }
    Ok(program)
}

/// A replay program as [`parse_replay_program`] reads it back: `0,-3,0,-20`.
pub fn format_replay_program(program: &[i32]) -> String {
    program.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The short form of a hook name: without the API prefix (`ucp_`, `cuda`, `cu`) and the `_nbx` suffix.
pub fn short_hook_name(name: &str) -> &str {
    let name = name.strip_prefix("ucp_").unwrap_or(name);
    name.strip_suffix("_nbx").unwrap_or(name)
}

/// Whether `alias` names hook `name`: the full name, its short form (`put`, `tag_send`), or the last words of the
/// short form (`flush` names both `ucp_ep_flush_nbx` and `ucp_worker_flush_nbx`), case-insensitively.
pub fn hook_matches(name: &str, alias: &str) -> bool {
    let alias = alias.trim();
    let short = short_hook_name(name);
    name.eq_ignore_ascii_case(alias)
        || short.eq_ignore_ascii_case(alias)
        || short.len() > alias.len()
            && short.as_bytes()[short.len() - alias.len() - 1] == b'_'
            && short[short.len() - alias.len()..].eq_ignore_ascii_case(alias)
}

/// Resolves `all`, `none` or a comma list of hook names/aliases against a segment's hook table into an arm mask.
pub fn parse_hooks(hooks: &[impl AsRef<str>], text: &str) -> Result<[u64; MAX_HOOKS / 64], ConfigError> {
    let mut mask = [0u64; MAX_HOOKS / 64];
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(mask);
    }
    for alias in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let mut any = false;
        for (index, name) in hooks.iter().enumerate().take(MAX_HOOKS) {
            if alias.eq_ignore_ascii_case("all") || hook_matches(name.as_ref(), alias) {
                mask[index / 64] |= 1 << (index % 64);
                any = true;
            }
        }
        if !any {
            let known = hooks.iter().map(|h| h.as_ref()).collect::<Vec<_>>().join(", ");
            return Err(ConfigError::UnknownHook { name: alias.to_string(), known });
        }
    }
    if mask.iter().all(|&w| w == 0) {
        let known = hooks.iter().map(|h| h.as_ref()).collect::<Vec<_>>().join(", ");
        return Err(ConfigError::UnknownHook { name: text.to_string(), known });
    }
    Ok(mask)
}

/// Parses on/off, 1/0, true/false, yes/no.
pub fn parse_switch(what: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::Switch { what, text: text.to_string() }),
    }
}

/// Parses a whole number ≥ 0 (decimal, or hex with `0x`).
pub fn parse_count(what: &'static str, text: &str) -> Result<u64, ConfigError> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| ConfigError::Number { what, text: text.to_string() })
}

/// Parses `random` (→ `None`) or an X/O pattern (→ `Some`).
pub fn parse_strategy(text: &str) -> Result<Option<Vec<bool>>, ConfigError> {
    if text.trim().eq_ignore_ascii_case("random") {
        Ok(None)
    } else {
        parse_pattern(text).map(Some)
    }
}

/// The longest delay per fault: a minute. Longer is no slow call but a hang (the field could hold 71 minutes).
pub const MAX_DELAY_US: u32 = 60_000_000;

/// Parses a delay in microseconds, at most [`MAX_DELAY_US`].
pub fn parse_delay_us(text: &str) -> Result<u32, ConfigError> {
    let us = parse_count("delay (µs)", text)?;
    match u32::try_from(us) {
        Ok(us) if us <= MAX_DELAY_US => Ok(us),
        _ => Err(ConfigError::DelayTooLong(text.to_string())),
    }
}

/// Parses `off`, `before-fault` or `instead-of-fault`.
pub fn parse_delay_mode(text: &str) -> Result<DelayMode, ConfigError> {
    match text.trim() {
        "off" => Ok(DelayMode::Off),
        "before-fault" => Ok(DelayMode::BeforeFault),
        "instead-of-fault" => Ok(DelayMode::InsteadOfFault),
        _ => Err(ConfigError::Choice {
            what: "delay mode",
            choices: "off, before-fault, instead-of-fault",
            text: text.to_string(),
        }),
    }
}

/// Parses `post`, `completion` or `endpoint` (case-insensitive).
pub fn parse_site(text: &str) -> Result<Site, ConfigError> {
    Site::from_name(&text.trim().to_ascii_lowercase()).ok_or_else(|| ConfigError::Choice {
        what: "fault site",
        choices: "post, completion, endpoint",
        text: text.to_string(),
    })
}

/// Checks that processes of `kind` have `site`: the endpoint site is UCX's (a CUDA process has no endpoints).
pub fn check_site(kind: Kind, site: Site) -> Result<(), ConfigError> {
    if kind == Kind::Cuda && site == Site::Endpoint {
        return Err(ConfigError::SiteForKind { site: site.name(), kind: kind.name() });
    }
    Ok(())
}

fn parse_log_level(text: &str) -> Result<LogLevel, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" | "0" | "" => Ok(LogLevel::Off),
        "faults" | "1" => Ok(LogLevel::Faults),
        "debug" | "2" => Ok(LogLevel::Debug),
        _ => Err(ConfigError::LogLevel(text.to_string())),
    }
}

/// The shim's periodic stats line on stderr (`FAULTLINE_STATS_INTERVAL`, or the seed's
/// `UCX_FAULT_STATS_LOG_INTERVAL`). Off by default; at most one line a second whatever the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsInterval {
    /// No stats line.
    #[default]
    Off,
    /// A line every this many seconds.
    Seconds(u32),
    /// A line each time this many more calls were counted (the seed's unit).
    Calls(u32),
}

/// Bit of the control block's `stats_interval` word that marks a count of calls (else seconds).
const STATS_CALLS_BIT: u32 = 1 << 31;

impl StatsInterval {
    /// The control block's encoding: 0 off; bit 31 set: every N calls (the low 31 bits); else every N seconds.
    pub fn to_raw(self) -> u32 {
        match self {
            StatsInterval::Off => 0,
            StatsInterval::Seconds(seconds) => seconds.min(STATS_CALLS_BIT - 1),
            StatsInterval::Calls(0) => 0,
            StatsInterval::Calls(calls) => STATS_CALLS_BIT | calls.min(STATS_CALLS_BIT - 1),
        }
    }

    /// Decodes [`StatsInterval::to_raw`] (every word is some interval).
    pub fn from_raw(raw: u32) -> Self {
        match (raw & STATS_CALLS_BIT != 0, raw & !STATS_CALLS_BIT) {
            (_, 0) => StatsInterval::Off,
            (true, calls) => StatsInterval::Calls(calls),
            (false, seconds) => StatsInterval::Seconds(seconds),
        }
    }
}

/// Parses a stats interval: `0`/`off`, seconds (`10`, `10s`), or calls (`1000calls`, the seed's unit).
pub fn parse_stats_interval(text: &str) -> Result<StatsInterval, ConfigError> {
    let bad = || ConfigError::StatsInterval(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    if t == "off" {
        return Ok(StatsInterval::Off);
    }
    let (number, calls) = match t.strip_suffix("calls") {
        Some(number) => (number, true),
        None => (t.strip_suffix('s').unwrap_or(&t), false),
    };
    let n: u32 = number.trim().parse().map_err(|_| bad())?;
    if n >= STATS_CALLS_BIT {
        return Err(bad());
    }
    Ok(match (n, calls) {
        (0, _) => StatsInterval::Off,
        (n, true) => StatsInterval::Calls(n),
        (n, false) => StatsInterval::Seconds(n),
    })
}

/// Shim logging, off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Nothing but the one-time warnings.
    #[default]
    Off,
    /// One line per injected fault (rate-limited).
    Faults,
    /// Also start-up details.
    Debug,
}

/// The start-up state a shim takes from its environment.
#[derive(Debug, Clone)]
pub struct Startup {
    /// The strategy to publish before the first call.
    pub strategy: Strategy,
    /// The hooks `reset` arms: the shim's defaults, or the seed's hook set for a process configured through
    /// `UCX_FAULT_*`.
    pub default_arm_mask: [u64; MAX_HOOKS / 64],
    /// `FAULTLINE_LOG`.
    pub log: LogLevel,
    /// `FAULTLINE_STATS_INTERVAL`.
    pub stats: StatsInterval,
    /// Configured through the seed's `UCX_FAULT_*` variables (so it started from the seed's defaults).
    pub seed_configured: bool,
    /// One line per invalid variable; each was ignored.
    pub warnings: Vec<String>,
}

/// A start-up setting as the environment gave it.
pub(crate) struct Given {
    /// The variable it came from.
    pub(crate) name: String,
    /// `NAME=value` as written (for warnings).
    pub(crate) shown: String,
    /// The value in faultline's syntax, or why the seed's spelling has none.
    pub(crate) text: Result<String, ConfigError>,
}

impl Given {
    fn plain(name: &str, value: String) -> Self {
        Given { name: name.to_string(), shown: format!("{name}={value}"), text: Ok(value) }
    }
}

/// Reads `FAULTLINE_*` through `var` (so tests need no process environment), and for the UCX shim the seed
/// injector's `UCX_FAULT_*` (see [`crate::seed_env`]): a `FAULTLINE_*` setting wins over its seed spelling, and a
/// process configured through `UCX_FAULT_*` starts from the seed's defaults. Invalid values are reported in
/// `warnings` and ignored; everything else keeps its default.
pub fn startup_from_env(
    kind: Kind,
    hooks: &[&str],
    default_armed: impl Fn(usize) -> bool,
    var: impl Fn(&str) -> Option<String>,
) -> Startup {
    let mut s = Strategy::defaults(codes::default_pool(kind), default_armed);
    let mut log = LogLevel::Off;
    let mut stats = StatsInterval::Off;
    let mut warnings = Vec::new();
    let seed = kind == Kind::Ucx && crate::seed_env::configured(&var);
    if seed {
        crate::seed_env::apply_defaults(&mut s, hooks);
        warnings.extend(crate::seed_env::notes(&var));
    }
    let default_arm_mask = s.arm_mask;
    let get = |name: &'static str| match var(name) {
        Some(value) => Some(Given::plain(name, value)),
        None if seed => crate::seed_env::setting(name, &var),
        None => None,
    };
    let mut invalid: Vec<(&'static str, String)> = Vec::new();
    let mut report = |canonical: &'static str, given: &Given, e: &ConfigError| {
        warnings.push(format!("{}: {e}; ignored", given.shown));
        invalid.push((canonical, given.name.clone()));
    };
    macro_rules! set {
        ($name:literal, |$v:ident| $parse:expr, |$parsed:ident| $assign:expr) => {
            if let Some(given) = get($name) {
                match given.text.clone().and_then(|$v: String| $parse) {
                    Ok($parsed) => $assign,
                    Err(e) => report($name, &given, &e),
                }
            }
        };
    }
    set!("FAULTLINE_ENABLED", |v| parse_switch("FAULTLINE_ENABLED", &v), |on| s.enabled = on);
    set!("FAULTLINE_RECORD", |v| parse_switch("FAULTLINE_RECORD", &v), |on| s.recording = on);
    set!("FAULTLINE_STRATEGY", |v| parse_strategy(&v), |pattern| match pattern {
        None => s.mode = Mode::Random,
        Some(pattern) => {
            s.pattern = pattern;
            s.mode = Mode::Pattern;
        }
    });
    set!("FAULTLINE_PROBABILITY", |v| parse_probability(&v), |ppm| s.probability_ppm = ppm);
    set!("FAULTLINE_ERROR_CODES", |v| codes::parse_code_list(kind, &v).map_err(ConfigError::from), |pool| s.pool =
        pool);
    set!("FAULTLINE_HOOKS", |v| parse_hooks(hooks, &v), |mask| s.arm_mask = mask);
    set!("FAULTLINE_SEED", |v| parse_count("FAULTLINE_SEED", &v), |seed| s.seed = seed);
    set!("FAULTLINE_SKIP", |v| parse_count("FAULTLINE_SKIP", &v), |skip| s.skip = skip);
    set!("FAULTLINE_LIMIT", |v| parse_count("FAULTLINE_LIMIT", &v), |limit| s.limit = limit);
    set!("FAULTLINE_DELAY_US", |v| parse_delay_us(&v), |us| {
        s.delay_us = us;
        s.delay_mode = if us == 0 { DelayMode::Off } else { DelayMode::BeforeFault };
    });
    set!("FAULTLINE_DELAY_MODE", |v| parse_delay_mode(&v), |mode| s.delay_mode = mode);
    set!("FAULTLINE_SITE", |v| parse_site(&v).and_then(|site| check_site(kind, site).map(|()| site)), |site| s.site =
        site);
    set!("FAULTLINE_LOG", |v| parse_log_level(&v), |level| log = level);
    set!("FAULTLINE_STATS_INTERVAL", |v| parse_stats_interval(&v), |interval| stats = interval);
    // Settings that narrow what can fail must never widen it by being ignored: if one is invalid, nothing is
    // armed until it is fixed.
    const NARROWING: [&str; 4] = ["FAULTLINE_HOOKS", "FAULTLINE_STRATEGY", "FAULTLINE_SKIP", "FAULTLINE_LIMIT"];
    invalid.retain(|(canonical, _)| NARROWING.contains(canonical));
    if !invalid.is_empty() {
        s.arm_mask = [0; MAX_HOOKS / 64];
        let names: Vec<&str> = invalid.iter().map(|(_, name)| name.as_str()).collect();
        warnings.push(format!(
            "no hook is armed: {} is invalid, and an invalid setting never widens what can fail",
            names.join(" and ")
        ));
    }
    Startup { strategy: s, default_arm_mask, log, stats, seed_configured: seed, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities() {
        assert_eq!(parse_probability("30"), Ok(300_000));
        assert_eq!(parse_probability("12.5"), Ok(125_000));
        assert_eq!(parse_probability("0.0001"), Ok(1));
        assert_eq!(parse_probability("100%"), Ok(1_000_000));
        assert_eq!(parse_probability(".5"), Ok(5_000));
        for bad in ["150", "-1", "abc", "", "1e3", "100.0001", "0.00001", "12.5.1"] {
            assert!(parse_probability(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_probability("12.50000"), Ok(125_000));
        for too_fine in ["0.00001", "12.34567", "99.99999%"] {
            assert_eq!(parse_probability(too_fine), Err(ConfigError::ProbabilityStep(too_fine.into())), "{too_fine}");
        }
        let message = parse_probability("0.00001").unwrap_err().to_string();
        assert!(message.contains("finer than faultline's smallest step, 0.0001 %"), "{message}");
        assert_eq!(parse_probability("100.00001"), Err(ConfigError::Probability("100.00001".into())));
        assert_eq!(format_probability(125_000), "12.5");
        assert_eq!(format_probability(1), "0.0001");
        assert_eq!(format_probability(1_000_000), "100");
    }

    #[test]
    fn delays_are_capped_at_a_minute() {
        assert_eq!(parse_delay_us("0"), Ok(0));
        assert_eq!(parse_delay_us("60000000"), Ok(MAX_DELAY_US));
        for long in ["60000001", "4294967295", "5000000000"] {
            assert_eq!(parse_delay_us(long), Err(ConfigError::DelayTooLong(long.into())), "{long}");
        }
        assert!(parse_delay_us("60000001").unwrap_err().to_string().contains("the cap of 60000000 µs (60 s)"));
        assert!(matches!(parse_delay_us("soon"), Err(ConfigError::Number { .. })));
        // The shims' start-up variable goes through the same parser: a longer delay is ignored with a warning.
        let env = |name: &str| (name == "FAULTLINE_DELAY_US").then(|| "4294967295".to_string());
        let s = startup_from_env(Kind::Ucx, &["ucp_put_nbx"], |_| true, env);
        assert_eq!((s.strategy.delay_us, s.strategy.delay_mode), (0, DelayMode::Off));
        assert!(s.warnings[0].starts_with("FAULTLINE_DELAY_US=4294967295: delay (µs)"), "{:?}", s.warnings);
    }

    #[test]
    fn sites_parse_by_name_and_the_endpoint_site_is_ucx_only() {
        assert_eq!(parse_site(" Completion "), Ok(Site::Completion));
        assert_eq!(parse_site("post"), Ok(Site::Post));
        let err = parse_site("callback").unwrap_err().to_string();
        assert_eq!(err, "fault site 'callback' is not one of post, completion, endpoint");
        assert!(check_site(Kind::Ucx, Site::Endpoint).is_ok());
        assert!(check_site(Kind::Cuda, Site::Completion).is_ok());
        let err = check_site(Kind::Cuda, Site::Endpoint).unwrap_err().to_string();
        assert!(err.contains("UCX-only"), "{err}");
        // At start-up: set for UCX; for CUDA the endpoint site is ignored with a warning (the default stays).
        let env = |name: &str| (name == "FAULTLINE_SITE").then(|| "endpoint".to_string());
        assert_eq!(startup_from_env(Kind::Ucx, &["ucp_put_nbx"], |_| true, env).strategy.site, Site::Endpoint);
        let s = startup_from_env(Kind::Cuda, &["cuLaunchKernel"], |_| true, env);
        assert_eq!(s.strategy.site, Site::Post);
        assert!(
            s.warnings[0].starts_with("FAULTLINE_SITE=endpoint: the endpoint site is UCX-only"),
            "{:?}",
            s.warnings
        );
        let s = startup_from_env(
            Kind::Ucx,
            &["ucp_put_nbx"],
            |_| true,
            |n: &str| (n == "FAULTLINE_SITE").then(|| "later".to_string()),
        );
        assert_eq!((s.strategy.site, s.strategy.arm_mask[0] != 0), (Site::Post, true), "a bad site arms as before");
    }

    #[test]
    fn patterns() {
        assert_eq!(parse_pattern("XoO").unwrap(), vec![true, false, false]);
        let err = parse_pattern("XQX").unwrap_err().to_string();
        assert!(err.contains("'Q' at position 2"), "{err}");
        assert!(parse_pattern("").is_err());
        assert!(parse_pattern(&"X".repeat(PATTERN_CAP + 1)).is_err());
        assert!(parse_pattern(&"O".repeat(PATTERN_CAP)).is_ok());
    }

    #[test]
    fn replay_programs() {
        assert_eq!(parse_replay_program("0, -3,0,-20 ").unwrap(), vec![0, -3, 0, -20]);
        assert_eq!(parse_replay_program("100").unwrap(), vec![100]);
        assert_eq!(parse_replay_program(&format_replay_program(&[0, -3, 100])).unwrap(), [0, -3, 100]);
        let err = parse_replay_program("0,IO_ERROR").unwrap_err().to_string();
        assert!(err.contains("'IO_ERROR' at call 2 is not a whole number"), "{err}");
        assert!(parse_replay_program("0,,-3").unwrap_err().to_string().contains("call 2 is empty"));
        assert!(parse_replay_program(" ").unwrap_err().to_string().contains("empty"));
        assert!(parse_replay_program("99999999999").is_err(), "outside i32");
        let longest = vec!["0"; REPLAY_CAP].join(",");
        assert_eq!(parse_replay_program(&longest).unwrap().len(), REPLAY_CAP);
        let err = parse_replay_program(&format!("{longest},0")).unwrap_err().to_string();
        assert!(err.contains(&format!("{} calls, at most {REPLAY_CAP}", REPLAY_CAP + 1)), "{err}");
    }

    #[test]
    fn hook_aliases() {
        let hooks = [
            "ucp_get_nbx",
            "ucp_put_nbx",
            "ucp_ep_flush_nbx",
            "ucp_worker_flush_nbx",
            "ucp_tag_send_nbx",
            "ucp_tag_send_sync_nbx",
        ];
        let mask = parse_hooks(&hooks, "get,flush").unwrap();
        assert_eq!(mask[0], 0b1101);
        assert_eq!(parse_hooks(&hooks, "tag_send").unwrap()[0], 0b1_0000);
        assert_eq!(parse_hooks(&hooks, "UCP_PUT_NBX").unwrap()[0], 0b10);
        assert_eq!(parse_hooks(&hooks, "all").unwrap()[0], 0b11_1111);
        assert_eq!(parse_hooks(&hooks, "none").unwrap()[0], 0);
        assert!(parse_hooks(&hooks, "lush").is_err(), "only whole words match");
        assert!(matches!(parse_hooks(&hooks, "get,bogus"), Err(ConfigError::UnknownHook { .. })));
    }

    #[test]
    fn environment_sets_the_startup_strategy_and_reports_bad_values() {
        let hooks = ["ucp_get_nbx", "ucp_put_nbx", "ucp_request_check_status"];
        let env = |name: &str| {
            match name {
                "FAULTLINE_ENABLED" => Some("1"),
                "FAULTLINE_STRATEGY" => Some("XOOOOXOO"),
                "FAULTLINE_ERROR_CODES" => Some("UCS_ERR_IO_ERROR,-20"),
                "FAULTLINE_HOOKS" => Some("put"),
                "FAULTLINE_PROBABILITY" => Some("150"),
                "FAULTLINE_SKIP" => Some("3"),
                _ => None,
            }
            .map(String::from)
        };
        let s = startup_from_env(Kind::Ucx, &hooks, |h| h != 2, env);
        assert!(s.strategy.enabled);
        assert_eq!(s.strategy.mode, Mode::Pattern);
        assert_eq!(s.strategy.pattern_text(), "XOOOOXOO");
        assert_eq!(s.strategy.pool, vec![-3, -20]);
        assert_eq!(s.strategy.arm_mask[0], 0b10);
        assert_eq!(s.strategy.skip, 3);
        assert_eq!(s.strategy.probability_ppm, 0, "the invalid probability is ignored");
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].starts_with("FAULTLINE_PROBABILITY=150"), "{:?}", s.warnings);
    }

    #[test]
    fn an_invalid_narrowing_setting_arms_nothing() {
        let hooks = ["ucp_get_nbx", "ucp_put_nbx", "ucp_request_check_status"];
        for (name, value) in [
            ("FAULTLINE_HOOKS", "put,bogus"),
            ("FAULTLINE_STRATEGY", "XOQ"),
            ("FAULTLINE_SKIP", "ten"),
            ("FAULTLINE_LIMIT", "-1"),
        ] {
            let env = |n: &str| match n {
                "FAULTLINE_ENABLED" => Some("1".to_string()),
                "FAULTLINE_PROBABILITY" => Some("50".to_string()),
                _ if n == name => Some(value.to_string()),
                _ => None,
            };
            let s = startup_from_env(Kind::Ucx, &hooks, |_| true, env);
            assert_eq!(s.strategy.arm_mask, [0; MAX_HOOKS / 64], "{name}={value} must arm nothing");
            assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
            assert!(s.warnings[0].starts_with(&format!("{name}={value}")), "{:?}", s.warnings);
            assert!(s.warnings[1].contains("no hook is armed"), "{:?}", s.warnings);
        }
    }
}
